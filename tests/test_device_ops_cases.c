/*
 * test_device_ops_cases.c — the cases of the device-vs-REF op test (test_device_ops.h): small graphs over
 * several shapes and attribute combinations (strides, pads, groups, dilations, transposes, broadcasting,
 * opsets), each compiled on the device under test and on REF and compared. Where the CPU device puts a case on
 * oneDNN, the case names the fused step its plan must contain; where a device kernel has variants (the OCL
 * GEMM and convolution kernels), the case runs once per variant on that device.
 *
 * dop_groups at the end is the table the harness runs; each group builds its graphs and calls dop_run.
 */
#include "test_device_ops.h"

#include <math.h>

/* A case whose CPU plan must contain `expect` and no reference-kernel step. */
static void run_case(const char *what, const char *expect) { dop_run(what, &(dop_opts){.cpu_plan = expect, .cpu_no_ref = true}); }

// --- cases first written for the CPU device ----------------------------------------------------------------

// --- convolution -------------------------------------------------------------------------------------------------

typedef struct conv_p {
    int64_t n, c, h, w, oc, k, stride, pad, dil, group;
    bool bias;
    const char *auto_pad;
} conv_p;

static void conv_node(const char *x, const char *y, const char *wname, int64_t c, const conv_p *p, bool asym) {
    weight(wname, -0.5f, 0.5f, D(p->oc, c / p->group, p->k, p->k));
    char ins[128];
    char bname[64];
    snprintf(bname, sizeof bname, "%s_b", wname);
    if (p->bias) weight(bname, -1, 1, D(p->oc));
    snprintf(ins, sizeof ins, "%s,%s%s%s", x, wname, p->bias ? "," : "", p->bias ? bname : "");
    int n = node("Conv", ins, y);
    if (p->stride != 1) ais(n, "strides", D(p->stride, p->stride));
    if (p->dil != 1) ais(n, "dilations", D(p->dil, p->dil));
    if (p->group != 1) ai(n, "group", p->group);
    ais(n, "kernel_shape", D(p->k, p->k));
    if (p->auto_pad) as(n, "auto_pad", p->auto_pad);
    else if (asym) ais(n, "pads", D(p->pad, 0, p->pad + 1, p->pad));
    else if (p->pad) ais(n, "pads", D(p->pad, p->pad, p->pad, p->pad));
}

static void cases_conv_2d(void) {
    static const conv_p cases[] = {
        {1, 3, 17, 19, 16, 3, 1, 1, 1, 1, true, NULL},     {2, 8, 12, 12, 16, 3, 2, 1, 1, 1, true, NULL},
        {1, 16, 10, 10, 32, 1, 1, 0, 1, 1, false, NULL},   {1, 16, 14, 14, 16, 3, 1, 2, 2, 1, true, NULL},
        {1, 16, 9, 11, 16, 3, 1, 1, 1, 16, true, NULL},    {1, 32, 15, 15, 32, 3, 2, 1, 1, 32, false, NULL},
        {1, 24, 8, 8, 24, 5, 1, 2, 1, 24, true, NULL},     {1, 8, 9, 9, 12, 3, 1, 1, 1, 2, true, NULL},
        {1, 24, 7, 7, 40, 1, 1, 0, 1, 1, true, NULL},      {1, 6, 13, 13, 10, 5, 3, 0, 1, 1, true, NULL},
        {1, 8, 10, 10, 16, 3, 2, 0, 1, 1, true, "SAME_UPPER"}, {1, 8, 10, 10, 16, 4, 3, 0, 1, 1, true, "SAME_LOWER"},
        {1, 8, 10, 10, 16, 3, 1, 0, 1, 1, false, "VALID"}, {1, 3, 32, 32, 64, 7, 2, 3, 1, 1, true, NULL},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        const conv_p *p = &cases[i];
        for (int asym = 0; asym < 2; asym++) {
            if (asym && (p->auto_pad || p->pad == 0)) continue;
            begin(13);
            input("x", D(p->n, p->c, p->h, p->w));
            conv_node("x", "y", "w", p->c, p, asym);
            output("y");
            char what[160];
            snprintf(what, sizeof what, "Conv n%lld c%lld %lldx%lld oc%lld k%lld s%lld p%lld%s d%lld g%lld%s %s", (long long)p->n,
                     (long long)p->c, (long long)p->h, (long long)p->w, (long long)p->oc, (long long)p->k, (long long)p->stride,
                     (long long)p->pad, asym ? "(asym)" : "", (long long)p->dil, (long long)p->group, p->bias ? " bias" : "",
                     p->auto_pad ? p->auto_pad : "");
            run_case(what, "Conv");
        }
    }
    /* 1-D and 3-D */
    begin(13);
    input("x", D(2, 8, 30));
    weight("w", -0.5f, 0.5f, D(16, 8, 3));
    weight("b", -1, 1, D(16));
    ais(node("Conv", "x,w,b", "y"), "pads", D(1, 1));
    output("y");
    run_case("Conv1D", "Conv");
    begin(13);
    input("x", D(1, 4, 6, 7, 8));
    weight("w", -0.5f, 0.5f, D(8, 4, 3, 3, 3));
    int n = node("Conv", "x,w", "y");
    ais(n, "pads", D(1, 0, 1, 1, 0, 1));
    ais(n, "strides", D(1, 2, 1));
    output("y");
    run_case("Conv3D", "Conv");
}

static void bn_params(const char *p, int64_t c);
static int bn_node(const char *x, const char *y, const char *p);

static void cases_conv_transpose_fused(void) {
    typedef struct { int64_t c, oc, k, s, pad, opad, group, h; } ct_p;
    static const ct_p cases[] = {{8, 16, 3, 2, 1, 1, 1, 7}, {16, 8, 4, 2, 1, 0, 1, 6}, {8, 8, 3, 1, 1, 0, 1, 9},
                                 {16, 16, 3, 2, 0, 0, 2, 5}, {16, 16, 2, 2, 0, 0, 16, 6}};
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        const ct_p *p = &cases[i];
        for (int bn = 0; bn < 2; bn++) {
            begin(13);
            input("x", D(1, p->c, p->h, p->h + 1));
            weight("w", -0.5f, 0.5f, D(p->c, p->oc / p->group, p->k, p->k));
            weight("b", -1, 1, D(p->oc));
            int n = node("ConvTranspose", "x,w,b", bn ? "t" : "y");
            ais(n, "strides", D(p->s, p->s));
            if (p->pad) ais(n, "pads", D(p->pad, p->pad, p->pad, p->pad));
            if (p->opad) ais(n, "output_padding", D(p->opad, p->opad));
            if (p->group > 1) ai(n, "group", p->group);
            if (bn) {
                bn_params("bn", p->oc);
                bn_node("t", "u", "bn");
                node("Relu", "u", "y");
            }
            output("y");
            char what[128];
            snprintf(what, sizeof what, "ConvTranspose c%lld oc%lld k%lld s%lld p%lld op%lld g%lld%s", (long long)p->c, (long long)p->oc,
                     (long long)p->k, (long long)p->s, (long long)p->pad, (long long)p->opad, (long long)p->group, bn ? " +BN+Relu" : "");
            run_case(what, bn ? "ConvTranspose+BatchNormalization+Relu" : "ConvTranspose");
        }
    }
}

/* The upsampler's own kernel (kernel == stride, 2 wide, no pads): rows narrower and wider than its 32-pixel tile
 * and not a multiple of it, weight columns not a multiple of its 12, kernel rows 1 to 3, two images, input
 * channels over its 128-channel chunk (the sum carried through the output between chunks, the bias and activation
 * after the last), the activations it applies in registers (Relu, LeakyRelu, Clip) and after the store (Sigmoid);
 * and shapes it must
 * leave to the general kernel (pads, output_padding, groups). */
static void cases_conv_transpose_upsample(void) {
    static const struct { int64_t n, c, oc, ky, h, w; const char *act; } cs[] = {
        {1, 64, 32, 2, 3, 40, NULL},    {2, 5, 7, 2, 4, 17, "Relu"},  {1, 16, 5, 1, 2, 33, "LeakyRelu"}, {1, 9, 5, 3, 5, 16, "Clip"},
        {1, 3, 12, 2, 2, 65, "Sigmoid"}, {1, 130, 6, 2, 3, 5, NULL}, {1, 8, 1, 1, 1, 1, NULL},
        {1, 300, 4, 2, 2, 37, "Sigmoid"}, {2, 257, 6, 1, 2, 20, "Relu"}, /* over one 128-channel chunk */
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cs); i++) {
        begin(13);
        input("x", D(cs[i].n, cs[i].c, cs[i].h, cs[i].w));
        weight("w", -0.5f, 0.5f, D(cs[i].c, cs[i].oc, cs[i].ky, 2));
        weight("b", -1, 1, D(cs[i].oc));
        int n = node("ConvTranspose", "x,w,b", cs[i].act ? "t" : "y");
        ais(n, "strides", D(cs[i].ky, 2));
        if (cs[i].act && !strcmp(cs[i].act, "Clip")) {
            fconst("lo", -0.3f);
            fconst("hi", 0.4f);
            node("Clip", "t,lo,hi", "y");
        } else if (cs[i].act) {
            n = node(cs[i].act, "t", "y");
            if (!strcmp(cs[i].act, "LeakyRelu")) af(n, "alpha", 0.2f);
        }
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "ConvTranspose", .cpu_no_ref = true, .cpu_kernel = dop_cpu_avx512() ? "own:avx512 kernel=stride" : "own:avx2 kernel=stride"},
                 "ConvTranspose kernel=stride case %zu", i);
    }
    for (int k = 0; k < 3; k++) { /* pads / output_padding / groups: the general kernel's results */
        begin(13);
        input("x", D(1, 4, 3, 5));
        weight("w", -0.5f, 0.5f, D(4, k == 2 ? 3 : 6, 2, 2));
        int n = node("ConvTranspose", "x,w", "y");
        ais(n, "strides", D(2, 2));
        if (k == 0) ais(n, "pads", D(1, 0, 0, 1));
        if (k == 1) ais(n, "output_padding", D(1, 1));
        if (k == 2) ai(n, "group", 2);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "ConvTranspose", .cpu_no_ref = true, .cpu_kernel = "own:gemm+col2im"}, "ConvTranspose stride 2, variant %d", k);
    }
}

/* Conv chains: BatchNormalization folded, activations, per-channel affine, residual sum. */
static void bn_params(const char *p, int64_t c) {
    char nm[64];
    snprintf(nm, sizeof nm, "%s_s", p), weight(nm, 0.5f, 1.5f, D(c));
    snprintf(nm, sizeof nm, "%s_b", p), weight(nm, -0.5f, 0.5f, D(c));
    snprintf(nm, sizeof nm, "%s_m", p), weight(nm, -0.5f, 0.5f, D(c));
    snprintf(nm, sizeof nm, "%s_v", p), weight(nm, 0.5f, 2.0f, D(c));
}

static int bn_node(const char *x, const char *y, const char *p) {
    char ins[256];
    snprintf(ins, sizeof ins, "%s,%s_s,%s_b,%s_m,%s_v", x, p, p, p, p);
    int n = node("BatchNormalization", ins, y);
    af(n, "epsilon", 1e-3f);
    return n;
}

static void cases_conv_chains(void) {
    conv_p p = {1, 16, 12, 12, 16, 3, 1, 1, 1, 1, true, NULL};
    const char *acts[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "HardSigmoid", "HardSwish", "Clip6", "Clip11", "Exp", "Abs"};
    for (size_t i = 0; i < SI_ARRAY_LEN(acts); i++) {
        begin(13);
        input("x", D(1, 16, 12, 12));
        conv_node("x", "c", "w", 16, &p, false);
        bn_params("bn", 16);
        bn_node("c", "n", "bn");
        if (!strcmp(acts[i], "Clip6")) {
            G->opsets[0].version = 6;
            int k = node("Clip", "n", "y");
            af(k, "min", 0), af(k, "max", 6);
        } else if (!strcmp(acts[i], "Clip11")) {
            fconst("lo", -0.5f), fconst("hi", 0.7f);
            node("Clip", "n,lo,hi", "y");
        } else {
            int k = node(acts[i], "n", "y");
            if (!strcmp(acts[i], "LeakyRelu")) af(k, "alpha", 0.1f);
            if (!strcmp(acts[i], "Elu")) af(k, "alpha", 0.7f);
        }
        output("y");
        char what[96], expect[96];
        snprintf(what, sizeof what, "Conv+BatchNormalization+%s", acts[i]);
        snprintf(expect, sizeof expect, "Conv+BatchNormalization+%s", strncmp(acts[i], "Clip", 4) ? acts[i] : "Clip");
        /* without AVX-512 the own Tanh (cpu_unary.c) runs after the convolution, not as its post-op */
        if (!strcmp(acts[i], "Tanh") && !dop_cpu_avx512()) snprintf(expect, sizeof expect, "Conv+BatchNormalization;Tanh");
        run_case(what, expect);
    }
    /* per-channel affine after the conv, then a residual Add (sum post-op, in place) and Relu */
    begin(13);
    input("x", D(1, 16, 10, 10));
    conv_node("x", "c", "w", 16, &p, false);
    weight("sc", 0.5f, 1.5f, D(16, 1, 1));
    weight("sh", -1, 1, D(1, 16, 1, 1));
    node("Mul", "c,sc", "m");
    node("Sub", "m,sh", "s");
    node("Add", "s,x", "a");
    node("Relu", "a", "y");
    output("y");
    run_case("Conv+Mul+Sub (folded)+Add(residual)+Relu", "Conv+Mul+Sub+Add+Relu");
    /* ResNet block: the shortcut conv comes later and takes the sum; the residual is read elsewhere too */
    begin(13);
    input("x", D(2, 8, 9, 9));
    conv_p p1 = {2, 8, 9, 9, 16, 3, 2, 1, 1, 1, true, NULL}, p2 = {2, 8, 9, 9, 16, 1, 2, 0, 1, 1, false, NULL};
    conv_p p3 = {2, 16, 5, 5, 16, 3, 1, 1, 1, 1, true, NULL};
    conv_node("x", "a1", "w1", 8, &p1, false);
    bn_params("bn1", 16);
    bn_node("a1", "a2", "bn1");
    node("Relu", "a2", "a3");
    conv_node("a3", "a4", "w3", 16, &p3, false);
    conv_node("x", "s1", "w2", 8, &p2, false);
    bn_params("bn2", 16);
    bn_node("s1", "s2", "bn2");
    node("Add", "a4,s2", "y0");
    node("Relu", "y0", "y");
    output("y");
    output("a3");
    run_case("ResNet downsample block (the later conv takes the sum)", "Add+Relu");
    /* ResNet v1 downsampling: two strided 1x1 convolutions of one value share its subsampled copy */
    for (int plain_in = 0; plain_in < 2; plain_in++) {
        begin(13);
        input("x", D(1, 16, 8, 10));
        const char *src = "x";
        conv_p p0 = {1, 16, 8, 10, 16, 3, 1, 1, 1, 1, true, NULL};
        if (!plain_in) conv_node("x", "x0", "w0", 16, &p0, false), src = "x0";
        conv_p ds = {1, 16, 8, 10, 32, 1, 2, 0, 1, 1, false, NULL}, c1 = {1, 16, 8, 10, 8, 1, 2, 0, 1, 1, false, NULL};
        conv_p c2 = {1, 8, 4, 5, 32, 3, 1, 1, 1, 1, true, NULL};
        conv_node(src, "s", "wd", 16, &ds, false);
        bn_params("bd", 32), bn_node("s", "s2", "bd");
        conv_node(src, "a", "w1", 16, &c1, false);
        bn_params("b1", 8), bn_node("a", "a2", "b1");
        node("Relu", "a2", "a3");
        conv_node("a3", "a4", "w2", 8, &c2, false);
        node("Add", "a4,s2", "y0");
        node("Relu", "y0", "y");
        output("y");
        /* (on AVX2 oneDNN's convolutions want blocked layouts, which have no subsampling view: its strided 1x1 kernel runs) */
        dop_run(plain_in ? "strided 1x1 convolutions of a graph input" : "strided 1x1 convolutions (subsampled once)",
                &(dop_opts){.cpu_plan = "Conv1x1s", .cpu_no_ref = true, .avx512_plan = !plain_in});
    }
    /* the residual is a graph input that must not be overwritten, and is also an output */
    begin(13);
    input("x", D(1, 16, 6, 6));
    conv_node("x", "c", "w", 16, &p, false);
    node("Add", "x,c", "y");
    node("Identity", "x", "xo");
    output("y");
    output("xo");
    run_case("Conv+Add(graph input)", "Conv+Add");
    /* Swish and HardSwish patterns after a conv, GELU (Erf) pattern */
    const char *pats[] = {"swish", "hardswish", "gelu"};
    for (int i = 0; i < 3; i++) {
        begin(13);
        input("x", D(1, 16, 7, 7));
        conv_node("x", "c", "w", 16, &p, false);
        if (i == 0) node("Sigmoid", "c", "s"), node("Mul", "s,c", "y");
        if (i == 1) {
            int k = node("HardSigmoid", "c", "s");
            af(k, "alpha", 1.0f / 6), af(k, "beta", 0.5f);
            node("Mul", "c,s", "y");
        }
        if (i == 2) {
            fconst("sq2", 1.41421356f), fconst("one", 1), fconst("half", 0.5f);
            node("Div", "c,sq2", "d"), node("Erf", "d", "e"), node("Add", "e,one", "a"), node("Mul", "c,a", "m"), node("Mul", "m,half", "y");
        }
        output("y");
        char what[64];
        snprintf(what, sizeof what, "Conv+%s pattern", pats[i]);
        run_case(what, i == 0 ? "Conv+Swish" : i == 1 ? "Conv+HardSwish" : "Conv+Gelu");
    }
    /* depthwise + pointwise with Clip (MobileNetV2 block) */
    begin(13);
    input("x", D(1, 24, 14, 14));
    conv_p pw = {1, 24, 14, 14, 144, 1, 1, 0, 1, 1, false, NULL}, dw = {1, 144, 14, 14, 144, 3, 2, 1, 1, 144, false, NULL};
    conv_p pj = {1, 144, 7, 7, 24, 1, 1, 0, 1, 1, false, NULL};
    conv_node("x", "e", "w1", 24, &pw, false);
    bn_params("b1", 144), bn_node("e", "e2", "b1");
    fconst("zero", 0), fconst("six", 6);
    node("Clip", "e2,zero,six", "e3");
    conv_node("e3", "d", "w2", 144, &dw, false);
    bn_params("b2", 144), bn_node("d", "d2", "b2");
    node("Clip", "d2,zero,six", "d3");
    conv_node("d3", "y0", "w3", 144, &pj, false);
    bn_params("b3", 24), bn_node("y0", "y", "b3");
    output("y");
    run_case("MobileNetV2 block (24 channels: padded blocked layout)", "ConvDw+BatchNormalization+Clip");
}

// --- MatMul / Gemm ---------------------------------------------------------------------------------------------

/* y = MatMul(a, b) with both operands graph inputs of the given shapes. */
static void matmul_graph(const int64_t *a, int na, const int64_t *b, int nb) {
    begin(13);
    input("a", a, na);
    input("b", b, nb);
    node("MatMul", "a,b", "y");
    output("y");
}

static void cases_matmul_fused(void) {
    static const int64_t mkn[][3] = {{1, 16, 8}, {7, 33, 5}, {64, 64, 64}, {128, 96, 200}};
    for (size_t i = 0; i < SI_ARRAY_LEN(mkn); i++) {
        begin(13);
        input("a", D(mkn[i][0], mkn[i][1]));
        weight("b", -1, 1, D(mkn[i][1], mkn[i][2]));
        node("MatMul", "a,b", "y");
        output("y");
        char what[64];
        snprintf(what, sizeof what, "MatMul %lldx%lldx%lld const B", (long long)mkn[i][0], (long long)mkn[i][1], (long long)mkn[i][2]);
        run_case(what, "MatMul");
    }
    /* transformer linear: [B,S,K] x [K,N] + bias + GELU, + bias + residual */
    begin(13);
    input("x", D(2, 12, 32));
    weight("w", -0.3f, 0.3f, D(32, 48));
    weight("bias", -1, 1, D(48));
    fconst("sq2", 1.4142135f), fconst("one", 1), fconst("half", 0.5f);
    node("MatMul", "x,w", "m");
    node("Add", "bias,m", "h");
    node("Mul", "h,half", "hh");
    node("Div", "h,sq2", "d"), node("Erf", "d", "e"), node("Add", "one,e", "a"), node("Mul", "hh,a", "g");
    weight("w2", -0.3f, 0.3f, D(48, 32));
    weight("b2", -1, 1, D(32));
    node("MatMul", "g,w2", "m2");
    node("Add", "m2,b2", "o");
    node("Add", "o,x", "y");
    output("y");
    run_case("MatMul+bias+GELU(Erf, 0.5 first), MatMul+bias+residual", "MatMul+Add+Gelu");
    /* batched activations with broadcasting, 1-D operands (only the first on oneDNN) */
    static const struct { const char *what; int na, nb; int64_t a[4], b[4]; } acts[] = {
        {"MatMul batched 2x3", 4, 4, {2, 3, 5, 8}, {2, 3, 8, 6}},
        {"MatMul broadcast batch [2,1]x[1,3]", 4, 4, {2, 1, 5, 8}, {1, 3, 8, 6}},
        {"MatMul 3-D x 2-D activation", 3, 2, {4, 7, 8}, {8, 5}},
        {"MatMul 1-D x 3-D", 1, 3, {8}, {3, 8, 5}},
        {"MatMul 3-D x 1-D", 3, 1, {3, 4, 8}, {8}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(acts); i++) {
        matmul_graph(acts[i].a, acts[i].na, acts[i].b, acts[i].nb);
        if (i == 0) run_case(acts[i].what, "MatMul");
        else dop_run(acts[i].what, NULL);
    }
    /* attention: scores = Q K^T / 8 + mask; softmax; context = P V */
    begin(13);
    input("q", D(1, 4, 16, 8));
    input("k", D(1, 4, 16, 8));
    input("v", D(1, 4, 16, 8));
    input("mask", D(1, 1, 1, 16));
    fconst("scale", 8.0f);
    ais(node("Transpose", "k", "kt"), "perm", D(0, 1, 3, 2));
    node("MatMul", "q,kt", "s");
    node("Div", "s,scale", "s2");
    node("Add", "s2,mask", "s3");
    ai(node("Softmax", "s3", "p"), "axis", -1);
    node("MatMul", "p,v", "c");
    ais(node("Transpose", "c", "ct"), "perm", D(0, 2, 1, 3));
    ints("shape", D(1, 16, 32));
    node("Reshape", "ct,shape", "y");
    output("y");
    /* many rows: oneDNN's matmul with AVX-512, the own tiled kernel without (cpu_bmm.c) */
    const bool wide = dop_cpu_avx512();
    run_case("attention (Transpose, MatMul/scale+mask, Softmax, MatMul)",
             wide ? "MatMul(strided)+Div+Add;Softmax;MatMul+Transpose" : "MatMul(tiled)+Div+Add;Softmax;MatMul(tiled)+Transpose");
    /* a decode step's attention: one query row (Q read through its Transpose too) against an odd-length cache, on
     * the own kernel for few rows (the dot form for Q K^T, the axpy form for P V, written through the Transpose) */
    for (int rows = 1; rows <= 9; rows += 8) {
        begin(13);
        input("q", D(1, rows, 4, 8));
        input("k", D(1, 4, 13, 8));
        input("v", D(1, 4, 13, 8));
        input("mask", D(1, 1, rows, 13));
        fconst("scale", 8.0f);
        ais(node("Transpose", "q", "qt"), "perm", D(0, 2, 1, 3));
        ais(node("Transpose", "k", "kt"), "perm", D(0, 1, 3, 2));
        node("MatMul", "qt,kt", "s");
        node("Div", "s,scale", "s2");
        node("Add", "s2,mask", "s3");
        ai(node("Softmax", "s3", "p"), "axis", -1);
        node("MatMul", "p,v", "c");
        ais(node("Transpose", "c", "ct"), "perm", D(0, 2, 1, 3));
        output("ct");
        /* 9 rows: past the own kernel's limit, oneDNN's strided product again */
        run_case(rows == 1 ? "decode attention (1 query row, 13 cached)" : "attention with 9 query rows",
                 rows == 1 ? "MatMul(rows)+Div+Add;Softmax;MatMul(rows)+Transpose"
                 : wide    ? "MatMul(strided)+Div+Add;Softmax;MatMul+Transpose"
                           : "MatMul(tiled)+Div+Add;Softmax;MatMul(tiled)+Transpose");
    }
    /* the tiled kernel's edges: more rows than one 256-row pass, N not a multiple of the 32-column group (and
     * one half of 16 empty), K over one 256-deep panel, a batch dim of B broadcast, post-ops broadcast over rows
     * and over heads, the product written through a Transpose; B read with unit stride along K (Q K^T), along
     * N (P V) and along neither */
    begin(13);
    input("q", D(2, 3, 300, 40));
    input("k", D(1, 3, 70, 40));
    input("m", D(2, 1, 1, 70));
    fconst("sc", 0.125f);
    ais(node("Transpose", "k", "kt"), "perm", D(0, 1, 3, 2));
    node("MatMul", "q,kt", "s0");
    node("Mul", "s0,sc", "s1");
    node("Add", "s1,m", "y");
    output("y");
    run_case("MatMul with 300 rows, K^T broadcast over the batch, scale and mask", wide ? "MatMul(strided)+Mul+Add" : "MatMul(tiled)+Mul+Add");
    begin(13);
    input("p", D(1, 2, 20, 300));
    input("v", D(1, 2, 300, 12));
    node("MatMul", "p,v", "c");
    ais(node("Transpose", "c", "ct"), "perm", D(0, 2, 1, 3));
    output("ct");
    run_case("MatMul over K 300, 12 columns, into a Transpose", wide ? "MatMul+Transpose" : "MatMul(tiled)+Transpose");
    begin(13);
    input("a", D(1, 4, 17, 9));
    input("x", D(1, 45, 9, 4));
    ais(node("Transpose", "x", "b"), "perm", D(0, 3, 2, 1));
    node("MatMul", "a,b", "y");
    output("y");
    run_case("MatMul with 17 rows, B strided along K and N", wide ? "MatMul" : "MatMul(tiled)");
    /* few rows, broadcast batch dims, post-ops with operands broadcast over rows / columns / heads */
    begin(13);
    input("a", D(2, 1, 3, 8));
    input("b", D(1, 3, 8, 6));
    input("m", D(1, 3, 1, 6));
    input("s", D(2, 1, 3, 1));
    node("MatMul", "a,b", "y0");
    node("Mul", "y0,m", "y1");
    node("Sub", "y1,s", "y");
    output("y");
    run_case("MatMul with 3 rows, broadcast batch, Mul and Sub post-ops", "MatMul(rows)+Mul+Sub");
    /* neither operand contiguous along K or N (both read through Transposes): the kernel's strided loop */
    begin(13);
    input("x", D(1, 4, 8, 2));
    input("k", D(1, 4, 5, 8));
    ais(node("Transpose", "x", "a"), "perm", D(0, 1, 3, 2));
    ais(node("Transpose", "k", "kt"), "perm", D(0, 1, 3, 2));
    node("MatMul", "a,kt", "y");
    output("y");
    run_case("MatMul with 2 rows, both operands through Transposes", "MatMul(rows)");
    /* Gemm: transposes, alpha/beta, C shapes */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int cs = 0; cs < 4; cs++) {
                begin(13);
                int64_t M = 6, K = 10, N = 7;
                if (ta) input("a", D(K, M));
                else input("a", D(M, K));
                if (tb) weight("b", -1, 1, D(N, K));
                else weight("b", -1, 1, D(K, N));
                if (cs == 1) weight("c", -1, 1, D(N));
                if (cs == 2) weight("c", -1, 1, D(1, N));
                if (cs == 3) fconst("c", 0.75f);
                int n = node("Gemm", cs ? "a,b,c" : "a,b", "g");
                ai(n, "transA", ta), ai(n, "transB", tb);
                af(n, "alpha", 0.5f), af(n, "beta", cs == 3 ? 2.0f : 1.0f);
                node("Relu", "g", "y");
                output("y");
                char what[64];
                snprintf(what, sizeof what, "Gemm transA=%d transB=%d C#%d alpha/beta + Relu", ta, tb, cs);
                run_case(what, "Gemm+Relu");
            }
}

// --- pooling ----------------------------------------------------------------------------------------------------

static void cases_pool_2d(void) {
    typedef struct { const char *op; int64_t k, s, pad, dil; int ceil, incl; } pool_p;
    static const pool_p cases[] = {
        {"MaxPool", 2, 2, 0, 1, 0, 0}, {"MaxPool", 3, 2, 1, 1, 0, 0}, {"MaxPool", 3, 2, 0, 1, 1, 0}, {"MaxPool", 3, 1, 1, 2, 0, 0},
        {"AveragePool", 2, 2, 0, 1, 0, 0}, {"AveragePool", 3, 2, 1, 1, 0, 0}, {"AveragePool", 3, 2, 1, 1, 0, 1},
        {"AveragePool", 3, 2, 0, 1, 1, 0}, {"AveragePool", 3, 2, 1, 1, 1, 0},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        const pool_p *p = &cases[i];
        for (int blocked = 0; blocked < 2; blocked++) {
            begin(p->dil != 1 ? 19 : 13);
            input("x", D(2, 16, 11, 12));
            const char *src = "x";
            if (blocked) { /* after a conv: pooling runs on the conv's blocked layout */
                conv_p cp = {2, 16, 11, 12, 16, 1, 1, 0, 1, 1, true, NULL};
                conv_node("x", "c", "w", 16, &cp, false);
                src = "c";
            }
            char ins[8];
            snprintf(ins, sizeof ins, "%s", src);
            int n = node(p->op, ins, "y");
            ais(n, "kernel_shape", D(p->k, p->k));
            ais(n, "strides", D(p->s, p->s));
            if (p->pad) ais(n, "pads", D(p->pad, p->pad, p->pad, p->pad));
            if (p->dil != 1) ais(n, "dilations", D(p->dil, p->dil));
            if (p->ceil) ai(n, "ceil_mode", 1);
            if (p->incl) ai(n, "count_include_pad", 1);
            output("y");
            char what[128];
            snprintf(what, sizeof what, "%s k%lld s%lld p%lld d%lld%s%s%s", p->op, (long long)p->k, (long long)p->s, (long long)p->pad,
                     (long long)p->dil, p->ceil ? " ceil" : "", p->incl ? " include_pad" : "", blocked ? " after Conv" : "");
            run_case(what, p->op);
        }
    }
    const char *globals[] = {"GlobalAveragePool", "GlobalMaxPool"};
    for (int i = 0; i < 2; i++) {
        begin(13);
        input("x", D(2, 24, 7, 5));
        conv_p cp = {2, 24, 7, 5, 24, 3, 1, 1, 1, 1, true, NULL};
        conv_node("x", "c", "w", 24, &cp, false);
        node(globals[i], "c", "g");
        ints("shape", D(2, 24));
        node("Reshape", "g,shape", "y");
        output("y");
        run_case(globals[i], globals[i]);
    }
    begin(13);
    input("x", D(1, 8, 20));
    ais(node("MaxPool", "x", "y"), "kernel_shape", D(3));
    output("y");
    run_case("MaxPool 1-D", "MaxPool");
}

// --- elementwise, normalisation, data movement -------------------------------------------------------------------

static void cases_eltwise_fused(void) {
    const char *ops[] = {"Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "HardSigmoid", "HardSwish", "Mish", "Sqrt"};
    for (size_t i = 0; i < SI_ARRAY_LEN(ops); i++) {
        begin(18);
        const char *x = !strcmp(ops[i], "Sqrt") ? "posx" : "x";
        input(x, D(3, 5, 7));
        node(ops[i], x, "y");
        output("y");
        run_case(ops[i], ops[i]);
    }
    /* the own kernels (Softplus, Softsign) and Selu as Elu + linear, over inputs far out on both sides */
    const char *wide[] = {"Softplus", "Softsign", "Selu", "Elu", "Tanh", "Erf"};
    for (size_t i = 0; i < SI_ARRAY_LEN(wide); i++) {
        begin(18);
        input("wide", D(3, 5, 71));
        node(wide[i], "wide", "y");
        output("y");
        char what[64];
        snprintf(what, sizeof what, "%s over -40..40", wide[i]);
        run_case(what, wide[i]);
    }
    /* Tanh across its two branches (|x| < 0.5: the series; above: from e^-2|x|) */
    begin(13);
    input("unit", D(5, 203));
    node("Tanh", "unit", "y");
    output("y");
    run_case("Tanh over -0.9..0.9", "Tanh");
    /* Mish written out (YOLOv4's export): x * Tanh(Softplus(x)), after a conv and alone */
    for (int conv = 0; conv < 2; conv++) {
        begin(13);
        input("x", D(1, 8, 9, 9));
        const char *v = "x";
        if (conv) {
            conv_p cp = {1, 8, 9, 9, 16, 3, 1, 1, 1, 1, true, NULL};
            conv_node("x", "c", "w", 8, &cp, false);
            v = "c";
        }
        char ins[32];
        node("Softplus", v, "sp");
        node("Tanh", "sp", "t");
        snprintf(ins, sizeof ins, "t,%s", v);
        node("Mul", ins, "y");
        output("y");
        run_case(conv ? "Conv + Softplus -> Tanh -> Mul (Mish)" : "Softplus -> Tanh -> Mul (Mish)", conv ? "Conv+Mish" : "Mish");
    }
    /* PRelu: per-channel slope after a conv (a blocked layout), a scalar, a full-shape and a trailing-axis slope
     * over a plain input, and opset 6's 1-D channel slope */
    static const struct { int opset; int rank; int64_t sd[4]; bool conv; } pr[] = {
        {13, 3, {16, 1, 1}, true}, {13, 1, {1}, false}, {13, 4, {2, 16, 9, 9}, false}, {13, 1, {9}, false}, {6, 1, {16}, false},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(pr); i++) {
        begin(pr[i].opset);
        input("x", D(2, 16, 9, 9));
        if (pr[i].conv) {
            conv_p cp = {2, 16, 9, 9, 16, 3, 1, 1, 1, 1, true, NULL};
            conv_node("x", "c", "w", 16, &cp, false);
        }
        weight("slope", -0.5f, 0.5f, pr[i].sd, pr[i].rank);
        node("PRelu", pr[i].conv ? "c,slope" : "x,slope", "y");
        output("y");
        char what[96];
        snprintf(what, sizeof what, "PRelu-%d slope rank %d (%lld...)%s", pr[i].opset, pr[i].rank, (long long)pr[i].sd[0],
                 pr[i].conv ? " after a Conv" : "");
        run_case(what, "PRelu");
    }
    begin(13);
    input("x", D(4, 9));
    fconst("two", 2);
    node("Pow", "x,two", "y");
    output("y");
    run_case("Pow(x, 2)", "Pow");
    /* other constant exponents (oneDNN's pow): odd and even integers over negative inputs (tanh-Gelu's x^3),
     * fractional and negative ones over positive inputs */
    static const struct { float e; bool pos; } pw[] = {{3, false}, {4, false}, {-1, true}, {0.5f, true}, {-0.5f, true}, {1.7f, true}};
    for (size_t i = 0; i < SI_ARRAY_LEN(pw); i++) {
        begin(13);
        input(pw[i].pos ? "posx" : "x", D(4, 37));
        fconst("e", pw[i].e);
        node("Pow", pw[i].pos ? "posx,e" : "x,e", "y");
        output("y");
        char what[64];
        snprintf(what, sizeof what, "Pow(x, %g)", (double)pw[i].e);
        run_case(what, "Pow");
    }
    begin(13); /* an int64 exponent, as some exporters write it */
    input("x", D(4, 37));
    ints("e", (const int64_t[]){3}, 1);
    node("Pow", "x,e", "y");
    output("y");
    dop_runf(&(dop_opts){.cpu_plan = "Pow", .cpu_no_ref = true, .may_refuse = "OCL"}, "Pow(x, int64 3)");
    begin(20);
    input("x", D(4, 9));
    node("Gelu", "x", "y");
    output("y");
    dop_run("Gelu (opset 20)", NULL);
    /* binary ops with broadcasting, on plain and blocked layouts */
    const char *bops[] = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
    for (size_t i = 0; i < SI_ARRAY_LEN(bops); i++) {
        static const int64_t bshapes[][4] = {{2, 16, 5, 6}, {16, 1, 1, 0}, {6, 0, 0, 0}, {1, 1, 5, 1}, {0}};
        static const int bnd[] = {4, 3, 1, 4, 0};
        for (int s = 0; s < 5; s++) {
            for (int swap = 0; swap < 2; swap++) {
                begin(13);
                input("pa", D(2, 16, 5, 6));
                input("pb", bshapes[s], bnd[s]);
                const char *ins = swap ? "pb,pa" : "pa,pb";
                node(bops[i], ins, "y");
                output("y");
                char what[96];
                snprintf(what, sizeof what, "%s [2,16,5,6] %s rank-%d operand", bops[i], swap ? "after" : "before", bnd[s]);
                bool fast = s == 0 || !swap || (strcmp(bops[i], "Sub") && strcmp(bops[i], "Div"));
                dop_run(what, &(dop_opts){.cpu_plan = fast ? bops[i] : NULL, .cpu_no_ref = fast});
            }
        }
        /* on a conv's blocked output with a per-channel constant */
        begin(13);
        input("x", D(1, 16, 6, 6));
        conv_p cp = {1, 16, 6, 6, 16, 3, 1, 1, 1, 1, true, NULL};
        conv_node("x", "c", "w", 16, &cp, false);
        node("Relu", "c", "r");
        weight("k", 0.5f, 1.5f, D(16, 1, 1));
        node(bops[i], "r,k", "y");
        output("y");
        char what[64];
        snprintf(what, sizeof what, "Conv+Relu+%s per-channel", bops[i]);
        run_case(what, "Conv");
    }
    begin(13);
    input("a", D(3, 4));
    input("b", D(3, 4));
    node("Sum", "a,b", "y");
    output("y");
    run_case("Sum of two", "Sum");
    /* standalone BatchNormalization, Softmax, LayerNormalization, LRN */
    begin(15);
    input("x", D(2, 12, 5, 5));
    bn_params("bn", 12);
    bn_node("x", "y", "bn");
    output("y");
    run_case("BatchNormalization", "BatchNormalization");
    for (int opset = 11; opset <= 13; opset += 2)
        for (int ax = -3; ax < 3; ax++) {
            for (int lg = 0; lg < 2; lg++) {
                begin(opset);
                input("x", D(2, 3, 17));
                ai(node(lg ? "LogSoftmax" : "Softmax", "x", "y"), "axis", ax);
                output("y");
                char what[64];
                snprintf(what, sizeof what, "%s opset %d axis %d", lg ? "LogSoftmax" : "Softmax", opset, ax);
                run_case(what, lg ? "LogSoftmax" : "Softmax");
            }
        }
    for (int ax = -2; ax < 0; ax++)
        for (int bias = 0; bias < 2; bias++) {
            begin(17);
            input("x", D(2, 6, 40));
            if (ax == -1) weight("s", 0.5f, 1.5f, D(40)), weight("b", -1, 1, D(40));
            else weight("s", 0.5f, 1.5f, D(6, 40)), weight("b", -1, 1, D(6, 40));
            int n = node("LayerNormalization", bias ? "x,s,b" : "x,s", "y");
            ai(n, "axis", ax);
            af(n, "epsilon", 1e-5f);
            output("y");
            char what[64];
            snprintf(what, sizeof what, "LayerNormalization axis %d%s", ax, bias ? " bias" : "");
            run_case(what, "LayerNormalization");
        }
    /* scale and bias from inputs (a folded layer's parameters, bound per call): the same fast step, read at run time */
    for (int bias = 0; bias < 2; bias++) {
        begin(17);
        input("x", D(3, 7, 48));
        input("pos_s", D(48));
        input("b", D(48));
        int n = node("LayerNormalization", bias ? "x,pos_s,b" : "x,pos_s", "y");
        af(n, "epsilon", 1e-5f);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "LayerNormalization", .cpu_no_ref = true}, "LayerNormalization, scale%s from inputs", bias ? " and bias" : "");
    }
    /* LayerNormalization written out (older exporters): one LayerNormalization step; without scale and bias, with
     * them as constants, and with them from inputs (a folded layer's parameters) */
    for (int affine = 0; affine < 3; affine++) {
        begin(13);
        input("x", D(2, 5, 48));
        fconst("two", 2), fconst("eps", 1e-5f);
        ais(node("ReduceMean", "x", "mu"), "axes", D(-1));
        node("Sub", "x,mu", "d");
        node("Pow", "d,two", "d2");
        ais(node("ReduceMean", "d2", "var"), "axes", D(-1));
        node("Add", "var,eps", "ve");
        node("Sqrt", "ve", "sd");
        node("Div", "d,sd", affine ? "nrm" : "y");
        if (affine == 1) weight("pos_gam", 0.5f, 1.5f, D(48)), weight("bet", -1, 1, D(48));
        if (affine == 2) input("pos_gam", D(48)), input("bet", D(48));
        if (affine) {
            node("Mul", "nrm,pos_gam", "sc");
            node("Add", "sc,bet", "y");
        }
        output("y");
        static const char *const what[] = {"LayerNorm decomposition", "LayerNorm decomposition with scale and bias",
                                           "LayerNorm decomposition, scale and bias from inputs"};
        dop_runf(&(dop_opts){.cpu_plan = "LayerNorm(decomposed)", .cpu_no_ref = true}, "%s", what[affine]);
    }
    /* the RMS norm written out (LLaMA-style exports): Pow or Mul x x; Div, or Reciprocal then Mul; gamma constant, from
     * an input, or none; a residual Add reads x too */
    for (int v = 0; v < 5; v++) {
        begin(13);
        input("x", D(2, 3, 40));
        fconst("two", 2), fconst("eps", 1e-6f);
        if (v == 1) node("Mul", "x,x", "sq");
        else node("Pow", "x,two", "sq");
        ais(node("ReduceMean", "sq", "ms"), "axes", D(-1));
        node("Add", "ms,eps", "ve");
        node("Sqrt", "ve", "sd");
        if (v == 2) {
            node("Reciprocal", "sd", "rs");
            node("Mul", "rs,x", "nrm");
        } else {
            node("Div", "x,sd", "nrm");
        }
        if (v == 3) input("pos_gam", D(40));
        else if (v != 4) weight("pos_gam", 0.5f, 1.5f, D(40));
        if (v != 4) node("Mul", "nrm,pos_gam", "g");
        node("Add", v != 4 ? "g,x" : "nrm,x", "y");
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "RMSNorm(decomposed)", .cpu_no_ref = true}, "RMS norm written out, variant %d", v);
    }
    begin(13);
    input("x", D(1, 16, 7, 7));
    int n = node("LRN", "x", "y");
    ai(n, "size", 5), af(n, "alpha", 1e-2f), af(n, "beta", 0.75f), af(n, "bias", 2.0f);
    output("y");
    run_case("LRN", "LRN");
}

static void cases_data_fused(void) {
    /* channel Concat of conv outputs (DenseNet), Concat of plain tensors along other axes */
    begin(13);
    input("x", D(1, 16, 8, 8));
    conv_p p1 = {1, 16, 8, 8, 32, 3, 1, 1, 1, 1, true, NULL}, p2 = {1, 16, 8, 8, 16, 1, 1, 0, 1, 1, true, NULL};
    conv_node("x", "a", "w1", 16, &p1, false);
    conv_node("x", "b", "w2", 16, &p2, false);
    ai(node("Concat", "x,a,b", "c"), "axis", 1);
    conv_p p3 = {1, 64, 8, 8, 16, 1, 1, 0, 1, 1, true, NULL};
    conv_node("c", "y", "w3", 64, &p3, false);
    output("y");
    output("c");
    run_case("Concat of conv outputs (channels)", "Concat");
    /* the same as copies of contiguous runs (cpu_data.c) only where each input is one: one image, channels a
     * multiple of the block; at batch 2, or 12 channels (a padded block), oneDNN's concat */
    for (int v = 0; v < 3; v++) {
        const int64_t nb = v == 1 ? 2 : 1, ca = v == 2 ? 12 : 32;
        begin(13);
        input("x", D(nb, 16, 9, 7));
        conv_p q1 = {nb, 16, 9, 7, ca, 3, 1, 1, 1, 1, true, NULL}, q2 = {nb, 16, 9, 7, 48, 1, 1, 0, 1, 1, true, NULL};
        conv_node("x", "a", "w1", 16, &q1, false);
        conv_node("x", "b", "w2", 16, &q2, false);
        ai(node("Concat", "a,x,b,a", "c"), "axis", 1);
        output("c");
        dop_runf(&(dop_opts){.cpu_plan = "Concat", .cpu_no_ref = true, .cpu_kernel = v ? NULL : "own:concat"}, "Concat of conv outputs, batch %lld, %lld + 16 + 48 + %lld channels",
                 (long long)nb, (long long)ca, (long long)ca);
    }
    /* a plain input (a Resize's output) next to a blocked one (a convolution's): the plain one reordered to the
     * blocked layout, not oneDNN's reference concat for mixed layouts */
    begin(13);
    input("x", D(1, 16, 8, 8));
    input("s", D(1, 16, 4, 4));
    conv_p q3 = {1, 16, 8, 8, 16, 3, 1, 1, 1, 1, true, NULL};
    conv_node("x", "a", "w1", 16, &q3, false);
    floats("scales", (const float[]){1, 1, 2, 2}, 4);
    node("Resize", "s,,scales", "r");
    ai(node("Concat", "r,a", "c"), "axis", 1);
    output("c");
    dop_runf(&(dop_opts){.cpu_plan = "Concat", .cpu_no_ref = true, .cpu_avoid = "ref:"}, "Concat of a Resize output and a conv output");
    for (int ax = 0; ax < 3; ax++) {
        begin(13);
        input("a", D(2, 3, 4));
        input("b", D(2, 3, 4));
        ai(node("Concat", "a,b", "y"), "axis", ax);
        output("y");
        char what[32];
        snprintf(what, sizeof what, "Concat axis %d", ax);
        run_case(what, "Concat");
    }
    static const int64_t perms[][4] = {{0, 2, 1, 3}, {0, 2, 3, 1}, {3, 2, 1, 0}, {1, 0, 2, 3}};
    for (size_t i = 0; i < SI_ARRAY_LEN(perms); i++) {
        begin(13);
        input("x", D(2, 3, 4, 5));
        ais(node("Transpose", "x", "y"), "perm", perms[i], 4);
        output("y");
        run_case("Transpose", "Transpose");
    }
    /* views between fast ops: Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout */
    begin(13);
    input("x", D(2, 16, 4, 4));
    conv_p cp = {2, 16, 4, 4, 8, 3, 1, 1, 1, 1, true, NULL};
    conv_node("x", "c", "w", 16, &cp, false);
    ai(node("Flatten", "c", "f"), "axis", 1);
    weight("fw", -0.2f, 0.2f, D(128, 10));
    node("MatMul", "f,fw", "m");
    ints("ax", D(1));
    node("Unsqueeze", "m,ax", "u");
    node("Identity", "u", "i");
    node("Dropout", "i", "dr");
    node("Squeeze", "dr,ax", "y");
    output("y");
    run_case("Conv, Flatten, MatMul, Unsqueeze/Identity/Dropout/Squeeze views", "MatMul");
}

// --- cases first written for the OCL device ----------------------------------------------------------------

// --- element-wise -------------------------------------------------------------------------------------------

static const int64_t shapes[][4] = {{7, 0, 0, 0}, {2, 3, 5, 0}, {1, 16, 9, 9}};
static const int ranks[] = {1, 3, 4};

static void unary(int opset, const char *op, const char *xname, void (*attrs)(int)) {
    for (int s = 0; s < 3; s++) {
        begin(opset);
        input(xname, shapes[s], ranks[s]);
        char ins[64];
        snprintf(ins, sizeof ins, "%s", xname);
        int n = node(op, ins, "y");
        if (attrs) attrs(n);
        output("y");
        dop_runf(NULL, "%s-%d shape %d", op, opset, s);
    }
}

static void at_leaky(int n) { af(n, "alpha", 0.3f); }
static void at_hsig(int n) { af(n, "alpha", 0.3f); af(n, "beta", 0.4f); }
static void at_elu(int n) { af(n, "alpha", 0.7f); }
static void at_selu(int n) { af(n, "alpha", 1.5f); af(n, "gamma", 1.2f); }
static void at_shrink(int n) { af(n, "lambd", 0.8f); af(n, "bias", 0.3f); }
static void at_clip6(int n) { af(n, "min", -0.5f); af(n, "max", 0.7f); }
static void at_gelu_tanh(int n) { as(n, "approximate", "tanh"); }
static void at_thr(int n) { af(n, "alpha", 0.4f); }

static void cases_unary(void) {
    static const struct { const char *op; const char *x; int opset; void (*attrs)(int); } ops[] = {
        {"Relu", "x", 14, NULL},        {"LeakyRelu", "x", 16, at_leaky}, {"LeakyRelu", "x", 16, NULL},
        {"Sigmoid", "x", 13, NULL},     {"HardSigmoid", "x", 6, at_hsig}, {"HardSwish", "x", 14, NULL},
        {"Tanh", "x", 13, NULL},        {"Exp", "x", 13, NULL},           {"Log", "pos", 13, NULL},
        {"Sqrt", "pos", 13, NULL},      {"Erf", "x", 13, NULL},           {"Neg", "x", 13, NULL},
        {"Abs", "x", 13, NULL},         {"Reciprocal", "nz", 13, NULL},   {"Floor", "x", 13, NULL},
        {"Ceil", "x", 13, NULL},        {"Round", "x", 11, NULL},         {"Sign", "x", 13, NULL},
        {"Elu", "x", 6, at_elu},        {"Selu", "x", 6, at_selu},        {"Celu", "x", 12, at_elu},
        {"Softplus", "x", 1, NULL},     {"Softsign", "x", 1, NULL},       {"Mish", "x", 18, NULL},
        {"Gelu", "x", 20, NULL},        {"Gelu", "x", 20, at_gelu_tanh},  {"ThresholdedRelu", "x", 10, at_thr},
        {"Shrink", "x", 9, at_shrink},  {"Sin", "x", 7, NULL},            {"Cos", "x", 7, NULL},
        {"Tan", "unit", 7, NULL},       {"Asin", "unit", 7, NULL},        {"Acos", "unit", 7, NULL},
        {"Atan", "x", 7, NULL},         {"Sinh", "x", 9, NULL},           {"Cosh", "x", 9, NULL},
        {"Asinh", "x", 9, NULL},        {"Acosh", "ge1", 9, NULL},        {"Atanh", "unit", 9, NULL},
        {"Clip", "x", 6, at_clip6},     {"Clip", "x", 6, NULL},           {"Identity", "x", 16, NULL},
        {"Swish", "x", 24, at_thr},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(ops); i++) unary(ops[i].opset, ops[i].op, ops[i].x, ops[i].attrs);
    /* Clip-13: constant bounds, one bound, bounds computed at run time */
    begin(13);
    input("x", D(3, 4));
    fconst("lo", -0.3f);
    fconst("hi", 0.6f);
    node("Clip", "x,lo,hi", "y");
    output("y");
    dop_runf(NULL, "Clip-13 constant bounds");
    begin(13);
    input("x", D(3, 4));
    fconst("hi", 0.6f);
    node("Clip", "x,,hi", "y");
    output("y");
    dop_runf(NULL, "Clip-13 max only");
    begin(13);
    input("x", D(3, 4));
    input0("lo");
    input0("hi");
    node("Abs", "hi", "hi2");
    node("Clip", "x,lo,hi2", "y");
    output("y");
    dop_runf(NULL, "Clip-13 bounds from inputs");
    /* Dropout and Cast are views in inference */
    begin(13);
    input("x", D(2, 5));
    node("Dropout", "x", "d");
    node("Cast", "d", "c");
    ai(G->n_nodes - 1, "to", SI_F32);
    node("Relu", "c", "y");
    output("y");
    output("d");
    dop_runf(NULL, "Dropout, Cast to float");
}

static void cases_binary(void) {
    static const char *ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"};
    static const struct { int na, nb; int64_t a[4], b[4]; } pairs[] = {
        {3, 3, {2, 3, 4}, {2, 3, 4}}, {3, 1, {2, 3, 4}, {4}},       {3, 2, {2, 1, 4}, {3, 1}},
        {1, 2, {1}, {5, 2}},          {3, 3, {3, 1, 5}, {1, 4, 1}}, {2, 0, {4, 6}, {0}},
        {0, 3, {0}, {2, 1, 3}},       {4, 4, {2, 3, 1, 1}, {1, 3, 5, 7}},
    };
    for (size_t o = 0; o < SI_ARRAY_LEN(ops); o++)
        for (size_t p = 0; p < SI_ARRAY_LEN(pairs); p++) {
            begin(14);
            bool pw = !strcmp(ops[o], "Pow"), dv = !strcmp(ops[o], "Div");
            input(pw ? "pos_a" : "a", pairs[p].a, pairs[p].na);
            input(dv ? "nz_b" : "b", pairs[p].b, pairs[p].nb);
            node(ops[o], pw ? "pos_a,b" : dv ? "a,nz_b" : "a,b", "y");
            output("y");
            dop_runf(NULL, "%s broadcast pair %zu", ops[o], p);
        }
    /* a constant operand */
    begin(14);
    input("a", D(2, 8));
    weight("w", -1, 1, D(8));
    node("Mul", "a,w", "y");
    output("y");
    dop_runf(NULL, "Mul by a constant");
    /* PRelu: slope broadcast, and per channel before opset 7 */
    static const struct { int opset, ns; int64_t s[3]; } prelu[] = {{16, 3, {3, 1, 1}}, {16, 1, {5}}, {16, 1, {1}}, {6, 1, {3}}};
    for (size_t i = 0; i < SI_ARRAY_LEN(prelu); i++) {
        begin(prelu[i].opset);
        input("x", D(2, 3, 4, 5));
        input("s", prelu[i].s, prelu[i].ns);
        node("PRelu", "x,s", "y");
        output("y");
        dop_runf(NULL, "PRelu-%d slope %zu", prelu[i].opset, i);
    }
    /* variadic: one input, three broadcasting inputs */
    static const char *vops[] = {"Sum", "Mean", "Max", "Min"};
    for (size_t o = 0; o < SI_ARRAY_LEN(vops); o++) {
        begin(13);
        input("a", D(2, 3));
        node(vops[o], "a", "y");
        output("y");
        dop_runf(NULL, "%s of one input", vops[o]);
        begin(13);
        input("a", D(3));
        input("b", D(2, 1));
        input("c", D(4, 2, 3));
        node(vops[o], "a,b,c", "y");
        output("y");
        dop_runf(NULL, "%s of three inputs", vops[o]);
    }
}

// --- matrix products ----------------------------------------------------------------------------------------

/* The GEMM kernels of the OCL device: its default, the local-memory tiles, the vector kernels. */
static const dop_opts *gemm_opts(int variant) {
    static const dop_opts o[3] = {{0}, {.opt_key = "ocl.gemm", .opt_value = "tiled"}, {.opt_key = "ocl.gemm", .opt_value = "vector"}};
    return &o[variant];
}
static const char *const gemm_names[3] = {"default kernel", "tiled kernel", "vector kernels"};

static void cases_matmul(void) {
    static const struct { int na, nb; int64_t a[4], b[4]; } cases[] = {
        {2, 2, {2, 3}, {3, 4}},        {1, 2, {5}, {5, 3}},          {3, 1, {2, 3, 4}, {4}},
        {4, 3, {2, 1, 3, 4}, {3, 4, 5}}, {3, 2, {1, 7, 33}, {33, 17}}, {1, 1, {4}, {4}},
        {2, 2, {40, 70}, {70, 21}},    {3, 3, {4, 1, 16}, {4, 16, 16}},
    };
    char label[96];
    for (int v = 0; v < 3; v++)
        for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
            matmul_graph(cases[i].a, cases[i].na, cases[i].b, cases[i].nb);
            snprintf(label, sizeof label, "MatMul case %zu (%s)", i, gemm_names[v]);
            dop_run(label, gemm_opts(v));
        }
    begin(13); /* constant weights */
    input("a", D(3, 10));
    weight("w", -1, 1, D(10, 6));
    node("MatMul", "a,w", "y");
    output("y");
    dop_runf(NULL, "MatMul constant B");

    static const struct { int ta, tb, cnd; int64_t c[2]; float alpha, beta; } g[] = {
        {0, 0, 1, {6}, 1, 1},     {1, 0, 2, {5, 1}, 0.5f, 2}, {0, 1, 2, {5, 6}, 1, 0.3f}, {1, 1, 0, {0}, 2, 1},
        {0, 0, -1, {0}, 1, 1},    {1, 1, 2, {1, 6}, 1, 1},
    };
    for (int v = 0; v < 3; v++)
    for (size_t i = 0; i < SI_ARRAY_LEN(g); i++) {
        begin(13);
        input("a", g[i].ta ? (const int64_t[]){7, 5} : (const int64_t[]){5, 7}, 2);
        input("b", g[i].tb ? (const int64_t[]){6, 7} : (const int64_t[]){7, 6}, 2);
        if (g[i].cnd >= 0) input("c", g[i].c, g[i].cnd);
        int n = node("Gemm", g[i].cnd >= 0 ? "a,b,c" : "a,b", "y");
        ai(n, "transA", g[i].ta);
        ai(n, "transB", g[i].tb);
        af(n, "alpha", g[i].alpha);
        af(n, "beta", g[i].beta);
        output("y");
        snprintf(label, sizeof label, "Gemm case %zu (%s)", i, gemm_names[v]);
        dop_run(label, gemm_opts(v));
    }
}

// --- convolution and pooling --------------------------------------------------------------------------------

typedef struct conv_case {
    int nd;                 /* spatial dims */
    int64_t n, c, oc, group;
    int64_t in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;
    bool bias, w_input;
} conv_case;

static void conv(const conv_case *cc, const char *label, const dop_opts *opts) {
    begin(11);
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->oc, cc->c / cc->group};
    for (int i = 0; i < cc->nd; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    input("x", xd, 2 + cc->nd);
    if (cc->w_input) input("w", wd, 2 + cc->nd);
    else weight("w", -0.5f, 0.5f, wd, 2 + cc->nd);
    if (cc->bias) weight("b", -1, 1, &cc->oc, 1);
    int n = node("Conv", cc->bias ? "x,w,b" : "x,w", "y");
    ai(n, "group", cc->group);
    if (cc->s[0]) ais(n, "strides", cc->s, cc->nd);
    if (cc->d[0]) ais(n, "dilations", cc->d, cc->nd);
    if (cc->auto_pad) as(n, "auto_pad", cc->auto_pad);
    else ais(n, "pads", cc->pads, 2 * cc->nd);
    ais(n, "kernel_shape", cc->k, cc->nd);
    output("y");
    dop_run(label, opts);
}

static void cases_conv(void) {
    static const conv_case cases[] = {
        {2, 1, 3, 8, 1, {9, 9}, {3, 3}, {1, 1}, {0}, {1, 1, 1, 1}, NULL, true, false},
        {2, 2, 4, 6, 1, {10, 7}, {3, 2}, {2, 1}, {0}, {0, 1, 2, 0}, NULL, false, false},
        {2, 1, 4, 4, 1, {9, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 2, 2, 2}, NULL, true, false},
        {2, 2, 4, 6, 2, {6, 6}, {3, 3}, {1, 1}, {0}, {1, 1, 1, 1}, NULL, true, false},
        {2, 1, 8, 8, 8, {7, 7}, {3, 3}, {2, 2}, {0}, {1, 1, 1, 1}, NULL, true, false},   /* depthwise */
        {2, 2, 16, 8, 1, {5, 5}, {1, 1}, {1, 1}, {0}, {0, 0, 0, 0}, NULL, true, false},  /* 1x1 */
        {2, 1, 6, 4, 2, {5, 5}, {1, 1}, {2, 2}, {0}, {0, 0, 0, 0}, NULL, false, false}, /* 1x1 stride 2, grouped */
        {1, 2, 3, 5, 1, {17}, {4}, {2}, {0}, {1, 2}, NULL, true, false},                 /* 1-D */
        {3, 1, 2, 3, 1, {5, 6, 4}, {2, 3, 2}, {1, 2, 1}, {0}, {0, 1, 0, 1, 0, 1}, NULL, true, false},
        {2, 1, 3, 4, 1, {8, 7}, {3, 3}, {2, 2}, {0}, {0}, "SAME_UPPER", true, false},
        {2, 1, 3, 4, 1, {8, 7}, {4, 2}, {3, 2}, {0}, {0}, "SAME_LOWER", false, false},
        {2, 1, 3, 4, 1, {8, 7}, {3, 3}, {2, 2}, {0}, {0}, "VALID", true, false},
        {2, 2, 3, 5, 1, {6, 6}, {3, 3}, {1, 1}, {0}, {1, 0, 1, 0}, NULL, true, true},     /* W is an input */
        {2, 1, 32, 33, 1, {12, 12}, {3, 3}, {1, 1}, {0}, {1, 1, 1, 1}, NULL, true, false}, /* K > tile */
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        char label[96];
        snprintf(label, sizeof label, "Conv case %zu (im2col + GEMM)", i);
        conv(&cases[i], label, NULL);
        snprintf(label, sizeof label, "Conv case %zu (direct)", i);
        conv(&cases[i], label, &(dop_opts){.opt_key = "ocl.im2col_max_bytes", .opt_value = "0"});
        snprintf(label, sizeof label, "Conv case %zu (im2col + tiled GEMM)", i);
        conv(&cases[i], label, gemm_opts(1));
    }
}

static void cases_conv_transpose(void) {
    static const struct {
        int nd;
        int64_t c, oc, group, in[3], k[3], s[3], d[3], pads[6], opad[3], oshape[3];
        const char *auto_pad;
        bool bias;
    } cases[] = {
        {2, 3, 4, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {0}, {0}, {0}, NULL, true},
        {2, 4, 6, 2, {4, 5}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 1, 1}, {1, 0}, {0}, NULL, false},
        {2, 2, 2, 1, {4, 4}, {3, 3}, {2, 2}, {2, 1}, {0}, {0}, {0}, NULL, true},
        {1, 3, 2, 1, {7}, {4}, {3}, {1}, {1, 2}, {0}, {0}, NULL, true},
        {2, 2, 3, 1, {3, 4}, {3, 3}, {2, 2}, {1, 1}, {0}, {0}, {8, 9}, NULL, true},
        {2, 2, 3, 1, {3, 4}, {3, 3}, {2, 2}, {1, 1}, {0}, {0}, {0}, "SAME_UPPER", false},
        {2, 2, 3, 1, {3, 4}, {2, 3}, {2, 2}, {1, 1}, {0}, {0}, {0}, "SAME_LOWER", false},
        {3, 2, 2, 1, {2, 3, 3}, {2, 2, 2}, {2, 1, 2}, {1, 1, 1}, {0}, {0}, {0}, NULL, true},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(11);
        int nd = cases[i].nd;
        int64_t xd[5] = {2, cases[i].c}, wd[5] = {cases[i].c, cases[i].oc / cases[i].group};
        for (int k = 0; k < nd; k++) {
            xd[2 + k] = cases[i].in[k];
            wd[2 + k] = cases[i].k[k];
        }
        input("x", xd, 2 + nd);
        weight("w", -0.5f, 0.5f, wd, 2 + nd);
        if (cases[i].bias) weight("b", -1, 1, &cases[i].oc, 1);
        int n = node("ConvTranspose", cases[i].bias ? "x,w,b" : "x,w", "y");
        ai(n, "group", cases[i].group);
        ais(n, "strides", cases[i].s, nd);
        ais(n, "dilations", cases[i].d, nd);
        if (cases[i].pads[0] || cases[i].pads[1]) ais(n, "pads", cases[i].pads, 2 * nd);
        if (cases[i].opad[0]) ais(n, "output_padding", cases[i].opad, nd);
        if (cases[i].oshape[0]) ais(n, "output_shape", cases[i].oshape, nd);
        if (cases[i].auto_pad) as(n, "auto_pad", cases[i].auto_pad);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = "ConvTranspose", .cpu_no_ref = true}, "ConvTranspose case %zu", i);
    }
}

/* Gather with constant indices (checked at compile time; indices from a model input: test_device_ops.c). */
static void cases_gather(void) {
    static const struct { int nd; int64_t d[3]; int axis, ni; int64_t idx[4]; } cases[] = {
        {2, {10, 6}, 0, 3, {0, 9, -1}}, {3, {2, 5, 4}, 1, 4, {4, 0, -5, 2}}, {3, {2, 3, 4}, -1, 1, {3}}, {1, {7}, 0, 2, {6, -7}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(13);
        input("x", cases[i].d, cases[i].nd);
        ints("idx", cases[i].idx, cases[i].ni);
        int n = node("Gather", "x,idx", "y");
        ai(n, "axis", cases[i].axis);
        output("y");
        dop_runf(NULL, "Gather case %zu", i);
    }
}

/* Float16 (or bfloat16) weights in -0.5..0.5 (rounded) as an initializer. */
static void weight_half(const char *name, const int64_t *dims, int nd, si_dtype dt) {
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t || si_tensor_init(t, dt, nd, dims) || si_tensor_alloc(t)) die("weight16");
    uint16_t *h = t->data;
    for (int64_t i = 0; i < si_shape_count(nd, dims); i++) {
        const float v = -0.5f + (float)((i * 7919) % 1000) / 1000.0f;
        h[i] = dt == SI_BF16 ? si_f32_to_bf16(v) : si_f32_to_f16(v);
    }
    set_const(name, t);
}

/* Float16 models (cpu_fp16.c): float16 inputs, weights and activations, Conv + Relu, MaxPool (ceil), a
 * linear Resize in float32 between two Casts (as float16 converters leave it), residual Add, ConvTranspose,
 * Sigmoid; float16 outputs. On CPU they run on the fast kernels (no reference step). */
static void half_models(si_dtype H) {
    /* the last two: tensors of more than 65536 elements, whose conversions are split over the threads (the last on
     * 2 threads, CPU only) */
    static const int64_t sizes[][3] = {{9, 11, 1}, {16, 16, 1}, {7, 5, 1}, {64, 130, 1}, {64, 130, 2}};
    for (size_t i = 0; i < SI_ARRAY_LEN(sizes); i++) {
        int64_t h = sizes[i][0], w = sizes[i][1];
        const bool two = sizes[i][2] == 2;
        begin(11);
        input_typed("x", H, D(1, 3, h, w));
        weight_half("w1", D(8, 3, 3, 3), H);
        weight_half("b1", D(8), H);
        weight_half("w2", D(8, 8, 3, 3), H);
        weight_half("wt", D(8, 4, 2, 2), H);
        int n = node("Conv", "x,w1,b1", "c1");
        ais(n, "pads", D(1, 1, 1, 1));
        node("Relu", "c1", "r1");
        n = node("MaxPool", "r1", "p1");
        ais(n, "kernel_shape", D(2, 2));
        ais(n, "strides", D(2, 2));
        ai(n, "ceil_mode", 1);
        n = node("Conv", "p1,w2", "c2");
        ais(n, "pads", D(2, 2, 2, 2));
        ais(n, "dilations", D(2, 2));
        node("Relu", "c2", "r2");
        n = node("Cast", "r2", "f");
        ai(n, "to", SI_F32);
        ints("sizes", (const int64_t[]){1, 8, h, w}, 4);
        n = node("Resize", "f,,,sizes", "rs");
        as(n, "mode", "linear");
        as(n, "coordinate_transformation_mode", "align_corners");
        n = node("Cast", "rs", "h16");
        ai(n, "to", H);
        node("Add", "h16,r1", "y1");
        n = node("ConvTranspose", "y1,wt", "t");
        ais(n, "strides", D(2, 2));
        node("Sigmoid", "t", "y2");
        output("y1");
        output("y2");
        const bool bf = H == SI_BF16;
        dop_runf(&(dop_opts){.cpu_plan = bf ? "Cast(round to bfloat16)" : "Cast(round to float16)", .cpu_no_ref = true, .may_refuse = "OCL",
                             .opt_key = two ? "threads" : NULL, .opt_value = two ? "2" : NULL, .opt_device = two ? "CPU" : NULL},
                 "%s model %lldx%lld%s", bf ? "bfloat16" : "float16", (long long)h, (long long)w, two ? " on 2 threads" : "");
    }
}

static void cases_float16(void) { half_models(SI_F16); }

/* The same models in bfloat16 (cpu_fp16.c: the same rewrite, other conversions). */
static void cases_bfloat16(void) { half_models(SI_BF16); }

/* Softmax / LogSoftmax over a middle axis (YOLO's DFL: 16 bins of [1, 4, 16, N]), where oneDNN has only its
 * reference implementation and the CPU device runs its own kernel (cpu_softmax.c); and over the innermost axis,
 * which the own AVX-512 kernel takes: rows of whole vectors, of a partial one only, of both, of one element, and
 * enough rows to be split over threads. */
static void cases_softmax_axis(void) {
    static const struct { const char *op; int opset; int64_t axis; int64_t d[4]; } cases[] = {
        {"Softmax", 13, 2, {1, 4, 16, 37}}, {"Softmax", 13, 1, {2, 5, 3, 7}}, {"LogSoftmax", 13, -3, {1, 6, 9, 5}},
        {"Softmax", 13, 0, {7, 3, 2, 5}},
        {"Softmax", 13, -1, {1, 8, 1, 131}}, {"LogSoftmax", 13, 3, {2, 3, 4, 16}}, {"Softmax", 13, -1, {3, 1, 1, 1}},
        {"LogSoftmax", 13, -1, {1, 2, 3, 9}}, {"Softmax", 13, -1, {1, 4, 96, 300}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        begin(cases[i].opset);
        input("x", cases[i].d, 4);
        int n = node(cases[i].op, "x", "y");
        ai(n, "axis", cases[i].axis);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = cases[i].op, .cpu_no_ref = true}, "%s axis %lld", cases[i].op, (long long)cases[i].axis);
    }
    /* a middle axis over more columns than one chunk of the kernel (1024), with a partial last chunk, on 2 threads */
    static const struct { const char *op; int64_t axis; int64_t d[4]; } wide[] = {{"Softmax", 2, {1, 4, 16, 2500}}, {"LogSoftmax", 1, {2, 3, 5, 1100}}};
    for (size_t i = 0; i < SI_ARRAY_LEN(wide); i++) {
        begin(13);
        input("x", wide[i].d, 4);
        int n = node(wide[i].op, "x", "y");
        ai(n, "axis", wide[i].axis);
        output("y");
        dop_runf(&(dop_opts){.cpu_plan = wide[i].op, .cpu_no_ref = true, .cpu_kernel = "own:softmax_axis", .opt_key = "threads", .opt_value = "2",
                             .opt_device = "CPU"},
                 "%s axis %lld over %lld columns on 2 threads", wide[i].op, (long long)wide[i].axis, (long long)(wide[i].d[3] * (wide[i].axis == 1 ? wide[i].d[2] : 1)));
    }
}

static void pool(int opset, const char *op, int nd, const int64_t *in, const int64_t *k, const int64_t *s, const int64_t *pads,
                 const int64_t *dil, int ceil, int cip, const char *auto_pad, const char *label) {
    begin(opset);
    int64_t xd[5] = {2, 3};
    for (int i = 0; i < nd; i++) xd[2 + i] = in[i];
    input("x", xd, 2 + nd);
    int n = node(op, "x", "y");
    ais(n, "kernel_shape", k, nd);
    if (s) ais(n, "strides", s, nd);
    if (pads) ais(n, "pads", pads, 2 * nd);
    if (dil) ais(n, "dilations", dil, nd);
    if (ceil) ai(n, "ceil_mode", 1);
    if (cip) ai(n, "count_include_pad", 1);
    if (auto_pad) as(n, "auto_pad", auto_pad);
    output("y");
    dop_runf(NULL, "%s-%d %s", op, opset, label);
}

static void cases_pool(void) {
    static const char *ops[] = {"MaxPool", "AveragePool"};
    for (int o = 0; o < 2; o++) {
        const char *op = ops[o];
        int opset = o ? 19 : 12;
        pool(opset, op, 2, (const int64_t[]){9, 9}, (const int64_t[]){3, 3}, (const int64_t[]){2, 2},
             (const int64_t[]){1, 1, 1, 1}, NULL, 0, 0, NULL, "3x3 s2 p1");
        pool(opset, op, 2, (const int64_t[]){8, 7}, (const int64_t[]){3, 2}, (const int64_t[]){2, 2}, (const int64_t[]){0, 1, 1, 0}, NULL, 1, 0,
             NULL, "ceil_mode");
        pool(opset, op, 2, (const int64_t[]){7, 7}, (const int64_t[]){3, 3}, (const int64_t[]){2, 2}, (const int64_t[]){1, 1, 1, 1}, NULL, 1, 1,
             NULL, "ceil_mode, count_include_pad");
        pool(opset, op, 2, (const int64_t[]){9, 8}, (const int64_t[]){2, 2}, NULL, (const int64_t[]){1, 0, 1, 1}, (const int64_t[]){2, 2}, 0, 1,
             NULL, "dilations, count_include_pad");
        pool(opset, op, 1, (const int64_t[]){11}, (const int64_t[]){3}, (const int64_t[]){2}, NULL, NULL, 0, 0, NULL, "1-D");
        pool(opset, op, 3, (const int64_t[]){4, 5, 6}, (const int64_t[]){2, 2, 3}, (const int64_t[]){1, 2, 2}, (const int64_t[]){0, 1, 1, 1, 0, 1},
             NULL, 0, 0, NULL, "3-D");
        pool(opset, op, 2, (const int64_t[]){7, 8}, (const int64_t[]){3, 3}, (const int64_t[]){2, 2}, NULL, NULL, 0, 0, "SAME_UPPER", "SAME_UPPER");
        pool(opset, op, 2, (const int64_t[]){7, 8}, (const int64_t[]){2, 3}, (const int64_t[]){2, 2}, NULL, NULL, 0, 0, "SAME_LOWER", "SAME_LOWER");
    }
    static const char *gops[] = {"GlobalAveragePool", "GlobalMaxPool"};
    for (int o = 0; o < 2; o++)
        for (int s = 0; s < 2; s++) {
            begin(13);
            input("x", s ? (const int64_t[]){2, 5, 7, 3} : (const int64_t[]){3, 4, 11}, s ? 4 : 3);
            node(gops[o], "x", "y");
            output("y");
            dop_runf(NULL, "%s shape %d", gops[o], s);
        }
}

// --- reductions and normalization ---------------------------------------------------------------------------

static void cases_reduce(void) {
    static const char *ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
                                "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"};
    static const struct { int na; int64_t axes[3]; int keep; } cases[] = {
        {1, {1}, 1}, {2, {0, 2}, 0}, {1, {-1}, 0}, {-1, {0}, 1}, {3, {0, 1, 2}, 0},
    };
    for (size_t o = 0; o < SI_ARRAY_LEN(ops); o++)
        for (size_t c = 0; c < SI_ARRAY_LEN(cases); c++)
            for (int opset = 13; opset <= 18; opset += 5) {
                bool as_input = opset >= 18 || (!strcmp(ops[o], "ReduceSum") && opset >= 13);
                begin(opset);
                bool logsum = !strcmp(ops[o], "ReduceLogSum") || !strcmp(ops[o], "ReduceProd");
                input(logsum ? "pos" : "x", D(3, 4, 5));
                int n;
                if (cases[c].na >= 0 && as_input) {
                    ints("axes", cases[c].axes, cases[c].na);
                    n = node(ops[o], logsum ? "pos,axes" : "x,axes", "y");
                } else {
                    n = node(ops[o], logsum ? "pos" : "x", "y");
                    if (cases[c].na >= 0) ais(n, "axes", cases[c].axes, cases[c].na);
                }
                ai(n, "keepdims", cases[c].keep);
                output("y");
                dop_runf(NULL, "%s-%d case %zu", ops[o], opset, c);
            }
}

static void cases_softmax(void) {
    static const char *ops[] = {"Softmax", "LogSoftmax"};
    for (int o = 0; o < 2; o++)
        for (int opset = 11; opset <= 13; opset += 2)
            for (int axis = -1; axis <= 2; axis++) {
                begin(opset);
                input("x", D(2, 3, 17));
                int n = node(ops[o], "x", "y");
                ai(n, "axis", axis);
                output("y");
                dop_runf(NULL, "%s-%d axis %d", ops[o], opset, axis);
            }
    begin(13); /* default axis, large values */
    input("x", D(4, 100));
    node("Mul", "x,k", "xk");
    fconst("k", 40.0f);
    node("Softmax", "xk", "y");
    output("y");
    dop_runf(NULL, "Softmax large values");
}

static void cases_norm(void) {
    for (int s = 0; s < 2; s++) {
        begin(15);
        input("x", (const int64_t[]){2, 3, 4, 5}, s ? 2 : 4);
        input("scale", D(3));
        input("b", D(3));
        input("mean", D(3));
        input("pos_var", D(3));
        int n = node("BatchNormalization", "x,scale,b,mean,pos_var", "y");
        af(n, "epsilon", 1e-3f);
        output("y");
        dop_runf(NULL, "BatchNormalization shape %d", s);
    }
    begin(9); /* constant parameters, the usual case */
    input("x", D(1, 4, 3, 3));
    weight("scale", 0.5f, 1.5f, D(4));
    weight("b", -1, 1, D(4));
    weight("mean", -1, 1, D(4));
    weight("var", 0.2f, 2, D(4));
    node("BatchNormalization", "x,scale,b,mean,var", "y");
    output("y");
    dop_runf(NULL, "BatchNormalization-9 constant parameters");

    static const struct { int axis; bool bias, stats; int ns; int64_t sd[2]; } ln[] = {
        {-1, true, false, 1, {40}}, {1, true, true, 2, {3, 40}}, {2, false, false, 1, {40}}, {-1, false, true, 1, {40}},
        {1, true, false, 1, {40}}, {0, true, true, 2, {3, 40}},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(ln); i++) {
        begin(17);
        input("x", D(2, 3, 40));
        if (ln[i].axis == 0) {
            G->values[G->inputs[0]].dims[0] = 1; /* scale of the whole tensor */
        }
        input("scale", ln[i].sd, ln[i].ns);
        if (ln[i].bias) input("b", ln[i].sd, ln[i].ns);
        int n = node("LayerNormalization", ln[i].bias ? "x,scale,b" : "x,scale", ln[i].stats ? "y,mean,inv" : "y");
        ai(n, "axis", ln[i].axis);
        af(n, "epsilon", 1e-4f);
        output("y");
        if (ln[i].stats) {
            output("mean");
            output("inv");
        }
        dop_runf(NULL, "LayerNormalization case %zu", i);
    }
    begin(23);
    input("x", D(2, 3, 70));
    input("scale", D(70));
    node("RMSNormalization", "x,scale", "y");
    output("y");
    dop_runf(NULL, "RMSNormalization");
    begin(6);
    input("x", D(2, 3, 5, 4));
    input("scale", D(3));
    input("b", D(3));
    node("InstanceNormalization", "x,scale,b", "y");
    output("y");
    dop_runf(NULL, "InstanceNormalization");
    for (int opset = 18; opset <= 21; opset += 3) {
        begin(opset);
        input("x", D(2, 6, 5, 4));
        input("scale", (const int64_t[]){opset < 21 ? 3 : 6}, 1);
        input("b", (const int64_t[]){opset < 21 ? 3 : 6}, 1);
        int n = node("GroupNormalization", "x,scale,b", "y");
        ai(n, "num_groups", 3);
        output("y");
        dop_runf(NULL, "GroupNormalization-%d", opset);
    }
}

// --- layout -------------------------------------------------------------------------------------------------

static void cases_net(void) {
    dop_small_net(2);
    dop_runf(NULL, "small CNN (batch 2)");
}

// --- the table --------------------------------------------------------------------------------------------------

void dop_cases_dynamic_quantize(void), dop_cases_conv_integer(void), dop_cases_matmul_integer(void), dop_cases_qlinear_conv(void), dop_cases_qlinear_matmul(void), dop_cases_qlinear_ms(void), dop_cases_qdq_conv(void), dop_cases_int8_w7(void), dop_cases_rnn(void);

const dop_group dop_groups[] = {
    {"unary", cases_unary},
    {"binary", cases_binary},
    {"eltwise_fused", cases_eltwise_fused},
    {"matmul", cases_matmul},
    {"matmul_fused", cases_matmul_fused},
    {"conv", cases_conv},
    {"conv_2d", cases_conv_2d},
    {"conv_chains", cases_conv_chains},
    {"conv_dw1d", dop_cases_conv_dw1d},
    {"bn1d", dop_cases_bn1d},
    {"groupnorm", dop_cases_groupnorm},
    {"conv_temb", dop_cases_conv_temb},
    {"conv_transpose", cases_conv_transpose},
    {"conv_transpose_fused", cases_conv_transpose_fused},
    {"conv_transpose_upsample", cases_conv_transpose_upsample},
    {"pool", cases_pool},
    {"pool_2d", cases_pool_2d},
    {"gather", cases_gather},
    {"resize", dop_cases_resize},
    {"resize_layouts", dop_cases_resize_layouts},
    {"float16", cases_float16},
    {"bfloat16", cases_bfloat16},
    {"einsum", dop_cases_einsum},
    {"softmax_axis", cases_softmax_axis},
    {"reduce", cases_reduce},
    {"softmax", cases_softmax},
    {"norm", cases_norm},
    {"layout", dop_cases_layout},
    {"data_fused", cases_data_fused},
    {"net", cases_net},
    {"llm_nbits", dop_cases_llm_nbits},
    {"llm_gqa", dop_cases_llm_gqa},
    {"llm_mha", dop_cases_llm_mha},
    {"llm_norm", dop_cases_llm_norm},
    {"dynamic_quantize", dop_cases_dynamic_quantize},
    {"conv_integer", dop_cases_conv_integer},
    {"matmul_integer", dop_cases_matmul_integer},
    {"qlinear_conv", dop_cases_qlinear_conv},
    {"qlinear_matmul", dop_cases_qlinear_matmul},
    {"qlinear_ms", dop_cases_qlinear_ms},
    {"qdq_conv", dop_cases_qdq_conv},
    {"int8_w7", dop_cases_int8_w7},
    {"rnn", dop_cases_rnn},
    {"qdq", dop_cases_qdq},
    {"depth_to_space", dop_cases_depth_to_space},
    {"pad", dop_cases_pad},
};
const int dop_n_groups = (int)(sizeof dop_groups / sizeof dop_groups[0]);
