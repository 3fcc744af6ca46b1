/*
 * cpu.c — the CPU device: compiled models, requests and the step executor.
 *
 * compile() plans the graph once when every input shape is known (cpu_plan.c): oneDNN primitives are
 * created and weights packed then, and intermediate buffers get fixed offsets in one arena. When an input
 * has a dimension only known at run time, the plan is built at the first infer for those shapes (the graph
 * is specialised and its shapes inferred again) and kept in a per-model LRU cache of plan_cache plans
 * (property, default 8): a plan no request is bound to goes first, a plan a request is bound to never goes
 * under it. Packed weights are not the plans': the model's store (cpu_store.c) makes each once and every plan
 * borrows it, so a new shape costs its primitives and buffer plan, not the weights again (a decode loop plans
 * a new shape per token). Primitives belong to the plan, shared by all requests; each request owns a oneDNN
 * stream and the memory objects binding the plan's buffers to an arena, its inputs and outputs. The arena is
 * borrowed per inference from a pool (cpu_arena.c), so the CPU submodels and calls that one inference runs one
 * after the other share one arena instead of faulting in one each.
 *
 * Threads: the `threads` option (default 1) is the OpenMP thread count oneDNN primitives use. It is set on
 * the calling thread around primitive creation and execution and restored afterwards, so requests of
 * models compiled with different counts can run on different threads at once.
 *
 * Debugging aids (environment): SI_CPU_POISON fills the arena with NaN at each inference (a step
 * reading a buffer before it is written then shows in the outputs); SI_CPU_NO_FUSION plans every node on
 * its own; SI_CPU_NO_PREPACK skips the probe plans of compile (prepack); SI_CPU_NO_OWN keeps the device's own
 * kernels out of plans (cpu_no_own); SI_CPU_NO_MM1X1 keeps MatMul / Gemm on oneDNN's matmul where they would run
 * as its 1x1 convolution (cpu_mm1x1.c); SI_CPU_NO_VNNI treats the CPU as one without exact int8 products
 * (cpu_quant.c); in a build with -DSI_CPU_PROFILE_PRINT, SI_CPU_PROFILE=1 (per step kind) or =2 (per step)
 * prints the time spent in the steps to stderr when a request is freed.
 */
#include "device/cpu/cpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define FOLD_MAX ((size_t)2 << 30)
#define PLAN_CACHE_DEFAULT 8
#define PLAN_CACHE_MAX 1024

typedef struct cpu_model {
    si_cmodel base;
    si_graph *g; /* the compiled graph, shapes as known at compile time */
    int threads;
    bool profile;    /* option profile=on: requests time their steps */
    si_port *in_ports, *out_ports;
    cpu_plan *plan0; /* the plan for the compile-time shapes, when they are all known */
    cpu_plan *plan1; /* threads > 1: the same plan on one thread */
    cpu_store *store; /* packed weights of every plan (cpu_store.c): made once per model, never per shape */
    pthread_mutex_t lock; /* the plan cache and its entries' counts; plans for new shapes are built under it */
    struct cpu_cached {
        cpu_plan *p;
        int bound;      /* requests bound to it: a plan is freed only when none is */
        uint64_t used;  /* the tick of its last use (least recently used goes first) */
    } *cache;
    int n_cache, cap_cache;
    int cache_max;      /* property plan_cache: plans kept that no request is bound to */
    uint64_t tick;
    int64_t plans_built, plans_evicted;
    cpu_ppack *ppacks;  /* the parameters the plans built at compile pack at run time (prepare_input) */
    int n_ppacks;
    bool *by_value;     /* [n_inputs]: small integer inputs that decide shapes: plans are built for their values */
} cpu_model;

typedef struct cpu_req {
    si_ireq base;
    const cpu_plan *plan;    /* the plan the request is bound to */
    const cpu_plan *held;    /* the cached plan whose bound count this request holds (not plan0/plan1), or NULL */
    const void *arena_key;   /* the pool key (memory budget) the request registered with */
    bool arena_user;
    cpu_arena *blk;          /* the arena borrowed for the inference running now */
    uint8_t *arena;          /* its base while the request runs */
    uint8_t *arena_bound;    /* the base the plan's memory objects point into (NULL: not bound yet) */
    dnnl_stream_t stream;
    dnnl_memory_t *mems;     /* per plan argument (step arg_base + i, scratchpad last) */
    int n_mems;
    si_tensor *views;        /* per plan buffer: a tensor header for reference kernels */
    si_tensor *dyn;          /* per graph value: run-time tensors of values whose shape is dynamic */
    int n_dyn;
    atomic_bool cancel;
    /* threads > 1 with a busy machine: see pick_variant */
    double min_n, ema_1;    /* fastest infer on plan0, running mean on plan1 (ms) */
    int slow_n, on_one, since_switch;
    bool profile;
    bool poison;             /* SI_CPU_POISON (tests): the arena is set to NaN before each inference */
    double *prof_ms;         /* per plan step: time and calls since the last profile flush */
    int64_t *prof_calls;
    void **pp_ptr;           /* per plan parameter (SLOT_PARAM): its packed weights for the tensor bound now */
    const si_tensor **pp_src; /* ... and that tensor */
    struct cpu_ppm {         /* every (parameter, tensor) this request was bound to on its plan, and its packed form:
                              * the calls of a folded block take turns on one request, each with its own weights */
        int i;
        const si_tensor *t;
        void *p;
    } *ppm;
    int n_ppm, cap_ppm;
} cpu_req;

// --- binding a request to a plan ------------------------------------------------------------------------------

static void unbind(cpu_req *r) {
    for (int i = 0; i < r->n_mems; i++)
        if (r->mems[i]) dnnl_memory_destroy(r->mems[i]);
    SI_FREE_CLEAR(r->mems);
    r->n_mems = 0;
    SI_FREE_CLEAR(r->views);
    for (int v = 0; v < r->n_dyn; v++) si_tensor_release(&r->dyn[v]);
    SI_FREE_CLEAR(r->dyn);
    r->n_dyn = 0;
    SI_FREE_CLEAR(r->prof_ms);
    SI_FREE_CLEAR(r->prof_calls);
    r->plan = NULL;
    SI_FREE_CLEAR(r->pp_ptr);
    SI_FREE_CLEAR(r->pp_src);
    SI_FREE_CLEAR(r->ppm);
    r->n_ppm = r->cap_ppm = 0;
}

static void *buf_ptr(const cpu_req *r, const cpu_plan *p, int buf) {
    const cpu_slot *s = &p->slots[p->bufs[buf].slot];
    switch (s->kind) {
    case SLOT_ARENA: return r->arena + s->off;
    case SLOT_INPUT: return r->base.bound[s->index]->data;
    case SLOT_OUTPUT: return r->base.outs[s->index]->data;
    case SLOT_CONST: return (void *)s->cptr;
    case SLOT_DYN: return r->dyn[s->index].data;
    case SLOT_PARAM: return r->pp_ptr[s->index];
    }
    return NULL;
}

/* The outputs the plan's steps write in place get the plan's shapes (their buffers are kept while they fit). At
 * every inference, not only when the plan changes: the request's outputs are exchangeable (si_ireq_i), so a buffer
 * may have been swapped for another of any shape since the last one. */
static si_result shape_outputs(cpu_req *r, const cpu_plan *p) {
    const si_graph *g = p->g;
    for (int k = 0; k < g->n_outputs; k++) {
        const si_val *v = &g->values[g->outputs[k]];
        if (p->bufs[p->out_buf[k]].dyn || v->const_val) continue;
        si_result s = si_ireq_shape_output(&r->base, k, v->dtype, v->ndim, v->dims);
        if (s) return s;
    }
    return SI_OK;
}

static si_result bind(cpu_req *r, const cpu_plan *p) {
    unbind(r);
    dnnl_engine_t eng;
    si_result s = cpu_engine(&eng);
    if (s) return s;
    const si_graph *g = p->g;
    if ((s = shape_outputs(r, p))) return s;
    r->mems = si_calloc((size_t)p->n_args_total + 1, sizeof(dnnl_memory_t));
    r->views = si_calloc((size_t)p->n_bufs + 1, sizeof(si_tensor));
    r->dyn = si_calloc((size_t)g->n_values + 1, sizeof(si_tensor));
    if (!r->mems || !r->views || !r->dyn) return si_err(SI_ERR_NO_MEM, "CPU: out of memory binding a request");
    r->n_mems = p->n_args_total;
    r->n_dyn = g->n_values;
    if (r->profile && (!(r->prof_ms = si_calloc((size_t)p->n_steps + 1, sizeof(double))) ||
                       !(r->prof_calls = si_calloc((size_t)p->n_steps + 1, sizeof(int64_t)))))
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory for the profile");
    for (int i = 0; i < p->n_bufs; i++) {
        const cpu_buf *b = &p->bufs[i];
        if (b->value < 0 || b->dyn) continue;
        const si_val *v = &g->values[b->value];
        si_tensor *t = &r->views[i];
        t->dtype = v->dtype;
        t->ndim = v->ndim;
        memcpy(t->dims, v->dims, sizeof t->dims);
        t->nbytes = cpu_value_nbytes(v);
        t->owned = false;
    }
    for (int i = 0; i < p->n_steps; i++) {
        const cpu_step *st = &p->steps[i];
        if (st->kind != STEP_DNNL) continue;
        int n = st->n_args + (st->scratch_slot >= 0);
        for (int a = 0; a < n; a++) {
            const dnnl_memory_desc_t *md = a < st->n_args ? &p->bufs[st->args[a].buf].md : &st->scratch_md;
            dnnl_memory_t *m = &r->mems[st->arg_base + a];
            dnnl_status_t ds = dnnl_memory_create(m, md, eng, DNNL_MEMORY_NONE);
            if (ds != dnnl_success) {
                *m = NULL;
                return cpu_dnnl_err(ds, "memory object creation", NULL);
            }
            if (a < st->n_args && p->slots[p->bufs[st->args[a].buf].slot].kind == SLOT_CONST &&
                (ds = dnnl_memory_set_data_handle(*m, buf_ptr(r, p, st->args[a].buf))) != dnnl_success)
                return cpu_dnnl_err(ds, "binding memory", NULL);
        }
    }
    if (p->n_ppacks && (!(r->pp_ptr = si_calloc((size_t)p->n_ppacks, sizeof(void *))) ||
                        !(r->pp_src = si_calloc((size_t)p->n_ppacks, sizeof(si_tensor *)))))
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory binding a request");
    r->plan = p;
    r->arena_bound = NULL; /* the arena's memory objects point nowhere yet */
    return SI_OK;
}

static void give_arena(cpu_req *r) {
    cpu_arena_give(r->blk);
    r->blk = NULL;
    r->arena = NULL;
}

/* Borrow an arena for this inference (cpu_arena.c) and point the plan's arena memory objects into it, unless
 * they point there already (the pool lends a request the same arena again while it fits). */
static si_result take_arena(cpu_req *r, const cpu_plan *p) {
    si_result s = cpu_arena_take(r->arena_key, p->arena_size, &r->blk);
    if (s) return s;
    r->arena = cpu_arena_base(r->blk);
    if (r->poison && r->arena) memset(r->arena, 0xff, p->arena_size); /* NaN everywhere: tests */
    if (r->arena == r->arena_bound) return SI_OK;
    for (int i = 0; i < p->n_steps; i++) {
        const cpu_step *st = &p->steps[i];
        if (st->kind != STEP_DNNL) continue;
        int n = st->n_args + (st->scratch_slot >= 0);
        for (int a = 0; a < n; a++) {
            size_t off;
            if (a < st->n_args) {
                const cpu_slot *sl = &p->slots[p->bufs[st->args[a].buf].slot];
                if (sl->kind != SLOT_ARENA) continue;
                off = sl->off;
            } else {
                off = p->slots[st->scratch_slot].off;
            }
            dnnl_status_t ds = dnnl_memory_set_data_handle(r->mems[st->arg_base + a], r->arena + off);
            if (ds != dnnl_success) {
                r->arena_bound = NULL;
                give_arena(r);
                return cpu_dnnl_err(ds, "binding memory", NULL);
            }
        }
    }
    r->arena_bound = r->arena;
    return SI_OK;
}

/* The packed weights of the parameters bound now (a function body's request is bound to one call's weights, so this
 * looks them up once per request, not per inference). */
static si_result resolve_params(cpu_req *r, const cpu_model *m, const cpu_plan *p) {
    for (int i = 0; i < p->n_ppacks; i++) {
        const si_tensor *t = r->base.bound[p->ppacks[i].port];
        if (r->pp_src[i] == t && r->pp_ptr[i]) continue;
        r->pp_src[i] = NULL;
        void *ptr = NULL;
        for (int k = 0; k < r->n_ppm && !ptr; k++)
            if (r->ppm[k].i == i && r->ppm[k].t == t) ptr = r->ppm[k].p;
        if (!ptr) {
            si_result s = cpu_store_param(m->store, &p->ppacks[i], t, r->stream, &ptr);
            if (s) return si_err_wrap(s, "CPU: input '%s'", p->g->values[p->g->inputs[p->ppacks[i].port]].name);
            if (r->n_ppm == r->cap_ppm) { /* the memo is a shortcut: when it cannot grow, the store answers */
                int cap = r->cap_ppm ? 2 * r->cap_ppm : 16;
                struct cpu_ppm *n = si_realloc(r->ppm, sizeof *n * (size_t)cap);
                if (n) r->ppm = n, r->cap_ppm = cap;
            }
            if (r->n_ppm < r->cap_ppm) r->ppm[r->n_ppm++] = (struct cpu_ppm){i, t, ptr};
        }
        r->pp_ptr[i] = ptr;
        r->pp_src[i] = t;
    }
    return SI_OK;
}

// --- executing steps ---------------------------------------------------------------------------------------

static si_result run_ref(cpu_req *r, const cpu_plan *p, const cpu_step *st) {
    const si_graph *g = p->g;
    const si_node *n = &g->nodes[st->node];
    const si_tensor *ins[64];
    si_tensor *outs[64];
    si_tensor tmp[64];
    if (n->n_in > 64 || n->n_out > 64) return si_err(SI_ERR_UNSUPPORTED, "CPU: node '%s' has too many inputs or outputs", n->name);
    bool all_static = true;
    for (int k = 0; k < n->n_in; k++) {
        int b = st->in_buf[k];
        if (b >= 0) {
            const cpu_buf *bf = &p->bufs[b];
            if (bf->dyn) {
                const cpu_slot *s = &p->slots[bf->slot];
                ins[k] = s->kind == SLOT_INPUT ? r->base.bound[s->index] : &r->dyn[bf->value];
                all_static = false;
            } else {
                r->views[b].data = buf_ptr(r, p, b);
                ins[k] = &r->views[b];
            }
        } else {
            ins[k] = n->in[k] >= 0 ? g->values[n->in[k]].const_val : NULL;
        }
    }
    for (int k = 0; k < n->n_out; k++) {
        int b = st->out_buf[k];
        outs[k] = NULL;
        if (b < 0) continue;
        const cpu_buf *bf = &p->bufs[b];
        if (bf->dyn) {
            si_tensor *t = &r->dyn[bf->value];
            si_tensor_release(t);
            memset(t, 0, sizeof *t);
            outs[k] = t;
            all_static = false;
        } else {
            memset(&tmp[k], 0, sizeof tmp[k]);
            outs[k] = &tmp[k];
        }
    }
    si_kctx c = {.node = n, .opset = n->opset, .n_in = n->n_in, .in = ins, .n_out = n->n_out, .out = outs};
    if (!all_static) {
        si_result s = n->op->infer(&c);
        if (!s) s = si_outputs_typed(&c);
        if (s) return s;
    }
    for (int k = 0; k < n->n_out; k++) {
        int b = st->out_buf[k];
        if (b < 0) continue;
        const cpu_buf *bf = &p->bufs[b];
        if (bf->dyn) {
            si_result s = si_tensor_alloc(outs[k]);
            if (s) return s;
            continue;
        }
        si_tensor *view = &r->views[b];
        if (!all_static && (outs[k]->ndim != view->ndim || memcmp(outs[k]->dims, view->dims, sizeof(int64_t) * (size_t)view->ndim)))
            return si_err(SI_ERR_INTERNAL, "CPU: node '%s' (%s): output %d has a shape other than planned", n->name, n->op_type, k);
        view->data = buf_ptr(r, p, b);
        if (view->nbytes && !st->native) memset(view->data, 0, view->nbytes); /* native kernels write every element */
        outs[k] = view;
    }
    return st->native ? st->native(&c) : n->op->run(&c);
}

static si_result run_dnnl(cpu_req *r, const cpu_plan *p, const cpu_step *st) {
    dnnl_exec_arg_t args[128];
    int n = 0;
    if (st->n_args + 1 > (int)SI_ARRAY_LEN(args)) return si_err(SI_ERR_INTERNAL, "CPU: too many primitive arguments");
    for (int a = 0; a < st->n_args; a++) {
        dnnl_memory_t m = r->mems[st->arg_base + a];
        int b = st->args[a].buf;
        cpu_slot_kind k = p->slots[p->bufs[b].slot].kind;
        if (k != SLOT_ARENA && k != SLOT_CONST) {
            dnnl_status_t ds = dnnl_memory_set_data_handle(m, buf_ptr(r, p, b));
            if (ds != dnnl_success) {
                cpu_dnnl_err(ds, "binding memory", st->node >= 0 ? p->g->nodes[st->node].name : "?");
                return SI_ERR_DEVICE;
            }
        }
        args[n].arg = st->args[a].arg;
        args[n++].memory = m;
    }
    if (st->scratch_slot >= 0) {
        args[n].arg = DNNL_ARG_SCRATCHPAD;
        args[n++].memory = r->mems[st->arg_base + st->n_args];
    }
    const int old = st->one_thread ? cpu_threads_set(1) : 0;
    dnnl_status_t ds = dnnl_primitive_execute(st->prim, r->stream, n, args);
    if (st->one_thread) cpu_threads_set(old);
    if (ds != dnnl_success) { /* a primitive that ran before and fails now: the device failed */
        cpu_dnnl_err(ds, "execution", st->node >= 0 ? p->g->nodes[st->node].name : "?");
        return SI_ERR_DEVICE;
    }
    return SI_OK;
}

static si_result run_fn(cpu_req *r, const cpu_plan *p, const cpu_step *st) {
    void *ptrs[32];
    if (st->n_args > (int)SI_ARRAY_LEN(ptrs)) return si_err(SI_ERR_INTERNAL, "CPU: too many kernel arguments");
    for (int a = 0; a < st->n_args; a++) ptrs[a] = buf_ptr(r, p, st->args[a].buf);
    return st->fn(st->fn_ctx, ptrs, p->threads);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static si_result run_plan(cpu_req *r, const cpu_plan *p) {
    si_result s = SI_OK;
    for (int i = 0; i < p->n_steps && !s; i++) {
        if (atomic_load(&r->cancel)) return si_err(SI_ERR_ABORTED, "CPU: inference cancelled");
        const cpu_step *st = &p->steps[i];
        double t0 = r->prof_ms ? now_ms() : 0;
        switch (st->kind) {
        case STEP_REF:
        case STEP_NATIVE: s = run_ref(r, p, st); break;
        case STEP_DNNL: s = run_dnnl(r, p, st); break;
        case STEP_FN: s = run_fn(r, p, st); break;
        }
        if (r->prof_ms) {
            if (st->kind == STEP_DNNL) dnnl_stream_wait(r->stream); /* the step's own time, not the next one's */
            r->prof_ms[i] += now_ms() - t0;
            r->prof_calls[i]++;
        }
        if (s && st->node >= 0 && s != SI_ERR_ABORTED)
            si_err_wrap(s, "CPU: step %d (%s, node '%s')", i, st->what, p->g->nodes[st->node].name);
    }
    if (!s) {
        dnnl_status_t ds = dnnl_stream_wait(r->stream);
        if (ds != dnnl_success) {
            cpu_dnnl_err(ds, "stream wait", NULL);
            s = SI_ERR_DEVICE;
        }
    }
    return s;
}

static si_result copy_outputs(cpu_req *r, const cpu_plan *p) {
    const si_graph *g = p->g;
    for (int k = 0; k < g->n_outputs; k++) {
        if (!p->out_copy[k]) continue;
        int b = p->out_buf[k];
        const cpu_buf *bf = &p->bufs[b];
        const si_val *v = &g->values[g->outputs[k]];
        const si_tensor *src;
        if (v->const_val) src = v->const_val;
        else if (bf->dyn) {
            const cpu_slot *s = &p->slots[bf->slot];
            src = s->kind == SLOT_INPUT ? r->base.bound[s->index] : &r->dyn[bf->value];
        } else {
            r->views[b].data = buf_ptr(r, p, b);
            src = &r->views[b];
        }
        si_result s = si_ireq_shape_output(&r->base, k, src->dtype, src->ndim, src->dims);
        if (s) return s;
        if (src->nbytes) memcpy(r->base.outs[k]->data, src->data, src->nbytes);
    }
    return SI_OK;
}

// --- plans for the current input shapes ---------------------------------------------------------------------

/* The plan key (cpu_plan_build): per input its rank and dimensions, then -1, or the count and the values of an
 * input the plan was built for the values of. */
static bool plan_matches(const cpu_plan *p, si_tensor *const *in, int n) {
    int o = 0;
    for (int i = 0; i < n; i++) {
        if (o >= p->key_len || p->key[o] != in[i]->ndim) return false;
        o++;
        for (int d = 0; d < in[i]->ndim; d++)
            if (p->key[o++] != in[i]->dims[d]) return false;
        const int64_t nv = p->key[o++];
        if (nv < 0) continue;
        if (nv != si_shape_count(in[i]->ndim, in[i]->dims) || !si_dtype_is_int(in[i]->dtype)) return false;
        for (int64_t k = 0; k < nv; k++)
            if (p->key[o++] != (int64_t)si_load_f64(in[i]->dtype, in[i]->data, k)) return false;
    }
    return true;
}

/* --- inputs whose values decide shapes ---------------------------------------------------------------------
 * A submodel cut out of a larger graph (a folded layer, a partition) can get a shape as a run-time value: the
 * batch size a Shape -> Gather -> Unsqueeze before it computed, read by the Reshapes of its attention. Planned
 * from shapes alone, everything after such a Reshape has unknown dimensions and runs on reference kernels (a
 * ViT's folded layers: Softmax and the attention MatMuls, 4.5x slower). So an integer input of at most
 * BY_VALUE_MAX values (rank 0 or 1) from which integer values flow into an input that decides an output's shape
 * (Reshape's shape, Expand's, Slice's bounds, ...) is planned by value: its values join the plan key and are
 * constants while the plan is built. */
#define BY_VALUE_MAX CPU_KEY_VALUES

static bool shape_slot(const si_node *n, int k) {
    if (n->domain[0]) return false;
    if (si_node_is(n, SI_OP_CONSTANT_OF_SHAPE) || si_node_is(n, SI_OP_RANGE)) return true;
    if (k < 1) return false;
    return si_node_is(n, SI_OP_RESHAPE) || si_node_is(n, SI_OP_EXPAND) || si_node_is(n, SI_OP_TILE) || si_node_is(n, SI_OP_SLICE) ||
           si_node_is(n, SI_OP_PAD) || si_node_is(n, SI_OP_UNSQUEEZE) || si_node_is(n, SI_OP_SQUEEZE) || si_node_is(n, SI_OP_TOP_K) ||
           si_node_is(n, SI_OP_SPLIT) || si_node_is(n, SI_OP_ONE_HOT) || si_node_is(n, SI_OP_RESIZE) || si_node_is(n, SI_OP_UPSAMPLE) ||
           si_node_is(n, SI_OP_REDUCE_MEAN) || si_node_is(n, SI_OP_REDUCE_SUM);
}

/* Does integer value v reach a shape slot through nodes whose outputs are integers? (breadth first; seen is
 * scratch of n_values) */
static bool decides_shapes(const si_graph *g, int v, bool *seen) {
    memset(seen, 0, sizeof(bool) * (size_t)g->n_values);
    int *queue = si_malloc(sizeof(int) * (size_t)(g->n_values + 1));
    if (!queue) return false;
    int head = 0, tail = 0;
    queue[tail++] = v, seen[v] = true;
    bool found = false;
    while (head < tail && !found) {
        const int u = queue[head++];
        for (int n = 0; n < g->n_nodes && !found; n++) {
            const si_node *nd = &g->nodes[n];
            bool reads = false;
            for (int k = 0; k < nd->n_in; k++)
                if (nd->in[k] == u) {
                    reads = true;
                    found |= shape_slot(nd, k);
                }
            for (int o = 0; reads && !found && o < nd->n_out; o++) {
                const int w = nd->out[o];
                if (w >= 0 && !seen[w] && si_dtype_is_int(g->values[w].dtype)) seen[w] = true, queue[tail++] = w;
            }
        }
    }
    si_free(queue);
    return found;
}

static si_result find_by_value(cpu_model *m) {
    const si_graph *g = m->g;
    bool *seen = si_malloc(sizeof(bool) * (size_t)(g->n_values + 1));
    m->by_value = si_calloc((size_t)g->n_inputs + 1, sizeof(bool));
    if (!seen || !m->by_value) {
        si_free(seen);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    }
    for (int i = 0; i < g->n_inputs; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        const bool small = v->ndim == 0 || (v->ndim == 1 && (!si_dim_known(v->dims[0]) || v->dims[0] <= BY_VALUE_MAX));
        m->by_value[i] = si_dtype_is_int(v->dtype) && small && !v->const_val && decides_shapes(g, g->inputs[i], seen);
    }
    si_free(seen);
    return SI_OK;
}

/* The plan for input shapes given as ndims[i] and dims[i] (SI_MAX_DIMS each); the inputs planned by value take
 * theirs from in (when given). */
static si_result build_for_dims(cpu_model *m, const int *ndims, int64_t (*dims)[SI_MAX_DIMS], si_tensor *const *in, cpu_plan **out) {
    si_graph *g;
    si_result s = si_graph_clone(m->g, &g);
    if (s) return s;
    for (int i = 0; i < g->n_inputs; i++) {
        si_val *v = &g->values[g->inputs[i]];
        v->ndim = ndims[i];
        memcpy(v->dims, dims[i], sizeof(int64_t) * (size_t)ndims[i]);
        if (in && m->by_value && m->by_value[i] && in[i]->data && si_dtype_is_int(in[i]->dtype) &&
            si_tensor_count(in[i]) <= BY_VALUE_MAX && !v->const_val) {
            si_tensor *c;
            if ((s = si_tensor_clone(in[i], &c))) {
                si_graph_free(g);
                return s;
            }
            v->const_val = c;
        }
    }
    if ((s = si_graph_infer_shapes(g, FOLD_MAX))) {
        si_graph_free(g);
        return s;
    }
    int old = cpu_threads_set(m->threads);
    s = cpu_plan_build(g, m->threads, m->store, out);
    cpu_threads_set(old);
    return s;
}

static si_result build_for_inputs(cpu_model *m, si_tensor *const *in, cpu_plan **out) {
    int n = m->base.n_inputs;
    int *nd = si_malloc(sizeof(int) * (size_t)(n + 1));
    int64_t(*dims)[SI_MAX_DIMS] = si_malloc(sizeof *dims * (size_t)(n + 1));
    si_result s = nd && dims ? SI_OK : si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    for (int i = 0; !s && i < n; i++) {
        nd[i] = in[i]->ndim;
        memcpy(dims[i], in[i]->dims, sizeof(int64_t) * (size_t)in[i]->ndim);
    }
    if (!s) s = build_for_dims(m, nd, dims, in, out);
    si_free(nd);
    si_free(dims);
    return s;
}

/* Packing ahead (unless SI_CPU_NO_PREPACK is set in the environment: for comparisons). A model with open dimensions plans per set of input
 * shapes at run time, and its first plan would pack every weight into the store: for an LLM that is the
 * prefill, which then cost several times ONNX Runtime's. So compile builds throw-away probe plans at
 * representative shapes, which fill the store in the layouts later plans want (a layout depends on the shape:
 * few rows take oneDNN's inner product, more its matmul): one with few rows (decode: 1 new token over PROBE_ROWS
 * cached ones) and one with many (prefill: PROBE_ROWS tokens over an empty cache). An open dimension gets its
 * size from its symbol's name: *past* the cached length, *total* cached + new, *batch* 1 when another dimension
 * is open (else the batch is the rows: a CNN), any other the rows.
 * A probe whose shapes the graph refuses (names that mean something else) is skipped, and so are both when an
 * input's rank is not known: the plan for the real shapes packs what is missing then, as without probes. */
#define PROBE_ROWS 16

static bool is_batch(const si_graph *g, int64_t d) {
    const char *name = si_dim_sym_id(d) >= 0 ? si_graph_sym_name(g, d) : NULL;
    return name && strstr(name, "batch");
}

static int64_t probe_dim(const si_graph *g, int64_t d, int64_t rows, int64_t past, bool batch_rows) {
    if (d >= 0) return d;
    const char *name = si_dim_sym_id(d) >= 0 ? si_graph_sym_name(g, d) : NULL;
    if (name && strstr(name, "batch")) return batch_rows ? rows : 1;
    if (name && strstr(name, "past")) return past;
    if (name && strstr(name, "total")) return past + rows;
    return rows;
}

/* The parameters plan p packs at run time, for prepare_input (every plan packs a parameter in one layout). */
static void keep_ppacks(cpu_model *m, const cpu_plan *p) {
    for (int i = 0; i < p->n_ppacks; i++) {
        const cpu_ppack *pp = &p->ppacks[i];
        bool seen = false;
        for (int j = 0; j < m->n_ppacks && !seen; j++)
            seen = m->ppacks[j].port == pp->port && m->ppacks[j].node == pp->node && m->ppacks[j].fp == pp->fp &&
                   !strcmp(m->ppacks[j].tag, pp->tag);
        if (seen) continue;
        cpu_ppack *n = si_realloc(m->ppacks, sizeof *n * (size_t)(m->n_ppacks + 1));
        if (!n) return; /* a shortcut only: the first bind packs what is not kept */
        m->ppacks = n;
        m->ppacks[m->n_ppacks++] = *pp;
    }
}

/* The constant that parameter input i will be bound to, now: its pages mapped, and packed in the layouts the
 * compile-time plans use. */
static si_result cpu_prepare_input(si_cmodel *m_, int i, const si_tensor *t) {
    cpu_model *m = (cpu_model *)m_;
    if (m->g->values[m->g->inputs[i]].is_param) cpu_touch_pages(t); /* read in place (int4 weights), as a constant's */
    dnnl_engine_t eng;
    dnnl_stream_t stream = NULL;
    si_result s = SI_OK;
    int old = cpu_threads_set(m->threads);
    for (int k = 0; !s && k < m->n_ppacks; k++) {
        if (m->ppacks[k].port != i) continue;
        if (!stream && !(s = cpu_engine(&eng)) && dnnl_stream_create(&stream, eng, dnnl_stream_default_flags) != dnnl_success) {
            stream = NULL;
            s = si_err(SI_ERR_DEVICE, "CPU: cannot create a stream");
        }
        void *ptr;
        if (!s) s = cpu_store_param(m->store, &m->ppacks[k], t, stream, &ptr);
    }
    cpu_threads_set(old);
    if (stream) dnnl_stream_destroy(stream);
    return s;
}

static void prepack(cpu_model *m) {
    const si_graph *g = m->g;
    int n = g->n_inputs;
    int *nd = si_malloc(sizeof(int) * (size_t)(n + 1));
    int64_t(*dims)[SI_MAX_DIMS] = si_malloc(sizeof *dims * (size_t)(n + 1));
    const int64_t probes[2][2] = {{PROBE_ROWS, 0}, {1, PROBE_ROWS}}; /* {rows, past}: prefill, decode */
    bool batch_rows = true; /* the batch is the rows when no other dimension is open (a CNN's batch) */
    for (int i = 0; i < n; i++) {
        const si_val *v = &g->values[g->inputs[i]];
        if (v->ndim < 0 || v->ndim > SI_MAX_DIMS) n = -1; /* a rank not known: no shape to probe with */
        for (int d = 0; n >= 0 && d < v->ndim; d++) batch_rows &= v->dims[d] >= 0 || is_batch(g, v->dims[d]);
        if (n < 0) break;
    }
    if (n < 0) {
        si_free(nd);
        si_free(dims);
        return;
    }
    for (int k = 0; nd && dims && k < 2; k++) {
        for (int i = 0; i < n; i++) {
            const si_val *v = &g->values[g->inputs[i]];
            nd[i] = v->ndim;
            for (int d = 0; d < v->ndim; d++) dims[i][d] = probe_dim(g, v->dims[d], probes[k][0], probes[k][1], batch_rows);
        }
        cpu_plan *p = NULL;
        if (build_for_dims(m, nd, dims, NULL, &p)) si_err_clear(); /* best effort: the real shapes plan what is missing */
        else keep_ppacks(m, p), cpu_plan_free(p);
    }
    si_free(nd);
    si_free(dims);
}

/* Under m->lock: free least recently used plans no request is bound to while more than plan_cache are kept. */
static void cache_trim(cpu_model *m) {
    while (m->n_cache > m->cache_max) {
        int lru = -1;
        for (int i = 0; i < m->n_cache; i++)
            if (!m->cache[i].bound && (lru < 0 || m->cache[i].used < m->cache[lru].used)) lru = i;
        if (lru < 0) return; /* every plan kept is in use: the extra ones go when their requests move on */
        cpu_plan_free(m->cache[lru].p);
        m->cache[lru] = m->cache[--m->n_cache];
        m->plans_evicted++;
    }
}

/* Under m->lock: the cache entry of plan p, or NULL. */
static struct cpu_cached *cache_entry(cpu_model *m, const cpu_plan *p) {
    for (int i = 0; i < m->n_cache; i++)
        if (m->cache[i].p == p) return &m->cache[i];
    return NULL;
}

/* The request lets go of the cached plan it holds (it is unbound from it first: the plan may go now). */
static void release_held(cpu_req *r, cpu_model *m) {
    if (!r->held) return;
    if (r->plan == r->held) unbind(r);
    pthread_mutex_lock(&m->lock);
    struct cpu_cached *e = cache_entry(m, r->held);
    if (e) e->bound--;
    r->held = NULL;
    cache_trim(m);
    pthread_mutex_unlock(&m->lock);
}

static si_result plan_for(cpu_req *r, cpu_model *m, const cpu_plan **out) {
    int n = m->base.n_inputs;
    if (r->plan && plan_matches(r->plan, r->base.bound, n)) {
        *out = r->plan;
        return SI_OK;
    }
    if (m->plan0 && plan_matches(m->plan0, r->base.bound, n)) {
        release_held(r, m);
        *out = m->plan0;
        return SI_OK;
    }
    if (r->held && plan_matches(r->held, r->base.bound, n)) {
        *out = r->held;
        return SI_OK;
    }
    if (r->plan == r->held) unbind(r); /* its plan may be freed once it is let go of below */
    pthread_mutex_lock(&m->lock);
    struct cpu_cached *e = r->held ? cache_entry(m, r->held) : NULL;
    if (e) e->bound--;
    r->held = NULL;
    e = NULL;
    for (int i = 0; i < m->n_cache && !e; i++)
        if (plan_matches(m->cache[i].p, r->base.bound, n)) e = &m->cache[i];
    if (!e) {
        cpu_plan *p;
        si_result s = build_for_inputs(m, r->base.bound, &p); /* under the lock: one build per shape */
        if (!s && m->n_cache == m->cap_cache) {
            int cap = m->cap_cache ? 2 * m->cap_cache : 8;
            struct cpu_cached *nc = si_realloc(m->cache, sizeof *nc * (size_t)cap);
            if (nc) m->cache = nc, m->cap_cache = cap;
            else s = si_err(SI_ERR_NO_MEM, "CPU: out of memory");
            if (s) cpu_plan_free(p);
        }
        if (s) {
            cache_trim(m);
            pthread_mutex_unlock(&m->lock);
            return s;
        }
        m->plans_built++;
        e = &m->cache[m->n_cache++];
        e->p = p;
        e->bound = 0;
    }
    e->bound++;
    e->used = ++m->tick;
    r->held = e->p;
    cache_trim(m); /* e is bound: not freed, but it may move in the array */
    pthread_mutex_unlock(&m->lock);
    *out = r->held;
    return SI_OK;
}

// --- requests ---------------------------------------------------------------------------------------------


#ifdef SI_CPU_PROFILE_PRINT
static void print_profile(const cpu_req *r) {
    const cpu_plan *p = r->plan;
    if (!p || !r->prof_ms) return;
    /* development aid (SI_CPU_PROFILE=1): per step kind totals on stderr */
    typedef struct { char what[96]; double ms; int n; } agg;
    agg a[1024];
    int na = 0;
    double total = 0;
    bool each = getenv("SI_CPU_PROFILE")[0] == '2';
    for (int i = 0; i < p->n_steps; i++) {
        const cpu_step *st = &p->steps[i];
        char key[96];
        if (each) snprintf(key, sizeof key, "%03d %s%.70s", i, st->kind == STEP_REF ? "ref:" : "", st->what);
        else snprintf(key, sizeof key, "%s%.80s", st->kind == STEP_REF ? "ref:" : "", st->what);
        int j = 0;
        while (j < na && strcmp(a[j].what, key)) j++;
        if (j == na && na < 1024) { snprintf(a[na].what, sizeof a[na].what, "%s", key); a[na].ms = 0; a[na].n = 0; na++; }
        if (j < na) { a[j].ms += r->prof_ms[i]; a[j].n++; }
        total += r->prof_ms[i];
    }
    for (int i = 0; i < na && !each; i++)
        for (int j = i + 1; j < na; j++)
            if (a[j].ms > a[i].ms) { agg t = a[i]; a[i] = a[j]; a[j] = t; }
    fprintf(stderr, "CPU profile (%d steps, %.2f ms total, arena %.1f MB):\n", p->n_steps, total, p->arena_size / 1e6);
    for (int i = 0; i < na; i++) fprintf(stderr, "  %8.2f ms %5.1f%% %4d x %s\n", a[i].ms, 100 * a[i].ms / total, a[i].n, a[i].what);
}
#endif

/* OpenMP, which Debian's oneDNN runs on, splits each primitive's work statically between the threads and
 * waits for all of them: when other processes keep a core busy, every primitive waits for the thread that
 * lost its core, and a model of many small primitives runs several times slower on `threads` threads than
 * on one (MobileNetV2 on 2 threads with one busy-looping process beside it: 22 ms, against 7 ms on one
 * thread and 4 ms on an idle machine). So with threads > 1 the request watches its latency: after two
 * infers in a row over 1.5 times its fastest, it runs the same plan on one thread, and every 8 infers
 * tries `threads` again, keeping it when that beats the one-thread mean. On an idle machine nothing
 * changes. This is opt-in (compile property adaptive_threads=on); by default `threads` is exact. */
static const cpu_plan *pick_variant(cpu_req *r, const cpu_model *m, bool *probe) {
    *probe = false;
    if (!r->on_one) return m->plan0;
    if (++r->since_switch % 8 == 0) {
        *probe = true;
        return m->plan0;
    }
    return m->plan1;
}

static void record_variant(cpu_req *r, const cpu_model *m, const cpu_plan *p, bool probe, double ms) {
    if (p == m->plan1) {
        r->ema_1 = r->ema_1 > 0 ? 0.7 * r->ema_1 + 0.3 * ms : ms;
        return;
    }
    if (r->min_n <= 0 || ms < r->min_n) r->min_n = ms;
    if (probe) { /* back to `threads` when it wins again */
        if (ms < 0.9 * r->ema_1) r->on_one = 0, r->slow_n = 0;
        return;
    }
    r->slow_n = ms > 1.5 * r->min_n ? r->slow_n + 1 : 0;
    if (r->slow_n >= 2) {
        r->on_one = 1;
        r->since_switch = 0;
        r->ema_1 = 0;
    }
}

static si_result cpu_infer(si_ireq *r_) {
    cpu_req *r = (cpu_req *)r_;
    cpu_model *m = (cpu_model *)r->base.model;
    atomic_store(&r->cancel, false);
    si_result chk = si_ireq_check_inputs(&r->base);
    if (chk) return chk;
    const cpu_plan *p;
    si_result s = plan_for(r, m, &p);
    if (s) return s;
    bool probe = false;
    if (m->plan1 && (p == m->plan0 || p == m->plan1)) p = pick_variant(r, m, &probe);
    if (r->plan != p) { /* bind shapes the outputs too */
        if ((s = bind(r, p))) {
            unbind(r);
            return s;
        }
    } else if ((s = shape_outputs(r, p))) {
        return s;
    }
    if (p->n_ppacks && (s = resolve_params(r, m, p))) return s;
    if ((s = take_arena(r, p))) return s;
    int old = cpu_threads_set(p->threads);
    double t0 = m->plan1 ? now_ms() : 0;
    s = run_plan(r, p);
    if (m->plan1 && !s) record_variant(r, m, p, probe, now_ms() - t0);
    cpu_threads_set(old);
    if (!s) s = copy_outputs(r, p);
    give_arena(r);
    for (int v = 0; v < r->n_dyn; v++) si_tensor_release(&r->dyn[v]);
    return s;
}

static void cpu_cancel(si_ireq *r_) { atomic_store(&((cpu_req *)r_)->cancel, true); }

static void cpu_profile(si_ireq *r_, si_prof *sink) {
    cpu_req *r = (cpu_req *)r_;
    if (r->plan && r->prof_ms && ((cpu_model *)r->base.model)->profile) cpu_profile_flush(r->plan, r->prof_ms, r->prof_calls, sink);
}

static void cpu_req_free(si_ireq *r_) {
    cpu_req *r = (cpu_req *)r_;
    if (!r) return;
#ifdef SI_CPU_PROFILE_PRINT
    if (r->profile) print_profile(r);
#endif
    unbind(r);
    release_held(r, (cpu_model *)r->base.model);
    if (r->stream) dnnl_stream_destroy(r->stream);
    if (r->arena_user) cpu_arena_user_gone(r->arena_key);
    si_ireq_fini(&r->base);
    si_free(r);
}

static si_result cpu_req_init(si_ireq *r_) {
    cpu_req *r = (cpu_req *)r_;
    const cpu_model *m = (const cpu_model *)r_->model;
    atomic_init(&r->cancel, false);
#ifdef SI_CPU_PROFILE_PRINT
    r->profile = getenv("SI_CPU_PROFILE") != NULL;
#endif
    r->profile |= m->profile;
    r->poison = getenv("SI_CPU_POISON") != NULL;
    dnnl_engine_t eng;
    si_result s = cpu_engine(&eng);
    if (s) return s;
    dnnl_status_t ds = dnnl_stream_create(&r->stream, eng, dnnl_stream_default_flags);
    if (ds != dnnl_success) {
        r->stream = NULL;
        return cpu_dnnl_err(ds, "stream creation", NULL);
    }
    r->arena_key = si_budget_current(); /* requests of one compiled model share its arenas */
    if ((s = cpu_arena_user(r->arena_key))) return s;
    r->arena_user = true;
    if (!m->plan0) return SI_OK;
    /* static shapes: bound now, and the pool holds an arena for the plan before the first infer (one that
     * cannot be had is an error of the creation, not of the first infer) */
    if ((s = bind(r, m->plan0)) || (s = take_arena(r, m->plan0))) return s;
    give_arena(r);
    return SI_OK;
}

static const si_ireq_i cpu_req_iface = SI_IREQ_IFACE_OF(cpu, "CPU", .outputs_exchangeable = true);

// --- compiled model -----------------------------------------------------------------------------------------

static void cpu_model_free(si_cmodel *m_) {
    cpu_model *m = (cpu_model *)m_;
    if (!m) return;
    cpu_plan_free(m->plan1);
    cpu_plan_free(m->plan0);
    for (int i = 0; i < m->n_cache; i++) cpu_plan_free(m->cache[i].p);
    si_free(m->cache);
    cpu_store_free(m->store); /* after every plan: they borrow its weights */
    si_free(m->ppacks);
    pthread_mutex_destroy(&m->lock);
    si_graph_free(m->g);
    si_free(m->in_ports);
    si_free(m->out_ports);
    si_free(m->by_value);
    si_free(m);
}

static const si_cmodel_i cpu_model_iface = {.create_request = si_ireq_create, .request = &cpu_req_iface, .free = cpu_model_free,
                                            .prepare_input = cpu_prepare_input};

static void port_from_value(si_port *p, const si_val *v) {
    p->name = v->name;
    p->dtype = v->dtype;
    p->ndim = v->ndim;
    for (int i = 0; i < SI_MAX_DIMS; i++) p->dims[i] = i < v->ndim ? v->dims[i] : -1;
}

static si_result cpu_supports_op(const si_device *d, const si_graph *g, const si_node *n) {
    (void)d;
    const si_tensor *ins[64];
    si_tensor desc[64];
    if (n->n_in > 64 || n->n_out > 64) return si_err(SI_ERR_UNSUPPORTED, "node '%s' has too many inputs or outputs", n->name);
    for (int k = 0; k < n->n_in; k++) {
        ins[k] = NULL;
        if (n->in[k] < 0) continue;
        const si_val *v = &g->values[n->in[k]];
        if (v->const_val) {
            ins[k] = v->const_val;
            continue;
        }
        memset(&desc[k], 0, sizeof desc[k]);
        desc[k].dtype = v->dtype;
        desc[k].ndim = v->ndim < 0 ? 0 : v->ndim;
        memcpy(desc[k].dims, v->dims, sizeof desc[k].dims);
        ins[k] = &desc[k];
    }
    /* every op runs: on a oneDNN primitive where the plan finds one, else on the reference kernel */
    return si_op_supported(n, n->n_in, ins);
}

/* An integer option of the CPU device in lo..hi; dflt when it is not set. */
static si_result parse_int_option(const si_options *opts, const char *key, int dflt, int lo, int hi, int *out) {
    const char *t = si_options_get(opts, key);
    *out = dflt;
    if (!t) return SI_OK;
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (errno || *end || end == t || v < lo || v > hi) return si_err(SI_ERR_INVALID_ARG, "CPU: %s '%s' is not a number in %d..%d", key, t, lo, hi);
    *out = (int)v;
    return SI_OK;
}

static si_result cpu_compile(si_device *d, const si_graph *src, const si_compile_ctx *cc, si_cmodel **out) {
    const si_options *opts = si_compile_opts(cc);
    *out = NULL;
    int threads, plan_cache;
    si_result s = parse_int_option(opts, "threads", 1, 1, 1024, &threads);
    if (!s) s = parse_int_option(opts, "plan_cache", PLAN_CACHE_DEFAULT, 0, PLAN_CACHE_MAX, &plan_cache);
    if (s) return s;
    dnnl_engine_t eng;
    if ((s = cpu_engine(&eng))) return s;
    cpu_model *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    m->base.iface = &cpu_model_iface;
    m->base.device = d->name;
    m->threads = threads;
    m->cache_max = plan_cache;
    const char *prof = si_options_get(opts, "profile");
    m->profile = prof && (!strcmp(prof, "on") || !strcmp(prof, "1") || !strcmp(prof, "true"));
    pthread_mutex_init(&m->lock, NULL);
    if ((s = cpu_store_new(&m->store)) || (s = si_graph_clone(src, &m->g))) {
        cpu_model_free(&m->base);
        return s;
    }
    si_graph *g = m->g;
    cpu_store_set_graph(m->store, g);
    for (int i = 0; i < g->n_nodes; i++)
        if ((s = cpu_supports_op(d, g, &g->nodes[i])) || (s = si_op_runnable(&g->nodes[i]))) {
            si_err_wrap(s, "CPU cannot run node '%s'", g->nodes[i].name);
            cpu_model_free(&m->base);
            return s;
        }
    m->in_ports = si_calloc((size_t)g->n_inputs + 1, sizeof(si_port));
    m->out_ports = si_calloc((size_t)g->n_outputs + 1, sizeof(si_port));
    if (!m->in_ports || !m->out_ports) {
        cpu_model_free(&m->base);
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    }
    for (int i = 0; i < g->n_inputs; i++) port_from_value(&m->in_ports[i], &g->values[g->inputs[i]]);
    for (int i = 0; i < g->n_outputs; i++) port_from_value(&m->out_ports[i], &g->values[g->outputs[i]]);
    m->base.n_inputs = g->n_inputs;
    m->base.n_outputs = g->n_outputs;
    m->base.inputs = m->in_ports;
    m->base.outputs = m->out_ports;
    if ((s = find_by_value(m))) {
        cpu_model_free(&m->base);
        return s;
    }
    bool all_static = true;
    for (int i = 0; i < g->n_inputs; i++) all_static &= cpu_value_static(&g->values[g->inputs[i]]) && !m->by_value[i];
    if (all_static) {
        si_graph *pg;
        if ((s = si_graph_clone(g, &pg))) {
            cpu_model_free(&m->base);
            return s;
        }
        /* the one-thread variant only when asked for (property adaptive_threads=on): by default `threads`
         * is exactly the number of threads used */
        const char *adapt = si_options_get(opts, "adaptive_threads");
        bool adaptive = adapt && (!strcmp(adapt, "on") || !strcmp(adapt, "1") || !strcmp(adapt, "true"));
        si_graph *pg1 = NULL;
        if (threads > 1 && adaptive && (s = si_graph_clone(g, &pg1))) {
            si_graph_free(pg);
            cpu_model_free(&m->base);
            return s;
        }
        int old = cpu_threads_set(threads);
        s = cpu_plan_build(pg, threads, m->store, &m->plan0);
        if (pg1) {
            cpu_threads_set(1);
            if (!s) s = cpu_plan_build(pg1, 1, m->store, &m->plan1);
            else si_graph_free(pg1);
        }
        cpu_threads_set(old);
        if (s) {
            cpu_model_free(&m->base);
            return s;
        }
        keep_ppacks(m, m->plan0);
        /* every input shape is fixed, so this plan serves every infer: the model's own graph only names
         * the ports now, and its constants can go */
        for (int v = 0; v < g->n_values; v++) {
            si_const_unref(g->values[v].const_val);
            g->values[v].const_val = NULL;
        }
    } else if (!getenv("SI_CPU_NO_PREPACK")) {
        prepack(m);
    }
    *out = &m->base;
    return SI_OK;
}

int si_cpu_plan_describe(const si_cmodel *m_, char *buf, size_t n) {
    const cpu_model *m = (const cpu_model *)m_;
    if (n) buf[0] = 0;
    if (!m || m->base.iface != &cpu_model_iface || !m->plan0) return -1;
    const cpu_plan *p = m->plan0;
    size_t o = 0;
    int refs = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const cpu_step *st = &p->steps[i];
        refs += st->kind == STEP_REF;
        if (o < n)
            o += (size_t)snprintf(buf + o, n - o, "%s%s%s%s%s%s", i ? ";" : "", st->kind == STEP_REF ? "ref:" : "", st->what, st->kernel[0] ? " [" : "",
                                  st->kernel, st->kernel[0] ? "]" : "");
    }
    return refs;
}

int si_cpu_plan_stats(const si_cmodel *m_, si_cpu_plan_stats_t *st) {
    cpu_model *m = (cpu_model *)m_;
    memset(st, 0, sizeof *st);
    if (!m || m->base.iface != &cpu_model_iface) return -1;
    pthread_mutex_lock(&m->lock);
    st->plans_built = m->plans_built + (m->plan0 != NULL) + (m->plan1 != NULL);
    st->plans_evicted = m->plans_evicted;
    st->plans_cached = m->n_cache;
    for (int i = 0; i < m->n_cache; i++) st->plans_bound += m->cache[i].bound > 0;
    pthread_mutex_unlock(&m->lock);
    cpu_store_stats(m->store, &st->weight_packs, &st->store_entries, &st->store_bytes);
    cpu_store_pd_stats(m->store, &st->pd_made, &st->pd_reused);
    return 0;
}

static const si_device_i cpu_iface = {
    .api_version = SI_DEVICE_API_VERSION,
    .supports_op = cpu_supports_op,
    .compile = cpu_compile,
};

si_device si_device_cpu = {.iface = &cpu_iface, .name = "CPU", .ctx = NULL};
