/*
 * llm_generate — greedy generation on safeinfer through include/safeinfer.h (a benchmark: it prints, it asserts
 * nothing), the counterpart of models/ort_generate.js. The generation itself is tools/generate.c, which
 * `safeinfer bench MODEL --generate P,N` runs too; this program keeps the one-line JSON that
 * bench/llm_generate_bench.py reads.
 *
 *   llm_generate MODEL DEVICES THREADS PROMPT_LEN STEPS [SEED [RERUN]]
 *
 * The model is a decoder with a KV cache (input_ids, attention_mask, past_key_values.L.key/.value -> logits,
 * present.L.key/.value; models/llm.py writes them), compiled once with its dimensions open. The prompt is
 * PROMPT_LEN token ids from ort_generate.js's generator (a 64-bit LCG, token = (state >> 33) % vocab), prefilled
 * over an empty cache; then STEPS greedy tokens, each step feeding the presents back as the pasts. Prints one JSON
 * line like ort_generate.js: {"tokens", "compile_ms", "prefill_ms", "decode_ms", "prefill_tok_s", "decode_tok_s",
 * "decode_ms_per_token", "decode_step_median_ms", "decode_step_min_ms", "peak_rss_mib", "failovers", "devices",
 * "prefill_faults"} (prefill_faults: the process's page faults during the prefill call)
 * (decode_step_*: the median and the fastest of the decode steps, the steadier numbers on a shared machine).
 * decode_ms covers the STEPS - 1 runs after the prefill (argmax and the copy of the presents included, as in
 * ort_generate.js). RERUN 1 runs the prefill's and every decode step's inference a second time on the same inputs and
 * adds "rerun_prefill_ms", "rerun_step_median_ms" / "rerun_step_min_ms": a device that plans per input shape has its plan cached for the
 * second run, so the difference to decode_step_* is the per-token cost of planning a new shape. Faults and other
 * properties: SAFEINFER_FAULTS in the environment. With LLM_GENERATE_REPORT=FILE the compiled model's report
 * (submodels, their devices, failovers) is written to FILE.
 */
#include "safeinfer.h"
#include "generate.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: llm_generate MODEL DEVICES THREADS PROMPT_LEN STEPS [SEED [RERUN]]\n");
        return 2;
    }
    si_config *cfg = NULL;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", argv[2]) || si_config_set(cfg, "threads", argv[3])) {
        fprintf(stderr, "llm_generate: config: %s\n", si_last_error());
        return 1;
    }
    gen_opts o = {.model = argv[1], .cfg = cfg, .prompt = atoll(argv[4]), .steps = atoll(argv[5]),
                  .seed = argc > 6 ? (uint64_t)atoll(argv[6]) : 1, .rerun = argc > 7 && atoi(argv[7]) != 0};
    gen_result r;
    char err[1024];
    si_result s = gen_run(&o, &r, err, sizeof err);
    si_config_free(cfg);
    if (s) {
        fprintf(stderr, "llm_generate: %s\n", err);
        return 1;
    }
    const int64_t N = o.steps;
    printf("{\"tokens\": [");
    for (int64_t i = 0; i < N; i++) printf("%s%lld", i ? ", " : "", (long long)r.tokens[i]);
    printf("], \"compile_ms\": %.2f, \"prefill_ms\": %.3f, \"decode_ms\": %.3f, \"prefill_tok_s\": %.2f, \"decode_tok_s\": %.2f, "
           "\"decode_ms_per_token\": %.3f, \"decode_step_median_ms\": %.3f, \"decode_step_min_ms\": %.3f, \"peak_rss_mib\": %.1f, "
           "\"failovers\": %lld, \"devices\": \"%s\"",
           r.compile_ms, r.prefill_ms, r.decode_ms, (double)o.prompt / r.prefill_ms * 1e3, N > 1 ? (double)(N - 1) / r.decode_ms * 1e3 : 0.0,
           N > 1 ? r.decode_ms / (double)(N - 1) : 0.0, r.step_median_ms, r.step_min_ms, r.peak_rss_mib, (long long)r.counters.failovers,
           r.devices);
    printf(", \"prefill_faults\": %ld", r.prefill_faults);
    if (o.rerun) printf(", \"rerun_prefill_ms\": %.3f", r.prefill_rerun_ms);
    if (o.rerun && N > 1) printf(", \"rerun_step_median_ms\": %.3f, \"rerun_step_min_ms\": %.3f", r.rerun_median_ms, r.rerun_min_ms);
    printf("}\n");
    const char *report = getenv("LLM_GENERATE_REPORT");
    if (report && r.report) {
        FILE *f = fopen(report, "w");
        if (f) {
            fputs(r.report, f);
            fclose(f);
        }
    }
    gen_result_free(&r);
    return 0;
}
