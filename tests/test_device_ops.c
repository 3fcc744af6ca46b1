/*
 * test_device_ops.c — the harness of the device-vs-REF op test (see test_device_ops.h): every case of
 * test_device_ops_cases.c is compiled on the device under test and on REF, run on the same random inputs
 * (twice on the device: the second infer reuses its buffers) and compared element by element within the
 * device's tolerance. A node the device refuses fails the case unless the case names the device in
 * `may_refuse`; REF must take every node.
 *
 * Per-device hooks: the CPU device's plan must contain the fast step a case names (and, where asked, no
 * reference-kernel step); its arena is poisoned with NaN (SI_CPU_POISON) so that reading a buffer before it
 * is written shows up. Further tests, for every device: integer model inputs (Cast), indices from a model
 * input (checked before each run, a bad one is INVALID_ARG and the request stays usable), requests of one
 * model inferring on several threads at once, the caller's mistakes (wrong shape, missing input), an
 * unknown op refused. For one device: CPU plans per input shape (dynamic batch) and rejects threads=0; OCL
 * names the reason of its refusals, reports a kernel build error and device memory exhaustion as compile
 * failures, and embeds kernels.cl as it is.
 */
#include "test_device_ops.h"
#include "device/cpu/cpu_stats.h"

#include "si_test.h"

#include <float.h>
#include <pthread.h>
#include <stdarg.h>
#include <strings.h>

/* Device hooks that exist only when the device is built in (weak: the test links without them). */
int si_cpu_plan_describe(const si_cmodel *m, char *buf, size_t n) __attribute__((weak));
bool si_cpu_int8_exact(void) __attribute__((weak));
extern const char *const si_ocl_kernel_lines[] __attribute__((weak));
extern const int si_ocl_kernel_n_lines __attribute__((weak));

/* The device under test. Tolerance: |dev - ref| <= rtol |ref| + atol + mtol max|ref|, and NMSE < nmse_max
 * where nmse_max > 0. */
typedef struct dop_device {
    const char *name;
    double rtol, atol, mtol, nmse_max;
    const char *mt_key, *mt_value; /* compile option of the model the threads test shares */
    void (*check_plan)(si_cmodel *m, const char *label, const dop_opts *o, bool *ok);
    void (*extra)(void); /* the device's own tests */
} dop_device;

static const dop_device *dev;
static si_device *dv, *ref;
static const char *filter;
static int n_cases, n_skipped, n_values;
static bool verbose;

// --- random numbers ---------------------------------------------------------------------------------------

static uint32_t rng_state = 2024;
static float frand(float lo, float hi) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return lo + (hi - lo) * (float)(rng_state >> 8) / (float)(1u << 24);
}

// --- graph building (the rest: test_graph.c) -----------------------------------------------------------------

void input(const char *name, const int64_t *dims, int nd) { input_typed(name, SI_F32, dims, nd); }

void input0(const char *name) { input(name, NULL, 0); }

void weight(const char *name, float lo, float hi, const int64_t *dims, int nd) {
    si_tensor *t;
    if (si_tensor_create(SI_F32, nd, dims, &t)) die("tensor");
    float *p = t->data;
    for (int64_t i = 0; i < si_tensor_count(t); i++) p[i] = frand(lo, hi);
    set_const(name, t);
}

// --- running and comparing ---------------------------------------------------------------------------------

static void fill_input(si_tensor *t, const char *name) {
    if (t->dtype == SI_F16) { /* float16 models: -2..2 rounded to float16 */
        uint16_t *h = t->data;
        for (int64_t i = 0; i < si_tensor_count(t); i++) h[i] = si_f32_to_f16(frand(-2, 2));
        return;
    }
    if ((t->dtype == SI_U8 || t->dtype == SI_I8) && !strncmp(name, "byte", 4)) { /* every pair of bytes: hi and lo */
        const bool hi = !strncmp(name, "bytehi", 6);
        for (int64_t i = 0; i < si_tensor_count(t); i++) ((uint8_t *)t->data)[i] = (uint8_t)(hi ? i >> 8 : i);
        return;
    }
    if (t->dtype != SI_F32) {
        for (int64_t i = 0; i < si_tensor_count(t); i++)
            si_store_i64(t->dtype, t->data, i, t->dtype == SI_BOOL ? i % 2 : (int64_t)frand(0, 5));
        return;
    }
    float lo = -2, hi = 2;
    bool nz = false;
    if (!strncmp(name, "pos", 3)) lo = 0.1f, hi = 3;
    else if (!strncmp(name, "unit", 4)) lo = -0.9f, hi = 0.9f;
    else if (!strncmp(name, "ge1", 3)) lo = 1.1f, hi = 3;
    else if (!strncmp(name, "nz", 2)) lo = 0.5f, hi = 2, nz = true;
    else if (!strncmp(name, "wide", 4)) lo = -40, hi = 40;
    float *p = t->data;
    for (int64_t i = 0; i < si_tensor_count(t); i++) {
        p[i] = frand(lo, hi);
        if (nz && frand(0, 1) < 0.5f) p[i] = -p[i];
    }
}

static int cur_qtol; /* the running case's dop_opts.qtol */

/* got (device) against want (REF) within the device's tolerance; prints the first mismatch. */
static bool same_tensor(const char *label, const char *oname, const si_tensor *got, const si_tensor *want) {
    char a[128], b[128];
    if (got->dtype != want->dtype || got->ndim != want->ndim ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->ndim)) {
        fprintf(stderr, "  %s: output %s is %s on %s, REF gives %s\n", label, oname,
                si_shape_str(a, sizeof a, got->dtype, got->ndim, got->dims), dev->name,
                si_shape_str(b, sizeof b, want->dtype, want->ndim, want->dims));
        return false;
    }
    int64_t n = si_shape_count(got->ndim, got->dims);
    n_values += (int)n;
    if (got->dtype == SI_F16 || got->dtype == SI_BF16) {
        /* float16 models: the device computes in float32 and rounds where the graph holds float16, REF rounds
         * after every op: within 1e-2 of the output's scale (what the CPU device promises for float16); bfloat16
         * has 3 mantissa bits fewer: 3e-2 (about 4 of its last-place units) */
        const bool bf = got->dtype == SI_BF16;
        const double tol = bf ? 3e-2 : 1e-2;
#define HALF_F(p, i) (bf ? si_bf16_to_f32((p)[i]) : si_f16_to_f32((p)[i]))
        const uint16_t *gh = got->data, *wh = want->data;
        double scale = 0, worst = 0;
        int64_t bad = -1;
        for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(HALF_F(wh, i)));
        for (int64_t i = 0; i < n; i++) {
            double e = fabs((double)HALF_F(gh, i) - HALF_F(wh, i));
            if (!(e <= tol * scale + 1e-3)) bad = bad < 0 ? i : bad;
            worst = fmax(worst, e);
        }
        if (verbose) printf("  %-60s out %s: max abs %.2e (scale %.3g)\n", label, oname, worst, scale);
        if (bad >= 0) {
            fprintf(stderr, "  %s: output %s[%lld] = %.6g on %s, REF gives %.6g (max abs err %.3g, scale %.3g)\n", label, oname,
                    (long long)bad, HALF_F(gh, bad), dev->name, HALF_F(wh, bad), worst, scale);
            return false;
        }
#undef HALF_F
        return true;
    }
    if ((got->dtype == SI_U8 || got->dtype == SI_I8) && cur_qtol > 0) {
        int64_t off = 0, worst = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t d = si_load_i64(got->dtype, got->data, i) - si_load_i64(want->dtype, want->data, i);
            d = d < 0 ? -d : d;
            off += d != 0, worst = d > worst ? d : worst;
        }
        if (verbose) printf("  %-60s out %s: %lld of %lld values differ, by at most %lld\n", label, oname, (long long)off, (long long)n,
                            (long long)worst);
        if (worst > cur_qtol) {
            fprintf(stderr, "  %s: output %s differs from REF by %lld units (at most %d allowed)\n", label, oname, (long long)worst, cur_qtol);
            return false;
        }
        return true;
    }
    if (got->dtype != SI_F32) {
        if (got->nbytes && memcmp(got->data, want->data, got->nbytes)) {
            fprintf(stderr, "  %s: output %s differs from REF\n", label, oname);
            return false;
        }
        return true;
    }
    const float *g = got->data, *w = want->data;
    double maxref = 0, maxabs = 0, se = 0, sr = 0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(w[i]) && fabs(w[i]) > maxref) maxref = fabs(w[i]);
    int64_t bad = -1;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)g[i] - (double)w[i]);
        if (isnan(w[i]) || isnan(g[i])) e = isnan(w[i]) && isnan(g[i]) ? 0 : INFINITY;
        else if (isinf(w[i]) && g[i] == w[i]) e = 0;
        se += e * e;
        sr += (double)w[i] * w[i];
        maxabs = fmax(maxabs, e);
        if (!(e <= dev->rtol * fabs(w[i]) + dev->atol + dev->mtol * maxref) && bad < 0) bad = i;
    }
    double nmse = sr > 0 ? se / sr : se;
    if (verbose) printf("  %-60s out %s: max abs %.2e, NMSE %.2e\n", label, oname, maxabs, nmse);
    if (bad >= 0) {
        fprintf(stderr, "  %s: output %s[%lld] = %.9g on %s, REF gives %.9g (max abs err %.3g)\n", label, oname,
                (long long)bad, g[bad], dev->name, w[bad], maxabs);
        return false;
    }
    if (dev->nmse_max > 0 && !(nmse < dev->nmse_max)) {
        fprintf(stderr, "  %s: output %s: NMSE %.3g (max abs err %.3g)\n", label, oname, nmse, maxabs);
        return false;
    }
    return true;
}

static bool listed(const char *list, const char *name) {
    size_t l = strlen(name);
    for (const char *p = list; p && (p = strstr(p, name)); p += l)
        if ((p == list || p[-1] == ',') && (p[l] == 0 || p[l] == ',')) return true;
    return false;
}

/* A compile option for the device: "ocl.gemm" applies to OCL only. */
static bool option_applies(const char *key) {
    size_t l = strcspn(key, ".");
    return strlen(dev->name) == l && !strncasecmp(dev->name, key, l);
}

static bool filtered_out(void) {
    if (!filter) return false;
    for (int i = 0; i < G->n_nodes; i++)
        if (!strcmp(G->nodes[i].op_type, filter)) return false;
    return true;
}

/* The tests below build their graph first: drop it when the filter excludes it. */
static bool filtered_skip(void) {
    if (!filtered_out()) return false;
    si_graph_free(G);
    G = NULL;
    return true;
}

static si_result compile_on(si_device *d, const char *key, const char *value, si_cmodel **out) {
    const char *keys[1] = {key}, *vals[1] = {value};
    si_options o = {key ? 1 : 0, keys, vals};
    si_compile_ctx cc = {.opts = &o};
    return d->iface->compile(d, G, key ? &cc : NULL, out);
}

void dop_run(const char *label, const dop_opts *o) {
    static const dop_opts none;
    if (!o) o = &none;
    cur_qtol = o->qtol;
    bool ok = false, skip = false;
    si_cmodel *md = NULL, *mr = NULL;
    si_ireq *rd = NULL, *rr = NULL;
    si_tensor *ins[16] = {0};
    if (filtered_out() || (o->opt_key && !(o->opt_device ? !strcasecmp(dev->name, o->opt_device) : option_applies(o->opt_key)))) {
        skip = true;
        goto out;
    }
    n_cases++;
    si_result s = si_graph_finalize(G);
    if (!s) s = si_graph_infer_shapes(G, 1 << 20);
    if (s) {
        fprintf(stderr, "  %s: graph: %s\n", label, si_last_error());
        goto out;
    }
    for (int i = 0; i < G->n_nodes; i++) {
        if (ref->iface->supports_op(ref, G, &G->nodes[i])) {
            fprintf(stderr, "  %s: REF refuses node %s: %s\n", label, G->nodes[i].op_type, si_last_error());
            goto out;
        }
        if (dv->iface->supports_op(dv, G, &G->nodes[i])) {
            if (listed(o->may_refuse, dev->name)) {
                if (verbose) printf("  %s: skipped: %s\n", label, si_last_error());
                n_skipped++;
                skip = true;
                goto out;
            }
            fprintf(stderr, "  %s: %s refuses node %s: %s\n", label, dev->name, G->nodes[i].op_type, si_last_error());
            goto out;
        }
    }
    if (compile_on(dv, o->opt_key, o->opt_value, &md)) {
        fprintf(stderr, "  %s: %s compile: %s\n", label, dev->name, si_last_error());
        goto out;
    }
    if (compile_on(ref, NULL, NULL, &mr)) {
        fprintf(stderr, "  %s: REF compile: %s\n", label, si_last_error());
        goto out;
    }
    ok = true;
    if (dev->check_plan) dev->check_plan(md, label, o, &ok);
    if (md->iface->create_request(md, &rd) || mr->iface->create_request(mr, &rr)) {
        fprintf(stderr, "  %s: create_request: %s\n", label, si_last_error());
        ok = false;
        goto out;
    }
    for (int i = 0; i < G->n_inputs && i < 16; i++) {
        const si_val *v = &G->values[G->inputs[i]];
        if (si_tensor_create(v->dtype, v->ndim, v->dims, &ins[i])) die("input");
        fill_input(ins[i], v->name);
        if (rd->iface->set_input(rd, i, ins[i]) || rr->iface->set_input(rr, i, ins[i])) {
            fprintf(stderr, "  %s: set_input: %s\n", label, si_last_error());
            ok = false;
            goto out;
        }
    }
    if (rr->iface->infer(rr)) {
        fprintf(stderr, "  %s: REF infer: %s\n", label, si_last_error());
        ok = false;
        goto out;
    }
    for (int rep = 0; rep < 2 && ok; rep++) { /* twice: the second infer reuses the device's buffers */
        if (rd->iface->infer(rd)) {
            fprintf(stderr, "  %s: %s infer: %s\n", label, dev->name, si_last_error());
            ok = false;
            break;
        }
        ok = md->n_outputs == mr->n_outputs;
        for (int k = 0; ok && k < md->n_outputs; k++) {
            si_tensor *a, *b;
            if (rd->iface->get_output(rd, k, &a) || rr->iface->get_output(rr, k, &b)) die("get_output");
            ok = same_tensor(label, md->outputs[k].name, a, b);
        }
    }
out:
    if (!skip) {
        n_checks++;
        if (!ok) {
            n_failed++;
            fprintf(stderr, "FAIL %s\n", label);
        }
    }
    if (rd) rd->iface->free(rd);
    if (rr) rr->iface->free(rr);
    if (md) md->iface->free(md);
    if (mr) mr->iface->free(mr);
    for (int i = 0; i < 16; i++) si_tensor_free(ins[i]);
    si_graph_free(G);
    G = NULL;
}

void dop_runf(const dop_opts *o, const char *fmt, ...) {
    char label[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    dop_run(label, o);
}

// --- tests of every device ----------------------------------------------------------------------------------

/* Compile the finished graph on the device and on REF; false (and nothing compiled) when the device refuses it
 * while allowed to. */
static bool compile_both(si_cmodel **md, si_cmodel **mr, const char *key, const char *value) {
    *md = *mr = NULL;
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    CHECK_OK(compile_on(dv, key, value, md));
    CHECK_OK(compile_on(ref, NULL, NULL, mr));
    return *md && *mr;
}

static void free_both(si_cmodel *md, si_cmodel *mr) {
    if (md) md->iface->free(md);
    if (mr) mr->iface->free(mr);
    si_graph_free(G);
    G = NULL;
}

/* One infer of a fresh request of each model on `in`; compares the first output. */
static void infer_compare(si_cmodel *md, si_cmodel *mr, si_tensor *in, const char *label) {
    si_ireq *rd = NULL, *rr = NULL;
    si_tensor *a = NULL, *b = NULL;
    CHECK_OK(md->iface->create_request(md, &rd));
    CHECK_OK(mr->iface->create_request(mr, &rr));
    if (rd && rr) {
        CHECK_OK(rd->iface->set_input(rd, 0, in));
        CHECK_OK(rr->iface->set_input(rr, 0, in));
        CHECK_OK(rd->iface->infer(rd));
        CHECK_OK(rr->iface->infer(rr));
        CHECK_OK(rd->iface->get_output(rd, 0, &a));
        CHECK_OK(rr->iface->get_output(rr, 0, &b));
        CHECK(a && b && same_tensor(label, "0", a, b));
    }
    if (rd) rd->iface->free(rd);
    if (rr) rr->iface->free(rr);
}

/* Integer and bool model inputs cast to float32. */
static void test_cast_inputs(void) {
    static const si_dtype types[] = {SI_I64, SI_I32, SI_BOOL, SI_U8};
    for (size_t t = 0; t < SI_ARRAY_LEN(types); t++) {
        begin(13);
        input_typed("i", types[t], D(3, 5));
        ai(node("Cast", "i", "f"), "to", SI_F32);
        node("Neg", "f", "y");
        output("y");
        if (filtered_skip()) continue;
        si_cmodel *md, *mr;
        si_tensor *in = NULL;
        CHECK_OK(si_tensor_create(types[t], 2, (const int64_t[]){3, 5}, &in));
        for (int i = 0; in && i < 15; i++)
            si_store_i64(types[t], in->data, i, types[t] == SI_BOOL ? i % 2 : (types[t] == SI_U8 ? 200 + i : 1000 * i - 7000));
        char label[64];
        snprintf(label, sizeof label, "Cast from %s", si_dtype_name(types[t]));
        if (compile_both(&md, &mr, NULL, NULL) && in) infer_compare(md, mr, in, label);
        si_tensor_free(in);
        free_both(md, mr);
    }
}

/* Gather of an embedding table with int64 indices from a model input: checked before each run; a bad index
 * is the caller's mistake (INVALID_ARG, as on REF) and the request stays usable. */
static void test_index_input(void) {
    begin(13);
    weight("table", -1, 1, D(20, 8));
    input_typed("ids", SI_I64, D(2, 3));
    node("Gather", "table,ids", "e");
    node("Relu", "e", "y");
    output("y");
    if (filtered_skip()) return;
    si_cmodel *md, *mr;
    si_ireq *rd = NULL;
    si_tensor *ids = NULL;
    CHECK_OK(si_tensor_create(SI_I64, 2, (const int64_t[]){2, 3}, &ids));
    if (compile_both(&md, &mr, NULL, NULL) && ids) {
        memcpy(ids->data, (const int64_t[]){3, 0, 19, -1, -20, 7}, 6 * sizeof(int64_t));
        infer_compare(md, mr, ids, "Gather with input indices");
        CHECK_OK(md->iface->create_request(md, &rd));
        if (rd) {
            CHECK_OK(rd->iface->set_input(rd, 0, ids));
            ((int64_t *)ids->data)[4] = 20; /* out of range */
            CHECK_ERR(rd->iface->infer(rd), SI_ERR_INVALID_ARG, "out of range");
            ((int64_t *)ids->data)[4] = 2;
            CHECK_OK(rd->iface->infer(rd));
            rd->iface->free(rd);
        }
        si_ireq *rr = NULL;
        CHECK_OK(mr->iface->create_request(mr, &rr));
        if (rr) {
            ((int64_t *)ids->data)[4] = 20;
            CHECK_OK(rr->iface->set_input(rr, 0, ids));
            CHECK_STATUS(rr->iface->infer(rr), SI_ERR_INVALID_ARG);
            rr->iface->free(rr);
        }
    }
    si_tensor_free(ids);
    free_both(md, mr);
}

/* A small CNN: convolutions, pooling, a residual Add, Gemm, Softmax. */
void dop_small_net(int64_t batch) {
    begin(13);
    input("image", D(batch, 3, 16, 16));
    weight("w1", -0.4f, 0.4f, D(8, 3, 3, 3));
    weight("b1", -0.1f, 0.1f, D(8));
    weight("w2", -0.4f, 0.4f, D(8, 1, 3, 3));
    weight("w3", -0.4f, 0.4f, D(16, 8, 1, 1));
    weight("fc", -0.3f, 0.3f, D(10, 16));
    weight("fcb", -0.1f, 0.1f, D(10));
    ais(node("Conv", "image,w1,b1", "c1"), "pads", D(1, 1, 1, 1));
    node("Relu", "c1", "r1");
    int n = node("MaxPool", "r1", "p1");
    ais(n, "kernel_shape", D(2, 2));
    ais(n, "strides", D(2, 2));
    n = node("Conv", "p1,w2", "c2");
    ai(n, "group", 8);
    ais(n, "pads", D(1, 1, 1, 1));
    node("Add", "c2,p1", "res");
    node("HardSwish", "res", "h");
    node("Conv", "h,w3", "c3");
    node("GlobalAveragePool", "c3", "g");
    node("Flatten", "g", "f");
    ai(node("Gemm", "f,fc,fcb", "logits"), "transB", 1);
    node("Softmax", "logits", "probs");
    output("probs");
    output("logits");
}

/* The two inputs of test_threads and REF's outputs for them. */
typedef struct thread_io {
    si_cmodel *m;
    const si_tensor *in[2], *want[2];
} thread_io;

/* A thread's own request of the model, 20 infers alternating between the two inputs (thread i starts at input
 * i % 2): the results must follow the input. */
static void thread_main(test_thread *t) {
    const thread_io *io = t->ctx;
    si_ireq *r = NULL;
    if (io->m->iface->create_request(io->m, &r)) { test_thread_failed(t, "create_request"); return; }
    for (int rep = 0; rep < 20 && !t->failed; rep++) {
        int k = (t->id + rep) % 2;
        si_tensor *out = NULL;
        if (r->iface->set_input(r, 0, (si_tensor *)io->in[k]) || r->iface->infer(r) || r->iface->get_output(r, 0, &out)) {
            test_thread_failed(t, "infer");
            break;
        }
        const float *a = out->data, *b = io->want[k]->data;
        for (int64_t i = 0; i < si_tensor_count(out); i++)
            if (fabsf(a[i] - b[i]) > 1e-4f + 1e-3f * fabsf(b[i])) {
                test_thread_failed(t, "output differs from REF");
                break;
            }
    }
    r->iface->free(r);
}

static void test_threads(void) {
    dop_small_net(1);
    if (filtered_skip()) return;
    si_cmodel *md, *mr;
    si_tensor *in[2] = {0}, *want[2] = {0};
    si_ireq *rr = NULL;
    if (compile_both(&md, &mr, dev->mt_key, dev->mt_value) && !mr->iface->create_request(mr, &rr)) {
        for (int k = 0; k < 2; k++) {
            CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){1, 3, 16, 16}, &in[k]));
            fill_input(in[k], "x");
            si_tensor *o = NULL;
            CHECK_OK(rr->iface->set_input(rr, 0, in[k]));
            CHECK_OK(rr->iface->infer(rr));
            CHECK_OK(rr->iface->get_output(rr, 0, &o));
            CHECK_OK(si_tensor_clone(o, &want[k]));
        }
        test_thread t[4];
        thread_io io = {md, {in[0], in[1]}, {want[0], want[1]}};
        int failed = 0;
        run_threads(t, 4, NULL, &io, thread_main, NULL, &failed);
        CHECK(failed == 0);
        si_ireq *r = NULL;
        si_tensor *o1 = NULL, *o2 = NULL;
        CHECK_OK(md->iface->create_request(md, &r));
        if (r) {
            CHECK_OK(r->iface->set_input(r, 0, in[0]));
            CHECK_OK(r->iface->infer(r));
            CHECK_OK(r->iface->get_output(r, 0, &o1));
            CHECK_OK(r->iface->set_input(r, 0, in[1]));
            CHECK_OK(r->iface->infer(r));
            CHECK_OK(r->iface->get_output(r, 0, &o2));
            CHECK(o1 == o2);
            si_tensor *bad = NULL;
            CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){2, 4, 16, 16}, &bad));
            CHECK_ERR(r->iface->set_input(r, 0, bad), SI_ERR_INVALID_ARG, "image");
            si_tensor_free(bad);
            r->iface->free(r);
        }
        CHECK_OK(md->iface->create_request(md, &r));
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
    free_both(md, mr);
}

/* An op nobody implements is refused by supports_op and by compile, on the device as on REF. */
static void test_unknown_op(void) {
    begin(13);
    input("x", D(2, 2));
    node("NoSuchOp", "x", "y");
    output("y");
    CHECK_OK(si_graph_finalize(G));
    CHECK_ERR(dv->iface->supports_op(dv, G, &G->nodes[0]), SI_ERR_UNSUPPORTED, "NoSuchOp");
    CHECK_ERR(ref->iface->supports_op(ref, G, &G->nodes[0]), SI_ERR_UNSUPPORTED, "NoSuchOp");
    si_cmodel *m = NULL;
    CHECK_STATUS(compile_on(dv, NULL, NULL, &m), SI_ERR_UNSUPPORTED);
    CHECK(m == NULL);
    si_graph_free(G);
    G = NULL;
}

// --- CPU ------------------------------------------------------------------------------------------------------

bool dop_cpu_avx512(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

static void cpu_check_plan(si_cmodel *m, const char *label, const dop_opts *o, bool *ok) {
    if (o->int8 && (!si_cpu_int8_exact || !si_cpu_int8_exact())) {
        if (verbose) printf("%s\n  plan not checked: this CPU's int8 products are not exact (no VNNI)\n", label);
        return;
    }
    if (!si_cpu_plan_describe) { /* a CPU device without its plan description: nothing could be checked */
        fprintf(stderr, "  %s: si_cpu_plan_describe is not linked in\n", label);
        *ok = false;
        return;
    }
    char steps[8192];
    int refs = si_cpu_plan_describe(m, steps, sizeof steps);
    if (verbose) printf("%s\n  plan: %s\n", label, steps);
    char names[8192]; /* the steps without their kernels: "A;B;C" sequences match */
    size_t k = 0;
    for (const char *s = steps; *s; s++) {
        if (s[0] == ' ' && s[1] == '[') {
            while (*s && *s != ']') s++;
            if (!*s) break;
            continue;
        }
        names[k++] = *s;
    }
    names[k] = 0;
    if (o->cpu_plan && (!o->avx512_plan || dop_cpu_avx512()) && !strstr(names, o->cpu_plan)) {
        fprintf(stderr, "  %s: expected a '%s' step, the CPU plan is: %s\n", label, o->cpu_plan, steps);
        *ok = false;
    }
    char kern[80];
    snprintf(kern, sizeof kern, "[%s]", o->cpu_kernel ? o->cpu_kernel : "");
    if (o->cpu_kernel && (dop_cpu_avx512() || strstr(o->cpu_kernel, "avx2")) && !strstr(steps, kern)) {
        fprintf(stderr, "  %s: expected a step on kernel '%s', the CPU plan is: %s\n", label, o->cpu_kernel, steps);
        *ok = false;
    }
    bool avoided = false; /* a step of the plan on cpu_avoid's kernel (among those named cpu_avoid_in...) */
    for (const char *st = steps; o->cpu_avoid && *st && !avoided;) {
        const char *end = strchr(st, ';');
        const size_t len = end ? (size_t)(end - st) : strlen(st);
        char one[1024];
        snprintf(one, sizeof one, "%.*s", (int)SI_MIN(len, sizeof one - 1), st);
        avoided = strstr(one, o->cpu_avoid) && (!o->cpu_avoid_in || !strncmp(one, o->cpu_avoid_in, strlen(o->cpu_avoid_in)));
        st += len + (end ? 1 : 0);
    }
    if (avoided) {
        fprintf(stderr, "  %s: expected no step on a '%s' kernel, the CPU plan is: %s\n", label, o->cpu_avoid, steps);
        *ok = false;
    }
    if (o->cpu_no_ref && refs != 0) {
        fprintf(stderr, "  %s: expected no reference-kernel step, the CPU plan is: %s\n", label, steps);
        *ok = false;
    }
}

/* The batch known only at run time: the plan is built per input shape; a shape the port refuses is
 * INVALID_ARG. threads=0 is a bad option. */
static void cpu_plans(void);
static void cpu_arenas(void);
static void cpu_prepack_rows(void);
static void prepare_param(bool cpu);

static void cpu_extra(void) {
    dop_small_net(-1);
    if (filtered_skip()) return;
    si_cmodel *md, *mr;
    si_ireq *rd = NULL, *rr = NULL;
    if (compile_both(&md, &mr, NULL, NULL) && !md->iface->create_request(md, &rd) && !mr->iface->create_request(mr, &rr)) {
        int64_t batches[] = {1, 3, 1, 2};
        for (size_t i = 0; i < SI_ARRAY_LEN(batches); i++) {
            si_tensor *in;
            CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){batches[i], 3, 16, 16}, &in));
            fill_input(in, "x");
            CHECK_OK(rd->iface->set_input(rd, 0, in));
            CHECK_OK(rr->iface->set_input(rr, 0, in));
            CHECK_OK(rd->iface->infer(rd));
            CHECK_OK(rr->iface->infer(rr));
            si_tensor *a, *b;
            CHECK_OK(rd->iface->get_output(rd, 0, &a));
            CHECK_OK(rr->iface->get_output(rr, 0, &b));
            char label[64];
            snprintf(label, sizeof label, "dynamic batch %lld", (long long)batches[i]);
            CHECK(same_tensor(label, "probs", a, b));
            si_tensor_free(in);
        }
        si_tensor *bad;
        CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){1, 4, 16, 16}, &bad));
        CHECK_STATUS(rd->iface->set_input(rd, 0, bad), SI_ERR_INVALID_ARG);
        si_tensor_free(bad);
    }
    if (rd) rd->iface->free(rd);
    if (rr) rr->iface->free(rr);
    free_both(md, mr);
    dop_small_net(1);
    CHECK_OK(si_graph_finalize(G));
    si_cmodel *m = NULL;
    CHECK_STATUS(compile_on(dv, "threads", "0", &m), SI_ERR_INVALID_ARG);
    si_graph_free(G);
    G = NULL;
    cpu_plans();
    cpu_arenas();
    cpu_prepack_rows();
    prepare_param(true);
}

/* Plans for new input shapes (the CPU device's plan cache and its store of packed weights). */

int si_cpu_plan_stats(const si_cmodel *m, si_cpu_plan_stats_t *st) __attribute__((weak));

/* got within 1e-3 (relative to the larger magnitude, or absolute near zero) of want; no globals touched (threads). */
static bool close_enough(const si_tensor *got, const si_tensor *want) {
    if (got->dtype != SI_F32 || got->dtype != want->dtype || got->ndim != want->ndim ||
        memcmp(got->dims, want->dims, sizeof(int64_t) * (size_t)got->ndim))
        return false;
    const float *a = got->data, *b = want->data;
    for (int64_t i = 0; i < si_tensor_count(got); i++)
        if (!(fabsf(a[i] - b[i]) <= 1e-3f * fmaxf(1.0f, fmaxf(fabsf(a[i]), fabsf(b[i]))))) return false;
    return true;
}

/* One infer on request r with input `in`; a copy of output 0 in *out (NULL on failure). */
static si_result infer_copy(si_ireq *r, si_tensor *in, si_tensor **out) {
    *out = NULL;
    si_tensor *y;
    si_result s = r->iface->set_input(r, 0, in);
    if (!s) s = r->iface->infer(r);
    if (!s) s = r->iface->get_output(r, 0, &y);
    if (!s) s = si_tensor_clone(y, out);
    return s;
}

#define PLAN_SHAPES 8

typedef struct plan_thread {
    si_cmodel *m;
    si_tensor **in, **want; /* per batch 1..PLAN_SHAPES (index batch - 1) */
    int id, runs, wrong, failed;
} plan_thread;

static void *plan_thread_run(void *arg) {
    plan_thread *t = arg;
    si_ireq *r = NULL;
    if (t->m->iface->create_request(t->m, &r)) {
        t->failed++;
        return NULL;
    }
    for (int i = 0; i < 24; i++) {
        int k = (t->id * 3 + i * (t->id + 1)) % PLAN_SHAPES; /* each thread its own walk over the shapes */
        si_tensor *y;
        if (infer_copy(r, t->in[k], &y)) {
            t->failed++;
            continue;
        }
        t->runs++;
        t->wrong += !close_enough(y, t->want[k]);
        si_tensor_free(y);
    }
    r->iface->free(r);
    return NULL;
}

/* The small CNN with its batch open, run at PLAN_SHAPES batch sizes, twice over, on one request with plan_cache=3:
 * every output equals REF's; compile packed the weights (the store has entries before the first inference) and
 * no inference at any of the batch sizes packs more (cpu.c prepack); a plan evicted and built again packs no weight again (the store's count stays
 * what the first pass made) and creates no oneDNN primitive descriptor (the store's cache of them); the cache keeps 3 plans, evicting the least recently used. Then four threads with a
 * request each walk the shapes with plan_cache=2: every output equals REF's, and when they are done no plan is
 * bound and at most 2 are kept. A bad plan_cache is refused by name. */
static void cpu_plans(void) {
    if (!si_cpu_plan_stats) {
        fprintf(stderr, "  cpu_plans: si_cpu_plan_stats is not linked in\n");
        CHECK(0);
        return;
    }
    si_tensor *in[PLAN_SHAPES], *want[PLAN_SHAPES];
    si_cmodel *md = NULL, *mr = NULL;
    dop_small_net(-1);
    if (!compile_both(&md, &mr, "plan_cache", "3")) {
        free_both(md, mr);
        return;
    }
    /* compile packed the weights ahead (probe plans at 1 and 16 rows), before any plan for a real shape */
    si_cpu_plan_stats_t stc = {0};
    CHECK(!si_cpu_plan_stats(md, &stc));
    CHECK(stc.weight_packs > 0 && stc.plans_cached == 0 && stc.plans_built == 0);
    si_ireq *rd = NULL, *rr = NULL;
    CHECK_OK(md->iface->create_request(md, &rd));
    CHECK_OK(mr->iface->create_request(mr, &rr));
    for (int k = 0; k < PLAN_SHAPES; k++) {
        CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){k + 1, 3, 16, 16}, &in[k]));
        fill_input(in[k], "x");
        want[k] = NULL;
        if (rr) CHECK_OK(infer_copy(rr, in[k], &want[k]));
    }
    si_cpu_plan_stats_t st0 = {0}, st = {0}, st1 = {0};
    int64_t packs_first = -1;
    for (int pass = 0; pass < 2 && rd; pass++)
        for (int i = 0; i < PLAN_SHAPES; i++) {
            int k = pass ? PLAN_SHAPES - 1 - i : i; /* the second pass backwards: the 3 most recent are cached */
            si_tensor *y = NULL;
            CHECK_OK(infer_copy(rd, in[k], &y));
            char label[64];
            snprintf(label, sizeof label, "plan_cache=3, pass %d, batch %d", pass, k + 1);
            if (y && want[k]) CHECK(same_tensor(label, "probs", y, want[k]));
            si_tensor_free(y);
            CHECK(!si_cpu_plan_stats(md, &st));
            if (pass == 0 && i == 0) st0 = st;
            if (pass == 0 && i == PLAN_SHAPES - 1) packs_first = st.weight_packs, st1 = st;
            CHECK(st.plans_cached <= 3);
        }
    if (rd) {
        if (verbose)
            printf("  plans: built %lld, evicted %lld, cached %d; weight packs %lld after one shape, %lld after all (%zu bytes)\n",
                   (long long)st.plans_built, (long long)st.plans_evicted, st.plans_cached, (long long)st0.weight_packs,
                   (long long)st.weight_packs, st.store_bytes);
        CHECK(st0.weight_packs > 0);                    /* the convolutions' and the Gemm's weights */
        CHECK(st.weight_packs == stc.weight_packs);     /* every batch 1..8 found its weights packed at compile */
        CHECK(st.store_bytes == stc.store_bytes);
        CHECK(st.weight_packs == packs_first);          /* plans built again for evicted shapes pack nothing */
        /* and create no primitive descriptor: each one is a clone of the one made the first time */
        CHECK(st1.pd_made > 0 && st.pd_made == st1.pd_made && st.pd_reused > st1.pd_reused);
        CHECK(st.plans_built == PLAN_SHAPES + PLAN_SHAPES - 3); /* 3 shapes were still cached for the second pass */
        CHECK(st.plans_evicted == st.plans_built - 3);
        CHECK(st.plans_cached == 3 && st.plans_bound == 1);
    }
    if (rd) rd->iface->free(rd);
    if (rr) rr->iface->free(rr);
    if (md) {
        CHECK(!si_cpu_plan_stats(md, &st));
        CHECK(st.plans_bound == 0 && st.plans_cached == 3);
        md->iface->free(md);
        md = NULL;
    }

    /* requests on several threads, each at its own shapes, with room for 2 plans */
    CHECK_OK(compile_on(dv, "plan_cache", "2", &md));
    if (md) {
        plan_thread t[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
            t[i] = (plan_thread){.m = md, .in = in, .want = want, .id = i};
            CHECK(!pthread_create(&th[i], NULL, plan_thread_run, &t[i]));
        }
        int runs = 0, wrong = 0, failed = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(th[i], NULL);
            runs += t[i].runs, wrong += t[i].wrong, failed += t[i].failed;
        }
        CHECK(failed == 0 && wrong == 0 && runs == 4 * 24);
        CHECK(!si_cpu_plan_stats(md, &st));
        if (verbose) printf("  4 threads, plan_cache=2: %d runs, %d wrong; plans built %lld, cached %d\n", runs, wrong, (long long)st.plans_built, st.plans_cached);
        CHECK(st.plans_bound == 0 && st.plans_cached <= 2);
        CHECK(st.weight_packs == packs_first);
        md->iface->free(md);
    }
    for (int k = 0; k < PLAN_SHAPES; k++) {
        si_tensor_free(in[k]);
        si_tensor_free(want[k]);
    }
    si_graph_free(G);
    G = NULL;
    if (mr) mr->iface->free(mr);

    dop_small_net(1);
    CHECK_OK(si_graph_finalize(G));
    const char *bad[] = {"1025", "-1", "x", ""};
    for (size_t i = 0; i < SI_ARRAY_LEN(bad); i++) {
        si_cmodel *m = NULL;
        CHECK_ERR(compile_on(dv, "plan_cache", bad[i], &m), SI_ERR_INVALID_ARG, "plan_cache");
        CHECK(m == NULL);
    }
    si_graph_free(G);
    G = NULL;
}

void si_cpu_arena_stats(si_cpu_arena_stats_t *st) __attribute__((weak));

/* The arena pool (cpu_arena.c): two compiled models (the small CNN, batch open), a request of each, inferring in
 * turn at batch sizes that grow and shrink: every output equals REF's, and the requests share one arena (one is
 * allocated, grown at most when a larger batch first comes, and lent to every inference). While one of them runs
 * no other does, so no second arena is made. When the last request is freed the pool holds nothing. */
static void cpu_arenas(void) {
    if (!si_cpu_arena_stats) {
        fprintf(stderr, "  cpu_arenas: si_cpu_arena_stats is not linked in\n");
        CHECK(0);
        return;
    }
    si_cmodel *m1 = NULL, *m2 = NULL, *mr = NULL;
    dop_small_net(-1);
    if (!compile_both(&m1, &mr, NULL, NULL) || compile_on(dv, NULL, NULL, &m2) || !m2) {
        CHECK(0);
        if (m2) m2->iface->free(m2);
        free_both(m1, mr);
        return;
    }
    si_ireq *r1 = NULL, *r2 = NULL, *rr = NULL;
    CHECK_OK(m1->iface->create_request(m1, &r1));
    CHECK_OK(m2->iface->create_request(m2, &r2));
    CHECK_OK(mr->iface->create_request(mr, &rr));
    si_cpu_arena_stats_t st0, st1, st2;
    si_cpu_arena_stats(&st0);
    const int batches[] = {2, 2, 5, 1, 5, 3, 4, 1};
    int ran = 0;
    for (size_t i = 0; r1 && r2 && rr && i < SI_ARRAY_LEN(batches); i++) {
        si_tensor *in = NULL, *y = NULL, *want = NULL;
        CHECK_OK(si_tensor_create(SI_F32, 4, (const int64_t[]){batches[i], 3, 16, 16}, &in));
        if (!in) break;
        fill_input(in, "x");
        CHECK_OK(infer_copy(rr, in, &want));
        CHECK_OK(infer_copy(i % 2 ? r2 : r1, in, &y));
        char label[64];
        snprintf(label, sizeof label, "shared arena, request %d, batch %d", (int)(i % 2) + 1, batches[i]);
        if (y && want) {
            CHECK(same_tensor(label, "probs", y, want));
            ran++;
        }
        si_tensor_free(in);
        si_tensor_free(y);
        si_tensor_free(want);
    }
    si_cpu_arena_stats(&st1);
    if (verbose)
        printf("  arenas: %d inferences, %lld made, %lld grown, %lld lent\n", ran, (long long)(st1.made - st0.made),
               (long long)(st1.grown - st0.grown), (long long)(st1.lent - st0.lent));
    CHECK(ran == (int)SI_ARRAY_LEN(batches));
    CHECK(st1.made - st0.made <= 1);                          /* at most one new arena for all eight ... */
    CHECK(st1.made - st0.made + st1.grown - st0.grown <= 2); /* ... grown once at most (batch 2, then 5) */
    CHECK(st1.lent - st0.lent >= ran);                        /* every inference borrowed one */
    if (r1) r1->iface->free(r1);
    if (r2) r2->iface->free(r2);
    if (rr) rr->iface->free(rr);
    m2->iface->free(m2);
    free_both(m1, mr);
    si_cpu_arena_stats(&st2);
    CHECK(st2.idle == 0 && st2.idle_bytes == 0); /* the last request took the pool's arenas with it */
}

/* A MatMul of open rows times constant weights: compile packs the weights once, in one layout that serves few
 * rows (decode) and many (prefill) alike (the probe plans at 1 and 16 rows share the matmul layout rather than
 * adding the inner product's: one store entry, not two); inferences at 1, 3 and 40 rows equal REF's and pack
 * nothing more. */
static void cpu_prepack_rows(void) {
    begin(13);
    input("x", D(-1, 64));
    weight("w", -0.3f, 0.3f, D(64, 48));
    node("MatMul", "x,w", "y");
    output("y");
    si_cmodel *md = NULL, *mr = NULL;
    if (!compile_both(&md, &mr, NULL, NULL)) {
        free_both(md, mr);
        return;
    }
    si_cpu_plan_stats_t st0 = {0}, st = {0};
    CHECK(!si_cpu_plan_stats(md, &st0));
    if (verbose) printf("  prepack rows: after compile %lld packs, %d entries, %zu bytes\n", (long long)st0.weight_packs, st0.store_entries, st0.store_bytes);
    CHECK(st0.weight_packs == 1 && st0.store_entries == 1);
    CHECK(st0.store_bytes >= 64 * 48 * sizeof(float) && st0.store_bytes < 2 * 64 * 48 * sizeof(float));
    const int64_t rows[] = {1, 3, 40};
    for (size_t i = 0; i < SI_ARRAY_LEN(rows); i++) {
        si_tensor *in = NULL;
        CHECK_OK(si_tensor_create(SI_F32, 2, (const int64_t[]){rows[i], 64}, &in));
        if (!in) continue;
        fill_input(in, "x");
        char label[48];
        snprintf(label, sizeof label, "prepack rows %lld", (long long)rows[i]);
        infer_compare(md, mr, in, label);
        si_tensor_free(in);
    }
    CHECK(!si_cpu_plan_stats(md, &st));
    CHECK(st.weight_packs == st0.weight_packs && st.store_bytes == st0.store_bytes);
    free_both(md, mr);
}

/* A parameter input (a function body's weight, bound per call): prepare_input takes the constant it will be bound
 * to (a second time too) and refuses a tensor of another size by name; inferences bound to the constant at 1 and 5
 * rows give the product computed here. On CPU: compile packs nothing for the parameter, prepare_input packs it once,
 * and the inferences pack nothing more (the OCL device's upload is not observable here). */
static void prepare_param(bool cpu) {
    begin(13);
    input("x", D(-1, 8));
    input("w", D(8, 6));
    node("MatMul", "x,w", "y");
    output("y");
    CHECK_OK(si_graph_finalize(G));
    int wv = si_graph_find_value(G, "w");
    CHECK(wv >= 0);
    if (wv < 0) return;
    G->values[wv].is_param = true;
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    si_cmodel *md = NULL;
    si_tensor *w = NULL, *bad = NULL;
    CHECK_OK(compile_on(dv, NULL, NULL, &md));
    CHECK_OK(si_tensor_create(SI_F32, 2, (const int64_t[]){8, 6}, &w));
    CHECK_OK(si_tensor_create(SI_F32, 2, (const int64_t[]){8, 5}, &bad));
    if (md && w && bad) {
        for (int i = 0; i < 48; i++) ((float *)w->data)[i] = frand(-1, 1);
        si_cpu_plan_stats_t st = {0};
        CHECK(!cpu || (!si_cpu_plan_stats(md, &st) && st.weight_packs == 0));
        CHECK_OK(si_cmodel_prepare_input(md, 1, w));
        CHECK(!cpu || (!si_cpu_plan_stats(md, &st) && st.weight_packs == 1));
        CHECK_OK(si_cmodel_prepare_input(md, 1, w)); /* packed already */
        CHECK_ERR(si_cmodel_prepare_input(md, 1, bad), SI_ERR_INVALID_ARG, cpu ? "parameter input 1" : "parameter 'w'");
        CHECK_STATUS(si_cmodel_prepare_input(md, 2, w), SI_ERR_INVALID_ARG);
        si_ireq *r = NULL;
        CHECK_OK(md->iface->create_request(md, &r));
        for (int rows = 1; r && rows <= 5; rows += 4) {
            si_tensor *x = NULL, *y = NULL;
            CHECK_OK(si_tensor_create(SI_F32, 2, (const int64_t[]){rows, 8}, &x));
            if (!x) break;
            fill_input(x, "x");
            CHECK_OK(r->iface->set_input(r, 0, x));
            CHECK_OK(r->iface->set_input(r, 1, w));
            CHECK_OK(r->iface->infer(r));
            CHECK_OK(r->iface->get_output(r, 0, &y));
            const float *xa = x->data, *wa = w->data;
            for (int i = 0; y && i < rows; i++)
                for (int j = 0; j < 6; j++) {
                    float want = 0;
                    for (int k = 0; k < 8; k++) want += xa[i * 8 + k] * wa[k * 6 + j];
                    CHECK(fabsf(((const float *)y->data)[i * 6 + j] - want) < 1e-4f);
                }
            si_tensor_free(x);
        }
        if (r) r->iface->free(r);
        CHECK(!cpu || (!si_cpu_plan_stats(md, &st) && st.weight_packs == 1));
    }
    if (md) md->iface->free(md); /* first: the CPU store holds a reference on the constant it packed */
    si_tensor_free(w);
    si_tensor_free(bad);
    si_graph_free(G);
    G = NULL;
}

// --- OCL ------------------------------------------------------------------------------------------------------

/* supports_op of the graph's last node. */
static si_result support_of(void) {
    si_result s = si_graph_finalize(G);
    if (!s) s = si_graph_infer_shapes(G, 1 << 20);
    if (!s) s = dv->iface->supports_op(dv, G, &G->nodes[G->n_nodes - 1]);
    return s;
}

/* The device refuses the graph's last node with a message containing `why`; frees the graph. */
static void expect_refusal(const char *why) {
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, why);
    si_graph_free(G);
    G = NULL;
}

static void ocl_refusals(void) {
    begin(14); /* int64 data */
    input_typed("i", SI_I64, D(3));
    node("Add", "i,i", "y");
    output("y");
    expect_refusal("int64");

    begin(12);
    input("x", D(1, 2, 4, 4));
    ais(node("MaxPool", "x", "y,idx"), "kernel_shape", D(2, 2));
    output("y");
    output("idx");
    expect_refusal("Indices");

    begin(13);
    input("x", D(2, 3));
    node("Hardmax", "x", "y");
    output("y");
    expect_refusal("Hardmax");

    begin(13); /* the shape comes from a computed value */
    input("x", D(2, 3));
    input_typed("sh", SI_I64, D(2));
    node("Reshape", "x,sh", "y");
    output("y");
    expect_refusal("constant");

    begin(17);
    input("x", D(2, 3));
    input("s", D(3));
    ai(node("LayerNormalization", "x,s", "y"), "stash_type", 11);
    output("y");
    expect_refusal("stash_type");

    begin(13); /* an open dimension is taken (planned per input shape at the first inference: test_ocl_shapes) */
    input("x", D(2, 3));
    G->values[G->inputs[0]].dims[0] = -1;
    node("Relu", "x", "y");
    output("y");
    CHECK_OK(support_of());
    si_cmodel *m = NULL;
    CHECK_OK(dv->iface->compile(dv, G, NULL, &m));
    if (m) m->iface->free(m);
    m = NULL;
    si_graph_free(G);

    begin(13); /* an unknown rank is refused */
    input("x", D(2, 3));
    G->values[G->inputs[0]].ndim = -1;
    node("Relu", "x", "y");
    output("y");
    CHECK_ERR(support_of(), SI_ERR_UNSUPPORTED, "unknown shape");
    CHECK_ERR(dv->iface->compile(dv, G, NULL, &m), SI_ERR_UNSUPPORTED, "rank");
    si_graph_free(G);

    /* a driver's compiler error is a compile failure (DEVICE) naming the build log */
    begin(13);
    input("x", D(2, 3));
    node("Relu", "x", "y");
    output("y");
    CHECK_OK(si_graph_finalize(G));
    CHECK_ERR(compile_on(dv, "ocl.build_options", "-DSI_OCL_TEST_BUILD_ERROR", &m), SI_ERR_DEVICE, "deliberate build failure");
    CHECK(m == NULL);
    si_graph_free(G);

    /* out of device memory: a DEVICE failure naming it (a device whose largest allocation is 256 bytes) */
    dop_small_net(1);
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    CHECK_ERR(compile_on(dv, "ocl.max_alloc_bytes", "256", &m), SI_ERR_DEVICE, "out of device memory");
    CHECK(m == NULL);
    si_graph_free(G);
    G = NULL;

    si_device *d = NULL;
    CHECK_ERR(si_device_get("OCL.63", &d), SI_ERR_UNSUPPORTED, "no OpenCL device 63");
    CHECK_OK(si_device_get("OCL.0", &d));
    CHECK(d == dv);
}

/* The embedded kernel source (ocl_kernels.c, generated by the build) is kernels.cl as it is. */
static void ocl_kernel_source(void) {
    CHECK(si_ocl_kernel_lines != NULL);
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
        fprintf(stderr, "the embedded kernels (ocl_kernels.c, made by the build) differ from kernels.cl: rebuild\n");
    }
    free(file);
}

static void ocl_extra(void) {
    ocl_kernel_source();
    if (!filter) ocl_refusals();
    if (!filter) prepare_param(false);
}

// --- main -------------------------------------------------------------------------------------------------------

static const dop_device devices[] = {
    {"CPU", 1e-3, 0, 1e-5, 1e-8, "threads", "2", cpu_check_plan, cpu_extra},
    {"OCL", 1e-3, 1e-5, 1e-4, 0, NULL, NULL, NULL, ocl_extra},
    {"REF", 0, 0, 0, 0, NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_device_ops DEVICE [OP]\n");
        return 2;
    }
    for (size_t i = 0; i < SI_ARRAY_LEN(devices); i++)
        if (!strncasecmp(argv[1], devices[i].name, 3)) dev = &devices[i];
    if (!dev) {
        fprintf(stderr, "test_device_ops: no settings for device %s\n", argv[1]);
        return 2;
    }
    filter = argc > 2 ? argv[2] : NULL;
    verbose = getenv("SI_TEST_VERBOSE") != NULL;
    setenv("SI_CPU_POISON", "1", 1);
    if (si_device_get(argv[1], &dv)) {
        printf("SKIP: device %s is not available: %s\n", argv[1], si_last_error());
        return 77;
    }
    CHECK_OK(si_device_get("REF", &ref));
    for (int g = 0; g < dop_n_groups; g++) {
        if (verbose) printf("--- %s\n", dop_groups[g].name);
        dop_groups[g].run();
    }
    test_cast_inputs();
    test_index_input();
    test_threads();
    if (!filter) test_unknown_op();
    if (dev->extra) dev->extra();
    fprintf(stderr, "test_device_ops %s%s%s: %d cases (%d skipped by the device, %d output values compared)\n",
            dev->name, filter ? " " : "", filter ? filter : "", n_cases, n_skipped, n_values);
    if (filter && n_cases == 0) {
        fprintf(stderr, "test_device_ops: no case has a node of op %s\n", filter);
        return 1;
    }
    return test_summary("test_device_ops");
}
