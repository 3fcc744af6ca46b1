/*
 * test_hfa.c — host flash attention (hfa_tile) through the public API, on the fixtures of
 * scripts/make_hfa_models.py (attentions whose context length L is open). The oracle is the same model compiled
 * on REF without hfa_tile (the reference attention kernel).
 *   results        Attention (causal + float mask, bool mask + scale, masks covering 1 and 40 keys of more) and MatMul->Softmax->MatMul (Div scale +
 *                  mask; Mul scale, no mask, a node after it) on CPU and REF, at contexts shorter than a tile
 *                  (the plain attention: no tile runs), of one tile plus one key, of exact tiles and of many
 *                  tiles, equal the oracle's
 *   tile fault     a fault in the first tile run and in the middle of the tile loop (CPU,REF): the unit fails
 *                  over, the attention is re-run on REF, the result is the oracle's, the failover names the tile
 *                  model
 *   final fault    a fault in the final model: likewise, naming the final model
 *   compile/create a failing compile of the tile model, a failing request creation of the final model: the unit
 *                  starts on (moves to) REF with its auxiliary models
 *   concurrent     request A hangs in the middle of its tile loop while request B's inference fails and fails the
 *                  unit over; A's hang is released: A joins the new generation (its driver, tile and final models
 *                  re-created on REF) and gives the oracle's result; one failover in all
 *   fail-back      after a failover, failback_ms brings the unit back to CPU with fresh auxiliary models and the
 *                  tile loop runs there again, results unchanged
 *   many threads   4 requests x 30 inferences with random tile faults (p=0.1): every result is the oracle's
 * MoE experts as auxiliary models (moe_experts=on; moe_experts.onnx: two MoE nodes, 8 experts each, k=2 then 1):
 *   results        at 1, 5 and 37 tokens on CPU and REF equal the oracle's; one token runs exactly k experts per
 *                  MoE, and never more experts than there are
 *   expert fault   a fault in an expert's inference (CPU,REF): the MoE fails over, naming the expert, and the result
 *                  is the oracle's; likewise a failing compile of an expert model and a lost CPU
 * out of memory    for N = 1, 2, ... the Nth allocation fails while the attention (L = 40, 3 tiles) and the MoE model
 *                  compile with their auxiliary models on REF and infer: each run ends with the oracle's result or
 *                  a failure status with a message, never a crash (and no leak under AddressSanitizer)
 * Also run under ThreadSanitizer (make tsan).
 */
#include "si_test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "api/compiled.h"
#include "exec/hfa.h"
#include "exec/moe_drv.h"
#include "util/util.h"

#define TILE "16"

typedef struct fixture {
    const char *file;
    int n_in;
    int64_t dims[4][4]; /* per input: dims with -1 where L goes */
    si_dtype dt[4];
} fixture;

static const fixture fx_attn = {"hfa_attn.onnx", 4, {{1, 2, 4, 8}, {1, 2, -1, 8}, {1, 2, -1, 8}, {4, -1}}, {SI_F32, SI_F32, SI_F32, SI_F32}};
static const fixture fx_bool = {"hfa_attn_bool.onnx", 4, {{1, 2, 4, 8}, {1, 2, -1, 8}, {1, 2, -1, 8}, {1, 2, 4, -1}}, {SI_F32, SI_F32, SI_F32, SI_BOOL}};
static const fixture fx_pat = {"hfa_pat.onnx", 4, {{2, 2, 3, 8}, {2, 2, 8, -1}, {2, 2, -1, 8}, {2, 1, 1, -1}}, {SI_F32, SI_F32, SI_F32, SI_F32}};
static const fixture fx_mask1 = {"hfa_attn_mask1.onnx", 4, {{1, 2, 4, 8}, {1, 2, -1, 8}, {1, 2, -1, 8}, {4, 1}}, {SI_F32, SI_F32, SI_F32, SI_F32}};
static const fixture fx_mask40 = {"hfa_attn_mask40.onnx", 4, {{1, 2, 4, 8}, {1, 2, -1, 8}, {1, 2, -1, 8}, {4, 40}}, {SI_F32, SI_F32, SI_F32, SI_F32}};
static const fixture fx_late_v = {"hfa_late_v.onnx", 3, {{1, 2, 3, 8}, {1, 2, 8, -1}, {1, 2, -1, 8}}, {SI_F32, SI_F32, SI_F32}};
static const fixture fx_moe = {"moe_experts.onnx", 1, {{-1, 16}}, {SI_F32}};
static const fixture fx_mha = {"hfa_mha.onnx", 3, {{1, 3, 6, 16}, {1, 3, 16, -1}, {1, 3, -1, 16}}, {SI_F32, SI_F32, SI_F32}};

static int ndims(const int64_t *d) {
    int n = 0;
    while (n < 4 && d[n]) n++;
    return n;
}

/* The inputs of fixture f at context L (seeded). */
static void make_inputs(const fixture *f, int64_t L, uint32_t seed, si_tensor **in) {
    for (int i = 0; i < f->n_in; i++) {
        int64_t d[4];
        int nd = ndims(f->dims[i]);
        for (int k = 0; k < nd; k++) d[k] = f->dims[i][k] < 0 ? L : f->dims[i][k];
        in[i] = NULL;
        if (si_tensor_create(f->dt[i], nd, d, &in[i])) { fprintf(stderr, "tensor: %s\n", si_last_error()); exit(2); }
        if (f->dt[i] == SI_BOOL) {
            uint8_t *p = si_tensor_data(in[i]);
            for (int64_t k = 0; k < si_tensor_count(in[i]); k++) p[k] = (uint8_t)(((k * 7 + seed) % 5) != 0);
        } else {
            fill_xorshift(in[i], seed * 16 + (uint32_t)i, i == 3 ? -2.0f : -0.5f);
        }
    }
}

static void free_inputs(const fixture *f, si_tensor **in) {
    for (int i = 0; i < f->n_in; i++) si_tensor_free(in[i]);
}

static si_compiled *compile_kv(const fixture *f, const char *const *kv) {
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    si_result s = si_model_load(data_path(f->file), &m);
    if (!s) s = si_config_create(&cfg);
    for (int i = 0; !s && kv[i]; i += 2) s = si_config_set(cfg, kv[i], kv[i + 1]);
    if (!s) s = si_compile(m, cfg, &c);
    if (s) fprintf(stderr, "  compile %s: %s\n", f->file, si_last_error());
    CHECK(s == SI_OK);
    si_config_free(cfg);
    si_model_free(m);
    return c;
}

/* One inference of c on in; a copy of output 0 in *y (caller frees). */
static si_result infer_req(si_request *rq, const fixture *f, si_tensor **in, si_tensor **y) {
    si_result s = SI_OK;
    for (int i = 0; !s && i < f->n_in; i++) s = si_request_set_input(rq, i, in[i]);
    if (!s) s = si_request_infer(rq);
    si_tensor *o = NULL;
    if (!s) s = si_request_get_output(rq, 0, &o);
    if (!s && y) {
        int64_t d[8];
        int nd = si_tensor_ndim(o);
        memcpy(d, si_tensor_dims(o), sizeof(int64_t) * (size_t)nd);
        if (!(s = si_tensor_create(SI_F32, nd, d, y))) memcpy(si_tensor_data(*y), si_tensor_data(o), sizeof(float) * (size_t)si_tensor_count(o));
    }
    return s;
}

static si_tensor *infer_once(si_compiled *c, const fixture *f, si_tensor **in) {
    si_request *rq = NULL;
    si_tensor *y = NULL;
    si_result s = si_request_create(c, &rq);
    if (!s) s = infer_req(rq, f, in, &y);
    if (s) fprintf(stderr, "  infer: %s\n", si_last_error());
    CHECK(s == SI_OK);
    si_request_free(rq);
    return y;
}

/* Largest |a - b| over b's scale: within 1e-4 (float32 sums in another order). */
static bool close_to(const si_tensor *a, const si_tensor *b) {
    if (!a || !b || si_tensor_count(a) != si_tensor_count(b)) return false;
    const float *x = si_tensor_data((si_tensor *)a), *y = si_tensor_data((si_tensor *)b);
    double scale = 1e-6, diff = 0;
    for (int64_t i = 0; i < si_tensor_count(b); i++) {
        scale = fmax(scale, fabs(y[i]));
        diff = fmax(diff, fabs((double)x[i] - y[i]));
    }
    if (diff > 1e-4 * scale) fprintf(stderr, "  differs: %g (scale %g)\n", diff, scale);
    return diff <= 1e-4 * scale;
}

static si_tensor *oracle(const fixture *f, si_tensor **in) {
    si_compiled *c = compile_kv(f, (const char *const[]){"devices", "REF", NULL});
    si_tensor *y = c ? infer_once(c, f, in) : NULL;
    si_compiled_free(c);
    return y;
}

static bool report_has(si_compiled *c, const char *what) {
    char *json = NULL;
    if (si_compiled_report_json(c, &json)) return false;
    bool yes = strstr(json, what) != NULL;
    if (!yes) fprintf(stderr, "  report lacks \"%s\"\n", what);
    si_free_string(json);
    return yes;
}

static int64_t failovers(si_compiled *c) {
    si_counters k;
    si_compiled_counters(c, &k);
    return k.failovers;
}

static void test_results(const fixture *f) {
    static const int64_t all[] = {9, 16, 17, 64, 200}, long_[] = {64, 64, 100, 100, 200}; /* masks of 40 keys: L >= 40 */
    const int64_t *Ls = f == &fx_mask40 ? long_ : all;
    for (const char *const *dev = (const char *const[]){"CPU", "REF", NULL}; *dev; dev++) {
        si_compiled *c = compile_kv(f, (const char *const[]){"devices", *dev, "hfa_tile", TILE, NULL});
        for (int i = 0; c && i < 5; i++) {
            si_tensor *in[4], *want = NULL, *got = NULL;
            make_inputs(f, Ls[i], (uint32_t)i + 1, in);
            want = oracle(f, in);
            int64_t before = si_hfa_tile_runs();
            got = infer_once(c, f, in);
            int64_t runs = si_hfa_tile_runs() - before;
            const int64_t tiles = Ls[i] <= 16 ? 0 : (Ls[i] + 15) / 16;
            if (runs != tiles) fprintf(stderr, "  %s on %s, L=%lld: %lld tile runs, want %lld\n", f->file, *dev, (long long)Ls[i], (long long)runs, (long long)tiles);
            CHECK(runs == tiles);
            CHECK(close_to(got, want));
            si_tensor_free(want);
            si_tensor_free(got);
            free_inputs(f, in);
        }
        si_compiled_free(c);
    }
}

/* faults on CPU,REF at L = 64 (4 tiles, then the final model): the result is the oracle's, one failover whose
 * message names `which`. */
static void fault_case(const char *faults, const char *which, int64_t n_failovers) {
    const fixture *f = &fx_attn;
    si_tensor *in[4];
    make_inputs(f, 64, 7, in);
    si_tensor *want = oracle(f, in);
    si_compiled *c = compile_kv(f, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, "faults", faults, NULL});
    if (c) {
        si_tensor *got = infer_once(c, f, in);
        CHECK(close_to(got, want));
        CHECK(failovers(c) == n_failovers);
        CHECK(report_has(c, which));
        si_tensor_free(got);
        /* and again, on REF now */
        got = infer_once(c, f, in);
        CHECK(close_to(got, want));
        si_tensor_free(got);
    }
    si_compiled_free(c);
    si_tensor_free(want);
    free_inputs(f, in);
}

static void test_faults(void) {
    fault_case("CPU.infer=1", "tile model: CPU infer call 1", 1);
    fault_case("CPU.infer=3", "tile model: CPU infer call 3", 1); /* in the middle of the loop */
    fault_case("CPU.infer=5", "final model: CPU infer call 5", 1);
    fault_case("CPU.infer=5:oom", "final model: CPU infer call 5", 1);
    /* a lost CPU: the Relu after the attention (another submodel on CPU) fails over too */
    fault_case("CPU.infer=3:lost", "tile model: CPU infer call 3: device lost", 2);
}

/* A mask of 40 keys over a context of 20: the caller's mistake, named as the plain attention names it, on the tile
 * loop's path too (20 > one tile), and no failover. */
static void test_bad_mask(void) {
    si_tensor *in[4];
    make_inputs(&fx_mask40, 20, 1, in);
    si_compiled *c = compile_kv(&fx_mask40, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, NULL});
    si_request *rq = NULL;
    if (c && !si_request_create(c, &rq)) {
        CHECK_ERR(infer_req(rq, &fx_mask40, in, NULL), SI_ERR_INVALID_ARG, "40 keys");
        CHECK(failovers(c) == 0);
    }
    si_request_free(rq);
    si_compiled_free(c);
    free_inputs(&fx_mask40, in);
}

static void test_compile_create_faults(void) {
    const fixture *f = &fx_bool; /* one submodel: the call numbers are the unit's (submodels compile in parallel) */
    si_tensor *in[4];
    make_inputs(f, 50, 3, in);
    si_tensor *want = oracle(f, in);
    /* compile 1 is the plain attention on CPU, 2 its tile model */
    si_compiled *c = compile_kv(f, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, "faults", "CPU.compile=2", NULL});
    if (c) {
        si_tensor *got = infer_once(c, f, in);
        CHECK(close_to(got, want));
        CHECK(report_has(c, "flash attention tile model: CPU compile call 2"));
        si_tensor_free(got);
    }
    si_compiled_free(c);
    /* request creations on CPU: the unit's plain (1), tile (2), final (3) requests */
    c = compile_kv(f, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, "faults", "CPU.create=3", NULL});
    if (c) {
        si_tensor *got = infer_once(c, f, in);
        CHECK(close_to(got, want));
        CHECK(failovers(c) == 1);
        CHECK(report_has(c, "final model: CPU create call 3"));
        si_tensor_free(got);
    }
    si_compiled_free(c);
    si_tensor_free(want);
    free_inputs(f, in);
}

typedef struct runner {
    si_compiled *c;
    const fixture *f;
    si_tensor **in;
    si_tensor *y;
    si_result st;
} runner;

static void *run_one(void *arg) {
    runner *r = arg;
    si_request *rq = NULL;
    r->st = si_request_create(r->c, &rq);
    if (!r->st) r->st = infer_req(rq, r->f, r->in, &r->y);
    si_request_free(rq);
    return NULL;
}

static void test_concurrent_failover(void) {
    const fixture *f = &fx_attn;
    si_tensor *in[4];
    make_inputs(f, 64, 11, in);
    si_tensor *want = oracle(f, in);
    /* A's second tile hangs; the next infer call (B's) fails */
    si_compiled *c = compile_kv(f, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, "faults", "CPU.infer=2:hang,CPU.infer=3", NULL});
    if (!c) goto out;
    /* B's request exists before A starts, so that its creation is not behind A's hang */
    si_request *rb = NULL;
    CHECK_OK(si_request_create(c, &rb));
    runner a = {.c = c, .f = f, .in = in};
    int64_t base = si_hfa_tile_runs();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, run_one, &a) == 0);
    for (int i = 0; i < 10000 && si_hfa_tile_runs() == base; i++) usleep(1000);
    usleep(200 * 1000); /* A is in its second tile call now (it only slices a tile before it) */
    CHECK(si_hfa_tile_runs() - base == 1);
    si_tensor *yb = NULL;
    CHECK_OK(infer_req(rb, f, in, &yb)); /* its first tile fails on CPU: the unit fails over, B re-runs on REF */
    CHECK(close_to(yb, want));
    CHECK(failovers(c) == 1);
    CHECK(si_hfa_tile_runs() - base == 1 + 4); /* A still in its loop; B's 4 tiles on REF */
    si_faulty_release_hangs(c->ds->wrappers[0]); /* A's tile call returns an error: A joins REF */
    pthread_join(t, NULL);
    CHECK(a.st == SI_OK);
    CHECK(close_to(a.y, want));
    CHECK(failovers(c) == 1); /* A joined the generation B made: no second failover */
    CHECK(si_hfa_tile_runs() - base == 1 + 4 + 4); /* A re-ran the whole attention on REF's fresh models */
    si_tensor_free(a.y);
    si_tensor_free(yb);
    si_request_free(rb);
    si_compiled_free(c);
out:
    si_tensor_free(want);
    free_inputs(f, in);
}

static void test_failback(void) {
    const fixture *f = &fx_pat;
    si_tensor *in[4];
    make_inputs(f, 80, 5, in);
    si_tensor *want = oracle(f, in);
    si_compiled *c = compile_kv(f, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, "faults", "CPU.infer=2",
                                                          "failback_ms", "5", NULL});
    if (c) {
        si_request *rq = NULL;
        CHECK_OK(si_request_create(c, &rq));
        si_counters k = {0};
        for (int i = 0; i < 400 && !k.failbacks; i++) {
            si_tensor *y = NULL;
            CHECK_OK(infer_req(rq, f, in, &y));
            CHECK(close_to(y, want));
            si_tensor_free(y);
            si_compiled_counters(c, &k);
            if (!k.failbacks) usleep(5000);
        }
        CHECK(k.failovers == 1);
        CHECK(k.failbacks == 1);
        /* back on CPU: the request's driver is rebuilt there and the tile loop runs on CPU's fresh models */
        int64_t before = si_hfa_tile_runs();
        si_tensor *y = NULL;
        CHECK_OK(infer_req(rq, f, in, &y));
        CHECK(si_hfa_tile_runs() - before == 5);
        CHECK(close_to(y, want));
        CHECK(report_has(c, "\"device\":\"CPU\",\"attempts\""));
        si_tensor_free(y);
        si_request_free(rq);
    }
    si_compiled_free(c);
    si_tensor_free(want);
    free_inputs(f, in);
}

typedef struct worker {
    si_compiled *c;
    si_tensor *want;
    si_tensor **in;
    int ok, bad;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    si_request *rq = NULL;
    if (si_request_create(w->c, &rq)) { w->bad = 30; return NULL; }
    for (int i = 0; i < 30; i++) {
        si_tensor *y = NULL;
        if (!infer_req(rq, &fx_pat, w->in, &y) && close_to(y, w->want)) w->ok++;
        else w->bad++;
        si_tensor_free(y);
    }
    si_request_free(rq);
    return NULL;
}

static void test_many_threads(void) {
    si_tensor *in[4];
    make_inputs(&fx_pat, 100, 9, in);
    si_tensor *want = oracle(&fx_pat, in);
    si_compiled *c = compile_kv(&fx_pat, (const char *const[]){"devices", "CPU,REF", "hfa_tile", TILE, "faults", "CPU.infer=p0.1@3",
                                                                "failback_ms", "2", "recovery_ms", "0", NULL});
    if (c) {
        worker w[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
            w[i] = (worker){.c = c, .want = want, .in = in};
            CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
        }
        int ok = 0, bad = 0;
        for (int i = 0; i < 4; i++) {
            pthread_join(t[i], NULL);
            ok += w[i].ok, bad += w[i].bad;
        }
        fprintf(stderr, "  many threads: %d ok, %d bad, %lld failovers\n", ok, bad, (long long)failovers(c));
        CHECK(ok == 120 && bad == 0);
        CHECK(failovers(c) >= 1);
    }
    si_compiled_free(c);
    si_tensor_free(want);
    free_inputs(&fx_pat, in);
}

static void test_moe(void) {
    const fixture *f = &fx_moe;
    static const int64_t Ts[] = {1, 5, 37};
    for (const char *const *dev = (const char *const[]){"CPU", "REF", NULL}; *dev; dev++) {
        si_compiled *c = compile_kv(f, (const char *const[]){"devices", *dev, "moe_experts", "on", NULL});
        for (int i = 0; c && i < 3; i++) {
            si_tensor *in[1];
            make_inputs(f, Ts[i], (uint32_t)i + 3, in);
            si_tensor *want = oracle(f, in);
            int64_t before = si_moe_expert_runs();
            si_tensor *got = infer_once(c, f, in);
            int64_t runs = si_moe_expert_runs() - before;
            if (Ts[i] == 1) CHECK(runs == 2 + 1); /* k = 2, then k = 1 */
            CHECK(runs >= 2 && runs <= 16);
            CHECK(close_to(got, want));
            si_tensor_free(want);
            si_tensor_free(got);
            free_inputs(f, in);
        }
        si_compiled_free(c);
    }
    /* faults: CPU infer calls are router_a (1), moe_a's 2 experts (2, 3), router_b (4), moe_b's expert (5) */
    static const struct {
        const char *faults, *want;
        int64_t failovers;
    } cases[] = {{"CPU.infer=3", "MoE 'moe_a': expert ", 1},
                 {"CPU.infer=5", "MoE 'moe_b': expert ", 1},
                 /* submodels compile in parallel; each MoE makes 9 compiles (plain, 8 experts), the routers 1: from
                  * the 4th on, an expert's compile fails whatever the order */
                 {"CPU.compile=4+", "MoE expert ", 0},
                 /* lost on moe_a's first expert: it, router_b and moe_b fail over (router_a ran before) */
                 {"CPU.infer=2:lost", "moe_a': expert ", 3}};
    for (int i = 0; i < 4; i++) {
        si_tensor *in[1];
        make_inputs(f, 1, 9, in);
        si_tensor *want = oracle(f, in);
        si_compiled *c = compile_kv(f, (const char *const[]){"devices", "CPU,REF", "moe_experts", "on", "faults", cases[i].faults, NULL});
        if (c) {
            si_tensor *got = infer_once(c, f, in);
            CHECK(close_to(got, want));
            if (strstr(cases[i].faults, "infer")) CHECK(failovers(c) == cases[i].failovers);
            CHECK(report_has(c, cases[i].want));
            si_tensor_free(got);
        }
        si_compiled_free(c);
        si_tensor_free(want);
        free_inputs(f, in);
    }
}

/* Is an armed allocation failure still to come? (disarms it) */
static bool failure_pending(long n) {
    bool pending = false;
    for (long i = 0; i < n && !pending; i++) {
        void *q = si_malloc(1);
        pending = q == NULL;
        si_free(q);
    }
    si_alloc_fail_after(0, 0);
    return pending;
}

static void alloc_fail_loop(const fixture *f, int64_t L, const char *key, const char *val) {
    si_tensor *in[4];
    make_inputs(f, L, 2, in);
    si_tensor *want = oracle(f, in);
    si_model *m = NULL;
    si_config *cfg = NULL;
    CHECK_OK(si_model_load(data_path(f->file), &m));
    CHECK_OK(si_config_create(&cfg));
    CHECK_OK(si_config_set(cfg, "devices", "REF"));
    CHECK_OK(si_config_set(cfg, key, val));
    long n = 1, ok = 0, failed = 0;
    for (; n < 200000; n++) {
        si_compiled *c = NULL;
        si_request *rq = NULL;
        si_tensor *y = NULL;
        si_alloc_fail_after(n, 0);
        si_result s = si_compile(m, cfg, &c);
        if (!s) s = si_request_create(c, &rq);
        if (!s) s = infer_req(rq, f, in, &y);
        bool pending = failure_pending(n);
        if (s) {
            failed++;
            if (!*si_last_error()) fprintf(stderr, "  N=%ld: status %d without a message\n", n, (int)s);
            CHECK(*si_last_error() != 0);
        } else {
            ok++;
            CHECK(close_to(y, want));
        }
        si_tensor_free(y);
        si_request_free(rq);
        si_compiled_free(c);
        if (!s && pending) break; /* the run made fewer than n allocations: every failure point was tried */
    }
    fprintf(stderr, "  out of memory, %s: %ld failure points, %ld runs failed cleanly, %ld succeeded\n", f->file, n - 1, failed, ok);
    CHECK(n > 100 && n < 200000);
    si_config_free(cfg);
    si_model_free(m);
    si_tensor_free(want);
    free_inputs(f, in);
}

int main(void) {
    test_results(&fx_attn);
    test_results(&fx_bool);
    test_results(&fx_pat);
    test_results(&fx_mask1);
    test_results(&fx_late_v); /* the partitioner waits for V's projection before it enters the unit */
    test_results(&fx_mask40);
    test_results(&fx_mha);
    test_bad_mask();
    test_faults();
    test_compile_create_faults();
    test_concurrent_failover();
    test_failback();
    test_many_threads();
    test_moe();
    alloc_fail_loop(&fx_attn, 40, "hfa_tile", TILE);
    alloc_fail_loop(&fx_moe, 5, "moe_experts", "on");
    return test_summary("test_hfa");
}
