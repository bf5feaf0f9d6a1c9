/* SPDX-License-Identifier: MIT */
/*
 * A C interface to google-benchmark, so that the benchmarks themselves are
 * C. Each benchmark is a function that runs a whole batch of n iterations:
 * the shim's own per-call cost (a C++ loop, an indirect call) is paid once
 * per batch, not once per operation.
 */
#ifndef PBR_GBENCH_SHIM_H
#define PBR_GBENCH_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Run n iterations of the operation under test. */
typedef void (*pbr_bench_fn)(void *arg, uint64_t n);

/*
 * Run n iterations and return the seconds that the measured part took,
 * for operations that need untimed set-up between runs (refilling a
 * ring before peeking it): the shim reports this manual time.
 */
typedef double (*pbr_bench_manual_fn)(void *arg, uint64_t n);

struct pbr_bench_opts {
	uint64_t batch;		 /* iterations per call; 0 = 256 */
	uint64_t bytes_per_iter; /* > 0: report bytes/s and ns per KiB */
};

/* Register a benchmark; name is copied. Returns 0. */
int pbr_bench_register(const char *name, pbr_bench_fn fn, void *arg);
int pbr_bench_register_ex(const char *name, pbr_bench_fn fn, void *arg,
			  const struct pbr_bench_opts *o);
int pbr_bench_register_manual(const char *name, pbr_bench_manual_fn fn,
			      void *arg, const struct pbr_bench_opts *o);

/* Parse google-benchmark's flags (--benchmark_format=json, ...), run the
 * registered benchmarks, return 0 or 1 for unrecognised flags. */
int pbr_bench_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* PBR_GBENCH_SHIM_H */
