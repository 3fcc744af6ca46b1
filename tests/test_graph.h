/*
 * test_graph.h — building an IR graph by hand, one node at a time, for the tests that run single nodes
 * (test_device_ops, test_quant_rnn). The graph under construction is G; a setup failure (out of memory, a bad
 * name) exits with status 2 after naming it.
 */
#ifndef SI_TEST_GRAPH_H
#define SI_TEST_GRAPH_H

#include "ir/ir.h"

extern si_graph *G;

/* D(1, 3, 224, 224): a dims array and its length, for the builders below. */
#define D(...) (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

void die(const char *what);
/* A new graph importing the default domain at `opset`. */
void begin(int opset);
int val(const char *name);
void push(int **list, int *n, int v);
/* A graph input of element type dt (test_device_ops fills integers with 0..4, bool with 0/1 when run as a case). */
void input_typed(const char *name, si_dtype dt, const int64_t *dims, int nd);
void output(const char *name);
/* An initializer holding t (G owns it). */
void set_const(const char *name, si_tensor *t);
/* Initializers: int64 1-D, float32 1-D, float32 scalar. */
void ints(const char *name, const int64_t *vals, int n);
void floats(const char *name, const float *vals, int n);
void fconst(const char *name, float v);
/* Add a node (inputs/outputs: comma-separated names, "" for an absent one); returns its index. */
int node(const char *op, const char *ins, const char *outs);
si_attr *attr(int ni, const char *name, si_attr_type type);
void ai(int ni, const char *name, int64_t v);
void af(int ni, const char *name, float v);
void as(int ni, const char *name, const char *v);
void ais(int ni, const char *name, const int64_t *v, int n);

#endif
