/*
 * ocl_model.c — the OCL device's compiled models and requests.
 *
 * Plans: every node is planned by ocl_ops.c into kernel launches ("steps") whose arguments name graph values;
 * views (Reshape, Flatten, Squeeze, Identity, ...) share their input's buffer. Values then get storage: graph
 * inputs have their own per-request buffer, constants are uploaded once and shared by all requests, and
 * intermediates are packed into a few per-request buffers by liveness (a buffer is reused once the last node
 * that reads its value has run).
 *
 * Shapes: a plan is made for one set of input shapes. When every input shape is fixed at compile, the one plan
 * is made by compile (a node the kernels cannot take fails the compile). When some input dimension is open
 * (symbolic or unknown), compile checks types and ranks, builds the program and uploads nothing yet; the
 * first inference at each new set of input shapes specialises the graph (shape inference at those shapes)
 * and plans it, and the model keeps the recent plans (`plan_cache`, default 8, least recently used dropped
 * when no request is bound to it). The weights (constants of the submodel as compiled) are uploaded once
 * per compiled model and shared by every plan; only values that become constant at a shape (Shape chains)
 * are uploaded per plan. A request is bound to one plan at a time and rebinds (buffers, kernel arguments)
 * when its inputs change shape. A plan that a shape cannot take (an op the kernels do not run at that size)
 * fails that inference with a named error, which the fail-safe layer treats like any device failure.
 *
 * Requests: each owns a command queue, its buffers and one kernel object per step with the arguments set
 * once per plan, so requests are independent and may run on different threads at the same time. Inference
 * uploads the inputs, enqueues the steps, downloads the outputs and waits; host<->device copies happen only
 * at the model's inputs and outputs. On PoCL the first inference of each plan runs alone (ocl.c).
 */
#include "device/ocl/ocl.h"
#include "util/prof.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define FOLD_MAX ((size_t)256 << 20) /* shape inference at a new shape folds constants up to this size */
#define PLAN_CACHE_DEFAULT 8
#define PROBE_DIM 32 /* an open dimension, as supports_op sees it (see plan_init) */

// --- plans ---------------------------------------------------------------------------------------------------

typedef enum { ST_NONE, ST_INPUT, ST_CONST, ST_TEMP } store_kind;

typedef struct ocl_icheck {
    int vid, node;   /* the index value and the node reading it */
    int64_t limit;   /* valid indices: [-limit, limit) */
} ocl_icheck;

typedef struct ocl_model ocl_model;

/* One plan: the steps and storage for one set of input shapes. */
struct ocl_build {
    ocl_model *owner;
    ocl_dev *dev;
    const ocl_caps *caps;  /* the model's */
    cl_context ctx;        /* the model's */
    si_graph *g;           /* the model's graph at these input shapes; shapes completed by the planners */
    ocl_step *steps;
    int n_steps, cap_steps;
    int **meta_vals;       /* compile-time int arrays (freed once uploaded) */
    int *meta_n;
    int n_meta, cap_meta;
    cl_mem *metas;         /* uploaded meta arrays */
    int *alias_of;         /* per value: the value whose buffer it shares, or -1 */
    int *def_t;            /* per value: the node time that produced it, -1 for none */
    int *node_t;           /* per graph node: its position among the nodes that run, -1 for folded ones */
    int cur_t;             /* node time being planned */
    size_t scratch;        /* bytes of the per-request scratch buffer */
    /* storage, per root value (alias_of == -1) */
    store_kind *kind;
    int *slot;             /* ST_TEMP: slot index; ST_INPUT: input port */
    cl_mem *cbuf;          /* ST_CONST: uploaded constant (NULL when no step reads it); the model's for its weights */
    bool *cown;            /* per value: cbuf is this plan's own (a value constant only at these shapes) */
    size_t *slot_bytes;
    int n_slots;
    ocl_icheck *ichecks;   /* index inputs checked on the host before each inference */
    int n_ichecks;
    atomic_bool warm;      /* PoCL: every step has run once (see "PoCL's kernel cache" in ocl.c) */
    int64_t *key;          /* the input shapes: per input ndim, then its dims */
    int key_len;
    int refs;              /* requests bound to it (under the model's lock) */
    unsigned long used;    /* the model's tick when a request last bound to it */
};

/* The compiled model: what every plan shares. */
struct ocl_model {
    si_cmodel base;
    ocl_dev *dev;
    ocl_caps caps;         /* the device's, with compile options applied */
    cl_context ctx;
    cl_program prog;
    si_graph *g;           /* the submodel as compiled (input dimensions may be open) */
    cl_mem *cbuf;          /* per value of g: its constant, uploaded once when a plan first reads it */
    si_port *in_ports, *out_ports;
    pthread_mutex_t lock;  /* plans, their refs and cbuf */
    ocl_build **plans;
    int n_plans, cap_plans, max_plans;
    unsigned long tick;
    ocl_build *fixed;      /* every input shape fixed at compile: the one plan */
    bool profile;          /* option profile=on: requests time their kernels (event timestamps) */
    struct ocl_pbuf {      /* parameters (a function body's weights, si_val.is_param): uploaded once per bound
                            * constant, shared by every request and plan (under lock) */
        const si_tensor *t;
        cl_mem mem;
    } *pbufs;
    int n_pbufs, cap_pbufs;
};

typedef ocl_build ocl_mdl;

static int root_of(const ocl_mdl *m, int v) {
    for (int guard = 0; v >= 0 && m->alias_of[v] >= 0 && guard < 1 << 20; guard++) v = m->alias_of[v];
    return v;
}

si_result ocl_emit(ocl_plan *p, const ocl_step *st) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    if (st->n_args > OCL_MAX_ARGS) return si_err(SI_ERR_INTERNAL, "too many kernel arguments");
    if (m->n_steps == m->cap_steps) {
        int cap = m->cap_steps ? m->cap_steps * 2 : 64;
        ocl_step *ns = si_realloc(m->steps, sizeof *ns * (size_t)cap);
        if (!ns) return si_err(SI_ERR_NO_MEM, "out of memory");
        m->steps = ns;
        m->cap_steps = cap;
    }
    ocl_step *d = &m->steps[m->n_steps++];
    *d = *st;
    d->node = p->node_index;
    return SI_OK;
}

si_result ocl_meta(ocl_plan *p, const int *vals, int n, int *id) {
    ocl_mdl *m = p->build;
    *id = 0;
    if (!m) return SI_OK;
    if (m->n_meta == m->cap_meta) {
        int cap = m->cap_meta ? m->cap_meta * 2 : 64;
        int **nv = si_realloc(m->meta_vals, sizeof *nv * (size_t)cap);
        if (nv) m->meta_vals = nv;
        int *nn = si_realloc(m->meta_n, sizeof *nn * (size_t)cap);
        if (nn) m->meta_n = nn;
        if (!nv || !nn) return si_err(SI_ERR_NO_MEM, "out of memory");
        m->cap_meta = cap;
    }
    int *c = si_malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
    if (!c) return si_err(SI_ERR_NO_MEM, "out of memory");
    if (n > 0) memcpy(c, vals, sizeof(int) * (size_t)n);
    else c[0] = 0;
    m->meta_vals[m->n_meta] = c;
    m->meta_n[m->n_meta] = n > 0 ? n : 1;
    *id = m->n_meta++;
    return SI_OK;
}

si_result ocl_alias(ocl_plan *p, int out_k, int in_j) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    int vo = p->out[out_k].vid, vi = p->in[in_j].vid;
    if (vo < 0 || vi < 0) return SI_OK;
    m->alias_of[vo] = vi;
    return SI_OK;
}

si_result ocl_const_out(ocl_plan *p, int k, const int64_t *vals, int n) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    int v = p->out[k].vid;
    si_val *val = &m->g->values[v];
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_result s = si_tensor_init(t, SI_I64, p->out[k].ndim, p->out[k].dims);
    if (!s) s = si_tensor_alloc(t);
    if (s) {
        si_free(t);
        return s;
    }
    if (n > 0) memcpy(t->data, vals, sizeof(int64_t) * (size_t)n);
    si_const_unref(val->const_val);
    val->const_val = t;
    return SI_OK;
}

si_result ocl_index_check(ocl_plan *p, int k, int64_t limit) {
    ocl_mdl *m = p->build;
    if (!m) return SI_OK;
    ocl_icheck *n = si_realloc(m->ichecks, sizeof *n * (size_t)(m->n_ichecks + 1));
    if (!n) return si_err(SI_ERR_NO_MEM, "out of memory");
    m->ichecks = n;
    n[m->n_ichecks].vid = p->in[k].vid;
    n[m->n_ichecks].node = p->node_index;
    n[m->n_ichecks].limit = limit;
    m->n_ichecks++;
    return SI_OK;
}

void ocl_scratch(ocl_plan *p, size_t bytes) {
    if (p->build && bytes > p->build->scratch) p->build->scratch = bytes;
}

static void plan_free(ocl_mdl *m) {
    if (!m) return;
    if (m->metas)
        for (int i = 0; i < m->n_meta; i++)
            if (m->metas[i]) clReleaseMemObject(m->metas[i]);
    if (m->meta_vals)
        for (int i = 0; i < m->n_meta; i++) si_free(m->meta_vals[i]);
    if (m->cbuf && m->cown && m->g)
        for (int v = 0; v < m->g->n_values; v++)
            if (m->cbuf[v] && m->cown[v]) clReleaseMemObject(m->cbuf[v]);
    SI_FREE_ALL(m->metas, m->meta_vals, m->meta_n, m->steps, m->alias_of, m->def_t, m->node_t, m->kind, m->slot, m->cbuf, m->cown, m->slot_bytes,
                 m->ichecks, m->key);
    si_graph_free(m->g);
    si_free(m);
}

static size_t value_bytes(const si_val *v) {
    if (v->ndim < 0) return 0;
    return (size_t)si_shape_count(v->ndim, v->dims) * si_dtype_size(v->dtype);
}

static bool shape_known(const si_val *v) {
    if (v->dtype == SI_DTYPE_UNDEFINED || v->ndim < 0) return false;
    for (int i = 0; i < v->ndim; i++)
        if (v->dims[i] < 0) return false;
    return true;
}

/* Fill the planner's view of node n from graph g. `probe` (supports_op on a graph whose dimensions may be open):
 * a value of known type and rank whose dimensions are not all known is seen with its open dimensions at
 * PROBE_DIM, so that the planner says whether it takes the node at all; a plan at the real shapes decides for
 * good. */
static void plan_init(ocl_plan *p, const si_graph *g, const si_node *n, int node_index, const ocl_caps *caps, ocl_mdl *build,
                      bool probe) {
    memset(p, 0, sizeof *p);
    p->node = n;
    p->node_index = node_index;
    p->caps = caps;
    p->build = build;
    p->n_in = n->n_in;
    p->n_out = n->n_out;
    for (int k = 0; k < n->n_in; k++) {
        ocl_desc *d = &p->in[k];
        d->vid = n->in[k];
        d->ndim = -1;
        if (d->vid < 0) continue;
        const si_val *v = &g->values[d->vid];
        d->dtype = v->dtype;
        d->cval = v->const_val;
        if (v->const_val) {
            d->dtype = v->const_val->dtype;
            d->ndim = v->const_val->ndim;
            memcpy(d->dims, v->const_val->dims, sizeof d->dims);
        } else if (shape_known(v) || (probe && si_dtype_valid(v->dtype) && v->ndim >= 0)) {
            d->ndim = v->ndim;
            for (int i = 0; i < v->ndim; i++) d->dims[i] = v->dims[i] >= 0 ? v->dims[i] : PROBE_DIM;
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        p->out[k].vid = n->out[k];
        p->out[k].ndim = -1;
    }
}

static bool node_folded(const si_graph *g, const si_node *n) {
    if (n->n_out == 0) return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && !g->values[n->out[k]].const_val) return false;
    return true;
}

si_result ocl_supports_op(const si_device *d_, const si_graph *g, const si_node *n) {
    const ocl_dev *d = d_->ctx;
    if (node_folded(g, n)) return SI_OK; /* computed at compile time: nothing runs */
    for (int k = 0; k < n->n_in + n->n_out; k++) { /* float8, 4-bit, 2-bit: no OpenCL kernel reads them */
        int vid = k < n->n_in ? n->in[k] : n->out[k - n->n_in];
        if (vid >= 0 && si_dtype_is_narrow(g->values[vid].dtype))
            return si_err(SI_ERR_UNSUPPORTED, "%s (node '%s'): element type %s is not supported by OCL", n->op_type, n->name,
                          si_dtype_name(g->values[vid].dtype));
    }
    if (n->n_in > OCL_MAX_IO || n->n_out > OCL_MAX_IO)
        return si_err(SI_ERR_UNSUPPORTED, "node '%s' has more than %d inputs or outputs", n->name, OCL_MAX_IO);
    ocl_plan p;
    plan_init(&p, g, n, -1, &d->caps, NULL, true);
    bool open = false;
    for (int k = 0; k < n->n_in; k++)
        if (n->in[k] >= 0 && !g->values[n->in[k]].const_val && !shape_known(&g->values[n->in[k]])) open = true;
    si_result s = ocl_plan_node(&p);
    /* with open dimensions the probe's sizes may not fit each other (a pooling window larger than the probe):
     * that says nothing of the real shapes, which a plan checks at the first inference with them */
    if (s == SI_ERR_INVALID_ARG && open) return SI_OK;
    return s;
}

/* A device buffer of `bytes` (4 when 0) made with `flags` (from data when given); DEVICE naming `what` when it is
 * over the device's largest allocation or the device refuses it. */
static si_result ctx_buffer(cl_context ctx, const ocl_caps *caps, cl_mem_flags flags, const void *data, size_t bytes, cl_mem *out,
                            const char *what) {
    cl_int e;
    if ((cl_ulong)bytes > caps->max_alloc)
        return si_err(SI_ERR_DEVICE, "%s: %zu bytes exceed the device's largest allocation (%llu bytes): out of device memory",
                      what, bytes, (unsigned long long)caps->max_alloc);
    *out = clCreateBuffer(ctx, flags, bytes ? bytes : 4, (void *)data, &e);
    if (e != CL_SUCCESS) {
        *out = NULL;
        return ocl_cl_err(e, what);
    }
    return SI_OK;
}

static si_result make_buffer(ocl_mdl *m, cl_mem_flags flags, const void *data, size_t bytes, cl_mem *out, const char *what) {
    return ctx_buffer(m->ctx, m->caps, flags, data, bytes, out, what);
}

/* A read-only buffer holding a copy of data. */
static si_result upload(ocl_mdl *m, const void *data, size_t bytes, cl_mem *out, const char *what) {
    return make_buffer(m, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, data, bytes, out, what);
}

/* Plan every node (in order), recording output shapes in the model's graph. */
static si_result plan_nodes(ocl_mdl *m) {
    si_graph *g = m->g;
    m->cur_t = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        si_node *n = &g->nodes[i];
        if (node_folded(g, n)) continue;
        if (n->n_in > OCL_MAX_IO || n->n_out > OCL_MAX_IO)
            return si_err(SI_ERR_UNSUPPORTED, "node '%s' has more than %d inputs or outputs", n->name, OCL_MAX_IO);
        ocl_plan p;
        plan_init(&p, g, n, i, m->caps, m, false);
        m->node_t[i] = m->cur_t;
        si_result s = ocl_plan_node(&p);
        if (s) return s;
        for (int k = 0; k < n->n_out; k++) {
            int v = n->out[k];
            if (v < 0) continue;
            si_val *val = &g->values[v];
            const ocl_desc *o = &p.out[k];
            if (shape_known(val)) {
                bool same = val->ndim == o->ndim && val->dtype == o->dtype;
                for (int j = 0; same && j < o->ndim; j++) same = val->dims[j] == o->dims[j];
                if (!same) {
                    char a[160], b[160];
                    return si_err(SI_ERR_INTERNAL, "%s (node '%s'): output %d has shape %s, but shape inference says %s",
                                  n->op_type, n->name, k, si_shape_str(a, sizeof a, o->dtype, o->ndim, o->dims),
                                  si_shape_str(b, sizeof b, val->dtype, val->ndim, val->dims));
                }
            }
            val->dtype = o->dtype;
            val->ndim = o->ndim;
            memcpy(val->dims, o->dims, sizeof val->dims);
            m->def_t[v] = m->cur_t;
        }
        m->cur_t++;
    }
    return SI_OK;
}

/* Give every root value a storage and pack intermediates into slots by liveness. */
static si_result plan_storage(ocl_mdl *m) {
    si_graph *g = m->g;
    int nv = g->n_values, T = m->cur_t;
    int *first = si_malloc(sizeof(int) * (size_t)(nv + 1));
    int *last = si_malloc(sizeof(int) * (size_t)(nv + 1));
    int *slot_free_at = NULL; /* per slot: 1 when free */
    si_result s = SI_OK;
    if (!first || !last) { s = si_err(SI_ERR_NO_MEM, "out of memory"); goto out; }
    for (int v = 0; v < nv; v++) {
        first[v] = -1;
        last[v] = -1;
        m->slot[v] = -1;
        m->kind[v] = ST_NONE;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        m->kind[g->inputs[i]] = ST_INPUT;
        m->slot[g->inputs[i]] = i;
    }
    for (int v = 0; v < nv; v++) {
        if (m->alias_of[v] >= 0) continue;
        if (g->values[v].const_val) m->kind[v] = ST_CONST;
        else if (m->def_t[v] >= 0 && m->kind[v] == ST_NONE) {
            m->kind[v] = ST_TEMP;
            first[v] = last[v] = m->def_t[v];
        }
    }
    /* a value (through any of its views) lives until the last node whose steps read or write it */
    for (int i = 0; i < m->n_steps; i++) {
        const ocl_step *st = &m->steps[i];
        int t = m->node_t[st->node];
        for (int a = 0; a < st->n_args; a++) {
            if (st->args[a].kind != OA_VAL) continue;
            int r = root_of(m, st->args[a].i);
            if (r >= 0 && m->kind[r] == ST_TEMP && last[r] < t) last[r] = t;
        }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        int r = root_of(m, g->outputs[i]);
        if (r >= 0 && m->kind[r] == ST_TEMP) last[r] = T + 1;
    }
    /* greedy: at node time t, give the values defined at t a free slot (best fit, else grow the largest
     * free one, else a new slot); then release the values last used at t */
    slot_free_at = si_calloc((size_t)nv + 1, sizeof(int));
    m->slot_bytes = si_calloc((size_t)nv + 1, sizeof(size_t));
    if (!slot_free_at || !m->slot_bytes) { s = si_err(SI_ERR_NO_MEM, "out of memory"); goto out; }
    m->n_slots = 0;
    for (int t = 0; t < T; t++) {
        for (int v = 0; v < nv; v++) {
            if (m->kind[v] != ST_TEMP || first[v] != t) continue;
            size_t need = value_bytes(&g->values[v]);
            if (need == 0) need = 4;
            int best = -1, largest = -1;
            for (int k = 0; k < m->n_slots; k++) {
                if (!slot_free_at[k]) continue;
                if (m->slot_bytes[k] >= need && (best < 0 || m->slot_bytes[k] < m->slot_bytes[best])) best = k;
                if (largest < 0 || m->slot_bytes[k] > m->slot_bytes[largest]) largest = k;
            }
            if (best < 0 && largest >= 0) {
                best = largest;
                m->slot_bytes[best] = need;
            }
            if (best < 0) {
                best = m->n_slots++;
                m->slot_bytes[best] = need;
            }
            slot_free_at[best] = 0;
            m->slot[v] = best;
        }
        for (int v = 0; v < nv; v++)
            if (m->kind[v] == ST_TEMP && last[v] == t && m->slot[v] >= 0) slot_free_at[m->slot[v]] = 1;
    }
    for (int k = 0; k < m->n_slots; k++)
        if ((cl_ulong)m->slot_bytes[k] > m->caps->max_alloc) {
            s = si_err(SI_ERR_DEVICE, "an intermediate buffer of %zu bytes exceeds the device's largest allocation (%llu bytes): out of device memory",
                       m->slot_bytes[k], (unsigned long long)m->caps->max_alloc);
            goto out;
        }
out:
    si_free(first);
    si_free(last);
    si_free(slot_free_at);
    return s;
}

static si_result upload_constants(ocl_mdl *m) {
    si_graph *g = m->g;
    m->metas = si_calloc((size_t)m->n_meta + 1, sizeof(cl_mem));
    if (!m->metas) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (int i = 0; i < m->n_meta; i++) {
        si_result s = upload(m, m->meta_vals[i], sizeof(int) * (size_t)m->meta_n[i], &m->metas[i], "uploading kernel parameters");
        if (s) return s;
        si_free(m->meta_vals[i]);
        m->meta_vals[i] = NULL;
    }
    for (int i = 0; i < m->n_steps; i++) {
        const ocl_step *st = &m->steps[i];
        for (int a = 0; a < st->n_args; a++) {
            if (st->args[a].kind != OA_VAL) continue;
            int r = root_of(m, st->args[a].i);
            if (r < 0 || m->kind[r] != ST_CONST || m->cbuf[r]) continue;
            /* the model's weights are uploaded once for every plan; a value that is constant only at these
             * shapes (folded by shape inference) is this plan's own */
            ocl_model *M = m->owner;
            bool shared = r < M->g->n_values && M->g->values[r].const_val == g->values[r].const_val;
            cl_mem *dst = shared ? &M->cbuf[r] : &m->cbuf[r];
            if (!*dst) {
                const si_tensor *c = g->values[r].const_val;
                char what[200];
                snprintf(what, sizeof what, "uploading constant '%s'", g->values[r].name);
                si_result s = upload(m, c->data, c->nbytes, dst, what);
                if (s) return s;
            }
            m->cbuf[r] = *dst;
            m->cown[r] = !shared;
        }
    }
    return SI_OK;
}

/* Every input shape fixed at compile: the one plan is built, its steps read the constants they need from device
 * memory, and nothing reads the host copies again but the run's copy of a constant output. The others are dropped
 * from the model's graphs (a copy the submodel's own graph shares stays alive there, for a recompile elsewhere;
 * what this device made itself, such as the dequantized weights of si_graph_fold_weights, goes). */
static void drop_host_consts(ocl_model *M) {
    ocl_mdl *m = M->fixed;
    si_graph *g = m->g;
    bool *keep = si_calloc((size_t)g->n_values + 1, sizeof(bool));
    if (!keep) return; /* an optimisation: keep everything */
    for (int k = 0; k < g->n_outputs; k++) {
        const int r = root_of(m, g->outputs[k]);
        if (r >= 0) keep[r] = true;
    }
    for (int v = 0; v < g->n_values && v < M->g->n_values; v++) {
        si_val *pv = &g->values[v], *mv = &M->g->values[v];
        if (keep[v] || !pv->const_val || pv->const_val->nbytes < 4096) continue;
        if (mv->const_val == pv->const_val) {
            si_const_unref(mv->const_val);
            mv->const_val = NULL;
            si_val_set_dq(mv, NULL, NULL, NULL, 0);
        }
        si_const_unref(pv->const_val);
        pv->const_val = NULL;
        si_val_set_dq(pv, NULL, NULL, NULL, 0);
    }
    si_free(keep);
}

// --- plans for input shapes ---------------------------------------------------------------------------------

static si_result plan_key(ocl_mdl *m) {
    const si_graph *g = m->g;
    int n = 0;
    for (int i = 0; i < g->n_inputs; i++) n += 1 + g->values[g->inputs[i]].ndim;
    m->key = si_malloc(sizeof(int64_t) * (size_t)(n + 1));
    if (!m->key) return si_err(SI_ERR_NO_MEM, "out of memory");
    m->key_len = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        m->key[m->key_len++] = v->ndim;
        for (int d = 0; d < v->ndim; d++) m->key[m->key_len++] = v->dims[d];
    }
    return SI_OK;
}

static bool plan_matches(const ocl_mdl *m, si_tensor *const *in, int n) {
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (o >= m->key_len || m->key[o++] != in[i]->ndim) return false;
        for (int d = 0; d < in[i]->ndim; d++)
            if (o >= m->key_len || m->key[o++] != in[i]->dims[d]) return false;
    }
    return o == m->key_len;
}

/* A plan of model M for the input shapes of `in` (NULL: the shapes as compiled, all fixed). Under M->lock, or
 * before M is shared. */
static si_result plan_build(ocl_model *M, si_tensor *const *in, ocl_mdl **out) {
    *out = NULL;
    ocl_mdl *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "out of memory");
    atomic_init(&m->warm, false);
    m->owner = M;
    m->dev = M->dev;
    m->caps = &M->caps;
    m->ctx = M->ctx;
    si_result s = si_graph_clone(M->g, &m->g);
    if (s) goto fail;
    si_graph *g = m->g;
    if (in) {
        for (int i = 0; i < g->n_inputs; i++) {
            si_val *v = &g->values[g->inputs[i]];
            v->ndim = in[i]->ndim;
            memcpy(v->dims, in[i]->dims, sizeof(int64_t) * (size_t)in[i]->ndim);
        }
        if ((s = si_graph_infer_shapes(g, FOLD_MAX))) goto fail;
    }
    int nv = g->n_values;
    m->alias_of = si_malloc(sizeof(int) * (size_t)(nv + 1));
    m->def_t = si_malloc(sizeof(int) * (size_t)(nv + 1));
    m->node_t = si_malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    m->kind = si_calloc((size_t)nv + 1, sizeof(store_kind));
    m->slot = si_malloc(sizeof(int) * (size_t)(nv + 1));
    m->cbuf = si_calloc((size_t)nv + 1, sizeof(cl_mem));
    m->cown = si_calloc((size_t)nv + 1, sizeof(bool));
    if (!m->alias_of || !m->def_t || !m->node_t || !m->kind || !m->slot || !m->cbuf || !m->cown) {
        s = si_err(SI_ERR_NO_MEM, "out of memory");
        goto fail;
    }
    for (int v = 0; v < nv; v++) m->alias_of[v] = m->def_t[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) m->node_t[i] = -1;
    for (int i = 0; i < g->n_inputs; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        if (!shape_known(v)) {
            char b[160];
            s = si_err(SI_ERR_UNSUPPORTED, "dynamic shape: input '%s' has shape %s", v->name,
                       si_shape_str(b, sizeof b, v->dtype, v->ndim < 0 ? 0 : v->ndim, v->dims));
            goto fail;
        }
    }
    if ((s = plan_nodes(m))) goto fail;
    for (int i = 0; i < g->n_outputs; i++)
        if (!shape_known(&g->values[g->outputs[i]])) {
            s = si_err(SI_ERR_UNSUPPORTED, "dynamic shape: the shape of output '%s' is unknown", g->values[g->outputs[i]].name);
            goto fail;
        }
    if ((s = plan_storage(m)) || (s = upload_constants(m)) || (s = plan_key(m))) goto fail;
    *out = m;
    return SI_OK;
fail:
    plan_free(m);
    return s;
}

/* The plan for the shapes of `in`, made if new, with a reference for the caller (plan_release). The model keeps
 * at most max_plans plans no request is bound to, dropping the least recently used. */
static si_result plan_for(ocl_model *M, si_tensor *const *in, ocl_mdl **out) {
    pthread_mutex_lock(&M->lock);
    ocl_mdl *p = NULL;
    for (int i = 0; i < M->n_plans && !p; i++)
        if (plan_matches(M->plans[i], in, M->base.n_inputs)) p = M->plans[i];
    si_result s = SI_OK;
    if (!p) {
        if (M->n_plans == M->cap_plans) {
            int cap = M->cap_plans ? M->cap_plans * 2 : 8;
            ocl_mdl **np = si_realloc(M->plans, sizeof *np * (size_t)cap);
            if (!np) s = si_err(SI_ERR_NO_MEM, "out of memory");
            else {
                M->plans = np;
                M->cap_plans = cap;
            }
        }
        if (!s && !(s = plan_build(M, in, &p))) M->plans[M->n_plans++] = p;
    }
    if (p) {
        p->refs++;
        p->used = ++M->tick;
        /* over the limit: drop the least recently used plans that no request holds */
        while (M->n_plans > M->max_plans) {
            int lru = -1;
            for (int i = 0; i < M->n_plans; i++)
                if (!M->plans[i]->refs && M->plans[i] != M->fixed && (lru < 0 || M->plans[i]->used < M->plans[lru]->used)) lru = i;
            if (lru < 0) break;
            plan_free(M->plans[lru]);
            M->plans[lru] = M->plans[--M->n_plans];
        }
    }
    pthread_mutex_unlock(&M->lock);
    *out = p;
    return s;
}

static void plan_release(ocl_mdl *p) {
    if (!p) return;
    ocl_model *M = p->owner;
    pthread_mutex_lock(&M->lock);
    p->refs--;
    pthread_mutex_unlock(&M->lock);
}

// --- requests -----------------------------------------------------------------------------------------------

typedef struct ocl_req {
    si_ireq base;
    cl_command_queue q;
    ocl_mdl *plan;       /* the plan its buffers and kernels are for (holding a reference), NULL before the first */
    cl_mem *slots;       /* per slot */
    cl_mem *inbufs;      /* per input port; NULL when no step reads it */
    cl_mem scratch;
    cl_kernel *kernels;  /* per step */
    const si_tensor **pbound; /* per input port that is a parameter: the constant the kernels' arguments read now */
    cl_event *events;    /* profile=on: per step, the launch's event (NULL when it did not run) */
    double *prof_ms;     /* profile=on: per step, device time and launches since the last profile flush */
    int64_t *prof_calls;
    atomic_int cancel;
} ocl_req;

static cl_mem value_buf(const ocl_req *r, const ocl_mdl *m, int v) {
    int root = root_of(m, v);
    if (root < 0) return NULL;
    switch (m->kind[root]) {
    case ST_INPUT: return r->inbufs[m->slot[root]];
    case ST_CONST: return m->cbuf[root];
    case ST_TEMP: return m->slot[root] >= 0 ? r->slots[m->slot[root]] : NULL;
    default: return NULL;
    }
}

/* Release the request's buffers and kernels and its reference on its plan. */
static void req_unbind(ocl_req *r) {
    ocl_mdl *m = r->plan;
    if (!m) return;
    if (r->kernels)
        for (int i = 0; i < m->n_steps; i++)
            if (r->kernels[i]) clReleaseKernel(r->kernels[i]);
    if (r->slots)
        for (int i = 0; i < m->n_slots; i++)
            if (r->slots[i]) clReleaseMemObject(r->slots[i]);
    if (r->inbufs)
        for (int i = 0; i < r->base.model->n_inputs; i++)
            if (r->inbufs[i]) clReleaseMemObject(r->inbufs[i]);
    if (r->scratch) clReleaseMemObject(r->scratch);
    SI_FREE_CLEAR(r->kernels);
    SI_FREE_CLEAR(r->slots);
    SI_FREE_CLEAR(r->inbufs);
    SI_FREE_CLEAR(r->pbound);
    SI_FREE_CLEAR(r->events);
    SI_FREE_CLEAR(r->prof_ms);
    SI_FREE_CLEAR(r->prof_calls);
    r->scratch = NULL;
    r->plan = NULL;
    plan_release(m);
}

static void ocl_req_free(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    if (!r) return;
    req_unbind(r);
    if (r->q) clReleaseCommandQueue(r->q);
    si_ireq_destroy(&r->base);
}

static void ocl_cancel(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    atomic_store(&r->cancel, 1);
}

/* A read-write buffer, uninitialised. */
static si_result new_buffer(ocl_mdl *m, size_t bytes, cl_mem *out, const char *what) {
    return make_buffer(m, CL_MEM_READ_WRITE, NULL, bytes, out, what);
}

/* Bind the request to plan m (taking over the caller's reference): its buffers, kernels and arguments. */
static si_result req_bind(ocl_req *r, ocl_mdl *m) {
    si_graph *g = m->g;
    ocl_model *M = m->owner;
    r->plan = m;
    r->slots = si_calloc((size_t)m->n_slots + 1, sizeof(cl_mem));
    r->inbufs = si_calloc((size_t)M->base.n_inputs + 1, sizeof(cl_mem));
    r->pbound = si_calloc((size_t)M->base.n_inputs + 1, sizeof(si_tensor *));
    r->kernels = si_calloc((size_t)m->n_steps + 1, sizeof(cl_kernel));
    if (!r->slots || !r->inbufs || !r->pbound || !r->kernels) return si_err(SI_ERR_NO_MEM, "out of memory creating a request");
    if (M->profile && (!(r->events = si_calloc((size_t)m->n_steps + 1, sizeof(cl_event))) ||
                       !(r->prof_ms = si_calloc((size_t)m->n_steps + 1, sizeof(double))) ||
                       !(r->prof_calls = si_calloc((size_t)m->n_steps + 1, sizeof(int64_t)))))
        return si_err(SI_ERR_NO_MEM, "OCL: out of memory for the profile");
    si_result s;
    for (int k = 0; k < M->base.n_outputs; k++) {
        const si_val *v = &g->values[g->outputs[k]];
        if ((s = si_ireq_shape_output(&r->base, k, v->dtype, v->ndim, v->dims))) return s;
    }
    for (int k = 0; k < m->n_slots; k++)
        if ((s = new_buffer(m, m->slot_bytes[k], &r->slots[k], "allocating an intermediate buffer"))) return s;
    /* input buffers: only for inputs some step reads */
    for (int i = 0; i < m->n_steps; i++)
        for (int a = 0; a < m->steps[i].n_args; a++) {
            if (m->steps[i].args[a].kind != OA_VAL) continue;
            int root = root_of(m, m->steps[i].args[a].i);
            if (root < 0 || m->kind[root] != ST_INPUT) continue;
            int port = m->slot[root];
            if (g->values[root].is_param) continue; /* the model's upload of the constant bound (bind_params) */
            if (!r->inbufs[port] && (s = new_buffer(m, value_bytes(&g->values[root]), &r->inbufs[port], "allocating an input buffer")))
                return s;
        }
    if (m->scratch && (s = new_buffer(m, m->scratch, &r->scratch, "allocating the scratch buffer"))) return s;
    cl_int e = CL_SUCCESS;
    for (int i = 0; i < m->n_steps; i++) {
        const ocl_step *st = &m->steps[i];
        r->kernels[i] = clCreateKernel(M->prog, st->kernel, &e);
        if (e != CL_SUCCESS) {
            r->kernels[i] = NULL;
            char what[160];
            snprintf(what, sizeof what, "creating kernel %s", st->kernel);
            return ocl_cl_err(e, what);
        }
        for (int a = 0; a < st->n_args && e == CL_SUCCESS; a++) {
            const ocl_arg *ar = &st->args[a];
            cl_mem b = NULL;
            cl_int iv = ar->i;
            cl_float fv = ar->f;
            switch (ar->kind) {
            case OA_VAL:
                if (root_of(m, ar->i) >= 0 && m->kind[root_of(m, ar->i)] == ST_INPUT && g->values[root_of(m, ar->i)].is_param)
                    break; /* set per bound constant (bind_params) */
                if (!(b = value_buf(r, m, ar->i))) return si_err(SI_ERR_INTERNAL, "kernel %s argument %d has no buffer", st->kernel, a);
                e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof b, &b);
                break;
            case OA_META: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof(cl_mem), &m->metas[ar->i]); break;
            case OA_SCRATCH: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof(cl_mem), &r->scratch); break;
            case OA_INT: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof iv, &iv); break;
            case OA_FLOAT: e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof fv, &fv); break;
            }
        }
        if (e != CL_SUCCESS) {
            char what[160];
            snprintf(what, sizeof what, "setting the arguments of kernel %s", st->kernel);
            return ocl_cl_err(e, what);
        }
    }
    return SI_OK;
}

/* The model's buffer of parameter constant t, uploaded at its first use (a bind, or prepare_input). */
static si_result param_buf(ocl_model *M, const si_tensor *t, cl_mem *out) {
    si_result s = SI_OK;
    pthread_mutex_lock(&M->lock);
    *out = NULL;
    for (int i = 0; i < M->n_pbufs && !*out; i++)
        if (M->pbufs[i].t == t) *out = M->pbufs[i].mem;
    if (!*out) {
        if (M->n_pbufs == M->cap_pbufs) {
            int cap = M->cap_pbufs ? 2 * M->cap_pbufs : 16;
            struct ocl_pbuf *n = si_realloc(M->pbufs, sizeof *n * (size_t)cap);
            if (!n) s = si_err(SI_ERR_NO_MEM, "out of memory");
            else M->pbufs = n, M->cap_pbufs = cap;
        }
        if (!s && !(s = ctx_buffer(M->ctx, &M->caps, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, t->data, t->nbytes, out,
                                  "uploading a parameter (a function body's weight)")))
            M->pbufs[M->n_pbufs++] = (struct ocl_pbuf){t, *out};
    }
    pthread_mutex_unlock(&M->lock);
    return s;
}

/* Point the kernels' arguments that read a parameter input at the model's upload of the constant bound to it (once
 * per request and constant: a function body's request is bound to one call's weights). */
static si_result bind_params(ocl_req *r) {
    ocl_mdl *m = r->plan;
    const si_graph *g = m->g;
    for (int port = 0; port < g->n_inputs; port++) {
        const si_tensor *t = r->base.bound[port];
        int v = g->inputs[port];
        if (!g->values[v].is_param || r->pbound[port] == t) continue;
        if (!t->data || t->nbytes != value_bytes(&g->values[v]))
            return si_err(SI_ERR_INVALID_ARG, "parameter '%s' holds %zu bytes, not %zu", g->values[v].name, t->nbytes,
                          value_bytes(&g->values[v]));
        cl_mem b;
        si_result s = param_buf(m->owner, t, &b);
        if (s) return s;
        r->pbound[port] = NULL;
        for (int i = 0; i < m->n_steps; i++)
            for (int a = 0; a < m->steps[i].n_args; a++) {
                const ocl_arg *ar = &m->steps[i].args[a];
                if (ar->kind != OA_VAL || root_of(m, ar->i) != v) continue;
                cl_int e = clSetKernelArg(r->kernels[i], (cl_uint)a, sizeof b, &b);
                if (e != CL_SUCCESS) return ocl_cl_err(e, "setting a parameter argument");
            }
        r->pbound[port] = t;
    }
    return SI_OK;
}

/* The request bound to the plan for its bound inputs' shapes. */
static si_result req_plan(ocl_req *r) {
    ocl_model *M = (ocl_model *)r->base.model;
    if (r->plan && plan_matches(r->plan, r->base.bound, M->base.n_inputs)) return SI_OK;
    ocl_mdl *p;
    si_result s = plan_for(M, r->base.bound, &p);
    if (s) return s;
    req_unbind(r);
    if ((s = req_bind(r, p))) req_unbind(r);
    return s;
}

static bool step_empty(const ocl_step *st) {
    for (cl_uint d = 0; d < st->dims; d++)
        if (!st->gws[d]) return true;
    return false;
}

/* profile=on: add each launch's device time (its event's start to end) to the step's row, and let the events go. */
static void collect_times(ocl_req *r, const ocl_mdl *m) {
    for (int i = 0; i < m->n_steps; i++) {
        if (!r->events[i]) continue;
        cl_ulong t0 = 0, t1 = 0;
        if (clGetEventProfilingInfo(r->events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(r->events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS && t1 >= t0) {
            r->prof_ms[i] += (double)(t1 - t0) / 1e6;
            r->prof_calls[i]++;
        }
        clReleaseEvent(r->events[i]);
        r->events[i] = NULL;
    }
}

/* The nodes of a step's row: the one node it launches a kernel for (ctx). */
static char *step_node(void *ctx) {
    const si_node *n = ctx;
    return si_strdup(n->name ? n->name : "");
}

/* The steps timed since the last call, one row per kernel launch of a node: device time from event timestamps. */
static void ocl_profile(si_ireq *r_, si_prof *sink) {
    ocl_req *r = (ocl_req *)r_;
    const ocl_mdl *m = r->plan;
    if (!m || !r->prof_ms) return;
    for (int i = 0; i < m->n_steps; i++) {
        if (!r->prof_calls[i]) continue;
        const ocl_step *st = &m->steps[i];
        char kernel[96];
        snprintf(kernel, sizeof kernel, "ocl:%s", st->kernel);
        const si_node *n = &m->g->nodes[st->node];
        /* a failure (out of memory) loses this step's sample, never the inference */
        (void)si_prof_add(sink, st, n->op_type, "OCL", kernel, false, step_node, (void *)n, r->prof_calls[i], r->prof_ms[i]);
        r->prof_calls[i] = 0;
        r->prof_ms[i] = 0;
    }
}

static si_result ocl_infer(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    si_result chk = si_ireq_check_inputs(&r->base);
    if (chk || (chk = req_plan(r)) || (chk = bind_params(r))) return chk;
    ocl_mdl *m = r->plan;
    ocl_model *M = m->owner;
    si_graph *g = m->g;
    for (int c = 0; c < m->n_ichecks; c++) { /* indices are read on the device without checks */
        const ocl_icheck *ic = &m->ichecks[c];
        int root = root_of(m, ic->vid);
        if (root < 0 || m->kind[root] != ST_INPUT) continue;
        const si_tensor *t = r->base.bound[m->slot[root]];
        int64_t n = si_shape_count(t->ndim, t->dims);
        for (int64_t i = 0; i < n; i++) {
            int64_t k = si_load_i64(t->dtype, t->data, i);
            if (k < -ic->limit || k >= ic->limit) {
                const si_node *nd = &g->nodes[ic->node];
                return si_err(SI_ERR_INVALID_ARG, "%s (node '%s'): index %lld is out of range [-%lld, %lld)", nd->op_type, nd->name,
                              (long long)k, (long long)ic->limit, (long long)ic->limit);
            }
        }
    }
    atomic_store(&r->cancel, 0);
    bool gated = m->dev->pocl, alone = gated && ocl_gate_enter(&m->warm);
    cl_int e = CL_SUCCESS;
    const char *what = "";
    char what_buf[256];
    si_result internal = SI_OK;
    for (int i = 0; i < M->base.n_inputs && e == CL_SUCCESS; i++) {
        const si_tensor *t = r->base.bound[i];
        if (!r->inbufs[i] || !t->nbytes) continue;
        e = clEnqueueWriteBuffer(r->q, r->inbufs[i], CL_FALSE, 0, t->nbytes, t->data, 0, NULL, NULL);
        what = "uploading an input";
    }
    bool aborted = false;
    for (int i = 0; i < m->n_steps && e == CL_SUCCESS; i++) {
        const ocl_step *st = &m->steps[i];
        if ((i & 15) == 15 && atomic_load(&r->cancel)) {
            aborted = true;
            break;
        }
        if (step_empty(st)) continue; /* a zero-sized dimension: nothing to compute */
        e = clEnqueueNDRangeKernel(r->q, r->kernels[i], st->dims, NULL, st->gws, st->lws[0] ? st->lws : NULL, 0, NULL,
                                   r->events ? &r->events[i] : NULL);
        if (e != CL_SUCCESS) {
            const si_node *n = &g->nodes[st->node];
            snprintf(what_buf, sizeof what_buf, "running kernel %s of %s node '%s'", st->kernel, n->op_type, n->name);
            what = what_buf;
        }
    }
    for (int k = 0; k < M->base.n_outputs && e == CL_SUCCESS && !aborted && !internal; k++) {
        si_tensor *o = r->base.outs[k];
        int v = g->outputs[k];
        int root = root_of(m, v);
        if (!o->nbytes) continue;
        if (root >= 0 && m->kind[root] == ST_CONST) {
            memcpy(o->data, g->values[root].const_val->data, o->nbytes);
            continue;
        }
        if (root >= 0 && m->kind[root] == ST_INPUT && !r->inbufs[m->slot[root]]) {
            memcpy(o->data, r->base.bound[m->slot[root]]->data, o->nbytes);
            continue;
        }
        cl_mem b = value_buf(r, m, v);
        if (!b) {
            internal = si_err(SI_ERR_INTERNAL, "output '%s' has no buffer", M->out_ports[k].name);
            break;
        }
        e = clEnqueueReadBuffer(r->q, b, CL_FALSE, 0, o->nbytes, o->data, 0, NULL, NULL);
        what = "downloading an output";
    }
    cl_int fe = clFinish(r->q); /* always, so that nothing of this inference is still running after it */
    if (r->events) collect_times(r, m);
    if (gated) ocl_gate_leave(alone, &m->warm, e == CL_SUCCESS && fe == CL_SUCCESS && !aborted && !internal);
    if (internal) return internal;
    if (e != CL_SUCCESS) return ocl_cl_err(e, what);
    if (fe != CL_SUCCESS) return ocl_cl_err(fe, "waiting for the device");
    if (aborted) return si_err(SI_ERR_ABORTED, "inference was cancelled");
    return SI_OK;
}

static si_result ocl_req_init(si_ireq *r_) {
    ocl_req *r = (ocl_req *)r_;
    ocl_model *M = (ocl_model *)r_->model;
    atomic_init(&r->cancel, 0);
    cl_int e;
    r->q = clCreateCommandQueue(M->ctx, M->dev->id, M->profile ? CL_QUEUE_PROFILING_ENABLE : 0, &e);
    if (e != CL_SUCCESS) {
        r->q = NULL;
        return ocl_cl_err(e, "creating a command queue");
    }
    if (M->fixed) { /* fixed shapes: everything is ready before the first inference */
        pthread_mutex_lock(&M->lock);
        M->fixed->refs++;
        pthread_mutex_unlock(&M->lock);
        return req_bind(r, M->fixed);
    }
    for (int k = 0; k < M->base.n_outputs; k++) { /* open shapes: outputs get their shape at the first inference */
        const si_port *p = &M->out_ports[k];
        int64_t dims[SI_MAX_DIMS];
        for (int d = 0; d < p->ndim; d++) dims[d] = p->dims[d] >= 0 ? p->dims[d] : 0;
        si_result s = si_ireq_shape_output(&r->base, k, p->dtype, p->ndim < 0 ? 0 : p->ndim, dims);
        if (s) return s;
    }
    return SI_OK;
}

static const si_ireq_i req_iface = SI_IREQ_IFACE_OF(ocl, "OCL");

// --- compiled model -----------------------------------------------------------------------------------------

static void model_free(si_cmodel *m_) {
    ocl_model *M = (ocl_model *)m_;
    if (!M) return;
    for (int i = 0; i < M->n_plans; i++) plan_free(M->plans[i]);
    for (int i = 0; i < M->n_pbufs; i++) clReleaseMemObject(M->pbufs[i].mem);
    if (M->cbuf && M->g)
        for (int v = 0; v < M->g->n_values; v++)
            if (M->cbuf[v]) clReleaseMemObject(M->cbuf[v]);
    if (M->prog) clReleaseProgram(M->prog);
    pthread_mutex_destroy(&M->lock);
    SI_FREE_ALL(M->pbufs, M->plans, M->cbuf, M->in_ports, M->out_ports);
    si_graph_free(M->g);
    si_free(M);
}

/* A parameter input's constant uploaded now, at compile, not by the first inference that binds it. */
static si_result model_prepare_input(si_cmodel *m_, int i, const si_tensor *t) {
    ocl_model *M = (ocl_model *)m_;
    const si_val *v = &M->g->values[M->g->inputs[i]];
    if (!v->is_param) return SI_OK;
    if (!t->data || t->nbytes != value_bytes(v))
        return si_err(SI_ERR_INVALID_ARG, "parameter '%s' holds %zu bytes, not %zu", v->name, t->nbytes, value_bytes(v));
    cl_mem b;
    return param_buf(M, t, &b);
}

static const si_cmodel_i model_iface = {.create_request = si_ireq_create, .request = &req_iface, .free = model_free,
                                        .prepare_input = model_prepare_input};

si_result ocl_compile(si_device *d_, const si_graph *src, const si_compile_ctx *cc, si_cmodel **out) {
    const si_options *opts = si_compile_opts(cc);
    ocl_dev *d = d_->ctx;
    *out = NULL;
    ocl_model *M = si_calloc(1, sizeof *M);
    if (!M) return si_err(SI_ERR_NO_MEM, "out of memory");
    pthread_mutex_init(&M->lock, NULL);
    M->base.iface = &model_iface;
    M->base.device = d->name;
    M->dev = d;
    M->caps = d->caps;
    M->max_plans = PLAN_CACHE_DEFAULT;
    const char *opt = si_options_get(opts, "ocl.im2col_max_bytes");
    if (opt) M->caps.im2col_max = (size_t)strtoull(opt, NULL, 10);
    if ((opt = si_options_get(opts, "ocl.gemm"))) M->caps.cpu = !strcmp(opt, "vector"); /* "tiled": the GPU kernel */
    if ((opt = si_options_get(opts, "ocl.max_alloc_bytes"))) M->caps.max_alloc = strtoull(opt, NULL, 10); /* tests: simulate a small device */
    if ((opt = si_options_get(opts, "plan_cache"))) M->max_plans = (int)strtol(opt, NULL, 10); /* validated by the config table */
    if (M->max_plans < 0) M->max_plans = 0; /* 0: only the plans requests are bound to */
    M->profile = (opt = si_options_get(opts, "profile")) && !strcmp(opt, "on");
    si_result s = si_graph_clone(src, &M->g);
    /* the weights the graph keeps quantized (shape.c keep_dq): dequantized here, uploaded once as float32 like any
     * constant, rather than dequantized again at each inference */
    if (!s) s = si_graph_fold_weights(M->g);
    if (s) goto fail;
    si_graph *g = M->g;
    M->cbuf = si_calloc((size_t)g->n_values + 1, sizeof(cl_mem));
    M->in_ports = si_calloc((size_t)g->n_inputs + 1, sizeof(si_port));
    M->out_ports = si_calloc((size_t)g->n_outputs + 1, sizeof(si_port));
    if (!M->cbuf || !M->in_ports || !M->out_ports) {
        s = si_err(SI_ERR_NO_MEM, "out of memory");
        goto fail;
    }
    bool fixed = true;
    for (int i = 0; i < g->n_inputs; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        if (!si_dtype_valid(v->dtype) || v->ndim < 0) {
            s = si_err(SI_ERR_UNSUPPORTED, "input '%s' has no known element type and rank", v->name);
            goto fail;
        }
        fixed &= shape_known(v);
    }
    if ((s = ocl_dev_context(d, &M->ctx)) || (s = ocl_build_program(d, M->ctx, opts, &M->prog))) goto fail;
    if (fixed) {
        if ((s = plan_build(M, NULL, &M->fixed))) goto fail;
        M->plans = si_malloc(sizeof *M->plans);
        if (!M->plans) {
            plan_free(M->fixed);
            s = si_err(SI_ERR_NO_MEM, "out of memory");
            goto fail;
        }
        M->plans[0] = M->fixed;
        M->n_plans = M->cap_plans = 1;
        drop_host_consts(M);
        /* its completed shapes are the ports' */
        for (int i = 0; i < g->n_outputs; i++) {
            si_val *v = &g->values[g->outputs[i]];
            const si_val *pv = &M->fixed->g->values[M->fixed->g->outputs[i]];
            v->dtype = pv->dtype;
            v->ndim = pv->ndim;
            memcpy(v->dims, pv->dims, sizeof v->dims);
        }
    }
    si_cmodel_ports_from_graph(&M->base, g, M->in_ports, M->out_ports);
    *out = &M->base;
    return SI_OK;
fail:
    model_free(&M->base);
    return s;
}
