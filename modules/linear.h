/* Internal linear-layer API shared by the FCM and GRM modules and the trainer.
 *
 * A balm_linear is created once per (in, out, max_rows, backend) and owns only
 * the backend's primitives and scratch, never the weights: every call takes
 * the caller's W [out][in] (row-major, PyTorch's nn.Linear layout), b [out]
 * and activations, so the same parameters can live in any optimizer's arrays.
 *
 *   forward          y[rows][out]  = x[rows][in] W^T + b      (b may be NULL)
 *   backward_data    dx[rows][in] (+)= dy[rows][out] W
 *   backward_weights dW[out][in]  (+)= dy^T x,  db[out] (+)= sum_rows dy
 *
 * rows may be anything in 0..max_rows at call time (0 writes nothing when
 * accumulating, zeros when overwriting gradients, nothing for y/dx).
 * All arrays are dense and must not overlap each other.
 *
 * Backends: BALM_LINEAR_REF is plain C, float accumulation in a fixed order
 * (the oracle and the build without oneDNN); BALM_LINEAR_ONEDNN uses oneDNN
 * matmul primitives created at create time (runtime M dimension), so no
 * primitive is created inside a training step. AUTO picks oneDNN when built.
 *
 * Thread rules: one balm_linear may be used by one thread at a time. */
#ifndef BALM_MODULES_LINEAR_H
#define BALM_MODULES_LINEAR_H

#include <stddef.h>
#include "balm/balm.h"
#include "balm/fcm.h" /* balm_linear_backend */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct balm_linear balm_linear;

/* Whether this build has the backend (AUTO and REF always). */
int balm_linear_backend_available(balm_linear_backend be);
/* AUTO resolved to the concrete backend this build uses. */
balm_linear_backend balm_linear_backend_resolve(balm_linear_backend be);
const char *balm_linear_backend_name(balm_linear_backend be);

/* in, out >= 1, max_rows >= 1. BALM_ERR_UNSUPPORTED for ONEDNN without it. */
balm_status balm_linear_create(size_t in, size_t out, size_t max_rows,
                               balm_linear_backend backend, balm_linear **lin);
void balm_linear_destroy(balm_linear *lin);
balm_linear_backend balm_linear_get_backend(const balm_linear *lin);
size_t balm_linear_in(const balm_linear *lin);
size_t balm_linear_out(const balm_linear *lin);
size_t balm_linear_max_rows(const balm_linear *lin);

/* y = x W^T + b; b may be NULL (no bias). */
balm_status balm_linear_forward(balm_linear *lin, size_t rows, const float *x,
                                const float *W, const float *b, float *y);
/* dx = dy W (accumulate = 0) or dx += dy W (accumulate = 1). */
balm_status balm_linear_backward_data(balm_linear *lin, size_t rows, const float *dy,
                                      const float *W, float *dx, int accumulate);
/* dW (+)= dy^T x and, if db != NULL, db (+)= column sums of dy. */
balm_status balm_linear_backward_weights(balm_linear *lin, size_t rows, const float *dy,
                                         const float *x, float *dW, float *db,
                                         int accumulate);

/* Threads the oneDNN backend uses (default 1; 0 means the OpenMP runtime's
 * setting, i.e. the caller's omp_set_num_threads / OMP_NUM_THREADS).
 * Process-wide; each layer takes the value in force when it is created and
 * keeps it (oneDNN needs the same count at creation and execution), so set
 * it before creating layers or modules. The caller's OpenMP setting is
 * restored after every call. */
void balm_linear_set_threads(int n);
int balm_linear_get_threads(void);

/* Seconds spent inside linear-layer calls on this thread since the last
 * reset (for reporting the oneDNN vs BALM-kernel split). */
double balm_linear_time(int reset);

#ifdef __cplusplus
}
#endif
#endif
