/*
 * report.c — the compiled model's report as JSON (si_compiled_report_json) and its counters.
 */
#include "api/compiled.h"
#include "failsafe/failsafe.h"
#include "ops/ops.h"

#include <pthread.h>

static const char *dname(const si_sink *s, int d) { return d >= 0 && d < s->n_devices ? s->device_names[d] : ""; }

/* One submodel's entry: its ops, the device it is on now ("host" for control flow), its compile attempts. */
static void put_submodel(sbuf *b, const si_sink *s, const si_submodel *sm, int id, int k, int active) {
    sb_put(b, "%s\n {\"id\":%d,\"ops\":[", k ? "," : "", id);
    for (int i = 0; i < sm->g->n_nodes; i++) {
        if (i) sb_put(b, ",");
        sb_str(b, sm->g->nodes[i].op_type);
    }
    sb_put(b, "],\"device\":");
    sb_str(b, sm->host ? "host" : dname(s, active));
    if (sm->host && si_node_is(&sm->g->nodes[0], SI_OP_CALL)) sb_put(b, ",\"function\":%lld", (long long)si_attr_int(&sm->g->nodes[0], "function", -1));
    sb_put(b, ",\"attempts\":[");
    int first = 1;
    for (int i = 0; i < s->n_attempts; i++) {
        const si_attempt *a = &s->attempts[i];
        if (a->submodel != id) continue;
        sb_put(b, "%s{\"device\":", first ? "" : ",");
        first = 0;
        sb_str(b, dname(s, a->device));
        sb_put(b, ",\"stage\":");
        sb_str(b, a->stage);
        sb_put(b, ",\"status\":");
        sb_str(b, si_result_str(a->status));
        sb_put(b, ",\"message\":");
        sb_str(b, a->message);
        sb_put(b, "}");
    }
    sb_put(b, "]}");
}

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
    int *active_dev = si_calloc((size_t)c->n_subs + 1, sizeof(int));
    if (!active_dev) { si_free(b.p); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    for (int i = 0; i < c->n_scopes; i++) {
        const si_scope *sc = c->scopes[i];
        for (int k = 0; sc->part && k < sc->part->n; k++)
            active_dev[sc->base + k] = sc->sub_cms[k] && si_failsafe_is(sc->sub_cms[k]) ? si_failsafe_active_device(sc->sub_cms[k])
                                                                                       : sc->part->subs[k].device;
    }
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < c->n_scopes; i++) {
        const si_scope *sc = c->scopes[i];
        if (i == 1) sb_put(&b, "],\n\"subgraphs\":[");
        if (i) {
            sb_put(&b, "%s\n {\"scope\":", i > 1 ? "," : "");
            sb_str(&b, sc->path);
            sb_put(&b, ",\"submodels\":[");
        }
        for (int k = 0; sc->part && k < sc->part->n; k++)
            put_submodel(&b, s, &sc->part->subs[k], sc->base + k, k, active_dev[sc->base + k]);
        if (i) sb_put(&b, "]}");
    }
    sb_put(&b, "],\n\"functions\":[");
    for (int i = 0, first = 1; i < c->n_scopes; i++) { /* folded blocks: one body each, compiled as a scope */
        const si_scope *sc = c->scopes[i];
        for (int f = 0; f < sc->fold.n_funcs; f++) {
            const si_fold_func *fn = &sc->fold.funcs[f];
            sb_put(&b, "%s\n {\"id\":%d,\"calls\":%d,\"ops\":%d,\"device\":", first ? "" : ",", f, fn->calls, fn->nodes);
            sb_str(&b, sc->fns[f] ? c->scopes[sc->fn_scope[f]]->devices : "");
            sb_put(&b, ",\"scope\":");
            sb_str(&b, sc->fns[f] ? c->scopes[sc->fn_scope[f]]->path : "");
            sb_put(&b, "}");
            first = 0;
        }
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


const char *si_event_type_str(si_event_type t) { return si_event_type_name(t); }
