/* SPDX-License-Identifier: MIT */
/* `pbring schema`: a ring's message type and stored schema. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbschema.h"

static const char schema_help[] =
	"usage: pbring schema RING [--descriptor-set FILE|-]\n"
	"Print the ring's message type and its stored schema as .proto text\n"
	"(every file of the set, dependencies first, each after a\n"
	"'// file: NAME' line).\n"
	"  --descriptor-set FILE  write the stored FileDescriptorSet bytes "
	"exactly\n"
	"                         instead ('-': stdout)\n"
	"  --any-owner            accept a ring owned by another user (see "
	"SECURITY.md)\n";

static int write_bytes(const char *ring, const char *path, const void *data,
		       size_t len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "wb") : stdout;

	if (!f) {
		cli_fail(ring, "%s: %s", path, strerror(errno));
		return EXIT_RUNTIME;
	}
	if (fwrite(data, 1, len, f) != len || fflush(f)) {
		cli_fail(ring, "%s: %s", path, strerror(errno));
		if (f != stdout)
			(void)fclose(f); /* already failed, and said so */
		return EXIT_RUNTIME;
	}
	if (f != stdout && fclose(f)) {
		cli_fail(ring, "%s: %s", path, strerror(errno));
		return EXIT_RUNTIME;
	}
	return 0;
}

static int print_schema(const char *name, const struct pbr_ring_info *info,
			const char *out)
{
	char *text = NULL, *err = NULL;

	if (!info->msg_type[0]) {
		cli_fail(name, "ring is untyped (no schema)");
		return EXIT_RUNTIME;
	}
	if (!info->schema_len) {
		cli_fail(name, "ring holds %s without its schema",
			 info->msg_type);
		return EXIT_RUNTIME;
	}
	if (out)
		return write_bytes(name, out, info->schema, info->schema_len);
	if (pbs_proto_text(info->schema, info->schema_len, &text, &err)) {
		cli_fail(name, "%s", err ? err : "bad stored schema");
		free(err);
		return EXIT_RUNTIME;
	}
	printf("// message: %s\n\n%s", info->msg_type, text);
	free(text);
	return fflush(stdout) ? EXIT_RUNTIME : 0;
}

int cmd_schema(int argc, char **argv)
{
	static const struct option opts[] = {{"descriptor-set", 1, 0, 'd'},
					     {"any-owner", 0, 0, 'A'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	struct pbr_ring_info info;
	struct pbr_ring *ring;
	const char *out = NULL;
	bool any_owner = false;
	int c, rc;

	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(schema_help, stdout);
			return 0;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("schema", argv, c);
		if (c == 'A')
			any_owner = true;
		else
			out = optarg;
	}
	if (optind != argc - 1)
		return cli_usage("schema", "expects exactly one RING");
	if ((rc = cli_attach_as("schema", argv[optind], any_owner, &ring)))
		return rc;
	pbr_ring_info(ring, &info);
	rc = print_schema(argv[optind], &info, out);
	pbr_ring_detach(ring);
	return rc;
}
