/* oneDNN backend of the linear layer. STUB: runs the plain C path until the
 * matmul primitives land, so the API links. */
#include <stdlib.h>
#include "internal.h"
#include "linear_ref.h"

struct balm_linear_dnn {
    size_t in, out, max_rows;
};

balm_status balm_linear_dnn_create(size_t in, size_t out, size_t max_rows,
                                   balm_linear_dnn **out_state)
{
    balm_linear_dnn *d = calloc(1, sizeof *d);
    if (!d)
        return balm_fail(BALM_ERR_NOMEM, "balm_linear_create: out of memory");
    d->in = in;
    d->out = out;
    d->max_rows = max_rows;
    *out_state = d;
    return BALM_OK;
}

void balm_linear_dnn_destroy(balm_linear_dnn *d)
{
    free(d);
}

balm_status balm_linear_dnn_fwd(balm_linear_dnn *d, size_t rows, const float *x,
                                const float *W, const float *b, float *y)
{
    balm_linear_ref_fwd(rows, d->in, d->out, x, W, b, y);
    return BALM_OK;
}

balm_status balm_linear_dnn_bwd_data(balm_linear_dnn *d, size_t rows, const float *dy,
                                     const float *W, float *dx, int accumulate)
{
    balm_linear_ref_bwd_data(rows, d->in, d->out, dy, W, dx, accumulate);
    return BALM_OK;
}

balm_status balm_linear_dnn_bwd_weights(balm_linear_dnn *d, size_t rows, const float *dy,
                                        const float *x, float *dW, int accumulate)
{
    balm_linear_ref_bwd_weights(rows, d->in, d->out, dy, x, dW, NULL, accumulate);
    return BALM_OK;
}

void balm_linear_dnn_apply_threads(int n)
{
    (void)n;
}
