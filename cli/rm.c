/* SPDX-License-Identifier: MIT */
/* `pbring rm`: remove rings. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char rm_help[] =
	"usage: pbring rm RING...\n"
	"Remove rings. Processes that have one mapped keep using it.\n";

int cmd_rm(int argc, char **argv)
{
	int i, rc, status = 0;

	if (argc < 2)
		return cli_usage("rm", "expects at least one RING");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(rm_help, stdout);
			return 0;
		}
	}
	for (i = 1; i < argc; i++) {
		rc = pbr_ring_unlink(argv[i]);
		if (rc == -EINVAL)
			return cli_usage("rm", "invalid ring name '%s'",
					 argv[i]);
		if (rc)
			status = cli_err(argv[i], NULL, rc);
	}
	return status;
}
