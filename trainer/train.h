/* `balm train`: the reference trainer (see trainer/trainer.h for its parts). */
#ifndef BALM_TRAINER_TRAIN_H
#define BALM_TRAINER_TRAIN_H

/* argv[0] is "train" (or the program name); returns the process exit code:
 * 0 success, 1 a run-time failure (data, checkpoint, --check-isa tolerance),
 * 2 a usage error (one-line message and the usage on stderr). */
int balm_cmd_train(int argc, char **argv);

#endif
