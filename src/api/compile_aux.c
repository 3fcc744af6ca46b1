/*
 * compile_aux.c — the factory's product for an auxiliary unit (si_submodel.aux, partition/aux.h) on one device:
 *   - host flash attention: a tile model and a final model compiled on that device, with the attention as it is
 *     (the plain model) for short contexts, all three run by the executor core's driver (exec/hfa.c);
 *   - sparse MoE: one model per expert (its weights views of the node's, not copies) and the MoE as it is, run by
 *     the executor core's MoE driver (exec/moe_drv.c).
 *
 * The fail-safe layer sees the driver as the submodel's compiled model on that device: a failure of any of its
 * models fails the unit over, and the factory builds them all again on the next device. Nothing here outlives
 * the driver: the generated graphs (which a device may read until its compiled model goes) are freed with it.
 */
#include "api/compiled.h"
#include "exec/hfa.h"
#include "exec/moe_drv.h"
#include "ops/llm.h"
#include "partition/aux.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A little graph builder: the first error sticks in b->st. */
typedef struct gb {
    si_graph *g;
    si_result st;
    int n;
} gb;

static int gb_value(gb *b, const char *name) {
    if (b->st) return -1;
    int v = si_graph_add_value(b->g, name);
    if (v < 0) b->st = si_err(SI_ERR_NO_MEM, "out of memory");
    return v;
}

static bool gb_push(gb *b, int **list, int *n, int v) {
    int *nl = si_realloc(*list, sizeof(int) * (size_t)(*n + 1));
    if (!nl) {
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return false;
    }
    *list = nl;
    nl[(*n)++] = v;
    return true;
}

static int gb_input(gb *b, const char *name, int ndim, const int64_t *dims) {
    int v = gb_value(b, name);
    if (v < 0) return -1;
    si_val *x = &b->g->values[v];
    x->dtype = SI_F32;
    x->ndim = ndim;
    memcpy(x->dims, dims, sizeof(int64_t) * (size_t)ndim);
    x->is_input = true;
    return gb_push(b, &b->g->inputs, &b->g->n_inputs, v) ? v : -1;
}

static void gb_output(gb *b, int v) {
    if (b->st || v < 0) return;
    b->g->values[v].is_output = true;
    gb_push(b, &b->g->outputs, &b->g->n_outputs, v);
}

/* An initializer holding t (a reference is taken: constants are shared, not copied). */
static int gb_const(gb *b, const char *name, si_tensor *t) {
    int v = gb_value(b, name);
    if (v < 0) return -1;
    si_val_set_const(&b->g->values[v], si_const_ref(t));
    return v;
}

static int gb_const_new(gb *b, const char *name, si_dtype dt, int ndim, const int64_t *dims, const void *data) {
    si_tensor *t = NULL;
    if (b->st) return -1;
    if ((b->st = si_tensor_create(dt, ndim, dims, &t))) return -1;
    memcpy(t->data, data, t->nbytes);
    int v = gb_const(b, name, t);
    si_const_unref(t);
    return v;
}

/* A node of the default domain: op(ins...) -> a new value; its index in *node when node is not NULL. */
#define GB_ABSENT (-2) /* an optional input left out (gb_node_in) */

/* A node of op in domain; in[i] GB_ABSENT: that optional input is absent (-1: a failed value, the node fails). */
static int gb_node_in(gb *b, const char *op, const char *domain, int n_in, const int *in, int *node) {
    if (b->st) return -1;
    for (int i = 0; i < n_in; i++)
        if (in[i] == -1) return -1;
    char nm[64];
    snprintf(nm, sizeof nm, "hfa_%s_%d", op, b->n++);
    int out = gb_value(b, nm);
    if (out < 0) return -1;
    si_node n;
    memset(&n, 0, sizeof n);
    n.name = si_strdup(nm);
    n.op_type = si_strdup(op);
    n.domain = si_strdup(domain);
    n.in = si_malloc(sizeof(int) * (size_t)(n_in + 1));
    n.out = si_malloc(sizeof(int));
    if (!n.name || !n.op_type || !n.domain || !n.in || !n.out) {
        si_node_clear(&n);
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return -1;
    }
    n.n_in = n_in, n.n_out = 1;
    for (int i = 0; i < n_in; i++) n.in[i] = in[i] == GB_ABSENT ? -1 : in[i];
    n.out[0] = out;
    int idx = si_graph_add_node(b->g, &n);
    if (idx < 0) { /* not taken over */
        si_node_clear(&n);
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return -1;
    }
    if (node) *node = idx;
    return out;
}

static int gb_node(gb *b, const char *op, int n_in, const int *in, int *node) {
    for (int i = 0; i < n_in; i++)
        if (in[i] < 0) return -1;
    return gb_node_in(b, op, "", n_in, in, node);
}

/* Room for one more attribute of the node, zeroed and named (not yet counted in n_attr), or NULL (b->st set). */
static si_attr *gb_attr_slot(gb *b, int node, const char *name) {
    if (b->st) return NULL;
    si_node *nd = &b->g->nodes[node];
    si_attr *a = si_realloc(nd->attrs, sizeof(si_attr) * (size_t)(nd->n_attr + 1));
    if (!a) {
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return NULL;
    }
    nd->attrs = a;
    a = &a[nd->n_attr];
    memset(a, 0, sizeof *a);
    if (!(a->name = si_strdup(name))) {
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return NULL;
    }
    return a;
}

static void gb_attr_int(gb *b, int node, const char *name, int64_t v, const int64_t *ints, int n) {
    si_attr *a = gb_attr_slot(b, node, name);
    if (!a) return;
    if (ints && !(a->ints = si_malloc(sizeof(int64_t) * (size_t)(n + 1)))) {
        SI_FREE_CLEAR(a->name);
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return;
    }
    b->g->nodes[node].n_attr++;
    if (ints) {
        a->type = SI_ATTR_INTS;
        a->n = n;
        memcpy(a->ints, ints, sizeof(int64_t) * (size_t)n);
    } else {
        a->type = SI_ATTR_INT;
        a->i = v;
    }
}

static void gb_attr_str(gb *b, int node, const char *name, const char *v) {
    si_attr *a = gb_attr_slot(b, node, name);
    if (!a) return;
    if (!(a->s = si_strdup(v))) {
        SI_FREE_CLEAR(a->name);
        b->st = si_err(SI_ERR_NO_MEM, "out of memory");
        return;
    }
    a->type = SI_ATTR_STRING;
    b->g->nodes[node].n_attr++;
}

static si_result gb_begin(gb *b) {
    memset(b, 0, sizeof *b);
    if (!(b->g = si_graph_new()) || !(b->g->opsets = si_calloc(1, sizeof(si_opset))) || !(b->g->n_opsets = 1) ||
        !(b->g->opsets[0].domain = si_strdup(""))) {
        si_graph_free(b->g);
        b->g = NULL;
        return b->st = si_err(SI_ERR_NO_MEM, "out of memory");
    }
    b->g->opsets[0].version = 21;
    b->g->ir_version = 10;
    return SI_OK;
}

/* Finalize and infer shapes; the graph or NULL (b->st set). */
static si_graph *gb_end(gb *b, const si_graph *like) {
    if (!b->st) b->st = si_graph_copy_syms(b->g, like);
    if (!b->st) b->st = si_graph_finalize(b->g);
    if (!b->st) b->st = si_graph_infer_shapes(b->g, SI_FOLD_AT_COMPILE);
    if (b->st) {
        si_graph_free(b->g);
        b->g = NULL;
    }
    return b->g;
}

static int port_of(const si_graph *g, int v) {
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == v) return i;
    return -1;
}

typedef struct aux_graphs {
    si_graph *tile, *final;
} aux_graphs;

static void aux_graphs_free(void *p) {
    aux_graphs *a = p;
    if (!a) return;
    si_graph_free(a->tile);
    si_graph_free(a->final);
    si_free(a);
}

/* Rows of the attention (queries times every leading dimension) when known at compile time, else -1. */
static int64_t rows_of(const si_val *q) {
    int64_t n = 1;
    for (int i = 0; i < q->ndim - 1; i++) {
        if (q->dims[i] < 0) return -1;
        n *= q->dims[i];
    }
    return n;
}

/* The tile graph of match m in g for T keys per tile (hfa.h gives its ports). The scores [..., Sq, T] are seen as
 * [1, rows, T] and the running state as [1, rows, Dv] and [1, rows, 1], so that every broadcast is along the
 * middle axis (the form devices' fast binary kernels take: oneDNN's has no fast kernel for a broadcast last axis). */
static si_graph *tile_graph(const si_graph *g, const si_hfa_match *m, int64_t T, si_result *st) {
    gb b;
    if ((*st = gb_begin(&b))) return NULL;
    const si_val *qv = &g->values[m->q], *kv = &g->values[m->k], *vv = &g->values[m->v];
    const int r = qv->ndim;
    const int64_t R = rows_of(qv), Dv = vv->dims[r - 1];
    int64_t kd[SI_MAX_DIMS], vd[SI_MAX_DIMS], md[SI_MAX_DIMS];
    memcpy(kd, kv->dims, sizeof kd);
    memcpy(vd, vv->dims, sizeof vd);
    kd[m->k_axis] = T;
    vd[r - 2] = T;
    for (int i = 0; i < r; i++) md[i] = 1;
    if (m->mask >= 0) {
        const si_val *mv = &g->values[m->mask];
        for (int i = 0; i < mv->ndim; i++) md[r - mv->ndim + i] = mv->dims[i];
    }
    if (m->causal) md[r - 2] = qv->dims[r - 2];
    md[r - 1] = T;
    int q = gb_input(&b, "q", r, qv->dims), k = gb_input(&b, "k_tile", r, kd), v = gb_input(&b, "v_tile", r, vd);
    int mk = gb_input(&b, "mask_tile", r, md);
    int acc = gb_input(&b, "acc", 3, (int64_t[]){1, R < 0 ? SI_DIM_UNKNOWN : R, Dv < 0 ? SI_DIM_UNKNOWN : Dv});
    int mx = gb_input(&b, "m", 3, (int64_t[]){1, R < 0 ? SI_DIM_UNKNOWN : R, 1});
    int l = gb_input(&b, "l", 3, (int64_t[]){1, R < 0 ? SI_DIM_UNKNOWN : R, 1});
    if (m->transpose_k) {
        int64_t perm[SI_MAX_DIMS];
        for (int i = 0; i < r; i++) perm[i] = i;
        perm[r - 2] = r - 1, perm[r - 1] = r - 2;
        int tn = -1;
        k = gb_node(&b, "Transpose", 1, &k, &tn);
        if (tn >= 0) gb_attr_int(&b, tn, "perm", 0, perm, r);
    }
    int s = gb_node(&b, "MatMul", 2, (int[]){q, k}, NULL);
    if (m->scale_node >= 0) { /* the pattern's own scale node, its constant shared */
        const si_node *sn = &g->nodes[m->scale_node];
        const int cpos = g->values[sn->in[0]].const_val ? 0 : 1;
        int c = gb_const(&b, "scale", g->values[sn->in[cpos]].const_val);
        s = gb_node(&b, sn->op_type, 2, cpos ? (int[]){s, c} : (int[]){c, s}, NULL);
    } else if (m->transpose_k) { /* Attention: its scale */
        int c = gb_const_new(&b, "scale", SI_F32, 0, NULL, &m->scale);
        s = gb_node(&b, "Mul", 2, (int[]){s, c}, NULL);
    }
    s = gb_node(&b, "Add", 2, (int[]){s, mk}, NULL);
    int s_shape = gb_node(&b, "Shape", 1, &s, NULL);
    int rows_t = gb_const_new(&b, "rows_t", SI_I64, 1, (int64_t[]){3}, (int64_t[]){1, -1, T});
    int s3 = gb_node(&b, "Reshape", 2, (int[]){s, rows_t}, NULL);
    const int64_t last = -1;
    int axes = gb_const_new(&b, "axes", SI_I64, 1, (int64_t[]){1}, &last);
    int rn = -1;
    int smax = gb_node(&b, "ReduceMax", 2, (int[]){s3, axes}, &rn);
    if (rn >= 0) gb_attr_int(&b, rn, "keepdims", 1, NULL, 0);
    int mn = gb_node(&b, "Max", 2, (int[]){mx, smax}, NULL);
    int p3 = gb_node(&b, "Exp", 1, (int[]){gb_node(&b, "Sub", 2, (int[]){s3, mn}, NULL)}, NULL);
    int alpha = gb_node(&b, "Exp", 1, (int[]){gb_node(&b, "Sub", 2, (int[]){mx, mn}, NULL)}, NULL);
    int sum = gb_node(&b, "ReduceSum", 2, (int[]){p3, axes}, &rn);
    if (rn >= 0) gb_attr_int(&b, rn, "keepdims", 1, NULL, 0);
    int l2 = gb_node(&b, "Add", 2, (int[]){gb_node(&b, "Mul", 2, (int[]){l, alpha}, NULL), sum}, NULL);
    int p = gb_node(&b, "Reshape", 2, (int[]){p3, s_shape}, NULL);
    int pv = gb_node(&b, "MatMul", 2, (int[]){p, v}, NULL);
    int pv3 = gb_node(&b, "Reshape", 2, (int[]){pv, gb_node(&b, "Shape", 1, &acc, NULL)}, NULL);
    int acc2 = gb_node(&b, "Add", 2, (int[]){gb_node(&b, "Mul", 2, (int[]){acc, alpha}, NULL), pv3}, NULL);
    gb_output(&b, acc2);
    gb_output(&b, mn);
    gb_output(&b, l2);
    si_graph *out = gb_end(&b, g);
    *st = b.st;
    return out;
}

/* The final graph: out = acc / max(l, FLT_MIN) on [1, rows, Dv] (a row whose every key is masked gives 0, as the
 * reference does); the driver gives it the attention's shape. */
static si_graph *final_graph(const si_graph *g, const si_hfa_match *m, si_result *st) {
    gb b;
    if ((*st = gb_begin(&b))) return NULL;
    const si_val *qv = &g->values[m->q], *vv = &g->values[m->v];
    const int64_t R = rows_of(qv), Dv = vv->dims[qv->ndim - 1];
    int acc = gb_input(&b, "acc", 3, (int64_t[]){1, R < 0 ? SI_DIM_UNKNOWN : R, Dv < 0 ? SI_DIM_UNKNOWN : Dv});
    int l = gb_input(&b, "l", 3, (int64_t[]){1, R < 0 ? SI_DIM_UNKNOWN : R, 1});
    const float tiny = FLT_MIN;
    int c = gb_const_new(&b, "tiny", SI_F32, 0, NULL, &tiny);
    int y = gb_node(&b, "Div", 2, (int[]){acc, gb_node(&b, "Max", 2, (int[]){l, c}, NULL)}, NULL);
    gb_output(&b, y);
    si_graph *out = gb_end(&b, g);
    *st = b.st;
    return out;
}


// --- MoE ----------------------------------------------------------------------------------------------------

typedef struct moe_owned {
    si_graph **g;  /* per expert */
    int n;
    si_tensor *w[8]; /* references to the node's weights the experts' views read (QMoE: scales, zero points too) */
} moe_owned;

static void moe_owned_free(void *p) {
    moe_owned *o = p;
    if (!o) return;
    for (int e = 0; o->g && e < o->n; e++) si_graph_free(o->g[e]);
    si_free(o->g);
    for (int i = 0; i < 8; i++) si_const_unref(o->w[i]);
    si_free(o);
}

/* A constant of the expert graph that is a view of expert e's block of t ([E, ...]): no copy (t outlives it). */
static int gb_view(gb *b, const char *name, const si_tensor *t, int64_t e) {
    if (b->st) return -1;
    si_tensor *v = si_calloc(1, sizeof *v);
    if (!v) { b->st = si_err(SI_ERR_NO_MEM, "out of memory"); return -1; }
    v->dtype = t->dtype;
    v->ndim = t->ndim - 1;
    memcpy(v->dims, t->dims + 1, sizeof(int64_t) * (size_t)v->ndim);
    v->nbytes = t->nbytes / (size_t)t->dims[0];
    v->data = (char *)t->data + (size_t)e * v->nbytes;
    v->owned = false;
    int id = gb_const(&b[0], name, v);
    si_const_unref(v); /* the graph holds it now */
    return id;
}

/* A QMoE projection of expert e as MatMulNBits (com.microsoft) on views of its packed weights w ([N, K / per]: the
 * same bytes as MatMulNBits' [N, blocks, blob]), scales sv and zero points zv (value ids of the node's; -1: none),
 * bias b (a view or -1): y [n, N] = x [n, K] W^T + b. */
static int expert_nbits(gb *b, const si_graph *g, const si_moe_match *m, int64_t e, int x, int w, int bias, int sv, int zv, int64_t N, int64_t K) {
    const int s = gb_view(b, "s", g->values[sv].const_val, e);
    int z = GB_ABSENT;
    if (zv >= 0 && m->rowzp) { /* [E, N / per] packed rows: expert e's N zero points as floats */
        float *zf = si_malloc(sizeof(float) * (size_t)(N + 1));
        if (!zf) {
            if (!b->st) b->st = si_err(SI_ERR_NO_MEM, "out of memory");
            return -1;
        }
        si_qmoe_row_zero_points(g->values[zv].const_val->data, m->bits, N, e, zf);
        z = gb_const_new(b, "zf", SI_F32, 1, &N, zf);
        si_free(zf);
    } else if (zv >= 0) {
        z = gb_view(b, "z", g->values[zv].const_val, e);
    }
    int nd = -1;
    const int y = gb_node_in(b, "MatMulNBits", "com.microsoft", bias >= 0 ? 6 : z != GB_ABSENT ? 4 : 3,
                               (int[]){x, w, s, z, GB_ABSENT, bias}, &nd);
    if (nd >= 0) {
        gb_attr_int(b, nd, "K", K, NULL, 0);
        gb_attr_int(b, nd, "N", N, NULL, 0);
        gb_attr_int(b, nd, "bits", m->bits, NULL, 0);
        gb_attr_int(b, nd, "block_size", m->block ? m->block : K, NULL, 0);
    }
    return y;
}

/* Interleaved SwiGLU on h [n, fF]: g = h[:, 0::2], l = h[:, 1::2] (Slice with steps 2), with a limit L g = min(g, L)
 * and l = clip(l, -L, L); then g sigmoid(alpha g) (l + beta), as ops/moe.c. */
static int expert_swiglu(gb *b, const si_moe_match *m, int h, int64_t fF) {
    const int64_t one = 1;
    const int64_t v0 = 0, v1 = 1, ax = 1, st = 2;
    const int s0 = gb_const_new(b, "sw_s0", SI_I64, 1, &one, &v0), s1 = gb_const_new(b, "sw_s1", SI_I64, 1, &one, &v1);
    const int en = gb_const_new(b, "sw_end", SI_I64, 1, &one, &fF), axes = gb_const_new(b, "sw_axes", SI_I64, 1, &one, &ax);
    const int steps = gb_const_new(b, "sw_steps", SI_I64, 1, &one, &st);
    int gt = gb_node(b, "Slice", 5, (int[]){h, s0, en, axes, steps}, NULL), lt = gb_node(b, "Slice", 5, (int[]){h, s1, en, axes, steps}, NULL);
    if (isfinite(m->limit)) {
        const float lim = m->limit, nlim = -m->limit;
        const int lc = gb_const_new(b, "sw_lim", SI_F32, 0, NULL, &lim), nlc = gb_const_new(b, "sw_nlim", SI_F32, 0, NULL, &nlim);
        gt = gb_node(b, "Min", 2, (int[]){gt, lc}, NULL);
        lt = gb_node(b, "Clip", 3, (int[]){lt, nlc, lc}, NULL);
    }
    const int al = gb_const_new(b, "sw_alpha", SI_F32, 0, NULL, &m->alpha), be = gb_const_new(b, "sw_beta", SI_F32, 0, NULL, &m->beta);
    const int sg = gb_node(b, "Sigmoid", 1, (int[]){gb_node(b, "Mul", 2, (int[]){gt, al}, NULL)}, NULL);
    return gb_node(b, "Mul", 2, (int[]){gb_node(b, "Mul", 2, (int[]){gt, sg}, NULL), gb_node(b, "Add", 2, (int[]){lt, be}, NULL)}, NULL);
}

/* Expert e of MoE match m: x [n, H] -> Gemm(act(Gemm(x, W1[e]^T + b1[e])), W2[e]^T + b2[e]); QMoE: MatMulNBits
 * instead of each Gemm. */
static si_graph *expert_graph(const si_graph *g, const si_moe_match *m, int64_t e, si_result *st) {
    gb b;
    if ((*st = gb_begin(&b))) return NULL;
    int x = gb_input(&b, "x", 2, (int64_t[]){SI_DIM_UNKNOWN, m->H});
    int w1 = gb_view(&b, "w1", g->values[m->w1].const_val, e), w2 = gb_view(&b, "w2", g->values[m->w2].const_val, e);
    int b1 = m->b1 >= 0 ? gb_view(&b, "b1", g->values[m->b1].const_val, e) : -1;
    int b2 = m->b2 >= 0 ? gb_view(&b, "b2", g->values[m->b2].const_val, e) : -1;
    int gn = -1, h;
    const int64_t fF = (m->act == SI_MOE_SWIGLU ? 2 : 1) * m->F;
    if (m->quant) {
        h = expert_nbits(&b, g, m, e, x, w1, b1, m->s1, m->z1, fF, m->H);
    } else {
        h = gb_node(&b, "Gemm", b1 >= 0 ? 3 : 2, (int[]){x, w1, b1}, &gn);
        if (gn >= 0) gb_attr_int(&b, gn, "transB", 1, NULL, 0);
    }
    switch (m->act) {
    case SI_MOE_RELU: h = gb_node(&b, "Relu", 1, &h, NULL); break;
    case SI_MOE_GELU: /* ONNX Runtime's CPU kernel: the tanh approximation */
        h = gb_node(&b, "Gelu", 1, &h, &gn);
        if (gn >= 0) gb_attr_str(&b, gn, "approximate", "tanh");
        break;
    case SI_MOE_SILU: h = gb_node(&b, "Mul", 2, (int[]){h, gb_node(&b, "Sigmoid", 1, &h, NULL)}, NULL); break;
    case SI_MOE_SWIGLU: h = expert_swiglu(&b, m, h, fF); break;
    default: break;
    }
    int y;
    if (m->quant) {
        y = expert_nbits(&b, g, m, e, h, w2, b2, m->s2, m->z2, m->H, m->F);
    } else {
        y = gb_node(&b, "Gemm", b2 >= 0 ? 3 : 2, (int[]){h, w2, b2}, &gn);
        if (gn >= 0) gb_attr_int(&b, gn, "transB", 1, NULL, 0);
    }
    gb_output(&b, y);
    si_graph *out = gb_end(&b, g);
    *st = b.st;
    return out;
}

static si_result moe_compile(si_device *d, const si_graph *g, const si_compile_ctx *cc, const si_moe_match *m, si_cmodel *plain, si_cmodel **out) {
    const int x_in = port_of(g, m->x), r_in = port_of(g, m->router);
    if (x_in < 0 || r_in < 0 || g->n_outputs != 1 || g->outputs[0] != g->nodes[m->node].out[0]) {
        *out = plain;
        return SI_OK;
    }
    si_result st = SI_OK;
    moe_owned *o = si_calloc(1, sizeof *o);
    si_cmodel **ex = si_calloc((size_t)m->E + 1, sizeof(si_cmodel *));
    if (!o || !ex || !(o->g = si_calloc((size_t)m->E + 1, sizeof(si_graph *)))) st = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!st) {
        o->n = (int)m->E;
        const int ws[8] = {m->w1, m->b1, m->w2, m->b2, m->quant ? m->s1 : -1, m->quant ? m->s2 : -1, m->quant ? m->z1 : -1, m->quant ? m->z2 : -1};
        for (int i = 0; i < 8; i++) o->w[i] = ws[i] >= 0 ? si_const_ref(g->values[ws[i]].const_val) : NULL;
    }
    for (int64_t e = 0; !st && e < m->E; e++) {
        if (!(o->g[e] = expert_graph(g, m, e, &st))) si_err_wrap(st, "MoE expert %lld graph", (long long)e);
        else if ((st = d->iface->compile(d, o->g[e], cc, &ex[e]))) si_err_wrap(st, "MoE expert %lld model", (long long)e);
    }
    if (st) {
        for (int64_t e = 0; ex && e < m->E; e++)
            if (ex[e]) ex[e]->iface->free(ex[e]);
        si_free(ex);
        plain->iface->free(plain);
        moe_owned_free(o);
        return st;
    }
    char label[96];
    const si_node *n = &g->nodes[m->node];
    snprintf(label, sizeof label, "%s '%s'", n->op_type, n->name && n->name[0] ? n->name : g->values[n->out[0]].name);
    si_moe_desc md = {.plain = plain, .experts = ex, .n_experts = (int)m->E, .x_in = x_in, .router_in = r_in, .k = m->k,
                      .normalize = m->normalize, .label = label, .owned = o, .owned_free = moe_owned_free};
    st = si_moe_create(&md, out);
    si_free(ex);
    return st;
}

si_result si_aux_compile(si_device *d, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out) {
    *out = NULL;
    const char *ts = si_options_get(si_compile_opts(cc), "hfa_tile");
    const int64_t T = ts ? strtoll(ts, NULL, 10) : 0;
    si_hfa_match m;
    int at = -1;
    for (int i = 0; T > 0 && i < g->n_nodes && at < 0; i++)
        if (si_hfa_match_at(g, i, &m)) at = i;
    si_cmodel *plain = NULL, *tile = NULL, *fin = NULL;
    si_result st = d->iface->compile(d, g, cc, &plain);
    if (st) return st;
    const char *moe = si_options_get(si_compile_opts(cc), "moe_experts");
    si_moe_match mm;
    for (int i = 0; moe && parse_onoff(moe) == 1 && i < g->n_nodes; i++)
        if (si_moe_match_at(g, i, &mm)) return moe_compile(d, g, cc, &mm, plain, out);
    if (at < 0) {
        *out = plain;
        return SI_OK;
    }
    const int q_in = port_of(g, m.q), k_in = port_of(g, m.k), v_in = port_of(g, m.v);
    const int mask_in = m.mask >= 0 ? port_of(g, m.mask) : -1;
    si_tensor *mask_const = m.mask >= 0 && mask_in < 0 ? g->values[m.mask].const_val : NULL;
    if (q_in < 0 || k_in < 0 || v_in < 0 || g->n_outputs != 1 || g->outputs[0] != m.out || (m.mask >= 0 && mask_in < 0 && !mask_const)) {
        *out = plain; /* Q, K or V a constant: not worth a loop */
        return SI_OK;
    }
    aux_graphs *ag = si_calloc(1, sizeof *ag);
    if (!ag) st = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!st && !(ag->tile = tile_graph(g, &m, T, &st))) si_err_wrap(st, "flash attention tile graph");
    if (!st && !(ag->final = final_graph(g, &m, &st))) si_err_wrap(st, "flash attention final graph");
    if (!st && (st = d->iface->compile(d, ag->tile, cc, &tile))) si_err_wrap(st, "flash attention tile model");
    if (!st && (st = d->iface->compile(d, ag->final, cc, &fin))) si_err_wrap(st, "flash attention final model");
    if (st) {
        if (tile) tile->iface->free(tile);
        plain->iface->free(plain);
        aux_graphs_free(ag);
        return st;
    }
    char label[96];
    const char *nm = g->nodes[at].name && g->nodes[at].name[0] ? g->nodes[at].name : g->values[m.out].name;
    snprintf(label, sizeof label, "attention '%s'", nm);
    si_hfa_desc hd = {.plain = plain, .tile = tile, .final = fin, .q_in = q_in, .k_in = k_in, .v_in = v_in, .mask_in = mask_in,
                      .mask_const = mask_const, .k_axis = m.k_axis, .causal = m.causal,
                      .mask_short = m.transpose_k /* the Attention op */, .tile_keys = T, .label = label,
                      .owned = ag, .owned_free = aux_graphs_free};
    return si_hfa_create(&hd, out);
}
