// SPDX-License-Identifier: MIT
/*
 * torture: SIGKILL torture of pbring's protocol across processes.
 *
 *   torture [--quick | --kills N | --seconds S] [--single-producer]
 *           [--producers P] [--gating G] [--witnesses W] [--lossy L]
 *           [--slots N] [--slot-size B] [--seq-base S] [--rate R]
 *           [--seed X] [--keep | --discard] [--dir D]
 *           [--inject lost|dup|torn] [--slow]
 *           [--langs c,go,py] [--go-child PATH] [--py-child PYTHON]
 *           [--py-script PATH]
 *
 * The driver creates a small ring (sequences start just below 2^64, so
 * they wrap early), starts G gating readers (the first W of them, the
 * witnesses, are never killed and never armed) and L lossy readers, waits
 * until they have joined, then starts P producers. Each child is the same
 * executable re-run with a role (or a Go or Python child, see --langs
 * below), so it attaches by name and holds its own liveness locks. Most
 * children are started "armed": PBR_CRASH_AT names a crash point of the
 * library (built with PBRING_CRASH_POINTS) and a passage at which the
 * child SIGKILLs itself. On top of that the driver
 * SIGKILLs a random killable child every few milliseconds. Every death is
 * followed by an immediate restart, and by a measurement of how long the
 * ring takes to deliver again: from the kill (or, for a crash point, from
 * when the driver reaped the child) to the next delivery at witness 0.
 *
 * At the end producers are told to stop, readers to drain, and then:
 *   - every message a producer logged as committed reached every witness
 *     exactly once, in per-producer order (lost L, duplicated U);
 *   - a message in flight when its producer died reached a witness at
 *     most once (the rest are abandoned slots, A in total);
 *   - no reader (witness, killable gating or lossy, in any incarnation)
 *     was handed a torn or never-sent message (torn T), or the same or an
 *     older counter of a producer twice within one incarnation (part of U);
 *   - no process died of anything but our SIGKILL, none exited with an
 *     error (a send or wait that timed out means a stuck ring), the ring
 *     always resumed within the stall bound, and every child exited within
 *     a bound at the end;
 *   - no more slots were abandoned than producers died, every witness
 *     passed over exactly the slots the ring counts as abandoned, and no
 *     reader ended with its cursor past the claim word (it would have
 *     consumed a sequence that nobody claimed).
 *
 * The last line is
 *   kills K, committed C, delivered D, lost L, duplicated U, torn T,
 *   abandoned A, max_resume_ms M
 * (D: deliveries at the witnesses) and the exit status is 0 only if all
 * of the above held. The work directory (logs and delivery streams) is
 * removed, or kept after a failure (--keep: always, --discard: never).
 *
 * Cross-language (--langs LIST, default c): the children follow the
 * contract of torture.h, whatever they are written in. Every process the
 * driver starts (each restart too) picks a language at random from LIST,
 * except the witnesses: witness j is written in the j-th language of LIST
 * (cyclically), so that with as many witnesses as languages every
 * language has a gating reader that must see everything exactly once; all
 * witnesses are checked against the logs, and against each other (the
 * same set of messages per producer). A C child is this executable, a Go
 * child the binary of --go-child (default $PBRING_TORTURE_GO), a Python
 * child PYTHON torture_child.py with PYTHON from --py-child (default
 * $PBRING_TORTURE_PY). Python children use libpbring from
 * $PBRING_TORTURE_PYLIB if set (build it with PBRING_CRASH_POINTS, and
 * crash points apply to them too), else the package's own and are never
 * armed. The line before the last says how many processes ran per
 * language: "langs c N go N py N".
 *
 * --slow: every 0.5 to 2 s, one gating reader other than witness 0 is
 * stopped (SIGSTOP) for 0.3 to 1.5 s, making the producers wait for a
 * reader that is alive but not moving. Resume times measured across a stop
 * are left out of the resume figures (and the stall bound counts from the
 * SIGCONT).
 *
 * --quick is 500 kills (ctest's torture_quick), --kills N and --seconds S
 * bound a soak (whichever comes first). --inject lost|dup|torn makes the
 * producers misbehave on purpose every 97 messages, to show that the
 * checks catch each kind of fault (ctest's torture_catches_*).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "torture.h"
#include "pbring/pb.h"

#define MAX_KIDS (TT_MAX_PROD + TT_MAX_GATING + TT_MAX_LOSSY)
#define MAX_OUT 64	      /* deaths awaiting their resume time */
#define STALL_NS (5 * TU_SEC) /* no delivery this long after a death */
#define EXIT_BOUND_MS 15000   /* children must exit this soon at the end */
#define QUICK_KILLS 500
#define QUICK_CAP_NS (180 * TU_SEC) /* under ctest's TIMEOUT 240 */
#define ARM_PERCENT 60
#define KILL_GAP_MS 40 /* random kills come 0 .. this apart */

#ifndef TT_PY_SCRIPT /* the Python child, set by the build */
#define TT_PY_SCRIPT "tests/crash/torture_child.py"
#endif

static const char *lang_name[TT_NLANGS] = {"c", "go", "py"};

enum { ON_SP = 1, ON_MP = 2, ON_PROD = 3, ON_READER = 4 };

/* Crash points, where they can fire, and the range of passages to pick
 * from: per-message points fire within a few hundred messages, the rare
 * ones (they run only after a death) at their first or second passage. */
static const struct point {
	const char *name;
	unsigned on, max_n;
	unsigned not_in; /* languages (1 << enum tt_lang) it cannot fire in */
} points[] = {
	{"sp_pending", ON_SP, 300, 0},
	{"sp_claimed", ON_SP, 300, 0},
	{"mp_claiming", ON_MP, 300, 0},
	{"mp_claimed", ON_MP, 300, 0},
	{"mp_pending", ON_MP, 300, 0},
	{"busy", ON_PROD, 300, 0},
	/* pbr_producer_send and pbr_producer_send_pb: Python does its own */
	{"write", ON_PROD, 200, 1u << TT_LANG_PY},
	{"encoded", ON_PROD, 100, 1u << TT_LANG_PY},
	{"header", ON_PROD, 300, 0},
	{"committed", ON_PROD, 300, 0},
	{"reap_producer", ON_PROD, 1, 0},
	{"recover", ON_PROD | ON_READER, 2, 0},
	{"reap_reader", ON_PROD | ON_READER, 2, 0},
	{"peeked", ON_READER, 500, 0},
	{"release", ON_READER, 500, 0},
	{"released", ON_READER, 500, 0},
};
#define NPOINTS (int)(sizeof(points) / sizeof(points[0]))

struct child {
	pid_t pid; /* 0: not running */
	enum tt_role role;
	unsigned index, incarnation;
	bool killable;
	int point;	   /* armed with points[point], or -1 */
	enum tt_lang lang; /* of the current (or last) incarnation */
};

struct pending_resume {
	uint64_t t;  /* death time */
	uint64_t h0; /* witness 0's delivery count then */
	bool slowed; /* a reader was stopped meanwhile (--slow) */
};

struct driver {
	struct tt_config cf;
	struct tt_shared *sh;
	struct pbr_ring *ring;
	struct child kids[MAX_KIDS];
	unsigned nkids;
	bool running;
	uint64_t t0, next_kill;
	long kills, random_kills, point_hits[NPOINTS];
	long deaths[3];		     /* per role */
	int arm_turn[ON_READER + 1]; /* next point to arm, per kind */
	unsigned failures;
	struct pending_resume out[MAX_OUT];
	unsigned nout;
	uint64_t max_resume_ns, sum_resume_ns, nresume, nresume_slowed;
	long spawned[TT_NLANGS];
	/* --slow: the stopped reader, when it goes on, the next stop */
	struct child *stopped;
	uint64_t cont_at, next_stop, last_cont;
	long stops;
};

static const char *role_name[] = {"producer", "gating", "lossy"};

static void note_failure(struct driver *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void note_failure(struct driver *d, const char *fmt, ...)
{
	va_list ap;

	d->failures++;
	fprintf(stdout, "FAIL: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* --- options ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: torture [--quick | --kills N | --seconds S] "
		"[--single-producer]\n"
		"  [--producers P] [--gating G] [--witnesses W] [--lossy L]\n"
		"  [--slots N] [--slot-size B] [--seq-base S] [--rate R]\n"
		"  [--seed X] [--keep | --discard] [--dir D]\n"
		"  [--inject lost|dup|torn] [--slow]\n"
		"  [--langs c,go,py] [--go-child PATH] [--py-child PYTHON] "
		"[--py-script PATH]\n");
	exit(2);
}

static void usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "torture: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void defaults(struct tt_config *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->producers = 3;
	cf->gating = 3;
	cf->witnesses = 1;
	cf->lossy = 2;
	cf->slots = 16;
	cf->slot_size = 256;
	cf->seq_base = UINT64_MAX - 1000; /* wraps after 1000 messages */
	cf->rate = 8;
	cf->seed = (unsigned)(tu_now_ns() ^ (uint64_t)getpid());
	snprintf(cf->dir, sizeof(cf->dir), "%s",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	cf->go_child = getenv("PBRING_TORTURE_GO");
	cf->py_child = getenv("PBRING_TORTURE_PY");
	cf->py_lib = getenv("PBRING_TORTURE_PYLIB");
	if (cf->py_lib && !*cf->py_lib)
		cf->py_lib = NULL;
	cf->py_script = TT_PY_SCRIPT;
}

/* How each option's argument is stored into struct tt_config. */
enum opt_kind { O_FLAG, O_LONG, O_UINT, O_U64, O_STR, O_PTR };

static const struct opt {
	struct option lo;
	enum opt_kind kind;
	size_t off, len;
} opts[] = {
#define OPT(name, has, kind, field)                                            \
	{                                                                      \
		{name, has, NULL, 0}, kind, offsetof(struct tt_config, field), \
			sizeof(((struct tt_config *)0)->field)                 \
	}
	OPT("quick", no_argument, O_FLAG, quick),
	OPT("single-producer", no_argument, O_FLAG, single),
	OPT("keep", no_argument, O_FLAG, keep),
	OPT("discard", no_argument, O_FLAG, discard),
	OPT("kills", required_argument, O_LONG, kills),
	OPT("seconds", required_argument, O_LONG, seconds),
	OPT("producers", required_argument, O_UINT, producers),
	OPT("gating", required_argument, O_UINT, gating),
	OPT("witnesses", required_argument, O_UINT, witnesses),
	OPT("lossy", required_argument, O_UINT, lossy),
	OPT("slots", required_argument, O_UINT, slots),
	OPT("slot-size", required_argument, O_UINT, slot_size),
	OPT("rate", required_argument, O_UINT, rate),
	OPT("seed", required_argument, O_UINT, seed),
	OPT("seq-base", required_argument, O_U64, seq_base),
	OPT("dir", required_argument, O_STR, dir),
	OPT("ring", required_argument, O_STR, ring),
	OPT("inject", required_argument, O_PTR, inject),
	OPT("slow", no_argument, O_FLAG, slow),
	OPT("langs", required_argument, O_PTR, langs_arg),
	OPT("go-child", required_argument, O_PTR, go_child),
	OPT("py-child", required_argument, O_PTR, py_child),
	OPT("py-script", required_argument, O_PTR, py_script),
#undef OPT
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static unsigned long long num(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (!*s || *end)
		usage();
	return v;
}

static void set_opt(struct tt_config *cf, const struct opt *o, const char *arg)
{
	char *f = (char *)cf + o->off;

	switch (o->kind) {
	case O_FLAG:
		*(bool *)f = true;
		break;
	case O_LONG:
		*(long *)f = (long)num(arg);
		break;
	case O_UINT:
		*(unsigned *)f = (unsigned)num(arg);
		break;
	case O_U64:
		*(uint64_t *)f = num(arg);
		break;
	case O_STR:
		snprintf(f, o->len, "%s", arg);
		break;
	case O_PTR:
		*(const char **)f = arg;
		break;
	}
}

/* Parse argv into @cf; returns the role after --child, or NULL. */
static const char *parse_args(struct tt_config *cf, int argc, char **argv)
{
	struct option lo[NOPTS + 2];
	const char *child = NULL;
	int c, idx;
	size_t i;

	for (i = 0; i < NOPTS; i++)
		lo[i] = opts[i].lo;
	lo[NOPTS] = (struct option){"child", required_argument, NULL, 0};
	memset(&lo[NOPTS + 1], 0, sizeof(lo[0]));
	while ((c = getopt_long(argc, argv, "", lo, &idx)) != -1) {
		if (c != 0)
			usage();
		if ((size_t)idx == NOPTS)
			child = optarg;
		else
			set_opt(cf, &opts[idx], optarg);
	}
	return child;
}

/* --langs c,go,py: which languages, in order (duplicates ignored). */
static void parse_langs(struct tt_config *cf)
{
	const char *s = cf->langs_arg ? cf->langs_arg : "c";
	unsigned seen = 0, l;
	size_t n;

	cf->nlangs = 0;
	while (*s) {
		n = strcspn(s, ",");
		for (l = 0; l < TT_NLANGS; l++)
			if (strlen(lang_name[l]) == n &&
			    !strncmp(s, lang_name[l], n))
				break;
		if (l == TT_NLANGS)
			usage_error("--langs: unknown language '%.*s' (c, go, "
				    "py)",
				    (int)n, s);
		if (!(seen & (1u << l)))
			cf->langs[cf->nlangs++] = l;
		seen |= 1u << l;
		s += n + (s[n] == ',');
	}
	if (!cf->nlangs)
		usage_error("--langs: no language given");
}

static bool uses_lang(const struct tt_config *cf, enum tt_lang l)
{
	unsigned i;

	for (i = 0; i < cf->nlangs; i++)
		if (cf->langs[i] == l)
			return true;
	return false;
}

/* Can PYTHON import pbring (with the library the children will get)? */
static bool python_works(const struct tt_config *cf)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) { /* the usage error says it in one line */
			dup2(null, 1);
			dup2(null, 2);
		}
		if (cf->py_lib)
			setenv("PBRING_LIBRARY", cf->py_lib, 1);
		execlp(cf->py_child, cf->py_child, "-c", "import pbring",
		       (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return false;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* A language asked for must have a child to run: a clear usage error. */
static void check_children(const struct tt_config *cf)
{
	if (uses_lang(cf, TT_LANG_GO)) {
		if (!cf->go_child || !*cf->go_child)
			usage_error("--langs has go but no Go child: give "
				    "--go-child PATH or set PBRING_TORTURE_GO");
		if (access(cf->go_child, X_OK))
			usage_error("Go child %s: %s", cf->go_child,
				    strerror(errno));
	}
	if (uses_lang(cf, TT_LANG_PY)) {
		if (!cf->py_child || !*cf->py_child)
			usage_error("--langs has py but no Python: give "
				    "--py-child PYTHON or set "
				    "PBRING_TORTURE_PY");
		if (access(cf->py_script, R_OK))
			usage_error("Python child %s: %s (--py-script)",
				    cf->py_script, strerror(errno));
		if (cf->py_lib && access(cf->py_lib, R_OK))
			usage_error("PBRING_TORTURE_PYLIB %s: %s", cf->py_lib,
				    strerror(errno));
		if (!python_works(cf))
			usage_error("%s cannot import pbring%s%s (install the "
				    "package: pip install python/)",
				    cf->py_child,
				    cf->py_lib ? " with PBRING_LIBRARY=" : "",
				    cf->py_lib ? cf->py_lib : "");
	}
}

static void check_config(struct tt_config *cf)
{
	if (cf->single)
		cf->producers = 1;
	if (cf->quick && !cf->kills)
		cf->kills = QUICK_KILLS;
	if (!cf->kills && !cf->seconds)
		cf->kills = 2000;
	if (cf->inject && strcmp(cf->inject, "lost") &&
	    strcmp(cf->inject, "dup") && strcmp(cf->inject, "torn"))
		usage();
	if (!cf->producers || cf->producers > TT_MAX_PROD || !cf->gating ||
	    cf->gating > TT_MAX_GATING || cf->lossy > TT_MAX_LOSSY ||
	    !cf->witnesses || cf->witnesses > cf->gating)
		usage();
	parse_langs(cf);
	check_children(cf);
}

/* --- children ------------------------------------------------------------ */

/* Arm a killable child, most of the time: the points that apply to its
 * role take turns, so that every one of them is armed in every run. */
static int pick_point(struct driver *d, const struct child *k)
{
	unsigned want = k->role != TT_PRODUCER ? ON_READER
			: d->cf.single	       ? ON_SP
					       : ON_MP;
	int i;

	if (!k->killable || rand() % 100 >= ARM_PERCENT)
		return -1;
	/* Without a crash-point libpbring a Python child cannot fire. */
	if (k->lang == TT_LANG_PY && !d->cf.py_lib)
		return -1;
	for (i = 0; i < NPOINTS; i++) {
		int p = (d->arm_turn[want] + i) % NPOINTS;

		if ((points[p].on & want) &&
		    !(points[p].not_in & (1u << k->lang))) {
			d->arm_turn[want] = p + 1;
			return p;
		}
	}
	return -1;
}

static void exec_child(struct driver *d, const struct child *k, pid_t parent)
{
	char idx[16], inc[16], np[16], w[16], rate[16], seed[16], at[64];
	/* Two in front for "PYTHON script"; the contract's argv from [2]. */
	char *argv[] = {NULL,
			NULL,
			"torture",
			"--child",
			(char *)role_name[k->role],
			idx,
			inc,
			"--ring",
			d->cf.ring,
			"--dir",
			d->cf.dir,
			"--producers",
			np,
			"--witnesses",
			w,
			"--rate",
			rate,
			"--seed",
			seed,
			"--inject",
			(char *)d->cf.inject,
			NULL};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(99);
	snprintf(idx, sizeof(idx), "%u", k->index);
	snprintf(inc, sizeof(inc), "%u", k->incarnation);
	snprintf(np, sizeof(np), "%u", d->cf.producers);
	snprintf(w, sizeof(w), "%u", d->cf.witnesses);
	snprintf(rate, sizeof(rate), "%u", d->cf.rate);
	snprintf(seed, sizeof(seed), "%u", d->cf.seed + k->incarnation);
	if (!d->cf.inject)
		argv[19] = NULL; /* drop "--inject" */
	unsetenv("PBR_CRASH_AT");
	if (k->point >= 0) {
		snprintf(at, sizeof(at), "%s:%u", points[k->point].name,
			 1 + (unsigned)rand() % points[k->point].max_n);
		setenv("PBR_CRASH_AT", at, 1);
	}
	switch (k->lang) {
	case TT_LANG_C:
		execv("/proc/self/exe", argv + 2);
		break;
	case TT_LANG_GO:
		argv[2] = (char *)d->cf.go_child;
		execv(d->cf.go_child, argv + 2);
		break;
	case TT_LANG_PY:
		if (d->cf.py_lib)
			setenv("PBRING_LIBRARY", d->cf.py_lib, 1);
		argv[1] = (char *)d->cf.py_child;
		argv[2] = (char *)d->cf.py_script;
		execvp(d->cf.py_child, argv + 1);
		break;
	default:
		break;
	}
	fprintf(stderr, "torture: exec %s child: %s\n", lang_name[k->lang],
		strerror(errno));
	_exit(127);
}

/* The language of a new process: witnesses have theirs, others draw. */
static enum tt_lang pick_lang(struct driver *d, const struct child *k)
{
	if (!k->killable)
		return d->cf.langs[k->index % d->cf.nlangs];
	return d->cf.langs[(unsigned)rand() % d->cf.nlangs];
}

static void spawn(struct driver *d, struct child *k)
{
	pid_t parent = getpid();
	unsigned r;

	k->lang = pick_lang(d, k);
	k->point = pick_point(d, k);
	d->spawned[k->lang]++;
	r = (unsigned)rand(); /* the child's draw of N, made here */
	k->pid = fork();
	if (k->pid == 0) {
		srand(r);
		exec_child(d, k, parent);
	}
	if (k->pid < 0) {
		note_failure(d, "fork: %s", strerror(errno));
		k->pid = 0;
	}
}

static struct child *add_kid(struct driver *d, enum tt_role role,
			     unsigned index)
{
	struct child *k = &d->kids[d->nkids++];

	memset(k, 0, sizeof(*k));
	k->role = role;
	k->index = index;
	/* Witnesses are the gating readers that see everything. */
	k->killable = role != TT_GATING || index >= d->cf.witnesses;
	spawn(d, k);
	return k;
}

static struct child *find_kid(struct driver *d, pid_t pid)
{
	unsigned i;

	for (i = 0; i < d->nkids; i++)
		if (d->kids[i].pid == pid)
			return &d->kids[i];
	return NULL;
}

/* --- deaths and resume times --------------------------------------------- */

static uint64_t rand_ms(unsigned lo, unsigned hi)
{
	return TU_MS * (lo + (unsigned)rand() % (hi - lo + 1));
}

static void expect_resume(struct driver *d, uint64_t t, uint64_t h0)
{
	if (!d->running || d->nout == MAX_OUT)
		return;
	d->out[d->nout].t = t;
	d->out[d->nout].h0 = h0;
	d->out[d->nout].slowed = d->stopped != NULL;
	d->nout++;
}

static void describe_status(char *buf, size_t n, int status)
{
	if (WIFSIGNALED(status))
		snprintf(buf, n, "signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, n, "exit %d", WEXITSTATUS(status));
}

/* A child is gone: classify how, count it, restart it while running. */
static void on_death(struct driver *d, struct child *k, int status, bool ours,
		     uint64_t t, uint64_t h0)
{
	bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
	char how[64];

	k->pid = 0;
	if (killed && (ours || k->point >= 0)) {
		d->kills++;
		d->deaths[k->role]++;
		if (ours)
			d->random_kills++;
		else
			d->point_hits[k->point]++;
		expect_resume(d, t, h0);
	} else if (d->running || !WIFEXITED(status) || WEXITSTATUS(status)) {
		describe_status(how, sizeof(how), status);
		note_failure(
			d,
			"%s %u (incarnation %u, %s%s%s) ended unexpectedly: %s",
			role_name[k->role], k->index, k->incarnation,
			lang_name[k->lang], k->point >= 0 ? ", armed at " : "",
			k->point >= 0 ? points[k->point].name : "", how);
	}
	/* Killed while stopped (its resume counted as slowed, above): the
	 * next incarnation runs. */
	if (d->stopped == k) {
		d->stopped = NULL;
		d->last_cont = tu_now_ns();
		d->next_stop = d->last_cont + rand_ms(500, 2000);
	}
	if (d->running) {
		k->incarnation++;
		spawn(d, k);
	}
}

static void reap_children(struct driver *d)
{
	struct child *k;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		k = find_kid(d, pid);
		if (k)
			on_death(d, k, status, false, tu_now_ns(),
				 atomic_load(&d->sh->hist_n));
	}
}

/* First delivery at witness 0 after time t, if it is still on record. */
static bool resumed_at(struct driver *d, const struct pending_resume *o,
		       uint64_t *when)
{
	uint64_t n = atomic_load(&d->sh->hist_n), i = o->h0, ns;

	if (n - i > TT_HIST)
		i = n - TT_HIST;
	for (; i < n; i++) {
		ns = atomic_load(&d->sh->hist_ns[i % TT_HIST]);
		if (ns > o->t) {
			*when = ns;
			return true;
		}
	}
	return false;
}

static void poll_resume(struct driver *d)
{
	uint64_t now = tu_now_ns(), when, dt;
	unsigned i = 0;

	while (i < d->nout) {
		struct pending_resume *o = &d->out[i];

		if (resumed_at(d, o, &when)) {
			dt = when - o->t;
			if (o->slowed) {
				/* a stopped reader held the ring meanwhile */
				d->nresume_slowed++;
			} else {
				d->max_resume_ns = dt > d->max_resume_ns
							   ? dt
							   : d->max_resume_ns;
				d->sum_resume_ns += dt;
				d->nresume++;
			}
		} else if (d->stopped && o->slowed) {
			i++; /* no verdict while a reader is stopped */
			continue;
		} else if (now - (o->slowed && d->last_cont > o->t
					  ? d->last_cont
					  : o->t) <
			   STALL_NS) {
			i++;
			continue;
		} else {
			note_failure(
				d,
				"no delivery at witness 0 for %llu ms after "
				"a death",
				(unsigned long long)((now - o->t) / TU_MS));
			d->running = false; /* the ring is wedged: stop */
		}
		*o = d->out[--d->nout];
	}
}

static struct child *pick_victim(struct driver *d)
{
	struct child *c[MAX_KIDS * 2];
	unsigned i, n = 0;

	for (i = 0; i < d->nkids; i++) {
		struct child *k = &d->kids[i];

		if (!k->killable || !k->pid)
			continue;
		c[n++] = k;
		if (k->role == TT_PRODUCER) /* the interesting deaths */
			c[n++] = k;
	}
	return n ? c[rand() % n] : NULL;
}

static void random_kill(struct driver *d)
{
	struct child *k = pick_victim(d);
	uint64_t t, h0;
	int status;
	pid_t pid;

	if (!k)
		return;
	pid = k->pid;
	h0 = atomic_load(&d->sh->hist_n);
	t = tu_now_ns();
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	on_death(d, k, status, true, t, h0);
	/* Now and then a third party reclaims, racing with the joiners. */
	if (rand() % 8 == 0)
		(void)!pbr_ring_reclaim(d->ring);
}

/* --- slow readers (--slow) ------------------------------------------------ */

static void resume_stopped(struct driver *d)
{
	unsigned i;

	if (!d->stopped)
		return;
	kill(d->stopped->pid, SIGCONT);
	d->stopped = NULL;
	d->last_cont = tu_now_ns();
	d->next_stop = d->last_cont + rand_ms(500, 2000);
	for (i = 0; i < d->nout; i++) /* the stall bound counts from now */
		d->out[i].slowed = true;
}

/* Stop a gating reader other than witness 0 for a while, now and then. */
static void slow_tick(struct driver *d)
{
	struct child *c[TT_MAX_GATING];
	uint64_t now = tu_now_ns();
	unsigned i, n = 0;

	if (d->stopped) {
		if (now >= d->cont_at)
			resume_stopped(d);
		return;
	}
	if (!d->next_stop)
		d->next_stop = now + rand_ms(500, 2000);
	if (now < d->next_stop)
		return;
	for (i = 0; i < d->nkids; i++) {
		struct child *k = &d->kids[i];

		if (k->role == TT_GATING && k->index != 0 && k->pid)
			c[n++] = k;
	}
	if (!n) {
		d->next_stop = now + rand_ms(500, 2000);
		return;
	}
	d->stopped = c[(unsigned)rand() % n];
	kill(d->stopped->pid, SIGSTOP);
	d->stops++;
	d->cont_at = now + rand_ms(300, 1500);
	for (i = 0; i < d->nout; i++)
		d->out[i].slowed = true;
}

/* --- phases ------------------------------------------------------------- */

static bool time_up(struct driver *d)
{
	uint64_t el = tu_now_ns() - d->t0;

	if (d->cf.kills && d->kills >= d->cf.kills)
		return true;
	if (d->cf.seconds && el >= (uint64_t)d->cf.seconds * TU_SEC)
		return true;
	return d->cf.quick && el >= QUICK_CAP_NS;
}

static void progress(struct driver *d, uint64_t *next_report)
{
	uint64_t now = tu_now_ns();

	if (now < *next_report)
		return;
	*next_report = now + 10 * TU_SEC;
	fprintf(stderr, "torture: %llus, kills %ld, max_resume_ms %.1f\n",
		(unsigned long long)((now - d->t0) / TU_SEC), d->kills,
		(double)d->max_resume_ns / TU_MS);
}

static void run(struct driver *d)
{
	uint64_t next_report = d->t0 + 10 * TU_SEC;

	d->next_kill = d->t0;
	while (d->running && !time_up(d)) {
		reap_children(d);
		if (d->cf.slow)
			slow_tick(d);
		poll_resume(d);
		if (d->nout == 0 && tu_now_ns() >= d->next_kill) {
			random_kill(d);
			d->next_kill =
				tu_now_ns() + TU_MS * (rand() % KILL_GAP_MS);
		}
		progress(d, &next_report);
		usleep(300);
	}
	d->running = false;
}

static bool any_running(struct driver *d, int role)
{
	unsigned i;

	for (i = 0; i < d->nkids; i++)
		if (d->kids[i].pid &&
		    (role < 0 || (int)d->kids[i].role == role))
			return true;
	return false;
}

/* Wait for every child of @role (-1: all) to exit; kill the late ones. */
static void wait_exit(struct driver *d, int role, const char *phase)
{
	uint64_t end = tu_now_ns() + (uint64_t)EXIT_BOUND_MS * TU_MS;
	unsigned i;

	while (any_running(d, role) && tu_now_ns() < end) {
		reap_children(d);
		usleep(1000);
	}
	for (i = 0; i < d->nkids; i++) {
		struct child *k = &d->kids[i];

		if (!k->pid || (role >= 0 && (int)k->role != role))
			continue;
		note_failure(d, "%s %u did not exit within %d ms of %s",
			     role_name[k->role], k->index, EXIT_BOUND_MS,
			     phase);
		kill(k->pid, SIGKILL);
		waitpid(k->pid, NULL, 0);
		k->pid = 0;
	}
}

static int start(struct driver *d)
{
	struct pbr_create_opts o = {
		.slot_count = d->cf.slots,
		.slot_size = d->cf.slot_size,
		.max_producers = d->cf.single ? 1 : d->cf.producers + 2,
		.max_readers = d->cf.gating + d->cf.lossy + 2,
		.flags = d->cf.single ? PBR_CREATE_SINGLE_PRODUCER : 0,
		.seq_base = d->cf.seq_base,
	};
	uint64_t end = tu_now_ns() + 5 * TU_SEC;
	struct pbr_participant pt;
	unsigned i;
	int rc;

	rc = pbr_ring_create(d->cf.ring, &o, &d->ring);
	if (rc) {
		fprintf(stderr, "torture: create: %s\n", pbr_strerror(rc));
		return rc;
	}
	d->running = true;
	for (i = 0; i < d->cf.gating; i++)
		add_kid(d, TT_GATING, i);
	for (i = 0; i < d->cf.lossy; i++)
		add_kid(d, TT_LOSSY, i);
	/* Witnesses must have joined before anything is produced. */
	while (pbr_ring_participants(d->ring, &pt, 0) <
	       (int)(d->cf.gating + d->cf.lossy)) {
		reap_children(d);
		if (tu_now_ns() > end || d->failures)
			return -ETIMEDOUT;
		usleep(1000);
	}
	for (i = 0; i < d->cf.producers; i++)
		add_kid(d, TT_PRODUCER, i);
	d->t0 = tu_now_ns();
	return 0;
}

static void finish(struct driver *d)
{
	d->running = false;
	resume_stopped(d);
	atomic_store(&d->sh->stop, 1);
	wait_exit(d, TT_PRODUCER, "stop");
	atomic_store(&d->sh->drain, 1);
	wait_exit(d, -1, "drain");
}

/* --- report ------------------------------------------------------------- */

static void print_setup(const struct driver *d, double secs)
{
	const struct tt_config *cf = &d->cf;

	printf("torture: %s ring, %u producers, %u gating readers (%u never "
	       "killed), %u lossy, %u slots x %u bytes, seq_base %llu, "
	       "seed %u, %.1f s\n",
	       cf->single ? "single-producer" : "multi-producer", cf->producers,
	       cf->gating, cf->witnesses, cf->lossy, cf->slots, cf->slot_size,
	       (unsigned long long)cf->seq_base, cf->seed, secs);
	if (cf->nlangs > 1 || cf->langs[0] != TT_LANG_C || cf->slow) {
		unsigned j;

		printf("languages:");
		for (j = 0; j < cf->nlangs; j++)
			printf(" %s", lang_name[cf->langs[j]]);
		printf("; witnesses:");
		for (j = 0; j < cf->witnesses; j++)
			printf(" %u=%s", j,
			       lang_name[cf->langs[j % cf->nlangs]]);
		printf("; python children %s; slow readers %s (%ld stops)\n",
		       cf->py_lib ? "armed (crash-point libpbring)"
				  : "not armed",
		       cf->slow ? "on" : "off", d->stops);
	}
}

static void print_deaths(const struct driver *d)
{
	int i;

	printf("deaths: producers %ld, gating readers %ld, lossy readers "
	       "%ld; random kills %ld; crash points:",
	       d->deaths[TT_PRODUCER], d->deaths[TT_GATING],
	       d->deaths[TT_LOSSY], d->random_kills);
	for (i = 0; i < NPOINTS; i++)
		if (d->point_hits[i])
			printf(" %s %ld", points[i].name, d->point_hits[i]);
	printf("\n");
	printf("resume: %llu measured, mean %.1f ms, max %.1f ms",
	       (unsigned long long)d->nresume,
	       d->nresume ? (double)d->sum_resume_ns / d->nresume / TU_MS : 0,
	       (double)d->max_resume_ns / TU_MS);
	if (d->nresume_slowed)
		printf(" (%llu more across a stopped reader, not counted)",
		       (unsigned long long)d->nresume_slowed);
	printf("\n");
}

static void print_reader(const char *kind, unsigned i,
			 struct tt_reader_stats *s, uint64_t missed)
{
	if (atomic_load(&s->ahead))
		printf("FAIL: %s reader %u ended %llu past the claim word: it "
		       "consumed sequences that no producer claimed\n",
		       kind, i, (unsigned long long)atomic_load(&s->ahead));
	printf("%s %u: delivered %llu, torn %llu, dup %llu, stale %llu, "
	       "lost %llu, abandoned %llu, missed %llu\n",
	       kind, i, (unsigned long long)atomic_load(&s->delivered),
	       (unsigned long long)atomic_load(&s->torn),
	       (unsigned long long)atomic_load(&s->dup),
	       (unsigned long long)atomic_load(&s->stale),
	       (unsigned long long)atomic_load(&s->lost),
	       (unsigned long long)atomic_load(&s->abandoned),
	       (unsigned long long)missed);
}

/* Sum the self-checks of every reader into @t. */
static void reader_totals(struct driver *d, struct tt_result *t)
{
	unsigned i;

	for (i = 0; i < d->cf.gating; i++) {
		d->failures += atomic_load(&d->sh->gating[i].ahead) != 0;
		print_reader("gating", i, &d->sh->gating[i],
			     atomic_load(&d->sh->gating_missed[i]));
		t->torn += atomic_load(&d->sh->gating[i].torn);
		if (i >= d->cf.witnesses) /* witnesses: check_witness */
			t->duplicated += atomic_load(&d->sh->gating[i].dup);
	}
	for (i = 0; i < d->cf.lossy; i++) {
		d->failures += atomic_load(&d->sh->lossy[i].ahead) != 0;
		print_reader("lossy", i, &d->sh->lossy[i],
			     atomic_load(&d->sh->lossy_missed[i]));
		t->torn += atomic_load(&d->sh->lossy[i].torn);
		t->duplicated += atomic_load(&d->sh->lossy[i].dup);
	}
}

static void check_witness(struct driver *d, unsigned j, struct tt_result *t)
{
	uint64_t ab = atomic_load(&d->sh->gating[j].abandoned), dup;
	struct tt_result w;

	if (tt_check_witness(&d->cf, j, &w)) {
		note_failure(d, "witness %u: cannot read the logs", j);
		return;
	}
	printf("witness %u (%s): delivered %llu, lost %llu, duplicated %llu, "
	       "out of order %llu, never sent %llu, in flight and delivered "
	       "%llu, abandoned %llu\n",
	       j, lang_name[d->cf.langs[j % d->cf.nlangs]],
	       (unsigned long long)w.delivered, (unsigned long long)w.lost,
	       (unsigned long long)w.duplicated, (unsigned long long)w.disorder,
	       (unsigned long long)w.phantom,
	       (unsigned long long)w.maybe_delivered, (unsigned long long)ab);
	if (w.disorder)
		note_failure(d, "witness %u: per-producer order broken", j);
	/* A witness's duplicates: those in its stream, or those it counted
	 * itself if more (reader_totals leaves witnesses out). */
	dup = atomic_load(&d->sh->gating[j].dup);
	t->duplicated += w.duplicated > dup ? w.duplicated : dup;
	if (ab != t->abandoned)
		note_failure(d,
			     "witness %u passed %llu abandoned slots, the ring "
			     "made %llu",
			     j, (unsigned long long)ab,
			     (unsigned long long)t->abandoned);
	t->delivered += w.delivered;
	t->lost += w.lost;
	t->torn += w.phantom;
}

static void compare_witnesses(struct driver *d)
{
	uint64_t differ[TT_MAX_GATING], sum = 0;
	unsigned j;

	if (d->cf.witnesses < 2)
		return;
	if (tt_compare_witnesses(&d->cf, differ)) {
		note_failure(d, "witnesses: cannot read the streams");
		return;
	}
	for (j = 1; j < d->cf.witnesses; j++)
		if ((sum += differ[j], differ[j]))
			note_failure(d,
				     "witness %u (%s) and witness 0 (%s) were "
				     "handed different messages: %llu differ",
				     j,
				     lang_name[d->cf.langs[j % d->cf.nlangs]],
				     lang_name[d->cf.langs[0]],
				     (unsigned long long)differ[j]);
	printf("witnesses: %u streams compared, %s\n", d->cf.witnesses,
	       sum ? "they differ" : "the same messages per producer");
}

static void print_langs(const struct driver *d)
{
	unsigned j;

	printf("langs");
	for (j = 0; j < d->cf.nlangs; j++)
		printf(" %s %ld", lang_name[d->cf.langs[j]],
		       d->spawned[d->cf.langs[j]]);
	printf("\n");
}

static int report(struct driver *d, double secs)
{
	struct pbr_ring_stats rs;
	struct tt_result t;
	unsigned j;

	memset(&t, 0, sizeof(t));
	pbr_ring_stats(d->ring, &rs);
	t.abandoned = rs.abandoned;
	t.committed = tt_count_committed(&d->cf);
	print_setup(d, secs);
	print_deaths(d);
	reader_totals(d, &t);
	for (j = 0; j < d->cf.witnesses; j++)
		check_witness(d, j, &t);
	compare_witnesses(d);
	if (t.abandoned > (uint64_t)d->deaths[TT_PRODUCER])
		note_failure(
			d,
			"%llu slots abandoned but only %ld producer deaths: "
			"a live producer's slot was reclaimed",
			(unsigned long long)t.abandoned,
			d->deaths[TT_PRODUCER]);
	if (d->cf.quick && d->kills < QUICK_KILLS)
		note_failure(d, "quick mode reached only %ld kills", d->kills);
	print_langs(d);
	printf("kills %ld, committed %llu, delivered %llu, lost %llu, "
	       "duplicated %llu, torn %llu, abandoned %llu, max_resume_ms "
	       "%llu\n",
	       d->kills, (unsigned long long)t.committed,
	       (unsigned long long)t.delivered, (unsigned long long)t.lost,
	       (unsigned long long)t.duplicated, (unsigned long long)t.torn,
	       (unsigned long long)t.abandoned,
	       (unsigned long long)((d->max_resume_ns + TU_MS - 1) / TU_MS));
	return t.lost || t.duplicated || t.torn || d->failures;
}

/* --- main --------------------------------------------------------------- */

static void remove_workdir(const struct tt_config *cf)
{
	char path[400];
	unsigned i;

	/* Only files we made: the logs, the streams and the shared page. */
	snprintf(path, sizeof(path), "%s/shared", cf->dir);
	unlink(path);
	for (i = 0; i < TT_MAX_PROD; i++) {
		snprintf(path, sizeof(path), "%s/prod-%u.log", cf->dir, i);
		unlink(path);
		snprintf(path, sizeof(path), "%s/gating-%u.bin", cf->dir, i);
		unlink(path);
	}
	rmdir(cf->dir);
}

static int make_workdir(struct tt_config *cf)
{
	char tmpl[sizeof(cf->dir) + 32];

	snprintf(tmpl, sizeof(tmpl), "%s/pbring-torture.XXXXXX", cf->dir);
	if (strlen(tmpl) >= sizeof(cf->dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(tmpl))
		return -errno;
	memcpy(cf->dir, tmpl, strlen(tmpl) + 1); /* fits: checked above */
	snprintf(cf->ring, sizeof(cf->ring), "torture-%d", (int)getpid());
	return 0;
}

static int driver_main(struct driver *d)
{
	uint64_t t_start = tu_now_ns();
	int bad;

	srand(d->cf.seed);
	if (make_workdir(&d->cf)) {
		perror("torture: work directory");
		return 2;
	}
	d->sh = tt_shared_map(d->cf.dir, true);
	if (!d->sh || start(d)) {
		note_failure(d, "could not start (see above)");
		finish(d);
		return 1;
	}
	run(d);
	finish(d);
	bad = report(d, (double)(tu_now_ns() - t_start) / TU_SEC);
	pbr_ring_detach(d->ring);
	(void)!pbr_ring_unlink(d->cf.ring);
	/* Kept for a post-mortem, unless the failure was asked for. */
	if ((bad && !d->cf.inject && !d->cf.discard) || d->cf.keep)
		printf("work directory kept: %s\n", d->cf.dir);
	else
		remove_workdir(&d->cf);
	return bad ? 1 : 0;
}

static enum tt_role parse_role(const char *s)
{
	if (!strcmp(s, "producer"))
		return TT_PRODUCER;
	if (!strcmp(s, "gating"))
		return TT_GATING;
	if (!strcmp(s, "lossy"))
		return TT_LOSSY;
	usage();
	return TT_PRODUCER;
}

int main(int argc, char **argv)
{
	static struct driver d;
	const char *child;

	defaults(&d.cf);
	child = parse_args(&d.cf, argc, argv);
	if (child) {
		/* --child ROLE INDEX INCARNATION */
		if (optind + 2 != argc)
			usage();
		return tt_child_main(&d.cf, parse_role(child),
				     (unsigned)num(argv[optind]),
				     (unsigned)num(argv[optind + 1]));
	}
	if (optind != argc)
		usage();
	check_config(&d.cf);
	setvbuf(stdout, NULL, _IOLBF, 0);
	return driver_main(&d);
}
