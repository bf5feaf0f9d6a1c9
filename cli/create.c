/* SPDX-License-Identifier: MIT */
/* `pbring create`: make a ring from the shell. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pbring/demo.h"
#include "pbschema.h"

static const char create_help[] =
	"usage: pbring create RING [options]\n"
	"Create a ring (fails if it exists; remove it first with 'pbring "
	"rm').\n"
	"  --slots N          slots, a power of two (default 1024)\n"
	"  --slot-size BYTES  bytes per slot incl. 64-byte header, multiple of "
	"128\n"
	"                     (default 1024)\n"
	"  --schema SCHEMA    message schema stored in the ring: demo "
	"(default),\n"
	"                     none for an untyped raw-bytes ring, or a FILE:\n"
	"                     a serialized FileDescriptorSet (protoc\n"
	"                     --include_imports --descriptor_set_out) or a "
	".proto\n"
	"                     file, compiled here; stored as the canonical "
	"bytes\n"
	"  --type NAME        the message full name (required with a FILE)\n"
	"  -I DIR             where a .proto's imports are (repeatable; then "
	"the\n"
	"                     file's directory, then /usr/include)\n"
	"  --mode OCTAL       permissions (default 0600; never "
	"world-writable)\n"
	"  --producers N      producer entries (default 8)\n"
	"  --readers N        reader entries (default 8)\n"
	"  --single-producer  one producer only, no atomic RMW per message\n"
	"  --durable-readers  allow durable readers (consume --durable NAME), "
	"whose\n"
	"                     position outlives them: format 1.3, which "
	"libraries\n"
	"                     of 1.2 and earlier refuse\n"
	"  --crc POLICY       which payloads producers checksum (CRC32C), in "
	"every\n"
	"                     language: full (default), none, or BYTES: "
	"payloads\n"
	"                     of at most BYTES (e.g. 4096: small messages "
	"checked,\n"
	"                     big ones not read twice). Readers verify what "
	"carries\n"
	"                     a CRC; without one they still see only whole "
	"messages\n";

/* What --schema, --type and -I asked for. */
struct create_schema_args {
	const char *schema; /* demo, none or a FILE */
	const char *type;
	const char **dirs;
	size_t ndirs;
};

/* Fill o's schema from a: 0, or an exit status (after saying why). *bytes
 * is what to free after the ring is made. */
static int create_schema(const struct create_schema_args *a,
			 struct pbr_create_opts *o, uint8_t **bytes)
{
	size_t len;
	char *err = NULL;
	int rc;

	*bytes = NULL;
	if (!strcmp(a->schema, "none")) {
		if (a->type)
			return cli_usage("create", "--schema none is untyped: "
						   "it takes no --type");
		return 0;
	}
	if (!strcmp(a->schema, "demo")) {
		if (a->type && strcmp(a->type, PBR_DEMO_MSG_TYPE))
			return cli_usage("create",
					 "--type: the demo schema's type is "
					 "%s, not '%s'",
					 PBR_DEMO_MSG_TYPE, a->type);
		o->msg_type = PBR_DEMO_MSG_TYPE;
		pbr_demo_schema(&o->schema, &o->schema_len);
		o->schema_hash = pbr_schema_hash(o->schema, o->schema_len);
		return 0;
	}
	if (!a->type)
		return cli_usage("create",
				 "--type NAME is required with --schema FILE");
	if (strlen(a->type) > PBR_MSG_TYPE_MAX)
		return cli_usage("create",
				 "--type: '%s' is longer than %u bytes",
				 a->type, PBR_MSG_TYPE_MAX);
	rc = pbs_canonical(a->schema, a->type, a->dirs, a->ndirs, bytes, &len,
			   &err);
	if (rc) {
		cli_usage("create", "%s", err ? err : "cannot read the schema");
		free(err);
		return EXIT_USAGE;
	}
	if (len > UINT32_MAX) {
		free(*bytes);
		*bytes = NULL;
		return cli_usage("create", "--schema: the schema is too large");
	}
	o->msg_type = a->type;
	o->schema = *bytes;
	o->schema_len = (uint32_t)len;
	o->schema_hash = pbr_schema_hash(*bytes, len);
	return 0;
}

static int create_crc(const char *arg, struct pbr_create_opts *o)
{
	uint64_t v;

	o->crc_limit = 0;
	if (!strcmp(arg, "full"))
		o->crc = PBR_CRC_FULL;
	else if (!strcmp(arg, "none"))
		o->crc = PBR_CRC_NONE;
	else if (cli_u64(arg, 0, UINT32_MAX, &v)) {
		o->crc = PBR_CRC_UPTO;
		o->crc_limit = (uint32_t)v;
	} else
		return cli_usage("create",
				 "--crc: '%s' is not full, none or a byte "
				 "count in 0..4294967295",
				 arg);
	return 0;
}

static int create_opt(int c, const char *arg, struct pbr_create_opts *o)
{
	uint64_t v;

	switch (c) {
	case 's':
		if (!cli_u64(arg, 2, 1u << 24, &v) || (v & (v - 1)))
			return cli_usage("create",
					 "--slots: '%s' is not a power of two "
					 "in 2..16777216",
					 arg);
		o->slot_count = (uint32_t)v;
		return 0;
	case 'z':
		if (!cli_u64(arg, 128, 1u << 30, &v) || v % 128)
			return cli_usage("create",
					 "--slot-size: '%s' is not a multiple "
					 "of 128 in 128..1073741824",
					 arg);
		o->slot_size = (uint32_t)v;
		return 0;
	case 'm':
		if (!cli_mode(arg, &o->mode))
			return cli_usage("create",
					 "--mode: '%s' is not an octal mode "
					 "without world-write",
					 arg);
		return 0;
	case 'p':
	case 'r':
		if (!cli_u64(arg, 1, PBR_PARTICIPANTS_MAX, &v))
			return cli_usage(
				"create", "--%s: '%s' is not in 1..1024",
				c == 'p' ? "producers" : "readers", arg);
		*(c == 'p' ? &o->max_producers : &o->max_readers) = (uint32_t)v;
		return 0;
	case '1':
		o->flags |= PBR_CREATE_SINGLE_PRODUCER;
		return 0;
	case 'D':
		o->flags |= PBR_CREATE_DURABLE_READERS;
		return 0;
	case 'c':
		return create_crc(arg, o);
	}
	return cli_usage("create", "unknown option");
}

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {{"slots", 1, 0, 's'},
					     {"slot-size", 1, 0, 'z'},
					     {"schema", 1, 0, 'S'},
					     {"type", 1, 0, 'T'},
					     {"mode", 1, 0, 'm'},
					     {"producers", 1, 0, 'p'},
					     {"readers", 1, 0, 'r'},
					     {"single-producer", 0, 0, '1'},
					     {"durable-readers", 0, 0, 'D'},
					     {"crc", 1, 0, 'c'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	struct create_schema_args sa = {"demo", NULL, NULL, 0};
	struct pbr_create_opts o;
	struct pbr_ring *ring;
	uint8_t *bytes = NULL;
	int c, rc;

	memset(&o, 0, sizeof(o));
	sa.dirs = calloc((size_t)argc + 1, sizeof(*sa.dirs));
	if (!sa.dirs)
		return EXIT_RUNTIME;
	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":hI:", opts, NULL)) != -1) {
		rc = 0;
		if (c == 'h') {
			fputs(create_help, stdout);
			goto out;
		}
		if (c == '?' || c == ':')
			rc = cli_bad_option("create", argv, c);
		else if (c == 'S')
			sa.schema = optarg;
		else if (c == 'T')
			sa.type = optarg;
		else if (c == 'I')
			sa.dirs[sa.ndirs++] = optarg;
		else
			rc = create_opt(c, optarg, &o);
		if (rc)
			goto out;
	}
	rc = EXIT_USAGE;
	if (optind != argc - 1) {
		cli_usage("create", "expects exactly one RING");
		goto out;
	}
	if ((o.flags & PBR_CREATE_SINGLE_PRODUCER) && o.max_producers > 1) {
		cli_usage("create",
			  "--single-producer allows one producer, not "
			  "--producers %u",
			  o.max_producers);
		goto out;
	}
	if (pbr_name_check(argv[optind])) {
		cli_usage("create",
			  "invalid ring name '%s' (use 1-63 of [A-Za-z0-9_.-])",
			  argv[optind]);
		goto out;
	}
	if ((rc = create_schema(&sa, &o, &bytes)))
		goto out;
	rc = pbr_ring_create(argv[optind], &o, &ring);
	if (rc) {
		rc = cli_err(argv[optind], NULL, rc);
		goto out;
	}
	pbr_ring_detach(ring);
out:
	free(bytes);
	free(sa.dirs);
	return rc;
}
