/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the micro benchmarks and pbring-bench. */
#ifndef PBR_BENCH_UTIL_H
#define PBR_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "demo_event.h"

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The spin-loop hint the library uses too, so that the baselines spin
 * exactly like pbring does. */
static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Keep the compiler from dropping a computed value. */
static inline void bench_keep(uint64_t v)
{
	__asm__ __volatile__("" : : "r"(v) : "memory");
}

/*
 * Prepare a DeviceEvent whose encoding is msg_bytes long (give or take
 * the varint growth of seq and sent_ns): the blob is sized to fill it.
 * Returns 0 or -errno.
 */
int bench_event_init(struct demo_event *e, uint32_t msg_bytes);

/* Slot size (header included, a multiple of 128) for msg_bytes payloads,
 * with room for a DeviceEvent whose varints grew. */
uint32_t bench_slot_size(uint32_t msg_bytes);

#endif /* PBR_BENCH_UTIL_H */
