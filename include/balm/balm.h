/* libbalm: SIMD CPU kernels for BALM (balanced multimodal learning under
 * imbalanced missing rates). Public C API.
 *
 * Conventions for every function in this header
 * - Return a balm_status. On any error nothing is written to any output
 *   (validation happens before the first store); balm_last_error() then
 *   holds a one-line message naming the function, the argument and, for
 *   data errors, the index (thread-local, valid until the next failing call
 *   on the same thread).
 * - Modality order in arrays of three is always (l, a, v) = (text, audio,
 *   visual): BALM_L, BALM_A, BALM_V. (Upstream reports GRM values in the
 *   order (a, v, l); the `balm check` tool maps that order.)
 * - Sizes are element counts; strides are counted in floats, not bytes.
 * - Empty calls (T = 0 or B = 0, n = 0, N = 0) are valid: see each function
 *   for what it writes then.
 * - Kernels are re-entrant and hold no state; several threads may call them
 *   at once on disjoint outputs. Dispatch is initialised once, thread-safely,
 *   on first use.
 * - Masks hold exactly 0.0f (missing or padding) or 1.0f (present). Any other
 *   value, NaN included, is BALM_ERR_MASK. Where the mask is 0 the data at that
 *   position is never used: it may be NaN or Inf, outputs there are exactly 0
 *   and pooled values ignore it ("missing steps stay exactly zero").
 */
#ifndef BALM_BALM_H
#define BALM_BALM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define BALM_API
#elif defined(__GNUC__)
#define BALM_API __attribute__((visibility("default")))
#else
#define BALM_API
#endif

#define BALM_VERSION_MAJOR 0
#define BALM_VERSION_MINOR 1
#define BALM_VERSION_PATCH 0
BALM_API const char *balm_version(void);

/* ------------------------------------------------------------------ status */
typedef enum balm_status {
    BALM_OK = 0,
    BALM_ERR_NULL,       /* a required pointer is NULL */
    BALM_ERR_SIZE,       /* a size is out of range or a product overflows size_t */
    BALM_ERR_STRIDE,     /* a stride is zero or makes rows overlap */
    BALM_ERR_MASK,       /* a mask value is neither 0 nor 1 */
    BALM_ERR_ARG,        /* another argument is invalid (enum, flag, shape mismatch) */
    BALM_ERR_NONFINITE,  /* an input that must be finite is NaN or Inf */
    BALM_ERR_ISA,        /* ISA unknown or not supported by this build and CPU */
    BALM_ERR_IO,         /* a file could not be opened, read or written */
    BALM_ERR_FORMAT,     /* a file's content is malformed or truncated */
    BALM_ERR_NOMEM,      /* out of memory */
    BALM_ERR_STATE,      /* a call out of order (backward before forward, ...) */
    BALM_ERR_UNSUPPORTED /* a feature this build lacks (oneDNN, ...) */
} balm_status;

/* Short constant description of a status ("mask value is neither 0 nor 1"). */
BALM_API const char *balm_status_str(balm_status s);
/* Detailed message of the last failing call on this thread ("" if none). */
BALM_API const char *balm_last_error(void);

/* --------------------------------------------------------------------- ISA */
typedef enum balm_isa {
    BALM_ISA_SCALAR = 0,
    BALM_ISA_AVX2 = 1,   /* x86-64 AVX2 + FMA */
    BALM_ISA_AVX512 = 2, /* x86-64 AVX-512 F+BW+DQ+VL */
    BALM_ISA_NEON = 3,   /* AArch64 Advanced SIMD */
    BALM_ISA_COUNT
} balm_isa;

/* "scalar", "avx2", "avx512", "neon"; NULL for an unknown value. */
BALM_API const char *balm_isa_name(balm_isa isa);
/* Parse a name as above (case-insensitive). BALM_ERR_ISA if unknown. */
BALM_API balm_status balm_isa_from_name(const char *name, balm_isa *isa);
/* 1 if this build has kernels for `isa` and this CPU and OS can run them. */
BALM_API int balm_isa_supported(balm_isa isa);
/* The ISA whose kernels the dispatched calls use. Initialises dispatch. */
BALM_API balm_isa balm_isa_active(void);
/* Why the active ISA was chosen: "best detected", "capped by BALM_ISA=avx2",
 * "capped by balm_isa_set_cap(avx2)". */
BALM_API const char *balm_isa_reason(void);
/* Cap the ISA, like ONEDNN_MAX_CPU_ISA: the active ISA becomes the best
 * supported one not above `cap` (on x86 the order is scalar < avx2 < avx512;
 * on ARM scalar < neon; a cap from the other family means scalar). It never
 * enables an ISA the CPU lacks. Set-once: must be called before the first
 * kernel call or balm_isa_active(); later calls return BALM_ERR_STATE. It
 * takes precedence over the BALM_ISA environment variable, which caps the
 * same way and whose unknown values are reported on stderr once. */
BALM_API balm_status balm_isa_set_cap(balm_isa cap);

/* CPU description for `balm info`. */
typedef struct balm_cpu_info {
    char vendor[16];
    char model[64];
    int sse42, avx, avx2, fma, f16c;
    int avx512f, avx512bw, avx512dq, avx512vl;
    int os_ymm, os_zmm; /* XCR0 says the OS saves YMM / ZMM+opmask state */
    int neon;
} balm_cpu_info;
BALM_API void balm_cpu_info_get(balm_cpu_info *info);

/* ---------------------------------------------------------------- layouts */
/* A sequence tensor x[t][b][d]: T steps, B samples, D contiguous channels.
 * Element (t, b, d) is at x[t*x_step + b*x_sample + d]; mask (t, b) is at
 * m[t*m_step + b*m_sample]. Strides must be >= 1; for dimensions of size > 1
 * the rows must not overlap (the smaller data stride >= D, the larger >= the
 * smaller times its count; the same for the mask with D = 1). Outputs and
 * gradients with the same shape as x use the same strides. */
typedef struct balm_seq {
    size_t T, B, D;
    size_t x_step, x_sample;
    size_t m_step, m_sample;
} balm_seq;

/* Step-major [T][B][D] with mask [T][B] (upstream's order). */
BALM_API balm_seq balm_seq_tbd(size_t T, size_t B, size_t D);
/* Sample-major [B][T][D] with mask [B][T]. */
BALM_API balm_seq balm_seq_btd(size_t T, size_t B, size_t D);

enum { BALM_L = 0, BALM_A = 1, BALM_V = 2, BALM_NMOD = 3 };

/* Epsilon added to the mask count in pooling (upstream's 1e-8). */
#define BALM_POOL_EPS 1e-8f
/* Norm clamp of the cosine (F.cosine_similarity's eps). */
#define BALM_COS_EPS 1e-8f

/* ---------------------------------------------------------------- FCM kernels */
/* Masked mean pooling. s[b][d] = sum_t m*x / (sum_t m + 1e-8), s dense [B][D].
 * A sample with no present step gets s = 0. Non-finite data at present steps
 * propagates (as in PyTorch); at masked steps it is ignored. T = 0 writes s = 0 (B*D values);
 * B = 0 or D = 0 writes nothing. */
BALM_API balm_status balm_pool_fwd(const balm_seq *L, const float *x, const float *m,
                                   float *s);
/* Pooling backward: dx[t][b][d] (+)= m * ds[b][d] / (sum_t m + 1e-8).
 * accumulate = 0 overwrites dx (masked positions get exactly 0); 1 adds to it
 * (masked positions are left unchanged). */
BALM_API balm_status balm_pool_bwd(const balm_seq *L, const float *m, const float *ds,
                                   float *dx, int accumulate);
/* Gate forward: y = 2*sigmoid(e[b][d]) * x * m; masked positions exactly 0.
 * e dense [B][D]. y may alias x (same strides). */
BALM_API balm_status balm_gate_fwd(const balm_seq *L, const float *x, const float *m,
                                   const float *e, float *y);
/* Gate backward: dx = 2*sigmoid(e)*m*dy (overwritten; masked positions 0) and
 * de[b][d] = sum_t dy*x*m * 2*sigmoid(e)*(1-sigmoid(e)) (overwritten, dense
 * [B][D]; T = 0 gives de = 0). Saturated e (|e| >= 40) gives de = 0 exactly
 * or near it, never NaN. dx may not alias x or dy. */
BALM_API balm_status balm_gate_bwd(const balm_seq *L, const float *x, const float *m,
                                   const float *e, const float *dy, float *dx, float *de);

/* ---------------------------------------------------------------- GRM kernels */
/* Classification KL with batch mean: kl = sum_{n,c} p*(log p - logq) / N over
 * dense [N][C] arrays; a term with p = 0 contributes 0. p must lie in [0, 1]
 * and logq must not be NaN (BALM_ERR_NONFINITE / BALM_ERR_ARG with index).
 * logq = -inf where p > 0 gives +inf (the true value). N = 0 gives 0. */
BALM_API balm_status balm_kl_cls(size_t N, size_t C, const float *p, const float *logq,
                                 float *kl);
/* Regression KL: p = [sigmoid(-f), sigmoid(f)], logq = [logsigmoid(-u),
 * logsigmoid(u)] per sample, batch mean. Finite for any finite f, u. */
BALM_API balm_status balm_kl_reg(size_t N, const float *f, const float *u, float *kl);

/* cos = sum_i (w[i]/max(|w|,1e-8)) * (wf[i]/max(|wf|,1e-8)). Optionally
 * returns the two unclamped L2 norms (either pointer may be NULL). n = 0
 * gives cos = 0. A non-finite w or wf is BALM_ERR_NONFINITE naming the index. */
BALM_API balm_status balm_cos(size_t n, const float *w, const float *wf, float *cos,
                              float *norm_w, float *norm_wf);
/* Direction loss gradient w.r.t. the fused weight wf (GRM projection):
 *   dwf (+)= (1/M) sum_m |coeff_m| sign(cos_m) (w_m/(|w_m||wf|) - cos_m wf/|wf|^2)
 * with norms clamped at 1e-8 each; cos_m as computed by balm_cos. M in 1..8;
 * w[m] are M arrays of n floats. accumulate = 0 overwrites dwf. */
BALM_API balm_status balm_direction_grad(size_t n, size_t M, const float *const *w,
                                         const float *wf, const float *coeff,
                                         const float *cos, float *dwf, int accumulate);
/* GRM coefficients: diff = prev_kl - cur_kl (prev_kl == NULL: first step,
 * diff = cur_kl), S = sum(diff) + 1e-8, coeff_m = (S - diff_m)/S. Inputs must
 * be finite. */
BALM_API balm_status balm_grm_coeff(size_t M, const float *prev_kl, const float *cur_kl,
                                    float *coeff);
/* loss_gm = (1/M) sum_m |coeff_m * cos_m|. */
BALM_API balm_status balm_grm_loss(size_t M, const float *coeff, const float *cos,
                                   float *loss_gm);

/* x[i] *= alpha, in place. */
BALM_API balm_status balm_scale(size_t n, float *x, float alpha);
/* Unbiased standard deviation (divisor n-1), accumulated in double; n < 2
 * gives 0. Non-finite input is BALM_ERR_NONFINITE with its index. */
BALM_API balm_status balm_std(size_t n, const float *x, float *sd);
/* Gaussian noise: x[i] += sd * N_{seed}(offset + i). The normal of element
 * index k comes from the counter-based generator Philox4x32-10 keyed by
 * `seed`: block k/4 gives four uniforms, Box-Muller turns them into four
 * normals. So the uniform stream depends only on (seed, offset + i), never on
 * the ISA, chunking or thread count; the normals agree across ISAs to a few
 * ulp. sd must be finite and >= 0. */
BALM_API balm_status balm_noise(size_t n, float *x, float sd, uint64_t seed,
                                uint64_t offset);
/* x[i] = x[i]*alpha + sd * N_{seed}(offset + i): scale and noise in one pass,
 * the same stream as balm_noise (which is alpha = 1). alpha finite, sd
 * finite and >= 0. */
BALM_API balm_status balm_scale_noise(size_t n, float *x, float alpha, float sd, uint64_t seed,
                                      uint64_t offset);
/* GRM magnitude step for one parameter tensor: g *= scale; then, if `noise`,
 * sd = std(g after scaling) + 1e-8 and g += N(0, sd) (stream as balm_noise).
 * Two passes over g. A non-finite g or scale is BALM_ERR_NONFINITE (g
 * untouched). sd_out (may be NULL) receives the sd used (0 without noise). */
BALM_API balm_status balm_grad_rescale(size_t n, float *g, float scale, int noise,
                                       uint64_t seed, uint64_t offset, float *sd_out);

/* The Philox4x32-10 uniform of element index k in (0, 1) (24-bit, never 0 or
 * 1): exposed so tests and users can check the stream. */
BALM_API float balm_uniform(uint64_t seed, uint64_t k);

/* ------------------------------------------------------- shadow checking */
/* When enabled (process-wide), every public kernel call above that runs a
 * SIMD kernel also runs the scalar reference on the same inputs into scratch
 * memory and records the largest relative difference per kernel (relative to
 * the largest magnitude of the reference output). The results returned are
 * the SIMD ones. Costs a copy and a scalar pass: for `balm train
 * --check-isa`, not for production. Thread-safe. */
BALM_API void balm_shadow_enable(int on);
typedef struct balm_shadow_stat {
    const char *kernel; /* kernel family name, e.g. "gate_bwd" */
    uint64_t calls;     /* calls checked since the last reset */
    double max_rel;     /* largest relative difference seen (0 if equal) */
} balm_shadow_stat;
/* Kernel names are those of kernels/kernels.h: pool_fwd, pool_bwd, gate_fwd,
 * gate_bwd (balm_pool_* / balm_gate_*), kl_cls_sum, kl_reg_sum (balm_kl_cls,
 * balm_kl_reg), dot_norms (balm_cos and balm_direction_grad's norms),
 * combine (balm_direction_grad), scale (balm_scale), sums (balm_std and
 * balm_grad_rescale's moments), scale_noise (balm_noise, balm_grad_rescale).
 * Copies up to `cap` entries (one per kernel in the kernel list) and returns
 * the number of kernels; reset = 1 clears the statistics after reading. */
BALM_API size_t balm_shadow_stats(balm_shadow_stat *out, size_t cap, int reset);

#ifdef __cplusplus
}
#endif
#endif /* BALM_BALM_H */
