/*
 * generate.c — greedy generation with a KV-cache decoder (see generate.h): the model's I/O found by name, the
 * prompt prefilled over an empty cache, then greedy steps with the presents fed back as the pasts, timed.
 *
 * What is timed is what models/ort_generate.js times on ONNX Runtime: the prefill and each step are the inference
 * call alone; the decode total is the loop (argmax, inputs) without the copies of the presents into the pasts that
 * this harness makes and ort_generate.js does not (it feeds the output tensors back).
 */
#include "generate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define GEN_MAX_IO 512

static double gen_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* err = the message (and, with `lib`, ": " and the library's message of the call that failed); returns s, or
 * when s is SI_OK, INTERNAL for a library call and INVALID_ARG for a failure of generate.c's own. */
static si_result gen_report(char *err, size_t n, si_result s, bool lib, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static si_result gen_report(char *err, size_t n, si_result s, bool lib, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *le = lib ? si_last_error() : NULL;
    snprintf(err, n, "%s%s%s", what, le && *le ? ": " : "", le && *le ? le : "");
    return s ? s : lib ? SI_ERR_INTERNAL : SI_ERR_INVALID_ARG;
}
/* A failure of generate.c's own (the model is not a decoder it can drive, out of memory). */
#define gen_fail(err, n, s, ...) gen_report(err, n, s, false, __VA_ARGS__)
/* A library call that returned s. */
#define lib_fail(err, n, s, ...) gen_report(err, n, s, true, __VA_ARGS__)

/* Index of the vocabulary entry with the largest logit at the last position of logits [1, S, V]. */
static int64_t argmax_last(const si_tensor *logits) {
    const int64_t *d = si_tensor_dims(logits);
    const int64_t s = d[1], v = d[2];
    const float *x = (const float *)si_tensor_data(logits) + (s - 1) * v;
    int64_t best = 0;
    for (int64_t i = 1; i < v; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void put_int(void *p, si_dtype t, int64_t i, int64_t v) {
    if (t == SI_I32) ((int32_t *)p)[i] = (int32_t)v;
    else ((int64_t *)p)[i] = v;
}

typedef struct gen_io {
    int ids, mask, pos, logits;     /* compiled model's indices; pos -1 when the model has no position_ids */
    si_dtype ids_t, mask_t, pos_t;  /* int64 or int32 */
    int n_past;
    int past_in[GEN_MAX_IO];        /* compiled input index of past k */
    int present_out[GEN_MAX_IO];    /* compiled output index of the present that feeds past k */
    si_dtype past_t;                /* float32 or float16 */
    int64_t kvh, hd, vocab;
} gen_io;

/* The compiled model's index of its input (or output) `name`; -1 when it has none. */
static int compiled_index(const si_compiled *c, bool output, const char *name) {
    int n = output ? si_compiled_num_outputs(c) : si_compiled_num_inputs(c);
    for (int k = 0; k < n; k++)
        if (!strcmp(output ? si_compiled_output_name(c, k) : si_compiled_input_name(c, k), name)) return k;
    return -1;
}

static bool int_type(si_dtype t) { return t == SI_I64 || t == SI_I32; }

/* The decoder's I/O, from the model's declared names, types and shapes. */
static si_result find_io(const si_model *m, const si_compiled *c, gen_io *io, char *err, size_t errn) {
    memset(io, 0, sizeof *io);
    si_value_info vi;
    int k = si_model_output_index(m, "logits");
    if (k < 0 || si_model_output_info(m, k, &vi) || vi.ndim != 3 || vi.dims[2] < 1 || vi.dtype != SI_F32)
        return gen_fail(err, errn, SI_ERR_INVALID_ARG, "the model needs an output logits float32[batch, sequence, vocab] with the vocabulary size fixed");
    io->vocab = vi.dims[2];
    io->logits = compiled_index(c, true, "logits");
    static const char *const names[3] = {"input_ids", "attention_mask", "position_ids"};
    int *idx[3] = {&io->ids, &io->mask, &io->pos};
    si_dtype *typ[3] = {&io->ids_t, &io->mask_t, &io->pos_t};
    for (int j = 0; j < 3; j++) {
        int i = si_model_input_index(m, names[j]);
        *idx[j] = -1;
        if (i < 0 && j == 2) continue;
        if (i < 0 || si_model_input_info(m, i, &vi) || vi.ndim != 2 || !int_type(vi.dtype))
            return gen_fail(err, errn, SI_ERR_INVALID_ARG, "the model needs an input %s int64[batch, length] (int32 also taken)", names[j]);
        *typ[j] = vi.dtype;
        *idx[j] = compiled_index(c, false, names[j]);
    }
    for (int i = 0; i < si_model_num_inputs(m); i++) {
        if (si_model_input_info(m, i, &vi)) return gen_fail(err, errn, SI_ERR_INTERNAL, "input %d", i);
        if (strncmp(vi.name, "past_key_values.", 16)) continue;
        if (io->n_past == GEN_MAX_IO) return gen_fail(err, errn, SI_ERR_UNSUPPORTED, "more than %d past_key_values inputs", GEN_MAX_IO);
        if (vi.ndim != 4 || vi.dims[1] < 1 || vi.dims[3] < 1 || (vi.dtype != SI_F32 && vi.dtype != SI_F16))
            return gen_fail(err, errn, SI_ERR_INVALID_ARG, "input %s: [batch, kv heads, past, head size] of float32 or float16 with kv heads and head size fixed expected",
                            vi.name);
        if (io->n_past && (vi.dims[1] != io->kvh || vi.dims[3] != io->hd || vi.dtype != io->past_t))
            return gen_fail(err, errn, SI_ERR_UNSUPPORTED, "input %s: the pasts differ in shape or type", vi.name);
        io->kvh = vi.dims[1], io->hd = vi.dims[3], io->past_t = vi.dtype;
        char present[300];
        snprintf(present, sizeof present, "present.%s", vi.name + 16);
        io->past_in[io->n_past] = compiled_index(c, false, vi.name);
        io->present_out[io->n_past] = compiled_index(c, true, present);
        if (io->present_out[io->n_past] < 0) return gen_fail(err, errn, SI_ERR_INVALID_ARG, "input %s has no output %s", vi.name, present);
        io->n_past++;
    }
    if (!io->n_past) return gen_fail(err, errn, SI_ERR_INVALID_ARG, "the model has no past_key_values.* inputs: not a KV-cache decoder");
    return SI_OK;
}

void gen_result_free(gen_result *r) {
    free(r->tokens);
    si_free_string(r->report);
    r->tokens = NULL;
    r->report = NULL;
}

si_result gen_run(const gen_opts *o, gen_result *r, char *err, size_t errn) {
    memset(r, 0, sizeof *r);
    err[0] = 0;
    const int64_t P = o->prompt, N = o->steps, T = P + N;
    if (P < 1 || N < 1 || T > (int64_t)1 << 24) return gen_fail(err, errn, SI_ERR_INVALID_ARG, "prompt and steps must be >= 1 (and at most 2^24 in all)");
    si_model *m = NULL;
    si_compiled *c = NULL;
    si_request *rq = NULL;
    gen_io io;
    memset(&io, 0, sizeof io);
    si_tensor *tid = NULL, *tmask = NULL, *tpos = NULL, **pin = NULL;
    void **pasts = NULL;
    int64_t *ids = malloc(sizeof(int64_t) * (size_t)T), *idbuf = malloc(sizeof(int64_t) * (size_t)T);
    int64_t *maskbuf = malloc(sizeof(int64_t) * (size_t)T), *posbuf = malloc(sizeof(int64_t) * (size_t)T);
    double *step_ms = calloc((size_t)N, sizeof(double)), *rerun_ms = calloc((size_t)N, sizeof(double));
    r->tokens = calloc((size_t)N, sizeof(int64_t));
    si_result s = SI_OK;
    if (!ids || !idbuf || !maskbuf || !posbuf || !step_ms || !rerun_ms || !r->tokens) {
        s = gen_fail(err, errn, SI_ERR_NO_MEM, "out of memory");
        goto out;
    }
    const double t0 = gen_now_ms();
    if ((s = si_model_load(o->model, &m))) { lib_fail(err, errn, s, "loading the model"); goto out; }
    if ((s = si_compile(m, o->cfg, &c))) { lib_fail(err, errn, s, "compile"); goto out; }
    if ((s = find_io(m, c, &io, err, errn))) goto out;
    if ((s = si_request_create(c, &rq))) { lib_fail(err, errn, s, "request"); goto out; }
    r->compile_ms = gen_now_ms() - t0;
    snprintf(r->devices, sizeof r->devices, "%s", si_compiled_devices(c));
    si_model_free(m);
    m = NULL;
    const size_t esz = si_dtype_size(io.past_t), cache = (size_t)(io.kvh * T * io.hd) * esz;
    pasts = calloc((size_t)io.n_past, sizeof *pasts);
    pin = calloc((size_t)io.n_past, sizeof *pin);
    if (!pasts || !pin) { s = gen_fail(err, errn, SI_ERR_NO_MEM, "out of memory"); goto out; }
    for (int k = 0; k < io.n_past; k++)
        if (!(pasts[k] = calloc(1, cache ? cache : 1))) { s = gen_fail(err, errn, SI_ERR_NO_MEM, "out of memory for the KV cache"); goto out; }
    uint64_t st = o->seed;
    for (int64_t i = 0; i < P; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int64_t)((st >> 33) % (uint64_t)io.vocab);
    }
    for (int64_t t = 0; t < T; t++) put_int(maskbuf, io.mask_t, t, 1);
    int64_t past = 0, cur = 0;
    double t1 = 0, rerun_sum = 0, copy_sum = 0;
    for (int64_t step = 0; step < N; step++) {
        const int64_t S = step == 0 ? P : 1;
        if (step == 1) t1 = gen_now_ms();
        for (int64_t i = 0; i < S; i++) {
            put_int(idbuf, io.ids_t, i, step == 0 ? ids[i] : cur);
            put_int(posbuf, io.pos_t, i, past + i);
        }
        si_tensor_free(tid), si_tensor_free(tmask), si_tensor_free(tpos);
        tid = tmask = tpos = NULL;
        if ((s = si_tensor_wrap(io.ids_t, 2, (int64_t[]){1, S}, idbuf, si_dtype_size(io.ids_t) * (size_t)S, &tid)) ||
            (s = si_tensor_wrap(io.mask_t, 2, (int64_t[]){1, past + S}, maskbuf, si_dtype_size(io.mask_t) * (size_t)(past + S), &tmask)) ||
            (io.pos >= 0 && (s = si_tensor_wrap(io.pos_t, 2, (int64_t[]){1, S}, posbuf, si_dtype_size(io.pos_t) * (size_t)S, &tpos))) ||
            (s = si_request_set_input(rq, io.ids, tid)) || (s = si_request_set_input(rq, io.mask, tmask)) ||
            (io.pos >= 0 && (s = si_request_set_input(rq, io.pos, tpos)))) {
            lib_fail(err, errn, s, "inputs of step %lld", (long long)step);
            goto out;
        }
        for (int k = 0; k < io.n_past; k++) {
            si_tensor_free(pin[k]);
            pin[k] = NULL;
            if ((s = si_tensor_wrap(io.past_t, 4, (int64_t[]){1, io.kvh, past, io.hd}, pasts[k], (size_t)(io.kvh * past * io.hd) * esz, &pin[k])) ||
                (s = si_request_set_input(rq, io.past_in[k], pin[k]))) {
                lib_fail(err, errn, s, "past %d of step %lld", k, (long long)step);
                goto out;
            }
        }
        struct rusage ru0, ru1;
        const bool faults = step == 0 && !getrusage(RUSAGE_SELF, &ru0);
        const double ts = gen_now_ms();
        if ((s = si_request_infer(rq))) { lib_fail(err, errn, s, "inference of step %lld", (long long)step); goto out; }
        step_ms[step] = gen_now_ms() - ts; /* the inference alone, as ort_generate.js times sess.run */
        if (faults && !getrusage(RUSAGE_SELF, &ru1)) r->prefill_faults = (ru1.ru_minflt - ru0.ru_minflt) + (ru1.ru_majflt - ru0.ru_majflt);
        if (step == 0) r->prefill_ms = step_ms[0];
        if (o->rerun && step == 0) {
            const double tr = gen_now_ms();
            if ((s = si_request_infer(rq))) { lib_fail(err, errn, s, "second inference of the prefill"); goto out; }
            r->prefill_rerun_ms = gen_now_ms() - tr;
        }
        if (o->rerun && step > 0) {
            const double tr = gen_now_ms();
            if ((s = si_request_infer(rq))) { lib_fail(err, errn, s, "second inference of step %lld", (long long)step); goto out; }
            rerun_ms[step] = gen_now_ms() - tr;
            rerun_sum += rerun_ms[step]; /* not in decode_ms */
        }
        si_tensor *lg;
        if ((s = si_request_get_output(rq, io.logits, &lg))) { lib_fail(err, errn, s, "logits"); goto out; }
        if (si_tensor_ndim(lg) != 3 || si_tensor_dims(lg)[1] < 1 || si_tensor_dims(lg)[2] != io.vocab) {
            s = gen_fail(err, errn, SI_ERR_INTERNAL, "logits of step %lld have an unexpected shape", (long long)step);
            goto out;
        }
        cur = r->tokens[step] = argmax_last(lg);
        past += S;
        const double tc = gen_now_ms();
        for (int k = 0; k < io.n_past && step + 1 < N; k++) { /* the presents become the next pasts */
            si_tensor *pr;
            if ((s = si_request_get_output(rq, io.present_out[k], &pr))) { lib_fail(err, errn, s, "present %d", k); goto out; }
            if (si_tensor_dtype(pr) != io.past_t || si_tensor_count(pr) != io.kvh * past * io.hd) {
                s = gen_fail(err, errn, SI_ERR_INTERNAL, "present %d of step %lld has an unexpected shape (total length %lld expected)", k,
                             (long long)step, (long long)past);
                goto out;
            }
            memcpy(pasts[k], si_tensor_data(pr), si_tensor_nbytes(pr));
        }
        if (step > 0) copy_sum += gen_now_ms() - tc; /* the harness's copy: ort_generate.js feeds the outputs back */
    }
    r->decode_ms = N > 1 ? gen_now_ms() - t1 - rerun_sum - copy_sum : 0;
    if (N > 1) {
        qsort(step_ms + 1, (size_t)(N - 1), sizeof(double), cmp_d);
        qsort(rerun_ms + 1, (size_t)(N - 1), sizeof(double), cmp_d);
        r->step_median_ms = step_ms[1 + (N - 1) / 2];
        r->step_min_ms = step_ms[1];
        r->rerun_median_ms = o->rerun ? rerun_ms[1 + (N - 1) / 2] : NAN;
        r->rerun_min_ms = o->rerun ? rerun_ms[1] : NAN;
    }
    struct rusage ru;
    r->peak_rss_mib = getrusage(RUSAGE_SELF, &ru) ? NAN : (double)ru.ru_maxrss / 1024.0;
    si_compiled_counters(c, &r->counters);
    if (si_compiled_report_json(c, &r->report)) r->report = NULL;
    if (o->inspect) o->inspect(c, o->inspect_ctx);
out:
    for (int k = 0; pin && k < io.n_past; k++) si_tensor_free(pin[k]);
    for (int k = 0; pasts && k < io.n_past; k++) free(pasts[k]);
    free(pin);
    free(pasts);
    si_tensor_free(tid), si_tensor_free(tmask), si_tensor_free(tpos);
    free(ids), free(idbuf), free(maskbuf), free(posbuf), free(step_ms), free(rerun_ms);
    si_request_free(rq);
    si_compiled_free(c);
    si_model_free(m);
    if (s) gen_result_free(r);
    return s;
}
