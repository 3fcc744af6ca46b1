/*
 * fold.c — repeated blocks folded into function calls (si_graph_fold_blocks).
 *
 * A transformer is N copies of one layer: the same ops, attributes, types and wiring, different weights. Found
 * once, the layer becomes a *function body* (a graph of its own, compiled once per device) and each copy a *call*
 * node (`Call`, domain ai.safeinfer, attribute `function`) whose inputs are the values the copy reads from
 * outside (the previous layer's output, masks, its KV cache, and its own weights) and whose outputs are the
 * values others read.
 *
 * Finding the block works on the topological node order: each node gets a structural signature (op, domain,
 * opset, attributes, and the type and shape of every input and output, constants marked), and for every block
 * length L the runs of windows whose signature sequence repeats right after itself are found with rolling
 * hashes (O(n^2) hash steps for n nodes; a few ms for thousands of nodes). The candidates that fold the most
 * nodes are then checked exactly: a value a block reads is made inside it (the same node and output in every
 * copy), a constant (shared by the body when every copy's is equal, else a *parameter*: a body input bound to
 * each call's own constant), or a value from outside (a body input; copies that read one value at two places
 * must read one value at both in every copy). Blocks are contiguous runs of the topological order, so a call
 * never needs its own outputs. Among the alignments of one length, the one with the fewest inputs and outputs
 * wins (the cut at the residual stream, not mid-layer).
 *
 * Nodes with subgraphs and Call nodes are never part of a block. Up to SI_FOLD_MAX_FUNCS functions are found,
 * one after the other (an encoder's layers, then a decoder's).
 */
#include "ir/fold.h"
#include "ops/ops.h"

#include <stdio.h>
#include <stdlib.h>

#define FOLD_MIN_NODES 6 /* a block smaller than this is not worth a call */
#define FOLD_TRIES 24    /* candidate lengths checked exactly, best first */
#define FOLD_WORK ((int64_t)200 * 1000 * 1000) /* hash steps, and node checks, one search may take */

// --- signatures ---------------------------------------------------------------------------------------------

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 29);
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) x = (x ^ b[i]) * 1099511628211ull;
    return mix(h, x ^ n);
}

static uint64_t mix_str(uint64_t h, const char *s) { return mix_bytes(h, s ? s : "", s ? strlen(s) : 0); }

static uint64_t mix_type(uint64_t h, const si_val *v) {
    h = mix(h, (uint64_t)v->dtype);
    h = mix(h, (uint64_t)(int64_t)v->ndim);
    for (int d = 0; d < v->ndim; d++) h = mix(h, (uint64_t)v->dims[d]);
    return h;
}

/* Can node i be part of a block at all? */
static bool foldable(const si_node *n) {
    if (!n->op || (n->op->flags & SI_OPF_SUBGRAPH) || si_node_is(n, SI_OP_CALL) || n->n_implicit) return false;
    for (int a = 0; a < n->n_attr; a++)
        if (n->attrs[a].g || n->attrs[a].gs) return false;
    return true;
}

static uint64_t node_sig(const si_graph *g, int i) {
    const si_node *n = &g->nodes[i];
    if (!foldable(n)) return mix(0x5bd1e995ull, (uint64_t)i + 1); /* unique: never in a repeated window */
    uint64_t h = mix_str(0, n->op_type);
    h = mix_str(h, n->domain);
    h = mix(h, (uint64_t)n->opset);
    h = mix(h, (uint64_t)n->n_in * 131 + (uint64_t)n->n_out);
    for (int a = 0; a < n->n_attr; a++) {
        const si_attr *at = &n->attrs[a];
        h = mix_str(h, at->name);
        h = mix(h, (uint64_t)at->type);
        h = mix(h, (uint64_t)at->i);
        h = mix_bytes(h, &at->f, sizeof at->f);
        h = mix_str(h, at->s);
        if (at->ints) h = mix_bytes(h, at->ints, sizeof(int64_t) * (size_t)at->n);
        if (at->floats) h = mix_bytes(h, at->floats, sizeof(float) * (size_t)at->n);
        for (int k = 0; at->strings && k < at->n; k++) h = mix_str(h, at->strings[k]);
        if (at->t) {
            h = mix(h, (uint64_t)at->t->dtype);
            if (at->t->data) h = mix_bytes(h, at->t->data, at->t->nbytes);
        }
    }
    for (int k = 0; k < n->n_in; k++) {
        int v = n->in[k];
        if (v < 0) { h = mix(h, 7); continue; }
        h = mix(h, g->values[v].const_val ? 11 : 13);
        h = mix_type(h, &g->values[v]);
    }
    for (int k = 0; k < n->n_out; k++) h = n->out[k] < 0 ? mix(h, 17) : mix_type(h, &g->values[n->out[k]]);
    return h;
}

// --- one block, checked exactly --------------------------------------------------------------------------------

/* How a block reads input k of its node t. */
typedef enum { RD_NONE, RD_INNER, RD_SHARED, RD_PARAM, RD_DATA } rd_kind;

typedef struct rd {
    rd_kind kind;
    int u, oi;  /* RD_INNER: made by the block's node u, output oi */
    int cls;    /* RD_PARAM, RD_DATA: its class (one per distinct value of the first copy) */
} rd;

typedef struct block {
    int s, L, k;     /* nodes [s + j*L, s + (j+1)*L) for j < k */
    bool moe_params; /* a MoE node's weights may be parameters */
    int n_pos;       /* input positions: sum of n_in over the block's nodes */
    int *pos_base;   /* per node t: its first position */
    rd *rd;          /* per position */
    int n_data, n_param;
    int *cls_pos;    /* per class (data then param): one position that reads it */
    int n_outs;
    int *out_t, *out_oi; /* per body output: node and output index */
} block;

static void block_free(block *b) {
    SI_FREE_ALL(b->pos_base, b->rd, b->cls_pos, b->out_t, b->out_oi);
    memset(b, 0, sizeof *b);
}

/* Tensors equal in type, shape and bytes. */
static bool same_const(const si_tensor *a, const si_tensor *b) {
    if (a == b) return true;
    if (a->dtype != b->dtype || a->ndim != b->ndim || a->nbytes != b->nbytes) return false;
    if (memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim)) return false;
    return !a->nbytes || (a->data && b->data && !memcmp(a->data, b->data, a->nbytes));
}

/* The node of copy j that is the block's node t. */
static inline int at(const block *b, int j, int t) { return b->s + j * b->L + t; }

/* Can input q of n be a parameter: an op whose weight the devices take as a run-time input as fast as a constant
 * (the CPU device packs a MatMul's parameter once per bound constant; MatMulNBits, norms, elementwise ops, MoE, QMoE and
 * an embedding Gather read it as it is)? A block whose weights feed anything else (a Conv, a Gemm, integer or
 * QLinear ops, a DequantizeLinear, whose fast paths want constants) is not folded. */
static bool param_ok(const si_node *n, int q, bool moe_params) {
    if (!n->op) return false;
    switch (n->op->id) {
    case SI_OP_MATMUL: return q == 1;
    case SI_OP_GATHER: return q == 0;
    case SI_OP_MOE: return q >= 1 && moe_params;
    case SI_OP_QMOE: return q >= 2 && moe_params; /* as MoE: with moe_experts=on its weights stay constants */
    case SI_OP_MATMUL_NBITS:
    case SI_OP_LAYER_NORMALIZATION:
    case SI_OP_RMS_NORMALIZATION:
    case SI_OP_SIMPLIFIED_LAYER_NORMALIZATION:
    case SI_OP_SKIP_LAYER_NORMALIZATION:
    case SI_OP_SKIP_SIMPLIFIED_LAYER_NORMALIZATION:
    case SI_OP_BIAS_GELU:
    case SI_OP_FAST_GELU: return q >= 1;
    case SI_OP_ADD:
    case SI_OP_SUB:
    case SI_OP_MUL:
    case SI_OP_DIV:
    case SI_OP_WHERE: return true;
    default: return false;
    }
}

/* Check block b (s, L, k set) and fill the rest; false when the copies are not one function. last_use[v]: the
 * last node reading v (n for graph outputs). */
static bool check_block(const si_graph *g, const int *last_use, block *b, int *val_cls) {
    const int L = b->L, k = b->k, s = b->s;
    bool ok = false;
    int *cls_val = NULL;
    b->pos_base = si_malloc(sizeof(int) * ((size_t)L + 1));
    if (!b->pos_base) return false;
    b->n_pos = 0;
    for (int t = 0; t < L; t++) {
        b->pos_base[t] = b->n_pos;
        b->n_pos += g->nodes[s + t].n_in;
    }
    b->rd = si_calloc((size_t)b->n_pos + 1, sizeof(rd));
    b->cls_pos = si_malloc(sizeof(int) * ((size_t)b->n_pos + 1));
    if (!b->rd || !b->cls_pos) return false;
    /* the first copy: how each position reads; classes of distinct outside values (data, then params) */
    int n_cls = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int t = 0; t < L; t++) {
            const si_node *n = &g->nodes[s + t];
            for (int q = 0; q < n->n_in; q++) {
                rd *r = &b->rd[b->pos_base[t] + q];
                int v = n->in[q];
                if (pass == 1 && r->kind != RD_PARAM) continue;
                if (pass == 0) {
                    if (v < 0) { r->kind = RD_NONE; continue; }
                    int p = g->values[v].producer;
                    if (p >= s && p < s + L) {
                        r->kind = RD_INNER;
                        r->u = p - s;
                        for (int o = 0; o < g->nodes[p].n_out; o++)
                            if (g->nodes[p].out[o] == v) r->oi = o;
                        continue;
                    }
                    if (g->values[v].const_val) {
                        bool shared = true;
                        for (int j = 1; j < k && shared; j++) {
                            int w = g->nodes[at(b, j, t)].in[q];
                            shared = w >= 0 && g->values[w].const_val && same_const(g->values[v].const_val, g->values[w].const_val);
                        }
                        r->kind = shared ? RD_SHARED : RD_PARAM;
                        if (!shared && !param_ok(n, q, b->moe_params)) goto done; /* a weight the devices want as a constant */
                        continue; /* params get their classes in pass 1, after the data */
                    }
                    r->kind = RD_DATA;
                }
                if (val_cls[v] < 0) {
                    val_cls[v] = n_cls;
                    b->cls_pos[n_cls++] = b->pos_base[t] + q;
                    if (pass == 0) b->n_data++;
                    else b->n_param++;
                }
                r->cls = val_cls[v];
            }
        }
    /* every other copy reads alike */
    if (!(cls_val = si_malloc(sizeof(int) * ((size_t)n_cls + 1)))) goto done;
    for (int j = 1; j < k; j++) {
        for (int c = 0; c < n_cls; c++) cls_val[c] = -1;
        for (int t = 0; t < L; t++) {
            const si_node *n = &g->nodes[at(b, j, t)];
            for (int q = 0; q < n->n_in; q++) {
                const rd *r = &b->rd[b->pos_base[t] + q];
                int v = n->in[q];
                if ((v < 0) != (r->kind == RD_NONE)) goto done;
                if (v < 0) continue;
                int p = g->values[v].producer, lo = at(b, j, 0);
                bool inner = p >= lo && p < lo + L;
                if (inner != (r->kind == RD_INNER)) goto done;
                if (inner) {
                    if (p - lo != r->u || g->nodes[p].out[r->oi] != v) goto done;
                    continue;
                }
                if ((g->values[v].const_val != NULL) != (r->kind == RD_SHARED || r->kind == RD_PARAM)) goto done;
                if (r->kind == RD_SHARED) continue; /* checked equal above */
                if (cls_val[r->cls] < 0) cls_val[r->cls] = v;
                else if (cls_val[r->cls] != v) goto done;
            }
        }
    }
    /* outputs: what any copy's nodes make that something after the copy reads */
    b->out_t = si_malloc(sizeof(int) * ((size_t)L * 8 + 1));
    b->out_oi = si_malloc(sizeof(int) * ((size_t)L * 8 + 1));
    if (!b->out_t || !b->out_oi) goto done;
    int cap = L * 8;
    for (int t = 0; t < L; t++) {
        const si_node *n0 = &g->nodes[s + t];
        for (int o = 0; o < n0->n_out; o++) {
            bool used = false;
            for (int j = 0; j < k && !used; j++) {
                int v = g->nodes[at(b, j, t)].out[o];
                used = v >= 0 && last_use[v] >= at(b, j, 0) + L;
            }
            if (!used) continue;
            if (b->n_outs == cap) {
                cap *= 2;
                int *a = si_realloc(b->out_t, sizeof(int) * (size_t)cap), *c = a ? si_realloc(b->out_oi, sizeof(int) * (size_t)cap) : NULL;
                if (a) b->out_t = a;
                if (!c) goto done;
                b->out_oi = c;
            }
            b->out_t[b->n_outs] = t;
            b->out_oi[b->n_outs++] = o;
        }
    }
    ok = b->n_outs > 0;
done:
    si_free(cls_val);
    /* reset the class map for the next candidate */
    for (int t = 0; t < L; t++) {
        const si_node *n = &g->nodes[s + t];
        for (int q = 0; q < n->n_in; q++)
            if (n->in[q] >= 0) val_cls[n->in[q]] = -1;
    }
    return ok;
}

// --- the body and the calls ------------------------------------------------------------------------------------

static int add_typed(si_graph *d, const si_val *v, const char *name) {
    int id = si_graph_add_value(d, name);
    if (id < 0) return -1;
    si_val *x = &d->values[id];
    x->dtype = v->dtype;
    x->ndim = v->ndim;
    memcpy(x->dims, v->dims, sizeof x->dims);
    return id;
}

/* The function body: block b's first copy as a graph of its own. */
static si_result make_body(const si_graph *g, const block *b, si_graph **out) {
    *out = NULL;
    si_graph *d = si_graph_new();
    int *map = si_malloc(sizeof(int) * ((size_t)g->n_values + 1));
    si_result st = SI_ERR_NO_MEM;
    if (!d || !map) goto fail;
    for (int v = 0; v < g->n_values; v++) map[v] = -1;
    d->ir_version = g->ir_version;
    if (!(d->producer = si_strdup(g->producer ? g->producer : "")) || si_graph_copy_syms(d, g)) goto fail;
    if (!(d->opsets = si_calloc((size_t)g->n_opsets + 1, sizeof(si_opset)))) goto fail;
    for (int i = 0; i < g->n_opsets; i++) {
        d->n_opsets = i + 1;
        d->opsets[i].version = g->opsets[i].version;
        if (!(d->opsets[i].domain = si_strdup(g->opsets[i].domain))) goto fail;
    }
    int n_cls = b->n_data + b->n_param;
    if (!(d->inputs = si_malloc(sizeof(int) * ((size_t)n_cls + 1))) || !(d->outputs = si_malloc(sizeof(int) * ((size_t)b->n_outs + 1))))
        goto fail;
    /* inputs: the data classes, then the parameters (in class order) */
    for (int c = 0; c < n_cls; c++) {
        int p = b->cls_pos[c], t = 0;
        while (t + 1 < b->L && b->pos_base[t + 1] <= p) t++;
        int v = g->nodes[b->s + t].in[p - b->pos_base[t]];
        int id = add_typed(d, &g->values[v], g->values[v].name);
        if (id < 0) goto fail;
        d->values[id].is_input = true;
        d->values[id].is_param = c >= b->n_data;
        d->inputs[d->n_inputs++] = id;
        map[v] = id;
    }
    /* nodes, with the constants they share and the values they make */
    for (int t = 0; t < b->L; t++) {
        const si_node *pn = &g->nodes[b->s + t];
        for (int q = 0; q < pn->n_in; q++) {
            int v = pn->in[q];
            if (v < 0 || map[v] >= 0) continue;
            if (b->rd[b->pos_base[t] + q].kind != RD_SHARED) { st = si_err(SI_ERR_INTERNAL, "fold: input of node '%s' unmapped", pn->name); goto fail; }
            int id = add_typed(d, &g->values[v], g->values[v].name);
            if (id < 0) goto fail;
            d->values[id].const_val = si_const_ref(g->values[v].const_val);
            d->values[id].is_initializer = true;
            map[v] = id;
        }
        for (int o = 0; o < pn->n_out; o++) {
            int v = pn->out[o];
            if (v < 0) continue;
            int id = add_typed(d, &g->values[v], g->values[v].name);
            if (id < 0) goto fail;
            /* folded (a shape chain) and the same in every copy: stays folded; a value folded from a copy's own
             * constants (a dequantized weight) is computed by the body from its parameters */
            bool same = g->values[v].const_val != NULL;
            for (int j = 1; j < b->k && same; j++) {
                int w = g->nodes[at(b, j, t)].out[o];
                same = w >= 0 && g->values[w].const_val && same_const(g->values[v].const_val, g->values[w].const_val);
            }
            if (same) d->values[id].const_val = si_const_ref(g->values[v].const_val);
            map[v] = id;
        }
        si_node n;
        if ((st = si_node_copy(&n, pn, d))) goto fail;
        for (int q = 0; q < pn->n_in; q++) n.in[q] = pn->in[q] >= 0 ? map[pn->in[q]] : -1;
        for (int o = 0; o < pn->n_out; o++) n.out[o] = pn->out[o] >= 0 ? map[pn->out[o]] : -1;
        st = SI_ERR_NO_MEM;
        if (si_graph_add_node(d, &n) < 0) { si_node_clear(&n); goto fail; }
    }
    for (int o = 0; o < b->n_outs; o++) {
        int id = map[g->nodes[b->s + b->out_t[o]].out[b->out_oi[o]]];
        d->values[id].is_output = true;
        d->outputs[d->n_outputs++] = id;
    }
    si_free(map);
    map = NULL;
    if ((st = si_graph_finalize(d))) goto fail;
    *out = d;
    return SI_OK;
fail:
    si_free(map);
    si_graph_free(d);
    return st == SI_ERR_NO_MEM ? si_err(SI_ERR_NO_MEM, "out of memory folding a repeated block") : st;
}

/* The call node for copy j of block b, function fid. */
static si_result make_call(const si_graph *g, const block *b, int j, int fid, si_node *c) {
    memset(c, 0, sizeof *c);
    int n_cls = b->n_data + b->n_param;
    char name[512];
    snprintf(name, sizeof name, "fn%d.call%d(%s)", fid, j, g->nodes[at(b, j, 0)].name);
    c->name = si_strdup(name);
    c->op_type = si_strdup("Call");
    c->domain = si_strdup(SI_FOLD_DOMAIN);
    c->opset = 1;
    c->in = si_malloc(sizeof(int) * ((size_t)n_cls + 1));
    c->out = si_malloc(sizeof(int) * ((size_t)b->n_outs + 1));
    c->attrs = si_calloc(1, sizeof(si_attr));
    if (!c->name || !c->op_type || !c->domain || !c->in || !c->out || !c->attrs || !(c->attrs[0].name = si_strdup("function"))) {
        si_node_clear(c);
        return si_err(SI_ERR_NO_MEM, "out of memory folding a repeated block");
    }
    c->n_attr = 1;
    c->attrs[0].type = SI_ATTR_INT;
    c->attrs[0].i = fid;
    for (int cl = 0; cl < n_cls; cl++) {
        int p = b->cls_pos[cl], t = 0;
        while (t + 1 < b->L && b->pos_base[t + 1] <= p) t++;
        c->in[c->n_in++] = g->nodes[at(b, j, t)].in[p - b->pos_base[t]];
    }
    for (int o = 0; o < b->n_outs; o++) c->out[c->n_out++] = g->nodes[at(b, j, b->out_t[o])].out[b->out_oi[o]];
    return SI_OK;
}

/* Replace block b's copies in g by calls of function fid (the caller finalizes g). */
static si_result rewrite(si_graph *g, const block *b, int fid) {
    int n = g->n_nodes, first = b->s, after = b->s + b->k * b->L;
    si_node *calls = si_calloc((size_t)b->k + 1, sizeof(si_node));
    if (!calls) return si_err(SI_ERR_NO_MEM, "out of memory folding a repeated block");
    for (int j = 0; j < b->k; j++) {
        si_result st = make_call(g, b, j, fid, &calls[j]);
        if (st) {
            for (int i = 0; i < j; i++) si_node_clear(&calls[i]);
            si_free(calls);
            return st;
        }
    }
    for (int i = first; i < after; i++) si_node_clear(&g->nodes[i]);
    memcpy(&g->nodes[first], calls, sizeof(si_node) * (size_t)b->k);
    memmove(&g->nodes[first + b->k], &g->nodes[after], sizeof(si_node) * (size_t)(n - after));
    g->n_nodes = n - (after - first) + b->k;
    si_free(calls);
    return SI_OK;
}

static si_result add_domain(si_graph *g) {
    if (si_graph_opset(g, SI_FOLD_DOMAIN) >= 0) return SI_OK;
    si_opset *o = si_realloc(g->opsets, sizeof(si_opset) * ((size_t)g->n_opsets + 1));
    if (!o) return si_err(SI_ERR_NO_MEM, "out of memory");
    g->opsets = o;
    if (!(o[g->n_opsets].domain = si_strdup(SI_FOLD_DOMAIN))) return si_err(SI_ERR_NO_MEM, "out of memory");
    o[g->n_opsets++].version = 1;
    return SI_OK;
}

// --- the search ---------------------------------------------------------------------------------------------

typedef struct cand {
    int L, k;
    int64_t score;
} cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    return SI_RANK_CMP(x->score, y->score, x->L, y->L);
}

/* For block length L: H[i] the rolling hash of the signatures of nodes [i, i+L), run[i] how many windows right after
 * window i repeat it (i, i+L, i+2L, ... all equal); returns the most windows in a row (1 when none repeats). */
static int runs(const uint64_t *sig, int n, int L, uint64_t *H, int *run) {
    const uint64_t B = 0x100000001b3ull;
    uint64_t pw = 1, h = 0;
    for (int i = 0; i < L - 1; i++) pw *= B;
    for (int i = 0; i < L; i++) h = h * B + sig[i];
    for (int i = 0;; i++) {
        H[i] = h;
        if (i + L >= n) break;
        h = (h - sig[i] * pw) * B + sig[i + L];
    }
    int kmax = 1;
    for (int i = n - L; i >= 0; i--) {
        run[i] = (i + 2 * L <= n && H[i] == H[i + L]) ? run[i + L] + 1 : 0;
        if (run[i] + 1 > kmax) kmax = run[i] + 1;
    }
    return kmax;
}

/* The best block of g, or b->k = 0 when there is none. */
static si_result find_block(const si_graph *g, bool moe_params, block *best) {
    memset(best, 0, sizeof *best);
    const int n = g->n_nodes;
    if (n < 2 * FOLD_MIN_NODES) return SI_OK;
    uint64_t *sig = si_malloc(sizeof(uint64_t) * (size_t)n), *H = si_malloc(sizeof(uint64_t) * (size_t)n);
    int *run = si_malloc(sizeof(int) * (size_t)n), *last_use = si_malloc(sizeof(int) * ((size_t)g->n_values + 1));
    int *val_cls = si_malloc(sizeof(int) * ((size_t)g->n_values + 1));
    cand *cands = si_calloc((size_t)n / 2 + 2, sizeof(cand));
    si_result st = SI_OK;
    if (!sig || !H || !run || !last_use || !val_cls || !cands) { st = si_err(SI_ERR_NO_MEM, "out of memory folding"); goto done; }
    for (int i = 0; i < n; i++) sig[i] = node_sig(g, i);
    for (int v = 0; v < g->n_values; v++) {
        last_use[v] = g->values[v].is_output ? n : -1;
        val_cls[v] = -1;
    }
    for (int i = 0; i < n; i++)
        for (int q = 0; q < g->nodes[i].n_in + g->nodes[i].n_implicit; q++) {
            int v = si_node_reads(&g->nodes[i], q);
            if (v >= 0 && last_use[v] < i) last_use[v] = i;
        }
    /* per length L: the longest run of windows each followed by an equal one */
    int nc = 0;
    int64_t top = 0;
    /* the hash steps grow as n * L: lengths up to what keeps them near FOLD_WORK (a layer of a few thousand
     * nodes in a graph of a hundred thousand), so that a hostile graph cannot make compile take minutes */
    const int L_max = (int)SI_MIN((int64_t)n / 2, SI_MAX((int64_t)256, FOLD_WORK / n));
    for (int L = FOLD_MIN_NODES; L <= L_max; L++) {
        if ((int64_t)(n / L - 1) * L < top / 2) continue; /* cannot come near the best */
        int kmax = runs(sig, n, L, H, run);
        if (kmax < 2) continue;
        cands[nc++] = (cand){.L = L, .k = kmax, .score = (int64_t)(kmax - 1) * L};
        if (cands[nc - 1].score > top) top = cands[nc - 1].score;
    }
    qsort(cands, (size_t)nc, sizeof(cand), cand_cmp);
    /* exact checks, best candidates first; per length every start that reaches its run, fewest ports kept (the
     * checks cost k * L each: they stop at FOLD_WORK too) */
    int64_t work = 0;
    for (int c = 0; c < nc && c < FOLD_TRIES && !best->k && work < FOLD_WORK; c++) {
        const int L = cands[c].L;
        runs(sig, n, L, H, run);
        int best_ports = 0;
        for (int s = 0; s + L <= n && work < FOLD_WORK; s++) {
            if (run[s] + 1 != cands[c].k) continue;
            work += (int64_t)cands[c].k * L;
            bool exact = true; /* hashes agree: the signatures must too */
            for (int j = 1; j < cands[c].k && exact; j++)
                exact = !memcmp(&sig[s], &sig[s + j * L], sizeof(uint64_t) * (size_t)L);
            if (!exact) continue;
            block b = {.s = s, .L = L, .k = cands[c].k, .moe_params = moe_params};
            if (check_block(g, last_use, &b, val_cls)) {
                int ports = b.n_data + b.n_outs;
                if (!best->k || ports < best_ports) {
                    block_free(best);
                    *best = b;
                    best_ports = ports;
                    continue;
                }
            }
            block_free(&b);
        }
    }
done:
    SI_FREE_ALL(sig, H, run, last_use, val_cls, cands);
    return st;
}

void si_folding_free(si_folding *f) {
    if (!f) return;
    for (int i = 0; i < f->n_funcs; i++) si_graph_free(f->funcs[i].body);
    memset(f, 0, sizeof *f);
}

si_result si_graph_fold_blocks(si_graph *g, bool moe_params, si_folding *out) {
    memset(out, 0, sizeof *out);
    for (int fid = 0; fid < SI_FOLD_MAX_FUNCS; fid++) {
        block b;
        si_result st = find_block(g, moe_params, &b);
        if (!st && !b.k) break;
        si_graph *body = NULL;
        if (!st) st = make_body(g, &b, &body);
        int L = b.L, k = b.k;
        if (!st && !(st = add_domain(g)) && !(st = rewrite(g, &b, fid))) st = si_graph_finalize(g);
        block_free(&b);
        if (st) {
            si_graph_free(body);
            si_folding_free(out);
            return st;
        }
        out->funcs[fid] = (si_fold_func){.body = body, .calls = k, .nodes = L};
        out->n_funcs = fid + 1;
    }
    return SI_OK;
}
