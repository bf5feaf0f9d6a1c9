/* SPDX-License-Identifier: MIT */
/*
 * Regression test for the loss the spin model found (model/README.md,
 * "Findings", 1): a producer that dies while its claimed sequence s waits
 * for space leaves s to be recovered, and recovery without the gating
 * check of FORMAT.md §8.2 turns the slot's previous occupant s - N
 * (committed, not yet read by a gating reader) into ABANDONED(s). The
 * gating reader then finds a later sequence at its cursor, resyncs and
 * never receives the committed messages in between.
 *
 * Steps, on a multi-producer ring of 2 slots with one gating reader:
 *   1. the parent's producer sends seq 0 and 1: the ring is full;
 *   2. two child producers call send; both wait in the claim pre-check
 *      having read claim = 2;
 *   3. the reader releases seq 0; both children pass the pre-check, one
 *      claims 2 (and commits it), the other claims 3, waits for space,
 *      times out and is SIGKILLed with the claim outstanding;
 *   4. pbr_ring_reclaim() reaps the dead producer and recovers seq 3:
 *      slot 1 holds DONE(1), unread, and becomes ABANDONED(3);
 *   5. the reader peeks: expected seq 1, committed.
 *
 * Exit status: 0 if the reader gets seq 1 and 2, 1 if committed messages
 * were lost (the bug), 77 (skipped) if the setup did not happen as planned
 * (no child was left holding seq 3, e.g. on a badly overloaded machine).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pbring.h"

#define MS 1000000ll
#define SKIP 77

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* A child producer: send one message; if it stays waiting for space
 * after its claim, die with the claim outstanding. */
static void child(const char *name, int ready_fd)
{
	struct pbr_producer *p;
	struct pbr_ring *r;
	int rc;

	if (pbr_ring_attach(name, NULL, &r) || pbr_producer_open(r, NULL, &p))
		_exit(3);
	if (write(ready_fd, "x", 1) != 1)
		_exit(3);
	rc = pbr_producer_send(p, "child", 5, 0, 400 * MS);
	if (rc == -ETIMEDOUT)
		raise(SIGKILL); /* dies holding its claimed sequence */
	(void)pbr_producer_close(p);
	pbr_ring_detach(r);
	_exit(rc ? 4 : 0);
}

static int fork_child(const char *name, int ready_fd)
{
	pid_t pid = fork();

	if (pid == 0)
		child(name, ready_fd);
	return pid;
}

static int run(const char *name, struct pbr_ring *r)
{
	struct pbr_reader_stats st;
	struct pbr_producer *p0;
	struct pbr_reader *rd;
	struct pbr_view v;
	int fds[2], status, killed = 0, i, rc;
	char c;

	if (pbr_reader_open(r, NULL, &rd) || pbr_producer_open(r, NULL, &p0) ||
	    pbr_producer_send(p0, "m0", 2, 0, 0) ||
	    pbr_producer_send(p0, "m1", 2, 0, 0) || pipe(fds))
		return SKIP;
	for (i = 0; i < 2; i++)
		if (fork_child(name, fds[1]) < 0 || read(fds[0], &c, 1) != 1)
			return SKIP;
	sleep_ms(100); /* both children wait in the pre-check */
	if (pbr_reader_peek(rd, 0, &v) || v.seq != 0 ||
	    pbr_reader_release(rd, &v))
		return SKIP;
	for (i = 0; i < 2; i++) {
		if (wait(&status) < 0)
			return SKIP;
		killed += WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
	}
	if (killed != 1) {
		printf("setup: %d children died holding a claim\n", killed);
		return SKIP;
	}
	printf("reclaimed %d entries\n", pbr_ring_reclaim(r));
	for (i = 0; i < 4; i++) {
		rc = pbr_reader_peek(rd, 0, &v);
		if (rc == -EAGAIN)
			break;
		if (rc)
			continue;
		printf("delivered seq %llu\n", (unsigned long long)v.seq);
		if (pbr_reader_release(rd, &v))
			printf("release of seq %llu: stale\n",
			       (unsigned long long)v.seq);
	}
	pbr_reader_stats(rd, &st);
	printf("gating reader: delivered %llu, lost %llu, abandoned %llu\n",
	       (unsigned long long)st.delivered, (unsigned long long)st.lost,
	       (unsigned long long)st.abandoned);
	(void)pbr_producer_close(p0);
	pbr_reader_close(rd);
	/* m0 was read before; m1 and the child's message must follow. */
	return st.delivered == 3 ? 0 : 1;
}

int main(void)
{
	struct pbr_create_opts o = {.slot_count = 2, .slot_size = 128};
	struct pbr_ring *r;
	char name[64];
	int rc;

	snprintf(name, sizeof(name), "repro-%ld", (long)getpid());
	if (pbr_ring_create(name, &o, &r)) {
		perror("create");
		return SKIP;
	}
	rc = run(name, r);
	pbr_ring_detach(r);
	(void)pbr_ring_unlink(name);
	printf("%s\n", rc == 0 ? "OK: no committed message lost"
		       : rc == 1
			       ? "BUG: a gating reader lost committed messages"
			       : "setup did not happen as planned: skipped");
	return rc;
}
