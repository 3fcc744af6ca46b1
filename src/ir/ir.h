/*
 * ir.h — the graph IR: values (tensors flowing between nodes, with what is known of their type and shape),
 * nodes (an op with attributes, inputs and outputs by value id) and the graph (nodes in topological order).
 * The ONNX loader builds it; shape inference fills in shapes for concrete input shapes; devices compile it.
 */
#ifndef SI_IR_H
#define SI_IR_H

#include "util/util.h"

typedef enum si_attr_type {
    SI_ATTR_UNDEFINED = 0,
    SI_ATTR_FLOAT = 1,
    SI_ATTR_INT = 2,
    SI_ATTR_STRING = 3,
    SI_ATTR_TENSOR = 4,
    SI_ATTR_GRAPH = 5,
    SI_ATTR_FLOATS = 6,
    SI_ATTR_INTS = 7,
    SI_ATTR_STRINGS = 8,
    SI_ATTR_TENSORS = 9,
    SI_ATTR_GRAPHS = 10,
    SI_ATTR_SPARSE_TENSOR = 11,
    SI_ATTR_SPARSE_TENSORS = 12,
    SI_ATTR_TYPE_PROTO = 13,
    SI_ATTR_TYPE_PROTOS = 14
} si_attr_type;

typedef struct si_attr {
    char *name;
    si_attr_type type;
    float f;
    int64_t i;
    char *s;           /* STRING: NUL-terminated copy */
    si_tensor *t;      /* TENSOR (owned) */
    int n;             /* element count of FLOATS / INTS / STRINGS */
    float *floats;
    int64_t *ints;
    char **strings;
} si_attr;

typedef struct si_node {
    char *name;
    char *op_type;
    char *domain;     /* "" for the default ONNX domain */
    int opset;        /* the model's opset version for this node's domain */
    int n_in, n_out;
    int *in;          /* value ids; -1 for an absent optional input */
    int *out;         /* value ids; -1 for an absent optional output */
    int n_attr;
    si_attr *attrs;
    const struct si_op_def *op; /* the op's definition for this opset (op->id names the op), resolved by
                                 * si_graph_finalize; NULL when safeinfer does not implement it */
} si_node;

typedef struct si_val {
    char *name;
    si_dtype dtype;                    /* SI_DTYPE_UNDEFINED when not known */
    int ndim;                          /* -1 when the rank is not known */
    int64_t dims[SI_MAX_DIMS];         /* -1 for a dimension not known */
    char *dim_names[SI_MAX_DIMS];      /* symbolic names (graph inputs/outputs) */
    si_tensor *const_val;              /* initializer or Constant output (owned), else NULL */
    int producer;                      /* node index, or -1 for graph inputs and initializers */
    bool is_input, is_output, is_initializer;
} si_val;

typedef struct si_opset {
    char *domain;
    int64_t version;
} si_opset;

typedef struct si_graph {
    si_val *values;
    int n_values, cap_values;
    si_node *nodes;      /* topological order once si_graph_finalize has run */
    int n_nodes, cap_nodes;
    int *inputs;         /* graph inputs that are not initializers */
    int n_inputs;
    int *outputs;
    int n_outputs;
    si_opset *opsets;
    int n_opsets;
    int64_t ir_version;
    char *producer;
} si_graph;

si_graph *si_graph_new(void);
void si_graph_free(si_graph *g);
/* Deep copy (constants are copied too). */
si_result si_graph_clone(const si_graph *g, si_graph **out);
/* Value id for a name, creating an unknown value when absent; -1 on allocation failure. */
int si_graph_value(si_graph *g, const char *name);
int si_graph_find_value(const si_graph *g, const char *name);
/* Append a new value (the caller knows the name is not there yet); its id, or -1 on allocation failure. */
int si_graph_add_value(si_graph *g, const char *name);
/* Append a node (fields are taken over by the graph). Returns its index or -1. */
int si_graph_add_node(si_graph *g, si_node *n);
/* Check references, sort nodes topologically (PARSE error on a cycle or a value produced twice or never),
 * resolve op definitions and node opsets. */
si_result si_graph_finalize(si_graph *g);
int64_t si_graph_opset(const si_graph *g, const char *domain);

/* Shape inference for the current input shapes: fills dtype/ndim/dims of every value it can, evaluating
 * nodes whose inputs are all constant (constant folding, so Shape->Gather->Reshape chains resolve) when
 * their outputs total at most fold_max_bytes, and while everything folded in this call totals at most
 * SI_FOLD_TOTAL_FACTOR * fold_max_bytes (so that many small folds cannot add up to gigabytes). Folded
 * buffers are charged to the thread's memory budget (util.h); a fold that does not fit is left to run time.
 * Errors: INVALID_ARG when shapes contradict an op's rules (the message names the node); NO_MEM when an
 * inferred output could never be allocated (larger than the process cap or the budget's limit). */
#define SI_FOLD_TOTAL_FACTOR 64
si_result si_graph_infer_shapes(si_graph *g, size_t fold_max_bytes);

/* ---- attribute access ---- */
const si_attr *si_node_attr(const si_node *n, const char *name);
int64_t si_attr_int(const si_node *n, const char *name, int64_t dflt);
float si_attr_float(const si_node *n, const char *name, float dflt);
/* Borrowed string or dflt. */
const char *si_attr_str(const si_node *n, const char *name, const char *dflt);
/* Borrowed array; *count receives the length (0 and NULL when absent). */
const int64_t *si_attr_ints(const si_node *n, const char *name, int *count);
const float *si_attr_floats(const si_node *n, const char *name, int *count);
const si_tensor *si_attr_tensor(const si_node *n, const char *name);

void si_attr_clear(si_attr *a);
void si_node_clear(si_node *n);

#endif
