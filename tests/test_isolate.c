/*
 * test_isolate.c — isolated devices (isolate=DEVICE: the device runs in a helper process, src/device/isolate/):
 *   no driver here        with isolate=OCL this process never loads the OpenCL driver (PoCL)
 *   crash / segv          without isolation, the injected effects end the process (SIGABRT, SIGSEGV);
 *                         isolated, aborts and segfaults in the helper at compile, create and infer: the
 *                         device is lost, the inference re-runs on the next device, outputs equal REF's
 *   killed from outside   SIGKILL to the helper in the middle of an inference (held there by a hang)
 *   hang + watchdog       infer_timeout_ms gives up on a hung inference: the helper is killed (long before the
 *                         hang's own 30 s cap) and reaped, the inference re-runs
 *   restart               after a crash, fail-back starts a new helper that counts fault calls on from the dead
 *                         one's (one failover, one fail-back, not a crash per helper)
 *   threads               many requests on many threads share one isolated compiled model (with and without
 *                         random crashes): every output equals REF's, none fails
 *   free                  si_compiled_free stops the helper in order (exit status 0: under ASan, no leak in
 *                         the helper either) and reaps it: no zombie, no shared memory left in this process
 *   bad input             a shape only the device can refuse comes back INVALID_ARG through the proxy, no failover
 *   no worker program     the isolated device declines every node, naming why; the model runs on the rest
 *   codec                 the graph codec round-trips a model and refuses every truncation and garbage
 * OCL is the isolated device where it is present (PoCL on machines without a GPU), CPU otherwise.
 */
#include "si_test.h"
#include "children.h"

#include "api/internal.h"
#include "device/isolate/isolate.h"
#include "device/isolate/wire.h"
#include "util/thread.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>

#define BATCH 2
#define OUT_N (BATCH * 10)

static si_model *model;
static si_compiled *ref; /* REF, the oracle */
static const char *DEV = "OCL", *LIST = "OCL,CPU"; /* the isolated device, and the list it heads */

// --- helpers ----------------------------------------------------------------------------------------------

static si_compiled *compile_kv(si_model *m, const char *const *kv) {
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_result s = si_config_create(&cfg);
    for (int i = 0; !s && kv[i]; i += 2) s = si_config_set(cfg, kv[i], kv[i + 1]);
    if (!s) s = si_compile(m, cfg, &cm);
    if (s) fprintf(stderr, "  compile failed: %s\n", si_last_error());
    CHECK(s == SI_OK);
    si_config_free(cfg);
    return s ? NULL : cm;
}

static si_tensor *make_input(int seed) {
    int64_t dims[4] = {BATCH, 3, 32, 32};
    si_tensor *t = NULL;
    if (si_tensor_create(SI_F32, 4, dims, &t)) return NULL;
    float *p = si_tensor_data(t);
    uint32_t x = 2463534242u + (uint32_t)seed * 7919u;
    for (int64_t i = 0; i < si_tensor_count(t); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (float)(x % 2000) / 1000.0f - 1.0f;
    }
    return t;
}

/* The outputs of REF for this input (both outputs, OUT_N floats each). */
static void ref_outputs(si_tensor *in, float out[2][OUT_N]) {
    if (!ref) ref = compile_kv(model, (const char *const[]){"devices", "REF", NULL});
    si_request *rq = NULL;
    if (!ref || si_request_create(ref, &rq)) { CHECK(false); return; }
    CHECK_OK(si_request_set_input(rq, 0, in));
    CHECK_OK(si_request_infer(rq));
    for (int k = 0; k < 2; k++) {
        si_tensor *t = NULL;
        if (!si_request_get_output(rq, k, &t) && si_tensor_count(t) == OUT_N) memcpy(out[k], si_tensor_data(t), sizeof out[k]);
    }
    si_request_free(rq);
}

/* Output k of rq equals want within 1e-4 of the output's scale. */
static bool outputs_match(si_request *rq, float want[2][OUT_N]) {
    for (int k = 0; k < 2; k++) {
        si_tensor *t = NULL;
        if (si_request_get_output(rq, k, &t) || si_tensor_count(t) != OUT_N || !si_tensor_data(t)) return false;
        const float *p = si_tensor_data(t);
        float scale = 0;
        for (int i = 0; i < OUT_N; i++) scale = fmaxf(scale, fabsf(want[k][i]));
        for (int i = 0; i < OUT_N; i++)
            if (!(fabsf(p[i] - want[k][i]) <= 1e-4f * scale + 1e-6f)) {
                fprintf(stderr, "  output %d[%d] = %g, REF %g\n", k, i, (double)p[i], (double)want[k][i]);
                return false;
            }
    }
    return true;
}

/* Children of this process that run the worker program: their pids, and how many are zombies. */
typedef struct workers_seen {
    int *pids, max, n, zombies;
} workers_seen;

static void count_worker(int pid, const char *comm, char state, void *arg) {
    workers_seen *w = arg;
    if (strcmp(comm, "safeinfer-worke")) return;
    if (state == 'Z') w->zombies++;
    if (w->n < w->max) w->pids[w->n] = pid;
    w->n++;
}

static int worker_children(int *pids, int max, int *zombies) {
    workers_seen w = {.pids = pids, .max = max};
    for_each_child(count_worker, &w);
    *zombies = w.zombies;
    return w.n;
}

/* Wait up to ms for no worker child (alive or zombie) to remain. */
static bool no_workers_within(int ms) {
    int pids[16], z;
    for (int i = 0; i < ms / 10; i++) {
        if (!worker_children(pids, 16, &z)) return true;
        usleep(10000);
    }
    return worker_children(pids, 16, &z) == 0;
}

/* Lines of a /proc/self file that contain `what`. */
static int proc_self_count(const char *file, const char *what) {
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/self/%s", file);
    FILE *f = fopen(path, "r");
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, what)) n++;
    if (f) fclose(f);
    return n;
}

/* memfds among this process's open files. */
static int open_memfds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[300], target[512];
        snprintf(path, sizeof path, "/proc/self/fd/%.200s", e->d_name);
        ssize_t k = readlink(path, target, sizeof target - 1);
        if (k <= 0) continue;
        target[k] = 0;
        if (strstr(target, "memfd:safeinfer")) n++;
    }
    if (d) closedir(d);
    return n;
}

static char *report(si_compiled *cm) {
    char *json = NULL;
    CHECK_OK(si_compiled_report_json(cm, &json));
    return json;
}

// --- tests ------------------------------------------------------------------------------------------------

/* With isolate=OCL, the OpenCL driver is loaded by the helper only. Runs first, before anything else here
 * could load it. */
static void test_no_driver_here(void) {
    si_compiled *cm = compile_kv(model, (const char *const[]){"devices", LIST, "isolate", DEV, NULL});
    si_tensor *in = make_input(1);
    si_request *rq = NULL;
    if (cm && in && !si_request_create(cm, &rq)) {
        CHECK_OK(si_request_set_input(rq, 0, in));
        CHECK_OK(si_request_infer(rq));
        si_request_free(rq);
    }
    CHECK_STREQ(cm ? si_compiled_devices(cm) : "", strcmp(DEV, "OCL") ? "CPU>REF" : "OCL>CPU");
    int pocl = proc_self_count("maps", "libpocl");
    if (pocl) fprintf(stderr, "  libpocl is mapped in this process (%d mappings)\n", pocl);
    CHECK(pocl == 0);
    si_compiled_free(cm);
    si_tensor_free(in);
}

/* Without isolation, crash and segv end the process that runs the device: this one (a forked child here). */
static int in_process_crash(const char *faults) {
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        si_compiled *cm = NULL;
        si_request *rq = NULL;
        si_tensor *in = make_input(9);
        si_config *cfg = NULL;
        if (si_config_create(&cfg) || si_config_set(cfg, "devices", "REF") || si_config_set(cfg, "faults", faults) ||
            si_compile(model, cfg, &cm) || si_request_create(cm, &rq) || si_request_set_input(rq, 0, in))
            _exit(3);
        _exit(si_request_infer(rq) ? 5 : 4); /* not reached: the infer ended the process */
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFSIGNALED(st) ? WTERMSIG(st) : 1000 + (WIFEXITED(st) ? WEXITSTATUS(st) : 0);
}

static void test_crash_in_process(void) {
    CHECK(in_process_crash("REF.infer=1:crash") == SIGABRT);
    CHECK(in_process_crash("REF.infer=1:segv") == SIGSEGV);
}

/* A request on cm with `in` bound; NULL (a failed check; cm and in freed) when either is missing or the request
 * cannot be made. */
static si_request *bound_request(si_compiled *cm, si_tensor *in) {
    si_request *rq = NULL;
    if (!cm || !in || si_request_create(cm, &rq)) {
        CHECK(false);
        si_compiled_free(cm);
        si_tensor_free(in);
        return NULL;
    }
    CHECK_OK(si_request_set_input(rq, 0, in));
    return rq;
}

/* A case on one compiled model: cm on LIST with DEV isolated, `faults` and one more key/value pair (key NULL: none);
 * rq with in (make_input(seed)) bound; REF's outputs for in. */
typedef struct iso_case {
    si_compiled *cm;
    si_tensor *in;
    si_request *rq;
    float want[2][OUT_N];
} iso_case;

/* false (a failed check, nothing left to free) when the compile or the request fails. */
static bool iso_open(iso_case *c, int seed, const char *faults, const char *key, const char *value) {
    c->cm = compile_kv(model, (const char *const[]){"devices", LIST, "isolate", DEV, "faults", faults, key, value, NULL});
    c->in = make_input(seed);
    ref_outputs(c->in, c->want);
    c->rq = bound_request(c->cm, c->in);
    return c->rq != NULL;
}

static void iso_close(iso_case *c) {
    si_request_free(c->rq);
    si_compiled_free(c->cm);
    si_tensor_free(c->in);
}

/* One fault spec: `n` inferences, each equal to REF's; the device is lost (the report says so). */
static void crash_case(const char *faults, int n, bool expect_failover) {
    iso_case c;
    if (!iso_open(&c, 2, faults, NULL, NULL)) return;
    int ok = 0, same = 0;
    for (int i = 0; i < n; i++) {
        si_result st = si_request_infer(c.rq);
        if (st) fprintf(stderr, "  [%s] infer %d: %s\n", faults, i + 1, si_last_error());
        ok += st == SI_OK;
        same += st == SI_OK && outputs_match(c.rq, c.want);
    }
    CHECK(ok == n && same == n);
    char *json = report(c.cm);
    bool lost = json && strstr(json, "\"status\":\"SI_ERR_DEVICE_LOST\"");
    bool how = json && (strstr(json, "killed by signal 6") || strstr(json, "killed by signal 11"));
    bool failover = json && strstr(json, "\"type\":\"failover\"");
    if (!lost || !how || failover != expect_failover) fprintf(stderr, "  [%s] report: %s\n", faults, json ? json : "");
    CHECK(lost && how);
    CHECK(failover == expect_failover);
    si_counters k;
    si_compiled_counters(c.cm, &k);
    CHECK(k.failovers == (expect_failover ? 1 : 0));
    si_free_string(json);
    iso_close(&c);
}

static void test_crash_segv(void) {
    char f[5][64];
    snprintf(f[0], sizeof f[0], "%s.infer=3:crash", DEV);
    snprintf(f[1], sizeof f[1], "%s.infer=2:segv", DEV);
    snprintf(f[2], sizeof f[2], "%s.create=1:crash", DEV);
    snprintf(f[3], sizeof f[3], "%s.compile=always:segv", DEV);
    snprintf(f[4], sizeof f[4], "%s.compile=1:crash", DEV);
    for (int i = 0; i < 5; i++) crash_case(f[i], 4, true); /* a compile that fails is a failover too (stage compile) */
}

typedef struct bg_infer {
    si_request *rq;
    si_result st;
    char msg[SI_ERR_CAP];
} bg_infer;

static void *run_infer(void *arg) {
    bg_infer *b = arg;
    b->st = si_request_infer(b->rq);
    snprintf(b->msg, sizeof b->msg, "%s", si_last_error());
    return NULL;
}

/* The helper killed from outside while an inference runs in it (held there by an injected hang). */
static void test_sigkill(void) {
    char faults[64];
    snprintf(faults, sizeof faults, "%s.infer=2:hang", DEV);
    iso_case c;
    if (!iso_open(&c, 3, faults, NULL, NULL)) return;
    CHECK_OK(si_request_infer(c.rq));
    int pids[16], z;
    CHECK(worker_children(pids, 16, &z) == 1);
    bg_infer b = {.rq = c.rq};
    pthread_t t;
    pthread_create(&t, NULL, run_infer, &b);
    usleep(300000); /* the inference is in the helper, hanging */
    CHECK(worker_children(pids, 16, &z) == 1 && z == 0);
    double t0 = si_mono_ms();
    CHECK(kill(pids[0], SIGKILL) == 0);
    pthread_join(t, NULL);
    CHECK(si_mono_ms() - t0 < 20000); /* the hang alone would last 30 s */
    if (b.st) fprintf(stderr, "  infer after SIGKILL: %s\n", b.msg);
    CHECK(b.st == SI_OK && outputs_match(c.rq, c.want));
    char *json = report(c.cm);
    CHECK(json && strstr(json, "\"type\":\"failover\"") && strstr(json, "killed by signal 9"));
    si_free_string(json);
    CHECK(no_workers_within(5000)); /* the dead helper was reaped */
    iso_close(&c);
}

/* A hung inference given up on by the watchdog: the helper is killed and reaped, the inference re-run. */
static void test_hang_watchdog(void) {
    char faults[64];
    snprintf(faults, sizeof faults, "%s.infer=2:hang", DEV);
    iso_case c;
    if (!iso_open(&c, 4, faults, "infer_timeout_ms", "700")) return;
    CHECK_OK(si_request_infer(c.rq));
    CHECK_OK(si_request_infer(c.rq)); /* hangs in the helper; the watchdog gives up, the CPU re-runs it */
    CHECK(outputs_match(c.rq, c.want));
    CHECK(no_workers_within(10000)); /* killed and reaped: an abandoned hang would keep it 30 s */
    char *json = report(c.cm);
    CHECK(json && strstr(json, "did not return within 700 ms") && strstr(json, "\"type\":\"failover\""));
    si_free_string(json);
    CHECK_OK(si_request_infer(c.rq));
    CHECK(outputs_match(c.rq, c.want));
    iso_close(&c);
}

/* A lost device stays quarantined until a recovery round (every device failed, recovery_ms later) tries it
 * again: that starts a new helper, whose fault counts go on from the dead one's, so the crash at inference 2
 * happens once, not once per helper. */
static void test_restart(void) {
    char faults[96];
    snprintf(faults, sizeof faults, "%s.infer=2:crash,%s.infer=always", DEV, strcmp(DEV, "OCL") ? "REF" : "CPU");
    iso_case c;
    if (!iso_open(&c, 5, faults, "recovery_ms", "100")) return;
    int pids[16], z, first = worker_children(pids, 16, &z) == 1 ? pids[0] : -1;
    CHECK_OK(si_request_infer(c.rq));
    CHECK(outputs_match(c.rq, c.want));
    CHECK_ERR(si_request_infer(c.rq), SI_ERR_DEVICE, "every device failed"); /* the helper crashed, the other fails */
    si_result st = SI_ERR_DEVICE;
    for (int i = 0; i < 1000 && (st = si_request_infer(c.rq)); i++) usleep(5000); /* until the recovery round */
    CHECK(st == SI_OK && outputs_match(c.rq, c.want));
    for (int i = 0; i < 6; i++) { /* inferences 3.. of the device: no crash in the new helper */
        CHECK_OK(si_request_infer(c.rq));
        CHECK(outputs_match(c.rq, c.want));
    }
    CHECK(worker_children(pids, 16, &z) == 1 && pids[0] != first && z == 0);
    char *json = report(c.cm);
    int deaths = 0, others = 0; /* every helper death in the report is the first helper's */
    for (const char *p = json; p && (p = strstr(p, "the helper process (pid ")); p++) {
        deaths++;
        others += atoi(p + strlen("the helper process (pid ")) != first;
    }
    CHECK(deaths >= 1 && others == 0);
    CHECK(json && strstr(json, "\"stage\":\"recovery\""));
    si_free_string(json);
    iso_close(&c);
}

/* Thread i: its own input (seed 100 + i) and request, n inferences, each checked against REF (same[i] of them
 * equal to it). */
typedef struct threads_ctx {
    int n, same[16];
} threads_ctx;

static void worker(test_thread *t) {
    threads_ctx *x = t->ctx;
    int n = x->n;
    si_tensor *in = make_input(100 + t->id);
    float want[2][OUT_N];
    static pthread_mutex_t ref_mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&ref_mu);
    ref_outputs(in, want);
    pthread_mutex_unlock(&ref_mu);
    si_request *rq = in ? test_thread_request(t) : NULL;
    if (!rq || si_request_set_input(rq, 0, in)) {
        t->failed = n;
        si_request_free(rq);
        si_tensor_free(in);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (si_request_infer(rq)) {
            test_thread_failed(t, "infer");
            continue;
        }
        t->ok++;
        x->same[t->id] += outputs_match(rq, want);
    }
    si_request_free(rq);
    si_tensor_free(in);
}

static void threads_case(const char *faults, int nthreads, int n) {
    si_compiled *cm = compile_kv(model, (const char *const[]){"devices", LIST, "isolate", DEV, "faults", faults,
                                                              "failback_ms", "20", "standby", "on", NULL});
    if (!cm) return;
    test_thread w[16];
    threads_ctx x = {.n = n};
    int ok = 0, same = 0, failed = 0;
    run_threads(w, nthreads, cm, &x, worker, &ok, &failed);
    for (int i = 0; i < nthreads; i++) same += x.same[i];
    si_counters k;
    si_compiled_counters(cm, &k);
    fprintf(stderr, "  threads [%s]: %d ok, %d equal to REF, %d failed; %lld failovers, %lld failbacks\n", faults, ok,
            same, failed, (long long)k.failovers, (long long)k.failbacks);
    CHECK(ok == nthreads * n && same == ok && failed == 0);
    if (*faults) CHECK(k.failovers >= 1);
    else CHECK(k.failovers == 0);
    si_compiled_free(cm);
}

static void test_threads(void) {
    threads_case("", 8, 20);
    char faults[128];
    snprintf(faults, sizeof faults, "%s.infer=p0.04@11:crash,%s.infer=p0.03@12:segv", DEV, DEV);
    threads_case(faults, 8, 20);
}

/* si_compiled_free stops the helper in order and reaps it; nothing of the shared memory stays here. */
static void test_free(void) {
    CHECK(no_workers_within(10000)); /* the earlier tests' helpers are gone */
    si_compiled *cm = compile_kv(model, (const char *const[]){"devices", LIST, "isolate", DEV, NULL});
    si_tensor *in = make_input(6);
    si_request *rq = bound_request(cm, in);
    if (!rq) return;
    CHECK_OK(si_request_infer(rq));
    int pids[16], z;
    CHECK(worker_children(pids, 16, &z) == 1);
    CHECK(open_memfds() > 0 && proc_self_count("maps", "memfd:safeinfer") > 0); /* it did use shared memory */
    si_request_free(rq);
    si_compiled_free(cm);
    CHECK(no_workers_within(10000));
    CHECK(si_isolate_last_stop_status() == 0); /* it exited by itself, cleanly (leak-free under ASan) */
    CHECK(open_memfds() == 0);
    CHECK(proc_self_count("maps", "memfd:safeinfer") == 0);
    si_tensor_free(in);
}

/* A shape only the device can refuse (dynamic dimensions): INVALID_ARG through the proxy, no failover, the
 * helper still there and working. */
static void test_bad_input(void) {
    si_model *m = NULL;
    CHECK_OK(si_model_load(data_path("add_dyn.onnx"), &m));
    si_compiled *cm = m ? compile_kv(m, (const char *const[]){"devices", "CPU,REF", "isolate", "CPU", NULL}) : NULL;
    si_request *rq = NULL;
    if (!cm || si_request_create(cm, &rq)) { CHECK(false); si_compiled_free(cm); si_model_free(m); return; }
    CHECK_STREQ(si_compiled_devices(cm), "CPU>REF");
    int64_t da[2] = {2, 3}, db_bad[1] = {2}, db[1] = {3};
    si_tensor *a = NULL, *b_bad = NULL, *b = NULL;
    CHECK_OK(si_tensor_create(SI_F32, 2, da, &a));
    CHECK_OK(si_tensor_create(SI_F32, 1, db_bad, &b_bad));
    CHECK_OK(si_tensor_create(SI_F32, 1, db, &b));
    for (int i = 0; i < 6; i++) ((float *)si_tensor_data(a))[i] = (float)i;
    for (int i = 0; i < 3; i++) ((float *)si_tensor_data(b))[i] = 10.0f * (float)i;
    CHECK_OK(si_request_set_input(rq, 0, a));
    CHECK_OK(si_request_set_input(rq, 1, b_bad)); /* [2] does not broadcast to [2,3]: only the device sees it */
    CHECK_ERR(si_request_infer(rq), SI_ERR_INVALID_ARG, "");
    int pids[16], z, before = worker_children(pids, 16, &z), pid = before == 1 ? pids[0] : -1;
    CHECK_OK(si_request_set_input(rq, 1, b));
    CHECK_OK(si_request_infer(rq));
    si_tensor *c = NULL;
    CHECK_OK(si_request_get_output(rq, 0, &c));
    float want[6] = {0, 11, 22, 3, 14, 25};
    CHECK(c && si_tensor_count(c) == 6);
    if (c && si_tensor_count(c) == 6) CHECK_FLOATS(si_tensor_data(c), want, 6);
    si_counters k;
    si_compiled_counters(cm, &k);
    CHECK(k.failovers == 0 && k.retries == 0);
    CHECK(worker_children(pids, 16, &z) == 1 && pids[0] == pid && z == 0); /* the same helper */
    si_tensor_free(a);
    si_tensor_free(b_bad);
    si_tensor_free(b);
    si_request_free(rq);
    si_compiled_free(cm);
    si_model_free(m);
}

/* No worker program: si_compile says so (where it looked); with one, it is found in the build tree. */
static void test_no_worker(void) {
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    CHECK_OK(si_config_create(&cfg));
    CHECK_OK(si_config_set(cfg, "devices", LIST));
    CHECK_OK(si_config_set(cfg, "isolate", DEV));
    setenv("SAFEINFER_WORKER", "/nonexistent/safeinfer-worker", 1);
    CHECK_ERR(si_compile(model, cfg, &cm), SI_ERR_UNSUPPORTED, "SAFEINFER_WORKER=/nonexistent/safeinfer-worker is not an executable file");
    CHECK(cm == NULL);
    char path[4096];
    CHECK_ERR(si_isolate_worker_path(path, sizeof path), SI_ERR_UNSUPPORTED, "SAFEINFER_WORKER=/nonexistent");
    unsetenv("SAFEINFER_WORKER");
    CHECK_OK(si_isolate_worker_path(path, sizeof path)); /* found without the override: in the build tree */
    CHECK(strstr(path, "safeinfer-worker") != NULL);
    si_config_free(cfg);
}

/* The configuration key: device names only, each once. */
static void test_config(void) {
    si_config *cfg = NULL;
    CHECK_OK(si_config_create(&cfg));
    CHECK_OK(si_config_set(cfg, "isolate", "OCL"));
    CHECK_OK(si_config_set(cfg, "isolate", "OCL.1,CPU,REF"));
    CHECK_OK(si_config_set(cfg, "isolate", ""));
    CHECK_ERR(si_config_set(cfg, "isolate", "GPU"), SI_ERR_INVALID_ARG, "unknown device 'GPU'");
    CHECK_ERR(si_config_set(cfg, "isolate", "OCL,OCL.0"), SI_ERR_INVALID_ARG, "named twice");
    CHECK_ERR(si_config_set(cfg, "isolate", "OCL,"), SI_ERR_INVALID_ARG, "empty");
    CHECK_ERR(si_config_set(cfg, "isolate", "OCL.x"), SI_ERR_INVALID_ARG, "bad OpenCL device name");
    CHECK_ERR(si_config_set(cfg, "faults", "OCL.infer=1:explode"), SI_ERR_INVALID_ARG, "crash or segv");
    si_config_free(cfg);
}

// --- the graph codec ----------------------------------------------------------------------------------------

typedef struct fake_seg {
    uint8_t *base;
    size_t size, used;
    const si_tensor *t[4096];
    uint64_t off[4096];
    int n;
} fake_seg;

static bool fake_place(void *user, const si_tensor *t, uint32_t *seg, uint64_t *off) {
    fake_seg *s = user;
    for (int i = 0; i < s->n; i++)
        if (s->t[i] == t) { *seg = 7; *off = s->off[i]; return true; }
    if (s->n == 4096 || s->used + t->nbytes > s->size) return false;
    memcpy(s->base + s->used, t->data, t->nbytes);
    s->t[s->n] = t;
    s->off[s->n++] = s->used;
    *seg = 7;
    *off = s->used;
    s->used = si_wire_align(s->used + t->nbytes);
    return true;
}

static const uint8_t *fake_map(void *user, uint32_t id, size_t *size) {
    fake_seg *s = user;
    *size = s->size;
    return id == 7 ? s->base : NULL;
}

static bool same_tensor(const si_tensor *a, const si_tensor *b) {
    if (!a || !b) return a == b;
    return a->dtype == b->dtype && a->ndim == b->ndim && !memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim) &&
           a->nbytes == b->nbytes && (!a->nbytes || !memcmp(a->data, b->data, a->nbytes));
}

static bool same_str(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static bool same_graph(const si_graph *a, const si_graph *b) {
    bool ok = a->n_values == b->n_values && a->n_nodes == b->n_nodes && a->n_inputs == b->n_inputs &&
              a->n_outputs == b->n_outputs && a->n_opsets == b->n_opsets && a->ir_version == b->ir_version &&
              same_str(a->producer, b->producer);
    for (int i = 0; ok && i < a->n_opsets; i++) ok = same_str(a->opsets[i].domain, b->opsets[i].domain) && a->opsets[i].version == b->opsets[i].version;
    for (int v = 0; ok && v < a->n_values; v++) {
        const si_val *x = &a->values[v], *y = &b->values[v];
        ok = same_str(x->name, y->name) && x->dtype == y->dtype && x->ndim == y->ndim && x->producer == y->producer &&
             x->is_input == y->is_input && x->is_output == y->is_output && x->is_initializer == y->is_initializer &&
             (x->ndim <= 0 || !memcmp(x->dims, y->dims, sizeof(int64_t) * (size_t)x->ndim)) && same_tensor(x->const_val, y->const_val);
        for (int k = 0; ok && k < SI_MAX_DIMS; k++) ok = same_str(x->dim_names[k], y->dim_names[k]);
    }
    for (int i = 0; ok && i < a->n_nodes; i++) {
        const si_node *x = &a->nodes[i], *y = &b->nodes[i];
        ok = same_str(x->name, y->name) && same_str(x->op_type, y->op_type) && same_str(x->domain, y->domain) &&
             x->opset == y->opset && x->op == y->op && x->n_in == y->n_in && x->n_out == y->n_out && x->n_attr == y->n_attr &&
             !memcmp(x->in, y->in, sizeof(int) * (size_t)x->n_in) && !memcmp(x->out, y->out, sizeof(int) * (size_t)x->n_out);
        for (int k = 0; ok && k < x->n_attr; k++) {
            const si_attr *p = &x->attrs[k], *q = &y->attrs[k];
            ok = same_str(p->name, q->name) && p->type == q->type && p->i == q->i && (p->f == q->f || (p->f != p->f && q->f != q->f)) &&
                 same_str(p->s, q->s) && same_tensor(p->t, q->t) && p->n == q->n &&
                 (!p->floats) == (!q->floats) && (!p->ints) == (!q->ints) && (!p->strings) == (!q->strings) &&
                 (!p->floats || !memcmp(p->floats, q->floats, sizeof(float) * (size_t)p->n)) &&
                 (!p->ints || !memcmp(p->ints, q->ints, sizeof(int64_t) * (size_t)p->n));
            for (int j = 0; ok && p->strings && j < p->n; j++) ok = same_str(p->strings[j], q->strings[j]);
        }
    }
    for (int i = 0; ok && i < a->n_inputs; i++) ok = a->inputs[i] == b->inputs[i];
    for (int i = 0; ok && i < a->n_outputs; i++) ok = a->outputs[i] == b->outputs[i];
    return ok;
}

static void codec_model(const char *path) {
    si_model *m = NULL;
    CHECK_OK(si_model_load(path, &m));
    if (!m) return;
    const si_graph *g = m->g;
    fake_seg s = {.size = 64 << 20};
    s.base = calloc(1, s.size);
    si_wbuf b = {0};
    CHECK(s.base && si_graph_encode(&b, g, fake_place, &s));
    si_rbuf r = rb_make(b.p, b.n);
    si_graph *d = NULL;
    CHECK_OK(si_graph_decode(&r, fake_map, &s, &d));
    CHECK(d && same_graph(g, d));
    si_graph_free(d);
    /* every truncation is refused (PARSE), never read past */
    int refused = 0, total = 0;
    for (size_t n = 0; n < b.n; n += 1 + b.n / 4000) {
        uint8_t *copy = malloc(n + 1);
        memcpy(copy, b.p, n);
        si_rbuf t = rb_make(copy, n);
        si_graph *x = NULL;
        total++;
        refused += si_graph_decode(&t, fake_map, &s, &x) == SI_ERR_PARSE && !x;
        si_graph_free(x);
        free(copy);
    }
    CHECK(refused == total);
    /* garbage: flipped bytes either decode to some graph or are refused; nothing crashes (ASan watches) */
    uint32_t x = 12345;
    uint8_t *copy = malloc(b.n);
    for (int it = 0; it < 3000; it++) {
        memcpy(copy, b.p, b.n);
        for (int k = 0; k < 1 + it % 4; k++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            copy[x % b.n] ^= (uint8_t)(1u << (x >> 29));
        }
        si_rbuf t = rb_make(copy, b.n);
        si_graph *y = NULL;
        si_result st = si_graph_decode(&t, fake_map, &s, &y);
        CHECK(st == SI_OK || st == SI_ERR_PARSE || st == SI_ERR_NO_MEM);
        si_graph_free(y);
    }
    free(copy);
    wb_free(&b);
    free(s.base);
    si_model_free(m);
}

static void test_codec(void) {
    codec_model(SI_EXAMPLE_MODEL);
    codec_model(data_path("matmul.onnx"));
    codec_model(data_path("clip6.onnx"));
    codec_model(data_path("mixed_cumsum.onnx"));
    codec_model(data_path("constant.onnx"));
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    CHECK_OK(si_model_load(SI_EXAMPLE_MODEL, &model));
    CHECK_OK(si_model_set_dim(model, "batch", BATCH));
    if (n_failed) return test_summary("test_isolate");
    test_crash_in_process(); /* forks: before any thread is started here */
    /* OCL where it is present (asked of a helper: this process must not load the driver), else CPU */
    si_compiled *probe = compile_kv(model, (const char *const[]){"devices", "OCL,CPU", "isolate", "OCL", NULL});
    if (!probe || strcmp(si_compiled_devices(probe), "OCL>CPU")) {
        DEV = "CPU";
        LIST = "CPU,REF";
        fprintf(stderr, "test_isolate: no OCL device here (%s): CPU is the isolated device\n", probe ? si_compiled_devices(probe) : "?");
    }
    si_compiled_free(probe);
    test_config();
    test_codec();
    if (!strcmp(DEV, "OCL")) test_no_driver_here();
    test_crash_segv();
    test_sigkill();
    test_hang_watchdog();
    test_restart();
    test_threads();
    test_bad_input();
    test_no_worker();
    test_free();
    si_compiled_free(ref);
    si_model_free(model);
    return test_summary("test_isolate");
}
