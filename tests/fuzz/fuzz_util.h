/* SPDX-License-Identifier: MIT */
/*
 * Shared by the pbring fuzz targets (tests/fuzz/README.md): a cursor over
 * the fuzz input, unique ring names, a raw second mapping of a ring's
 * object to plant bytes in it, and the checks every target makes on the
 * views the library hands out.
 *
 * A check that fails prints what it saw and aborts: libFuzzer reports the
 * input as a crash, and the replay runner dies with SIGABRT.
 */
#ifndef PBR_FUZZ_UTIL_H
#define PBR_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pbring.h"
#include "pbring/pb.h"

#define FZ_ASSERT(c)                                                           \
	do {                                                                   \
		if (!(c))                                                      \
			fz_fail(#c, __FILE__, __LINE__);                       \
	} while (0)

void fz_fail(const char *what, const char *file, int line)
	__attribute__((noreturn));

/* With FZ_TRACE=1 in the environment, print what an input did (to check
 * that a seed reaches what it was written for). */
void fz_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --- the fuzz input: every read past the end yields zeros ----------------- */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

uint8_t fz_u8(struct fz_in *in);
uint16_t fz_u16(struct fz_in *in);
uint32_t fz_u32(struct fz_in *in);
uint64_t fz_u64(struct fz_in *in);
/* Copy up to @max input bytes into @dst; returns how many were copied. */
size_t fz_bytes(struct fz_in *in, void *dst, size_t max);

/* A buffer of @len bytes that ends where a PROT_NONE page begins, so that
 * a read past its end faults even in code built without ASan (nanopb's
 * runtime is Debian's prebuilt archive). Two arenas (@which 0 or 1), each
 * reused by the next call; contents are undefined. Larger requests fall
 * back to malloc (and must then be freed with fz_unguard). */
void *fz_guarded(unsigned which, size_t len);
void fz_unguard(unsigned which, void *p);

/* --- rings ---------------------------------------------------------------- */

/* A fresh ring name "fz-<pid>-<n>" in @buf (at least 32 bytes). */
const char *fz_name(char *buf, size_t n);
/* "/dev/shm/pbring.<name>" */
void fz_path(const char *name, char *buf, size_t n);

/* A second, raw mapping of a ring's object: where a target plants the
 * bytes the library will find. */
struct fz_raw {
	int fd;
	size_t size;
	uint8_t *base;
};

int fz_raw_map(const char *name, struct fz_raw *raw);
void fz_raw_unmap(struct fz_raw *raw);

/* Where the library mapped the ring, from the geometry it was created
 * with: its slots are what every view must stay inside. */
struct fz_geo {
	const uint8_t *base; /* the library's mapping */
	uint64_t size;
	const uint8_t *slots;
	uint32_t slot_count, slot_size, payload_cap;
};

/* @sb: a superblock the ring was validated from (the raw mapping's). */
void fz_geo_of(const struct pbr_ring *r, const struct pbr_layout_super *sb,
	       struct fz_geo *g);
/* A view returned by peek: inside the slot of its sequence. */
void fz_check_view(const struct fz_geo *g, const struct pbr_view *v);
/* A reserved slot: its payload area exactly. */
void fz_check_slot(const struct fz_geo *g, const struct pbr_slot *s);

/*
 * Loads of shared words. The targets link the library built with the hook
 * of atomics-hook.patch (PBR_ADVERSARIAL_LOADS), so every load of a shared
 * word goes through pbr_adv_load64/32: fuzz_util.c defines them (weak) to
 * pass the value through, fuzz_shm_adversarial.c to replace it. Either
 * way each load is accounted for the ring named by fz_watch(): it must be
 * aligned and inside that ring's mapping, and between two loads of a
 * slot's commit word each other header word of the slot is loaded at most
 * once (FORMAT.md §9.2: each header field is read once into a local).
 */
void fz_watch(const struct fz_geo *g); /* NULL: no ring watched */
void fz_account_load(const void *p, unsigned width);
uint64_t pbr_adv_load64(const void *p, uint64_t seen);
uint32_t pbr_adv_load32(const void *p, uint32_t seen);

/* Decode @v as a pbring.demo.v1.DeviceEvent in place (pbr_view_decode)
 * and from a private copy (pbr_view_decode_copy) and check that the
 * results stay inside what they were decoded from. */
void fz_decode_event(const struct pbr_view *v, unsigned flags);

#endif /* PBR_FUZZ_UTIL_H */
