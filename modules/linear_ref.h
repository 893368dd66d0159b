/* Private to modules/: the plain C linear layer (the oracle) and the hooks a
 * second backend (linear_onednn.c) provides to the front end in linear_ref.c. */
#ifndef BALM_MODULES_LINEAR_REF_H
#define BALM_MODULES_LINEAR_REF_H

#include <stddef.h>
#include "linear.h"

/* Plain loops, float accumulation in a fixed order (the summed index
 * ascending, from 0, then added to the old value when accumulating). acc is
 * scratch of max(in, out) floats. */
void balm_linear_ref_fwd(size_t rows, size_t in, size_t out, const float *x, const float *W,
                         const float *b, float *y);
void balm_linear_ref_bwd_data(size_t rows, size_t in, size_t out, const float *dy,
                              const float *W, float *dx, int accumulate, float *acc);
void balm_linear_ref_bwd_weights(size_t rows, size_t in, size_t out, const float *dy,
                                 const float *x, float *dW, float *db, int accumulate,
                                 float *acc);

#ifdef BALM_HAVE_ONEDNN
/* oneDNN backend state, created for (in, out, max_rows); linear_onednn.c. */
typedef struct balm_linear_dnn balm_linear_dnn;
balm_status balm_linear_dnn_create(size_t in, size_t out, size_t max_rows,
                                   balm_linear_dnn **out_state);
void balm_linear_dnn_destroy(balm_linear_dnn *d);
balm_status balm_linear_dnn_fwd(balm_linear_dnn *d, size_t rows, const float *x,
                                const float *W, const float *b, float *y);
balm_status balm_linear_dnn_bwd_data(balm_linear_dnn *d, size_t rows, const float *dy,
                                     const float *W, float *dx, int accumulate);
balm_status balm_linear_dnn_bwd_weights(balm_linear_dnn *d, size_t rows, const float *dy,
                                        const float *x, float *dW, int accumulate);
/* Apply the thread setting to the oneDNN runtime (OpenMP). */
void balm_linear_dnn_apply_threads(int n);
#endif

#endif
