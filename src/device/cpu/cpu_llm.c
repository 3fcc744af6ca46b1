/*
 * cpu_llm.c — native kernels of the LLM ops on the CPU device (see cpu_llm.h): which nodes get one, the threads
 * they run on, the vector primitives, and the fused single-pass norms and GELUs. MatMulNBits is in
 * cpu_llm_nbits.c, the attention ops in cpu_llm_attn.c.
 */
#include "device/cpu/cpu_llm.h"

#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_LLM_X86 1
#endif

// --- threads ------------------------------------------------------------------------------------------------

/* libgomp's omp_get_max_threads, loaded with libdnnl: the thread count the device set for the plan on this
 * thread. Looked up at run time so that the library does not link OpenMP itself. */
static int (*omp_max_threads)(void);
/* libgomp's entry for `#pragma omp parallel` (fn runs on every thread of the team, the caller's included, and it
 * returns after the team's barrier) */
static void (*gomp_parallel)(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
static pthread_once_t par_once = PTHREAD_ONCE_INIT;

/* ThreadSanitizer cannot see libgomp's fork and join (the library is not instrumented): every chunk a team thread
 * runs would be reported as racing with what the caller wrote before and reads after. A TSan build runs the own
 * pool, whose handoffs are pthread mutexes and condition variables it does see. */
#if defined(__SANITIZE_THREAD__)
#define PAR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PAR_TSAN 1
#endif
#endif
#ifndef PAR_TSAN
#define PAR_TSAN 0
#endif

static void par_init(void) {
    void *q = dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    memcpy(&omp_max_threads, &q, sizeof q);
    q = PAR_TSAN || getenv("SI_CPU_OWN_POOL") ? NULL : dlsym(RTLD_DEFAULT, "GOMP_parallel");
    memcpy(&gomp_parallel, &q, sizeof q);
}

int cpu_par_threads(void) {
    pthread_once(&par_once, par_init);
    int n = omp_max_threads ? omp_max_threads() : 1;
    return n > 0 ? n : 1;
}

/* The team. Where libgomp is loaded (Debian's oneDNN runs on it), the chunks run in an OpenMP parallel region
 * (GOMP_parallel, looked up like omp_get_max_threads): the same threads as oneDNN's primitives. Two sets of threads
 * fought over the cores: after each primitive libgomp's threads spin waiting for the next region, and helpers of
 * our own spun and slept beside them (GenAI-form 8-layer LLM, prompt 128, 2 threads, idle machine: prefill 56-64 ms
 * on the OpenMP team against 69-118 on own helpers; with one core kept busy by another process both are several
 * times slower and neither is consistently ahead).
 * Without libgomp, or with SI_CPU_OWN_POOL set in the environment (for comparisons), helper threads of our own: the
 * caller runs the chunks itself and waits only for chunks a helper has started (a helper that wakes late finds
 * nothing left to do). Helpers (up to the plan's thread count - 1, started on first use, never stopped) spin briefly
 * on the job generation, then sleep on a condition variable. A job is reference-counted: a late helper may still
 * hold it after its caller returned, but claims no chunk of it (the caller's ctx is never touched after the
 * return). */
typedef struct par_job {
    cpu_range_fn fn;
    void *ctx;
    int64_t n, chunk, nchunks;
    int helpers_max;
    atomic_int helpers;
    atomic_llong next, done;
    atomic_int refs;
} par_job;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    par_job *job; /* the latest job (the pool holds a reference), or NULL */
    atomic_ullong gen;
    int workers;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void job_unref(par_job *j) {
    if (atomic_fetch_sub(&j->refs, 1) == 1) free(j);
}

static void job_run(par_job *j) {
    for (;;) {
        const long long c = atomic_fetch_add(&j->next, 1);
        if (c >= j->nchunks) break;
        const int64_t lo = c * j->chunk;
        j->fn(j->ctx, lo, SI_MIN(j->n, lo + j->chunk));
        atomic_fetch_add_explicit(&j->done, 1, memory_order_release);
    }
}

static void *pool_worker(void *arg) {
    (void)arg;
    unsigned long long seen = atomic_load(&pool.gen);
    for (;;) {
        for (int spin = 0; spin < 20000 && atomic_load_explicit(&pool.gen, memory_order_acquire) == seen; spin++) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        pthread_mutex_lock(&pool.mu);
        while (atomic_load(&pool.gen) == seen) pthread_cond_wait(&pool.cv, &pool.mu);
        seen = atomic_load(&pool.gen);
        par_job *j = pool.job;
        if (j) atomic_fetch_add(&j->refs, 1);
        pthread_mutex_unlock(&pool.mu);
        if (!j) continue;
        if (atomic_fetch_add(&j->helpers, 1) < j->helpers_max) job_run(j);
        job_unref(j);
    }
    return NULL;
}

static void gomp_body(void *arg) { job_run(arg); }

void cpu_par_for(int64_t n, int64_t chunk, cpu_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (chunk < 1) chunk = 1;
    const int64_t nchunks = (n + chunk - 1) / chunk;
    int64_t nth = cpu_par_threads();
    if (nth > nchunks) nth = nchunks;
    if (nth > 1 && gomp_parallel) { /* the OpenMP team oneDNN's primitives run on: one set of threads, not two */
        par_job j = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk, .nchunks = nchunks};
        atomic_init(&j.next, 0);
        atomic_init(&j.done, 0);
        gomp_parallel(gomp_body, &j, (unsigned)nth, 0);
        return;
    }
    par_job *j = nth > 1 ? calloc(1, sizeof *j) : NULL; /* bookkeeping, not the library's data: plain calloc */
    if (!j) {
        fn(ctx, 0, n);
        return;
    }
    j->fn = fn, j->ctx = ctx, j->n = n, j->chunk = chunk, j->nchunks = nchunks, j->helpers_max = (int)nth - 1;
    atomic_init(&j->helpers, 0);
    atomic_init(&j->next, 0);
    atomic_init(&j->done, 0);
    atomic_init(&j->refs, 2); /* the caller's and the pool's */
    pthread_mutex_lock(&pool.mu);
    while (pool.workers < nth - 1) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        const int rc = pthread_create(&t, &at, pool_worker, NULL);
        pthread_attr_destroy(&at);
        if (rc) break; /* fewer helpers: the caller does the rest */
        pool.workers++;
    }
    par_job *old = pool.job;
    pool.job = j;
    atomic_fetch_add(&pool.gen, 1);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
    if (old) job_unref(old);
    job_run(j);
    for (int spin = 0; atomic_load_explicit(&j->done, memory_order_acquire) < nchunks; spin++) {
        if (spin < 4000) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield();
        }
    }
    pthread_mutex_lock(&pool.mu);
    if (pool.job == j) pool.job = NULL, job_unref(j);
    pthread_mutex_unlock(&pool.mu);
    job_unref(j);
}

// --- vector primitives -------------------------------------------------------------------------------------------

static float dot_c(const float *a, const float *b, int64_t n) {
    float acc[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static void axpy_c(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scal_c(float *y, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] *= a;
}

#ifdef CPU_LLM_X86
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    float s = cpu_hsum256(s0);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static void axpy_avx2(float *y, float a, const float *x, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

__attribute__((target("avx2,fma"))) static void scal_avx2(float *y, float a, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}
#endif

static cpu_vec vec = {dot_c, axpy_c, scal_c, false, false};
static pthread_once_t vec_once = PTHREAD_ONCE_INIT;

static void vec_init(void) {
#ifdef CPU_LLM_X86
    __builtin_cpu_init();
    /* SI_CPU_NO_AVX2 / SI_CPU_NO_AVX512 (tests): use the portable / AVX2 paths */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !getenv("SI_CPU_NO_AVX2"))
        vec = (cpu_vec){dot_avx2, axpy_avx2, scal_avx2, true, __builtin_cpu_supports("avx512f") && !getenv("SI_CPU_NO_AVX512")};
#endif
}

const cpu_vec *cpu_vec_get(void) {
    pthread_once(&vec_once, vec_init);
    return &vec;
}

si_result cpu_llm_ref(si_kctx *c) {
    for (int k = 0; k < c->n_out; k++)
        if (c->out[k] && c->out[k]->data && c->out[k]->nbytes) memset(c->out[k]->data, 0, c->out[k]->nbytes);
    return c->node->op->run(c);
}

// --- fused norms ------------------------------------------------------------------------------------------------

typedef struct norm_job {
    const float *x, *skip, *gamma, *beta, *bias;
    float *y, *mean, *inv, *sum;
    int64_t H, skip_rows;
    float eps;
    bool rms;
} norm_job;

/* One pass over each row in cache: u = x (+ skip + bias), its statistics, then the normalised row. */
static void norm_rows(void *ctx, int64_t lo, int64_t hi) {
    const norm_job *j = ctx;
    const cpu_vec *v = cpu_vec_get();
    const int64_t H = j->H;
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * H;
        float *y = j->y ? j->y + r * H : NULL, *u = j->sum ? j->sum + r * H : y;
        if (j->skip) {
            const float *s = j->skip + (r % j->skip_rows) * H;
            for (int64_t i = 0; i < H; i++) u[i] = x[i] + s[i] + (j->bias ? j->bias[i] : 0.0f);
        } else if (u != x) {
            memcpy(u, x, (size_t)H * sizeof(float));
        }
        float mean = 0;
        if (!j->rms) {
            double s = 0;
            for (int64_t i = 0; i < H; i++) s += u[i];
            mean = H ? (float)(s / (double)H) : 0.0f;
        }
        double q = 0;
        if (j->rms) q = v->dot(u, u, H);
        else
            for (int64_t i = 0; i < H; i++) q += (double)(u[i] - mean) * (u[i] - mean);
        const float inv = (float)(1.0 / sqrt((H ? q / (double)H : 0.0) + j->eps));
        if (y)
            for (int64_t i = 0; i < H; i++) y[i] = (u[i] - mean) * inv * j->gamma[i] + (j->beta ? j->beta[i] : 0.0f);
        if (j->mean) j->mean[r] = mean;
        if (j->inv) j->inv[r] = inv;
    }
}

static const float *fin(const si_kctx *c, int i) { return si_in(c, i) ? si_in(c, i)->data : NULL; }
static float *fout(const si_kctx *c, int k) { return si_out(c, k) ? si_out(c, k)->data : NULL; }

/* SimplifiedLayerNormalization over the last axis with a [H] scale (the lowering checked that form). */
static si_result sln_run(si_kctx *c) {
    const si_tensor *x = si_in(c, 0), *sc = si_in(c, 1);
    if (!x || !sc || x->ndim < 1 || si_count(sc) != x->dims[x->ndim - 1]) return cpu_llm_ref(c);
    const int64_t H = x->dims[x->ndim - 1];
    norm_job j = {.x = x->data, .gamma = sc->data, .y = fout(c, 0), .inv = fout(c, 1), .H = H, .skip_rows = 1,
                  .eps = si_attr_float(c->node, "epsilon", 1e-5f), .rms = true};
    const int64_t rows = H ? si_count(x) / H : 0;
    if (!j.y) return cpu_llm_ref(c);
    cpu_par_for(rows, SI_MAX((int64_t)1, 16384 / SI_MAX(H, (int64_t)1)), norm_rows, &j);
    return SI_OK;
}

static si_result skipnorm_run(si_kctx *c, bool rms) {
    si_skipnorm p;
    si_result st = si_skipnorm_prepare(c, rms, &p);
    if (st) return st;
    norm_job j = {.x = fin(c, 0), .skip = fin(c, 1), .gamma = fin(c, 2), .beta = p.beta >= 0 ? fin(c, p.beta) : NULL,
                  .bias = p.bias >= 0 ? fin(c, p.bias) : NULL, .y = fout(c, 0), .mean = fout(c, 1), .inv = fout(c, 2),
                  .sum = fout(c, 3), .H = p.H, .skip_rows = p.skip_rows, .eps = p.eps, .rms = rms};
    if (!j.y && !j.sum && !j.mean && !j.inv) return SI_OK;
    float *tmp = NULL;
    if (!j.y && !j.sum) { /* only the statistics asked for: u needs a home */
        if (!(tmp = si_malloc((size_t)SI_MAX(p.rows * p.H, (int64_t)1) * sizeof(float)))) return si_op_nomem(c);
        j.sum = tmp;
    }
    cpu_par_for(p.rows, SI_MAX((int64_t)1, 16384 / SI_MAX(p.H, (int64_t)1)), norm_rows, &j);
    si_free(tmp);
    return SI_OK;
}

static si_result skipln_run(si_kctx *c) { return skipnorm_run(c, false); }
static si_result skipsln_run(si_kctx *c) { return skipnorm_run(c, true); }

// --- GELUs ----------------------------------------------------------------------------------------------------------

typedef struct gelu_job {
    const float *x, *bias;
    float *y;
    int64_t last;
    float alpha;
    si_op_id op;
} gelu_job;

static void gelu_rows(void *ctx, int64_t lo, int64_t hi) {
    const gelu_job *j = ctx;
    const int64_t L = j->last;
    for (int64_t r = lo; r < hi; r++) {
        const float *x = j->x + r * L;
        float *y = j->y + r * L;
        for (int64_t i = 0; i < L; i++) {
            const float v = x[i] + (j->bias ? j->bias[i] : 0.0f);
            if (j->op == SI_OP_FAST_GELU) y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
            else if (j->op == SI_OP_BIAS_GELU) y[i] = 0.5f * v * (1.0f + erff(v * 0.70710678f));
            else y[i] = v / (1.0f + expf(-j->alpha * v));
        }
    }
}

static si_result gelu_run(si_kctx *c) {
    const si_tensor *x = si_in(c, 0), *b = si_in(c, 1);
    const si_op_id op = c->node->op->id;
    if (!x || x->ndim < 1 || (b && op != SI_OP_QUICK_GELU && (b->ndim != 1 || b->dims[0] != x->dims[x->ndim - 1])) ||
        (op == SI_OP_BIAS_GELU && !b))
        return cpu_llm_ref(c); /* the reference kernel names what is wrong */
    gelu_job j = {.x = x->data, .bias = op != SI_OP_QUICK_GELU && b ? b->data : NULL, .y = fout(c, 0),
                  .last = x->dims[x->ndim - 1], .alpha = si_attr_float(c->node, "alpha", 1.702f), .op = op};
    if (!j.y || j.last == 0) return SI_OK;
    cpu_par_for(si_count(x) / j.last, SI_MAX((int64_t)1, 8192 / j.last), gelu_rows, &j);
    return SI_OK;
}

// --- lowering ---------------------------------------------------------------------------------------------------------

/* Every present input and output of n is float32 except the inputs listed in `other` (any type). */
static bool all_f32(const si_graph *g, const si_node *n, uint32_t other) {
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && !(k < 32 && (other >> k) & 1) && g->values[n->in[k]].dtype != SI_F32) return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && g->values[n->out[k]].dtype != SI_F32) return false;
    return true;
}

static bool has_out(const si_node *n, int k) { return k < n->n_out && n->out[k] >= 0; }

/* Read one byte of every page of t (weights a native step reads in place), so that the first inference does not
 * pay for mapping them: on virtual machines with shadow page tables the first user-space touch of a page the
 * loader filled costs microseconds, hundreds of milliseconds over an LLM's weights. */
void cpu_touch_pages(const si_tensor *t) {
    if (!t || !t->data) return;
    volatile unsigned char sink = 0;
    const unsigned char *d = t->data;
    for (size_t o = 0; o < t->nbytes; o += 4096) sink ^= d[o];
    (void)sink;
}

/* --- the written-out RMS norm (matched by cpu_lower.c) ---------------------------------------------------------- */

typedef struct rms_params {
    int64_t rows, H;
    float eps;
} rms_params;

/* ptr: x, gamma [H], y */
static si_result rms_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const rms_params *p = params;
    norm_job j = {.x = ptr[0], .gamma = ptr[1], .y = ptr[2], .H = p->H, .skip_rows = 1, .eps = p->eps, .rms = true};
    cpu_par_for(p->rows, SI_MAX((int64_t)1, 16384 / SI_MAX(p->H, (int64_t)1)), norm_rows, &j);
    return SI_OK;
}

si_result cpu_rmsnorm_emit(cpu_pb *b, int n, int x, int gamma_v, int out, float eps, const int *nodes, int nn) {
    const si_graph *g = b->g;
    const si_val *X = &g->values[x];
    const int64_t H = X->dims[X->ndim - 1];
    rms_params *p = cpu_pb_own(b, sizeof *p);
    if (!p || H <= 0) return p ? SI_ERR_UNSUPPORTED : SI_ERR_NO_MEM;
    *p = (rms_params){.rows = si_shape_count(X->ndim - 1, X->dims), .H = H, .eps = eps};
    dnnl_memory_desc_t gmd;
    cpu_md_plain(&gmd, 1, &H);
    int gb;
    const si_tensor *gt = gamma_v >= 0 ? g->values[gamma_v].const_val : NULL;
    if (gamma_v < 0 || gt) {
        const float *gd = gt ? gt->data : NULL;
        if (!gd) {
            float *ones = cpu_pb_own(b, sizeof(float) * (size_t)H);
            if (!ones) return SI_ERR_NO_MEM;
            for (int64_t i = 0; i < H; i++) ones[i] = 1.0f;
            gd = ones;
        } else {
            cpu_pb_keep_const(b, gamma_v);
        }
        gb = cpu_pb_const_buf(b, gd, &gmd);
    } else {
        gb = cpu_pb_in_md(b, gamma_v, &gmd);
    }
    int xb = gb < 0 ? -1 : cpu_pb_plain(b, x);
    dnnl_memory_desc_t ymd;
    cpu_md_plain(&ymd, X->ndim, X->dims);
    int yb = xb < 0 ? -1 : cpu_pb_new_out(b, out, &ymd);
    if (yb < 0) return SI_ERR_INTERNAL;
    cpu_arg args[3] = {{DNNL_ARG_SRC, xb}, {DNNL_ARG_SRC, gb}, {DNNL_ARG_DST, yb}};
    si_result s = cpu_pb_emit_own(b, n, "RMSNorm(decomposed)", "own:rmsnorm", rms_run, p, args, 3);
    if (s) return s;
    cpu_pb_consume(b, n);
    for (int i = 0; i < nn; i++) cpu_pb_consume(b, nodes[i]);
    return SI_OK;
}

/* The pages of the node's constant inputs. */
static void touch_consts(const si_graph *g, const si_node *nd) {
    for (int k = 0; k < nd->n_in; k++) cpu_touch_pages(nd->in[k] >= 0 ? g->values[nd->in[k]].const_val : NULL);
}

/* MatMulNBits with int8 A: accuracy_level 4 allows it, and, as in ONNX Runtime, only when the weights are
 * constants (with B fed at run time, level 4 computes in float32 there): initializers, or the parameters a folded
 * block's calls bind to theirs; 4-bit codes in blocks of 32k, integer zero points (with float zero points ORT
 * computes in float32 at level 4: so does this device). */
static bool nbits_q8(const si_graph *g, const si_node *nd) {
    if (si_attr_int(nd, "accuracy_level", 0) != 4 || si_attr_int(nd, "bits", 4) != 4 || si_attr_int(nd, "block_size", 0) % 32 ||
        getenv("SI_CPU_NBITS_F32") || !cpu_nbits_q8_cpu())
        return false;
    for (int k = 1; k <= 3; k++)
        if (k < nd->n_in && nd->in[k] >= 0 && !g->values[nd->in[k]].const_val && !g->values[nd->in[k]].is_param) return false;
    return nd->n_in <= 3 || nd->in[3] < 0 || g->values[nd->in[3]].dtype == SI_U8; /* packed zero points or none */
}

si_result cpu_lower_llm(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    switch (nd->op->id) {
    case SI_OP_MATMUL_NBITS: /* B (1) and packed zero points (3) are uint8 */
        if (!all_f32(g, nd, (1u << 1) | (1u << 3))) break;
        touch_consts(g, nd);
        if (nbits_q8(g, nd)) return cpu_pb_emit_native(b, n, cpu_nbits_q8_run, "MatMulNBits");
        return cpu_pb_emit_native(b, n, cpu_nbits_run, "MatMulNBits");
    case SI_OP_GROUP_QUERY_ATTENTION: /* seqlens_k, total_sequence_length, position_ids are integers */
        if (has_out(nd, 3) || !all_f32(g, nd, (1u << 5) | (1u << 6) | (1u << 9))) break;
        return cpu_pb_emit_native(b, n, cpu_gqa_run, "GroupQueryAttention");
    case SI_OP_MULTI_HEAD_ATTENTION: /* key_padding_mask is int32 */
        if (has_out(nd, 3) || !all_f32(g, nd, 1u << 4)) break;
        return cpu_pb_emit_native(b, n, cpu_mha_run, "MultiHeadAttention");
    case SI_OP_MS_ATTENTION: /* mask_index is int32 */
        if (!all_f32(g, nd, 1u << 3)) break;
        return cpu_pb_emit_native(b, n, cpu_msattn_run, "Attention");
    case SI_OP_MOE:
        if (!all_f32(g, nd, 0)) break;
        touch_consts(g, nd);
        return cpu_pb_emit_native(b, n, cpu_moe_run, "MoE");
    case SI_OP_QMOE: /* the packed weights (2, 5) and zero points (11, 12) are uint8 */
        if (!all_f32(g, nd, (1u << 2) | (1u << 5) | (1u << 11) | (1u << 12))) break;
        touch_consts(g, nd);
        return cpu_pb_emit_native(b, n, cpu_qmoe_run, "QMoE");
    case SI_OP_SIMPLIFIED_LAYER_NORMALIZATION: {
        if (!all_f32(g, nd, 0) || nd->n_in < 2 || nd->in[1] < 0) break;
        const si_val *x = &g->values[nd->in[0]], *sc = &g->values[nd->in[1]];
        const int64_t axis = si_attr_int(nd, "axis", -1);
        if (x->ndim < 1 || (axis != -1 && axis != x->ndim - 1) || sc->ndim < 1 || si_shape_count(sc->ndim, sc->dims) != x->dims[x->ndim - 1] ||
            x->dims[x->ndim - 1] < 0)
            break;
        return cpu_pb_emit_native(b, n, sln_run, "SimplifiedLayerNormalization");
    }
    case SI_OP_SKIP_SIMPLIFIED_LAYER_NORMALIZATION:
        if (!all_f32(g, nd, 0)) break;
        return cpu_pb_emit_native(b, n, skipsln_run, "SkipSimplifiedLayerNormalization");
    case SI_OP_SKIP_LAYER_NORMALIZATION:
        if (!all_f32(g, nd, 0)) break;
        return cpu_pb_emit_native(b, n, skipln_run, "SkipLayerNormalization");
    case SI_OP_FAST_GELU:
    case SI_OP_BIAS_GELU:
    case SI_OP_QUICK_GELU:
        if (!all_f32(g, nd, 0)) break;
        return cpu_pb_emit_native(b, n, gelu_run, nd->op_type);
    default: break;
    }
    return SI_ERR_UNSUPPORTED;
}
