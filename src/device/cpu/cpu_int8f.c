/*
 * cpu_int8f.c — exact integer products on a CPU without VNNI, in float32.
 *
 * oneDNN's int8 convolutions and matmuls are wrong there (they add pairs of u8 x s8 products in saturating int16,
 * cpu_quant.c), and the reference kernels are 50-100x slower than ONNX Runtime. So, in the plan's own copy of the
 * graph, cpu_int8_rewrite turns each QLinearConv, QLinearMatMul, ConvInteger and MatMulInteger into float ops on
 * the integer values, which the CPU device runs on its fast float kernels:
 *
 *   QLinearConv(x, sx, zx, w, sw, zw, sy, zy, B)
 *     ->  QuantizeLinear(Mul(Conv(DQ(x, 1, zx), DQ(w, 1, zw), DQ(B, 1)), sx * sw / sy), 1, zy)
 *   QLinearMatMul(a, sa, za, b, sb, zb, sy, zy)
 *     ->  QuantizeLinear(Mul(MatMul(DQ(a, 1, za), DQ(b, 1, zb)), sa * sb / sy), 1, zy)
 *   QGemm(A, sa, za, B, sb, zb, C, sy, zy)
 *     ->  [QuantizeLinear(]Mul(Gemm(DQ(A, 1, za), DQ(B, 1, zb), DQ(C, 1)), alpha * sa * sb [/ sy])[, 1, zy)]
 *   ConvInteger(x, w, zx, zw), MatMulInteger(a, b, za, zb)
 *     ->  Conv / MatMul of the same DequantizeLinear(., 1, z): float32, where every reader is a Cast to float
 *         (the reader becomes an Identity), else Cast to int32.
 *   The QDQ form's DQ -> Conv / MatMul / Gemm -> [Relu ->] Q that the integer path fuses (its matchers,
 *   cpu_qdq_conv_match / cpu_qdq_mm_match): rewired in place into the same float form.
 *
 * DequantizeLinear with scale 1 gives the integers x - zx exactly; products of such integers and their sums are
 * exact in float32 while a partial sum stays below 2^24 (a convolution of 3x3x256 uint8 values with int8 weights
 * would need every term near its extreme to pass it), so the accumulator is the integer one, and the
 * requantization is the reference kernel's and ONNX Runtime's: acc x (sx sw / sy), that multiplier computed in
 * float32 in that order, rounded half to even, plus the zero point, saturated (QuantizeLinear with scale 1). The
 * Mul must stay a multiplication of the accumulator, so the values it writes are marked (nofold): cpu_chain does
 * not fold it into the convolution's weights. The weights' DequantizeLinear nodes read constants only and are
 * folded once per compiled model (cpu_dq_fold); per-channel weight zero points other than all equal need opset
 * 13's axis and are left to the reference kernel below it.
 */
#include "device/cpu/cpu_quant.h"

#include <math.h>
#include <stdio.h>

typedef struct rw {
    si_graph *g;
    char base[200]; /* the rewritten node's name (new names derive from it) */
    bool *nofold;   /* grown with the values */
    int cap;
} rw;

static void set_base(rw *r, const si_node *n) {
    snprintf(r->base, sizeof r->base, "%s", n->name && n->name[0] ? n->name : n->op_type);
}

static int new_value(rw *r, const char *suffix, si_dtype dt, int ndim, const int64_t *dims) {
    char name[320];
    int v = -1;
    for (int k = 0; k < 100 && v < 0; k++) {
        snprintf(name, sizeof name, "%s#i8f.%s%.0d", r->base, suffix, k);
        if (si_graph_find_value(r->g, name) < 0) v = si_graph_add_value(r->g, name);
    }
    if (v < 0) return -1;
    si_val *x = &r->g->values[v];
    x->dtype = dt;
    x->ndim = ndim;
    if (ndim > 0) memcpy(x->dims, dims, sizeof(int64_t) * (size_t)ndim);
    return v;
}

/* A constant value of type dt and shape dims holding data's bytes (NULL: zeros). */
static int new_const(rw *r, const char *suffix, si_dtype dt, int ndim, const int64_t *dims, const void *data) {
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t || si_tensor_init(t, dt, ndim, dims) || si_tensor_alloc(t)) {
        if (t) si_tensor_release(t);
        si_free(t);
        return -1;
    }
    if (data) memcpy(t->data, data, t->nbytes);
    else memset(t->data, 0, t->nbytes);
    int v = new_value(r, suffix, dt, ndim, dims);
    if (v < 0) {
        si_const_unref(t);
        return -1;
    }
    si_val_set_const(&r->g->values[v], t);
    return v;
}

/* A constant value holding a reference to t. */
static int ref_const(rw *r, const char *suffix, si_tensor *t) {
    int v = new_value(r, suffix, t->dtype, t->ndim, t->dims);
    if (v < 0) return -1;
    si_val_set_const(&r->g->values[v], si_const_ref(t));
    return v;
}

/* The scale 1.0 (one value). */
static int unit(rw *r, const char *suffix) {
    const float one = 1.0f;
    return new_const(r, suffix, SI_F32, 0, NULL, &one);
}

static bool attr_int(si_attr *a, const char *name, int64_t v) {
    memset(a, 0, sizeof *a);
    a->name = si_strdup(name);
    a->type = SI_ATTR_INT;
    a->i = v;
    return a->name != NULL;
}

/* A node op(in...) -> out named after the rewritten one; attrs (n_attr of them, taken over). Into *nd when nd is not
 * NULL (the caller puts it in place of the original), else appended to the graph. */
static bool make_node(rw *r, const char *suffix, const char *op, const int *in, int n_in, int out, si_attr *attrs, int n_attr, si_node *nd) {
    si_node n;
    memset(&n, 0, sizeof n);
    char name[320];
    snprintf(name, sizeof name, "%s#i8f.%s", r->base, suffix);
    n.name = si_strdup(name);
    n.op_type = si_strdup(op);
    n.domain = si_strdup("");
    n.in = si_malloc(sizeof(int) * (size_t)n_in);
    n.out = si_malloc(sizeof(int));
    n.attrs = n_attr ? si_calloc((size_t)n_attr, sizeof(si_attr)) : NULL;
    bool ok = n.name && n.op_type && n.domain && n.in && n.out && (!n_attr || n.attrs);
    if (ok) {
        memcpy(n.in, in, sizeof(int) * (size_t)n_in);
        n.out[0] = out;
        n.n_in = n_in;
        n.n_out = 1;
        for (int i = 0; i < n_attr; i++) n.attrs[i] = attrs[i];
        n.n_attr = n_attr;
        n_attr = 0;
    }
    for (int i = 0; i < n_attr; i++) si_attr_clear(&attrs[i]);
    if (ok && nd) {
        *nd = n;
        return true;
    }
    if (ok && si_graph_add_node(r->g, &n) >= 0) return true;
    si_node_clear(&n);
    return false;
}

/* Node i becomes nd (the product, which replaces it). */
static void replace_node(rw *r, int i, si_node *nd) {
    si_node_clear(&r->g->nodes[i]);
    r->g->nodes[i] = *nd;
}

static const si_tensor *cval(const si_graph *g, const si_node *n, int k) {
    return k < n->n_in && n->in[k] >= 0 ? g->values[n->in[k]].const_val : NULL;
}

static bool f32_scalar(const si_tensor *t, float *v) {
    if (!t || t->dtype != SI_F32 || si_tensor_count(t) != 1 || !t->data) return false;
    *v = *(const float *)t->data;
    return isfinite(*v) && *v != 0.0f;
}

/* A zero point: absent, or a constant of type dt with one value, or (per_len > 1) per_len values; *uniform: all
 * of them equal (then a scalar zero point does). */
static bool zp_ok(const si_tensor *z, si_dtype dt, int64_t per_len, bool *uniform) {
    *uniform = true;
    if (!z) return true;
    if (z->dtype != dt || !z->data) return false;
    const int64_t n = si_tensor_count(z);
    if (n != 1 && n != per_len) return false;
    for (int64_t i = 1; i < n; i++) *uniform &= si_load_i64(dt, z->data, i) == si_load_i64(dt, z->data, 0);
    return true;
}

/* Zero point z (value zv) as DequantizeLinear takes it: -1 when absent, zv itself when it has one value or
 * per-channel values that differ (*per), else a new scalar holding the common value; -2 when out of memory. */
static int zp_input(rw *r, int zv, const si_tensor *z, bool uniform, bool *per) {
    *per = false;
    if (!z) return -1;
    if (si_tensor_count(z) == 1 || !uniform) {
        *per = si_tensor_count(z) != 1;
        return zv;
    }
    const int v = new_const(r, "zp", z->dtype, 0, NULL, z->data);
    return v < 0 ? -2 : v;
}

/* DequantizeLinear(v, 1, z) into a new float value: z absent, a scalar constant, or per-channel along axis
 * (per_axis, opset 13 and later). */
static int dq_of(rw *r, const char *suffix, int v, int zv, bool per_axis, int64_t axis, int opset) {
    const si_val *x = &r->g->values[v];
    int64_t dims[SI_MAX_DIMS];
    memcpy(dims, x->dims, sizeof dims);
    const int ndim = x->ndim;
    const bool with_axis = per_axis && opset >= 13;
    /* scale 1: one value, or (per axis) as many as the zero point has */
    const int64_t ns = with_axis ? dims[axis] : 1;
    float *ones = si_malloc(sizeof(float) * (size_t)ns);
    if (!ones) return -1;
    for (int64_t k = 0; k < ns; k++) ones[k] = 1.0f;
    char sname[48];
    snprintf(sname, sizeof sname, "%s_one", suffix);
    int s1 = new_const(r, sname, SI_F32, with_axis ? 1 : 0, &ns, ones);
    si_free(ones);
    int out = s1 < 0 ? -1 : new_value(r, suffix, SI_F32, ndim, dims);
    if (out < 0) return -1;
    int in[3] = {v, s1, zv};
    si_attr a;
    if (with_axis && !attr_int(&a, "axis", axis)) return -1;
    return make_node(r, suffix, "DequantizeLinear", in, zv >= 0 ? 3 : 2, out, &a, with_axis ? 1 : 0, NULL) ? out : -1;
}

static bool mark_nofold(rw *r, int v) {
    if (v >= r->cap) {
        const int cap = r->g->n_values + 64;
        bool *nf = si_realloc(r->nofold, sizeof(bool) * (size_t)cap);
        if (!nf) return false;
        memset(nf + r->cap, 0, sizeof(bool) * (size_t)(cap - r->cap));
        r->nofold = nf;
        r->cap = cap;
    }
    r->nofold[v] = true;
    return true;
}

/* The multiplier alpha x_scale w_scale[c] [/ y_scale] in float32, in the reference kernel's order, as a constant of
 * WS's count along the product's channel axis: [n, 1, ...] (rank - 1 dims, a convolution's axis 1) or [n] (a
 * matmul's last axis), one value when WS has one. */
static int multiplier(rw *r, float alpha, float sx, const si_tensor *WS, const float *sy, bool conv, int rank) {
    const int64_t nws = si_tensor_count(WS);
    float *m = si_malloc(sizeof(float) * (size_t)nws);
    if (!m) return -1;
    for (int64_t k = 0; k < nws; k++) {
        m[k] = alpha * sx * ((const float *)WS->data)[k];
        if (sy) m[k] /= *sy;
    }
    int64_t md[SI_MAX_DIMS];
    const int mr = nws == 1 ? 0 : conv ? rank - 1 : 1;
    for (int d = 0; d < mr; d++) md[d] = d ? 1 : nws;
    const int mc = new_const(r, "m", SI_F32, mr, md, m);
    si_free(m);
    return mc;
}

/* Mul(acc, mc) into out (a new value of Y's shape when out < 0), marked nofold: a multiplication of the accumulator,
 * not folded into the product's weights. The value, or -1 when out of memory. */
static int scale_by(rw *r, int acc, int mc, const si_val *Y, int out) {
    if (mc < 0 || (out < 0 && (out = new_value(r, "scaled", SI_F32, Y->ndim, Y->dims)) < 0)) return -1;
    int in[2] = {acc, mc};
    return make_node(r, "mul", "Mul", in, 2, out, NULL, 0, NULL) && mark_nofold(r, out) ? out : -1;
}

/* QuantizeLinear(in, 1, zy) -> out: the requantization's rounding, zero point and saturation. */
static bool quantize_unit(rw *r, int in, int zy, int out) {
    const int s1 = unit(r, "y_one");
    int qin[3] = {in, s1, zy};
    return s1 >= 0 && zy >= 0 && make_node(r, "quantize", "QuantizeLinear", qin, 3, out, NULL, 0, NULL);
}

/* The accumulator's readers: the rewrite gives acc (float32) to readers that are Casts to float (they become
 * Identities), an int32 copy to the others. */
static bool all_cast_to_float(const si_graph *g, int v) {
    if (g->values[v].is_output) return false;
    int readers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            if (si_node_reads(n, k) != v) continue;
            if (k >= n->n_in || !si_node_is(n, SI_OP_CAST) || si_attr_int(n, "to", 0) != SI_F32) return false;
            readers++;
        }
    }
    return readers > 0;
}

static void cast_to_identity(si_graph *g, int v) {
    for (int i = 0; i < g->n_nodes; i++) {
        si_node *n = &g->nodes[i];
        if (n->n_in < 1 || n->in[0] != v) continue;
        for (int a = 0; a < n->n_attr; a++) si_attr_clear(&n->attrs[a]);
        n->n_attr = 0;
        char *op = si_strdup("Identity");
        if (op) {
            si_free(n->op_type);
            n->op_type = op;
        }
    }
}

/* Whether an integer product with constant weights W (zero point WZ) of an input of type xt stays for oneDNN's int8
 * kernels, on a CPU without VNNI: its weights must fit 7 bits (cpu_int8_weights_exact); a convolution's input must
 * be uint8 (an int8 input's is one unit off there: oneDNN scales its weights by 0.5, as far as we can tell) and its
 * groups one, or depthwise where the convolution requantizes itself (dw_ok): oneDNN's AVX2 kernels take no others
 * with a run-time input zero point, and what they refuse would run on the reference kernels. */
static bool keep_int8(const si_tensor *W, const si_tensor *WZ, bool conv, si_dtype xt, int64_t group, bool dw_ok) {
    if (!cpu_int8_weights_exact(W, WZ, conv)) return false;
    if (!conv) return true;
    const bool dw = W->ndim > 1 && W->dims[1] == 1 && group == W->dims[0];
    return xt == SI_U8 && (group == 1 || (dw && dw_ok));
}

/* QLinearConv, QLinearMatMul, ConvInteger or MatMulInteger node i rewritten (see the top of the file): the product
 * takes the node's place, the rest is appended. false: left as it is (not a shape this takes); out of memory part
 * way: NO_MEM in *st. */
static bool rewrite_node(rw *r, int i, si_result *st) {
    si_graph *g = r->g;
    const si_node *n = &g->nodes[i];
    if (!n->op || n->domain[0] || n->n_out < 1 || n->out[0] < 0) return false;
    const si_op_id id = n->op->id;
    const bool qlconv = id == SI_OP_QLINEAR_CONV, qlmm = id == SI_OP_QLINEAR_MATMUL;
    const bool conv = qlconv || id == SI_OP_CONV_INTEGER;
    if (!qlconv && !qlmm && id != SI_OP_CONV_INTEGER && id != SI_OP_MATMUL_INTEGER) return false;
    const bool ql = qlconv || qlmm;
    /* inputs: x, its zero point, w, its zero point (and the scales, the bias) */
    const int ix = 0, izx = 2, iw = ql ? 3 : 1, izw = ql ? 5 : 3;
    if (n->n_in <= iw || n->in[ix] < 0 || n->in[iw] < 0) return false;
    const si_val *X = &g->values[n->in[ix]], *W = &g->values[n->in[iw]];
    const si_val Y = g->values[n->out[0]]; /* a copy: new values move the array */
    if ((X->dtype != SI_U8 && X->dtype != SI_I8) || (W->dtype != SI_U8 && W->dtype != SI_I8)) return false;
    if (X->ndim < (conv ? 3 : 1) || Y.ndim < 1) return false;
    for (int d = 0; d < X->ndim; d++)
        if (X->dims[d] < 0) return false;
    for (int d = 0; d < Y.ndim; d++)
        if (Y.dims[d] < 0) return false;
    const si_tensor *zx = cval(g, n, izx), *zw = cval(g, n, izw);
    if ((izx < n->n_in && n->in[izx] >= 0 && !zx) || (izw < n->n_in && n->in[izw] >= 0 && !zw)) return false; /* run-time zero points */
    if (keep_int8(cval(g, n, iw), zw, conv, X->dtype, si_attr_int(n, "group", 1), qlconv)) return false;
    bool ux, uw;
    /* the weights' channel: a convolution's output channels (axis 0), a matmul's columns (the last axis of b) */
    const int64_t wch = conv ? W->dims[0] : W->dims[W->ndim - 1];
    const int64_t waxis = conv ? 0 : W->ndim - 1;
    if (!zp_ok(zx, X->dtype, 1, &ux) || !zp_ok(zw, W->dtype, wch, &uw)) return false;
    if (!uw && n->opset < 13) return false; /* per-channel zero points: DequantizeLinear's axis is opset 13's */
    if (!conv && W->ndim != 2 && zw && si_tensor_count(zw) != 1) return false;
    float sx = 1, sy = 1;
    const si_tensor *sw = NULL, *zy = NULL, *B = NULL;
    if (ql) {
        sw = cval(g, n, 4);
        zy = n->n_in > 7 ? cval(g, n, 7) : NULL;
        if (!f32_scalar(cval(g, n, 1), &sx) || !f32_scalar(cval(g, n, 6), &sy)) return false;
        if (!sw || sw->dtype != SI_F32 || (si_tensor_count(sw) != 1 && si_tensor_count(sw) != wch)) return false;
        if (n->n_in > 7 && n->in[7] >= 0 && (!zy || si_tensor_count(zy) != 1 || zy->dtype != Y.dtype)) return false;
        if (Y.dtype != SI_U8 && Y.dtype != SI_I8) return false;
        if (qlconv && n->n_in > 8 && n->in[8] >= 0) {
            B = cval(g, n, 8);
            if (!B || B->dtype != SI_I32 || si_tensor_count(B) != W->dims[0]) return false;
        }
    } else if (Y.dtype != SI_I32) {
        return false;
    }
    *st = SI_ERR_NO_MEM;
    bool per_w;
    const int xv = n->in[ix], wv = n->in[iw], yv = n->out[0], opset = n->opset;
    const int zxv = zx ? n->in[izx] : -1, zyv0 = zy ? n->in[7] : -1, bv = B ? n->in[8] : -1;
    const int zwv = zp_input(r, zw ? n->in[izw] : -1, zw, uw, &per_w);
    if (zwv < -1) return false;
    const int xf = dq_of(r, "x", xv, zxv, false, 0, opset);
    const int wf = xf < 0 ? -1 : dq_of(r, "w", wv, zwv, per_w, waxis, opset);
    const int bf = wf < 0 || bv < 0 ? -1 : dq_of(r, "b", bv, -1, false, 0, opset);
    if (wf < 0 || (bv >= 0 && bf < 0)) return false;
    /* the product (a Conv with the node's attributes, or a MatMul) in the node's place */
    n = &g->nodes[i];
    const bool acc_direct = !ql && all_cast_to_float(g, yv);
    const int acc = acc_direct ? yv : new_value(r, "acc", SI_F32, Y.ndim, Y.dims);
    if (acc < 0) return false;
    int pin[3] = {xf, wf, bf};
    si_attr *attrs = NULL;
    int na = 0;
    if (conv && n->n_attr) {
        if (!(attrs = si_calloc((size_t)n->n_attr, sizeof *attrs))) return false;
        for (; na < n->n_attr; na++)
            if (si_attr_copy(&attrs[na], &n->attrs[na], g)) break;
        if (na < n->n_attr) {
            for (int k = 0; k < na; k++) si_attr_clear(&attrs[k]);
            si_free(attrs);
            return false;
        }
    }
    si_node prod;
    const bool made = make_node(r, "prod", conv ? "Conv" : "MatMul", pin, bf >= 0 ? 3 : 2, acc, attrs, na, &prod);
    si_free(attrs);
    if (!made) return false;
    replace_node(r, i, &prod);
    if (acc_direct) { /* ConvInteger / MatMulInteger read as float */
        g->values[yv].dtype = SI_F32;
        cast_to_identity(g, yv);
    } else if (ql) { /* acc x (sx sw / sy), per output channel, quantized at scale 1 */
        const int zyv = zyv0 >= 0 ? zyv0 : new_const(r, "zy", Y.dtype, 0, NULL, NULL);
        const int mv = scale_by(r, acc, multiplier(r, 1.0f, sx, sw, &sy, conv, Y.ndim), &Y, -1);
        if (mv < 0 || !quantize_unit(r, mv, zyv, yv)) return false;
    } else {
        si_attr to;
        int cin[1] = {acc};
        if (!attr_int(&to, "to", SI_I32) || !make_node(r, "cast", "Cast", cin, 1, yv, &to, 1, NULL)) return false;
    }
    *st = SI_OK;
    return true;
}

/* QGemm (com.microsoft): Y = alpha a_scale b_scale ((A - a_zp)(B - b_zp) + C), float32 or quantized with y_scale and
 * y_zero_point: Mul(Gemm(DQ(A, 1, a_zp), DQ(B, 1, b_zp), DQ(C, 1)), alpha a_scale b_scale [/ y_scale]) [-> QuantizeLinear]. */
static bool rewrite_qgemm(rw *r, int i, si_result *st) {
    si_graph *g = r->g;
    const si_node *n = &g->nodes[i];
    if (n->n_in < 6 || n->n_out < 1 || n->out[0] < 0 || n->in[0] < 0 || n->in[3] < 0) return false;
    const si_val *A = &g->values[n->in[0]], *B = &g->values[n->in[3]];
    const si_val Y = g->values[n->out[0]];
    if ((A->dtype != SI_U8 && A->dtype != SI_I8) || (B->dtype != SI_U8 && B->dtype != SI_I8) || A->ndim != 2 || B->ndim != 2 || Y.ndim != 2)
        return false;
    for (int d = 0; d < 2; d++)
        if (A->dims[d] < 0 || B->dims[d] < 0) return false;
    const bool tb = si_attr_int(n, "transB", 0) != 0;
    const int64_t N = B->dims[tb ? 0 : 1];
    const si_tensor *za = cval(g, n, 2), *bs = cval(g, n, 4), *zb = cval(g, n, 5);
    const si_tensor *C = n->n_in > 6 && n->in[6] >= 0 ? cval(g, n, 6) : NULL, *zy = n->n_in > 8 && n->in[8] >= 0 ? cval(g, n, 8) : NULL;
    const bool quant = n->n_in > 7 && n->in[7] >= 0;
    if ((n->in[2] >= 0 && !za) || (n->in[5] >= 0 && !zb) || (n->n_in > 6 && n->in[6] >= 0 && !C) || (quant && !zy)) return false;
    if (keep_int8(cval(g, n, 3), zb, false, A->dtype, 1, false)) return false;
    float sa, sy = 1.0f;
    if (!f32_scalar(cval(g, n, 1), &sa) || (quant && !f32_scalar(cval(g, n, 7), &sy))) return false;
    if (!bs || bs->dtype != SI_F32 || (si_tensor_count(bs) != 1 && si_tensor_count(bs) != N)) return false;
    if (C && C->dtype != SI_I32) return false;
    if (quant && (si_tensor_count(zy) != 1 || zy->dtype != Y.dtype)) return false;
    bool ua, ub;
    if (!zp_ok(za, A->dtype, 1, &ua) || !zp_ok(zb, B->dtype, N, &ub)) return false;
    const int opset = (int)si_graph_opset(g, "");
    if (!ub && opset < 13) return false;
    const float alpha = si_attr_float(n, "alpha", 1.0f);
    const int64_t ta = si_attr_int(n, "transA", 0);
    *st = SI_ERR_NO_MEM;
    bool per_b;
    const int zbv = zp_input(r, n->in[5], zb, ub, &per_b);
    if (zbv < -1) return false;
    const int av = n->in[0], bv = n->in[3], cv = C ? n->in[6] : -1, yv = n->out[0], zav = za ? n->in[2] : -1;
    const int zyv = quant ? n->in[8] : -1;
    const int af = dq_of(r, "a", av, zav, false, 0, opset);
    const int bf = af < 0 ? -1 : dq_of(r, "b", bv, zbv, per_b, tb ? 0 : 1, opset);
    const int cf = bf < 0 || cv < 0 ? -1 : dq_of(r, "c", cv, -1, false, 0, opset);
    if (bf < 0 || (cv >= 0 && cf < 0)) return false;
    const int acc = new_value(r, "acc", SI_F32, 2, Y.dims);
    if (acc < 0) return false;
    si_attr ga[2];
    if (!attr_int(&ga[0], "transA", ta)) return false;
    if (!attr_int(&ga[1], "transB", tb)) {
        si_attr_clear(&ga[0]);
        return false;
    }
    int gin[3] = {af, bf, cf};
    si_node prod;
    if (!make_node(r, "prod", "Gemm", gin, cf >= 0 ? 3 : 2, acc, ga, 2, &prod)) return false;
    replace_node(r, i, &prod);
    /* acc x (alpha a_scale b_scale [/ y_scale]) into the output (float32), or quantized at scale 1 */
    const int mv = scale_by(r, acc, multiplier(r, alpha, sa, bs, quant ? &sy : NULL, false, 2), &Y, quant ? -1 : yv);
    if (mv < 0 || (quant && !quantize_unit(r, mv, zyv, yv))) return false;
    *st = SI_OK;
    return true;
}

/* The operands of a QDQ product, as integers in float32: the input x's DequantizeLinear at scale 1 (that node itself
 * when the product is its only reader: *xf is then x_in, the value the product reads already), the weights W (zero
 * point WZ, per channel along waxis) and the int32 bias B (or NULL) as DequantizeLinear(q, 1, z) of their quantized
 * constants. false with *st NO_MEM when out of memory, false alone when the weights' zero points do not fit. */
static bool qdq_operands(rw *r, const cpu_pb *pb, int node, int x_in, int xq, int xz, const si_tensor *W, const si_tensor *WZ,
                         int64_t nch, int64_t waxis, const si_tensor *B, int *xf, int *wf, int *bf, si_result *st) {
    si_graph *g = r->g;
    bool uw;
    if (!zp_ok(WZ, W->dtype, nch, &uw) || (!uw && g->nodes[node].opset < 13)) return false;
    const int opset = g->nodes[node].opset, dqx = g->values[x_in].producer;
    *st = SI_ERR_NO_MEM;
    if (pb->n_consumers[x_in] == 1 && !g->values[x_in].is_output) {
        const int s1 = unit(r, "x_one");
        if (s1 < 0) return false;
        g->nodes[dqx].in[1] = s1;
        *xf = x_in;
    } else if ((*xf = dq_of(r, "x", xq, xz, false, 0, opset)) < 0) {
        return false;
    }
    const int wq = ref_const(r, "wq", (si_tensor *)W), zq = WZ ? ref_const(r, "wz", (si_tensor *)WZ) : -1;
    bool per_w;
    const int wz = wq < 0 || (WZ && zq < 0) ? -2 : zp_input(r, zq, WZ, uw, &per_w);
    if (wz < -1 || (*wf = dq_of(r, "w", wq, wz, per_w, waxis, opset)) < 0) return false;
    *bf = -1;
    if (B) {
        const int bq = ref_const(r, "bq", (si_tensor *)B);
        if (bq < 0 || (*bf = dq_of(r, "b", bq, -1, false, 0, opset)) < 0) return false;
    }
    *st = SI_OK;
    return true;
}

/* The QDQ form's Relu / QuantizeLinear after a product (extra[0] .. extra[n_extra - 1], the QuantizeLinear last) read
 * mv, the QuantizeLinear at scale 1. */
static bool requant_tail(rw *r, const int *extra, int n_extra, int mv) {
    const int s1 = unit(r, "y_one");
    if (s1 < 0) return false;
    r->g->nodes[extra[0]].in[0] = mv;
    r->g->nodes[extra[n_extra - 1]].in[1] = s1;
    return true;
}

/* Conv node n in the QDQ form (cpu_qdq_conv_match), rewired in place into the float form of QLinearConv above:
 * the integer operands (qdq_operands), the multiplier Mul after it, the QuantizeLinear at scale 1 (a Relu between
 * them stays). */
static bool rewrite_qdq_conv(rw *r, const cpu_pb *pb, int n, si_result *st) {
    qlc_in a;
    if (!cpu_qdq_conv_match(pb, n, &a) || !a.W || (a.W->dtype != SI_U8 && a.W->dtype != SI_I8) || a.W->ndim < 3) return false;
    if (keep_int8(a.W, a.WZ, true, r->g->values[a.x].dtype, si_attr_int(&r->g->nodes[n], "group", 1), true)) return false;
    si_graph *g = r->g;
    float sx, sy;
    if (!f32_scalar(a.xs, &sx) || !f32_scalar(a.ys, &sy)) return false;
    const int yv = g->nodes[n].out[0];
    int xf, wf, bf;
    if (!qdq_operands(r, pb, n, g->nodes[n].in[0], a.x, a.xz, a.W, a.WZ, a.W->dims[0], 0, a.B, &xf, &wf, &bf, st)) return false;
    *st = SI_ERR_NO_MEM;
    const si_val Y = g->values[yv];
    const int mv = scale_by(r, yv, multiplier(r, 1.0f, sx, a.WS, &sy, true, Y.ndim), &Y, -1);
    if (mv < 0 || !requant_tail(r, a.extra, a.n_extra, mv)) return false;
    si_node *cv = &g->nodes[n];
    if (cv->n_in < 3 && bf >= 0) { /* room for the bias */
        int *in = si_realloc(cv->in, sizeof(int) * 3);
        if (!in) return false;
        cv->in = in;
        cv->in[2] = -1;
        cv->n_in = 3;
    }
    cv->in[0] = xf;
    cv->in[1] = wf;
    if (cv->n_in > 2) cv->in[2] = bf;
    *st = SI_OK;
    return true;
}

/* MatMul / Gemm node n in the QDQ form (cpu_qdq_mm_match) likewise: quantized out (the multiplier Mul, the Relu,
 * QuantizeLinear at scale 1), or float32 out (the product writes a new value, the Mul x_scale w_scale writes the
 * node's output, then a float bias Add when there is one). */
static bool rewrite_qdq_mm(rw *r, const cpu_pb *pb, int n, si_result *st) {
    qmm_in a;
    if (!cpu_qdq_mm_match(pb, n, &a) || !a.W || a.alpha != 1.0f) return false;
    if (keep_int8(a.W, a.WZ, false, r->g->values[a.x].dtype, 1, false)) return false;
    si_graph *g = r->g;
    float sx, sy;
    if (!f32_scalar(a.xs, &sx) || (a.ys && !f32_scalar(a.ys, &sy))) return false;
    const int64_t N = a.tb ? a.W->dims[0] : a.W->dims[1];
    const int out = g->nodes[n].out[0], cfv = a.Cf ? g->nodes[n].in[2] : -1;
    int xf, wf, bf;
    if (!qdq_operands(r, pb, n, g->nodes[n].in[0], a.x, a.xz, a.W, a.WZ, N, a.tb ? 0 : 1, a.C, &xf, &wf, &bf, st)) return false;
    *st = SI_ERR_NO_MEM;
    const si_val Y = g->values[out];
    /* quantized out: the product keeps its output, read by the Mul; float out: the product into a new value, the Mul
     * (and the bias Add) into the node's output */
    const int acc = a.ys ? out : new_value(r, "acc", SI_F32, Y.ndim, Y.dims);
    const int mv = acc < 0 ? -1 : scale_by(r, acc, multiplier(r, 1.0f, sx, a.WS, a.ys ? &sy : NULL, false, Y.ndim), &Y,
                                           a.ys || cfv >= 0 ? -1 : out);
    if (mv < 0) return false;
    if (a.ys && !requant_tail(r, a.extra, a.n_extra, mv)) return false;
    if (!a.ys && cfv >= 0) {
        int ain[2] = {mv, cfv};
        if (!make_node(r, "bias", "Add", ain, 2, out, NULL, 0, NULL)) return false;
    }
    si_node *pn = &g->nodes[n];
    pn->in[0] = xf;
    pn->in[1] = wf;
    if (pn->n_in > 2) pn->in[2] = bf; /* a Gemm: the int32 bias as float, or none (a float bias is added after the Mul) */
    pn->out[0] = acc;
    *st = SI_OK;
    return true;
}

/* The readers of every value of pb's graph (as the planner counts them) and nothing lowered: what the QDQ matchers
 * read, (re)made for the graph as it is now. */
static bool qdq_view(cpu_pb *pb) {
    const si_graph *g = pb->g;
    int *nc = si_realloc(pb->n_consumers, sizeof(int) * ((size_t)g->n_values + 1));
    if (nc) pb->n_consumers = nc;
    bool *dn = si_realloc(pb->done, (size_t)g->n_nodes + 1);
    if (dn) pb->done = dn;
    if (!nc || !dn) return false;
    memset(nc, 0, sizeof(int) * ((size_t)g->n_values + 1));
    memset(dn, 0, (size_t)g->n_nodes + 1);
    for (int j = 0; j < g->n_nodes; j++)
        for (int k = 0; k < g->nodes[j].n_in; k++)
            if (g->nodes[j].in[k] >= 0) nc[g->nodes[j].in[k]]++;
    return true;
}

si_result cpu_int8_rewrite(si_graph *g, bool **nofold) {
    *nofold = NULL;
    if (si_cpu_int8_exact() || cpu_no_own()) return SI_OK;
    rw r = {.g = g};
    cpu_pb pb; /* the QDQ form: matched as the integer path matches it */
    memset(&pb, 0, sizeof pb);
    pb.g = g;
    bool any = false;
    si_result st = SI_OK;
    const int nn = g->n_nodes;
    for (int i = 0; i < nn && !st; i++) {
        const si_node *n = &g->nodes[i];
        if (!n->op) continue;
        const si_op_id id = n->op->id;
        const bool qgemm = id == SI_OP_QGEMM && !strcmp(n->domain, "com.microsoft");
        if (!qgemm && (n->domain[0] || (id != SI_OP_QLINEAR_CONV && id != SI_OP_QLINEAR_MATMUL && id != SI_OP_CONV_INTEGER &&
                                        id != SI_OP_MATMUL_INTEGER)))
            continue;
        set_base(&r, n);
        any |= qgemm ? rewrite_qgemm(&r, i, &st) : rewrite_node(&r, i, &st);
    }
    /* then the QDQ form's DQ -> Conv / MatMul / Gemm -> Q; the view is recounted after each rewrite (a later
     * product may become its input DequantizeLinear's only reader) */
    if (!st && !qdq_view(&pb)) st = SI_ERR_NO_MEM;
    const int nq = g->n_nodes;
    for (int i = 0; i < nq && !st; i++) {
        const si_node *cn = &g->nodes[i];
        const bool conv = cn->op && si_node_is(cn, SI_OP_CONV), mm = cn->op && (si_node_is(cn, SI_OP_MATMUL) || si_node_is(cn, SI_OP_GEMM));
        if ((!conv && !mm) || cn->domain[0]) continue;
        set_base(&r, cn);
        const bool did = conv ? rewrite_qdq_conv(&r, &pb, i, &st) : rewrite_qdq_mm(&r, &pb, i, &st);
        any |= did;
        if (did && !qdq_view(&pb)) st = SI_ERR_NO_MEM;
    }
    SI_FREE_ALL(pb.n_consumers, pb.done);
    if (st) { /* out of memory part way: the graph may hold some new nodes; the plan fails */
        si_free(r.nofold);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory rewriting node '%s' for float kernels", r.base);
    }
    if (!any) {
        si_free(r.nofold);
        return SI_OK;
    }
    si_result s = si_graph_finalize(g);
    if (s) {
        si_free(r.nofold);
        return s;
    }
    if (r.cap < g->n_values) { /* every value has an entry */
        bool *nf = si_realloc(r.nofold, sizeof(bool) * (size_t)g->n_values);
        if (!nf) {
            si_free(r.nofold);
            return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
        }
        memset(nf + r.cap, 0, sizeof(bool) * (size_t)(g->n_values - r.cap));
        r.nofold = nf;
    }
    *nofold = r.nofold;
    return SI_OK;
}
