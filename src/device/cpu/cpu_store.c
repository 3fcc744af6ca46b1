/*
 * cpu_store.c — the compiled model's store of what plans derive from the graph's constants: weights packed
 * into the layout a primitive wants, weights with a folded per-channel scale, folded biases, transposed or
 * converted weights of the device's own kernels. A model with open dimensions builds one plan per set of
 * input shapes (cpu.c); the plans borrow these entries, so weights are packed once per compiled model, not
 * once per shape. The store lives as long as the compiled model and outlives every plan of it.
 *
 * An entry is keyed by what determines its contents:
 *   node   the graph node (or value) it is made for,
 *   tag    what was made ("conv.w", "mm.w", "rnn.w", ...),
 *   md     the layout (oneDNN memory descriptor; zeroed for plain arrays) and the byte size,
 *   fp     a fingerprint (FNV-1a) of the small things the contents depend on: folded scales and shifts, attributes,
 *          small constants,
 *   src    the large constant the contents are made from (held by a reference). Graph copies share their
 *          constants, so the same pointer is the same data; a different pointer (a constant folded again for
 *          another shape) matches when its bytes are equal.
 * What is made from a constant folded for one plan's shapes (not one of the model graph's) stays the plan's own memory: it may
 * differ with every shape, and the store would grow with every shape seen.
 * Lookups and additions take the store's lock (plans are built under the model's lock already; compile builds
 * the static plans before the model is shared).
 */
#include "device/cpu/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64

typedef struct cpu_sentry {
    int node;
    char tag[16];
    uint64_t fp;
    bool has_md;
    dnnl_memory_desc_t md;
    size_t bytes;
    si_tensor *src; /* a reference (si_const_ref), or NULL */
    void *raw, *ptr;
    si_tensor *made; /* a tensor entry (cpu_store_tensor): a reference */
    bool ready;     /* filled by its maker (an entry whose maker failed is filled by the next one) */
} cpu_sentry;

#define CPU_PD_CACHE 256 /* primitive descriptors kept (see "primitive descriptors" below) */

struct cpu_pd_entry {
    uint64_t h, used;
    void *key;
    size_t n;
    dnnl_primitive_desc_t pd; /* NULL: oneDNN refused it (st) */
    dnnl_status_t st;
};

struct cpu_store {
    pthread_mutex_t lock;
    pthread_mutex_t pack_lock; /* run-time packing of parameters (cpu_store_param), one at a time */
    cpu_sentry *e;
    int n, cap;
    const si_graph *g; /* the compiled model's graph: its constants are shared by every plan's graph */
    struct cpu_pd_entry *pds; /* primitive descriptors made so far (cpu_pb_pd_create) */
    int n_pds;
    uint64_t pd_clock;
    int64_t pd_made, pd_reused;
    int64_t fills;  /* entries made (each a packing or conversion of weights) */
    size_t bytes;   /* memory the entries hold */
};

si_result cpu_store_new(cpu_store **out) {
    *out = si_calloc(1, sizeof **out);
    if (!*out) return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    pthread_mutex_init(&(*out)->lock, NULL);
    pthread_mutex_init(&(*out)->pack_lock, NULL);
    return SI_OK;
}

void cpu_store_free(cpu_store *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        si_free(s->e[i].raw);
        si_const_unref(s->e[i].src);
        si_const_unref(s->e[i].made);
    }
    si_free(s->e);
    for (int i = 0; i < s->n_pds; i++) {
        if (s->pds[i].pd) dnnl_primitive_desc_destroy(s->pds[i].pd);
        si_free(s->pds[i].key);
    }
    si_free(s->pds);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->pack_lock);
    si_free(s);
}

void cpu_store_stats(cpu_store *s, int64_t *fills, int *entries, size_t *bytes) {
    pthread_mutex_lock(&s->lock);
    if (fills) *fills = s->fills;
    if (entries) *entries = s->n;
    if (bytes) *bytes = s->bytes;
    pthread_mutex_unlock(&s->lock);
}

// --- primitive descriptors ------------------------------------------------------------------------------------

/* A plan for new input shapes lowers every node again, and most nodes of a decode step (the projections, the
 * norms) meet the very same primitive descriptor as in the plan before: creating it again is oneDNN's search over
 * its implementations, tens of microseconds a node. The store keeps the descriptors (or the refusal) made for its
 * model's plans, keyed by the bytes of what they were made from (the op descriptor, the threads, the attribute's
 * output scale and post-ops), and hands out clones; the one used longest ago makes room when it is full. The keys
 * are 1.4-7 KB and a plan looks up one per primitive, so they are hashed eight bytes at a time (cpu_fp's FNV-1a
 * goes byte by byte). */
static uint64_t pd_hash(const void *key, size_t n) {
    const unsigned char *p = key;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static bool pd_get(cpu_store *s, uint64_t h, const void *key, size_t n, dnnl_primitive_desc_t *pd, dnnl_status_t *st) {
    bool hit = false;
    *pd = NULL;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_pds && !hit; i++) {
        struct cpu_pd_entry *e = &s->pds[i];
        if (e->h != h || e->n != n || memcmp(e->key, key, n)) continue;
        *st = e->pd ? dnnl_primitive_desc_clone(pd, e->pd) : e->st;
        if (*st != dnnl_success) *pd = NULL;
        e->used = ++s->pd_clock;
        hit = !e->pd || *st == dnnl_success;
        s->pd_reused += hit;
    }
    pthread_mutex_unlock(&s->lock);
    return hit;
}

static void pd_put(cpu_store *s, uint64_t h, const void *key, size_t n, const_dnnl_primitive_desc_t pd, dnnl_status_t st) {
    void *k = si_malloc(n);
    dnnl_primitive_desc_t c = NULL;
    if (!k || (pd && dnnl_primitive_desc_clone(&c, pd) != dnnl_success)) {
        si_free(k);
        return; /* not kept: made again next time */
    }
    memcpy(k, key, n);
    pthread_mutex_lock(&s->lock);
    s->pd_made++;
    if (!s->pds) s->pds = si_calloc(CPU_PD_CACHE, sizeof *s->pds);
    struct cpu_pd_entry *e = NULL;
    if (s->pds && s->n_pds < CPU_PD_CACHE) e = &s->pds[s->n_pds++];
    else if (s->pds) { /* full: the one used longest ago makes room */
        e = &s->pds[0];
        for (int i = 1; i < s->n_pds; i++)
            if (s->pds[i].used < e->used) e = &s->pds[i];
        if (e->pd) dnnl_primitive_desc_destroy(e->pd);
        si_free(e->key);
    }
    if (e) *e = (struct cpu_pd_entry){.h = h, .used = ++s->pd_clock, .key = k, .n = n, .pd = c, .st = st};
    pthread_mutex_unlock(&s->lock);
    if (!e) {
        si_free(k);
        if (c) dnnl_primitive_desc_destroy(c);
    }
}

static size_t op_desc_size(const void *op_desc) {
    switch (*(const dnnl_primitive_kind_t *)op_desc) {
    case dnnl_convolution: return sizeof(dnnl_convolution_desc_t);
    case dnnl_deconvolution: return sizeof(dnnl_deconvolution_desc_t);
    case dnnl_matmul: return sizeof(dnnl_matmul_desc_t);
    case dnnl_inner_product: return sizeof(dnnl_inner_product_desc_t);
    case dnnl_eltwise: return sizeof(dnnl_eltwise_desc_t);
    case dnnl_binary: return sizeof(dnnl_binary_desc_t);
    case dnnl_softmax_v2: return sizeof(dnnl_softmax_v2_desc_t);
    case dnnl_pooling_v2: return sizeof(dnnl_pooling_v2_desc_t);
    case dnnl_layer_normalization: return sizeof(dnnl_layer_normalization_desc_t);
    default: return 0;
    }
}

/* What a primitive descriptor is made from: the op descriptor's bytes, the threads, and what cpu_chain_attr makes
 * the attribute from (output scale, post-ops). Its length, or 0 when it does not fit in `cap` bytes. */
static size_t pd_key(const cpu_pb *b, const cpu_chain *c, const void *op_desc, unsigned char *key, size_t cap) {
    const size_t od = op_desc_size(op_desc);
    const float oscale = c ? c->oscale : 1.0f;
    const int n_po = c ? c->n_po : 0;
    size_t n = od + sizeof b->threads + sizeof oscale + sizeof n_po;
    for (int i = 0; i < n_po; i++) n += offsetof(cpu_po, dims) + sizeof(int64_t) * (size_t)c->po[i].ndim;
    if (!od || n > cap) return 0;
    memset(key, 0, n);
    unsigned char *k = key;
    memcpy(k, op_desc, od), k += od;
    memcpy(k, &b->threads, sizeof b->threads), k += sizeof b->threads;
    memcpy(k, &oscale, sizeof oscale), k += sizeof oscale;
    memcpy(k, &n_po, sizeof n_po), k += sizeof n_po;
    for (int i = 0; i < n_po; i++) {
        cpu_po p = c->po[i];
        p.value = -1; /* which value the operand is does not change the descriptor; its dims do */
        memcpy(k, &p, offsetof(cpu_po, dims)), k += offsetof(cpu_po, dims);
        memcpy(k, p.dims, sizeof(int64_t) * (size_t)p.ndim), k += sizeof(int64_t) * (size_t)p.ndim;
    }
    return n;
}

dnnl_status_t cpu_pb_pd_create(cpu_pb *b, const cpu_chain *c, const void *op_desc, const_dnnl_primitive_attr_t attr,
                               dnnl_primitive_desc_t *pd) {
    unsigned char key[8192];
    const size_t n = b->store ? pd_key(b, c, op_desc, key, sizeof key) : 0;
    const uint64_t h = n ? pd_hash(key, n) : 0;
    dnnl_status_t st;
    if (n && pd_get(b->store, h, key, n, pd, &st)) return st;
    st = dnnl_primitive_desc_create(pd, op_desc, attr, b->eng, NULL);
    if (n && (st == dnnl_success || st == dnnl_unimplemented || st == dnnl_invalid_arguments))
        pd_put(b->store, h, key, n, st == dnnl_success ? *pd : NULL, st);
    return st;
}

void cpu_store_pd_stats(cpu_store *s, int64_t *made, int64_t *reused) {
    pthread_mutex_lock(&s->lock);
    *made = s->pd_made;
    *reused = s->pd_reused;
    pthread_mutex_unlock(&s->lock);
}

uint64_t cpu_fp(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    if (!h) h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static bool same_src(const si_tensor *a, const si_tensor *b) {
    if (a == b) return true;
    if (!a || !b || a->dtype != b->dtype || a->nbytes != b->nbytes || a->ndim != b->ndim) return false;
    if (memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim)) return false;
    return !a->nbytes || !memcmp(a->data, b->data, a->nbytes);
}

static bool key_eq(const cpu_sentry *e, const cpu_skey *k, size_t bytes) {
    if (e->node != k->node || e->fp != k->fp || e->bytes != bytes || strncmp(e->tag, k->tag, sizeof e->tag)) return false;
    if (e->made || e->has_md != (k->md != NULL)) return false;
    if (k->md && !dnnl_memory_desc_equal(&e->md, k->md)) return false;
    if (k->data && (!e->ready || memcmp(e->ptr, k->data, bytes))) return false; /* keyed by its contents */
    return same_src(e->src, k->src);
}

void cpu_store_set_graph(cpu_store *s, const si_graph *g) { s->g = g; }

bool cpu_store_model_const(const cpu_store *s, const si_tensor *t) {
    if (!s || !s->g || !t) return false;
    for (int v = 0; v < s->g->n_values; v++)
        if (s->g->values[v].const_val == t) return true;
    return false;
}

/* The entry for key k (made when missing): its memory; *fill tells whether it still has to be filled. */
static void *store_entry(cpu_store *s, const cpu_skey *k, size_t bytes, bool *fill) {
    *fill = true;
    pthread_mutex_lock(&s->lock);
    cpu_sentry *e = NULL;
    for (int i = 0; i < s->n && !e; i++)
        if (key_eq(&s->e[i], k, bytes)) e = &s->e[i];
    if (e && e->ready) {
        *fill = false;
        void *ptr = e->ptr;
        pthread_mutex_unlock(&s->lock);
        return ptr;
    }
    if (!e) {
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 32;
            cpu_sentry *ne = si_realloc(s->e, sizeof *ne * (size_t)cap);
            if (!ne) {
                pthread_mutex_unlock(&s->lock);
                si_err(SI_ERR_NO_MEM, "CPU: out of memory");
                return NULL;
            }
            s->e = ne;
            s->cap = cap;
        }
        void *raw = si_malloc((bytes ? bytes : 1) + ALIGN);
        if (!raw) {
            pthread_mutex_unlock(&s->lock);
            si_err(SI_ERR_NO_MEM, "CPU: out of memory for packed weights (%zu bytes)", bytes);
            return NULL;
        }
        e = &s->e[s->n++];
        memset(e, 0, sizeof *e);
        e->node = k->node;
        snprintf(e->tag, sizeof e->tag, "%s", k->tag);
        e->fp = k->fp;
        e->has_md = k->md != NULL;
        if (k->md) e->md = *k->md;
        e->bytes = bytes;
        e->src = k->src ? si_const_ref((si_tensor *)k->src) : NULL;
        e->raw = raw;
        e->ptr = (void *)(((uintptr_t)raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
        s->bytes += bytes;
    }
    void *ptr = e->ptr;
    pthread_mutex_unlock(&s->lock);
    return ptr;
}

void *cpu_pb_shared(cpu_pb *b, const cpu_skey *k, size_t bytes, bool *fill) {
    /* made from a constant folded for this plan's shapes (it may differ with every shape): the plan's own */
    if (k->src && !cpu_store_model_const(b->store, k->src)) {
        *fill = true;
        return cpu_pb_own(b, bytes);
    }
    return store_entry(b->store, k, bytes, fill);
}

static void set_ready(cpu_store *s, const void *ptr) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++)
        if (s->e[i].ptr == ptr && !s->e[i].ready) {
            s->e[i].ready = true;
            s->fills++;
            break;
        }
    pthread_mutex_unlock(&s->lock);
}

/* Parameters are bound by the executor to the model's constants (the calls' weights), which live as long as the
 * compiled model: the entry holds a reference, keyed by the tensor like any constant. */
si_result cpu_store_param(cpu_store *s, const cpu_ppack *pp, const si_tensor *t, dnnl_stream_t stream, void **out) {
    *out = NULL;
    if (!t->data || t->nbytes != dnnl_memory_desc_get_size(&pp->plain))
        return si_err(SI_ERR_INVALID_ARG, "CPU: parameter input %d holds %zu bytes, not the %zu its layout takes", pp->port,
                      t->nbytes, (size_t)dnnl_memory_desc_get_size(&pp->plain));
    cpu_skey k = {.node = pp->node, .tag = pp->tag, .fp = pp->fp, .src = t, .md = &pp->want};
    size_t bytes = dnnl_memory_desc_get_size(&pp->want);
    bool fill;
    void *dst = store_entry(s, &k, bytes, &fill);
    if (!dst) return SI_ERR_NO_MEM;
    if (!fill) {
        *out = dst;
        return SI_OK;
    }
    si_result res = SI_OK;
    pthread_mutex_lock(&s->pack_lock); /* one packer: another request may be packing this entry right now */
    dst = store_entry(s, &k, bytes, &fill);
    if (dst && fill) {
        dnnl_engine_t eng;
        dnnl_primitive_desc_t pd = NULL;
        dnnl_primitive_t prim = NULL;
        dnnl_memory_t sm = NULL, dm = NULL;
        dnnl_status_t st = cpu_engine(&eng) ? dnnl_runtime_error : dnnl_reorder_primitive_desc_create(&pd, &pp->plain, eng, &pp->want, eng, NULL);
        if (st == dnnl_success) st = dnnl_primitive_create(&prim, pd);
        if (st == dnnl_success) st = dnnl_memory_create(&sm, &pp->plain, eng, t->data);
        if (st == dnnl_success) st = dnnl_memory_create(&dm, &pp->want, eng, dst);
        if (st == dnnl_success) {
            dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}};
            st = dnnl_primitive_execute(prim, stream, 2, args);
        }
        if (st == dnnl_success) st = dnnl_stream_wait(stream);
        if (sm) dnnl_memory_destroy(sm);
        if (dm) dnnl_memory_destroy(dm);
        if (prim) dnnl_primitive_destroy(prim);
        if (pd) dnnl_primitive_desc_destroy(pd);
        if (st == dnnl_success) set_ready(s, dst);
        else res = cpu_dnnl_err(st, "packing a parameter (reorder)", NULL);
    } else if (!dst) {
        res = SI_ERR_NO_MEM;
    }
    pthread_mutex_unlock(&s->pack_lock);
    if (!res) *out = dst;
    return res;
}

bool cpu_store_layout(cpu_store *s, const cpu_skey *k, const dnnl_memory_desc_t *plain, dnnl_memory_desc_t *md) {
    bool found = false;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n && !found; i++) {
        const cpu_sentry *e = &s->e[i];
        if (!e->ready || !e->has_md || e->made || e->node != k->node || e->fp != k->fp || strncmp(e->tag, k->tag, sizeof e->tag))
            continue;
        if (e->md.ndims != plain->ndims || memcmp(e->md.dims, plain->dims, sizeof(dnnl_dim_t) * (size_t)plain->ndims) || !same_src(e->src, k->src))
            continue;
        *md = e->md;
        found = true;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

void cpu_pb_shared_ready(cpu_pb *b, const void *ptr) { set_ready(b->store, ptr); }

/* The made entry of (src, tag, fp), or one made now by make(src) / eval(g, node) (under the store's lock: builds of
 * other plans wait for it rather than make it twice). */
static si_tensor *store_made(cpu_store *s, si_tensor *src, const char *tag, uint64_t fp, si_tensor *(*make)(const si_tensor *src),
                             const si_graph *g, int node, si_result *st_out) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n; i++) {
        cpu_sentry *e = &s->e[i];
        if (e->made && e->src == src && e->fp == fp && !strncmp(e->tag, tag, sizeof e->tag)) {
            si_tensor *t = si_const_ref(e->made);
            pthread_mutex_unlock(&s->lock);
            return t;
        }
    }
    si_tensor *t = NULL;
    si_result st = SI_OK;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 32;
        cpu_sentry *ne = si_realloc(s->e, sizeof *ne * (size_t)cap);
        if (ne) s->e = ne, s->cap = cap;
    }
    if (s->n < s->cap) {
        if (make) t = make(src);
        else st = si_node_eval(g, node, &t);
    }
    if (t) {
        cpu_sentry *e = &s->e[s->n++];
        memset(e, 0, sizeof *e);
        e->node = -1;
        e->fp = fp;
        snprintf(e->tag, sizeof e->tag, "%s", tag);
        e->src = si_const_ref(src);
        e->made = t;
        e->ready = true;
        s->fills++;
        s->bytes += t->nbytes;
        t = si_const_ref(t);
    }
    pthread_mutex_unlock(&s->lock);
    if (!t && !st) st = si_err(SI_ERR_NO_MEM, "CPU: out of memory converting a constant");
    if (st_out) *st_out = st;
    return t;
}

si_tensor *cpu_store_tensor(cpu_store *s, si_tensor *src, const char *tag, si_tensor *(*make)(const si_tensor *src)) {
    return store_made(s, src, tag, 0, make, NULL, -1, NULL);
}

si_result cpu_store_node_const(cpu_store *s, const si_graph *g, int node, const char *tag, uint64_t fp, si_tensor **out) {
    const si_node *n = &g->nodes[node];
    si_tensor *src = n->n_in > 0 && n->in[0] >= 0 ? g->values[n->in[0]].const_val : NULL;
    if (!src || !cpu_store_model_const(s, src)) return si_node_eval(g, node, out); /* folded for this plan's shapes: the plan's own */
    si_result st = SI_OK;
    *out = store_made(s, src, tag, fp, NULL, g, node, &st);
    return st;
}
