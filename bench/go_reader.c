/* SPDX-License-Identifier: MIT */
/*
 * --reader go: the echo side of a ping-pong run played by pbring-bench-go
 * (go/cmd/pbring-bench-go), a Go process using the Go module as a user
 * would. The role's own process starts it (pinned like the role: the
 * affinity survives exec), waits for "ready" (both ends open), passes the
 * barrier, and at the end adds the Go side's one-way samples to the
 * role's histogram: the same histogram code as every other transport.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

const char *bench_go_bin;

static int read_full(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t k = read(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k ? -errno : -EPIPE;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static pid_t start(char *const argv[], int *out)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return -errno;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fds[1], STDOUT_FILENO);
		execv(argv[0], argv);
		fprintf(stderr, "pbring-bench: %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	*out = fds[0];
	return pid;
}

/* The samples block: count, end time, count samples. */
static int collect(int fd, struct role_out *o)
{
	uint64_t head[2], buf[512];
	uint64_t left;
	int rc = read_full(fd, head, sizeof(head));

	if (rc)
		return rc;
	for (left = head[0]; left;) {
		size_t n = left < 512 ? (size_t)left : 512, i;

		if ((rc = read_full(fd, buf, n * sizeof(buf[0]))))
			return rc;
		for (i = 0; i < n; i++)
			hist_add(&o->h, buf[i]);
		left -= n;
	}
	o->t_end = head[1];
	return 0;
}

int go_echo(struct shared_area *sa, struct chan *in, struct chan *out,
	    uint64_t warm)
{
	char wbuf[24], ready[6];
	char *argv[] = {(char *)bench_go_bin,
			"echo",
			(char *)in->x->go_kind,
			(char *)pbring_chan_ring(in),
			(char *)pbring_chan_ring(out),
			wbuf,
			in->mode == MODE_SPIN ? "spin" : "block",
			NULL};
	int fd = -1, st, rc;
	pid_t pid;

	snprintf(wbuf, sizeof(wbuf), "%llu", (unsigned long long)warm);
	if (!bench_go_bin)
		return role_fail(sa, 1, -ENOENT, "no pbring-bench-go");
	pid = start(argv, &fd);
	if (pid < 0)
		return role_fail(sa, 1, pid, "start pbring-bench-go");
	rc = read_full(fd, ready, sizeof(ready));
	if (!rc && memcmp(ready, "ready\n", 6))
		rc = -EPROTO;
	if (!rc) {
		barrier_wait(sa, 2);
		rc = collect(fd, &sa->out[1]);
	}
	close(fd);
	if (rc)
		kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!rc && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
		rc = -EIO;
	if (rc)
		return role_fail(sa, 1, rc, "pbring-bench-go echo");
	sa->out[1].count = sa->out[1].h.count + warm;
	return 0;
}
