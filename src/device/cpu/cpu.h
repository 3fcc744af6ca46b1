/*
 * cpu.h — internals of the CPU device (safeinfer's fast device), shared by its files:
 *
 *   cpu.c        the device vtable, compiled models (a plan per set of input shapes, an LRU cache of them),
 *                requests, execution
 *   cpu_store.c  the compiled model's packed weights, made once and borrowed by all its plans
 *   cpu_arena.c  activation arenas, lent to requests per inference from a pool
 *   cpu_plan.c   the plan builder: buffers and layouts of values, reorders, reference-kernel steps,
 *                zero-copy views, graph outputs and the arena (intermediate buffers placed by liveness)
 *   cpu_lower.c  lowering of nodes onto oneDNN primitives
 *   cpu_chain.c  fusion: nodes after a primitive folded into its weights or appended as post-ops, and
 *                multi-node activation patterns (GELU with Erf, x*Sigmoid(x), ...)
 *   cpu_dnnl.c   oneDNN helpers: engine, memory descriptors, status names, OpenMP thread control
 *   cpu_llm*.c   native kernels of the LLM ops (MatMulNBits, attention with a KV cache, fused norms, GELUs),
 *                see cpu_llm.h
 *   cpu_quant.c  quantized ops: DynamicQuantizeLinear as one fused kernel, ConvInteger / MatMulInteger (and the
 *                Cast -> Mul -> ... that dequantizes their result) on oneDNN int8 primitives, QLinearConv /
 *                QLinearMatMul with an own requantization; cpu_quant_qdq.c matches the QDQ form onto them
 *   cpu_rnn.c    LSTM, GRU, RNN: the input projection of all time steps as one GEMM, then the recurrence
 *
 * A plan is built once per set of input shapes: every value whose shape is then known gets a buffer in one
 * layout or more (plain row-major, or the layout a oneDNN convolution chose, e.g. nhwc or nChw16c); each
 * buffer lives in a slot (arena range, caller's input, request output, constant, or a per-infer tensor for
 * values whose shape is only known at run time). Steps are oneDNN primitives, reorders between layouts, the
 * device's own kernels (FN steps), or the reference kernels of ops/ for everything without a fast kernel.
 */
#ifndef SI_CPU_H
#define SI_CPU_H

#include "device/cpu/cpu_stats.h"
#include "device/device.h"
#include "ops/ops.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdatomic.h>

/* Node n is the ONNX-domain op id (not a contrib op of the same name): what the lowerings match on. */
static inline bool cpu_is_op(const si_node *n, si_op_id id) { return !n->domain[0] && si_node_is(n, id); }
/* A lowering's "not this node": it runs on the reference kernel (or another lowering takes it). */
static inline si_result cpu_unsupported(void) { return SI_ERR_UNSUPPORTED; }

// --- oneDNN helpers (cpu_dnnl.c) --------------------------------------------------------------------------

/* The process-wide CPU engine (created once). SI_ERR_DEVICE when oneDNN cannot create it. */
si_result cpu_engine(dnnl_engine_t *out);
/* SI_OK for dnnl_success, else an si_err naming the status and what failed: UNSUPPORTED for
 * dnnl_unimplemented, NO_MEM for dnnl_out_of_memory, DEVICE otherwise. */
si_result cpu_dnnl_err(dnnl_status_t st, const char *what, const char *node);
/* Plain row-major descriptor of a shape (rank 0 becomes {1}). */
void cpu_md_plain(dnnl_memory_desc_t *md, int ndim, const int64_t *dims);
/* Same as md_plain with given strides in elements. */
void cpu_md_strided(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, const int64_t *strides);
bool cpu_md_is_plain(const dnnl_memory_desc_t *md);
/* A primitive descriptor's memory descriptor (what: dnnl_query_src_md, ...), index 0. */
static inline const dnnl_memory_desc_t *cpu_pd_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}
/* OpenMP thread count of the calling thread: set returns the previous value (0 when OpenMP is not found). */
int cpu_threads_set(int n);
int cpu_threads_get(void);
/* oneDNN's dimensions of ONNX convolution weights w [OC, C/G, k...] of rank r: with G > 1 groups
 * [G, OC/G, C/G, k...]. Returns their rank (r or r + 1). */
int cpu_conv_weight_dims(int r, int64_t G, const int64_t *w, dnnl_dims_t wd);
/* Plain row-major descriptor of another element type. */
void cpu_md_plain_dt(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, dnnl_data_type_t dt);
/* The oneDNN type of an element type (f32, f16, bf16, s32, s8, u8), dnnl_data_type_undef for the others. */
dnnl_data_type_t cpu_dnnl_type(si_dtype dt);
/* Plain descriptor of a value of element type dt: its oneDNN type, or float32 for types oneDNN lacks (the
 * buffer's size is then set from the value, and only reference kernels read it). */
void cpu_md_typed(dnnl_memory_desc_t *md, si_dtype dt, int ndim, const int64_t *dims);
/* Run fn(arg, i, n) for i in [0, n) on up to n OpenMP threads (the pool oneDNN uses), n = nthr; serially when
 * OpenMP is not found or nthr is 1. */
void cpu_parallel(int nthr, void (*fn)(void *arg, int ithr, int nthr), void *arg);

// --- plans ----------------------------------------------------------------------------------------------

/* SLOT_PARAM: weights packed from a parameter input (si_val.is_param: a function body's weight, bound per call),
 * looked up in (or packed into) the model's store when a request sees a new tensor bound to it; index: the
 * plan's ppacks entry. */
typedef enum cpu_slot_kind { SLOT_ARENA, SLOT_INPUT, SLOT_OUTPUT, SLOT_CONST, SLOT_DYN, SLOT_PARAM } cpu_slot_kind;

typedef struct cpu_slot {
    cpu_slot_kind kind;
    int index;         /* INPUT/OUTPUT: port index; DYN: value id */
    const void *cptr;  /* CONST: the data (a graph constant, or packed weights owned by the plan) */
    size_t size;       /* bytes needed (ARENA) */
    size_t off;        /* ARENA: offset in the request's arena, set by memory planning */
    int first, last;   /* steps where it is written first / read last */
} cpu_slot;

typedef struct cpu_buf {
    int value;         /* the graph value it holds, -1 for internal buffers (packed weights, scratch) */
    int slot;
    bool plain;        /* dense row-major in the value's dims */
    bool dyn;          /* shape known only at run time (DYN slot; md unused) */
    int next;          /* next buffer of the same value (another layout), -1 at the end */
    size_t nbytes;     /* bytes the layout takes */
    dnnl_memory_desc_t md;
} cpu_buf;

typedef enum cpu_step_kind { STEP_REF, STEP_DNNL, STEP_NATIVE, STEP_FN } cpu_step_kind;

/* An FN step's kernel: bufs[i] is the address of the step's i-th buffer (its args, in order); ctx its
 * parameters (plan-owned); threads the plan's thread count. */
typedef si_result (*cpu_fn)(const void *ctx, void *const *bufs, int threads);
/* The own kernels of cpu_deconv.c, cpu_resize.c, cpu_fp16.c, cpu_einsum.c: FN steps made by cpu_pb_emit_own. */
typedef cpu_fn cpu_own_fn;

typedef struct cpu_arg {
    int arg;           /* DNNL_ARG_* */
    int buf;
} cpu_arg;

typedef struct cpu_step {
    cpu_step_kind kind;
    int node;          /* the graph node (REF), or the first node of a fused group (for messages) */
    char what[96];     /* "Conv+BatchNormalization+Relu", "reorder", ... */
    /* REF, NATIVE: per node input / output the buffer, or -1 (absent, or a constant read from const_val) */
    int *in_buf, *out_buf;
    si_op_fn native;   /* NATIVE: the device's kernel, called like the reference kernel (plain buffers) but with
                        * outputs not zero-filled: it writes every element */
    /* DNNL: the primitive and its arguments; arg_base indexes the request's memory objects */
    dnnl_primitive_t prim;
    int n_args, arg_base;
    cpu_arg *args;
    int scratch_slot;  /* -1 when the primitive needs no scratchpad */
    dnnl_memory_desc_t scratch_md;
    bool one_thread;   /* a small eltwise / binary primitive: runs on the calling thread alone (an OpenMP region's
                        * barrier costs more than the work, and far more on a busy machine) */
    /* FN: the kernel and its parameters; args[i].buf are its buffers (args[i].arg: 0 read, 1 written) */
    cpu_fn fn;
    const void *fn_ctx;
    char kernel[48];   /* for profiles: oneDNN's implementation name, "own:...", or "reference" */
} cpu_step;

/* Weights from a parameter input, packed at run time (SLOT_PARAM): the input port, the store key (its src is the
 * bound tensor), the plain layout of the bound tensor and the layout the primitive wants. */
typedef struct cpu_ppack {
    int port;
    int node;
    char tag[16];
    uint64_t fp;
    dnnl_memory_desc_t plain, want;
} cpu_ppack;

#define CPU_KEY_VALUES 16 /* the most values of an input a plan is built for (cpu.c: inputs planned by value) */

typedef struct cpu_plan {
    si_graph *g;        /* owned: the graph the plan was built for (shapes specialised) */
    cpu_ppack *ppacks;  /* parameters packed at run time (SLOT_PARAM slots index it) */
    int n_ppacks, cap_ppacks;
    int threads;
    int64_t *key;       /* input shapes the plan was built for: per input ndim, dims, then -1 or the count and values
                         * of an input planned by value (at most CPU_KEY_VALUES) */
    int key_len;
    cpu_slot *slots;
    int n_slots, cap_slots;
    cpu_buf *bufs;
    int n_bufs, cap_bufs;
    cpu_step *steps;
    int n_steps, cap_steps;
    int n_args_total;
    size_t arena_size;
    int *out_buf;       /* per graph output: the plain buffer holding it after the steps, or -1 (DYN) */
    bool *out_copy;     /* per graph output: copy into the output tensor after the steps */
    int *vbuf_plain;    /* per value: its plain buffer or -1 (REF steps and outputs read these) */
    void **owned;       /* plan-owned memory (si_free): kernel parameters of this shape set; never weights (the
                         * model's store holds those, cpu_store.c) */
    int n_owned, cap_owned;
    int n_dnnl, n_ref;  /* step counts, for reports */
    int *node_step;     /* per graph node: the step that runs it (-1: folded, a view, nothing to run) */
} cpu_plan;

/* The plan builder's state while nodes are lowered in topological order. */
typedef struct cpu_pb {
    cpu_plan *p;
    const si_graph *g;
    dnnl_engine_t eng;
    dnnl_stream_t stream;  /* for packing weights at compile time */
    int *vbuf;             /* per value: first buffer (-1 none) */
    int *remaining;        /* per value: consumer input slots not lowered yet */
    int *n_consumers;      /* per value: consumer input slots in total */
    bool *done;            /* per node: lowered (alone or in a fused group) */
    bool *const_used;      /* per value: a constant the plan reads at run time (kept in the plan's graph) */
    int threads;
    struct cpu_store *store; /* the compiled model's packed weights, shared by all its plans */
    bool no_fusion;        /* debugging: lower every node alone */
    struct {               /* subsampled copies of values (strided 1x1 convolutions), shared */
        int value, buf;
        int64_t stride[3];
    } sub[32];
    int n_sub;
    int lower_start;       /* steps before the node being lowered (which steps cover which nodes) */
    bool *round16;         /* per value: held in float16 or bfloat16 by the model (cpu_fp16.c), or NULL */
    bool *nofold;          /* per value: written by a Mul that must stay a multiplication of its input (cpu_int8f.c), or NULL */
    si_dtype half;         /* what round16 rounds to: SI_F16 or SI_BF16 */
} cpu_pb;

// --- activation arenas, lent per inference (cpu_arena.c) ------------------------------------------------------

/* A request borrows an arena for each inference and gives it back after: requests that run one after the other
 * (the submodels and calls of one inference) share the same memory. Arenas are pooled by key (the memory budget
 * the requests charge); a key's idle arenas are kept while it has users (requests registered with it). */
typedef struct cpu_arena cpu_arena;
si_result cpu_arena_user(const void *key);
void cpu_arena_user_gone(const void *key); /* the last one frees the key's idle arenas */
/* An arena of at least need bytes (base 64-byte aligned; NULL when need is 0): an idle one of the key, grown if
 * needed, or a new one. NO_MEM when it cannot be had. */
si_result cpu_arena_take(const void *key, size_t need, cpu_arena **out);
void cpu_arena_give(cpu_arena *a);
uint8_t *cpu_arena_base(const cpu_arena *a);
/* Scratch of n bytes for one kernel call (64-byte aligned, contents undefined), from the pool of the budget the
 * running request charges: NULL when it cannot be had (no error is left set). Give *hold back with
 * cpu_arena_give. */
void *cpu_scratch_take(size_t n, cpu_arena **hold);
/* The same from the pool of `key` (a kernel's helper threads: capture si_budget_current() on the calling thread
 * and pass it, so that per-task scratch is pooled memory already faulted in, not malloc'd per call). */
void *cpu_scratch_take_key(const void *key, size_t n, cpu_arena **hold);

// --- the compiled model's store of packed weights (cpu_store.c) ------------------------------------------------

/* What plans derive from the graph's constants (packed or folded weights, biases, converted weights) lives in
 * the compiled model's store, made once and borrowed by every plan of the model (one per set of input shapes).
 * Thread-safe; it must outlive the model's plans. */
typedef struct cpu_store cpu_store;
si_result cpu_store_new(cpu_store **out);
void cpu_store_free(cpu_store *s);
/* The compiled model's graph (borrowed; it outlives the store's use in builds): constants of it are the same
 * pointers in every plan's graph (si_graph_clone shares them), the others were folded for one plan's shapes, and
 * what is made from those stays the plan's own (cpu_pb_shared). */
void cpu_store_set_graph(cpu_store *s, const si_graph *g);
bool cpu_store_model_const(const cpu_store *s, const si_tensor *t);
/* Entries made so far (each one packing or conversion of weights), entries held, their bytes. */
void cpu_store_stats(cpu_store *s, int64_t *fills, int *entries, size_t *bytes);

/* The key of an entry: everything its contents depend on. */
typedef struct cpu_skey {
    int node;                       /* the graph node it is made for (or a value id, with its own tag) */
    const char *tag;                /* what was made, up to 15 characters ("conv.w", "mm.w") */
    uint64_t fp;                    /* cpu_fp of the small inputs: folded scales and shifts, attributes */
    const si_tensor *src;           /* the large constant it is made from, or NULL (compared by pointer, then bytes) */
    const dnnl_memory_desc_t *md;   /* its layout, or NULL for a plain array */
    const void *data;               /* non-NULL: the entry holds exactly these bytes (compared on lookup) */
} cpu_skey;
/* Primitive descriptors the store's cache saw created (made) and handed out again (reused, cpu_pb_pd_create). */
void cpu_store_pd_stats(cpu_store *s, int64_t *made, int64_t *reused);
/* FNV-1a of n bytes, continuing from h (0 to start). */
uint64_t cpu_fp(uint64_t h, const void *data, size_t n);
/* The store's memory for key k (bytes long, 64-byte aligned): when the entry is made already, *fill is false;
 * else *fill is true and the caller fills it, then calls cpu_pb_shared_ready (an entry not made ready is filled
 * by the next plan needing it). NULL with si_err on failure. */
void *cpu_pb_shared(cpu_pb *b, const cpu_skey *k, size_t bytes, bool *fill);
void cpu_pb_shared_ready(cpu_pb *b, const void *ptr);
/* The layout of an entry made already for key k (its md ignored) whose dims are plain's: weights packed for
 * one shape that a plan at another shape can take as they are rather than pack them again. */
bool cpu_store_layout(cpu_store *s, const cpu_skey *k, const dnnl_memory_desc_t *plain, dnnl_memory_desc_t *md);
/* The store's copy of `bytes` bytes of data made for node `node` (small arrays: biases, folded shifts). NULL with
 * si_err on failure. */
const void *cpu_pb_shared_data(cpu_pb *b, int node, const char *tag, const void *data, size_t bytes);

/* A reference to make(src) (a constant made from constant src, e.g. converted to float32), made once per store:
 * the caller unrefs it (si_const_unref). NULL with si_err on failure. */
si_tensor *cpu_store_tensor(cpu_store *s, si_tensor *src, const char *tag, si_tensor *(*make)(const si_tensor *src));
/* A reference to node `node` of g evaluated from constants (si_node_eval: a DequantizeLinear of the quantized weights
 * that a float kernel reads), made once per store when its first input is one of the model's constants (keyed by
 * that input, tag and fp: a hash of everything else it depends on), else for this plan alone: *out, which the
 * caller unrefs. Errors: the evaluation's (the reference kernel's message), NO_MEM. */
si_result cpu_store_node_const(cpu_store *s, const si_graph *g, int node, const char *tag, uint64_t fp, si_tensor **out);

/* Build a plan for graph g (taken over: freed with the plan, also on failure) whose primitives run with
 * `threads` OpenMP threads; the weights it packs are looked up in / added to `store` (the compiled model's),
 * which must outlive the plan. */
si_result cpu_plan_build(si_graph *g, int threads, cpu_store *store, cpu_plan **out);
void cpu_plan_free(cpu_plan *p);

/* Builder API used by the lowering code. Functions returning int return a buffer index, or -1 with an
 * si_err set. */
bool cpu_value_static(const si_val *v);
size_t cpu_value_nbytes(const si_val *v);
int cpu_pb_plain(cpu_pb *b, int value);                                   /* plain buffer, reorders if needed */
int cpu_pb_in_md(cpu_pb *b, int value, const dnnl_memory_desc_t *md);     /* buffer in layout md */
int cpu_pb_existing(cpu_pb *b, int value);                                /* any existing buffer (blocked first) */
/* An existing buffer in a dense layout (plain, channels-last, channel-blocked without padding: element-wise kernels
 * read it as it is), else the plain one. */
int cpu_pb_dense(cpu_pb *b, int value);
int cpu_pb_new_out(cpu_pb *b, int value, const dnnl_memory_desc_t *md);   /* new buffer for a step's output */
int cpu_pb_new_inplace(cpu_pb *b, int value, const dnnl_memory_desc_t *md, int over); /* shares over's slot */
bool cpu_pb_can_overwrite(cpu_pb *b, int buf, int consumer_uses);         /* buf's slot is dead after this use */
int cpu_pb_const_buf(cpu_pb *b, const void *data, const dnnl_memory_desc_t *md); /* data outlives the plan */
/* A buffer of weights packed from parameter input `value` (plain layout `plain`) into `want` at run time, when a
 * request is bound to a tensor for it (cpu_store_param); -1 with si_err on failure. */
int cpu_pb_param_buf(cpu_pb *b, int value, const cpu_skey *k, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *want);
/* The packed form of parameter tensor t for pp (*out): the store's entry, packed now (on `stream`) when this is the
 * first request to bind t. Packs are serialised; lookups of a packed entry only take the store's lock. INVALID_ARG
 * (t is not of the parameter's size), NO_MEM, DEVICE. */
si_result cpu_store_param(cpu_store *s, const cpu_ppack *pp, const si_tensor *t, dnnl_stream_t stream, void **out);
void cpu_pb_keep_const(cpu_pb *b, int value);  /* a step reads this graph constant's data at run time */
int cpu_pb_view(cpu_pb *b, int value, int over);                          /* value aliases buffer over (plain) */
int cpu_pb_strided_view(cpu_pb *b, int value, int over, const dnnl_memory_desc_t *md); /* value read through md */
int cpu_pb_alias(cpu_pb *b, int over, const dnnl_memory_desc_t *md);      /* anonymous view of over's slot */
int cpu_pb_copy(cpu_pb *b, int buf);                                       /* anonymous copy (same layout) */
int cpu_pb_internal_md(cpu_pb *b, const dnnl_memory_desc_t *md);          /* scratch arena buffer */
/* Emit a primitive step: creates the primitive from pd (destroys pd), its scratchpad slot and records the
 * uses/definitions of its argument buffers. */
si_result cpu_pb_emit_dnnl(cpu_pb *b, int node, const char *what, dnnl_primitive_desc_t pd, const cpu_arg *args,
                           int n_args);
/* A step that runs node `node` like a reference-kernel step (plain inputs, new plain outputs, the node's infer at
 * run time when shapes are dynamic) but through the device's own kernel fn. */
si_result cpu_pb_emit_native(cpu_pb *b, int node, si_op_fn fn, const char *what);
/* A step running the device's own kernel fn over buffers in[0..n_in) (read) and out[0..n_out) (written);
 * ctx stays valid as long as the plan (cpu_pb_own). */
si_result cpu_pb_emit_fn(cpu_pb *b, int node, const char *what, cpu_fn fn, const void *ctx, const int *in, int n_in, const int *out,
                         int n_out);
/* An FN step from primitive-style arguments (DNNL_ARG_DST: written, anything else: read; in that order for
 * the kernel) named `kernel` in profiles ("own:gemm+col2im"); params is plan-owned (cpu_pb_own). */
si_result cpu_pb_emit_own(cpu_pb *b, int node, const char *what, const char *kernel, cpu_own_fn fn, const void *params,
                          const cpu_arg *args, int n_args);
/* A reorder step from buffer src to buffer dst (their layouts). */
si_result cpu_pb_emit_reorder(cpu_pb *b, int node, int src, int dst);
/* Constant weights of key k (k->md is ignored: the layout is want) packed into layout want: the store's copy when
 * it has one, else packed now from w in layout plain (fill, when not NULL, writes them into a temporary first:
 * fill(ctx, tmp), so that folding is done once too). A CONST buffer, or -1 with si_err set. */
typedef void (*cpu_wfill)(const void *ctx, void *dst);
int cpu_pb_pack(cpu_pb *b, const cpu_skey *k, const void *w, cpu_wfill fill, const void *ctx, const dnnl_memory_desc_t *plain,
                const dnnl_memory_desc_t *want);
/* Run a reorder between two memory descriptors right now (packing weights). */
si_result cpu_pb_reorder_now(cpu_pb *b, const dnnl_memory_desc_t *smd, const void *src, const dnnl_memory_desc_t *dmd,
                             void *dst);
void *cpu_pb_own(cpu_pb *b, size_t bytes); /* plan-owned 64-byte aligned memory, NULL with si_err on failure */
/* Lower node n now, ahead of its place in the graph (a producer a fused step needs first), when all its inputs
 * are computed: on fast kernels or its reference kernel. UNSUPPORTED (no message) when an input is not ready. */
si_result cpu_pb_lower_now(cpu_pb *b, int n);
/* Mark node n lowered: its inputs' consumer counts drop. */
void cpu_pb_consume(cpu_pb *b, int node);
/* Consumers of value v: count, and the k-th consumer node. */
int cpu_pb_consumer(const cpu_pb *b, int value, int k);
bool cpu_value_is_output(const si_graph *g, int v);

// --- fused post-op chains (cpu_chain.c) ----------------------------------------------------------------------

/* Function multi-versioning (target_clones: the dynamic loader picks a version through an ifunc resolver). Not
 * under ThreadSanitizer: the loader runs the resolvers before the TSan runtime is up, and the instrumented
 * resolver crashes the process before main; there the default version is the only one. */
#if defined(__SANITIZE_THREAD__)
#define CPU_TARGET_CLONES(...)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CPU_TARGET_CLONES(...)
#endif
#endif
#ifndef CPU_TARGET_CLONES
#define CPU_TARGET_CLONES(...) __attribute__((target_clones(__VA_ARGS__)))
#endif

#define CPU_MAX_PO 12
#define CPU_MAX_CHAIN 48

typedef enum cpu_po_kind { PO_ELTWISE, PO_BINARY, PO_SUM } cpu_po_kind;

typedef struct cpu_po {
    cpu_po_kind kind;
    dnnl_alg_kind_t alg;   /* ELTWISE: eltwise alg; BINARY: binary alg */
    float alpha, beta;
    int value;             /* BINARY: the other operand; SUM: the residual */
    int ndim;              /* BINARY: the other operand's dims in the primitive's dst shape */
    int64_t dims[DNNL_MAX_NDIMS];
} cpu_po;

/* Nodes after an anchor primitive (Conv, MatMul, Gemm, pooling, eltwise, binary) that become part of it:
 * per-channel affine ops folded into the weights (BatchNormalization, Add/Sub/Mul/Div by a per-channel
 * constant) while no post-op precedes them, then oneDNN post-ops: eltwise activations (Relu, Clip, Sigmoid,
 * the Erf form of GELU, x*Sigmoid(x), ...), binary ops with a broadcast operand, and one residual sum. */
typedef struct cpu_chain {
    int anchor;                    /* the anchor node */
    int vrank;                     /* rank and dims of the anchor's output value */
    int64_t vdims[SI_MAX_DIMS];
    int prank;                     /* rank and dims of the primitive's dst (MatMul merges leading dims) */
    int64_t pdims[DNNL_MAX_NDIMS];
    int ch_axis;                   /* channel axis in the value's dims (folding), -1: no folding */
    int64_t n_ch;
    bool can_sum;
    bool allow_oscale;             /* scalar Mul/Div become the primitive's output scale (MatMul) */
    float oscale;
    float *scale, *shift;          /* folded per-channel affine (NULL until the first fold) */
    bool mm1x1;                    /* [M, N] given to a 1x1 convolution: binary operands are [1, N, M, 1] channels-last */
    bool own;                      /* for an own kernel's activations (cpu_chain_own_acts) */
    int n_groups;                  /* absorbed groups (one op, or one multi-node pattern) */
    struct {
        int node_end, po_end, out;
        bool fold;
        char name[24];
    } grp[CPU_MAX_CHAIN];
    int nodes[CPU_MAX_CHAIN];
    int n_nodes;
    cpu_po po[CPU_MAX_PO];
    int n_po;
} cpu_chain;

void cpu_chain_init(cpu_chain *c, const cpu_pb *b, int anchor, int prank, const int64_t *pdims, int ch_axis, bool can_sum);
void cpu_chain_extend(cpu_pb *b, cpu_chain *c);
int cpu_chain_out(const cpu_chain *c);              /* the value the chain produces */
bool cpu_chain_truncate(cpu_chain *c);              /* drop the last post-op group; false when none is left */

/* The eltwise post-ops an own kernel applies itself after its chain (cpu_chain.c): Relu / LeakyRelu, Sigmoid, Tanh,
 * Clip and x * Sigmoid(alpha x). cpu_act_of: false for any other post-op (truncate the chain before it). */
#define CPU_MAX_ACT 4
typedef struct cpu_act {
    dnnl_alg_kind_t alg;
    float alpha, beta;
} cpu_act;
bool cpu_act_of(const cpu_po *po, cpu_act *a);
/* Extend c (initialized at its anchor) as far as it goes, then drop post-op groups until every post-op left is one
 * cpu_act_of takes (at most CPU_MAX_ACT): their count; acts holds them. */
int cpu_chain_own_acts(cpu_pb *b, cpu_chain *c, cpu_act *acts);
/* Depthwise 1-D Conv n (its geometry checked by the caller: stride, dilation, left pad) on the own kernel
 * (cpu_dwconv.c); SI_ERR_UNSUPPORTED when it does not take it. */
si_result cpu_lower_dwconv1d(cpu_pb *b, int n, int64_t stride, int64_t dil, int64_t pl);
void cpu_act_apply(const cpu_act *acts, int n_act, float *y, int64_t count);
int cpu_chain_sum_value(const cpu_chain *c);        /* residual of the sum post-op, or -1 */
/* Attribute for the chain: strict fp math, user scratchpad, the post-ops. NULL with si_err on failure. */
dnnl_primitive_attr_t cpu_chain_attr(const cpu_chain *c, float output_scale);
/* dnnl_primitive_desc_create(pd, op_desc, attr) where attr is cpu_chain_attr(c, c's output scale) (c may be NULL):
 * a clone of the descriptor (or the refusal) made before for the same op descriptor, threads and chain, kept in
 * the compiled model's store across its plans (cpu_store.c). */
dnnl_status_t cpu_pb_pd_create(cpu_pb *b, const cpu_chain *c, const void *op_desc, const_dnnl_primitive_attr_t attr,
                               dnnl_primitive_desc_t *pd);
/* Buffers for the binary post-ops' operands appended to args. */
si_result cpu_chain_args(cpu_pb *b, const cpu_chain *c, cpu_arg *args, int *n_args);
/* dst buffer for the chain's result (in place over the residual when there is a sum post-op). */
int cpu_chain_dst(cpu_pb *b, const cpu_chain *c, const dnnl_memory_desc_t *dst_md);
void cpu_chain_consume(cpu_pb *b, const cpu_chain *c);
void cpu_chain_name(const cpu_chain *c, const char *anchor, char *buf, size_t n);
void cpu_chain_free(cpu_chain *c);

/* Batched MatMul n of activations with few rows per product (a decode step's attention) as the own kernel
 * own:bmm (cpu_bmm.c): A in layout smd (buffer sa, or -1: the input in that layout), B likewise, the product in
 * layout dmd, the chain c's output scale and binary post-ops applied (tn < 0), or written into the output of
 * Transpose node tn (c then has no post-ops). SI_ERR_UNSUPPORTED, with nothing emitted, when it does not fit. */
si_result cpu_bmm_lower(cpu_pb *b, int n, cpu_chain *c, const dnnl_memory_desc_t *smd, int sa, const dnnl_memory_desc_t *wmd,
                        int sw, const dnnl_memory_desc_t *dmd, int tn);
/* Fingerprint of what the chain folds into weights (the per-channel scale and shift): part of a store key. */
uint64_t cpu_chain_fp(const cpu_chain *c);
bool cpu_pd_is_ref(const_dnnl_primitive_desc_t pd);
/* A unary node as up to two oneDNN eltwise algorithms (HardSigmoid is linear then clip, Selu elu then linear); 0 when
 * it is not. */
int cpu_eltwise_of(const si_graph *g, const si_node *n, dnnl_alg_kind_t alg[2], float alpha[2], float beta[2]);
/* Activation patterns rooted at value v (GELU with Erf, x*Sigmoid(x), x*HardSigmoid(x), x*Tanh(Softplus(x))): the
 * node count (0 for none), the algorithm, its alpha, the nodes and the value produced. */
int cpu_pattern_match(const cpu_pb *b, int v, dnnl_alg_kind_t *alg, float *alpha, int *nodes, int *out);
/* The step name of a pattern cpu_pattern_match returns alg for ("Gelu", "Swish", "Mish", "HardSwish"). */
const char *cpu_pattern_name(dnnl_alg_kind_t alg);

/* Lower node n (and the nodes it can absorb) onto fast kernels. SI_OK when done (the nodes are marked
 * done), SI_ERR_UNSUPPORTED (message cleared by the caller) when the node should run on the reference
 * kernel, another status on failure. */
si_result cpu_lower_node(cpu_pb *b, int n);

/* The LLM ops (cpu_llm.c): a native step for node n, or SI_ERR_UNSUPPORTED (the reference kernel runs it). */
si_result cpu_lower_llm(cpu_pb *b, int n);
/* A written-out RMS norm (cpu_lower.c matched it: nodes[0..nn) after the first, node n): out = x / sqrt(mean(x^2)
 * over the last axis + eps) [* gamma_v, a constant or a computed value of the last axis' size; -1: none], one own
 * step (cpu_llm.c). */
si_result cpu_rmsnorm_emit(cpu_pb *b, int n, int x, int gamma_v, int out, float eps, const int *nodes, int nn);
/* Map every page of t now (read one byte of each), not at the first inference that reads it (cpu_llm.c). */
void cpu_touch_pages(const si_tensor *t);
/* Lowering of the quantized ops (cpu_quant.c) and recurrent layers (cpu_rnn.c); same contract as cpu_lower_node. */
si_result cpu_lower_dynamic_quantize(cpu_pb *b, int n);
/* cpu_lower.c's helpers shared with cpu_lower_norm.c (see there) and the lowerings that file holds */
bool cpu_out_f32_static(const si_graph *g, const si_node *n);
bool cpu_in_ok(const si_graph *g, const si_node *n, int k);
si_result cpu_create_pd(cpu_pb *b, cpu_chain *c, const void *op_desc, dnnl_primitive_desc_t *pd, const char *nname);
si_result cpu_chain_pd(cpu_pb *b, int n, const dnnl_memory_desc_t *md, cpu_chain *c, const void *op_desc, dnnl_primitive_desc_t *pd);
si_result cpu_finish_chain(cpu_pb *b, cpu_chain *c, dnnl_primitive_desc_t pd, cpu_arg *args, int n_args, const char *anchor);
/* MatMul of activations [M, K] by constant or parameter weights [K, N] as oneDNN's 1x1 convolution (cpu_mm1x1.c),
 * where its matmul has no brgemm kernel (CPUs without AVX-512): wanted for this many rows, whether oneDNN has its jit
 * 1x1 kernel for the shape, and the lowering (c over [M, N], as for the matmul; the weights written [K, N] by
 * wfill(wctx), or wctx itself, or the parameter w_value when >= 0; bias [N] or NULL). */
bool cpu_mm1x1_wanted(const cpu_pb *b, int64_t M);
/* Its descriptors for element types xt, wt, yt: src [1, K, M, 1] and dst [1, N, M, 1] channels-last (the row-major
 * [M, K] / [M, N]), weights [N, K, 1, 1] in any layout and their plain source (a [K, N] row-major matrix, [N, K]
 * with tb), bias [N] (float32); the convolution. */
typedef struct cpu_mm1x1 {
    dnnl_memory_desc_t src, wany, wplain, bias, dst;
} cpu_mm1x1;
void cpu_mm1x1_descs(int64_t M, int64_t K, int64_t N, dnnl_data_type_t xt, dnnl_data_type_t wt, dnnl_data_type_t yt, bool tb, cpu_mm1x1 *d);
bool cpu_mm1x1_conv(const cpu_mm1x1 *d, bool bias, dnnl_convolution_desc_t *cd);
bool cpu_mm1x1_probe(cpu_pb *b, int64_t M, int64_t K, int64_t N);
si_result cpu_mm1x1_lower(cpu_pb *b, int n, cpu_chain *c, int src_value, int64_t M, int64_t K, int64_t N, const cpu_skey *wk, cpu_wfill wfill,
                          const void *wctx, int w_value, const float *bias);
si_result cpu_lower_batchnorm(cpu_pb *b, int n);
si_result cpu_lower_softmax(cpu_pb *b, int n);
si_result cpu_lower_layernorm(cpu_pb *b, int n);
si_result cpu_lower_layernorm_pattern(cpu_pb *b, int n);
si_result cpu_lower_rms_pattern(cpu_pb *b, int n);
si_result cpu_lower_conv_integer(cpu_pb *b, int n);
si_result cpu_lower_matmul_integer(cpu_pb *b, int n);
si_result cpu_lower_qlinear_conv(cpu_pb *b, int n);
si_result cpu_lower_qlinear_matmul(cpu_pb *b, int n);
si_result cpu_lower_qgemm(cpu_pb *b, int n);
si_result cpu_lower_qdq_conv(cpu_pb *b, int n);     /* DequantizeLinear -> Conv -> QuantizeLinear as an int8 conv */
si_result cpu_lower_qdq_matmul(cpu_pb *b, int n);   /* DequantizeLinear -> MatMul / Gemm [-> QuantizeLinear] */
si_result cpu_lower_own_unary(cpu_pb *b, int n);    /* cpu_unary.c: Erf, Softplus, Softsign, Tanh (cpu_own_tanh) */
bool cpu_own_tanh(void);
/* Concat node n whose na inputs (layouts mds, buffers srcs) each land as one contiguous run of the output in layout
 * dmd (cpu_data.c): copies; SI_ERR_UNSUPPORTED (nothing emitted) for any other. */
/* The channel-blocked tag of rank r (3-5) and block bl (8, 16): aBcd8b and the like; dnnl_format_tag_undef else. */
dnnl_format_tag_t cpu_tag_cblocked(int r, int64_t bl);
si_result cpu_concat_copy(cpu_pb *b, int n, const dnnl_memory_desc_t *mds, const cpu_arg *srcs, int na, int axis, const dnnl_memory_desc_t *dmd); /* Tanh on the own kernel, not oneDNN's (CPUs with AVX2 and without AVX-512) */
bool cpu_qdq_feeds_int_convs(cpu_pb *b, int n);     /* a DequantizeLinear only those read (it need not run) */
si_result cpu_qdq_emit(cpu_pb *b, int n);           /* cpu_qdq.c: the Q / DQ step of node n, even when skipped */
/* cpu_qdq.c: DequantizeLinear node d of constants (si_node_dq_of_consts: quantized weights the graph keeps, shape.c
 * keep_dq): its output becomes a constant of the plan, dequantized once per compiled model (cpu_store_node_const), for
 * a reader that computes in float; the node is consumed. */
si_result cpu_dq_fold(cpu_pb *b, int d);
si_result cpu_lower_qlinear_ew(cpu_pb *b, int n); /* cpu_qlinear.c */
si_result cpu_lower_qlinear_concat(cpu_pb *b, int n);
int cpu_qlinear_follow(cpu_pb *b, int v, uint8_t *table, int nodes[2], int *out);
si_result cpu_qlinear_binary_emit(cpu_pb *b, int n, bool mul, int a, int bv, int y, float as, int32_t az, float bs, int32_t bz, float cs,
                                  int32_t cz, int32_t qlo, const int *extra, int n_extra);
/* cpu_qlinear.c: y[i] = table[x[i]] for n bytes (x and y may be the same), 64 at a time with AVX-512 VBMI. */
void cpu_lut8(const uint8_t *table, const uint8_t *x, uint8_t *y, int64_t n);
si_result cpu_lower_qdq_unary(cpu_pb *b, int n); /* cpu_quant_qdq.c: DequantizeLinear -> Sigmoid / LeakyRelu -> QuantizeLinear as a table */
si_result cpu_lower_qdq_concat(cpu_pb *b, int n); /* cpu_quant_qdq.c: DequantizeLinear x k -> Concat -> QuantizeLinear */
/* cpu_qlinear.c: the concatenation of values x[0..nx) (scales xsc, zero points xzp) along axis into y (ys, yz),
 * requantized where the parameters differ, standing for node n and extra (QLinearConcat, or the QDQ form's). */
si_result cpu_qlinear_concat_emit(cpu_pb *b, int n, int64_t axis, int nx, const int *x, const float *xsc, const int32_t *xzp, int y, float ys,
                                  int32_t yz, const int *extra, int n_extra);
/* cpu_qlinear.c: value y = table[x] element by element (uint8 / int8, one shape), standing for node n and extra. */
si_result cpu_qlinear_unary_emit(cpu_pb *b, int n, int x, int y, const uint8_t *table, const int *extra, int n_extra);
si_result cpu_lower_qdq_add(cpu_pb *b, int n); /* cpu_quant_qdq.c: DequantizeLinear x 2 -> Add / Mul [-> Relu] -> QuantizeLinear */
bool cpu_qdq_pool_match(const cpu_pb *b, int n, int *xin, int *yout, int *q); /* DQ -> MaxPool -> Q, same parameters */
si_result cpu_qdq_fallback(cpu_pb *b, int n, si_result s); /* s declined: emit the skipped DequantizeLinears n reads */
si_result cpu_lower_rnn(cpu_pb *b, int n);
/* Own kernels (one file each): SI_OK when lowered, SI_ERR_UNSUPPORTED when another path must run the node. */
si_result cpu_lower_convtranspose(cpu_pb *b, int n); /* cpu_deconv.c */
si_result cpu_lower_resize(cpu_pb *b, int n);        /* cpu_resize.c: Resize, Upsample */
si_result cpu_lower_cast(cpu_pb *b, int n);          /* cpu_fp16.c: float16 <-> float32 */
si_result cpu_lower_einsum(cpu_pb *b, int n);        /* cpu_einsum.c: two-input Einsum that is a batched matrix product */
si_result cpu_lower_qdq(cpu_pb *b, int n);           /* cpu_qdq.c: QuantizeLinear, DequantizeLinear (8-bit, int32) */
si_result cpu_lower_depth_to_space(cpu_pb *b, int n); /* cpu_data.c: DepthToSpace, SpaceToDepth */
si_result cpu_lower_pad(cpu_pb *b, int n);           /* cpu_data.c: Pad, float32 */
si_result cpu_lower_split(cpu_pb *b, int n);         /* cpu_data.c: Split as reorders from sub-memory views */
si_result cpu_lower_slice(cpu_pb *b, int n);         /* cpu_data.c: Slice with steps of 1, likewise */
si_result cpu_lower_groupnorm(cpu_pb *b, int n);     /* cpu_norm.c: GroupNormalization, InstanceNormalization */
/* cpu_norm.c: Reshape(x, [N, G, -1]) -> InstanceNormalization -> Reshape back, found at its first Reshape n */
si_result cpu_lower_groupnorm_pattern(cpu_pb *b, int n);
/* Softmax / LogSoftmax of node n over axis ax of dims (plain) where oneDNN has only its reference kernel. */
si_result cpu_lower_softmax_axis(cpu_pb *b, int n, int ndims, const int64_t *dims, int ax, bool is_log);
/* Softmax / LogSoftmax over the innermost of dims (plain float32) with the own AVX-512 kernel; UNSUPPORTED without
 * AVX-512 or with SI_CPU_NO_OWN. */
si_result cpu_lower_softmax_rows(cpu_pb *b, int n, int ndims, const int64_t *dims, bool is_log);

/* float16 and bfloat16 models (cpu_fp16.c): rewrite the plan's graph to float32 (*round16: per value, held in the
 * half type *half by the model; NULL when the graph has no half value, has both types, or an op the rewrite does
 * not know), and after each lowering round what the new steps wrote to the half type where round16 says so. */
si_result cpu_fp16_rewrite(si_graph *g, cpu_store *store, bool **round16, si_dtype *half); /* half constants converted once per store */
si_result cpu_fp16_round_after(cpu_pb *b);
/* On a CPU without exact int8 products (si_cpu_int8_exact): QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger
 * (and the QDQ form's products) whose weights oneDNN's int8 kernels would get wrong there, rewritten into float ops
 * on their integers, exact (cpu_int8f.c); *nofold as in cpu_pb, or NULL when nothing was. */
si_result cpu_int8_rewrite(si_graph *g, bool **nofold);

/* Attribute helpers shared by the lowering code. */
const si_tensor *cpu_const_input(const si_graph *g, const si_node *n, int k);
bool cpu_input_f32_static(const si_graph *g, const si_node *n, int k);
/* The inputs and output an own kernel (ConvTranspose, Resize) needs: input 0 and output 0 float32 with static
 * non-empty shapes (*X, *Y), and own kernels not turned off (SI_CPU_NO_OWN). */
bool cpu_own_f32_io(const si_graph *g, const si_node *n, const si_val **X, const si_val **Y);
/* An INTS attribute of `count` values each at least lo into out; dflt everywhere when it is absent. False: another
 * count, or a value below lo. */
bool cpu_attr_ints(const si_node *n, const char *name, int count, int64_t dflt, int64_t lo, int64_t *out);

/* For tests and reports: the steps of a CPU compiled model's plan for its compile-time shapes, separated by
 * ';', each with its kernel in brackets ("Conv+BatchNormalization+Relu [brgconv:avx512_core];reorder [jit:uni];ref:Gather
 * [reference]"). Returns the number of steps that run reference
 * kernels, or -1 when m is not a CPU model or has no such plan (dynamic input shapes). */
int si_cpu_plan_describe(const si_cmodel *m, char *buf, size_t n);
/* si_cpu_plan_stats: cpu_stats.h */


// --- profiles (cpu_profile.c) -------------------------------------------------------------------------------

/* Add the per-step times and calls of a request bound to plan p to sink ("CPU" rows keyed by the step
 * records) and zero them. */
void cpu_profile_flush(const cpu_plan *p, double *ms, int64_t *calls, si_prof *sink);
/* Debugging aid: SI_CPU_NO_OWN set in the environment keeps the own kernels (ConvTranspose, Resize, Cast, the
 * float16 rewrite) out of plans, for A/B comparisons with the paths they replace. */
bool cpu_no_own(void);

#endif
