/*
 * test_llm_ops.c — the LLM ops without ONNX Runtime: answers known by construction (MatMulNBits' nibble order,
 * padding and default zero point; GroupQueryAttention with a one-key window returns each token's own value;
 * SkipSimplifiedLayerNormalization's default epsilon), and bad inputs, each refused with INVALID_ARG or UNSUPPORTED
 * and a message that names what is wrong, on REF and on CPU (whose native kernels must refuse the same way) —
 * at compile time for shapes and attributes, at inference for values (seqlens_k, positions, ids), after which
 * the request still works with good values.
 */
#include "device/device.h"
#include "ir/ir.h"

#include "si_test.h"

static si_graph *g;

static void begin(void) {
    g = si_graph_new();
    if (!g) exit(2);
    g->opsets = si_calloc(2, sizeof(si_opset));
    g->opsets[0].domain = si_strdup("");
    g->opsets[0].version = 17;
    g->opsets[1].domain = si_strdup("com.microsoft");
    g->opsets[1].version = 1;
    g->n_opsets = 2;
}

static int val(const char *name) { return si_graph_value(g, name); }

static void push(int **list, int *n, int v) {
    *list = si_realloc(*list, sizeof(int) * (size_t)(*n + 1));
    (*list)[(*n)++] = v;
}

static void input(const char *name, si_dtype dt, int nd, const int64_t *dims) {
    const int id = val(name); /* before taking a pointer: the values may move */
    si_val *v = &g->values[id];
    v->dtype = dt;
    v->ndim = nd;
    memcpy(v->dims, dims, sizeof(int64_t) * (size_t)nd);
    v->is_input = true;
    push(&g->inputs, &g->n_inputs, (int)(v - g->values));
}

/* A constant from raw values (converted to dt). */
static void constant(const char *name, si_dtype dt, int nd, const int64_t *dims, const double *vals) {
    si_tensor *t;
    if (si_tensor_create(dt, nd, dims, &t)) exit(2);
    for (int64_t i = 0; i < si_tensor_count(t); i++) si_store_f64(dt, t->data, i, vals[i]);
    const int v = val(name); /* first: it may grow the value array */
    si_val_set_const(&g->values[v], t);
}

static void output(const char *name) {
    int v = val(name);
    g->values[v].is_output = true;
    push(&g->outputs, &g->n_outputs, v);
}

static si_node *node(const char *op, const char *domain, const char *ins, const char *outs) {
    si_node n;
    memset(&n, 0, sizeof n);
    n.name = si_strdup(op);
    n.op_type = si_strdup(op);
    n.domain = si_strdup(domain);
    const char *lists[2] = {ins, outs};
    for (int l = 0; l < 2; l++) {
        int **ids = l ? &n.out : &n.in, *cnt = l ? &n.n_out : &n.n_in;
        char buf[256];
        snprintf(buf, sizeof buf, "%s", lists[l]);
        for (char *p = buf, *e; p; p = e ? e + 1 : NULL) {
            e = strchr(p, ',');
            if (e) *e = 0;
            push(ids, cnt, *p ? val(p) : -1);
        }
    }
    int i = si_graph_add_node(g, &n);
    return &g->nodes[i];
}

static void attr_i(si_node *n, const char *name, int64_t v) {
    n->attrs = si_realloc(n->attrs, sizeof(si_attr) * (size_t)(n->n_attr + 1));
    si_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = si_strdup(name);
    a->type = SI_ATTR_INT;
    a->i = v;
}

static si_device *devs[2];
static int n_devs;

/* Compile g on device d; the status, message checked when want_msg. Frees nothing. */
static si_result compile(si_device *d, si_cmodel **m) {
    *m = NULL;
    si_result s = si_graph_finalize(g);
    if (!s) s = si_graph_infer_shapes(g, 1 << 20);
    if (!s) s = d->iface->compile(d, g, NULL, m);
    return s;
}

/* The graph must be refused (compile or shape inference) on every device with `want` and a message holding msg. */
static void expect_refused(const char *label, si_result want, const char *msg) {
    for (int i = 0; i < n_devs; i++) {
        si_graph *keep;
        if (si_graph_clone(g, &keep)) exit(2);
        si_cmodel *m;
        si_result s = compile(devs[i], &m);
        if (!s) { /* not refused at compile time: the first inference on zero inputs must refuse */
            si_ireq *r;
            CHECK(!m->iface->create_request(m, &r));
            si_tensor *ins[8] = {0};
            for (int k = 0; k < m->n_inputs && k < 8; k++) {
                CHECK(!si_tensor_create(m->inputs[k].dtype, m->inputs[k].ndim, m->inputs[k].dims, &ins[k]));
                CHECK(!r->iface->set_input(r, k, ins[k]));
            }
            s = r->iface->infer(r);
            r->iface->free(r);
            for (int k = 0; k < 8; k++) si_tensor_free(ins[k]);
            m->iface->free(m);
        }
        const bool ok = s == want && strstr(si_last_error(), msg);
        if (!ok)
            fprintf(stderr, "%s on %s: got %s \"%s\", want %s with \"%s\"\n", label, devs[i]->name, si_result_str(s), si_last_error(),
                    si_result_str(want), msg);
        CHECK(ok);
        si_graph_free(g);
        g = keep;
    }
    si_graph_free(g);
    g = NULL;
}

/* Run g on device d (compiled on a clone: g survives) with the given inputs; out receives output k. */
static void run_on(si_device *d, si_tensor **ins, int k, float *out, size_t n) {
    si_graph *keep;
    if (si_graph_clone(g, &keep)) exit(2);
    si_cmodel *m;
    si_ireq *r = NULL;
    CHECK_OK(compile(d, &m));
    if (m) {
        CHECK_OK(m->iface->create_request(m, &r));
        for (int j = 0; r && j < m->n_inputs; j++) CHECK_OK(r->iface->set_input(r, j, ins[j]));
        CHECK_OK(r ? r->iface->infer(r) : SI_ERR_INTERNAL);
        si_tensor *o;
        if (r && !r->iface->get_output(r, k, &o)) memcpy(out, o->data, n * sizeof(float));
        if (r) r->iface->free(r);
        m->iface->free(m);
    }
    si_graph_free(g);
    g = keep;
}

/* Run g on every device with the given inputs (NULL: zeros); out receives output k of the last device. */
static void run_all(si_tensor **ins, int k, float *out, size_t n) {
    for (int i = 0; i < n_devs; i++) run_on(devs[i], ins, k, out, n);
    si_graph_free(g);
    g = NULL;
}

// --- known answers ------------------------------------------------------------------------------------------------------

/* 4-bit codes: byte 0x1F holds code 15 (even k, low nibble) and 1 (odd k); no zero points: zero point 8; K = 40
 * pads the second block, whose padding codes (here 15) must not count. */
static void test_nbits_layout(void) {
    begin();
    input("a", SI_F32, 2, (int64_t[]){2, 40});
    double b[2 * 2 * 16], sc[4] = {0.5, 0.25, 1.0, 2.0};
    for (int i = 0; i < 64; i++) b[i] = 0x1F;
    constant("b", SI_U8, 3, (int64_t[]){2, 2, 16}, b);
    constant("s", SI_F32, 1, (int64_t[]){4}, sc);
    si_node *n = node("MatMulNBits", "com.microsoft", "a,b,s", "y");
    attr_i(n, "K", 40), attr_i(n, "N", 2), attr_i(n, "bits", 4), attr_i(n, "block_size", 32);
    output("y");
    si_tensor *a;
    CHECK(!si_tensor_create(SI_F32, 2, (int64_t[]){2, 40}, &a));
    float *av = a->data;
    for (int k = 0; k < 40; k++) av[k] = k % 2 == 0 ? 1.0f : 0.0f, av[40 + k] = k % 2 ? 1.0f : 0.0f;
    float y[4] = {0};
    run_all(&a, 0, y, 4);
    /* row 0 (even k: code 15 -> 7): 16 in block 0, 4 in block 1; row 1 (odd k: code 1 -> -7) */
    CHECK(y[0] == 7 * (16 * 0.5f + 4 * 0.25f) && y[1] == 7 * (16 * 1.0f + 4 * 2.0f));
    CHECK(y[2] == -7 * (16 * 0.5f + 4 * 0.25f) && y[3] == -7 * (16 * 1.0f + 4 * 2.0f));
    si_tensor_free(a);
}

/* The CPU device quantises A at level 4: with AVX-512 VNNI, or with AVX2 + FMA (cpu_llm_nbq8.c). */
static bool cpu_has_q8(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

/* accuracy_level 4, 4-bit, packed zero points: the CPU device with AVX2 or VNNI computes what ONNX Runtime does (A per
 * row and block in int8: scale max|a| / 127, codes rounded half to even; integer dot products; one float scale per
 * block), here written out in plain C; REF (and the CPU device elsewhere) computes in float32, within the level's
 * ~1%. Ties are placed on purpose: a block whose max is 127 has scale 1, so its 2.5 and -3.5 must become 2 and -4.
 * M = 3 (the GEMV) and 13 (the panel GEMM); K = 96 (three blocks of 32, two zero-point bytes a row); N = 37 (not a
 * whole panel); then K = 200 with blocks of 64 (a padded last block). */
static void nbits_acc4_case(int64_t M, int64_t K, int64_t N, int64_t block) {
    const int64_t nb = (K + block - 1) / block, blob = block / 2, zrow = (nb + 1) / 2;
    begin();
    input("a", SI_F32, 2, (int64_t[]){M, K});
    double *b = si_malloc(sizeof(double) * (size_t)(N * nb * blob)), *sc = si_malloc(sizeof(double) * (size_t)(N * nb)),
           *zp = si_malloc(sizeof(double) * (size_t)(N * zrow));
    uint8_t *bq = si_malloc((size_t)(N * nb * blob)), *zq = si_malloc((size_t)(N * zrow));
    uint32_t st = 12345;
#define RND() (st = st * 1103515245u + 12345u, (st >> 8) & 0xFFFF)
    for (int64_t i = 0; i < N * nb * blob; i++) b[i] = bq[i] = (uint8_t)RND();
    for (int64_t i = 0; i < N * nb; i++) sc[i] = 0.001 + 0.01 * (double)RND() / 65536.0;
    for (int64_t i = 0; i < N * zrow; i++) zp[i] = zq[i] = (uint8_t)RND();
    constant("b", SI_U8, 3, (int64_t[]){N, nb, blob}, b);
    constant("s", SI_F32, 1, (int64_t[]){N * nb}, sc);
    constant("z", SI_U8, 1, (int64_t[]){N * zrow}, zp);
    si_node *n = node("MatMulNBits", "com.microsoft", "a,b,s,z", "y");
    attr_i(n, "K", K), attr_i(n, "N", N), attr_i(n, "bits", 4), attr_i(n, "block_size", block), attr_i(n, "accuracy_level", 4);
    output("y");
    si_tensor *a;
    CHECK(!si_tensor_create(SI_F32, 2, (int64_t[]){M, K}, &a));
    float *av = a->data;
    for (int64_t i = 0; i < M * K; i++) av[i] = ((float)RND() / 65536.0f - 0.5f) * 8.0f;
    av[0] = 127.0f, av[1] = 2.5f, av[2] = -3.5f, av[3] = 0.5f; /* row 0, block 0: scale 1, ties */
#undef RND
    /* expected, level 4 as ONNX Runtime computes it (ref4) and in float (ref) */
    double *ref4 = si_calloc((size_t)(M * N), sizeof(double)), *ref = si_calloc((size_t)(M * N), sizeof(double));
    for (int64_t m = 0; m < M; m++)
        for (int64_t blk = 0; blk < nb; blk++) {
            const int64_t k0 = blk * block, k1 = SI_MIN(K, k0 + block);
            float amax = 0;
            for (int64_t k = k0; k < k1; k++) amax = fmaxf(amax, fabsf(av[m * K + k]));
            const float sa = amax / 127.0f, inv = amax > 0 ? 127.0f / amax : 0.0f;
            int qa[256];
            for (int64_t k = k0; k < k1; k++) qa[k - k0] = (int)nearbyintf(av[m * K + k] * inv); /* ties to even */
            if (m == 0 && blk == 0) CHECK(qa[0] == 127 && qa[1] == 2 && qa[2] == -4 && qa[3] == 0);
            for (int64_t c = 0; c < N; c++) {
                const int z = (zq[c * zrow + blk / 2] >> (4 * (blk % 2))) & 15;
                const float sw = (float)sc[c * nb + blk];
                long dot = 0;
                double fd = 0;
                for (int64_t k = k0; k < k1; k++) {
                    const uint8_t byte = bq[(c * nb + blk) * blob + (k - k0) / 2];
                    const int q = ((k - k0) % 2 ? byte >> 4 : byte) & 15;
                    dot += (long)(q - z) * qa[k - k0];
                    fd += (double)(q - z) * sw * av[m * K + k];
                }
                ref4[m * N + c] += (double)sa * sw * (double)dot;
                ref[m * N + c] += fd;
            }
        }
    float *y = si_malloc(sizeof(float) * (size_t)(M * N));
    double scale = 0;
    for (int64_t i = 0; i < M * N; i++) scale = fmax(scale, fabs(ref[i]));
    for (int i = 0; i < n_devs; i++) {
        run_on(devs[i], &a, 0, y, (size_t)(M * N));
        const bool exact = !strcmp(devs[i]->name, "CPU") && cpu_has_q8() && !getenv("SI_CPU_NBITS_F32") &&
                           !getenv("SI_CPU_NO_AVX2"); /* the CPU device's switches */
        double worst = 0;
        for (int64_t j = 0; j < M * N; j++) worst = fmax(worst, fabs(y[j] - (exact ? ref4[j] : ref[j])) / scale);
        if (worst > (exact ? 1e-5 : 1e-4))
            fprintf(stderr, "MatMulNBits level 4 M=%lld K=%lld N=%lld block %lld on %s: max rel error %g against the %s result\n",
                    (long long)M, (long long)K, (long long)N, (long long)block, devs[i]->name, worst, exact ? "int8" : "float32");
        CHECK(worst <= (exact ? 1e-5 : 1e-4));
        if (exact) { /* and it is the int8 result, not the float one: they differ here by far more than 1e-5 */
            double apart = 0;
            for (int64_t j = 0; j < M * N; j++) apart = fmax(apart, fabs(ref4[j] - ref[j]) / scale);
            CHECK(apart > 1e-4);
        }
    }
    si_graph_free(g);
    g = NULL;
    si_tensor_free(a);
    si_free(b), si_free(sc), si_free(zp), si_free(bq), si_free(zq), si_free(ref4), si_free(ref), si_free(y);
}

static void test_nbits_acc4(void) {
    nbits_acc4_case(3, 96, 37, 32);
    nbits_acc4_case(13, 96, 37, 32);
    nbits_acc4_case(2, 200, 40, 64);
    nbits_acc4_case(20, 200, 40, 64);
}

/* local_window_size 1: each query sees only its own key, so the output is its own value row. */
static void test_gqa_window1(void) {
    begin();
    input("q", SI_F32, 3, (int64_t[]){1, 4, 32});
    input("k", SI_F32, 3, (int64_t[]){1, 4, 16});
    input("v", SI_F32, 3, (int64_t[]){1, 4, 16});
    constant("sl", SI_I32, 1, (int64_t[]){1}, (double[]){3});
    constant("tsl", SI_I32, 1, (int64_t[]){1}, (double[]){4});
    si_node *n = node("GroupQueryAttention", "com.microsoft", "q,k,v,,,sl,tsl", "y");
    attr_i(n, "num_heads", 2), attr_i(n, "kv_num_heads", 1), attr_i(n, "local_window_size", 1);
    output("y");
    si_tensor *in[3];
    for (int i = 0; i < 3; i++) {
        CHECK(!si_tensor_create(SI_F32, 3, (int64_t[]){1, 4, i ? 16 : 32}, &in[i]));
        for (int64_t j = 0; j < si_tensor_count(in[i]); j++) ((float *)in[i]->data)[j] = (float)((j * 7 + i) % 11) - 5.0f;
    }
    float y[128];
    run_all(in, 0, y, 128);
    const float *v = in[2]->data;
    bool ok = true;
    for (int s = 0; s < 4; s++)
        for (int h = 0; h < 2; h++)
            for (int e = 0; e < 16; e++) ok &= fabsf(y[(s * 2 + h) * 16 + e] - v[s * 16 + e]) < 1e-6f;
    CHECK(ok);
    for (int i = 0; i < 3; i++) si_tensor_free(in[i]);
}

/* SkipSimplifiedLayerNormalization's default epsilon is 1e-12: a row of 1e-4 normalises to 1 (1e-5 would give
 * 0.7071). */
static void test_skipsln_eps(void) {
    begin();
    input("x", SI_F32, 2, (int64_t[]){1, 8});
    constant("s", SI_F32, 2, (int64_t[]){1, 8}, (double[]){0, 0, 0, 0, 0, 0, 0, 0});
    constant("gm", SI_F32, 1, (int64_t[]){8}, (double[]){1, 1, 1, 1, 1, 1, 1, 1});
    node("SkipSimplifiedLayerNormalization", "com.microsoft", "x,s,gm", "y");
    output("y");
    si_tensor *x;
    CHECK(!si_tensor_create(SI_F32, 2, (int64_t[]){1, 8}, &x));
    for (int i = 0; i < 8; i++) ((float *)x->data)[i] = 1e-4f;
    float y[8];
    run_all(&x, 0, y, 8);
    CHECK(fabsf(y[0] - 1.0f) < 1e-4f);
    si_tensor_free(x);
}

// --- bad inputs ---------------------------------------------------------------------------------------------------------

/* A GQA node: H = hidden / heads; caches [rows, half] when half > 0. */
static void gqa_graph(int64_t B, int64_t S, int64_t N, int64_t Nkv, int64_t H, int64_t past, const double *seqlens, int64_t tsl,
                      int64_t rows, int64_t half, bool rotary, int64_t ntsl) {
    begin();
    input("q", SI_F32, 3, (int64_t[]){B, S, N * H});
    input("k", SI_F32, 3, (int64_t[]){B, S, Nkv * H});
    input("v", SI_F32, 3, (int64_t[]){B, S, Nkv * H});
    if (past) input("pk", SI_F32, 4, (int64_t[]){B, Nkv, past, H}), input("pv", SI_F32, 4, (int64_t[]){B, Nkv, past, H});
    constant("sl", SI_I32, 1, (int64_t[]){B}, seqlens);
    constant("tsl", SI_I32, 1, (int64_t[]){ntsl}, (double[]){(double)tsl, (double)tsl});
    if (half) {
        double *z = calloc((size_t)(rows * half), sizeof(double));
        constant("cos", SI_F32, 2, (int64_t[]){rows, half}, z);
        constant("sin", SI_F32, 2, (int64_t[]){rows, half}, z);
        free(z);
    }
    char ins[64];
    snprintf(ins, sizeof ins, "q,k,v,%s,%s,sl,tsl%s", past ? "pk" : "", past ? "pv" : "", half ? ",cos,sin" : "");
    si_node *n = node("GroupQueryAttention", "com.microsoft", ins, "y,pko,pvo");
    attr_i(n, "num_heads", N), attr_i(n, "kv_num_heads", Nkv);
    if (rotary) attr_i(n, "do_rotary", 1);
    output("y"), output("pko"), output("pvo");
}

/* GQA graphs every device must refuse (INVALID_ARG): gqa_graph's arguments, and what the message must hold. */
static const struct gqa_bad {
    const char *label;
    int64_t B, S, N, Nkv, H, past;
    double seqlens[2];
    int64_t tsl, rows, half;
    bool rotary;
    int64_t ntsl;
    const char *msg;
} gqa_bad[] = {
    {"GQA head size 12", 1, 4, 4, 2, 12, 0, {3}, 4, 0, 0, false, 1, "multiple of 8"},
    {"GQA head size 8 with caches", 1, 4, 4, 2, 8, 0, {3}, 4, 16, 4, false, 1, "multiple of 16"},
    {"GQA chunk with batch 2", 2, 3, 4, 2, 16, 4, {6, 6}, 7, 0, 0, false, 1, "needs batch 1"},
    {"GQA total_sequence_length of 2 values", 1, 4, 4, 2, 16, 0, {3}, 4, 0, 0, false, 2, "exactly one value"},
    {"GQA cos_cache rows < total", 1, 5, 4, 2, 16, 0, {4}, 5, 4, 8, true, 1, "fewer than total_sequence_length"},
    {"GQA do_rotary without caches", 1, 4, 4, 2, 16, 0, {3}, 4, 0, 0, true, 1, "needs cos_cache"},
    {"GQA cache width not a multiple of 8", 1, 4, 4, 2, 16, 0, {3}, 4, 16, 12, false, 1, "multiple of 8"},
    /* values: seqlens_k beyond the past buffer (decode), beyond the prompt */
    {"GQA seqlens_k beyond the past", 1, 1, 4, 2, 16, 4, {9}, 6, 0, 0, false, 1, "does not fit"},
    {"GQA seqlens_k beyond the prompt", 2, 4, 4, 2, 16, 0, {3, 5}, 4, 0, 0, false, 1, "does not fit"},
};

static void test_gqa_bad(void) {
    for (size_t i = 0; i < sizeof gqa_bad / sizeof gqa_bad[0]; i++) {
        const struct gqa_bad *c = &gqa_bad[i];
        gqa_graph(c->B, c->S, c->N, c->Nkv, c->H, c->past, c->seqlens, c->tsl, c->rows, c->half, c->rotary, c->ntsl);
        expect_refused(c->label, SI_ERR_INVALID_ARG, c->msg);
    }
}

static void nbits_graph(int64_t K, int64_t Ka, int64_t N, int bits, int64_t bbytes, bool gidx) {
    begin();
    input("a", SI_F32, 2, (int64_t[]){2, Ka});
    double *z = calloc((size_t)(bbytes + N * 64), sizeof(double));
    const int64_t nb = (K + 31) / 32;
    constant("b", SI_U8, 1, (int64_t[]){bbytes}, z);
    constant("s", SI_F32, 1, (int64_t[]){N * nb}, z);
    if (gidx) constant("gi", SI_I32, 1, (int64_t[]){K}, z);
    free(z);
    si_node *n = node("MatMulNBits", "com.microsoft", gidx ? "a,b,s,,gi" : "a,b,s", "y");
    attr_i(n, "K", K), attr_i(n, "N", N), attr_i(n, "bits", bits), attr_i(n, "block_size", 32);
    output("y");
}

static void test_nbits_bad(void) {
    nbits_graph(64, 64, 8, 3, 8 * 2 * 12, false);
    expect_refused("MatMulNBits bits 3", SI_ERR_UNSUPPORTED, "bits = 3");
    nbits_graph(64, 60, 8, 4, 8 * 2 * 16, false);
    expect_refused("MatMulNBits K mismatch", SI_ERR_INVALID_ARG, "last dimension must be K");
    nbits_graph(64, 64, 8, 4, 100, false);
    expect_refused("MatMulNBits B size", SI_ERR_INVALID_ARG, "B has 100 bytes");
    nbits_graph(64, 64, 8, 4, 8 * 2 * 16, true);
    expect_refused("MatMulNBits g_idx", SI_ERR_UNSUPPORTED, "g_idx");
}

static void moe_graph(int64_t k, bool swiglu0, bool legacy) {
    begin();
    const int64_t T = 3, Hd = 8, F = 12, E = 4;
    input("x", SI_F32, 2, (int64_t[]){T, Hd});
    input("r", SI_F32, 2, (int64_t[]){T, E});
    double *z = calloc(2 * E * F * Hd, sizeof(double));
    constant("w1", SI_F32, 3, legacy ? (int64_t[]){E, Hd, F} : (int64_t[]){E, (swiglu0 ? 2 : 1) * F, Hd}, z);
    constant("w2", SI_F32, 3, legacy ? (int64_t[]){E, F, Hd} : (int64_t[]){E, Hd, F}, z);
    free(z);
    si_node *n = node("MoE", "com.microsoft", "x,r,w1,,w2", "y");
    attr_i(n, "k", k);
    if (swiglu0) {
        n->attrs = si_realloc(n->attrs, sizeof(si_attr) * (size_t)(n->n_attr + 1));
        si_attr *a = &n->attrs[n->n_attr++];
        memset(a, 0, sizeof *a);
        a->name = si_strdup("activation_type");
        a->type = SI_ATTR_STRING;
        a->s = si_strdup("swiglu");
    }
    output("y");
}

static void test_other_bad(void) {
    moe_graph(5, false, false);
    expect_refused("MoE k > experts", SI_ERR_INVALID_ARG, "k = 5");
    moe_graph(2, true, false);
    expect_refused("MoE swiglu without fusion", SI_ERR_UNSUPPORTED, "swiglu_fusion");
    moe_graph(2, false, true);
    expect_refused("MoE legacy layout", SI_ERR_INVALID_ARG, "[E, out, in]");
    /* RotaryEmbedding: a position beyond the cache (a value: found at inference) */
    begin();
    input("x", SI_F32, 3, (int64_t[]){1, 2, 16});
    constant("pos", SI_I64, 2, (int64_t[]){1, 2}, (double[]){3, 40});
    double z[32 * 8] = {0};
    constant("cs", SI_F32, 2, (int64_t[]){32, 8}, z);
    constant("sn", SI_F32, 2, (int64_t[]){32, 8}, z);
    node("RotaryEmbedding", "com.microsoft", "x,pos,cs,sn", "y");
    output("y");
    expect_refused("RotaryEmbedding position 40 of 32 rows", SI_ERR_INVALID_ARG, "outside the 32 cache rows");
    begin();
    input("x", SI_F32, 3, (int64_t[]){2, 3, 8});
    input("s", SI_F32, 3, (int64_t[]){2, 3, 8});
    constant("gm", SI_F32, 1, (int64_t[]){6}, z);
    node("SkipLayerNormalization", "com.microsoft", "x,s,gm", "y");
    output("y");
    expect_refused("SkipLayerNormalization gamma of 6", SI_ERR_INVALID_ARG, "gamma must be 1-D with 8 values");
    begin();
    input("q", SI_F32, 5, (int64_t[]){2, 3, 2, 3, 8});
    node("MultiHeadAttention", "com.microsoft", "q", "y");
    si_node *n = &g->nodes[0];
    attr_i(n, "num_heads", 2);
    output("y");
    expect_refused("MultiHeadAttention packed QKV", SI_ERR_UNSUPPORTED, "packed QKV");
    begin();
    input("x", SI_F32, 3, (int64_t[]){2, 3, 16});
    input("b", SI_F32, 2, (int64_t[]){3, 16});
    node("BiasGelu", "com.microsoft", "x,b", "y");
    output("y");
    expect_refused("BiasGelu 2-D bias", SI_ERR_INVALID_ARG, "bias must be 1-D");
    /* Attention (com.microsoft) asked for present with V narrower than Q and K: present has one head size */
    begin();
    input("x", SI_F32, 3, (int64_t[]){1, 3, 8});
    double w[8 * 40] = {0};
    constant("w", SI_F32, 2, (int64_t[]){8, 40}, w);
    node("Attention", "com.microsoft", "x,w", "y,present");
    n = &g->nodes[0];
    attr_i(n, "num_heads", 2);
    n->attrs = si_realloc(n->attrs, sizeof(si_attr) * (size_t)(n->n_attr + 1));
    si_attr *a = &n->attrs[n->n_attr++];
    memset(a, 0, sizeof *a);
    a->name = si_strdup("qkv_hidden_sizes");
    a->type = SI_ATTR_INTS;
    a->n = 3;
    a->ints = si_malloc(3 * sizeof(int64_t));
    a->ints[0] = 16, a->ints[1] = 16, a->ints[2] = 8;
    output("y");
    output("present");
    expect_refused("Attention present with qkv_hidden_sizes 16,16,8", SI_ERR_UNSUPPORTED, "present needs equal");
}

/* A request refused for bad values works again with good ones. */
static void test_request_recovers(void) {
    for (int i = 0; i < n_devs; i++) {
        begin();
        input("q", SI_F32, 3, (int64_t[]){1, 1, 64});
        input("k", SI_F32, 3, (int64_t[]){1, 1, 32});
        input("v", SI_F32, 3, (int64_t[]){1, 1, 32});
        input("pk", SI_F32, 4, (int64_t[]){1, 2, 4, 16});
        input("pv", SI_F32, 4, (int64_t[]){1, 2, 4, 16});
        input("sl", SI_I32, 1, (int64_t[]){1});
        constant("tsl", SI_I32, 1, (int64_t[]){1}, (double[]){5});
        si_node *n = node("GroupQueryAttention", "com.microsoft", "q,k,v,pk,pv,sl,tsl", "y,pko,pvo");
        attr_i(n, "num_heads", 4), attr_i(n, "kv_num_heads", 2);
        output("y"), output("pko"), output("pvo");
        si_cmodel *m;
        si_ireq *r = NULL;
        CHECK_OK(compile(devs[i], &m));
        if (!m) continue;
        CHECK_OK(m->iface->create_request(m, &r));
        si_tensor *ins[6];
        for (int k = 0; k < 6; k++) {
            CHECK(!si_tensor_create(m->inputs[k].dtype, m->inputs[k].ndim, m->inputs[k].dims, &ins[k]));
            CHECK_OK(r->iface->set_input(r, k, ins[k]));
        }
        ((int32_t *)ins[5]->data)[0] = 7; /* 8 keys: beyond the 4 + 1 that exist */
        CHECK_STATUS(r->iface->infer(r), SI_ERR_INVALID_ARG);
        CHECK(strstr(si_last_error(), "seqlens_k[0] = 7") != NULL);
        ((int32_t *)ins[5]->data)[0] = 4;
        CHECK_OK(r->iface->infer(r));
        for (int k = 0; k < 6; k++) si_tensor_free(ins[k]);
        r->iface->free(r);
        m->iface->free(m);
        si_graph_free(g);
        g = NULL;
    }
}

/* A GenAI-style chain with an open sequence length: shape inference types every value (before, the LLM families
 * were asked only with every dimension known, and everything after the first norm was untyped), and OCL, which
 * plans only typed nodes of known rank, takes the norms, MatMulNBits and the GELUs. */
static void test_open_dims(void) {
    begin();
    const int64_t U = SI_DIM_UNKNOWN;
    input("x", SI_F32, 3, (int64_t[]){1, U, 64});
    input("seqlens", SI_I32, 1, (int64_t[]){1});
    input("tsl", SI_I32, 1, (int64_t[]){1});
    double gm[64], b[128 * 2 * 16], sc[256];
    for (int i = 0; i < 64; i++) gm[i] = 1.0 + i / 64.0;
    for (int i = 0; i < 128 * 2 * 16; i++) b[i] = (i * 37) & 0xff;
    for (int i = 0; i < 256; i++) sc[i] = 0.01 * (1 + i % 5);
    constant("g", SI_F32, 1, (int64_t[]){64}, gm);
    constant("b", SI_U8, 3, (int64_t[]){128, 2, 16}, b);
    constant("s", SI_F32, 1, (int64_t[]){256}, sc);
    node("SimplifiedLayerNormalization", "", "x,g", "n0,inv");
    si_node *m = node("MatMulNBits", "com.microsoft", "n0,b,s", "q");
    attr_i(m, "K", 64), attr_i(m, "N", 128), attr_i(m, "bits", 4), attr_i(m, "block_size", 32);
    si_node *a = node("GroupQueryAttention", "com.microsoft", "q,,,,,seqlens,tsl", "att,pk,pv");
    attr_i(a, "num_heads", 4), attr_i(a, "kv_num_heads", 2); /* packed Q, K, V: 8 heads of 16 */
    node("SkipSimplifiedLayerNormalization", "com.microsoft", "att,x,g", "n1,mean,inv1,sum");
    node("FastGelu", "com.microsoft", "n1", "y");
    output("y"), output("inv"), output("sum"), output("pk");
    CHECK(!si_graph_finalize(g) && !si_graph_infer_shapes(g, 1 << 20));
    static const struct { const char *name; int ndim; int64_t last; } want[] = {
        {"n0", 3, 64}, {"inv", 3, 1}, {"q", 3, 128}, {"att", 3, 64}, {"pk", 4, 16}, {"n1", 3, 64}, {"mean", 3, 1}, {"sum", 3, 64}, {"y", 3, 64},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const si_val *v = &g->values[si_graph_find_value(g, want[i].name)];
        const bool ok = v->dtype == SI_F32 && v->ndim == want[i].ndim && v->dims[v->ndim - 1] == want[i].last && !si_dim_known(v->dims[v->ndim == 4 ? 2 : 1]);
        if (!ok) fprintf(stderr, "open dims: value %s has type %d, rank %d\n", want[i].name, (int)v->dtype, v->ndim);
        CHECK(ok);
    }
#ifdef SI_HAVE_OCL
    si_device *ocl;
    if (!si_device_ocl_get(0, &ocl)) {
        static const char *const ops[] = {"SimplifiedLayerNormalization", "MatMulNBits", "SkipSimplifiedLayerNormalization", "FastGelu"};
        for (int i = 0; i < g->n_nodes; i++)
            for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
                if (strcmp(g->nodes[i].op_type, ops[k])) continue;
                si_result st = ocl->iface->supports_op(ocl, g, &g->nodes[i]);
                if (st) fprintf(stderr, "open dims: OCL refuses %s: %s\n", ops[k], si_last_error());
                CHECK(st == SI_OK);
            }
    }
#endif
    si_graph_free(g);
    g = NULL;
}

int main(void) {
    devs[n_devs++] = &si_device_ref;
#ifdef SI_HAVE_CPU
    devs[n_devs++] = &si_device_cpu;
#endif
    test_nbits_layout();
    test_nbits_acc4();
    test_gqa_window1();
    test_skipsln_eps();
    test_gqa_bad();
    test_nbits_bad();
    test_other_bad();
    test_request_recovers();
    test_open_dims();
    printf("test_llm_ops: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
