/*
 * cpu_plan.c — the CPU device's plan builder. It walks the graph in topological order once, asks
 * cpu_lower.c to put each node (or a fused chain starting at it) on oneDNN primitives, and otherwise emits
 * a step that runs the node's reference kernel. Along the way it tracks, per value, the buffers that hold
 * it (one per layout: plain row-major, or a blocked layout a primitive chose), inserting reorders only where
 * a consumer needs a layout the value does not have yet. Finally it decides where graph outputs are written
 * and places every intermediate buffer in one arena by liveness (buffers whose lifetimes do not overlap
 * share memory), so a request allocates a single block.
 */
#include "device/cpu/cpu.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define ALIGN 64
#define ALIGN_UP(x) (((x) + (ALIGN - 1)) & ~(size_t)(ALIGN - 1))

// --- small helpers --------------------------------------------------------------------------------------

bool cpu_value_static(const si_val *v) {
    if (!si_dtype_valid(v->dtype) || v->ndim < 0) return false;
    for (int i = 0; i < v->ndim; i++)
        if (v->dims[i] < 0) return false;
    return true;
}

size_t cpu_value_nbytes(const si_val *v) { return (size_t)si_shape_count(v->ndim, v->dims) * si_dtype_size(v->dtype); }

bool cpu_value_is_output(const si_graph *g, int v) {
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) return true;
    return false;
}

static bool grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap * 2 : 64;
    while (nc < need) nc *= 2;
    void *na = si_realloc(*arr, (size_t)nc * elem);
    if (!na) return false;
    memset((char *)na + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = na;
    *cap = nc;
    return true;
}

/* A new zeroed element at the end of the array *arr of *n elements (capacity *cap); NULL with `msg` as the error
 * when out of memory. */
static void *push(void **arr, int *n, int *cap, size_t elem, const char *msg) {
    if (!grow(arr, cap, *n + 1, elem)) {
        si_err(SI_ERR_NO_MEM, "%s", msg);
        return NULL;
    }
    void *e = (char *)*arr + (size_t)(*n)++ * elem;
    memset(e, 0, elem);
    return e;
}

/* Two arrays of na and nb bytes (+1 each), or neither (false). */
static bool alloc_two(void **a, size_t na, void **b, size_t nb) {
    *a = si_malloc(na + 1);
    *b = si_malloc(nb + 1);
    if (*a && *b) return true;
    si_free(*a);
    si_free(*b);
    return false;
}

static int add_slot(cpu_plan *p, cpu_slot_kind kind, int index, size_t size) {
    cpu_slot *s = push((void **)&p->slots, &p->n_slots, &p->cap_slots, sizeof(cpu_slot), "CPU: out of memory planning buffers");
    if (!s) return -1;
    s->kind = kind;
    s->index = index;
    s->size = size;
    s->first = INT_MAX;
    s->last = -1;
    return p->n_slots - 1;
}

static int add_buf(cpu_pb *b, int value, int slot, const dnnl_memory_desc_t *md_in, bool plain, bool dyn) {
    cpu_plan *p = b->p;
    /* md_in may point into p->bufs (a caller giving an existing buffer's layout), which push may move */
    dnnl_memory_desc_t md_copy;
    const dnnl_memory_desc_t *md = md_in ? (md_copy = *md_in, &md_copy) : NULL;
    cpu_buf *bf = push((void **)&p->bufs, &p->n_bufs, &p->cap_bufs, sizeof(cpu_buf), "CPU: out of memory planning buffers");
    if (!bf) return -1;
    int i = p->n_bufs - 1;
    bf->value = value;
    bf->slot = slot;
    bf->plain = plain;
    bf->dyn = dyn;
    bf->next = -1;
    if (md) {
        bf->md = *md;
        bf->nbytes = dnnl_memory_desc_get_size(md);
    }
    if (value >= 0) {
        bf->next = b->vbuf[value];
        b->vbuf[value] = i;
        if (plain && p->vbuf_plain[value] < 0) p->vbuf_plain[value] = i;
    }
    if (slot >= 0 && p->slots[slot].kind == SLOT_ARENA && bf->nbytes > p->slots[slot].size) p->slots[slot].size = bf->nbytes;
    return i;
}

static cpu_step *add_step(cpu_pb *b, cpu_step_kind kind, int node, const char *what) {
    cpu_plan *p = b->p;
    cpu_step *st = push((void **)&p->steps, &p->n_steps, &p->cap_steps, sizeof(cpu_step), "CPU: out of memory planning steps");
    if (!st) return NULL;
    st->kind = kind;
    st->node = node;
    st->scratch_slot = -1;
    snprintf(st->what, sizeof st->what, "%s", what);
    snprintf(st->kernel, sizeof st->kernel, "%s", kind == STEP_REF ? "reference" : kind == STEP_NATIVE ? "own:native" : kind == STEP_FN ? "own" : "");
    return st;
}

static void use_buf(cpu_plan *p, int buf, int step) {
    if (buf < 0) return;
    cpu_slot *s = &p->slots[p->bufs[buf].slot];
    if (step > s->last) s->last = step;
    if (step < s->first) s->first = step; /* read before written: only for non-arena slots */
}

static void def_buf(cpu_plan *p, int buf, int step) {
    if (buf < 0) return;
    cpu_slot *s = &p->slots[p->bufs[buf].slot];
    if (step < s->first) s->first = step;
    if (step > s->last) s->last = step;
}

void *cpu_pb_own(cpu_pb *b, size_t bytes) {
    cpu_plan *p = b->p;
    if (!grow((void **)&p->owned, &p->cap_owned, p->n_owned + 1, sizeof(void *))) {
        si_err(SI_ERR_NO_MEM, "CPU: out of memory");
        return NULL;
    }
    void *m = si_malloc(ALIGN_UP(bytes ? bytes : 1) + ALIGN);
    if (!m) {
        si_err(SI_ERR_NO_MEM, "CPU: out of memory for packed weights (%zu bytes)", bytes);
        return NULL;
    }
    p->owned[p->n_owned++] = m;
    return (void *)ALIGN_UP((uintptr_t)m);
}

// --- buffers of values ---------------------------------------------------------------------------------

void cpu_pb_keep_const(cpu_pb *b, int v) {
    if (v >= 0) b->const_used[v] = true;
}

static int const_plain(cpu_pb *b, int v) {
    const si_val *val = &b->g->values[v];
    b->const_used[v] = true;
    dnnl_memory_desc_t md;
    cpu_md_typed(&md, val->const_val->dtype, val->const_val->ndim, val->const_val->dims);
    int s = add_slot(b->p, SLOT_CONST, -1, 0);
    if (s < 0) return -1;
    b->p->slots[s].cptr = val->const_val->data;
    int bf = add_buf(b, v, s, &md, true, false);
    if (bf >= 0) b->p->bufs[bf].nbytes = val->const_val->nbytes;
    return bf;
}

static dnnl_status_t reorder_pd(cpu_pb *b, const dnnl_memory_desc_t *smd, const dnnl_memory_desc_t *dmd, bool user_scratch,
                                dnnl_primitive_desc_t *pd) {
    dnnl_primitive_attr_t attr;
    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st != dnnl_success) return st;
    if (user_scratch) dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    st = dnnl_reorder_primitive_desc_create(pd, smd, b->eng, dmd, b->eng, attr);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

si_result cpu_pb_emit_reorder(cpu_pb *b, int node, int src, int dst) {
    dnnl_primitive_desc_t pd;
    dnnl_status_t st = reorder_pd(b, &b->p->bufs[src].md, &b->p->bufs[dst].md, true, &pd);
    if (st != dnnl_success) return cpu_dnnl_err(st, "reorder", node >= 0 ? b->g->nodes[node].name : NULL);
    cpu_arg args[2] = {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
    return cpu_pb_emit_dnnl(b, node, "reorder", pd, args, 2);
}

si_result cpu_pb_reorder_now(cpu_pb *b, const dnnl_memory_desc_t *smd, const void *src, const dnnl_memory_desc_t *dmd,
                             void *dst) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t sm = NULL, dm = NULL;
    dnnl_status_t st = reorder_pd(b, smd, dmd, false, &pd);
    if (st == dnnl_success) st = dnnl_primitive_create(&prim, pd);
    if (st == dnnl_success) st = dnnl_memory_create(&sm, smd, b->eng, (void *)src);
    if (st == dnnl_success) st = dnnl_memory_create(&dm, dmd, b->eng, dst);
    if (st == dnnl_success) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, sm}, {DNNL_ARG_TO, dm}};
        st = dnnl_primitive_execute(prim, b->stream, 2, args);
    }
    if (st == dnnl_success) st = dnnl_stream_wait(b->stream);
    if (sm) dnnl_memory_destroy(sm);
    if (dm) dnnl_memory_destroy(dm);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return cpu_dnnl_err(st, "packing weights (reorder)", NULL);
}

int cpu_pb_pack(cpu_pb *b, const cpu_skey *k, const void *w, cpu_wfill fill, const void *ctx, const dnnl_memory_desc_t *plain,
                const dnnl_memory_desc_t *want) {
    cpu_skey key = *k;
    key.md = want;
    key.data = NULL;
    bool make;
    void *dst = cpu_pb_shared(b, &key, dnnl_memory_desc_get_size(want), &make);
    if (!dst) return -1;
    if (make) {
        void *tmp = NULL;
        if (fill) {
            if (!(tmp = si_malloc(dnnl_memory_desc_get_size(plain) + 1))) {
                si_err(SI_ERR_NO_MEM, "CPU: out of memory packing weights");
                return -1;
            }
            fill(ctx, tmp);
            w = tmp;
        }
        si_result s = cpu_pb_reorder_now(b, plain, w, want, dst);
        si_free(tmp);
        if (s) return -1;
        cpu_pb_shared_ready(b, dst);
    }
    return cpu_pb_const_buf(b, dst, want);
}

const void *cpu_pb_shared_data(cpu_pb *b, int node, const char *tag, const void *data, size_t bytes) {
    cpu_skey k = {.node = node, .tag = tag, .fp = cpu_fp(0, data, bytes), .data = data};
    bool make;
    void *dst = cpu_pb_shared(b, &k, bytes, &make);
    if (dst && make) {
        memcpy(dst, data, bytes);
        cpu_pb_shared_ready(b, dst);
    }
    return dst;
}

int cpu_pb_existing(cpu_pb *b, int v) {
    if (b->vbuf[v] >= 0) return b->vbuf[v];
    if (b->g->values[v].const_val) return const_plain(b, v);
    si_err(SI_ERR_INTERNAL, "CPU: value '%s' is used before it is computed", b->g->values[v].name);
    return -1;
}

int cpu_pb_dense(cpu_pb *b, int v) {
    const si_val *V = &b->g->values[v];
    int e = cpu_pb_existing(b, v);
    if (e >= 0) {
        const dnnl_memory_desc_t *md = &b->p->bufs[e].md;
        if (!b->p->bufs[e].dyn && md->format_kind == dnnl_blocked && md->ndims == V->ndim &&
            dnnl_memory_desc_get_size(md) == (size_t)si_shape_count(V->ndim, V->dims) * dnnl_data_type_size(md->data_type))
            return e;
    }
    si_err_clear();
    return cpu_pb_plain(b, v);
}

int cpu_pb_plain(cpu_pb *b, int v) {
    cpu_plan *p = b->p;
    if (p->vbuf_plain[v] >= 0) return p->vbuf_plain[v];
    const si_val *val = &b->g->values[v];
    if (val->const_val) return const_plain(b, v);
    int src = b->vbuf[v];
    if (src < 0) {
        si_err(SI_ERR_INTERNAL, "CPU: value '%s' is used before it is computed", val->name);
        return -1;
    }
    /* only blocked buffers exist: reorder into a new plain one */
    dnnl_memory_desc_t md;
    cpu_md_typed(&md, val->dtype, val->ndim, val->dims);
    int s = add_slot(p, SLOT_ARENA, -1, 0);
    if (s < 0) return -1;
    int dst = add_buf(b, v, s, &md, true, false);
    if (dst < 0) return -1;
    if (cpu_pb_emit_reorder(b, val->producer, src, dst)) return -1;
    return dst;
}

int cpu_pb_in_md(cpu_pb *b, int v, const dnnl_memory_desc_t *md) {
    cpu_plan *p = b->p;
    for (int i = b->vbuf[v]; i >= 0; i = p->bufs[i].next)
        if (dnnl_memory_desc_equal(&p->bufs[i].md, md)) return i;
    const si_val *val = &b->g->values[v];
    if (cpu_md_is_plain(md)) { /* the plain buffer seen through another plain shape: a view, no copy */
        int pb = cpu_pb_plain(b, v);
        if (pb < 0) return -1;
        if (dnnl_memory_desc_get_size(md) != p->bufs[pb].nbytes) {
            si_err(SI_ERR_INTERNAL, "CPU: plain view of '%s' has a different size (%zu, buffer %zu)", val->name, dnnl_memory_desc_get_size(md), p->bufs[pb].nbytes);
            return -1;
        }
        return add_buf(b, v, p->bufs[pb].slot, md, true, false);
    }
    if (val->const_val) { /* a constant needed in a blocked layout: converted once per compiled model */
        cpu_skey k = {.node = v, .tag = "const", .src = val->const_val, .md = md};
        bool make;
        void *dst = cpu_pb_shared(b, &k, dnnl_memory_desc_get_size(md), &make);
        dnnl_memory_desc_t smd;
        cpu_md_typed(&smd, val->dtype, val->ndim, val->dims);
        if (!dst || (make && cpu_pb_reorder_now(b, &smd, val->const_val->data, md, dst))) return -1;
        if (make) cpu_pb_shared_ready(b, dst);
        int s = add_slot(p, SLOT_CONST, -1, 0);
        if (s < 0) return -1;
        p->slots[s].cptr = dst;
        return add_buf(b, v, s, md, false, false);
    }
    int src = p->vbuf_plain[v] >= 0 ? p->vbuf_plain[v] : b->vbuf[v];
    if (src < 0) {
        si_err(SI_ERR_INTERNAL, "CPU: value '%s' is used before it is computed", val->name);
        return -1;
    }
    int s = add_slot(p, SLOT_ARENA, -1, 0);
    if (s < 0) return -1;
    int dst = add_buf(b, v, s, md, false, false);
    if (dst < 0) return -1;
    if (cpu_pb_emit_reorder(b, val->producer, src, dst)) return -1;
    return dst;
}

int cpu_pb_new_out(cpu_pb *b, int v, const dnnl_memory_desc_t *md) {
    int s = add_slot(b->p, SLOT_ARENA, -1, 0);
    if (s < 0) return -1;
    return add_buf(b, v, s, md, cpu_md_is_plain(md), false);
}

int cpu_pb_new_inplace(cpu_pb *b, int v, const dnnl_memory_desc_t *md, int over) {
    return add_buf(b, v, b->p->bufs[over].slot, md, cpu_md_is_plain(md), false);
}

int cpu_pb_view(cpu_pb *b, int v, int over) {
    int bf = add_buf(b, v, b->p->bufs[over].slot, NULL, true, false);
    if (bf < 0) return -1;
    const si_val *val = &b->g->values[v];
    cpu_md_typed(&b->p->bufs[bf].md, val->dtype, val->ndim, val->dims);
    b->p->bufs[bf].nbytes = cpu_value_nbytes(val);
    return bf;
}

int cpu_pb_strided_view(cpu_pb *b, int v, int over, const dnnl_memory_desc_t *md) {
    int bf = add_buf(b, v, b->p->bufs[over].slot, md, false, false);
    if (bf >= 0) b->p->bufs[bf].nbytes = cpu_value_nbytes(&b->g->values[v]);
    return bf;
}

int cpu_pb_alias(cpu_pb *b, int over, const dnnl_memory_desc_t *md) {
    return add_buf(b, -1, b->p->bufs[over].slot, md, false, false);
}

int cpu_pb_copy(cpu_pb *b, int src) {
    int s = add_slot(b->p, SLOT_ARENA, -1, 0);
    if (s < 0) return -1;
    dnnl_memory_desc_t md = b->p->bufs[src].md;
    int dst = add_buf(b, -1, s, &md, false, false);
    if (dst < 0) return -1;
    int v = b->p->bufs[src].value;
    if (cpu_pb_emit_reorder(b, v >= 0 ? b->g->values[v].producer : -1, src, dst)) return -1;
    return dst;
}

int cpu_pb_internal_md(cpu_pb *b, const dnnl_memory_desc_t *md) {
    int s = add_slot(b->p, SLOT_ARENA, -1, 0);
    if (s < 0) return -1;
    return add_buf(b, -1, s, md, false, false);
}

int cpu_pb_const_buf(cpu_pb *b, const void *data, const dnnl_memory_desc_t *md) {
    int s = add_slot(b->p, SLOT_CONST, -1, 0);
    if (s < 0) return -1;
    b->p->slots[s].cptr = data;
    return add_buf(b, -1, s, md, false, false);
}

int cpu_pb_param_buf(cpu_pb *b, int value, const cpu_skey *k, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *want) {
    cpu_plan *p = b->p;
    int port = -1;
    for (int i = 0; i < b->g->n_inputs; i++)
        if (b->g->inputs[i] == value) port = i;
    if (port < 0) {
        si_err(SI_ERR_INTERNAL, "CPU: parameter '%s' is no input", b->g->values[value].name);
        return -1;
    }
    cpu_ppack *pp = push((void **)&p->ppacks, &p->n_ppacks, &p->cap_ppacks, sizeof(cpu_ppack), "CPU: out of memory planning buffers");
    if (!pp) return -1;
    pp->port = port;
    pp->node = k->node;
    snprintf(pp->tag, sizeof pp->tag, "%s", k->tag);
    pp->fp = k->fp;
    pp->plain = *plain;
    pp->want = *want;
    int s = add_slot(p, SLOT_PARAM, p->n_ppacks - 1, 0);
    return s < 0 ? -1 : add_buf(b, -1, s, want, false, false);
}

bool cpu_pb_can_overwrite(cpu_pb *b, int buf, int consumer_uses) {
    cpu_plan *p = b->p;
    int slot = p->bufs[buf].slot;
    if (p->slots[slot].kind != SLOT_ARENA) return false;
    int self = p->bufs[buf].value;
    for (int i = 0; i < p->n_bufs; i++) {
        if (p->bufs[i].slot != slot) continue;
        int v = p->bufs[i].value;
        if (v < 0) return false;
        if (cpu_value_is_output(b->g, v)) return false;
        if (b->remaining[v] != (v == self ? consumer_uses : 0)) return false;
    }
    return true;
}

void cpu_pb_consume(cpu_pb *b, int n) {
    const si_node *nd = &b->g->nodes[n];
    for (int k = 0; k < nd->n_in; k++)
        if (nd->in[k] >= 0) b->remaining[nd->in[k]]--;
    b->done[n] = true;
    if (b->p->node_step) b->p->node_step[n] = b->p->n_steps > b->lower_start ? b->p->n_steps - 1 : -1;
}

int cpu_pb_consumer(const cpu_pb *b, int v, int k) {
    int seen = 0;
    for (int n = 0; n < b->g->n_nodes; n++) {
        const si_node *nd = &b->g->nodes[n];
        for (int j = 0; j < nd->n_in; j++)
            if (nd->in[j] == v) {
                if (seen++ == k) return n;
                break;
            }
    }
    return -1;
}

// --- steps ----------------------------------------------------------------------------------------------

#define CPU_ONE_THREAD_BYTES (256 << 10) /* eltwise / binary primitives writing at most this: one thread */

static bool arg_is_output(int arg) { return arg == DNNL_ARG_DST || arg == DNNL_ARG_TO || arg == DNNL_ARG_DST_1; }

si_result cpu_pb_emit_dnnl(cpu_pb *b, int node, const char *what, dnnl_primitive_desc_t pd, const cpu_arg *args,
                           int n_args) {
    const char *nname = node >= 0 ? b->g->nodes[node].name : NULL;
    dnnl_primitive_t prim;
    dnnl_primitive_kind_t kind = dnnl_undefined_primitive;
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const bool one = dnnl_primitive_desc_query(pd, dnnl_query_primitive_kind, 0, &kind) == dnnl_success &&
                     (kind == dnnl_eltwise || kind == dnnl_binary) && dmd && dnnl_memory_desc_get_size(dmd) <= CPU_ONE_THREAD_BYTES;
    const int old_threads = one ? cpu_threads_set(1) : 0;
    dnnl_status_t st = dnnl_primitive_create(&prim, pd);
    if (one) cpu_threads_set(old_threads);
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl) impl = "oneDNN";
    char kernel[48];
    snprintf(kernel, sizeof kernel, "%s", impl);
    dnnl_memory_desc_t scratch;
    memset(&scratch, 0, sizeof scratch);
    if (smd) scratch = *smd;
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) return cpu_dnnl_err(st, "primitive creation", nname);
    cpu_arg *a = si_malloc(sizeof(cpu_arg) * (size_t)(n_args + 1));
    cpu_step *s = a ? add_step(b, STEP_DNNL, node, what) : NULL;
    if (!s) {
        si_free(a);
        dnnl_primitive_destroy(prim);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    }
    int idx = b->p->n_steps - 1;
    memcpy(s->kernel, kernel, sizeof s->kernel);
    s->prim = prim;
    s->one_thread = one;
    s->args = a;
    s->n_args = n_args;
    s->arg_base = b->p->n_args_total;
    memcpy(a, args, sizeof(cpu_arg) * (size_t)n_args);
    b->p->n_args_total += n_args;
    s->scratch_md = scratch;
    size_t ss = dnnl_memory_desc_get_size(&scratch);
    if (ss) {
        int sl = add_slot(b->p, SLOT_ARENA, -1, ss);
        if (sl < 0) return SI_ERR_NO_MEM;
        b->p->slots[sl].first = b->p->slots[sl].last = idx;
        b->p->steps[idx].scratch_slot = sl;
        b->p->n_args_total++;
    }
    for (int i = 0; i < n_args; i++)
        if (arg_is_output(args[i].arg)) def_buf(b->p, args[i].buf, idx);
        else use_buf(b->p, args[i].buf, idx);
    b->p->n_dnnl++;
    return SI_OK;
}

si_result cpu_pb_emit_fn(cpu_pb *b, int node, const char *what, cpu_fn fn, const void *ctx, const int *in, int n_in, const int *out,
                         int n_out) {
    cpu_arg *a = si_malloc(sizeof(cpu_arg) * (size_t)(n_in + n_out + 1));
    cpu_step *s = a ? add_step(b, STEP_FN, node, what) : NULL;
    if (!s) {
        si_free(a);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    }
    int idx = b->p->n_steps - 1;
    for (int i = 0; i < n_in; i++) a[i].arg = 0, a[i].buf = in[i];
    for (int i = 0; i < n_out; i++) a[n_in + i].arg = 1, a[n_in + i].buf = out[i];
    s->args = a;
    s->n_args = n_in + n_out;
    s->fn = fn;
    s->fn_ctx = ctx;
    for (int i = 0; i < n_in; i++) use_buf(b->p, in[i], idx);
    for (int i = 0; i < n_out; i++) def_buf(b->p, out[i], idx);
    return SI_OK;
}

si_result cpu_pb_emit_own(cpu_pb *b, int node, const char *what, const char *kernel, cpu_own_fn fn, const void *params,
                          const cpu_arg *args, int n_args) {
    int in[16], out[16], n_in = 0, n_out = 0;
    for (int i = 0; i < n_args; i++) {
        bool w = arg_is_output(args[i].arg);
        if ((w ? n_out : n_in) == 16 || (!w && n_out)) return si_err(SI_ERR_INTERNAL, "CPU: bad own-kernel arguments");
        if (w) out[n_out++] = args[i].buf;
        else in[n_in++] = args[i].buf;
    }
    si_result s = cpu_pb_emit_fn(b, node, what, fn, params, in, n_in, out, n_out);
    if (!s) snprintf(b->p->steps[b->p->n_steps - 1].kernel, sizeof b->p->steps[0].kernel, "%s", kernel);
    return s;
}

/* A reference-kernel step (fn NULL) or a native one: plain inputs, outputs in new plain buffers (per-infer
 * tensors when the shape is only known at run time). */
static si_result emit_kernel(cpu_pb *b, int n, si_op_fn fn, const char *what) {
    const si_node *nd = &b->g->nodes[n];
    cpu_plan *p = b->p;
    if (!nd->op) return si_err(SI_ERR_UNSUPPORTED, "CPU: op %s (node '%s') is not implemented", nd->op_type, nd->name);
    int *ib, *ob;
    if (!alloc_two((void **)&ib, sizeof(int) * (size_t)nd->n_in, (void **)&ob, sizeof(int) * (size_t)nd->n_out))
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    for (int k = 0; k < nd->n_in; k++) {
        int v = nd->in[k];
        ib[k] = -1;
        if (v >= 0 && b->g->values[v].const_val) b->const_used[v] = true; /* read from the graph at run time */
        if (v < 0 || b->g->values[v].const_val) continue;
        if ((ib[k] = cpu_pb_plain(b, v)) < 0) {
            si_free(ib);
            si_free(ob);
            return SI_ERR_INTERNAL;
        }
    }
    for (int k = 0; k < nd->n_out; k++) {
        int v = nd->out[k];
        ob[k] = -1;
        if (v < 0) continue;
        const si_val *val = &b->g->values[v];
        int s;
        if (cpu_value_static(val)) {
            dnnl_memory_desc_t md;
            cpu_md_typed(&md, val->dtype, val->ndim, val->dims);
            s = add_slot(p, SLOT_ARENA, -1, 0);
            ob[k] = s < 0 ? -1 : add_buf(b, v, s, &md, true, false);
            if (ob[k] >= 0) /* non-float types: the md only gave a size for float32 */
                p->bufs[ob[k]].nbytes = p->slots[s].size = cpu_value_nbytes(val);
        } else {
            s = add_slot(p, SLOT_DYN, v, 0);
            ob[k] = s < 0 ? -1 : add_buf(b, v, s, NULL, true, true);
        }
        if (ob[k] < 0) {
            si_free(ib);
            si_free(ob);
            return SI_ERR_NO_MEM;
        }
    }
    cpu_step *st = add_step(b, fn ? STEP_NATIVE : STEP_REF, n, what);
    if (!st) {
        si_free(ib);
        si_free(ob);
        return SI_ERR_NO_MEM;
    }
    int idx = p->n_steps - 1;
    st->in_buf = ib;
    st->out_buf = ob;
    st->native = fn;
    for (int k = 0; k < nd->n_in; k++) use_buf(p, ib[k], idx);
    for (int k = 0; k < nd->n_out; k++) def_buf(p, ob[k], idx);
    if (!fn) p->n_ref++;
    cpu_pb_consume(b, n);
    return SI_OK;
}

static si_result emit_ref(cpu_pb *b, int n) { return emit_kernel(b, n, NULL, b->g->nodes[n].op_type); }

si_result cpu_pb_emit_native(cpu_pb *b, int n, si_op_fn fn, const char *what) { return emit_kernel(b, n, fn, what); }

si_result cpu_pb_lower_now(cpu_pb *b, int n) {
    if (b->done[n]) return SI_OK;
    const si_node *nd = &b->g->nodes[n];
    for (int k = 0; k < nd->n_in; k++) {
        int v = nd->in[k];
        if (v >= 0 && !b->g->values[v].const_val && b->vbuf[v] < 0) return SI_ERR_UNSUPPORTED;
    }
    si_result s = cpu_lower_node(b, n);
    if (s == SI_ERR_UNSUPPORTED) {
        si_err_clear();
        s = emit_ref(b, n);
    }
    return s;
}

// --- graph outputs and memory planning ---------------------------------------------------------------------

static si_result plan_outputs(cpu_pb *b) {
    cpu_plan *p = b->p;
    const si_graph *g = b->g;
    p->out_buf = si_calloc((size_t)g->n_outputs + 1, sizeof(int));
    p->out_copy = si_calloc((size_t)g->n_outputs + 1, sizeof(bool));
    if (!p->out_buf || !p->out_copy) return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    for (int k = 0; k < g->n_outputs; k++) {
        int v = g->outputs[k];
        const si_val *val = &g->values[v];
        int bf = (val->const_val || b->vbuf[v] >= 0 || p->vbuf_plain[v] >= 0) ? cpu_pb_plain(b, v) : -1;
        if (bf < 0) return si_err(SI_ERR_INTERNAL, "CPU: graph output '%s' is never computed", val->name);
        p->out_buf[k] = bf;
        cpu_slot *s = &p->slots[p->bufs[bf].slot];
        if (s->kind == SLOT_ARENA && s->size == cpu_value_nbytes(val) && !p->bufs[bf].dyn) {
            s->kind = SLOT_OUTPUT; /* the producing step writes straight into the request's output tensor */
            s->index = k;
            p->out_copy[k] = false;
        } else {
            p->out_copy[k] = true; /* copied after the last step: keep the buffer alive until then */
            if (s->kind == SLOT_ARENA) s->last = p->n_steps;
        }
    }
    return SI_OK;
}

typedef struct slot_ref {
    size_t size;
    int id;
} slot_ref;

static int by_size_desc(const void *a, const void *b) {
    const slot_ref *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id;
}

static si_result plan_memory(cpu_plan *p) {
    slot_ref *order;
    int *placed;
    if (!alloc_two((void **)&order, sizeof(slot_ref) * (size_t)p->n_slots, (void **)&placed, sizeof(int) * (size_t)p->n_slots))
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory planning the arena");
    int n = 0, np = 0;
    for (int i = 0; i < p->n_slots; i++) {
        cpu_slot *s = &p->slots[i];
        if (s->kind != SLOT_ARENA || !s->size) continue;
        if (s->first == INT_MAX) s->first = s->last < 0 ? 0 : s->last;
        if (s->last < s->first) s->last = s->first;
        s->size = ALIGN_UP(s->size);
        order[n].size = s->size;
        order[n++].id = i;
    }
    qsort(order, (size_t)n, sizeof *order, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        cpu_slot *s = &p->slots[order[i].id];
        size_t off = 0;
        /* first fit: the lowest offset clear of every placed slot whose lifetime overlaps */
        for (bool moved = true; moved;) {
            moved = false;
            for (int j = 0; j < np; j++) {
                cpu_slot *o = &p->slots[placed[j]];
                if (o->last < s->first || s->last < o->first) continue;
                if (off < o->off + o->size && o->off < off + s->size) {
                    off = o->off + o->size;
                    moved = true;
                }
            }
        }
        s->off = off;
        placed[np++] = order[i].id;
        if (off + s->size > total) total = off + s->size;
    }
    p->arena_size = total;
    si_free(order);
    si_free(placed);
    return SI_OK;
}

// --- the plan -----------------------------------------------------------------------------------------------

void cpu_plan_free(cpu_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++) {
        cpu_step *s = &p->steps[i];
        if (s->prim) dnnl_primitive_destroy(s->prim);
        si_free(s->args);
        si_free(s->in_buf);
        si_free(s->out_buf);
    }
    for (int i = 0; i < p->n_owned; i++) si_free(p->owned[i]);
    SI_FREE_ALL(p->node_step, p->ppacks, p->owned, p->steps, p->bufs, p->slots, p->out_buf, p->out_copy, p->vbuf_plain, p->key);
    si_graph_free(p->g);
    si_free(p);
}

static bool node_folded(const si_graph *g, const si_node *n) {
    if (n->n_out == 0) return false;
    for (int k = 0; k < n->n_out; k++)
        if (n->out[k] >= 0 && !g->values[n->out[k]].const_val) return false;
    return true;
}

si_result cpu_plan_build(si_graph *g, int threads, cpu_store *store, cpu_plan **out) {
    *out = NULL;
    cpu_plan *p = si_calloc(1, sizeof *p);
    if (!p) {
        si_graph_free(g);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    }
    p->g = g;
    p->threads = threads;
    cpu_pb b;
    memset(&b, 0, sizeof b);
    b.p = p;
    b.g = g;
    b.threads = threads;
    b.store = store;
    b.no_fusion = getenv("SI_CPU_NO_FUSION") != NULL;
    si_result s = cpu_engine(&b.eng);
    if (s) {
        cpu_plan_free(p);
        return s;
    }
    dnnl_status_t dst = dnnl_stream_create(&b.stream, b.eng, dnnl_stream_default_flags);
    if (dst != dnnl_success) {
        cpu_plan_free(p);
        return cpu_dnnl_err(dst, "stream creation", NULL);
    }
    if ((s = cpu_fp16_rewrite(g, store, &b.round16, &b.half))) goto out; /* float16 / bfloat16 values computed in float32 (cpu_fp16.c) */
    if ((s = cpu_int8_rewrite(g, &b.nofold))) goto out; /* exact int8 products in float32 without VNNI (cpu_int8f.c) */
    size_t nv = (size_t)g->n_values + 1;
    b.vbuf = si_malloc(sizeof(int) * nv);
    b.remaining = si_calloc(nv, sizeof(int));
    b.n_consumers = si_calloc(nv, sizeof(int));
    b.done = si_calloc((size_t)g->n_nodes + 1, sizeof(bool));
    b.const_used = si_calloc(nv, sizeof(bool));
    p->vbuf_plain = si_malloc(sizeof(int) * nv);
    p->key = si_malloc(sizeof(int64_t) * (size_t)(g->n_inputs * (SI_MAX_DIMS + 2 + CPU_KEY_VALUES) + 1));
    p->node_step = si_malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
    if (!p->node_step || !b.vbuf || !b.remaining || !b.n_consumers || !b.done || !b.const_used || !p->vbuf_plain || !p->key) {
        s = si_err(SI_ERR_NO_MEM, "CPU: out of memory");
        goto out;
    }
    for (int v = 0; v < g->n_values; v++) b.vbuf[v] = p->vbuf_plain[v] = -1;
    for (int n = 0; n < g->n_nodes; n++) p->node_step[n] = -1;
    for (int n = 0; n < g->n_nodes; n++)
        for (int k = 0; k < g->nodes[n].n_in; k++)
            if (g->nodes[n].in[k] >= 0) b.remaining[g->nodes[n].in[k]]++, b.n_consumers[g->nodes[n].in[k]]++;
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const si_val *val = &g->values[v];
        p->key[p->key_len++] = val->ndim;
        for (int d = 0; d < val->ndim; d++) p->key[p->key_len++] = val->dims[d];
        /* an input whose values the plan was built for (a constant here: cpu.c's inputs planned by value) */
        const si_tensor *cv = val->const_val;
        const int64_t ncv = cv && cv->data && si_dtype_is_int(cv->dtype) ? si_shape_count(cv->ndim, cv->dims) : -1;
        p->key[p->key_len++] = ncv >= 0 && ncv <= CPU_KEY_VALUES ? ncv : -1;
        for (int64_t k = 0; ncv >= 0 && ncv <= CPU_KEY_VALUES && k < ncv; k++) p->key[p->key_len++] = (int64_t)si_load_f64(cv->dtype, cv->data, k);
        int sl = add_slot(p, SLOT_INPUT, i, 0);
        if (sl < 0) { s = SI_ERR_NO_MEM; goto out; }
        if (cpu_value_static(val)) {
            dnnl_memory_desc_t md;
            cpu_md_typed(&md, val->dtype, val->ndim, val->dims);
            if (add_buf(&b, v, sl, &md, true, false) < 0) { s = SI_ERR_NO_MEM; goto out; }
        } else if (add_buf(&b, v, sl, NULL, true, true) < 0) {
            s = SI_ERR_NO_MEM;
            goto out;
        }
    }
    for (int n = 0; n < g->n_nodes; n++) {
        if (b.done[n]) continue;
        b.lower_start = p->n_steps;
        if (node_folded(g, &g->nodes[n])) {
            cpu_pb_consume(&b, n);
            continue;
        }
        s = cpu_lower_node(&b, n);
        if (s == SI_ERR_UNSUPPORTED) {
            si_err_clear();
            s = emit_ref(&b, n);
        }
        if (!s) s = cpu_fp16_round_after(&b);
        if (s) goto out;
    }
    if ((s = plan_outputs(&b))) goto out;
    s = plan_memory(p);
    /* constants the steps do not read (weights now packed, folded BatchNormalization parameters, ...) are
     * dropped from the plan's graph: their memory goes when the caller frees the model */
    for (int v = 0; !s && v < g->n_values; v++)
        if (g->values[v].const_val && !b.const_used[v]) {
            si_const_unref(g->values[v].const_val);
            g->values[v].const_val = NULL;
        }
out:
    if (b.stream) dnnl_stream_destroy(b.stream);
    si_free(b.vbuf);
    si_free(b.remaining);
    si_free(b.n_consumers);
    si_free(b.done);
    si_free(b.const_used);
    si_free(b.round16);
    si_free(b.nofold);
    if (s) {
        cpu_plan_free(p);
        return s;
    }
    *out = p;
    return SI_OK;
}

// --- shared attribute helpers ------------------------------------------------------------------------------

const si_tensor *cpu_const_input(const si_graph *g, const si_node *n, int k) {
    if (k >= n->n_in || n->in[k] < 0) return NULL;
    return g->values[n->in[k]].const_val;
}

bool cpu_input_f32_static(const si_graph *g, const si_node *n, int k) {
    if (k >= n->n_in || n->in[k] < 0) return false;
    const si_val *v = &g->values[n->in[k]];
    return v->dtype == SI_F32 && cpu_value_static(v);
}

bool cpu_own_f32_io(const si_graph *g, const si_node *n, const si_val **X, const si_val **Y) {
    if (cpu_no_own() || !cpu_input_f32_static(g, n, 0) || n->n_out < 1 || n->out[0] < 0) return false;
    *X = &g->values[n->in[0]];
    *Y = &g->values[n->out[0]];
    return (*Y)->dtype == SI_F32 && cpu_value_static(*Y) && si_shape_count((*Y)->ndim, (*Y)->dims) > 0 && si_shape_count((*X)->ndim, (*X)->dims) > 0;
}

bool cpu_attr_ints(const si_node *n, const char *name, int count, int64_t dflt, int64_t lo, int64_t *out) {
    int cnt;
    const int64_t *v = si_attr_ints(n, name, &cnt);
    for (int i = 0; i < count; i++) out[i] = dflt;
    if (!v) return true;
    if (cnt != count) return false;
    for (int i = 0; i < count; i++) {
        if (v[i] < lo) return false;
        out[i] = v[i];
    }
    return true;
}
