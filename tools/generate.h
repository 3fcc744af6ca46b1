/*
 * generate.h — greedy generation with a KV-cache decoder through include/safeinfer.h: `safeinfer bench MODEL
 * --generate P,N` and bench/llm_generate.c share it.
 *
 * The model is a decoder with the Hugging Face / ONNX Runtime GenAI I/O naming: inputs input_ids [batch, seq],
 * attention_mask [batch, total], optional position_ids [batch, seq], past_key_values.L.key/.value [batch, kv heads,
 * past, head size]; outputs logits [batch, seq, vocab] and present.L.key/.value. It is compiled once with its
 * dimensions open. A prompt of P token ids (a 64-bit LCG from `seed`: token = (state >> 33) % vocab, the
 * generator of models/ort_generate.js) is prefilled over an empty cache (past length 0); then N - 1 more greedy
 * tokens, each step feeding the presents back as the pasts. Batch 1.
 */
#ifndef SI_GENERATE_H
#define SI_GENERATE_H

#include "safeinfer.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct gen_opts {
    const char *model;
    si_config *cfg;  /* devices, threads, faults, ...: the caller's */
    int64_t prompt;  /* P >= 1 */
    int64_t steps;   /* N >= 1: tokens generated (the first by the prefill) */
    uint64_t seed;   /* of the prompt */
    bool rerun;      /* run the prefill's and every decode step's inference a second time on the same inputs (timed apart) */
    /* (optional) called with the compiled model after the last step, before it is freed (bench --profile) */
    void (*inspect)(const si_compiled *c, void *ctx);
    void *inspect_ctx;
} gen_opts;

typedef struct gen_result {
    int64_t *tokens;                        /* N generated tokens (free with gen_result_free) */
    double compile_ms, prefill_ms;          /* load + compile + first request; the first inference (the call alone) */
    double decode_ms;                       /* the N - 1 decode steps (argmax included, the harness's copy of the presents not) */
    double step_median_ms, step_min_ms;     /* of the decode steps' inference calls */
    double rerun_median_ms, rerun_min_ms;   /* rerun: of the second inferences */
    double prefill_rerun_ms;                /* rerun: the prefill's second inference (NAN without rerun) */
    long prefill_faults;                    /* minor + major page faults of the process during the first prefill call */
    double peak_rss_mib;                    /* the process's high-water mark at the end */
    si_counters counters;
    char devices[256];
    char *report;                           /* the compiled model's report JSON (free with gen_result_free) */
} gen_result;

/* Runs the generation. 0, or a status with the message in si_last_error() or `err` (what failed). */
si_result gen_run(const gen_opts *o, gen_result *r, char *err, size_t errn);
void gen_result_free(gen_result *r);

#endif
