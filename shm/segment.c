/* SPDX-License-Identifier: MIT */
/*
 * Segment lifecycle: create, attach (with validation), detach, unlink.
 *
 * Creation (FORMAT.md "Creating a ring"): shm_open(O_CREAT|O_EXCL) with
 * mode 0600, posix_fallocate to the full size (a full tmpfs fails here, not
 * with SIGBUS later), fill every field, release-store state = READY last
 * (R0), then chmod to the requested mode. Attach (FORMAT.md "Attaching"):
 * fstat checks before mmap, acquire-load of state (A0), then one copy of
 * the superblock that is validated field by field; only the validated
 * local copy is used afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define PBR_DEFAULT_SLOTS 1024u
#define PBR_DEFAULT_SLOT_SIZE 1024u
#define PBR_DEFAULT_PARTICIPANTS 8u

static int shm_path(const char *name, char *buf, size_t len)
{
	int rc = pbr_name_check(name);

	if (rc)
		return rc;
	snprintf(buf, len, "/" PBR_NAME_PREFIX "%s", name);
	return 0;
}

static uint64_t page_up(uint64_t v)
{
	return (v + PBR_PAGE - 1) & ~(uint64_t)(PBR_PAGE - 1);
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* Fill the geometry of a superblock from creation options. */
static int plan_layout(const struct pbr_create_opts *o,
		       struct pbr_layout_super *sb)
{
	uint64_t n = o->slot_count ? o->slot_count : PBR_DEFAULT_SLOTS;
	uint64_t sz = o->slot_size ? o->slot_size : PBR_DEFAULT_SLOT_SIZE;
	uint64_t np =
		o->max_producers ? o->max_producers : PBR_DEFAULT_PARTICIPANTS;
	uint64_t nr =
		o->max_readers ? o->max_readers : PBR_DEFAULT_PARTICIPANTS;

	/* Stored schema bytes and their hash agree (§3.2): the hash is
	 * computed here, and a different one given for them is refused. */
	if (o->schema_len && o->schema_hash &&
	    o->schema_hash != pbr_schema_hash(o->schema, o->schema_len))
		return -EINVAL;

	if (o->flags & PBR_CREATE_SINGLE_PRODUCER) {
		if (o->max_producers > 1)
			return -EINVAL;
		np = 1;
	}
	if (!is_pow2(n) || n < PBR_SLOT_COUNT_MIN || n > PBR_SLOT_COUNT_MAX ||
	    sz % PBR_BLOCK || sz < PBR_SLOT_SIZE_MIN ||
	    sz > PBR_SLOT_SIZE_MAX || np > PBR_PARTICIPANTS_MAX ||
	    nr > PBR_PARTICIPANTS_MAX ||
	    (o->flags &
	     ~(PBR_CREATE_SINGLE_PRODUCER | PBR_CREATE_DURABLE_READERS)) ||
	    (o->mode & ~0777u) || (o->schema_len && !o->schema) ||
	    o->crc > PBR_CRC_UPTO || (o->crc != PBR_CRC_UPTO && o->crc_limit) ||
	    (o->msg_type && strlen(o->msg_type) > PBR_MSG_TYPE_MAX))
		return -EINVAL;
	sb->slot_count = (uint32_t)n;
	sb->slot_size = (uint32_t)sz;
	sb->max_producers = (uint32_t)np;
	sb->max_readers = (uint32_t)nr;
	sb->control_off = PBR_PAGE;
	sb->control_size = PBR_CTL_SIZE;
	sb->participants_off = sb->control_off + sb->control_size;
	sb->participants_size =
		page_up((np + nr) * PBR_ENTRY_SIZE + nr * PBR_METRICS_SIZE);
	sb->schema_off = sb->participants_off + sb->participants_size;
	sb->schema_size = page_up(o->schema_len);
	sb->slots_off = sb->schema_off + sb->schema_size;
	sb->slots_size = n * sz;
	sb->total_size = sb->slots_off + sb->slots_size;
	return 0;
}

static void fill_identity(const char *name, const struct pbr_create_opts *o,
			  struct pbr_layout_super *sb)
{
	sb->magic = PBR_MAGIC;
	sb->major = PBR_FORMAT_MAJOR;
	sb->minor = PBR_FORMAT_MINOR;
	sb->fingerprint = PBR_LAYOUT_FINGERPRINT;
	sb->features_compat = PBR_FEATURE_READER_METRICS;
	sb->features_incompat = (o->flags & PBR_CREATE_DURABLE_READERS)
					? PBR_FEATURE_DURABLE_READERS
					: 0;
	sb->ring_flags = (o->flags & PBR_CREATE_SINGLE_PRODUCER)
				 ? PBR_RING_SINGLE_PRODUCER
				 : 0;
	sb->seq_base = o->seq_base;
	sb->crc_policy = o->crc;
	sb->crc_limit = o->crc_limit;
	sb->schema_hash = o->schema_len
				  ? pbr_schema_hash(o->schema, o->schema_len)
				  : o->schema_hash;
	sb->schema_len = o->schema_len;
	sb->creator_uid = (uint32_t)geteuid();
	sb->creator_pid = (uint32_t)getpid();
	sb->created_ns = pbri_realtime_ns();
	strncpy(sb->name, name, sizeof(sb->name) - 1);
	if (o->msg_type)
		strncpy(sb->msg_type, o->msg_type, sizeof(sb->msg_type) - 1);
}

/* Write the new segment's contents; state is published last (R0). */
static void init_segment(uint8_t *base, const struct pbr_layout_super *sb,
			 const struct pbr_create_opts *o)
{
	memcpy(base, sb, offsetof(struct pbr_layout_super, state));
	memcpy(base + offsetof(struct pbr_layout_super, major),
	       (const uint8_t *)sb + offsetof(struct pbr_layout_super, major),
	       sizeof(*sb) - offsetof(struct pbr_layout_super, major));
	if (o->schema_len)
		memcpy(base + sb->schema_off, o->schema, o->schema_len);
	st_rlx64(base + sb->control_off + PBR_CTL_CLAIM, sb->seq_base);
	/* R0: every byte above is visible before state reads READY; pairs
	 * with A0 in wait_ready(). Slots and entries are zero from fallocate.
	 */
	st_rel32(base + offsetof(struct pbr_layout_super, state),
		 PBR_STATE_READY);
}

/* Map fd (size bytes) and validate it into a new handle; read-only (for
 * PBR_ATTACH_READONLY) maps it PROT_READ. */
static int ring_from_fd(int fd, size_t size, bool readonly,
			struct pbr_ring **out);

int pbr_ring_create(const char *name, const struct pbr_create_opts *opts,
		    struct pbr_ring **out)
{
	static const struct pbr_create_opts defaults;
	const struct pbr_create_opts *o = opts ? opts : &defaults;
	struct pbr_layout_super sb;
	char path[PBR_NAME_MAX + 16];
	uint8_t *base;
	int fd, rc;

	*out = NULL;
	memset(&sb, 0, sizeof(sb));
	rc = shm_path(name, path, sizeof(path));
	if (!rc)
		rc = plan_layout(o, &sb);
	if (rc)
		return rc;
	fill_identity(name, o, &sb);
	/* 0600 while it is being initialised; the asked mode once ready. */
	fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* The creation lock (FORMAT.md §12.1): held until READY, so that an
	 * attacher can tell a ring being created from a damaged one. */
	rc = pbri_lock_take(fd, PBR_CREATION_LOCK);
	if (!rc)
		rc = -posix_fallocate(fd, 0, (off_t)sb.total_size);
	if (rc)
		goto fail;
	base = mmap(NULL, sb.total_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto fail;
	}
	init_segment(base, &sb, o);
	munmap(base, sb.total_size);
	pbri_lock_drop(fd, PBR_CREATION_LOCK);
	if (fchmod(fd, o->mode ? o->mode : 0600) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = ring_from_fd(fd, sb.total_size, false, out);
	if (rc)
		goto fail;
	return 0;
fail:
	close(fd);
	shm_unlink(path);
	return rc;
}

/* fstat checks made before anything is mapped. */
static int check_stat(int fd, uint32_t flags, size_t *size)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -ENODEV;
	if ((st.st_mode & S_IWOTH) ||
	    (st.st_uid != geteuid() && !(flags & PBR_ATTACH_ANY_OWNER)))
		return -EPERM;
	*size = (size_t)st.st_size;
	return 0;
}

/* -EINTR if a signal handler ran meanwhile: attach is a wait too. */
static int sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000L};

	return nanosleep(&ts, NULL) < 0 && errno == EINTR ? -EINTR : 0;
}

/* The first page's verdict: 0 ready, -EAGAIN not yet, -EPROTO foreign. */
static int page_state(int fd, size_t size)
{
	uint32_t state;
	uint64_t magic;
	void *m;

	if (size < PBR_PAGE)
		return -EAGAIN;
	m = mmap(NULL, PBR_PAGE, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	/* A0: pairs with R0 in init_segment(). */
	state = ld_acq32((uint8_t *)m +
			 offsetof(struct pbr_layout_super, state));
	magic = ld_rlx64(m);
	munmap(m, PBR_PAGE);
	if (state == PBR_STATE_READY)
		return 0;
	/* A creator writes the magic before READY; anything but zero or
	 * ours is another file, whatever its state word says. */
	return magic && magic != PBR_MAGIC ? -EPROTO : -EAGAIN;
}

/* Is the creator still at work? Its creation lock says (§12.1). Only
 * tested: taking it, even for a moment, could make a creator that is
 * about to take it fail. */
static bool creator_alive(int fd)
{
	return pbri_lock_held(fd, PBR_CREATION_LOCK);
}

/*
 * Wait while the creator sizes the object and publishes READY. Without a
 * live creator a ring that is not ready is damaged, and is said so at
 * once; only an empty object gets a short grace, since a creator takes
 * its lock just after the object appears.
 */
static int look(int fd, uint32_t flags, size_t *size)
{
	int rc = check_stat(fd, flags, size);

	return rc ? rc : page_state(fd, *size);
}

static int wait_ready(int fd, uint32_t flags, int64_t timeout_ns, size_t *size)
{
	int64_t deadline = pbri_now_ns() + timeout_ns, orphan = 0, now;
	int rc;

	while ((rc = look(fd, flags, size)) == -EAGAIN) {
		now = pbri_now_ns();
		if (creator_alive(fd)) {
			orphan = 0;
		} else {
			/* READY is published before the unlock: look again. */
			if ((rc = look(fd, flags, size)) != -EAGAIN)
				return rc;
			orphan = orphan ? orphan : now;
			if (*size || now - orphan >= PBR_CREATION_GRACE_NS)
				return -EUCLEAN;
		}
		if (now >= deadline)
			return -ETIMEDOUT;
		if (sleep_ms(1))
			return -EINTR;
	}
	return rc;
}

int pbr_ring_attach(const char *name, const struct pbr_attach_opts *opts,
		    struct pbr_ring **out)
{
	int64_t timeout = opts && opts->timeout_ns > 0 ? opts->timeout_ns
						       : PBR_ATTACH_TIMEOUT_NS;
	uint32_t flags = opts ? opts->flags : 0;
	bool ro = flags & PBR_ATTACH_READONLY;
	char path[PBR_NAME_MAX + 16];
	size_t size = 0;
	int fd, rc;

	*out = NULL;
	rc = shm_path(name, path, sizeof(path));
	if (rc)
		return rc;
	/* Read-only needs read permission only (FORMAT.md §9.5): nothing
	 * below writes, and the creation lock is only tested (F_OFD_GETLK,
	 * which needs no write access), never taken. */
	fd = shm_open(path, (ro ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
	if (fd < 0)
		return errno == EINVAL ? -ENODEV : -errno; /* glibc: EISDIR */
	rc = wait_ready(fd, flags, timeout, &size);
	if (!rc)
		rc = ring_from_fd(fd, size, ro, out);
	if (rc)
		close(fd);
	return rc;
}

/* Schema identity (FORMAT.md §3.2), FNV-1a: simple enough for Go and
 * Python to redo byte for byte, and with 64 bits it tells schema versions
 * apart, which is all it is for (no defence against a forged schema). */
uint64_t pbr_schema_hash(const void *fds, size_t len)
{
	const uint8_t *p = fds;
	uint64_t h = 0xcbf29ce484222325ull;

	if (!len)
		return 0;
	while (len--) {
		h ^= *p++;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1; /* 0 means "no schema" in the superblock */
}

/* Stored schema bytes must hash to the stored schema_hash (§3.2). */
static int check_schema(const uint8_t *base, const struct pbr_layout_super *sb)
{
	if (!sb->schema_len || !sb->schema_hash)
		return 0;
	return pbr_schema_hash(base + sb->schema_off, sb->schema_len) ==
			       sb->schema_hash
		       ? 0
		       : -EUCLEAN;
}

/* Identity checks, in the order a reader of FORMAT.md expects them. */
static int check_identity(const struct pbr_layout_super *sb)
{
	if (sb->magic != PBR_MAGIC)
		return -EPROTO;
	if (sb->major != PBR_FORMAT_MAJOR)
		return -EPROTONOSUPPORT;
	if (sb->fingerprint != PBR_LAYOUT_FINGERPRINT)
		return -EPROTOTYPE;
	if (sb->features_incompat & ~PBR_FEATURES_INCOMPAT_KNOWN)
		return -ENOTSUP;
	return 0;
}

/* Region [off, off + len) starts at or after *end, page-aligned. */
static bool region_ok(uint64_t off, uint64_t len, uint64_t *end)
{
	if (off % PBR_PAGE || off < *end || len > UINT64_MAX - off)
		return false;
	*end = off + len;
	return true;
}

static bool strz_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* Geometry checks against the real size; -EUCLEAN on any failure. */
static int check_geometry(const struct pbr_layout_super *sb, size_t size)
{
	uint64_t end = PBR_PAGE;
	uint64_t entries = (uint64_t)sb->max_producers + sb->max_readers;
	uint64_t ptab = entries * PBR_ENTRY_SIZE;

	if (sb->features_compat & PBR_FEATURE_READER_METRICS)
		ptab += (uint64_t)sb->max_readers * PBR_METRICS_SIZE;
	if (sb->total_size != size || !is_pow2(sb->slot_count) ||
	    sb->slot_count < PBR_SLOT_COUNT_MIN ||
	    sb->slot_count > PBR_SLOT_COUNT_MAX || sb->slot_size % PBR_BLOCK ||
	    sb->slot_size < PBR_SLOT_SIZE_MIN ||
	    sb->slot_size > PBR_SLOT_SIZE_MAX || sb->max_producers < 1 ||
	    sb->max_producers > PBR_PARTICIPANTS_MAX || sb->max_readers < 1 ||
	    sb->max_readers > PBR_PARTICIPANTS_MAX ||
	    ((sb->ring_flags & PBR_RING_SINGLE_PRODUCER) &&
	     sb->max_producers != 1))
		return -EUCLEAN;
	if (!region_ok(sb->control_off, sb->control_size, &end) ||
	    sb->control_size < PBR_CTL_SIZE ||
	    !region_ok(sb->participants_off, sb->participants_size, &end) ||
	    sb->participants_size < ptab ||
	    !region_ok(sb->schema_off, sb->schema_size, &end) ||
	    sb->schema_len > sb->schema_size ||
	    !region_ok(sb->slots_off, sb->slots_size, &end) ||
	    sb->slots_size != (uint64_t)sb->slot_count * sb->slot_size ||
	    end > sb->total_size)
		return -EUCLEAN;
	if (!strz_ok(sb->name, sizeof(sb->name)) ||
	    !strz_ok(sb->msg_type, sizeof(sb->msg_type)))
		return -EUCLEAN;
	return 0;
}

static void fill_info(struct pbr_ring *r, const struct pbr_layout_super *sb)
{
	struct pbr_ring_info *i = &r->info;

	memset(i, 0, sizeof(*i));
	memcpy(i->name, sb->name, sizeof(i->name) - 1);
	memcpy(i->msg_type, sb->msg_type, sizeof(i->msg_type) - 1);
	i->format_major = sb->major;
	i->format_minor = sb->minor;
	i->ring_flags = sb->ring_flags;
	i->slot_count = sb->slot_count;
	i->slot_size = sb->slot_size;
	i->payload_cap = sb->slot_size - PBR_SLOT_HDR_SIZE;
	i->max_producers = sb->max_producers;
	i->max_readers = sb->max_readers;
	i->total_size = sb->total_size;
	i->seq_base = sb->seq_base;
	i->schema_hash = sb->schema_hash;
	i->created_ns = sb->created_ns;
	i->schema_len = sb->schema_len;
	i->creator_uid = sb->creator_uid;
	i->creator_pid = sb->creator_pid;
	i->schema = r->base + sb->schema_off;
	/* A policy from a newer minor that this library does not know: the
	 * safe reading is FULL (a CRC too many costs time, not messages). */
	i->crc = sb->crc_policy <= PBR_CRC_UPTO ? sb->crc_policy : PBR_CRC_FULL;
	i->crc_limit = i->crc == PBR_CRC_UPTO ? sb->crc_limit : 0;
	i->features_incompat = sb->features_incompat;
	i->features_compat = sb->features_compat;
}

/* The CRC policy as one comparison: payloads shorter than this get one. */
static uint64_t crc_below(const struct pbr_ring_info *i)
{
	if (i->crc == PBR_CRC_NONE)
		return 0;
	if (i->crc == PBR_CRC_UPTO)
		return (uint64_t)i->crc_limit + 1;
	return UINT64_MAX;
}

static void adopt_geometry(struct pbr_ring *r,
			   const struct pbr_layout_super *sb)
{
	r->ctl = r->base + sb->control_off;
	r->ptab = r->base + sb->participants_off;
	r->rtab = r->ptab + (size_t)sb->max_producers * PBR_ENTRY_SIZE;
	r->mtab = (sb->features_compat & PBR_FEATURE_READER_METRICS)
			  ? r->rtab + (size_t)sb->max_readers * PBR_ENTRY_SIZE
			  : NULL;
	r->slots = r->base + sb->slots_off;
	r->schema = r->base + sb->schema_off;
	r->seq_base = sb->seq_base;
	r->slot_count = sb->slot_count;
	r->mask = sb->slot_count - 1;
	r->slot_size = sb->slot_size;
	r->payload_cap = sb->slot_size - PBR_SLOT_HDR_SIZE;
	r->max_producers = sb->max_producers;
	r->max_readers = sb->max_readers;
	r->ring_flags = sb->ring_flags;
	r->durable = sb->features_incompat & PBR_FEATURE_DURABLE_READERS;
	fill_info(r, sb);
	r->crc_below = crc_below(&r->info);
}

static void init_probe_lock(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	/* recovery probes other entries while a reap holds one */
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

static int ring_from_fd(int fd, size_t size, bool readonly,
			struct pbr_ring **out)
{
	struct pbr_layout_super sb;
	struct pbr_ring *r;
	uint8_t *base;
	int rc, prot;

	if (size < sizeof(sb))
		return -EUCLEAN;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	/* PROT_READ alone: a store by mistake faults here rather than
	 * corrupting a ring we promised not to touch. */
	prot = readonly ? PROT_READ : PROT_READ | PROT_WRITE;
	base = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) {
		free(r);
		return -errno;
	}
	pbri_sigbus_guard(base, size, prot, &r->truncated);
	/* The one read of the superblock: everything below uses the copy. */
	memcpy(&sb, base, sizeof(sb));
	rc = check_identity(&sb);
	if (!rc)
		rc = check_geometry(&sb, size);
	if (!rc)
		rc = check_schema(base, &sb);
	if (!rc && atomic_load(&r->truncated))
		rc = -EUCLEAN; /* shrunk while we read it */
	if (rc) {
		pbri_sigbus_unguard(base);
		munmap(base, size);
		free(r);
		return rc;
	}
	pthread_mutex_init(&r->lock, NULL);
	init_probe_lock(&r->probe_lock);
	r->base = base;
	r->size = size;
	r->fd = fd;
	r->readonly = readonly;
	adopt_geometry(r, &sb);
	*out = r;
	return 0;
}

void pbr_ring_detach(struct pbr_ring *r)
{
	if (!r)
		return;
	/* Each close takes its handle off the list. */
	while (r->handles)
		r->handles->close(r->handles);
	pbri_sigbus_unguard(r->base);
	munmap(r->base, r->size);
	close(r->fd);
	pthread_mutex_destroy(&r->lock);
	pthread_mutex_destroy(&r->probe_lock);
	free(r);
}

int pbr_ring_format(const char *name, uint16_t *major, uint16_t *minor)
{
	char path[PBR_NAME_MAX + 16];
	uint16_t v[2];
	ssize_t n;
	int fd, rc = shm_path(name, path, sizeof(path));

	if (rc)
		return rc;
	fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = pread(fd, v, sizeof(v), offsetof(struct pbr_layout_super, major));
	close(fd);
	if (n != (ssize_t)sizeof(v))
		return n < 0 ? -errno : -EUCLEAN;
	*major = v[0];
	*minor = v[1];
	return 0;
}

int pbr_ring_unlink(const char *name)
{
	char path[PBR_NAME_MAX + 16];
	int rc = shm_path(name, path, sizeof(path));

	if (rc)
		return rc;
	return shm_unlink(path) < 0 ? -errno : 0;
}

/*
 * The object's link count says whether the name still leads to it (0
 * once unlinked, even if a new ring took the name since); its size,
 * whether it was shrunk under the mapping before anything touched the
 * lost pages.
 */
int pbr_ring_check(struct pbr_ring *r)
{
	struct stat st;

	if (atomic_load_explicit(&r->truncated, memory_order_relaxed))
		return -EUCLEAN;
	if (fstat(r->fd, &st) < 0)
		return -errno;
	if (st.st_nlink == 0)
		return -EIDRM;
	if (st.st_size < 0 || (uint64_t)st.st_size < r->size)
		return -EUCLEAN;
	return 0;
}

void pbr_ring_info(const struct pbr_ring *r, struct pbr_ring_info *info)
{
	*info = r->info;
}

void pbr_ring_stats(const struct pbr_ring *r, struct pbr_ring_stats *st)
{
	const uint8_t *s = r->ctl + PBR_CTL_STATS;

	st->claimed = ld_acq64(r->ctl + PBR_CTL_CLAIM);
	st->abandoned =
		ld_rlx64(s + offsetof(struct pbr_layout_stats, abandoned));
	st->producers_reaped = ld_rlx64(
		s + offsetof(struct pbr_layout_stats, producers_reaped));
	st->readers_reaped =
		ld_rlx64(s + offsetof(struct pbr_layout_stats, readers_reaped));
}

void pbri_ring_add_handle(struct pbr_ring *r, struct pbri_handle *h)
{
	pthread_mutex_lock(&r->lock);
	h->next = r->handles;
	r->handles = h;
	pthread_mutex_unlock(&r->lock);
}

void pbri_ring_forget_handle(struct pbr_ring *r, struct pbri_handle *h)
{
	struct pbri_handle **pp;

	pthread_mutex_lock(&r->lock);
	for (pp = &r->handles; *pp; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	pthread_mutex_unlock(&r->lock);
}

/* How far back from the claim pbr_ring_last_commit() looks. */
#define LAST_COMMIT_WINDOW 1024u

/* Sequence p's timestamp if its slot holds p's message, committed and
 * still in place; else 0. */
static uint64_t committed_stamp(const struct pbr_ring *r, uint64_t p)
{
	const struct pbr_layout_slot *s =
		(const struct pbr_layout_slot *)slot_at(r, p);
	uint64_t ts, v;

	/* A1: pairs with R1 in the producer's commit: the header written
	 * before DONE(p) is visible. */
	if (ld_acq64(&s->commit) != PBR_COMMIT_DONE(p) ||
	    (ld_rlx32(&s->producer) >> 16) & PBR_SLOT_F_SKIP)
		return 0;
	ts = ld_rlx64(&s->timestamp_ns);
	/* The header read before the commit word's second look: a producer
	 * that reused the slot meanwhile changed that word first. */
	fence_acq();
	v = ld_rlx64(&s->commit);
	return v == PBR_COMMIT_DONE(p) ? ts : 0;
}

int pbr_ring_last_commit(struct pbr_ring *r, uint64_t *seq,
			 uint64_t *timestamp_ns)
{
	/* A3: pairs with R3 in the producer's claim. */
	uint64_t claim = ld_acq64(ctl_word(r, PBR_CTL_CLAIM));
	uint64_t n = claim - r->seq_base, k, ts;

	if (ring_broken(r))
		return -EUCLEAN;
	if (n > r->slot_count)
		n = r->slot_count;
	if (n > LAST_COMMIT_WINDOW)
		n = LAST_COMMIT_WINDOW;
	for (k = 1; k <= n; k++) {
		ts = committed_stamp(r, claim - k);
		if (ts) {
			*seq = claim - k;
			*timestamp_ns = ts;
			return 0;
		}
	}
	return -ENODATA;
}
