/*
 * test_device_ops_llm.c — device-vs-REF cases of the LLM ops (com.microsoft contrib ops): MatMulNBits over the
 * GEMV and GEMM paths (bits, zero points, padded blocks, bias), GroupQueryAttention (prefill, decode, ragged
 * batches, rotary, windows, softcap, sinks, packed QKV, a cache longer than the kernels' key blocks),
 * MultiHeadAttention (masks, biases, past, cross attention), Attention (com.microsoft: masks, past and present,
 * unequal hidden sizes) and the fused norms and GELUs. On CPU each case's plan
 * must hold the op's native step and no reference-kernel step. Integer inputs (seqlens_k, masks, positions) are
 * constants: the harness fills integer inputs with random values that would not be valid.
 */
#include "test_device_ops.h"

#include <math.h>
#include <string.h>

static uint32_t seed = 77;
static uint32_t rnd(void) {
    seed ^= seed << 13;
    seed ^= seed >> 17;
    seed ^= seed << 5;
    return seed;
}

/* A graph importing the default domain and com.microsoft (test_device_ops.h). */
void begin_ms(void) {
    begin(17);
    si_opset *o = si_realloc(G->opsets, 2 * sizeof(si_opset));
    if (!o) die("opsets");
    G->opsets = o;
    if (!(o[1].domain = si_strdup("com.microsoft"))) die("opsets");
    o[1].version = 1;
    G->n_opsets = 2;
}

int msnode(const char *op, const char *ins, const char *outs) {
    int n = node(op, ins, outs);
    si_free(G->nodes[n].domain);
    if (!(G->nodes[n].domain = si_strdup("com.microsoft"))) die("node");
    return n;
}

static void const_typed(const char *name, si_dtype dt, const int64_t *dims, int nd, const int64_t *vals) {
    si_tensor *t;
    if (si_tensor_create(dt, nd, dims, &t)) die("tensor");
    for (int64_t i = 0; i < si_tensor_count(t); i++) si_store_i64(dt, t->data, i, vals ? vals[i] : (int64_t)(rnd() & 0xff));
    set_const(name, t);
}

/* OCL runs MatMulNBits, the fused norms and the GELUs (ocl_llm.c): it must take those nodes (run_llm); the
 * attention ops stay on other devices, so OCL may refuse them and skips them (run_attn). */
static void run_llm(const char *what, const char *step) {
    dop_run(what, &(dop_opts){.cpu_plan = step, .cpu_no_ref = true});
}
static void run_attn(const char *what, const char *step) {
    dop_run(what, &(dop_opts){.cpu_plan = step, .cpu_no_ref = true, .may_refuse = "OCL"});
}

// --- MatMulNBits ------------------------------------------------------------------------------------------------------

static void nbits_case(int64_t M, int64_t K, int64_t N, int bits, int block, int zp, bool bias, bool a3d) {
    const int64_t nb = (K + block - 1) / block, blob = (int64_t)block * bits / 8, zrow = (nb * bits + 7) / 8;
    begin_ms();
    if (a3d) input("a", D(2, M, K));
    else input("a", D(M, K));
    const_typed("b", SI_U8, D(N, nb, blob), NULL);
    weight("scales", 0.01f, 0.1f, D(N * nb));
    if (zp == 1) const_typed("zp", SI_U8, D(N * zrow), NULL);
    if (zp == 2) weight("zp", 0, (float)((1 << bits) - 1), D(N * nb));
    if (bias) weight("bias", -1, 1, D(N));
    char ins[64];
    snprintf(ins, sizeof ins, "a,b,scales,%s,,%s", zp ? "zp" : "", bias ? "bias" : "");
    int n = msnode("MatMulNBits", ins, "y");
    ai(n, "K", K), ai(n, "N", N), ai(n, "bits", bits), ai(n, "block_size", block);
    output("y");
    char what[128];
    snprintf(what, sizeof what, "MatMulNBits M%lld%s K%lld N%lld %d-bit block %d zp %s%s", (long long)M, a3d ? "x2" : "", (long long)K,
             (long long)N, bits, block, zp == 0 ? "none" : zp == 1 ? "packed" : "float", bias ? " bias" : "");
    run_llm(what, "MatMulNBits");
}

static void cases_nbits(void) {
    for (int bits = 2; bits <= 8; bits *= 2)
        for (int zp = 0; zp < 3; zp++) {
            nbits_case(1, 64, 40, bits, 32, zp, false, false);
            nbits_case(3, 128, 24, bits, 32, zp, zp == 1, false);
        }
    nbits_case(1, 40, 16, 4, 32, 1, true, false);   /* K padded to the block */
    nbits_case(1, 256, 8, 4, 16, 1, false, false);
    nbits_case(1, 256, 8, 2, 16, 0, false, false);  /* 4-byte blocks: the portable path */
    nbits_case(2, 256, 8, 4, 128, 2, false, false);
    nbits_case(7, 96, 33, 4, 32, 1, true, false);   /* two passes of 4 rows */
    nbits_case(33, 200, 70, 4, 32, 1, true, false); /* GEMM: panels + sgemm, K padded */
    nbits_case(16, 64, 130, 8, 64, 0, false, true);
    nbits_case(1, 1024, 256, 4, 32, 0, false, false);
    /* OCL's branches: GEMV up to 4 rows of A (a3d: 2 x 2 rows), else dequantization + tiled GEMM with N and
     * M not multiples of the tile; 8-bit packed zero points with K padded; a long row for the GEMV loop */
    nbits_case(2, 100, 9, 4, 64, 2, true, true);
    nbits_case(5, 72, 19, 8, 16, 1, true, false);
    nbits_case(1, 72, 19, 8, 16, 1, true, false);
    nbits_case(1, 4096, 3, 4, 128, 1, true, false);
    /* CPU's panel GEMM (M > 8, cpu_llm_nbgemm.c, AVX-512 or AVX2): every bits and zero-point form; M not a multiple of the 8-row
     * tile; N not a multiple of the 32-column panel (and under 16: one half empty); K not a multiple of the block
     * or of the 256-deep panel; blocks larger than a panel; more rows than one 256-row pass */
    for (int bits = 2; bits <= 8; bits *= 2)
        for (int zp = 0; zp < 3; zp++) nbits_case(19, 300, 45, bits, 32, zp, zp == 2, false);
    nbits_case(9, 1000, 12, 4, 512, 1, true, false);
    nbits_case(13, 768, 64, 8, 256, 2, false, true);
    nbits_case(300, 136, 33, 4, 16, 0, true, false);
}

// --- MoE ---------------------------------------------------------------------------------------------------------------

/* T tokens (x2 with a3d) over E experts, hidden Hd, inner F, top k: the GEMV path (an expert with <= 4 tokens) and
 * the sgemm path (more), every activation, biases, SwiGLU's limit. */
static void moe_case(int64_t T, bool a3d, int64_t Hd, int64_t F, int64_t E, int64_t k, const char *act, bool bias, bool norm) {
    const int64_t f = strcmp(act, "swiglu") ? 1 : 2, rows = a3d ? 2 * T : T;
    begin_ms();
    if (a3d) input("x", D(2, T, Hd));
    else input("x", D(T, Hd));
    input("router", D(rows, E));
    weight("fc1", -0.3f, 0.3f, D(E, f * F, Hd));
    weight("fc2", -0.3f, 0.3f, D(E, Hd, F));
    if (bias) weight("b1", -0.5f, 0.5f, D(E, f * F)), weight("b2", -0.5f, 0.5f, D(E, Hd));
    int n = msnode("MoE", bias ? "x,router,fc1,b1,fc2,b2" : "x,router,fc1,,fc2", "y");
    ai(n, "k", k), ai(n, "normalize_routing_weights", norm);
    as(n, "activation_type", act);
    if (f == 2) ai(n, "swiglu_fusion", 1), af(n, "swiglu_limit", 0.8f), af(n, "activation_alpha", 1.5f), af(n, "activation_beta", 0.5f);
    output("y");
    char what[128];
    snprintf(what, sizeof what, "MoE T%lld%s H%lld F%lld E%lld k%lld %s%s%s", (long long)T, a3d ? "x2" : "", (long long)Hd, (long long)F,
             (long long)E, (long long)k, act, bias ? " bias" : "", norm ? " normalized" : "");
    run_attn(what, "MoE"); /* OCL does not take MoE */
}

static void cases_moe(void) {
    moe_case(1, false, 32, 48, 4, 2, "silu", false, true);   /* decode: GEMV */
    moe_case(3, false, 24, 40, 3, 1, "relu", true, false);   /* GEMV, some experts idle */
    moe_case(37, false, 40, 24, 4, 2, "silu", false, true);  /* sgemm for the busy experts */
    moe_case(20, true, 16, 20, 5, 3, "gelu", true, true);    /* k = 3, [batch, seq, hidden] */
    moe_case(11, false, 16, 12, 2, 2, "swiglu", true, false); /* interleaved SwiGLU with limit, alpha, beta */
    moe_case(9, false, 8, 8, 6, 2, "identity", false, false);
    /* the panel kernel (AVX-512 or AVX2) with transposed float panels: hidden and inner not multiples of 16, inner over one
     * 256-deep panel, an expert with more than 256 tokens */
    moe_case(60, false, 37, 300, 3, 2, "silu", true, true);
    moe_case(300, false, 24, 40, 2, 1, "swiglu", false, false);
}

// --- QMoE ------------------------------------------------------------------------------------------------------------

/* QMoE with random packed codes: the CPU device's MatMulNBits products per expert (GEMV for few tokens, the panel
 * GEMM for more), scales per block or per row, zero points packed along the blocks or the rows (the latter given to
 * the kernel as floats), biases, SwiGLU; a row of 48 values (not a power of two) takes the reference inside the
 * native step. */
static void qmoe_case(int64_t T, bool a3d, int64_t Hd, int64_t F, int64_t E, int64_t k, int bits, int64_t block, bool zp, const char *act,
                      bool bias) {
    const int64_t f = strcmp(act, "swiglu") ? 1 : 2, rows = a3d ? 2 * T : T, per = 8 / bits;
    begin_ms();
    if (a3d) input("x", D(2, T, Hd));
    else input("x", D(T, Hd));
    input("router", D(rows, E));
    const_typed("w1", SI_U8, D(E, f * F, Hd / per), NULL);
    const_typed("w2", SI_U8, D(E, Hd, F / per), NULL);
    if (block) {
        weight("s1", 0.01f, 0.05f, D(E, f * F, Hd / block));
        weight("s2", 0.01f, 0.05f, D(E, Hd, F / block));
        if (zp) {
            const_typed("z1", SI_U8, D(E, f * F, (Hd / block + per - 1) / per), NULL);
            const_typed("z2", SI_U8, D(E, Hd, (F / block + per - 1) / per), NULL);
        }
    } else {
        weight("s1", 0.01f, 0.05f, D(E, f * F));
        weight("s2", 0.01f, 0.05f, D(E, Hd));
        if (zp) {
            const_typed("z1", SI_U8, D(E, (f * F + per - 1) / per), NULL);
            const_typed("z2", SI_U8, D(E, (Hd + per - 1) / per), NULL);
        }
    }
    if (bias) weight("b1", -0.5f, 0.5f, D(E, f * F)), weight("b2", -0.5f, 0.5f, D(E, Hd));
    char ins[128];
    snprintf(ins, sizeof ins, "x,router,w1,s1,%s,w2,s2,%s%s", bias ? "b1" : "", bias ? "b2" : "", zp ? ",,,,z1,z2" : "");
    int n = msnode("QMoE", ins, "y");
    ai(n, "k", k), ai(n, "expert_weight_bits", bits);
    if (block) ai(n, "block_size", block);
    as(n, "activation_type", act);
    if (f == 2) ai(n, "swiglu_fusion", 1), af(n, "swiglu_limit", 0.8f);
    output("y");
    char what[160];
    snprintf(what, sizeof what, "QMoE T%lld%s H%lld F%lld E%lld k%lld %d-bit %s%lld%s %s%s", (long long)T, a3d ? "x2" : "", (long long)Hd,
             (long long)F, (long long)E, (long long)k, bits, block ? "block " : "row ", (long long)(block ? block : Hd), zp ? " zp" : "", act,
             bias ? " bias" : "");
    run_attn(what, "QMoE"); /* OCL does not take QMoE */
}

static void cases_qmoe(void) {
    qmoe_case(1, false, 64, 64, 4, 2, 4, 32, true, "silu", false);    /* decode: GEMV, zero points per block */
    qmoe_case(3, false, 32, 64, 3, 1, 8, 0, true, "relu", true);      /* row-wise, zero points per row as floats */
    qmoe_case(37, false, 64, 128, 4, 2, 4, 16, false, "swiglu", true); /* the panel GEMM for the busy experts */
    qmoe_case(20, true, 64, 64, 5, 3, 2, 32, true, "gelu", false);    /* 2-bit, k = 3, [batch, seq, hidden] */
    qmoe_case(5, false, 48, 32, 2, 2, 4, 0, false, "identity", true); /* a 48-value row: the reference inside */
}

// --- GroupQueryAttention ------------------------------------------------------------------------------------------------

typedef struct gqa_p {
    int64_t B, S, past, N, Nkv, H;
    const int64_t *seqlens;
    int64_t tsl;
    bool rotary, interleaved, packed, pos, bias, sink, smooth, noncausal;
    bool consumed; /* present_k and present_v feed an Add: on CPU they then live in the (NaN-poisoned) arena */
    int64_t window;
    float softcap;
} gqa_p;

static void gqa_case(const char *name, gqa_p p) {
    begin_ms();
    const int64_t rows = SI_MAX(p.tsl, (int64_t)16) + 8, half = p.H / 2;
    if (p.packed) input("q", D(p.B, p.S, (p.N + 2 * p.Nkv) * p.H));
    else {
        input("q", D(p.B, p.S, p.N * p.H));
        input("k", D(p.B, p.S, p.Nkv * p.H));
        input("v", D(p.B, p.S, p.Nkv * p.H));
    }
    if (p.past >= 0) {
        input("pk", D(p.B, p.Nkv, p.past, p.H));
        input("pv", D(p.B, p.Nkv, p.past, p.H));
    }
    const_typed("seqlens", SI_I32, D(p.B), p.seqlens);
    const_typed("tsl", SI_I32, D(1), &p.tsl);
    if (p.rotary) {
        si_tensor *c, *s;
        if (si_tensor_create(SI_F32, 2, (int64_t[]){rows, half}, &c) || si_tensor_create(SI_F32, 2, (int64_t[]){rows, half}, &s)) die("tensor");
        for (int64_t r = 0; r < rows; r++)
            for (int64_t m = 0; m < half; m++) {
                const double ang = (double)r / pow(10000.0, (double)m / (double)half);
                ((float *)c->data)[r * half + m] = (float)cos(ang);
                ((float *)s->data)[r * half + m] = (float)sin(ang);
            }
        set_const("cos", c);
        set_const("sin", s);
    }
    if (p.pos) {
        int64_t v[64];
        for (int64_t i = 0; i < p.B * p.S && i < 64; i++) v[i] = 3 + i % p.S + (i / p.S);
        const_typed("pos", SI_I64, D(p.B, p.S), v);
    }
    if (p.bias) input("ab", D(p.B, p.N, p.S, p.tsl));
    if (p.sink) weight("sink", -1, 1, D(p.N));
    char ins[160];
    snprintf(ins, sizeof ins, "q,%s,%s,%s,%s,seqlens,tsl,%s,%s,%s,%s,%s", p.packed ? "" : "k", p.packed ? "" : "v", p.past >= 0 ? "pk" : "",
             p.past >= 0 ? "pv" : "", p.rotary ? "cos" : "", p.rotary ? "sin" : "", p.pos ? "pos" : "", p.bias ? "ab" : "", p.sink ? "sink" : "");
    int n = msnode("GroupQueryAttention", ins, "y,present_k,present_v");
    ai(n, "num_heads", p.N), ai(n, "kv_num_heads", p.Nkv);
    if (p.rotary) ai(n, "do_rotary", 1), ai(n, "rotary_interleaved", p.interleaved);
    if (p.window) ai(n, "local_window_size", p.window);
    if (p.softcap) af(n, "softcap", p.softcap);
    if (p.smooth) ai(n, "smooth_softmax", 1);
    if (p.noncausal) ai(n, "causal", 0);
    output("y");
    if (p.consumed) {
        fconst("zero", 0.0f);
        node("Add", "present_k,zero", "pk_out");
        node("Add", "present_v,zero", "pv_out");
        output("pk_out"), output("pv_out");
    } else {
        output("present_k"), output("present_v");
    }
    char what[160];
    snprintf(what, sizeof what, "GroupQueryAttention %s (B%lld S%lld past %lld N%lld/%lld H%lld)", name, (long long)p.B, (long long)p.S,
             (long long)p.past, (long long)p.N, (long long)p.Nkv, (long long)p.H);
    run_attn(what, "GroupQueryAttention");
}

#define GQ(b, s, pa, n, nkv, h, t, ...) (gqa_p){.B = b, .S = s, .past = pa, .N = n, .Nkv = nkv, .H = h, .tsl = t, __VA_ARGS__}

static void cases_gqa(void) {
    gqa_case("prefill", GQ(1, 5, -1, 4, 2, 16, 5, .seqlens = (int64_t[]){4}));
    gqa_case("decode", GQ(1, 1, 5, 4, 2, 16, 6, .seqlens = (int64_t[]){5}));
    gqa_case("ragged decode", GQ(2, 1, 6, 4, 2, 16, 7, .seqlens = (int64_t[]){3, 6}));
    gqa_case("capacity", GQ(1, 1, 8, 4, 2, 16, 5, .seqlens = (int64_t[]){4}));
    gqa_case("capacity, cache in the arena", GQ(1, 1, 8, 4, 2, 16, 5, .seqlens = (int64_t[]){4}, .consumed = true));
    gqa_case("ragged decode, cache in the arena", GQ(2, 1, 6, 4, 2, 16, 7, .seqlens = (int64_t[]){3, 6}, .consumed = true));
    gqa_case("padded prompt", GQ(2, 4, -1, 4, 2, 16, 4, .seqlens = (int64_t[]){3, 1}));
    gqa_case("rotary", GQ(1, 5, -1, 4, 2, 32, 5, .seqlens = (int64_t[]){4}, .rotary = true));
    gqa_case("rotary interleaved decode", GQ(1, 1, 7, 4, 2, 16, 8, .seqlens = (int64_t[]){7}, .rotary = true, .interleaved = true));
    gqa_case("rotary chunk", GQ(1, 3, 4, 4, 2, 16, 7, .seqlens = (int64_t[]){6}, .rotary = true));
    gqa_case("position ids", GQ(1, 3, -1, 4, 2, 16, 3, .seqlens = (int64_t[]){2}, .rotary = true, .pos = true));
    gqa_case("packed", GQ(1, 5, -1, 4, 2, 16, 5, .seqlens = (int64_t[]){4}, .packed = true));
    gqa_case("window 3", GQ(1, 7, -1, 4, 2, 16, 7, .seqlens = (int64_t[]){6}, .window = 3));
    gqa_case("softcap + bias", GQ(1, 5, -1, 4, 2, 16, 5, .seqlens = (int64_t[]){4}, .softcap = 0.7f, .bias = true));
    gqa_case("head sink", GQ(1, 4, 2, 4, 2, 16, 6, .seqlens = (int64_t[]){5}, .sink = true));
    gqa_case("smooth softmax", GQ(1, 5, -1, 4, 2, 16, 5, .seqlens = (int64_t[]){4}, .smooth = true));
    gqa_case("non-causal", GQ(1, 5, -1, 4, 2, 16, 5, .seqlens = (int64_t[]){4}, .noncausal = true));
    gqa_case("MQA decode, long cache", GQ(1, 1, 300, 8, 1, 64, 301, .seqlens = (int64_t[]){300}, .rotary = true));
    gqa_case("decode, long cache, window", GQ(2, 1, 200, 4, 2, 32, 201, .seqlens = (int64_t[]){150, 200}, .window = 100));
    gqa_case("prefill 70 tokens", GQ(1, 70, -1, 4, 4, 16, 70, .seqlens = (int64_t[]){69}));
    /* CPU's blocked path (several query rows x heads against 64-key blocks): a chunk over a past cache, ragged
     * prompts, 8 query heads per KV head with rotary, a window, softcap and bias across key blocks */
    gqa_case("chunk of 100 over past 40", GQ(1, 100, 40, 8, 2, 32, 140, .seqlens = (int64_t[]){139}));
    gqa_case("ragged prefill", GQ(2, 40, -1, 8, 2, 16, 40, .seqlens = (int64_t[]){39, 20}));
    gqa_case("prefill, 8 heads per KV head, rotary", GQ(1, 37, -1, 16, 2, 32, 37, .seqlens = (int64_t[]){36}, .rotary = true));
    gqa_case("prefill, window 50, softcap + bias", GQ(1, 90, -1, 4, 2, 16, 90, .seqlens = (int64_t[]){89}, .window = 50, .softcap = 0.7f, .bias = true));
    gqa_case("prefill, head sink", GQ(1, 70, -1, 4, 2, 16, 70, .seqlens = (int64_t[]){69}, .sink = true));
    /* head sizes that are whole 8-lane vectors only (AVX2's blocked path; per-row on AVX-512), and over one pass
     * of 32 (AVX2) or 128 (AVX-512) output columns */
    gqa_case("prefill, head size 24", GQ(1, 45, -1, 4, 2, 24, 45, .seqlens = (int64_t[]){44}));
    gqa_case("prefill, head size 144", GQ(1, 9, -1, 2, 1, 144, 9, .seqlens = (int64_t[]){8}, .rotary = true));
}

// --- MultiHeadAttention -----------------------------------------------------------------------------------------------

/* The int32 constant "mask" of MultiHeadAttention and Attention cases: [B, T] with every 5th key from the 4th
 * masked, or (three_d) [B, S, T] with every 4th from the 2nd masked. */
static void pattern_mask(int64_t B, int64_t S, int64_t T, bool three_d) {
    int64_t m[128];
    const int64_t n = three_d ? B * S * T : B * T;
    if (n > 128) exit(2);
    for (int64_t i = 0; i < n; i++) m[i] = three_d ? (i % 4) != 1 : (i % 5) != 3;
    if (three_d) const_typed("mask", SI_I32, D(B, S, T), m);
    else const_typed("mask", SI_I32, D(B, T), m);
}

static void mha_case(const char *name, int64_t past, bool bias, int mask, bool abias, bool causal, bool cross, int64_t Hv) {
    const int64_t B = 2, S = 3, L = cross ? 6 : 4, N = 2, H = 8, T = (past > 0 ? past : 0) + L;
    begin_ms();
    input("q", D(B, S, N * H));
    if (cross) {
        input("k", D(B, N, L, H));
        input("v", D(B, N, L, Hv));
    } else {
        input("k", D(B, L, N * H));
        input("v", D(B, L, N * Hv));
    }
    if (bias) weight("bias", -1, 1, D(2 * N * H + N * Hv));
    if (mask == 1) const_typed("mask", SI_I32, D(B), (int64_t[]){T - 1, 2});
    else if (mask == 2 || mask == 3) pattern_mask(B, S, T, mask == 3);
    if (abias) input("ab", D(1, N, S, T));
    if (past > 0) input("pk", D(B, N, past, H)), input("pv", D(B, N, past, Hv));
    char ins[96];
    snprintf(ins, sizeof ins, "q,k,v,%s,%s,%s,%s,%s", bias ? "bias" : "", mask ? "mask" : "", abias ? "ab" : "", past > 0 ? "pk" : "",
             past > 0 ? "pv" : "");
    const bool present = past > 0 || cross;
    int n = msnode("MultiHeadAttention", ins, present ? "y,present_k,present_v" : "y");
    ai(n, "num_heads", N);
    if (causal) ai(n, "unidirectional", 1);
    output("y");
    if (present) output("present_k"), output("present_v");
    char what[96];
    snprintf(what, sizeof what, "MultiHeadAttention %s", name);
    run_attn(what, "MultiHeadAttention");
}

static void cases_mha(void) {
    mha_case("plain", 0, false, 0, false, false, false, 8);
    mha_case("bias, Hv 4", 0, true, 0, false, false, false, 4);
    mha_case("lengths mask", 0, false, 1, false, false, false, 8);
    mha_case("2-D mask + attention_bias", 0, false, 2, true, false, false, 8);
    mha_case("3-D mask", 0, true, 3, false, false, false, 8);
    mha_case("past, unidirectional", 5, true, 0, false, true, false, 8);
    mha_case("cross 4-D", 0, true, 0, false, false, true, 8);
}

// --- Attention (com.microsoft) -----------------------------------------------------------------------------------------

/* mask: 0 none, 1 lengths, 2 end and start, 3 2-D, 4 3-D. hs: qkv_hidden_sizes (NULL: W's width / 3). */
static void msattn_case(const char *name, int64_t B, int64_t S, int64_t past, bool bias, int mask, bool abias, bool causal, const int64_t *hs,
                        bool present) {
    const int64_t Din = 24, N = 2, Dq = hs ? hs[0] : 16, Dv = hs ? hs[2] : 16, H = Dq / N, T = past + S, W = 2 * Dq + Dv;
    begin_ms();
    input("x", D(B, S, Din));
    weight("w", -0.3f, 0.3f, D(Din, W));
    if (bias) weight("bias", -1, 1, D(W));
    if (mask == 1) const_typed("mask", SI_I32, D(B), (int64_t[]){T - 1, T});
    else if (mask == 2) const_typed("mask", SI_I32, D(2 * B), (int64_t[]){T - 1, T, 1, 0});
    else if (mask == 3 || mask == 4) pattern_mask(B, S, T, mask == 4);
    if (past > 0) input("past", D(2, B, N, past, H));
    if (abias) input("ab", D(B, 1, S, T));
    char ins[96];
    snprintf(ins, sizeof ins, "x,w,%s,%s,%s,%s", bias ? "bias" : "", mask ? "mask" : "", past > 0 ? "past" : "", abias ? "ab" : "");
    int n = msnode("Attention", ins, present ? "y,present" : "y");
    ai(n, "num_heads", N);
    if (hs) ais(n, "qkv_hidden_sizes", hs, 3);
    if (causal) ai(n, "unidirectional", 1);
    output("y");
    if (present) output("present");
    char what[96];
    snprintf(what, sizeof what, "Attention %s", name);
    run_attn(what, "Attention");
}

static void cases_msattn(void) {
    msattn_case("plain", 2, 3, 0, false, 0, false, false, NULL, false);
    msattn_case("bias, present", 2, 3, 0, true, 0, false, false, NULL, true);
    msattn_case("lengths mask", 2, 3, 0, true, 1, false, false, NULL, false);
    msattn_case("end and start mask", 2, 3, 0, true, 2, false, false, NULL, false);
    msattn_case("2-D mask + attention_bias", 2, 3, 0, false, 3, true, false, NULL, false);
    msattn_case("3-D mask", 2, 3, 0, true, 4, false, false, NULL, false);
    msattn_case("past, unidirectional, present", 2, 3, 5, true, 0, false, true, NULL, true);
    msattn_case("decode over past 70", 1, 1, 70, true, 3, false, true, NULL, true); /* more keys than a key block */
    static const int64_t hs[3] = {16, 16, 8};
    msattn_case("qkv_hidden_sizes 16,16,8", 2, 4, 0, true, 0, false, true, hs, false);
    static const int64_t hs32[3] = {32, 32, 32}; /* head size 16: CPU's blocked path */
    msattn_case("9 rows, past 5, mask + attention_bias, unidirectional", 2, 9, 5, true, 3, true, true, hs32, true);
}

// --- norms and GELUs ----------------------------------------------------------------------------------------------------

static void cases_llm_norm(void) {
    begin(17);
    input("x", D(2, 5, 48));
    weight("g", 0.5f, 1.5f, D(48));
    node("SimplifiedLayerNormalization", "x,g", "y,inv");
    output("y"), output("inv");
    run_llm("SimplifiedLayerNormalization", "SimplifiedLayerNormalization");
    /* OCL: normalized over the last two axes, the scale [1, 8] broadcast over axis -2; no inv_std_var */
    begin(17);
    input("x", D(2, 3, 4, 8));
    weight("g", 0.5f, 1.5f, D(1, 8));
    ai(node("SimplifiedLayerNormalization", "x,g", "y"), "axis", -2);
    output("y");
    dop_run("SimplifiedLayerNormalization axis -2", &(dop_opts){0}); /* CPU runs it with the reference kernel */
    for (int simplified = 0; simplified < 2; simplified++) {
        const char *op = simplified ? "SkipSimplifiedLayerNormalization" : "SkipLayerNormalization";
        begin_ms();
        input("x", D(2, 5, 40));
        input("s", D(5, 40));
        weight("g", 0.5f, 1.5f, D(40));
        weight("b1", -1, 1, D(40));
        weight("b2", -1, 1, D(40));
        msnode(op, simplified ? "x,s,g,b1" : "x,s,g,b1,b2", "y,mean,inv,sum");
        output("y"), output("mean"), output("inv"), output("sum");
        run_llm(op, op);
        begin_ms();
        input("x", D(7, 33));
        input("s", D(7, 33));
        weight("g", 0.5f, 1.5f, D(33));
        msnode(op, "x,s,g", "y");
        output("y");
        run_llm(op, op);
        /* skip [1, S, H] repeated over the batch, bias only, the sum output alone besides Y */
        begin_ms();
        input("x", D(3, 4, 70));
        input("s", D(1, 4, 70));
        weight("g", 0.5f, 1.5f, D(70));
        weight("bias", -1, 1, D(70));
        msnode(op, simplified ? "x,s,g,bias" : "x,s,g,,bias", "y,,,sum");
        output("y"), output("sum");
        run_llm(op, op);
    }
    static const char *const gelus[] = {"FastGelu", "BiasGelu", "QuickGelu"};
    for (int i = 0; i < 3; i++) {
        begin_ms();
        input("x", D(3, 4, 37));
        if (i < 2) weight("b", -1, 1, D(37));
        int n = msnode(gelus[i], i < 2 ? "x,b" : "x", "y");
        if (i == 2) af(n, "alpha", 1.5f);
        output("y");
        run_llm(gelus[i], gelus[i]);
    }
}

// --- DequantizeLinear (OCL: int8/uint8, per tensor and per axis) -------------------------------------------------------

/* x a graph input (a constant one would be folded before any device sees the node); zero points random over
 * the whole type range, so that their sign matters */
static void dq_case(const char *what, si_dtype dt, const int64_t *xd, int nx, int64_t axis, int64_t len, bool zp) {
    begin(19);
    input_typed("x", dt, xd, nx);
    if (len) weight("s", 0.01f, 0.5f, (const int64_t[]){len}, 1);
    else fconst("s", 0.125f);
    if (zp) const_typed("z", dt, (const int64_t[]){len}, len ? 1 : 0, NULL);
    int n = node("DequantizeLinear", zp ? "x,s,z" : "x,s", "y");
    if (axis != 1) ai(n, "axis", axis);
    output("y");
    dop_run(what, &(dop_opts){.cpu_plan = NULL});
}

static void cases_dq(void) {
    dq_case("DequantizeLinear uint8 per tensor, zero point", SI_U8, D(3, 4, 5), 1, 0, true);
    dq_case("DequantizeLinear int8 per tensor", SI_I8, D(3, 4, 5), 1, 0, false);
    dq_case("DequantizeLinear int8 per axis 1, zero points", SI_I8, D(2, 6, 3), 1, 6, true);
    dq_case("DequantizeLinear uint8 per axis -1", SI_U8, D(4, 7), -1, 7, false);
}

void dop_cases_llm_nbits(void) {
    cases_nbits();
    cases_dq();
}
void dop_cases_llm_gqa(void) { cases_gqa(); }
void dop_cases_llm_mha(void) {
    cases_mha();
    cases_msattn();
}
void dop_cases_llm_norm(void) {
    cases_llm_norm();
    cases_moe();
    cases_qmoe();
}
