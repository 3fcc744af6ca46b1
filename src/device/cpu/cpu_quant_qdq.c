/*
 * cpu_quant_qdq.c — the QDQ form of ONNX Runtime's static quantizer (DequantizeLinear -> op -> QuantizeLinear) matched
 * onto the CPU device's integer kernels: Conv and MatMul / Gemm as the integer convolution and matrix product of
 * cpu_quant.c (int8 in, requantized out), Add / Mul, unary ops through a 256-entry table, Concat and MaxPool
 * whose quantization parameters agree, and the DequantizeLinears that only integer convolutions read (they need
 * not run). What a matcher declines runs as DequantizeLinear, the float op and QuantizeLinear.
 */
#include "device/cpu/cpu_quant.h"

#include "ops/quant.h"

#include <math.h>
#include <stdio.h>

// --- the QDQ form: DequantizeLinear -> Conv -> QuantizeLinear as one integer convolution ----------------------------

/* A constant folded from a DequantizeLinear (si_val's dq_*): its quantized constant, scale, zero point and axis. */
static bool dq_const(const si_graph *g, int v, const si_tensor **q, const si_tensor **s, const si_tensor **z, int *axis) {
    if (v < 0) return false;
    const si_val *V = &g->values[v];
    if (!V->const_val || !V->dq_q || !V->dq_q->data || !V->dq_scale || !V->dq_scale->data || V->dq_scale->dtype != SI_F32) return false;
    if (V->dq_zp && !V->dq_zp->data) return false;
    *q = V->dq_q, *s = V->dq_scale, *z = V->dq_zp, *axis = V->dq_axis;
    return true;
}

/* Value v computed by a per-tensor or per-axis DequantizeLinear (no blocks) whose scale (float32) and zero point are
 * constants: that node, its quantized input value and its constants; -1 otherwise. Its quantized input must be a
 * constant too when want_const. */
static int dq_of(const si_graph *g, int v, bool want_const, int *q, const si_tensor **s, const si_tensor **z) {
    if (v < 0 || g->values[v].producer < 0) return -1;
    const int d = g->values[v].producer;
    const si_node *dn = &g->nodes[d];
    if (!cpu_is_op(dn, SI_OP_DEQUANTIZE_LINEAR) || dn->n_in < 2 || dn->in[0] < 0 || dn->n_out != 1) return -1;
    if (dn->opset >= 21 && si_attr_int(dn, "block_size", 0) != 0) return -1;
    *q = dn->in[0];
    *s = cpu_const_input(g, dn, 1);
    *z = dn->n_in > 2 && dn->in[2] >= 0 ? cpu_const_input(g, dn, 2) : NULL;
    if (!*s || !(*s)->data || (*s)->dtype != SI_F32 || (dn->n_in > 2 && dn->in[2] >= 0 && (!*z || !(*z)->data))) return -1;
    const si_val *Q = &g->values[*q];
    if (want_const ? !Q->const_val || !Q->const_val->data : Q->const_val != NULL) return -1;
    return d;
}

/* The per-tensor QuantizeLinear (scale a float32 constant, zero point a constant or absent, uint8 / int8 out) that
 * is value v's only consumer, through a Relu when relu_ok (v's and the Relu's only consumer, not graph outputs). */
typedef struct q_after {
    int q, relu;    /* the nodes (relu -1 when there is none) */
    int y, yz;      /* the QuantizeLinear's output and zero point values (yz -1: absent) */
    const si_tensor *ys;
    float ysv;
    int32_t yzv;    /* the zero point's value (0 when absent) */
} q_after;

static bool scalar_of(const si_tensor *t, float *f, int32_t *i) {
    if (!t || !t->data || si_tensor_count(t) != 1) return false;
    if (f) *f = *(const float *)t->data;
    if (i) *i = (int32_t)si_load_i64(t->dtype, t->data, 0);
    return true;
}

static bool quant_after(const cpu_pb *b, int v, bool relu_ok, q_after *o) {
    const si_graph *g = b->g;
    o->q = o->relu = -1;
    for (int hop = 0; hop < 2; hop++) {
        if (cpu_value_is_output(g, v) || b->n_consumers[v] != 1) return false;
        const int c = cpu_pb_consumer(b, v, 0);
        if (c < 0 || b->done[c]) return false;
        const si_node *cn = &g->nodes[c];
        if (hop == 0 && relu_ok && cpu_is_op(cn, SI_OP_RELU) && cn->n_out == 1 && cn->out[0] >= 0) {
            o->relu = c;
            v = cn->out[0];
            continue;
        }
        if (!cpu_is_op(cn, SI_OP_QUANTIZE_LINEAR) || cn->in[0] != v || cn->n_out != 1 || cn->out[0] < 0 || cn->n_in < 2) return false;
        if ((cn->opset >= 21 && si_attr_int(cn, "block_size", 0) != 0) ||
            (cn->opset >= 23 && si_attr_int(cn, "precision", 0) > 0 && si_attr_int(cn, "precision", 0) != SI_F32))
            return false;
        o->ys = cpu_const_input(g, cn, 1);
        o->yz = cn->n_in > 2 && cn->in[2] >= 0 ? cn->in[2] : -1;
        o->yzv = 0;
        if (!o->ys || o->ys->dtype != SI_F32 || !scalar_of(o->ys, &o->ysv, NULL) ||
            (o->yz >= 0 && !scalar_of(cpu_const_input(g, cn, 2), NULL, &o->yzv)))
            return false;
        const si_dtype yt = g->values[cn->out[0]].dtype;
        if ((yt != SI_U8 && yt != SI_I8) || (o->yz >= 0 && g->values[o->yz].dtype != yt)) return false;
        o->q = c;
        o->y = cn->out[0];
        return true;
    }
    return false;
}

/* Conv node n in the QDQ form ONNX Runtime's quantizer writes, which ORT itself runs as one integer convolution:
 * x = DequantizeLinear(xq) (per tensor, xq computed), w = DequantizeLinear(constant int8 / uint8, per tensor or per
 * output channel: axis 0), bias = DequantizeLinear(constant int32 at scale x_scale * w_scale, zero point 0), and the
 * Conv's only consumer a per-tensor QuantizeLinear (through a Relu, which becomes max(., y_zero_point)). */
bool cpu_qdq_conv_match(const cpu_pb *b, int n, qlc_in *a) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    memset(a, 0, sizeof *a);
    if (b->no_fusion || !cpu_is_op(nd, SI_OP_CONV) || nd->n_in < 2 || nd->n_out != 1 || nd->out[0] < 0) return false;
    int xq, wq, bq = -1;
    const si_tensor *xz, *bs = NULL, *bz = NULL;
    if (dq_of(g, nd->in[0], false, &xq, &a->xs, &xz) < 0 || si_tensor_count(a->xs) != 1 || (xz && si_tensor_count(xz) != 1)) return false;
    int waxis = 1, baxis = 1;
    if (dq_of(g, nd->in[1], true, &wq, &a->WS, &a->WZ) >= 0) {
        a->W = g->values[wq].const_val;
        waxis = (int)si_attr_int(&g->nodes[g->values[nd->in[1]].producer], "axis", 1);
    } else if (!dq_const(g, nd->in[1], &a->W, &a->WS, &a->WZ, &waxis)) return false;
    const int64_t OC = a->W->ndim >= 1 ? a->W->dims[0] : 0;
    if (si_tensor_count(a->WS) != 1 && (waxis != 0 || a->WS->ndim != 1 || a->WS->dims[0] != OC)) return false; /* per channel: axis 0 */
    if (nd->n_in > 2 && nd->in[2] >= 0) {
        if (dq_of(g, nd->in[2], true, &bq, &bs, &bz) >= 0) a->B = g->values[bq].const_val;
        else if (!dq_const(g, nd->in[2], &a->B, &bs, &bz, &baxis)) return false;
        (void)baxis;
        if (a->B->dtype != SI_I32 || si_tensor_count(a->B) != OC || (si_tensor_count(bs) != 1 && si_tensor_count(bs) != OC)) return false;
        for (int64_t k = 0; bz && k < si_tensor_count(bz); k++)
            if (si_load_i64(bz->dtype, bz->data, k) != 0) return false;
        const float xsv = *(const float *)a->xs->data; /* the bias's scale is x_scale * w_scale, to float32 precision */
        for (int64_t m = 0; m < OC; m++) {
            const float want = xsv * ((const float *)a->WS->data)[si_tensor_count(a->WS) == 1 ? 0 : m];
            const float got = ((const float *)bs->data)[si_tensor_count(bs) == 1 ? 0 : m];
            if (fabsf(got - want) > 1e-6f * fabsf(want)) return false;
        }
    }
    /* the output: its only consumer a QuantizeLinear (through a Relu) */
    q_after o;
    if (!quant_after(b, nd->out[0], true, &o) || (xz && xz->dtype != g->values[xq].dtype)) return false;
    a->relu = o.relu >= 0;
    if (a->relu) a->extra[a->n_extra++] = o.relu;
    a->extra[a->n_extra++] = o.q;
    a->ys = o.ys, a->yz = o.yz, a->y = o.y;
    a->x = xq;
    a->xz = xz ? g->nodes[g->values[nd->in[0]].producer].in[2] : -1;
    return true;
}

/* When the integer product declines after all, the float path reads the DequantizeLinear's output: if that node was
 * skipped (cpu_qdq_feeds_int_convs), emit it now. */
static si_result qdq_fallback(cpu_pb *b, int n, si_result s) {
    const si_graph *g = b->g;
    if (s != SI_ERR_UNSUPPORTED) return s;
    si_err_clear();
    for (int k = 0; k < g->nodes[n].n_in; k++) {
        const int x = g->nodes[n].in[k], d = x >= 0 ? g->values[x].producer : -1;
        if (d < 0 || b->vbuf[x] >= 0 || !b->done[d] || !cpu_is_op(&g->nodes[d], SI_OP_DEQUANTIZE_LINEAR) || g->values[x].const_val) continue;
        si_result e = si_node_dq_of_consts(g, &g->nodes[d]) ? cpu_dq_fold(b, d) : cpu_qdq_emit(b, d);
        if (e && e != SI_ERR_UNSUPPORTED) return e;
        if (e) return si_err(SI_ERR_INTERNAL, "CPU: node '%s' skipped a DequantizeLinear that its float path needs", g->nodes[n].name);
    }
    return SI_ERR_UNSUPPORTED;
}

si_result cpu_lower_qdq_conv(cpu_pb *b, int n) {
    qlc_in a;
    if (cpu_no_own() || !cpu_qdq_conv_match(b, n, &a)) return qdq_fallback(b, n, cpu_unsupported());
    return qdq_fallback(b, n, cpu_qlconv_lower(b, n, &a));
}

/* MatMul / Gemm node n in the QDQ form: x = DequantizeLinear(xq) (per tensor, computed), the weights a constant 2-D
 * DequantizeLinear (per tensor, or per column: axis 1, or axis 0 for Gemm's transB), Gemm's C a DequantizeLinear of
 * int32 at scale x_scale * w_scale (alpha and beta 1, transA 0). The output is quantized (its only consumer a
 * QuantizeLinear, through a Relu) or stays float32 (no QuantizeLinear after it: ONNX Runtime's
 * MatMulIntegerToFloat). */
bool cpu_qdq_mm_match(const cpu_pb *b, int n, qmm_in *a) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    memset(a, 0, sizeof *a);
    const bool gemm = cpu_is_op(nd, SI_OP_GEMM);
    if (b->no_fusion || (!gemm && !cpu_is_op(nd, SI_OP_MATMUL)) || nd->n_in < 2 || nd->n_out != 1 || nd->out[0] < 0) return false;
    if (gemm && (si_attr_int(nd, "transA", 0) || si_attr_float(nd, "alpha", 1.0f) != 1.0f || si_attr_float(nd, "beta", 1.0f) != 1.0f))
        return false;
    int xq, wq, waxis = 1;
    const si_tensor *xz;
    if (dq_of(g, nd->in[0], false, &xq, &a->xs, &xz) < 0 || si_tensor_count(a->xs) != 1 || (xz && si_tensor_count(xz) != 1)) return false;
    if (xz && xz->dtype != g->values[xq].dtype) return false;
    if (dq_of(g, nd->in[1], true, &wq, &a->WS, &a->WZ) >= 0) {
        a->W = g->values[wq].const_val;
        waxis = (int)si_attr_int(&g->nodes[g->values[nd->in[1]].producer], "axis", 1);
    } else if (!dq_const(g, nd->in[1], &a->W, &a->WS, &a->WZ, &waxis)) {
        return false;
    }
    a->tb = gemm && si_attr_int(nd, "transB", 0);
    if (a->W->ndim != 2 || (a->W->dtype != SI_I8 && a->W->dtype != SI_U8)) return false;
    const int64_t N = a->tb ? a->W->dims[0] : a->W->dims[1];
    if (si_tensor_count(a->WS) != 1 && (waxis != (a->tb ? 0 : 1) || a->WS->ndim != 1 || a->WS->dims[0] != N)) return false;
    const si_tensor *cf = gemm && nd->n_in > 2 && nd->in[2] >= 0 ? g->values[nd->in[2]].const_val : NULL;
    if (cf && cf->dtype == SI_F32 && !g->values[nd->in[2]].dq_q) { /* a float bias: added to the float output (checked below) */
        a->Cf = cf;
    } else if (gemm && nd->n_in > 2 && nd->in[2] >= 0) {
        int cq, caxis;
        const si_tensor *cs, *cz;
        if (dq_of(g, nd->in[2], true, &cq, &cs, &cz) >= 0) a->C = g->values[cq].const_val;
        else if (!dq_const(g, nd->in[2], &a->C, &cs, &cz, &caxis)) return false;
        if (a->C->dtype != SI_I32 || si_tensor_count(a->C) != N || (si_tensor_count(cs) != 1 && si_tensor_count(cs) != N)) return false;
        for (int64_t k = 0; cz && k < si_tensor_count(cz); k++)
            if (si_load_i64(cz->dtype, cz->data, k) != 0) return false;
        const float xsv = *(const float *)a->xs->data;
        for (int64_t j = 0; j < N; j++) {
            const float want = xsv * ((const float *)a->WS->data)[si_tensor_count(a->WS) == 1 ? 0 : j];
            const float got = ((const float *)cs->data)[si_tensor_count(cs) == 1 ? 0 : j];
            if (fabsf(got - want) > 1e-6f * fabsf(want)) return false;
        }
    }
    a->x = xq;
    a->xz = xz ? g->nodes[g->values[nd->in[0]].producer].in[2] : -1;
    a->alpha = 1.0f;
    a->name = gemm ? "QDQ Gemm" : "QDQ MatMul";
    a->y = nd->out[0];
    a->yz = -1;
    /* a QuantizeLinear after it (through a Relu, which becomes max(y, y_zero_point)): quantized output */
    q_after o;
    if (quant_after(b, nd->out[0], true, &o)) {
        a->relu = o.relu >= 0;
        if (a->relu) a->extra[a->n_extra++] = o.relu;
        a->extra[a->n_extra++] = o.q;
        a->ys = o.ys, a->yz = o.yz, a->y = o.y;
    }
    if (!a->ys && g->values[nd->out[0]].dtype != SI_F32) return false;
    if (a->Cf && a->ys) return false; /* a float bias before a QuantizeLinear: the float path */
    return true;
}

/* Add / Mul node n in the QDQ form: both operands DequantizeLinear (per tensor, computed, one element type, one shape)
 * and its only consumer a per-tensor QuantizeLinear (through a Relu): ONNX Runtime runs it as QLinearAdd / Mul. */
typedef struct qdq_add {
    bool mul;
    int a, b, y, extra[2], n_extra;
    float as, bs, ys;
    int32_t az, bz, yz, qlo;
} qdq_add;

static bool qdq_add_match(const cpu_pb *b, int n, qdq_add *m) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    memset(m, 0, sizeof *m);
    if (b->no_fusion || (!cpu_is_op(nd, SI_OP_ADD) && !cpu_is_op(nd, SI_OP_MUL)) || nd->n_in != 2 || nd->n_out != 1 || nd->out[0] < 0 ||
        nd->in[0] == nd->in[1])
        return false;
    m->mul = cpu_is_op(nd, SI_OP_MUL);
    const si_tensor *as, *az, *bs, *bz;
    if (dq_of(g, nd->in[0], false, &m->a, &as, &az) < 0 || dq_of(g, nd->in[1], false, &m->b, &bs, &bz) < 0) return false;
    if (!scalar_of(as, &m->as, NULL) || !scalar_of(bs, &m->bs, NULL) || (az && !scalar_of(az, NULL, &m->az)) || (bz && !scalar_of(bz, NULL, &m->bz)))
        return false;
    const si_dtype dt = g->values[m->a].dtype;
    if (g->values[m->b].dtype != dt || (az && az->dtype != dt) || (bz && bz->dtype != dt)) return false;
    q_after o;
    if (!quant_after(b, nd->out[0], true, &o) || g->values[o.y].dtype != dt) return false;
    if (o.relu >= 0) m->extra[m->n_extra++] = o.relu;
    m->extra[m->n_extra++] = o.q;
    m->qlo = o.relu >= 0 ? o.yzv : INT32_MIN; /* the Relu: max(y, y_zero_point) */
    m->ys = o.ysv, m->yz = o.yzv, m->y = o.y;
    return true;
}

/* Sigmoid / LeakyRelu node n in the QDQ form: x = DequantizeLinear(xq) (per tensor, computed) and its only consumer
 * a per-tensor QuantizeLinear to xq's type: ONNX Runtime runs it as QLinearSigmoid / QLinearLeakyRelu, here a byte
 * table (table NULL: only the match). */
typedef struct qdq_unary {
    int x, y, q;
} qdq_unary;

static bool qdq_unary_match(const cpu_pb *b, int n, qdq_unary *m, uint8_t *table) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    const bool leaky = cpu_is_op(nd, SI_OP_LEAKY_RELU);
    if (b->no_fusion || (!leaky && !cpu_is_op(nd, SI_OP_SIGMOID)) || nd->n_in != 1 || nd->n_out != 1 || nd->out[0] < 0) return false;
    const si_tensor *xs, *xz;
    float xsv;
    int32_t xzv = 0;
    if (dq_of(g, nd->in[0], false, &m->x, &xs, &xz) < 0 || !scalar_of(xs, &xsv, NULL) || (xz && !scalar_of(xz, NULL, &xzv)) || !isfinite(xsv))
        return false;
    const si_dtype dt = g->values[m->x].dtype;
    if ((dt != SI_U8 && dt != SI_I8) || (xz && xz->dtype != dt)) return false;
    q_after o;
    if (!quant_after(b, nd->out[0], false, &o) || g->values[o.y].dtype != dt || o.ysv == 0.0f || !isfinite(o.ysv)) return false;
    m->y = o.y, m->q = o.q;
    if (table) si_qlinear_unary_table(leaky, leaky ? si_attr_float(nd, "alpha", 0.01f) : 0.0f, dt, xsv, xzv, o.ysv, o.yzv, table);
    return true;
}

si_result cpu_lower_qdq_unary(cpu_pb *b, int n) {
    qdq_unary m;
    uint8_t *table = cpu_pb_own(b, 256);
    if (!table) return SI_ERR_NO_MEM;
    if (cpu_no_own() || !qdq_unary_match(b, n, &m, table)) return qdq_fallback(b, n, cpu_unsupported());
    return qdq_fallback(b, n, cpu_qlinear_unary_emit(b, n, m.x, m.y, table, &m.q, 1));
}

/* Concat node n in the QDQ form: every input DequantizeLinear (per tensor, computed, one element type) and its only
 * consumer a per-tensor QuantizeLinear to that type: ONNX Runtime's QLinearConcat. */
#define QDQ_CAT_MAX 64
typedef struct qdq_cat {
    int nx, x[QDQ_CAT_MAX], y, q;
    float xs[QDQ_CAT_MAX], ys;
    int32_t xz[QDQ_CAT_MAX], yz;
} qdq_cat;

static bool qdq_concat_match(const cpu_pb *b, int n, qdq_cat *m) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (b->no_fusion || !cpu_is_op(nd, SI_OP_CONCAT) || nd->n_in < 1 || nd->n_in > QDQ_CAT_MAX || nd->n_out != 1 || nd->out[0] < 0) return false;
    si_dtype dt = SI_DTYPE_UNDEFINED;
    m->nx = nd->n_in;
    for (int k = 0; k < nd->n_in; k++) {
        const si_tensor *s, *z;
        m->xz[k] = 0;
        if (dq_of(g, nd->in[k], false, &m->x[k], &s, &z) < 0 || !scalar_of(s, &m->xs[k], NULL) || (z && !scalar_of(z, NULL, &m->xz[k])))
            return false;
        const si_dtype xt = g->values[m->x[k]].dtype;
        if (k == 0) dt = xt;
        if (xt != dt || (z && z->dtype != dt)) return false;
    }
    if (dt != SI_U8 && dt != SI_I8) return false;
    q_after o;
    if (!quant_after(b, nd->out[0], false, &o) || g->values[o.y].dtype != dt) return false;
    m->y = o.y, m->q = o.q, m->ys = o.ysv, m->yz = o.yzv;
    return true;
}

si_result cpu_lower_qdq_concat(cpu_pb *b, int n) {
    qdq_cat *m = cpu_pb_own(b, sizeof *m);
    if (!m) return SI_ERR_NO_MEM;
    if (cpu_no_own() || !qdq_concat_match(b, n, m)) return qdq_fallback(b, n, cpu_unsupported());
    return qdq_fallback(b, n, cpu_qlinear_concat_emit(b, n, si_attr_int(&b->g->nodes[n], "axis", 0), m->nx, m->x, m->xs, m->xz, m->y, m->ys,
                                                      m->yz, &m->q, 1));
}

si_result cpu_lower_qdq_add(cpu_pb *b, int n) {
    qdq_add m;
    if (cpu_no_own() || !qdq_add_match(b, n, &m)) return qdq_fallback(b, n, cpu_unsupported());
    return qdq_fallback(b, n, cpu_qlinear_binary_emit(b, n, m.mul, m.a, m.b, m.y, m.as, m.az, m.bs, m.bz, m.ys, m.yz, m.qlo, m.extra,
                                                      m.n_extra));
}

/* MaxPool node n in the QDQ form: its input a per-tensor DequantizeLinear (computed), its only consumer a
 * QuantizeLinear with the same scale and zero point: the max of the integers is the same (quantization is
 * monotonic), so it runs on them. On a match *xin / *yout become the integer values and *q the QuantizeLinear. */
bool cpu_qdq_pool_match(const cpu_pb *b, int n, int *xin, int *yout, int *q) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (b->no_fusion || cpu_no_own() || nd->n_in < 1 || nd->n_out < 1 || nd->out[0] < 0 || (nd->n_out > 1 && nd->out[1] >= 0)) return false;
    int xq;
    const si_tensor *xs, *xz;
    float xsv;
    int32_t xzv = 0;
    if (dq_of(g, nd->in[0], false, &xq, &xs, &xz) < 0 || !scalar_of(xs, &xsv, NULL) || (xz && !scalar_of(xz, NULL, &xzv))) return false;
    q_after o;
    if (!quant_after(b, nd->out[0], false, &o)) return false;
    if (memcmp(&xsv, &o.ysv, sizeof xsv) || xzv != o.yzv || g->values[o.y].dtype != g->values[xq].dtype) return false;
    *xin = xq, *yout = o.y, *q = o.q;
    return true;
}

si_result cpu_qdq_fallback(cpu_pb *b, int n, si_result s) { return qdq_fallback(b, n, s); }

si_result cpu_lower_qdq_matmul(cpu_pb *b, int n) {
    qmm_in a;
    if (cpu_no_own() || !cpu_qdq_mm_match(b, n, &a)) return qdq_fallback(b, n, cpu_unsupported());
    if (a.C) cpu_pb_keep_const(b, b->g->nodes[n].in[2]);
    return qdq_fallback(b, n, cpu_qmm_lower(b, n, &a));
}

/* A DequantizeLinear whose every consumer is a Conv, MatMul, Gemm or Add that runs on the integers
 * (cpu_lower_qdq_conv / _matmul / _add), which read the quantized values instead: it need not run. */
bool cpu_qdq_feeds_int_convs(cpu_pb *b, int n) {
    const si_graph *g = b->g;
    const si_node *nd = &g->nodes[n];
    if (cpu_no_own() || b->no_fusion || nd->n_out != 1 || nd->out[0] < 0) return false;
    const int v = nd->out[0];
    if (cpu_value_is_output(g, v) || b->n_consumers[v] < 1) return false;
    for (int k = 0; k < b->n_consumers[v]; k++) {
        const int c = cpu_pb_consumer(b, v, k);
        qlc_in a;
        qmm_in m;
        qdq_add d;
        qdq_unary u;
        qdq_cat *ct = NULL;
        int px, py, pq;
        bool cat = false;
        if (c >= 0 && !b->done[c] && cpu_is_op(&g->nodes[c], SI_OP_CONCAT) && (ct = si_malloc(sizeof *ct))) {
            cat = qdq_concat_match(b, c, ct);
            si_free(ct);
        }
        if (c < 0 || b->done[c] ||
            (!cpu_qdq_conv_match(b, c, &a) && !cpu_qdq_mm_match(b, c, &m) && !qdq_add_match(b, c, &d) && !qdq_unary_match(b, c, &u, NULL) && !cat &&
             !((cpu_is_op(&g->nodes[c], SI_OP_MAX_POOL) || cpu_is_op(&g->nodes[c], SI_OP_GLOBAL_MAX_POOL)) && cpu_qdq_pool_match(b, c, &px, &py, &pq))))
            return false;
    }
    return true;
}
