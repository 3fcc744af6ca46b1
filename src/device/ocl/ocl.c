/*
 * ocl.c — the OCL device: OpenCL 1.2 through the ICD loader (PoCL on machines without a GPU).
 *
 * Discovery: the first si_device_ocl_get lists every platform's devices, GPUs first, then the others,
 * and makes one process-wide si_device per device ("OCL", "OCL.1", ...); a device's context is created
 * by its first compile.
 *
 * Compiled models and requests are in ocl_model.c: kernel launches planned per set of input shapes (open
 * dimensions are planned at the first inference with them), weights uploaded once per compiled model. This
 * file builds the kernel program (clBuildProgram at compile, so a driver's compiler error is a compile
 * failure); the built program is kept and shared by later compiles with the same device and build options
 * (see "Programs").
 *
 * PoCL: on PoCL's CPU devices the first inference of each plan (a compiled model at one set of input shapes)
 * runs alone (no other inference of any OCL model in flight); later ones run side by side. This works around a PoCL bug that aborted the
 * process; see "PoCL's kernel cache" below.
 */
#include "device/ocl/ocl.h"
#include "ops/ops.h"

#include <pthread.h>
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

// --- devices ------------------------------------------------------------------------------------------------

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
    cl_device_fp_config fp = 0;
    if (clGetDeviceInfo(id, CL_DEVICE_SINGLE_FP_CONFIG, sizeof fp, &fp, NULL) != CL_SUCCESS) fp = 0;
    d->caps.exact_div = (fp & CL_FP_CORRECTLY_ROUNDED_DIVIDE_SQRT) != 0;
    snprintf(d->build_opts, sizeof d->build_opts, "-cl-std=CL1.2 -DSI_TS=%d -DSI_WG=%d%s", ts, wg,
             d->caps.exact_div ? " -cl-fp32-correctly-rounded-divide-sqrt" : "");
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

si_result ocl_dev_context(ocl_dev *d, cl_context *out) {
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
 * and the launches of a plan are the same in every inference. So the first inference of each
 * plan runs alone (it waits until no OCL inference is in flight, and none starts meanwhile), and
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
bool ocl_gate_enter(const atomic_bool *warm) {
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
void ocl_gate_leave(bool alone, atomic_bool *warm, bool ran) {
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

si_result ocl_build_program(ocl_dev *d, cl_context ctx, const si_options *opts, cl_program *prog) {
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
            if (e == CL_SUCCESS) *prog = g_progs[i].prog;
            pthread_mutex_unlock(&g_prog_lock);
            return e == CL_SUCCESS ? SI_OK : ocl_cl_err(e, "retaining the kernel program");
        }
    si_result s = SI_OK;
    cl_int e;
    *prog = clCreateProgramWithSource(ctx, (cl_uint)si_ocl_kernel_n_lines, (const char **)si_ocl_kernel_lines, NULL, &e);
    if (e != CL_SUCCESS) {
        *prog = NULL;
        s = ocl_cl_err(e, "creating the kernel program");
    } else if ((e = clBuildProgram(*prog, 1, &d->id, bopts, NULL, NULL)) != CL_SUCCESS) {
        char log[1024];
        build_log(*prog, d->id, log, sizeof log);
        if (e == CL_BUILD_PROGRAM_FAILURE || e == CL_INVALID_BUILD_OPTIONS || e == CL_COMPILER_NOT_AVAILABLE)
            s = si_err(SI_ERR_DEVICE, "building the kernels for %s failed (%s): %s", d->desc, ocl_cl_err_name(e),
                       log[0] ? log : "(empty build log)");
        else
            s = ocl_cl_err(e, "building the kernels");
    } else if (g_n_progs < OCL_MAX_PROGRAMS && clRetainProgram(*prog) == CL_SUCCESS) {
        g_progs[g_n_progs].dev = d;
        snprintf(g_progs[g_n_progs].opts, sizeof g_progs[g_n_progs].opts, "%s", bopts);
        g_progs[g_n_progs].prog = *prog;
        g_n_progs++;
    }
    pthread_mutex_unlock(&g_prog_lock);
    return s;
}

static const si_device_i ocl_iface = {
    .api_version = SI_DEVICE_API_VERSION,
    .supports_op = ocl_supports_op,
    .compile = ocl_compile,
};
