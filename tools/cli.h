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
/* Free make_inputs's n tensors and the array (either may be NULL). */
void free_inputs(si_tensor **tensors, int n);
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

/* json.c: a small JSON reader (the partition JSON, `run --report` files). */
typedef enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;
typedef struct jval {
    jtype type;
    double num;         /* J_NUM; J_BOOL: 0 or 1 */
    char *str;          /* J_STR */
    int n;              /* J_ARR, J_OBJ: items */
    struct jval *items;
    char **keys;        /* J_OBJ */
} jval;
/* NULL with a message naming the problem and its byte offset in err. */
jval *json_parse(const char *text, char *err, size_t errn);
void json_free(jval *v);
/* Member `key` of an object (NULL when absent or v is not an object). */
const jval *json_get(const jval *obj, const char *key);
const char *json_str_of(const jval *v, const char *dflt);
int json_int_of(const jval *v, int dflt);
/* A whole text file (NUL-terminated, no NUL inside); NULL with a message in err. */
char *read_text_file(const char *path, char *err, size_t errn);

/* dot.c: `inspect --dot`. Returns 0 or an exit code (message printed). */
int write_partition_dot(si_model *m, const char *model_path, const char *devices, const char *avoid, const char *dot_path,
                        const char *report_path);

int cmd_check(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_bench(int argc, char **argv);
/* profile.c: argv[*i] is --profile (bare, or with on|off, which *i then steps over): 1 on, 0 off; -1 when it
 * is another argument. print_profile prints the compiled model's step profile as a table (0, or an exit code
 * with the message printed); infer_ms_total (0: unknown) is the time the timed inferences took in all. */
int profile_flag(int argc, char **argv, int *i);
int print_profile(FILE *out, const si_compiled *cm, double infer_ms_total);

#endif
