/*
 * ir.h — the graph IR: values (tensors flowing between nodes, with what is known of their type and shape),
 * nodes (an op with attributes, inputs and outputs by value id) and the graph (nodes in topological order).
 * The ONNX loader builds it; shape inference fills in types and shapes as far as they follow from the inputs'
 * (dimensions may stay symbolic or unknown); devices compile it.
 *
 * Subgraphs: a graph-valued attribute (If's branches, Loop's and Scan's bodies) holds an si_graph whose
 * `parent` is the graph of its node. A subgraph may read any value of an enclosing graph by name: such a
 * value appears in the subgraph as a value with is_outer set (listed in `outer`), and the node that holds the
 * subgraph lists the enclosing graph's value in `implicit` (its implicit inputs), so that ordering,
 * partitioning and copying see the dependency.
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

struct si_graph;

/* ---- dimensions ------------------------------------------------------------------------------------------
 * A dimension of a value is a known size (>= 0), SI_DIM_UNKNOWN, or a symbol: a size not known yet that other
 * dimensions share (a graph input's dim_param, carried through the ops that keep it). The unknown value and
 * the symbols are negative and far from any size, and symbols are spaced apart, so that arithmetic that
 * forgets them gives a value that is no dimension at all (si_dim_valid false: si_set_out refuses it) rather
 * than a wrong size or another symbol. Code that only asks "is it known" tests d >= 0 (si_dim_known). The
 * names of symbols are in the model graph's table (si_graph_sym, si_graph_sym_name). Arithmetic on
 * dimensions goes through si_dim_* (dim.c): known operands give the exact result, anything else unknown
 * (except where an operand is the identity: d + 0, d * 1, d / 1 keep d, symbol included). */
#define SI_DIM_UNKNOWN (-((int64_t)1 << 40))
#define SI_DIM_SYM_STEP ((int64_t)1 << 20)
#define SI_MAX_SYMS (1 << 16)
static inline bool si_dim_known(int64_t d) { return d >= 0; }
/* The dimension of symbol `id` (0 <= id < SI_MAX_SYMS). */
static inline int64_t si_dim_sym(int id) { return SI_DIM_UNKNOWN - ((int64_t)id + 1) * SI_DIM_SYM_STEP; }
/* The symbol id of d, or -1 when d is not a symbol. */
static inline int si_dim_sym_id(int64_t d) {
    if (d >= SI_DIM_UNKNOWN) return -1;
    int64_t off = SI_DIM_UNKNOWN - d;
    if (off % SI_DIM_SYM_STEP || off / SI_DIM_SYM_STEP > SI_MAX_SYMS) return -1;
    return (int)(off / SI_DIM_SYM_STEP) - 1;
}
/* A known size, SI_DIM_UNKNOWN or a symbol. */
static inline bool si_dim_valid(int64_t d) { return d >= 0 || d == SI_DIM_UNKNOWN || si_dim_sym_id(d) >= 0; }
/* Both known and different: dimensions that cannot be equal (a shape check fails only then). */
static inline bool si_dim_ne(int64_t a, int64_t b) { return a >= 0 && b >= 0 && a != b; }
/* Sums, differences and products: exact for known operands; d + 0, d - 0, d * 1, 0 * d keep what is known. */
int64_t si_dim_add(int64_t a, int64_t b);
int64_t si_dim_sub(int64_t a, int64_t b);
int64_t si_dim_mul(int64_t a, int64_t b);
/* a / b rounded down (ceil: up); b must be positive when known; d / 1 keeps d. */
int64_t si_dim_div(int64_t a, int64_t b, bool ceil);
/* The product of dims[from..to): known when every factor is (or one factor is 0). */
int64_t si_dim_prod(const int64_t *dims, int from, int to);
/* One dimension seen twice (the same axis of two inputs that must agree): the known one, else a symbol they
 * share or one of them has, else unknown. Callers check si_dim_ne first. */
int64_t si_dim_merge(int64_t a, int64_t b);
/* Numpy broadcasting of one dimension pair; false when both are known, differ and neither is 1. */
bool si_dim_broadcast(int64_t a, int64_t b, int64_t *out);
/* Every dimension of a shape known (rank known too). */
bool si_dims_known(int ndim, const int64_t *dims);

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
    struct si_graph *g;   /* GRAPH: the subgraph (owned; its parent is the node's graph) */
    struct si_graph **gs; /* GRAPHS: n subgraphs (owned) */
} si_attr;

/* Subgraphs nest at most this deep (a model's graph is depth 0); deeper models are refused by name. */
#define SI_MAX_GRAPH_DEPTH 16

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
    int n_implicit;
    int *implicit;    /* values of this graph its subgraphs read from the outer scope (set by si_graph_finalize) */
} si_node;

/* The values a node reads: k < n_in + n_implicit; its inputs (-1 for absent ones), then its implicit inputs. */
static inline int si_node_reads(const si_node *n, int k) { return k < n->n_in ? n->in[k] : n->implicit[k - n->n_in]; }

typedef struct si_val {
    char *name;
    si_dtype dtype;                    /* SI_DTYPE_UNDEFINED when not known */
    int ndim;                          /* -1 when the rank is not known */
    int64_t dims[SI_MAX_DIMS];         /* sizes, SI_DIM_UNKNOWN or symbols (see si_dim_*) */
    char *dim_names[SI_MAX_DIMS];      /* dim_param names as the model declares them (graph inputs/outputs) */
    si_tensor *const_val;              /* initializer or Constant output (owned), else NULL */
    int producer;                      /* node index, or -1 for graph inputs and initializers */
    bool is_input, is_output, is_initializer;
    bool is_outer;                     /* subgraph: a value of an enclosing graph, read by name */
    bool is_param;                     /* a function body's input bound to a constant per call (a layer's weight,
                                        * see fold.h): its contents never change while a compiled model lives, so
                                        * a device may keep what it derives from a bound tensor (by its data) */
    /* A constant folded from DequantizeLinear(dq_q, dq_scale[, dq_zp]) along dq_axis (shared references, else
     * NULL): a device that computes on the quantized values (an int8 convolution in the QDQ form) reads these
     * instead of the float32 result, whose node no submodel keeps (si_val_set_dq, shape.c). */
    si_tensor *dq_q, *dq_scale, *dq_zp;
    int dq_axis;
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
    struct si_graph *parent; /* subgraph: the graph of the node that holds it (borrowed); NULL for a model's */
    int depth;               /* 0 for a model's graph, parent's + 1 for a subgraph */
    int *outer;              /* subgraph: its is_outer values (read from enclosing graphs by name) */
    int n_outer;
    char **syms;             /* model graph: symbol names (dimension symbols, si_dim_sym); subgraphs use their root's */
    int n_syms, cap_syms;
} si_graph;

si_graph *si_graph_new(void);
/* v remembers that its constant is DequantizeLinear(q, scale, zp) along axis (references; q NULL: forgets). */
void si_val_set_dq(si_val *v, si_tensor *q, si_tensor *scale, si_tensor *zp, int axis);
void si_graph_free(si_graph *g);
/* Deep copy, subgraphs included (constants are shared, not copied). The copy's parent is g's. */
si_result si_graph_clone(const si_graph *g, si_graph **out);
/* Deep copies of one node and one attribute: value ids as they are (the caller maps them when the copy goes
 * into another graph); subgraphs are copied with `owner` (the graph the copy belongs to) as their parent. */
si_result si_node_copy(si_node *d, const si_node *s, si_graph *owner);
si_result si_attr_copy(si_attr *d, const si_attr *s, si_graph *owner);
/* The graph at the top of g's parents (g itself for a model's graph). */
si_graph *si_graph_root(const si_graph *g);
/* The symbol named `name` in g's root (created when new): its id, or -1 when out of memory or out of ids. */
int si_graph_sym(si_graph *g, const char *name);
/* The name of dimension d when it is a symbol of g's root, else NULL. */
const char *si_graph_sym_name(const si_graph *g, int64_t d);
/* Copy the symbol table of src's root into dst (a model graph without symbols). */
si_result si_graph_copy_syms(si_graph *dst, const si_graph *src);
/* Value id for a name, creating an unknown value when absent; -1 on allocation failure. */
int si_graph_value(si_graph *g, const char *name);
/* v becomes an initializer holding t (v takes over the caller's reference), with t's type and shape. */
void si_val_set_const(si_val *v, si_tensor *t);
int si_graph_find_value(const si_graph *g, const char *name);
/* Append a new value (the caller knows the name is not there yet); its id, or -1 on allocation failure. */
int si_graph_add_value(si_graph *g, const char *name);
/* Append a node (fields are taken over by the graph). Returns its index or -1. */
int si_graph_add_node(si_graph *g, si_node *n);
/* Check references, sort nodes topologically (PARSE error on a cycle or a value produced twice or never),
 * resolve op definitions and node opsets. A subgraph's values that nothing in it provides become its outer
 * values; the nodes' implicit inputs are resolved from their subgraphs' outer values (subgraphs are finalized
 * before the graph that holds them). */
si_result si_graph_finalize(si_graph *g);
int64_t si_graph_opset(const si_graph *g, const char *domain);

/* Shape inference for the current input shapes: fills dtype/ndim/dims of every value as far as they follow
 * (dimensions may stay symbols or unknown; a value whose rank depends on values not known until run time
 * keeps ndim -1), subgraphs included, evaluating nodes whose inputs are all constant (constant folding, so
 * Shape->Gather->Reshape chains resolve) when their outputs total at most fold_max_bytes, and while everything
 * folded in this call totals at most SI_FOLD_TOTAL_FACTOR * fold_max_bytes (so that many small folds cannot add
 * up to gigabytes). Shape and Size fold as soon as the dimensions they read are known. Folded buffers are
 * charged to the thread's memory budget (util.h); a fold that does not fit is left to run time.
 * Errors: INVALID_ARG when shapes contradict an op's rules (the message names the node); NO_MEM when an
 * inferred output could never be allocated (larger than the process cap or the budget's limit). */
#define SI_FOLD_TOTAL_FACTOR 64
si_result si_graph_infer_shapes(si_graph *g, size_t fold_max_bytes);
/* A DequantizeLinear of a constant that only Conv / MatMul / Gemm read as their weights is not folded when its
 * float output has at least this many bytes: the graph keeps the quantized weights (shape.c, keep_dq). */
#define SI_DQ_KEEP_BYTES ((size_t)64 << 10)
/* Evaluate node idx of g, whose inputs are all constants, with the reference kernel: its first output as a new
 * tensor (*out, freed with si_const_unref). UNSUPPORTED (an input not constant, an op without a kernel), the
 * kernel's errors, NO_MEM. */
si_result si_node_eval(const si_graph *g, int idx, si_tensor **out);
/* Fold for good the DequantizeLinear nodes of g that read only constants (the weights keep_dq left quantized): each
 * output becomes a constant (an initializer, its link to the quantized source kept) and the node is dropped, so
 * that inference at new shapes does not bring it back. For a device that computes in float and uploads its
 * constants once per compiled model (OCL). NO_MEM; a node whose evaluation fails otherwise is left as it is. */
si_result si_graph_fold_weights(si_graph *g);
/* n is a DequantizeLinear (default domain, one output) whose inputs are all constants. */
bool si_node_dq_of_consts(const si_graph *g, const si_node *n);
/* v, the folded output of such a node n, remembers its quantized source (si_val_set_dq), unless n is blocked. */
void si_val_set_dq_of(si_val *v, const si_graph *g, const si_node *n);

/* ---- control flow rewrites (inline.c) ---- */
/* Subgraph `sub` as a graph of its own (parent NULL, the root's opsets and symbols): its formal inputs stay its
 * first inputs, and each outer value becomes an initializer when it is a constant, else one more input (in the
 * order of sub->outer). Types and shapes are sub's as inferred. */
si_result si_graph_detach(const si_graph *sub, si_graph **out);
/* Fold away the Ifs of g (a graph of its own, shapes inferred) whose condition is a constant: each is replaced by
 * the nodes of the branch it takes (output values and names kept), then g is finalized and inferred again, and so
 * on while branches brought in hold Ifs now known. *folded (may be NULL) counts them. An If whose branch has a
 * value named like one of g's is left as it is. On failure g is half rewritten: drop it. */
si_result si_graph_fold_ifs(si_graph *g, size_t fold_max_bytes, int *folded);

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
