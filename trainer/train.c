/* The training run: data, model, epochs, evaluation, output. */
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "trainer.h"

int balm_train_run(const balm_train_opts *o, balm_train_result *r)
{
    (void)o;
    memset(r, 0, sizeof *r);
    fprintf(stderr, "balm train: not implemented yet\n");
    return 1;
}
