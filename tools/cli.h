/*
 * cli.h — helpers shared by the commands of the safeinfer CLI (tools/). The CLI reaches the library only
 * through include/safeinfer.h.
 */
#ifndef SI_CLI_H
#define SI_CLI_H

#include "safeinfer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes: 0 ok, 1 check failures, 2 usage, 3 + status for library errors. */
#define EXIT_USAGE 2

int fail_status(si_result s, const char *what);
double now_ms(void);
bool parse_i64(const char *s, int64_t *v);
/* "1x3x224x224" -> dims; "" or "scalar" -> rank 0 */
bool parse_dims(const char *s, int *ndim, int64_t *dims);
/* Random values: floats uniform in [-1, 1), integers in [0, 10), bools 0/1. */
void fill_random(si_tensor *t, uint64_t seed);
double elem(const si_tensor *t, int64_t i);
int64_t elem_i64(const si_tensor *t, int64_t i);
bool is_float(si_dtype t);
void shape_str(const si_tensor *t, char *buf, size_t n);
/* "KEY=VALUE": copies KEY, points *val at VALUE; -1 when malformed. */
int split_kv(const char *arg, char *key, size_t kn, const char **val);
/* --shape NAME=DIMS (an input) or DIM=N (a symbolic dimension); exits with a usage error when malformed. */
si_result apply_shape(si_model *m, const char *arg);
void print_summary(const char *name, const si_tensor *t);
bool file_exists(const char *p);
bool dir_exists(const char *p);
void json_str(FILE *f, const char *s);
/* Inputs for every model input: from NAME=FILE.npy / NAME=random[:SEED] specs, else random (seed 0 + index).
 * tensors has si_model_num_inputs(m) slots. Returns 0 or an exit code (message printed). */
int make_inputs(si_model *m, const char *const *specs, int n_specs, si_tensor **tensors);
/* mkdir -p; 0 or -1 (errno set). */
int mkdir_p(const char *path);

/* A tolerance value (a finite number >= 0); prints a usage error naming the flag otherwise. */
bool parse_tol(const char *flag, const char *s, double *out);

/* help.c */
void usage(FILE *f);
/* A command's synopsis (to stderr: with a pointer to --help; to stdout: with its details). */
void usage_cmd(FILE *f, const char *cmd);
/* "--infer-timeout-ms" for the key infer_timeout_ms. */
void config_flag_name(const char *key, char *flag, size_t n);
int cmd_config(int argc, char **argv);

int cmd_check(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
