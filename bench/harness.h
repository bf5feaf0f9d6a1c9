/* SPDX-License-Identifier: MIT */
/*
 * pbring-bench internals: histograms, processes, transports, cases and
 * the report. One process per role (fork, no exec), each pinned to a CPU;
 * every transport is driven by the same runners (cases.c) so that
 * pbring and the baselines are measured the same way in the same run.
 */
#ifndef PBR_BENCH_HARNESS_H
#define PBR_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_util.h"

/* --- log-linear histogram (hist.c) ----------------------------------------
 * Buckets are powers of two split into 128 linear sub-buckets: every
 * recorded value is known to within 0.8 %, from 1 ns to 2^40 ns, in a
 * fixed 35 KiB that a child process can fill in shared memory.
 */
#define HIST_SUB_BITS 7
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 40
#define HIST_BUCKETS (HIST_SUB + (HIST_MAX_EXP - HIST_SUB_BITS + 1) * HIST_SUB)

struct hist {
	uint64_t count, sum, min, max;
	uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
/* The value at quantile q (0..1]: the midpoint of its bucket, at most max. */
uint64_t hist_quantile(const struct hist *h, double q);
void hist_merge(struct hist *into, const struct hist *from);

/* --- messages ---------------------------------------------------------------
 * What the runners send: a stamp and a sequence number, carried in the
 * first 16 bytes of an msg_bytes payload (raw transports) or in the
 * DeviceEvent's sent_ns and seq fields (pbring).
 */
#define MSG_LAST (1ull << 63) /* in seq: the sender's final message */

struct msg {
	uint64_t stamp; /* CLOCK_MONOTONIC ns: sent, or meant to be sent */
	uint64_t seq;	/* with MSG_LAST on the final one */
};

/* --- transports (tr_*.c) ----------------------------------------------------
 */
enum mode { MODE_SPIN = 0, MODE_BLOCK = 1 };
enum role { ROLE_PROD = 0, ROLE_READ = 1 };

struct chan;

struct xport {
	const char *name; /* "transport" in the JSON */
	unsigned modes;	  /* 1 << MODE_* it can run */
	bool fanout;	  /* can do 2 producers -> 1 and 1 -> 3 */
	bool throughput;  /* meaningful for throughput runs */
	/* NULL if c can run, else why not (msg size, topology). */
	const char *(*unsupported)(const struct chan *c);
	/* Parent, before the fork: create rings, pipes, sockets, queues. */
	int (*prepare)(struct chan *c);
	/* Child: become producer or reader number idx. */
	int (*open)(struct chan *c, enum role role, unsigned idx);
	/* Producer: one message of msg_bytes to every reader. */
	int (*send)(struct chan *c, const struct msg *m);
	/* Reader: the next message from any producer. */
	int (*recv)(struct chan *c, struct msg *m);
	void (*close)(struct chan *c);
	/* Parent, after the children are gone. */
	void (*cleanup)(struct chan *c);
	/* Non-NULL: ping-pong's echo side is pbring-bench-go, this kind
	 * ("raw" or "pb"), not recv/send here (--reader go). */
	const char *go_kind;
};

struct chan {
	const struct xport *x;
	enum mode mode;
	uint32_t msg_bytes;
	unsigned nprod, nread;
	unsigned id;	   /* unique in this run: names rings and queues */
	unsigned dir;	   /* 0 or 1 in a ping-pong pair */
	struct chan *peer; /* the other direction of a pair, or NULL */
	bool flow;	   /* depth-1 mailboxes: wait until consumed */
	bool verify;	   /* check the payload of this message */
	unsigned batch;	   /* pbring readers: views per peek (1: latency) */
	void *shared;	   /* transport state made before the fork */
	void *local;	   /* this process's handles, after open() */
};

extern const struct xport xport_floor, xport_futex;
extern const struct xport xport_pipe, xport_unix, xport_seqpacket, xport_mqueue;
extern const struct xport xport_pbring_raw, xport_pbring, xport_pbring_inplace,
	xport_pbring_nocrc, xport_pbring_metrics, xport_pbring_stamped;
extern const struct xport xport_pbring_go, xport_pbring_raw_go;
extern const struct xport xport_iceoryx, xport_iceoryx2;
extern const struct xport xport_memcpy;

/* iceoryx needs its daemon: start it once, stop it at exit. */
bool iceoryx_available(char *why, size_t len);
int iceoryx_start(void);
void iceoryx_stop(void);

/* The name of a pbring transport's ring (after prepare). */
const char *pbring_chan_ring(const struct chan *c);

/* --reader go (go_reader.c): the pbring-bench-go executable, and the echo
 * role played by it, reading @in and answering on @out. */
struct shared_area;
extern const char *bench_go_bin;
int go_echo(struct shared_area *sa, struct chan *in, struct chan *out,
	    uint64_t warm);

/* A shared anonymous mapping (MAP_SHARED, inherited across fork). */
void *shm_anon(size_t len);
void shm_anon_free(void *p, size_t len);

/* A source payload of n bytes: the demo blob pattern. */
uint8_t *payload_new(uint32_t n);

/* --- processes (proc.c) ------------------------------------------------------
 */
#define MAX_ROLES 4

struct role_out {
	struct hist h;	/* latency samples of this role */
	uint64_t count; /* messages received (readers) or sent */
	uint64_t t_end; /* when it finished (ns) */
	int err;	/* 0, or a negative errno */
	char why[120];	/* what failed */
};

struct shared_area {
	int arrived;	/* barrier */
	uint64_t go_ns; /* barrier release time */
	struct role_out out[MAX_ROLES];
};

typedef int (*role_fn)(struct shared_area *sa, unsigned role, void *arg);

struct proc_plan {
	unsigned n;	    /* roles (processes) */
	int cpu[MAX_ROLES]; /* pinned CPU of each */
	role_fn fn;
	void *arg;
	int timeout_s; /* kill the children after this */
};

/* Fork one process per role, pin it, run fn; wait. 0 if all succeeded,
 * else the first error (the others were killed). */
int proc_run(const struct proc_plan *pl, struct shared_area *sa);
void barrier_wait(struct shared_area *sa, unsigned n);
int pin_cpu(int cpu);
int role_fail(struct shared_area *sa, unsigned role, int err, const char *what);

/* --- cases (cases.c) --------------------------------------------------------
 */
enum kind { KIND_LATENCY, KIND_THROUGHPUT };
enum method { METHOD_PINGPONG, METHOD_FIXED_RATE, METHOD_STREAM };

struct bench_case {
	const struct xport *x;
	enum kind kind;
	enum method method;
	enum mode mode;
	uint32_t msg_bytes;
	unsigned nprod, nread;
	uint64_t samples;   /* latency: target sample count */
	uint64_t budget_ns; /* stop earlier once this much time is spent */
	uint64_t rate_hz;   /* fixed-rate */
};

struct result {
	const char *transport, *mode, *kind, *method;
	uint32_t msg_bytes;
	unsigned nprod, nread;
	char placement[64];
	uint64_t samples;
	uint64_t p50, p90, p99, p999, p9999, max, min, mean;
	double msgs_per_s, bytes_per_s;
	uint64_t rate_hz;
	double elapsed_s;
	bool has_lat, has_tput;
	char error[160]; /* non-empty: the case failed or was skipped */
	bool skipped;
};

/* Run one case; appends one or two results (ping-pong gives the round
 * trip and the one-way figures). Returns the number appended. */
int case_run(const struct bench_case *k, struct result *out, unsigned max);

/* --- report (report.c) ------------------------------------------------------
 */
struct run_info {
	int argc;
	char **argv;
	bool quick;
	uint64_t t_start_ns, t_end_ns;
	double load_start[3], load_end[3];
};

void report_line(const struct result *r);
int report_json(const char *path, const struct run_info *ri,
		const struct result *r, size_t n);
void report_summary(const struct result *r, size_t n);
void read_loadavg(double la[3]);

/* Ring and queue names of this run. */
extern unsigned bench_run_id;
extern int bench_verbose;

#endif /* PBR_BENCH_HARNESS_H */
