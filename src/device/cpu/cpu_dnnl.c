/*
 * cpu_dnnl.c — oneDNN helpers for the CPU device: the process-wide engine, status names, memory
 * descriptors, and the OpenMP thread count of the calling thread.
 *
 * Debian's oneDNN is built with the OpenMP runtime (DNNL_CPU_RUNTIME == DNNL_RUNTIME_OMP): a primitive runs
 * with omp_get_max_threads() threads of the calling thread, and sizes its scratchpad for that count when it
 * is created. So the device sets the calling thread's OpenMP thread count (a per-thread setting in libgomp)
 * around primitive creation and execution, and restores it afterwards. libgomp is loaded with libdnnl;
 * its functions are looked up at run time so that the build does not have to link it.
 */
#include "device/cpu/cpu.h"

#include <dlfcn.h>
#include <dnnl_debug.h>
#include <stdio.h>

static dnnl_engine_t engine;
static dnnl_status_t engine_status = dnnl_success;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

static void (*omp_set)(int);
static int (*omp_get)(void);
static void (*gomp_parallel)(void (*)(void *), void *, unsigned, unsigned);
static int (*omp_thread)(void), (*omp_team)(void);

static void engine_init(void) {
    engine_status = dnnl_engine_create(&engine, dnnl_cpu, 0);
    /* strict float32 everywhere: no implicit bf16/tf32 down-conversion */
    dnnl_set_default_fpmath_mode(dnnl_fpmath_mode_strict);
    /* POSIX's way of turning dlsym's object pointer into a function pointer */
    void *fs = dlsym(RTLD_DEFAULT, "omp_set_num_threads"), *fg = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    memcpy(&omp_set, &fs, sizeof fs);
    memcpy(&omp_get, &fg, sizeof fg);
    if (!omp_set || !omp_get) omp_set = NULL, omp_get = NULL;
    /* the entry point `#pragma omp parallel` compiles to: the device's own kernels share oneDNN's threads */
    void *fp = dlsym(RTLD_DEFAULT, "GOMP_parallel"), *ft = dlsym(RTLD_DEFAULT, "omp_get_thread_num"),
         *fn = dlsym(RTLD_DEFAULT, "omp_get_num_threads");
    memcpy(&gomp_parallel, &fp, sizeof fp);
    memcpy(&omp_thread, &ft, sizeof ft);
    memcpy(&omp_team, &fn, sizeof fn);
    if (!gomp_parallel || !omp_thread || !omp_team) gomp_parallel = NULL;
}

typedef struct par_job {
    void (*fn)(void *arg, int ithr, int nthr);
    void *arg;
} par_job;

static void par_trampoline(void *p) {
    const par_job *j = p;
    j->fn(j->arg, omp_thread(), omp_team()); /* the team may be smaller than asked for */
}

void cpu_parallel(int nthr, void (*fn)(void *arg, int ithr, int nthr), void *arg) {
    pthread_once(&engine_once, engine_init);
    if (nthr <= 1 || !gomp_parallel) {
        fn(arg, 0, 1);
        return;
    }
    par_job j = {fn, arg};
    gomp_parallel(par_trampoline, &j, (unsigned)nthr, 0);
}

void cpu_md_plain_dt(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, dnnl_data_type_t dt) {
    cpu_md_plain(md, ndim, dims);
    int64_t st[DNNL_MAX_NDIMS];
    dnnl_dims_t d;
    for (int i = 0; i < md->ndims; i++) d[i] = md->dims[i], st[i] = md->format_desc.blocking.strides[i];
    dnnl_memory_desc_init_by_strides(md, md->ndims, d, dt, st);
}

si_result cpu_engine(dnnl_engine_t *out) {
    pthread_once(&engine_once, engine_init);
    *out = engine;
    if (engine_status != dnnl_success) return cpu_dnnl_err(engine_status, "creating the oneDNN CPU engine", NULL);
    return SI_OK;
}

si_result cpu_dnnl_err(dnnl_status_t st, const char *what, const char *node) {
    if (st == dnnl_success) return SI_OK;
    si_result s = st == dnnl_unimplemented ? SI_ERR_UNSUPPORTED : st == dnnl_out_of_memory ? SI_ERR_NO_MEM : SI_ERR_DEVICE;
    if (node) return si_err(s, "CPU: oneDNN %s for node '%s' failed: %s", what, node, dnnl_status2str(st));
    return si_err(s, "CPU: oneDNN %s failed: %s", what, dnnl_status2str(st));
}

void cpu_md_strided(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, const int64_t *strides) {
    dnnl_dims_t d, s;
    if (ndim == 0) {
        d[0] = 1;
        s[0] = 1;
        ndim = 1;
    } else {
        for (int i = 0; i < ndim; i++) {
            d[i] = dims[i];
            s[i] = strides[i];
        }
    }
    dnnl_memory_desc_init_by_strides(md, ndim, d, dnnl_f32, s);
}

int cpu_conv_weight_dims(int r, int64_t G, const int64_t *w, dnnl_dims_t wd) {
    if (G == 1) {
        for (int i = 0; i < r; i++) wd[i] = w[i];
        return r;
    }
    wd[0] = G, wd[1] = w[0] / G;
    for (int i = 1; i < r; i++) wd[i + 1] = w[i];
    return r + 1;
}

void cpu_md_plain(dnnl_memory_desc_t *md, int ndim, const int64_t *dims) {
    int64_t st[SI_MAX_DIMS + 4];
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        st[i] = s;
        s *= dims[i] > 0 ? dims[i] : 1;
    }
    cpu_md_strided(md, ndim, dims, st);
}

bool cpu_md_is_plain(const dnnl_memory_desc_t *md) {
    if (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks != 0) return false;
    int64_t s = 1;
    for (int i = md->ndims - 1; i >= 0; i--) {
        if (md->dims[i] != md->padded_dims[i] || md->padded_offsets[i] != 0) return false;
        if (md->dims[i] != 1 && md->format_desc.blocking.strides[i] != s) return false;
        s *= md->dims[i];
    }
    return md->offset0 == 0;
}

int cpu_threads_get(void) {
    pthread_once(&engine_once, engine_init);
    return omp_get ? omp_get() : 0;
}

int cpu_threads_set(int n) {
    pthread_once(&engine_once, engine_init);
    if (!omp_set) return 0;
    int old = omp_get();
    if (n > 0 && n != old) omp_set(n);
    return old;
}

dnnl_data_type_t cpu_dnnl_type(si_dtype dt) {
    switch (dt) {
    case SI_F32: return dnnl_f32;
    case SI_F16: return dnnl_f16;
    case SI_BF16: return dnnl_bf16;
    case SI_I32: return dnnl_s32;
    case SI_I8: return dnnl_s8;
    case SI_U8: return dnnl_u8;
    default: return dnnl_data_type_undef;
    }
}

void cpu_md_typed(dnnl_memory_desc_t *md, si_dtype dt, int ndim, const int64_t *dims) {
    dnnl_data_type_t t = cpu_dnnl_type(dt);
    if (t == dnnl_data_type_undef || t == dnnl_f32) cpu_md_plain(md, ndim, dims);
    else cpu_md_plain_dt(md, ndim, dims, t);
}
