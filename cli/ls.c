/* SPDX-License-Identifier: MIT */
/* `pbring ls`: list the rings on this host. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char ls_help[] =
	"usage: pbring ls\n"
	"List the rings in " PBR_SHM_DIR ", sorted by name, under a header:\n"
	"NAME, SLOTS (slot count x slot size in bytes), TYPE (the message\n"
	"type, or (raw bytes)) and SIZE (the segment's bytes). A ring that\n"
	"cannot be read shows the reason in parentheses instead.\n";

/* One line of the listing: rows are collected first, as the column widths
 * come from the longest name and type. */
struct ls_row {
	char name[PBR_NAME_MAX + 1];
	char type[PBR_MSG_TYPE_MAX + 1];
	int err; /* attach failed: the row is the reason */
	uint32_t slot_count, slot_size;
	uint64_t total_size;
};

struct ls_widths {
	int name, count, size, type, total;
};

static void ls_read(struct ls_row *row, const char *name)
{
	struct pbr_ring_info info;
	struct pbr_ring *ring;

	memset(row, 0, sizeof(*row));
	snprintf(row->name, sizeof(row->name), "%s", name);
	row->err = pbr_ring_attach(name, NULL, &ring);
	if (row->err)
		return;
	pbr_ring_info(ring, &info);
	snprintf(row->type, sizeof(row->type), "%s",
		 info.msg_type[0] ? info.msg_type : "(raw bytes)");
	row->slot_count = info.slot_count;
	row->slot_size = info.slot_size;
	row->total_size = info.total_size;
	pbr_ring_detach(ring);
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ls_row *)a)->name,
		      ((const struct ls_row *)b)->name);
}

/* The rings in PBR_SHM_DIR, sorted: 0 with *rows (free it) and *n set, or
 * -errno. A ring removed while we look is left out. */
static int ls_collect(struct ls_row **rows, size_t *n)
{
	const size_t plen = strlen(PBR_NAME_PREFIX);
	size_t cap = 0;
	struct dirent *d;
	DIR *dir = opendir(PBR_SHM_DIR);

	*rows = NULL;
	*n = 0;
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (strncmp(d->d_name, PBR_NAME_PREFIX, plen))
			continue;
		if (*n == cap) {
			struct ls_row *more;

			cap = cap ? 2 * cap : 16;
			more = realloc(*rows, cap * sizeof(**rows));
			if (!more) {
				closedir(dir);
				return -ENOMEM;
			}
			*rows = more;
		}
		ls_read(&(*rows)[*n], d->d_name + plen);
		if ((*rows)[*n].err != -ENOENT)
			(*n)++;
	}
	closedir(dir);
	if (*n)
		qsort(*rows, *n, sizeof(**rows), row_cmp);
	return 0;
}

static int max_int(int a, int b)
{
	return a > b ? a : b;
}

static struct ls_widths ls_measure(const struct ls_row *rows, size_t n)
{
	struct ls_widths w = {4, 1, 1, 4, 4}; /* "NAME", "TYPE", "SIZE" */
	char buf[32];
	size_t i;

	for (i = 0; i < n; i++) {
		w.name = max_int(w.name, (int)strlen(rows[i].name));
		if (rows[i].err)
			continue;
		w.count =
			max_int(w.count, snprintf(buf, sizeof(buf), "%" PRIu32,
						  rows[i].slot_count));
		w.size = max_int(w.size, snprintf(buf, sizeof(buf), "%" PRIu32,
						  rows[i].slot_size));
		w.type = max_int(w.type, (int)strlen(rows[i].type));
		w.total = max_int(w.total,
				  snprintf(buf, sizeof(buf), "%" PRIu64 " B",
					   rows[i].total_size));
	}
	/* "SLOTS" heads "count x size". */
	w.size = max_int(w.size, 5 - 3 - w.count);
	return w;
}

static void ls_print(const struct ls_row *rows, size_t n)
{
	struct ls_widths w = ls_measure(rows, n);
	int geo = w.count + 3 + w.size;
	size_t i;

	printf("%-*s  %-*s  %-*s  %*s\n", w.name, "NAME", geo, "SLOTS", w.type,
	       "TYPE", w.total, "SIZE");
	for (i = 0; i < n; i++) {
		const struct ls_row *r = &rows[i];

		if (r->err) {
			printf("%-*s  (%s)\n", w.name, r->name,
			       pbr_strerror(r->err));
			continue;
		}
		printf("%-*s  %*" PRIu32 " x %-*" PRIu32 "  %-*s  %*" PRIu64
		       " B\n",
		       w.name, r->name, w.count, r->slot_count, w.size,
		       r->slot_size, w.type, r->type, w.total - 2,
		       r->total_size);
	}
}

int cmd_ls(int argc, char **argv)
{
	struct ls_row *rows;
	size_t n;
	int rc;

	if (argc > 1 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(ls_help, stdout);
		return 0;
	}
	if (argc > 1)
		return cli_usage("ls", "takes no arguments");
	rc = ls_collect(&rows, &n);
	if (rc) {
		free(rows);
		return cli_err(NULL, PBR_SHM_DIR, rc);
	}
	ls_print(rows, n);
	free(rows);
	return 0;
}
