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

static const char create_help[] =
	"usage: pbring create RING [options]\n"
	"Create a ring (fails if it exists; remove it first with 'pbring "
	"rm').\n"
	"  --slots N          slots, a power of two (default 1024)\n"
	"  --slot-size BYTES  bytes per slot incl. 64-byte header, multiple of "
	"128\n"
	"                     (default 1024)\n"
	"  --schema NAME      message schema stored in the ring: demo "
	"(default),\n"
	"                     or none for an untyped raw-bytes ring\n"
	"  --mode OCTAL       permissions (default 0600; never "
	"world-writable)\n"
	"  --producers N      producer entries (default 8)\n"
	"  --readers N        reader entries (default 8)\n"
	"  --single-producer  one producer only, no atomic RMW per message\n";

static int create_schema(const char *name, struct pbr_create_opts *o)
{
	if (!strcmp(name, "none")) {
		o->msg_type = NULL;
		o->schema = NULL;
		o->schema_len = 0;
		o->schema_hash = 0;
		return 0;
	}
	if (strcmp(name, "demo"))
		return -1;
	o->msg_type = PBR_DEMO_MSG_TYPE;
	pbr_demo_schema(&o->schema, &o->schema_len);
	o->schema_hash = pbr_schema_hash(o->schema, o->schema_len);
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
	case 'S':
		if (create_schema(arg, o))
			return cli_usage(
				"create",
				"--schema: unknown schema '%s' (demo or none)",
				arg);
		return 0;
	}
	return cli_usage("create", "unknown option");
}

int cmd_create(int argc, char **argv)
{
	static const struct option opts[] = {{"slots", 1, 0, 's'},
					     {"slot-size", 1, 0, 'z'},
					     {"schema", 1, 0, 'S'},
					     {"mode", 1, 0, 'm'},
					     {"producers", 1, 0, 'p'},
					     {"readers", 1, 0, 'r'},
					     {"single-producer", 0, 0, '1'},
					     {"help", 0, 0, 'h'},
					     {0, 0, 0, 0}};
	struct pbr_create_opts o;
	struct pbr_ring *ring;
	int c, rc;

	memset(&o, 0, sizeof(o));
	create_schema("demo", &o);
	opterr = 0; /* cli_bad_option() says it in one line */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(create_help, stdout);
			return 0;
		}
		if (c == '?' || c == ':')
			return cli_bad_option("create", argv, c);
		if ((rc = create_opt(c, optarg, &o)))
			return rc;
	}
	if (optind != argc - 1)
		return cli_usage("create", "expects exactly one RING");
	if ((o.flags & PBR_CREATE_SINGLE_PRODUCER) && o.max_producers > 1)
		return cli_usage("create",
				 "--single-producer allows one producer, not "
				 "--producers %u",
				 o.max_producers);
	rc = pbr_ring_create(argv[optind], &o, &ring);
	if (rc == -EINVAL && pbr_name_check(argv[optind]))
		return cli_usage(
			"create",
			"invalid ring name '%s' (use 1-63 of [A-Za-z0-9_.-])",
			argv[optind]);
	if (rc)
		return cli_err(argv[optind], NULL, rc);
	pbr_ring_detach(ring);
	return 0;
}
