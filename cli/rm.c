/* SPDX-License-Identifier: MIT */
/*
 * `pbring rm`: remove rings. A ring with live participants is kept unless
 * --force: removing it strands them (nobody new can attach), so say who
 * they are. With --force they notice within about 100 ms of waiting and
 * stop with "ring was removed while in use".
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char rm_help[] =
	"usage: pbring rm [--force] RING...\n"
	"       pbring rm RING --reader NAME\n"
	"Remove rings. A ring that live producers or readers still use is "
	"kept,\n"
	"with their pids named, unless --force: they then stop with \"ring "
	"was\n"
	"removed while in use\" the next time they wait (within about 100 "
	"ms).\n"
	"A damaged or foreign ring is removed without looking inside.\n"
	"  --force        remove rings even while they are in use\n"
	"  --reader NAME  do not remove RING: drop its durable reader NAME "
	"(consume\n"
	"                 --durable), which then stops holding producers "
	"back; only\n"
	"                 once it is detached (its process exited or died)\n";

/* --reader NAME: drop durable reader @reader of ring @name. */
static int rm_reader(const char *name, const char *reader)
{
	struct pbr_ring *ring;
	int rc = cli_attach("rm", name, &ring);

	if (rc)
		return rc;
	rc = pbr_ring_drop_reader(ring, reader);
	if (rc == -ENOENT)
		cli_fail(name, "no durable reader %s", reader);
	else if (rc == -EBUSY)
		cli_fail(name,
			 "durable reader %s is in use by a live process; "
			 "not dropped (stop it first)",
			 reader);
	else if (rc == -EOPNOTSUPP)
		cli_fail(name, "ring has no durable readers");
	else if (rc)
		cli_err(name, "drop reader", rc);
	pbr_ring_detach(ring);
	return rc ? EXIT_RUNTIME : 0;
}

#define RM_MAX_LISTED 1024

/* "producer 0 (pid 12), gating reader 1 (pid 34)" for the live ones of
 * @ps into @buf; returns how many were live. */
static int describe_live(const struct pbr_participant *ps, int n, char *buf,
			 size_t len)
{
	size_t used = 0;
	int i, live = 0;

	buf[0] = 0;
	for (i = 0; i < n && used < len; i++) {
		const struct pbr_participant *p = &ps[i];
		const char *kind = !p->is_reader ? "producer"
				   : (p->flags & PBR_READER_LOSSY)
					   ? "lossy reader"
					   : "gating reader";
		int w;

		if (!p->alive)
			continue;
		w = snprintf(buf + used, len - used,
			     "%s%s %" PRIu32 " (pid %" PRIu32 ")",
			     live ? ", " : "", kind, p->index, p->pid);
		used += w > 0 ? (size_t)w : 0;
		live++;
	}
	return live;
}

/* Who still uses ring @name: 0 nobody (or not a ring we can look into),
 * > 0 live participants (described in @buf), -ETIMEDOUT being created. */
static int in_use(const char *name, char *buf, size_t len)
{
	static struct pbr_participant ps[RM_MAX_LISTED];
	/* Only to look: a ring of another user is read, never trusted. */
	struct pbr_attach_opts o = {50LL * 1000 * 1000, PBR_ATTACH_ANY_OWNER};
	struct pbr_ring *ring;
	int n, rc = pbr_ring_attach(name, &o, &ring);

	if (rc == -ETIMEDOUT) {
		snprintf(buf, len, "its creator (still creating it)");
		return rc;
	}
	if (rc)
		return 0; /* missing, damaged or foreign: unlink says */
	n = pbr_ring_participants(ring, ps, RM_MAX_LISTED);
	rc = n > 0 ? describe_live(ps, n < RM_MAX_LISTED ? n : RM_MAX_LISTED,
				   buf, len)
		   : 0;
	pbr_ring_detach(ring);
	return rc;
}

static int rm_one(const char *name, bool force)
{
	char who[2048];
	int rc, users = in_use(name, who, sizeof(who));

	if (users && !force) {
		cli_fail(name,
			 "in use by %s; not removed (stop them first, "
			 "or use --force)",
			 who);
		return EXIT_RUNTIME;
	}
	rc = pbr_ring_unlink(name);
	if (rc)
		return cli_err(name, NULL, rc);
	if (users)
		cli_fail(name,
			 "removed while in use by %s; they stop with "
			 "\"ring was removed while in use\"",
			 who);
	return 0;
}

int cmd_rm(int argc, char **argv)
{
	static const struct option opts[] = {
		{"force", no_argument, NULL, 'f'},
		{"reader", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *reader = NULL;
	bool force = false;
	int c, i, status = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":fhr:", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(rm_help, stdout);
			return 0;
		}
		if (c == 'r' && pbr_reader_name_check(optarg))
			return cli_usage("rm",
					 "--reader: '%s' is not 1..31 bytes of "
					 "[A-Za-z0-9._-]",
					 optarg);
		if (c == 'r')
			reader = optarg;
		else if (c == 'f')
			force = true;
		else
			return cli_bad_option("rm", argv, c);
	}
	if (optind >= argc)
		return cli_usage("rm", "expects at least one RING");
	if (reader && (force || optind != argc - 1))
		return cli_usage("rm", "--reader takes exactly one RING, "
				       "without --force");
	for (i = optind; i < argc; i++)
		if (pbr_name_check(argv[i]))
			return cli_usage("rm", "invalid ring name '%s'",
					 argv[i]);
	if (reader)
		return rm_reader(argv[optind], reader);
	for (i = optind; i < argc; i++)
		if (rm_one(argv[i], force))
			status = EXIT_RUNTIME;
	return status;
}
