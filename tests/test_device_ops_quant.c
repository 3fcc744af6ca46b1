/*
 * test_device_ops_quant.c — device-vs-REF cases of the quantized ops and the recurrent layers (groups listed in
 * test_device_ops_cases.c's table): DynamicQuantizeLinear on odd sizes and layouts, ConvInteger and
 * MatMulInteger alone and in the DynamicQuantizeLinear -> product -> Cast -> Mul(scale) -> Add -> Relu form of
 * ONNX Runtime's dynamic quantizer (int8 and uint8 weights, weights that fit int8 after their zero point and
 * weights that need the correction, strides, pads, dilations, groups, 1-D to 3-D), and LSTM / GRU / RNN over
 * their attribute space. Where the CPU device has a fast kernel the case names the step its plan must contain.
 */
#include "test_device_ops.h"

#include <math.h>
#include <stdlib.h>

static uint32_t qrng = 99;
static int64_t irand(int64_t lo, int64_t hi) { /* [lo, hi] */
    qrng ^= qrng << 13;
    qrng ^= qrng >> 17;
    qrng ^= qrng << 5;
    return lo + (int64_t)(qrng % (uint32_t)(hi - lo + 1));
}

/* A constant of an integer element type with random values in [lo, hi]. */
static void qconst(const char *name, si_dtype dt, int64_t lo, int64_t hi, const int64_t *dims, int nd) {
    si_tensor *t;
    if (si_tensor_create(dt, nd, dims, &t)) die("tensor");
    for (int64_t i = 0; i < si_tensor_count(t); i++) si_store_i64(dt, t->data, i, irand(lo, hi));
    set_const(name, t);
}

/* The 7-bit pass (dop_cases_int8_w7): weight codes within [-64, 64] of their zero point, on which oneDNN's int8
 * products are exact on every CPU (without VNNI its int16 pairs cannot saturate), so the cases check the CPU plan
 * everywhere; outside it, full-range weights, whose plan is checked where the CPU has VNNI only (dop_opts.int8). */
static bool w7;

/* Whether a convolution with 7-bit weights keeps oneDNN's int8 kernel on a CPU without VNNI (cpu_int8f.c
 * keep_int8): uint8 input, one group, or depthwise where it requantizes itself (QLinearConv, the QDQ form). */
static bool w7_conv_kept(si_dtype xt, int64_t group, int64_t c, int64_t oc, bool requant) {
    return w7 && xt == SI_U8 && (group == 1 || (requant && group == c && group == oc));
}

/* Weight codes in [lo, hi] for zero points in [zlo, zhi], narrowed in the 7-bit pass. */
static void wconst(const char *name, si_dtype dt, int64_t lo, int64_t hi, int64_t zlo, int64_t zhi, const int64_t *dims, int nd) {
    if (w7) lo = SI_MAX(lo, zhi - 64), hi = SI_MIN(hi, zlo + 64);
    qconst(name, dt, lo, hi, dims, nd);
}

static void qscalar(const char *name, si_dtype dt, int64_t v) {
    si_tensor *t;
    if (si_tensor_create(dt, 0, NULL, &t)) die("tensor");
    si_store_i64(dt, t->data, 0, v);
    set_const(name, t);
}

static void q_source(const char *name, si_dtype dt, const int64_t *dims, int nd, float s, int zp, bool conv);

static void expect(const char *label, const char *step) { dop_run(label, &(dop_opts){.int8 = true, .cpu_plan = step, .cpu_no_ref = false, .may_refuse = "OCL"}); }

// --- DynamicQuantizeLinear ----------------------------------------------------------------------------------------

void dop_cases_dynamic_quantize(void) {
    static const struct { int nd; int64_t d[4]; const char *in; } cases[] = {
        {1, {1}, "x"}, {2, {3, 5}, "x"}, {3, {2, 7, 9}, "pos"}, {4, {2, 16, 33, 17}, "x"}, {4, {1, 3, 150, 151}, "unit"},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(13);
        input(cases[i].in, cases[i].d, cases[i].nd);
        char ins[16];
        snprintf(ins, sizeof ins, "%s", cases[i].in);
        node("DynamicQuantizeLinear", ins, "y,s,z");
        output("y"), output("s"), output("z");
        dop_runf(&(dop_opts){.int8 = true, .cpu_plan = "DynamicQuantizeLinear", .cpu_no_ref = true, .may_refuse = "OCL"}, "DynamicQuantizeLinear %zu (%s)", i, cases[i].in);
    }
    /* after a convolution whose output layout is channels-last: quantized in that layout, dequantized by REF */
    begin(13);
    input("x", D(1, 8, 12, 13));
    weight("w", -0.5f, 0.5f, D(16, 8, 3, 3));
    ais(node("Conv", "x,w", "c"), "pads", D(1, 1, 1, 1));
    node("DynamicQuantizeLinear", "c", "q,s,z");
    node("DequantizeLinear", "q,s,z", "y");
    output("y"), output("q");
    expect("Conv -> DynamicQuantizeLinear -> DequantizeLinear", "DynamicQuantizeLinear");
}

// --- ConvInteger --------------------------------------------------------------------------------------------------

typedef struct qconv_p {
    int nsp;
    int64_t n, c, sz, oc, k, stride, pad, dil, group;
    si_dtype wt;
    int wmode; /* 0: w in full range, zero point mid (needs the correction for uint8); 1: w - wz fits int8; 2: int8, zp 0 */
    bool chain, bias, relu;
} qconv_p;

static void qconv_case(const qconv_p *p) {
    begin(13);
    int64_t xd[5] = {p->n, p->c, p->sz, p->sz + 1, p->sz + 2}, wd[5] = {p->oc, p->c / p->group, p->k, p->k, p->k};
    input("x", xd, p->nsp + 2);
    node("DynamicQuantizeLinear", "x", "xq,xs,xz");
    int64_t lo = p->wt == SI_U8 ? 0 : -128, hi = p->wt == SI_U8 ? 255 : 127, zp = p->wt == SI_U8 ? 131 : 0;
    if (p->wmode == 1) lo = zp - 128, hi = zp + 127;
    if (p->wmode == 1 && p->wt == SI_U8) lo = 3, hi = 250, zp = 128;
    wconst("w", p->wt, lo, hi, zp, zp, wd, p->nsp + 2);
    qscalar("wz", p->wt, zp);
    int n = node("ConvInteger", "xq,w,xz,wz", p->chain ? "acc" : "y");
    int64_t pads[6], st[3], dl[3];
    for (int i = 0; i < p->nsp; i++) pads[i] = pads[i + p->nsp] = p->pad, st[i] = p->stride, dl[i] = p->dil;
    if (p->pad) ais(n, "pads", pads, 2 * p->nsp);
    if (p->stride > 1) ais(n, "strides", st, p->nsp);
    if (p->dil > 1) ais(n, "dilations", dl, p->nsp);
    if (p->group > 1) ai(n, "group", p->group);
    if (p->chain) {
        ai(node("Cast", "acc", "accf"), "to", SI_F32);
        fconst("ws", 0.013f);
        node("Mul", "xs,ws", "sp");
        node("Mul", "accf,sp", p->bias || p->relu ? "m" : "y");
        if (p->bias) {
            int64_t bd[5] = {1, p->oc, 1, 1, 1};
            weight("b", -1, 1, bd, p->nsp + 2);
            node("Add", "m,b", p->relu ? "mb" : "y");
        }
        if (p->relu) node("Relu", p->bias ? "mb" : "m", "y");
    }
    output("y");
    char label[200];
    snprintf(label, sizeof label, "ConvInteger %dD n%lld c%lld oc%lld k%lld s%lld p%lld d%lld g%lld %s w%d%s%s%s", p->nsp, (long long)p->n,
             (long long)p->c, (long long)p->oc, (long long)p->k, (long long)p->stride, (long long)p->pad, (long long)p->dil,
             (long long)p->group, si_dtype_name(p->wt), p->wmode, p->chain ? " +Cast+Mul" : "", p->bias ? "+Add" : "", p->relu ? "+Relu" : "");
    bool corr = p->wt == SI_U8 && p->wmode == 0 && !w7;
    const char *want = !p->chain ? "ConvInteger" : corr ? "ConvInteger(u8w)+Cast+Mul" : "ConvInteger+Cast+Mul";
    dop_run(label, &(dop_opts){.int8 = !w7_conv_kept(SI_U8, p->group, p->c, p->oc, false), .cpu_plan = want, .cpu_no_ref = true, .may_refuse = "OCL"});
}

static void conv_integer_cases(void) {
    static const qconv_p cases[] = {
        {2, 1, 3, 17, 8, 3, 1, 1, 1, 1, SI_U8, 0, true, true, true},   {2, 1, 8, 12, 16, 3, 1, 1, 1, 1, SI_U8, 1, true, true, true},
        {2, 2, 8, 11, 16, 3, 2, 1, 1, 1, SI_I8, 2, true, true, false}, {2, 1, 16, 9, 12, 1, 1, 0, 1, 1, SI_U8, 0, true, false, false},
        {2, 1, 8, 14, 8, 3, 1, 2, 2, 1, SI_U8, 0, true, true, true},   {2, 1, 8, 10, 12, 3, 1, 1, 1, 4, SI_U8, 0, true, true, true},
        {2, 1, 6, 13, 10, 5, 3, 0, 1, 1, SI_U8, 0, true, true, false}, {2, 1, 16, 10, 32, 3, 1, 1, 1, 16, SI_I8, 2, true, false, true},
        {2, 1, 8, 9, 16, 3, 1, 1, 1, 1, SI_I8, 2, false, false, false}, {2, 1, 8, 9, 16, 3, 2, 0, 1, 1, SI_U8, 1, false, false, false},
        {1, 2, 8, 30, 16, 3, 1, 1, 1, 1, SI_U8, 0, true, true, true},  {3, 1, 4, 6, 8, 3, 1, 1, 1, 1, SI_U8, 0, true, true, true},
        {2, 1, 32, 20, 64, 3, 1, 1, 1, 1, SI_U8, 0, true, true, true},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) qconv_case(&cases[i]);
}

void dop_cases_conv_integer(void) {
    conv_integer_cases();
    /* activations zero point as a constant, uint8 weights per output channel zero point that fit int8 */
    begin(10);
    input("x", D(1, 4, 7, 8));
    node("DynamicQuantizeLinear", "x", "xq,xs,xz");
    qconst("w", SI_U8, 60, 180, D(6, 4, 3, 3));
    qconst("wz", SI_U8, 100, 140, D(6));
    qscalar("cz", SI_U8, 7);
    ais(node("ConvInteger", "xq,w,cz,wz", "y"), "pads", D(1, 1, 1, 1));
    output("y");
    expect("ConvInteger per-channel weight zero points, constant x zero point", "ConvInteger");
    /* per-channel zero points that would need a per-channel correction: the reference kernel */
    begin(10);
    input("x", D(1, 4, 7, 8));
    node("DynamicQuantizeLinear", "x", "xq,xs,xz");
    qconst("w", SI_U8, 0, 255, D(6, 4, 3, 3));
    qconst("wz", SI_U8, 100, 140, D(6));
    node("ConvInteger", "xq,w,xz,wz", "y");
    output("y");
    dop_runf(&(dop_opts){.int8 = true, .may_refuse = "OCL"}, "ConvInteger per-channel zero points, full-range uint8 weights");
}

// --- MatMulInteger ------------------------------------------------------------------------------------------------

void dop_cases_matmul_integer(void) {
    static const struct { int na; int64_t a[3]; int64_t n; si_dtype wt; int wz; bool chain, percol, bias; } cases[] = {
        {2, {1, 16}, 8, SI_I8, 0, true, false, true},     {2, {7, 33}, 5, SI_U8, 131, true, false, false},
        {3, {2, 12, 32}, 48, SI_I8, 0, true, true, true},  {3, {3, 5, 24}, 7, SI_U8, 2, true, true, false},
        {2, {64, 64}, 64, SI_I8, 5, false, false, false}, {2, {9, 17}, 3, SI_U8, 255, false, false, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(13);
        int na = cases[i].na;
        int64_t K = cases[i].a[na - 1], N = cases[i].n;
        input("x", cases[i].a, na);
        node("DynamicQuantizeLinear", "x", "xq,xs,xz");
        wconst("w", cases[i].wt, cases[i].wt == SI_U8 ? 0 : -128, cases[i].wt == SI_U8 ? 255 : 127, cases[i].wz, cases[i].wz, D(K, N));
        qscalar("wz", cases[i].wt, cases[i].wz);
        node("MatMulInteger", "xq,w,xz,wz", cases[i].chain ? "acc" : "y");
        if (cases[i].chain) {
            ai(node("Cast", "acc", "accf"), "to", SI_F32);
            if (cases[i].percol) weight("ws", 0.005f, 0.02f, D(N));
            else fconst("ws", 0.01f);
            node("Mul", "xs,ws", "sp");
            node("Mul", "accf,sp", cases[i].bias ? "m" : "y");
            if (cases[i].bias) {
                weight("b", -1, 1, D(N));
                node("Add", "m,b", "y");
            }
        }
        output("y");
        /* a per-column scale product Mul(x_scale, w_scale) is a small reference step */
        dop_runf(&(dop_opts){.int8 = !w7, .cpu_plan = cases[i].chain ? "MatMulInteger+Cast+Mul" : "MatMulInteger", .cpu_no_ref = !cases[i].percol, .may_refuse = "OCL"},
                 "MatMulInteger case %zu (%s, zero point %d)%s%s", i, si_dtype_name(cases[i].wt), cases[i].wz,
                 cases[i].chain ? " +Cast+Mul" : "", cases[i].percol ? " per-column scale" : "");
    }
}

// --- QLinearConv (the QOperator form of ONNX Runtime's static quantizer) -----------------------------------------

typedef struct qlconv_p {
    int64_t c, sz, oc, k, stride, pad, group;
    si_dtype xt, wt;
    int xzp, yzp;
    bool per_channel, bias, pool;
} qlconv_p;

/* QuantizeLinear -> QLinearConv [-> MaxPool on the integers] -> DequantizeLinear; the integer output is an output
 * too, so it is compared exactly (the requantization rounds as the reference kernel does). */
static void qlconv_case(const qlconv_p *p) {
    begin(13);
    input("x", D(1, p->c, p->sz, p->sz + 1));
    fconst("xs", 0.021f);
    qscalar("xz", p->xt, p->xzp);
    node("QuantizeLinear", "x,xs,xz", "xq");
    const int64_t zlo = p->wt == SI_U8 ? (p->per_channel ? 125 : 128) : 0, zhi = p->wt == SI_U8 ? (p->per_channel ? 131 : 128) : 0;
    wconst("w", p->wt, p->wt == SI_U8 ? 70 : -127, p->wt == SI_U8 ? 190 : 127, zlo, zhi, D(p->oc, p->c / p->group, p->k, p->k));
    if (p->per_channel) {
        weight("ws", 0.002f, 0.02f, D(p->oc));
        qconst("wz", p->wt, p->wt == SI_U8 ? 125 : 0, p->wt == SI_U8 ? 131 : 0, D(p->oc));
    } else {
        fconst("ws", 0.007f);
        qscalar("wz", p->wt, p->wt == SI_U8 ? 128 : 0);
    }
    fconst("ys", 0.37f);
    qscalar("yz", p->xt, p->yzp);
    if (p->bias) qconst("B", SI_I32, -20000, 20000, D(p->oc));
    int n = node("QLinearConv", p->bias ? "xq,xs,xz,w,ws,wz,ys,yz,B" : "xq,xs,xz,w,ws,wz,ys,yz", "q");
    if (p->pad) ais(n, "pads", D(p->pad, p->pad, p->pad, p->pad));
    if (p->stride > 1) ais(n, "strides", D(p->stride, p->stride));
    if (p->group > 1) ai(n, "group", p->group);
    if (p->pool) {
        int mp = node("MaxPool", "q", "qp");
        ais(mp, "kernel_shape", D(2, 2));
        ais(mp, "strides", D(2, 2));
    }
    node("DequantizeLinear", p->pool ? "qp,ys,yz" : "q,ys,yz", "y");
    output("y"), output(p->pool ? "qp" : "q");
    /* the convolution requantizes in the oneDNN primitive (no separate pass) unless SI_NO_FUSED_REQUANT=1 */
    const char *conv_step = getenv("SI_NO_FUSED_REQUANT") ? "QLinearConv" : "+requantize";
    dop_runf(&(dop_opts){.int8 = !w7_conv_kept(p->xt, p->group, p->c, p->oc, true), .cpu_plan = p->pool ? "MaxPool(int8)" : conv_step, .may_refuse = "OCL"},
             "QLinearConv c%lld %lldx%lld oc%lld k%lld s%lld p%lld g%lld x %s w %s zp %d/%d%s%s%s", (long long)p->c, (long long)p->sz,
             (long long)p->sz + 1, (long long)p->oc, (long long)p->k, (long long)p->stride, (long long)p->pad, (long long)p->group,
             si_dtype_name(p->xt), si_dtype_name(p->wt), p->xzp, p->yzp, p->per_channel ? " per-channel" : "", p->bias ? " +B" : "",
             p->pool ? " -> MaxPool" : "");
}

static void qlinear_conv_cases(void) {
    static const qlconv_p cases[] = {
        {3, 32, 16, 3, 2, 1, 1, SI_U8, SI_I8, 131, 127, true, true, false},  {16, 12, 32, 3, 1, 1, 1, SI_U8, SI_I8, 0, 0, true, true, true},
        {24, 9, 24, 3, 1, 1, 24, SI_U8, SI_I8, 17, 3, true, true, false},    {32, 7, 13, 1, 1, 0, 1, SI_U8, SI_I8, 9, 200, false, false, false},
        {8, 10, 16, 3, 1, 1, 1, SI_I8, SI_I8, -5, 4, true, true, true},      {8, 10, 16, 3, 1, 1, 1, SI_U8, SI_U8, 60, 11, true, true, false},
        {16, 15, 8, 5, 2, 2, 4, SI_U8, SI_I8, 128, 64, false, true, false},  {64, 6, 70, 3, 1, 1, 1, SI_U8, SI_I8, 1, 250, true, true, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) qlconv_case(&cases[i]);
}

void dop_cases_qlinear_conv(void) {
    qlinear_conv_cases();
    /* uint8 weights that do not fit int8 after their zero point: the reference kernel */
    begin(13);
    input("x", D(1, 4, 7, 8));
    fconst("xs", 0.02f);
    qscalar("xz", SI_U8, 128);
    node("QuantizeLinear", "x,xs,xz", "xq");
    qconst("w", SI_U8, 0, 255, D(6, 4, 3, 3));
    fconst("ws", 0.01f);
    qscalar("wz", SI_U8, 3);
    fconst("ys", 0.5f);
    qscalar("yz", SI_U8, 128);
    node("QLinearConv", "xq,xs,xz,w,ws,wz,ys,yz", "y");
    output("y");
    dop_runf(&(dop_opts){.int8 = true, .may_refuse = "OCL"}, "QLinearConv full-range uint8 weights (reference kernel)");
}

// --- the QDQ form: DequantizeLinear -> Conv -> QuantizeLinear -----------------------------------------------------

typedef struct qdqconv_p {
    int64_t c, sz, oc, k, stride, group;
    si_dtype xt;
    bool per_channel, bias, relu;
} qdqconv_p;

/* The QDQ form ONNX Runtime's quantizer writes around a Conv, which the CPU device runs as one integer convolution
 * (the weights and the bias as their int8 / int32 sources, folded DequantizeLinear constants): against REF's float
 * evaluation of the graph as written, the uint8 / int8 output may differ by one unit (one rounding instead of two). */
static void qdqconv_case(const qdqconv_p *p) {
    begin(13);
    input("x", D(1, p->c, p->sz, p->sz + 2));
    const bool s8 = p->xt == SI_I8;
    fconst("xs", 0.019f);
    qscalar("xz", p->xt, s8 ? -4 : 131);
    node("QuantizeLinear", "x,xs,xz", "xq");
    node("DequantizeLinear", "xq,xs,xz", "xd");
    const int64_t oc = p->oc, cg = p->c / p->group;
    wconst("wq", SI_I8, -127, 127, 0, 0, D(oc, cg, p->k, p->k));
    float wsv[64];
    for (int64_t m = 0; m < oc; m++) wsv[m] = 0.002f + 0.0003f * (float)m;
    if (p->per_channel) {
        floats("ws", wsv, (int)oc);
        qconst("wz", SI_I8, 0, 0, D(oc));
    } else {
        fconst("ws", wsv[0]);
        qscalar("wz", SI_I8, 0);
    }
    int dw = node("DequantizeLinear", "wq,ws,wz", "w");
    if (p->per_channel) ai(dw, "axis", 0);
    if (p->bias) {
        float bsv[64];
        for (int64_t m = 0; m < oc; m++) bsv[m] = 0.019f * wsv[p->per_channel ? m : 0];
        qconst("bq", SI_I32, -4000, 4000, D(oc));
        floats("bsc", bsv, (int)oc);
        qconst("bz", SI_I32, 0, 0, D(oc));
        ai(node("DequantizeLinear", "bq,bsc,bz", "bias"), "axis", 0);
    }
    int cv = node("Conv", p->bias ? "xd,w,bias" : "xd,w", p->relu ? "c" : "y");
    const int64_t pad = p->k / 2;
    ais(cv, "pads", D(pad, pad, pad, pad));
    if (p->stride > 1) ais(cv, "strides", D(p->stride, p->stride));
    if (p->group > 1) ai(cv, "group", p->group);
    if (p->relu) node("Relu", "c", "y");
    fconst("ys", 0.07f);
    qscalar("yz", p->xt, s8 ? 3 : 40);
    node("QuantizeLinear", "y,ys,yz", "yq");
    output("yq");
    dop_runf(&(dop_opts){.int8 = !w7_conv_kept(p->xt, p->group, p->c, p->oc, true), .cpu_plan = p->group > 1 && p->group == p->c ? "QDQ Conv(dw)" : "QDQ Conv", .may_refuse = "OCL", .qtol = 1},
             "QDQ Conv c%lld oc%lld k%lld s%lld g%lld x %s%s%s%s", (long long)p->c, (long long)oc, (long long)p->k, (long long)p->stride,
             (long long)p->group, si_dtype_name(p->xt), p->per_channel ? " per-channel" : "", p->bias ? " +bias" : "", p->relu ? " +Relu" : "");
}

/* MatMul / Gemm in the QDQ form: quantized output (QuantizeLinear after it, through a Relu) or float32 (none). */
static void qdqmm_case(bool gemm, const int64_t *ad, int na, int64_t n, bool percol, bool quant, bool relu, bool tb, bool bias) {
    begin(13);
    input("x", ad, na);
    const int64_t k = ad[na - 1];
    fconst("xs", 0.021f);
    qscalar("xz", SI_U8, 126);
    node("QuantizeLinear", "x,xs,xz", "xq");
    node("DequantizeLinear", "xq,xs,xz", "xd");
    if (tb) wconst("wq", SI_I8, -127, 127, 0, 0, D(n, k));
    else wconst("wq", SI_I8, -127, 127, 0, 0, D(k, n));
    float wsv[64];
    for (int64_t j = 0; j < n; j++) wsv[j] = 0.003f + 0.0002f * (float)j;
    if (percol) {
        floats("ws", wsv, (int)n);
        qconst("wz", SI_I8, 0, 0, D(n));
    } else {
        fconst("ws", wsv[0]);
        qscalar("wz", SI_I8, 0);
    }
    int dw = node("DequantizeLinear", "wq,ws,wz", "w");
    if (percol) ai(dw, "axis", tb ? 0 : 1);
    if (bias) {
        float bsv[64];
        for (int64_t j = 0; j < n; j++) bsv[j] = 0.021f * wsv[percol ? j : 0];
        qconst("bq", SI_I32, -3000, 3000, D(n));
        floats("bsc", bsv, (int)n);
        ai(node("DequantizeLinear", "bq,bsc", "bias"), "axis", 0);
    }
    int mm = node(gemm ? "Gemm" : "MatMul", bias ? "xd,w,bias" : "xd,w", relu ? "c" : quant ? "y" : "out");
    if (tb) ai(mm, "transB", 1);
    if (relu) node("Relu", "c", quant ? "y" : "out");
    if (quant) {
        fconst("ys", 0.09f);
        qscalar("yz", SI_U8, 17);
        node("QuantizeLinear", "y,ys,yz", "out");
    }
    output("out");
    dop_runf(&(dop_opts){.int8 = !w7, .cpu_plan = gemm ? "QDQ Gemm" : "QDQ MatMul", .may_refuse = "OCL", .qtol = 1}, "QDQ %s [%lld..%lld] x %lld%s%s%s%s%s",
             gemm ? "Gemm" : "MatMul", (long long)ad[0], (long long)k, (long long)n, percol ? " per-column" : "", tb ? " transB" : "",
             bias ? " +bias" : "", relu ? " +Relu" : "", quant ? " -> QuantizeLinear" : " (float out)");
}

/* A QDQ Gemm whose bias stays float32 (ONNX Runtime's quantizer leaves a classifier's bias so): float output, the
 * bias added after scaling (quantized output: the float path). */
static void qdqgemm_float_bias_case(int64_t k, int64_t n, bool quant, bool scalar) {
    begin(13);
    input("x", D(2, k));
    fconst("xs", 0.02f);
    qscalar("xz", SI_U8, 130);
    node("QuantizeLinear", "x,xs,xz", "xq");
    node("DequantizeLinear", "xq,xs,xz", "xd");
    qconst("wq", SI_I8, -127, 127, D(n, k));
    fconst("ws", 0.004f);
    node("DequantizeLinear", "wq,ws", "w");
    if (scalar) fconst("c", 0.3f);
    else weight("c", -1.0f, 1.0f, D(n));
    ai(node("Gemm", "xd,w,c", quant ? "y" : "out"), "transB", 1);
    if (quant) {
        fconst("ys", 0.05f);
        qscalar("yz", SI_U8, 128);
        node("QuantizeLinear", "y,ys,yz", "out");
    }
    output("out");
    dop_runf(&(dop_opts){.int8 = true, .cpu_plan = quant ? "Gemm" : "QDQ Gemm", .may_refuse = "OCL", .qtol = 1}, "QDQ Gemm [2, %lld] x %lld, float32 bias%s%s",
             (long long)k, (long long)n, scalar ? " (one value)" : "", quant ? " -> QuantizeLinear (float path)" : " (float out)");
}

/* A QDQ Conv the integer convolution declines (uint8 weights over their full range with zero point 3 do not fit
 * int8 after it): the skipped activation DequantizeLinear is emitted after all and the Conv runs in float. */
static void qdqconv_decline_case(int64_t c, int64_t oc) {
    begin(13);
    input("x", D(1, c, 9, 10));
    fconst("xs", 0.02f);
    qscalar("xz", SI_U8, 128);
    node("QuantizeLinear", "x,xs,xz", "xq");
    node("DequantizeLinear", "xq,xs,xz", "xd");
    qconst("wq", SI_U8, 0, 255, D(oc, c, 3, 3));
    fconst("ws", 0.004f);
    qscalar("wz", SI_U8, 3);
    node("DequantizeLinear", "wq,ws,wz", "w");
    ais(node("Conv", "xd,w", "y"), "pads", D(1, 1, 1, 1));
    fconst("ys", 0.3f);
    qscalar("yz", SI_U8, 100);
    node("QuantizeLinear", "y,ys,yz", "yq");
    output("yq");
    dop_runf(&(dop_opts){.int8 = true, .cpu_plan = "DequantizeLinear", .may_refuse = "OCL", .qtol = 1}, "QDQ Conv %lld -> %lld with full-range uint8 weights (float Conv)",
             (long long)c, (long long)oc);
}

/* Weights quantized, activations not (weight-only): MatMul(x, DequantizeLinear(int8 W)). Large weights stay int8 in
 * the graph (shape.c keep_dq); CPU dequantizes them once at compile, not at each run, and runs a float MatMul. */
static void dq_weight_only_case(int64_t k, int64_t n, bool percol) {
    begin(13);
    input("x", D(5, k));
    qconst("wq", SI_I8, -127, 127, D(k, n));
    float wsv[64];
    for (int64_t j = 0; j < n; j++) wsv[j] = 0.003f + 0.0002f * (float)j;
    if (percol) floats("ws", wsv, (int)n);
    else fconst("ws", wsv[0]);
    int dw = node("DequantizeLinear", "wq,ws", "w");
    if (percol) ai(dw, "axis", 1);
    node("MatMul", "x,w", "y");
    output("y");
    dop_runf(&(dop_opts){.int8 = true, .cpu_no_ref = true, .cpu_avoid = "dequantize"}, "MatMul x DequantizeLinear(int8 [%lld, %lld]%s), float x",
             (long long)k, (long long)n, percol ? " per column" : "");
}

/* Add in the QDQ form (a residual): both operands DequantizeLinear, QuantizeLinear after it (through a Relu). */
static void qdqadd_case(si_dtype dt, bool relu, bool conv) {
    begin(13);
    const bool s8 = dt == SI_I8;
    q_source("a", dt, D(1, 8, 9, 10), 0.03f, s8 ? -2 : 120, conv);
    q_source("b", dt, D(1, 8, 9, 10), 0.05f, s8 ? 7 : 99, false);
    node("DequantizeLinear", "a,a_s,a_z", "ad");
    node("DequantizeLinear", "b,b_s,b_z", "bd");
    node("Add", "ad,bd", relu ? "s" : "y");
    if (relu) node("Relu", "s", "y");
    fconst("ys", 0.045f);
    qscalar("yz", dt, s8 ? 1 : 31);
    node("QuantizeLinear", "y,ys,yz", "yq");
    output("yq");
    dop_runf(&(dop_opts){.int8 = true, .cpu_plan = "QDQ Add", .may_refuse = "OCL", .qtol = 1}, "QDQ Add %s%s%s", si_dtype_name(dt), relu ? " +Relu" : "",
             conv ? " (a from a QLinearConv, channels-last)" : "");
}

/* Sigmoid / LeakyRelu in the QDQ form (ORT: QLinearSigmoid / QLinearLeakyRelu): a byte table on CPU, 64 bytes at a
 * time (sizes with a tail); SiLU as the quantizer writes it (the Mul of both DequantizeLinears) on top when silu. */
static void qdqunary_case(const char *op, si_dtype dt, const int64_t *dims, int nd, bool conv, bool silu) {
    begin(13);
    const bool s8 = dt == SI_I8;
    q_source("a", dt, dims, nd, 0.04f, s8 ? -3 : 121, conv);
    node("DequantizeLinear", "a,a_s,a_z", "ad");
    int u = node(op, "ad", "u");
    if (!strcmp(op, "LeakyRelu")) af(u, "alpha", 0.13f);
    fconst("us", 1.0f / 250.0f);
    qscalar("uz", dt, s8 ? -128 : 0);
    node("QuantizeLinear", "u,us,uz", "uq");
    if (silu) {
        node("DequantizeLinear", "uq,us,uz", "ud");
        node("Mul", "ad,ud", "m");
        fconst("ms", 0.03f);
        qscalar("mz", dt, s8 ? -9 : 10);
        node("QuantizeLinear", "m,ms,mz", "y");
        output("y");
    } else {
        output("uq");
    }
    dop_runf(&(dop_opts){.int8 = true, .cpu_plan = silu ? "QDQ Mul" : strcmp(op, "Sigmoid") ? "QDQ LeakyRelu" : "QDQ Sigmoid", .may_refuse = "OCL", .qtol = 1},
             "QDQ %s %s [%lld..]%s%s", op, si_dtype_name(dt), (long long)dims[nd - 1], conv ? " (from a QLinearConv)" : "", silu ? " as SiLU" : "");
}

/* Concat in the QDQ form (ORT: QLinearConcat): inputs with the output's scale and zero point are copied, others
 * requantized; channels-last when the first input comes from a QLinearConv. */
static void qdqconcat_case(si_dtype dt, int64_t axis, bool conv, bool same) {
    begin(13);
    const bool s8 = dt == SI_I8;
    q_source("a", dt, D(1, 16, 9, 10), 0.04f, s8 ? -3 : 121, conv);
    q_source("b", dt, D(1, 16, 9, 10), same ? 0.04f : 0.025f, same ? (s8 ? -3 : 121) : (s8 ? 5 : 100), false);
    q_source("c", dt, D(1, 16, 9, 10), 0.07f, s8 ? 0 : 128, false);
    node("DequantizeLinear", "a,a_s,a_z", "ad");
    node("DequantizeLinear", "b,b_s,b_z", "bd");
    node("DequantizeLinear", "c,c_s,c_z", "cd");
    ai(node("Concat", "ad,bd,cd", "cat"), "axis", axis);
    node("QuantizeLinear", "cat,a_s,a_z", "y");
    output("y");
    dop_runf(&(dop_opts){.int8 = true, .cpu_plan = "QDQ Concat", .may_refuse = "OCL", .qtol = 1}, "QDQ Concat %s axis %lld%s%s", si_dtype_name(dt), (long long)axis,
             conv ? " (from a QLinearConv)" : "", same ? " (two inputs at the output's scale)" : "");
}

/* DequantizeLinear -> MaxPool -> QuantizeLinear with the input's scale and zero point (as ORT's quantizer writes
 * it): MaxPool on the integers, exact; and with another scale: the float path. */
static void qdqpool_case(bool same) {
    begin(13);
    q_source("a", SI_U8, D(1, 16, 10, 12), 0.05f, 3, true);
    node("DequantizeLinear", "a,a_s,a_z", "ad");
    int mp = node("MaxPool", "ad", "m");
    ais(mp, "kernel_shape", D(3, 3));
    ais(mp, "pads", D(1, 1, 1, 1));
    ais(mp, "strides", D(2, 2));
    if (same) node("QuantizeLinear", "m,a_s,a_z", "y");
    else {
        fconst("ys", 0.07f);
        qscalar("yz", SI_U8, 5);
        node("QuantizeLinear", "m,ys,yz", "y");
    }
    output("y");
    dop_runf(&(dop_opts){.int8 = true, .cpu_plan = same ? "QDQ MaxPool(int8)" : "MaxPool", .may_refuse = "OCL", .qtol = same ? 0 : 1},
             "QDQ MaxPool, %s", same ? "the input's scale and zero point" : "another scale (float path)");
}

/* DequantizeLinear -> MatMul / Gemm / Conv -> QuantizeLinear run as integer products. */
static void qdq_product_cases(void) {
    qdqmm_case(false, D(2, 7, 48), 40, true, true, false, false, false);
    qdqmm_case(false, D(16, 64), 24, false, false, false, false, false);
    qdqmm_case(false, D(5, 33), 17, true, true, true, false, false);
    qdqmm_case(true, D(3, 40), 20, true, true, false, true, true);
    qdqmm_case(true, D(1, 64), 10, false, false, false, false, true);
    static const qdqconv_p cases[] = {
        {8, 12, 16, 3, 1, 1, SI_U8, true, true, false},  {3, 20, 16, 3, 2, 1, SI_U8, true, true, true},
        {16, 9, 16, 3, 1, 16, SI_U8, true, true, true},  {8, 10, 24, 1, 1, 1, SI_I8, false, false, false},
        {12, 11, 12, 5, 2, 4, SI_I8, true, true, true},  {32, 7, 64, 3, 1, 1, SI_U8, false, true, true},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) qdqconv_case(&cases[i]);
}

void dop_cases_qdq_conv(void) {
    qdqpool_case(true);
    qdqpool_case(false);
    {   /* Mul in the QDQ form (SiLU's product) */
        begin(13);
        q_source("a", SI_U8, D(1, 8, 9, 10), 0.03f, 120, true);
        q_source("b", SI_U8, D(1, 8, 9, 10), 0.004f, 0, false);
        node("DequantizeLinear", "a,a_s,a_z", "ad");
        node("DequantizeLinear", "b,b_s,b_z", "bd");
        node("Mul", "ad,bd", "y");
        fconst("ys", 0.02f);
        qscalar("yz", SI_U8, 9);
        node("QuantizeLinear", "y,ys,yz", "yq");
        output("yq");
        dop_runf(&(dop_opts){.int8 = true, .cpu_plan = "QDQ Mul", .may_refuse = "OCL", .qtol = 1}, "QDQ Mul uint8");
    }
    qdqadd_case(SI_U8, true, true);
    qdqadd_case(SI_U8, false, false);
    qdqadd_case(SI_I8, true, false);
    qdqconv_decline_case(4, 8);
    qdqconv_decline_case(32, 64); /* weights over SI_DQ_KEEP_BYTES: kept int8 in the graph, dequantized by CPU at compile */
    dq_weight_only_case(320, 64, true);
    dq_weight_only_case(1100, 17, false);
    dq_weight_only_case(24, 10, true);
    qdqmm_case(false, D(4, 320), 64, true, true, false, false, false); /* large weights: the kept DequantizeLinear */
    qdqmm_case(true, D(3, 300), 60, true, true, true, true, true);
    qdqunary_case("Sigmoid", SI_U8, D(1, 8, 9, 10), false, false);
    qdqunary_case("Sigmoid", SI_I8, D(2, 67), false, false);
    qdqunary_case("LeakyRelu", SI_U8, D(1, 16, 10, 12), true, false);
    qdqunary_case("LeakyRelu", SI_I8, D(3, 129), false, false);
    qdqunary_case("Sigmoid", SI_U8, D(1, 16, 10, 12), true, true);
    qdqconcat_case(SI_U8, 1, true, true);
    qdqconcat_case(SI_U8, 1, false, false);
    qdqconcat_case(SI_I8, 3, false, true);
    qdqconcat_case(SI_I8, -3, true, false);
    qdqgemm_float_bias_case(512, 100, false, false);
    qdqgemm_float_bias_case(40, 7, false, true);
    qdqgemm_float_bias_case(40, 7, true, false);
    qdq_product_cases();
}

// --- QLinearMatMul -----------------------------------------------------------------------------------------------

void dop_cases_qlinear_matmul(void) {
    static const struct { int na; int64_t a[3]; int64_t n; si_dtype at, bt; int az, bz, yz; bool percol; } cases[] = {
        {2, {1, 64}, 10, SI_U8, SI_I8, 128, 0, 131, false}, {3, {2, 7, 48}, 33, SI_U8, SI_I8, 3, 0, 0, true},
        {2, {16, 40}, 24, SI_I8, SI_I8, -3, 5, -10, true},  {2, {5, 17}, 9, SI_U8, SI_U8, 200, 120, 17, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(13);
        int na = cases[i].na;
        int64_t K = cases[i].a[na - 1], N = cases[i].n;
        input("x", cases[i].a, na);
        fconst("as", 0.017f);
        qscalar("az", cases[i].at, cases[i].az);
        node("QuantizeLinear", "x,as,az", "xq");
        wconst("w", cases[i].bt, cases[i].bt == SI_U8 ? 0 : -127, cases[i].bt == SI_U8 ? 255 : 127, cases[i].bz, cases[i].bz, D(K, N));
        if (cases[i].percol) weight("bs", 0.002f, 0.02f, D(N));
        else fconst("bs", 0.009f);
        qscalar("bz", cases[i].bt, cases[i].bz);
        fconst("ys", 0.11f);
        qscalar("yz", cases[i].at, cases[i].yz);
        node("QLinearMatMul", "xq,as,az,w,bs,bz,ys,yz", "q");
        node("DequantizeLinear", "q,ys,yz", "y");
        output("y"), output("q");
        /* the matmul requantizes itself (no separate pass) unless SI_NO_FUSED_REQUANT=1 */
        const char *mm_step = getenv("SI_NO_FUSED_REQUANT") ? "QLinearMatMul" : "QLinearMatMul+requantize";
        dop_runf(&(dop_opts){.int8 = !w7, .cpu_plan = mm_step, .may_refuse = "OCL"}, "QLinearMatMul case %zu (a %s, b %s, zero points %d/%d/%d)%s", i,
                 si_dtype_name(cases[i].at), si_dtype_name(cases[i].bt), cases[i].az, cases[i].bz, cases[i].yz,
                 cases[i].percol ? " per-column b scale" : "");
    }
}

// --- the com.microsoft QOperator ops on the CPU device's table kernels --------------------------------------------

/* x (float, dims) -> QuantizeLinear(scale xs, zero point xz of type dt) -> [QLinearConv 3x3, so the tensor is
 * channels-last] as value `name`, with its scale / zero point constants name_s / name_z. */
static void q_source(const char *name, si_dtype dt, const int64_t *dims, int nd, float s, int zp, bool conv) {
    char x[32], xs[32], xz[32], q[32], w[32], ws[32], wz[32], ins[300];
    snprintf(x, sizeof x, "%s_x", name), snprintf(xs, sizeof xs, "%s_s", name), snprintf(xz, sizeof xz, "%s_z", name);
    snprintf(q, sizeof q, conv ? "%s_q" : "%s", name);
    input(x, dims, nd);
    fconst(xs, s);
    qscalar(xz, dt, zp);
    snprintf(ins, sizeof ins, "%s,%s,%s", x, xs, xz);
    node("QuantizeLinear", ins, q);
    if (!conv) return;
    snprintf(w, sizeof w, "%s_w", name), snprintf(ws, sizeof ws, "%s_ws", name), snprintf(wz, sizeof wz, "%s_wz", name);
    qconst(w, SI_I8, -100, 100, D(dims[1], dims[1], 3, 3));
    fconst(ws, 0.004f);
    qscalar(wz, SI_I8, 0);
    snprintf(ins, sizeof ins, "%s,%s,%s,%s,%s,%s,%s,%s", q, xs, xz, w, ws, wz, xs, xz);
    ais(node("QLinearConv", ins, name), "pads", D(1, 1, 1, 1));
}

static void qgemm_cases(void) {
    /* QGemm: the classifier head of a QOperator CNN (transB, per-column b scale, C, float or quantized output) */
    static const struct { int64_t m, k, n; bool tb, percol, c, yq; si_dtype bt; } qg[] = {
        {1, 64, 10, true, true, true, false, SI_I8}, {3, 40, 17, false, false, true, true, SI_I8},
        {2, 33, 8, true, false, false, true, SI_U8},  {5, 16, 24, false, true, false, false, SI_U8},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(qg); i++) {
        begin_ms();
        q_source("a", SI_U8, D(1, 1, qg[i].m, qg[i].k), 0.02f, 128, false);
        node("Squeeze", "a,ax01", "a2");
        ints("ax01", (const int64_t[]){0, 1}, 2);
        const int64_t wlo = qg[i].bt == SI_U8 ? 0 : -127, whi = qg[i].bt == SI_U8 ? 255 : 127, wz = qg[i].bt == SI_U8 ? 131 : 0;
        if (qg[i].tb) wconst("w", qg[i].bt, wlo, whi, wz, wz, D(qg[i].n, qg[i].k));
        else wconst("w", qg[i].bt, wlo, whi, wz, wz, D(qg[i].k, qg[i].n));
        if (qg[i].percol) weight("bs", 0.002f, 0.02f, D(qg[i].n));
        else fconst("bs", 0.01f);
        qscalar("bz", qg[i].bt, qg[i].bt == SI_U8 ? 131 : 0);
        if (qg[i].c) qconst("cb", SI_I32, -3000, 3000, D(qg[i].n));
        fconst("ys", 0.07f);
        qscalar("yz", SI_U8, 100);
        char ins[64];
        snprintf(ins, sizeof ins, "a2,a_s,a_z,w,bs,bz,%s%s", qg[i].c ? "cb" : "", qg[i].yq ? ",ys,yz" : "");
        int n = msnode("QGemm", ins, "y");
        if (qg[i].tb) ai(n, "transB", 1);
        af(n, "alpha", 0.75f);
        output("y");
        dop_runf(&(dop_opts){.int8 = !w7, .cpu_plan = "QGemm", .cpu_no_ref = true, .may_refuse = "OCL"}, "QGemm %lldx%lldx%lld%s%s%s%s %s", (long long)qg[i].m,
                 (long long)qg[i].k, (long long)qg[i].n, qg[i].tb ? " transB" : "", qg[i].percol ? " per-column" : "", qg[i].c ? " +C" : "",
                 qg[i].yq ? " quantized" : " float", si_dtype_name(qg[i].bt));
    }
}

void dop_cases_qlinear_ms(void) {
    static const struct { const char *op; si_dtype dt; bool conv; int64_t d[4]; } ew[] = {
        {"QLinearSigmoid", SI_U8, true, {1, 16, 9, 11}}, {"QLinearLeakyRelu", SI_I8, false, {2, 3, 5, 7}},
        {"QLinearAdd", SI_U8, true, {1, 24, 8, 9}},      {"QLinearMul", SI_U8, true, {1, 16, 10, 10}},
        {"QLinearAdd", SI_I8, false, {2, 5, 6, 7}},      {"QLinearMul", SI_I8, true, {1, 8, 7, 7}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(ew); i++) {
        const bool bin = !strcmp(ew[i].op, "QLinearAdd") || !strcmp(ew[i].op, "QLinearMul"), sg = ew[i].dt == SI_I8;
        begin_ms();
        q_source("a", ew[i].dt, ew[i].d, 4, 0.031f, sg ? -3 : 120, ew[i].conv);
        if (bin) q_source("b", ew[i].dt, ew[i].d, 4, 0.047f, sg ? 5 : 97, false); /* plain: read in a's layout */
        fconst("ys", bin ? 0.05f : 0.0041f);
        qscalar("yz", ew[i].dt, sg ? 2 : 7);
        int n = msnode(ew[i].op, bin ? "a,a_s,a_z,b,b_s,b_z,ys,yz" : "a,a_s,a_z,ys,yz", "y");
        if (!strcmp(ew[i].op, "QLinearLeakyRelu")) af(n, "alpha", 0.2f);
        node("DequantizeLinear", "y,ys,yz", "f");
        output("y"), output("f");
        /* a unary op after a QLinearConv folds into its requantization as a table */
        dop_runf(&(dop_opts){.int8 = true, .cpu_plan = !bin && ew[i].conv ? "QLinearConv requantize+table" : ew[i].op, .cpu_no_ref = true, .may_refuse = "OCL"},
                 "%s %s%s", ew[i].op, si_dtype_name(ew[i].dt), ew[i].conv ? " after QLinearConv (channels-last)" : "");
    }
    /* SiLU as the quantizer writes it, QLinearMul(x, QLinearSigmoid(x)) (either operand order): one table, folded
     * into the QLinearConv before it or on its own */
    for (int conv = 0; conv < 2; conv++)
        for (int order = 0; order < 2; order++) {
            begin_ms();
            q_source("a", SI_U8, D(1, 16, 9, 11), 0.031f, 120, conv);
            fconst("ss", 1.0f / 256), fconst("ys", 0.02f);
            qscalar("sz", SI_U8, 0), qscalar("yz", SI_U8, 9);
            msnode("QLinearSigmoid", "a,a_s,a_z,ss,sz", "s");
            msnode("QLinearMul", order ? "s,ss,sz,a,a_s,a_z,ys,yz" : "a,a_s,a_z,s,ss,sz,ys,yz", "y");
            output("y");
            dop_runf(&(dop_opts){.int8 = true, .cpu_plan = conv ? "QLinearConv requantize+SiLU" : "QLinearSigmoid+QLinearMul", .cpu_no_ref = true,
                                 .may_refuse = "OCL"},
                     "SiLU (QLinearSigmoid, QLinearMul %s)%s", order ? "(s, x)" : "(x, s)", conv ? " after QLinearConv" : "");
        }
    /* every pair of bytes through QLinearAdd / QLinearMul (the vector path's arithmetic against the reference's),
     * with scales that put many results on exact halves (ties) and odd output zero points */
    static const struct { const char *op; si_dtype dt; float as, bs, cs; int az, bz, cz; } ex[] = {
        {"QLinearAdd", SI_U8, 0.5f, 0.25f, 1.0f, 128, 3, 7},       {"QLinearAdd", SI_U8, 0.0838f, 0.1056f, 0.0384f, 150, 81, 165},
        {"QLinearAdd", SI_I8, 0.1f, 0.3f, 0.2f, -3, 9, 1},         {"QLinearMul", SI_U8, 0.5f, 0.5f, 8.0f, 128, 0, 9},
        {"QLinearMul", SI_U8, 0.0313f, 0.0041f, 0.0177f, 120, 0, 3}, {"QLinearMul", SI_I8, 0.25f, 0.125f, 0.75f, 1, -2, -5},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(ex); i++) {
        begin_ms();
        input_typed("bytehi_a", ex[i].dt, D(65536));
        input_typed("bytelo_b", ex[i].dt, D(65536));
        fconst("as", ex[i].as), fconst("bs", ex[i].bs), fconst("cs", ex[i].cs);
        qscalar("az", ex[i].dt, ex[i].az), qscalar("bz", ex[i].dt, ex[i].bz), qscalar("cz", ex[i].dt, ex[i].cz);
        msnode(ex[i].op, "bytehi_a,as,az,bytelo_b,bs,bz,cs,cz", "y");
        output("y");
        dop_runf(&(dop_opts){.int8 = true, .cpu_plan = ex[i].op, .cpu_no_ref = true, .may_refuse = "OCL"}, "%s %s, every pair of bytes (case %zu)",
                 ex[i].op, si_dtype_name(ex[i].dt), i);
    }
    /* QLinearConcat along the channels of two QLinearConv outputs (channels-last) and a plain one along axis 2,
     * each input with its own scale (requantized) or the output's (copied) */
    for (int cl = 0; cl < 2; cl++) {
        begin_ms();
        q_source("a", SI_U8, D(1, 8, 9, 10), 0.05f, 128, cl);
        if (cl) q_source("b", SI_U8, D(1, 16, 9, 10), 0.03f, 100, true);
        else q_source("b", SI_U8, D(1, 8, 4, 10), 0.03f, 100, false);
        fconst("ys", 0.05f);
        qscalar("yz", SI_U8, 128);
        ai(msnode("QLinearConcat", "ys,yz,a,a_s,a_z,b,b_s,b_z", "y"), "axis", cl ? 1 : 2);
        output("y");
        dop_runf(&(dop_opts){.int8 = true, .cpu_plan = cl ? "QLinearConcat(channels-last)" : "QLinearConcat", .cpu_no_ref = true, .may_refuse = "OCL"}, "QLinearConcat %s",
                 cl ? "channels of two QLinearConv outputs" : "axis 2, plain");
    }
    /* broadcasting: the reference kernel */
    begin_ms();
    q_source("a", SI_U8, D(1, 8, 5, 6), 0.05f, 128, false);
    q_source("b", SI_U8, D(1, 8, 1, 1), 0.03f, 100, false);
    fconst("ys", 0.05f);
    qscalar("yz", SI_U8, 128);
    msnode("QLinearAdd", "a,a_s,a_z,b,b_s,b_z,ys,yz", "y");
    output("y");
    dop_runf(&(dop_opts){.int8 = true, .may_refuse = "OCL"}, "QLinearAdd broadcasting [1,8,1,1] (reference kernel)");
    qgemm_cases();
    /* nearest Resize on the uint8 tensor, channels-last after a QLinearConv and plain */
    for (int conv = 0; conv < 2; conv++) {
        begin(13);
        q_source("a", SI_U8, D(1, 16, 10, 12), 0.05f, 3, conv);
        static const float sc[4] = {1, 1, 2, 2};
        floats("scales", sc, 4);
        node("Resize", "a,,scales", "r");
        output("r");
        dop_runf(&(dop_opts){.int8 = true, .cpu_plan = "Resize", .cpu_no_ref = true, .may_refuse = "OCL"}, "Resize nearest x2 on uint8%s",
                 conv ? " after QLinearConv (channels-last)" : "");
    }
}

// --- recurrent layers ---------------------------------------------------------------------------------------------

typedef struct rnn_p {
    const char *op;
    int64_t T, N, I, H;
    const char *dir;
    bool bias, init, peep, seq;
    const char *acts; /* comma-separated, or NULL */
    float clip;
    int extra; /* LSTM: input_forget; GRU: linear_before_reset */
    int layout;
    bool y, yh;
} rnn_p;

static void rnn_case(const rnn_p *p) {
    begin(14);
    int ng = !strcmp(p->op, "LSTM") ? 4 : !strcmp(p->op, "GRU") ? 3 : 1, nd = !strcmp(p->dir, "bidirectional") ? 2 : 1;
    bool lstm = ng == 4;
    if (p->layout) input("x", D(p->N, p->T, p->I));
    else input("x", D(p->T, p->N, p->I));
    weight("W", -0.6f, 0.6f, D(nd, ng * p->H, p->I));
    weight("R", -0.6f, 0.6f, D(nd, ng * p->H, p->H));
    if (p->bias) weight("B", -0.5f, 0.5f, D(nd, 2 * ng * p->H));
    if (p->seq) {
        si_tensor *t;
        if (si_tensor_create(SI_I32, 1, (const int64_t[]){p->N}, &t)) die("tensor");
        for (int64_t i = 0; i < p->N; i++) ((int32_t *)t->data)[i] = (int32_t)(p->T - (2 * i) % (p->T + 1));
        set_const("seq", t);
    }
    if (p->init) {
        if (p->layout) input("unit_h", D(p->N, nd, p->H));
        else input("unit_h", D(nd, p->N, p->H));
        if (lstm) {
            if (p->layout) input("c0", D(p->N, nd, p->H));
            else input("c0", D(nd, p->N, p->H));
        }
    }
    if (p->peep) weight("P", -0.5f, 0.5f, D(nd, 3 * p->H));
    char ins[128];
    snprintf(ins, sizeof ins, "x,W,R,%s,%s,%s%s%s", p->bias ? "B" : "", p->seq ? "seq" : "", p->init ? "unit_h" : "",
             lstm ? (p->init ? ",c0" : ",") : "", lstm && p->peep ? ",P" : "");
    size_t l = strlen(ins);
    while (l && ins[l - 1] == ',') ins[--l] = 0;
    const char *outs;
    if (lstm) outs = p->y ? (p->yh ? "y,yh,yc" : "y") : ",yh,yc";
    else outs = p->y ? (p->yh ? "y,yh" : "y") : ",yh";
    int n = node(p->op, ins, outs);
    ai(n, "hidden_size", p->H);
    as(n, "direction", p->dir);
    if (p->layout) ai(n, "layout", 1);
    if (p->clip > 0) af(n, "clip", p->clip);
    if (p->extra) ai(n, lstm ? "input_forget" : "linear_before_reset", 1);
    if (p->acts) {
        si_attr *a = attr(n, "activations", SI_ATTR_STRINGS);
        char buf[256];
        snprintf(buf, sizeof buf, "%s", p->acts);
        if (!(a->strings = si_calloc(16, sizeof(char *)))) die("attr");
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) a->strings[a->n++] = si_strdup(tok);
        static const float alphas[] = {0.3f, 0.7f, 1.2f, 0.4f}, betas[] = {0.45f, 1.1f};
        si_attr *al = attr(n, "activation_alpha", SI_ATTR_FLOATS);
        if (!(al->floats = si_malloc(sizeof alphas))) die("attr");
        memcpy(al->floats, alphas, sizeof alphas);
        al->n = 4;
        si_attr *be = attr(n, "activation_beta", SI_ATTR_FLOATS);
        if (!(be->floats = si_malloc(sizeof betas))) die("attr");
        memcpy(be->floats, betas, sizeof betas);
        be->n = 2;
    }
    if (p->y) output("y");
    if (p->yh) output("yh");
    if (lstm && p->yh) output("yc");
    char label[256];
    snprintf(label, sizeof label, "%s T%lld N%lld I%lld H%lld %s%s%s%s%s%s clip %g %s%s layout %d", p->op, (long long)p->T, (long long)p->N,
             (long long)p->I, (long long)p->H, p->dir, p->bias ? " B" : "", p->init ? " init" : "", p->peep ? " P" : "",
             p->seq ? " seq" : "", p->acts ? p->acts : "", (double)p->clip, p->extra ? (lstm ? "input_forget" : "lbr") : "",
             p->y ? (p->yh ? " Y,Y_h" : " Y") : " Y_h", p->layout);
    char step[32];
    snprintf(step, sizeof step, "%s recurrence", p->op);
    dop_run(label, &(dop_opts){.int8 = true, .cpu_plan = step, .cpu_no_ref = true, .may_refuse = "OCL"});
}

void dop_cases_rnn(void) {
    static const rnn_p cases[] = {
        {"LSTM", 5, 3, 4, 6, "forward", true, false, false, false, NULL, 0, 0, 0, true, true},
        {"LSTM", 7, 2, 16, 32, "reverse", true, true, false, false, NULL, 0, 0, 0, true, true},
        {"LSTM", 6, 3, 5, 7, "bidirectional", true, true, true, true, NULL, 0, 0, 0, true, true},
        {"LSTM", 4, 2, 3, 5, "forward", false, true, false, false, NULL, 0.8f, 1, 0, true, true},
        {"LSTM", 5, 3, 4, 6, "bidirectional", true, false, false, false, "HardSigmoid,ScaledTanh,Softsign,Sigmoid,Elu,Affine", 0, 0, 0, true,
         true},
        {"LSTM", 5, 3, 4, 6, "bidirectional", true, true, false, true, NULL, 0, 0, 1, true, true},
        {"LSTM", 9, 1, 128, 128, "forward", true, true, false, false, NULL, 0, 0, 0, false, true},
        {"LSTM", 12, 4, 33, 48, "bidirectional", true, false, false, false, NULL, 0, 0, 0, true, false},
        {"GRU", 5, 3, 4, 6, "forward", true, false, false, false, NULL, 0, 0, 0, true, true},
        {"GRU", 5, 3, 4, 6, "bidirectional", true, true, false, true, NULL, 0, 1, 0, true, true},
        {"GRU", 6, 2, 7, 9, "reverse", false, true, false, false, NULL, 0.5f, 0, 0, true, true},
        {"GRU", 5, 3, 4, 6, "forward", true, false, false, false, "Softplus,LeakyRelu", 0, 0, 1, true, true},
        {"GRU", 8, 2, 24, 40, "bidirectional", true, true, false, false, "HardSigmoid,ThresholdedRelu,Sigmoid,Softsign", 0, 1, 0, true, true},
        {"RNN", 5, 3, 4, 6, "forward", true, false, false, false, NULL, 0, 0, 0, true, true},
        {"RNN", 5, 3, 4, 6, "bidirectional", true, true, false, true, "Relu,Tanh", 0, 0, 0, true, true},
        {"RNN", 6, 2, 5, 3, "reverse", false, false, false, false, "Affine", 1.5f, 0, 1, false, true},
        {"RNN", 10, 3, 20, 64, "forward", true, true, false, false, "Sigmoid", 0, 0, 0, true, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) rnn_case(&cases[i]);
}


// --- 7-bit weights: oneDNN's int8 products on every CPU -------------------------------------------------------------

/* ConvInteger on x = 255 everywhere (QuantizeLinear saturates) and weights all w: a pair of u8 x s8 products is
 * 2 * 255 * w. Up to |w| = 64 it fits int16 and the CPU runs oneDNN's int8 kernel, on any CPU; at 65 it does
 * not, and a CPU without VNNI must run something else: a saturating kernel would be wrong in every output. */
static void w7_bound_case(int64_t w) {
    begin(13);
    input("pos", D(1, 16, 6, 7));
    fconst("xs", 0.001f);
    qscalar("xz", SI_U8, 0);
    node("QuantizeLinear", "pos,xs,xz", "xq");
    qconst("w", SI_I8, w, w, D(8, 16, 3, 3));
    node("ConvInteger", "xq,w,xz", "y");
    output("y");
    dop_runf(&(dop_opts){.int8 = w < -64 || w > 64, .cpu_plan = "ConvInteger", .cpu_no_ref = true, .may_refuse = "OCL"},
             "ConvInteger x = 255, weights all %lld", (long long)w);
}

void dop_cases_int8_w7(void) {
    w7 = true;
    conv_integer_cases();
    dop_cases_matmul_integer();
    qlinear_conv_cases();
    dop_cases_qlinear_matmul();
    qgemm_cases();
    qdq_product_cases();
    w7 = false;
    w7_bound_case(64);
    w7_bound_case(-64);
    w7_bound_case(65);
    w7_bound_case(-65);
}
