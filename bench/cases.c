/* SPDX-License-Identifier: MIT */
/*
 * The runners. Every transport goes through the same three: ping-pong
 * (round trip / 2 measured by the initiator, and one-way from the
 * initiator's CLOCK_MONOTONIC stamp measured by the echoing side), a
 * fixed-rate stream (latency from the intended send time, so that a
 * stall is charged to every message it delays: no coordinated omission)
 * and a throughput stream. Roles are processes pinned to CPUs:
 *
 *   latency		A (initiator, sender) cpu0, B (echo, receiver) cpu1
 *   1 -> 1		producer cpu0, reader cpu1
 *   2 -> 1		both producers share cpu0, reader cpu1
 *   1 -> 3		producer cpu0, the three readers share cpu1
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MIN_SAMPLES 1000

/* Throughput producers read the clock every this many messages: about
 * every 64 KiB, so that a budget is kept at every size. */
static uint64_t check_every(uint32_t msg_bytes)
{
	uint64_t n = 65536 / msg_bytes;

	return n < 1 ? 1 : (n > 1024 ? 1024 : n);
}

static unsigned next_chan_id;

struct run {
	const struct bench_case *k;
	struct chan c[2]; /* ping-pong: [0] A->B, [1] B->A; else [0] */
	uint64_t warm;
};

static void chan_init(struct chan *c, const struct bench_case *k, unsigned dir,
		      struct chan *peer)
{
	memset(c, 0, sizeof(*c));
	c->x = k->x;
	c->mode = k->mode;
	c->msg_bytes = k->msg_bytes;
	c->nprod = k->method == METHOD_STREAM ? k->nprod : 1;
	c->nread = k->method == METHOD_STREAM ? k->nread : 1;
	c->id = next_chan_id++;
	c->dir = dir;
	c->peer = peer;
	c->flow = k->method == METHOD_FIXED_RATE;
	c->batch = k->method == METHOD_STREAM ? 64 : 1;
}

/* Enough to fault in every slot of the rings before measuring. */
static uint64_t warmup(const struct bench_case *k)
{
	uint64_t w = (16ull << 20) / k->msg_bytes;

	w = w < 64 ? 64 : (w > 2048 ? 2048 : w);
	if (k->method == METHOD_FIXED_RATE)
		w = k->rate_hz / 100 + 16; /* 10 ms of the schedule */
	return w;
}

/* The first message each side receives is checked byte for byte. */
static int recv_checked(struct chan *c, struct msg *m, bool *first)
{
	int rc;

	c->verify = *first;
	rc = c->x->recv(c, m);
	c->verify = false;
	*first = false;
	return rc;
}

/* --- ping-pong ---------------------------------------------------------------
 */

static bool pp_last(const struct run *r, uint64_t i, uint64_t now, uint64_t go)
{
	uint64_t n = i >= r->warm ? i - r->warm : 0;
	uint64_t min = r->k->samples / 5 < MIN_SAMPLES ? r->k->samples / 5
						       : MIN_SAMPLES;

	return n + 1 >= r->k->samples ||
	       /* cppcheck-suppress knownConditionTrueFalse ; min > n + 1 early
		*/
	       (n + 1 >= min && now - go > r->k->budget_ns);
}

static int pp_initiator(struct shared_area *sa, struct run *r)
{
	struct chan *ab = &r->c[0], *ba = &r->c[1];
	struct role_out *o = &sa->out[0];
	uint64_t i, t0, t1 = 0;
	struct msg m, back;
	bool last = false, first = true;
	int rc;

	for (i = 0; !last; i++) {
		last = i >= r->warm && pp_last(r, i, t1, sa->go_ns);
		m.seq = i | (last ? MSG_LAST : 0);
		t0 = bench_now_ns();
		m.stamp = t0;
		rc = ab->x->send(ab, &m);
		if (!rc)
			rc = recv_checked(ba, &back, &first);
		t1 = bench_now_ns();
		if (rc)
			return role_fail(sa, 0, rc, "ping-pong");
		if (back.seq != m.seq)
			return role_fail(sa, 0, -EPROTO, "ping-pong order");
		if (i >= r->warm)
			hist_add(&o->h, (t1 - t0) / 2);
	}
	o->count = i;
	o->t_end = t1;
	return 0;
}

static int pp_echo(struct shared_area *sa, struct run *r)
{
	struct chan *ab = &r->c[0], *ba = &r->c[1];
	struct role_out *o = &sa->out[1];
	struct msg m;
	bool first = true;
	uint64_t t;
	int rc;

	do {
		rc = recv_checked(ab, &m, &first);
		t = bench_now_ns();
		if (rc)
			return role_fail(sa, 1, rc, "echo receive");
		if ((m.seq & ~MSG_LAST) >= r->warm)
			hist_add(&o->h, t - m.stamp);
		rc = ba->x->send(ba, &m);
		if (rc)
			return role_fail(sa, 1, rc, "echo send");
		o->count++;
	} while (!(m.seq & MSG_LAST));
	o->t_end = t;
	return 0;
}

/* A sends on c[0] and reads c[1]; B the opposite. The opening order
 * lets transports that wait for their peer (iceoryx) pair up. */
static int pp_role(struct shared_area *sa, unsigned role, void *arg)
{
	struct run *r = arg;
	struct chan *ab = &r->c[0], *ba = &r->c[1];
	int rc;

	if (role && ab->x->go_kind)
		return go_echo(sa, ab, ba, r->warm);
	rc = ab->x->open(ab, role ? ROLE_READ : ROLE_PROD, 0);
	if (!rc)
		rc = ba->x->open(ba, role ? ROLE_PROD : ROLE_READ, 0);
	if (rc)
		return role_fail(sa, role, rc, "open");
	barrier_wait(sa, 2);
	rc = role ? pp_echo(sa, r) : pp_initiator(sa, r);
	ab->x->close(ab);
	ba->x->close(ba);
	return rc;
}

/* --- fixed rate -------------------------------------------------------------
 */

static int fr_sender(struct shared_area *sa, struct run *r)
{
	const struct bench_case *k = r->k;
	struct chan *c = &r->c[0];
	uint64_t period = 1000000000ull / k->rate_hz, n = r->warm + k->samples;
	uint64_t base = sa->go_ns + 1000000, i;
	struct msg m;
	int rc;

	for (i = 0; i < n; i++) {
		/* The schedule, not the previous send, fixes each stamp:
		 * when a send stalls, the messages behind it are late and
		 * their latency shows it. */
		m.stamp = base + i * period;
		m.seq = i | (i + 1 == n ? MSG_LAST : 0);
		while (bench_now_ns() < m.stamp)
			bench_relax();
		rc = c->x->send(c, &m);
		if (rc)
			return role_fail(sa, 0, rc, "fixed-rate send");
	}
	sa->out[0].count = n;
	sa->out[0].t_end = bench_now_ns();
	return 0;
}

static int fr_receiver(struct shared_area *sa, struct run *r)
{
	struct chan *c = &r->c[0];
	struct role_out *o = &sa->out[1];
	struct msg m;
	bool first = true;
	uint64_t t;
	int rc;

	do {
		rc = recv_checked(c, &m, &first);
		t = bench_now_ns();
		if (rc)
			return role_fail(sa, 1, rc, "fixed-rate receive");
		if ((m.seq & ~MSG_LAST) >= r->warm)
			hist_add(&o->h, t > m.stamp ? t - m.stamp : 0);
		o->count++;
	} while (!(m.seq & MSG_LAST));
	o->t_end = t;
	return 0;
}

static int fr_role(struct shared_area *sa, unsigned role, void *arg)
{
	struct run *r = arg;
	struct chan *c = &r->c[0];
	int rc = c->x->open(c, role ? ROLE_READ : ROLE_PROD, 0);

	if (rc)
		return role_fail(sa, role, rc, "open");
	barrier_wait(sa, 2);
	rc = role ? fr_receiver(sa, r) : fr_sender(sa, r);
	c->x->close(c);
	return rc;
}

/* --- throughput
 * --------------------------------------------------------------- */

static int tp_producer(struct shared_area *sa, struct run *r, unsigned role)
{
	struct chan *c = &r->c[0];
	uint64_t i, go = sa->go_ns, every = check_every(c->msg_bytes);
	struct msg m = {0};
	bool last = false;
	int rc;

	for (i = 0; !last; i++) {
		if ((i % every) == every - 1)
			last = bench_now_ns() - go >= r->k->budget_ns;
		m.seq = i | (last ? MSG_LAST : 0);
		rc = c->x->send(c, &m);
		if (rc)
			return role_fail(sa, role, rc, "send");
	}
	sa->out[role].count = i;
	sa->out[role].t_end = bench_now_ns();
	return 0;
}

static int tp_reader(struct shared_area *sa, struct run *r, unsigned role)
{
	struct chan *c = &r->c[0];
	struct role_out *o = &sa->out[role];
	unsigned lasts = 0;
	bool first = true;
	struct msg m;
	int rc;

	while (lasts < c->nprod) {
		rc = recv_checked(c, &m, &first);
		if (rc)
			return role_fail(sa, role, rc, "receive");
		o->count++;
		lasts += (m.seq & MSG_LAST) != 0;
	}
	o->t_end = bench_now_ns();
	return 0;
}

/* Roles 0 .. nprod-1 produce, the rest read. */
static int tp_role(struct shared_area *sa, unsigned role, void *arg)
{
	struct run *r = arg;
	struct chan *c = &r->c[0];
	bool prod = role < r->k->nprod;
	unsigned idx = prod ? role : role - r->k->nprod;
	int rc = c->x->open(c, prod ? ROLE_PROD : ROLE_READ, idx);

	if (rc)
		return role_fail(sa, role, rc, "open");
	barrier_wait(sa, r->k->nprod + r->k->nread);
	rc = prod ? tp_producer(sa, r, role) : tp_reader(sa, r, role);
	c->x->close(c);
	return rc;
}

/* memcpy bandwidth, one process: the reference for 1 MiB throughput. */
static int memcpy_role(struct shared_area *sa, unsigned role, void *arg)
{
	struct run *r = arg;
	uint32_t n = r->k->msg_bytes;
	uint8_t *src = payload_new(n), *dst = malloc(n);
	uint64_t i, go, every = check_every(n);

	if (!src || !dst)
		return role_fail(sa, role, -ENOMEM, "malloc");
	memcpy(dst, src, n); /* fault both in */
	barrier_wait(sa, 1);
	go = sa->go_ns;
	for (i = 1; i % every || bench_now_ns() - go < r->k->budget_ns; i++) {
		memcpy(dst, src, n);
		bench_keep((uintptr_t)dst);
	}
	sa->out[0].count = i - 1; /* copies made after the barrier */
	sa->out[0].t_end = bench_now_ns();
	free(src);
	free(dst);
	return 0;
}

/* --- plans and results -------------------------------------------------------
 */

static void plan_of(const struct bench_case *k, struct proc_plan *pl,
		    char *placement, size_t len)
{
	unsigned i;

	memset(pl, 0, sizeof(*pl));
	if (k->x == &xport_memcpy) {
		pl->n = 1;
		pl->fn = memcpy_role;
		snprintf(placement, len, "copy:cpu0");
		return;
	}
	if (k->method != METHOD_STREAM) {
		pl->n = 2;
		pl->cpu[1] = 1;
		pl->fn = k->method == METHOD_PINGPONG ? pp_role : fr_role;
		snprintf(placement, len, "A:cpu0 B:cpu1");
		return;
	}
	pl->n = k->nprod + k->nread;
	pl->fn = tp_role;
	/* Producers on cpu0, readers on cpu1: shared when more than one. */
	for (i = 0; i < pl->n; i++)
		pl->cpu[i] = i < k->nprod ? 0 : 1;
	snprintf(placement, len, "P0..%u:cpu0 R0..%u:cpu1%s", k->nprod - 1,
		 k->nread - 1, pl->n > 2 ? " (shared)" : "");
}

static const char *mode_name(enum mode m)
{
	return m == MODE_SPIN ? "spin" : "block";
}

static void result_base(const struct bench_case *k, struct result *res,
			const char *method)
{
	memset(res, 0, sizeof(*res));
	res->transport = k->x->name;
	res->mode = mode_name(k->mode);
	res->kind = k->kind == KIND_LATENCY ? "latency" : "throughput";
	res->method = method;
	res->msg_bytes = k->msg_bytes;
	res->nprod = k->nprod;
	res->nread = k->nread;
	res->rate_hz = k->rate_hz;
}

static void result_lat(struct result *res, const struct hist *h,
		       uint64_t elapsed)
{
	res->has_lat = true;
	res->samples = h->count;
	res->p50 = hist_quantile(h, 0.50);
	res->p90 = hist_quantile(h, 0.90);
	res->p99 = hist_quantile(h, 0.99);
	res->p999 = hist_quantile(h, 0.999);
	res->p9999 = hist_quantile(h, 0.9999);
	res->max = h->max;
	res->min = h->count ? h->min : 0;
	res->mean = h->count ? h->sum / h->count : 0;
	res->elapsed_s = (double)elapsed * 1e-9;
}

/* The slowest reader's delivery rate; every message must have arrived. */
static int result_tput(const struct bench_case *k, struct shared_area *sa,
		       struct result *res)
{
	uint64_t sent = 0, go = sa->go_ns;
	double rate = 0;
	unsigned i, nr = k->x == &xport_memcpy ? 0 : k->nread;

	for (i = 0; i < k->nprod; i++)
		sent += sa->out[i].count;
	for (i = k->nprod; i < k->nprod + nr; i++) {
		const struct role_out *o = &sa->out[i];
		double r = (double)o->count / ((double)(o->t_end - go) * 1e-9);

		if (o->count != sent)
			return -EPROTO;
		if (i == k->nprod || r < rate)
			rate = r;
	}
	if (!nr) /* memcpy */
		rate = (double)sent / ((double)(sa->out[0].t_end - go) * 1e-9);
	res->has_tput = true;
	res->samples = sent;
	res->msgs_per_s = rate;
	res->bytes_per_s = rate * k->msg_bytes;
	res->elapsed_s = (double)(sa->out[0].t_end - go) * 1e-9;
	return 0;
}

static int collect(const struct bench_case *k, struct shared_area *sa,
		   struct result *out, unsigned max, const char *placement)
{
	int n = 0;

	if (k->method == METHOD_PINGPONG && max >= 2) {
		result_base(k, &out[n], "rtt/2");
		result_lat(&out[n++], &sa->out[0].h,
			   sa->out[0].t_end - sa->go_ns);
		result_base(k, &out[n], "one-way");
		result_lat(&out[n++], &sa->out[1].h,
			   sa->out[1].t_end - sa->go_ns);
	} else if (k->method == METHOD_FIXED_RATE) {
		result_base(k, &out[n], "fixed-rate");
		result_lat(&out[n++], &sa->out[1].h,
			   sa->out[1].t_end - sa->go_ns);
	} else {
		result_base(k, &out[n], "stream");
		if (result_tput(k, sa, &out[n]))
			snprintf(out[n].error, sizeof(out[n].error),
				 "message count mismatch");
		n++;
	}
	for (int i = 0; i < n; i++)
		snprintf(out[i].placement, sizeof(out[i].placement), "%s",
			 placement);
	return n;
}

static int fail_result(const struct bench_case *k, struct result *res,
		       const char *why, bool skipped)
{
	result_base(k, res,
		    k->method == METHOD_PINGPONG     ? "rtt/2"
		    : k->method == METHOD_FIXED_RATE ? "fixed-rate"
						     : "stream");
	snprintf(res->error, sizeof(res->error), "%s", why);
	res->skipped = skipped;
	return 1;
}

static int prepare_chans(struct run *r)
{
	const struct bench_case *k = r->k;
	int rc;

	chan_init(&r->c[0], k, 0, NULL);
	if (k->x == &xport_memcpy)
		return 0;
	rc = k->x->prepare(&r->c[0]);
	if (rc || k->method != METHOD_PINGPONG)
		return rc;
	chan_init(&r->c[1], k, 1, &r->c[0]);
	r->c[0].peer = &r->c[1];
	return k->x->prepare(&r->c[1]);
}

static void cleanup_chans(struct run *r)
{
	if (r->k->x == &xport_memcpy)
		return;
	if (r->k->method == METHOD_PINGPONG)
		r->k->x->cleanup(&r->c[1]);
	r->k->x->cleanup(&r->c[0]);
}

static int execute(struct run *r, struct shared_area *sa, struct result *out,
		   unsigned max)
{
	const struct bench_case *k = r->k;
	struct proc_plan pl;
	char placement[64], why[160];
	unsigned i;
	int rc;

	plan_of(k, &pl, placement, sizeof(placement));
	pl.arg = r;
	pl.timeout_s = (int)(k->budget_ns / 1000000000ull) * 3 + 60;
	if (k->method == METHOD_FIXED_RATE)
		pl.timeout_s += (int)((k->samples + r->warm) / k->rate_hz) * 2;
	for (i = 0; i < MAX_ROLES; i++)
		hist_reset(&sa->out[i].h);
	rc = prepare_chans(r);
	if (!rc)
		rc = proc_run(&pl, sa);
	cleanup_chans(r);
	if (!rc)
		return collect(k, sa, out, max, placement);
	for (i = 0; i < pl.n && !sa->out[i].why[0]; i++)
		;
	snprintf(why, sizeof(why), "%s",
		 i < pl.n ? sa->out[i].why : strerror(-rc));
	return fail_result(k, out, why, false);
}

int case_run(const struct bench_case *k, struct result *out, unsigned max)
{
	struct shared_area *sa;
	struct run r = {.k = k};
	const char *why;
	int n;

	memset(r.c, 0, sizeof(r.c));
	r.c[0].msg_bytes = k->msg_bytes;
	r.c[0].nprod = k->nprod;
	r.c[0].nread = k->nread;
	why = k->x->unsupported ? k->x->unsupported(&r.c[0]) : NULL;
	if (why)
		return fail_result(k, out, why, true);
	r.warm = warmup(k);
	sa = shm_anon(sizeof(*sa));
	if (!sa)
		return fail_result(k, out, "out of memory", false);
	n = execute(&r, sa, out, max);
	shm_anon_free(sa, sizeof(*sa));
	return n;
}
