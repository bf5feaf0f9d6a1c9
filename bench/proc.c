/* SPDX-License-Identifier: MIT */
/*
 * Processes: one per role, forked (not exec'd) so that they inherit the
 * transports prepared by the parent, each pinned to its CPU before it
 * touches anything, started together by a barrier in shared memory.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

void *shm_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

void shm_anon_free(void *p, size_t len)
{
	if (p)
		munmap(p, len);
}

uint8_t *payload_new(uint32_t n)
{
	uint8_t *p = malloc(n ? n : 1);
	uint32_t i;

	if (p)
		for (i = 0; i < n; i++)
			p[i] = demo_blob_byte(i);
	return p;
}

int pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

int role_fail(struct shared_area *sa, unsigned role, int err, const char *what)
{
	struct role_out *o = &sa->out[role];

	o->err = err < 0 ? err : -EIO;
	snprintf(o->why, sizeof(o->why), "%s: %s", what, strerror(-o->err));
	return o->err;
}

/*
 * All roles arrive, the last one stamps the start time. Waiting yields:
 * roles that share a CPU must let each other run to arrive at all.
 */
void barrier_wait(struct shared_area *sa, unsigned n)
{
	if (__atomic_add_fetch(&sa->arrived, 1, __ATOMIC_ACQ_REL) == (int)n) {
		__atomic_store_n(&sa->go_ns, bench_now_ns(), __ATOMIC_RELEASE);
		return;
	}
	while (!__atomic_load_n(&sa->go_ns, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void child(const struct proc_plan *pl, struct shared_area *sa,
		  unsigned role, pid_t parent)
{
	int rc;

	/* Die with the parent (killed, or interrupted: its handler cleans
	 * up and re-raises), rather than run on alone; and not through the
	 * parent's handlers, whose clean-up is the parent's to do. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(1);
	rc = pin_cpu(pl->cpu[role]);

	if (rc) {
		role_fail(sa, role, rc, "sched_setaffinity");
		_exit(1);
	}
	rc = pl->fn(sa, role, pl->arg);
	_exit(rc ? 1 : 0);
}

static void kill_all(const pid_t *pid, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (pid[i] > 0)
			kill(pid[i], SIGKILL);
}

/* Has child i finished? 1 yes (st filled), 0 not yet. Only our own
 * pids are waited for: the iox-roudi daemon is a child too. */
static int finished(pid_t p, int *st)
{
	pid_t r;

	do
		r = waitpid(p, st, WNOHANG);
	while (r < 0 && errno == EINTR);
	return r == p || r < 0;
}

/*
 * Sleep until a child exits (SIGCHLD, blocked so that it queues) or the
 * deadline passes. The parent must not poll: it shares the two CPUs with
 * the children, and every wake-up would show in their tail latencies.
 */
static void sleep_for_child(uint64_t deadline)
{
	uint64_t now = bench_now_ns(), left;
	struct timespec ts;
	sigset_t set;

	left = deadline > now ? deadline - now : 1000000;
	if (left > 1000000000ull)
		left = 1000000000ull; /* recheck each second regardless */
	ts.tv_sec = (time_t)(left / 1000000000ull);
	ts.tv_nsec = (long)(left % 1000000000ull);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	(void)sigtimedwait(&set, NULL, &ts);
}

/* Reap the children; on the first failure or at the deadline kill the
 * rest, since a peer that is gone leaves the others waiting forever. */
static int reap(const struct proc_plan *pl, pid_t *pid, struct shared_area *sa)
{
	uint64_t deadline =
		bench_now_ns() + (uint64_t)pl->timeout_s * 1000000000ull;
	unsigned left = pl->n, i;
	int st, rc = 0;

	while (left) {
		for (i = 0; i < pl->n; i++) {
			if (pid[i] <= 0 || !finished(pid[i], &st))
				continue;
			pid[i] = 0;
			left--;
			if ((!WIFEXITED(st) || WEXITSTATUS(st)) && !rc) {
				rc = sa->out[i].err ? sa->out[i].err : -ECHILD;
				kill_all(pid, pl->n);
			}
		}
		if (left && bench_now_ns() > deadline && !rc) {
			rc = -ETIMEDOUT;
			kill_all(pid, pl->n);
		}
		if (left)
			sleep_for_child(deadline);
	}
	return rc;
}

int proc_run(const struct proc_plan *pl, struct shared_area *sa)
{
	pid_t pid[MAX_ROLES] = {0}, self = getpid();
	sigset_t set, old;
	unsigned i;
	int rc;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);
	fflush(NULL); /* children must not flush the parent's buffers */
	for (i = 0; i < pl->n; i++) {
		pid[i] = fork();
		if (pid[i] < 0) {
			int err = -errno;

			kill_all(pid, i);
			while (i--)
				waitpid(pid[i], NULL, 0);
			sigprocmask(SIG_SETMASK, &old, NULL);
			return err;
		}
		if (pid[i] == 0) {
			sigprocmask(SIG_SETMASK, &old, NULL);
			child(pl, sa, i, self);
		}
	}
	rc = reap(pl, pid, sa);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}
