/*
 * ocl.h — internals of the OCL device shared by its files: ocl.c (device discovery, compile, requests),
 * ocl_ops.c (one planner per ONNX op: checks what the node needs, computes output shapes and emits the
 * kernel launches) and ocl_kernels.c (the OpenCL C source, generated from kernels.cl at build time).
 *
 * A compiled model is a list of steps (a kernel name, its arguments, global and local sizes). Arguments
 * name graph values, not buffers: every request resolves them to its own buffers when it is created and
 * sets them once, so inference is only uploads, launches and downloads.
 */
#ifndef SI_OCL_H
#define SI_OCL_H

#include "device/device.h"

#include <CL/cl.h>
#include <stdatomic.h>

/* The kernel source, one line per string (kernels.cl, embedded). */
extern const char *const si_ocl_kernel_lines[];
extern const int si_ocl_kernel_n_lines;

/* What the planners need to know about the device. */
typedef struct ocl_caps {
    int ts;             /* GEMM tile edge (SI_TS): 16, or 8 on devices with small work-groups */
    int wg;             /* work-group size of the row reductions (SI_WG), a power of two */
    size_t elem_wg;     /* local size of element-wise launches */
    cl_ulong max_alloc; /* CL_DEVICE_MAX_MEM_ALLOC_SIZE */
    bool cpu;           /* a CPU device: vector GEMM kernels instead of local-memory tiles */
    bool exact_div;     /* float32 division and sqrt correctly rounded (built with
                         * -cl-fp32-correctly-rounded-divide-sqrt): QuantizeLinear's x / scale as the spec says */
    size_t im2col_max;  /* largest im2col buffer a convolution may use (else the direct kernel); compile
                         * option "ocl.im2col_max_bytes" overrides it (0 forces the direct kernel) */
} ocl_caps;

/* A value as the planner sees it: type and shape (ndim -1: unknown), constant data when known. */
typedef struct ocl_desc {
    int vid;               /* graph value id, -1 for an absent optional input/output */
    si_dtype dtype;
    int ndim;
    int64_t dims[SI_MAX_DIMS];
    const si_tensor *cval; /* constant (initializer or folded) or NULL */
} ocl_desc;

typedef enum ocl_arg_kind {
    OA_VAL,     /* the buffer holding graph value `i` */
    OA_META,    /* the compile-time int buffer `i` */
    OA_SCRATCH, /* the request's scratch buffer */
    OA_INT,     /* cl_int `i` */
    OA_FLOAT,   /* cl_float `f` */
} ocl_arg_kind;

typedef struct ocl_arg {
    ocl_arg_kind kind;
    int i;
    float f;
} ocl_arg;

#define OCL_MAX_ARGS 12
#define OCL_MAX_IO 64

typedef struct ocl_step {
    const char *kernel; /* name in the program (a string literal) */
    int node;           /* graph node index, for messages */
    int n_args;
    ocl_arg args[OCL_MAX_ARGS];
    cl_uint dims;
    size_t gws[3];
    size_t lws[3]; /* lws[0] == 0: the driver chooses */
} ocl_step;

typedef struct ocl_build ocl_build; /* the compiled model under construction (ocl.c) */

/* Planning one node. In a dry run (build == NULL: supports_op) nothing is emitted. */
typedef struct ocl_plan {
    const si_node *node;
    int node_index;
    const ocl_caps *caps;
    int n_in, n_out;
    ocl_desc in[OCL_MAX_IO];
    ocl_desc out[OCL_MAX_IO]; /* the planner sets dtype/ndim/dims of every present output */
    ocl_build *build;
} ocl_plan;

/* Plan node p->node: SI_OK, SI_ERR_UNSUPPORTED (message names the reason) or SI_ERR_INVALID_ARG. */
si_result ocl_plan_node(ocl_plan *p);

/* Emission, implemented in ocl.c; each is a no-op returning SI_OK in a dry run. */
si_result ocl_emit(ocl_plan *p, const ocl_step *st);
/* Add an int array uploaded once at compile time; *id names it in OA_META arguments. */
si_result ocl_meta(ocl_plan *p, const int *vals, int n, int *id);
/* Output k shares input j's buffer (same byte size): Reshape, Flatten, Squeeze, Identity, ... */
si_result ocl_alias(ocl_plan *p, int out_k, int in_j);
/* Output k (int64, shape already set) is the constant vals[0..n): computed at compile time. */
si_result ocl_const_out(ocl_plan *p, int k, const int64_t *vals, int n);
/* Before each inference, check that the integer input feeding input k of this node (a model input) holds
 * indices in [-limit, limit): INVALID_ARG naming the node otherwise, as REF would. */
si_result ocl_index_check(ocl_plan *p, int k, int64_t limit);
/* The request's scratch buffer must hold at least `bytes`. */
void ocl_scratch(ocl_plan *p, size_t bytes);

/* Error helpers: ocl_err names the plan's node, "Conv (node 'c1'): <message>" (si_node_err, ops/ops.h). */
#define ocl_err(p, s, ...) si_node_err((p)->node, (s), __VA_ARGS__)
/* Map an OpenCL error code to a status and message ("out of device memory", "device not available"). */
si_result ocl_cl_err(cl_int err, const char *what);
const char *ocl_cl_err_name(cl_int err);


// --- devices and programs (ocl.c) ---------------------------------------------------------------------------

typedef struct ocl_dev {
    si_device base;
    char name[16];     /* "OCL", "OCL.1" */
    cl_device_id id;
    cl_device_type type;
    char desc[192];    /* "pthread-skylake-avx512 (Portable Computing Language)" */
    cl_bool compiler;
    ocl_caps caps;
    char build_opts[96];
    int c_version;     /* OpenCL C version of the device's compiler, e.g. 120 */
    cl_context ctx;    /* created by the first compile, under g_lock; never released (process singleton) */
    bool pocl;         /* a PoCL platform: first inferences of compiled models run alone (see below) */
} ocl_dev;

/* The device's context, created by its first compile. */
si_result ocl_dev_context(ocl_dev *d, cl_context *out);
/* The kernel program for the device and build options ("ocl.build_options"), built once and shared. */
si_result ocl_build_program(ocl_dev *d, cl_context ctx, const si_options *opts, cl_program *prog);
/* PoCL: around each inference of a plan whose flag is *warm; true from enter: it runs alone. `ran`: every
 * step ran, so the plan is warm from now on (see "PoCL's kernel cache" in ocl.c). */
bool ocl_gate_enter(const atomic_bool *warm);
void ocl_gate_leave(bool alone, atomic_bool *warm, bool ran);

// --- compiled models (ocl_model.c) --------------------------------------------------------------------------

si_result ocl_supports_op(const si_device *d, const si_graph *g, const si_node *n);
si_result ocl_compile(si_device *d, const si_graph *src, const si_compile_ctx *cc, si_cmodel **out);

#endif
