/*
 * cpu_fp16.c — float16 and bfloat16 models on the CPU device's float32 kernels.
 *
 * Below, "float16" stands for the model's half type: float16 or bfloat16 (a graph that has both stays on the
 * reference kernels). Everything is the same for both but the conversions: bfloat16 is the top half of a float32
 * (to float32 exactly by a shift; from it rounded to nearest even).
 *
 * cpu_fp16_rewrite turns the plan's graph (its own copy) into a float32 graph: float16 constants are
 * converted once (exactly), every float16 value becomes float32, a Cast to float16 becomes a Cast to
 * float32 whose result is rounded to float16, float16 graph inputs are read through a new Cast to float32 and
 * float16 outputs written through a new Cast to float16. *round16 marks the values the model holds in
 * float16: the plan rounds each one to float16 where a step writes it (cpu_fp16_round_after), so a step's
 * result is that of the float16 model up to the rounding of the intermediate values a fused step keeps in
 * float32 (a Conv's output before the Relu or Add fused into it). Ops whose result of float16-representable
 * inputs is float16-representable (MaxPool, Relu, Concat, Transpose, nearest Resize, views, ...) need no
 * rounding. Only graphs whose float16 values meet ops of a known list are rewritten (an op with a dtype
 * attribute, ConstantOfShape, RandomNormal, ..., keeps the reference kernels on float16).
 *
 * Cast between float16 and float32 (and the float32-to-float32 Cast that rounds or copies) runs on an own
 * kernel with F16C conversions where the CPU has them.
 */
#include "device/cpu/cpu_llm.h"

#include <stdio.h>

static bool f16_ok_op(const si_node *n) {
    if (!n->op || n->domain[0]) return false;
    switch (n->op->id) {
    case SI_OP_CONV: case SI_OP_CONV_TRANSPOSE: case SI_OP_MATMUL: case SI_OP_GEMM: case SI_OP_MAX_POOL:
    case SI_OP_AVERAGE_POOL: case SI_OP_GLOBAL_AVERAGE_POOL: case SI_OP_GLOBAL_MAX_POOL: case SI_OP_BATCH_NORMALIZATION:
    case SI_OP_RELU: case SI_OP_LEAKY_RELU: case SI_OP_SIGMOID: case SI_OP_TANH: case SI_OP_CLIP: case SI_OP_HARD_SIGMOID:
    case SI_OP_HARD_SWISH: case SI_OP_ADD: case SI_OP_SUB: case SI_OP_MUL: case SI_OP_DIV: case SI_OP_MAX: case SI_OP_MIN:
    case SI_OP_SUM: case SI_OP_CONCAT: case SI_OP_SPLIT: case SI_OP_SLICE: case SI_OP_RESHAPE: case SI_OP_FLATTEN:
    case SI_OP_SQUEEZE: case SI_OP_UNSQUEEZE: case SI_OP_TRANSPOSE: case SI_OP_IDENTITY: case SI_OP_RESIZE:
    case SI_OP_UPSAMPLE: case SI_OP_SHAPE: case SI_OP_GATHER: case SI_OP_SOFTMAX: case SI_OP_EXP: case SI_OP_SQRT:
    case SI_OP_POW: case SI_OP_ERF: case SI_OP_NEG: case SI_OP_ABS: case SI_OP_REDUCE_MEAN: case SI_OP_PAD:
    case SI_OP_CAST: case SI_OP_DROPOUT: case SI_OP_EXPAND: case SI_OP_TILE: case SI_OP_PRELU: case SI_OP_ELU: case SI_OP_SELU:
    case SI_OP_SOFTPLUS: case SI_OP_SOFTSIGN: case SI_OP_MISH:
        return true;
    default:
        return false;
    }
}

/* Ops whose output, for float16-representable inputs, is float16-representable: no rounding after them. */
static bool exact_op(const si_node *n) {
    switch (n->op->id) {
    case SI_OP_MAX_POOL: case SI_OP_GLOBAL_MAX_POOL: case SI_OP_RELU: case SI_OP_CONCAT: case SI_OP_SPLIT:
    case SI_OP_SLICE: case SI_OP_RESHAPE: case SI_OP_FLATTEN: case SI_OP_SQUEEZE: case SI_OP_UNSQUEEZE:
    case SI_OP_TRANSPOSE: case SI_OP_IDENTITY: case SI_OP_GATHER: case SI_OP_MAX: case SI_OP_MIN: case SI_OP_NEG:
    case SI_OP_ABS: case SI_OP_DROPOUT: case SI_OP_EXPAND: case SI_OP_TILE: case SI_OP_PAD:
        return true;
    case SI_OP_RESIZE: case SI_OP_UPSAMPLE:
        return !strcmp(si_attr_str(n, "mode", "nearest"), "nearest");
    default: /* Cast: its output is rounded exactly when it was a Cast to float16 */
        return false;
    }
}

static si_tensor *const_to_f32(const si_tensor *t) {
    si_tensor *c = si_calloc(1, sizeof *c);
    if (!c || si_tensor_init(c, SI_F32, t->ndim, t->dims) || si_tensor_alloc(c)) {
        if (c) si_tensor_release(c);
        si_free(c);
        return NULL;
    }
    const uint16_t *s = t->data;
    float *d = c->data;
    const bool bf = t->dtype == SI_BF16;
    for (int64_t i = 0, n = si_shape_count(t->ndim, t->dims); i < n; i++) d[i] = bf ? si_bf16_to_f32(s[i]) : si_f16_to_f32(s[i]);
    return c;
}

static bool add_cast(si_graph *g, int from, int to, si_dtype dt) {
    si_node nd;
    memset(&nd, 0, sizeof nd);
    char name[256];
    snprintf(name, sizeof name, "%s#cast", g->values[to].name);
    nd.name = si_strdup(name);
    nd.op_type = si_strdup("Cast");
    nd.domain = si_strdup("");
    nd.in = si_malloc(sizeof(int));
    nd.out = si_malloc(sizeof(int));
    nd.attrs = si_calloc(1, sizeof(si_attr));
    if (!nd.name || !nd.op_type || !nd.domain || !nd.in || !nd.out || !nd.attrs || !(nd.attrs[0].name = si_strdup("to"))) {
        si_node_clear(&nd);
        return false;
    }
    nd.n_in = nd.n_out = nd.n_attr = 1;
    nd.in[0] = from;
    nd.out[0] = to;
    nd.attrs[0].type = SI_ATTR_INT;
    nd.attrs[0].i = dt;
    if (si_graph_add_node(g, &nd) < 0) {
        si_node_clear(&nd);
        return false;
    }
    return true;
}

/* A new value with v's shape and type dt, named after v. */
static int twin(si_graph *g, int v, si_dtype dt) {
    char name[256];
    snprintf(name, sizeof name, "%s#f16", g->values[v].name);
    int t = si_graph_value(g, name);
    if (t < 0) return -1;
    si_val *a = &g->values[t];
    const si_val *o = &g->values[v];
    a->dtype = dt;
    a->ndim = o->ndim;
    memcpy(a->dims, o->dims, sizeof a->dims);
    return t;
}

si_result cpu_fp16_rewrite(si_graph *g, cpu_store *store, bool **round16, si_dtype *half) {
    *round16 = NULL;
    *half = SI_F16;
    if (cpu_no_own()) return SI_OK;
    bool f16 = false, bf16 = false;
    for (int v = 0; v < g->n_values; v++) f16 |= g->values[v].dtype == SI_F16, bf16 |= g->values[v].dtype == SI_BF16;
    if (f16 == bf16) return SI_OK; /* none, or both: the reference kernels */
    const si_dtype H = f16 ? SI_F16 : SI_BF16;
    *half = H;
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        bool touches = false;
        for (int k = 0; k < n->n_in; k++) touches |= n->in[k] >= 0 && g->values[n->in[k]].dtype == H;
        for (int k = 0; k < n->n_out; k++) touches |= n->out[k] >= 0 && g->values[n->out[k]].dtype == H;
        if (touches && !f16_ok_op(n)) return SI_OK; /* stays float16 on the reference kernels */
    }
    int nv0 = g->n_values;
    bool *r16 = si_calloc((size_t)nv0 + 2 * (size_t)(g->n_inputs + g->n_outputs) + 1, sizeof(bool));
    if (!r16) return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    for (int v = 0; v < nv0; v++) {
        si_val *val = &g->values[v];
        if (val->dtype != H) continue;
        if (val->const_val) {
            /* the model's constants are converted once per model; those folded for this plan's shapes per plan */
            si_tensor *c = cpu_store_model_const(store, val->const_val)
                               ? cpu_store_tensor(store, val->const_val, H == SI_F16 ? "f16>f32" : "bf16>f32", const_to_f32)
                               : const_to_f32(val->const_val);
            if (!c) {
                si_free(r16);
                return si_err(SI_ERR_NO_MEM, "CPU: out of memory converting float16 constants");
            }
            si_const_unref(val->const_val);
            val->const_val = c;
        } else {
            r16[v] = true;
        }
        val->dtype = SI_F32;
    }
    for (int i = 0; i < g->n_nodes; i++) { /* Cast to float16: to float32, rounded (r16 on its output) */
        si_node *n = &g->nodes[i];
        if (!si_node_is(n, SI_OP_CAST)) continue;
        for (int a = 0; a < n->n_attr; a++)
            if (!strcmp(n->attrs[a].name, "to") && n->attrs[a].i == H) n->attrs[a].i = SI_F32;
    }
    int n_in = g->n_inputs, n_out = g->n_outputs;
    for (int k = 0; k < n_in; k++) {
        int v = g->inputs[k];
        if (!r16[v]) continue;
        int t = twin(g, v, H);
        if (t < 0 || !add_cast(g, t, v, SI_F32)) goto nomem;
        g->values[t].is_input = true;
        g->values[v].is_input = false;
        g->inputs[k] = t;
        r16[v] = false; /* exact */
    }
    for (int k = 0; k < n_out; k++) {
        int v = g->outputs[k];
        if (v >= nv0 || g->values[v].dtype != SI_F32 || !r16[v]) continue;
        int t = twin(g, v, H);
        if (t < 0 || !add_cast(g, v, t, H)) goto nomem;
        g->values[t].is_output = true;
        g->values[v].is_output = false;
        g->outputs[k] = t;
    }
    si_result s = si_graph_finalize(g);
    if (s) {
        si_free(r16);
        return s;
    }
    for (int i = 0; i < g->n_nodes; i++) { /* no rounding after ops that keep float16 values exact */
        const si_node *n = &g->nodes[i];
        if (n->op && exact_op(n))
            for (int k = 0; k < n->n_out; k++)
                if (n->out[k] >= 0 && n->out[k] < nv0) r16[n->out[k]] = false;
    }
    *round16 = r16;
    return SI_OK;
nomem:
    si_free(r16);
    return si_err(SI_ERR_NO_MEM, "CPU: out of memory rewriting a float16 graph");
}

// --- conversions ----------------------------------------------------------------------------------------------

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
__attribute__((target("avx,f16c"))) static void h2f_f16c(const uint16_t *s, float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    for (; i < n; i++) d[i] = si_f16_to_f32(s[i]);
}
__attribute__((target("avx,f16c"))) static void f2h_f16c(const float *s, uint16_t *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = si_f32_to_f16(s[i]);
}
__attribute__((target("avx,f16c"))) static void round_f16c(const float *s, float *d, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) d[i] = si_f16_to_f32(si_f32_to_f16(s[i]));
}
static bool have_f16c(void) {
    static int v = -1;
    if (v < 0) v = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return v;
}
#else
static bool have_f16c(void) { return false; }
static void h2f_f16c(const uint16_t *s, float *d, int64_t n) { (void)s, (void)d, (void)n; }
static void f2h_f16c(const float *s, uint16_t *d, int64_t n) { (void)s, (void)d, (void)n; }
static void round_f16c(const float *s, float *d, int64_t n) { (void)s, (void)d, (void)n; }
#endif

typedef struct cv_params {
    int kind; /* 0 f16 -> f32, 1 f32 -> f16, 2 f32 -> f32 rounded to f16, 3 f32 copy; 4, 5, 6: 0, 1, 2 for bf16 */
    int64_t n;
} cv_params;

/* Elements [lo, hi) of the conversion (src and dst may be the same buffer: each element is read before it is
 * written). */
static void cv_range(const cv_params *p, const void *src, void *dst, int64_t lo, int64_t hi) {
    const bool fast = have_f16c();
    const int64_t n = hi - lo;
    const float *sf = (const float *)src + lo;
    const uint16_t *sh = (const uint16_t *)src + lo;
    float *df = (float *)dst + lo;
    uint16_t *dh = (uint16_t *)dst + lo;
    switch (p->kind) {
    case 0:
        if (fast) h2f_f16c(sh, df, n);
        else for (int64_t i = 0; i < n; i++) df[i] = si_f16_to_f32(sh[i]);
        break;
    case 1:
        if (fast) f2h_f16c(sf, dh, n);
        else for (int64_t i = 0; i < n; i++) dh[i] = si_f32_to_f16(sf[i]);
        break;
    case 2:
        if (fast) round_f16c(sf, df, n);
        else for (int64_t i = 0; i < n; i++) df[i] = si_f16_to_f32(si_f32_to_f16(sf[i]));
        break;
    case 4:
        for (int64_t i = 0; i < n; i++) df[i] = si_bf16_to_f32(sh[i]);
        break;
    case 5:
        for (int64_t i = 0; i < n; i++) dh[i] = si_f32_to_bf16(sf[i]);
        break;
    case 6:
        for (int64_t i = 0; i < n; i++) df[i] = si_bf16_to_f32(si_f32_to_bf16(sf[i]));
        break;
    default:
        if (sf != df) memmove(df, sf, sizeof(float) * (size_t)n);
    }
}

typedef struct cv_job {
    const cv_params *p;
    const void *src;
    void *dst;
} cv_job;

static void cv_chunks(void *ctx, int64_t lo, int64_t hi) {
    const cv_job *j = ctx;
    cv_range(j->p, j->src, j->dst, lo, hi);
}

#define CV_CHUNK ((int64_t)1 << 16) /* elements per task: a large tensor is split over the plan's threads */

static si_result cv_run(const void *params, void *const *ptr, int threads) {
    (void)threads;
    const cv_params *p = params;
    if (p->n <= CV_CHUNK) {
        cv_range(p, ptr[0], ptr[1], 0, p->n);
        return SI_OK;
    }
    cv_job j = {.p = p, .src = ptr[0], .dst = ptr[1]};
    cpu_par_for(p->n, CV_CHUNK, cv_chunks, &j);
    return SI_OK;
}

/* Cast between float16 and float32 (plain buffers), and float32 -> float32 (rounded where round16 says). */
si_result cpu_lower_cast(cpu_pb *b, int n) {
    if (cpu_no_own()) return SI_ERR_UNSUPPORTED;
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (nd->n_in < 1 || nd->in[0] < 0 || nd->n_out < 1 || nd->out[0] < 0) return SI_ERR_UNSUPPORTED;
    const si_val *X = &g->values[nd->in[0]], *Y = &g->values[nd->out[0]];
    if (!cpu_value_static(X) || !cpu_value_static(Y) || X->const_val) return SI_ERR_UNSUPPORTED;
    int kind;
    if (X->dtype == SI_F16 && Y->dtype == SI_F32) kind = 0;
    else if (X->dtype == SI_F32 && Y->dtype == SI_F16) kind = 1;
    else if (X->dtype == SI_BF16 && Y->dtype == SI_F32) kind = 4;
    else if (X->dtype == SI_F32 && Y->dtype == SI_BF16) kind = 5;
    else if (X->dtype == SI_F32 && Y->dtype == SI_F32) kind = b->round16 && b->round16[nd->out[0]] ? (b->half == SI_BF16 ? 6 : 2) : 3;
    else return SI_ERR_UNSUPPORTED;
    int64_t cnt = si_shape_count(X->ndim, X->dims);
    if (cnt <= 0) return SI_ERR_UNSUPPORTED;
    cv_params *p = cpu_pb_own(b, sizeof *p);
    if (!p) return SI_ERR_NO_MEM;
    p->kind = kind;
    p->n = cnt;
    dnnl_memory_desc_t md;
    int in_buf = -1;
    if ((kind == 2 || kind == 3 || kind == 6) && X->ndim == Y->ndim && !memcmp(X->dims, Y->dims, sizeof(int64_t) * (size_t)X->ndim)) {
        /* float32 -> float32 is elementwise: in the layout the input has (nhwc after a convolution) */
        in_buf = cpu_pb_existing(b, nd->in[0]);
        if (in_buf >= 0 && b->p->bufs[in_buf].dyn) in_buf = -1;
    }
    if (in_buf >= 0) {
        md = b->p->bufs[in_buf].md;
        p->n = (int64_t)(b->p->bufs[in_buf].nbytes / sizeof(float));
        if (kind == 3) { /* a copy: the output is the input's buffer */
            if (cpu_pb_new_inplace(b, nd->out[0], &md, in_buf) < 0) return SI_ERR_NO_MEM;
            cpu_pb_consume(b, n);
            return SI_OK;
        }
    } else {
        if ((in_buf = cpu_pb_plain(b, nd->in[0])) < 0) return SI_ERR_INTERNAL;
        cpu_md_plain(&md, Y->ndim, Y->dims);
    }
    /* rounding float32 to float16 in place when nothing reads the input afterwards (a Resize's output before the
     * Cast back to float16) */
    const bool inplace = (kind == 2 || kind == 6) && in_buf >= 0 && cpu_pb_can_overwrite(b, in_buf, 1);
    int out = inplace ? cpu_pb_new_inplace(b, nd->out[0], &md, in_buf) : cpu_pb_new_out(b, nd->out[0], &md);
    if (out < 0) return SI_ERR_NO_MEM;
    if (Y->dtype == SI_F16 || Y->dtype == SI_BF16) b->p->bufs[out].nbytes = b->p->slots[b->p->bufs[out].slot].size = cpu_value_nbytes(Y);
    cpu_arg args[2] = {{DNNL_ARG_SRC, in_buf}, {DNNL_ARG_DST, out}};
    static const char *const names[7] = {"own:cast_f16_f32", "own:cast_f32_f16", "own:round_f16", "own:copy",
                                         "own:cast_bf16_f32", "own:cast_f32_bf16", "own:round_bf16"};
    si_result s = cpu_pb_emit_own(b, n, kind == 2 ? "Cast(round to float16)" : kind == 6 ? "Cast(round to bfloat16)" : "Cast", names[kind], cv_run, p,
                                  args, 2);
    if (!s) cpu_pb_consume(b, n);
    return s;
}

si_result cpu_fp16_round_after(cpu_pb *b) {
    if (!b->round16) return SI_OK;
    const si_graph *g = b->g;
    cpu_plan *p = b->p;
    int last = p->n_steps - 1;
    if (last < b->lower_start) return SI_OK;
    for (int m = 0; m < g->n_nodes; m++) {
        if (p->node_step[m] < b->lower_start) continue;
        const si_node *nd = &g->nodes[m];
        if (si_node_is(nd, SI_OP_CAST)) continue; /* rounds itself */
        for (int k = 0; k < nd->n_out; k++) {
            int v = nd->out[k];
            if (v < 0 || !b->round16[v] || b->vbuf[v] < 0) continue;
            int bf = b->vbuf[v];
            if (p->bufs[bf].dyn) continue;
            cv_params *cp = cpu_pb_own(b, sizeof *cp);
            if (!cp) return SI_ERR_NO_MEM;
            const bool bf16 = b->half == SI_BF16;
            cp->kind = bf16 ? 6 : 2;
            cp->n = (int64_t)(p->bufs[bf].nbytes / sizeof(float));
            cpu_arg args[2] = {{DNNL_ARG_SRC, bf}, {DNNL_ARG_DST, bf}};
            char what[96];
            snprintf(what, sizeof what, "round to %s (%.60s)", bf16 ? "bfloat16" : "float16", g->values[v].name);
            si_result s = cpu_pb_emit_own(b, m, what, bf16 ? "own:round_bf16" : "own:round_f16", cv_run, cp, args, 2);
            if (s) return s;
            p->node_step[m] = last; /* the node stays the step's that computed it */
        }
    }
    return SI_OK;
}
