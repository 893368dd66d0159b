/* Registry, aligned buffers, deterministic inputs and the shape tables. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

/* Paper shapes (upstream's default dims), one L2-resident and one far beyond
 * the last-level cache (1 GiB per [T][B][D] tensor; this machine's L3 is
 * 260 MiB). The names are part of the benchmark names: keep them stable. */
const balm_bench_seq_shape balm_bench_seq_shapes[] = {
    {"iemocap_l", 110, 16, 1024}, {"iemocap_a", 110, 16, 1582}, {"iemocap_v", 110, 16, 342},
    {"mosei_l", 50, 32, 1024},    {"mosei_a", 50, 32, 512},     {"mosei_v", 50, 32, 1024},
    {"l2", 16, 16, 512},          /* 512 KiB per tensor */
    {"dram", 1024, 64, 4096},     /* 1 GiB per tensor */
};
const size_t balm_bench_seq_shape_count =
    sizeof balm_bench_seq_shapes / sizeof balm_bench_seq_shapes[0];

/* n5400: a head weight (C x H of the paper's fused classifier); n64K: 256 KiB
 * per vector (the five of cos/direction stay in a 2 MiB L2);
 * n64M: 256 MiB per vector, an encoder-sized gradient. */
const balm_bench_vec_shape balm_bench_vec_shapes[] = {
    {"n5400", 5400},
    {"n64K", 65536},
    {"n64M", 64u << 20},
};
const size_t balm_bench_vec_shape_count =
    sizeof balm_bench_vec_shapes / sizeof balm_bench_vec_shapes[0];

static balm_bench_def *reg;
static size_t reg_n, reg_cap;

void balm_bench_add(const balm_bench_def *d)
{
    if (reg_n == reg_cap) {
        size_t cap = reg_cap ? 2 * reg_cap : 256;
        balm_bench_def *r = realloc(reg, cap * sizeof *r);
        if (!r) {
            fprintf(stderr, "balm_bench: out of memory registering %s\n", d->name);
            return;
        }
        reg = r;
        reg_cap = cap;
    }
    reg[reg_n++] = *d;
}

size_t balm_bench_count(void) { return reg_n; }
const balm_bench_def *balm_bench_get(size_t i) { return i < reg_n ? &reg[i] : NULL; }

/* Reorder so that the cases sharing a data key are consecutive (in the order
 * their keys first appear, each group in registration order): one setup per
 * key, and impls of one shape side by side in the output. */
static void group_by_key(void)
{
    balm_bench_def *out = malloc(reg_n * sizeof *out);
    char *done = calloc(reg_n, 1);
    size_t k = 0;
    if (!out || !done) {
        free(out);
        free(done);
        return; /* still correct, only slower: more setups */
    }
    for (size_t i = 0; i < reg_n; i++) {
        if (done[i]) continue;
        for (size_t j = i; j < reg_n; j++)
            if (!done[j] && strcmp(reg[j].data_key, reg[i].data_key) == 0) {
                out[k++] = reg[j];
                done[j] = 1;
            }
    }
    free(reg);
    free(done);
    reg = out;
    reg_cap = reg_n;
}

void balm_bench_register_all(void)
{
    balm_bench_register_limits();
    balm_bench_register_kernels();
    balm_bench_register_naive();
    balm_bench_register_onednn();
    balm_bench_register_modules();
    group_by_key();
}

void balm_bench_fmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

float *balm_bench_alloc(size_t n)
{
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
    return aligned_alloc(64, bytes);
}

void balm_bench_free(void *p) { free(p); }

/* splitmix64: cheap, deterministic, good enough for inputs. */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void balm_bench_fill(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    uint64_t s = seed;
    float w = hi - lo;
    for (size_t i = 0; i < n; i++)
        x[i] = lo + w * (float)(mix(&s) >> 40) * (1.0f / 16777216.0f);
}

/* Present length of sample b's modality; the same sequence for the mask and
 * for the byte counts. */
static size_t sample_len(uint64_t *s, size_t T)
{
    uint64_t r = mix(s);
    return (r % 3 == 0) ? 0 : T / 2 + (size_t)((r >> 8) % (T - T / 2 + 1));
}

void balm_bench_mask(float *m, size_t T, size_t B, size_t m_step, size_t m_sample,
                     uint64_t seed)
{
    uint64_t s = seed;
    for (size_t b = 0; b < B; b++) {
        size_t len = sample_len(&s, T);
        for (size_t t = 0; t < T; t++)
            m[t * m_step + b * m_sample] = t < len ? 1.0f : 0.0f;
    }
}

size_t balm_bench_mask_present(size_t T, size_t B, uint64_t seed)
{
    uint64_t s = seed;
    size_t n = 0;
    for (size_t b = 0; b < B; b++)
        n += sample_len(&s, T);
    return n;
}
