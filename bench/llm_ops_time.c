/*
 * llm_ops_time — time one model's inference on safeinfer (a benchmark: it prints, it asserts nothing).
 *
 *   llm_ops_time MODEL DEVICES THREADS ITERATIONS [NAME=FILE.npy]...
 *
 * Prints one JSON line: {"median_ms", "min_ms", "cpu_ms"}: wall-clock latency per inference (median and best of
 * ITERATIONS after 2 warm-up runs) and the process CPU time per inference (user + system over the timed runs,
 * all threads). On a machine shared with other work, min_ms and, for one thread, cpu_ms are the steadier numbers.
 * bench/llm_ops_bench.py drives it.
 */
#define BENCH_NAME "llm_ops_time"
#include "bench.h"
#include "safeinfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_ms(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: llm_ops_time MODEL DEVICES THREADS ITERATIONS [NAME=FILE.npy]...\n");
        return 2;
    }
    const int iters = atoi(argv[4]);
    si_model *m;
    si_config *cfg;
    si_compiled *c;
    si_request *r;
    if (si_model_load(argv[1], &m)) die("load");
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", argv[2]) || si_config_set(cfg, "threads", argv[3])) die("config");
    if (si_compile(m, cfg, &c)) die("compile");
    if (si_request_create(c, &r)) die("request");
    si_tensor *ins[64] = {0};
    for (int i = 5; i < argc && i - 5 < 64; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) die("NAME=FILE.npy expected");
        *eq = 0;
        int idx = -1;
        for (int k = 0; k < si_compiled_num_inputs(c); k++)
            if (!strcmp(si_compiled_input_name(c, k), argv[i])) idx = k;
        if (idx < 0) die(argv[i]);
        if (si_tensor_read_npy(eq + 1, &ins[i - 5]) || si_request_set_input(r, idx, ins[i - 5])) die(eq + 1);
    }
    for (int w = 0; w < 2; w++)
        if (si_request_infer(r)) die("infer");
    double *t = malloc(sizeof(double) * (size_t)(iters > 0 ? iters : 1));
    if (!t) die("memory");
    const double c0 = cpu_ms();
    for (int i = 0; i < iters; i++) {
        const double t0 = now_ms();
        if (si_request_infer(r)) die("infer");
        t[i] = now_ms() - t0;
    }
    const double cpu = (cpu_ms() - c0) / (iters > 0 ? iters : 1);
    qsort(t, (size_t)iters, sizeof(double), cmp_d);
    printf("{\"median_ms\": %.4f, \"min_ms\": %.4f, \"cpu_ms\": %.4f, \"devices\": \"%s\"}\n", iters ? t[iters / 2] : 0.0,
           iters ? t[0] : 0.0, cpu, si_compiled_devices(c));
    free(t);
    for (int i = 0; i < 64; i++) si_tensor_free(ins[i]);
    si_request_free(r);
    si_compiled_free(c);
    si_config_free(cfg);
    si_model_free(m);
    return 0;
}
