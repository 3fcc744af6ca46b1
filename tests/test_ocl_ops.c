/*
 * test_ocl_ops.c — the OCL device against REF, op by op (like ggml's test-backend-ops): for every op the OCL
 * device supports, small graphs over several shapes and attribute combinations are compiled on both devices,
 * run on the same random inputs and compared (|ocl - ref| <= 1e-3 |ref| + atol). Also: refusals name the
 * reason, a kernel build error is a compile failure, requests are independent across threads, and the
 * embedded kernel source matches src/device/ocl/kernels.cl.
 *
 * Exits 77 (ctest: skipped) with a message when no OpenCL device is available or OCL is not built in.
 */
#include "device/device.h"
#include "ir/ir.h"
#include "ops/ops.h"

#include "si_test.h"

#include <float.h>
#include <pthread.h>
#include <stdarg.h>

/* The embedded kernel source (src/device/ocl/ocl_kernels.c); weak so that the test links without OCL. */
extern const char *const si_ocl_kernel_lines[] __attribute__((weak));
extern const int si_ocl_kernel_n_lines __attribute__((weak));

static si_device *ocl, *ref;
static int n_cases, n_values;

// --- random numbers ---------------------------------------------------------------------------------------

static uint32_t rng_state = 12345;
static float frand(float lo, float hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return lo + (hi - lo) * (float)(rng_state >> 8) / (float)(1u << 24);
}

// --- graph building -----------------------------------------------------------------------------------------

static si_graph *G;

#define D(...) (const int64_t[]){__VA_ARGS__}, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

static void die(const char *what) {
    fprintf(stderr, "test setup failed: %s (%s)\n", what, si_last_error());
    exit(2);
}

static void begin(int opset) {
    G = si_graph_new();
    if (!G || !(G->opsets = si_calloc(1, sizeof(si_opset))) || !(G->opsets[0].domain = si_strdup(""))) die("graph");
    G->opsets[0].version = opset;
    G->n_opsets = 1;
}

static int val(const char *name) {
    int v = si_graph_value(G, name);
    if (v < 0) die("value");
    return v;
}

static void push(int **list, int *n, int v) {
    *list = si_realloc(*list, sizeof(int) * (size_t)(*n + 1));
    if (!*list) die("list");
    (*list)[(*n)++] = v;
}

/* A float32 graph input. Its random values depend on the name's prefix: "pos" (0.1..3), "unit" (-0.9..0.9),
 * "ge1" (1.1..3), "nz" (+-0.5..2, no zeros), else -2..2. */
static void input(const char *name, const int64_t *dims, int nd) {
    int v = val(name);
    si_val *x = &G->values[v];
    x->dtype = SI_F32;
    x->ndim = nd;
    if (nd) memcpy(x->dims, dims, sizeof(int64_t) * (size_t)nd);
    x->is_input = true;
    push(&G->inputs, &G->n_inputs, v);
}

static void input0(const char *name) { input(name, NULL, 0); } /* a scalar */

static void output(const char *name) {
    int v = val(name);
    G->values[v].is_output = true;
    push(&G->outputs, &G->n_outputs, v);
}

static void set_const(const char *name, si_tensor *t) {
    int v = val(name);
    si_val *x = &G->values[v];
    x->const_val = t;
    x->is_initializer = true;
    x->dtype = t->dtype;
    x->ndim = t->ndim;
    memcpy(x->dims, t->dims, sizeof x->dims);
}

/* A float32 initializer with random values in lo..hi. */
static void weight(const char *name, float lo, float hi, const int64_t *dims, int nd) {
    si_tensor *t;
    if (si_tensor_create(SI_F32, nd, dims, &t)) die("tensor");
    float *p = t->data;
    for (int64_t i = 0; i < si_tensor_count(t); i++) p[i] = frand(lo, hi);
    set_const(name, t);
}

/* An int64 1-D initializer. */
static void ints(const char *name, const int64_t *vals, int n) {
    si_tensor *t;
    int64_t d = n;
    if (si_tensor_create(SI_I64, 1, &d, &t)) die("tensor");
    if (n) memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    set_const(name, t);
}

static void floats(const char *name, const float *vals, int n) { /* a float32 1-D initializer */
    si_tensor *t;
    int64_t d = n;
    if (si_tensor_create(SI_F32, 1, &d, &t)) die("tensor");
    if (n) memcpy(t->data, vals, sizeof(float) * (size_t)n);
    set_const(name, t);
}

static void fconst(const char *name, float v) { /* a float32 scalar initializer */
    si_tensor *t;
    if (si_tensor_create(SI_F32, 0, NULL, &t)) die("tensor");
    *(float *)t->data = v;
    set_const(name, t);
}

/* Split "a,b,,c" into value ids (-1 for an empty name). */
static int names(const char *list, int *ids) {
    int n = 0;
    if (!list || !*list) return 0;
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char nm[64];
        snprintf(nm, sizeof nm, "%.*s", (int)l, p);
        ids[n++] = l ? val(nm) : -1;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

/* Add a node; returns its index for the attribute setters below. */
static int node(const char *op, const char *ins, const char *outs) {
    int iv[64], ov[64];
    si_node n;
    memset(&n, 0, sizeof n);
    n.n_in = names(ins, iv);
    n.n_out = names(outs, ov);
    char nm[64];
    snprintf(nm, sizeof nm, "%s_%d", op, G->n_nodes);
    n.name = si_strdup(nm);
    n.op_type = si_strdup(op);
    n.domain = si_strdup("");
    n.in = si_malloc(sizeof(int) * (size_t)(n.n_in + 1));
    n.out = si_malloc(sizeof(int) * (size_t)(n.n_out + 1));
    if (!n.name || !n.op_type || !n.domain || !n.in || !n.out) die("node");
    memcpy(n.in, iv, sizeof(int) * (size_t)n.n_in);
    memcpy(n.out, ov, sizeof(int) * (size_t)n.n_out);
    int idx = si_graph_add_node(G, &n);
    if (idx < 0) die("add node");
    return idx;
}

static si_attr *attr(int ni, const char *name, si_attr_type type) {
    si_node *n = &G->nodes[ni];
    si_attr *a = si_realloc(n->attrs, sizeof(si_attr) * (size_t)(n->n_attr + 1));
    if (!a) die("attr");
    n->attrs = a;
    a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    if (!(a->name = si_strdup(name))) die("attr");
    a->type = type;
    return a;
}
static void ai(int ni, const char *name, int64_t v) { attr(ni, name, SI_ATTR_INT)->i = v; }
static void af(int ni, const char *name, float v) { attr(ni, name, SI_ATTR_FLOAT)->f = v; }
static void as(int ni, const char *name, const char *v) {
    si_attr *a = attr(ni, name, SI_ATTR_STRING);
    if (!(a->s = si_strdup(v))) die("attr");
}
static void ais(int ni, const char *name, const int64_t *v, int n) {
    si_attr *a = attr(ni, name, SI_ATTR_INTS);
    a->n = n;
    if (!(a->ints = si_malloc(sizeof(int64_t) * (size_t)(n + 1)))) die("attr");
    if (n) memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
}

// --- running and comparing ---------------------------------------------------------------------------------

static void fill_input(si_tensor *t, const char *name) {
    float lo = -2, hi = 2;
    bool nz = false;
    if (!strncmp(name, "pos", 3)) lo = 0.1f, hi = 3;
    else if (!strncmp(name, "unit", 4)) lo = -0.9f, hi = 0.9f;
    else if (!strncmp(name, "ge1", 3)) lo = 1.1f, hi = 3;
    else if (!strncmp(name, "nz", 2)) lo = 0.5f, hi = 2, nz = true;
    float *p = t->data;
    for (int64_t i = 0; i < si_tensor_count(t); i++) {
        p[i] = frand(lo, hi);
        if (nz && frand(0, 1) < 0.5f) p[i] = -p[i];
    }
}

/* Compare got (OCL) with want (REF); prints the first mismatch. */
static bool same_tensor(const char *label, const char *oname, const si_tensor *got, const si_tensor *want) {
    char a[128], b[128];
    if (got->dtype != want->dtype || got->ndim != want->ndim ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->ndim)) {
        fprintf(stderr, "  %s: output %s is %s, REF gives %s\n", label, oname, si_shape_str(a, sizeof a, got->dtype, got->ndim, got->dims),
                si_shape_str(b, sizeof b, want->dtype, want->ndim, want->dims));
        return false;
    }
    int64_t n = si_shape_count(got->ndim, got->dims);
    n_values += (int)n;
    if (got->dtype != SI_F32) {
        if (memcmp(got->data, want->data, got->nbytes)) {
            fprintf(stderr, "  %s: output %s differs from REF\n", label, oname);
            return false;
        }
        return true;
    }
    const float *g = got->data, *w = want->data;
    double maxabs = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(w[i]) && fabs(w[i]) > maxabs) maxabs = fabs(w[i]);
    double atol = 1e-5 + 1e-4 * maxabs;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(w[i]) && isnan(g[i])) continue;
        if (isinf(w[i]) && g[i] == w[i]) continue;
        if (!(fabs((double)g[i] - w[i]) <= 1e-3 * fabs(w[i]) + atol)) {
            fprintf(stderr, "  %s: output %s[%lld] = %.9g, REF gives %.9g\n", label, oname, (long long)i, g[i], w[i]);
            return false;
        }
    }
    return true;
}

/* Run the graph's requests with the given inputs; outs[k] are the request's (borrowed) output tensors. */
static si_result run_once(si_cmodel *m, si_ireq **rq, si_tensor **ins) {
    si_result s = m->iface->create_request(m, rq);
    for (int i = 0; !s && i < m->n_inputs; i++) s = (*rq)->iface->set_input(*rq, i, ins[i]);
    if (!s) s = (*rq)->iface->infer(*rq);
    return s;
}

static const si_options *opts_for(const char *key, const char *value) {
    static const char *k[1], *v[1];
    static si_options o;
    if (!key) return NULL;
    k[0] = key;
    v[0] = value;
    o.n = 1;
    o.keys = k;
    o.values = v;
    return &o;
}

/* Finish the current graph, run it on OCL and REF, compare every output. opts: extra OCL compile options. */
static void run_opts(const char *label, const si_options *opts) {
    n_cases++;
    n_checks++;
    bool ok = false;
    si_cmodel *mo = NULL, *mr = NULL;
    si_ireq *ro = NULL, *rr = NULL;
    si_tensor *ins[16] = {0};
    si_result s = si_graph_finalize(G);
    if (!s) s = si_graph_infer_shapes(G, 1 << 20);
    if (s) {
        fprintf(stderr, "  %s: graph: %s\n", label, si_last_error());
        goto out;
    }
    for (int i = 0; i < G->n_nodes; i++) {
        if ((s = ocl->iface->supports_op(ocl, G, &G->nodes[i]))) {
            fprintf(stderr, "  %s: OCL refuses node %s: %s\n", label, G->nodes[i].op_type, si_last_error());
            goto out;
        }
        if ((s = ref->iface->supports_op(ref, G, &G->nodes[i]))) {
            fprintf(stderr, "  %s: REF refuses node %s: %s\n", label, G->nodes[i].op_type, si_last_error());
            goto out;
        }
    }
    if ((s = ocl->iface->compile(ocl, G, opts, &mo))) {
        fprintf(stderr, "  %s: OCL compile: %s\n", label, si_last_error());
        goto out;
    }
    if ((s = ref->iface->compile(ref, G, NULL, &mr))) {
        fprintf(stderr, "  %s: REF compile: %s\n", label, si_last_error());
        goto out;
    }
    for (int i = 0; i < G->n_inputs && i < 16; i++) {
        const si_val *v = &G->values[G->inputs[i]];
        if (si_tensor_create(SI_F32, v->ndim, v->dims, &ins[i])) die("input");
        fill_input(ins[i], v->name);
    }
    if ((s = run_once(mo, &ro, ins))) {
        fprintf(stderr, "  %s: OCL infer: %s\n", label, si_last_error());
        goto out;
    }
    if ((s = run_once(mr, &rr, ins))) {
        fprintf(stderr, "  %s: REF infer: %s\n", label, si_last_error());
        goto out;
    }
    ok = mo->n_outputs == mr->n_outputs;
    for (int k = 0; ok && k < mo->n_outputs; k++) {
        si_tensor *a, *b;
        if (ro->iface->get_output(ro, k, &a) || rr->iface->get_output(rr, k, &b)) {
            ok = false;
            break;
        }
        ok = same_tensor(label, mo->outputs[k].name, a, b);
    }
out:
    if (!ok) {
        n_failed++;
        fprintf(stderr, "FAIL %s\n", label);
    }
    if (ro) ro->iface->free(ro);
    if (rr) rr->iface->free(rr);
    if (mo) mo->iface->free(mo);
    if (mr) mr->iface->free(mr);
    for (int i = 0; i < 16; i++) si_tensor_free(ins[i]);
    si_graph_free(G);
    G = NULL;
}

static void run(const char *fmt, ...) SI_PRINTF(1, 2);
static void run(const char *fmt, ...) {
    char label[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    run_opts(label, NULL);
}

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
        run("%s-%d shape %d", op, opset, s);
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

static void test_unary(void) {
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
    run("Clip-13 constant bounds");
    begin(13);
    input("x", D(3, 4));
    fconst("hi", 0.6f);
    node("Clip", "x,,hi", "y");
    output("y");
    run("Clip-13 max only");
    begin(13);
    input("x", D(3, 4));
    input0("lo");
    input0("hi");
    node("Abs", "hi", "hi2");
    node("Clip", "x,lo,hi2", "y");
    output("y");
    run("Clip-13 bounds from inputs");
    /* Dropout and Cast are views in inference */
    begin(13);
    input("x", D(2, 5));
    node("Dropout", "x", "d");
    node("Cast", "d", "c");
    ai(G->n_nodes - 1, "to", SI_F32);
    node("Relu", "c", "y");
    output("y");
    output("d");
    run("Dropout, Cast to float");
}

static void test_binary(void) {
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
            run("%s broadcast pair %zu", ops[o], p);
        }
    /* a constant operand */
    begin(14);
    input("a", D(2, 8));
    weight("w", -1, 1, D(8));
    node("Mul", "a,w", "y");
    output("y");
    run("Mul by a constant");
    /* PRelu: slope broadcast, and per channel before opset 7 */
    static const struct { int opset, ns; int64_t s[3]; } prelu[] = {{16, 3, {3, 1, 1}}, {16, 1, {5}}, {16, 1, {1}}, {6, 1, {3}}};
    for (size_t i = 0; i < SI_ARRAY_LEN(prelu); i++) {
        begin(prelu[i].opset);
        input("x", D(2, 3, 4, 5));
        input("s", prelu[i].s, prelu[i].ns);
        node("PRelu", "x,s", "y");
        output("y");
        run("PRelu-%d slope %zu", prelu[i].opset, i);
    }
    /* variadic: one input, three broadcasting inputs */
    static const char *vops[] = {"Sum", "Mean", "Max", "Min"};
    for (size_t o = 0; o < SI_ARRAY_LEN(vops); o++) {
        begin(13);
        input("a", D(2, 3));
        node(vops[o], "a", "y");
        output("y");
        run("%s of one input", vops[o]);
        begin(13);
        input("a", D(3));
        input("b", D(2, 1));
        input("c", D(4, 2, 3));
        node(vops[o], "a,b,c", "y");
        output("y");
        run("%s of three inputs", vops[o]);
    }
}

// --- matrix products ----------------------------------------------------------------------------------------

static const si_options *gemm_opts(int variant) {
    return variant ? opts_for("ocl.gemm", variant == 1 ? "tiled" : "vector") : NULL;
}
static const char *const gemm_names[3] = {"default kernel", "tiled kernel", "vector kernels"};

static void test_matmul(void) {
    static const struct { int na, nb; int64_t a[4], b[4]; } cases[] = {
        {2, 2, {2, 3}, {3, 4}},        {1, 2, {5}, {5, 3}},          {3, 1, {2, 3, 4}, {4}},
        {4, 3, {2, 1, 3, 4}, {3, 4, 5}}, {3, 2, {1, 7, 33}, {33, 17}}, {1, 1, {4}, {4}},
        {2, 2, {40, 70}, {70, 21}},    {3, 3, {4, 1, 16}, {4, 16, 16}},
    };
    char label[96];
    for (int v = 0; v < 3; v++)
        for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
            begin(13);
            input("a", cases[i].a, cases[i].na);
            input("b", cases[i].b, cases[i].nb);
            node("MatMul", "a,b", "y");
            output("y");
            snprintf(label, sizeof label, "MatMul case %zu (%s)", i, gemm_names[v]);
            run_opts(label, gemm_opts(v));
        }
    begin(13); /* constant weights */
    input("a", D(3, 10));
    weight("w", -1, 1, D(10, 6));
    node("MatMul", "a,w", "y");
    output("y");
    run("MatMul constant B");

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
        run_opts(label, gemm_opts(v));
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

static void conv(const conv_case *cc, const char *label, const si_options *opts) {
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
    run_opts(label, opts);
}

static void test_conv(void) {
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
        conv(&cases[i], label, opts_for("ocl.im2col_max_bytes", "0"));
        snprintf(label, sizeof label, "Conv case %zu (im2col + tiled GEMM)", i);
        conv(&cases[i], label, gemm_opts(1));
    }
}

static void test_conv_transpose(void) {
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
        run("ConvTranspose case %zu", i);
    }
}

/* Gather: constant indices (checked at compile time), indices from a model input (checked before each run). */
static void test_gather(void) {
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
        run("Gather case %zu", i);
    }
    begin(13); /* an embedding table indexed by an int64 model input */
    weight("table", -1, 1, D(20, 8));
    int v = val("ids");
    G->values[v].dtype = SI_I64;
    G->values[v].ndim = 2;
    G->values[v].dims[0] = 2;
    G->values[v].dims[1] = 3;
    G->values[v].is_input = true;
    push(&G->inputs, &G->n_inputs, v);
    node("Gather", "table,ids", "e");
    node("Relu", "e", "y");
    output("y");
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    si_cmodel *mo = NULL, *mr = NULL;
    si_ireq *ro = NULL, *rr = NULL;
    si_tensor *ids = NULL, *a = NULL, *b = NULL;
    CHECK_OK(ocl->iface->compile(ocl, G, NULL, &mo));
    CHECK_OK(ref->iface->compile(ref, G, NULL, &mr));
    CHECK_OK(si_tensor_create(SI_I64, 2, (const int64_t[]){2, 3}, &ids));
    if (mo && mr && ids && !mo->iface->create_request(mo, &ro) && !mr->iface->create_request(mr, &rr)) {
        memcpy(ids->data, (const int64_t[]){3, 0, 19, -1, -20, 7}, 6 * sizeof(int64_t));
        CHECK_OK(ro->iface->set_input(ro, 0, ids));
        CHECK_OK(rr->iface->set_input(rr, 0, ids));
        CHECK_OK(ro->iface->infer(ro));
        CHECK_OK(rr->iface->infer(rr));
        CHECK_OK(ro->iface->get_output(ro, 0, &a));
        CHECK_OK(rr->iface->get_output(rr, 0, &b));
        n_checks++;
        if (!a || !b || !same_tensor("Gather with input indices", "y", a, b)) n_failed++;
        ((int64_t *)ids->data)[4] = 20; /* out of range: the caller's mistake, as on REF */
        CHECK_ERR(ro->iface->infer(ro), SI_ERR_INVALID_ARG, "out of range");
        CHECK_STATUS(rr->iface->infer(rr), SI_ERR_INVALID_ARG);
        ((int64_t *)ids->data)[4] = 2; /* and the request is still usable */
        CHECK_OK(ro->iface->infer(ro));
    }
    if (ro) ro->iface->free(ro);
    if (rr) rr->iface->free(rr);
    if (mo) mo->iface->free(mo);
    if (mr) mr->iface->free(mr);
    si_tensor_free(ids);
    si_graph_free(G);
    G = NULL;
}

/* Cast of integer and bool model inputs to float32. */
static void test_cast_inputs(void) {
    static const si_dtype types[] = {SI_I64, SI_I32, SI_BOOL, SI_U8};
    for (size_t t = 0; t < SI_ARRAY_LEN(types); t++) {
        begin(13);
        int v = val("i");
        G->values[v].dtype = types[t];
        G->values[v].ndim = 2;
        G->values[v].dims[0] = 3;
        G->values[v].dims[1] = 5;
        G->values[v].is_input = true;
        push(&G->inputs, &G->n_inputs, v);
        int n = node("Cast", "i", "f");
        ai(n, "to", SI_F32);
        node("Neg", "f", "y");
        output("y");
        CHECK_OK(si_graph_finalize(G));
        CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
        si_cmodel *mo = NULL, *mr = NULL;
        si_ireq *ro = NULL, *rr = NULL;
        si_tensor *in = NULL, *a = NULL, *b = NULL;
        CHECK_OK(ocl->iface->compile(ocl, G, NULL, &mo));
        CHECK_OK(ref->iface->compile(ref, G, NULL, &mr));
        CHECK_OK(si_tensor_create(types[t], 2, (const int64_t[]){3, 5}, &in));
        for (int i = 0; in && i < 15; i++)
            si_store_i64(types[t], in->data, i, types[t] == SI_BOOL ? i % 2 : (types[t] == SI_U8 ? 200 + i : 1000 * i - 7000));
        if (mo && mr && in && !mo->iface->create_request(mo, &ro) && !mr->iface->create_request(mr, &rr)) {
            CHECK_OK(ro->iface->set_input(ro, 0, in));
            CHECK_OK(rr->iface->set_input(rr, 0, in));
            CHECK_OK(ro->iface->infer(ro));
            CHECK_OK(rr->iface->infer(rr));
            CHECK_OK(ro->iface->get_output(ro, 0, &a));
            CHECK_OK(rr->iface->get_output(rr, 0, &b));
            n_checks++;
            if (!a || !b || !same_tensor(si_dtype_name(types[t]), "y", a, b)) {
                n_failed++;
                fprintf(stderr, "FAIL Cast from %s\n", si_dtype_name(types[t]));
            }
        }
        if (ro) ro->iface->free(ro);
        if (rr) rr->iface->free(rr);
        if (mo) mo->iface->free(mo);
        if (mr) mr->iface->free(mr);
        si_tensor_free(in);
        si_graph_free(G);
        G = NULL;
    }
}

/* Resize and Upsample (scales, sizes and roi are constants). */
static void test_resize(void) {
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
        run("Resize-18 case %zu (%s)", i, cases[i].mode);
    }
    begin(18); /* axes and keep_aspect_ratio_policy */
    input("x", D(1, 2, 5, 7));
    ints("sizes", (const int64_t[]){9, 9}, 2);
    int n = node("Resize", "x,,,sizes", "y");
    ais(n, "axes", (const int64_t[]){3, 2}, 2);
    as(n, "keep_aspect_ratio_policy", "not_larger");
    as(n, "mode", "linear");
    output("y");
    run("Resize-18 axes, not_larger");
    begin(13); /* tf_crop_and_resize with an extrapolation value */
    input("x", D(1, 1, 6, 6));
    floats("roi", (const float[]){0, 0, -0.2f, 0.3f, 1, 1, 0.8f, 1.3f}, 8);
    ints("sizes", (const int64_t[]){1, 1, 5, 4}, 4);
    n = node("Resize", "x,roi,,sizes", "y");
    as(n, "coordinate_transformation_mode", "tf_crop_and_resize");
    as(n, "mode", "linear");
    af(n, "extrapolation_value", 7.5f);
    output("y");
    run("Resize-13 tf_crop_and_resize");
    begin(10);
    input("x", D(1, 2, 3, 4));
    floats("scales", (const float[]){1, 1, 2, 3}, 4);
    node("Resize", "x,scales", "y");
    output("y");
    run("Resize-10 nearest");
    begin(9);
    input("x", D(2, 2, 3, 3));
    floats("scales", (const float[]){1, 1, 2, 2}, 4);
    n = node("Upsample", "x,scales", "y");
    as(n, "mode", "linear");
    output("y");
    run("Upsample-9 linear");
    begin(7);
    input("x", D(1, 3, 4, 2));
    n = node("Upsample", "x", "y");
    attr(n, "scales", SI_ATTR_FLOATS)->n = 4;
    G->nodes[n].attrs[G->nodes[n].n_attr - 1].floats = si_malloc(4 * sizeof(float));
    if (!G->nodes[n].attrs[G->nodes[n].n_attr - 1].floats) die("attr");
    memcpy(G->nodes[n].attrs[G->nodes[n].n_attr - 1].floats, (const float[]){1, 1, 3, 2}, 4 * sizeof(float));
    output("y");
    run("Upsample-7 nearest");
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
    run("%s-%d %s", op, opset, label);
}

static void test_pool(void) {
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
            run("%s shape %d", gops[o], s);
        }
}

// --- reductions and normalization ---------------------------------------------------------------------------

static void test_reduce(void) {
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
                run("%s-%d case %zu", ops[o], opset, c);
            }
}

static void test_softmax(void) {
    static const char *ops[] = {"Softmax", "LogSoftmax"};
    for (int o = 0; o < 2; o++)
        for (int opset = 11; opset <= 13; opset += 2)
            for (int axis = -1; axis <= 2; axis++) {
                begin(opset);
                input("x", D(2, 3, 17));
                int n = node(ops[o], "x", "y");
                ai(n, "axis", axis);
                output("y");
                run("%s-%d axis %d", ops[o], opset, axis);
            }
    begin(13); /* default axis, large values */
    input("x", D(4, 100));
    node("Mul", "x,k", "xk");
    fconst("k", 40.0f);
    node("Softmax", "xk", "y");
    output("y");
    run("Softmax large values");
}

static void test_norm(void) {
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
        run("BatchNormalization shape %d", s);
    }
    begin(9); /* constant parameters, the usual case */
    input("x", D(1, 4, 3, 3));
    weight("scale", 0.5f, 1.5f, D(4));
    weight("b", -1, 1, D(4));
    weight("mean", -1, 1, D(4));
    weight("var", 0.2f, 2, D(4));
    node("BatchNormalization", "x,scale,b,mean,var", "y");
    output("y");
    run("BatchNormalization-9 constant parameters");

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
        run("LayerNormalization case %zu", i);
    }
    begin(23);
    input("x", D(2, 3, 70));
    input("scale", D(70));
    node("RMSNormalization", "x,scale", "y");
    output("y");
    run("RMSNormalization");
    begin(6);
    input("x", D(2, 3, 5, 4));
    input("scale", D(3));
    input("b", D(3));
    node("InstanceNormalization", "x,scale,b", "y");
    output("y");
    run("InstanceNormalization");
    for (int opset = 18; opset <= 21; opset += 3) {
        begin(opset);
        input("x", D(2, 6, 5, 4));
        input("scale", (const int64_t[]){opset < 21 ? 3 : 6}, 1);
        input("b", (const int64_t[]){opset < 21 ? 3 : 6}, 1);
        int n = node("GroupNormalization", "x,scale,b", "y");
        ai(n, "num_groups", 3);
        output("y");
        run("GroupNormalization-%d", opset);
    }
}

// --- layout -------------------------------------------------------------------------------------------------

static void test_layout(void) {
    /* views: the output shares the input's buffer */
    begin(14);
    input("x", D(2, 3, 4));
    ints("shape", (const int64_t[]){3, -1, 0}, 3);
    node("Reshape", "x,shape", "r");
    node("Relu", "r", "y");
    output("y");
    output("r");
    run("Reshape (an output that is a view of an input)");
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
    run("Flatten, Unsqueeze, Squeeze");
    begin(11);
    input("x", D(3, 1, 4));
    int n = node("Unsqueeze", "x", "u");
    ais(n, "axes", (const int64_t[]){0, 4}, 2);
    n = node("Squeeze", "u", "s");
    ais(n, "axes", (const int64_t[]){2}, 1);
    node("Neg", "s", "y");
    output("y");
    run("Unsqueeze-11, Squeeze-11");

    static const int64_t perms[][4] = {{0, 2, 1, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 3, 0, 1}};
    for (int i = 0; i < 4; i++) {
        begin(13);
        input("x", D(2, 3, 4, 5));
        n = node("Transpose", "x", "y");
        ais(n, "perm", perms[i], 4);
        output("y");
        run("Transpose perm %d", i);
    }
    begin(13);
    input("x", D(3, 7));
    node("Transpose", "x", "y");
    output("y");
    run("Transpose default perm");

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
        run("Concat axis %d", axis);
    }
    begin(18);
    input("x", D(2, 7, 3));
    n = node("Split", "x", "p,q,r");
    ai(n, "axis", 1);
    ai(n, "num_outputs", 3);
    output("p");
    output("q");
    output("r");
    run("Split-18 num_outputs");
    begin(13);
    input("x", D(6, 4));
    ints("sp", (const int64_t[]){1, 3, 2}, 3);
    node("Split", "x,sp", "p,q,r");
    output("p");
    output("r");
    output("q");
    run("Split-13 sizes");

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
        run("Slice case %zu", i);
    }
    begin(9);
    input("x", D(4, 6));
    n = node("Slice", "x", "y");
    ais(n, "starts", (const int64_t[]){1, 2}, 2);
    ais(n, "ends", (const int64_t[]){-1, 100}, 2);
    output("y");
    run("Slice-9 attributes");

    begin(13);
    input("x", D(3, 1));
    ints("sh", (const int64_t[]){2, 1, 4}, 3);
    node("Expand", "x,sh", "y");
    output("y");
    run("Expand");
    begin(13);
    input("x", D(2, 3));
    ints("rep", (const int64_t[]){2, 3}, 2);
    node("Tile", "x,rep", "y");
    output("y");
    run("Tile");

    static const char *modes[] = {"constant", "reflect", "edge", "wrap"};
    for (int m = 0; m < 4; m++) {
        begin(19);
        input("x", D(2, 3, 5));
        ints("pads", (const int64_t[]){0, 2, 1, 1, -1, 3}, 6);
        fconst("v", 1.5f);
        n = node("Pad", m ? "x,pads" : "x,pads,v", "y");
        as(n, "mode", modes[m]);
        output("y");
        run("Pad-19 %s", modes[m]);
    }
    begin(2);
    input("x", D(3, 4));
    n = node("Pad", "x", "y");
    ais(n, "pads", (const int64_t[]){1, 0, 2, 1}, 4);
    af(n, "value", -2.0f);
    output("y");
    run("Pad-2 attributes");

    begin(15); /* Shape/Size: constants of the compiled model */
    input("x", D(2, 3, 4));
    n = node("Shape", "x", "s");
    ai(n, "start", 1);
    node("Size", "x", "z");
    node("Relu", "x", "y");
    output("s");
    output("z");
    output("y");
    run("Shape, Size");
}

// --- a small network: liveness-based buffer reuse, views, constants ------------------------------------------

static void build_net(int batch) {
    begin(13);
    input("image", D(batch, 3, 16, 16));
    weight("w1", -0.4f, 0.4f, D(8, 3, 3, 3));
    weight("b1", -0.1f, 0.1f, D(8));
    weight("w2", -0.4f, 0.4f, D(8, 1, 3, 3));
    weight("w3", -0.4f, 0.4f, D(16, 8, 1, 1));
    weight("fc", -0.3f, 0.3f, D(10, 16));
    weight("fcb", -0.1f, 0.1f, D(10));
    int n = node("Conv", "image,w1,b1", "c1");
    ais(n, "pads", (const int64_t[]){1, 1, 1, 1}, 4);
    node("Relu", "c1", "r1");
    n = node("MaxPool", "r1", "p1");
    ais(n, "kernel_shape", (const int64_t[]){2, 2}, 2);
    ais(n, "strides", (const int64_t[]){2, 2}, 2);
    n = node("Conv", "p1,w2", "c2");
    ai(n, "group", 8);
    ais(n, "pads", (const int64_t[]){1, 1, 1, 1}, 4);
    node("Add", "c2,p1", "res");
    node("HardSwish", "res", "h");
    node("Conv", "h,w3", "c3");
    node("GlobalAveragePool", "c3", "g");
    node("Flatten", "g", "f");
    n = node("Gemm", "f,fc,fcb", "logits");
    ai(n, "transB", 1);
    node("Softmax", "logits", "probs");
    output("probs");
    output("logits");
}

static void test_net(void) {
    build_net(2);
    run("small CNN (batch 2)");
}

// --- requests on several threads ----------------------------------------------------------------------------

typedef struct thread_job {
    si_cmodel *m;
    const si_tensor *in[4];
    const si_tensor *want[4];
    int ok;
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    si_ireq *r = NULL;
    j->ok = 0;
    if (j->m->iface->create_request(j->m, &r)) return NULL;
    int good = 1;
    for (int rep = 0; rep < 5 && good; rep++) {
        int k = rep % 2; /* alternate between two inputs: results must follow the input */
        si_tensor *out = NULL;
        if (r->iface->set_input(r, 0, (si_tensor *)j->in[k]) || r->iface->infer(r) || r->iface->get_output(r, 0, &out)) {
            good = 0;
            break;
        }
        const float *a = out->data, *b = j->want[k]->data;
        for (int64_t i = 0; i < si_tensor_count(out); i++)
            if (fabsf(a[i] - b[i]) > 1e-4f + 1e-3f * fabsf(b[i])) good = 0;
    }
    r->iface->free(r);
    j->ok = good;
    return NULL;
}

static void test_threads(void) {
    build_net(1);
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    si_cmodel *mo = NULL, *mr = NULL;
    CHECK_OK(ocl->iface->compile(ocl, G, NULL, &mo));
    CHECK_OK(ref->iface->compile(ref, G, NULL, &mr));
    si_tensor *in[2] = {0}, *want[2] = {0};
    si_ireq *rr = NULL;
    if (mo && mr && !mr->iface->create_request(mr, &rr)) {
        for (int k = 0; k < 2; k++) {
            CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){1, 3, 16, 16}, &in[k]));
            fill_input(in[k], "x");
            si_tensor *o = NULL;
            CHECK_OK(rr->iface->set_input(rr, 0, in[k]));
            CHECK_OK(rr->iface->infer(rr));
            CHECK_OK(rr->iface->get_output(rr, 0, &o));
            CHECK_OK(si_tensor_clone(o, &want[k]));
        }
        enum { NT = 4 };
        pthread_t th[NT];
        thread_job jobs[NT];
        for (int t = 0; t < NT; t++) {
            jobs[t].m = mo;
            jobs[t].in[0] = in[t % 2];
            jobs[t].in[1] = in[(t + 1) % 2];
            jobs[t].want[0] = want[t % 2];
            jobs[t].want[1] = want[(t + 1) % 2];
            CHECK(pthread_create(&th[t], NULL, thread_main, &jobs[t]) == 0);
        }
        for (int t = 0; t < NT; t++) {
            pthread_join(th[t], NULL);
            CHECK(jobs[t].ok);
        }
        /* the output tensor is the same object after every infer */
        si_ireq *r = NULL;
        si_tensor *o1 = NULL, *o2 = NULL;
        CHECK_OK(mo->iface->create_request(mo, &r));
        if (r) {
            CHECK_OK(r->iface->set_input(r, 0, in[0]));
            CHECK_OK(r->iface->infer(r));
            CHECK_OK(r->iface->get_output(r, 0, &o1));
            CHECK_OK(r->iface->set_input(r, 0, in[1]));
            CHECK_OK(r->iface->infer(r));
            CHECK_OK(r->iface->get_output(r, 0, &o2));
            CHECK(o1 == o2);
            /* a missing input and a wrong shape are the caller's mistakes */
            si_tensor *bad = NULL;
            CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){2, 3, 16, 16}, &bad));
            CHECK_ERR(r->iface->set_input(r, 0, bad), SI_ERR_INVALID_ARG, "image");
            si_tensor_free(bad);
            r->iface->free(r);
        }
        CHECK_OK(mo->iface->create_request(mo, &r));
        if (r) {
            CHECK_ERR(r->iface->infer(r), SI_ERR_INVALID_ARG, "not set");
            r->iface->free(r);
        }
    }
    if (rr) rr->iface->free(rr);
    for (int k = 0; k < 2; k++) {
        si_tensor_free(in[k]);
        si_tensor_free(want[k]);
    }
    if (mo) mo->iface->free(mo);
    if (mr) mr->iface->free(mr);
    si_graph_free(G);
    G = NULL;
}

// --- refusals and failures ----------------------------------------------------------------------------------

/* supports_op of the graph's single node. */
static si_result support_of(void) {
    si_result s = si_graph_finalize(G);
    if (!s) s = si_graph_infer_shapes(G, 1 << 20);
    if (!s) s = ocl->iface->supports_op(ocl, G, &G->nodes[G->n_nodes - 1]);
    return s;
}

static void test_refusals(void) {
    begin(14); /* int64 data */
    int v = val("i");
    G->values[v].dtype = SI_I64;
    G->values[v].ndim = 1;
    G->values[v].dims[0] = 3;
    G->values[v].is_input = true;
    push(&G->inputs, &G->n_inputs, v);
    node("Add", "i,i", "y");
    output("y");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "int64");
    si_graph_free(G);

    begin(12);
    input("x", D(1, 2, 4, 4));
    int n = node("MaxPool", "x", "y,idx");
    ais(n, "kernel_shape", (const int64_t[]){2, 2}, 2);
    output("y");
    output("idx");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "Indices");
    si_graph_free(G);

    begin(13);
    input("x", D(2, 3));
    node("Hardmax", "x", "y");
    output("y");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "Hardmax");
    si_graph_free(G);

    begin(13); /* the shape comes from a computed value */
    input("x", D(2, 3));
    v = val("sh");
    G->values[v].dtype = SI_I64;
    G->values[v].ndim = 1;
    G->values[v].dims[0] = 2;
    G->values[v].is_input = true;
    push(&G->inputs, &G->n_inputs, v);
    node("Reshape", "x,sh", "y");
    output("y");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "constant");
    si_graph_free(G);

    begin(17);
    input("x", D(2, 3));
    input("s", D(3));
    n = node("LayerNormalization", "x,s", "y");
    ai(n, "stash_type", 11);
    output("y");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "stash_type");
    si_graph_free(G);

    begin(13); /* unknown input shape: refused as dynamic */
    input("x", D(2, 3));
    G->values[G->inputs[0]].dims[0] = -1;
    node("Relu", "x", "y");
    output("y");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "dynamic shape");
    si_cmodel *m = NULL;
    CHECK_ERR(ocl->iface->compile(ocl, G, NULL, &m), SI_ERR_UNSUPPORTED, "dynamic shape");
    si_graph_free(G);

    /* a driver's compiler error is a compile failure (DEVICE) naming the build log */
    begin(13);
    input("x", D(2, 3));
    node("Relu", "x", "y");
    output("y");
    CHECK_OK(si_graph_finalize(G));
    CHECK_ERR(ocl->iface->compile(ocl, G, opts_for("ocl.build_options", "-DSI_OCL_TEST_BUILD_ERROR"), &m), SI_ERR_DEVICE,
              "deliberate build failure");
    CHECK(m == NULL);
    si_graph_free(G);
    G = NULL;

    /* out of device memory: a DEVICE failure naming it (a device whose largest allocation is 256 bytes) */
    build_net(1);
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    CHECK_ERR(ocl->iface->compile(ocl, G, opts_for("ocl.max_alloc_bytes", "256"), &m), SI_ERR_DEVICE, "out of device memory");
    CHECK(m == NULL);
    si_graph_free(G);
    G = NULL;

    si_device *d = NULL;
    CHECK_ERR(si_device_get("OCL.63", &d), SI_ERR_UNSUPPORTED, "no OpenCL device 63");
    CHECK_OK(si_device_get("OCL.0", &d));
    CHECK(d == ocl);
}

// --- the embedded kernel source ------------------------------------------------------------------------------

static void test_kernel_source(void) {
    if (!si_ocl_kernel_lines) return;
    const char *path = SI_TEST_DATA "/../../src/device/ocl/kernels.cl";
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "note: %s not found; embedded source not checked\n", path);
        return;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *file = malloc((size_t)len + 1);
    CHECK(file && fread(file, 1, (size_t)len, f) == (size_t)len);
    fclose(f);
    if (!file) return;
    file[len] = 0;
    size_t off = 0;
    bool same = true;
    for (int i = 0; i < si_ocl_kernel_n_lines && same; i++) {
        size_t l = strlen(si_ocl_kernel_lines[i]);
        if (off + l > (size_t)len || memcmp(file + off, si_ocl_kernel_lines[i], l)) same = false;
        off += l;
    }
    n_checks++;
    if (!same || off != (size_t)len) {
        n_failed++;
        fprintf(stderr, "src/device/ocl/ocl_kernels.c is out of date with kernels.cl: regenerate it with "
                        "sh src/device/ocl/embed.sh src/device/ocl/kernels.cl > src/device/ocl/ocl_kernels.c\n");
    }
    free(file);
}

int main(void) {
    si_result s = si_device_get("OCL", &ocl);
    if (s) {
        printf("SKIP: no OpenCL device: %s\n", si_last_error());
        return 77;
    }
    CHECK_OK(si_device_get("REF", &ref));
    test_kernel_source();
    test_unary();
    test_binary();
    test_matmul();
    test_conv();
    test_conv_transpose();
    test_gather();
    test_cast_inputs();
    test_resize();
    test_pool();
    test_reduce();
    test_softmax();
    test_norm();
    test_layout();
    test_net();
    test_threads();
    test_refusals();
    fprintf(stderr, "%d cases on OCL and REF (%d output values compared)\n", n_cases, n_values);
    return test_summary("test_ocl_ops");
}
