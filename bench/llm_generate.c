/*
 * llm_generate — greedy generation on safeinfer through include/safeinfer.h (a benchmark: it prints, it asserts
 * nothing), the counterpart of models/ort_generate.js.
 *
 *   llm_generate MODEL DEVICES THREADS PROMPT_LEN STEPS [SEED [RERUN]]
 *
 * The model is a decoder with a KV cache (input_ids, attention_mask, past_key_values.L.key/.value -> logits,
 * present.L.key/.value; models/llm.py writes them), compiled once with its dimensions open. The prompt is
 * PROMPT_LEN token ids from ort_generate.js's generator (a 64-bit LCG, token = (state >> 33) % vocab), prefilled
 * over an empty cache; then STEPS greedy tokens, each step feeding the presents back as the pasts. Prints one JSON
 * line like ort_generate.js: {"tokens", "compile_ms", "prefill_ms", "decode_ms", "prefill_tok_s", "decode_tok_s",
 * "decode_ms_per_token", "decode_step_median_ms", "decode_step_min_ms", "devices"} (the last two: the
 * median and the fastest of the decode steps, the steadier numbers on a shared machine). decode_ms covers the STEPS - 1 runs after the prefill (argmax and the copy of
 * the presents included, as in ort_generate.js). RERUN 1 runs every decode step's inference a second time on the same
 * inputs and adds "rerun_step_median_ms" / "rerun_step_min_ms": a device that plans per input shape (the CPU device
 * does, once per distinct shape) has its plan cached for the second run, so the difference to decode_step_* is the
 * per-token cost of planning a new shape.
 */
#define BENCH_NAME "llm_generate"
#include "bench.h"
#include "safeinfer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_IO 256

static int64_t argmax_last(const si_tensor *logits) {
    const int64_t *d = si_tensor_dims(logits);
    const int64_t s = d[1], v = d[2];
    const float *x = (const float *)si_tensor_data(logits) + (s - 1) * v;
    int64_t best = 0;
    for (int64_t i = 1; i < v; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: llm_generate MODEL DEVICES THREADS PROMPT_LEN STEPS [SEED [RERUN]]\n");
        return 2;
    }
    const int64_t P = atoll(argv[4]), N = atoll(argv[5]);
    const uint64_t seed = argc > 6 ? (uint64_t)atoll(argv[6]) : 1;
    const bool rerun = argc > 7 && atoi(argv[7]) != 0;
    if (P < 1 || N < 1) die("PROMPT_LEN and STEPS must be >= 1");
    si_model *m;
    si_config *cfg;
    si_compiled *c;
    si_request *r;
    const double t0 = now_ms();
    if (si_model_load(argv[1], &m)) die("load");
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", argv[2]) || si_config_set(cfg, "threads", argv[3])) die("config");
    /* the geometry from the declared shapes: logits' vocabulary, the pasts' KV heads and head size */
    int64_t vocab = 0, kvh = 0, hd = 0;
    si_value_info vi;
    const int lo = si_model_output_index(m, "logits");
    if (lo < 0 || si_model_output_info(m, lo, &vi) || vi.ndim != 3 || vi.dims[2] < 1) die("logits [batch, sequence, vocab] expected");
    vocab = vi.dims[2];
    const int n_in = si_model_num_inputs(m), n_out = si_model_num_outputs(m);
    if (n_in > MAX_IO || n_out > MAX_IO) die("too many inputs or outputs");
    int past_of_out[MAX_IO]; /* output k is present.X -> the index of input past_key_values.X, or -1 */
    for (int k = 0; k < n_out; k++) {
        past_of_out[k] = -1;
        if (si_model_output_info(m, k, &vi)) die("output info");
        if (!strncmp(vi.name, "present.", 8)) {
            char nm[256];
            snprintf(nm, sizeof nm, "past_key_values.%s", vi.name + 8);
            past_of_out[k] = si_model_input_index(m, nm);
            if (past_of_out[k] < 0) die(nm);
        }
    }
    for (int i = 0; i < n_in; i++) {
        if (si_model_input_info(m, i, &vi)) die("input info");
        if (!strncmp(vi.name, "past_key_values.", 16)) {
            if (vi.ndim != 4 || vi.dims[1] < 1 || vi.dims[3] < 1) die("past [batch, kv heads, past, head size] expected");
            kvh = vi.dims[1], hd = vi.dims[3];
        }
    }
    const int ii = si_model_input_index(m, "input_ids"), im = si_model_input_index(m, "attention_mask");
    if (ii < 0 || im < 0 || !kvh) die("input_ids, attention_mask and past_key_values.* expected");
    if (si_compile(m, cfg, &c)) die("compile");
    if (si_request_create(c, &r)) die("request");
    const double compile_ms = now_ms() - t0;
    /* inputs by the compiled model's index */
    int cin[MAX_IO], cout_[MAX_IO];
    for (int i = 0; i < n_in; i++) {
        if (si_model_input_info(m, i, &vi)) die("input info");
        cin[i] = -1;
        for (int k = 0; k < si_compiled_num_inputs(c); k++)
            if (!strcmp(si_compiled_input_name(c, k), vi.name)) cin[i] = k;
        if (cin[i] < 0) die(vi.name);
    }
    for (int o = 0; o < n_out; o++) {
        if (si_model_output_info(m, o, &vi)) die("output info");
        cout_[o] = -1;
        for (int k = 0; k < si_compiled_num_outputs(c); k++)
            if (!strcmp(si_compiled_output_name(c, k), vi.name)) cout_[o] = k;
        if (cout_[o] < 0) die(vi.name);
    }
    const int64_t T = P + N;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)P), *mask = malloc(sizeof(int64_t) * (size_t)T), *tokens = malloc(sizeof(int64_t) * (size_t)N);
    float *pasts[MAX_IO] = {0}; /* by input index: the cache, room for T positions */
    si_tensor *pin[MAX_IO] = {0};
    double *step_ms = malloc(sizeof(double) * (size_t)N), *rerun_ms = malloc(sizeof(double) * (size_t)N);
    if (!ids || !mask || !tokens || !step_ms || !rerun_ms) die("memory");
    for (int64_t t = 0; t < T; t++) mask[t] = 1;
    uint64_t s = seed;
    for (int64_t i = 0; i < P; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int64_t)((s >> 33) % (uint64_t)vocab);
    }
    for (int o = 0; o < n_out; o++)
        if (past_of_out[o] >= 0 && !(pasts[past_of_out[o]] = malloc(sizeof(float) * (size_t)(kvh * T * hd + 1)))) die("memory");
    int64_t past = 0, cur = 0;
    si_tensor *tid = NULL, *tmask = NULL;
    double prefill_ms = 0, t1 = 0, rerun_sum = 0;
    for (int64_t step = 0; step < N; step++) {
        const int64_t S = step == 0 ? P : 1;
        if (step == 1) t1 = now_ms();
        double ts = now_ms();
        si_tensor_free(tid), si_tensor_free(tmask);
        if (si_tensor_wrap(SI_I64, 2, (int64_t[]){1, S}, step == 0 ? ids : &cur, sizeof(int64_t) * (size_t)S, &tid) ||
            si_tensor_wrap(SI_I64, 2, (int64_t[]){1, past + S}, mask, sizeof(int64_t) * (size_t)(past + S), &tmask))
            die("wrap");
        if (si_request_set_input(r, cin[ii], tid) || si_request_set_input(r, cin[im], tmask)) die("set input");
        for (int i = 0; i < n_in; i++) {
            if (!pasts[i]) continue;
            si_tensor_free(pin[i]);
            if (si_tensor_wrap(SI_F32, 4, (int64_t[]){1, kvh, past, hd}, pasts[i], sizeof(float) * (size_t)(kvh * past * hd), &pin[i]) || si_request_set_input(r, cin[i], pin[i]))
                die("past");
        }
        if (si_request_infer(r)) die("infer");
        if (rerun && step > 0) {
            const double tr = now_ms();
            if (si_request_infer(r)) die("infer");
            rerun_ms[step] = now_ms() - tr;
            ts += rerun_ms[step]; /* not counted in the step nor in decode_ms */
            rerun_sum += rerun_ms[step];
        }
        si_tensor *lg;
        if (si_request_get_output(r, cout_[lo], &lg)) die("logits");
        cur = tokens[step] = argmax_last(lg);
        past += S;
        for (int o = 0; o < n_out && step + 1 < N; o++) { /* the presents become the next pasts */
            if (past_of_out[o] < 0) continue;
            si_tensor *pr;
            if (si_request_get_output(r, cout_[o], &pr)) die("present");
            if (si_tensor_count(pr) != kvh * past * hd) die("present has an unexpected size");
            memcpy(pasts[past_of_out[o]], si_tensor_data(pr), si_tensor_nbytes(pr));
        }
        step_ms[step] = now_ms() - ts;
        if (step == 0) prefill_ms = step_ms[0];
    }
    const double decode_ms = N > 1 ? now_ms() - t1 - rerun_sum : 0;
    qsort(step_ms + 1, (size_t)(N - 1), sizeof(double), cmp_d);
    qsort(rerun_ms + 1, (size_t)(N - 1), sizeof(double), cmp_d);
    printf("{\"tokens\": [");
    for (int64_t i = 0; i < N; i++) printf("%s%lld", i ? ", " : "", (long long)tokens[i]);
    printf("], \"compile_ms\": %.2f, \"prefill_ms\": %.3f, \"decode_ms\": %.3f, \"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, "
           "\"decode_ms_per_token\": %.3f, \"decode_step_median_ms\": %.3f, \"decode_step_min_ms\": %.3f, \"devices\": \"%s\"",
           compile_ms, prefill_ms, decode_ms, (double)P / prefill_ms * 1e3, N > 1 ? (double)(N - 1) / decode_ms * 1e3 : 0.0,
           N > 1 ? decode_ms / (double)(N - 1) : 0.0, N > 1 ? step_ms[1 + (N - 1) / 2] : 0.0, N > 1 ? step_ms[1] : 0.0,
           si_compiled_devices(c));
    if (rerun && N > 1) printf(", \"rerun_step_median_ms\": %.3f, \"rerun_step_min_ms\": %.3f", rerun_ms[1 + (N - 1) / 2], rerun_ms[1]);
    printf("}\n");
    for (int i = 0; i < n_in; i++) si_tensor_free(pin[i]), free(pasts[i]);
    si_tensor_free(tid), si_tensor_free(tmask);
    free(ids), free(mask), free(tokens), free(step_ms), free(rerun_ms);
    si_request_free(r);
    si_compiled_free(c);
    si_config_free(cfg);
    si_model_free(m);
    return 0;
}
