/*
 * compile.c — si_compile and requests: the one place where the layers are put together.
 *
 *   model graph --(shape inference, folding)--> partition by device capability --> per submodel: the device's
 *   own compiled model (one candidate device) or a fail-safe compiled model over its candidate devices,
 *   built through a factory --> the executor core runs the submodels in order (skipped when there is one
 *   submodel whose ports are the model's).
 *
 * Fault injection wraps the devices that the fault spec names (config "faults" or $SAFEINFER_FAULTS) before
 * anything is compiled, so the layers above see ordinary devices that happen to fail.
 */
#include "api/internal.h"
#include "device/faulty/faulty.h"
#include "exec/exec.h"
#include "failsafe/failsafe.h"
#include "partition/partition.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define MAX_DEVICES 16

/* What a submodel's factory needs: borrowed from the compiled model, which outlives every call. */
typedef struct factory_ctx {
    struct si_compiled *c;
    int sub;
} factory_ctx;

/* Devices, wrappers and the fault spec live as long as anything may still call into them: they are freed by
 * the event sink's cleanup, when the last reference (compiled model or an abandoned call) is gone. */
/* A device named in the list that is not there on this machine (no OpenCL platform, ...): it declines
 * every node, so the model runs on the rest of the list, and the reason shows in inspect and the report. */
typedef struct absent_device {
    si_device base;
    char name[64];
    char reason[512];
} absent_device;

static si_result absent_supports(const si_device *d, const si_graph *g, const si_node *n) {
    (void)g; (void)n;
    const absent_device *a = (const absent_device *)d;
    return si_err(SI_ERR_UNSUPPORTED, "device %s is not available: %s", a->name, a->reason);
}

static si_result absent_compile(si_device *d, const si_graph *g, const si_options *o, si_cmodel **out) {
    (void)o;
    *out = NULL;
    return absent_supports(d, g, NULL);
}

static const si_device_i absent_iface = {.api_version = SI_DEVICE_API_VERSION, .supports_op = absent_supports,
                                         .compile = absent_compile};

typedef struct device_set {
    int n;
    absent_device absent[MAX_DEVICES];
    si_device *devs[MAX_DEVICES];    /* what is compiled on: wrappers where the spec names the device */
    si_device *wrappers[MAX_DEVICES]; /* fault wrappers to free (NULL where none) */
    si_fault_spec *faults;
} device_set;

struct si_compiled {
    si_cmodel *cm;
    char devices[256];
    si_sink *sink;
    device_set *ds;
    si_partition *part;
    factory_ctx *fctx;
    si_options opts;
    const char *keys[CFG_MAX], *vals[CFG_MAX];
    char *kv_store[2 * CFG_MAX];
    si_cmodel **sub_cms; /* per submodel (borrowed from cm's tree) for the report */
    si_budget budget;    /* max_memory_mb: charged by the graph stage, every device compile and requests */
};

static void device_set_free(void *arg) {
    device_set *ds = arg;
    for (int i = 0; i < ds->n; i++) si_faulty_free(ds->wrappers[i]);
    si_fault_spec_free(ds->faults);
    si_free(ds);
}

static si_result factory(void *user, int device, si_cmodel **out) {
    factory_ctx *f = user;
    si_device *d = f->c->ds->devs[device];
    /* every device compile (first, failover, standby, failback; on whatever thread) charges the budget */
    si_budget *prev = si_budget_enter(&f->c->budget);
    si_result s = d->iface->compile(d, f->c->part->subs[f->sub].g, &f->c->opts, out);
    si_budget_leave(prev);
    return s;
}

/* The compile property max_memory_mb in bytes (0: none). */
static int64_t cfg_budget(const si_config *cfg) {
    const char *v = cfg ? si_config_get(cfg, "max_memory_mb") : NULL;
    long mb;
    return (v && parse_long(v, 0, SI_MAX_MEMORY_MB, &mb)) ? (int64_t)mb << 20 : 0;
}

static si_result parse_devices(const char *list, device_set *ds, char names[][64]) {
    char buf[512];
    if (strlen(list) >= sizeof buf) return si_err(SI_ERR_INVALID_ARG, "devices: list too long");
    snprintf(buf, sizeof buf, "%s", list);
    ds->n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        if (ds->n == MAX_DEVICES) return si_err(SI_ERR_INVALID_ARG, "devices: more than %d devices", MAX_DEVICES);
        for (int i = 0; i < ds->n; i++)
            if (!strcmp(names[i], tok)) return si_err(SI_ERR_INVALID_ARG, "devices: '%s' is listed twice", tok);
        si_result s = si_device_get(tok, &ds->devs[ds->n]);
        if (s == SI_ERR_UNSUPPORTED || s == SI_ERR_DEVICE) { /* a known kind of device, not present here */
            absent_device *a = &ds->absent[ds->n];
            snprintf(a->name, sizeof a->name, "%s", tok);
            snprintf(a->reason, sizeof a->reason, "%s", si_last_error());
            a->base = (si_device){.iface = &absent_iface, .name = a->name, .ctx = NULL};
            ds->devs[ds->n] = &a->base;
        } else if (s) {
            return s;
        }
        snprintf(names[ds->n], 64, "%s", tok);
        ds->n++;
    }
    if (!ds->n) return si_err(SI_ERR_INVALID_ARG, "devices: the list '%s' is empty", list);
    return SI_OK;
}

static long cfg_long(const si_config *cfg, const char *key, long dflt) {
    const char *v = cfg ? si_config_get(cfg, key) : NULL;
    long x;
    return (v && parse_long(v, 0, 86400000, &x)) ? x : dflt;
}

static bool cfg_on(const si_config *cfg, const char *key) {
    const char *v = cfg ? si_config_get(cfg, key) : NULL;
    return v && parse_onoff(v) == 1;
}

static void sub_out(const si_partition *p, int value, int *sub, int *port) {
    *sub = -1;
    for (int s = 0; s < p->n; s++)
        for (int k = 0; k < p->subs[s].g->n_outputs; k++)
            if (p->subs[s].out_values[k] == value) { *sub = s; *port = k; }
}

/* The executor core's wiring: where each submodel input and each model output comes from. */
static si_result build_exec(si_compiled *c, const si_graph *g, si_cmodel **subs) {
    si_partition *p = c->part;
    si_src **sub_inputs = si_calloc((size_t)p->n + 1, sizeof(si_src *));
    si_src *out_src = si_calloc((size_t)g->n_outputs + 1, sizeof(si_src));
    si_port *in_ports = si_calloc((size_t)g->n_inputs + 1, sizeof(si_port));
    si_port *out_ports = si_calloc((size_t)g->n_outputs + 1, sizeof(si_port));
    si_result st = (sub_inputs && out_src && in_ports && out_ports) ? SI_OK : si_err(SI_ERR_NO_MEM, "out of memory");
    for (int s = 0; !st && s < p->n; s++) {
        const si_submodel *sm = &p->subs[s];
        if (!(sub_inputs[s] = si_calloc((size_t)sm->g->n_inputs + 1, sizeof(si_src)))) { st = si_err(SI_ERR_NO_MEM, "out of memory"); break; }
        for (int k = 0; k < sm->g->n_inputs; k++) {
            int v = sm->in_values[k], from, port = 0;
            sub_out(p, v, &from, &port);
            if (from >= 0) {
                sub_inputs[s][k] = (si_src){.kind = SI_SRC_SUB, .index = from, .port = port};
                continue;
            }
            int mi = -1;
            for (int i = 0; i < g->n_inputs; i++)
                if (g->inputs[i] == v) mi = i;
            if (mi < 0) { st = si_err(SI_ERR_INTERNAL, "submodel %d input '%s' has no source", s, g->values[v].name); break; }
            sub_inputs[s][k] = (si_src){.kind = SI_SRC_INPUT, .index = mi};
        }
    }
    for (int i = 0; !st && i < g->n_inputs; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        in_ports[i] = (si_port){.name = v->name, .dtype = v->dtype, .ndim = v->ndim};
        memcpy(in_ports[i].dims, v->dims, sizeof v->dims);
    }
    for (int k = 0; !st && k < g->n_outputs; k++) {
        int v = g->outputs[k], from, port = 0;
        const si_val *val = &g->values[v];
        out_ports[k] = (si_port){.name = val->name, .dtype = val->dtype, .ndim = val->ndim};
        memcpy(out_ports[k].dims, val->dims, sizeof val->dims);
        sub_out(p, v, &from, &port);
        if (from >= 0) out_src[k] = (si_src){.kind = SI_SRC_SUB, .index = from, .port = port};
        else if (val->const_val) out_src[k] = (si_src){.kind = SI_SRC_CONST, .constant = val->const_val};
        else {
            int mi = -1;
            for (int i = 0; i < g->n_inputs; i++)
                if (g->inputs[i] == v) mi = i;
            if (mi < 0) st = si_err(SI_ERR_INTERNAL, "model output '%s' has no source", val->name);
            else out_src[k] = (si_src){.kind = SI_SRC_INPUT, .index = mi};
        }
    }
    if (!st) {
        si_exec_desc d = {.n_subs = p->n, .subs = subs, .sub_inputs = sub_inputs, .n_inputs = g->n_inputs,
                          .n_outputs = g->n_outputs, .inputs = in_ports, .outputs = out_ports, .out_src = out_src,
                          .label = c->devices};
        st = si_exec_create(&d, &c->cm);
    } else {
        for (int s = 0; s < p->n; s++) subs[s]->iface->free(subs[s]);
    }
    for (int s = 0; sub_inputs && s < p->n; s++) si_free(sub_inputs[s]);
    si_free(sub_inputs);
    si_free(out_src);
    si_free(in_ports);
    si_free(out_ports);
    return st;
}

/* One submodel whose ports are exactly the model's: the executor core adds nothing. */
static bool is_whole_model(const si_partition *p, const si_graph *g) {
    if (p->n != 1) return false;
    const si_submodel *sm = &p->subs[0];
    if (sm->g->n_inputs != g->n_inputs || sm->g->n_outputs != g->n_outputs) return false;
    for (int i = 0; i < g->n_inputs; i++)
        if (sm->in_values[i] != g->inputs[i]) return false;
    for (int k = 0; k < g->n_outputs; k++)
        if (sm->out_values[k] != g->outputs[k]) return false;
    return true;
}

void si_compiled_free(si_compiled *c) {
    if (!c) return;
    if (c->ds) /* wake calls abandoned in injected hangs so that they can finish and release what they hold */
        for (int i = 0; i < c->ds->n; i++)
            if (c->ds->wrappers[i]) si_faulty_release_hangs(c->ds->wrappers[i]);
    if (c->cm) c->cm->iface->free(c->cm);
    /* an abandoned compile may still read the submodel graphs and options: wait for it (bounded) */
    bool leak = false;
    for (int i = 0; c->sink && atomic_load(&c->sink->outstanding) > 0; i++) {
        if (i == 60000) { leak = true; break; } /* a call that never returns: keep what it may read */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (leak) {
        si_sink_unref(c->sink);
        return;
    }
    si_partition_free(c->part);
    si_free(c->fctx);
    si_free(c->sub_cms);
    for (int i = 0; i < 2 * CFG_MAX; i++) si_free(c->kv_store[i]);
    if (c->sink) si_sink_unref(c->sink); /* frees the device set with the last reference */
    else if (c->ds) device_set_free(c->ds);
    si_budget_destroy(&c->budget);
    si_free(c);
}

/* Compiling one submodel: its own device's compiled model when it has one candidate, else a fail-safe one. */
typedef struct sub_job {
    si_compiled *c;
    int sub;
    int cand[MAX_DEVICES], nc;
    char desc[256];
    si_failsafe_policy pol;
    char (*names)[64];
    si_cmodel *cm;
    si_result st;
    char msg[2048];
} sub_job;

static void *compile_sub(void *arg) {
    sub_job *j = arg;
    si_compiled *c = j->c;
    si_budget *prev = si_budget_enter(&c->budget);
    if (j->nc == 1) { /* one device: its own compiled model, no wrapper */
        j->st = factory(&c->fctx[j->sub], j->cand[0], &j->cm);
        si_sink_attempt(c->sink, j->sub, j->cand[0], "compile", j->st, j->st ? si_last_error() : "ok");
        si_sink_event(c->sink, SI_EVENT_COMPILE, j->sub, -1, j->cand[0], "compile", j->st, "%s", j->st ? si_last_error() : "ok");
        if (j->st) si_err_wrap(j->st, "submodel %d on %s", j->sub, j->names[j->cand[0]]);
    } else {
        si_failsafe_desc fd = {.submodel = j->sub, .n_candidates = j->nc, .candidates = j->cand, .factory = factory,
                               .user = &c->fctx[j->sub], .policy = j->pol, .sink = c->sink, .device_desc = j->desc};
        j->st = si_failsafe_create(&fd, &j->cm);
    }
    if (j->st) snprintf(j->msg, sizeof j->msg, "%s", si_last_error());
    si_budget_leave(prev);
    return NULL;
}

#define COMPILE_THREADS 4

static void compile_all(sub_job *jobs, int n) {
    if (n == 1) { compile_sub(&jobs[0]); return; }
    pthread_t t[COMPILE_THREADS];
    for (int base = 0; base < n; base += COMPILE_THREADS) {
        int k = SI_MIN(COMPILE_THREADS, n - base);
        bool started[COMPILE_THREADS] = {false};
        for (int i = 0; i < k; i++) started[i] = pthread_create(&t[i], NULL, compile_sub, &jobs[base + i]) == 0;
        for (int i = 0; i < k; i++) {
            if (started[i]) pthread_join(t[i], NULL);
            else compile_sub(&jobs[base + i]); /* no thread: compile here */
        }
    }
}

si_result si_compile(const si_model *m, const si_config *cfg, si_compiled **out) {
    if (!m || !out) return si_err(SI_ERR_INVALID_ARG, "si_compile: model or out is NULL");
    *out = NULL;
    si_compiled *c = si_calloc(1, sizeof *c);
    if (!c || !(c->ds = si_calloc(1, sizeof(device_set)))) { si_free(c); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    si_budget_init(&c->budget, cfg_budget(cfg));
    si_budget *prev_budget = si_budget_enter(&c->budget);
    si_result st;
    si_graph *g = NULL;
    char names[MAX_DEVICES][64];
    const char *devs = cfg ? si_config_get(cfg, "devices") : NULL;
    if ((st = parse_devices(devs ? devs : "REF", c->ds, names))) goto fail;
    /* options for the devices: a copy of the config's properties */
    for (int i = 0; cfg && i < cfg->n; i++) {
        c->kv_store[2 * i] = si_strdup(cfg->keys[i]);
        c->kv_store[2 * i + 1] = si_strdup(cfg->values[i]);
        if (!c->kv_store[2 * i] || !c->kv_store[2 * i + 1]) { st = si_err(SI_ERR_NO_MEM, "out of memory"); goto fail; }
        c->keys[i] = c->kv_store[2 * i];
        c->vals[i] = c->kv_store[2 * i + 1];
        c->opts.n++;
    }
    c->opts.keys = c->keys;
    c->opts.values = c->vals;
    /* fault injection */
    const char *spec = cfg ? si_config_get(cfg, "faults") : NULL;
    if (!spec) spec = getenv("SAFEINFER_FAULTS");
    if (spec && *spec) {
        if ((st = si_fault_spec_parse(spec, &c->ds->faults))) goto fail;
        for (int i = 0; i < c->ds->n; i++)
            if (si_fault_spec_mentions(c->ds->faults, names[i])) {
                if ((st = si_faulty_wrap(c->ds->devs[i], c->ds->faults, &c->ds->wrappers[i]))) goto fail;
                c->ds->devs[i] = c->ds->wrappers[i];
            }
    }
    const char *name_ptrs[MAX_DEVICES];
    for (int i = 0; i < c->ds->n; i++) name_ptrs[i] = names[i];
    if ((st = si_sink_create(name_ptrs, c->ds->n, cfg ? cfg->fn : NULL, cfg ? cfg->user : NULL, &c->sink))) goto fail;
    c->sink->cleanup = device_set_free;
    c->sink->cleanup_arg = c->ds;
    /* graph, partition */
    if ((st = si_graph_clone(m->g, &g))) goto fail;
    if ((st = si_graph_infer_shapes(g, SI_FOLD_AT_COMPILE))) goto fail;
    if ((st = si_partition_graph(g, c->ds->devs, c->ds->n, &c->part))) goto fail;
    si_partition *p = c->part;
    c->fctx = si_calloc((size_t)p->n + 1, sizeof(factory_ctx));
    c->sub_cms = si_calloc((size_t)p->n + 1, sizeof(si_cmodel *));
    si_cmodel **subs = si_calloc((size_t)p->n + 1, sizeof(si_cmodel *));
    if (!c->fctx || !c->sub_cms || !subs) { si_free(subs); st = si_err(SI_ERR_NO_MEM, "out of memory"); goto fail; }
    si_failsafe_policy pol = {
        .retries = (int)cfg_long(cfg, "retries", 0),
        .infer_timeout_ms = (int)cfg_long(cfg, "infer_timeout_ms", 0),
        .compile_timeout_ms = (int)cfg_long(cfg, "compile_timeout_ms", 0),
        .standby = cfg_on(cfg, "standby"),
        .failback_ms = (int)cfg_long(cfg, "failback_ms", 0),
        .check_nan = cfg && si_config_get(cfg, "check_outputs") && !strcmp(si_config_get(cfg, "check_outputs"), "nan"),
    };
    bool strict = cfg_on(cfg, "strict");
    size_t dl = 0;
    /* one job per submodel; several submodels compile in parallel (devices compile thread-safely) */
    sub_job *jobs = si_calloc((size_t)p->n + 1, sizeof(sub_job));
    if (!jobs) { si_free(subs); st = si_err(SI_ERR_NO_MEM, "out of memory"); goto fail; }
    for (int s = 0; s < p->n; s++) {
        si_submodel *sm = &p->subs[s];
        sub_job *j = &jobs[s];
        c->fctx[s] = (factory_ctx){.c = c, .sub = s};
        *j = (sub_job){.c = c, .sub = s, .pol = pol, .names = names};
        j->cand[j->nc++] = sm->device;
        for (int d = sm->device + 1; d < c->ds->n && !strict; d++)
            if (sm->capable & (1ull << d)) j->cand[j->nc++] = d;
        size_t o = 0;
        for (int i = 0; i < j->nc && o < sizeof j->desc; i++)
            o += (size_t)snprintf(j->desc + o, sizeof j->desc - o, i ? ">%s" : "%s", names[j->cand[i]]);
        if (dl < sizeof c->devices) dl += (size_t)snprintf(c->devices + dl, sizeof c->devices - dl, s ? ",%s" : "%s", j->desc);
    }
    compile_all(jobs, p->n);
    st = SI_OK;
    for (int s = 0; s < p->n; s++) {
        subs[s] = jobs[s].cm;
        c->sub_cms[s] = subs[s];
        if (jobs[s].st && !st) {
            st = jobs[s].st;
            si_err(st, "%s", jobs[s].msg);
        }
    }
    si_free(jobs);
    if (st) {
        for (int s = 0; s < p->n; s++)
            if (subs[s]) subs[s]->iface->free(subs[s]);
        memset(c->sub_cms, 0, sizeof(si_cmodel *) * (size_t)p->n);
        si_free(subs);
        goto fail;
    }
    if (is_whole_model(p, g)) {
        c->cm = subs[0];
    } else {
        st = build_exec(c, g, subs);
        if (st) {
            memset(c->sub_cms, 0, sizeof(si_cmodel *) * (size_t)p->n);
            si_free(subs);
            goto fail;
        }
    }
    si_free(subs);
    si_graph_free(g);
    si_budget_leave(prev_budget);
    *out = c;
    return SI_OK;
fail:
    si_graph_free(g);
    si_budget_leave(prev_budget);
    {
        char msg[4096];
        snprintf(msg, sizeof msg, "%s", si_last_error());
        si_compiled_free(c);
        return si_err(st, "%s", msg);
    }
}

int si_compiled_num_inputs(const si_compiled *c) { return c ? c->cm->n_inputs : 0; }
int si_compiled_num_outputs(const si_compiled *c) { return c ? c->cm->n_outputs : 0; }
const char *si_compiled_input_name(const si_compiled *c, int i) {
    return (c && i >= 0 && i < c->cm->n_inputs) ? c->cm->inputs[i].name : NULL;
}
const char *si_compiled_output_name(const si_compiled *c, int i) {
    return (c && i >= 0 && i < c->cm->n_outputs) ? c->cm->outputs[i].name : NULL;
}
const char *si_compiled_devices(const si_compiled *c) { return c ? c->devices : ""; }

void si_compiled_counters(const si_compiled *c, si_counters *out) {
    memset(out, 0, sizeof *out);
    if (!c) return;
    out->inferences = atomic_load(&c->sink->inferences);
    out->failovers = atomic_load(&c->sink->failovers);
    out->retries = atomic_load(&c->sink->retries);
    out->failbacks = atomic_load(&c->sink->failbacks);
}

// --- report ---------------------------------------------------------------------------------------------

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) SI_PRINTF(2, 3);
static void sb_put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if ((size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        size_t cap = b->cap * 2 + (size_t)k + 64;
        char *np = si_realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
}

static void sb_str(sbuf *b, const char *s) {
    sb_put(b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') sb_put(b, "\\%c", ch);
        else if (ch < 0x20) sb_put(b, "\\u%04x", ch);
        else sb_put(b, "%c", ch);
    }
    sb_put(b, "\"");
}

static const char *dname(const si_sink *s, int d) { return d >= 0 && d < s->n_devices ? s->device_names[d] : ""; }

si_result si_compiled_report_json(const si_compiled *c, char **json) {
    if (!c || !json) return si_err(SI_ERR_INVALID_ARG, "si_compiled_report_json: NULL argument");
    *json = NULL;
    si_sink *s = c->sink;
    sbuf b = {.p = si_malloc(4096), .cap = 4096};
    if (!b.p) return si_err(SI_ERR_NO_MEM, "out of memory");
    b.p[0] = 0;
    sb_put(&b, "{\"devices\":[");
    for (int i = 0; i < s->n_devices; i++) {
        if (i) sb_put(&b, ",");
        sb_str(&b, s->device_names[i]);
    }
    sb_put(&b, "],\n\"submodels\":[");
    /* the submodels' current devices first: a fail-safe model takes its own lock, then the sink's, so the
     * sink's lock must not be held while asking it */
    int *active_dev = si_calloc((size_t)c->part->n + 1, sizeof(int));
    if (!active_dev) { si_free(b.p); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    for (int k = 0; k < c->part->n; k++)
        active_dev[k] = si_failsafe_is(c->sub_cms[k]) ? si_failsafe_active_device(c->sub_cms[k]) : c->part->subs[k].device;
    pthread_mutex_lock(&s->mu);
    for (int k = 0; k < c->part->n; k++) {
        const si_submodel *sm = &c->part->subs[k];
        int active = active_dev[k];
        sb_put(&b, "%s\n {\"id\":%d,\"ops\":[", k ? "," : "", k);
        for (int i = 0; i < sm->g->n_nodes; i++) {
            if (i) sb_put(&b, ",");
            sb_str(&b, sm->g->nodes[i].op_type);
        }
        sb_put(&b, "],\"device\":");
        sb_str(&b, dname(s, active));
        sb_put(&b, ",\"attempts\":[");
        int first = 1;
        for (int i = 0; i < s->n_attempts; i++) {
            const si_attempt *a = &s->attempts[i];
            if (a->submodel != k) continue;
            sb_put(&b, "%s{\"device\":", first ? "" : ",");
            first = 0;
            sb_str(&b, dname(s, a->device));
            sb_put(&b, ",\"stage\":");
            sb_str(&b, a->stage);
            sb_put(&b, ",\"status\":");
            sb_str(&b, si_result_str(a->status));
            sb_put(&b, ",\"message\":");
            sb_str(&b, a->message);
            sb_put(&b, "}");
        }
        sb_put(&b, "]}");
    }
    sb_put(&b, "],\n\"events\":[");
    for (int i = 0; i < s->n_log; i++) {
        const si_logged_event *e = &s->log[i];
        sb_put(&b, "%s\n {\"t_ms\":%.3f,\"type\":", i ? "," : "", e->t_ms);
        sb_str(&b, si_event_type_name(e->type));
        sb_put(&b, ",\"submodel\":%d,\"from\":", e->submodel);
        sb_str(&b, dname(s, e->from));
        sb_put(&b, ",\"to\":");
        sb_str(&b, dname(s, e->to));
        sb_put(&b, ",\"stage\":");
        sb_str(&b, e->stage);
        sb_put(&b, ",\"status\":");
        sb_str(&b, si_result_str(e->status));
        sb_put(&b, ",\"message\":");
        sb_str(&b, e->message);
        sb_put(&b, "}");
    }
    pthread_mutex_unlock(&s->mu);
    si_free(active_dev);
    si_counters k;
    si_compiled_counters(c, &k);
    sb_put(&b, "],\n\"counters\":{\"inferences\":%lld,\"failovers\":%lld,\"retries\":%lld,\"failbacks\":%lld}}\n",
           (long long)k.inferences, (long long)k.failovers, (long long)k.retries, (long long)k.failbacks);
    if (b.oom) { si_free(b.p); return si_err(SI_ERR_NO_MEM, "out of memory writing the report"); }
    *json = b.p;
    return SI_OK;
}

// --- requests -----------------------------------------------------------------------------------------------

struct si_request {
    si_ireq *r;
    si_compiled *c;
};

si_result si_request_create(si_compiled *c, si_request **out) {
    if (!c || !out) return si_err(SI_ERR_INVALID_ARG, "si_request_create: compiled model or out is NULL");
    *out = NULL;
    si_request *rq = si_calloc(1, sizeof *rq);
    if (!rq) return si_err(SI_ERR_NO_MEM, "out of memory");
    rq->c = c;
    si_budget *prev = si_budget_enter(&c->budget);
    si_result s = c->cm->iface->create_request(c->cm, &rq->r);
    si_budget_leave(prev);
    if (s) { si_free(rq); return s; }
    *out = rq;
    return SI_OK;
}

void si_request_free(si_request *r) {
    if (!r) return;
    r->r->iface->free(r->r);
    si_free(r);
}

si_result si_request_set_input(si_request *r, int index, si_tensor *t) {
    if (!r || !t) return si_err(SI_ERR_INVALID_ARG, "si_request_set_input: request or tensor is NULL");
    return r->r->iface->set_input(r->r, index, t);
}

si_result si_request_infer(si_request *r) {
    if (!r) return si_err(SI_ERR_INVALID_ARG, "si_request_infer: request is NULL");
    atomic_fetch_add(&r->c->sink->inferences, 1);
    si_budget *prev = si_budget_enter(&r->c->budget); /* run-time buffers count against max_memory_mb too */
    si_result s = r->r->iface->infer(r->r);
    si_budget_leave(prev);
    return s;
}

si_result si_request_get_output(si_request *r, int index, si_tensor **out) {
    if (!r || !out) return si_err(SI_ERR_INVALID_ARG, "si_request_get_output: request or out is NULL");
    return r->r->iface->get_output(r->r, index, out);
}

// --- partition description (inspect --devices) ------------------------------------------------------------

static void sb_shape(sbuf *b, const si_val *v) {
    sb_put(b, "%s[", si_dtype_name(v->dtype));
    for (int d = 0; d < v->ndim; d++) {
        if (v->dims[d] >= 0) sb_put(b, d ? ",%lld" : "%lld", (long long)v->dims[d]);
        else sb_put(b, d ? ",?" : "?");
    }
    sb_put(b, v->ndim < 0 ? "?]" : "]");
}

si_result si_model_partition_text(const si_model *m, const si_config *cfg, char **text) {
    if (!m || !text) return si_err(SI_ERR_INVALID_ARG, "si_model_partition_text: NULL argument");
    *text = NULL;
    device_set ds;
    memset(&ds, 0, sizeof ds);
    char names[MAX_DEVICES][64];
    const char *devs = cfg ? si_config_get(cfg, "devices") : NULL;
    si_result st = parse_devices(devs ? devs : "REF", &ds, names);
    if (st) return st;
    si_graph *g = NULL;
    si_partition *p = NULL;
    si_budget budget;
    si_budget_init(&budget, cfg_budget(cfg));
    si_budget *prev = si_budget_enter(&budget);
    if ((st = si_graph_clone(m->g, &g)) || (st = si_graph_infer_shapes(g, SI_FOLD_AT_COMPILE)) ||
        (st = si_partition_graph(g, ds.devs, ds.n, &p))) {
        si_graph_free(g);
        si_budget_leave(prev);
        si_budget_destroy(&budget);
        return st;
    }
    si_budget_leave(prev);
    sbuf b = {.p = si_malloc(4096), .cap = 4096};
    if (!b.p) { si_partition_free(p); si_graph_free(g); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    b.p[0] = 0;
    sb_put(&b, "partition over %s: %d submodel%s\n", devs ? devs : "REF", p->n, p->n == 1 ? "" : "s");
    for (int s = 0; s < p->n; s++) {
        const si_submodel *sm = &p->subs[s];
        sb_put(&b, "  submodel %d on %s", s, names[sm->device]);
        int nf = 0;
        for (int d = sm->device + 1; d < ds.n; d++)
            if (sm->capable & (1ull << d)) sb_put(&b, nf++ ? ",%s" : " (fallback: %s", names[d]);
        sb_put(&b, "%s: %d node%s:", nf ? ")" : "", sm->n_nodes, sm->n_nodes == 1 ? "" : "s");
        /* op histogram in first-seen order */
        for (int i = 0; i < sm->g->n_nodes; i++) {
            const char *op = sm->g->nodes[i].op_type;
            bool seen = false;
            for (int j = 0; j < i && !seen; j++) seen = !strcmp(sm->g->nodes[j].op_type, op);
            if (seen) continue;
            int cnt = 0;
            for (int j = i; j < sm->g->n_nodes; j++) cnt += !strcmp(sm->g->nodes[j].op_type, op);
            sb_put(&b, " %s", op);
            if (cnt > 1) sb_put(&b, " x%d", cnt);
        }
        sb_put(&b, "\n");
        for (int k = 0; k < sm->g->n_inputs; k++) {
            const si_val *v = &g->values[sm->in_values[k]];
            int from, port;
            sub_out(p, sm->in_values[k], &from, &port);
            sb_put(&b, "    in  %s ", v->name);
            sb_shape(&b, v);
            if (from >= 0) sb_put(&b, " <- submodel %d\n", from);
            else sb_put(&b, " <- model input\n");
        }
        for (int k = 0; k < sm->g->n_outputs; k++) {
            const si_val *v = &g->values[sm->out_values[k]];
            sb_put(&b, "    out %s ", v->name);
            sb_shape(&b, v);
            int users = 0;
            for (int t = s + 1; t < p->n; t++)
                for (int q = 0; q < p->subs[t].g->n_inputs; q++)
                    if (p->subs[t].in_values[q] == sm->out_values[k]) sb_put(&b, users++ ? ",%d" : " -> submodel %d", t);
            sb_put(&b, "%s\n", v->is_output ? (users ? ", model output" : " -> model output") : "");
        }
        if (sm->why && sm->why[0]) sb_put(&b, "    not on earlier devices: %s\n", sm->why);
    }
    si_partition_free(p);
    si_graph_free(g);
    si_budget_destroy(&budget);
    if (b.oom) { si_free(b.p); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    *text = b.p;
    return SI_OK;
}
