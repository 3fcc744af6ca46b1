/*
 * test_cpu_ops.c — the CPU device against REF, op by op (like ggml's test-backend-ops): for every op and
 * fused chain the CPU device puts on oneDNN, small graphs over several shapes and attributes (strides,
 * pads, groups, dilations, transposes, broadcasting) are compiled on both devices, run on the same random
 * inputs and compared: |cpu - ref| <= 1e-3 |ref| + 1e-5 max|ref| everywhere, and NMSE < 1e-8. Each case
 * also names the fast step it expects in the CPU plan (e.g. "Conv+BatchNormalization+Relu"), so a kernel
 * that silently fell back to the reference implementation is reported too. The arena is poisoned with NaN
 * (SI_CPU_POISON) so that reading a buffer before it is written shows up.
 *
 * Further checks: requests of one model inferring on two threads at once, threads=2, input shapes that
 * change between infers (re-planning), and bad input shapes.
 */
#include "device/cpu/cpu.h"
#include "device/device.h"
#include "ir/ir.h"
#include "ops/ops.h"

#include "si_test.h"

#include <float.h>
#include <pthread.h>

static si_device *cpu, *ref;
static int n_cases;
static bool verbose;

// --- random numbers ---------------------------------------------------------------------------------------

static uint32_t rng_state = 2024;
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

/* A float32 graph input (dims may hold -1 for a dimension known only at run time). Random values by name
 * prefix: "pos" 0.1..3, else -2..2. */
static void input(const char *name, const int64_t *dims, int nd) {
    int v = val(name);
    si_val *x = &G->values[v];
    x->dtype = SI_F32;
    x->ndim = nd;
    if (nd) memcpy(x->dims, dims, sizeof(int64_t) * (size_t)nd);
    x->is_input = true;
    push(&G->inputs, &G->n_inputs, v);
}

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

static void weight(const char *name, float lo, float hi, const int64_t *dims, int nd) {
    si_tensor *t;
    if (si_tensor_create(SI_F32, nd, dims, &t)) die("tensor");
    float *p = t->data;
    for (int64_t i = 0; i < si_tensor_count(t); i++) p[i] = frand(lo, hi);
    set_const(name, t);
}

static void fconst(const char *name, float v) {
    si_tensor *t;
    if (si_tensor_create(SI_F32, 0, NULL, &t)) die("tensor");
    *(float *)t->data = v;
    set_const(name, t);
}

static void ints(const char *name, const int64_t *vals, int n) {
    si_tensor *t;
    int64_t d = n;
    if (si_tensor_create(SI_I64, 1, &d, &t)) die("tensor");
    if (n) memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    set_const(name, t);
}

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
    if (!strncmp(name, "pos", 3)) lo = 0.1f, hi = 3;
    float *p = t->data;
    for (int64_t i = 0; i < si_tensor_count(t); i++) p[i] = frand(lo, hi);
}

static si_result compile_on(si_device *d, const char *threads, si_cmodel **out) {
    const char *keys[1] = {"threads"}, *vals[1] = {threads};
    si_options o = {threads ? 1 : 0, keys, vals};
    return d->iface->compile(d, G, &o, out);
}

/* Compare one output; returns false (and prints why) when it does not match. */
static bool compare(const char *what, int k, const si_tensor *c, const si_tensor *r) {
    if (c->dtype != r->dtype || c->ndim != r->ndim || memcmp(c->dims, r->dims, sizeof(int64_t) * (size_t)c->ndim)) {
        fprintf(stderr, "  %s: output %d has another type or shape on CPU\n", what, k);
        return false;
    }
    if (c->dtype != SI_F32) return !memcmp(c->data, r->data, c->nbytes) || (fprintf(stderr, "  %s: output %d differs\n", what, k), false);
    const float *a = c->data, *b = r->data;
    int64_t n = si_tensor_count(c);
    double maxref = 0, maxabs = 0, maxrel = 0, se = 0, sr = 0;
    for (int64_t i = 0; i < n; i++) maxref = fmax(maxref, fabs((double)b[i]));
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (isnan(a[i]) != isnan(b[i])) e = INFINITY;
        else if (isnan(a[i])) e = 0;
        se += e * e;
        sr += (double)b[i] * b[i];
        maxabs = fmax(maxabs, e);
        if (b[i] != 0) maxrel = fmax(maxrel, e / fabs((double)b[i]));
        if (!(e <= 1e-3 * fabs((double)b[i]) + 1e-5 * maxref) && bad < 0) bad = i;
    }
    double nmse = sr > 0 ? se / sr : se;
    if (verbose) printf("  %-58s out %d: max abs %.2e, max rel %.2e, NMSE %.2e\n", what, k, maxabs, maxrel, nmse);
    if (bad >= 0 || !(nmse < 1e-8)) {
        fprintf(stderr, "  %s: output %d: max abs err %.3g, max rel %.3g, NMSE %.3g (first bad [%lld]: cpu %.8g ref %.8g)\n", what, k,
                maxabs, maxrel, nmse, (long long)(bad < 0 ? 0 : bad), a[bad < 0 ? 0 : bad], b[bad < 0 ? 0 : bad]);
        return false;
    }
    return true;
}

/* Run the current graph on CPU and REF with the same random inputs; `expect` is a substring the CPU plan's
 * step list must contain (NULL: no check), `no_ref` asks that no step runs a reference kernel. */
static void run_case_t(const char *what, const char *expect, bool no_ref, const char *threads) {
    n_cases++;
    bool ok = true;
    si_cmodel *mc = NULL, *mr = NULL;
    si_ireq *rc = NULL, *rr = NULL;
    si_tensor *ins[16] = {0};
    if (si_graph_finalize(G) || si_graph_infer_shapes(G, (size_t)1 << 30)) {
        fprintf(stderr, "  %s: graph setup failed: %s\n", what, si_last_error());
        ok = false;
        goto out;
    }
    if (compile_on(ref, NULL, &mr)) {
        fprintf(stderr, "  %s: REF compile failed: %s\n", what, si_last_error());
        ok = false;
        goto out;
    }
    if (compile_on(cpu, threads, &mc)) {
        fprintf(stderr, "  %s: CPU compile failed: %s\n", what, si_last_error());
        ok = false;
        goto out;
    }
    char steps[2048];
    int refs = si_cpu_plan_describe(mc, steps, sizeof steps);
    if (verbose) printf("%s\n  plan: %s\n", what, steps);
    if (expect && !strstr(steps, expect)) {
        fprintf(stderr, "  %s: expected a '%s' step, the CPU plan is: %s\n", what, expect, steps);
        ok = false;
    }
    if (no_ref && refs != 0) {
        fprintf(stderr, "  %s: expected no reference-kernel step, the CPU plan is: %s\n", what, steps);
        ok = false;
    }
    if (mc->iface->create_request(mc, &rc) || mr->iface->create_request(mr, &rr)) {
        fprintf(stderr, "  %s: create_request failed: %s\n", what, si_last_error());
        ok = false;
        goto out;
    }
    for (int i = 0; i < G->n_inputs && i < 16; i++) {
        const si_val *v = &G->values[G->inputs[i]];
        if (si_tensor_create(SI_F32, v->ndim, v->dims, &ins[i])) die("input");
        fill_input(ins[i], v->name);
        if (rc->iface->set_input(rc, i, ins[i]) || rr->iface->set_input(rr, i, ins[i])) {
            fprintf(stderr, "  %s: set_input failed: %s\n", what, si_last_error());
            ok = false;
            goto out;
        }
    }
    for (int rep = 0; rep < 2 && ok; rep++) { /* twice: the second infer reuses the arena */
        if (rc->iface->infer(rc)) {
            fprintf(stderr, "  %s: CPU infer failed: %s\n", what, si_last_error());
            ok = false;
            break;
        }
        if (rep == 0 && rr->iface->infer(rr)) {
            fprintf(stderr, "  %s: REF infer failed: %s\n", what, si_last_error());
            ok = false;
            break;
        }
        for (int k = 0; k < G->n_outputs; k++) {
            si_tensor *tc, *tr;
            if (rc->iface->get_output(rc, k, &tc) || rr->iface->get_output(rr, k, &tr)) die("get_output");
            ok &= compare(what, k, tc, tr);
        }
    }
out:
    if (!ok) fprintf(stderr, "FAIL %s\n", what);
    n_checks++;
    if (!ok) n_failed++;
    if (rc) rc->iface->free(rc);
    if (rr) rr->iface->free(rr);
    if (mc) mc->iface->free(mc);
    if (mr) mr->iface->free(mr);
    for (int i = 0; i < 16; i++) si_tensor_free(ins[i]);
    si_graph_free(G);
    G = NULL;
}

static void run_case(const char *what, const char *expect) { run_case_t(what, expect, true, NULL); }

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

static void test_conv(void) {
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

static void test_convtranspose(void) {
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

static void test_conv_chains(void) {
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
        run_case(plain_in ? "strided 1x1 convolutions of a graph input" : "strided 1x1 convolutions (subsampled once)", "Conv1x1s");
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

static void test_matmul(void) {
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
    /* batched activations with broadcasting, transposed operand via Transpose, 1-D operands */
    begin(13);
    input("a", D(2, 3, 5, 8));
    input("b", D(2, 3, 8, 6));
    node("MatMul", "a,b", "y");
    output("y");
    run_case("MatMul batched 2x3", "MatMul");
    begin(13);
    input("a", D(2, 1, 5, 8));
    input("b", D(1, 3, 8, 6));
    node("MatMul", "a,b", "y");
    output("y");
    run_case_t("MatMul broadcast batch [2,1]x[1,3]", NULL, false, NULL);
    begin(13);
    input("a", D(4, 7, 8));
    input("b", D(8, 5));
    node("MatMul", "a,b", "y");
    output("y");
    run_case_t("MatMul 3-D x 2-D activation", NULL, false, NULL);
    begin(13);
    input("a", D(8));
    input("b", D(3, 8, 5));
    node("MatMul", "a,b", "y");
    output("y");
    run_case_t("MatMul 1-D x 3-D", NULL, false, NULL);
    begin(13);
    input("a", D(3, 4, 8));
    input("b", D(8));
    node("MatMul", "a,b", "y");
    output("y");
    run_case_t("MatMul 3-D x 1-D", NULL, false, NULL);
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
    run_case("attention (Transpose, MatMul/scale+mask, Softmax, MatMul)", "MatMul(strided)+Div+Add;Softmax;MatMul+Transpose");
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

static void test_pool(void) {
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

static void test_eltwise(void) {
    const char *ops[] = {"Relu", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "HardSigmoid", "HardSwish", "Mish", "Sqrt"};
    for (size_t i = 0; i < SI_ARRAY_LEN(ops); i++) {
        begin(18);
        const char *x = !strcmp(ops[i], "Sqrt") ? "posx" : "x";
        input(x, D(3, 5, 7));
        node(ops[i], x, "y");
        output("y");
        run_case(ops[i], ops[i]);
    }
    begin(13);
    input("x", D(4, 9));
    fconst("two", 2);
    node("Pow", "x,two", "y");
    output("y");
    run_case("Pow(x, 2)", "Pow");
    begin(20);
    input("x", D(4, 9));
    node("Gelu", "x", "y");
    output("y");
    run_case_t("Gelu (opset 20)", NULL, false, NULL);
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
                run_case_t(what, fast ? bops[i] : NULL, fast, NULL);
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
    /* LayerNormalization written out (older exporters): one LayerNormalization step */
    for (int affine = 0; affine < 2; affine++) {
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
        if (affine) {
            weight("gam", 0.5f, 1.5f, D(48)), weight("bet", -1, 1, D(48));
            node("Mul", "nrm,gam", "sc");
            node("Add", "sc,bet", "y");
        }
        output("y");
        run_case(affine ? "LayerNorm decomposition with scale and bias" : "LayerNorm decomposition", "LayerNorm(decomposed)");
    }
    begin(13);
    input("x", D(1, 16, 7, 7));
    int n = node("LRN", "x", "y");
    ai(n, "size", 5), af(n, "alpha", 1e-2f), af(n, "beta", 0.75f), af(n, "bias", 2.0f);
    output("y");
    run_case("LRN", "LRN");
}

static void test_data(void) {
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

// --- requests, threads, shapes -------------------------------------------------------------------------------------

typedef struct thr_arg {
    si_cmodel *m;
    si_tensor *in;
    si_tensor *out_copy;
    int iters;
    si_result s;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    si_ireq *r;
    if ((a->s = a->m->iface->create_request(a->m, &r))) return NULL;
    if ((a->s = r->iface->set_input(r, 0, a->in))) {
        r->iface->free(r);
        return NULL;
    }
    for (int i = 0; i < a->iters && !a->s; i++) a->s = r->iface->infer(r);
    si_tensor *o;
    if (!a->s && !(a->s = r->iface->get_output(r, 0, &o))) a->s = si_tensor_clone(o, &a->out_copy);
    r->iface->free(r);
    return NULL;
}

static void small_cnn(int64_t batch) {
    begin(13);
    input("x", D(batch, 3, 20, 20));
    conv_p p1 = {1, 3, 20, 20, 16, 3, 2, 1, 1, 1, true, NULL}, p2 = {1, 16, 10, 10, 16, 3, 1, 1, 1, 16, true, NULL};
    conv_node("x", "a", "w1", 3, &p1, false);
    node("Relu", "a", "b");
    conv_node("b", "c", "w2", 16, &p2, false);
    node("Add", "c,b", "d");
    node("GlobalAveragePool", "d", "e");
    ai(node("Flatten", "e", "f"), "axis", 1);
    weight("fw", -0.5f, 0.5f, D(16, 5));
    node("MatMul", "f,fw", "y");
    output("y");
}

static void test_threads(void) {
    /* two requests of one threads=2 model inferring at once on two threads give REF's result */
    small_cnn(2);
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, (size_t)1 << 30));
    si_cmodel *mc = NULL, *mr = NULL;
    CHECK_OK(compile_on(cpu, "2", &mc));
    CHECK_OK(compile_on(ref, NULL, &mr));
    if (!mc || !mr) return;
    si_tensor *in[2];
    for (int i = 0; i < 2; i++) {
        CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){2, 3, 20, 20}, &in[i]));
        fill_input(in[i], "x");
    }
    thr_arg args[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        args[i] = (thr_arg){mc, in[i], NULL, 20, SI_OK};
        pthread_create(&th[i], NULL, thr_main, &args[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(args[i].s);
        thr_arg ra = {mr, in[i], NULL, 1, SI_OK};
        thr_main(&ra);
        CHECK_OK(ra.s);
        if (args[i].out_copy && ra.out_copy) CHECK(compare("two threads at once, threads=2", i, args[i].out_copy, ra.out_copy));
        si_tensor_free(args[i].out_copy);
        si_tensor_free(ra.out_copy);
        si_tensor_free(in[i]);
    }
    mc->iface->free(mc);
    mr->iface->free(mr);
    si_graph_free(G);
    G = NULL;
}

static void test_dynamic(void) {
    /* batch known only at run time: the plan is built per input shape; a shape the port refuses is INVALID_ARG */
    small_cnn(-1);
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, (size_t)1 << 30));
    si_cmodel *mc = NULL, *mr = NULL;
    CHECK_OK(compile_on(cpu, NULL, &mc));
    CHECK_OK(compile_on(ref, NULL, &mr));
    if (!mc || !mr) return;
    si_ireq *rc, *rr;
    CHECK_OK(mc->iface->create_request(mc, &rc));
    CHECK_OK(mr->iface->create_request(mr, &rr));
    int64_t batches[] = {1, 3, 1, 2};
    for (size_t i = 0; i < SI_ARRAY_LEN(batches); i++) {
        si_tensor *in;
        int64_t dims[4] = {batches[i], 3, 20, 20};
        CHECK_OK(si_tensor_create(SI_F32, 4, dims, &in));
        fill_input(in, "x");
        CHECK_OK(rc->iface->set_input(rc, 0, in));
        CHECK_OK(rr->iface->set_input(rr, 0, in));
        CHECK_OK(rc->iface->infer(rc));
        CHECK_OK(rr->iface->infer(rr));
        si_tensor *oc, *orr;
        CHECK_OK(rc->iface->get_output(rc, 0, &oc));
        CHECK_OK(rr->iface->get_output(rr, 0, &orr));
        char what[64];
        snprintf(what, sizeof what, "dynamic batch %lld", (long long)batches[i]);
        CHECK(compare(what, 0, oc, orr));
        si_tensor_free(in);
    }
    si_tensor *bad;
    CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){1, 4, 20, 20}, &bad));
    CHECK_STATUS(rc->iface->set_input(rc, 0, bad), SI_ERR_INVALID_ARG);
    si_tensor_free(bad);
    rc->iface->free(rc);
    rr->iface->free(rr);
    mc->iface->free(mc);
    mr->iface->free(mr);
    si_graph_free(G);
    G = NULL;
    /* supports_op gives REF's answer: an unknown op is refused by both */
    begin(13);
    input("x", D(2, 2));
    node("NoSuchOp", "x", "y");
    output("y");
    CHECK_OK(si_graph_finalize(G));
    CHECK_STATUS(cpu->iface->supports_op(cpu, G, &G->nodes[0]), SI_ERR_UNSUPPORTED);
    CHECK_STATUS(ref->iface->supports_op(ref, G, &G->nodes[0]), SI_ERR_UNSUPPORTED);
    si_cmodel *m = NULL;
    CHECK_STATUS(compile_on(cpu, NULL, &m), SI_ERR_UNSUPPORTED);
    CHECK_STATUS(compile_on(cpu, "0", &m), SI_ERR_INVALID_ARG);
    si_graph_free(G);
    G = NULL;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    verbose = getenv("SI_TEST_VERBOSE") != NULL;
    setenv("SI_CPU_POISON", "1", 1);
    if (si_device_get("CPU", &cpu) || si_device_get("REF", &ref)) {
        printf("SKIP: no CPU device in this build (%s)\n", si_last_error());
        return 77;
    }
    test_conv();
    test_convtranspose();
    test_conv_chains();
    test_matmul();
    test_pool();
    test_eltwise();
    test_data();
    test_threads();
    test_dynamic();
    printf("test_cpu_ops: %d cases, %d checks, %d failed\n", n_cases, n_checks, n_failed);
    return n_failed ? 1 : 0;
}
