// SPDX-License-Identifier: MIT
// google-benchmark behind a C interface (gbench_shim.h).
#include <benchmark/benchmark.h>

#include "gbench_shim.h"

namespace {

uint64_t batch_of(const pbr_bench_opts *o)
{
	return o && o->batch ? o->batch : 256;
}

// Bytes per second, plus ns per KiB: the unit the CRC figures are quoted in.
void set_bytes(benchmark::State &st, const pbr_bench_opts *o)
{
	if (!o || !o->bytes_per_iter)
		return;
	st.SetBytesProcessed(static_cast<int64_t>(st.iterations() *
						  o->bytes_per_iter));
	st.counters["ns_per_KiB"] = benchmark::Counter(
		static_cast<double>(o->bytes_per_iter) / 1024.0 * 1e-9,
		benchmark::Counter::kIsIterationInvariantRate |
			benchmark::Counter::kInvert);
}

void run_auto(benchmark::State &st, pbr_bench_fn fn, void *arg,
	      pbr_bench_opts o)
{
	const uint64_t b = batch_of(&o);

	// KeepRunningBatch counts b iterations per pass, so the reported
	// time per iteration is per operation, not per call.
	while (st.KeepRunningBatch(static_cast<benchmark::IterationCount>(b)))
		fn(arg, b);
	set_bytes(st, &o);
}

void run_manual(benchmark::State &st, pbr_bench_manual_fn fn, void *arg,
		pbr_bench_opts o)
{
	const uint64_t b = batch_of(&o);

	while (st.KeepRunningBatch(static_cast<benchmark::IterationCount>(b)))
		st.SetIterationTime(fn(arg, b));
	set_bytes(st, &o);
}

} // namespace

extern "C" int pbr_bench_register_ex(const char *name, pbr_bench_fn fn,
				     void *arg, const pbr_bench_opts *o)
{
	pbr_bench_opts copy = o ? *o : pbr_bench_opts{};

	benchmark::RegisterBenchmark(name, run_auto, fn, arg, copy);
	return 0;
}

extern "C" int pbr_bench_register(const char *name, pbr_bench_fn fn, void *arg)
{
	return pbr_bench_register_ex(name, fn, arg, nullptr);
}

extern "C" int pbr_bench_register_manual(const char *name,
					 pbr_bench_manual_fn fn, void *arg,
					 const pbr_bench_opts *o)
{
	pbr_bench_opts copy = o ? *o : pbr_bench_opts{};

	benchmark::RegisterBenchmark(name, run_manual, fn, arg, copy)
		->UseManualTime();
	return 0;
}

extern "C" int pbr_bench_main(int argc, char **argv)
{
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 1;
	benchmark::RunSpecifiedBenchmarks();
	benchmark::Shutdown();
	return 0;
}
