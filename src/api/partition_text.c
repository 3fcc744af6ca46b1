/*
 * partition_text.c — how a model would be cut for a device list, without compiling it (inspect --devices).
 */
#include "api/compiled.h"

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
    const char *devs = si_config_devices(cfg);
    device_set *ds = si_calloc(1, sizeof *ds);
    if (!ds) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_result st = si_devices_parse(devs, ds);
    if (st) { si_free(ds); return st; }
    char (*names)[64] = ds->names;
    si_graph *g = NULL;
    si_partition *p = NULL;
    if ((st = si_graph_clone(m->g, &g)) || (st = si_graph_infer_shapes(g, SI_FOLD_AT_COMPILE)) ||
        (st = si_partition_graph(g, ds->devs, ds->n, &p))) {
        si_graph_free(g);
        si_free(ds);
        return st;
    }
    sbuf b = {.p = si_malloc(4096), .cap = 4096};
    if (!b.p) { si_partition_free(p); si_graph_free(g); si_free(ds); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    b.p[0] = 0;
    sb_put(&b, "partition over %s", devs);
    if (strstr(devs, "AUTO")) /* what AUTO stood for here */
        for (int d = 0; d < ds->n; d++) sb_put(&b, d ? ",%s" : " (%s", names[d]);
    sb_put(&b, "%s: %d submodel%s\n", strstr(devs, "AUTO") ? ")" : "", p->n, p->n == 1 ? "" : "s");
    for (int s = 0; s < p->n; s++) {
        const si_submodel *sm = &p->subs[s];
        sb_put(&b, "  submodel %d on %s", s, names[sm->device]);
        int nf = 0;
        for (int d = sm->device + 1; d < ds->n; d++)
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
            si_sub_out(p, sm->in_values[k], &from, &port);
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
    si_free(ds);
    if (b.oom) { si_free(b.p); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    *text = b.p;
    return SI_OK;
}
