/*
 * compile.c — si_compile: the one place where the layers are put together.
 *
 *   model graph --(shape inference, folding, Ifs on known conditions folded away)--> partition by device
 *   capability --> per submodel: the device's own compiled model (one candidate device) or a fail-safe compiled
 *   model over its candidate devices, built through a factory; per control-flow node (a host submodel): the
 *   executor core's control step over its branches or body, each compiled by this same path, recursively
 *   (compile_cf.c) --> the executor core runs the submodels in order (skipped when there is one submodel whose
 *   ports are the model's).
 *
 * Each graph compiled (the model's, and every branch and body) is a scope of the compiled model (si_scope):
 * its partition and factory contexts live until the compiled model goes, and its submodels take ids after
 * the earlier scopes' for events and the report.
 *
 * Fault injection wraps the devices that the fault spec names (config "faults" or $SAFEINFER_FAULTS) before
 * anything is compiled, so the layers above see ordinary devices that happen to fail. A device named in
 * "isolate" becomes a proxy for the same device in a helper process (device/isolate/), which applies the
 * fault spec's rules for it there: to the layers above it is an ordinary device too.
 *
 * The report is in report.c, the request wrappers in request.c and the partition descriptions (inspect)
 * in partition_text.c.
 */
#include "api/compiled.h"
#include "device/isolate/isolate.h"
#include "exec/exec.h"
#include "failsafe/failsafe.h"
#include "ops/ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void device_set_free(void *arg) {
    device_set *ds = arg;
    for (int i = 0; i < ds->n; i++) {
        si_faulty_free(ds->wrappers[i]);
        si_isolate_free(ds->proxies[i]); /* stops and reaps its helper process */
    }
    si_fault_spec_free(ds->faults);
    si_avoid_free(ds->avoid);
    si_free(ds);
}

static si_result factory(void *user, int device, si_cmodel **out) {
    factory_ctx *f = user;
    si_device *d = f->c->ds->devs[device];
    /* every device compile (first, failover, standby, failback; on whatever thread) charges the budget */
    si_budget *prev = si_budget_enter(&f->c->budget);
    si_result s = f->aux ? si_aux_compile(d, f->g, &f->c->cctx, out) : d->iface->compile(d, f->g, &f->c->cctx, out);
    si_budget_leave(prev);
    return s;
}

void si_port_of(si_port *p, const si_val *v) {
    *p = (si_port){.name = v->name, .dtype = v->dtype, .ndim = v->ndim};
    memcpy(p->dims, v->dims, sizeof v->dims);
}

void si_sub_out(const si_partition *p, int value, int *sub, int *port) {
    *sub = -1;
    for (int s = 0; s < p->n; s++)
        for (int k = 0; k < p->subs[s].g->n_outputs; k++)
            if (p->subs[s].out_values[k] == value) { *sub = s; *port = k; }
}

/* The executor core's wiring: where each submodel input and each graph output comes from. */
static si_result build_exec(si_scope *sc, si_cmodel **subs, si_cmodel **out) {
    si_partition *p = sc->part;
    const si_graph *g = sc->g;
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
            si_sub_out(p, v, &from, &port);
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
    for (int i = 0; !st && i < g->n_inputs; i++) si_port_of(&in_ports[i], &g->values[g->inputs[i]]);
    for (int k = 0; !st && k < g->n_outputs; k++) {
        int v = g->outputs[k], from, port = 0;
        const si_val *val = &g->values[v];
        si_port_of(&out_ports[k], val);
        si_sub_out(p, v, &from, &port);
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
                          .label = sc->devices};
        st = si_exec_create(&d, out);
    } else {
        for (int s = 0; s < p->n; s++) subs[s]->iface->free(subs[s]);
    }
    for (int s = 0; sub_inputs && s < p->n; s++) si_free(sub_inputs[s]);
    SI_FREE_ALL(sub_inputs, out_src, in_ports, out_ports);
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

static void scope_free(si_scope *sc) {
    if (!sc) return;
    for (int f = 0; f < SI_FOLD_MAX_FUNCS; f++) si_fn_unref(sc->fns[f]);
    si_folding_free(&sc->fold);
    si_partition_free(sc->part);
    si_graph_free(sc->g);
    SI_FREE_ALL(sc->fctx, sc->sub_cms, sc->path);
    si_free(sc);
}

/* The sink's cleanup: nothing can call into a device any more. */
static void compiled_release(void *arg) {
    si_compiled *c = arg;
    for (int i = 0; i < c->n_scopes; i++) scope_free(c->scopes[i]);
    si_free(c->scopes);
    si_shared_consts_free(c->consts); /* after every compiled model of c is gone */
    for (int i = 0; i < 2 * CFG_MAX; i++) si_free(c->kv_store[i]);
    if (c->ds) device_set_free(c->ds);
    si_prof_free(c->prof);
    si_budget_destroy(&c->budget); /* nothing charges it any more; blocks still charged are forgotten */
    si_free(c);
}

void si_compiled_free(si_compiled *c) {
    if (!c) return;
    if (c->cm) c->cm->iface->free(c->cm); /* stops background work; nothing here waits for a device call */
    c->cm = NULL;
    for (int i = 0; i < c->n_scopes; i++) /* function bodies: the calls that shared them are gone */
        for (int f = 0; f < SI_FOLD_MAX_FUNCS; f++) {
            si_fn_unref(c->scopes[i]->fns[f]);
            c->scopes[i]->fns[f] = NULL;
        }
    if (!c->sink) { /* failed before the sink existed: nothing else holds c */
        compiled_release(c);
        return;
    }
    si_sink_close(c->sink); /* no event reaches the user's callback after this */
    if (c->ds) /* wake calls hanging in injected faults now, so that they finish and let go soon */
        for (int i = 0; i < c->ds->n; i++) {
            if (c->ds->wrappers[i]) si_faulty_release_hangs(c->ds->wrappers[i]);
            if (c->ds->proxies[i]) si_isolate_abort_calls(c->ds->proxies[i]); /* likewise: kill a helper still busy */
        }
    si_sink_unref(c->sink); /* the last reference (this one, or the last call still running) frees c */
}

/* Compiling one submodel: its own device's compiled model when it has one candidate, else a fail-safe one. */
typedef struct sub_job {
    si_compiled *c;
    factory_ctx *fc;
    int sub; /* its id (in events) */
    int cand[SI_MAX_DEVICES], nc;
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
        j->st = factory(j->fc, j->cand[0], &j->cm);
        si_sink_attempt(c->sink, j->sub, j->cand[0], "compile", j->st, j->st ? si_last_error() : "ok");
        si_sink_event(c->sink, SI_EVENT_COMPILE, j->sub, -1, j->cand[0], "compile", j->st, "%s", j->st ? si_last_error() : "ok");
        if (j->st) si_err_wrap(j->st, "submodel %d on %s", j->sub, j->names[j->cand[0]]);
    } else {
        const si_graph *g = j->fc->g;
        bool *in_param = si_calloc((size_t)g->n_inputs + 1, sizeof(bool)); /* a function body's weights */
        for (int i = 0; in_param && i < g->n_inputs; i++) in_param[i] = g->values[g->inputs[i]].is_param;
        si_failsafe_desc fd = {.submodel = j->sub, .n_candidates = j->nc, .candidates = j->cand, .factory = factory,
                               .user = j->fc, .policy = j->pol, .sink = c->sink, .device_desc = j->desc,
                               .n_in_param = in_param ? g->n_inputs : 0, .in_param = in_param};
        j->st = in_param ? si_failsafe_create(&fd, &j->cm) : si_err(SI_ERR_NO_MEM, "out of memory");
        si_free(in_param);
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

_Static_assert(SI_MAX_DEVICES <= SI_SINK_MAX_DEVICES, "the event sink's tables hold every device of a list");

si_result si_compile(const si_model *m, const si_config *cfg, si_compiled **out) {
    if (!m || !out) return si_err(SI_ERR_INVALID_ARG, "si_compile: model or out is NULL");
    *out = NULL;
    si_compiled *c = si_calloc(1, sizeof *c);
    if (!c || !(c->ds = si_calloc(1, sizeof(device_set)))) { si_free(c); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    si_budget_init(&c->budget, 0);
    si_budget *prev_budget = si_budget_enter(&c->budget);
    si_result st;
    si_graph *g = NULL;
    si_cfg_values cv;
    if ((st = si_cfg_fill(cfg, &cv))) goto fail;
    c->ds->isolate = cfg ? si_config_get(cfg, "isolate") : NULL; /* these are not looked up here */
    si_budget_init(&c->budget, (int64_t)cv.max_memory_mb << 20); /* max_memory_mb: charged from here on */
    if ((st = si_devices_parse(si_config_devices(cfg), c->ds))) goto fail;
    if ((st = si_avoid_parse(cfg ? si_config_get(cfg, "avoid") : NULL, &c->ds->avoid))) goto fail;
    char (*names)[64] = c->ds->names;
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
    if ((st = si_shared_consts_new(&c->consts))) goto fail;
    const char *mm = si_options_get(&c->opts, "max_memory_mb");
    c->cctx = (si_compile_ctx){.opts = &c->opts, .consts = c->consts, .max_memory_mb = mm ? strtoll(mm, NULL, 10) : 0};
    /* profile=on: the devices time their steps (they read the option) and the requests add them here */
    const char *prof = cfg ? si_config_get(cfg, "profile") : NULL;
    if (prof && parse_onoff(prof) == 1 && (st = si_prof_create(&c->prof))) goto fail;
    /* fault injection */
    const char *spec = cfg ? si_config_get(cfg, "faults") : NULL;
    if (!spec) spec = getenv("SAFEINFER_FAULTS");
    if (spec && *spec) {
        if ((st = si_fault_spec_parse(spec, &c->ds->faults))) goto fail;
        for (int i = 0; i < c->ds->n; i++)
            if (!c->ds->isolated[i] && si_fault_spec_mentions(c->ds->faults, names[i])) {
                if ((st = si_faulty_wrap(c->ds->devs[i], c->ds->faults, &c->ds->wrappers[i]))) goto fail;
                c->ds->devs[i] = c->ds->wrappers[i];
            }
    }
    /* isolated devices: a proxy each, its helper process started now (the faults for it apply there) */
    for (int i = 0; i < c->ds->n; i++)
        if (c->ds->isolated[i]) {
            if ((st = si_isolate_create(names[i], spec, &c->ds->proxies[i]))) goto fail;
            c->ds->devs[i] = c->ds->proxies[i];
        }
    const char *name_ptrs[SI_MAX_DEVICES];
    for (int i = 0; i < c->ds->n; i++) name_ptrs[i] = names[i];
    if ((st = si_sink_create(name_ptrs, c->ds->n, cfg ? cfg->fn : NULL, cfg ? cfg->user : NULL, &c->sink))) goto fail;
    c->sink->cleanup = compiled_release;
    c->sink->cleanup_arg = c;
    c->policy = cv.policy;
    const char *acc = cfg ? si_config_get(cfg, "accuracy_check") : NULL;
    if (acc && *acc) {
        char canon[64];
        if ((st = si_device_name_check(acc, canon, sizeof canon))) goto fail;
        for (int i = 0; i < c->ds->n; i++)
            if (!strcmp(names[i], canon)) c->policy.acc_device = i, c->policy.acc_check = true;
        if (!c->policy.acc_check) {
            st = si_err(SI_ERR_INVALID_ARG, "accuracy_check: %s is not in the device list (%s)", acc, si_config_devices(cfg));
            goto fail;
        }
    }
    c->strict = cv.strict;
    c->loop_max_iterations = cv.loop_max_iterations;
    /* an isolated device gets its inputs copied through shared memory per inference: the weights of every call too,
     * so folding is off there unless asked for */
    c->fold = cv.fold && !(c->ds->isolate && *c->ds->isolate && !si_config_get(cfg, "fold"));
    c->hfa_tile = cv.hfa_tile;
    c->moe_experts = cv.moe_experts;
    /* the graph: shapes, then everything else per scope */
    if ((st = si_graph_clone(m->g, &g))) goto fail;
    if ((st = si_graph_infer_shapes(g, SI_FOLD_AT_COMPILE))) goto fail;
    st = si_compile_graph(c, "", g, &c->cm);
    g = NULL; /* taken */
    if (st) goto fail;
    snprintf(c->devices, sizeof c->devices, "%s", c->scopes[0]->devices);
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

static si_result add_scope(si_compiled *c, si_scope *sc) {
    if (c->n_scopes == c->cap_scopes) {
        int cap = c->cap_scopes ? c->cap_scopes * 2 : 4;
        si_scope **ns = si_realloc(c->scopes, sizeof(si_scope *) * (size_t)cap);
        if (!ns) return si_err(SI_ERR_NO_MEM, "out of memory");
        c->scopes = ns;
        c->cap_scopes = cap;
    }
    c->scopes[c->n_scopes++] = sc;
    return SI_OK;
}

static si_result compile_scope(si_compiled *c, si_scope *sc, si_cmodel **out);

si_result si_compile_graph(si_compiled *c, const char *path, si_graph *g, si_cmodel **out) {
    *out = NULL;
    si_scope *sc = si_calloc(1, sizeof *sc);
    if (!sc || !(sc->path = si_strdup(path)) || add_scope(c, sc)) {
        if (sc) si_free(sc->path);
        si_free(sc);
        si_graph_free(g);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    sc->g = g;
    si_result st = compile_scope(c, sc, out);
    /* what runs needs the partition's graphs only: the whole graph (and constants only it holds, folded
     * intermediates) goes now */
    si_graph_free(sc->g);
    sc->g = NULL;
    return st;
}

static si_result compile_scope(si_compiled *c, si_scope *sc, si_cmodel **out) {
    si_graph *g = sc->g;
    const char *path = sc->path;
    si_result st = si_graph_fold_ifs(g, SI_FOLD_AT_COMPILE, NULL);
    /* the model's graph (bodies are not folded again); MoE experts as auxiliary models want their weights constant */
    if (!st && c->fold && !*path) st = si_graph_fold_blocks(g, !c->moe_experts, &sc->fold);
    if (st) return *path ? si_err_wrap(st, "%s", path) : st;
    if ((st = si_partition_graph_aux(g, c->ds->devs, c->ds->n, c->ds->avoid, c->hfa_tile, c->moe_experts, &sc->part)))
        return *path ? si_err_wrap(st, "%s", path) : st;
    si_partition *p = sc->part;
    char (*names)[64] = c->ds->names;
    sc->base = c->n_subs;
    c->n_subs += p->n;
    sc->fctx = si_calloc((size_t)p->n + 1, sizeof(factory_ctx));
    sc->sub_cms = si_calloc((size_t)p->n + 1, sizeof(si_cmodel *));
    si_cmodel **subs = si_calloc((size_t)p->n + 1, sizeof(si_cmodel *));
    /* one job per device submodel; several compile in parallel (devices compile thread-safely) */
    sub_job *jobs = si_calloc((size_t)p->n + 1, sizeof(sub_job));
    int *job_sub = si_calloc((size_t)p->n + 1, sizeof(int));
    if (!sc->fctx || !sc->sub_cms || !subs || !jobs || !job_sub) {
        si_free(subs);
        si_free(jobs);
        si_free(job_sub);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    int nj = 0;
    size_t dl = 0;
    for (int s = 0; s < p->n; s++) {
        si_submodel *sm = &p->subs[s];
        sc->fctx[s] = (factory_ctx){.c = c, .g = sm->g, .aux = sm->aux};
        const char *desc = "host";
        if (!sm->host) {
            sub_job *j = &jobs[nj];
            job_sub[nj++] = s;
            *j = (sub_job){.c = c, .fc = &sc->fctx[s], .sub = sc->base + s, .pol = c->policy, .names = names};
            j->cand[j->nc++] = sm->device;
            for (int d = sm->device + 1; d < c->ds->n && !c->strict; d++)
                if (sm->capable & (1ull << d)) j->cand[j->nc++] = d;
            size_t o = 0;
            for (int i = 0; i < j->nc && o < sizeof j->desc; i++)
                o += (size_t)snprintf(j->desc + o, sizeof j->desc - o, i ? ">%s" : "%s", names[j->cand[i]]);
            desc = j->desc;
        }
        if (dl < sizeof sc->devices) dl += (size_t)snprintf(sc->devices + dl, sizeof sc->devices - dl, s ? ",%s" : "%s", desc);
    }
    compile_all(jobs, nj);
    st = SI_OK;
    for (int i = 0; i < nj; i++) {
        subs[job_sub[i]] = jobs[i].cm;
        if (jobs[i].st && !st) {
            st = jobs[i].st;
            si_err(st, "%s%s%s", path, *path ? ": " : "", jobs[i].msg);
        }
    }
    si_free(jobs);
    si_free(job_sub);
    /* control flow: each node's branches or body, compiled here in turn (recursively) */
    for (int s = 0; !st && s < p->n; s++)
        if (p->subs[s].host)
            st = si_node_is(&p->subs[s].g->nodes[0], SI_OP_CALL) ? si_compile_call(c, sc, s, &subs[s]) : si_compile_control(c, sc, s, &subs[s]);
    if (!st) {
        memcpy(sc->sub_cms, subs, sizeof(si_cmodel *) * (size_t)p->n);
        if (is_whole_model(p, g)) *out = subs[0];
        else st = build_exec(sc, subs, out); /* frees the submodels on failure */
    } else {
        for (int s = 0; s < p->n; s++)
            if (subs[s]) subs[s]->iface->free(subs[s]);
    }
    if (st) memset(sc->sub_cms, 0, sizeof(si_cmodel *) * (size_t)p->n);
    si_free(subs);
    return st;
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

si_result si_compiled_profile_json(const si_compiled *c, char **json) {
    if (!c || !json) return si_err(SI_ERR_INVALID_ARG, "si_compiled_profile_json: NULL argument");
    *json = NULL;
    if (!c->prof) return si_err(SI_ERR_INVALID_ARG, "si_compiled_profile_json: the model was compiled without profile=on");
    return si_prof_json(c->prof, json);
}

void si_compiled_counters(const si_compiled *c, si_counters *out) {
    memset(out, 0, sizeof *out);
    if (!c) return;
    out->inferences = atomic_load(&c->sink->inferences);
    out->failovers = atomic_load(&c->sink->failovers);
    out->retries = atomic_load(&c->sink->retries);
    out->failbacks = atomic_load(&c->sink->failbacks);
}

