/*
 * partition_text.c — how a model would be cut for a device list, without compiling it: as text for people
 * (si_model_partition_text, `inspect --devices`) and as JSON for programs (si_model_partition_json, which
 * `inspect --dot` draws).
 */
#include "api/compiled.h"
#include "ops/ops.h"
#include "partition/aux.h"

/* The model cut for the config's devices: the device set, the graph with shapes inferred, the partition. */
typedef struct plan {
    const char *devs; /* the list as configured ("AUTO" included) */
    device_set *ds;
    si_graph *g;
    si_partition *p;
    si_folding fold;                     /* the repeated blocks folded (fold=on) */
    si_partition *fp[SI_FOLD_MAX_FUNCS]; /* each function body cut for the same devices */
} plan;

static void plan_free(plan *pl) {
    for (int f = 0; f < pl->fold.n_funcs; f++) si_partition_free(pl->fp[f]);
    si_folding_free(&pl->fold);
    si_partition_free(pl->p);
    si_graph_free(pl->g);
    if (pl->ds) si_avoid_free(pl->ds->avoid);
    si_free(pl->ds);
}

static si_result plan_make(const si_model *m, const si_config *cfg, plan *pl) {
    memset(pl, 0, sizeof *pl);
    pl->devs = si_config_devices(cfg);
    if (!(pl->ds = si_calloc(1, sizeof *pl->ds))) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_result st;
    si_cfg_values cv;
    if ((st = si_cfg_fill(cfg, &cv))) { plan_free(pl); return st; }
    /* the graph stage under max_memory_mb, as in si_compile (the budget ends here: what it charged is forgotten) */
    si_budget budget;
    si_budget_init(&budget, (int64_t)cv.max_memory_mb << 20);
    si_budget *prev = si_budget_enter(&budget);
    if ((st = si_devices_parse(pl->devs, pl->ds)) || (st = si_avoid_parse(cfg ? si_config_get(cfg, "avoid") : NULL, &pl->ds->avoid)) ||
        (st = si_graph_clone(m->g, &pl->g)) ||
        (st = si_graph_infer_shapes(pl->g, SI_FOLD_AT_COMPILE)) || (st = si_graph_fold_ifs(pl->g, SI_FOLD_AT_COMPILE, NULL)) ||
        (cv.fold && (st = si_graph_fold_blocks(pl->g, !cv.moe_experts, &pl->fold))) ||
        (st = si_partition_graph_aux(pl->g, pl->ds->devs, pl->ds->n, pl->ds->avoid, cv.hfa_tile, cv.moe_experts, &pl->p)))
        plan_free(pl);
    for (int f = 0; !st && f < pl->fold.n_funcs; f++)
        if ((st = si_partition_graph_aux(pl->fold.funcs[f].body, pl->ds->devs, pl->ds->n, pl->ds->avoid, cv.hfa_tile, cv.moe_experts, &pl->fp[f])))
            plan_free(pl);
    si_budget_leave(prev);
    si_budget_destroy(&budget);
    return st;
}

static void sb_shape(sbuf *b, const si_val *v) {
    sb_put(b, "%s[", si_dtype_name(v->dtype));
    for (int d = 0; d < v->ndim; d++) {
        if (v->dims[d] >= 0) sb_put(b, d ? ",%lld" : "%lld", (long long)v->dims[d]);
        else sb_put(b, d ? ",?" : "?");
    }
    sb_put(b, v->ndim < 0 ? "?]" : "]");
}

/* Both renderings: the arguments checked (fn names the call), the plan made, body writing it into a buffer that
 * becomes *out. */
static si_result render(const si_model *m, const si_config *cfg, char **out, const char *fn, void (*body)(const plan *pl, sbuf *b)) {
    if (!m || !out) return si_err(SI_ERR_INVALID_ARG, "%s: NULL argument", fn);
    *out = NULL;
    plan pl;
    si_result st = plan_make(m, cfg, &pl);
    if (st) return st;
    sbuf b = {.p = si_malloc(4096), .cap = 4096};
    if (!b.p) { plan_free(&pl); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    b.p[0] = 0;
    body(&pl, &b);
    plan_free(&pl);
    if (b.oom) { si_free(b.p); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    *out = b.p;
    return SI_OK;
}

/* " Op xN" per op type of g, in first-seen order. */
static void sb_ops(sbuf *b, const si_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const char *op = g->nodes[i].op_type;
        bool seen = false;
        for (int j = 0; j < i && !seen; j++) seen = !strcmp(g->nodes[j].op_type, op);
        if (seen) continue;
        int cnt = 0;
        for (int j = i; j < g->n_nodes; j++) cnt += !strcmp(g->nodes[j].op_type, op);
        sb_put(b, " %s", op);
        if (cnt > 1) sb_put(b, " x%d", cnt);
    }
}

/* What runs an auxiliary unit. */
static const char *aux_label(const si_submodel *sm) {
    return sm->aux == SI_AUX_HFA ? "host flash attention over tile models" : sm->aux == SI_AUX_MOE ? "one model per expert" : "";
}

/* The function a host submodel calls, or -1. */
static int called(const si_submodel *sm) {
    return sm->host && si_node_is(&sm->g->nodes[0], SI_OP_CALL) ? (int)si_attr_int(&sm->g->nodes[0], "function", -1) : -1;
}

static void text_body(const plan *pl, sbuf *b) {
    const si_partition *p = pl->p;
    const si_graph *g = pl->g;
    char (*names)[64] = pl->ds->names;
    bool is_auto = strstr(pl->devs, "AUTO") != NULL;
    sb_put(b, "partition over %s", pl->devs);
    if (is_auto) /* what AUTO stood for here */
        for (int d = 0; d < pl->ds->n; d++) sb_put(b, d ? ",%s" : " (%s", names[d]);
    sb_put(b, "%s: %d submodel%s\n", is_auto ? ")" : "", p->n, p->n == 1 ? "" : "s");
    for (int s = 0; s < p->n; s++) {
        const si_submodel *sm = &p->subs[s];
        sb_put(b, "  submodel %d on %s", s, sm->host ? "host" : names[sm->device]);
        int nf = 0;
        for (int d = sm->device + 1; d < pl->ds->n; d++)
            if (sm->capable & (1ull << d)) sb_put(b, nf++ ? ",%s" : " (fallback: %s", names[d]);
        sb_put(b, "%s: %d node%s:", nf ? ")" : "", sm->n_nodes, sm->n_nodes == 1 ? "" : "s");
        sb_ops(b, sm->g);
        if (called(sm) >= 0) sb_put(b, " of function %d (%s)", called(sm), sm->g->nodes[0].name);
        if (sm->aux) sb_put(b, " (%s)", aux_label(sm));
        sb_put(b, "\n");
        for (int k = 0; k < sm->g->n_inputs; k++) {
            const si_val *v = &g->values[sm->in_values[k]];
            int from, port;
            si_sub_out(p, sm->in_values[k], &from, &port);
            sb_put(b, "    in  %s ", v->name);
            sb_shape(b, v);
            if (from >= 0) sb_put(b, " <- submodel %d\n", from);
            else sb_put(b, " <- model input\n");
        }
        for (int k = 0; k < sm->g->n_outputs; k++) {
            const si_val *v = &g->values[sm->out_values[k]];
            sb_put(b, "    out %s ", v->name);
            sb_shape(b, v);
            int users = 0;
            for (int t = s + 1; t < p->n; t++)
                for (int q = 0; q < p->subs[t].g->n_inputs; q++)
                    if (p->subs[t].in_values[q] == sm->out_values[k]) sb_put(b, users++ ? ",%d" : " -> submodel %d", t);
            sb_put(b, "%s\n", v->is_output ? (users ? ", model output" : " -> model output") : "");
        }
        if (sm->why && sm->why[0]) sb_put(b, "    not on earlier devices: %s\n", sm->why);
        for (int a = 0; sm->host && a < sm->g->nodes[0].n_attr; a++) { /* the branches or body: compiled like a model */
            const si_attr *at = &sm->g->nodes[0].attrs[a];
            if (at->type != SI_ATTR_GRAPH || !at->g) continue;
            sb_put(b, "    %s.%s: %d node%s, a scope of its own (partitioned and compiled like the model's graph)\n",
                   sm->g->nodes[0].name, at->name, at->g->n_nodes, at->g->n_nodes == 1 ? "" : "s");
        }
    }
    for (int f = 0; f < pl->fold.n_funcs; f++) { /* the bodies: compiled once, for every call */
        const si_fold_func *fn = &pl->fold.funcs[f];
        sb_put(b, "function %d: %d calls, %d nodes, compiled once (weights bound per call):", f, fn->calls, fn->nodes);
        sb_ops(b, fn->body);
        sb_put(b, "\n");
        for (int s = 0; s < pl->fp[f]->n; s++) {
            const si_submodel *sm = &pl->fp[f]->subs[s];
            sb_put(b, "  body submodel %d on %s: %d node%s:", s, sm->host ? "host" : names[sm->device], sm->n_nodes, sm->n_nodes == 1 ? "" : "s");
            sb_ops(b, sm->g);
            if (sm->aux) sb_put(b, " (%s)", aux_label(sm));
            sb_put(b, "\n");
            if (sm->why && sm->why[0]) sb_put(b, "    not on earlier devices: %s\n", sm->why);
        }
    }
}

si_result si_model_partition_text(const si_model *m, const si_config *cfg, char **text) {
    return render(m, cfg, text, "si_model_partition_text", text_body);
}

static void json_shape(sbuf *b, const si_val *v) {
    sb_put(b, "\"dtype\":\"%s\",\"shape\":", si_dtype_name(v->dtype));
    if (v->ndim < 0) { sb_put(b, "null"); return; }
    sb_put(b, "[");
    for (int d = 0; d < v->ndim; d++) sb_put(b, d ? ",%lld" : "%lld", (long long)(v->dims[d] >= 0 ? v->dims[d] : -1));
    sb_put(b, "]");
}

static void json_body(const plan *pl, sbuf *b) {
    const si_partition *p = pl->p;
    const si_graph *g = pl->g;
    char (*names)[64] = pl->ds->names;
    sb_put(b, "{\"config_devices\":");
    sb_str(b, pl->devs);
    sb_put(b, ",\"devices\":[");
    for (int d = 0; d < pl->ds->n; d++) {
        if (d) sb_put(b, ",");
        sb_str(b, names[d]);
    }
    sb_put(b, "],\n\"inputs\":[");
    for (int i = 0; i < g->n_inputs; i++) {
        sb_put(b, "%s{\"name\":", i ? "," : "");
        sb_str(b, g->values[g->inputs[i]].name);
        sb_put(b, ",");
        json_shape(b, &g->values[g->inputs[i]]);
        sb_put(b, "}");
    }
    sb_put(b, "],\n\"outputs\":[");
    for (int i = 0; i < g->n_outputs; i++) {
        int from, port;
        si_sub_out(p, g->outputs[i], &from, &port);
        sb_put(b, "%s{\"name\":", i ? "," : "");
        sb_str(b, g->values[g->outputs[i]].name);
        sb_put(b, ",");
        json_shape(b, &g->values[g->outputs[i]]);
        sb_put(b, ",\"from\":%d}", from);
    }
    sb_put(b, "],\n\"submodels\":[");
    for (int s = 0; s < p->n; s++) {
        const si_submodel *sm = &p->subs[s];
        sb_put(b, "%s\n {\"id\":%d,\"device\":", s ? "," : "", s);
        sb_str(b, sm->host ? "host" : names[sm->device]);
        sb_put(b, ",\"fallbacks\":[");
        int nf = 0;
        for (int d = sm->device + 1; d < pl->ds->n; d++)
            if (sm->capable & (1ull << d)) {
                if (nf++) sb_put(b, ",");
                sb_str(b, names[d]);
            }
        sb_put(b, "],\"ops\":[");
        for (int i = 0; i < sm->g->n_nodes; i++) {
            if (i) sb_put(b, ",");
            sb_str(b, sm->g->nodes[i].op_type);
        }
        sb_put(b, "],\"why\":");
        sb_str(b, sm->why ? sm->why : "");
        if (called(sm) >= 0) sb_put(b, ",\"function\":%d", called(sm));
        sb_put(b, ",\n  \"inputs\":[");
        for (int k = 0; k < sm->g->n_inputs; k++) {
            const si_val *v = &g->values[sm->in_values[k]];
            int from, port;
            si_sub_out(p, sm->in_values[k], &from, &port);
            sb_put(b, "%s{\"name\":", k ? "," : "");
            sb_str(b, v->name);
            sb_put(b, ",");
            json_shape(b, v);
            sb_put(b, ",\"from\":%d}", from);
        }
        sb_put(b, "],\n  \"outputs\":[");
        for (int k = 0; k < sm->g->n_outputs; k++) {
            const si_val *v = &g->values[sm->out_values[k]];
            sb_put(b, "%s{\"name\":", k ? "," : "");
            sb_str(b, v->name);
            sb_put(b, ",");
            json_shape(b, v);
            sb_put(b, ",\"to\":[");
            int users = 0;
            for (int t = s + 1; t < p->n; t++)
                for (int q = 0; q < p->subs[t].g->n_inputs; q++)
                    if (p->subs[t].in_values[q] == sm->out_values[k]) sb_put(b, users++ ? ",%d" : "%d", t);
            sb_put(b, "],\"model_output\":%s}", v->is_output ? "true" : "false");
        }
        sb_put(b, "]}");
    }
    sb_put(b, "],\n\"functions\":[");
    for (int f = 0; f < pl->fold.n_funcs; f++) {
        sb_put(b, "%s\n {\"id\":%d,\"calls\":%d,\"ops\":%d,\"devices\":[", f ? "," : "", f, pl->fold.funcs[f].calls,
               pl->fold.funcs[f].nodes);
        for (int s = 0; s < pl->fp[f]->n; s++) {
            if (s) sb_put(b, ",");
            sb_str(b, pl->fp[f]->subs[s].host ? "host" : names[pl->fp[f]->subs[s].device]);
        }
        sb_put(b, "]}");
    }
    sb_put(b, "]}\n");
}

si_result si_model_partition_json(const si_model *m, const si_config *cfg, char **json) {
    return render(m, cfg, json, "si_model_partition_json", json_body);
}
