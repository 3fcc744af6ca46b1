/*
 * failsafe_bench — what the fail-safe layer costs, in numbers (a benchmark: it prints, it asserts nothing).
 *
 *   failsafe_bench overhead [ITERATIONS]
 *       per-inference cost of the fail-safe wrapper on a one-node model (Add of two float32[16]):
 *       CPU alone vs CPU,REF (wrapper present, no fault); nanoseconds per inference, best of 5 rounds.
 *   failsafe_bench watchdog [ELEMENTS | MODEL [--shape NAME=N]...] [--devices LIST] [--iterations N]
 *       per-inference cost of the watchdog path (infer_timeout_ms set): the one-node model with float32[ELEMENTS]
 *       tensors (default 16; try 1048576 for 4 MiB tensors), or MODEL on zero inputs, on LIST (default CPU,REF)
 *       without and with infer_timeout_ms=10000; nanoseconds per inference, best of 5 rounds.
 *   failsafe_bench failover MODEL [--shape ...] [--devices OCL,CPU] [--fault-at N]
 *       latency of the inference that hits an injected OCL.infer fault, with standby=on and off, against a
 *       normal inference and a compile on the fallback device.
 */
#define BENCH_NAME "failsafe_bench"
#include "bench.h"
#include "safeinfer.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A one-node model (Add) serialized by hand: ModelProto{ir_version 8, opset 13, graph{node Add(a,b)->c}}. */
static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    do { p[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)); v >>= 7; } while (v);
    return n;
}
static size_t put_bytes(unsigned char *p, int field, const void *data, size_t len) {
    size_t n = put_varint(p, (uint64_t)field << 3 | 2);
    n += put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}
static size_t value_info(unsigned char *p, const char *name, int64_t elems) {
    unsigned char dim[16], shape[32], tt[64], tp[80], vi[128];
    size_t nd = put_varint(dim, 1 << 3 | 0); nd += put_varint(dim + nd, (uint64_t)elems); /* dim_value */
    size_t ns = put_bytes(shape, 1, dim, nd);                                           /* shape.dim */
    size_t nt = put_varint(tt, 1 << 3 | 0); nt += put_varint(tt + nt, 1);               /* elem_type FLOAT */
    nt += put_bytes(tt + nt, 2, shape, ns);                                             /* shape */
    size_t np = put_bytes(tp, 1, tt, nt);                                               /* tensor_type */
    size_t nv = put_bytes(vi, 1, name, strlen(name));
    nv += put_bytes(vi + nv, 2, tp, np);
    memcpy(p, vi, nv);
    return nv;
}
static size_t one_node_model(unsigned char *out, int64_t elems) {
    unsigned char node[64], graph[512], tmp[128], opset[16];
    size_t nn = put_bytes(node, 1, "a", 1);
    nn += put_bytes(node + nn, 1, "b", 1);
    nn += put_bytes(node + nn, 2, "c", 1);
    nn += put_bytes(node + nn, 4, "Add", 3);
    size_t ng = put_bytes(graph, 1, node, nn);
    ng += put_bytes(graph + ng, 2, "g", 1);
    size_t k = value_info(tmp, "a", elems); ng += put_bytes(graph + ng, 11, tmp, k);
    k = value_info(tmp, "b", elems); ng += put_bytes(graph + ng, 11, tmp, k);
    k = value_info(tmp, "c", elems); ng += put_bytes(graph + ng, 12, tmp, k);
    size_t no = put_varint(opset, 2 << 3 | 0); no += put_varint(opset + no, 13);
    size_t n = put_varint(out, 1 << 3 | 0); n += put_varint(out + n, 8);                /* ir_version */
    n += put_bytes(out + n, 8, opset, no);                                              /* opset_import */
    n += put_bytes(out + n, 7, graph, ng);                                              /* graph */
    return n;
}

/* The best of 5 rounds of iters inferences on rq, in nanoseconds per inference. */
static double best_ns(si_request *rq, long iters) {
    double best = INFINITY;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ms();
        for (long i = 0; i < iters; i++)
            if (si_request_infer(rq)) die("infer");
        best = fmin(best, (now_ms() - t0) * 1e6 / (double)iters);
    }
    return best;
}

/* Zero inputs of the model's declared shapes, bound to rq; *nin their count, *bytes (when given) their size. */
static si_tensor **zero_inputs(si_model *m, si_compiled *cm, si_request *rq, int *nin, size_t *bytes) {
    *nin = si_compiled_num_inputs(cm);
    si_tensor **ins = calloc((size_t)*nin, sizeof *ins);
    for (int i = 0; i < *nin; i++) {
        si_value_info vi;
        if (si_model_input_info(m, i, &vi) || si_tensor_create(vi.dtype, vi.ndim, vi.dims, &ins[i])) die("input");
        if (si_request_set_input(rq, i, ins[i])) die("input");
        if (bytes) *bytes += si_tensor_nbytes(ins[i]);
    }
    return ins;
}

static void free_run(si_tensor **ins, int nin, si_request *rq, si_compiled *cm, si_config *cfg) {
    for (int i = 0; i < nin; i++) si_tensor_free(ins[i]);
    free(ins);
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
}

/* --shape NAME=N: the model's symbolic dimension NAME fixed to N; false when the argument is malformed. */
static bool set_shape_arg(si_model *m, const char *arg) {
    char key[128];
    const char *eq = strchr(arg, '=');
    if (!eq || (size_t)(eq - arg) >= sizeof key) return false;
    memcpy(key, arg, (size_t)(eq - arg));
    key[eq - arg] = 0;
    if (si_model_set_dim(m, key, atoll(eq + 1))) die("--shape");
    return true;
}

static double ns_per_infer(si_model *m, const char *devices, long iters) {
    si_config *cfg;
    si_compiled *cm;
    si_request *rq;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", devices)) die("config");
    if (si_compile(m, cfg, &cm)) die("compile");
    if (si_request_create(cm, &rq)) die("request");
    int64_t d = 16;
    si_tensor *a, *b;
    if (si_tensor_create(SI_F32, 1, &d, &a) || si_tensor_create(SI_F32, 1, &d, &b)) die("tensor");
    if (si_request_set_input(rq, 0, a) || si_request_set_input(rq, 1, b)) die("input");
    double best = best_ns(rq, iters);
    printf("  %-8s on %-9s %8.1f ns per inference (best of 5 x %ld)\n", devices, si_compiled_devices(cm), best, iters);
    si_tensor_free(a);
    si_tensor_free(b);
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    return best;
}

static int overhead(int argc, char **argv) {
    long iters = argc > 0 ? atol(argv[0]) : 200000;
    unsigned char buf[1024];
    size_t n = one_node_model(buf, 16);
    si_model *m;
    if (si_model_load_memory(buf, n, NULL, &m)) die("load");
    printf("fail-safe wrapper overhead, one-node model (Add float32[16])\n");
    double alone = ns_per_infer(m, "CPU", iters);
    double wrapped = ns_per_infer(m, "CPU,REF", iters);
    printf("  wrapper cost: %.1f ns per inference (%.2f us)\n", wrapped - alone, (wrapped - alone) / 1000.0);
    si_model_free(m);
    return 0;
}

/* Nanoseconds per inference of a loaded model on `devices` (zero inputs), with infer_timeout_ms when given. */
static double model_ns(si_model *m, const char *devices, const char *timeout_ms, long iters) {
    si_config *cfg;
    si_compiled *cm;
    si_request *rq;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", devices)) die("config");
    if (timeout_ms && si_config_set(cfg, "infer_timeout_ms", timeout_ms)) die("config");
    if (si_compile(m, cfg, &cm)) die("compile");
    if (si_request_create(cm, &rq)) die("request");
    int nin;
    size_t in_bytes = 0;
    si_tensor **ins = zero_inputs(m, cm, rq, &nin, &in_bytes);
    if (si_request_infer(rq)) die("infer"); /* warm-up */
    size_t out_bytes = 0;
    for (int k = 0; k < si_compiled_num_outputs(cm); k++) {
        si_tensor *o;
        if (!si_request_get_output(rq, k, &o)) out_bytes += si_tensor_nbytes(o);
    }
    double best = best_ns(rq, iters);
    printf("  %-8s on %-9s%s%s %12.1f ns per inference (inputs %.1f KiB, outputs %.1f KiB; best of 5 x %ld)\n", devices,
           si_compiled_devices(cm), timeout_ms ? " infer_timeout_ms=" : "", timeout_ms ? timeout_ms : "", best,
           (double)in_bytes / 1024, (double)out_bytes / 1024, iters);
    free_run(ins, nin, rq, cm, cfg);
    return best;
}

static int watchdog(int argc, char **argv) {
    const char *devices = "CPU,REF";
    long iters = 0;
    int64_t elems = 16;
    si_model *m = NULL;
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--devices") && i + 1 < argc) devices = argv[++i];
        else if (!strcmp(argv[i], "--iterations") && i + 1 < argc) iters = atol(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc && m) {
            if (!set_shape_arg(m, argv[++i])) { fprintf(stderr, "bad --shape\n"); return 2; }
        } else if (argv[i][0] >= '0' && argv[i][0] <= '9') elems = atoll(argv[i]);
        else if (si_model_load((path = argv[i]), &m)) die("load");
    }
    if (elems < 1) { fprintf(stderr, "ELEMENTS must be >= 1\n"); return 2; }
    if (!m) {
        unsigned char buf[1024];
        size_t n = one_node_model(buf, elems);
        if (si_model_load_memory(buf, n, NULL, &m)) die("load");
        printf("watchdog cost, one-node model (Add float32[%lld])\n", (long long)elems);
        if (!iters) iters = elems > 100000 ? 300 : 20000;
    } else {
        printf("watchdog cost, %s\n", path);
        if (!iters) iters = 200;
    }
    double plain = model_ns(m, devices, NULL, iters);
    double guarded = model_ns(m, devices, "10000", iters);
    printf("  watchdog cost: %.1f ns per inference (%.2f us, %.1f%%)\n", guarded - plain, (guarded - plain) / 1000.0,
           100.0 * (guarded - plain) / plain);
    si_model_free(m);
    return 0;
}

typedef struct timing {
    double compile_ms, median_ms, fault_ms;
} timing;

static timing run(si_model *m, const char *devices, const char *faults, bool standby, int fault_at, int iters) {
    si_config *cfg;
    si_compiled *cm;
    si_request *rq;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", devices)) die("config");
    if (faults && (si_config_set(cfg, "faults", faults) || si_config_set(cfg, "standby", standby ? "on" : "off"))) die("config");
    double t0 = now_ms();
    if (si_compile(m, cfg, &cm)) die("compile");
    timing t = {.compile_ms = now_ms() - t0};
    if (si_request_create(cm, &rq)) die("request");
    int nin;
    si_tensor **ins = zero_inputs(m, cm, rq, &nin, NULL);
    if (standby) { /* give the background compile time to finish before the fault hits */
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
        si_counters k;
        for (int w = 0; w < 100; w++) {
            si_compiled_counters(cm, &k);
            nanosleep(&ts, NULL);
            char *json;
            if (!si_compiled_report_json(cm, &json)) {
                bool ready = strstr(json, "standby_ready") != NULL;
                si_free_string(json);
                if (ready) break;
            }
        }
    }
    double *lat = calloc((size_t)iters, sizeof *lat);
    for (int i = 0; i < iters; i++) {
        double a = now_ms();
        if (si_request_infer(rq)) die("infer");
        lat[i] = now_ms() - a;
    }
    if (faults) t.fault_ms = lat[fault_at - 1];
    qsort(lat, (size_t)iters, sizeof *lat, cmp_d);
    t.median_ms = lat[iters / 2];
    free(lat);
    free_run(ins, nin, rq, cm, cfg);
    return t;
}

static int failover(int argc, char **argv) {
    if (argc < 1) { fprintf(stderr, "usage: failsafe_bench failover MODEL [--shape NAME=N]... [--devices P,F] [--fault-at N]\n"); return 2; }
    const char *devices = "OCL,CPU";
    int fault_at = 5;
    si_model *m;
    if (si_model_load(argv[0], &m)) die("load");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--devices") && i + 1 < argc) devices = argv[++i];
        else if (!strcmp(argv[i], "--fault-at") && i + 1 < argc) fault_at = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            if (!set_shape_arg(m, argv[++i])) { fprintf(stderr, "bad --shape\n"); return 2; }
        }
    }
    char primary[64], fallback[64];
    const char *comma = strchr(devices, ',');
    if (!comma) { fprintf(stderr, "--devices needs two devices\n"); return 2; }
    snprintf(primary, sizeof primary, "%.*s", (int)(comma - devices), devices);
    snprintf(fallback, sizeof fallback, "%s", comma + 1);
    char spec[128];
    snprintf(spec, sizeof spec, "%s.infer=%d", primary, fault_at);
    int iters = fault_at + 10;
    timing base = run(m, fallback, NULL, false, 0, iters);
    timing cold = run(m, devices, spec, false, fault_at, iters);
    timing warm = run(m, devices, spec, true, fault_at, iters);
    printf("failover latency, %s on %s, fault %s\n", argv[0], devices, spec);
    printf("  %s alone: compile %.2f ms, median inference %.3f ms\n", fallback, base.compile_ms, base.median_ms);
    printf("  standby=off: the faulting inference took %.3f ms = %.2f x (%s compile + inference) [goal < 1 compile + 1.5 x inference]\n",
           cold.fault_ms, cold.fault_ms / (base.compile_ms + base.median_ms), fallback);
    printf("  standby=on:  the faulting inference took %.3f ms = %.2f x a %s inference [goal < 1.5]\n", warm.fault_ms,
           warm.fault_ms / base.median_ms, fallback);
    si_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "overhead")) return overhead(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "watchdog")) return watchdog(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "failover")) return failover(argc - 2, argv + 2);
    fprintf(stderr, "usage: failsafe_bench overhead [ITERATIONS] | watchdog [ELEMENTS | MODEL [--shape DIM=N]...] [--devices LIST] [--iterations N] | failover MODEL [--shape DIM=N]... [--devices P,F] [--fault-at N]\n");
    return 2;
}
