/*
 * ops.h — op definitions: for each ONNX op, one function that infers output types and shapes and one
 * plain reference kernel. Shape inference (ir/) uses `infer`; the REF device runs `infer` then `run` for
 * each node; faster devices bring their own kernels and may borrow these for rare ops.
 *
 * Contract for op authors:
 *  - `infer(c)` sets c->out[k]->dtype/ndim/dims for every present output (c->out[k] != NULL). At run time
 *    (c->partial false) every input has its data and every dimension is known. At compile time (c->partial:
 *    shape inference over the graph) inputs have a known dtype and rank, but a dimension may be unknown or a
 *    symbol (ir.h: test with si_dim_known, compare with si_dim_ne, compute with si_dim_*; never read a dim
 *    as a size without that), and `data` is NULL for values not known yet (si_has_values). Infer then sets
 *    what follows: the dtype where the type rules say, the rank where it follows, dims where they follow,
 *    SI_DIM_UNKNOWN elsewhere; an output whose shape depends on input *values* that are not known (Reshape's
 *    shape, NonZero, Range, ...) gets its rank when that is known (si_set_out_unknown) and unknown dims. A
 *    check that involves an unknown dimension is left to run time. Absent optional inputs are NULL pointers
 *    (c->in[i] == NULL), and c->n_in counts trailing absent inputs too. It must reject bad input with
 *    si_err(SI_ERR_INVALID_ARG, ...) naming what is wrong, and unsupported attribute/dtype combinations with
 *    SI_ERR_UNSUPPORTED (at compile time: the node's outputs stay as they were).
 *  - `run(c)` is called after `infer` with every input's data present and every output allocated
 *    (zero-filled) for the shape infer produced. It must not reallocate outputs.
 *  - `types[k]`: bit mask (SI_T(SI_F32) | ...) of element types accepted for input k; 0 = any stored type.
 *    `check` (optional) refines what the REF kernel supports for a node with known input types; it
 *    returns SI_ERR_UNSUPPORTED with a message naming the op and the reason.
 *  - Semantics follow the node's opset. Where an opset changed the op's interface (Clip's min/max were
 *    attributes before 11 and are inputs from 11 on), write one definition per version, each with its opset
 *    range [since, until]; smaller changes may test c->opset. Attributes are read with si_attr_* (ir.h).
 *  - Each family file ends with its table (`const si_op_table si_ops_<family>`), like ONNX Runtime's
 *    registration footers; oplist.h lists the ops and the families.
 *  - Kernels never exit, abort or print; they return a status.
 */
#ifndef SI_OPS_H
#define SI_OPS_H

#include "ir/ir.h"

#include <stdarg.h>

/* The most inner-loop iterations one reference kernel may be asked for (about a second in a release build): a node
 * whose attributes or shapes ask for more is refused by name before it runs, not run for minutes (DFT, STFT,
 * TfIdfVectorizer). Coverage-instrumented fuzzing builds run such loops some 70 times slower, and the fuzzer's
 * timeout is per input: there the bound is 2^24. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define SI_REF_MAX_WORK ((int64_t)1 << 24)
#else
#define SI_REF_MAX_WORK ((int64_t)1 << 30)
#endif

#define SI_T(dt) (1u << (unsigned)(dt))
#define SI_T_FLOATS (SI_T(SI_F32) | SI_T(SI_F64) | SI_T(SI_F16) | SI_T(SI_BF16))
#define SI_T_SIGNED_INTS (SI_T(SI_I8) | SI_T(SI_I16) | SI_T(SI_I32) | SI_T(SI_I64))
#define SI_T_UNSIGNED_INTS (SI_T(SI_U8) | SI_T(SI_U16) | SI_T(SI_U32) | SI_T(SI_U64))
#define SI_T_INTS (SI_T_SIGNED_INTS | SI_T_UNSIGNED_INTS)
#define SI_T_NUMERIC (SI_T_FLOATS | SI_T_INTS)
#define SI_T_ALL (SI_T_NUMERIC | SI_T(SI_BOOL))

typedef struct si_kctx {
    const si_node *node;
    int opset;
    int n_in;
    const si_tensor *const *in; /* NULL entries for absent optional inputs */
    int n_out;
    si_tensor *const *out;      /* NULL entries for absent optional outputs */
    bool partial;               /* compile-time inference: dims may be unknown or symbols, data may be missing */
} si_kctx;

typedef si_result (*si_op_fn)(si_kctx *c);

#include "ops/oplist.h"

/* Op identity: one id per line of oplist.h (SI_OP_CONV, ...), SI_OP_COUNT of them. */
typedef enum si_op_id {
#define SI_OP_ENUM_(id, name, domain) SI_OP_##id,
    SI_OP_LIST(SI_OP_ENUM_)
#undef SI_OP_ENUM_
    SI_OP_COUNT
} si_op_id;

/* si_op_def.flags */
enum {
    SI_OPF_SHAPE_ONLY = 1u << 0, /* outputs depend only on input shapes, and are sizes: folded as soon as the
                                  * dimensions they read are known (a negative value read means one is not) */
    SI_OPF_RANDOM = 1u << 1,     /* outputs are random: never folded into constants */
    SI_OPF_SUBGRAPH = 1u << 2,   /* has graph attributes (control flow): shape inference infers the subgraphs
                                  * first (si_control_bind gives their formal inputs); the partition makes it a
                                  * host submodel and the executor runs it (exec/control.c): no device kernel */
    SI_OPF_HOST = 1u << 3,       /* run by the executor on the host, like control flow, without subgraphs (a
                                  * folded block's Call, ir/fold.h): a host submodel of its own, no kernel */
};

#define SI_OP_TYPED_INPUTS 4 /* inputs with a type constraint in si_op_def.types; later ones: any type */

/* One version of an op: the definition used for nodes whose opset lies in [since, until] (0 = open end). */
typedef struct si_op_def {
    si_op_id id;
    int since, until;
    unsigned flags;                       /* SI_OPF_* */
    uint32_t types[SI_OP_TYPED_INPUTS];   /* accepted element types of input k (SI_T masks); 0 = any */
    si_op_fn infer;
    si_op_fn run;
    si_op_fn check; /* optional: SI_OK or SI_ERR_UNSUPPORTED for this node (input dtypes known) */
    int arg;        /* for functions that serve several definitions: which one they run (si_op_arg) */
} si_op_def;

/* A family file's definitions (its registration footer). */
typedef struct si_op_table {
    const si_op_def *defs;
    int n;
    bool partial; /* its infers follow the partial contract above (SI_OP_FAMILY_PARTIAL) */
} si_op_table;

/* An op function that first reads its node into a plan, the step an op's infer and run share:
 *     SI_OP_PLANNED(conv_run, nn_conv, p, conv_prep) { ... p->groups ... }
 * defines `static si_result conv_run(si_kctx *c)`: it fills a plan of type T with PREP(c, &plan), returns PREP's error,
 * or else runs the body with P pointing at the plan. */
#define SI_OP_PLANNED(NAME, T, P, PREP)                                                                          \
    static si_result NAME##_planned(si_kctx *c, T *P);                                                          \
    static si_result NAME(si_kctx *c) {                                                                         \
        T plan_ = {0};                                                                                          \
        si_result s_ = PREP(c, &plan_);                                                                         \
        return s_ ? s_ : NAME##_planned(c, &plan_);                                                             \
    }                                                                                                           \
    static si_result NAME##_planned(si_kctx *c, T *P)
/* Is n a node of op `id` (resolved, any version)? */
static inline bool si_node_is(const si_node *n, si_op_id id) { return n->op && n->op->id == id; }
/* The arg of the definition being run (SI_OP_DEF_ARG): what a function shared by several ops (Softmax, LogSoftmax,
 * Hardmax) or versions (Reshape-1 and Reshape-5) reads to know which one it is. */
static inline int si_op_arg(const si_kctx *c) { return c->node->op ? c->node->op->arg : 0; }
/* The lines of the table at the end of a family file (its registration footer):
 *     SI_OP_DEF(CONV, SI_T_FLOATS, conv_infer, conv_run)                   one definition for every opset
 *     SI_OP_VERSION(CLIP, 11, 0, SI_T_NUMERIC, infer_clip, run_clip)       opsets 11 and later (0: open end)
 * TYPES: the element types input 0 accepts (0: any). Flags and checks: designated initializers. */
#define SI_OP_DEF(ID, TYPES, INFER, RUN) {.id = SI_OP_##ID, .types = {TYPES}, .infer = INFER, .run = RUN}
#define SI_OP_VERSION(ID, SINCE, UNTIL, TYPES, INFER, RUN)                                                      \
    {.id = SI_OP_##ID, .since = SINCE, .until = UNTIL, .types = {TYPES}, .infer = INFER, .run = RUN}
/* The same with an arg for functions shared by several definitions (si_op_arg). */
#define SI_OP_DEF_ARG(ID, TYPES, INFER, RUN, ARG) {.id = SI_OP_##ID, .types = {TYPES}, .infer = INFER, .run = RUN, .arg = ARG}
#define SI_OP_VERSION_ARG(ID, SINCE, UNTIL, TYPES, INFER, RUN, ARG)                                             \
    {.id = SI_OP_##ID, .since = SINCE, .until = UNTIL, .types = {TYPES}, .infer = INFER, .run = RUN, .arg = ARG}
/* The family's table from its array of definitions: const si_op_table si_ops_<fam>. SI_OP_FAMILY_PARTIAL: its
 * infers follow the partial contract (dims may be unknown or symbols at compile time); SI_OP_FAMILY: they expect
 * every input dimension known, and shape inference asks them only then (a family written before partial
 * shapes, until it is ported). */
#define SI_OP_FAMILY(fam, defs) const si_op_table si_ops_##fam = {defs, (int)SI_ARRAY_LEN(defs), false}
#define SI_OP_FAMILY_PARTIAL(fam, defs) const si_op_table si_ops_##fam = {defs, (int)SI_ARRAY_LEN(defs), true}
/* Does the family of definition d follow the partial contract? */
bool si_op_partial(const si_op_def *d);

/* The definition of op `op_type` in `domain` ("" or "ai.onnx" for the default) whose opset range covers
 * `opset`; NULL when safeinfer does not implement the op (or not for that opset). */
const si_op_def *si_op_find(const char *domain, const char *op_type, int opset);
/* The op's ONNX type name and domain ("" for the default domain). */
const char *si_op_name(si_op_id id);
const char *si_op_domain(si_op_id id);
/* The id of a known op type, or -1. */
int si_op_id_of(const char *domain, const char *op_type);
/* Every definition, every version (a static array; *count receives its length). */
const si_op_def *const *si_op_all(int *count);
/* Can the reference kernels run this node with these input types? SI_OK or SI_ERR_UNSUPPORTED (message
 * names the op and the reason). Inputs may be descriptors without data. Control flow passes here (its types are
 * checked like any op's) and is refused by si_op_runnable: the partition never gives it to a device. */
si_result si_op_supported(const si_node *node, int n_in, const si_tensor *const *in);
/* Is there a kernel for this node? SI_OK, or SI_ERR_UNSUPPORTED: "If: control flow runs on the host (the
 * executor), not in a device" for If/Loop/Scan. Devices that run the reference kernels check it when they
 * compile. */
si_result si_op_runnable(const si_node *node);
/* Control flow (control.c): give the formal inputs of `body` (the subgraph in attribute `attr` of c->node)
 * their types from the node's inputs, where the body does not declare them. */
si_result si_control_bind(si_kctx *c, const char *attr, si_graph *body);

/* ---- helpers for op authors (helpers.c) ------------------------------------------------------------------ */

/* Input i, or NULL when absent (or past n_in); output k likewise. */
static inline const si_tensor *si_in(const si_kctx *c, int i) { return (i >= 0 && i < c->n_in) ? c->in[i] : NULL; }
static inline si_tensor *si_out(const si_kctx *c, int k) { return (k >= 0 && k < c->n_out) ? c->out[k] : NULL; }
/* Element count; -1 while a dimension is not known (0 when one is 0). */
static inline int64_t si_count(const si_tensor *t) { return si_shape_count(t->ndim, t->dims); }
/* Are t's values known: data present, or no elements at all? (At compile time only constants have data.) */
static inline bool si_has_values(const si_tensor *t) { return t->data || si_count(t) == 0; }
/* An optional input that is present and has at least one element (empty tensors count as absent, which is
 * how ONNX models spell "not given" for Resize's roi/scales and similar inputs). At compile time an input whose
 * length is not known yet counts as present. */
static inline const si_tensor *si_in_nonempty(const si_kctx *c, int i) {
    const si_tensor *t = si_in(c, i);
    return t && si_count(t) != 0 ? t : NULL;
}
static inline size_t si_esize(const si_tensor *t) { return si_dtype_size(t->dtype); }
/* Copy in's bytes into out (as many as both hold). */
static inline void si_copy_data(si_tensor *out, const si_tensor *in) {
    if (out->nbytes > 0 && in->data && out->data) memcpy(out->data, in->data, SI_MIN(out->nbytes, in->nbytes));
}
/* Increment a multi-index over dims[0..nd); returns false after the last one. */
static inline bool si_next_index(int64_t *idx, const int64_t *dims, int nd) {
    for (int d = nd - 1; d >= 0; d--) {
        if (++idx[d] < dims[d]) return true;
        idx[d] = 0;
    }
    return false;
}
/* Advance a multi-index over dims[0..nd) and the offset of its element in a tensor of strides str; false after
 * the last one (idx and *off are back at 0). */
static inline bool si_next_offset(int64_t *idx, const int64_t *dims, const int64_t *str, int nd, int64_t *off) {
    for (int d = nd - 1; d >= 0; d--) {
        idx[d]++;
        *off += str[d];
        if (idx[d] < dims[d]) return true;
        *off -= str[d] * idx[d];
        idx[d] = 0;
    }
    return false;
}
/* Integer division rounding toward -infinity / +infinity. */
static inline int64_t si_floordiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
static inline int64_t si_ceildiv(int64_t a, int64_t b) { return -si_floordiv(-a, b); }

/* Error naming node n: "Conv (node 'conv1'): <message>". si_op_err: the same for the kernel context c's node (a
 * device's planners have their own, e.g. ocl_err). */
si_result si_node_err(const si_node *n, si_result s, const char *fmt, ...) SI_PRINTF(3, 4);
#define si_op_err(c, s, ...) si_node_err((c)->node, (s), __VA_ARGS__)
/* NO_MEM "out of memory", naming the node. */
si_result si_op_nomem(const si_kctx *c);

/* Input i present with a valid rank and, when need_data, its values known; else INVALID_ARG naming the input.
 * Values that are only missing at compile time give UNSUPPORTED ("only known at run time"), which leaves the
 * node's outputs unknown: ops that can say more about their outputs test si_has_values first. */
si_result si_need_input(const si_kctx *c, int i, bool need_data);
/* Inputs 0 .. n-1 present with valid ranks (si_need_input without data, for each): the first check of an op whose
 * first n inputs are required. */
si_result si_need_inputs(const si_kctx *c, int n);
/* SI_T_LIKE0 in si_inputs_typed's types: input 0's element type. */
#define SI_T_LIKE0 (1u << 31)
/* An op's inputs checked from one table: inputs 0 .. n_req-1 present (si_need_inputs), then each present input i < n of a
 * type in types[i] (si_check_type; SI_T_LIKE0: input 0's type, si_same_type; 0: not checked here), names[i] naming it in
 * the errors. */
si_result si_inputs_typed(const si_kctx *c, int n_req, int n, const uint32_t *types, const char *const *names);
/* Input 0 present and of a type in mask (what as for si_check_type): *x = input 0. The first lines of most ops. */
si_result si_input0(const si_kctx *c, uint32_t mask, const char *what, const si_tensor **x);
/* dt is a stored type and, for a non-zero mask, in it; else UNSUPPORTED ("what: element type ..."; what may
 * be NULL). */
si_result si_check_type(const si_kctx *c, si_dtype dt, uint32_t mask, const char *what);
/* b has a's element type; else INVALID_ARG ("what has element type ..., expected ... like the first input"). */
si_result si_same_type(const si_kctx *c, const si_tensor *a, const si_tensor *b, const char *what);
/* run(): every present input with elements carries data, every output with elements is allocated. */
si_result si_run_ready(const si_kctx *c);
/* The first step of most runs: si_run_ready, then *y = output 0, or NULL when it is absent or empty (nothing to
 * compute: the run returns SI_OK). */
si_result si_run_begin(const si_kctx *c, si_tensor **y);
/* After a successful infer: every output the node names got a type. A node naming more outputs than its op
 * has (Softplus -> (Y, Z)) leaves the extra ones untyped: INVALID_ARG naming the node and the output, instead
 * of an untyped tensor handed on as if it were a result. */
si_result si_outputs_typed(const si_kctx *c);
/* The values of an integer tensor of rank <= 1 (`what` names it in errors: "input 'axes'"): into buf[cap],
 * or into a new array (at least one slot; free with si_free). Values not known: as for si_need_input. */
si_result si_tensor_ints(const si_kctx *c, const si_tensor *t, const char *what, int64_t *buf, int cap, int *n);
si_result si_tensor_ints_alloc(const si_kctx *c, const si_tensor *t, const char *what, int64_t **vals, int64_t *n);
/* A shape given as an input (Expand, ConstantOfShape): at most SI_MAX_DIMS non-negative integers. */
si_result si_tensor_shape(const si_kctx *c, const si_tensor *t, const char *what, int64_t *dims, int *n);
/* The single value (scalar or one-element tensor) of t as int64; INVALID_ARG otherwise. */
si_result si_tensor_scalar_i64(const si_kctx *c, const si_tensor *t, const char *what, int64_t *v);
/* INTS attribute `name` copied into buf[cap]: returns its length, -1 when the node has no such attribute; a
 * length above cap copies nothing (the caller says what is wrong). Works on any node (devices use it too). */
int si_attr_ints_copy(const si_node *n, const char *name, int64_t *buf, int cap);
/* The same for op authors: *n = -1 when absent; INVALID_ARG when longer than cap. */
si_result si_attr_ints_buf(const si_kctx *c, const char *name, int64_t *buf, int cap, int *n);
/* The index in names[n] of string attribute `attr` (dflt when absent); INVALID_ARG "unsupported attr '...'". */
si_result si_attr_choice(const si_kctx *c, const char *attr, const char *dflt, const char *const *names, int n,
                         int *out);
/* The axes of a node, from input 1 (the versions that take them as an input) or from attribute "axes" (the older
 * versions): *n = -1 when they are not given. */
si_result si_node_axes(const si_kctx *c, bool from_input, int64_t *axes, int cap, int *n);
/* An INTS attribute of exactly n values; absent (or empty) gives n copies of dflt. */
si_result si_attr_ints_n(const si_kctx *c, const char *name, int n, int64_t dflt, int64_t *out);

/* Normalise an axis in [-rank, rank) to [0, rank); INVALID_ARG naming the node otherwise. */
si_result si_axis(const si_kctx *c, int64_t axis, int rank, int *out);
/* A list of axes as a mask over rank dimensions; out of range or repeated axes are INVALID_ARG. */
si_result si_axes_mask(const si_kctx *c, const int64_t *axes, int n, int rank, bool *mask);
/* Product of dims[from..to) (si_dim_prod: -1 never, SI_DIM_UNKNOWN while a factor is not known). */
int64_t si_prod(const int64_t *dims, int from, int to);
/* Contiguous strides (in elements) of a shape. */
void si_strides(int rank, const int64_t *dims, int64_t *str);
/* Numpy-style broadcast of two shapes into out: returns the rank, or -1 - d when dimension d (of the result)
 * is incompatible. Does not report: si_broadcast_shape below does, naming the node. Dimensions may be unknown
 * or symbols (si_dim_broadcast): only known ones can be incompatible. */
int si_broadcast_dims(int na, const int64_t *a, int nb, const int64_t *b, int64_t *out);
/* Gather's output shape: x's shape (rank xr, dims xd) with dimension axis replaced by the indices' shape (rank
 * ir, dims id), into out. Returns its rank, xr - 1 + ir; out is left alone when that exceeds SI_MAX_DIMS. */
int si_gather_dims(int xr, const int64_t *xd, int axis, int ir, const int64_t *id, int64_t *out);
si_result si_broadcast_shape(const si_kctx *c, int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                             int64_t *out);
/* Strides (in elements) of `in` when read with broadcasting into an output of rank `nout` and shape `out`:
 * 0 for broadcast dimensions. */
void si_broadcast_strides(int nin, const int64_t *in, int nout, const int64_t *out, int64_t *strides);
/* t can be broadcast (numpy rules, one direction) to shape dims of rank r; else INVALID_ARG naming `what`
 * (dimensions that are not known pass). */
si_result si_unibroadcast_check(const si_kctx *c, const si_tensor *t, int r, const int64_t *dims, const char *what);
/* t's values broadcast to shape dims (rank r) as a new double array of prod(dims) values; NULL when out of
 * memory. */
double *si_broadcast_to_f64(const si_tensor *t, int r, const int64_t *dims);
/* Set output k's type and shape (nothing when the output is absent). Negative dims are refused, except, at
 * compile time, SI_DIM_UNKNOWN and symbols. */
si_result si_set_out(si_kctx *c, int k, si_dtype dt, int ndim, const int64_t *dims);
/* Compile time: output k's type and rank (ndim -1: the rank is not known either), every dimension unknown. */
si_result si_set_out_unknown(si_kctx *c, int k, si_dtype dt, int ndim);
/* Copy input i's type and shape to output k. */
si_result si_same_as_input(si_kctx *c, int k, int i);

/* A whole tensor converted to double / float / int64 (a new array of at least one element; NULL when out of memory),
 * and back (rounding like ONNX Cast). */
double *si_tensor_to_f64(const si_tensor *t);
float *si_tensor_to_f32(const si_tensor *t);
int64_t *si_tensor_to_i64(const si_tensor *t);
void si_tensor_from_f64(si_tensor *t, const double *v);
void si_tensor_from_f32(si_tensor *t, const float *v);

/* Resize / Upsample geometry, shared by the reference kernel and by devices that implement Resize, so that
 * every device reads the attributes, scales/sizes and roi the same way. */
enum { SI_RS_NEAREST, SI_RS_LINEAR, SI_RS_CUBIC };
enum {
    SI_CT_HALF_PIXEL,
    SI_CT_PYTORCH_HALF_PIXEL,
    SI_CT_ALIGN_CORNERS,
    SI_CT_ASYMMETRIC,
    SI_CT_TF_HALF_PIXEL_FOR_NN,
    SI_CT_TF_CROP_AND_RESIZE,
    SI_CT_HALF_PIXEL_SYMMETRIC
};
enum { SI_NM_ROUND_PREFER_FLOOR, SI_NM_ROUND_PREFER_CEIL, SI_NM_FLOOR, SI_NM_CEIL };

/* Pad's geometry (ops/pad.c), shared with the CPU device's own kernel. */
enum { SI_PAD_CONSTANT, SI_PAD_REFLECT, SI_PAD_EDGE, SI_PAD_WRAP };
typedef struct si_pad {
    int rank, mode;
    int64_t pb[SI_MAX_DIMS], pe[SI_MAX_DIMS], out[SI_MAX_DIMS]; /* pads before / after (negative: crop), output dims */
} si_pad;
/* The mode and the pads of a Pad node (attributes before opset 11, else the pads / axes inputs, whose values must
 * be known); INVALID_ARG for a malformed node. */
si_result si_pad_prepare(si_kctx *c, si_pad *p);
/* The input coordinate along axis d (of in elements) that output coordinate o reads, or -1 for the constant. */
int64_t si_pad_src(const si_pad *p, int d, int64_t in, int64_t o);

typedef struct si_resize {
    int rank, naxes;
    int axes[SI_MAX_DIMS];
    int64_t in[SI_MAX_DIMS], out[SI_MAX_DIMS];
    double scale[SI_MAX_DIMS];
    double roi0[SI_MAX_DIMS], roi1[SI_MAX_DIMS]; /* crop box per axis (tf_crop_and_resize), else 0 and 1 */
    int mode, ctm, nearest;
    double cubic_a, extrap;
    bool exclude_outside, antialias;
    bool complete; /* every value and dimension known: the taps can be computed */
} si_resize;

/* The interfaces of Resize and Upsample over the opsets: Upsample-7 (scales attribute), Upsample-9 and
 * Resize-10 (inputs X and scales, modes nearest and linear), Resize-11 and later (roi, scales or sizes, every
 * mode and coordinate transformation). */
typedef enum si_resize_form { SI_RESIZE_SCALES_ATTR, SI_RESIZE_SCALES_INPUT, SI_RESIZE_FULL } si_resize_form;
/* The interface of a resolved Resize or Upsample node (from the version its definition covers). */
si_resize_form si_resize_form_of(const si_node *n);
/* The geometry of a Resize or Upsample node. INVALID_ARG for a malformed node. When the values of
 * scales/sizes/roi or the input's dimensions are not known (compile time), the output dimensions that depend
 * on them are SI_DIM_UNKNOWN and p->complete is false: the geometry only gives the output's shape then. */
si_result si_resize_prepare(si_kctx *c, si_resize_form form, si_resize *p);
/* Interpolation taps per output coordinate along axis d (1 for nearest, and for an axis that is not resized). */
int64_t si_resize_ntaps(const si_resize *p, int d);
/* The input coordinate that output coordinate o maps to along axis d (coordinate_transformation_mode);
 * *outside when it lies outside the crop box of tf_crop_and_resize (the output is the extrapolation value). */
double si_resize_coord(const si_resize *p, int d, int64_t o, bool *outside);
/* The si_resize_ntaps(p, d) taps of output coordinate o along axis d: input indices (clamped into the input)
 * and weights (normalised where antialias or exclude_outside ask for it); *outside as for si_resize_coord. */
void si_resize_taps(const si_resize *p, int d, int64_t o, int64_t *idx, double *w, bool *outside);

/* Einsum's equation read against its inputs' shapes (ops/einsum.c), shared by the reference kernel and by devices
 * that implement Einsum, so that both read the equation the same way. Labels: the letters 'A'..'Z' -> 0..25,
 * 'a'..'z' -> 26..51, then the broadcast (ellipsis) dimensions, SI_EIN_LETTERS + j. */
#define SI_EIN_LETTERS 52
#define SI_EIN_LABELS (SI_EIN_LETTERS + SI_MAX_DIMS)
#define SI_EIN_MAXOPS 32
#define SI_EIN_UNUSED ((int64_t)-1) /* no dimension is -1, not even an unknown one (ir.h) */

typedef struct si_einsum {
    int nops, nout;
    int lab[SI_EIN_MAXOPS][SI_MAX_DIMS]; /* label of each operand dimension (a label repeated in one operand: a diagonal) */
    int out[SI_MAX_DIMS];                /* output labels in order (the implicit form's: broadcast, then the labels seen once) */
    int64_t size[SI_EIN_LABELS];         /* SI_EIN_UNUSED: label unused; a size-1 operand dimension broadcasts to it;
                                          * compile time: may be unknown or a symbol */
} si_einsum;

/* The labels of Einsum node c->node over its inputs (their dtypes and dims are read, not their data). INVALID_ARG
 * for a malformed equation or one that does not match the inputs' ranks, UNSUPPORTED for more than SI_EIN_MAXOPS
 * inputs or too large an output rank. */
si_result si_einsum_prepare(const si_kctx *c, si_einsum *e);

/* The family tables (oplist.h's SI_OP_FAMILIES), collected by ops.c. */
#define SI_OP_TABLE_DECL_(fam) extern const si_op_table si_ops_##fam;
SI_OP_FAMILIES(SI_OP_TABLE_DECL_)
#undef SI_OP_TABLE_DECL_

#endif
