/*
 * cpu_chain.c — fusion of the nodes that follow a oneDNN primitive into it (see cpu_chain in cpu.h), and
 * the multi-node activation patterns (GELU written with Erf, x*Sigmoid(x), x*HardSigmoid(x)) that become
 * one oneDNN eltwise algorithm.
 *
 * A chain only grows through values with a single consumer that are not graph outputs, whose consumer
 * keeps the shape; the other operand of a binary op must be a constant or already computed (the fused
 * step runs where the anchor node is). When oneDNN refuses a primitive with the post-ops (or only offers
 * its slow reference implementation), the lowering code drops post-op groups from the end and retries;
 * the dropped nodes are then lowered on their own.
 */
#include "device/cpu/cpu_llm.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

// --- helpers -------------------------------------------------------------------------------------------------

static bool const_scalar(const si_graph *g, int v, float *out) {
    if (v < 0) return false;
    const si_tensor *t = g->values[v].const_val;
    if (!t || t->dtype != SI_F32 || si_shape_count(t->ndim, t->dims) != 1 || !t->data) return false;
    *out = *(const float *)t->data;
    return true;
}

/* A Pow exponent: a constant one-element tensor of any numeric type (exporters write 3, 3.0 or an int64 3) whose
 * value a float holds exactly. */
static bool const_exponent(const si_graph *g, int v, float *out) {
    if (v < 0) return false;
    const si_tensor *t = g->values[v].const_val;
    if (!t || !t->data || si_shape_count(t->ndim, t->dims) != 1 || t->dtype == SI_BOOL || t->dtype == SI_STRING) return false;
    const double e = si_load_f64(t->dtype, t->data, 0);
    if (!isfinite(e) || (double)(float)e != e) return false;
    *out = (float)e;
    return true;
}

static bool near(float a, float b) { return fabsf(a - b) <= 1e-3f * fabsf(b); }

/* The only consumer node of v (and at which input), or -1 when v has several or is a graph output. */
static int single_consumer(const cpu_pb *b, int v, int *slot) {
    if (b->n_consumers[v] != 1 || cpu_value_is_output(b->g, v)) return -1;
    int n = cpu_pb_consumer(b, v, 0);
    if (n < 0 || b->done[n]) return -1;
    for (int k = 0; k < b->g->nodes[n].n_in; k++)
        if (b->g->nodes[n].in[k] == v) {
            if (slot) *slot = k;
            return n;
        }
    return -1;
}

static bool out_f32_like(const si_graph *g, const si_node *n, int v_like) {
    if (n->n_out < 1 || n->out[0] < 0) return false;
    for (int k = 1; k < n->n_out; k++)
        if (n->out[k] >= 0) return false;
    const si_val *o = &g->values[n->out[0]], *l = &g->values[v_like];
    if (o->dtype != SI_F32 || !cpu_value_static(o) || o->ndim != l->ndim) return false;
    return !memcmp(o->dims, l->dims, sizeof(int64_t) * (size_t)o->ndim);
}

/* The other input of a two-input node whose input `slot` is v. */
static int other_input(const si_node *n, int slot) {
    if (n->n_in != 2) return -1;
    return n->in[1 - slot];
}

bool cpu_pd_is_ref(const_dnnl_primitive_desc_t pd) {
    const char *s = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s) return false;
    return !strncmp(s, "ref", 3);
}

// --- unary ops as oneDNN eltwise algorithms -------------------------------------------------------------------

int cpu_eltwise_of(const si_graph *g, const si_node *n, dnnl_alg_kind_t alg[2], float alpha[2], float beta[2]) {
    if (n->domain[0] || n->n_out != 1 || !n->op) return 0;
    const si_op_id t = n->op->id;
    alpha[0] = beta[0] = alpha[1] = beta[1] = 0;
    if (t == SI_OP_RELU) { alg[0] = dnnl_eltwise_relu; return 1; }
    if (t == SI_OP_LEAKY_RELU) { alg[0] = dnnl_eltwise_relu; alpha[0] = si_attr_float(n, "alpha", 0.01f); return 1; }
    if (t == SI_OP_ELU) { alg[0] = dnnl_eltwise_elu; alpha[0] = si_attr_float(n, "alpha", 1.0f); return 1; }
    if (t == SI_OP_SELU) { /* gamma elu(x; alpha) */
        alg[0] = dnnl_eltwise_elu;
        alpha[0] = si_attr_float(n, "alpha", 1.67326319217681884765625f);
        alg[1] = dnnl_eltwise_linear;
        alpha[1] = si_attr_float(n, "gamma", 1.05070102214813232421875f);
        return 2;
    }
    if (t == SI_OP_SIGMOID) { alg[0] = dnnl_eltwise_logistic; return 1; }
    if (t == SI_OP_TANH) { alg[0] = dnnl_eltwise_tanh; return 1; }
    if (t == SI_OP_EXP) { alg[0] = dnnl_eltwise_exp; return 1; }
    /* not Log (oneDNN's log(1) is -1.4e-6) nor Softplus (no log1p: 1e-3 relative error below -8) */
    if (t == SI_OP_SQRT) { alg[0] = dnnl_eltwise_sqrt; return 1; }
    if (t == SI_OP_ABS) { alg[0] = dnnl_eltwise_abs; return 1; }
    if (t == SI_OP_NEG) { alg[0] = dnnl_eltwise_linear; alpha[0] = -1; return 1; }
    if (t == SI_OP_MISH) { alg[0] = dnnl_eltwise_mish; return 1; }
    if (t == SI_OP_HARD_SWISH) { alg[0] = dnnl_eltwise_hardswish; return 1; }
    if (t == SI_OP_GELU) {
        const char *a = si_attr_str(n, "approximate", "none");
        alg[0] = !strcmp(a, "tanh") ? dnnl_eltwise_gelu_tanh : dnnl_eltwise_gelu_erf;
        return 1;
    }
    if (t == SI_OP_HARD_SIGMOID) { /* max(0, min(1, alpha*x + beta)) */
        alg[0] = dnnl_eltwise_linear;
        alpha[0] = si_attr_float(n, "alpha", 0.2f);
        beta[0] = si_attr_float(n, "beta", 0.5f);
        alg[1] = dnnl_eltwise_clip_v2;
        alpha[1] = 0;
        beta[1] = 1;
        return 2;
    }
    if (t == SI_OP_CLIP) {
        float lo = -FLT_MAX, hi = FLT_MAX;
        if (n->opset < 11) {
            lo = si_attr_float(n, "min", -FLT_MAX);
            hi = si_attr_float(n, "max", FLT_MAX);
        } else {
            if (n->n_in > 1 && n->in[1] >= 0 && !const_scalar(g, n->in[1], &lo)) return 0;
            if (n->n_in > 2 && n->in[2] >= 0 && !const_scalar(g, n->in[2], &hi)) return 0;
        }
        if (isnan(lo) || isnan(hi)) return 0;
        alg[0] = dnnl_eltwise_clip_v2;
        alpha[0] = lo;
        beta[0] = hi;
        return 1;
    }
    if (t == SI_OP_POW) {
        float e;
        if (n->n_in != 2 || !const_exponent(g, n->in[1], &e)) return 0;
        if (e == 2.0f) { alg[0] = dnnl_eltwise_square; return 1; }
        if (e == 1.0f) { alg[0] = dnnl_eltwise_linear; alpha[0] = 1; return 1; }
        alg[0] = dnnl_eltwise_pow; /* alpha x^beta */
        alpha[0] = 1;
        beta[0] = e;
        return 1;
    }
    return 0;
}

// --- multi-node activation patterns -------------------------------------------------------------------------------

const char *cpu_pattern_name(dnnl_alg_kind_t alg) {
    return alg == dnnl_eltwise_gelu_erf ? "Gelu" : alg == dnnl_eltwise_swish ? "Swish" : alg == dnnl_eltwise_mish ? "Mish" : "HardSwish";
}

/* Patterns rooted at value v (every consumer of v is in the pattern). On a match: the algorithm, the nodes
 * (in graph order is not needed: they are all marked done), and the value it produces. */
int cpu_pattern_match(const cpu_pb *b, int v, dnnl_alg_kind_t *alg, float *alpha, int *nodes, int *out) {
    const si_graph *g = b->g;
    if (b->n_consumers[v] != 2 || cpu_value_is_output(g, v) || g->values[v].dtype != SI_F32) return 0;
    int c0 = cpu_pb_consumer(b, v, 0), c1 = cpu_pb_consumer(b, v, 1);
    if (c0 < 0 || c1 < 0 || c0 == c1 || b->done[c0] || b->done[c1]) return 0;
    for (int pass = 0; pass < 2; pass++) {
        int first = pass ? c1 : c0, second = pass ? c0 : c1;
        const si_node *f = &g->nodes[first], *s = &g->nodes[second];
        /* x * Sigmoid(x), x * HardSigmoid(x) with alpha 1/6, beta 1/2 */
        if ((cpu_is_op(f, SI_OP_SIGMOID) || cpu_is_op(f, SI_OP_HARD_SIGMOID)) && cpu_is_op(s, SI_OP_MUL) && f->n_out == 1 && out_f32_like(g, s, v)) {
            int fv = f->out[0];
            if (single_consumer(b, fv, NULL) != second) continue;
            if (!((s->in[0] == v && s->in[1] == fv) || (s->in[1] == v && s->in[0] == fv))) continue;
            if (cpu_is_op(f, SI_OP_HARD_SIGMOID) && !(near(si_attr_float(f, "alpha", 0.2f), 1.0f / 6) && near(si_attr_float(f, "beta", 0.5f), 0.5f)))
                continue;
            *alg = cpu_is_op(f, SI_OP_SIGMOID) ? dnnl_eltwise_swish : dnnl_eltwise_hardswish;
            *alpha = 1.0f;
            nodes[0] = first;
            nodes[1] = second;
            *out = s->out[0];
            return 2;
        }
        /* Mish written out (YOLOv4): x * Tanh(Softplus(x)) */
        if (cpu_is_op(f, SI_OP_SOFTPLUS) && cpu_is_op(s, SI_OP_MUL) && f->n_out == 1 && out_f32_like(g, s, v)) {
            const int th = single_consumer(b, f->out[0], NULL);
            if (th < 0 || !cpu_is_op(&g->nodes[th], SI_OP_TANH) || g->nodes[th].n_out != 1) continue;
            const int tv = g->nodes[th].out[0];
            if (single_consumer(b, tv, NULL) != second) continue;
            if (!((s->in[0] == v && s->in[1] == tv) || (s->in[1] == v && s->in[0] == tv))) continue;
            *alg = dnnl_eltwise_mish;
            *alpha = 0;
            nodes[0] = first;
            nodes[1] = th;
            nodes[2] = second;
            *out = s->out[0];
            return 3;
        }
        /* GELU: d = x / sqrt(2) (or x * 0.7071); a = Erf(d) + 1; y = 0.5 * x * a in one of three orders */
        float c;
        if (!((cpu_is_op(f, SI_OP_DIV) && f->in[0] == v && const_scalar(g, f->in[1], &c) && near(c, 1.41421356f)) ||
              (cpu_is_op(f, SI_OP_MUL) && ((f->in[0] == v && const_scalar(g, f->in[1], &c)) || (f->in[1] == v && const_scalar(g, f->in[0], &c))) &&
               near(c, 0.70710678f))))
            continue;
        int erf = single_consumer(b, f->out[0], NULL);
        if (erf < 0 || !cpu_is_op(&g->nodes[erf], SI_OP_ERF)) continue;
        int add = single_consumer(b, g->nodes[erf].out[0], NULL);
        if (add < 0 || !cpu_is_op(&g->nodes[add], SI_OP_ADD)) continue;
        const si_node *an = &g->nodes[add];
        int e = g->nodes[erf].out[0];
        if (!((an->in[0] == e && const_scalar(g, an->in[1], &c)) || (an->in[1] == e && const_scalar(g, an->in[0], &c))) || c != 1.0f)
            continue;
        int a = an->out[0];
        if (!cpu_is_op(s, SI_OP_MUL)) continue;
        int sl;
        int m2;
        int res = -1;
        if ((s->in[0] == v && s->in[1] == a) || (s->in[1] == v && s->in[0] == a)) { /* m = x * a; y = m * 0.5 */
            if (single_consumer(b, a, NULL) != second) continue;
            m2 = single_consumer(b, s->out[0], &sl);
            if (m2 < 0 || !cpu_is_op(&g->nodes[m2], SI_OP_MUL) || !const_scalar(g, other_input(&g->nodes[m2], sl), &c) || c != 0.5f) continue;
            res = m2;
        } else if ((s->in[0] == v && const_scalar(g, s->in[1], &c)) || (s->in[1] == v && const_scalar(g, s->in[0], &c))) {
            if (c != 0.5f) continue; /* h = x * 0.5; y = h * a */
            m2 = single_consumer(b, s->out[0], &sl);
            if (m2 < 0 || !cpu_is_op(&g->nodes[m2], SI_OP_MUL) || other_input(&g->nodes[m2], sl) != a) continue;
            if (single_consumer(b, a, NULL) != m2) continue;
            res = m2;
        } else {
            continue;
        }
        if (!out_f32_like(g, &g->nodes[res], v)) continue;
        *alg = dnnl_eltwise_gelu_erf;
        *alpha = 0;
        nodes[0] = first;
        nodes[1] = erf;
        nodes[2] = add;
        nodes[3] = second;
        nodes[4] = res;
        *out = g->nodes[res].out[0];
        return 5;
    }
    return 0;
}

// --- chains -----------------------------------------------------------------------------------------------------

void cpu_chain_init(cpu_chain *c, const cpu_pb *b, int anchor, int prank, const int64_t *pdims, int ch_axis, bool can_sum) {
    memset(c, 0, sizeof *c);
    const si_val *o = &b->g->values[b->g->nodes[anchor].out[0]];
    c->anchor = anchor;
    c->vrank = o->ndim;
    memcpy(c->vdims, o->dims, sizeof c->vdims);
    c->prank = prank;
    for (int i = 0; i < prank; i++) c->pdims[i] = pdims[i];
    c->ch_axis = ch_axis;
    c->n_ch = ch_axis >= 0 ? o->dims[ch_axis] : 0;
    c->can_sum = can_sum;
    c->oscale = 1.0f;
}

int cpu_chain_out(const cpu_chain *c) { return c->n_groups ? c->grp[c->n_groups - 1].out : -1; }

int cpu_chain_sum_value(const cpu_chain *c) {
    for (int i = 0; i < c->n_po; i++)
        if (c->po[i].kind == PO_SUM) return c->po[i].value;
    return -1;
}

static bool add_group(cpu_chain *c, const int *nodes, int n, int out, bool fold, const char *name) {
    if (c->n_groups >= CPU_MAX_CHAIN || c->n_nodes + n > CPU_MAX_CHAIN) return false;
    for (int i = 0; i < n; i++) c->nodes[c->n_nodes++] = nodes[i];
    c->grp[c->n_groups].node_end = c->n_nodes;
    c->grp[c->n_groups].po_end = c->n_po;
    c->grp[c->n_groups].out = out;
    c->grp[c->n_groups].fold = fold;
    snprintf(c->grp[c->n_groups].name, sizeof c->grp[c->n_groups].name, "%s", name);
    c->n_groups++;
    return true;
}

bool cpu_chain_truncate(cpu_chain *c) {
    if (!c->n_groups || c->grp[c->n_groups - 1].fold) return false;
    c->n_groups--;
    c->n_nodes = c->n_groups ? c->grp[c->n_groups - 1].node_end : 0;
    c->n_po = c->n_groups ? c->grp[c->n_groups - 1].po_end : 0;
    return true;
}

/* The other operand's dims (right-aligned to the value rank) in the primitive's dst dims; false when they
 * do not broadcast into the output or the merged leading dims are mixed. */
static bool operand_pdims(const cpu_chain *c, const si_val *o, int *nd, int64_t *pd) {
    int64_t d[SI_MAX_DIMS];
    if (o->ndim > c->vrank) return false;
    for (int i = 0; i < c->vrank; i++) {
        int j = i - (c->vrank - o->ndim);
        d[i] = j < 0 ? 1 : o->dims[j];
        if (d[i] != 1 && d[i] != c->vdims[i]) return false;
    }
    int merge = c->vrank - c->prank + 1; /* leading value dims that form the first primitive dim */
    if (merge < 1) return false;
    bool all1 = true, alleq = true;
    int64_t prod = 1;
    for (int i = 0; i < merge; i++) {
        all1 &= d[i] == 1;
        alleq &= d[i] == c->vdims[i];
        prod *= d[i];
    }
    if (!all1 && !alleq) return false;
    pd[0] = prod;
    for (int i = merge; i < c->vrank; i++) pd[i - merge + 1] = d[i];
    *nd = c->prank;
    return true;
}

/* Per-channel constant (or a scalar): its per-channel values into vals[n_ch]. */
static bool per_channel(const cpu_chain *c, const si_tensor *t, float *vals) {
    if (c->ch_axis < 0 || t->dtype != SI_F32 || t->ndim > c->vrank || !t->data) return false;
    int64_t cnt = si_shape_count(t->ndim, t->dims);
    for (int i = 0; i < t->ndim; i++) {
        int ax = i + (c->vrank - t->ndim);
        if (t->dims[i] != 1 && !(ax == c->ch_axis && t->dims[i] == c->n_ch)) return false;
    }
    const float *p = t->data;
    for (int64_t k = 0; k < c->n_ch; k++) vals[k] = cnt == 1 ? p[0] : p[k];
    return true;
}

/* Give the chain an identity per-channel affine (scale 1, shift 0) unless it has one. On allocation failure
 * the chain is left as it was (no half-made affine that a later fold would take as initialised). */
static bool ensure_affine(cpu_chain *c) {
    if (c->scale && c->shift) return true;
    float *scale = si_malloc(sizeof(float) * (size_t)(c->n_ch + 1));
    float *shift = si_malloc(sizeof(float) * (size_t)(c->n_ch + 1));
    if (!scale || !shift) {
        si_free(scale);
        si_free(shift);
        return false;
    }
    for (int64_t k = 0; k < c->n_ch; k++) scale[k] = 1, shift[k] = 0;
    si_free(c->scale);
    si_free(c->shift);
    c->scale = scale;
    c->shift = shift;
    return true;
}

/* Fold BatchNormalization (inference) into the per-channel affine. */
static bool fold_bn(const cpu_pb *b, cpu_chain *c, const si_node *n) {
    if (c->ch_axis != 1 || n->n_in < 5 || (n->n_out > 1 && (n->out[1] >= 0 || (n->n_out > 2 && n->out[2] >= 0))) ||
        si_attr_int(n, "training_mode", 0))
        return false;
    const si_tensor *sc = cpu_const_input(b->g, n, 1), *bi = cpu_const_input(b->g, n, 2), *mu = cpu_const_input(b->g, n, 3),
                    *var = cpu_const_input(b->g, n, 4);
    const si_tensor *ts[4] = {sc, bi, mu, var};
    for (int i = 0; i < 4; i++)
        if (!ts[i] || ts[i]->dtype != SI_F32 || si_shape_count(ts[i]->ndim, ts[i]->dims) != c->n_ch || !ts[i]->data) return false;
    if (!ensure_affine(c)) return false;
    float eps = si_attr_float(n, "epsilon", 1e-5f);
    const float *s = sc->data, *bb = bi->data, *m = mu->data, *v = var->data;
    for (int64_t k = 0; k < c->n_ch; k++) {
        float a = s[k] / sqrtf(v[k] + eps);
        c->scale[k] *= a;
        c->shift[k] = c->shift[k] * a + (bb[k] - m[k] * a);
    }
    return true;
}

static bool add_po(cpu_chain *c, cpu_po_kind kind, dnnl_alg_kind_t alg, float alpha, float beta, int value) {
    if (c->n_po >= CPU_MAX_PO) return false;
    cpu_po *p = &c->po[c->n_po++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->alg = alg;
    p->alpha = alpha;
    p->beta = beta;
    p->value = value;
    return true;
}

static dnnl_alg_kind_t binary_alg(const si_node *n) {
    const int t = n->op ? (int)n->op->id : -1;
    if (t == SI_OP_ADD || t == SI_OP_SUM) return dnnl_binary_add; /* Sum of two inputs */
    if (t == SI_OP_SUB) return dnnl_binary_sub;
    if (t == SI_OP_MUL) return dnnl_binary_mul;
    if (t == SI_OP_DIV) return dnnl_binary_div;
    if (t == SI_OP_MAX) return dnnl_binary_max;
    if (t == SI_OP_MIN) return dnnl_binary_min;
    return dnnl_alg_kind_undef;
}

/* Value v computed now, ahead of its place in the graph (true: v is computed, or its producer went into a step
 * that computes v's consumer), when it is a small operand whose producers (at most `depth` nodes deep) need
 * nothing the chain computes: a diffusion U-Net's time embedding (MatMul -> Swish ->
 * Unsqueeze) added to a Conv's output comes after the Conv in the node order, and without it the Add ran as its own
 * step on a reordered copy. */
static bool make_ready(cpu_pb *b, const cpu_chain *c, int v, int depth) {
    const si_val *val = &b->g->values[v];
    if (val->const_val || b->vbuf[v] >= 0) return true;
    const int p = val->producer;
    if (depth <= 0 || p < 0 || p == c->anchor || b->done[p]) return false;
    for (int i = 0; i < c->n_nodes; i++)
        if (c->nodes[i] == p) return false;
    const si_node *nd = &b->g->nodes[p];
    for (int k = 0; k < nd->n_in; k++) {
        if (nd->in[k] >= 0 && !make_ready(b, c, nd->in[k], depth - 1)) return false;
        if (b->vbuf[v] >= 0) return true; /* p went into a step made for an input (MatMul -> Sigmoid -> Mul) */
    }
    if (b->done[p]) return false;
    if (cpu_pb_lower_now(b, p)) {
        si_err_clear();
        return false;
    }
    return true; /* v computed, or p went into a step that computes what reads v (the caller checks its own value) */
}

/* Try to absorb the consumer of the chain's current value. */
static bool extend_once(cpu_pb *b, cpu_chain *c) {
    const si_graph *g = b->g;
    int v = cpu_chain_out(c);
    if (v < 0) v = g->nodes[c->anchor].out[0];
    int pn[8];
    dnnl_alg_kind_t palg;
    float palpha;
    int pout;
    int np = cpu_pattern_match(b, v, &palg, &palpha, pn, &pout);
    if (np) {
        int save = c->n_po;
        if (!add_po(c, PO_ELTWISE, palg, palpha, 0, -1)) return false;
        if (add_group(c, pn, np, pout, false, cpu_pattern_name(palg)))
            return true;
        c->n_po = save;
        return false;
    }
    int slot;
    int nn = single_consumer(b, v, &slot);
    if (nn < 0) return false;
    const si_node *n = &g->nodes[nn];
    if (!out_f32_like(g, n, v)) return false;
    int save_po = c->n_po;
    /* a Mul that must stay a multiplication of the product (cpu_int8f.c) is not folded into weights or scales */
    bool no_po = c->n_po == 0 && !(b->nofold && n->n_out == 1 && n->out[0] >= 0 && b->nofold[n->out[0]]);
    /* folds into the weights */
    if (no_po && c->ch_axis >= 0 && cpu_is_op(n, SI_OP_BATCH_NORMALIZATION) && slot == 0) {
        if (fold_bn(b, c, n)) return add_group(c, &nn, 1, n->out[0], true, "BatchNormalization");
        return false;
    }
    dnnl_alg_kind_t balg = binary_alg(n);
    if (balg != dnnl_alg_kind_undef && !n->domain[0] && n->n_in == 2) {
        int other = other_input(n, slot);
        if (other < 0 || other == v) return false;
        const si_val *ov = &g->values[other];
        if (ov->dtype != SI_F32 || !cpu_value_static(ov)) return false;
        bool first = slot == 0;
        if (!first && (balg == dnnl_binary_sub || balg == dnnl_binary_div)) return false;
        if (ov->const_val && no_po && c->ch_axis >= 0 && balg != dnnl_binary_max && balg != dnnl_binary_min) {
            float *vals = si_malloc(sizeof(float) * (size_t)(c->n_ch + 1));
            bool ok = vals && per_channel(c, ov->const_val, vals) && ensure_affine(c);
            if (ok) {
                for (int64_t k = 0; k < c->n_ch; k++) {
                    if (balg == dnnl_binary_add) c->shift[k] += vals[k];
                    else if (balg == dnnl_binary_sub) c->shift[k] -= vals[k];
                    else if (balg == dnnl_binary_mul) c->scale[k] *= vals[k], c->shift[k] *= vals[k];
                    else c->scale[k] /= vals[k], c->shift[k] /= vals[k];
                }
            }
            si_free(vals);
            if (ok) return add_group(c, &nn, 1, n->out[0], true, n->op_type);
        }
        float sc;
        if (no_po && c->allow_oscale && (balg == dnnl_binary_mul || balg == dnnl_binary_div) && const_scalar(g, other, &sc) &&
            sc != 0.0f && isfinite(sc)) {
            c->oscale = balg == dnnl_binary_mul ? c->oscale * sc : c->oscale / sc;
            return add_group(c, &nn, 1, n->out[0], true, n->op_type);
        }
        /* computed after the anchor: a small broadcast operand is computed first */
        if (!ov->const_val && b->vbuf[other] < 0 &&
            (si_shape_count(ov->ndim, ov->dims) > SI_MIN((int64_t)65536, si_shape_count(c->vrank, c->vdims) / 2) || b->no_fusion ||
             !make_ready(b, c, other, 6) || b->vbuf[other] < 0))
            return false;
        bool same = ov->ndim == c->vrank && !memcmp(ov->dims, c->vdims, sizeof(int64_t) * (size_t)c->vrank);
        if (balg == dnnl_binary_add && same && !ov->const_val && c->can_sum && cpu_chain_sum_value(c) < 0) {
            if (!add_po(c, PO_SUM, dnnl_alg_kind_undef, 1, 0, other)) return false;
        } else {
            if (!add_po(c, PO_BINARY, balg, 0, 0, other)) return false;
            cpu_po *p = &c->po[c->n_po - 1];
            if (!operand_pdims(c, ov, &p->ndim, p->dims)) {
                c->n_po = save_po;
                return false;
            }
        }
        if (add_group(c, &nn, 1, n->out[0], false, n->op_type)) return true;
        c->n_po = save_po;
        return false;
    }
    dnnl_alg_kind_t alg[2];
    float al[2], be[2];
    int ne = slot == 0 ? cpu_eltwise_of(g, n, alg, al, be) : 0;
    if (!ne) return false;
    if (!c->own && cpu_is_op(n, SI_OP_TANH) && cpu_own_tanh()) return false; /* the own Tanh is faster than oneDNN's post-op */
    for (int i = 0; i < ne; i++)
        if (!add_po(c, PO_ELTWISE, alg[i], al[i], be[i], -1)) {
            c->n_po = save_po;
            return false;
        }
    if (add_group(c, &nn, 1, n->out[0], false, n->op_type)) return true;
    c->n_po = save_po;
    return false;
}

void cpu_chain_extend(cpu_pb *b, cpu_chain *c) {
    if (b->no_fusion) return;
    while (extend_once(b, c)) {}
}

/* The memory descriptor of binary post-op p's operand: plain over its dims, or for a chain over [M, N] given to a 1x1
 * convolution (mm1x1) channels-last over [1, N, M, 1], the same bytes. */
static void po_md(const cpu_chain *c, const cpu_po *p, dnnl_memory_desc_t *md) {
    if (c->mm1x1 && p->ndim == 2) {
        dnnl_dims_t d = {1, p->dims[1], p->dims[0], 1};
        dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, dnnl_nhwc);
        return;
    }
    cpu_md_plain(md, p->ndim, p->dims);
}

dnnl_primitive_attr_t cpu_chain_attr(const cpu_chain *c, float output_scale) {
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) {
        si_err(SI_ERR_NO_MEM, "CPU: cannot create a oneDNN attribute");
        return NULL;
    }
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_primitive_attr_set_fpmath_mode(attr, dnnl_fpmath_mode_strict);
    if (output_scale != 1.0f) dnnl_primitive_attr_set_output_scales(attr, 1, 0, &output_scale);
    if (c && c->n_po) {
        dnnl_post_ops_t po;
        dnnl_status_t st = dnnl_post_ops_create(&po);
        for (int i = 0; st == dnnl_success && i < c->n_po; i++) {
            const cpu_po *p = &c->po[i];
            if (p->kind == PO_ELTWISE) st = dnnl_post_ops_append_eltwise(po, 1.0f, p->alg, p->alpha, p->beta);
            else if (p->kind == PO_SUM) st = dnnl_post_ops_append_sum(po, 1.0f);
            else {
                dnnl_memory_desc_t md;
                po_md(c, p, &md);
                st = dnnl_post_ops_append_binary(po, p->alg, &md);
            }
        }
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
        if (st != dnnl_success) {
            dnnl_primitive_attr_destroy(attr);
            cpu_dnnl_err(st, "post-op creation", NULL);
            return NULL;
        }
    }
    return attr;
}

si_result cpu_chain_args(cpu_pb *b, const cpu_chain *c, cpu_arg *args, int *n_args) {
    for (int i = 0; i < c->n_po; i++) {
        const cpu_po *p = &c->po[i];
        if (p->kind != PO_BINARY) continue;
        dnnl_memory_desc_t md, pmd;
        po_md(c, p, &md);
        cpu_md_plain(&pmd, p->ndim, p->dims);
        int bf = cpu_pb_in_md(b, p->value, &pmd); /* the same bytes as md */
        if (bf >= 0 && !dnnl_memory_desc_equal(&md, &pmd)) bf = cpu_pb_alias(b, bf, &md);
        if (bf < 0) return SI_ERR_INTERNAL;
        args[*n_args].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1;
        args[*n_args].buf = bf;
        (*n_args)++;
    }
    return SI_OK;
}

int cpu_chain_dst(cpu_pb *b, const cpu_chain *c, const dnnl_memory_desc_t *dst_md) {
    int out = cpu_chain_out(c);
    if (out < 0) out = b->g->nodes[c->anchor].out[0];
    int res = cpu_chain_sum_value(c);
    if (res < 0) return cpu_pb_new_out(b, out, dst_md);
    /* the sum post-op accumulates into dst: dst starts as the residual, in place when nobody reads it later */
    int rb = cpu_pb_in_md(b, res, dst_md);
    if (rb < 0) return -1;
    int uses = 0;
    for (int i = 0; i < c->n_nodes; i++)
        for (int k = 0; k < b->g->nodes[c->nodes[i]].n_in; k++) uses += b->g->nodes[c->nodes[i]].in[k] == res;
    if (!cpu_pb_can_overwrite(b, rb, uses)) {
        int cp = cpu_pb_copy(b, rb);
        if (cp < 0) return -1;
        rb = cp;
    }
    return cpu_pb_new_inplace(b, out, dst_md, rb);
}

void cpu_chain_consume(cpu_pb *b, const cpu_chain *c) {
    cpu_pb_consume(b, c->anchor);
    for (int i = 0; i < c->n_nodes; i++) cpu_pb_consume(b, c->nodes[i]);
}

void cpu_chain_name(const cpu_chain *c, const char *anchor, char *buf, size_t n) {
    size_t o = (size_t)snprintf(buf, n, "%s", anchor);
    for (int i = 0; i < c->n_groups && o < n; i++) o += (size_t)snprintf(buf + o, n - o, "+%s", c->grp[i].name);
}

void cpu_chain_free(cpu_chain *c) {
    si_free(c->scale);
    si_free(c->shift);
    c->scale = c->shift = NULL;
}

uint64_t cpu_chain_fp(const cpu_chain *c) {
    uint64_t h = cpu_fp(0, &c->n_ch, sizeof c->n_ch);
    h = cpu_fp(h, &c->oscale, sizeof c->oscale);
    bool has[2] = {c->scale != NULL, c->shift != NULL};
    h = cpu_fp(h, has, sizeof has);
    if (c->n_ch > 0 && c->scale) h = cpu_fp(h, c->scale, sizeof(float) * (size_t)c->n_ch);
    if (c->n_ch > 0 && c->shift) h = cpu_fp(h, c->shift, sizeof(float) * (size_t)c->n_ch);
    return h;
}

// --- activations applied by own kernels ------------------------------------------------------------------------

bool cpu_act_of(const cpu_po *po, cpu_act *a) {
    if (po->kind != PO_ELTWISE) return false;
    switch (po->alg) {
    case dnnl_eltwise_relu: case dnnl_eltwise_logistic: case dnnl_eltwise_tanh: case dnnl_eltwise_clip: case dnnl_eltwise_clip_v2:
    case dnnl_eltwise_swish: break;
    default: return false;
    }
    *a = (cpu_act){po->alg, po->alpha, po->beta};
    return true;
}

#if defined(__x86_64__)
/* y = Sigmoid(a y), or y Sigmoid(a y) (times_x): e^-|a y| on the vector exp (its argument <= 0), so no overflow. */
__attribute__((target("avx512f"))) static void sigmoid512(float *y, int64_t count, float a, bool times_x) {
    const __m512 va = _mm512_set1_ps(a), one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < count; i += 16) {
        const __mmask16 m = (__mmask16)(count - i >= 16 ? 0xffff : (1u << (count - i)) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, y + i), z = _mm512_mul_ps(va, v);
        const __m512 e = cpu_exp512(_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(z), _mm512_set1_epi32((int)0x80000000))));
        const __m512 pos = _mm512_div_ps(one, _mm512_add_ps(one, e));
        const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
        const __m512 sg = _mm512_mask_mul_ps(pos, neg, e, pos);
        _mm512_mask_storeu_ps(y + i, m, times_x ? _mm512_mul_ps(v, sg) : sg);
    }
}
#endif

int cpu_chain_own_acts(cpu_pb *b, cpu_chain *c, cpu_act *acts) {
    c->own = true;
    cpu_chain_extend(b, c);
    for (;;) {
        bool ok = c->n_po <= CPU_MAX_ACT;
        for (int i = 0; ok && i < c->n_po; i++) ok = cpu_act_of(&c->po[i], &acts[i]);
        if (ok || !cpu_chain_truncate(c)) break;
    }
    return c->n_po;
}

void cpu_act_apply(const cpu_act *acts, int n_act, float *y, int64_t count) {
    for (int a = 0; a < n_act; a++) {
        const float al = acts[a].alpha, be = acts[a].beta;
#if defined(__x86_64__)
        if ((acts[a].alg == dnnl_eltwise_logistic || acts[a].alg == dnnl_eltwise_swish) && cpu_vec_get()->avx512) {
            sigmoid512(y, count, acts[a].alg == dnnl_eltwise_swish ? al : 1.0f, acts[a].alg == dnnl_eltwise_swish);
            continue;
        }
#endif
        switch (acts[a].alg) {
        case dnnl_eltwise_relu:
            for (int64_t i = 0; i < count; i++) y[i] = y[i] > 0 ? y[i] : y[i] * al;
            break;
        case dnnl_eltwise_logistic:
            for (int64_t i = 0; i < count; i++) y[i] = 1.0f / (1.0f + expf(-y[i]));
            break;
        case dnnl_eltwise_tanh:
            for (int64_t i = 0; i < count; i++) y[i] = tanhf(y[i]);
            break;
        case dnnl_eltwise_clip:
        case dnnl_eltwise_clip_v2:
            for (int64_t i = 0; i < count; i++) y[i] = y[i] < al ? al : y[i] > be ? be : y[i];
            break;
        case dnnl_eltwise_swish:
            for (int64_t i = 0; i < count; i++) y[i] = y[i] / (1.0f + expf(-al * y[i]));
            break;
        default: break;
        }
    }
}
