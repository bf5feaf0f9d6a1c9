/* SPDX-License-Identifier: MIT */
/*
 * Kernel baselines: pipe, UNIX domain socket (stream, seqpacket), POSIX
 * message queue. Each copies every message into the kernel and out
 * again, which is what pbring exists to avoid; they are tuned only so
 * that one message fits in the kernel buffer (pipe size, SO_SNDBUF).
 *
 * One pipe or socket pair per (producer, reader): fan-out writes each
 * message to every reader's channel, fan-in polls the producers'
 * channels. Message queues are one queue per reader that every
 * producer writes to.
 */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define FD_MAXP 2
#define FD_MAXR 3

enum fd_kind { FD_PIPE, FD_STREAM, FD_SEQPACKET, FD_MQ };

struct fd_shared {
	enum fd_kind kind;
	int rfd[FD_MAXP][FD_MAXR], wfd[FD_MAXP][FD_MAXR];
	mqd_t mq[FD_MAXR];
	char mq_name[FD_MAXR][48];
};

struct fd_local {
	enum role role;
	unsigned idx;
	unsigned next; /* fan-in: producer to poll first */
	uint8_t *buf;
};

static long read_long(const char *path, long dflt)
{
	FILE *f = fopen(path, "r");
	long v = dflt;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

static const char *fd_unsupported(const struct chan *c)
{
	if (c->nprod > FD_MAXP || c->nread > FD_MAXR)
		return "topology too wide";
	return NULL;
}

static const char *mq_unsupported(const struct chan *c)
{
	static char why[96];
	long max = read_long("/proc/sys/fs/mqueue/msgsize_max", 8192);

	if (c->msg_bytes > max) {
		snprintf(why, sizeof(why),
			 "message larger than /proc/sys/fs/mqueue/msgsize_max "
			 "(%ld)",
			 max);
		return why;
	}
	return fd_unsupported(c);
}

/* Room for at least one whole message (two for sockets, whose
 * accounting includes overhead) in the kernel buffer. */
static void tune(enum fd_kind k, int w, int r, uint32_t msg)
{
	long pmax = read_long("/proc/sys/fs/pipe-max-size", 1048576);
	int sz = 65536;

	if (k == FD_PIPE) {
		while (sz < (int)msg && sz < pmax)
			sz <<= 1;
		(void)fcntl(w, F_SETPIPE_SZ, sz);
		return;
	}
	sz = (int)msg * 2 + 65536;
	(void)setsockopt(w, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	(void)setsockopt(r, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

static int make_pair(enum fd_kind k, int *r, int *w, uint32_t msg)
{
	int fds[2], rc;

	if (k == FD_PIPE)
		rc = pipe2(fds, O_CLOEXEC);
	else
		rc = socketpair(
			AF_UNIX,
			(k == FD_STREAM ? SOCK_STREAM : SOCK_SEQPACKET) |
				SOCK_CLOEXEC,
			0, fds);
	if (rc)
		return -errno;
	*r = fds[0];
	*w = fds[1];
	tune(k, *w, *r, msg);
	return 0;
}

static int make_mq(struct fd_shared *s, const struct chan *c, unsigned j)
{
	struct mq_attr a = {0};
	long maxmsg = read_long("/proc/sys/fs/mqueue/msg_max", 10);

	a.mq_maxmsg = maxmsg < 64 ? maxmsg : 64;
	a.mq_msgsize = c->msg_bytes;
	snprintf(s->mq_name[j], sizeof(s->mq_name[j]), "/pbrbench.%u.%u.%u",
		 bench_run_id, c->id, j);
	(void)mq_unlink(s->mq_name[j]);
	s->mq[j] = mq_open(s->mq_name[j], O_RDWR | O_CREAT | O_EXCL, 0600, &a);
	return s->mq[j] == (mqd_t)-1 ? -errno : 0;
}

static void fd_init(struct fd_shared *s, enum fd_kind k)
{
	memset(s, 0xff, sizeof(*s)); /* every fd -1 */
	memset(s->mq_name, 0, sizeof(s->mq_name));
	s->kind = k;
}

static int fd_prepare_kind(struct chan *c, enum fd_kind k)
{
	struct fd_shared *s = malloc(sizeof(*s));
	unsigned p, j;
	int rc = 0;

	if (!s)
		return -ENOMEM;
	fd_init(s, k);
	c->shared = s;
	for (j = 0; j < c->nread && !rc; j++) {
		if (k == FD_MQ) {
			rc = make_mq(s, c, j);
			continue;
		}
		for (p = 0; p < c->nprod && !rc; p++)
			rc = make_pair(k, &s->rfd[p][j], &s->wfd[p][j],
				       c->msg_bytes);
	}
	return rc;
}

static void fd_cleanup(struct chan *c)
{
	struct fd_shared *s = c->shared;
	unsigned p, j;

	if (!s)
		return;
	for (j = 0; j < FD_MAXR; j++) {
		for (p = 0; p < FD_MAXP; p++) {
			if (s->rfd[p][j] >= 0)
				close(s->rfd[p][j]);
			if (s->wfd[p][j] >= 0)
				close(s->wfd[p][j]);
		}
		if (s->mq_name[j][0]) {
			mq_close(s->mq[j]);
			mq_unlink(s->mq_name[j]);
		}
	}
	free(s);
	c->shared = NULL;
}

static int fd_open(struct chan *c, enum role role, unsigned idx)
{
	struct fd_local *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->role = role;
	l->idx = idx;
	l->buf = role == ROLE_PROD ? payload_new(c->msg_bytes)
				   : malloc(c->msg_bytes);
	c->local = l;
	return l->buf ? 0 : -ENOMEM;
}

static void fd_close(struct chan *c)
{
	struct fd_local *l = c->local;

	if (l) {
		free(l->buf);
		free(l);
	}
	c->local = NULL;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	ssize_t r;

	while (n) {
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? -errno : -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_one(struct fd_shared *s, unsigned p, unsigned j,
		    const uint8_t *buf, uint32_t n)
{
	ssize_t w;

	switch (s->kind) {
	case FD_MQ:
		return mq_send(s->mq[j], (const char *)buf, n, 0) ? -errno : 0;
	case FD_SEQPACKET:
		w = send(s->wfd[p][j], buf, n, 0);
		return w == (ssize_t)n ? 0 : (w < 0 ? -errno : -EMSGSIZE);
	default:
		return write_all(s->wfd[p][j], buf, n);
	}
}

static int fd_send(struct chan *c, const struct msg *m)
{
	struct fd_shared *s = c->shared;
	struct fd_local *l = c->local;
	unsigned j;
	int rc;

	memcpy(l->buf, m, sizeof(*m));
	for (j = 0; j < c->nread; j++) {
		rc = send_one(s, l->idx, j, l->buf, c->msg_bytes);
		if (rc)
			return rc;
	}
	return 0;
}

/* Fan-in: which producer's channel has a message (round robin). */
static int pick_producer(struct chan *c, struct fd_local *l, unsigned *p)
{
	struct fd_shared *s = c->shared;
	struct pollfd pf[FD_MAXP];
	unsigned k, i;

	for (k = 0; k < c->nprod; k++) {
		pf[k].fd = s->rfd[k][l->idx];
		pf[k].events = POLLIN;
	}
	while (poll(pf, c->nprod, -1) < 0)
		if (errno != EINTR)
			return -errno;
	for (i = 0; i < c->nprod; i++) {
		k = (l->next + i) % c->nprod;
		if (pf[k].revents) {
			*p = k;
			l->next = k + 1;
			return 0;
		}
	}
	return -EIO;
}

static int recv_one(struct chan *c, struct fd_local *l)
{
	struct fd_shared *s = c->shared;
	unsigned p = 0;
	ssize_t r;
	int rc;

	if (s->kind == FD_MQ) {
		r = mq_receive(s->mq[l->idx], (char *)l->buf, c->msg_bytes,
			       NULL);
		return r == (ssize_t)c->msg_bytes ? 0 : (r < 0 ? -errno : -EIO);
	}
	if (c->nprod > 1 && (rc = pick_producer(c, l, &p)))
		return rc;
	if (s->kind == FD_SEQPACKET) {
		r = recv(s->rfd[p][l->idx], l->buf, c->msg_bytes, 0);
		return r == (ssize_t)c->msg_bytes ? 0 : (r < 0 ? -errno : -EIO);
	}
	return read_full(s->rfd[p][l->idx], l->buf, c->msg_bytes);
}

static int fd_recv(struct chan *c, struct msg *m)
{
	struct fd_local *l = c->local;
	int rc;

	do
		rc = recv_one(c, l);
	while (rc == -EINTR);
	if (!rc)
		memcpy(m, l->buf, sizeof(*m));
	return rc;
}

static int pipe_prepare(struct chan *c)
{
	return fd_prepare_kind(c, FD_PIPE);
}

static int stream_prepare(struct chan *c)
{
	return fd_prepare_kind(c, FD_STREAM);
}

static int seqpacket_prepare(struct chan *c)
{
	return fd_prepare_kind(c, FD_SEQPACKET);
}

static int mq_prepare(struct chan *c)
{
	return fd_prepare_kind(c, FD_MQ);
}

#define FD_XPORT(nm, prep, unsup)                                              \
	{                                                                      \
		.name = nm, .modes = 1u << MODE_BLOCK, .fanout = true,         \
		.throughput = true, .unsupported = unsup, .prepare = prep,     \
		.open = fd_open, .send = fd_send, .recv = fd_recv,             \
		.close = fd_close, .cleanup = fd_cleanup,                      \
	}

const struct xport xport_pipe = FD_XPORT("pipe", pipe_prepare, fd_unsupported);
const struct xport xport_unix =
	FD_XPORT("unix", stream_prepare, fd_unsupported);
const struct xport xport_seqpacket =
	FD_XPORT("unix-seqpacket", seqpacket_prepare, fd_unsupported);
const struct xport xport_mqueue =
	FD_XPORT("mqueue", mq_prepare, mq_unsupported);
