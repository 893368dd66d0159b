/* Internal API of the reference trainer (library balm_trainer): options,
 * data sets, missing-rate patterns, the model, checkpoints and the run.
 * Errors are reported through balm_fail() (message via balm_last_error()). */
#ifndef BALM_TRAINER_TRAINER_H
#define BALM_TRAINER_TRAINER_H

#include <stddef.h>
#include <stdint.h>
#include "balm/balm.h"

/* ------------------------------------------------------------- options */
typedef enum balm_mask_order {
    BALM_MASK_UPSTREAM = 0, /* pattern blocks in fixed order over dialogue order */
    BALM_MASK_SHUFFLED = 1  /* the same counts, seeded shuffle */
} balm_mask_order;

#define BALM_FMNIST_DIR "/usr/share/datasets/fashion-mnist"
/* --check-isa tolerance: largest relative difference SIMD vs scalar twin. */
#define BALM_CHECK_ISA_TOL 1e-4

typedef struct balm_train_opts {
    int epochs;
    size_t batch_size;          /* dialogues per batch */
    float lr, l2, tau, rho;
    size_t d_global;            /* 0: (d_l + d_a + d_v) / 4 as upstream */
    int start_epoch, end_epoch; /* GRM magnitude window, 1-based, inclusive; end 0 = last */
    int noise;
    uint64_t seed;
    double rates[BALM_NMOD];    /* missing rates, l, a, v order (double: floor(N*prod) as upstream) */
    balm_mask_order mask_order;
    size_t limit;               /* use only the first N training utterances (0 = all) */
    size_t hidden;              /* encoder width h */
    int balm;                   /* 0: --no-balm */
    int check_isa;
    double check_tol;
    const char *log_path, *save_path, *load_path, *data_dir, *isa;
    const char *fmnist_dir;     /* default BALM_FMNIST_DIR (tests point it elsewhere) */
    size_t test_limit;          /* Fashion-MNIST: first N test images only (tests; 0 = all) */
    int quiet;                  /* no progress output (tests) */
} balm_train_opts;

void balm_train_opts_default(balm_train_opts *o);
/* Parses argv[1..argc). Returns 0 (ok), 2 (usage error: one line in err),
 * 3 (--help). */
int balm_train_parse(int argc, char **argv, balm_train_opts *o, char *err, size_t errlen);
void balm_train_usage(void *stream /* FILE* */);

typedef struct balm_train_result {
    int epochs_run, best_epoch;     /* best_epoch 0: no validation / no epoch */
    double best_val_f1, best_val_acc;
    double last_val_f1, last_val_acc, last_loss;
    double test_f1, test_acc;       /* of the best-validation epoch's weights */
    double head_test_acc[BALM_NMOD]; /* l, a, v; -1 without GRM heads */
    double check_max_rel;           /* --check-isa: largest over the run */
    uint32_t weights_crc;           /* CRC32 of the final backbone parameters */
} balm_train_result;

/* The whole run. Returns 0, or 1 after printing the error on stderr. */
int balm_train_run(const balm_train_opts *o, balm_train_result *r);

/* ------------------------------------------------------------- data */
/* One split: utterances in dialogue order. */
typedef struct balm_split {
    size_t n, n_dialogs;
    size_t *dialog;            /* n_dialogs + 1 offsets into the utterances */
    float *x[BALM_NMOD];       /* [n][d_m] */
    float *mask[BALM_NMOD];    /* [n]: 1 present, 0 missing */
    float *y;                  /* [n]: class id or regression target */
} balm_split;

typedef struct balm_dataset {
    size_t d[BALM_NMOD];
    size_t n_classes;          /* 1 = regression */
    balm_split train, valid, test;
    char name[32];
} balm_dataset;

void balm_dataset_free(balm_dataset *ds);
/* A read-only descriptor of `path` if it is a regular file (FIFOs and devices
 * are refused without blocking); else -1 and a balm_fail message naming fn. */
int balm_open_regular(const char *fn, const char *path);
void balm_split_free(balm_split *s);
balm_status balm_split_alloc(balm_split *s, size_t n, size_t n_dialogs, const size_t d[BALM_NMOD]);

/* IDX file (gzip or plain, read through zlib): checks the magic
 * 0x000008<ndim> (unsigned bytes), the dimensions against `expect` (0 = any),
 * the size (truncation, trailing bytes). max_items > 0 reads only the first
 * max_items items (then trailing bytes are not looked for). *data is
 * malloc'ed; dims[0..ndim) are the file's dimensions. */
balm_status balm_idx_read(const char *path, size_t ndim, const size_t *expect, size_t max_items,
                          size_t *dims, uint8_t **data);

/* Fashion-MNIST as three views: l = 2x2 mean-pool (196), a = 28 row + 28
 * column sums (56), v = 7x7 mean-pool (16). Dialogues of seeded length
 * 4..24 over consecutive images; 10% of the training dialogues held out
 * (seeded); standardised with the training split's mean/std per channel.
 * limit > 0 keeps the first `limit` training images, test_limit > 0 the
 * first `test_limit` test images. */
#define BALM_DIALOG_MIN 4
#define BALM_DIALOG_MAX 24
balm_status balm_fmnist_load(const char *dir, size_t limit, size_t test_limit, uint64_t seed,
                             balm_dataset *ds);

/* --data DIR: <split>_{text,audio,visual}.npy [N][D], <split>_labels.npy [N],
 * <split>_dialogs.npy [n_dialogs + 1] offsets (float), splits train, valid
 * (optional: else 10% of the training dialogues held out, seeded), test.
 * Labels that are all non-negative integers give classification with
 * max + 1 classes, anything else regression. */
balm_status balm_npydata_load(const char *dir, size_t limit, uint64_t seed, balm_dataset *ds);

/* Shared by both loaders: split off ~10% of the dialogues (seeded) of *all
 * into *valid, the rest back into *all. */
balm_status balm_holdout(balm_split *all, balm_split *valid, const size_t d[BALM_NMOD],
                         uint64_t seed);
/* Cut n utterances into dialogues of seeded length 4..24 (the last may be
 * shorter): writes offsets into a malloc'ed *off and their count. */
balm_status balm_make_dialogs(size_t n, uint64_t seed, size_t **off, size_t *n_dialogs);
/* Standardise every split with the training split's per-channel mean/std
 * (over present utterances; std 0 counts as 1). Missing rows stay 0. */
void balm_standardise(balm_dataset *ds);

/* ------------------------------------------------------------- IMR */
/* Presence patterns as bit sets: bit BALM_L, BALM_A, BALM_V (1 = present). */
#define BALM_PAT(l, a, v) ((l) << BALM_L | (a) << BALM_A | (v) << BALM_V)
/* counts[p] for the 8 patterns p (counts[0] = 0 always); rates in l, a, v
 * order, each in [0, 1). Sum of counts = N. */
void balm_imr_counts(size_t N, const double rates[BALM_NMOD], size_t counts[8]);
/* The pattern order of the upstream layout (7 patterns). */
extern const unsigned balm_imr_order[7];
/* Assign patterns to the n utterances of s (dialogue order): sets the masks
 * and zeroes the missing features. */
balm_status balm_imr_apply(balm_split *s, const size_t d[BALM_NMOD],
                           const double rates[BALM_NMOD], balm_mask_order order, uint64_t seed);

/* ------------------------------------------------------------- random */
/* A counter-based stream (Philox4x32-10 from kernels/common/philox.h). */
typedef struct balm_rng {
    uint64_t seed, counter;
} balm_rng;
uint32_t balm_rng_u32(balm_rng *r);
/* Uniform integer in [0, n) (n >= 1), unbiased. */
size_t balm_rng_below(balm_rng *r, size_t n);
/* Uniform float in [-a, a]. */
float balm_rng_sym(balm_rng *r, float a);
/* Fisher-Yates shuffle of idx[0..n). */
void balm_rng_shuffle(balm_rng *r, size_t *idx, size_t n);

/* ------------------------------------------------------------- checkpoints */
/* A list of named parameter tensors to save or load. */
typedef struct balm_tensor_ref {
    const char *name;
    float *data;
    size_t count;
} balm_tensor_ref;
/* Header words (model shape) must match on load. */
#define BALM_CKPT_META 8
balm_status balm_ckpt_save(const char *path, const uint64_t meta[BALM_CKPT_META],
                           const balm_tensor_ref *t, size_t nt);
/* Loads into t[] (only if everything checks: magic, version, meta, names,
 * counts, CRC32); else nothing is written and the message says what differs. */
balm_status balm_ckpt_load(const char *path, const uint64_t meta[BALM_CKPT_META],
                           const balm_tensor_ref *t, size_t nt);

/* ------------------------------------------------------------- model */
/* Encoders Linear(d_m -> h) -> relu per modality, FCM in front of them (balm
 * on), fused classifier Linear(3h -> C) on concat(h_l, h_a, h_v). Batches are
 * B dialogues padded to T = the longest, step-major [T][B][d] for the FCM;
 * everything after the encoders' input runs on the N real utterances only,
 * gathered dialogue by dialogue. */
typedef struct balm_model_cfg {
    size_t d[BALM_NMOD], hidden, n_classes, d_global, max_T, max_B;
    int balm;
    uint64_t seed;
} balm_model_cfg;

typedef struct balm_model balm_model;

/* A parameter tensor as the optimizer, clipping and checkpoints see it.
 * modality: the encoder's modality (BALM_L/A/V) or -1. */
typedef struct balm_param {
    const char *name;
    float *p, *g;
    size_t n;
    int modality;
} balm_param;

balm_status balm_model_create(const balm_model_cfg *cfg, balm_model **out);
void balm_model_destroy(balm_model *m);
/* The backbone's parameters (encoders, fused classifier, FCM when on). */
size_t balm_model_params(balm_model *m, const balm_param **list);

/* Forward on dialogues dlg[0..B) of s. Returns N (utterances) through *n. */
balm_status balm_model_forward(balm_model *m, const balm_split *s, const size_t *dlg, size_t B,
                               size_t *n);
/* Outputs of the last forward: logits [N][C], labels [N], encoder features
 * h_m [N][h] (post-relu), probabilities [N][C] (softmax; regression: none). */
const float *balm_model_logits(const balm_model *m);
const float *balm_model_labels(const balm_model *m);
const float *balm_model_features(const balm_model *m, int modality);
const float *balm_model_probs(const balm_model *m);
/* Task loss of the last forward (mean CE, or MSE for C = 1) and, if
 * `grad`, the backward pass: gradients of every parameter overwritten. */
balm_status balm_model_backward(balm_model *m, double *loss, int grad);
/* Predicted class per utterance of the last forward (regression: f > 0). */
void balm_model_predict(const balm_model *m, int *pred);
/* Seconds in FCM / dense layers since the last reset. */
void balm_model_timing(balm_model *m, double *fcm_s, double *dense_s, int reset);
size_t balm_model_fused_in(const balm_model *m);

/* Adam with L2 weight decay added to the gradient (PyTorch's Adam). */
typedef struct balm_adam balm_adam;
balm_status balm_adam_create(const balm_param *list, size_t n, float lr, float l2,
                             balm_adam **out);
void balm_adam_step(balm_adam *a);
void balm_adam_destroy(balm_adam *a);
/* For checkpoints: the first (second = 0) or second moment of parameter i
 * (NULL past the end), writable; Adam's step count t. */
float *balm_adam_moment(balm_adam *a, size_t i, int second);
uint64_t balm_adam_get_step(const balm_adam *a);
void balm_adam_set_step(balm_adam *a, uint64_t step);
/* Global L2 norm of all gradients; scales them to max_norm if above
 * (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping. */
double balm_clip_grad_norm(const balm_param *list, size_t n, double max_norm);

/* Wall-clock seconds (for the time breakdown). */
double balm_now_s(void);

/* ------------------------------------------------------------- metrics */
/* Weighted F1 (by support) and accuracy of pred vs truth over n samples of
 * C classes. */
void balm_f1_acc(size_t n, size_t C, const int *pred, const int *truth, double *f1,
                 double *acc);

#endif
