/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the `pbring` command: error reporting with the exit
 * codes every subcommand uses, number parsing, and a latency histogram.
 */
#ifndef PBR_CLI_H
#define PBR_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "pbring.h"

#define EXIT_USAGE 2   /* bad command line */
#define EXIT_RUNTIME 1 /* the command ran and failed */

/* "pbring: RING: reason" on stderr. */
void cli_fail(const char *ring, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Report a library error code for ring and return EXIT_RUNTIME. */
int cli_err(const char *ring, const char *what, int err);
/* "pbring CMD: message" + hint on stderr; returns EXIT_USAGE. */
/* --log-format json (main.c): every line on stderr is then a JSON object
 * (ts, level, service, event = cli_cmd + "." + kind, ring, trace_id,
 * message); otherwise the text, @text_prefix + the message. */
extern bool cli_log_json;
extern const char *cli_cmd;
void cli_log(const char *level, const char *kind, const char *ring,
	     const char *trace_id, const char *text_prefix, const char *fmt,
	     ...) __attribute__((format(printf, 6, 7)));

int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Strict number parsing: the whole string, in range. */
bool cli_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
bool cli_seconds(const char *s, double *out);
bool cli_mode(const char *s, uint32_t *out);

int64_t cli_now_ns(void);
/* Unix-epoch nanoseconds as "2026-12-05T10:00:00.123456789Z", in buf. */
const char *cli_utc(uint64_t ns, char *buf, size_t len);
bool cli_tty(int fd);

/* Attach to ring for subcommand cmd, with one-line errors: returns 0, or
 * the exit status (EXIT_USAGE for a bad name, else EXIT_RUNTIME). */
int cli_attach(const char *cmd, const char *ring, struct pbr_ring **out);
/* The same, with --any-owner: accept a ring owned by another user. */
int cli_attach_as(const char *cmd, const char *ring, bool any_owner,
		  struct pbr_ring **out);
/* The same, with any PBR_ATTACH_* flags (consume --tap: read-only). */
int cli_attach_flags(const char *cmd, const char *ring, uint32_t flags,
		     struct pbr_ring **out);
/* After getopt_long returned '?' or ':': one line naming the option. */
int cli_bad_option(const char *cmd, char **argv, int c);
/* Refuse (with a one-line error, returning EXIT_RUNTIME) a ring that does
 * not hold pbring.demo.v1.DeviceEvent. */
int cli_check_type(const char *name, struct pbr_ring *ring);
/* Wait up to timeout_ns for a gating reader, saying once on stderr that
 * it waits: 0, -ETIMEDOUT, -EINTR (Ctrl-C), or pbr_ring_check()'s error. */
int cli_wait_gating_reader(struct pbr_ring *ring, const char *name,
			   int64_t timeout_ns);

/* Log-linear histogram of nanosecond values: 64 octaves x 32 steps,
 * about 3 % resolution, fixed size, no allocation per sample. */
#define HIST_SUB 32
struct cli_hist {
	uint64_t count, max, min;
	uint64_t bucket[64 * HIST_SUB];
};
void hist_add(struct cli_hist *h, uint64_t v);
uint64_t hist_pct(const struct cli_hist *h, double pct);
void hist_merge(struct cli_hist *into, const struct cli_hist *from);
/* A duration with its unit chosen for it: "850 ns", "12.3 us", "2.6 ms",
 * "41.9 s" (the Go and Python commands print the same). */
const char *cli_duration(uint64_t ns, char *buf, size_t len);

/* Ctrl-C and SIGTERM (stop.c): record the signal and interrupt @ring's
 * waits (NULL: none yet; a second call sets it). A second signal kills. */
void cli_stop_install(struct pbr_ring *ring);
/* pbr_ring_detach(), after the handler has let go of @ring. */
void cli_stop_detach(struct pbr_ring *ring);
/* The signal that asked us to stop, or 0. */
int cli_stop_signal(void);
/* "pbring: RING: interrupted"; returns the exit status, 128 + signal. */
int cli_stop_status(const char *ring);

/* What changed under a running command: gating readers that died, and
 * the ring removed or shrunk. Poll a few times a second. */
#define CLI_WATCH_MAX 1024 /* gating readers: every reader entry */
struct cli_watch {
	struct pbr_ring *ring;
	const char *name;
	uint64_t reaped; /* ring's readers_reaped at the last look */
	unsigned ngating;
	struct {
		uint32_t index, pid;
	} gating[CLI_WATCH_MAX];
};
void cli_watch_init(struct cli_watch *w, struct pbr_ring *ring,
		    const char *name);
/* The ring is full: say which gating reader it waits for (the one
 * furthest behind), once per stall. */
void cli_watch_full(struct cli_watch *w);
/* Report gating readers reaped since the last poll (one line each);
 * returns pbr_ring_check(): 0, -EIDRM (removed) or -EUCLEAN. */
int cli_watch_poll(struct cli_watch *w);

/* Subcommands. */
/* One ring's metrics as read at one moment (metrics.c). */
struct cli_snap {
	char name[PBR_NAME_MAX + 1];
	bool up; /* read; else only pbring_ring_up 0 is shown */
	struct pbr_ring_info info;
	struct pbr_ring_stats st;
	struct pbr_participant *pt; /* n entries, allocated */
	int n;
};
/* Read @ring's info, counters and participants into @s: 0 or -ENOMEM.
 * Free with cli_snap_free(). */
int cli_snap_take(struct cli_snap *s, const char *name, struct pbr_ring *ring);
void cli_snap_free(struct cli_snap *s);
/* The names of the rings in PBR_SHM_DIR (as `pbring ls` finds them),
 * sorted, *n of them; free with cli_ring_names_free(). */
char **cli_ring_names(int *n);
void cli_ring_names_free(char **names, int n);
/* The Prometheus text exposition of @n rings (docs/METRICS.md). */
void cli_metrics_text(FILE *f, const struct cli_snap *s, int n);

int cmd_create(int argc, char **argv);
int cmd_stat(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_produce(int argc, char **argv);
int cmd_consume(int argc, char **argv);
int cmd_schema(int argc, char **argv);
int cmd_demo(int argc, char **argv, const char *self);
int cmd_exporter(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_bridge(int argc, char **argv);

#endif /* PBR_CLI_H */
