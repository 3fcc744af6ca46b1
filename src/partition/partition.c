/*
 * partition.c — capability-based partitioning (see partition.h). A node with subgraphs (If, Loop, Scan) is a
 * host submodel of its own: its subgraphs go with it into that submodel, and the values they read from the
 * outer scope (the node's implicit inputs) count as inputs of the node everywhere below.
 */
#include "partition/partition.h"
#include "partition/aux.h"

#include "ops/ops.h"

#include <stdarg.h>
#include <stdio.h>

static bool node_folded(const si_graph *g, const si_node *n) {
    if (n->n_out == 0) return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && !g->values[n->out[k]].const_val) return false;
    return true;
}

/* Control flow: run by the executor on the host, never by a device. */
static bool is_host(const si_node *n) { return n->op && (n->op->flags & (SI_OPF_SUBGRAPH | SI_OPF_HOST)); }

/* printf onto the end of buf (cap bytes), cut short when full. */
__attribute__((format(printf, 3, 4))) static void append(char *buf, size_t cap, const char *fmt, ...) {
    size_t l = strlen(buf);
    if (l + 1 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + l, cap - l, fmt, ap);
    va_end(ap);
}

/* Build the graph of one submodel from the parent's nodes. */
static si_result build_subgraph(const si_graph *g, si_submodel *s, const int *owner, int sub_index) {
    si_result st = SI_ERR_NO_MEM;
    si_graph *sg = si_graph_new();
    int *map = si_malloc(sizeof(int) * ((size_t)g->n_values + 1)); /* parent value -> sub value, -1 */
    int n_in = 0, n_out = 0;
    if (!sg || !map) goto fail;
    for (int v = 0; v < g->n_values; v++) map[v] = -1;
    sg->ir_version = g->ir_version;
    if (!(sg->producer = si_strdup(g->producer ? g->producer : ""))) goto fail;
    if (si_graph_copy_syms(sg, g)) goto fail;
    if (!(sg->opsets = si_calloc((size_t)g->n_opsets + 1, sizeof(si_opset)))) goto fail;
    for (int i = 0; i < g->n_opsets; i++) {
        sg->n_opsets = i + 1;
        sg->opsets[i].version = g->opsets[i].version;
        if (!(sg->opsets[i].domain = si_strdup(g->opsets[i].domain))) goto fail;
    }
    /* values used by the submodel's nodes (implicit inputs included), in first-use order */
    for (int i = 0; i < s->n_nodes; i++) {
        const si_node *n = &g->nodes[s->nodes[i]];
        for (int pass = 0; pass < 3; pass++) {
            int cnt = pass == 0 ? n->n_in : pass == 1 ? n->n_implicit : n->n_out;
            const int *ids = pass == 0 ? n->in : pass == 1 ? n->implicit : n->out;
            for (int k = 0; k < cnt; k++) {
                int v = ids[k];
                if (v < 0 || map[v] >= 0) continue;
                const si_val *pv = &g->values[v];
                int sv = si_graph_value(sg, pv->name);
                if (sv < 0) goto fail;
                si_val *d = &sg->values[sv];
                d->dtype = pv->dtype;
                d->ndim = pv->ndim;
                memcpy(d->dims, pv->dims, sizeof d->dims);
                d->is_param = pv->is_param;
                if (pv->const_val) {
                    d->const_val = si_const_ref(pv->const_val);
                    d->is_initializer = true;
                    si_val_set_dq(d, pv->dq_q, pv->dq_scale, pv->dq_zp, pv->dq_axis);
                }
                map[v] = sv;
            }
        }
    }
    /* inputs: read, not constant, not produced here; outputs: produced here, read elsewhere or a model output */
    sg->inputs = si_malloc(sizeof(int) * ((size_t)sg->n_values + 1));
    sg->outputs = si_malloc(sizeof(int) * ((size_t)sg->n_values + 1));
    s->in_values = si_malloc(sizeof(int) * ((size_t)sg->n_values + 1));
    s->out_values = si_malloc(sizeof(int) * ((size_t)sg->n_values + 1));
    if (!sg->inputs || !sg->outputs || !s->in_values || !s->out_values) goto fail;
    /* candidate order: the model's inputs, then its outputs, then every other value, so that a submodel
     * that is the whole model has the model's ports in the model's order */
    int *cand = si_malloc(sizeof(int) * ((size_t)g->n_inputs + (size_t)g->n_outputs + (size_t)g->n_values + 1));
    bool *seen = si_calloc((size_t)g->n_values + 1, sizeof(bool));
    int nc = 0;
    if (!cand || !seen) { si_free(cand); si_free(seen); goto fail; }
    for (int i = 0; i < g->n_inputs; i++) cand[nc++] = g->inputs[i];
    for (int i = 0; i < g->n_outputs; i++) cand[nc++] = g->outputs[i];
    for (int v = 0; v < g->n_values; v++) cand[nc++] = v;
    for (int c = 0; c < nc; c++) {
        int v = cand[c], sv = map[v];
        if (sv < 0 || seen[v] || g->values[v].const_val) continue;
        int prod = g->values[v].producer;
        if (prod >= 0 && owner[prod] == sub_index) continue;
        seen[v] = true;
        sg->values[sv].is_input = true;
        sg->inputs[n_in] = sv;
        s->in_values[n_in++] = v;
    }
    for (int c = 0; c < nc; c++) {
        int v = cand[c], sv = map[v];
        if (sv < 0 || seen[v] || g->values[v].const_val) continue;
        int prod = g->values[v].producer;
        if (prod < 0 || owner[prod] != sub_index) continue;
        bool needed = g->values[v].is_output;
        for (int i = 0; i < g->n_nodes && !needed; i++) {
            if (owner[i] == sub_index || owner[i] < 0) continue;
            for (int k = 0; k < g->nodes[i].n_in + g->nodes[i].n_implicit; k++)
                if (si_node_reads(&g->nodes[i], k) == v) { needed = true; break; }
        }
        if (needed) {
            seen[v] = true;
            sg->values[sv].is_output = true;
            sg->outputs[n_out] = sv;
            s->out_values[n_out++] = v;
        }
    }
    si_free(cand);
    si_free(seen);
    sg->n_inputs = n_in;
    sg->n_outputs = n_out;
    /* nodes: deep copies (subgraphs included, now children of sg) with value ids mapped into sg */
    for (int i = 0; i < s->n_nodes; i++) {
        const si_node *pn = &g->nodes[s->nodes[i]];
        si_node n;
        if ((st = si_node_copy(&n, pn, sg))) goto fail_keep;
        for (int k = 0; k < pn->n_in; k++) n.in[k] = pn->in[k] >= 0 ? map[pn->in[k]] : -1;
        for (int k = 0; k < pn->n_out; k++) n.out[k] = pn->out[k] >= 0 ? map[pn->out[k]] : -1;
        for (int k = 0; k < pn->n_implicit; k++) n.implicit[k] = map[pn->implicit[k]];
        if (si_graph_add_node(sg, &n) < 0) { si_node_clear(&n); goto fail; }
    }
    if ((st = si_graph_finalize(sg))) goto fail_keep;
    si_free(map);
    s->g = sg;
    return SI_OK;
fail:
    st = si_err(SI_ERR_NO_MEM, "out of memory building submodel %d", s->id);
fail_keep:
    si_free(map);
    si_graph_free(sg);
    return st;
}

// --- placement rules ------------------------------------------------------------------------------------------

void si_avoid_free(si_avoid *a) {
    if (!a) return;
    si_free(a->rules);
    si_free(a);
}

si_result si_avoid_parse(const char *spec, si_avoid **out) {
    *out = NULL;
    if (!spec || !*spec) return SI_OK;
    si_avoid *a = si_calloc(1, sizeof *a);
    size_t cap = 1;
    for (const char *q = spec; *q; q++) cap += *q == ',';
    if (!a || !(a->rules = si_calloc(cap, sizeof *a->rules))) {
        si_avoid_free(a);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    for (const char *p = spec;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char entry[256];
        if (!len || len >= sizeof entry) {
            si_avoid_free(a);
            return si_err(SI_ERR_INVALID_ARG, "avoid '%s': an empty or too long entry (KIND:NAME/DEVICE, e.g. Op:Softmax/OCL)", spec);
        }
        memcpy(entry, p, len);
        entry[len] = 0;
        struct si_avoid_rule *r = &a->rules[a->n];
        const char *colon = strchr(entry, ':'), *slash = strrchr(entry, '/');
        size_t kl = colon ? (size_t)(colon - entry) : 0;
        r->node = colon && kl == 4 && !strncmp(entry, "Node", 4);
        bool op = colon && kl == 2 && !strncmp(entry, "Op", 2);
        size_t nl = colon && slash > colon ? (size_t)(slash - colon - 1) : 0;
        char canon[64];
        if ((!op && !r->node) || !nl || nl >= sizeof r->name || !slash[1] || si_device_name_check(slash + 1, canon, sizeof canon)) {
            si_avoid_free(a);
            return si_err(SI_ERR_INVALID_ARG, "avoid: entry '%s' is not Op:OPTYPE/DEVICE or Node:NAME/DEVICE (a device as in the list: OCL, OCL.1, CPU, REF)",
                          entry);
        }
        memcpy(r->name, colon + 1, nl);
        r->name[nl] = 0;
        snprintf(r->device, sizeof r->device, "%s", canon);
        a->n++;
        if (!e) break;
        p = e + 1;
    }
    *out = a;
    return SI_OK;
}

/* The rule that keeps node n off device `dev`, or NULL. */
static const struct si_avoid_rule *avoided(const si_avoid *a, const si_node *n, const char *dev) {
    for (int i = 0; a && i < a->n; i++) {
        const struct si_avoid_rule *r = &a->rules[i];
        if (strcmp(r->device, dev)) continue;
        if (r->node ? (n->name && !strcmp(n->name, r->name)) : !strcmp(n->op_type, r->name)) return r;
    }
    return NULL;
}

/* Are the values unit u's nodes read from outside it all computed (so that its nodes run in one stretch)? */
static bool unit_ready(const si_graph *g, const int *unit, const int *dev, const bool *done, int u) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (unit[i] != u) continue;
        const si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            int v = si_node_reads(n, k), pr = v >= 0 ? g->values[v].producer : -1;
            if (pr >= 0 && dev[pr] >= 0 && unit[pr] != u && !done[pr]) return false;
        }
    }
    return true;
}

si_result si_partition_graph(const si_graph *g, si_device *const *devs, int n_devs, si_partition **out) {
    return si_partition_graph_avoid(g, devs, n_devs, NULL, out);
}

si_result si_partition_graph_avoid(const si_graph *g, si_device *const *devs, int n_devs, const si_avoid *avoid, si_partition **out) {
    return si_partition_graph_aux(g, devs, n_devs, avoid, 0, false, out);
}

si_result si_partition_graph_aux(const si_graph *g, si_device *const *devs, int n_devs, const si_avoid *avoid, int64_t hfa_tile,
                                 bool moe, si_partition **out) {
    *out = NULL;
    _Static_assert(SI_MAX_DEVICES <= 64, "si_submodel.capable is a 64-bit mask");
    if (n_devs < 1 || n_devs > SI_MAX_DEVICES)
        return si_err(SI_ERR_INVALID_ARG, "partition: %d devices (1..%d allowed)", n_devs, SI_MAX_DEVICES);
    int nn = g->n_nodes;
    si_result st = SI_OK;
    int *dev = si_malloc(sizeof(int) * ((size_t)nn + 1));
    int *owner = si_malloc(sizeof(int) * ((size_t)nn + 1));
    int *order = si_malloc(sizeof(int) * ((size_t)nn + 1));
    int *indeg = si_calloc((size_t)nn + 1, sizeof(int));
    uint64_t *accepts = si_calloc((size_t)nn + 1, sizeof(uint64_t));
    char **why = si_calloc((size_t)nn + 1, sizeof(char *));
    si_partition *p = si_calloc(1, sizeof *p);
    int *unit = si_malloc(sizeof(int) * ((size_t)nn + 1)), *key = si_malloc(sizeof(int) * ((size_t)nn + 1));
    int *kind = si_malloc(sizeof(int) * ((size_t)nn + 1));
    if (!dev || !owner || !order || !indeg || !accepts || !why || !p || !unit || !key || !kind) { st = si_err(SI_ERR_NO_MEM, "out of memory partitioning"); goto done; }
    /* 1. which devices accept each node; the first one gets it */
    for (int i = 0; i < nn; i++) {
        const si_node *n = &g->nodes[i];
        dev[i] = -1;
        owner[i] = -1;
        if (node_folded(g, n)) continue;
        if (is_host(n)) { /* the pseudo-device n_devs: a run of its own, whatever the neighbours */
            dev[i] = n_devs;
            continue;
        }
        char reasons[2048] = "";
        for (int d = 0; d < n_devs; d++) {
            const struct si_avoid_rule *r = avoided(avoid, n, devs[d]->name);
            si_result s = r ? si_err(SI_ERR_UNSUPPORTED, "kept off by avoid=%s:%s/%s", r->node ? "Node" : "Op", r->name, r->device)
                            : devs[d]->iface->supports_op(devs[d], g, n);
            if (s == SI_OK) {
                accepts[i] |= 1ull << d;
                if (dev[i] < 0) dev[i] = d;
            } else if (s == SI_ERR_UNSUPPORTED) {
                if (dev[i] < 0) append(reasons, sizeof reasons, "%s%s: %s", reasons[0] ? "; " : "", devs[d]->name, si_last_error());
            } else {
                st = si_err_wrap(s, "device %s, node '%s' (%s)", devs[d]->name, n->name, n->op_type);
                goto done;
            }
        }
        if (dev[i] < 0) {
            st = si_err(SI_ERR_UNSUPPORTED, "node '%s' (%s): no device in the list can run it: %s", n->name, n->op_type, reasons);
            goto done;
        }
        if (reasons[0] && !(why[i] = si_strdup(reasons))) { st = si_err(SI_ERR_NO_MEM, "out of memory"); goto done; }
    }
    /* 1b. auxiliary units (host flash attention): each on the first device that takes all its nodes, a run of
     * its own (its key), or not a unit when no device does */
    int n_units = si_aux_find(g, hfa_tile, moe, unit, kind);
    for (int u = 0; u < n_units; u++) {
        uint64_t all = ~0ull;
        for (int i = 0; i < nn; i++)
            if (unit[i] == u) all &= dev[i] >= 0 ? accepts[i] : 0;
        int d = 0;
        while (d < n_devs && !(all & (1ull << d))) d++;
        for (int i = 0; i < nn; i++)
            if (unit[i] == u) {
                if (d < n_devs) key[i] = dev[i], dev[i] = d; /* key: the node's own first device, while a unit's */
                else unit[i] = -1;
            }
    }
    /* 1c. a node that reads only constants (a DequantizeLinear of weights the graph keeps quantized, shape.c keep_dq)
     * goes with its first reader: on that reader's device when it takes it, placed just before it (below), so
     * that it is not grouped with others of its kind into a submodel whose outputs are weights to be copied to the
     * submodels that read them at every inference */
    bool *lazy = si_calloc((size_t)nn + 1, sizeof(bool));
    int *reader = si_malloc(sizeof(int) * ((size_t)g->n_values + 1));
    if (!lazy || !reader) {
        si_free(lazy);
        si_free(reader);
        st = si_err(SI_ERR_NO_MEM, "out of memory partitioning");
        goto done;
    }
    for (int v = 0; v < g->n_values; v++) reader[v] = -1;
    for (int i = nn - 1; i >= 0; i--) {
        const si_node *n = &g->nodes[i];
        if (dev[i] < 0) continue;
        bool consts = dev[i] < n_devs && unit[i] < 0 && n->n_in > 0 && n->n_implicit == 0;
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            const int v = si_node_reads(n, k);
            if (v < 0) continue;
            reader[v] = i;
            consts &= g->values[v].const_val != NULL;
        }
        lazy[i] = consts;
    }
    for (int i = 0; i < nn; i++) {
        if (!lazy[i]) continue;
        const int r = g->nodes[i].n_out > 0 && g->nodes[i].out[0] >= 0 ? reader[g->nodes[i].out[0]] : -1;
        if (r >= 0 && dev[r] >= 0 && dev[r] < n_devs && (accepts[i] & (1ull << dev[r]))) dev[i] = dev[r];
    }
    si_free(reader);
    /* 2. topological order that keeps runs on one device together (and each unit's nodes in one stretch: a unit
     * that cannot be is dropped and the order made again) */
    int total = 0;
    bool *done_ = si_calloc((size_t)nn + 1, sizeof(bool));
    if (!done_) { si_free(lazy); st = si_err(SI_ERR_NO_MEM, "out of memory"); goto done; }
    int *own = owner; /* owner is not in use before step 3: it keeps each unit node's own first device */
    for (int i = 0; i < nn; i++) own[i] = unit[i] >= 0 ? key[i] : dev[i];
reorder:
    total = 0;
    for (int i = 0; i < nn; i++) {
        key[i] = unit[i] >= 0 ? n_devs + 1 + unit[i] : dev[i];
        indeg[i] = 0;
        done_[i] = false;
        if (dev[i] < 0) continue;
        total++;
        const si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_in + n->n_implicit; k++) {
            int v = si_node_reads(n, k);
            if (v < 0) continue;
            int pr = g->values[v].producer;
            if (pr >= 0 && dev[pr] >= 0) indeg[i]++;
        }
    }
    int cur = -1, placed = 0;
    while (placed < total) {
        int pick = -1;
        for (int i = 0; i < nn; i++) /* prefer a ready node on the current device, else the first ready node */
            if (dev[i] >= 0 && !done_[i] && indeg[i] == 0 && !lazy[i]) {
                if (key[i] == cur) { pick = i; break; }
                if (pick < 0 && (key[i] <= n_devs || unit_ready(g, unit, dev, done_, unit[i]))) pick = i;
            }
        if (pick < 0) /* only units whose outside inputs are not all there: enter one anyway (it is dropped below) */
            for (int i = 0; i < nn && pick < 0; i++)
                if (dev[i] >= 0 && !done_[i] && indeg[i] == 0 && !lazy[i]) pick = i;
        for (int i = 0; i < nn && pick < 0; i++) /* only nodes of constants that nothing placed reads are left */
            if (dev[i] >= 0 && !done_[i] && indeg[i] == 0) pick = i;
        if (pick < 0) { si_free(done_); si_free(lazy); st = si_err(SI_ERR_INTERNAL, "partition: no ready node (cycle?)"); goto done; }
        for (int k = 0; k < g->nodes[pick].n_in + g->nodes[pick].n_implicit; k++) { /* a node of constants it reads first */
            const int v = si_node_reads(&g->nodes[pick], k), pr = v >= 0 ? g->values[v].producer : -1;
            if (pr >= 0 && lazy[pr] && !done_[pr]) {
                pick = pr;
                break;
            }
        }
        if (cur > n_devs && key[pick] != cur) { /* leaving a unit: every node of it placed? */
            bool whole = true;
            for (int i = 0; i < nn; i++)
                if (key[i] == cur && !done_[i]) whole = false;
            if (!whole) { /* not a unit: its nodes go back to their own first devices */
                int u = cur - n_devs - 1;
                for (int i = 0; i < nn; i++)
                    if (unit[i] == u) unit[i] = -1, dev[i] = own[i];
                goto reorder;
            }
        }
        done_[pick] = true;
        order[placed++] = pick;
        cur = key[pick];
        const si_node *n = &g->nodes[pick];
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            for (int j = 0; j < nn; j++) {
                if (dev[j] < 0 || done_[j]) continue;
                for (int q = 0; q < g->nodes[j].n_in + g->nodes[j].n_implicit; q++)
                    if (si_node_reads(&g->nodes[j], q) == v) indeg[j]--;
            }
        }
    }
    si_free(done_);
    si_free(lazy);
    /* 3. runs -> submodels */
    int nsub = 0;
    /* a new submodel where the device changes, and for every host node */
#define NEW_RUN(i) ((i) == 0 || key[order[i]] != key[order[(i) - 1]] || dev[order[i]] == n_devs)
    for (int i = 0; i < total; i++)
        if (NEW_RUN(i)) nsub++;
    if (!(p->subs = si_calloc((size_t)nsub + 1, sizeof(si_submodel)))) { st = si_err(SI_ERR_NO_MEM, "out of memory"); goto done; }
    for (int i = 0, s = -1; i < total; i++) {
        int node = order[i];
        if (NEW_RUN(i)) {
            s++;
            p->n = s + 1;
            si_submodel *sm = &p->subs[s];
            sm->id = s;
            sm->host = dev[node] == n_devs;
            sm->device = sm->host ? -1 : dev[node];
            sm->capable = sm->host ? 0 : ~0ull;
            sm->aux = unit[node] >= 0 ? kind[unit[node]] : SI_AUX_NONE;
            if (!(sm->nodes = si_malloc(sizeof(int) * ((size_t)total + 1)))) { st = si_err(SI_ERR_NO_MEM, "out of memory"); goto done; }
        }
        si_submodel *sm = &p->subs[s];
        sm->nodes[sm->n_nodes++] = node;
        sm->capable &= accepts[node];
        owner[node] = s;
    }
#undef NEW_RUN
    for (int s = 0; s < p->n; s++) {
        si_submodel *sm = &p->subs[s];
        /* each distinct reason once, with the first node that has it and how many others share it (a device
         * that is not available gives every node the same reason) */
        enum { MAX_WHY = 16 };
        int first[MAX_WHY], count[MAX_WHY], n_why = 0, untold = 0;
        for (int i = 0; i < sm->n_nodes; i++) {
            const int node = sm->nodes[i];
            if (!why[node]) continue;
            int j = 0;
            while (j < n_why && strcmp(why[first[j]], why[node])) j++;
            if (j < n_why) count[j]++;
            else if (n_why < MAX_WHY) first[n_why] = node, count[n_why++] = 1;
            else untold++;
        }
        char buf[4096] = "";
        for (int j = 0; j < n_why; j++) {
            append(buf, sizeof buf, "%snode '%s'", buf[0] ? "; " : "", g->nodes[first[j]].name);
            if (count[j] > 1) append(buf, sizeof buf, " and %d other%s", count[j] - 1, count[j] > 2 ? "s" : "");
            append(buf, sizeof buf, ": %s", why[first[j]]);
        }
        if (untold) append(buf, sizeof buf, "; %d more node%s with other reasons", untold, untold > 1 ? "s" : "");
        if (!(sm->why = si_strdup(buf))) { st = si_err(SI_ERR_NO_MEM, "out of memory"); goto done; }
        if ((st = build_subgraph(g, sm, owner, s))) goto done;
    }
done:
    if (why)
        for (int i = 0; i < nn; i++) si_free(why[i]);
    SI_FREE_ALL(why, dev, owner, order, indeg, accepts, unit, key, kind);
    if (st) { si_partition_free(p); return st; }
    *out = p;
    return SI_OK;
}

void si_partition_free(si_partition *p) {
    if (!p) return;
    for (int s = 0; s < p->n; s++) {
        si_free(p->subs[s].nodes);
        si_graph_free(p->subs[s].g);
        SI_FREE_ALL(p->subs[s].in_values, p->subs[s].out_values, p->subs[s].why);
    }
    si_free(p->subs);
    si_free(p);
}
