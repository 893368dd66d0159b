/* FCM, the Feature Calibration Module: masked mean pooling of each modality,
 * a bottleneck of linear layers and a sigmoid gate in (0, 2), forward and
 * backward, owning its parameters, gradients and scratch memory.
 *
 *   s_m = pool(x_m, mask_m)                    [B][d_m]
 *   z   = relu(Wg concat(s_l, s_a, s_v) + bg)  [B][d_global]
 *   e_m = W_m z + b_m                          [B][d_m]
 *   y_m = 2 sigmoid(e_m) * x_m * mask_m        layout of x_m
 *
 * Thread rules: one balm_fcm may be used by one thread at a time; distinct
 * objects are independent. */
#ifndef BALM_FCM_H
#define BALM_FCM_H

#include "balm/balm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum balm_layout {
    BALM_LAYOUT_TBD = 0, /* x[T][B][D], mask[T][B] (upstream) */
    BALM_LAYOUT_BTD = 1  /* x[B][T][D], mask[B][T] */
} balm_layout;

typedef enum balm_linear_backend {
    BALM_LINEAR_AUTO = 0,   /* oneDNN when the build has it, else plain C */
    BALM_LINEAR_REF = 1,    /* plain C reference (the oracle) */
    BALM_LINEAR_ONEDNN = 2  /* oneDNN matmul; BALM_ERR_UNSUPPORTED without it */
} balm_linear_backend;

/* Parameters in a fixed order; weights are [out][in]. */
typedef enum balm_fcm_param_id {
    BALM_FCM_WG = 0, /* [d_global][d_l + d_a + d_v] */
    BALM_FCM_BG,     /* [d_global] */
    BALM_FCM_WL,     /* [d_l][d_global] */
    BALM_FCM_BL,
    BALM_FCM_WA,     /* [d_a][d_global] */
    BALM_FCM_BA,
    BALM_FCM_WV,     /* [d_v][d_global] */
    BALM_FCM_BV,
    BALM_FCM_NPARAM
} balm_fcm_param_id;

typedef struct balm_fcm_config {
    size_t d[BALM_NMOD];   /* channel widths of l, a, v */
    size_t d_global;       /* bottleneck width; upstream (d_l+d_a+d_v)/4 */
    size_t max_T, max_B;   /* largest batch the object will see */
    balm_layout layout;
    balm_linear_backend backend;
    uint64_t seed;         /* PyTorch-default init: U(+-1/sqrt(fan_in)) */
} balm_fcm_config;

/* A configuration for widths (d_l, d_a, d_v): d_global = (d_l+d_a+d_v)/4
 * as upstream, max_T = max_B = 1 (set them), layout TBD, backend AUTO,
 * seed 0. */
BALM_API balm_fcm_config balm_fcm_config_default(size_t d_l, size_t d_a, size_t d_v);

typedef struct balm_fcm balm_fcm;

BALM_API balm_status balm_fcm_create(const balm_fcm_config *cfg, balm_fcm **out);
BALM_API void balm_fcm_destroy(balm_fcm *f);
/* The backend actually in use (never AUTO). */
BALM_API balm_linear_backend balm_fcm_backend(const balm_fcm *f);

/* Parameter `id` and its gradient, both `*count` floats, owned by f. */
BALM_API balm_status balm_fcm_param(balm_fcm *f, balm_fcm_param_id id, float **param,
                                    float **grad, size_t *count);

/* Forward on a batch of T <= max_T steps and B <= max_B samples: x[m] and
 * y[m] in the object's layout (dense), mask[m] [T][B] or [B][T].
 * Keeps what backward needs: pointers to x[m] and mask[m], which must stay
 * valid and unchanged until backward. y[m] may be x[m] itself (in place):
 * the object then keeps its own copy of x[m] for backward. No other overlap
 * between outputs and inputs is allowed (BALM_ERR_ARG). Every mask is checked
 * before anything is written; on error the object keeps no forward state
 * (backward returns BALM_ERR_STATE) and its intermediates are unspecified. */
BALM_API balm_status balm_fcm_forward(balm_fcm *f, size_t T, size_t B,
                                      const float *const x[BALM_NMOD],
                                      const float *const mask[BALM_NMOD],
                                      float *const y[BALM_NMOD]);
/* Backward of the last forward: dy[m] the gradients of y[m]; writes dx[m]
 * (gate path plus pooling path, overwritten) and the parameter gradients,
 * added to the stored gradients when accumulate = 1, overwriting them when 0. */
BALM_API balm_status balm_fcm_backward(balm_fcm *f, const float *const dy[BALM_NMOD],
                                       float *const dx[BALM_NMOD], int accumulate);

/* Intermediates of the last forward, for checks and logging (owned by f,
 * dense, valid until the next forward): s[m] [B][d_m], z [B][d_global],
 * e[m] [B][d_m]. Any out-pointer may be NULL. */
BALM_API balm_status balm_fcm_intermediates(const balm_fcm *f, const float *s[BALM_NMOD],
                                            const float **z, const float *e[BALM_NMOD]);

/* Threads the oneDNN linear layers use (process-wide, also for GRM): n >= 1
 * that many (default 1), n = 0 the OpenMP runtime's setting (the caller's
 * omp_set_num_threads / OMP_NUM_THREADS). Objects created afterwards use it
 * (oneDNN needs one count from creation to execution); existing ones keep
 * theirs. No effect on the plain C path. */
BALM_API balm_status balm_fcm_set_threads(int n);
/* Time spent since create or the last reset: linear_s inside the linear
 * layers (oneDNN or plain C), total_s in forward+backward overall (the rest
 * is BALM kernels and copies); calls = forwards. reset = 1 zeroes them. */
BALM_API balm_status balm_fcm_timing(balm_fcm *f, double *linear_s, double *total_s,
                                     uint64_t *calls, int reset);

#ifdef __cplusplus
}
#endif
#endif
