/*
 * ocl_ops.h — what the OCL device's planner files share (ocl_ops.c: helpers, emitters, most planners and the
 * dispatch table; ocl_nn.c: the planners of the neural-network ops). Not used outside src/device/ocl/.
 *
 * A planner checks what the node needs (float32 data, constant parameters, attribute combinations it
 * implements), computes the output shapes and emits kernel launches (ocl_emit) whose arguments name graph
 * values. supports_op runs the same code without emitting, so "supported" and "compiles" cannot disagree.
 * Refusals are SI_ERR_UNSUPPORTED with the reason; the partitioner then gives the node to another device.
 */
#ifndef SI_OCL_OPS_H
#define SI_OCL_OPS_H

#include "device/ocl/ocl.h"
#include "ops/ops.h"

// --- descriptors and steps ----------------------------------------------------------------------------------

static inline int64_t dcount(const ocl_desc *d) { return si_shape_count(d->ndim, d->dims); }
static inline bool has_in(const ocl_plan *p, int k) { return k < p->n_in && p->in[k].vid >= 0; }
static inline bool has_out(const ocl_plan *p, int k) { return k < p->n_out && p->out[k].vid >= 0; }

static inline void st_init(ocl_step *st, const char *kernel) {
    memset(st, 0, sizeof *st);
    st->kernel = kernel;
}
static inline void st_arg(ocl_step *st, ocl_arg_kind kind, int i, float f) {
    if (st->n_args >= OCL_MAX_ARGS) {
        st->n_args = OCL_MAX_ARGS + 1; /* ocl_emit reports it */
        return;
    }
    st->args[st->n_args].kind = kind;
    st->args[st->n_args].i = i;
    st->args[st->n_args].f = f;
    st->n_args++;
}
static inline void a_val(ocl_step *st, int vid) { st_arg(st, OA_VAL, vid, 0); }
static inline void a_int(ocl_step *st, int64_t v) { st_arg(st, OA_INT, (int)v, 0); }
static inline void a_flt(ocl_step *st, float v) { st_arg(st, OA_FLOAT, 0, v); }
static inline void a_meta(ocl_step *st, int id) { st_arg(st, OA_META, id, 0); }
static inline void a_any(ocl_step *st, ocl_arg a) { st_arg(st, a.kind, a.i, a.f); }

static inline size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

static inline int f2bits(float f) { /* a float stored in an int metadata buffer, read back with as_float */
    int b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static inline ocl_arg arg_val(int vid) {
    ocl_arg a = {OA_VAL, vid, 0};
    return a;
}
static inline ocl_arg arg_scratch(void) {
    ocl_arg a = {OA_SCRATCH, 0, 0};
    return a;
}
static inline ocl_arg arg_int(int64_t v) {
    ocl_arg a = {OA_INT, (int)v, 0};
    return a;
}
static inline ocl_arg arg_flt(float v) {
    ocl_arg a = {OA_FLOAT, 0, v};
    return a;
}
static inline ocl_arg arg_meta(int id) {
    ocl_arg a = {OA_META, id, 0};
    return a;
}

/* A step of `kernel` with the arguments listed, in one statement:
 *     st_args(&st, "pool", arg_val(x->vid), arg_val(y->vid), arg_int(n), arg_meta(mid));   */
static inline void st_set(ocl_step *st, const char *kernel, int n_args, const ocl_arg *args) {
    st_init(st, kernel);
    for (int i = 0; i < n_args; i++) a_any(st, args[i]);
}
#define OCL_NARGS(...) ((int)(sizeof((ocl_arg[]){__VA_ARGS__}) / sizeof(ocl_arg)))
#define st_args(st, kernel, ...) st_set((st), (kernel), OCL_NARGS(__VA_ARGS__), (ocl_arg[]){__VA_ARGS__})

// --- checks and reads shared by the planners (ocl_ops.c) -----------------------------------------------------

/* Input k present with a known shape. */
si_result ocl_need_in(ocl_plan *p, int k);
/* Input k: present, float32, known shape, indexable with 32-bit ints. */
si_result ocl_need_f32(ocl_plan *p, int k);
/* Input k has element type a or b (its presence and shape are checked apart); else UNSUPPORTED naming them. */
si_result ocl_need_type2(ocl_plan *p, int k, si_dtype a, si_dtype b);
/* No input from n on / no output from n on. */
si_result ocl_max_inputs(ocl_plan *p, int n);
si_result ocl_max_outputs(ocl_plan *p, int n);
/* A constant integer list (rank <= 1) from input k. */
si_result ocl_const_ints(ocl_plan *p, int k, int64_t *vals, int max, int *n);
/* A constant float scalar from input k (float types only). */
si_result ocl_const_float(ocl_plan *p, int k, float *v);
/* An INTS attribute into vals (at most max); *n = -1 when absent. */
si_result ocl_attr_ints(ocl_plan *p, const char *name, int64_t *vals, int max, int *n);
/* An axis in [-rank, rank) normalised to [0, rank). */
si_result ocl_norm_axis(ocl_plan *p, int64_t axis, int rank, int *out);
/* Output k: float32 of this shape, indexable with 32-bit ints. */
si_result ocl_set_out(ocl_plan *p, int k, int ndim, const int64_t *dims);
/* Numpy broadcast of two shapes. */
si_result ocl_bcast(ocl_plan *p, int na, const int64_t *a, int nb, const int64_t *b, int *nout, int64_t *out);
/* Merge dimensions that every one of the `ns` stride arrays walks contiguously, dropping dimensions of
 * size 1. dims/strides are rewritten in place; returns the new rank. */
int ocl_merge_dims(int nd, int64_t *dims, int ns, int64_t (*strides)[SI_MAX_DIMS * 2]);

// --- emission (ocl_ops.c) ------------------------------------------------------------------------------------

/* Emit a 1-D launch over n items (nothing when n is 0). */
si_result ocl_emit_1d(ocl_plan *p, ocl_step *st, int64_t n);
/* The same for a step of `kernel` with the arguments listed: OCL_EMIT_1D(p, "k", n, arg_val(x), arg_int(n)). */
si_result ocl_emit_1d_of(ocl_plan *p, const char *kernel, int64_t n, int n_args, const ocl_arg *args);
#define OCL_EMIT_1D(p, kernel, n, ...) ocl_emit_1d_of((p), (kernel), (n), OCL_NARGS(__VA_ARGS__), (ocl_arg[]){__VA_ARGS__})
/* Emit one work-group of caps->wg items per row (the row-wise reductions: norms). */
si_result ocl_emit_rows(ocl_plan *p, ocl_step *st, int64_t rows);
/* Metadata given as int64 values (each fits an int). */
si_result ocl_meta64(ocl_plan *p, const int64_t *v, int n, int *id);
/* Outputs that are views of input 0 (same elements, maybe another shape). */
si_result ocl_emit_view(ocl_plan *p);

// --- the planners of ocl_nn.c (the dispatch table of ocl_ops.c names them) -------------------------------------

/* arg of ocl_plan_reduce. */
typedef struct reduce_def {
    int code;             /* the reduction of the reduce kernel */
    int axes_input_opset; /* opset from which axes is an input */
} reduce_def;

/* ocl_nn.c (arg: reduce_def for ocl_plan_reduce) */
si_result ocl_plan_matmul(ocl_plan *p, const void *arg);
si_result ocl_plan_gemm(ocl_plan *p, const void *arg);
si_result ocl_plan_conv(ocl_plan *p, const void *arg);
si_result ocl_plan_conv_transpose(ocl_plan *p, const void *arg);
si_result ocl_plan_pool(ocl_plan *p, const void *arg);
si_result ocl_plan_reduce(ocl_plan *p, const void *arg);
si_result ocl_plan_global_pool(ocl_plan *p, const void *arg);
si_result ocl_plan_softmax(ocl_plan *p, const void *arg);
si_result ocl_plan_batchnorm(ocl_plan *p, const void *arg);
si_result ocl_plan_layernorm(ocl_plan *p, const void *arg);
si_result ocl_plan_groupnorm(ocl_plan *p, const void *arg);

// --- dispatch ---------------------------------------------------------------------------------------------------

/* The first checks of a planner, made by ocl_plan_node before it runs: the leading inputs `need` names ('f': present,
 * float32, known shape: ocl_need_f32; 'i': present with a known shape: ocl_need_in), then at most max_in inputs and
 * max_out outputs (0: the planner checks them itself). */
typedef struct ocl_io {
    const char *need;
    int max_in, max_out;
} ocl_io;

/* A planner with its argument and first checks. */
typedef struct ocl_planner {
    si_result (*fn)(ocl_plan *p, const void *arg);
    const void *arg;
    ocl_io io;
} ocl_planner;

/* ocl_llm.c: the planner of an LLM op (norms, MatMulNBits, GELUs; default domain and com.microsoft); NULL: not one
 * of them. */
const ocl_planner *ocl_llm_planner(const si_node *n);

#endif
