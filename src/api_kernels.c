/* Public kernel wrappers: validate every argument, then call the dispatched
 * kernel (and, with shadow checking on, its scalar twin). Nothing is written
 * before validation has passed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "shadow.h"
#include "common/philox.h"
#include <stdio.h>

#define CHECK_NULL(fn, p)                                                                    \
    do {                                                                                     \
        if (!(p))                                                                            \
            return balm_fail(BALM_ERR_NULL, "%s: %s is NULL", fn, #p);                        \
    } while (0)

static balm_status overlap_err(const char *fn, const char *a, const char *b)
{
    return balm_fail(BALM_ERR_ARG, "%s: %s overlaps %s (outputs may not alias inputs)", fn, a, b);
}

/* Copies of a strided tensor region for the shadow run of in-place kernels. */
static float *dup_floats(const float *p, size_t n)
{
    float *q = malloc((n ? n : 1) * sizeof *q);
    if (q && n)
        memcpy(q, p, n * sizeof *q);
    return q;
}

/* Compare only the rows a sequence layout touches. */
static double seq_rel_diff(const balm_seq *L, const float *got, const float *ref)
{
    double worst = 0.0, big = 0.0, diff = 0.0;
    for (size_t t = 0; t < L->T; t++)
        for (size_t b = 0; b < L->B; b++) {
            size_t o = t * L->x_step + b * L->x_sample;
            for (size_t d = 0; d < L->D; d++) {
                float g = got[o + d], r = ref[o + d];
                if (isnan(g) != isnan(r) || (isinf(r) && g != r) || (isinf(g) && g != r))
                    return INFINITY;
                if (!isfinite(r))
                    continue;
                if (fabs(r) > big) big = fabs(r);
                if (fabs((double)g - r) > diff) diff = fabs((double)g - r);
            }
        }
    worst = diff / (big > 1e-30 ? big : 1e-30);
    return worst;
}

/* ------------------------------------------------------------------ pooling */
balm_status balm_pool_fwd(const balm_seq *L, const float *x, const float *m, float *s)
{
    static const char fn[] = "balm_pool_fwd";
    size_t xs, ms, ns;
    balm_status st = balm_seq_check(fn, L, &xs, &ms);
    if (st) return st;
    if (balm_mul_ovf(L->B, L->D, &ns))
        return balm_fail(BALM_ERR_SIZE, "%s: B*D overflows", fn);
    if (ns == 0)
        return BALM_OK;
    CHECK_NULL(fn, s);
    if (L->T > 0) {
        CHECK_NULL(fn, x);
        CHECK_NULL(fn, m);
        if ((st = balm_mask_check(fn, "m", L, m))) return st;
        if (balm_ranges_overlap(s, ns, x, xs)) return overlap_err(fn, "s", "x");
        if (balm_ranges_overlap(s, ns, m, ms)) return overlap_err(fn, "s", "m");
    }
    if (L->T == 0) {
        memset(s, 0, ns * sizeof *s);
        return BALM_OK;
    }
    balm_kernels_active()->pool_fwd(L, x, m, s);
    const balm_kernels *ref = balm_shadow_table();
    if (ref) {
        float *r = malloc(ns * sizeof *r);
        if (r) {
            ref->pool_fwd(L, x, m, r);
            balm_shadow_record(BALM_K_pool_fwd, balm_rel_diff(s, r, ns));
            free(r);
        }
    }
    return BALM_OK;
}

balm_status balm_pool_bwd(const balm_seq *L, const float *m, const float *ds, float *dx,
                          int accumulate)
{
    static const char fn[] = "balm_pool_bwd";
    size_t xs, ms, ns;
    balm_status st = balm_seq_check(fn, L, &xs, &ms);
    if (st) return st;
    if (accumulate != 0 && accumulate != 1)
        return balm_fail(BALM_ERR_ARG, "%s: accumulate must be 0 or 1, got %d", fn, accumulate);
    if (balm_mul_ovf(L->B, L->D, &ns))
        return balm_fail(BALM_ERR_SIZE, "%s: B*D overflows", fn);
    if (xs == 0)
        return BALM_OK;
    CHECK_NULL(fn, m);
    CHECK_NULL(fn, ds);
    CHECK_NULL(fn, dx);
    if ((st = balm_mask_check(fn, "m", L, m))) return st;
    if (balm_ranges_overlap(dx, xs, ds, ns)) return overlap_err(fn, "dx", "ds");
    if (balm_ranges_overlap(dx, xs, m, ms)) return overlap_err(fn, "dx", "m");
    const balm_kernels *ref = balm_shadow_table();
    float *before = ref ? dup_floats(dx, xs) : NULL;
    balm_kernels_active()->pool_bwd(L, m, ds, dx, accumulate);
    if (before) {
        ref->pool_bwd(L, m, ds, before, accumulate);
        balm_shadow_record(BALM_K_pool_bwd, seq_rel_diff(L, dx, before));
        free(before);
    }
    return BALM_OK;
}

/* -------------------------------------------------------------------- gate */
balm_status balm_gate_fwd(const balm_seq *L, const float *x, const float *m, const float *e,
                          float *y)
{
    static const char fn[] = "balm_gate_fwd";
    size_t xs, ms, ns;
    balm_status st = balm_seq_check(fn, L, &xs, &ms);
    if (st) return st;
    if (balm_mul_ovf(L->B, L->D, &ns))
        return balm_fail(BALM_ERR_SIZE, "%s: B*D overflows", fn);
    if (xs == 0)
        return BALM_OK;
    CHECK_NULL(fn, x);
    CHECK_NULL(fn, m);
    CHECK_NULL(fn, e);
    CHECK_NULL(fn, y);
    if ((st = balm_mask_check(fn, "m", L, m))) return st;
    if (y != x && balm_ranges_overlap(y, xs, x, xs)) return overlap_err(fn, "y", "x");
    if (balm_ranges_overlap(y, xs, e, ns)) return overlap_err(fn, "y", "e");
    if (balm_ranges_overlap(y, xs, m, ms)) return overlap_err(fn, "y", "m");
    const balm_kernels *ref = balm_shadow_table();
    float *r = NULL, *xin = NULL;
    if (ref) {
        r = malloc(xs * sizeof *r);
        xin = y == x ? dup_floats(x, xs) : NULL;
    }
    balm_kernels_active()->gate_fwd(L, x, m, e, y);
    if (r && (y != x || xin)) {
        memcpy(r, y, xs * sizeof *r); /* rows the layout skips compare equal */
        ref->gate_fwd(L, xin ? xin : x, m, e, r);
        balm_shadow_record(BALM_K_gate_fwd, seq_rel_diff(L, y, r));
    }
    free(r);
    free(xin);
    return BALM_OK;
}

balm_status balm_gate_bwd(const balm_seq *L, const float *x, const float *m, const float *e,
                          const float *dy, float *dx, float *de)
{
    static const char fn[] = "balm_gate_bwd";
    size_t xs, ms, ns;
    balm_status st = balm_seq_check(fn, L, &xs, &ms);
    if (st) return st;
    if (balm_mul_ovf(L->B, L->D, &ns))
        return balm_fail(BALM_ERR_SIZE, "%s: B*D overflows", fn);
    if (ns == 0)
        return BALM_OK;
    CHECK_NULL(fn, de);
    if (L->T == 0) {
        memset(de, 0, ns * sizeof *de);
        return BALM_OK;
    }
    CHECK_NULL(fn, x);
    CHECK_NULL(fn, m);
    CHECK_NULL(fn, e);
    CHECK_NULL(fn, dy);
    CHECK_NULL(fn, dx);
    if ((st = balm_mask_check(fn, "m", L, m))) return st;
    if (balm_ranges_overlap(dx, xs, x, xs)) return overlap_err(fn, "dx", "x");
    if (balm_ranges_overlap(dx, xs, dy, xs)) return overlap_err(fn, "dx", "dy");
    if (balm_ranges_overlap(dx, xs, e, ns)) return overlap_err(fn, "dx", "e");
    if (balm_ranges_overlap(dx, xs, m, ms)) return overlap_err(fn, "dx", "m");
    if (balm_ranges_overlap(dx, xs, de, ns)) return overlap_err(fn, "dx", "de");
    if (balm_ranges_overlap(de, ns, x, xs)) return overlap_err(fn, "de", "x");
    if (balm_ranges_overlap(de, ns, dy, xs)) return overlap_err(fn, "de", "dy");
    if (balm_ranges_overlap(de, ns, e, ns)) return overlap_err(fn, "de", "e");
    if (balm_ranges_overlap(de, ns, m, ms)) return overlap_err(fn, "de", "m");
    balm_kernels_active()->gate_bwd(L, x, m, e, dy, dx, de);
    const balm_kernels *ref = balm_shadow_table();
    if (ref) {
        float *rdx = dup_floats(dx, xs), *rde = malloc(ns * sizeof *rde);
        if (rdx && rde) {
            ref->gate_bwd(L, x, m, e, dy, rdx, rde);
            double a = seq_rel_diff(L, dx, rdx), b = balm_rel_diff(de, rde, ns);
            balm_shadow_record(BALM_K_gate_bwd, a > b ? a : b);
        }
        free(rdx);
        free(rde);
    }
    return BALM_OK;
}

/* --------------------------------------------------------------------- KL */
static void shadow_scalar(int id, double got, double ref)
{
    double big = fabs(ref) > 1e-30 ? fabs(ref) : 1e-30;
    balm_shadow_record(id, got == ref ? 0.0 : fabs(got - ref) / big);
}

balm_status balm_kl_cls(size_t N, size_t C, const float *p, const float *logq, float *kl)
{
    static const char fn[] = "balm_kl_cls";
    size_t n;
    CHECK_NULL(fn, kl);
    if (balm_mul_ovf(N, C, &n))
        return balm_fail(BALM_ERR_SIZE, "%s: N*C overflows (N=%zu, C=%zu)", fn, N, C);
    if (N > 0 && C == 0)
        return balm_fail(BALM_ERR_SIZE, "%s: C = 0 classes with N = %zu samples", fn, N);
    if (n == 0) {
        *kl = 0.0f;
        return BALM_OK;
    }
    CHECK_NULL(fn, p);
    CHECK_NULL(fn, logq);
    for (size_t i = 0; i < n; i++) {
        if (!(p[i] >= 0.0f && p[i] <= 1.0f))
            return balm_fail(BALM_ERR_ARG, "%s: p[%zu][%zu] = %.9g is not a probability", fn,
                             i / C, i % C, (double)p[i]);
        if (isnan(logq[i]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: logq[%zu][%zu] is NaN", fn, i / C, i % C);
    }
    double s = balm_kernels_active()->kl_cls_sum(N, C, p, logq);
    const balm_kernels *ref = balm_shadow_table();
    if (ref)
        shadow_scalar(BALM_K_kl_cls_sum, s, ref->kl_cls_sum(N, C, p, logq));
    *kl = (float)(s / (double)N);
    return BALM_OK;
}

balm_status balm_kl_reg(size_t N, const float *f, const float *u, float *kl)
{
    static const char fn[] = "balm_kl_reg";
    CHECK_NULL(fn, kl);
    if (N == 0) {
        *kl = 0.0f;
        return BALM_OK;
    }
    CHECK_NULL(fn, f);
    CHECK_NULL(fn, u);
    size_t bad = balm_find_nonfinite(f, N);
    if (bad != SIZE_MAX)
        return balm_fail(BALM_ERR_NONFINITE, "%s: f[%zu] = %g is not finite", fn, bad,
                         (double)f[bad]);
    if ((bad = balm_find_nonfinite(u, N)) != SIZE_MAX)
        return balm_fail(BALM_ERR_NONFINITE, "%s: u[%zu] = %g is not finite", fn, bad,
                         (double)u[bad]);
    double s = balm_kernels_active()->kl_reg_sum(N, f, u);
    const balm_kernels *ref = balm_shadow_table();
    if (ref)
        shadow_scalar(BALM_K_kl_reg_sum, s, ref->kl_reg_sum(N, f, u));
    *kl = (float)(s / (double)N);
    return BALM_OK;
}

/* ------------------------------------------------------------ cosine, GRM */
/* dot, |w|^2, |wf|^2 with a non-finite check that names the array/index. */
static balm_status dot_norms_checked(const char *fn, const char *wname, size_t n, const float *w,
                                     const float *wf, double out[3])
{
    balm_kernels_active()->dot_norms(n, w, wf, out);
    if (!isfinite(out[0]) || !isfinite(out[1]) || !isfinite(out[2])) {
        size_t bad = balm_find_nonfinite(w, n);
        if (bad != SIZE_MAX)
            return balm_fail(BALM_ERR_NONFINITE, "%s: %s[%zu] = %g is not finite", fn, wname, bad,
                             (double)w[bad]);
        bad = balm_find_nonfinite(wf, n);
        if (bad != SIZE_MAX)
            return balm_fail(BALM_ERR_NONFINITE, "%s: wf[%zu] = %g is not finite", fn, bad,
                             (double)wf[bad]);
        return balm_fail(BALM_ERR_NONFINITE, "%s: squared norm overflows", fn);
    }
    const balm_kernels *ref = balm_shadow_table();
    if (ref) {
        double r[3];
        ref->dot_norms(n, w, wf, r);
        double worst = 0.0;
        for (int i = 0; i < 3; i++) {
            double big = fabs(r[i]) > 1e-30 ? fabs(r[i]) : 1e-30;
            /* the dot is judged relative to the norms product, as cos is */
            if (i == 0) big = sqrt(r[1] * r[2]) > 1e-30 ? sqrt(r[1] * r[2]) : 1e-30;
            double d = fabs(out[i] - r[i]) / big;
            if (d > worst) worst = d;
        }
        balm_shadow_record(BALM_K_dot_norms, worst);
    }
    return BALM_OK;
}

static double clamp_norm(double sq)
{
    double nrm = sqrt(sq);
    return nrm > BALM_COS_EPS ? nrm : BALM_COS_EPS;
}

balm_status balm_cos(size_t n, const float *w, const float *wf, float *cos, float *norm_w,
                     float *norm_wf)
{
    static const char fn[] = "balm_cos";
    CHECK_NULL(fn, cos);
    double r[3] = {0.0, 0.0, 0.0};
    if (n > 0) {
        CHECK_NULL(fn, w);
        CHECK_NULL(fn, wf);
        balm_status st = dot_norms_checked(fn, "w", n, w, wf, r);
        if (st) return st;
    }
    *cos = (float)(r[0] / (clamp_norm(r[1]) * clamp_norm(r[2])));
    if (norm_w) *norm_w = (float)sqrt(r[1]);
    if (norm_wf) *norm_wf = (float)sqrt(r[2]);
    return BALM_OK;
}

#define BALM_MAX_M 8

static balm_status bad_m(const char *fn, size_t M)
{
    return balm_fail(BALM_ERR_SIZE, "%s: M = %zu modalities, expected 1..%d", fn, M, BALM_MAX_M);
}

balm_status balm_direction_grad(size_t n, size_t M, const float *const *w, const float *wf,
                                const float *coeff, const float *cos, float *dwf, int accumulate)
{
    static const char fn[] = "balm_direction_grad";
    if (M < 1 || M > BALM_MAX_M)
        return bad_m(fn, M);
    if (accumulate != 0 && accumulate != 1)
        return balm_fail(BALM_ERR_ARG, "%s: accumulate must be 0 or 1, got %d", fn, accumulate);
    CHECK_NULL(fn, coeff);
    CHECK_NULL(fn, cos);
    for (size_t m = 0; m < M; m++) {
        if (!isfinite(coeff[m]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: coeff[%zu] is not finite", fn, m);
        if (!isfinite(cos[m]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: cos[%zu] is not finite", fn, m);
    }
    if (n == 0)
        return BALM_OK;
    CHECK_NULL(fn, w);
    CHECK_NULL(fn, wf);
    CHECK_NULL(fn, dwf);
    for (size_t m = 0; m < M; m++) {
        if (!w[m])
            return balm_fail(BALM_ERR_NULL, "%s: w[%zu] is NULL", fn, m);
        if (balm_ranges_overlap(dwf, n, w[m], n))
            return balm_fail(BALM_ERR_ARG, "%s: dwf overlaps w[%zu]", fn, m);
    }
    if (balm_ranges_overlap(dwf, n, wf, n)) return overlap_err(fn, "dwf", "wf");
    /* d/dwf |c cos| = |c| sign(cos) (w/(|w||wf|) - cos wf/|wf|^2): the
     * clamped norms are treated as constants where they clamp, which is
     * what autograd does for F.cosine_similarity at |w| <= eps. */
    float a[BALM_MAX_M];
    double b = 0.0, nf = 0.0;
    for (size_t m = 0; m < M; m++) {
        double r[3];
        char name[16];
        snprintf(name, sizeof name, "w[%zu]", m);
        balm_status st = dot_norms_checked(fn, name, n, w[m], wf, r);
        if (st) return st;
        double nw = clamp_norm(r[1]);
        nf = clamp_norm(r[2]);
        double sgn = cos[m] > 0.0f ? 1.0 : (cos[m] < 0.0f ? -1.0 : 0.0);
        double k = fabs((double)coeff[m]) * sgn / (double)M;
        a[m] = (float)(k / (nw * nf));
        b -= k * cos[m] / (nf * nf);
    }
    const balm_kernels *ref = balm_shadow_table();
    float *before = ref ? dup_floats(dwf, n) : NULL;
    balm_kernels_active()->combine(n, M, w, a, wf, (float)b, dwf, accumulate);
    if (before) {
        ref->combine(n, M, w, a, wf, (float)b, before, accumulate);
        balm_shadow_record(BALM_K_combine, balm_rel_diff(dwf, before, n));
        free(before);
    }
    return BALM_OK;
}

balm_status balm_grm_coeff(size_t M, const float *prev_kl, const float *cur_kl, float *coeff)
{
    static const char fn[] = "balm_grm_coeff";
    if (M < 1 || M > BALM_MAX_M)
        return bad_m(fn, M);
    CHECK_NULL(fn, cur_kl);
    CHECK_NULL(fn, coeff);
    float diff[BALM_MAX_M], S = 0.0f;
    for (size_t m = 0; m < M; m++) {
        if (!isfinite(cur_kl[m]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: cur_kl[%zu] is not finite", fn, m);
        if (prev_kl && !isfinite(prev_kl[m]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: prev_kl[%zu] is not finite", fn, m);
        diff[m] = prev_kl ? prev_kl[m] - cur_kl[m] : cur_kl[m];
        S += diff[m];
    }
    S += 1e-8f;
    for (size_t m = 0; m < M; m++)
        coeff[m] = (S - diff[m]) / S;
    return BALM_OK;
}

balm_status balm_grm_loss(size_t M, const float *coeff, const float *cos, float *loss_gm)
{
    static const char fn[] = "balm_grm_loss";
    if (M < 1 || M > BALM_MAX_M)
        return bad_m(fn, M);
    CHECK_NULL(fn, coeff);
    CHECK_NULL(fn, cos);
    CHECK_NULL(fn, loss_gm);
    float s = 0.0f;
    for (size_t m = 0; m < M; m++) {
        if (!isfinite(coeff[m]) || !isfinite(cos[m]))
            return balm_fail(BALM_ERR_NONFINITE, "%s: coeff[%zu] or cos[%zu] is not finite", fn,
                             m, m);
        s += fabsf(coeff[m] * cos[m]);
    }
    *loss_gm = s / (float)M;
    return BALM_OK;
}

/* -------------------------------------------------- scale, std and noise */
balm_status balm_scale(size_t n, float *x, float alpha)
{
    static const char fn[] = "balm_scale";
    if (!isfinite(alpha))
        return balm_fail(BALM_ERR_NONFINITE, "%s: alpha = %g is not finite", fn, (double)alpha);
    if (n == 0)
        return BALM_OK;
    CHECK_NULL(fn, x);
    const balm_kernels *ref = balm_shadow_table();
    float *r = ref ? dup_floats(x, n) : NULL;
    balm_kernels_active()->scale(n, x, alpha);
    if (r) {
        ref->scale(n, r, alpha);
        balm_shadow_record(BALM_K_scale, balm_rel_diff(x, r, n));
        free(r);
    }
    return BALM_OK;
}

/* Sums of x with the non-finite check; n >= 1. */
static balm_status sums_checked(const char *fn, size_t n, const float *x, double out[2])
{
    balm_kernels_active()->sums(n, x, out);
    if (!isfinite(out[0]) || !isfinite(out[1])) {
        size_t bad = balm_find_nonfinite(x, n);
        if (bad != SIZE_MAX)
            return balm_fail(BALM_ERR_NONFINITE, "%s: x[%zu] = %g is not finite", fn, bad,
                             (double)x[bad]);
    }
    const balm_kernels *ref = balm_shadow_table();
    if (ref) {
        double r[2];
        ref->sums(n, x, r);
        /* the sum is judged relative to sqrt(n * sum of squares), its scale */
        double scale = sqrt(r[1] * (double)n) > 1e-30 ? sqrt(r[1] * (double)n) : 1e-30;
        double q = fabs(r[1]) > 1e-30 ? fabs(r[1]) : 1e-30;
        double d0 = fabs(out[0] - r[0]) / scale, d1 = fabs(out[1] - r[1]) / q;
        balm_shadow_record(BALM_K_sums, d0 > d1 ? d0 : d1);
    }
    return BALM_OK;
}

static float std_from_sums(size_t n, const double s[2])
{
    if (n < 2)
        return 0.0f;
    double var = (s[1] - s[0] * s[0] / (double)n) / (double)(n - 1);
    return var > 0.0 ? (float)sqrt(var) : 0.0f;
}

balm_status balm_std(size_t n, const float *x, float *sd)
{
    static const char fn[] = "balm_std";
    CHECK_NULL(fn, sd);
    if (n == 0) {
        *sd = 0.0f;
        return BALM_OK;
    }
    CHECK_NULL(fn, x);
    double s[2];
    balm_status st = sums_checked(fn, n, x, s);
    if (st) return st;
    *sd = std_from_sums(n, s);
    return BALM_OK;
}

static void scale_noise_run(size_t n, float *x, float alpha, float sd, uint64_t seed,
                            uint64_t offset)
{
    const balm_kernels *ref = balm_shadow_table();
    float *r = ref ? dup_floats(x, n) : NULL;
    balm_kernels_active()->scale_noise(n, x, alpha, sd, seed, offset);
    if (r) {
        ref->scale_noise(n, r, alpha, sd, seed, offset);
        balm_shadow_record(BALM_K_scale_noise, balm_rel_diff(x, r, n));
        free(r);
    }
}

static balm_status scale_noise_checked(const char *fn, size_t n, float *x, float alpha,
                                       float sd, uint64_t seed, uint64_t offset)
{
    if (!isfinite(alpha))
        return balm_fail(BALM_ERR_NONFINITE, "%s: alpha = %g is not finite", fn, (double)alpha);
    if (!(sd >= 0.0f) || !isfinite(sd))
        return balm_fail(BALM_ERR_ARG, "%s: sd = %g must be finite and >= 0", fn, (double)sd);
    if (n == 0)
        return BALM_OK;
    CHECK_NULL(fn, x);
    if (offset + n < offset)
        return balm_fail(BALM_ERR_SIZE, "%s: offset + n overflows the 64-bit counter", fn);
    scale_noise_run(n, x, alpha, sd, seed, offset);
    return BALM_OK;
}

balm_status balm_noise(size_t n, float *x, float sd, uint64_t seed, uint64_t offset)
{
    return scale_noise_checked("balm_noise", n, x, 1.0f, sd, seed, offset);
}

balm_status balm_scale_noise(size_t n, float *x, float alpha, float sd, uint64_t seed,
                             uint64_t offset)
{
    return scale_noise_checked("balm_scale_noise", n, x, alpha, sd, seed, offset);
}

balm_status balm_grad_rescale(size_t n, float *g, float scale, int noise, uint64_t seed,
                              uint64_t offset, float *sd_out)
{
    static const char fn[] = "balm_grad_rescale";
    if (!isfinite(scale))
        return balm_fail(BALM_ERR_NONFINITE, "%s: scale = %g is not finite", fn, (double)scale);
    if (noise != 0 && noise != 1)
        return balm_fail(BALM_ERR_ARG, "%s: noise must be 0 or 1, got %d", fn, noise);
    if (n == 0) {
        if (sd_out) *sd_out = 0.0f;
        return BALM_OK;
    }
    CHECK_NULL(fn, g);
    if (offset + n < offset)
        return balm_fail(BALM_ERR_SIZE, "%s: offset + n overflows the 64-bit counter", fn);
    /* Pass 1: moments of g (std of g*scale is |scale| std(g)) and the
     * non-finite check. Pass 2: scale and add noise. */
    double s[2];
    balm_status st = sums_checked(fn, n, g, s);
    if (st) return st;
    float sd = noise ? fabsf(scale) * std_from_sums(n, s) + 1e-8f : 0.0f;
    if (noise)
        scale_noise_run(n, g, scale, sd, seed, offset);
    else
        balm_scale(n, g, scale);
    if (sd_out) *sd_out = sd;
    return BALM_OK;
}

float balm_uniform(uint64_t seed, uint64_t k)
{
    uint32_t r[4];
    balm_philox4x32_10(seed, k >> 2, r);
    return balm_u32_to_uniform(r[k & 3]);
}
