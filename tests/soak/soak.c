/*
 * soak.c — a long run of many requests on many threads against a real-sized model, with random faults of
 * every stage and effect on the first device (isolated: its crashes and segfaults kill only its helper
 * process), standby, fail-back, retries and the watchdog on; every output is checked against REF's.
 *
 *   soak MODEL [--seconds S] [--threads M] [--round-seconds R] [--lists "OCL,CPU;OCL,CPU,REF"] [--isolate OCL]
 *        [--inputs K] [--rtol X] [--max-rss-growth PCT] [--seed N] [--dim NAME=VALUE]... [--faults off]
 *
 * Rounds of R seconds follow each other until S seconds have passed, cycling through the device lists; each
 * round compiles the model with a fresh random fault spec (its own seed), runs M requests on M threads, each
 * inferring one of K fixed random input sets after another and comparing the outputs with REF's for that set
 * (|out - ref| <= rtol * max|ref| + 1e-6 per output), then frees everything (the helper is reaped).
 *
 * The first device of each list (the isolated one) gets every stage and effect: compile/create/infer with
 * crash, segv, hang, error, lost, nan and oom. The second device gets rare infer errors (which `retries`
 * absorbs) only when a third device remains behind it; the last device of a list gets none, so a working
 * device always remains and every request must succeed.
 *
 * It prints, per round and at the end: inferences, failovers, fail-backs, retries, helper processes that
 * died, wrong outputs, failed requests, and the resident memory of this process at the start, after the
 * warm-up (the first round of each list) and at the end (these two once the device calls that
 * si_compiled_free leaves running have returned), and the heap in use. Exit status: 0 when no output was
 * wrong and no request failed (and, with --max-rss-growth, the growth after the warm-up stayed under PCT
 * percent), 1 otherwise, 2 on a usage error. A crash of this process is its own verdict.
 */
#include "safeinfer.h"

#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_INPUTS 16
#define MAX_IO 16
#define MAX_LISTS 8

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident memory of this process, after giving back to the system what malloc holds free (so that the
 * number follows what is in use, not the allocator's high-water marks). */
static long g_anon_kib, g_shmem_kib, g_threads; /* of the last rss_kib() */

static long rss_kib(void) {
    malloc_trim(0);
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
        if (!strncmp(line, "RssAnon:", 8)) g_anon_kib = atol(line + 8);
        if (!strncmp(line, "RssShmem:", 9)) g_shmem_kib = atol(line + 9);
        if (!strncmp(line, "Threads:", 8)) g_threads = atol(line + 8);
    }
    if (f) fclose(f);
    return kib;
}

/* Device calls that si_compiled_free does not wait for (a compile ahead, a call the watchdog gave up on) hold
 * their memory until they return: the warm-up and the end are measured once only this thread is left (30 s at
 * most). A leak stays; work still in flight does not count. */
static long settled_rss_kib(void) {
    long kib = rss_kib();
    for (int i = 0; i < 300 && g_threads > 1; i++) {
        usleep(100 * 1000);
        kib = rss_kib();
    }
    return kib;
}

/* What malloc has handed out and not had back (KiB): a leak grows this, whatever the allocator keeps. */
static long heap_kib(void) {
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

// --- the model, its inputs and REF's outputs ----------------------------------------------------------------

static si_model *model;
static int n_in, n_out, n_sets;
static si_tensor *inputs[MAX_INPUTS][MAX_IO];
static float *ref[MAX_INPUTS][MAX_IO]; /* REF's outputs as float */
static int64_t ref_count[MAX_IO];
static double ref_scale[MAX_INPUTS][MAX_IO];
static double rtol = 1e-3;

static uint64_t rng(uint64_t *s) {
    *s += 0x9E3779B97F4A7C15ull;
    uint64_t x = *s;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* n_sets random input sets, shaped as the compiled model's inputs (the model's, unknown dimensions 1). */
static bool make_inputs(si_compiled *cm, uint64_t seed) {
    for (int s = 0; s < n_sets; s++)
        for (int i = 0; i < n_in; i++) {
            si_value_info vi;
            if (si_model_input_info(model, si_model_input_index(model, si_compiled_input_name(cm, i)), &vi)) return false;
            int64_t dims[SI_MAX_DIMS];
            for (int d = 0; d < vi.ndim; d++) dims[d] = vi.dims[d] < 0 ? 1 : vi.dims[d];
            if (si_tensor_create(vi.dtype, vi.ndim, dims, &inputs[s][i])) return false;
            si_tensor *t = inputs[s][i];
            for (int64_t k = 0; k < si_tensor_count(t); k++) {
                double u = (double)(rng(&seed) >> 11) * 0x1p-53 * 2.0 - 1.0;
                if (vi.dtype == SI_F32) ((float *)si_tensor_data(t))[k] = (float)u;
                else if (vi.dtype == SI_I64) ((int64_t *)si_tensor_data(t))[k] = (int64_t)((u + 1.0) * 8);
            }
        }
    return true;
}

static bool ref_outputs(void) {
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", "REF") || si_compile(model, cfg, &cm)) {
        fprintf(stderr, "soak: REF: %s\n", si_last_error());
        si_config_free(cfg);
        return false;
    }
    si_config_free(cfg);
    n_in = si_compiled_num_inputs(cm);
    n_out = si_compiled_num_outputs(cm);
    bool ok = n_in <= MAX_IO && n_out <= MAX_IO && make_inputs(cm, 12345) && !si_request_create(cm, &rq);
    for (int s = 0; ok && s < n_sets; s++) {
        for (int i = 0; ok && i < n_in; i++) ok = !si_request_set_input(rq, i, inputs[s][i]);
        if (ok && si_request_infer(rq)) {
            fprintf(stderr, "soak: REF inference: %s\n", si_last_error());
            ok = false;
        }
        for (int k = 0; ok && k < n_out; k++) {
            si_tensor *t = NULL;
            ok = !si_request_get_output(rq, k, &t);
            int64_t n = ok ? si_tensor_count(t) : 0;
            ref_count[k] = n;
            ok = ok && (ref[s][k] = malloc(sizeof(float) * (size_t)(n + 1)));
            double scale = 0;
            for (int64_t e = 0; ok && e < n; e++) {
                double v = si_tensor_dtype(t) == SI_F32 ? ((const float *)si_tensor_data(t))[e]
                                                        : (double)((const int64_t *)si_tensor_data(t))[e];
                ref[s][k][e] = (float)v;
                scale = fmax(scale, fabs(v));
            }
            ref_scale[s][k] = scale;
        }
    }
    si_request_free(rq);
    si_compiled_free(cm);
    return ok;
}

/* The request's outputs against REF's for set s: false (and the worst difference) when one is off. */
static bool outputs_ok(si_request *rq, int s, char *why, size_t n) {
    for (int k = 0; k < n_out; k++) {
        si_tensor *t = NULL;
        if (si_request_get_output(rq, k, &t) || si_tensor_count(t) != ref_count[k] || !si_tensor_data(t)) {
            snprintf(why, n, "output %d: missing or of another size", k);
            return false;
        }
        double tol = rtol * ref_scale[s][k] + 1e-6, worst = 0;
        int64_t at = -1;
        for (int64_t e = 0; e < ref_count[k]; e++) {
            double v = si_tensor_dtype(t) == SI_F32 ? ((const float *)si_tensor_data(t))[e]
                                                    : (double)((const int64_t *)si_tensor_data(t))[e];
            double d = fabs(v - ref[s][k][e]);
            if (!(d <= worst)) { worst = d; at = e; } /* NaN counts as the worst */
        }
        if (!(worst <= tol)) {
            snprintf(why, n, "output %d: element %lld differs by %g (tolerance %g)", k, (long long)at, worst, tol);
            return false;
        }
    }
    return true;
}

// --- a round ----------------------------------------------------------------------------------------------

typedef struct totals {
    atomic_long inferences, wrong, failed;
    long failovers, failbacks, retries, deaths;
    char first_wrong[512], first_failed[1024];
    pthread_mutex_t mu;
} totals;

static totals T = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Helper deaths, by pid, seen in the events of the current round. */
static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static int dead_pids[4096], n_dead;

static void on_event(const si_event *e, void *user) {
    (void)user;
    const char *p = e->message ? strstr(e->message, "the helper process (pid ") : NULL;
    if (!p || !strstr(p, "died")) return;
    int pid = atoi(p + strlen("the helper process (pid "));
    pthread_mutex_lock(&ev_mu);
    bool seen = false;
    for (int i = 0; i < n_dead && !seen; i++) seen = dead_pids[i] == pid;
    if (!seen && n_dead < 4096) dead_pids[n_dead++] = pid;
    pthread_mutex_unlock(&ev_mu);
}

typedef struct thread_arg {
    si_compiled *cm;
    int id;
    double until;
} thread_arg;

static void *run_thread(void *arg) {
    thread_arg *a = arg;
    si_request *rq = NULL;
    if (si_request_create(a->cm, &rq)) {
        atomic_fetch_add(&T.failed, 1);
        pthread_mutex_lock(&T.mu);
        if (!T.first_failed[0]) snprintf(T.first_failed, sizeof T.first_failed, "request creation: %s", si_last_error());
        pthread_mutex_unlock(&T.mu);
        return NULL;
    }
    for (long i = 0; now_s() < a->until; i++) {
        int s = (int)((a->id + i) % n_sets);
        bool ok = true;
        for (int k = 0; k < n_in && ok; k++) ok = !si_request_set_input(rq, k, inputs[s][k]);
        if (!ok || si_request_infer(rq)) {
            atomic_fetch_add(&T.failed, 1);
            pthread_mutex_lock(&T.mu);
            if (!T.first_failed[0]) snprintf(T.first_failed, sizeof T.first_failed, "%s", si_last_error());
            pthread_mutex_unlock(&T.mu);
            continue;
        }
        atomic_fetch_add(&T.inferences, 1);
        char why[256];
        if (!outputs_ok(rq, s, why, sizeof why)) {
            atomic_fetch_add(&T.wrong, 1);
            pthread_mutex_lock(&T.mu);
            if (!T.first_wrong[0]) snprintf(T.first_wrong, sizeof T.first_wrong, "%s", why);
            pthread_mutex_unlock(&T.mu);
        }
    }
    si_request_free(rq);
    return NULL;
}

/* The fault spec of a round: every stage and effect on the first device; rare errors on the second when a
 * third remains. The rates keep the first device in use for a good part of a round: an inference-stage crash,
 * segfault or loss makes it lost (quarantined until every device has failed, which the last device's
 * health prevents), while errors, NaN outputs, out-of-memory and hangs (the watchdog) fail over for a while
 * and fail back. */
static bool g_faults = true;

static void round_faults(char *buf, size_t n, char names[][32], int n_dev, uint64_t seed) {
    buf[0] = 0;
    if (!g_faults) return;
    const char *d = names[0];
    unsigned s = (unsigned)(seed % 1000000);
    snprintf(buf, n,
             "%.31s.compile=p0.1@%u:crash,%.31s.compile=p0.1@%u:segv,%.31s.compile=p0.05@%u:error,%.31s.compile=p0.02@%u:hang,"
             "%.31s.create=p0.02@%u:crash,%.31s.create=p0.02@%u:segv,%.31s.create=p0.02@%u:oom,"
             "%.31s.infer=p0.0003@%u:crash,%.31s.infer=p0.0003@%u:segv,%.31s.infer=p0.0003@%u:hang,%.31s.infer=p0.003@%u:error,"
             "%.31s.infer=p0.0001@%u:lost,%.31s.infer=p0.002@%u:nan,%.31s.infer=p0.002@%u:oom",
             d, s, d, s + 1, d, s + 2, d, s + 3, d, s + 4, d, s + 5, d, s + 6, d, s + 7, d, s + 8, d, s + 9, d, s + 10,
             d, s + 11, d, s + 12, d, s + 13);
    if (n_dev >= 3) {
        size_t o = strlen(buf);
        snprintf(buf + o, n - o, ",%.31s.infer=p0.005@%u:error", names[1], s + 14);
    }
}

static int split_list(const char *list, char names[][32]) {
    int n = 0;
    for (const char *p = list; *p && n < 16;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        snprintf(names[n++], 32, "%.*s", (int)len, p);
        if (!e) break;
        p = e + 1;
    }
    return n;
}

static int g_warm_rounds;
static long g_rss_lo = -1, g_rss_hi = -1; /* per-round resident memory after the warm-up */

static bool run_round(const char *list, const char *isolate, int threads, double seconds, uint64_t seed, int round) {
    char names[16][32], faults[4096];
    int n_dev = split_list(list, names);
    round_faults(faults, sizeof faults, names, n_dev, seed);
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    const char *kv[] = {"devices", list, "isolate", isolate, "faults", faults, "standby", "on", "failback_ms", "200",
                        "retries", "1", "infer_timeout_ms", "5000", "compile_timeout_ms", "10000", "recovery_ms", "300",
                        "check_outputs", "nan", NULL};
    si_result st = si_config_create(&cfg);
    for (int i = 0; !st && kv[i]; i += 2) st = si_config_set(cfg, kv[i], kv[i + 1]);
    if (!st) st = si_config_set_callback(cfg, on_event, NULL);
    pthread_mutex_lock(&ev_mu);
    n_dead = 0;
    pthread_mutex_unlock(&ev_mu);
    double t0 = now_s();
    if (!st) st = si_compile(model, cfg, &cm);
    si_config_free(cfg);
    if (st) { /* a compile must work: the last device has no faults */
        fprintf(stderr, "soak: round %d: compile on %s failed: %s\n", round, list, si_last_error());
        atomic_fetch_add(&T.failed, 1);
        return false;
    }
    long inf0 = atomic_load(&T.inferences), wrong0 = atomic_load(&T.wrong), failed0 = atomic_load(&T.failed);
    pthread_t th[MAX_THREADS];
    thread_arg args[MAX_THREADS];
    double until = now_s() + seconds;
    for (int i = 0; i < threads; i++) {
        args[i] = (thread_arg){.cm = cm, .id = i, .until = until};
        pthread_create(&th[i], NULL, run_thread, &args[i]);
    }
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    si_counters c;
    si_compiled_counters(cm, &c);
    si_compiled_free(cm);
    pthread_mutex_lock(&ev_mu);
    int deaths = n_dead;
    pthread_mutex_unlock(&ev_mu);
    T.failovers += c.failovers;
    T.failbacks += c.failbacks;
    T.retries += c.retries;
    T.deaths += deaths;
    long rss = rss_kib();
    printf("round %3d  %-12s %6.1f s  inferences %6ld  failovers %4lld  failbacks %4lld  retries %4lld  helper deaths %3d"
           "  wrong %ld  failed %ld  RSS %ld KiB (anon %ld, shmem %ld, heap in use %ld; %ld threads)\n",
           round, list, now_s() - t0, atomic_load(&T.inferences) - inf0, (long long)c.failovers, (long long)c.failbacks,
           (long long)c.retries, deaths, atomic_load(&T.wrong) - wrong0, atomic_load(&T.failed) - failed0, rss,
           g_anon_kib, g_shmem_kib, heap_kib(), g_threads);
    if (round >= g_warm_rounds) {
        if (g_rss_lo < 0 || rss < g_rss_lo) g_rss_lo = rss;
        if (rss > g_rss_hi) g_rss_hi = rss;
    }
    fflush(stdout);
    return true;
}

static int usage(void) {
    fprintf(stderr, "usage: soak MODEL [--seconds S] [--threads M] [--round-seconds R] [--lists \"OCL,CPU;OCL,CPU,REF\"] "
                    "[--isolate OCL] [--inputs K] [--rtol X] [--max-rss-growth PCT] [--seed N] [--dim NAME=VALUE]... [--faults off]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') return usage();
    const char *path = argv[1], *lists_arg = "OCL,CPU;OCL,CPU,REF", *isolate = "OCL";
    double seconds = 600, round_s = 30, max_growth = -1;
    int threads = 4;
    uint64_t seed = 1;
    n_sets = 4;
    const char *dims[16];
    int n_dims = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return usage();
        if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--round-seconds")) round_s = atof(v);
        else if (!strcmp(a, "--lists")) lists_arg = v;
        else if (!strcmp(a, "--isolate")) isolate = v;
        else if (!strcmp(a, "--inputs")) n_sets = atoi(v);
        else if (!strcmp(a, "--rtol")) rtol = atof(v);
        else if (!strcmp(a, "--max-rss-growth")) max_growth = atof(v);
        else if (!strcmp(a, "--seed")) seed = (uint64_t)atoll(v);
        else if (!strcmp(a, "--dim") && n_dims < 16) dims[n_dims++] = v;
        else if (!strcmp(a, "--faults")) g_faults = strcmp(v, "off") != 0;
        else return usage();
        i++;
    }
    if (threads < 1 || threads > MAX_THREADS || n_sets < 1 || n_sets > MAX_INPUTS || seconds <= 0 || round_s <= 0) return usage();
    char lists[MAX_LISTS][256];
    int n_lists = 0;
    for (const char *p = lists_arg; *p && n_lists < MAX_LISTS;) {
        const char *e = strchr(p, ';');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        snprintf(lists[n_lists++], sizeof lists[0], "%.*s", (int)len, p);
        if (!e) break;
        p = e + 1;
    }
    long rss0 = rss_kib();
    double start = now_s();
    if (si_model_load(path, &model)) { fprintf(stderr, "soak: %s\n", si_last_error()); return 1; }
    for (int i = 0; i < n_dims; i++) {
        const char *eq = strchr(dims[i], '=');
        char name[64];
        snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - dims[i]) : 0, dims[i]);
        if (!eq || si_model_set_dim(model, name, atoll(eq + 1))) { fprintf(stderr, "soak: --dim %s: %s\n", dims[i], si_last_error()); return 2; }
    }
    if (!ref_outputs()) return 1;
    printf("soak: %s, %d input sets, REF outputs ready in %.1f s; %d threads, rounds of %.0f s for %.0f s over",
           path, n_sets, now_s() - start, threads, round_s, seconds);
    for (int i = 0; i < n_lists; i++) printf(" %s", lists[i]);
    printf(" (isolate=%s)\n", isolate);
    fflush(stdout);
    long rss_warm = -1, heap_warm = -1;
    int round = 0;
    g_warm_rounds = n_lists;
    start = now_s();
    for (; round < n_lists || now_s() - start < seconds; round++) {
        double left = seconds - (now_s() - start);
        double r = round < n_lists ? fmin(round_s, fmax(5.0, left / n_lists)) : fmin(round_s, fmax(left, 5.0));
        run_round(lists[round % n_lists], isolate, threads, r, seed * 1000003u + (uint64_t)round * 7919u, round);
        if (round == n_lists - 1) { /* every list has run once: warm */
            rss_warm = settled_rss_kib();
            heap_warm = heap_kib();
        }
    }
    long rss_end = settled_rss_kib(), heap_end = heap_kib();
    double growth = rss_warm > 0 ? 100.0 * (double)(rss_end - rss_warm) / (double)rss_warm : 0;
    printf("\nsoak summary after %.0f s, %d rounds:\n", now_s() - start, round);
    printf("  inferences      %ld\n", atomic_load(&T.inferences));
    printf("  failovers       %ld (fail-backs %ld, retries %ld)\n", T.failovers, T.failbacks, T.retries);
    printf("  helper deaths   %ld (injected crashes, segfaults and watchdog kills of the isolated device)\n", T.deaths);
    printf("  wrong outputs   %ld%s%s\n", atomic_load(&T.wrong), T.first_wrong[0] ? ": first: " : "", T.first_wrong);
    printf("  failed requests %ld%s%s\n", atomic_load(&T.failed), T.first_failed[0] ? ": first: " : "", T.first_failed);
    printf("  crashes         0 (this process ran to the end)\n");
    if (g_threads > 1) printf("  threads         %ld still running 30 s after the last round\n", g_threads);
    printf("  RSS             start %ld KiB, after warm-up %ld KiB, end %ld KiB (%+.1f%% after warm-up); the rounds after "
           "the warm-up ended between %ld and %ld KiB\n", rss0, rss_warm, rss_end, growth, g_rss_lo, g_rss_hi);
    printf("  heap in use     after warm-up %ld KiB, end %ld KiB (%+ld KiB: what malloc handed out and did not get back)\n",
           heap_warm, heap_end, heap_end - heap_warm);
    bool ok = !atomic_load(&T.wrong) && !atomic_load(&T.failed);
    if (max_growth >= 0 && growth >= max_growth) {
        printf("  RSS grew %.1f%% after the warm-up (limit %.1f%%)\n", growth, max_growth);
        ok = false;
    }
    for (int s = 0; s < n_sets; s++)
        for (int i = 0; i < MAX_IO; i++) {
            si_tensor_free(inputs[s][i]);
            free(ref[s][i]);
        }
    si_model_free(model);
    printf("%s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
