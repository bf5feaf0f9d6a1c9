/* SPDX-License-Identifier: MIT */
/* `pbring demo`: a producer and two consumers on a fresh ring. */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* The children. Each runs in a process group of its own, so that Ctrl-C
 * on the terminal reaches only us, and we pass every stop signal on once:
 * a child that got it from the terminal too would take the second one as
 * "kill at once" and lose its summary. They die with us (PDEATHSIG). */
static pid_t kids[8];
static unsigned nkids;
static bool forwarded;

static pid_t spawn(const char *self, char *const argv[])
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) /* died before the prctl */
			_exit(1);
		execv(self, argv);
		_exit(127);
	}
	if (pid > 0 && nkids < sizeof(kids) / sizeof(kids[0]))
		kids[nkids++] = pid;
	return pid;
}

static void forward_stop(void)
{
	unsigned i;

	if (forwarded)
		return;
	forwarded = true;
	for (i = 0; i < nkids; i++)
		(void)kill(kids[i], cli_stop_signal());
}

static int wait_ok(pid_t pid)
{
	int st;

	if (pid < 0)
		return 0;
	if (cli_stop_signal())
		forward_stop();
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return 0;
		if (cli_stop_signal())
			forward_stop(); /* then wait for them to stop */
	}
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static const char demo_help[] =
	"usage: pbring demo [--count N]\n"
	"Create a ring, run one producer and two consumers (one gating, one\n"
	"lossy) concurrently as separate processes, print their summaries, "
	"and\n"
	"remove the ring. The producer sends N messages (default 200000) as "
	"fast\n"
	"as it can, so the ring fills and the consumers' latency (commit to\n"
	"receive) is mostly time queued in it; then a producer paced at "
	"10000\n"
	"msg/s, which the ring never queues, shows the transport latency "
	"alone.\n";

#define PACED_COUNT 2000
#define PACED_RATE 10000
#define STR_(x) #x
#define STR(x) STR_(x)

/* Read PACED_COUNT messages as a gating reader, timing each from its
 * commit: paced below what we take, none waits in the ring, so this is
 * the transport alone. Returns how many were read. */
static uint64_t read_paced(struct pbr_reader *rd, struct cli_hist *h)
{
	struct pbr_view v;
	uint64_t n = 0;
	int64_t now;

	while (n < PACED_COUNT && !pbr_reader_peek(rd, 2000000000, &v)) {
		now = cli_now_ns();
		if (v.timestamp_ns && (uint64_t)now >= v.timestamp_ns)
			hist_add(h, (uint64_t)now - v.timestamp_ns);
		n++;
		if (pbr_reader_release(rd, &v))
			break;
	}
	return n;
}

static void say_transport(const struct cli_hist *h, uint64_t n)
{
	char p50[32], p99[32], max[32];

	cli_log("info", "latency", NULL, NULL, "demo: ",
		"transport latency (commit to receive, nothing queued) "
		"p50 %s p99 %s max %s over %" PRIu64 " messages",
		cli_duration(hist_pct(h, 50), p50, sizeof(p50)),
		cli_duration(hist_pct(h, 99), p99, sizeof(p99)),
		cli_duration(h->max, max, sizeof(max)), n);
}

/* The paced run: its producer is a child, its reader this process. */
static int paced(const char *self, char *ring)
{
	static struct cli_hist h; /* large */
	char count[] = STR(PACED_COUNT), rate[] = STR(PACED_RATE);
	char *pr[] = {"pbring", "produce", ring,     "--count", count,
		      "--rate", rate,	   "--size", "64",	NULL};
	struct pbr_reader_opts o = {0};
	struct pbr_reader *rd;
	struct pbr_ring *r;
	uint64_t n;
	pid_t pid;
	int ok;

	if (pbr_ring_attach(ring, NULL, &r))
		return 0;
	cli_stop_install(r);
	o.start = PBR_START_LATEST; /* not the first run's backlog */
	if (pbr_reader_open(r, &o, &rd)) {
		cli_stop_detach(r);
		return 0;
	}
	cli_log("info", "note", NULL, NULL, "demo: ",
		"now %d DeviceEvents at %d msg/s, slower than a reader "
		"takes them: none waits in the ring",
		PACED_COUNT, PACED_RATE);
	pid = spawn(self, pr);
	n = pid > 0 ? read_paced(rd, &h) : 0; /* while it sends */
	ok = wait_ok(pid) && n > 0;
	cli_stop_detach(r); /* closes rd */
	say_transport(&h, n);
	return ok;
}

int cmd_demo(int argc, char **argv, const char *self)
{
	char ring[64], count[24] = "200000";
	uint64_t n;
	pid_t c1, c2, p;
	int ok;

	if (argc > 1 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(demo_help, stdout);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--count") &&
	    cli_u64(argv[2], 1, UINT64_MAX / 2, &n))
		snprintf(count, sizeof(count), "%s", argv[2]);
	else if (argc != 1)
		return cli_usage("demo", "takes only --count N");
	snprintf(ring, sizeof(ring), "demo-%d", (int)getpid());
	cli_stop_install(NULL);
	{
		char *a[] = {"pbring", "create", ring, "--slots", "4096", NULL};

		if (!wait_ok(spawn(self, a)))
			return EXIT_RUNTIME;
	}
	printf("ring %s: 1 producer -> 1 gating + 1 lossy consumer, %s "
	       "DeviceEvents\n",
	       ring, count);
	(void)fflush(stdout); /* before the children's output; a log line */
	{
		char *g[] = {"pbring",	"consume",   ring, "--count", count,
			     "--quiet", "--timeout", "10", NULL};
		char *l[] = {"pbring",	"consume",   ring, "--quiet",
			     "--lossy", "--timeout", "1",  NULL};
		char *pr[] = {"pbring", "produce", ring, "--count",
			      count,	"--size",  "64", NULL};

		c1 = spawn(self, g);
		c2 = spawn(self, l);
		usleep(200 * 1000); /* let both consumers attach first */
		p = spawn(self, pr);
		ok = wait_ok(p);
		ok &= wait_ok(c1);
		(void)wait_ok(c2); /* a lossy consumer may see losses: fine */
	}
	if (!cli_stop_signal())
		cli_log("info", "note", NULL, NULL, "demo: ",
			"at full speed the ring fills, so most of "
			"that latency is time queued in it");
	ok = ok && !cli_stop_signal() && paced(self, ring);
	(void)pbr_ring_unlink(ring);
	if (cli_stop_signal())
		return cli_stop_status(ring);
	return ok ? 0 : EXIT_RUNTIME;
}
