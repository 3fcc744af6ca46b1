/*
 * test_hostile.c — hostile models: small files that declare huge things. Each must get its named error
 * (status and a message naming the problem) before the huge thing costs anything.
 *
 *   test_hostile [BUILD_DIR]     temp files go to a fresh folder under BUILD_DIR (default /tmp)
 *
 * The models are written here with a minimal protobuf writer (nothing large on disk). Every case runs in a
 * child process whose peak resident memory (wait4's ru_maxrss) must stay under CASE_RSS_MAX, and without
 * sanitizers also under an address-space limit (RLIMIT_AS), so that "refused after allocating it" fails the
 * test as surely as a crash does.
 *
 * Cases: int64 overflow of initializer dims and of declared input shapes; initializers whose declared size
 * does not match their data (raw, typed, external); external data offsets and lengths outside the file or
 * overflowing; constant folding and shape inference of ConstantOfShape / Expand / Tile / Range / Resize to
 * petabyte shapes; many medium folds adding up; subgraph and type nesting 100000 levels deep; a run-time
 * shape from input values that is absurd; the compile property max_memory_mb (compile-time folds, run-time
 * buffers, a bad value); and the budget's accounting itself (charge, refuse, realloc, a free on another
 * thread gives the bytes back). Nodes without outputs, and every op with its first output absent ("").
 */
#include "si_test.h"
#include "device/device.h" /* si_device_get: is the CPU device built in */
#include "ops/ops.h"   /* si_op_all: every op, for the absent-output sweep */
#include "util/util.h" /* the budget mechanism itself (si_budget_*) */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/time.h>

#if defined(__SANITIZE_THREAD__)
#define SANITIZED 2
#elif defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SANITIZED 2
#elif __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* ASan: an allocation refused by the library is its named error, not a report. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* peak RSS per case: the sanitizers' shadow memory counts too (ThreadSanitizer's is several times the heap) */
#define CASE_RSS_MAX_MB (SANITIZED == 2 ? 2048 : SANITIZED ? 600 : 200)
#define CASE_AS_MAX ((rlim_t)4 << 30)

static char tmp_dir[4096];
static char case_msg[2048]; /* the message of a case that cleaned up after its failure (else si_last_error) */

// --- a minimal protobuf writer ------------------------------------------------------------------------------

typedef struct pb {
    uint8_t *p;
    size_t n, cap;
} pb;

static void pb_raw(pb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) { fprintf(stderr, "out of memory\n"); exit(2); }
        b->p = np;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void pb_varint(pb *b, uint64_t v) {
    uint8_t t[10];
    int k = 0;
    do { t[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
    pb_raw(b, t, (size_t)k);
}
static void pb_int(pb *b, int field, int64_t v) { pb_varint(b, (uint64_t)field << 3); pb_varint(b, (uint64_t)v); }
static void pb_bytes(pb *b, int field, const void *d, size_t n) {
    pb_varint(b, (uint64_t)field << 3 | 2);
    pb_varint(b, n);
    pb_raw(b, d, n);
}
static void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
/* Append sub as field `field` and free sub. */
static void pb_msg(pb *b, int field, pb *sub) {
    pb_bytes(b, field, sub->p, sub->n);
    free(sub->p);
    memset(sub, 0, sizeof *sub);
}

/* TensorProto: dims, data_type, name, and raw data (may be NULL: no data field at all). */
static pb tensor(const char *name, int dtype, int ndim, const int64_t *dims, const void *raw, size_t raw_len) {
    pb t = {0};
    for (int i = 0; i < ndim; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, dtype);
    pb_str(&t, 8, name);
    if (raw) pb_bytes(&t, 9, raw, raw_len);
    return t;
}
static pb tensor_i64(const char *name, int n, const int64_t *vals) {
    int64_t dims[1] = {n};
    return tensor(name, 7, 1, dims, vals, sizeof(int64_t) * (size_t)n);
}
static pb tensor_f32(const char *name, int n, const float *vals) {
    int64_t dims[1] = {n};
    return tensor(name, 1, 1, dims, vals, sizeof(float) * (size_t)n);
}
/* ValueInfoProto of a tensor type (dims < 0: a symbolic dimension "N"). */
static pb value_info(const char *name, int dtype, int ndim, const int64_t *dims) {
    pb shape = {0}, tt = {0}, type = {0}, vi = {0};
    for (int i = 0; i < ndim; i++) {
        pb d = {0};
        if (dims[i] >= 0) pb_int(&d, 1, dims[i]);
        else pb_str(&d, 2, "N");
        pb_msg(&shape, 1, &d);
    }
    pb_int(&tt, 1, dtype);
    pb_msg(&tt, 2, &shape);
    pb_msg(&type, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    return vi;
}
/* NodeProto with inputs/outputs (NULL-terminated lists) and optional attributes already encoded. */
static pb node(const char *op, const char *const *ins, const char *const *outs, pb *attrs, int n_attrs) {
    pb n = {0};
    for (int i = 0; ins && ins[i]; i++) pb_str(&n, 1, ins[i]);
    for (int i = 0; outs && outs[i]; i++) pb_str(&n, 2, outs[i]);
    pb_str(&n, 4, op);
    for (int i = 0; i < n_attrs; i++) pb_msg(&n, 5, &attrs[i]);
    return n;
}
static pb attr_tensor(const char *name, pb *t) {
    pb a = {0};
    pb_str(&a, 1, name);
    pb_msg(&a, 5, t);
    pb_int(&a, 20, 4);
    return a;
}

typedef struct graph_parts {
    pb nodes[300];
    int n_nodes;
    pb inits[8];
    int n_inits;
    pb inputs[4];
    int n_inputs;
    pb outputs[300];
    int n_outputs;
} graph_parts;

/* The default domain's opset of the models model() makes. */
static int64_t model_opset = 17;

/* ModelProto (IR version 8, default opset model_opset) around the graph; frees the parts. */
static pb model(graph_parts *gp) {
    pb g = {0}, m = {0}, op = {0};
    for (int i = 0; i < gp->n_nodes; i++) pb_msg(&g, 1, &gp->nodes[i]);
    pb_str(&g, 2, "hostile");
    for (int i = 0; i < gp->n_inits; i++) pb_msg(&g, 5, &gp->inits[i]);
    for (int i = 0; i < gp->n_inputs; i++) pb_msg(&g, 11, &gp->inputs[i]);
    for (int i = 0; i < gp->n_outputs; i++) pb_msg(&g, 12, &gp->outputs[i]);
    pb_int(&m, 1, 8);
    pb_msg(&m, 7, &g);
    pb_str(&op, 1, "");
    pb_int(&op, 2, model_opset);
    pb_msg(&m, 8, &op);
    return m;
}

// --- running a case in a child: its status, message and peak memory ------------------------------------------

typedef si_result (*case_fn)(void);

/* Run fn in a child; it must return `want` with `sub` in the message, within CASE_RSS_MAX_MB of peak RSS. */
static void expect(const char *name, case_fn fn, si_result want, const char *sub) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        if (!SANITIZED) {
            struct rlimit rl = {CASE_AS_MAX, CASE_AS_MAX};
            setrlimit(RLIMIT_AS, &rl);
        }
        si_result got = fn();
        const char *msg = case_msg[0] ? case_msg : si_last_error();
        bool ok = got == want && (want == SI_OK || (msg && *msg && strstr(msg, sub)));
        fprintf(stderr, "  %-34s %s: %s\n", name, si_result_str(got), got ? msg : "ok");
        if (!ok) fprintf(stderr, "  %-34s expected %s with \"%s\" in the message\n", name, si_result_str(want), sub);
        fflush(stderr);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    n_checks++;
    if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        n_failed++;
        fprintf(stderr, "%s:%d: CHECK failed: case %s %s\n", __FILE__, __LINE__, name,
                WIFSIGNALED(st) ? "crashed" : "did not get its named error");
        return;
    }
    long rss_mb = ru.ru_maxrss / 1024;
    n_checks++;
    if (rss_mb > CASE_RSS_MAX_MB) {
        n_failed++;
        fprintf(stderr, "%s:%d: CHECK failed: case %s peaked at %ld MiB resident (limit %d)\n", __FILE__, __LINE__, name,
                rss_mb, CASE_RSS_MAX_MB);
    }
}

static si_result load_pb(pb *m, si_model **out) {
    si_result s = si_model_load_memory(m->p, m->n, tmp_dir, out);
    free(m->p);
    memset(m, 0, sizeof *m);
    return s;
}

/* Load only: the status (the model is freed). */
static si_result load_only(pb *m) {
    si_model *mo = NULL;
    si_result s = load_pb(m, &mo);
    si_model_free(mo);
    return s;
}

/* Load; when it loads, compile on REF with the config's key/value pairs given (NULL-terminated, at most 8 pairs;
 * NULL: none) and run once with the inputs given (float32 / int64 tensors made by the case, freed here). */
static si_result load_compile_run(pb *m, const char *const *kv, si_tensor **inputs, int n_inputs) {
    si_model *mo = NULL;
    const char *all[20] = {"devices", "REF"};
    for (int i = 0; kv && kv[i] && i < 16; i++) all[2 + i] = kv[i];
    si_result s = load_pb(m, &mo);
    if (s) snprintf(case_msg, sizeof case_msg, "%s", si_last_error());
    else s = compile_infer_once(mo, all, inputs, n_inputs, case_msg, sizeof case_msg);
    si_model_free(mo);
    for (int i = 0; i < n_inputs; i++) si_tensor_free(inputs[i]);
    return s;
}

/* Relu(X) with X of the given declared shape, plus one initializer (unused by the node, but loaded). */
static pb relu_with_init(pb init, int xdims_n, const int64_t *xdims) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", NULL}, *const out[] = {"Y", NULL};
    gp.nodes[gp.n_nodes++] = node("Relu", in, out, NULL, 0);
    if (init.p) gp.inits[gp.n_inits++] = init;
    gp.inputs[gp.n_inputs++] = value_info("X", 1, xdims_n, xdims);
    gp.outputs[gp.n_outputs++] = value_info("Y", 1, xdims_n, xdims);
    return model(&gp);
}

static const int64_t two[1] = {2};

// --- the cases ----------------------------------------------------------------------------------------------

/* dims 2^32 x 2^32 x 2^32: the element count overflows int64 */
static si_result init_dims_overflow(void) {
    int64_t d[3] = {(int64_t)1 << 32, (int64_t)1 << 32, (int64_t)1 << 32};
    float x = 1;
    pb m = relu_with_init(tensor("W", 1, 3, d, &x, 4), 1, two);
    return load_only(&m);
}

/* 2^50 float32 elements declared, 4 bytes of raw data */
static si_result init_huge_raw_short(void) {
    int64_t d[2] = {(int64_t)1 << 25, (int64_t)1 << 25};
    float x = 1;
    pb m = relu_with_init(tensor("W", 1, 2, d, &x, 4), 1, two);
    return load_only(&m);
}

/* 2^50 int64 elements declared, one typed value */
static si_result init_huge_typed_short(void) {
    int64_t d[2] = {(int64_t)1 << 25, (int64_t)1 << 25};
    pb t = tensor("W", 7, 2, d, NULL, 0);
    pb_int(&t, 7, 5); /* int64_data: one value */
    pb m = relu_with_init(t, 1, two);
    return load_only(&m);
}

/* narrow element types: an int4 [5] initializer needs 3 packed bytes; 2 are given */
static si_result int4_raw_short(void) {
    int64_t d[1] = {5};
    uint8_t raw[2] = {0x21, 0x43};
    pb m = relu_with_init(tensor("W", 22, 1, d, raw, 2), 1, two);
    return load_only(&m);
}

/* an int4 [5] initializer in int32_data (one packed byte per value): 3 needed, 1 given */
static si_result int4_int32_short(void) {
    int64_t d[1] = {5};
    pb t = tensor("W", 22, 1, d, NULL, 0);
    pb_int(&t, 5, 0x21);
    pb m = relu_with_init(t, 1, two);
    return load_only(&m);
}

/* a float8e4m3fn [4] initializer with 3 bytes of raw data */
static si_result float8_raw_short(void) {
    int64_t d[1] = {4};
    uint8_t raw[3] = {0x38, 0x40, 0x48};
    pb m = relu_with_init(tensor("W", 17, 1, d, raw, 3), 1, two);
    return load_only(&m);
}

/* Relu of a float8e4m3fn input: no kernel reads float8 but Cast, CastLike and the (de)quantizers */
static si_result relu_float8(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", NULL}, *const out[] = {"Y", NULL};
    gp.nodes[gp.n_nodes++] = node("Relu", in, out, NULL, 0);
    gp.inputs[gp.n_inputs++] = value_info("X", 17, 1, two);
    gp.outputs[gp.n_outputs++] = value_info("Y", 17, 1, two);
    pb m = model(&gp);
    si_tensor *x = NULL;
    si_result s = si_tensor_create(SI_F8E4M3FN, 1, two, &x);
    if (s) return s;
    return load_compile_run(&m, NULL, &x, 1);
}

/* DFT (opset 20) of a [1, 4, 1] signal along axis 2, the last dimension (which holds the complex parts) */
static si_result dft_axis_out_of_range(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", "", "axis", NULL}, *const out[] = {"Y", NULL};
    int64_t xd[3] = {1, 4, 1}, ax = 2;
    gp.nodes[gp.n_nodes++] = node("DFT", in, out, NULL, 0);
    gp.inits[gp.n_inits++] = tensor("axis", 7, 0, NULL, &ax, sizeof ax);
    gp.inputs[gp.n_inputs++] = value_info("X", 1, 3, xd);
    gp.outputs[gp.n_outputs++] = value_info("Y", 1, 3, (int64_t[3]){1, 4, 2});
    model_opset = 20;
    pb m = model(&gp);
    model_opset = 17;
    si_tensor *x = NULL;
    si_result s = si_tensor_create(SI_F32, 3, xd, &x);
    if (s) return s;
    return load_compile_run(&m, NULL, &x, 1);
}

/* a graph input declared [INT64_MAX, 16] */
static si_result input_dims_overflow(void) {
    int64_t d[2] = {INT64_MAX, 16};
    pb m = relu_with_init((pb){0}, 2, d);
    return load_only(&m);
}

/* external data: an initializer of 2^40 floats whose data would be at (offset, length) of ext.bin */
static si_result external(int64_t dim, const char *offset, const char *length) {
    int64_t d[1] = {dim};
    pb t = tensor("W", 1, 1, d, NULL, 0);
    const char *kv[3][2] = {{"location", "ext.bin"}, {"offset", offset}, {"length", length}};
    for (int i = 0; i < 3; i++) {
        if (!kv[i][1]) continue;
        pb e = {0};
        pb_str(&e, 1, kv[i][0]);
        pb_str(&e, 2, kv[i][1]);
        pb_msg(&t, 13, &e);
    }
    pb_int(&t, 14, 1); /* data_location = EXTERNAL */
    pb m = relu_with_init(t, 1, two);
    return load_only(&m);
}
static si_result ext_huge_no_length(void) { return external((int64_t)1 << 40, "0", NULL); }
static si_result ext_huge_length(void) { return external((int64_t)1 << 40, "0", "4398046511104"); }
static si_result ext_offset_past_end(void) { return external(4, "1000000", "16"); }
static si_result ext_offset_overflow(void) { return external(4, "9223372036854775807", "16"); }
static si_result ext_offset_negative(void) { return external(4, "-8", "16"); }
static si_result ext_length_overflow(void) { return external(4, "0", "99999999999999999999"); }

/* A one-node model: out = op(X, S), or op(S) without X, where X is a float32 graph input [2] and S the int64
 * initializer named s_name holding [n] values v, and out a float32 graph output of unknown shape; loaded,
 * compiled on REF with max_memory_mb = budget (NULL: none) and run once with no inputs fed. */
static si_result shape_op(const char *op, bool with_x, const char *s_name, int n, const int64_t *v, const char *out_name,
                          const char *budget) {
    graph_parts gp = {0};
    const char *in[] = {with_x ? "X" : s_name, with_x ? s_name : NULL, NULL}, *out[] = {out_name, NULL};
    gp.nodes[gp.n_nodes++] = node(op, in, out, NULL, 0);
    gp.inits[gp.n_inits++] = tensor_i64(s_name, n, v);
    if (with_x) gp.inputs[gp.n_inputs++] = value_info("X", 1, 1, two);
    gp.outputs[gp.n_outputs++] = value_info(out_name, 1, 0, NULL);
    pb m = model(&gp);
    const char *cfg[] = {"max_memory_mb", budget, NULL};
    return load_compile_run(&m, budget ? cfg : NULL, NULL, 0);
}

/* C = ConstantOfShape(S) with S = [2^25, 2^25]: a 4 PiB constant */
static si_result constant_of_shape_huge(void) {
    int64_t shape[2] = {(int64_t)1 << 25, (int64_t)1 << 25};
    return shape_op("ConstantOfShape", false, "S", 2, shape, "C", NULL);
}

/* Y = Expand(X[2], S) with S = [2^24, 2^24, 2] */
static si_result expand_huge(void) {
    int64_t shape[3] = {(int64_t)1 << 24, (int64_t)1 << 24, 2};
    return shape_op("Expand", true, "S", 3, shape, "Y", NULL);
}

/* Y = Tile(X[2], R) with R = [2^50] */
static si_result tile_huge(void) {
    int64_t reps[1] = {(int64_t)1 << 50};
    return shape_op("Tile", true, "R", 1, reps, "Y", NULL);
}

/* Y = Range(0, 2^52, 1) in float32 */
static si_result range_huge(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"A", "B", "D", NULL}, *const out[] = {"Y", NULL};
    gp.nodes[gp.n_nodes++] = node("Range", in, out, NULL, 0);
    float a = 0, b = 4503599627370496.0f, d = 1;
    gp.inits[gp.n_inits++] = tensor("A", 1, 0, NULL, &a, 4);
    gp.inits[gp.n_inits++] = tensor("B", 1, 0, NULL, &b, 4);
    gp.inits[gp.n_inits++] = tensor("D", 1, 0, NULL, &d, 4);
    gp.outputs[gp.n_outputs++] = value_info("Y", 1, 0, NULL);
    pb m = model(&gp);
    return load_compile_run(&m, NULL, NULL, 0);
}

/* Y = Resize(X[1,1,2,2], scales [1, 1, 2^24, 2^24]) */
static si_result resize_huge(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", "", "SC", NULL}, *const out[] = {"Y", NULL};
    gp.nodes[gp.n_nodes++] = node("Resize", in, out, NULL, 0);
    float sc[4] = {1, 1, 16777216.0f, 16777216.0f};
    gp.inits[gp.n_inits++] = tensor_f32("SC", 4, sc);
    int64_t xd[4] = {1, 1, 2, 2};
    gp.inputs[gp.n_inputs++] = value_info("X", 1, 4, xd);
    gp.outputs[gp.n_outputs++] = value_info("Y", 1, 0, NULL);
    pb m = model(&gp);
    return load_compile_run(&m, NULL, NULL, 0);
}

/* 256 ConstantOfShape nodes of 1 MiB each (each under the per-node fold limit at load), all outputs: the
 * folds at load stop at their total limit; the compile under max_memory_mb=32 cannot hold every output at
 * run time and says so. */
static si_result many_medium_folds(void) {
    graph_parts gp = {0};
    int64_t shape[1] = {(int64_t)1 << 18}; /* float32: 1 MiB */
    gp.inits[gp.n_inits++] = tensor_i64("S", 1, shape);
    static char names[256][16];
    for (int i = 0; i < 256; i++) {
        snprintf(names[i], sizeof names[i], "C%d", i);
        const char *in[] = {"S", NULL}, *out[] = {names[i], NULL};
        float one = 1;
        int64_t d1[1] = {1};
        pb t = tensor("value", 1, 1, d1, &one, 4);
        pb a = attr_tensor("value", &t);
        gp.nodes[gp.n_nodes++] = node("ConstantOfShape", in, out, &a, 1);
        gp.outputs[gp.n_outputs++] = value_info(names[i], 1, 0, NULL);
    }
    pb m = model(&gp);
    static const char *const cfg[] = {"max_memory_mb", "32", NULL};
    return load_compile_run(&m, cfg, NULL, 0);
}

/* ConstantOfShape [2^24] float32 (64 MiB; folded at compile) with max_memory_mb = budget (NULL: none) */
static si_result compile_fold(const char *budget) {
    int64_t shape[1] = {(int64_t)1 << 24};
    return shape_op("ConstantOfShape", false, "S", 1, shape, "C", budget);
}
/* under max_memory_mb=16: refused at compile */
static si_result budget_compile_fold(void) { return compile_fold("16"); }
/* the same model without a budget compiles and runs (64 MiB is fine) */
static si_result no_budget_compile_fold(void) { return compile_fold(NULL); }

/* Y = Expand(X[1], S) with S a graph input: the shape comes at run time, [2^16, 2^16] (16 GiB); under
 * max_memory_mb=256 the run-time allocation is refused by name. */
static si_result expand_runtime(const char *budget, int64_t d0, int64_t d1) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", "S", NULL}, *const out[] = {"Y", NULL};
    gp.nodes[gp.n_nodes++] = node("Expand", in, out, NULL, 0);
    int64_t one[1] = {1};
    gp.inputs[gp.n_inputs++] = value_info("X", 1, 1, one);
    gp.inputs[gp.n_inputs++] = value_info("S", 7, 1, two);
    gp.outputs[gp.n_outputs++] = value_info("Y", 1, 0, NULL);
    pb m = model(&gp);
    si_tensor *ins[2] = {NULL, NULL};
    int64_t sdims[1] = {2};
    if (si_tensor_create(SI_F32, 1, one, &ins[0]) || si_tensor_create(SI_I64, 1, sdims, &ins[1])) exit(2);
    int64_t *sv = si_tensor_data(ins[1]);
    sv[0] = d0;
    sv[1] = d1;
    const char *cfg[] = {"max_memory_mb", budget, NULL};
    return load_compile_run(&m, budget ? cfg : NULL, ins, 2);
}
static si_result runtime_budget(void) { return expand_runtime("256", (int64_t)1 << 16, (int64_t)1 << 16); }
static si_result runtime_absurd(void) { return expand_runtime(NULL, (int64_t)1 << 25, (int64_t)1 << 25); }
static si_result runtime_small_ok(void) { return expand_runtime("256", 64, 64); }

static si_result budget_bad_value(void) {
    si_config *c = NULL;
    si_result s = si_config_create(&c);
    if (!s) s = si_config_set(c, "max_memory_mb", "lots");
    si_config_free(c);
    return s;
}

static size_t varint_len(uint64_t v) {
    size_t n = 1;
    while (v > 0x7f) { v >>= 7; n++; }
    return n;
}
static size_t field_len(int field, size_t body) { return varint_len((uint64_t)field << 3 | 2) + varint_len(body) + body; }

/* If nodes whose then_branch holds an If whose then_branch holds ... `levels` deep (about 30 bytes a level).
 * Written outside in, every length computed first, so that building it is linear. */
#define DEEP 100000
static pb nested_ifs(int levels) {
    static size_t graph_len[DEEP + 1], node_len[DEEP + 1], attr_len[DEEP + 1];
    const size_t head_attr = field_len(1, 11) + 3, /* name, type (tag 160: two bytes) */
                  head_node = field_len(1, 1) + field_len(2, 1) + field_len(4, 2);
    graph_len[0] = 0; /* the innermost then_branch: an empty graph */
    for (int i = 1; i <= levels; i++) {
        attr_len[i] = head_attr + field_len(6, graph_len[i - 1]);
        node_len[i] = head_node + field_len(5, attr_len[i]);
        graph_len[i] = field_len(1, node_len[i]);
    }
    pb g = {0};
    for (int i = levels; i >= 1; i--) {
        pb_varint(&g, 1 << 3 | 2); /* GraphProto.node */
        pb_varint(&g, node_len[i]);
        pb_str(&g, 1, "c");
        pb_str(&g, 2, "y");
        pb_str(&g, 4, "If");
        pb_varint(&g, 5 << 3 | 2); /* NodeProto.attribute */
        pb_varint(&g, attr_len[i]);
        pb_str(&g, 1, "then_branch");
        pb_int(&g, 20, 5); /* type GRAPH, before g: the field order is free */
        pb_varint(&g, 6 << 3 | 2); /* AttributeProto.g */
        pb_varint(&g, graph_len[i - 1]);
    }
    return g;
}

static si_result load_graph_bytes(pb *g) {
    pb m = {0}, op = {0};
    pb_int(&m, 1, 8);
    pb_msg(&m, 7, g);
    pb_str(&op, 1, "");
    pb_int(&op, 2, 17);
    pb_msg(&m, 8, &op);
    return load_only(&m);
}

static si_result deep_subgraphs(void) {
    pb g = nested_ifs(DEEP);
    return load_graph_bytes(&g);
}

/* a graph input of type sequence(sequence(...(tensor float))) 100000 levels deep, written outside in */
static si_result deep_types(void) {
    static size_t type_len[DEEP + 1], seq_len[DEEP + 1];
    type_len[0] = field_len(1, 2); /* TypeProto.tensor_type { elem_type: 1 } */
    for (int i = 1; i <= DEEP; i++) {
        seq_len[i] = field_len(1, type_len[i - 1]);
        type_len[i] = field_len(4, seq_len[i]);
    }
    pb g = {0};
    pb_varint(&g, 11 << 3 | 2); /* GraphProto.input */
    pb_varint(&g, field_len(1, 1) + field_len(2, type_len[DEEP]));
    pb_str(&g, 1, "X");
    pb_varint(&g, 2 << 3 | 2); /* ValueInfoProto.type */
    pb_varint(&g, type_len[DEEP]);
    for (int i = DEEP; i >= 1; i--) {
        pb_varint(&g, 4 << 3 | 2); /* TypeProto.sequence_type */
        pb_varint(&g, seq_len[i]);
        pb_varint(&g, 1 << 3 | 2); /* Sequence.elem_type */
        pb_varint(&g, type_len[i - 1]);
    }
    pb tt = {0};
    pb_int(&tt, 1, 1);
    pb_msg(&g, 1, &tt);
    return load_graph_bytes(&g);
}

/* nesting within the limits passes the nesting guard (an If two levels deep): the subgraphs load and the If, which
 * has no else_branch, is refused by its own rules */
static si_result shallow_subgraphs(void) {
    pb g = {0};
    for (int level = 0; level < 2; level++) {
        pb a = {0}, n = {0}, outer = {0};
        pb_str(&a, 1, "then_branch");
        pb_msg(&a, 6, &g);
        pb_int(&a, 20, 5);
        pb_str(&n, 1, "X");
        pb_str(&n, 2, level ? "Y" : "Z");
        pb_str(&n, 4, "If");
        pb_msg(&n, 5, &a);
        pb_msg(&outer, 1, &n);
        g = outer;
    }
    pb vi = value_info("X", 9, 0, NULL), vo = value_info("Y", 1, 0, NULL);
    pb_msg(&g, 11, &vi);
    pb_msg(&g, 12, &vo);
    pb m = {0}, op = {0};
    pb_int(&m, 1, 8);
    pb_msg(&m, 7, &g);
    pb_str(&op, 1, "");
    pb_int(&op, 2, 17);
    pb_msg(&m, 8, &op);
    return load_only(&m);
}

/* a TensorProto file declaring 2^50 elements with no data */
static si_result pb_tensor_huge(void) {
    int64_t d[2] = {(int64_t)1 << 25, (int64_t)1 << 25};
    pb t = tensor("T", 1, 2, d, NULL, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/huge.pb", tmp_dir);
    write_all(path, t.p, t.n);
    free(t.p);
    si_tensor *out = NULL;
    char *name = NULL;
    si_result s = si_tensor_read_pb(path, &out, &name);
    si_tensor_free(out);
    si_free_string(name);
    return s;
}

/* a model file whose initializer's raw_data (2 KiB, left in the file by the streaming reader) does not match
 * its shape [2] */
static si_result streamed_raw_mismatch(void) {
    static float raw[512];
    int64_t d[1] = {2};
    pb m = relu_with_init(tensor("W", 1, 1, d, raw, sizeof raw), 1, two);
    char path[4200];
    snprintf(path, sizeof path, "%s/streamed.onnx", tmp_dir);
    write_all(path, m.p, m.n);
    free(m.p);
    si_model *mo = NULL;
    si_result s = si_model_load(path, &mo);
    si_model_free(mo);
    return s;
}

/* a node without outputs (every ONNX op has one; kernels write output 0) */
static si_result node_without_outputs(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", "X", NULL};
    gp.nodes[gp.n_nodes++] = node("Or", in, NULL, NULL, 0);
    gp.inputs[gp.n_inputs++] = value_info("X", 9, 1, two);
    gp.outputs[gp.n_outputs++] = value_info("X", 9, 1, two);
    pb m = model(&gp);
    return load_compile_run(&m, NULL, NULL, 0);
}

static void *free_it(void *p) {
    si_free(p);
    return NULL;
}

/* The accounting under a budget of 8 MiB: live bytes of blocks >= SI_BIG_ALLOC, given back on free. */
static void budget_accounting(void) {
    si_budget b;
    si_budget_init(&b, (int64_t)8 << 20);
    si_budget *prev = si_budget_enter(&b);
    void *small = si_malloc(1000); /* not counted */
    CHECK(small && b.used == 0);
    void *p = si_malloc((size_t)4 << 20);
    CHECK(p && b.used == (int64_t)4 << 20);
    CHECK(si_malloc((size_t)5 << 20) == NULL); /* 4 + 5 > 8 */
    CHECK(b.used == (int64_t)4 << 20);
    CHECK_ERR(si_mem_check((size_t)5 << 20, "five"), SI_ERR_NO_MEM, "five: 5.0 MiB would exceed the memory budget max_memory_mb=8");
    CHECK_OK(si_mem_check((size_t)4 << 20, "four"));
    void *q = si_realloc(p, (size_t)6 << 20);
    CHECK(q && b.used == (int64_t)6 << 20);
    CHECK(si_realloc(q, (size_t)9 << 20) == NULL && b.used == (int64_t)6 << 20); /* refused: q unchanged */
    void *z = si_calloc(1, (size_t)2 << 20);
    CHECK(z && b.used == (int64_t)8 << 20 && b.peak == (int64_t)8 << 20);
    si_budget_leave(prev);
    pthread_t t; /* a free on another thread, outside any budget, still gives the bytes back */
    CHECK(pthread_create(&t, NULL, free_it, q) == 0 && pthread_join(t, NULL) == 0);
    CHECK(b.used == (int64_t)2 << 20);
    si_free(z);
    si_free(small);
    CHECK(b.used == 0);
    si_budget_destroy(&b);
    /* the process cap applies to every big allocation, with or without a budget */
    size_t cap = si_mem_cap();
    si_mem_set_cap((size_t)16 << 20);
    CHECK(si_malloc((size_t)17 << 20) == NULL);
    CHECK_ERR(si_mem_check((size_t)17 << 20, "cap"), SI_ERR_NO_MEM, "more than this process may allocate at once (16.0 MiB)");
    si_mem_set_cap(cap);
}

/* Tensor blocks kept for reuse by the budget entered when they are dropped (si_budget_keep / si_budget_reuse):
 * the next tensor of about the size takes the same block; blocks are kept only while a budget is entered, at most
 * SI_RECYCLE_SLOTS of them (oldest dropped); kept blocks stay charged, and go before the budget refuses. */
static void budget_kept_blocks(void) {
    si_budget b;
    si_budget_init(&b, (int64_t)8 << 20);
    si_budget *prev = si_budget_enter(&b);
    si_tensor t = {0};
    CHECK_OK(si_tensor_init(&t, SI_F32, 1, (int64_t[]){196608})); /* 768 KiB */
    CHECK_OK(si_tensor_alloc(&t));
    void *first = t.data;
    ((float *)t.data)[5] = 3.0f;
    si_tensor_release(&t);
    CHECK(b.rc_n == 1);
    CHECK_OK(si_tensor_init(&t, SI_F32, 1, (int64_t[]){180000})); /* a little smaller: the same block, zero-filled */
    CHECK_OK(si_tensor_alloc(&t));
    CHECK(t.data == first && t.cap == (size_t)196608 * 4 && ((float *)t.data)[5] == 0.0f && b.rc_n == 0);
    si_tensor_release(&t);
    CHECK_OK(si_tensor_init(&t, SI_F32, 1, (int64_t[]){49152})); /* a quarter: that block is too big for it */
    CHECK_OK(si_tensor_alloc(&t));
    CHECK(t.data != first && b.rc_n == 1);
    si_tensor_release(&t);
    CHECK(b.rc_n == 2);
    si_tensor small = {0}; /* under SI_PREFAULT_MIN: never kept */
    CHECK_OK(si_tensor_init(&small, SI_F32, 1, (int64_t[]){100}));
    CHECK_OK(si_tensor_alloc(&small));
    si_tensor_release(&small);
    CHECK(b.rc_n == 2);
    /* a kept 6 MiB block stays charged; an allocation the budget could not take otherwise frees the kept ones */
    CHECK_OK(si_tensor_init(&t, SI_U8, 1, (int64_t[]){(int64_t)6 << 20}));
    CHECK_OK(si_tensor_alloc(&t));
    si_tensor_release(&t);
    CHECK(b.rc_n == 3 && b.used == (int64_t)6 << 20);
    void *p = si_malloc((size_t)5 << 20);
    CHECK(p && b.rc_n == 0 && b.used == (int64_t)5 << 20);
    si_free(p);
    for (int i = 0; i < SI_RECYCLE_SLOTS + 3; i++) { /* more blocks than slots: the oldest go */
        si_tensor u = {0};
        CHECK_OK(si_tensor_init(&u, SI_U8, 1, (int64_t[]){(int64_t)(128 + 4 * i) << 10}));
        CHECK_OK(si_tensor_alloc(&u));
        void *keep = u.data;
        u.owned = false; /* park it: released below */
        CHECK(si_budget_keep(keep, u.nbytes));
    }
    CHECK(b.rc_n == SI_RECYCLE_SLOTS);
    si_budget_leave(prev);
    si_tensor_init(&t, SI_F32, 1, (int64_t[]){65536}); /* no budget entered: neither kept nor reused */
    CHECK_OK(si_tensor_alloc(&t));
    si_tensor_release(&t);
    CHECK(b.rc_n == SI_RECYCLE_SLOTS);
    si_budget_destroy(&b); /* frees the kept blocks (ASan: no leak) */
    CHECK(b.rc_n == 0);
}

/* TopK with its values output absent (""), only the indices asked for: the kernel still has somewhere to
 * write the values, and the indices are right. */
static si_result topk_values_absent(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", "K", NULL}, *const out[] = {"", "I", NULL};
    gp.nodes[gp.n_nodes++] = node("TopK", in, out, NULL, 0);
    int64_t k[1] = {2}, three[1] = {3};
    gp.inits[gp.n_inits++] = tensor_i64("K", 1, k);
    gp.inputs[gp.n_inputs++] = value_info("X", 1, 1, three);
    gp.outputs[gp.n_outputs++] = value_info("I", 7, 0, NULL);
    pb m = model(&gp);
    si_model *mo = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    si_tensor *x = NULL, *idx = NULL;
    si_result s = load_pb(&m, &mo);
    if (!s) s = si_compile(mo, NULL, &cm);
    if (!s) s = si_request_create(cm, &rq);
    if (!s) s = si_tensor_create(SI_F32, 1, three, &x);
    if (!s) {
        float *xv = si_tensor_data(x);
        xv[0] = 3, xv[1] = 1, xv[2] = 2;
        s = si_request_set_input(rq, 0, x);
    }
    if (!s) s = si_request_infer(rq);
    if (!s) s = si_request_get_output(rq, 0, &idx);
    if (!s) {
        const int64_t *iv = si_tensor_data(idx);
        if (si_tensor_count(idx) != 2 || iv[0] != 0 || iv[1] != 2) s = SI_ERR_INTERNAL; /* wrong indices */
    }
    if (s) snprintf(case_msg, sizeof case_msg, "%s", s == SI_ERR_INTERNAL ? "wrong indices" : si_last_error());
    si_request_free(rq);
    si_tensor_free(x);
    si_compiled_free(cm);
    si_model_free(mo);
    return s;
}

/* Softplus(X) -> (Y, Z): Z is not an output Softplus has. Found by fuzz_model/fuzz_model_file after the merge
 * with main (tests/fuzz/regress): Z came back as an untyped tensor. With X's shape known the graph stage
 * refuses it; with the shape known only at run time (Reshape to an input shape) the device does. */
static const char *extra_output_devices = "REF";
static si_result extra_output(bool runtime_shape) {
    graph_parts gp = {0};
    static const char *const rin[] = {"X", "S", NULL}, *const rout[] = {"R", NULL};
    static const char *const in_known[] = {"X", NULL}, *const in_runtime[] = {"R", NULL};
    static const char *const out[] = {"Y", "Z", NULL};
    int64_t four[1] = {4}, one[1] = {1};
    if (runtime_shape) gp.nodes[gp.n_nodes++] = node("Reshape", rin, rout, NULL, 0);
    gp.nodes[gp.n_nodes++] = node("Softplus", runtime_shape ? in_runtime : in_known, out, NULL, 0);
    gp.inputs[gp.n_inputs++] = value_info("X", 1, 1, four);
    if (runtime_shape) gp.inputs[gp.n_inputs++] = value_info("S", 7, 1, one);
    gp.outputs[gp.n_outputs++] = value_info("Y", 1, 1, four);
    gp.outputs[gp.n_outputs++] = value_info("Z", 1, 1, four);
    pb m = model(&gp);
    si_tensor *ins[2] = {NULL, NULL};
    if (si_tensor_create(SI_F32, 1, four, &ins[0])) exit(2);
    if (runtime_shape) {
        if (si_tensor_create(SI_I64, 1, one, &ins[1])) exit(2);
        ((int64_t *)si_tensor_data(ins[1]))[0] = 4;
    }
    const char *const cfg[] = {"devices", extra_output_devices, NULL};
    return load_compile_run(&m, cfg, ins, runtime_shape ? 2 : 1);
}
static si_result extra_output_known(void) { return extra_output(false); }
static si_result extra_output_runtime(void) { return extra_output(true); }

/* Every version of every op of the default domain (at an opset its version covers) as OP(X, X, X) -> ("", Y1, Y2), the first output absent, Y1 the graph
 * output, X float32[2,2]: any status is fine (most ops refuse three inputs), a crash is not (Shape, Size,
 * Identity, NonZero and EyeLike wrote through a NULL output when folded or run). */
static const char *sweep_op;
static si_result first_output_absent(void) {
    graph_parts gp = {0};
    static const char *const in[] = {"X", "X", "X", NULL}, *const out[] = {"", "Y1", "Y2", NULL};
    gp.nodes[gp.n_nodes++] = node(sweep_op, in, out, NULL, 0);
    int64_t d[2] = {2, 2};
    gp.inputs[gp.n_inputs++] = value_info("X", 1, 2, d);
    gp.outputs[gp.n_outputs++] = value_info("Y1", 1, 0, NULL);
    pb m = model(&gp);
    si_tensor *x = NULL;
    if (si_tensor_create(SI_F32, 2, d, &x)) exit(2);
    si_result s = load_compile_run(&m, NULL, &x, 1);
    return s == SI_OK || *si_last_error() || case_msg[0] ? SI_OK : SI_ERR_INTERNAL; /* an error must be named */
}

int main(int argc, char **argv) {
    budget_accounting();
    budget_kept_blocks();
    make_temp_dir(tmp_dir, sizeof tmp_dir, argc > 1 ? argv[1] : NULL, "hostile");
    char ext[4200];
    snprintf(ext, sizeof ext, "%s/ext.bin", tmp_dir);
    write_all(ext, "0123456789abcdef0123456789abcdef", 32);

    expect("initializer dims overflow", init_dims_overflow, SI_ERR_PARSE, "shape too large");
    expect("initializer 2^50 elements, raw", init_huge_raw_short, SI_ERR_PARSE, "raw_data has 4 bytes");
    expect("initializer 2^50 elements, typed", init_huge_typed_short, SI_ERR_PARSE, "1 values stored");
    expect("input dims overflow", input_dims_overflow, SI_ERR_PARSE, "declared shape");
    expect("external 2^40 floats, no length", ext_huge_no_length, SI_ERR_PARSE, "shorter than offset");
    expect("external 2^40 floats, length", ext_huge_length, SI_ERR_PARSE, "shorter than offset");
    expect("external offset past the end", ext_offset_past_end, SI_ERR_PARSE, "shorter than offset 1000000");
    expect("external offset INT64_MAX", ext_offset_overflow, SI_ERR_PARSE, "shorter than offset");
    expect("external offset negative", ext_offset_negative, SI_ERR_PARSE, "bad external data offset");
    expect("external length overflows", ext_length_overflow, SI_ERR_PARSE, "bad external data length");
    expect("ConstantOfShape 4 PiB", constant_of_shape_huge, SI_ERR_NO_MEM, "more than this process may allocate");
    expect("Expand 2 PiB", expand_huge, SI_ERR_NO_MEM, "more than this process may allocate");
    expect("Tile 8 PiB", tile_huge, SI_ERR_NO_MEM, "more than this process may allocate");
    expect("Range 16 PiB", range_huge, SI_ERR_NO_MEM, "more than this process may allocate");
    expect("Resize 1 PiB", resize_huge, SI_ERR_NO_MEM, "more than this process may allocate");
    expect("256 folds of 1 MiB, budget 32 MiB", many_medium_folds, SI_ERR_NO_MEM, "max_memory_mb=32");
    expect("fold of 64 MiB, budget 16 MiB", budget_compile_fold, SI_ERR_NO_MEM, "max_memory_mb=16");
    expect("fold of 64 MiB, no budget", no_budget_compile_fold, SI_OK, "");
    expect("run-time 16 GiB, budget 256 MiB", runtime_budget, SI_ERR_NO_MEM, "(Expand) output 0: float32[65536,65536]: 16.0 GiB would exceed the memory budget max_memory_mb=256");
    expect("run-time 4 PiB, no budget", runtime_absurd, SI_ERR_NO_MEM, "more than this process may allocate");
    expect("run-time 16 KiB, budget 256 MiB", runtime_small_ok, SI_OK, "");
    expect("max_memory_mb=lots", budget_bad_value, SI_ERR_INVALID_ARG, "max_memory_mb: 'lots'");
    expect("subgraphs 100000 deep", deep_subgraphs, SI_ERR_PARSE, "deeper than");
    expect("types 100000 deep", deep_types, SI_ERR_PARSE, "deeper than");
    expect("subgraphs 2 deep", shallow_subgraphs, SI_ERR_INVALID_ARG, "else_branch"); /* past the nesting guard, to If's own rules */
    expect("TensorProto 2^50 elements", pb_tensor_huge, SI_ERR_PARSE, "the shape needs 1125899906842624");
    expect("streamed raw_data of the wrong size", streamed_raw_mismatch, SI_ERR_PARSE, "raw_data has 2048 bytes, the shape needs 8");
    expect("node without outputs", node_without_outputs, SI_ERR_PARSE, "has no outputs");
    expect("int4 raw_data too short", int4_raw_short, SI_ERR_PARSE, "raw_data has 2 bytes, shape int4[5] needs 3");
    expect("int4 int32_data too short", int4_int32_short, SI_ERR_PARSE, "1 int32_data values stored, shape int4[5] needs 3");
    expect("float8 raw_data of the wrong size", float8_raw_short, SI_ERR_PARSE, "raw_data has 3 bytes, shape float8e4m3fn[4] needs 4");
    expect("Relu of float8", relu_float8, SI_ERR_UNSUPPORTED, "does not support element type float8e4m3fn");
    expect("DFT axis out of range", dft_axis_out_of_range, SI_ERR_INVALID_ARG, "axis 2 is out of range for an input of rank 3");
    expect("TopK without its values output", topk_values_absent, SI_OK, "");
    expect("Softplus -> (Y, Z), shapes known", extra_output_known, SI_ERR_INVALID_ARG, "output 1 is not one the op produces");
    expect("Softplus -> (Y, Z), shape at run time", extra_output_runtime, SI_ERR_INVALID_ARG, "output 1 is not one the op produces");
    {
        si_device *cpu;
        if (si_device_get("CPU", &cpu) == SI_OK) { /* the CPU device's own run-time check */
            extra_output_devices = "CPU";
            expect("Softplus -> (Y, Z), shape at run time, CPU", extra_output_runtime, SI_ERR_INVALID_ARG, "output 1 is not one the op produces");
            extra_output_devices = "REF";
        }
        si_err_clear();
    }
    int n_ops = 0;
    const si_op_def *const *ops = si_op_all(&n_ops);
    for (int i = 0; i < n_ops; i++) {
        if (*si_op_domain(ops[i]->id)) continue;
        sweep_op = si_op_name(ops[i]->id);
        model_opset = ops[i]->since > 0 ? ops[i]->since : ops[i]->until > 0 ? ops[i]->until : 17;
        char name[96];
        snprintf(name, sizeof name, "%s (opset %d) without its first output", sweep_op, (int)model_opset);
        expect(name, first_output_absent, SI_OK, "");
    }
    model_opset = 17;
    return test_summary("test_hostile");
}
