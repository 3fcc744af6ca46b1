/*
 * ops.h — op definitions: for each ONNX op, one function that infers output types and shapes and one
 * plain reference kernel. Shape inference (ir/) uses `infer`; the REF device runs `infer` then `run` for
 * each node; faster devices bring their own kernels and may borrow these for rare ops.
 *
 * Contract for op authors:
 *  - `infer(c)` sets c->out[k]->dtype/ndim/dims for every present output (c->out[k] != NULL). Inputs are
 *    tensors whose `data` may be NULL at compile time (value not known yet): an op whose output shape
 *    depends on input *values* (Reshape's shape, NonZero, Range, ...) returns SI_SHAPE_DYNAMIC when it needs
 *    data that is NULL. Absent optional inputs are NULL pointers (c->in[i] == NULL), and c->n_in counts
 *    trailing absent inputs too. It must reject bad input with si_err(SI_ERR_INVALID_ARG, ...) naming what
 *    is wrong, and unsupported attribute/dtype combinations with SI_ERR_UNSUPPORTED.
 *  - `run(c)` is called after `infer` with every input's data present and every output allocated
 *    (zero-filled) for the shape infer produced. It must not reallocate outputs.
 *  - `types`: bit mask (SI_T(SI_F32) | ...) of element types accepted for input 0; 0 = any stored type.
 *    `check` (optional) refines what the REF kernel supports for a node with known input types; it
 *    returns SI_ERR_UNSUPPORTED with a message naming the op and the reason.
 *  - Semantics follow the node's opset (c->opset): e.g. Clip's min/max are attributes before 11, inputs
 *    from 11 on. Attributes are read with si_attr_* from ir.h on c->node.
 *  - Kernels never exit, abort or print; they return a status.
 */
#ifndef SI_OPS_H
#define SI_OPS_H

#include "ir/ir.h"

/* Internal status (never returned through the public API): shape depends on a value not known yet. */
#define SI_SHAPE_DYNAMIC ((si_result)100)

#define SI_T(dt) (1u << (unsigned)(dt))
#define SI_T_FLOATS (SI_T(SI_F32) | SI_T(SI_F64) | SI_T(SI_F16) | SI_T(SI_BF16))
#define SI_T_INTS                                                                                              \
    (SI_T(SI_I8) | SI_T(SI_I16) | SI_T(SI_I32) | SI_T(SI_I64) | SI_T(SI_U8) | SI_T(SI_U16) | SI_T(SI_U32) |     \
     SI_T(SI_U64))
#define SI_T_NUMERIC (SI_T_FLOATS | SI_T_INTS)
#define SI_T_ALL (SI_T_NUMERIC | SI_T(SI_BOOL))

typedef struct si_kctx {
    const si_node *node;
    int opset;
    int n_in;
    const si_tensor *const *in; /* NULL entries for absent optional inputs */
    int n_out;
    si_tensor *const *out;      /* NULL entries for absent optional outputs */
} si_kctx;

typedef si_result (*si_op_fn)(si_kctx *c);

typedef struct si_op_def {
    const char *name;   /* ONNX op_type */
    const char *domain; /* "" for ai.onnx */
    uint32_t types;     /* accepted element types of input 0; 0 = any */
    si_op_fn infer;
    si_op_fn run;
    si_op_fn check;     /* optional: SI_OK or SI_ERR_UNSUPPORTED for this node (input dtypes known) */
} si_op_def;

/* Find an op definition by domain ("" or "ai.onnx" for the default) and type; NULL when unknown. */
const si_op_def *si_op_find(const char *domain, const char *op_type);
/* All op definitions, for listing. */
const si_op_def *const *si_op_all(int *count);
/* Can the reference kernels run this node with these input types? SI_OK or SI_ERR_UNSUPPORTED (message
 * names the op and the reason). Inputs may be descriptors without data. */
si_result si_op_supported(const si_node *node, int n_in, const si_tensor *const *in);

/* ---- helpers for op authors ------------------------------------------------------------------------------ */

/* Normalise an axis in [-rank, rank) to [0, rank); INVALID_ARG naming the node otherwise. */
si_result si_axis(const si_kctx *c, int64_t axis, int rank, int *out);
/* Numpy-style broadcast of two shapes; INVALID_ARG naming the node when incompatible. */
si_result si_broadcast_shape(const si_kctx *c, int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                             int64_t *out);
/* Strides (in elements) of `in` when read with broadcasting into an output of rank `nout` and shape `out`:
 * 0 for broadcast dimensions. */
void si_broadcast_strides(int nin, const int64_t *in, int nout, const int64_t *out, int64_t *strides);
/* Set an output's type and shape. */
si_result si_set_out(si_kctx *c, int k, si_dtype dt, int ndim, const int64_t *dims);
/* Copy input i's type and shape to output k. */
si_result si_same_as_input(si_kctx *c, int k, int i);
/* Input i present (not NULL) and, when need_data, with data; else SI_SHAPE_DYNAMIC or INVALID_ARG. */
si_result si_need_input(const si_kctx *c, int i, bool need_data);
/* Read a 1-D (or scalar) integer tensor's values into a new array (caller frees with si_free). */
si_result si_tensor_ints(const si_kctx *c, const si_tensor *t, int64_t **vals, int *n);
/* Error naming the node: "Conv (node 'conv1'): <message>". */
si_result si_op_err(const si_kctx *c, si_result s, const char *fmt, ...) SI_PRINTF(3, 4);

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

typedef struct si_resize {
    int rank, naxes;
    int axes[SI_MAX_DIMS];
    int64_t in[SI_MAX_DIMS], out[SI_MAX_DIMS];
    double scale[SI_MAX_DIMS];
    double roi0[SI_MAX_DIMS], roi1[SI_MAX_DIMS]; /* crop box per axis (tf_crop_and_resize), else 0 and 1 */
    int mode, ctm, nearest;
    double cubic_a, extrap;
    bool exclude_outside, antialias;
} si_resize;

/* The geometry of a Resize (any opset) or Upsample node. Needs the values of scales/sizes/roi:
 * SI_SHAPE_DYNAMIC when they are not known. INVALID_ARG for a malformed node. */
si_result si_resize_prepare(si_kctx *c, bool upsample, si_resize *p);

/* Op groups: each file defines its ops in a table registered in ops.c. */
extern const si_op_def *const si_ops_elementwise[];
extern const si_op_def *const si_ops_nn[];
extern const si_op_def *const si_ops_tensor[];
extern const si_op_def *const si_ops_reduce[];

#endif
