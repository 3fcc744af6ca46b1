/*
 * ocl.c — the OCL device: OpenCL 1.2 through the ICD loader (PoCL on machines without a GPU).
 *
 * Discovery: the first si_device_ocl_get lists every platform's devices, GPUs first, then the others,
 * and makes one process-wide si_device per device ("OCL", "OCL.1", ...); a device's context is created
 * by its first compile.
 *
 * Compile: every node is planned by ocl_ops.c into kernel launches ("steps") whose arguments name graph
 * values; views (Reshape, Flatten, Squeeze, Identity, ...) share their input's buffer. Values then get
 * storage: graph inputs have their own per-request buffer, constants are uploaded once and shared by all
 * requests, and intermediates are packed into a few per-request buffers by liveness (a buffer is reused
 * once the last node that reads its value has run). The kernels are built (clBuildProgram) here, so a
 * driver's compiler error is a compile failure; the built program is kept and shared by later compiles with
 * the same device and build options (see "Programs").
 *
 * Requests: each owns a command queue, its buffers and one kernel object per step with the arguments set
 * once, so requests are independent and may run on different threads at the same time. Inference
 * uploads the inputs, enqueues the steps, downloads the outputs and waits; host<->device copies happen
 * only at the model's inputs and outputs.
 *
 * PoCL: on PoCL's CPU devices the first inference of each compiled model runs alone (no other inference of
 * any OCL model in flight); later ones run side by side. This works around a PoCL bug that aborted the
 * process; see "PoCL's kernel cache" below.
 */
#include "device/ocl/ocl.h"
#include "ops/ops.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

#define OCL_MAX_DEVICES 64
#define OCL_MAX_PLATFORMS 16

// --- errors -------------------------------------------------------------------------------------------------

const char *ocl_cl_err_name(cl_int e) {
    switch (e) {
#define N(x) case x: return #x;
    N(CL_DEVICE_NOT_FOUND) N(CL_DEVICE_NOT_AVAILABLE) N(CL_COMPILER_NOT_AVAILABLE)
    N(CL_MEM_OBJECT_ALLOCATION_FAILURE) N(CL_OUT_OF_RESOURCES) N(CL_OUT_OF_HOST_MEMORY)
    N(CL_BUILD_PROGRAM_FAILURE) N(CL_INVALID_VALUE) N(CL_INVALID_DEVICE) N(CL_INVALID_CONTEXT)
    N(CL_INVALID_COMMAND_QUEUE) N(CL_INVALID_MEM_OBJECT) N(CL_INVALID_BUFFER_SIZE) N(CL_INVALID_PROGRAM)
    N(CL_INVALID_PROGRAM_EXECUTABLE) N(CL_INVALID_KERNEL_NAME) N(CL_INVALID_KERNEL) N(CL_INVALID_ARG_INDEX)
    N(CL_INVALID_ARG_VALUE) N(CL_INVALID_ARG_SIZE) N(CL_INVALID_KERNEL_ARGS) N(CL_INVALID_WORK_DIMENSION)
    N(CL_INVALID_WORK_GROUP_SIZE) N(CL_INVALID_WORK_ITEM_SIZE) N(CL_INVALID_GLOBAL_WORK_SIZE)
    N(CL_INVALID_OPERATION) N(CL_INVALID_BUILD_OPTIONS) N(CL_INVALID_PLATFORM)
    N(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) N(CL_MISALIGNED_SUB_BUFFER_OFFSET)
#undef N
    case CL_PLATFORM_NOT_FOUND_KHR: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "unknown OpenCL error";
    }
}

si_result ocl_cl_err(cl_int e, const char *what) {
    switch (e) {
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
    case CL_INVALID_BUFFER_SIZE:
        return si_err(SI_ERR_DEVICE, "%s: out of device memory (%s%s)", what, ocl_cl_err_name(e),
                      e == CL_OUT_OF_RESOURCES ? "; some drivers also report a failed or lost device this way" : "");
    case CL_OUT_OF_HOST_MEMORY:
        return si_err(SI_ERR_DEVICE, "%s: the OpenCL driver ran out of host memory (CL_OUT_OF_HOST_MEMORY)", what);
    case CL_DEVICE_NOT_AVAILABLE:
        return si_err(SI_ERR_DEVICE, "%s: the device is not available (CL_DEVICE_NOT_AVAILABLE)", what);
    default:
        return si_err(SI_ERR_DEVICE, "%s failed: %s (%d)", what, ocl_cl_err_name(e), (int)e);
    }
}

si_result ocl_err(const ocl_plan *p, si_result s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    si_result r = si_node_verr(p->node, s, fmt, ap);
    va_end(ap);
    return r;
}

// --- devices ------------------------------------------------------------------------------------------------

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

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static ocl_dev g_devs[OCL_MAX_DEVICES];
static int g_n_devs;
static char g_enum_msg[512]; /* why there is no device, when g_n_devs == 0 */

static const si_device_i ocl_iface;

static void dev_info_str(cl_device_id id, cl_device_info what, char *buf, size_t n) {
    buf[0] = 0;
    if (clGetDeviceInfo(id, what, n, buf, NULL) != CL_SUCCESS) buf[0] = 0;
    buf[n - 1] = 0;
}

static void add_device(cl_platform_id plat, cl_device_id id, cl_device_type type) {
    if (g_n_devs >= OCL_MAX_DEVICES) return;
    int idx = g_n_devs++;
    ocl_dev *d = &g_devs[idx];
    memset(d, 0, sizeof *d);
    d->id = id;
    d->type = type;
    if (idx == 0) snprintf(d->name, sizeof d->name, "OCL");
    else snprintf(d->name, sizeof d->name, "OCL.%d", idx);
    char dn[96], pn[80];
    dev_info_str(id, CL_DEVICE_NAME, dn, sizeof dn);
    pn[0] = 0;
    if (clGetPlatformInfo(plat, CL_PLATFORM_NAME, sizeof pn, pn, NULL) != CL_SUCCESS) pn[0] = 0;
    pn[sizeof pn - 1] = 0;
    snprintf(d->desc, sizeof d->desc, "%s (%s)", dn, pn);
    d->pocl = strstr(pn, "Portable Computing Language") != NULL;
    size_t max_wg = 1;
    size_t items[3] = {1, 1, 1};
    cl_ulong max_alloc = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL) != CL_SUCCESS) max_wg = 1;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof items, items, NULL) != CL_SUCCESS) items[0] = items[1] = 1;
    if (clGetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL) != CL_SUCCESS) max_alloc = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_COMPILER_AVAILABLE, sizeof d->compiler, &d->compiler, NULL) != CL_SUCCESS) d->compiler = CL_FALSE;
    char cv[64];
    int major = 0, minor = 0;
    dev_info_str(id, CL_DEVICE_OPENCL_C_VERSION, cv, sizeof cv); /* "OpenCL C 1.2 ..." */
    if (sscanf(cv, "OpenCL C %d.%d", &major, &minor) == 2) d->c_version = major * 100 + minor * 10;
    int ts = 16;
    while (ts > 1 && ((size_t)ts * (size_t)ts > max_wg || (size_t)ts > items[0] || (size_t)ts > items[1])) ts /= 2;
    int wg = 64;
    while (wg > 1 && ((size_t)wg > max_wg || (size_t)wg > items[0])) wg /= 2;
    d->caps.ts = ts;
    d->caps.wg = wg;
    d->caps.elem_wg = (size_t)wg;
    d->caps.max_alloc = max_alloc ? max_alloc : ((cl_ulong)1 << 30);
    d->caps.im2col_max = (size_t)128 << 20;
    d->caps.cpu = (type & CL_DEVICE_TYPE_CPU) != 0;
    snprintf(d->build_opts, sizeof d->build_opts, "-cl-std=CL1.2 -DSI_TS=%d -DSI_WG=%d", ts, wg);
    d->base.iface = &ocl_iface;
    d->base.name = d->name;
    d->base.ctx = d;
}

/* List GPUs of every platform first, then every other device. Runs once. */
static void enumerate(void) {
    cl_uint np = 0;
    cl_int e = clGetPlatformIDs(0, NULL, &np);
    if (e == CL_PLATFORM_NOT_FOUND_KHR || (e == CL_SUCCESS && np == 0)) {
        snprintf(g_enum_msg, sizeof g_enum_msg, "no OpenCL platform is installed (the ICD loader lists none)");
        return;
    }
    if (e != CL_SUCCESS) {
        snprintf(g_enum_msg, sizeof g_enum_msg, "listing OpenCL platforms failed: %s (%d)", ocl_cl_err_name(e), (int)e);
        return;
    }
    cl_platform_id plats[OCL_MAX_PLATFORMS];
    if (np > OCL_MAX_PLATFORMS) np = OCL_MAX_PLATFORMS;
    if ((e = clGetPlatformIDs(np, plats, NULL)) != CL_SUCCESS) {
        snprintf(g_enum_msg, sizeof g_enum_msg, "listing OpenCL platforms failed: %s (%d)", ocl_cl_err_name(e), (int)e);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (cl_uint p = 0; p < np; p++) {
            cl_device_id ids[OCL_MAX_DEVICES];
            cl_uint nd = 0;
            if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, OCL_MAX_DEVICES, ids, &nd) != CL_SUCCESS) continue;
            if (nd > OCL_MAX_DEVICES) nd = OCL_MAX_DEVICES;
            for (cl_uint k = 0; k < nd; k++) {
                cl_device_type t = 0;
                if (clGetDeviceInfo(ids[k], CL_DEVICE_TYPE, sizeof t, &t, NULL) != CL_SUCCESS) continue;
                bool gpu = (t & CL_DEVICE_TYPE_GPU) != 0;
                if (gpu == (pass == 0)) add_device(plats[p], ids[k], t);
            }
        }
    }
    if (!g_n_devs) snprintf(g_enum_msg, sizeof g_enum_msg, "the %u OpenCL platform%s list%s no device", np, np == 1 ? "" : "s", np == 1 ? "s" : "");
}

si_result si_device_ocl_get(int index, si_device **out) {
    *out = NULL;
    pthread_once(&g_once, enumerate);
    if (!g_n_devs) return si_err(SI_ERR_UNSUPPORTED, "OCL: %s", g_enum_msg);
    if (index < 0 || index >= g_n_devs) {
        char list[512];
        size_t o = 0;
        list[0] = 0;
        for (int i = 0; i < g_n_devs && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s = %s", i ? ", " : "", g_devs[i].name, g_devs[i].desc);
        return si_err(SI_ERR_UNSUPPORTED, "OCL: there is no OpenCL device %d (%d found: %s)", index, g_n_devs, list);
    }
    *out = &g_devs[index].base;
    return SI_OK;
}

bool si_device_ocl_is_gpu_or_accelerator(const si_device *d) {
    const ocl_dev *od = d && d->iface == &ocl_iface ? d->ctx : NULL;
    return od && (od->type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
}

static si_result dev_context(ocl_dev *d, cl_context *out) {
    pthread_mutex_lock(&g_lock);
    si_result s = SI_OK;
    if (!d->ctx) {
        cl_bool avail = CL_TRUE;
        cl_int e = clGetDeviceInfo(d->id, CL_DEVICE_AVAILABLE, sizeof avail, &avail, NULL);
        if (e == CL_SUCCESS && !avail) e = CL_DEVICE_NOT_AVAILABLE;
        if (e == CL_SUCCESS) d->ctx = clCreateContext(NULL, 1, &d->id, NULL, NULL, &e);
        if (e != CL_SUCCESS) {
            d->ctx = NULL;
            char what[256];
            snprintf(what, sizeof what, "creating a context on %s", d->desc);
            s = ocl_cl_err(e, what);
        }
    }
    *out = d->ctx;
    pthread_mutex_unlock(&g_lock);
    return s;
}

// --- PoCL's kernel cache ---------------------------------------------------------------------------------------
/*
 * PoCL's CPU devices keep one process-wide cache of loaded kernel binaries, an entry per kernel (program
 * source, build options, device, kernel name), local size and widest grid. A launch takes a reference on the
 * first entry that fits it, or makes a new one when its grid is wider than every entry's; its release looks
 * the entry up again by kernel and local size only and takes the most recently used one, which need not be
 * the entry the launch took. While launches of the same kernel and local size run at once from several queues,
 * a launch with a wider grid than any before makes a new entry; the launches already running then release it
 * instead of their own, its count drops to zero while it is in use, and PoCL aborts the whole process
 * ("pocl_release_dlhandle_cache: Assertion `found->ref_count > 0' failed", PoCL 3.1; a standalone OpenCL
 * program with one kernel object and one queue per thread aborts the same way). It is not about shared
 * objects: every request has its own queue and kernel objects (clSetKernelArg on them is per request).
 *
 * New entries are made only by launches of a kernel, local size and grid that the process has not run before,
 * and the launches of a compiled model are the same in every inference. So the first inference of each
 * compiled model runs alone (it waits until no OCL inference is in flight, and none starts meanwhile), and
 * every later one finds its entries made and runs side by side with the others. Entries stay: PoCL frees only
 * entries with no references and only beyond 128 entries, and the entry a launch used keeps a reference after
 * it (3.1 takes two per launch and gives one back). The gate is process-wide because the cache is.
 */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int shared;        /* inferences in flight side by side */
    bool alone;        /* an inference that must run alone is in flight */
    int waiting_alone; /* inferences waiting to run alone: new side-by-side ones wait behind them */
} g_gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false, 0};

/* Enter before the first upload of an inference of a model whose flag is *warm; true: it runs alone. An
 * inference that waits to run alone runs side by side instead when the model got warm meanwhile (another
 * request of it ran first), so that the requests of a new model wait for one inference, not one each. */
static bool gate_enter(const atomic_bool *warm) {
    pthread_mutex_lock(&g_gate.mu);
    bool alone = !atomic_load(warm);
    if (alone) {
        g_gate.waiting_alone++;
        while ((g_gate.alone || g_gate.shared) && !atomic_load(warm)) pthread_cond_wait(&g_gate.cv, &g_gate.mu);
        g_gate.waiting_alone--;
        alone = !atomic_load(warm);
        g_gate.alone = alone;
        if (!alone) pthread_cond_broadcast(&g_gate.cv); /* side-by-side ones may wait for waiting_alone to drop */
    }
    if (!alone) {
        while (g_gate.alone || g_gate.waiting_alone) pthread_cond_wait(&g_gate.cv, &g_gate.mu);
        g_gate.shared++;
    }
    pthread_mutex_unlock(&g_gate.mu);
    return alone;
}

/* Leave; `ran` (for an inference that ran alone): every step ran, so the model is warm from now on. */
static void gate_leave(bool alone, atomic_bool *warm, bool ran) {
    pthread_mutex_lock(&g_gate.mu);
    if (alone) {
        g_gate.alone = false;
        if (ran) atomic_store(warm, true);
    } else {
        g_gate.shared--;
    }
    pthread_cond_broadcast(&g_gate.cv);
    pthread_mutex_unlock(&g_gate.mu);
}

// --- the compiled model -------------------------------------------------------------------------------------

typedef enum { ST_NONE, ST_INPUT, ST_CONST, ST_TEMP } store_kind;

typedef struct ocl_icheck {
    int vid, node;   /* the index value and the node reading it */
    int64_t limit;   /* valid indices: [-limit, limit) */
} ocl_icheck;

struct ocl_build {
    si_cmodel base;
    ocl_dev *dev;
    ocl_caps caps;         /* the device's, with compile options applied */
    cl_context ctx;
    si_graph *g;           /* private copy; shapes completed by the planners */
    ocl_step *steps;
    int n_steps, cap_steps;
    int **meta_vals;       /* compile-time int arrays (freed once uploaded) */
    int *meta_n;
    int n_meta, cap_meta;
    cl_mem *metas;         /* uploaded meta arrays */
    int *alias_of;         /* per value: the value whose buffer it shares, or -1 */
    int *def_t;            /* per value: the node time that produced it, -1 for none */
    int *node_t;           /* per graph node: its position among the nodes that run, -1 for folded ones */
    int cur_t;             /* node time being planned */
    size_t scratch;        /* bytes of the per-request scratch buffer */
    cl_program prog;
    /* storage, per root value (alias_of == -1) */
    store_kind *kind;
    int *slot;             /* ST_TEMP: slot index; ST_INPUT: input port */
    cl_mem *cbuf;          /* ST_CONST: uploaded constant (NULL when no step reads it) */
    size_t *slot_bytes;
    int n_slots;
    si_port *in_ports, *out_ports;
    ocl_icheck *ichecks;   /* index inputs checked on the host before each inference */
    int n_ichecks;
    atomic_bool warm;      /* PoCL: every step has run once (see "PoCL's kernel cache") */
};

typedef ocl_build ocl_mdl;

static int root_of(const ocl_mdl *m, int v) {
    for (int guard = 0; v >= 0 && m->alias_of[v] >= 0 && guard < 1 << 20; guard++) v = m->alias_of[v];
    return v;
}

si_result ocl_emit(ocl_plan *p, const ocl_step *st) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    if (st->n_args > OCL_MAX_ARGS) return si_err(SI_ERR_INTERNAL, "too many kernel arguments");
    if (m->n_steps == m->cap_steps) {
        int cap = m->cap_steps ? m->cap_steps * 2 : 64;
        ocl_step *ns = si_realloc(m->steps, sizeof *ns * (size_t)cap);
        if (!ns) return si_err(SI_ERR_NO_MEM, "out of memory");
        m->steps = ns;
        m->cap_steps = cap;
    }
    ocl_step *d = &m->steps[m->n_steps++];
    *d = *st;
    d->node = p->node_index;
    return SI_OK;
}

si_result ocl_meta(ocl_plan *p, const int *vals, int n, int *id) {
    ocl_mdl *m = p->build;
    *id = 0;
    if (!m) return SI_OK;
    if (m->n_meta == m->cap_meta) {
        int cap = m->cap_meta ? m->cap_meta * 2 : 64;
        int **nv = si_realloc(m->meta_vals, sizeof *nv * (size_t)cap);
        if (nv) m->meta_vals = nv;
        int *nn = si_realloc(m->meta_n, sizeof *nn * (size_t)cap);
        if (nn) m->meta_n = nn;
        if (!nv || !nn) return si_err(SI_ERR_NO_MEM, "out of memory");
        m->cap_meta = cap;
    }
    int *c = si_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!c) return si_err(SI_ERR_NO_MEM, "out of memory");
    if (n > 0) memcpy(c, vals, sizeof(int) * (size_t)n);
    else c[0] = 0;
    m->meta_vals[m->n_meta] = c;
    m->meta_n[m->n_meta] = n > 0 ? n : 1;
    *id = m->n_meta++;
    return SI_OK;
}

si_result ocl_alias(ocl_plan *p, int out_k, int in_j) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    int vo = p->out[out_k].vid, vi = p->in[in_j].vid;
    if (vo < 0 || vi < 0) return SI_OK;
    m->alias_of[vo] = vi;
    return SI_OK;
}

si_result ocl_const_out(ocl_plan *p, int k, const int64_t *vals, int n) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    int v = p->out[k].vid;
    si_val *val = &m->g->values[v];
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_result s = si_tensor_init(t, SI_I64, p->out[k].ndim, p->out[k].dims);
    if (!s) s = si_tensor_alloc(t);
    if (s) {
        si_free(t);
        return s;
    }
    if (n > 0) memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    si_const_unref(val->const_val);
    val->const_val = t;
    return SI_OK;
}

si_result ocl_index_check(ocl_plan *p, int k, int64_t limit) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    ocl_icheck *n = si_realloc(m->ichecks, sizeof *n * (size_t)(m->n_ichecks + 1));
    if (!n) return si_err(SI_ERR_NO_MEM, "out of memory");
    m->ichecks = n;
    n[m->n_ichecks].vid = p->in[k].vid;
    n[m->n_ichecks].node = p->node_index;
    n[m->n_ichecks].limit = limit;
    m->n_ichecks++;
    return SI_OK;
}

void ocl_scratch(ocl_plan *p, size_t bytes) {
    if (p->build && bytes > p->build->scratch) p->build->scratch = bytes;
}

static void model_free(si_cmodel *m_) {
    ocl_mdl *m = (ocl_mdl *)m_;
    if (!m) return;
    if (m->metas)
        for (int i = 0; i < m->n_meta; i++)
            if (m->metas[i]) clReleaseMemObject(m->metas[i]);
    if (m->meta_vals)
        for (int i = 0; i < m->n_meta; i++) si_free(m->meta_vals[i]);
    if (m->cbuf && m->g)
        for (int v = 0; v < m->g->n_values; v++)
            if (m->cbuf[v]) clReleaseMemObject(m->cbuf[v]);
    if (m->prog) clReleaseProgram(m->prog);
    si_free(m->metas);
    si_free(m->meta_vals);
    si_free(m->meta_n);
    si_free(m->steps);
    si_free(m->alias_of);
    si_free(m->def_t);
    si_free(m->node_t);
    si_free(m->kind);
    si_free(m->slot);
    si_free(m->cbuf);
    si_free(m->slot_bytes);
    si_free(m->in_ports);
    si_free(m->out_ports);
    si_free(m->ichecks);
    si_graph_free(m->g);
    si_free(m);
}

static size_t value_bytes(const si_val *v) {
    if (v->ndim < 0) return 0;
    return (size_t)si_shape_count(v->ndim, v->dims) * si_dtype_size(v->dtype);
}

static bool shape_known(const si_val *v) {
    if (v->dtype == SI_DTYPE_UNDEFINED || v->ndim < 0) return false;
    for (int i = 0; i < v->ndim; i++)
        if (v->dims[i] < 0) return false;
    return true;
}

/* Fill the planner's view of node n from graph g. */
static void plan_init(ocl_plan *p, const si_graph *g, const si_node *n, int node_index, const ocl_caps *caps, ocl_mdl *build) {
    memset(p, 0, sizeof *p);
    p->node = n;
    p->node_index = node_index;
    p->caps = caps;
    p->build = build;
    p->n_in = n->n_in;
    p->n_out = n->n_out;
    for (int k = 0; k < n->n_in; k++) {
        ocl_desc *d = &p->in[k];
        d->vid = n->in[k];
        d->ndim = -1;
        if (d->vid < 0) continue;
        const si_val *v = &g->values[d->vid];
        d->dtype = v->dtype;
        d->cval = v->const_val;
        if (v->const_val) {
            d->dtype = v->const_val->dtype;
            d->ndim = v->const_val->ndim;
            memcpy(d->dims, v->const_val->dims, sizeof d->dims);
        } else if (shape_known(v)) {
            d->ndim = v->ndim;
            memcpy(d->dims, v->dims, sizeof d->dims);
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        p->out[k].vid = n->out[k];
        p->out[k].ndim = -1;
    }
}

static bool node_folded(const si_graph *g, const si_node *n) {
    if (n->n_out == 0) return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && !g->values[n->out[k]].const_val) return false;
    return true;
}

static si_result ocl_supports_op(const si_device *d_, const si_graph *g, const si_node *n) {
    const ocl_dev *d = d_->ctx;
    if (node_folded(g, n)) return SI_OK; /* computed at compile time: nothing runs */
    if (n->n_in > OCL_MAX_IO || n->n_out > OCL_MAX_IO)
        return si_err(SI_ERR_UNSUPPORTED, "node '%s' has more than %d inputs or outputs", n->name, OCL_MAX_IO);
    ocl_plan p;
    plan_init(&p, g, n, -1, &d->caps, NULL);
    return ocl_plan_node(&p);
}

/* The build log's first lines, on one line. */
static void build_log(cl_program prog, cl_device_id dev, char *out, size_t n) {
    out[0] = 0;
    size_t len = 0;
    if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) != CL_SUCCESS || len == 0) return;
    char *log = si_malloc(len + 1);
    if (!log) return;
    if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, len, log, NULL) != CL_SUCCESS) {
        si_free(log);
        return;
    }
    log[len] = 0;
    size_t o = 0;
    int lines = 0;
    for (const char *s = log; *s && lines < 6 && o + 4 < n; s++) {
        if (*s == '\n') {
            lines++;
            if (o && out[o - 1] != ' ') { out[o++] = ' '; out[o++] = '|'; out[o++] = ' '; }
            continue;
        }
        out[o++] = *s == '\t' ? ' ' : *s;
    }
    out[o] = 0;
    si_free(log);
}

/*
 * Programs: one built program per device and build options, kept for the life of the process (like the
 * context) and shared by every compiled model built with them; each request creates its own kernel objects
 * from it (clCreateKernel is thread-safe; only clSetKernelArg on one kernel object is not). Building and
 * releasing a program per compile made PoCL 3.1 keep ~5 KiB per build for good (tests/pocl/program_rss.c
 * shows it with plain OpenCL), so a fail-back loop that recompiles OCL again and again grew without bound.
 * At most OCL_MAX_PROGRAMS are kept; beyond that (many distinct "ocl.build_options") a compiled model builds
 * its own and releases it when freed.
 */
#define OCL_MAX_PROGRAMS 8
static struct {
    const ocl_dev *dev;
    char opts[512];
    cl_program prog; /* the cache's reference */
} g_progs[OCL_MAX_PROGRAMS];
static int g_n_progs;
static pthread_mutex_t g_prog_lock = PTHREAD_MUTEX_INITIALIZER; /* held while building: one build per key */

static si_result build_program(ocl_mdl *m, const si_options *opts) {
    ocl_dev *d = m->dev;
    if (!d->compiler)
        return si_err(SI_ERR_UNSUPPORTED, "%s has no OpenCL C compiler (CL_DEVICE_COMPILER_AVAILABLE is false)", d->desc);
    if (d->c_version < 120)
        return si_err(SI_ERR_UNSUPPORTED, "%s compiles OpenCL C %d.%d; the kernels need OpenCL C 1.2", d->desc, d->c_version / 100,
                      d->c_version / 10 % 10);
    char bopts[512];
    const char *extra = si_options_get(opts, "ocl.build_options");
    if ((size_t)snprintf(bopts, sizeof bopts, "%s%s%s", d->build_opts, extra ? " " : "", extra ? extra : "") >= sizeof bopts)
        return si_err(SI_ERR_INVALID_ARG, "ocl.build_options is too long (%zu characters; at most %zu)", extra ? strlen(extra) : 0,
                      sizeof bopts - 2 - strlen(d->build_opts));
    pthread_mutex_lock(&g_prog_lock);
    for (int i = 0; i < g_n_progs; i++)
        if (g_progs[i].dev == d && !strcmp(g_progs[i].opts, bopts)) {
            cl_int e = clRetainProgram(g_progs[i].prog);
            if (e == CL_SUCCESS) m->prog = g_progs[i].prog;
            pthread_mutex_unlock(&g_prog_lock);
            return e == CL_SUCCESS ? SI_OK : ocl_cl_err(e, "retaining the kernel program");
        }
    si_result s = SI_OK;
    cl_int e;
    m->prog = clCreateProgramWithSource(m->ctx, (cl_uint)si_ocl_kernel_n_lines, (const char **)si_ocl_kernel_lines, NULL, &e);
    if (e != CL_SUCCESS) {
        m->prog = NULL;
        s = ocl_cl_err(e, "creating the kernel program");
    } else if ((e = clBuildProgram(m->prog, 1, &d->id, bopts, NULL, NULL)) != CL_SUCCESS) {
        char log[1024];
        build_log(m->prog, d->id, log, sizeof log);
        if (e == CL_BUILD_PROGRAM_FAILURE || e == CL_INVALID_BUILD_OPTIONS || e == CL_COMPILER_NOT_AVAILABLE)
            s = si_err(SI_ERR_DEVICE, "building the kernels for %s failed (%s): %s", d->desc, ocl_cl_err_name(e),
                       log[0] ? log : "(empty build log)");
        else
            s = ocl_cl_err(e, "building the kernels");
    } else if (g_n_progs < OCL_MAX_PROGRAMS && clRetainProgram(m->prog) == CL_SUCCESS) {
        g_progs[g_n_progs].dev = d;
        snprintf(g_progs[g_n_progs].opts, sizeof g_progs[g_n_progs].opts, "%s", bopts);
        g_progs[g_n_progs].prog = m->prog;
        g_n_progs++;
    }
    pthread_mutex_unlock(&g_prog_lock);
    return s;
}

/* A device buffer of `bytes` (4 when 0) made with `flags` (from data when given); DEVICE naming `what` when it is
 * over the device's largest allocation or the device refuses it. */
static si_result make_buffer(ocl_mdl *m, cl_mem_flags flags, const void *data, size_t bytes, cl_mem *out, const char *what) {
    cl_int e;
    if ((cl_ulong)bytes > m->caps.max_alloc)
        return si_err(SI_ERR_DEVICE, "%s: %zu bytes exceed the device's largest allocation (%llu bytes): out of device memory",
                      what, bytes, (unsigned long long)m->caps.max_alloc);
    *out = clCreateBuffer(m->ctx, flags, bytes ? bytes : 4, (void *)data, &e);
    if (e != CL_SUCCESS) {
        *out = NULL;
        return ocl_cl_err(e, what);
    }
    return SI_OK;
}

/* A read-only buffer holding a copy of data. */
static si_result upload(ocl_mdl *m, const void *data, size_t bytes, cl_mem *out, const char *what) {
    return make_buffer(m, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, data, bytes, out, what);
}

/* Plan every node (in order), recording output shapes in the model's graph. */
static si_result plan_nodes(ocl_mdl *m) {
    si_graph *g = m->g;
    m->cur_t = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        si_node *n = &g->nodes[i];
        if (node_folded(g, n)) continue;
        if (n->n_in > OCL_MAX_IO || n->n_out > OCL_MAX_IO)
            return si_err(SI_ERR_UNSUPPORTED, "node '%s' has more than %d inputs or outputs", n->name, OCL_MAX_IO);
        ocl_plan p;
        plan_init(&p, g, n, i, &m->caps, m);
        m->node_t[i] = m->cur_t;
        si_result s = ocl_plan_node(&p);
        if (s) return s;
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            si_val *val = &g->values[v];
            const ocl_desc *o = &p.out[k];
            if (shape_known(val)) {
                bool same = val->ndim == o->ndim && val->dtype == o->dtype;
                for (int j = 0; same && j < o->ndim; j++) same = val->dims[j] == o->dims[j];
                if (!same) {
                    char a[160], b[160];
                    return si_err(SI_ERR_INTERNAL, "%s (node '%s'): output %d has shape %s, but shape inference says %s",
                                  n->op_type, n->name, k, si_shape_str(a, sizeof a, o->dtype, o->ndim, o->dims),
                                  si_shape_str(b, sizeof b, val->dtype, val->ndim, val->dims));
                }
            }
            val->dtype = o->dtype;
            val->ndim = o->ndim;
            memcpy(val->dims, o->dims, sizeof val->dims);
            m->def_t[v] = m->cur_t;
        }
        m->cur_t++;
    }
    return SI_OK;
}

/* Give every root value a storage and pack intermediates into slots by liveness. */
static si_result plan_storage(ocl_mdl *m) {
    si_graph *g = m->g;
    int nv = g->n_values, T = m->cur_t;
    int *first = si_malloc(sizeof(int) * (size_t)(nv + 1));
    int *last = si_malloc(sizeof(int) * (size_t)(nv + 1));
    int *slot_free_at = NULL; /* per slot: 1 when free */
    si_result s = SI_OK;
    if (!first || !last) { s = si_err(SI_ERR_NO_MEM, "out of memory"); goto out; }
    for (int v = 0; v < nv; v++) {
        first[v] = -1;
        last[v] = -1;
        m->slot[v] = -1;
        m->kind[v] = ST_NONE;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        m->kind[g->inputs[i]] = ST_INPUT;
        m->slot[g->inputs[i]] = i;
    }
    for (int v = 0; v < nv; v++) {
        if (m->alias_of[v] >= 0) continue;
        if (g->values[v].const_val) m->kind[v] = ST_CONST;
        else if (m->def_t[v] >= 0 && m->kind[v] == ST_NONE) {
            m->kind[v] = ST_TEMP;
            first[v] = last[v] = m->def_t[v];
        }
    }
    /* a value (through any of its views) lives until the last node whose steps read or write it */
    for (int i = 0; i < m->n_steps; i++) {
        const ocl_step *st = &m->steps[i];
        int t = m->node_t[st->node];
        for (int a = 0; a < st->n_args; a++) {
            if (st->args[a].kind != OA_VAL) continue;
            int r = root_of(m, st->args[a].i);
            if (r >= 0 && m->kind[r] == ST_TEMP && last[r] < t) last[r] = t;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int r = root_of(m, g->outputs[i]);
        if (r >= 0 && m->kind[r] == ST_TEMP) last[r] = T + 1;
    }
    /* greedy: at node time t, give the values defined at t a free slot (best fit, else grow the largest
     * free one, else a new slot); then release the values last used at t */
    slot_free_at = si_calloc((size_t)nv + 1, sizeof(int));
    m->slot_bytes = si_calloc((size_t)nv + 1, sizeof(size_t));
    if (!slot_free_at || !m->slot_bytes) { s = si_err(SI_ERR_NO_MEM, "out of memory"); goto out; }
    m->n_slots = 0;
    for (int t = 0; t < T; t++) {
        for (int v = 0; v < nv; v++) {
            if (m->kind[v] != ST_TEMP || first[v] != t) continue;
            size_t need = value_bytes(&g->values[v]);
            if (need == 0) need = 4;
            int best = -1, largest = -1;
            for (int k = 0; k < m->n_slots; k++) {
                if (!slot_free_at[k]) continue;
                if (m->slot_bytes[k] >= need && (best < 0 || m->slot_bytes[k] < m->slot_bytes[best])) best = k;
                if (largest < 0 || m->slot_bytes[k] > m->slot_bytes[largest]) largest = k;
            }
            if (best < 0 && largest >= 0) {
                best = largest;
                m->slot_bytes[best] = need;
            }
            if (best < 0) {
                best = m->n_slots++;
                m->slot_bytes[best] = need;
            }
            slot_free_at[best] = 0;
            m->slot[v] = best;
        }
        for (int v = 0; v < nv; v++)
            if (m->kind[v] == ST_TEMP && last[v] == t && m->slot[v] >= 0) slot_free_at[m->slot[v]] = 1;
    }
    for (int k = 0; k < m->n_slots; k++)
        if ((cl_ulong)m->slot_bytes[k] > m->caps.max_alloc) {
            s = si_err(SI_ERR_DEVICE, "an intermediate buffer of %zu bytes exceeds the device's largest allocation (%llu bytes): out of device memory",
                       m->slot_bytes[k], (unsigned long long)m->caps.max_alloc);
            goto out;
        }
out:
    si_free(first);
    si_free(last);
    si_free(slot_free_at);
    return s;
}

static si_result upload_constants(ocl_mdl *m) {
    si_graph *g = m->g;
    m->metas = si_calloc((size_t)m->n_meta + 1, sizeof(cl_mem));
    if (!m->metas) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (int i = 0; i < m->n_meta; i++) {
        si_result s = upload(m, m->meta_vals[i], sizeof(int) * (size_t)m->meta_n[i], &m->metas[i], "uploading kernel parameters");
        if (s) return s;
        si_free(m->meta_vals[i]);
        m->meta_vals[i] = NULL;
    }
    for (int i = 0; i < m->n_steps; i++) {
        const ocl_step *st = &m->steps[i];
        for (int a = 0; a < st->n_args; a++) {
            if (st->args[a].kind != OA_VAL) continue;
            int r = root_of(m, st->args[a].i);
            if (r < 0 || m->kind[r] != ST_CONST || m->cbuf[r]) continue;
            const si_tensor *c = g->values[r].const_val;
            char what[200];
            snprintf(what, sizeof what, "uploading constant '%s'", g->values[r].name);
            si_result s = upload(m, c->data, c->nbytes, &m->cbuf[r], what);
            if (s) return s;
        }
    }
    return SI_OK;
}

// --- requests -----------------------------------------------------------------------------------------------

typedef struct ocl_req {
    si_ireq base;
    cl_command_queue q;
    cl_mem *slots;       /* per slot */
    cl_mem *inbufs;      /* per input port; NULL when no step reads it */
    cl_mem scratch;
    cl_kernel *kernels;  /* per step */
    atomic_int cancel;
} ocl_req;

static cl_mem value_buf(const ocl_req *r, const ocl_mdl *m, int v) {
    int root = root_of(m, v);
    if (root < 0) return NULL;
    switch (m->kind[root]) {
    case ST_INPUT: return r->inbufs[m->slot[root]];
    case ST_CONST: return m->cbuf[root];
    case ST_TEMP: return m->slot[root] >= 0 ? r->slots[m->slot[root]] : NULL;
    default: return NULL;
    }
}

static void req_free(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    if (!r) return;
    ocl_mdl *m = (ocl_mdl *)r->base.model;
    if (r->kernels)
        for (int i = 0; i < m->n_steps; i++)
            if (r->kernels[i]) clReleaseKernel(r->kernels[i]);
    if (r->slots)
        for (int i = 0; i < m->n_slots; i++)
            if (r->slots[i]) clReleaseMemObject(r->slots[i]);
    if (r->inbufs)
        for (int i = 0; i < m->base.n_inputs; i++)
            if (r->inbufs[i]) clReleaseMemObject(r->inbufs[i]);
    if (r->scratch) clReleaseMemObject(r->scratch);
    if (r->q) clReleaseCommandQueue(r->q);
    si_free(r->kernels);
    si_free(r->slots);
    si_free(r->inbufs);
    si_ireq_destroy(&r->base);
}

static void req_cancel(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    atomic_store(&r->cancel, 1);
}

static si_result req_infer(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    ocl_mdl *m = (ocl_mdl *)r->base.model;
    si_graph *g = m->g;
    si_result chk = si_ireq_check_inputs(&r->base);
    if (chk) return chk;
    for (int c = 0; c < m->n_ichecks; c++) { /* indices are read on the device without checks */
        const ocl_icheck *ic = &m->ichecks[c];
        int root = root_of(m, ic->vid);
        if (root < 0 || m->kind[root] != ST_INPUT) continue;
        const si_tensor *t = r->base.bound[m->slot[root]];
        int64_t n = si_shape_count(t->ndim, t->dims);
        for (int64_t i = 0; i < n; i++) {
            int64_t k = si_load_i64(t->dtype, t->data, i);
            if (k < -ic->limit || k >= ic->limit) {
                const si_node *nd = &g->nodes[ic->node];
                return si_err(SI_ERR_INVALID_ARG, "%s (node '%s'): index %lld is out of range [-%lld, %lld)", nd->op_type, nd->name,
                              (long long)k, (long long)ic->limit, (long long)ic->limit);
            }
        }
    }
    atomic_store(&r->cancel, 0);
    bool gated = m->dev->pocl, alone = gated && gate_enter(&m->warm);
    cl_int e = CL_SUCCESS;
    const char *what = "";
    char what_buf[256];
    si_result internal = SI_OK;
    for (int i = 0; i < m->base.n_inputs && e == CL_SUCCESS; i++) {
        const si_tensor *t = r->base.bound[i];
        if (!r->inbufs[i] || !t->nbytes) continue;
        e = clEnqueueWriteBuffer(r->q, r->inbufs[i], CL_FALSE, 0, t->nbytes, t->data, 0, NULL, NULL);
        what = "uploading an input";
    }
    bool aborted = false;
    for (int i = 0; i < m->n_steps && e == CL_SUCCESS; i++) {
        const ocl_step *st = &m->steps[i];
        if ((i & 15) == 15 && atomic_load(&r->cancel)) {
            aborted = true;
            break;
        }
        e = clEnqueueNDRangeKernel(r->q, r->kernels[i], st->dims, NULL, st->gws, st->lws[0] ? st->lws : NULL, 0, NULL, NULL);
        if (e != CL_SUCCESS) {
            const si_node *n = &g->nodes[st->node];
            snprintf(what_buf, sizeof what_buf, "running kernel %s of %s node '%s'", st->kernel, n->op_type, n->name);
            what = what_buf;
        }
    }
    for (int k = 0; k < m->base.n_outputs && e == CL_SUCCESS && !aborted && !internal; k++) {
        si_tensor *o = r->base.outs[k];
        int v = g->outputs[k];
        int root = root_of(m, v);
        if (!o->nbytes) continue;
        if (root >= 0 && m->kind[root] == ST_CONST) {
            memcpy(o->data, g->values[root].const_val->data, o->nbytes);
            continue;
        }
        if (root >= 0 && m->kind[root] == ST_INPUT && !r->inbufs[m->slot[root]]) {
            memcpy(o->data, r->base.bound[m->slot[root]]->data, o->nbytes);
            continue;
        }
        cl_mem b = value_buf(r, m, v);
        if (!b) {
            internal = si_err(SI_ERR_INTERNAL, "output '%s' has no buffer", m->out_ports[k].name);
            break;
        }
        e = clEnqueueReadBuffer(r->q, b, CL_FALSE, 0, o->nbytes, o->data, 0, NULL, NULL);
        what = "downloading an output";
    }
    cl_int fe = clFinish(r->q); /* always, so that nothing of this inference is still running after it */
    if (gated) gate_leave(alone, &m->warm, e == CL_SUCCESS && fe == CL_SUCCESS && !aborted && !internal);
    if (internal) return internal;
    if (e != CL_SUCCESS) return ocl_cl_err(e, what);
    if (fe != CL_SUCCESS) return ocl_cl_err(fe, "waiting for the device");
    if (aborted) return si_err(SI_ERR_ABORTED, "inference was cancelled");
    return SI_OK;
}

static const si_ireq_i req_iface = {
    .set_input = si_ireq_set_input,
    .get_output = si_ireq_get_output,
    .infer = req_infer,
    .free = req_free,
    .cancel = req_cancel,
};

/* A read-write buffer, uninitialised. */
static si_result new_buffer(ocl_mdl *m, size_t bytes, cl_mem *out, const char *what) {
    return make_buffer(m, CL_MEM_READ_WRITE, NULL, bytes, out, what);
}

static si_result create_request(si_cmodel *m_, si_ireq **out) {
    ocl_mdl *m = (ocl_mdl *)m_;
    si_graph *g = m->g;
    si_result s = si_ireq_new(sizeof(ocl_req), &req_iface, m_, "OCL", out);
    if (s) return s;
    ocl_req *r = (ocl_req *)*out;
    atomic_init(&r->cancel, 0);
    r->slots = si_calloc((size_t)m->n_slots + 1, sizeof(cl_mem));
    r->inbufs = si_calloc((size_t)m->base.n_inputs + 1, sizeof(cl_mem));
    r->kernels = si_calloc((size_t)m->n_steps + 1, sizeof(cl_kernel));
    if (!r->slots || !r->inbufs || !r->kernels) {
        s = si_err(SI_ERR_NO_MEM, "OCL: out of memory creating a request");
        goto done;
    }
    for (int k = 0; k < m->base.n_outputs; k++) {
        const si_port *p = &m->out_ports[k];
        if ((s = si_tensor_init(r->base.outs[k], p->dtype, p->ndim, p->dims)) || (s = si_tensor_alloc(r->base.outs[k]))) goto done;
    }
    cl_int e;
    r->q = clCreateCommandQueue(m->ctx, m->dev->id, 0, &e);
    if (e != CL_SUCCESS) {
        r->q = NULL;
        s = ocl_cl_err(e, "creating a command queue");
        goto done;
    }
    for (int k = 0; k < m->n_slots; k++)
        if ((s = new_buffer(m, m->slot_bytes[k], &r->slots[k], "allocating an intermediate buffer"))) goto done;
    /* input buffers: only for inputs some step reads */
    for (int i = 0; i < m->n_steps; i++)
        for (int a = 0; a < m->steps[i].n_args; a++) {
            if (m->steps[i].args[a].kind != OA_VAL) continue;
            int root = root_of(m, m->steps[i].args[a].i);
            if (root < 0 || m->kind[root] != ST_INPUT) continue;
            int port = m->slot[root];
            if (!r->inbufs[port] && (s = new_buffer(m, value_bytes(&g->values[root]), &r->inbufs[port], "allocating an input buffer")))
                goto done;
        }
    if (m->scratch && (s = new_buffer(m, m->scratch, &r->scratch, "allocating the scratch buffer"))) goto done;
    for (int i = 0; i < m->n_steps; i++) {
        const ocl_step *st = &m->steps[i];
        r->kernels[i] = clCreateKernel(m->prog, st->kernel, &e);
        if (e != CL_SUCCESS) {
            r->kernels[i] = NULL;
            char what[160];
            snprintf(what, sizeof what, "creating kernel %s", st->kernel);
            s = ocl_cl_err(e, what);
            goto done;
        }
        for (int a = 0; a < st->n_args && e == CL_SUCCESS; a++) {
            const ocl_arg *ar = &st->args[a];
            cl_mem b = NULL;
            cl_int iv = ar->i;
            cl_float fv = ar->f;
            switch (ar->kind) {
            case OA_VAL:
                b = value_buf(r, m, ar->i);
                if (!b) {
                    s = si_err(SI_ERR_INTERNAL, "kernel %s argument %d has no buffer", st->kernel, a);
                    goto done;
                }
                e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof b, &b);
                break;
            case OA_META: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof(cl_mem), &m->metas[ar->i]); break;
            case OA_SCRATCH: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof(cl_mem), &r->scratch); break;
            case OA_INT: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof iv, &iv); break;
            case OA_FLOAT: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof fv, &fv); break;
            }
        }
        if (e != CL_SUCCESS) {
            char what[160];
            snprintf(what, sizeof what, "setting the arguments of kernel %s", st->kernel);
            s = ocl_cl_err(e, what);
            goto done;
        }
    }
done:
    return si_ireq_done(out, s);
}

static const si_cmodel_i model_iface = {.create_request = create_request, .free = model_free};

static si_result ocl_compile(si_device *d_, const si_graph *src, const si_compile_ctx *cc, si_cmodel **out) {
    const si_options *opts = si_compile_opts(cc);
    ocl_dev *d = d_->ctx;
    *out = NULL;
    ocl_mdl *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "out of memory");
    atomic_init(&m->warm, false);
    m->base.iface = &model_iface;
    m->base.device = d->name;
    m->dev = d;
    m->caps = d->caps;
    const char *opt = si_options_get(opts, "ocl.im2col_max_bytes");
    if (opt) m->caps.im2col_max = (size_t)strtoull(opt, NULL, 10);
    if ((opt = si_options_get(opts, "ocl.gemm"))) m->caps.cpu = !strcmp(opt, "vector"); /* "tiled": the GPU kernel */
    if ((opt = si_options_get(opts, "ocl.max_alloc_bytes"))) m->caps.max_alloc = strtoull(opt, NULL, 10); /* tests: simulate a small device */
    si_result s = si_graph_clone(src, &m->g);
    if (s) goto fail;
    si_graph *g = m->g;
    int nv = g->n_values;
    m->alias_of = si_malloc(sizeof(int) * (size_t)(nv + 1));
    m->def_t = si_malloc(sizeof(int) * (size_t)(nv + 1));
    m->node_t = si_malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    m->kind = si_calloc((size_t)nv + 1, sizeof(store_kind));
    m->slot = si_malloc(sizeof(int) * (size_t)(nv + 1));
    m->cbuf = si_calloc((size_t)nv + 1, sizeof(cl_mem));
    m->in_ports = si_calloc((size_t)g->n_inputs + 1, sizeof(si_port));
    m->out_ports = si_calloc((size_t)g->n_outputs + 1, sizeof(si_port));
    if (!m->alias_of || !m->def_t || !m->node_t || !m->kind || !m->slot || !m->cbuf || !m->in_ports || !m->out_ports) {
        s = si_err(SI_ERR_NO_MEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < nv; v++) m->alias_of[v] = m->def_t[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) m->node_t[i] = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        if (!shape_known(v)) {
            char b[160];
            s = si_err(SI_ERR_UNSUPPORTED, "dynamic shape: input '%s' has shape %s (fix its dimensions before compiling)", v->name,
                       si_shape_str(b, sizeof b, v->dtype, v->ndim < 0 ? 0 : v->ndim, v->dims));
            goto fail;
        }
    }
    if ((s = plan_nodes(m))) goto fail;
    for (int i = 0; i < g->n_outputs; i++)
        if (!shape_known(&g->values[g->outputs[i]])) {
            s = si_err(SI_ERR_UNSUPPORTED, "dynamic shape: the shape of output '%s' is unknown", g->values[g->outputs[i]].name);
            goto fail;
        }
    if ((s = plan_storage(m))) goto fail;
    if ((s = dev_context(d, &m->ctx))) goto fail;
    if ((s = build_program(m, opts))) goto fail;
    if ((s = upload_constants(m))) goto fail;
    si_cmodel_ports_from_graph(&m->base, g, m->in_ports, m->out_ports);
    *out = &m->base;
    return SI_OK;
fail:
    model_free(&m->base);
    return s;
}

static const si_device_i ocl_iface = {
    .api_version = SI_DEVICE_API_VERSION,
    .supports_op = ocl_supports_op,
    .compile = ocl_compile,
};
