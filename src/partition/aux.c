/*
 * aux.c — finding the attentions that run as host flash attention (aux.h).
 */
#include "partition/aux.h"

#include "ops/llm.h"

#include <math.h>

static bool is_op(const si_node *n, const char *type) { return !strcmp(n->op_type, type) && (!n->domain || !n->domain[0]); }

/* The only node reading v (v not a graph output), or -1. */
static int sole_consumer(const si_graph *g, int v) {
    if (v < 0 || g->values[v].is_output) return -1;
    int who = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++)
            if (si_node_reads(n, k) == v) {
                if (who >= 0 && who != i) return -1;
                who = i;
            }
    }
    return who;
}

static bool used(const si_graph *g, int v) {
    if (v < 0) return false;
    if (g->values[v].is_output) return true;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_in + g->nodes[i].n_implicit; k++)
            if (si_node_reads(&g->nodes[i], k) == v) return true;
    return false;
}

static bool f32(const si_graph *g, int v, int rank) {
    return v >= 0 && g->values[v].dtype == SI_F32 && g->values[v].ndim == rank;
}

/* An output: float32 (as inferred: an op whose output type is left to run time is not taken, the submodel after
 * it would not know what it reads), of that rank or of a rank not known at compile time. */
static bool f32_out(const si_graph *g, int v, int rank) {
    if (v < 0) return false;
    const si_val *x = &g->values[v];
    return x->dtype == SI_F32 && (x->ndim == rank || x->ndim < 0);
}

static bool match_attention(const si_graph *g, int ni, si_hfa_match *m) {
    const si_node *n = &g->nodes[ni];
    if (n->n_in < 3 || n->n_out < 1 || n->out[0] < 0) return false;
    for (int k = 4; k < n->n_in; k++)
        if (n->in[k] >= 0) return false; /* past_key, past_value, nonpad_kv_seqlen */
    for (int k = 1; k < n->n_out; k++)
        if (used(g, n->out[k])) return false;
    if (si_attr_float(n, "softcap", 0.0f) != 0.0f) return false;
    const int q = n->in[0], k = n->in[1], v = n->in[2], mk = n->n_in > 3 ? n->in[3] : -1;
    if (!f32(g, q, 4) || !f32(g, k, 4) || !f32(g, v, 4) || !f32_out(g, n->out[0], 4)) return false;
    const si_val *qv = &g->values[q], *kv = &g->values[k];
    if (qv->dims[1] < 0 || qv->dims[1] != kv->dims[1]) return false; /* one head count (no grouped heads) */
    if (mk >= 0) {
        const si_val *mv = &g->values[mk];
        if ((mv->dtype != SI_F32 && mv->dtype != SI_BOOL) || mv->ndim < 2 || mv->ndim > 4) return false;
    }
    const si_attr *sc = si_node_attr(n, "scale");
    if (!sc && qv->dims[3] <= 0) return false;
    *m = (si_hfa_match){.n_nodes = 1, .q = q, .k = k, .v = v, .mask = mk, .k_axis = 2, .transpose_k = true,
                        .causal = si_attr_int(n, "is_causal", 0) != 0, .scale_node = -1,
                        .scale = sc ? sc->f : (float)(1.0 / sqrt((double)qv->dims[3])), .out = n->out[0], .keys = kv->dims[2]};
    m->nodes[0] = ni;
    return true;
}

/* MatMul(Q, K^T) [Mul|Div by a one-element constant] [Add mask] Softmax(last axis) MatMul(P, V). */
static bool match_pattern(const si_graph *g, int ni, si_hfa_match *m) {
    const si_node *n = &g->nodes[ni];
    if (n->n_in != 2 || n->n_out != 1) return false;
    const int q = n->in[0], kt = n->in[1];
    if (q < 0 || kt < 0) return false;
    const int r = g->values[q].ndim;
    if (r < 2 || !f32(g, q, r) || !f32(g, kt, r) || g->values[q].const_val) return false;
    *m = (si_hfa_match){.q = q, .k = kt, .mask = -1, .k_axis = r - 1, .scale_node = -1, .keys = g->values[kt].dims[r - 1]};
    m->nodes[m->n_nodes++] = ni;
    int v = n->out[0], c = sole_consumer(g, v);
    if (c < 0) return false;
    const si_node *cn = &g->nodes[c];
    if ((is_op(cn, "Mul") || is_op(cn, "Div")) && cn->n_in == 2 && cn->n_out == 1) {
        const int other = cn->in[0] == v ? cn->in[1] : cn->in[0];
        const si_tensor *ct = other >= 0 ? g->values[other].const_val : NULL;
        if (!ct || ct->dtype != SI_F32 || si_shape_count(ct->ndim, ct->dims) != 1 || ct->ndim > r) return false;
        if (is_op(cn, "Div") && cn->in[0] != v) return false; /* c / scores is no scale */
        m->scale_node = c;
        m->nodes[m->n_nodes++] = c;
        v = cn->out[0];
        if ((c = sole_consumer(g, v)) < 0) return false;
        cn = &g->nodes[c];
    }
    if (is_op(cn, "Add") && cn->n_in == 2 && cn->n_out == 1) {
        const int mk = cn->in[0] == v ? cn->in[1] : cn->in[0];
        if (mk < 0 || mk == v || g->values[mk].dtype != SI_F32 || g->values[mk].ndim < 1 || g->values[mk].ndim > r) return false;
        m->mask = mk;
        m->nodes[m->n_nodes++] = c;
        v = cn->out[0];
        if ((c = sole_consumer(g, v)) < 0) return false;
        cn = &g->nodes[c];
    }
    if (!is_op(cn, "Softmax") || cn->n_out != 1) return false;
    int64_t axis = si_attr_int(cn, "axis", cn->opset >= 13 ? -1 : 1);
    if (axis < 0) axis += r;
    if (axis != r - 1) return false;
    m->nodes[m->n_nodes++] = c;
    v = cn->out[0];
    if ((c = sole_consumer(g, v)) < 0) return false;
    cn = &g->nodes[c];
    if (!is_op(cn, "MatMul") || cn->n_in != 2 || cn->in[0] != v || cn->in[1] == v) return false;
    m->v = cn->in[1];
    if (!f32(g, m->v, r) || !f32_out(g, cn->out[0], r)) return false;
    m->nodes[m->n_nodes++] = c;
    m->out = cn->out[0];
    return true;
}

bool si_hfa_match_at(const si_graph *g, int n, si_hfa_match *m) {
    const si_node *nd = &g->nodes[n];
    if (is_op(nd, "Attention")) return match_attention(g, n, m);
    if (is_op(nd, "MatMul")) return match_pattern(g, n, m);
    return false;
}

static const si_tensor *cty(const si_graph *g, int v, si_dtype dt, int rank) {
    return v >= 0 && g->values[v].const_val && g->values[v].const_val->dtype == dt && g->values[v].const_val->ndim == rank
               ? g->values[v].const_val
               : NULL;
}

/* QMoE's packed weights, scales and zero points as MatMulNBits can read an expert's slice of them (views). */
static bool qmoe_weights(const si_graph *g, const si_node *n, int64_t f, si_moe_match *m) {
    const int64_t bits = si_attr_int(n, "expert_weight_bits", 4), blk = si_attr_int(n, "block_size", 0);
    if ((bits != 2 && bits != 4 && bits != 8) || blk < 0 || si_node_attr(n, "quant_type")) return false;
    const int per = 8 / (int)bits;
    for (int k = 8; k < n->n_in; k++)
        if (n->in[k] >= 0 && k != 11 && k != 12) return false; /* fc3, router_weights */
    const si_tensor *w1 = cty(g, n->in[2], SI_U8, 3), *w2 = cty(g, n->in[5], SI_U8, 3), *s1 = cty(g, n->in[3], SI_F32, blk ? 3 : 2);
    const si_tensor *s2 = cty(g, n->in[6], SI_F32, blk ? 3 : 2);
    if (!w1 || !w2 || !s1 || !s2) return false;
    const int64_t E = w1->dims[0], fF = w1->dims[1], H = w1->dims[2] * per, F = w2->dims[2] * per;
    const int64_t b1 = blk ? blk : H, b2 = blk ? blk : F;
    if (fF != f * F || w2->dims[0] != E || w2->dims[1] != H || !si_nbits_block_ok(b1) || !si_nbits_block_ok(b2) || H % b1 || F % b2 ||
        si_shape_count(s1->ndim, s1->dims) != E * fF * (H / b1) || si_shape_count(s2->ndim, s2->dims) != E * H * (F / b2))
        return false;
    const int z1 = n->n_in > 11 ? n->in[11] : -1, z2 = n->n_in > 12 ? n->in[12] : -1;
    /* zero points per block: MatMulNBits' packed layout, read as views; per row ([E, rows / per], several rows a
     * byte): given to the expert models as floats */
    const si_tensor *zt1 = z1 >= 0 ? cty(g, z1, SI_U8, blk ? 3 : 2) : NULL, *zt2 = z2 >= 0 ? cty(g, z2, SI_U8, blk ? 3 : 2) : NULL;
    const int64_t zc1 = blk ? E * fF * ((H / b1 + per - 1) / per) : E * ((fF + per - 1) / per);
    const int64_t zc2 = blk ? E * H * ((F / b2 + per - 1) / per) : E * ((H + per - 1) / per);
    if ((z1 >= 0 && (!zt1 || si_shape_count(zt1->ndim, zt1->dims) != zc1)) || (z2 >= 0 && (!zt2 || si_shape_count(zt2->ndim, zt2->dims) != zc2)))
        return false;
    m->quant = true, m->bits = (int)bits, m->block = blk, m->rowzp = !blk && (z1 >= 0 || z2 >= 0);
    m->s1 = n->in[3], m->s2 = n->in[6], m->z1 = z1, m->z2 = z2;
    m->E = E, m->F = F, m->H = H;
    return true;
}

bool si_moe_match_at(const si_graph *g, int ni, si_moe_match *m) {
    const si_node *n = &g->nodes[ni];
    const bool q = n->domain && !strcmp(n->domain, "com.microsoft") && !strcmp(n->op_type, "QMoE");
    if ((!q && strcmp(n->op_type, "MoE")) || !n->domain || strcmp(n->domain, "com.microsoft") || n->n_in < (q ? 7 : 5) || n->n_out != 1)
        return false;
    for (int k = 6; !q && k < n->n_in; k++)
        if (n->in[k] >= 0) return false; /* fc3 */
    const int x = n->in[0], r = n->in[1];
    if (x < 0 || r < 0 || g->values[x].dtype != SI_F32 || (g->values[x].ndim != 2 && g->values[x].ndim != 3) || g->values[x].const_val ||
        g->values[r].dtype != SI_F32 || g->values[r].ndim != 2 || g->values[n->out[0]].dtype != SI_F32)
        return false;
    memset(m, 0, sizeof *m);
    const char *act = "relu";
    const si_attr *a = si_node_attr(n, "activation_type");
    if (a && a->s) act = a->s;
    static const char *const acts[] = {"relu", "gelu", "silu", "identity", "swiglu"};
    int ai = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(act, acts[i])) ai = i;
    if (ai == SI_MOE_SWIGLU && (si_attr_int(n, "swiglu_fusion", 0) != 1 || si_graph_opset(g, "") < 13)) return false;
    if (ai < 0) return false;
    const int64_t f = ai == SI_MOE_SWIGLU ? 2 : 1;
    const int b1v = q ? n->in[4] : n->in[3], b2v = q ? (n->n_in > 7 ? n->in[7] : -1) : (n->n_in > 5 ? n->in[5] : -1);
    int64_t E, F, H;
    if (q) {
        if (!qmoe_weights(g, n, f, m)) return false;
        E = m->E, F = m->F, H = m->H;
    } else {
        const si_tensor *w1 = cty(g, n->in[2], SI_F32, 3), *w2 = cty(g, n->in[4], SI_F32, 3);
        if (!w1 || !w2) return false;
        E = w1->dims[0], F = w2->dims[2], H = w1->dims[2];
        if (w1->dims[1] != f * F || w2->dims[0] != E || w2->dims[1] != H) return false;
    }
    const si_tensor *b1 = cty(g, b1v, SI_F32, 2), *b2 = cty(g, b2v, SI_F32, 2);
    if ((b1v >= 0 && !b1) || (b2v >= 0 && !b2)) return false;
    const int64_t k = si_attr_int(n, "k", 1);
    if ((b1 && (b1->dims[0] != E || b1->dims[1] != f * F)) || (b2 && (b2->dims[0] != E || b2->dims[1] != H)) || k < 1 || k > E ||
        g->values[x].dims[g->values[x].ndim - 1] != H || (g->values[r].dims[1] >= 0 && g->values[r].dims[1] != E))
        return false;
    m->alpha = si_attr_float(n, "activation_alpha", 1.0f);
    m->beta = si_attr_float(n, "activation_beta", 0.0f);
    m->limit = si_node_attr(n, "swiglu_limit") ? si_attr_float(n, "swiglu_limit", 0.0f) : INFINITY;
    m->node = ni, m->x = x, m->router = r, m->w1 = n->in[2], m->b1 = b1 ? b1v : -1, m->w2 = q ? n->in[5] : n->in[4], m->b2 = b2 ? b2v : -1;
    m->act = ai, m->k = k, m->E = E, m->F = F, m->H = H;
    m->normalize = q || si_attr_int(n, "normalize_routing_weights", 0) != 0; /* QMoE: always (ops/moe.c) */
    return true;
}

int si_aux_find(const si_graph *g, int64_t hfa_tile, bool moe, int *unit, int *kind) {
    for (int i = 0; i < g->n_nodes; i++) unit[i] = -1;
    int nu = 0;
    for (int i = 0; moe && i < g->n_nodes; i++) {
        si_moe_match mm;
        if (!si_moe_match_at(g, i, &mm)) continue;
        if (kind) kind[nu] = SI_AUX_MOE;
        unit[i] = nu++;
    }
    if (hfa_tile <= 0) return nu;
    for (int i = 0; i < g->n_nodes; i++) {
        si_hfa_match m;
        if (unit[i] >= 0 || !si_hfa_match_at(g, i, &m)) continue;
        if (m.keys >= 0 && m.keys < 2 * hfa_tile) continue; /* a short context: the plain attention is cheaper */
        bool free_ = true;
        for (int k = 0; k < m.n_nodes; k++) free_ = free_ && unit[m.nodes[k]] < 0;
        if (!free_) continue;
        for (int k = 0; k < m.n_nodes; k++) unit[m.nodes[k]] = nu;
        if (kind) kind[nu] = SI_AUX_HFA;
        nu++;
    }
    return nu;
}
