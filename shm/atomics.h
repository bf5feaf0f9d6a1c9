/* SPDX-License-Identifier: MIT */
/*
 * The only door to shared memory. Every access to a word that another
 * process may touch goes through one of these helpers, with its order
 * spelled out; the protocol uses nothing but 32/64-bit loads, stores,
 * fetch-add and compare-and-swap so that Go's sync/atomic can implement it.
 * Pairing labels (R1, A1, ...) are defined in docs/FORMAT.md, "Ordering".
 *
 * The shared words are plain integers in layout.h; they are accessed as
 * _Atomic objects of the same size, which is sound for lock-free sizes on
 * every ABI we build for (asserted below).
 */
#ifndef PBR_ATOMICS_H
#define PBR_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint64_t) == 8, "atomic u64 must be 8 bytes");
_Static_assert(sizeof(_Atomic uint32_t) == 4, "atomic u32 must be 4 bytes");
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "pbring's segment format is little-endian; big-endian hosts are unsupported"
#endif

/* Through void *, not an integer: the cast drops the const of a load's
 * pointer (an atomic load takes a non-const one in C11) and keeps its
 * provenance, which the compiler's alias analysis uses. */
#define PBR_A64(p) ((_Atomic uint64_t *)(void *)(p))
#define PBR_A32(p) ((_Atomic uint32_t *)(void *)(p))

#ifdef PBR_ADVERSARIAL_LOADS
/*
 * Fuzzing only (tests/fuzz/fuzz_shm_adversarial.c), never in a real build:
 * every load of a shared word returns what the fuzz target's hook makes
 * of the value actually read, possibly something else on each load, as a
 * hostile peer racing the reader could. Code that reads a field twice and
 * trusts both reads then shows up as a wrong bound under the fuzzer.
 */
uint64_t pbr_adv_load64(const void *p, uint64_t seen);
uint32_t pbr_adv_load32(const void *p, uint32_t seen);

static inline uint64_t ld_acq64(const void *p)
{
	return pbr_adv_load64(
		p, atomic_load_explicit(PBR_A64(p), memory_order_acquire));
}

static inline uint64_t ld_rlx64(const void *p)
{
	return pbr_adv_load64(
		p, atomic_load_explicit(PBR_A64(p), memory_order_relaxed));
}

static inline uint32_t ld_acq32(const void *p)
{
	return pbr_adv_load32(
		p, atomic_load_explicit(PBR_A32(p), memory_order_acquire));
}

static inline uint32_t ld_rlx32(const void *p)
{
	return pbr_adv_load32(
		p, atomic_load_explicit(PBR_A32(p), memory_order_relaxed));
}
#else  /* !PBR_ADVERSARIAL_LOADS */
static inline uint64_t ld_acq64(const void *p)
{
	return atomic_load_explicit(PBR_A64(p), memory_order_acquire);
}

static inline uint64_t ld_rlx64(const void *p)
{
	return atomic_load_explicit(PBR_A64(p), memory_order_relaxed);
}

static inline uint32_t ld_acq32(const void *p)
{
	return atomic_load_explicit(PBR_A32(p), memory_order_acquire);
}

static inline uint32_t ld_rlx32(const void *p)
{
	return atomic_load_explicit(PBR_A32(p), memory_order_relaxed);
}
#endif /* PBR_ADVERSARIAL_LOADS */

static inline void st_rel64(void *p, uint64_t v)
{
	atomic_store_explicit(PBR_A64(p), v, memory_order_release);
}

static inline void st_rlx64(void *p, uint64_t v)
{
	atomic_store_explicit(PBR_A64(p), v, memory_order_relaxed);
}

static inline void st_rel32(void *p, uint32_t v)
{
	atomic_store_explicit(PBR_A32(p), v, memory_order_release);
}

static inline void st_rlx32(void *p, uint32_t v)
{
	atomic_store_explicit(PBR_A32(p), v, memory_order_relaxed);
}

static inline void st_sc32(void *p, uint32_t v)
{
	atomic_store_explicit(PBR_A32(p), v, memory_order_seq_cst);
}

static inline uint64_t faa64(void *p, uint64_t v, memory_order mo)
{
	return atomic_fetch_add_explicit(PBR_A64(p), v, mo);
}

static inline uint32_t faa32(void *p, uint32_t v, memory_order mo)
{
	return atomic_fetch_add_explicit(PBR_A32(p), v, mo);
}

static inline uint32_t fsub32(void *p, uint32_t v, memory_order mo)
{
	return atomic_fetch_sub_explicit(PBR_A32(p), v, mo);
}

/* Strong CAS; on failure *expected holds the value seen. */
static inline int cas64(void *p, uint64_t *expected, uint64_t desired,
			memory_order success)
{
	return atomic_compare_exchange_strong_explicit(
		PBR_A64(p), expected, desired, success, memory_order_relaxed);
}

static inline int cas32(void *p, uint32_t *expected, uint32_t desired,
			memory_order success)
{
	return atomic_compare_exchange_strong_explicit(
		PBR_A32(p), expected, desired, success, memory_order_relaxed);
}

static inline void fence_sc(void)
{
	atomic_thread_fence(memory_order_seq_cst);
}

static inline void fence_rel(void)
{
	atomic_thread_fence(memory_order_release);
}

static inline void fence_acq(void)
{
	atomic_thread_fence(memory_order_acquire);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif /* PBR_ATOMICS_H */
