// The only C++ in libbalm: hands the C benchmark cases of bench/*.c to
// Google Benchmark. Setup, kernels and peers stay in C; this file owns the
// timing loop, the counters and the shared-input cache.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "balm/balm.h"
#include "bench.h"

namespace {

// Inputs of the last case, reused while the next case has the same data_key
// (so 1 GiB inputs are filled once per family/op/shape, not once per impl).
struct DataCache {
    std::string key;
    void *data = nullptr;
    void (*teardown)(void *) = nullptr;

    void drop()
    {
        if (data && teardown) teardown(data);
        data = nullptr;
        teardown = nullptr;
        key.clear();
    }
};
DataCache cache;

void run_case(benchmark::State &st, const balm_bench_def *d)
{
    if (d->skip[0]) {
        st.SkipWithError(d->skip);
        return;
    }
    char err[256] = "";
    if (cache.key != d->data_key || !cache.data) {
        cache.drop(); // free the old inputs before allocating the new ones
        void *data = d->setup(d, err, sizeof err);
        if (!data) {
            st.SkipWithError(err[0] ? err : "setup failed");
            return;
        }
        cache.key = d->data_key;
        cache.data = data;
        cache.teardown = d->teardown;
    }
    void *state = cache.data;
    if (d->prepare) {
        state = d->prepare(d, cache.data, err, sizeof err);
        if (!state) {
            st.SkipWithError(err[0] ? err : "prepare failed");
            return;
        }
    }
    if (d->label) st.SetLabel(d->label(state));
    uint64_t it = 0;
    // Warm caches, TLB and lazily created state, once per case: Google
    // Benchmark calls this function again for each repetition.
    static std::set<const balm_bench_def *> warmed;
    if (warmed.insert(d).second) d->run(d, state, it++);
    for (auto _ : st) {
        if (d->reset) {
            st.PauseTiming();
            d->reset(d, state);
            st.ResumeTiming();
        }
        d->run(d, state, it++);
        benchmark::ClobberMemory();
    }
    if (d->release) d->release(state);
    st.SetBytesProcessed(static_cast<int64_t>(static_cast<double>(st.iterations()) * d->bytes));
    st.SetItemsProcessed(static_cast<int64_t>(static_cast<double>(st.iterations()) * d->items));
}

} // namespace

int main(int argc, char **argv)
{
    balm_bench_register_all();
    for (size_t i = 0; i < balm_bench_count(); i++) {
        const balm_bench_def *d = balm_bench_get(i);
        benchmark::RegisterBenchmark(d->name, run_case, d)
            ->Unit(benchmark::kMicrosecond);
    }
    benchmark::AddCustomContext("balm_version", balm_version());
    benchmark::AddCustomContext("balm_isa_active", balm_isa_name(balm_isa_active()));
    balm_cpu_info ci;
    balm_cpu_info_get(&ci);
    benchmark::AddCustomContext("balm_cpu_model", ci.model);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    cache.drop();
    return 0;
}
