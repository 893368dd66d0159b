/* GRM, the Gradient Rebalancing Module: three unimodal heads on the detached
 * encoder features, their Adam optimizer, and the per-step rebalancing of
 * BALM-SPEC's GRM section (points 1 to 6, then the heads' optimizer step).
 *
 * Modality order everywhere in this API is the library's (l, a, v) =
 * (BALM_L, BALM_A, BALM_V), not upstream's reporting order (a, v, l).
 *
 * Per balm_grm_step, in this order:
 *  1. heads: h_m = relu(x_m W1_m^T + b1_m) [N][H], u_m = h_m W2_m^T + b2_m
 *     [N][C]; classification: log_softmax(u_m) with NLL loss (mean over N);
 *     regression (C = 1): u_m raw with MSE loss (mean over N). Forward and
 *     backward give the heads' gradients (overwritten every step).
 *  2. cos_m = balm_cos(W2_m, fused_w) over the C*H weights (before the
 *     heads' optimizer step of this call).
 *  3. KL_m: classification balm_kl_cls(softmax(fused_out), log_softmax(u_m));
 *     regression balm_kl_reg(fused_out, u_m).
 *  4. coeff = balm_grm_coeff(prev_KL or none on the first step, KL); then
 *     prev_KL = KL.
 *  5. loss_gm = balm_grm_loss(coeff, cos) and d loss_gm / d fused_w written
 *     to dfused_w (balm_direction_grad, overwritten). The caller adds tau
 *     times it (balm_grm_tau) to the fused weight's gradient on the NEXT step,
 *     as upstream does.
 *  6. If start_epoch <= epoch <= end_epoch: every gradient array registered
 *     for modality m is rescaled by coeff_m * rho and, with noise on, gets
 *     N(0, std(scaled) + 1e-8) per element (balm_grad_rescale). The noise of
 *     tensor j on a step uses the Philox stream keyed by noise_seed (see
 *     below) at a running offset that advances by each tensor's size
 *     (rounded up to a multiple of 4) every time noise is drawn, so every
 *     step and tensor uses a distinct part of the stream, deterministically
 *     from the seed, the registration order and the number of steps.
 *  7. Adam step of the heads (PyTorch semantics: L2 weight decay added to the
 *     gradient, bias-corrected moments, eps added after the square root).
 *
 * Errors: nothing is modified (heads, Adam state, prev_KL, registered arrays,
 * dfused_w, report) unless the whole step succeeds; a NaN or Inf in a
 * registered gradient is BALM_ERR_NONFINITE naming the modality, the tensor
 * (its name and registration index) and the element.
 *
 * Initialisation: PyTorch's default Linear init, U(+-1/sqrt(fan_in)) for
 * weights and biases, uniforms balm_uniform(seed, k) with k running over the
 * heads l, a, v and in each W1, b1, W2, b2. The noise stream is keyed by
 * seed ^ 0x9E3779B97F4A7C15 so it never reuses the init uniforms.
 *
 * Thread rules: one balm_grm may be used by one thread at a time. */
#ifndef BALM_GRM_H
#define BALM_GRM_H

#include "balm/balm.h"
#include "balm/fcm.h" /* balm_linear_backend */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct balm_grm_config {
    size_t C;               /* classes; 1 means regression */
    size_t H;               /* input width of the fused classifier = heads' hidden width */
    size_t enc[BALM_NMOD];  /* encoder feature width of l, a, v */
    size_t max_N;           /* largest batch */
    float rho, tau;         /* magnitude factor, direction-loss weight */
    int start_epoch, end_epoch; /* rescaling window, both inclusive */
    int noise;              /* 1: add the Gaussian noise after rescaling */
    uint64_t seed;          /* head init and noise */
    /* the heads' Adam */
    float lr, beta1, beta2, eps, weight_decay;
    balm_linear_backend backend;
} balm_grm_config;

/* Defaults: upstream IEMOCAP values rho 1.4, tau 0.3, window 0..INT_MAX,
 * noise on, seed 0, Adam lr 3e-4, betas (0.9, 0.999), eps 1e-8, weight decay
 * 3e-5, backend AUTO. C, H, enc and max_N are left 0 for the caller. */
BALM_API balm_grm_config balm_grm_config_default(void);

typedef struct balm_grm balm_grm;

BALM_API balm_status balm_grm_create(const balm_grm_config *cfg, balm_grm **out);
BALM_API void balm_grm_destroy(balm_grm *g);
BALM_API float balm_grm_tau(const balm_grm *g);

/* Register one parameter-gradient tensor of modality m's encoder (n floats
 * at grad, owned by the caller, must stay valid). Each registered tensor has
 * its own std for the noise. name (may be NULL; copied, up to 47 chars) is
 * used in error messages. *index (may be NULL) receives the registration
 * index. A range overlapping an already registered one is BALM_ERR_ARG (it
 * would be rescaled twice). */
BALM_API balm_status balm_grm_register(balm_grm *g, int modality, float *grad, size_t n,
                                       const char *name, size_t *index);
/* Forget every registered tensor (e.g. before re-registering after the
 * caller reallocated its gradients). */
BALM_API void balm_grm_clear_registered(balm_grm *g);

typedef struct balm_grm_input {
    size_t N;                          /* batch, <= max_N; N >= 1 */
    const float *feat[BALM_NMOD];      /* detached encoder features [N][enc_m] */
    const float *fused_out;            /* classification: fused logits [N][C];
                                          regression: raw fused output [N] */
    const int32_t *labels;             /* classification: class ids [N] in 0..C-1 */
    const float *targets;              /* regression: targets [N] */
    const float *fused_w;              /* the fused classifier's weight [C][H] */
    int epoch;
} balm_grm_input;

typedef struct balm_grm_report {
    float kl[BALM_NMOD];
    float coeff[BALM_NMOD];
    float cos[BALM_NMOD];
    float head_loss[BALM_NMOD];   /* NLL or MSE, mean over N */
    float head_acc[BALM_NMOD];    /* classification: argmax == label; regression:
                                     (u > 0) == (target > 0); fraction of N */
    float loss_gm;
    int rescaled;                 /* 1 if the epoch was inside the window */
} balm_grm_report;

/* One GRM step (see the top of this header). dfused_w [C][H] receives
 * d loss_gm / d fused_w (overwritten). report may be NULL. */
BALM_API balm_status balm_grm_step(balm_grm *g, const balm_grm_input *in, float *dfused_w,
                                   balm_grm_report *report);

/* Head parameters: W1 [H][enc_m], b1 [H], W2 [C][H], b2 [C]. */
typedef enum balm_grm_param_id {
    BALM_GRM_W1 = 0,
    BALM_GRM_B1,
    BALM_GRM_W2,
    BALM_GRM_B2,
    BALM_GRM_NPARAM
} balm_grm_param_id;

/* Parameter `id` of modality m's head, its gradient from the last step (scratch
 * of the step: a failed step may have overwritten it) and
 * the two Adam moments, each `*count` floats owned by g (any out-pointer may
 * be NULL). Writable: to load a checkpoint, write them and set the state. */
BALM_API balm_status balm_grm_param(balm_grm *g, int modality, balm_grm_param_id id,
                                    float **param, float **grad, float **adam_m,
                                    float **adam_v, size_t *count);

/* The scalar state to save and restore for checkpoints. */
typedef struct balm_grm_state {
    float prev_kl[BALM_NMOD];
    int have_prev;           /* 0 before the first step: coefficients from KL alone */
    uint64_t adam_steps;     /* Adam's t */
    uint64_t noise_offset;   /* next offset in the noise stream */
} balm_grm_state;
BALM_API balm_status balm_grm_get_state(const balm_grm *g, balm_grm_state *s);
/* Values are checked (prev_kl finite, have_prev 0 or 1). */
BALM_API balm_status balm_grm_set_state(balm_grm *g, const balm_grm_state *s);

#ifdef __cplusplus
}
#endif
#endif
