/* SPDX-License-Identifier: MIT */
/*
 * iceoryx2 (the Rust crate, through bench/iox2's C ABI) as a baseline:
 * the daemon-less successor of iceoryx classic. The sender loans a slice
 * of msg_bytes, copies the message into it (stamp and sequence first)
 * and sends; the receiver takes the sample, reads those 16 bytes in place
 * and releases it, exactly what pbring-raw and tr_iceoryx.c do. Spin mode
 * polls receive(); block mode sleeps in an iceoryx2 event listener that
 * every send notifies.
 *
 * Lossless like a gating pbring reader: no safe overflow, publishers
 * retry until a full subscriber buffer has room, history 0. Each run
 * gives iceoryx2 its own root directory and shared-memory prefix;
 * cleanup removes both after every case. Without -DPBRING_BENCH_IOX2=ON
 * this file compiles to a stub that says so.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#ifndef PBR_BENCH_ICEORYX2

static const char *iox2_off(const struct chan *c)
{
	(void)c;
	return "built without -DPBRING_BENCH_IOX2=ON (needs cargo)";
}

const struct xport xport_iceoryx2 = {
	.name = "iceoryx2",
	.modes = (1u << MODE_SPIN) | (1u << MODE_BLOCK),
	.unsupported = iox2_off,
};

#else

/* bench/iox2/src/lib.rs */
void *pbr_iox2_open(const char *root, const char *prefix, const char *service,
		    int reader, uint32_t max_bytes, uint32_t nprod,
		    uint32_t nread, int block, int *rc, char *err,
		    size_t errlen);
int pbr_iox2_send(void *h, const uint8_t *buf, size_t len);
int pbr_iox2_take(void *h, uint8_t *out16, const uint8_t *expect,
		  size_t expect_len);
int pbr_iox2_wait(void *h);
void pbr_iox2_close(void *h);

#define IOX2_SHM_DIR "/dev/shm"

struct iox2_local {
	void *h;
	uint8_t *src; /* the payload: sent (producer) or expected (reader) */
};

/* This run's root directory (files) and prefix (shared memory). */
static void iox2_root(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/pbrbench-iox2-%u/", bench_run_id);
}

static void iox2_prefix(char *buf, size_t len)
{
	snprintf(buf, len, "pbrb%u_", bench_run_id);
}

static const char *iox2_unsupported(const struct chan *c)
{
	(void)c;
	return NULL;
}

static int iox2_prepare(struct chan *c)
{
	(void)c;
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		(void)rmdir(path);
	else
		(void)unlink(path);
	return 0;
}

/* The children that used iceoryx2 are gone: remove whatever their nodes
 * left (a node removes its ports' files, not the directories, and a
 * killed one nothing). Every case's services are this run's alone. */
static void iox2_cleanup(struct chan *c)
{
	char root[64], prefix[32];
	struct dirent *d;
	DIR *dir;

	(void)c;
	iox2_root(root, sizeof(root));
	(void)nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	iox2_prefix(prefix, sizeof(prefix));
	dir = opendir(IOX2_SHM_DIR);
	if (!dir)
		return;
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, prefix, strlen(prefix)))
			(void)unlinkat(dirfd(dir), d->d_name, 0);
	closedir(dir);
}

static int iox2_open(struct chan *c, enum role role, unsigned idx)
{
	struct iox2_local *l = calloc(1, sizeof(*l));
	char root[64], prefix[32], service[32], why[200] = "";
	int rc = -EIO;

	(void)idx;
	if (!l)
		return -ENOMEM;
	c->local = l;
	l->src = payload_new(c->msg_bytes);
	if (!l->src)
		return -ENOMEM;
	iox2_root(root, sizeof(root));
	iox2_prefix(prefix, sizeof(prefix));
	snprintf(service, sizeof(service), "c%u", c->id);
	l->h = pbr_iox2_open(root, prefix, service, role == ROLE_READ,
			     c->msg_bytes, c->nprod, c->nread,
			     c->mode == MODE_BLOCK, &rc, why, sizeof(why));
	if (!l->h) {
		fprintf(stderr, "iceoryx2: open %s: %s\n", service, why);
		return rc;
	}
	return 0;
}

static void iox2_close(struct chan *c)
{
	struct iox2_local *l = c->local;

	if (!l)
		return;
	pbr_iox2_close(l->h);
	free(l->src);
	free(l);
	c->local = NULL;
}

static int iox2_send(struct chan *c, const struct msg *m)
{
	struct iox2_local *l = c->local;
	int rc, tries = 0;

	memcpy(l->src, m, sizeof(*m));
	while ((rc = pbr_iox2_send(l->h, l->src, c->msg_bytes)) == -EAGAIN) {
		if (++tries > 10000000)
			return -ENOBUFS;
		bench_relax(); /* every sample in flight: wait for readers */
	}
	return rc;
}

static int iox2_recv(struct chan *c, struct msg *m)
{
	struct iox2_local *l = c->local;
	const uint8_t *expect = c->verify ? l->src : NULL;
	int rc;

	while (!(
		rc = pbr_iox2_take(l->h, (uint8_t *)m, expect, c->msg_bytes))) {
		if (c->mode == MODE_BLOCK)
			rc = pbr_iox2_wait(l->h);
		else
			bench_relax();
		if (rc)
			return rc;
	}
	return rc < 0 ? rc : 0;
}

const struct xport xport_iceoryx2 = {
	.name = "iceoryx2",
	.modes = (1u << MODE_SPIN) | (1u << MODE_BLOCK),
	.fanout = true,
	.throughput = true,
	.unsupported = iox2_unsupported,
	.prepare = iox2_prepare,
	.open = iox2_open,
	.send = iox2_send,
	.recv = iox2_recv,
	.close = iox2_close,
	.cleanup = iox2_cleanup,
};

#endif /* PBR_BENCH_ICEORYX2 */
