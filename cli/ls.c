/* SPDX-License-Identifier: MIT */
/* `pbring ls`: list the rings on this host. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char ls_help[] =
	"usage: pbring ls\n"
	"List the rings in " PBR_SHM_DIR " with their type and geometry.\n";

static void ls_one(const char *name)
{
	struct pbr_ring_info info;
	struct pbr_ring *ring;
	int rc = pbr_ring_attach(name, NULL, &ring);

	if (rc) {
		printf("%-24s  (%s)\n", name, pbr_strerror(rc));
		return;
	}
	pbr_ring_info(ring, &info);
	printf("%-24s  %6u x %-7u  %-32s  %" PRIu64 " B\n", name,
	       info.slot_count, info.slot_size,
	       info.msg_type[0] ? info.msg_type : "(raw bytes)",
	       info.total_size);
	pbr_ring_detach(ring);
}

int cmd_ls(int argc, char **argv)
{
	struct dirent *d;
	DIR *dir;

	if (argc > 1 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(ls_help, stdout);
		return 0;
	}
	if (argc > 1)
		return cli_usage("ls", "takes no arguments");
	dir = opendir(PBR_SHM_DIR);
	if (!dir)
		return cli_err(NULL, PBR_SHM_DIR, -errno);
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, PBR_NAME_PREFIX,
			     strlen(PBR_NAME_PREFIX)))
			ls_one(d->d_name + strlen(PBR_NAME_PREFIX));
	closedir(dir);
	return 0;
}
