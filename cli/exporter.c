/* SPDX-License-Identifier: MIT */
/*
 * `pbring exporter`: serve rings' metrics (cli/metrics.c, docs/METRICS.md)
 * to Prometheus at /metrics, with Debian's libmicrohttpd. Each scrape
 * attaches the rings, reads their counters and participant tables and
 * detaches: the exporter never joins a ring, so it holds nobody back and
 * is not in any participant table.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "cli.h"

#define DEFAULT_LISTEN "127.0.0.1:9477"

static const char exporter_help[] =
	"usage: pbring exporter [--listen HOST:PORT] [RING...]\n"
	"Serve the metrics of the named rings, or of every ring on this host,\n"
	"to Prometheus: GET /metrics (text exposition format; names and\n"
	"labels in docs/METRICS.md, as `pbring stat --prometheus` prints "
	"them).\n"
	"Each scrape reads the rings' counters and participant tables; the\n"
	"exporter never joins a ring. A named ring that cannot be read shows\n"
	"pbring_ring_up 0.\n"
	"  --listen HOST:PORT  the address to serve on (default " DEFAULT_LISTEN
	";\n"
	"                      loopback: say 0.0.0.0:PORT to serve other "
	"hosts)\n"
	"Ctrl-C or SIGTERM stops it: exit 130 / 143.\n";

struct exporter {
	char **rings; /* named, or NULL: every ring in PBR_SHM_DIR */
	int nrings;
};

/* Snapshot one ring into @s (up = false if it cannot be read). */
static void snap_one(struct cli_snap *s, const char *name)
{
	struct pbr_ring *ring;

	if (pbr_ring_attach(name, NULL, &ring)) {
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", name);
		return;
	}
	if (cli_snap_take(s, name, ring))
		s->up = false;
	pbr_ring_detach(ring);
}

/* The exposition of every ring asked for, in a malloc'ed buffer. */
static char *render(const struct exporter *e, size_t *len)
{
	char **names = e->rings, *buf = NULL;
	int n = e->nrings, i, k = 0;
	struct cli_snap *s;
	FILE *f;

	if (!names)
		names = cli_ring_names(&n);
	s = calloc((size_t)(n ? n : 1), sizeof(*s));
	f = s ? open_memstream(&buf, len) : NULL;
	for (i = 0; f && i < n; i++) {
		snap_one(&s[k], names[i]);
		/* When scanning, what does not attach is not a ring. */
		if (s[k].up || e->rings)
			k++;
	}
	if (f) {
		cli_metrics_text(f, s, k);
		if (fclose(f))
			buf = NULL;
	}
	for (i = 0; s && i < k; i++)
		cli_snap_free(&s[i]);
	free(s);
	if (!e->rings)
		cli_ring_names_free(names, n);
	return buf;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ok;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char bad_method[] = "only GET and HEAD\n";
	static char failed[] = "out of memory\n";
	const char *text = "text/plain; charset=utf-8";
	size_t len = 0;
	char *body;

	(void)version, (void)upload, (void)upload_size, (void)req_cls;
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text, bad_method,
			     strlen(bad_method), MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(c, MHD_HTTP_NOT_FOUND, text, not_found,
			     strlen(not_found), MHD_RESPMEM_PERSISTENT);
	body = render(cls, &len);
	if (!body)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, text, failed,
			     strlen(failed), MHD_RESPMEM_PERSISTENT);
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
		     body, len, MHD_RESPMEM_MUST_FREE);
}

/* "HOST:PORT" or "[V6]:PORT" into an address: 0, or the usage status. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss,
			socklen_t *sl)
{
	char host[256];
	const char *colon = strrchr(arg, ':');
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
				 .ai_socktype = SOCK_STREAM},
			*ai = NULL;
	size_t hl = colon ? (size_t)(colon - arg) : 0;
	uint64_t port;

	if (!colon || hl >= sizeof(host) ||
	    !cli_u64(colon + 1, 1, 65535, &port))
		goto bad;
	if (hl >= 2 && arg[0] == '[' && arg[hl - 1] == ']')
		arg++, hl -= 2;
	memcpy(host, arg, hl);
	host[hl] = 0;
	if (getaddrinfo(hl ? host : "0.0.0.0", colon + 1, &hints, &ai) || !ai)
		goto bad;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	return cli_usage("exporter",
			 "--listen: '%s' is not HOST:PORT (a numeric address "
			 "and a port 1..65535, e.g. " DEFAULT_LISTEN ")",
			 arg);
}

static int exporter_parse(int argc, char **argv, struct exporter *e,
			  const char **listen)
{
	int i;

	*listen = DEFAULT_LISTEN;
	e->rings = calloc((size_t)argc, sizeof(*e->rings));
	if (!e->rings)
		return cli_err(NULL, NULL, -ENOMEM);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(exporter_help, stdout);
			return -1;
		}
		if (!strcmp(argv[i], "--listen")) {
			if (++i == argc)
				return cli_usage("exporter",
						 "--listen needs HOST:PORT");
			*listen = argv[i];
		} else if (!strncmp(argv[i], "--listen=", 9)) {
			*listen = argv[i] + 9;
		} else if (argv[i][0] == '-') {
			return cli_usage("exporter", "unknown option '%s'",
					 argv[i]);
		} else if (pbr_name_check(argv[i])) {
			return cli_usage("exporter", "'%s' is not a ring name",
					 argv[i]);
		} else {
			e->rings[e->nrings++] = argv[i];
		}
	}
	return 0;
}

int cmd_exporter(int argc, char **argv)
{
	struct exporter e = {0};
	struct sockaddr_storage ss = {0}; /* parse_listen fills it */
	struct MHD_Daemon *d;
	const char *listen;
	socklen_t sl;
	int rc;

	rc = exporter_parse(argc, argv, &e, &listen);
	if (!rc)
		rc = parse_listen(listen, &ss, &sl);
	if (!rc && !e.nrings) { /* none named: every ring, at each scrape */
		free(e.rings);
		e.rings = NULL;
	}
	if (rc) {
		free(e.rings);
		return rc < 0 ? 0 : rc;
	}
	cli_stop_install(NULL);
	d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, answer, &e, MHD_OPTION_SOCK_ADDR,
		(struct sockaddr *)&ss, MHD_OPTION_END);
	if (!d) {
		cli_fail(NULL,
			 "exporter: cannot serve on %s (in use, or not "
			 "an address of this host?)",
			 listen);
		free(e.rings);
		return EXIT_RUNTIME;
	}
	cli_log("info", "serving", NULL, NULL,
		"pbring exporter: ", "serving http://%s/metrics (%s)", listen,
		e.rings ? "the rings named" : "every ring on this host");
	while (!cli_stop_signal())
		usleep(100 * 1000);
	MHD_stop_daemon(d);
	free(e.rings);
	return 128 + cli_stop_signal();
}
