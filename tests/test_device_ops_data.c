/*
 * test_device_ops_data.c — device-vs-REF cases of the ops the CPU device took from the reference kernels after a
 * sweep of held-out models: Einsum that is a batched matrix product (cpu_einsum.c), QuantizeLinear /
 * DequantizeLinear, DepthToSpace / SpaceToDepth and Pad (cpu_qdq.c, cpu_data.c); and Resize / Upsample in every
 * form (cpu_resize.c), in the layouts convolutions leave; depthwise 1-D convolutions with their folded
 * BatchNormalization and activations (cpu_dwconv.c); BatchNormalization over [N, C, W] that does not fold; the layout
 * ops (views, Transpose, Slice, Concat, ...: dop_cases_layout, the group "layout"). On CPU each case's plan must
 * hold the op's own kernel and no reference-kernel step (but the forms the kernels decline, which must stay
 * correct on the reference kernel). Integer outputs are compared exactly.
 */
#include "test_device_ops.h"

#include <math.h>
#include <string.h>

/* Einsum that is a batched matrix product runs on the CPU device's own kernel (cpu_einsum.c): operands read in place
 * (transposed or not), gathered where their labels do not merge, the output written in place or scattered. */
static void einsum_case(const char *eq, const int64_t *da, int na, const int64_t *db, int nb, bool a_const, const dop_opts *o) {
    begin(13);
    if (a_const) weight("a", -1, 1, da, na);
    else input("a", da, na);
    input("b", db, nb);
    int n = node("Einsum", "a,b", "y");
    as(n, "equation", eq);
    output("y");
    dop_runf(o, "Einsum %s%s", eq, a_const ? " (constant input 0)" : "");
}

/* (the OCL device has no Einsum kernel: it refuses the node) */
#define EIN_OPTS (&(dop_opts){.cpu_plan = "Einsum", .cpu_no_ref = true, .cpu_kernel = "own:einsum", .may_refuse = "OCL"})
#define EIN_OPTS2                                                                                                                  \
    (&(dop_opts){.cpu_plan = "Einsum", .cpu_no_ref = true, .cpu_kernel = "own:einsum", .opt_key = "threads", .opt_value = "2",      \
                 .opt_device = "CPU"})
#define EIN_DECLINED (&(dop_opts){.may_refuse = "OCL"})

void dop_cases_einsum(void) {
    /* the equations of real models, odd sizes */
    einsum_case("bci,bcj->bij", D(2, 5, 7), D(2, 5, 9), false, EIN_OPTS);
    einsum_case("bij,bcj->bci", D(2, 7, 5), D(2, 3, 5), false, EIN_OPTS);
    einsum_case("oc,bci->boi", D(6, 5), D(3, 5, 7), false, EIN_OPTS);
    einsum_case("oc,bci->boi", D(6, 5), D(3, 5, 7), true, EIN_OPTS);
    einsum_case("bqhd,bkhd->bhqk", D(2, 7, 3, 5), D(2, 9, 3, 5), false, EIN_OPTS);
    einsum_case("bhqk,bkhd->bqhd", D(2, 3, 7, 9), D(2, 9, 3, 5), false, EIN_OPTS);
    /* two batch labels, in another order in input 1 */
    einsum_case("abij,bajk->abik", D(2, 3, 5, 4), D(3, 2, 4, 6), false, EIN_OPTS);
    /* transposed output (computed as its transpose), an output the product is scattered into, plain 2-D */
    einsum_case("bij,bjk->bki", D(2, 5, 7), D(2, 7, 3), false, EIN_OPTS);
    einsum_case("bij,bjk->ikb", D(3, 5, 7), D(3, 7, 4), false, EIN_OPTS);
    einsum_case("ij,jk->ik", D(5, 7), D(7, 3), false, EIN_OPTS);
    /* contracted labels that do not merge in input 1 or input 0 (gathered), several contracted and free labels */
    einsum_case("bkc,bck->b", D(3, 4, 5), D(3, 5, 4), false, EIN_OPTS);
    einsum_case("kmc,kcn->mn", D(3, 4, 5), D(3, 5, 6), false, EIN_OPTS);
    einsum_case("xyk,kzw->xywz", D(2, 3, 5), D(5, 4, 3), false, EIN_OPTS);
    /* an outer product (nothing contracted), the implicit form, ellipsis, a size-1 batch dimension broadcast */
    einsum_case("bi,bj->bij", D(3, 5), D(3, 4), false, EIN_OPTS);
    einsum_case("ij,jk", D(4, 6), D(6, 5), false, EIN_OPTS);
    einsum_case("...ij,...jk->...ik", D(2, 3, 4, 5), D(2, 3, 5, 6), false, EIN_OPTS);
    einsum_case("bij,bjk->bik", D(1, 4, 5), D(3, 5, 6), false, EIN_OPTS);
    /* 2 threads: products split over them (8 of them), and 3 large ones one after the other */
    einsum_case("bqhd,bkhd->bhqk", D(2, 33, 4, 16), D(2, 40, 4, 16), false, EIN_OPTS2);
    einsum_case("bci,bcj->bij", D(3, 64, 65), D(3, 64, 66), false, EIN_OPTS2);
    einsum_case("oc,bci->boi", D(24, 17), D(5, 17, 31), true, EIN_OPTS2);
    /* declined by the fast path (the reference kernel runs them): a diagonal, a label summed out of one input */
    einsum_case("ii,ij->j", D(4, 4), D(4, 5), false, EIN_DECLINED);
    einsum_case("ij,jk->k", D(3, 4), D(4, 5), false, EIN_DECLINED);
    begin(13); /* three inputs */
    input("a", D(3, 4));
    input("b", D(4, 5));
    input("c", D(5, 2));
    int n = node("Einsum", "a,b,c", "y");
    as(n, "equation", "ij,jk,kl->il");
    output("y");
    dop_runf(EIN_DECLINED, "Einsum ij,jk,kl->il (three inputs)");
}

// --- QuantizeLinear / DequantizeLinear, DepthToSpace / SpaceToDepth, Pad (cpu_qdq.c, cpu_data.c) ---------------

/* An initializer of element type dt holding vals (n of them; rank 0 when n is 0: one value). */
static void typed_const(const char *name, si_dtype dt, const double *vals, int n) {
    si_tensor *t;
    int64_t d = n;
    if (si_tensor_create(dt, n ? 1 : 0, &d, &t)) die("tensor");
    for (int i = 0; i < (n ? n : 1); i++) {
        if (dt == SI_F32) ((float *)t->data)[i] = (float)vals[i];
        else si_store_i64(dt, t->data, i, (int64_t)vals[i]);
    }
    set_const(name, t);
}

#define QDQ_OPTS(op, k) (&(dop_opts){.cpu_plan = op, .cpu_no_ref = true, .cpu_kernel = k, .may_refuse = "OCL"})
/* (the OCL device takes int8 / uint8 QuantizeLinear and DequantizeLinear, per tensor and per axis: ocl_llm.c) */
#define QDQ_OPTS_OCL(op, k) (&(dop_opts){.cpu_plan = op, .cpu_no_ref = true, .cpu_kernel = k})
#define QDQ_OPTS2(op, k)                                                                                                           \
    (&(dop_opts){.cpu_plan = op, .cpu_no_ref = true, .cpu_kernel = k, .opt_key = "threads", .opt_value = "2", .opt_device = "CPU"})

/* QuantizeLinear (integer outputs: compared exactly), per tensor and per axis, int8 and uint8, saturating scales;
 * x -> Q -> DQ -> Q2 -> DQ2 where Q2's quotients (multiples of 0.5) are ties half the time; DequantizeLinear of
 * uint8 and int32 inputs; 2 threads. */
void dop_cases_qdq(void) {
    static const struct {
        int opset;
        si_dtype qt;
        int axis, nd;     /* axis -1: per tensor */
        int64_t d[4];
        double s[4], z[4]; /* per tensor: [0] */
        bool zp, scalar;  /* zero point given; per-tensor parameters of rank 0 (else [1]) */
    } qc[] = {
        {13, SI_U8, -1, 4, {2, 3, 5, 7}, {0.01}, {128}, true, true},      /* saturates both ways */
        {10, SI_I8, -1, 4, {2, 3, 5, 7}, {0.0125}, {-3}, true, true},
        {13, SI_I8, -1, 3, {3, 5, 33}, {0.02}, {7}, true, false},
        {13, SI_I8, 1, 4, {2, 4, 5, 6}, {0.01, 0.02, 0.005, 0.1}, {0, -5, 3, 10}, true, false},
        {19, SI_U8, 0, 2, {3, 17}, {0.03, 0.007, 0.5}, {100, 0, 255}, true, false},
        {21, SI_U8, -1, 2, {5, 19}, {0.015}, {0}, false, true},            /* no zero point: uint8 */
        {13, SI_U8, -1, 1, {37}, {0.004}, {0}, true, true},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(qc); i++) {
        const int ns = qc[i].axis < 0 ? 0 : (int)qc[i].d[qc[i].axis];
        begin(qc[i].opset);
        input("x", qc[i].d, qc[i].nd);
        if (ns) typed_const("s", SI_F32, qc[i].s, ns);
        else if (qc[i].scalar) typed_const("s", SI_F32, qc[i].s, 0);
        else typed_const("s", SI_F32, qc[i].s, 1);
        if (qc[i].zp) typed_const("z", qc[i].qt, qc[i].z, ns ? ns : qc[i].scalar ? 0 : 1);
        int n = node("QuantizeLinear", qc[i].zp ? "x,s,z" : "x,s", "q");
        if (ns) ai(n, "axis", qc[i].axis);
        output("q");
        dop_runf(QDQ_OPTS_OCL("QuantizeLinear", "own:quantize"), "QuantizeLinear-%d %zu (%s, axis %d)", qc[i].opset, i, si_dtype_name(qc[i].qt),
                 qc[i].axis);
    }
    /* ties: Q (scale 0.5) -> DQ gives multiples of 0.5; Q2 by 1 (or per axis by 1, 0.5, 2) rounds them half to even */
    for (int k = 0; k < 4; k++) {
        const si_dtype qt = k & 1 ? SI_U8 : SI_I8;
        const bool per_axis = k >= 2;
        begin(13);
        input("x", D(2, 3, 7, 9));
        typed_const("s", SI_F32, (const double[]){0.0625}, 0);
        typed_const("z", qt, (const double[]){qt == SI_U8 ? 128 : 0}, 0);
        if (per_axis) {
            typed_const("s2", SI_F32, (const double[]){1, 0.5, 2}, 3);
            typed_const("z2", qt, (const double[]){qt == SI_U8 ? 128 : 0, qt == SI_U8 ? 120 : -7, qt == SI_U8 ? 130 : 5}, 3);
        } else {
            typed_const("s2", SI_F32, (const double[]){0.5}, 1);
            typed_const("z2", qt, (const double[]){qt == SI_U8 ? 127 : 1}, 1);
        }
        node("QuantizeLinear", "x,s,z", "q");
        node("DequantizeLinear", "q,s,z", "dq");
        int n2 = node("QuantizeLinear", "dq,s2,z2", "q2");
        int n3 = node("DequantizeLinear", "q2,s2,z2", "y");
        if (per_axis) ai(n2, "axis", 1), ai(n3, "axis", 1);
        output("q"), output("dq"), output("q2"), output("y");
        dop_runf(QDQ_OPTS_OCL("DequantizeLinear", "own:dequantize"), "Q -> DQ -> Q2 -> DQ2 ties %d (%s%s)", k, si_dtype_name(qt),
                 per_axis ? ", per axis" : "");
    }
    /* DequantizeLinear of graph inputs: uint8 per axis (axis -1), int32 per tensor */
    begin(13);
    input_typed("q", SI_U8, D(2, 3, 4, 5));
    typed_const("s", SI_F32, (const double[]){0.1, 0.25, 3, 1e-3, 7.5}, 5);
    typed_const("z", SI_U8, (const double[]){2, 0, 4, 1, 3}, 5);
    ai(node("DequantizeLinear", "q,s,z", "y"), "axis", -1);
    output("y");
    dop_runf(QDQ_OPTS_OCL("DequantizeLinear", "own:dequantize"), "DequantizeLinear uint8 per axis -1");
    begin(13);
    input_typed("q", SI_I32, D(3, 11));
    typed_const("s", SI_F32, (const double[]){0.0123}, 0);
    node("DequantizeLinear", "q,s", "y");
    output("y");
    dop_runf(QDQ_OPTS("DequantizeLinear", "own:dequantize"), "DequantizeLinear int32");
    /* 2 threads: per tensor and per axis (channels of 32 x 33) */
    for (int k = 0; k < 2; k++) {
        begin(13);
        input("x", D(2, 8, 32, 33));
        if (k) {
            typed_const("s", SI_F32, (const double[]){0.01, 0.02, 0.03, 0.015, 0.05, 0.007, 0.011, 0.02}, 8);
            typed_const("z", SI_I8, (const double[]){0, 1, -2, 3, -4, 5, -6, 7}, 8);
        } else {
            typed_const("s", SI_F32, (const double[]){0.0125}, 0);
            typed_const("z", SI_I8, (const double[]){-1}, 0);
        }
        int n = node("QuantizeLinear", "x,s,z", "q");
        int m = node("DequantizeLinear", "q,s,z", "y");
        if (k) ai(n, "axis", 1), ai(m, "axis", 1);
        output("q"), output("y");
        dop_runf(QDQ_OPTS2("QuantizeLinear", "own:quantize"), "Q -> DQ, 2 threads %s", k ? "per axis" : "per tensor");
    }
}

/* DepthToSpace (DCR, CRD) and SpaceToDepth: block sizes 2 and 3, odd channel counts and sizes, 2 threads. */
void dop_cases_depth_to_space(void) {
    static const struct { const char *op, *mode; int64_t b; int64_t d[4]; } cases[] = {
        {"DepthToSpace", "DCR", 3, {2, 18, 5, 7}}, {"DepthToSpace", "CRD", 3, {2, 18, 5, 7}},
        {"DepthToSpace", "DCR", 2, {1, 12, 6, 5}}, {"DepthToSpace", "CRD", 2, {1, 12, 6, 5}},
        {"DepthToSpace", NULL, 2, {1, 4, 3, 3}},   {"SpaceToDepth", NULL, 3, {2, 3, 9, 6}},
        {"SpaceToDepth", NULL, 2, {1, 5, 8, 6}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(13);
        input("x", cases[i].d, 4);
        int n = node(cases[i].op, "x", "y");
        ai(n, "blocksize", cases[i].b);
        if (cases[i].mode) as(n, "mode", cases[i].mode);
        output("y");
        bool d2s = !strcmp(cases[i].op, "DepthToSpace");
        dop_runf(QDQ_OPTS(cases[i].op, d2s ? "own:depth_to_space" : "own:space_to_depth"), "%s %zu (%s, blocksize %lld)", cases[i].op, i,
                 cases[i].mode ? cases[i].mode : "default", (long long)cases[i].b);
    }
    for (int k = 0; k < 3; k++) {
        begin(13);
        input("x", D(1, 36, 40, 48));
        int n = node(k < 2 ? "DepthToSpace" : "SpaceToDepth", "x", "y");
        ai(n, "blocksize", k < 2 ? 3 : 2);
        if (k == 1) as(n, "mode", "CRD");
        output("y");
        dop_runf(QDQ_OPTS2(k < 2 ? "DepthToSpace" : "SpaceToDepth", k < 2 ? "own:depth_to_space" : "own:space_to_depth"),
                 "%s, 2 threads %d", k < 2 ? "DepthToSpace" : "SpaceToDepth", k);
    }
}

/* Pad: every mode, asymmetric pads on several axes (wider than the input for wrap / reflect), pads as attributes
 * (opset 2), axes (opset 18), a constant value; 2 threads. */
void dop_cases_pad(void) {
    static const struct { int opset; const char *mode; int64_t pads[8]; int axes; float cval; } cases[] = {
        {11, "constant", {0, 1, 2, 3, 1, 0, 1, 2}, 0, 1.5f},
        {13, "constant", {1, 0, 0, 0, 0, 2, 3, 0}, 0, 0},
        {13, "reflect", {0, 0, 2, 1, 0, 0, 1, 3}, 0, 0},
        {13, "reflect", {0, 2, 4, 0, 1, 1, 0, 6}, 0, 0},
        {13, "edge", {1, 1, 0, 3, 0, 2, 4, 1}, 0, 0},
        {19, "wrap", {0, 1, 0, 6, 0, 2, 3, 8}, 0, 0},
        {2, "constant", {0, 0, 1, 2, 0, 0, 2, 1}, 0, -2.25f},
        {2, "reflect", {0, 0, 1, 2, 0, 1, 2, 1}, 0, 0},
        {18, "reflect", {2, 3, 1, 4}, 2, 0},
        {18, "constant", {1, 2, 3, 4}, 2, 0.5f},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(cases[i].opset);
        input("x", D(2, 3, 5, 7));
        const int np = cases[i].axes ? 2 * cases[i].axes : 8;
        char ins[32] = "x";
        if (cases[i].opset >= 11) {
            ints("pads", cases[i].pads, np);
            if (cases[i].cval) fconst("cv", cases[i].cval);
            if (cases[i].axes) ints("axes", (const int64_t[]){-1, 1}, 2);
            snprintf(ins, sizeof ins, "x,pads,%s%s", cases[i].cval ? "cv" : "", cases[i].axes ? ",axes" : "");
        }
        int n = node("Pad", ins, "y");
        as(n, "mode", cases[i].mode);
        if (cases[i].opset < 11) {
            ais(n, "pads", cases[i].pads, np);
            if (cases[i].cval) af(n, "value", cases[i].cval);
        }
        output("y");
        dop_runf(QDQ_OPTS("Pad", "own:pad"), "Pad-%d %zu (%s)", cases[i].opset, i, cases[i].mode);
    }
    static const char *const modes[] = {"reflect", "constant", "edge"};
    for (int k = 0; k < 3; k++) {
        begin(13);
        input("x", D(1, 16, 40, 45));
        ints("pads", (const int64_t[]){0, 0, 3, 2, 0, 0, 1, 4}, 8);
        as(node("Pad", "x,pads", "y"), "mode", modes[k]);
        output("y");
        dop_runf(QDQ_OPTS2("Pad", "own:pad"), "Pad %s, 2 threads", modes[k]);
    }
}

/* test_device_ops_quant.c: quantized ops and recurrent layers */

/* Resize and Upsample run on the CPU device's own kernel (cpu_resize.c), whatever the mode */
#define RS_OPTS(op) (dop_opts){.cpu_plan = op, .cpu_no_ref = true}

void dop_cases_resize(void) {
    static const struct {
        const char *mode, *ctm, *nearest;
        bool sizes;
        float sc[2];
        int64_t sz[2];
        float cubic_a;
        int exclude, antialias;
    } cases[] = {
        {"nearest", NULL, NULL, false, {2, 2}, {0}, 0, 0, 0},
        {"nearest", "asymmetric", "floor", false, {1.5f, 3}, {0}, 0, 0, 0},
        {"nearest", "align_corners", "round_prefer_ceil", true, {0}, {9, 5}, 0, 0, 0},
        {"nearest", "half_pixel", "ceil", false, {0.6f, 0.5f}, {0}, 0, 0, 0},
        {"nearest", "tf_half_pixel_for_nn", NULL, false, {2, 1.7f}, {0}, 0, 0, 0},
        {"linear", NULL, NULL, false, {2, 1.5f}, {0}, 0, 0, 0},
        {"linear", "align_corners", NULL, true, {0}, {7, 11}, 0, 0, 0},
        {"linear", "pytorch_half_pixel", NULL, false, {0.5f, 2}, {0}, 0, 0, 0},
        {"linear", "asymmetric", NULL, false, {1.25f, 0.75f}, {0}, 0, 0, 0},
        {"linear", "half_pixel_symmetric", NULL, false, {2.5f, 0.6f}, {0}, 0, 0, 0},
        {"linear", NULL, NULL, false, {0.5f, 0.4f}, {0}, 0, 0, 1},
        {"cubic", NULL, NULL, false, {2, 1.5f}, {0}, -0.5f, 1, 0},
        {"cubic", "align_corners", NULL, false, {0.7f, 2}, {0}, -0.75f, 0, 0},
        {"cubic", NULL, NULL, true, {0}, {3, 4}, -0.75f, 0, 1},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(18);
        input("x", D(2, 3, 6, 8));
        if (cases[i].sizes) ints("sizes", (const int64_t[]){2, 3, cases[i].sz[0], cases[i].sz[1]}, 4);
        else floats("scales", (const float[]){1, 1, cases[i].sc[0], cases[i].sc[1]}, 4);
        int n = node("Resize", cases[i].sizes ? "x,,,sizes" : "x,,scales", "y");
        as(n, "mode", cases[i].mode);
        if (cases[i].ctm) as(n, "coordinate_transformation_mode", cases[i].ctm);
        if (cases[i].nearest) as(n, "nearest_mode", cases[i].nearest);
        if (cases[i].cubic_a) af(n, "cubic_coeff_a", cases[i].cubic_a);
        if (cases[i].exclude) ai(n, "exclude_outside", 1);
        if (cases[i].antialias) ai(n, "antialias", 1);
        output("y");
        dop_runf(&RS_OPTS("Resize"), "Resize-18 case %zu (%s)", i, cases[i].mode);
    }
    /* large enough that the rows are split over 2 threads (CPU only): nearest, linear and cubic, and a resize of the
     * outermost axes only (its passes have one outer block) */
    static const struct { const char *mode; float sc[4]; } big[] = {
        {"nearest", {1, 1, 2, 2}}, {"linear", {1, 1, 2, 1.5f}}, {"cubic", {1, 1, 1.5f, 2}}, {"linear", {2, 1.5f, 1, 1}}};
    for (size_t i = 0; i < SI_ARRAY_LEN(big); i++) {
        begin(18);
        input("x", D(2, 16, 40, 52));
        floats("scales", big[i].sc, 4);
        int n = node("Resize", "x,,scales", "y");
        as(n, "mode", big[i].mode);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "Resize", .cpu_no_ref = true, .opt_key = "threads", .opt_value = "2", .opt_device = "CPU"},
                 "Resize %s on 2 threads, case %zu", big[i].mode, i);
    }
    /* the bilinear kernel (ONNX Runtime's arithmetic): rows of several 16-column blocks and a partial one, blocks
     * reading more than 16 input columns (downsampling: the scalar path), one axis kept, 2 threads */
    static const struct { const char *ctm; float sc[2]; int64_t h, w; } bil[] = {
        {"half_pixel", {2, 2}, 9, 37}, {"align_corners", {0.25f, 0.5f}, 12, 100}, {"asymmetric", {1, 3}, 5, 23},
        {"pytorch_half_pixel", {1.5f, 1}, 7, 41},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(bil); i++) {
        begin(13);
        input("x", D(2, 5, bil[i].h, bil[i].w));
        floats("scales", (const float[]){1, 1, bil[i].sc[0], bil[i].sc[1]}, 4);
        int n = node("Resize", "x,,scales", "y");
        as(n, "mode", "linear");
        as(n, "coordinate_transformation_mode", bil[i].ctm);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "Resize", .cpu_no_ref = true, .cpu_kernel = "own:resize_bilinear", .opt_key = "threads",
                             .opt_value = "2", .opt_device = "CPU"},
                 "Resize bilinear %s case %zu", bil[i].ctm, i);
    }
    begin(18); /* axes and keep_aspect_ratio_policy */
    input("x", D(1, 2, 5, 7));
    ints("sizes", (const int64_t[]){9, 9}, 2);
    int n = node("Resize", "x,,,sizes", "y");
    ais(n, "axes", (const int64_t[]){3, 2}, 2);
    as(n, "keep_aspect_ratio_policy", "not_larger");
    as(n, "mode", "linear");
    output("y");
    dop_runf(&RS_OPTS("Resize"), "Resize-18 axes, not_larger");
    begin(13); /* tf_crop_and_resize with an extrapolation value */
    input("x", D(1, 1, 6, 6));
    floats("roi", (const float[]){0, 0, -0.2f, 0.3f, 1, 1, 0.8f, 1.3f}, 8);
    ints("sizes", (const int64_t[]){1, 1, 5, 4}, 4);
    n = node("Resize", "x,roi,,sizes", "y");
    as(n, "coordinate_transformation_mode", "tf_crop_and_resize");
    as(n, "mode", "linear");
    af(n, "extrapolation_value", 7.5f);
    output("y");
    dop_runf(&RS_OPTS("Resize"), "Resize-13 tf_crop_and_resize");
    begin(10);
    input("x", D(1, 2, 3, 4));
    floats("scales", (const float[]){1, 1, 2, 3}, 4);
    node("Resize", "x,scales", "y");
    output("y");
    dop_runf(&RS_OPTS("Resize"), "Resize-10 nearest");
    begin(9);
    input("x", D(2, 2, 3, 3));
    floats("scales", (const float[]){1, 1, 2, 2}, 4);
    n = node("Upsample", "x,scales", "y");
    as(n, "mode", "linear");
    output("y");
    dop_runf(&RS_OPTS("Upsample"), "Upsample-9 linear");
    begin(7);
    input("x", D(1, 3, 4, 2));
    n = node("Upsample", "x", "y");
    attr(n, "scales", SI_ATTR_FLOATS)->n = 4;
    G->nodes[n].attrs[G->nodes[n].n_attr - 1].floats = si_malloc(4 * sizeof(float));
    if (!G->nodes[n].attrs[G->nodes[n].n_attr - 1].floats) die("attr");
    memcpy(G->nodes[n].attrs[G->nodes[n].n_attr - 1].floats, (const float[]){1, 1, 3, 2}, 4 * sizeof(float));
    output("y");
    dop_runf(&RS_OPTS("Upsample"), "Upsample-7 nearest");
}

/* Resize reading a convolution's output in the layout oneDNN chose (nhwc on AVX-512) and writing the same
 * layout into an Add / Concat; odd sizes, every mode, a scaled channel axis; ConvTranspose chains with the
 * activations its kernel applies. */
void dop_cases_resize_layouts(void) {
    static const struct {
        const char *mode, *ctm;
        float sc[3];
        int64_t h, w;
        bool concat;
    } cases[] = {
        {"nearest", NULL, {1, 2, 2}, 7, 9, false},           {"nearest", "asymmetric", {1, 3, 2}, 5, 6, true},
        {"linear", "half_pixel", {1, 2, 2}, 9, 7, false},    {"linear", "align_corners", {1, 0.5f, 1.5f}, 11, 5, true},
        {"cubic", "pytorch_half_pixel", {1, 2, 1.5f}, 6, 7, false}, {"nearest", "tf_half_pixel_for_nn", {2, 2, 2}, 5, 5, false},
        {"linear", "asymmetric", {2, 1.5f, 1}, 6, 6, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(13);
        int64_t c = 16, oc = (int64_t)(c * cases[i].sc[0]);
        int64_t oh = (int64_t)floor(cases[i].h * cases[i].sc[1]), ow = (int64_t)floor(cases[i].w * cases[i].sc[2]);
        input("x", D(1, 3, cases[i].h, cases[i].w));
        input("skip", D(1, cases[i].concat ? 8 : oc, oh, ow));
        weight("w", -0.5f, 0.5f, D(c, 3, 3, 3));
        int n = node("Conv", "x,w", "t");
        ais(n, "pads", D(1, 1, 1, 1));
        floats("scales", (const float[]){1, cases[i].sc[0], cases[i].sc[1], cases[i].sc[2]}, 4);
        n = node("Resize", "t,,scales", "u");
        as(n, "mode", cases[i].mode);
        if (cases[i].ctm) as(n, "coordinate_transformation_mode", cases[i].ctm);
        if (cases[i].concat) {
            n = node("Concat", "u,skip", "y");
            ai(n, "axis", 1);
        } else {
            node("Add", "u,skip", "y");
        }
        output("y");
        dop_runf(&RS_OPTS("Resize"), "Resize after Conv case %zu (%s)", i, cases[i].mode);
    }
    /* the last two: rows wide enough that the kernel's GEMM runs one input row per block (overlapping
     * kernel rows, activations applied as rows complete) */
    static const struct { const char *act; int64_t c, oc, k, s, d, g, h, w; } ct[] = {
        {"Sigmoid", 24, 1, 2, 2, 1, 1, 9, 11}, {"Tanh", 8, 6, 3, 2, 2, 2, 7, 9}, {"Clip", 6, 9, 4, 3, 1, 3, 5, 7},
        {"LeakyRelu", 5, 7, 3, 1, 1, 1, 6, 8}, {"Relu", 4, 64, 3, 2, 1, 1, 7, 240}, {"Sigmoid", 3, 48, 4, 1, 2, 1, 6, 301},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(ct); i++) {
        begin(11);
        input("x", D(1, ct[i].c, ct[i].h, ct[i].w));
        weight("w", -0.5f, 0.5f, D(ct[i].c, ct[i].oc / ct[i].g, ct[i].k, ct[i].k));
        weight("a", -1, 1, D(ct[i].oc, 1, 1));
        int n = node("ConvTranspose", "x,w", "t");
        ais(n, "strides", D(ct[i].s, ct[i].s));
        ais(n, "dilations", D(ct[i].d, ct[i].d));
        ais(n, "pads", D(1, 0, 0, 1));
        ai(n, "group", ct[i].g);
        node("Add", "t,a", "u");
        if (!strcmp(ct[i].act, "Clip")) {
            fconst("lo", -0.3f);
            fconst("hi", 0.4f);
            node("Clip", "u,lo,hi", "y");
        } else {
            node(ct[i].act, "u", "y");
        }
        output("y");
        char expect[64];
        snprintf(expect, sizeof expect, "ConvTranspose+Add+%s", ct[i].act);
        dop_runf(&(dop_opts){.cpu_plan = !strcmp(ct[i].act, "LeakyRelu") ? "ConvTranspose+Add" : expect, .cpu_no_ref = true},
                 "ConvTranspose+Add+%s case %zu", ct[i].act, i);
    }
}

/* Depthwise 1-D convolutions (speech encoders' convolution modules) on the own kernel (cpu_dwconv.c): taps longer
 * than the input, strides, dilations, asymmetric and SAME pads, no bias, BatchNormalization folded, the
 * activations it applies (Swish as x * Sigmoid(x), Relu, Clip), two images, 2 threads; a channel multiplier of 2
 * goes to oneDNN. */
void dop_cases_conv_dw1d(void) {
    static const struct {
        int64_t n, c, t, k, s, d, pb, pe, mult;
        const char *ap, *act;
        bool bias, bn, two;
    } cs[] = {
        {1, 24, 100, 15, 1, 1, 7, 7, 1, NULL, "Swish", true, true, false},
        {1, 16, 37, 3, 2, 1, 1, 0, 1, NULL, "Relu", false, false, false},
        {2, 9, 41, 5, 1, 2, 4, 4, 1, NULL, "Clip", true, true, true},
        {1, 8, 20, 31, 1, 1, 15, 15, 1, NULL, NULL, true, false, false},
        {1, 12, 33, 4, 3, 1, 0, 0, 1, "SAME_UPPER", "Swish", true, false, false},
        {1, 8, 64, 7, 1, 1, 3, 3, 2, NULL, NULL, true, false, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cs); i++) {
        const int64_t oc = cs[i].c * cs[i].mult;
        begin(13);
        input("x", D(cs[i].n, cs[i].c, cs[i].t));
        weight("w", -0.5f, 0.5f, D(oc, 1, cs[i].k));
        if (cs[i].bias) weight("b", -0.5f, 0.5f, D(oc));
        int n = node("Conv", cs[i].bias ? "x,w,b" : "x,w", "c");
        ai(n, "group", cs[i].c);
        ais(n, "kernel_shape", D(cs[i].k));
        ais(n, "strides", D(cs[i].s));
        ais(n, "dilations", D(cs[i].d));
        if (cs[i].ap) as(n, "auto_pad", cs[i].ap);
        else ais(n, "pads", D(cs[i].pb, cs[i].pe));
        const char *t = "c";
        if (cs[i].bn) {
            weight("bn_s", 0.5f, 1.5f, D(oc)), weight("bn_b", -0.5f, 0.5f, D(oc));
            weight("bn_m", -0.5f, 0.5f, D(oc)), weight("bn_v", 0.5f, 2.0f, D(oc));
            af(node("BatchNormalization", "c,bn_s,bn_b,bn_m,bn_v", "n"), "epsilon", 1e-3f);
            t = "n";
        }
        char ins[32];
        if (!cs[i].act) {
            node("Identity", t, "y");
        } else if (!strcmp(cs[i].act, "Swish")) {
            node("Sigmoid", t, "sg");
            snprintf(ins, sizeof ins, "%s,sg", t);
            node("Mul", ins, "y");
        } else if (!strcmp(cs[i].act, "Clip")) {
            fconst("lo", -0.4f), fconst("hi", 0.6f);
            snprintf(ins, sizeof ins, "%s,lo,hi", t);
            node("Clip", ins, "y");
        } else {
            node(cs[i].act, t, "y");
        }
        output("y");
        const bool own = cs[i].mult == 1;
        dop_runf(&(dop_opts){.cpu_plan = own ? "ConvDw" : "Conv", .cpu_no_ref = true, .cpu_kernel = own ? "own:dwconv1d" : NULL,
                             .opt_key = cs[i].two ? "threads" : NULL, .opt_value = cs[i].two ? "2" : NULL, .opt_device = cs[i].two ? "CPU" : NULL},
                 "depthwise Conv1d case %zu (k %lld, stride %lld, dilation %lld%s%s)", i, (long long)cs[i].k, (long long)cs[i].s,
                 (long long)cs[i].d, cs[i].act ? ", " : "", cs[i].act ? cs[i].act : "");
    }
}

/* BatchNormalization over [N, C, W] that does not fold into a convolution (a TDNN's Conv1d -> Relu -> BN, or on a
 * model input): oneDNN's jit kernel on [N, C, 1, W] views, in the layout the convolution left (blocked) or plain. */
void dop_cases_bn1d(void) {
    for (int k = 0; k < 3; k++) {
        const int64_t n = k == 2 ? 2 : 1, c = k == 1 ? 20 : 32, t = k == 1 ? 77 : 50;
        begin(13);
        input("x", D(n, k == 1 ? c : 8, t));
        weight("bn_s", 0.5f, 1.5f, D(c)), weight("bn_b", -0.5f, 0.5f, D(c));
        weight("bn_m", -0.5f, 0.5f, D(c)), weight("bn_v", 0.5f, 2.0f, D(c));
        const char *in = "x";
        if (k != 1) { /* after Conv1d + Relu: the BN cannot fold into the convolution */
            weight("w", -0.3f, 0.3f, D(c, 8, 3));
            ais(node("Conv", "x,w", "c"), "pads", D(1, 1));
            node("Relu", "c", "r");
            in = "r";
        }
        char ins[64];
        snprintf(ins, sizeof ins, "%s,bn_s,bn_b,bn_m,bn_v", in);
        af(node("BatchNormalization", ins, "y"), "epsilon", 1e-3f);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "BatchNormalization", .cpu_no_ref = true, .opt_key = k == 2 ? "threads" : NULL,
                             .opt_value = k == 2 ? "2" : NULL, .opt_device = k == 2 ? "CPU" : NULL},
                 "BatchNormalization over [N, C, W], case %d (%s)", k, k == 1 ? "a model input" : "after Conv1d + Relu");
    }
}

/* Group and instance normalization on the own kernel (cpu_norm.c): GroupNormalization (opset 18 per-group and 21
 * per-channel scale), InstanceNormalization on [N, C, L] and [N, C, H, W], and the form PyTorch exports below opset
 * 18 (Reshape -> InstanceNormalization -> Reshape, then a per-channel Mul and Add the chain folds); on a model input
 * (plain) and after a Conv (the layout it leaves: channel-blocked, padded when C is not a multiple of the block),
 * followed by Swish (x * Sigmoid(x)) or Sigmoid (which must leave padded channels zero), two images, 2 threads. */
void dop_cases_groupnorm(void) {
    static const struct {
        const char *form; /* "gn18", "gn21", "in", "pattern" */
        int64_t n, c, g, h, w; /* w 0: [N, C, H] */
        bool conv;
        const char *act;
        bool two;
    } cs[] = {
        {"gn21", 1, 32, 8, 9, 11, false, "Swish", false},  {"gn21", 2, 24, 6, 7, 5, true, "Sigmoid", false},
        {"gn18", 1, 20, 4, 6, 6, true, NULL, false},       {"in", 1, 12, 12, 37, 0, false, NULL, false},
        {"in", 2, 16, 16, 5, 9, true, "Swish", true},      {"pattern", 1, 64, 32, 16, 16, true, "Swish", true},
        {"pattern", 2, 40, 8, 5, 7, false, "Sigmoid", false}, {"pattern", 1, 6, 3, 33, 65, true, NULL, true},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cs); i++) {
        const int64_t n = cs[i].n, c = cs[i].c, g = cs[i].g, h = cs[i].h, w = cs[i].w;
        const bool pattern = !strcmp(cs[i].form, "pattern");
        begin(!strcmp(cs[i].form, "gn18") ? 18 : !strcmp(cs[i].form, "gn21") ? 21 : 13);
        if (w) input("x", D(n, cs[i].conv ? 5 : c, h, w));
        else input("x", D(n, cs[i].conv ? 5 : c, h));
        const char *t = "x";
        if (cs[i].conv) {
            if (w) weight("cw", -0.4f, 0.4f, D(c, 5, 3, 3));
            else weight("cw", -0.4f, 0.4f, D(c, 5, 3));
            weight("cb", -0.5f, 0.5f, D(c));
            int k = node("Conv", "x,cw,cb", "cv");
            if (w) ais(k, "pads", D(1, 1, 1, 1));
            else ais(k, "pads", D(1, 1));
            t = "cv";
        }
        char ins[64];
        const char *normed = "nm";
        if (pattern) {
            ints("shp", D(0, g, -1));
            snprintf(ins, sizeof ins, "%s,shp", t);
            node("Reshape", ins, "r1");
            floats("ones", (const float[]){1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, (int)g);
            weight("zb", -0.2f, 0.2f, D(g));
            af(node("InstanceNormalization", "r1,ones,zb", "in"), "epsilon", 1e-5f);
            snprintf(ins, sizeof ins, "%s", t);
            node("Shape", ins, "xs");
            node("Reshape", "in,xs", "r2");
            if (w) weight("gs", 0.5f, 1.5f, D(c, 1, 1)), weight("gb", -0.5f, 0.5f, D(c, 1, 1));
            else weight("gs", 0.5f, 1.5f, D(c, 1)), weight("gb", -0.5f, 0.5f, D(c, 1));
            node("Mul", "r2,gs", "m");
            node("Add", "m,gb", "nm");
        } else {
            const bool per_group = !strcmp(cs[i].form, "gn18");
            weight("s", 0.5f, 1.5f, D(per_group ? g : c));
            weight("b", -0.5f, 0.5f, D(per_group ? g : c));
            snprintf(ins, sizeof ins, "%s,s,b", t);
            int k = node(!strcmp(cs[i].form, "in") ? "InstanceNormalization" : "GroupNormalization", ins, "nm");
            if (strcmp(cs[i].form, "in")) ai(k, "num_groups", g);
            af(k, "epsilon", 1e-4f);
        }
        if (!cs[i].act) {
            node("Identity", normed, "y");
        } else if (!strcmp(cs[i].act, "Swish")) {
            node("Sigmoid", normed, "sg");
            node("Mul", "nm,sg", "y");
        } else {
            node(cs[i].act, normed, "y");
        }
        output("y");
        const char *plan = pattern ? "GroupNorm+Mul+Add" : !strcmp(cs[i].form, "in") ? "InstanceNorm" : "GroupNorm";
        dop_runf(&(dop_opts){.cpu_plan = plan, .cpu_no_ref = true, .cpu_kernel = "own:groupnorm", .may_refuse = "OCL",
                             .opt_key = cs[i].two ? "threads" : NULL, .opt_value = cs[i].two ? "2" : NULL, .opt_device = cs[i].two ? "CPU" : NULL},
                 "%s case %zu (%lld channels, %lld groups%s%s%s)", cs[i].form, i, (long long)c, (long long)g, cs[i].conv ? ", after Conv" : "",
                 cs[i].act ? ", " : "", cs[i].act ? cs[i].act : "");
    }
}

/* A Conv's output plus a per-image, per-channel operand computed from another input after the Conv in node order
 * (a diffusion U-Net's time embedding: MatMul -> Swish -> Unsqueeze): the CPU computes the operand first and fuses
 * the Add into the Conv, on a jit kernel also at batch 2 (where oneDNN offers only its GEMM-based convolution
 * with that post-op, and the Add runs as its own step). */
void dop_cases_conv_temb(void) {
    static const struct {
        int64_t n, c, h, w;
        bool fused;
    } cs[] = {{1, 32, 12, 10, true}, {2, 24, 9, 9, false}, {1, 16, 5, 7, true}};
    for (size_t i = 0; i < SI_ARRAY_LEN(cs); i++) {
        const int64_t n = cs[i].n, c = cs[i].c, h = cs[i].h, w = cs[i].w;
        begin(13);
        input("x", D(n, 8, h, w));
        input("t", D(n, 12));
        weight("cw", -0.3f, 0.3f, D(c, 8, 3, 3));
        weight("cb", -0.5f, 0.5f, D(c));
        ais(node("Conv", "x,cw,cb", "cv"), "pads", D(1, 1, 1, 1));
        weight("tw", -0.5f, 0.5f, D(12, c));
        node("MatMul", "t,tw", "tm");
        node("Sigmoid", "tm", "ts");
        node("Mul", "tm,ts", "te");
        ints("ax", D(2, 3));
        node("Unsqueeze", "te,ax", "tu");
        node("Add", "cv,tu", "y");
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = cs[i].fused ? "Conv+Add" : NULL, .cpu_no_ref = true, .cpu_avoid = "gemm:jit", .cpu_avoid_in = "Conv"}, "Conv + time embedding, %lld images, %lld channels",
                 (long long)n, (long long)c);
    }
}

// --- views, Transpose, Slice, Concat and the other layout ops (moved from test_device_ops_cases.c) ------------------

void dop_cases_layout(void) {
    /* views: the output shares the input's buffer */
    begin(14);
    input("x", D(2, 3, 4));
    ints("shape", (const int64_t[]){3, -1, 0}, 3);
    node("Reshape", "x,shape", "r");
    node("Relu", "r", "y");
    output("y");
    output("r");
    dop_runf(NULL, "Reshape (an output that is a view of an input)");
    begin(13);
    input("x", D(2, 3, 4, 1));
    node("Flatten", "x", "f");
    ai(G->n_nodes - 1, "axis", 2);
    ints("ax", (const int64_t[]){0}, 1);
    node("Unsqueeze", "f,ax", "u");
    node("Squeeze", "u,ax", "s");
    node("Squeeze", "x", "s2");
    node("Add", "s,s", "y");
    output("y");
    output("s2");
    dop_runf(NULL, "Flatten, Unsqueeze, Squeeze");
    begin(11);
    input("x", D(3, 1, 4));
    int n = node("Unsqueeze", "x", "u");
    ais(n, "axes", (const int64_t[]){0, 4}, 2);
    n = node("Squeeze", "u", "s");
    ais(n, "axes", (const int64_t[]){2}, 1);
    node("Neg", "s", "y");
    output("y");
    dop_runf(NULL, "Unsqueeze-11, Squeeze-11");

    static const int64_t perms[][4] = {{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 3, 0, 1}};
    for (int i = 0; i < 4; i++) {
        begin(13);
        input("x", D(2, 3, 4, 5));
        n = node("Transpose", "x", "y");
        ais(n, "perm", perms[i], 4);
        output("y");
        dop_runf(NULL, "Transpose perm %d", i);
    }
    begin(13);
    input("x", D(3, 7));
    node("Transpose", "x", "y");
    output("y");
    dop_runf(NULL, "Transpose default perm");

    for (int axis = -3; axis < 3; axis++) {
        begin(13);
        int64_t a[3] = {2, 3, 4}, b[3] = {2, 3, 4}, c[3] = {2, 3, 4};
        int ax = axis < 0 ? axis + 3 : axis;
        b[ax] = 1;
        c[ax] = 5;
        input("a", a, 3);
        input("b", b, 3);
        weight("c", -1, 1, c, 3);
        n = node("Concat", "a,b,c", "y");
        ai(n, "axis", axis);
        output("y");
        dop_runf(NULL, "Concat axis %d", axis);
    }
    begin(18);
    input("x", D(2, 7, 3));
    n = node("Split", "x", "p,q,r");
    ai(n, "axis", 1);
    ai(n, "num_outputs", 3);
    output("p");
    output("q");
    output("r");
    dop_runf(NULL, "Split-18 num_outputs");
    begin(13);
    input("x", D(6, 4));
    ints("sp", (const int64_t[]){1, 3, 2}, 3);
    node("Split", "x,sp", "p,q,r");
    output("p");
    output("r");
    output("q");
    dop_runf(NULL, "Split-13 sizes");
    /* Split on CPU is reorders from views of the input in its own layout: after a convolution (blocked or
     * channels-last), channel parts that are whole blocks or not, and along the spatial axes */
    static const struct { int64_t c, axis, sp[3]; int nsp; } spl[] = {
        {32, 1, {16, 16}, 2}, {24, 1, {5, 11, 8}, 3}, {16, 2, {3, 6}, 2}, {16, 3, {4, 4, 3}, 3},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(spl); i++) {
        begin(13);
        input("x", D(1, 8, 9, 11));
        weight("w", -0.5f, 0.5f, D(spl[i].c, 8, 3, 3));
        ais(node("Conv", "x,w", "h"), "pads", D(1, 1, 1, 1));
        ints("sp", spl[i].sp, spl[i].nsp);
        ai(node("Split", "h,sp", spl[i].nsp == 2 ? "p,q" : "p,q,r"), "axis", spl[i].axis);
        node("Relu", "p", "pr");
        output("pr");
        output("q");
        if (spl[i].nsp == 3) output("r");
        dop_runf(&(dop_opts){.cpu_plan = "Split", .cpu_no_ref = true}, "Split after a Conv, %lld channels, axis %lld into %d", (long long)spl[i].c,
                 (long long)spl[i].axis, spl[i].nsp);
    }

    static const struct { int n; int64_t st[3], en[3], ax[3], sp[3]; } sl[] = {
        {2, {1, 0}, {3, 4}, {0, 1}, {1, 2}},
        {3, {-1, 10, 0}, {-100, -100, 5}, {0, 1, 2}, {-1, -2, 2}},
        {1, {2}, {1000}, {-1}, {1}},
        {2, {0, 5}, {3, 1}, {1, 0}, {1, 1}}, /* empty */
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(sl); i++) {
        begin(13);
        input("x", D(4, 6, 5));
        ints("st", sl[i].st, sl[i].n);
        ints("en", sl[i].en, sl[i].n);
        ints("ax", sl[i].ax, sl[i].n);
        ints("sp", sl[i].sp, sl[i].n);
        node("Slice", "x,st,en,ax,sp", "y");
        output("y");
        dop_runf(NULL, "Slice case %zu", i);
    }
    begin(9);
    input("x", D(4, 6));
    n = node("Slice", "x", "y");
    ais(n, "starts", (const int64_t[]){1, 2}, 2);
    ais(n, "ends", (const int64_t[]){-1, 100}, 2);
    output("y");
    dop_runf(NULL, "Slice-9 attributes");
    /* Slice with steps of 1 on CPU: a reorder from a view of the input in its own layout (after a convolution) */
    static const struct { int n; int64_t st[2], en[2], ax[2]; } slc[] = {
        {1, {16}, {32}, {1}}, {2, {3, -5}, {13, 100}, {1, -1}}, {2, {-3, 1}, {100, 8}, {2, 3}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(slc); i++) {
        begin(13);
        input("x", D(1, 8, 9, 11));
        weight("w", -0.5f, 0.5f, D(32, 8, 3, 3));
        ais(node("Conv", "x,w", "h"), "pads", D(1, 1, 1, 1));
        ints("st", slc[i].st, slc[i].n);
        ints("en", slc[i].en, slc[i].n);
        ints("ax", slc[i].ax, slc[i].n);
        node("Slice", "h,st,en,ax", "s");
        node("Relu", "s", "y");
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "Slice", .cpu_no_ref = true}, "Slice after a Conv, case %zu", i);
    }

    begin(13);
    input("x", D(3, 1));
    ints("sh", (const int64_t[]){2, 1, 4}, 3);
    node("Expand", "x,sh", "y");
    output("y");
    dop_runf(NULL, "Expand");
    begin(13);
    input("x", D(2, 3));
    ints("rep", (const int64_t[]){2, 3}, 2);
    node("Tile", "x,rep", "y");
    output("y");
    dop_runf(NULL, "Tile");

    static const char *modes[] = {"constant", "reflect", "edge", "wrap"};
    for (int m = 0; m < 4; m++) {
        begin(19);
        input("x", D(2, 3, 5));
        ints("pads", (const int64_t[]){0, 2, 1, 1, -1, 3}, 6);
        fconst("v", 1.5f);
        n = node("Pad", m ? "x,pads" : "x,pads,v", "y");
        as(n, "mode", modes[m]);
        output("y");
        dop_runf(NULL, "Pad-19 %s", modes[m]);
    }
    begin(2);
    input("x", D(3, 4));
    n = node("Pad", "x", "y");
    ais(n, "pads", (const int64_t[]){1, 0, 2, 1}, 4);
    af(n, "value", -2.0f);
    output("y");
    dop_runf(NULL, "Pad-2 attributes");

    begin(15); /* Shape/Size: constants of the compiled model */
    input("x", D(2, 3, 4));
    n = node("Shape", "x", "s");
    ai(n, "start", 1);
    node("Size", "x", "z");
    node("Relu", "x", "y");
    output("s");
    output("z");
    output("y");
    dop_runf(NULL, "Shape, Size");
}
