/* SPDX-License-Identifier: MIT */
/*
 * iceoryx classic (Debian's libiceoryx-binding-c-dev 2.0) as a baseline:
 * the closest peer, a zero-copy shared-memory transport. The sender loans
 * a chunk, copies msg_bytes into it (stamp and sequence first) and
 * publishes; the receiver takes the chunk, reads those 16 bytes in place
 * and releases it, exactly what pbring-raw does. Spin mode polls
 * iox_sub_take_chunk; block mode sleeps in a WaitSet.
 *
 * Lossless like a gating pbring reader: publishers wait for slow
 * subscribers (WAIT_FOR_CONSUMER / BLOCK_PRODUCER). The harness starts
 * its own iox-roudi with mempools for its message sizes and stops it at
 * exit, removing what RouDi and the runtimes leave behind (the ~291 MB
 * data segment, sockets, lock files). Without the package this file
 * compiles to a stub that says so.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef PBR_BENCH_ICEORYX

bool iceoryx_available(char *why, size_t len)
{
	snprintf(why, len,
		 "built without iceoryx (install iceoryx and "
		 "libiceoryx-binding-c-dev, then reconfigure)");
	return false;
}

int iceoryx_start(void)
{
	return -ENOTSUP;
}

void iceoryx_stop(void)
{
}

const struct xport xport_iceoryx = {.name = "iceoryx"};

#else

#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/notification_info.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/types.h>
#include <iceoryx_binding_c/wait_set.h>

#define IOX_SERVICE "pbrbench"
#define IOX_READY_TEXT "RouDi is ready for clients"
#define IOX_POOL_BYTES (64u << 20) /* per mempool */
/* Where iceoryx 2.0 on Linux keeps the UNIX socket and the lock file of
 * each runtime ("NAME", "NAME.lock"; RouDi's is "roudi") and RouDi's
 * one-per-host lock. */
#define IOX_TMP_DIR "/tmp"

static pid_t roudi_pid, roudi_owner; /* owner: the process that forked it */
static char roudi_cfg[64], roudi_log[64];
static const uint32_t pool_msgs[] = {64,    256,   1024,   4096,
				     16384, 65536, 262144, 1048576};

bool iceoryx_available(char *why, size_t len)
{
	if (access(PBR_BENCH_ROUDI, X_OK)) {
		snprintf(why, len, "%s not found", PBR_BENCH_ROUDI);
		return false;
	}
	return true;
}

/* Chunk size for msg bytes: payload plus iceoryx's chunk header. */
static uint32_t chunk_for(uint32_t msg)
{
	return (msg + 64 + 63) & ~63u;
}

static uint32_t pool_count(uint32_t msg)
{
	uint32_t n = IOX_POOL_BYTES / chunk_for(msg);

	return n < 32 ? 32 : (n > 4096 ? 4096 : n);
}

static int write_config(void)
{
	FILE *f;
	size_t i;

	snprintf(roudi_cfg, sizeof(roudi_cfg), "/tmp/pbrbench-roudi-%d.toml",
		 (int)getpid());
	f = fopen(roudi_cfg, "w");
	if (!f)
		return -errno;
	fprintf(f, "[general]\nversion = 1\n\n[[segment]]\n");
	for (i = 0; i < sizeof(pool_msgs) / sizeof(pool_msgs[0]); i++)
		fprintf(f, "\n[[segment.mempool]]\nsize = %u\ncount = %u\n",
			chunk_for(pool_msgs[i]), pool_count(pool_msgs[i]));
	return fclose(f) ? -errno : 0;
}

static bool roudi_ready(void)
{
	char line[256];
	bool ok = false;
	FILE *f = fopen(roudi_log, "r");

	if (!f)
		return false;
	while (!ok && fgets(line, sizeof(line), f))
		ok = strstr(line, IOX_READY_TEXT) != NULL;
	fclose(f);
	return ok;
}

static void roudi_exec(void)
{
	FILE *out = freopen(roudi_log, "w", stdout);

	if (out)
		dup2(fileno(out), STDERR_FILENO);
	execl(PBR_BENCH_ROUDI, "iox-roudi", "-c", roudi_cfg, "-m", "off", "-l",
	      "info", (char *)NULL);
	_exit(127);
}

int iceoryx_start(void)
{
	int rc = write_config(), i;

	if (rc)
		return rc;
	snprintf(roudi_log, sizeof(roudi_log), "/tmp/pbrbench-roudi-%d.log",
		 (int)getpid());
	fflush(NULL);
	roudi_owner = getpid();
	roudi_pid = fork();
	if (roudi_pid < 0)
		return -errno;
	if (roudi_pid == 0)
		roudi_exec();
	for (i = 0; i < 500 && !roudi_ready(); i++) {
		if (waitpid(roudi_pid, NULL, WNOHANG) == roudi_pid) {
			roudi_pid = 0;
			return -ECHILD; /* another RouDi running? see the log */
		}
		usleep(10000);
	}
	if (!roudi_ready()) {
		iceoryx_stop();
		return -ETIMEDOUT;
	}
	return 0;
}

/* This run's runtimes are named pbrbench_RUN_PID (runtime_get()). */
static void runtime_prefix(char *buf, size_t len)
{
	snprintf(buf, len, "pbrbench_%u_", bench_run_id);
}

/* The socket and lock file of every runtime of this run: the children
 * that used iceoryx are gone by now, and iceoryx removes neither. */
static void remove_runtime_files(void)
{
	char prefix[48];
	struct dirent *d;
	DIR *dir = opendir(IOX_TMP_DIR);

	if (!dir)
		return;
	runtime_prefix(prefix, sizeof(prefix));
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, prefix, strlen(prefix)))
			(void)unlinkat(dirfd(dir), d->d_name, 0);
	closedir(dir);
}

/*
 * What our RouDi leaves behind even after SIGTERM: its management segment,
 * the data segment of the mempools (named after the group of the user that
 * writes to it, ours: the config names none), its socket and lock files.
 * Only one RouDi runs per host (its lock), so these are ours; a RouDi
 * started later would purge and remake both segments anyway.
 */
static void remove_roudi_files(void)
{
	const struct group *g = getgrgid(getegid());
	char seg[300];

	(void)shm_unlink("/iceoryx_mgmt");
	if (g) {
		snprintf(seg, sizeof(seg), "/%s", g->gr_name);
		(void)shm_unlink(seg);
	}
	(void)unlink(IOX_TMP_DIR "/roudi");
	(void)unlink(IOX_TMP_DIR "/roudi.lock");
	(void)unlink(IOX_TMP_DIR "/iox-unique-roudi.lock");
}

void iceoryx_stop(void)
{
	int i;

	/* A forked runner inherits roudi_pid and the exit handlers: RouDi
	 * and its files are the parent's alone to stop and remove. */
	if (roudi_owner && getpid() != roudi_owner)
		return;
	if (roudi_pid > 0) {
		kill(roudi_pid, SIGTERM);
		for (i = 0; i < 300; i++) {
			if (waitpid(roudi_pid, NULL, WNOHANG) == roudi_pid)
				break;
			usleep(10000);
		}
		if (i == 300) {
			kill(roudi_pid, SIGKILL);
			waitpid(roudi_pid, NULL, 0);
		}
		roudi_pid = 0;
		remove_roudi_files();
		remove_runtime_files();
	}
	if (roudi_cfg[0])
		unlink(roudi_cfg);
	if (roudi_log[0])
		unlink(roudi_log);
	roudi_cfg[0] = roudi_log[0] = '\0';
}

/* --- the transport -----------------------------------------------------------
 */

struct iox_local {
	iox_pub_storage_t pub_st;
	iox_sub_storage_t sub_st;
	iox_ws_storage_t ws_st;
	iox_pub_t pub;
	iox_sub_t sub;
	iox_ws_t ws;
	uint8_t *src;
	bool reader;
};

static int runtime_users; /* one runtime per process, shared by chans */

static void runtime_get(void)
{
	char name[64];

	if (runtime_users++)
		return;
	runtime_prefix(name, sizeof(name));
	snprintf(name + strlen(name), sizeof(name) - strlen(name), "%d",
		 (int)getpid());
	iox_set_loglevel(Iceoryx_LogLevel_Warn); /* its Info/Debug is chatty */
	iox_runtime_init(name);
}

static void runtime_put(void)
{
	if (--runtime_users == 0)
		iox_runtime_shutdown();
}

static const char *iox_unsupported(const struct chan *c)
{
	if (c->msg_bytes >
	    pool_msgs[sizeof(pool_msgs) / sizeof(pool_msgs[0]) - 1])
		return "no mempool that large";
	return NULL;
}

static int iox_prepare(struct chan *c)
{
	(void)c;
	return 0;
}

static void iox_cleanup(struct chan *c)
{
	(void)c;
}

static void instance_of(const struct chan *c, char *buf, size_t len)
{
	snprintf(buf, len, "r%u-c%u", bench_run_id, c->id);
}

/* Wait for the other side to be connected (RouDi's discovery runs
 * periodically); 10 s at most. */
static int wait_connected(struct iox_local *l)
{
	int i;

	for (i = 0; i < 1000; i++) {
		if (l->reader ? iox_sub_get_subscription_state(l->sub) ==
					SubscribeState_SUBSCRIBED
			      : iox_pub_has_subscribers(l->pub))
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

static int open_pub(struct chan *c, struct iox_local *l, const char *inst)
{
	iox_pub_options_t o;

	iox_pub_options_init(&o);
	o.historyCapacity = 0;
	o.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
	l->pub = iox_pub_init(&l->pub_st, IOX_SERVICE, inst, "data", &o);
	l->src = payload_new(c->msg_bytes);
	return l->src ? 0 : -ENOMEM;
}

static int open_sub(struct chan *c, struct iox_local *l, const char *inst)
{
	uint32_t q = pool_count(c->msg_bytes) / (c->nread + 2);
	iox_sub_options_t o;

	iox_sub_options_init(&o);
	o.queueCapacity = q > 256 ? 256 : (q < 2 ? 2 : q);
	o.historyRequest = 0;
	o.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
	l->sub = iox_sub_init(&l->sub_st, IOX_SERVICE, inst, "data", &o);
	l->reader = true;
	if (c->mode == MODE_BLOCK) {
		l->ws = iox_ws_init(&l->ws_st);
		if (iox_ws_attach_subscriber_state(
			    l->ws, l->sub, SubscriberState_HAS_DATA, 0, NULL) !=
		    WaitSetResult_SUCCESS)
			return -EIO;
	}
	return 0;
}

static int iox_open(struct chan *c, enum role role, unsigned idx)
{
	struct iox_local *l = calloc(1, sizeof(*l));
	char inst[48];
	int rc;

	(void)idx;
	if (!l)
		return -ENOMEM;
	c->local = l;
	runtime_get();
	instance_of(c, inst, sizeof(inst));
	rc = role == ROLE_PROD ? open_pub(c, l, inst) : open_sub(c, l, inst);
	return rc ? rc : wait_connected(l);
}

static void iox_close(struct chan *c)
{
	struct iox_local *l = c->local;

	if (!l)
		return;
	if (l->ws)
		iox_ws_deinit(l->ws);
	if (l->sub)
		iox_sub_deinit(l->sub);
	if (l->pub)
		iox_pub_deinit(l->pub);
	free(l->src);
	free(l);
	c->local = NULL;
	runtime_put();
}

static int iox_send(struct chan *c, const struct msg *m)
{
	struct iox_local *l = c->local;
	void *p;
	int tries = 0;

	while (iox_pub_loan_chunk(l->pub, &p, c->msg_bytes) !=
	       AllocationResult_SUCCESS) {
		if (++tries > 10000000)
			return -ENOBUFS;
		bench_relax(); /* every chunk in flight: wait for readers */
	}
	memcpy((uint8_t *)p + sizeof(*m), l->src + sizeof(*m),
	       c->msg_bytes - sizeof(*m));
	memcpy(p, m, sizeof(*m));
	iox_pub_publish_chunk(l->pub, p);
	return 0;
}

static int iox_recv(struct chan *c, struct msg *m)
{
	struct iox_local *l = c->local;
	iox_notification_info_t info[1]; /* filled by iox_ws_wait */
	uint64_t missed;
	const void *p;
	enum iox_ChunkReceiveResult r;

	for (;;) {
		r = iox_sub_take_chunk(l->sub, &p);
		if (r == ChunkReceiveResult_SUCCESS)
			break;
		if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE)
			return -EIO;
		if (l->ws)
			(void)iox_ws_wait(l->ws, info, 1, &missed);
		else
			bench_relax();
	}
	memcpy(m, p, sizeof(*m));
	iox_sub_release_chunk(l->sub, p);
	return 0;
}

const struct xport xport_iceoryx = {
	.name = "iceoryx",
	.modes = (1u << MODE_SPIN) | (1u << MODE_BLOCK),
	.fanout = true,
	.throughput = true,
	.unsupported = iox_unsupported,
	.prepare = iox_prepare,
	.open = iox_open,
	.send = iox_send,
	.recv = iox_recv,
	.close = iox_close,
	.cleanup = iox_cleanup,
};

#endif /* PBR_BENCH_ICEORYX */
