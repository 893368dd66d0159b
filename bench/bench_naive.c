/* The naive-C peer: each op written the way a user would first write it in
 * C, following the authors' formulation (multiply by the mask instead of
 * skipping, the sigmoid per element of the expanded [T][B][D] tensor, float
 * accumulators). Same inputs and byte counts as the kernels, impl "naive". */
#include <math.h>
#include <string.h>
#include "bench_data.h"

static float sigm(float v) { return 1.0f / (1.0f + expf(-v)); }

static void naive_pool_fwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    size_t T = s->L.T, B = s->L.B, D = s->L.D;
    (void)d, (void)it;
    memset(s->bd, 0, B * D * sizeof(float));
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++) {
            float mv = s->m[t * B + b];
            const float *xr = s->x + (t * B + b) * D;
            for (size_t k = 0; k < D; k++)
                s->bd[b * D + k] += mv * xr[k];
        }
    for (size_t b = 0; b < B; b++) {
        float cnt = 0.0f;
        for (size_t t = 0; t < T; t++)
            cnt += s->m[t * B + b];
        for (size_t k = 0; k < D; k++)
            s->bd[b * D + k] /= cnt + 1e-8f;
    }
}

static void naive_pool_bwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    size_t T = s->L.T, B = s->L.B, D = s->L.D;
    (void)d, (void)it;
    for (size_t b = 0; b < B; b++) {
        float cnt = 0.0f;
        for (size_t t = 0; t < T; t++)
            cnt += s->m[t * B + b];
        for (size_t t = 0; t < T; t++) {
            float mv = s->m[t * B + b];
            float *dr = s->out + (t * B + b) * D;
            for (size_t k = 0; k < D; k++)
                dr[k] += mv * s->bd[b * D + k] / (cnt + 1e-8f);
        }
    }
}

static void naive_gate_fwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    size_t T = s->L.T, B = s->L.B, D = s->L.D;
    (void)d, (void)it;
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++) {
            size_t o = (t * B + b) * D;
            float mv = s->m[t * B + b];
            for (size_t k = 0; k < D; k++)
                s->out[o + k] = 2.0f * sigm(s->e[b * D + k]) * s->x[o + k] * mv;
        }
}

static void naive_gate_bwd(const balm_bench_def *d, void *p, uint64_t it)
{
    seq_data *s = p;
    size_t T = s->L.T, B = s->L.B, D = s->L.D;
    (void)d, (void)it;
    memset(s->bd, 0, B * D * sizeof(float));
    for (size_t t = 0; t < T; t++)
        for (size_t b = 0; b < B; b++) {
            size_t o = (t * B + b) * D;
            float mv = s->m[t * B + b];
            for (size_t k = 0; k < D; k++) {
                float g = sigm(s->e[b * D + k]);
                s->out[o + k] = 2.0f * g * mv * s->dy[o + k];
                s->bd[b * D + k] += s->dy[o + k] * s->x[o + k] * mv * 2.0f * g * (1.0f - g);
            }
        }
}

static void naive_kl_cls(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    float acc = 0.0f;
    (void)d, (void)it;
    for (size_t i = 0; i < v->N * v->C; i++)
        if (v->v[0][i] > 0.0f)
            acc += v->v[0][i] * (logf(v->v[0][i]) - v->v[1][i]);
    v->sink += acc / (float)v->N;
}

static void naive_kl_reg(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    float acc = 0.0f;
    (void)d, (void)it;
    for (size_t i = 0; i < v->N; i++) {
        float f = v->v[0][i], u = v->v[1][i];
        float p0 = sigm(-f), p1 = sigm(f);
        float q0 = logf(sigm(-u)), q1 = logf(sigm(u));
        acc += p0 * (logf(p0) - q0) + p1 * (logf(p1) - q1);
    }
    v->sink += acc / (float)v->N;
}

static void naive_dot_norms(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    float dot = 0.0f, nw = 0.0f, nf = 0.0f;
    (void)d, (void)it;
    for (size_t i = 0; i < v->n; i++) {
        dot += v->v[0][i] * v->v[1][i];
        nw += v->v[0][i] * v->v[0][i];
        nf += v->v[1][i] * v->v[1][i];
    }
    v->sink += dot / (fmaxf(sqrtf(nw), 1e-8f) * fmaxf(sqrtf(nf), 1e-8f));
}

static void naive_direction(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    (void)d, (void)it;
    for (size_t i = 0; i < v->n; i++)
        v->v[4][i] = 0.3f * v->v[0][i] - 0.2f * v->v[1][i] + 0.1f * v->v[2][i] - 0.05f * v->v[3][i];
}

static void naive_scale(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    float a = (v->phase++ & 1) ? 0.5f : 2.0f;
    (void)d, (void)it;
    for (size_t i = 0; i < v->n; i++)
        v->v[0][i] *= a;
}

/* Two passes, as torch.std does it: the mean, then the squared deviations. */
static void naive_std(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    double sum = 0.0, ss = 0.0;
    (void)d, (void)it;
    for (size_t i = 0; i < v->n; i++)
        sum += v->v[0][i];
    double mean = sum / (double)v->n;
    for (size_t i = 0; i < v->n; i++)
        ss += (v->v[0][i] - mean) * (v->v[0][i] - mean);
    v->sink += sqrt(ss / (double)(v->n - 1));
}

/* Box-Muller over a xorshift generator, one normal per element. */
static void naive_noise(const balm_bench_def *d, void *p, uint64_t it)
{
    vec_data *v = p;
    uint64_t st = 0x9E3779B97F4A7C15ull ^ it;
    float a = (v->phase++ & 1) ? 0.5f : 2.0f;
    (void)d;
    for (size_t i = 0; i < v->n; i++) {
        st ^= st << 13, st ^= st >> 7, st ^= st << 17;
        float u1 = ((float)(st >> 40) + 0.5f) * (1.0f / 16777216.0f);
        float u2 = (float)((st >> 16) & 0xFFFFFF) * (1.0f / 16777216.0f);
        float z = sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
        v->v[0][i] = v->v[0][i] * a + 1e-3f * z;
    }
}

void balm_bench_register_naive(void)
{
    static void (*const seq_runs[SEQ_NOPS])(const balm_bench_def *, void *, uint64_t) = {
        naive_pool_fwd, naive_pool_bwd, naive_gate_fwd, naive_gate_bwd};
    static void (*const vec_runs[VEC_NOPS])(const balm_bench_def *, void *, uint64_t) = {
        naive_kl_cls, naive_kl_reg, naive_dot_norms, naive_direction,
        naive_scale,  naive_std,    naive_noise};
    for (int op = 0; op < SEQ_NOPS; op++)
        for (size_t s = 0; s < balm_bench_seq_shape_count; s++) {
            balm_bench_def d = seq_def((seq_op)op, &balm_bench_seq_shapes[s], "naive");
            d.run = seq_runs[op];
            balm_bench_add(&d);
        }
    for (int op = 0; op < VEC_NOPS; op++) {
        if (vec_op_uses_shape((vec_op)op, NULL)) {
            balm_bench_def d = vec_def((vec_op)op, NULL, "naive");
            d.run = vec_runs[op];
            balm_bench_add(&d);
        }
        for (size_t s = 0; s < balm_bench_vec_shape_count; s++) {
            if (!vec_op_uses_shape((vec_op)op, &balm_bench_vec_shapes[s])) continue;
            balm_bench_def d = vec_def((vec_op)op, &balm_bench_vec_shapes[s], "naive");
            d.run = vec_runs[op];
            balm_bench_add(&d);
        }
    }
}
