/*
 * codec.c — the graph IR as bytes, for a device in another process (see wire.h). A compact binary form of
 * si_graph, field by field; constants travel by reference into shared memory, attribute tensors (small)
 * inline. The decoder rebuilds the graph without si_graph_finalize's reordering, so node and value indices
 * are the sender's: the worker's per-node supports_op answers line up with the parent's nodes.
 *
 * Every field of si_graph, si_val, si_node and si_attr that a device may read is written. The static asserts
 * below stop the build when one of those structs changes: add the new field here (both directions), then
 * update the sizes.
 */
#include "device/isolate/wire.h"
#include "ops/ops.h"

#include <stdio.h>

#if defined(__x86_64__) || defined(__aarch64__)
/* Not encoded, since a graph with subgraphs is refused before it is sent (iso_compile): si_graph's parent, depth,
 * outer and syms, si_val's is_outer, si_node's implicit, si_attr's g and gs (symbolic dimensions travel as
 * their values; their names stay with the sender). Nor si_val's is_param: in the helper process a parameter is a
 * plain input (its tensors there are the request's shared-memory copies, not the model's constants). si_val's dq_*
 * (a folded DequantizeLinear's quantized source) travel with the constant, so the helper's CPU device fuses the QDQ
 * form as the in-process one does. */
_Static_assert(sizeof(si_graph) == 144 && sizeof(si_val) == 200 && sizeof(si_node) == 96 && sizeof(si_attr) == 88 &&
                   sizeof(si_opset) == 16,
               "the IR structs changed: encode and decode the new fields in src/device/isolate/codec.c");
#endif

#define GRAPH_MAGIC 0x48505247u /* "GRPH" */
#define MAX_ITEMS (1u << 24)     /* values, nodes, attributes, ports: a sanity bound */

// --- encode ---------------------------------------------------------------------------------------------

static void enc_tensor_inline(si_wbuf *b, const si_tensor *t) {
    wb_shape(b, t->dtype, t->ndim, t->dims);
    wb_u64(b, t->nbytes);
    wb_u8(b, t->data != NULL);
    if (t->data) wb_bytes(b, t->data, t->nbytes);
}

static void enc_attr(si_wbuf *b, const si_attr *a) {
    wb_str(b, a->name);
    wb_i32(b, (int32_t)a->type);
    wb_f32(b, a->f);
    wb_i64(b, a->i);
    wb_str(b, a->s);
    wb_u8(b, a->t != NULL);
    if (a->t) enc_tensor_inline(b, a->t);
    wb_i32(b, a->n);
    wb_u8(b, (uint8_t)((a->floats ? 1 : 0) | (a->ints ? 2 : 0) | (a->strings ? 4 : 0)));
    if (a->floats) wb_bytes(b, a->floats, sizeof(float) * (size_t)a->n);
    if (a->ints) wb_bytes(b, a->ints, sizeof(int64_t) * (size_t)a->n);
    for (int i = 0; a->strings && i < a->n; i++) wb_str(b, a->strings[i]);
}

/* A constant by reference: shape, size and, with data, where the store placed it. */
static bool enc_const(si_wbuf *b, const si_tensor *t, si_const_place_fn place, void *user) {
    wb_shape(b, t->dtype, t->ndim, t->dims);
    wb_u64(b, t->nbytes);
    if (!t->data) return true;
    uint32_t seg = 0;
    uint64_t off = 0;
    if (!place(user, t, &seg, &off)) return false;
    wb_u32(b, seg);
    wb_u64(b, off);
    return true;
}

bool si_graph_encode(si_wbuf *b, const si_graph *g, si_const_place_fn place, void *user) {
    wb_u32(b, GRAPH_MAGIC);
    wb_i64(b, g->ir_version);
    wb_str(b, g->producer);
    wb_u32(b, (uint32_t)g->n_opsets);
    for (int i = 0; i < g->n_opsets; i++) {
        wb_str(b, g->opsets[i].domain);
        wb_i64(b, g->opsets[i].version);
    }
    wb_u32(b, (uint32_t)g->n_values);
    for (int v = 0; v < g->n_values; v++) {
        const si_val *val = &g->values[v];
        wb_str(b, val->name);
        wb_shape(b, val->dtype, val->ndim, val->dims);
        uint32_t named = 0;
        for (int k = 0; k < SI_MAX_DIMS; k++)
            if (val->dim_names[k]) named |= 1u << k;
        wb_u32(b, named);
        for (int k = 0; k < SI_MAX_DIMS; k++)
            if (val->dim_names[k]) wb_str(b, val->dim_names[k]);
        const si_tensor *t = val->const_val;
        const bool dq = t && val->dq_q && val->dq_q->data && val->dq_scale && val->dq_scale->data && (!val->dq_zp || val->dq_zp->data);
        wb_u8(b, (uint8_t)((val->is_input ? 1 : 0) | (val->is_output ? 2 : 0) | (val->is_initializer ? 4 : 0) |
                           (t ? 8 : 0) | (t && t->data ? 16 : 0) | (dq ? 32 : 0) | (dq && val->dq_zp ? 64 : 0)));
        if (t && !enc_const(b, t, place, user)) return false;
        if (dq) { /* a folded DequantizeLinear's source: its quantized values, scale, zero point, axis */
            wb_i32(b, val->dq_axis);
            if (!enc_const(b, val->dq_q, place, user) || !enc_const(b, val->dq_scale, place, user) ||
                (val->dq_zp && !enc_const(b, val->dq_zp, place, user)))
                return false;
        }
    }
    wb_u32(b, (uint32_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        wb_str(b, n->name);
        wb_str(b, n->op_type);
        wb_str(b, n->domain);
        wb_i32(b, n->opset);
        wb_u32(b, (uint32_t)n->n_in);
        for (int k = 0; k < n->n_in; k++) wb_i32(b, n->in[k]);
        wb_u32(b, (uint32_t)n->n_out);
        for (int k = 0; k < n->n_out; k++) wb_i32(b, n->out[k]);
        wb_u32(b, (uint32_t)n->n_attr);
        for (int k = 0; k < n->n_attr; k++) enc_attr(b, &n->attrs[k]);
    }
    wb_u32(b, (uint32_t)g->n_inputs);
    for (int i = 0; i < g->n_inputs; i++) wb_i32(b, g->inputs[i]);
    wb_u32(b, (uint32_t)g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) wb_i32(b, g->outputs[i]);
    return !b->oom;
}

// --- decode ---------------------------------------------------------------------------------------------

typedef struct dec {
    si_rbuf *r;
    si_seg_map_fn map;
    void *user;
    si_result st; /* the first failure (message set) */
} dec;

static bool dec_fail(dec *d, si_result st, const char *fmt, const char *what) {
    if (!d->st) d->st = si_err(st, fmt, what);
    return false;
}

/* The reader went bad: a truncated or malformed message. */
static bool dec_ok(dec *d, const char *what) {
    if (d->st) return false;
    if (d->r->bad) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", what);
    return true;
}

static si_result oom(void) { return si_err(SI_ERR_NO_MEM, "out of memory decoding a graph"); }

/* Zeroed room for n items (and one spare) of `size` bytes, when what is left of the message can hold n items of
 * at least `least` bytes each. NULL with d->st set when it cannot (a malformed message naming what) or when out
 * of memory. */
static void *dec_alloc(dec *d, uint32_t n, size_t least, size_t size, const char *what) {
    if ((size_t)n * least > d->r->n - d->r->pos) {
        dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", what);
        return NULL;
    }
    void *p = si_calloc((size_t)n + 1, size);
    if (!p) d->st = oom();
    return p;
}

/* A counted array: its count n (at most MAX_ITEMS), then room for n items (dec_alloc), n + 1 in all: the
 * capacity, in *cap unless NULL. NULL with d->st set when the message is malformed (naming what) or when out of
 * memory. */
static void *dec_array(dec *d, size_t least, size_t size, const char *what, uint32_t *n, int *cap) {
    *n = rb_count(d->r, MAX_ITEMS);
    void *p = dec_ok(d, what) ? dec_alloc(d, *n, least, size, what) : NULL;
    if (p && cap) *cap = (int)*n + 1;
    return p;
}

static si_tensor *dec_tensor_inline(dec *d) {
    si_dtype dt;
    int nd;
    int64_t dims[SI_MAX_DIMS];
    rb_shape(d->r, &dt, &nd, dims, false);
    uint64_t nbytes = rb_u64(d->r);
    bool has = rb_u8(d->r);
    if (!dec_ok(d, "attribute tensor")) return NULL;
    if (si_wire_nbytes(dt, nd, dims) != nbytes) {
        dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "attribute tensor size");
        return NULL;
    }
    const void *src = has ? rb_bytes(d->r, (size_t)nbytes) : NULL;
    if (!dec_ok(d, "attribute tensor data")) return NULL;
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t) { d->st = oom(); return NULL; }
    t->dtype = dt;
    t->ndim = nd;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)nd);
    t->nbytes = (size_t)nbytes;
    if (has && nbytes) {
        if (!(t->data = si_malloc((size_t)nbytes))) { si_free(t); d->st = oom(); return NULL; }
        memcpy(t->data, src, (size_t)nbytes);
        t->owned = true;
    }
    return t;
}

static bool dec_attr(dec *d, si_attr *a) {
    si_rbuf *r = d->r;
    a->name = rb_str(r, NULL);
    int32_t type = rb_i32(r);
    a->type = (si_attr_type)(type >= 0 && type <= SI_ATTR_TYPE_PROTOS ? type : 0);
    a->f = rb_f32(r);
    a->i = rb_i64(r);
    a->s = rb_str(r, NULL);
    if (rb_u8(r) && dec_ok(d, "attribute") && !(a->t = dec_tensor_inline(d))) return false;
    int32_t n = rb_i32(r);
    uint8_t has = rb_u8(r);
    if (!dec_ok(d, "attribute") || !a->name) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "attribute");
    if (n < 0 || (uint32_t)n > MAX_ITEMS) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "attribute count");
    a->n = n;
    if (has & 1) {
        const void *p = rb_bytes(r, sizeof(float) * (size_t)n);
        if (!dec_ok(d, "floats")) return false;
        if (!(a->floats = si_malloc(sizeof(float) * ((size_t)n + 1)))) { d->st = oom(); return false; }
        if (n) memcpy(a->floats, p, sizeof(float) * (size_t)n);
    }
    if (has & 2) {
        const void *p = rb_bytes(r, sizeof(int64_t) * (size_t)n);
        if (!dec_ok(d, "ints")) return false;
        if (!(a->ints = si_malloc(sizeof(int64_t) * ((size_t)n + 1)))) { d->st = oom(); return false; }
        if (n) memcpy(a->ints, p, sizeof(int64_t) * (size_t)n);
    }
    if (has & 4) {
        if (!(a->strings = dec_alloc(d, (uint32_t)n, 1, sizeof(char *), "strings"))) return false;
        for (int i = 0; i < n; i++)
            if (!(a->strings[i] = rb_str(r, NULL))) return dec_ok(d, "strings") && dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "a NULL string");
    }
    return dec_ok(d, "attribute");
}

/* A constant: a view into its segment, into *slot (a field of val, freed with the graph). */
static bool dec_const(dec *d, si_val *val, bool has_data, si_tensor **slot) {
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t) { d->st = oom(); return false; }
    *slot = t; /* freed with the graph (si_const_unref: the view's data is not owned) */
    int64_t dims[SI_MAX_DIMS];
    int nd;
    si_dtype dt;
    rb_shape(d->r, &dt, &nd, dims, false);
    uint64_t nbytes = rb_u64(d->r);
    if (!dec_ok(d, "constant")) return false;
    if (si_wire_nbytes(dt, nd, dims) != nbytes) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "constant size");
    t->dtype = dt;
    t->ndim = nd;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)nd);
    t->nbytes = (size_t)nbytes;
    if (!has_data) return true;
    uint32_t seg = rb_u32(d->r);
    uint64_t off = rb_u64(d->r);
    if (!dec_ok(d, "constant")) return false;
    size_t size = 0;
    const uint8_t *base = d->map(d->user, seg, &size);
    if (!base) return dec_fail(d, SI_ERR_PARSE, "isolated device: constant '%s' is in a shared-memory segment that was not sent", val->name);
    if (off > size || nbytes > size - off || off % SI_WIRE_ALIGN)
        return dec_fail(d, SI_ERR_PARSE, "isolated device: constant '%s' lies outside its shared-memory segment", val->name);
    t->data = (void *)(uintptr_t)(base + off); /* read-only mapping: devices copy what they keep */
    return true;
}

static bool dec_index(dec *d, int32_t v, int n, bool optional) {
    if ((optional && v == -1) || (v >= 0 && v < n)) return true;
    return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "a value index out of range");
}

static bool dec_ints(dec *d, int **out, int *n_out, int n_values, bool optional) {
    uint32_t n;
    if (!(*out = dec_array(d, 4, sizeof(int), "index list", &n, NULL))) return false;
    *n_out = (int)n;
    for (uint32_t k = 0; k < n; k++) {
        (*out)[k] = rb_i32(d->r);
        if (!dec_index(d, (*out)[k], n_values, optional)) return false;
    }
    return dec_ok(d, "index list");
}

static bool dec_body(dec *d, si_graph *g) {
    si_rbuf *r = d->r;
    if (rb_u32(r) != GRAPH_MAGIC) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "magic");
    g->ir_version = rb_i64(r);
    g->producer = rb_str(r, NULL);
    uint32_t no = rb_count(r, MAX_ITEMS);
    if (!dec_ok(d, "header")) return false;
    if (!(g->opsets = dec_alloc(d, no, 12, sizeof(si_opset), "opsets"))) return false;
    for (uint32_t i = 0; i < no; i++) {
        g->opsets[i].domain = rb_str(r, NULL);
        g->opsets[i].version = rb_i64(r);
        g->n_opsets = (int)i + 1;
        if (!dec_ok(d, "opset") || !g->opsets[i].domain) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "opset");
    }
    uint32_t nv;
    if (!(g->values = dec_array(d, 13, sizeof(si_val), "values", &nv, &g->cap_values))) return false;
    for (uint32_t v = 0; v < nv; v++) {
        si_val *val = &g->values[v];
        g->n_values = (int)v + 1;
        val->producer = -1;
        val->name = rb_str(r, NULL);
        rb_shape(r, &val->dtype, &val->ndim, val->dims, true);
        uint32_t named = rb_u32(r);
        for (int k = 0; k < SI_MAX_DIMS; k++)
            if (named & (1u << k)) val->dim_names[k] = rb_str(r, NULL);
        uint8_t fl = rb_u8(r);
        if (!dec_ok(d, "value") || !val->name) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "value");
        val->is_input = fl & 1;
        val->is_output = (fl & 2) != 0;
        val->is_initializer = (fl & 4) != 0;
        if ((fl & 8) && !dec_const(d, val, (fl & 16) != 0, &val->const_val)) return false;
        if ((fl & 32) && (fl & 8)) {
            val->dq_axis = rb_i32(r);
            if (!dec_ok(d, "value") || !dec_const(d, val, true, &val->dq_q) || !dec_const(d, val, true, &val->dq_scale) ||
                ((fl & 64) && !dec_const(d, val, true, &val->dq_zp)))
                return false;
        }
    }
    uint32_t nn;
    if (!(g->nodes = dec_array(d, 32, sizeof(si_node), "nodes", &nn, &g->cap_nodes))) return false;
    for (uint32_t i = 0; i < nn; i++) {
        si_node *n = &g->nodes[i];
        g->n_nodes = (int)i + 1;
        n->name = rb_str(r, NULL);
        n->op_type = rb_str(r, NULL);
        n->domain = rb_str(r, NULL);
        n->opset = rb_i32(r);
        if (!dec_ok(d, "node") || !n->name || !n->op_type || !n->domain) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "node");
        if (!dec_ints(d, &n->in, &n->n_in, g->n_values, true) || !dec_ints(d, &n->out, &n->n_out, g->n_values, true)) return false;
        uint32_t na;
        if (!(n->attrs = dec_array(d, 30, sizeof(si_attr), "attributes", &na, NULL))) return false;
        for (uint32_t k = 0; k < na; k++) {
            n->n_attr = (int)k + 1;
            if (!dec_attr(d, &n->attrs[k])) return false;
        }
        n->op = si_op_find(n->domain, n->op_type, n->opset); /* the version of the op for this opset */
    }
    if (!dec_ints(d, &g->inputs, &g->n_inputs, g->n_values, false) || !dec_ints(d, &g->outputs, &g->n_outputs, g->n_values, false))
        return false;
    if (r->pos != r->n) return dec_fail(d, SI_ERR_PARSE, "isolated device: malformed graph message (%s)", "bytes after the graph");
    /* producers, as si_graph_finalize sets them (the sender's graph was finalized: no reordering here) */
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            if (g->values[v].producer >= 0)
                return dec_fail(d, SI_ERR_PARSE, "isolated device: value '%s' is produced twice", g->values[v].name);
            g->values[v].producer = i;
        }
    }
    return true;
}

si_result si_graph_decode(si_rbuf *r, si_seg_map_fn map, void *user, si_graph **out) {
    *out = NULL;
    si_graph *g = si_graph_new();
    if (!g) return oom();
    dec d = {.r = r, .map = map, .user = user};
    if (!dec_body(&d, g)) {
        si_error e;
        si_error_save(&e, d.st ? d.st : SI_ERR_PARSE);
        si_graph_free(g);
        return si_error_restore(&e);
    }
    *out = g;
    return SI_OK;
}
