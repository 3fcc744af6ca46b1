/*
 * test_exec_mock.c — the layering proof: the executor core (src/exec) builds and runs against mock compiled
 * models, linked with nothing but src/exec/exec.c, src/exec/control.c, src/exec/hfa.c, src/exec/moe_drv.c,
 * src/device/iface.c and src/util (no device, no fail-safe layer, no loader, no IR: see tests/CMakeLists.txt). The
 * mocks add a constant to a float32 vector; the control-flow step (If, Loop, Scan) runs mock bodies that are C
 * functions; the host flash attention driver runs mock tile, final and plain models that are C functions too.
 */
#include "exec/control.h"
#include "exec/hfa.h"
#include "mock_model.h"

#include <float.h>
#include <math.h>

#include <stdio.h>

static int failures;
#define CHECK(c)                                                                                                  \
    do {                                                                                                          \
        if (!(c)) { fprintf(stderr, "%s:%d: CHECK failed: %s (%s)\n", __FILE__, __LINE__, #c, si_last_error()); failures++; } \
    } while (0)

// --- a mock compiled model: out = in + k ---------------------------------------------------------------------

typedef struct mock_model {
    si_cmodel base;
    si_port in, out;
    float k;
    int *infer_calls;
} mock_model;

static si_tensor *bound_in_second, *output_of_first; /* to prove zero-copy binding */

static si_result m_set_input(si_ireq *r, int i, si_tensor *t) {
    if (i != 0) return si_err(SI_ERR_INVALID_ARG, "mock: bad input index");
    if (((mock_model *)r->model)->k == 10.0f) bound_in_second = t;
    ((mock_req *)r)->in = t;
    return SI_OK;
}

static si_result m_get_output(si_ireq *r, int i, si_tensor **t) {
    if (i != 0) return si_err(SI_ERR_INVALID_ARG, "mock: bad output index");
    *t = &((mock_req *)r)->out;
    if (((mock_model *)r->model)->k == 1.0f) output_of_first = *t;
    return SI_OK;
}

static si_result m_infer(si_ireq *r_) {
    mock_req *r = (mock_req *)r_;
    mock_model *m = (mock_model *)r->base.model;
    (*m->infer_calls)++;
    if (!r->in) return si_err(SI_ERR_INVALID_ARG, "mock: input not set");
    si_tensor_release(&r->out);
    si_result s = si_tensor_init(&r->out, SI_F32, r->in->ndim, r->in->dims);
    if (!s) s = si_tensor_alloc(&r->out);
    if (s) return s;
    const float *x = r->in->data;
    float *y = r->out.data;
    for (int64_t i = 0; i < si_tensor_count(r->in); i++) y[i] = x[i] + m->k;
    return SI_OK;
}

static const si_ireq_i mock_req_iface = {.set_input = m_set_input, .get_output = m_get_output, .infer = m_infer, .free = mock_req_free};

static si_result m_create(si_cmodel *m, si_ireq **out) { return mock_req_new(m, &mock_req_iface, sizeof(mock_req), out); }

static int models_freed;
static void m_free(si_cmodel *m) {
    models_freed++;
    si_free(m);
}

static const si_cmodel_i mock_iface = {.create_request = m_create, .free = m_free};

static si_cmodel *mock(float k, int *calls) {
    mock_model *m = si_calloc(1, sizeof *m);
    m->base.iface = &mock_iface;
    mock_ports(&m->base, &m->in, &m->out, -1);
    m->k = k;
    m->infer_calls = calls;
    return &m->base;
}

// --- dead values released: exchangeable mocks in a chain ---------------------------------------------------------

/* out = in + k, written into the request's output tensor reshaped in place (its buffer kept while it fits), as
 * an exchangeable request does; each inference records how many of the chain's other outputs hold a buffer
 * while it writes. */
typedef struct xm_model {
    si_cmodel base;
    si_port in, out;
    int id;
} xm_model;

static si_tensor *xm_out[4];  /* each submodel's request output */
static int xm_live[4][3];     /* [submodel][round]: the other submodels' outputs holding a buffer as it writes */
static int xm_round;

static si_result xm_infer(si_ireq *r_) {
    mock_req *r = (mock_req *)r_;
    const xm_model *m = (const xm_model *)r->base.model;
    if (!r->in) return si_err(SI_ERR_INVALID_ARG, "mock: input not set");
    si_result s = si_tensor_reshape(&r->out, SI_F32, r->in->ndim, r->in->dims);
    if (s) return s;
    const float *x = r->in->data;
    float *y = r->out.data;
    for (int64_t i = 0; i < si_tensor_count(r->in); i++) y[i] = x[i] + (float)(m->id + 1);
    xm_out[m->id] = &r->out;
    xm_live[m->id][xm_round] = 0;
    for (int k = 0; k < 4; k++) xm_live[m->id][xm_round] += k != m->id && xm_out[k] && xm_out[k]->data;
    return SI_OK;
}

static si_result xm_set_input(si_ireq *r, int i, si_tensor *t) {
    (void)i;
    ((mock_req *)r)->in = t;
    return SI_OK;
}
static si_result xm_get_output(si_ireq *r, int i, si_tensor **t) {
    (void)i;
    *t = &((mock_req *)r)->out;
    return SI_OK;
}
static const si_ireq_i xm_req_iface = {.set_input = xm_set_input, .get_output = xm_get_output, .infer = xm_infer, .free = mock_req_free,
                                       .outputs_exchangeable = true};
static si_result xm_create(si_cmodel *m, si_ireq **out) { return mock_req_new(m, &xm_req_iface, sizeof(mock_req), out); }
static void xm_free(si_cmodel *m) { si_free(m); }
static const si_cmodel_i xm_iface = {.create_request = xm_create, .request = &xm_req_iface, .free = xm_free};

/* Four exchangeable submodels in a chain (x -> +1 -> +2 -> +3 -> +4 -> y). The executor releases each value's
 * buffer once its last reader has run, so a submodel writes while only its input's buffer is held (and, from the
 * second inference on, the last submodel's: the executor's output); after an inference only the last submodel's
 * output holds one. Every output is right. */
static void test_release_dead(void) {
    si_cmodel *subs[4];
    si_src ins[4][1];
    si_src *sub_inputs[4];
    for (int i = 0; i < 4; i++) {
        xm_model *m = si_calloc(1, sizeof *m);
        m->base.iface = &xm_iface;
        mock_ports(&m->base, &m->in, &m->out, -1);
        m->id = i;
        subs[i] = &m->base;
        ins[i][0] = i ? (si_src){.kind = SI_SRC_SUB, .index = i - 1, .port = 0} : (si_src){.kind = SI_SRC_INPUT, .index = 0};
        sub_inputs[i] = ins[i];
    }
    si_port pin = {.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {-1}}, pout = {.name = "y", .dtype = SI_F32, .ndim = 1, .dims = {-1}};
    si_src out_src = {.kind = SI_SRC_SUB, .index = 3, .port = 0};
    si_exec_desc d = {.n_subs = 4, .subs = subs, .sub_inputs = sub_inputs, .n_inputs = 1, .n_outputs = 1, .inputs = &pin, .outputs = &pout,
                      .out_src = &out_src, .label = "chain"};
    si_cmodel *cm = NULL;
    si_ireq *r = NULL;
    si_tensor *x = NULL;
    int64_t n = 1000;
    CHECK(si_exec_create(&d, &cm) == SI_OK);
    CHECK(cm && cm->iface->create_request(cm, &r) == SI_OK);
    CHECK(si_tensor_create(SI_F32, 1, &n, &x) == SI_OK);
    if (!r || !x) goto out;
    for (int i = 0; i < n; i++) ((float *)x->data)[i] = (float)i;
    CHECK(r->iface->set_input(r, 0, x) == SI_OK);
    for (xm_round = 0; xm_round < 3; xm_round++) {
        CHECK(r->iface->infer(r) == SI_OK);
        si_tensor *y = NULL;
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK);
        bool right = y && y->ndim == 1 && y->dims[0] == n;
        for (int i = 0; right && i < n; i++) right = ((float *)y->data)[i] == (float)i + 10.0f;
        CHECK(right);
    }
    for (int k = 0; k < 3; k++) {
        const int prev = k > 0; /* the last submodel's output from the previous inference, until it writes again */
        CHECK(xm_live[0][k] == prev);
        CHECK(xm_live[1][k] == 1 + prev); /* its input */
        CHECK(xm_live[2][k] == 1 + prev); /* its input; the value two back is gone */
        CHECK(xm_live[3][k] == 1);        /* its input */
    }
    for (int t = 0; t < 3; t++) CHECK(xm_out[t] && !xm_out[t]->data);
    CHECK(xm_out[3] && xm_out[3]->data);
    /* its outputs are the last submodel's, exchangeable: so are the executor's */
    CHECK(cm->iface->request && cm->iface->request->outputs_exchangeable);
out:
    si_tensor_free(x);
    if (r) r->iface->free(r);
    if (cm) cm->iface->free(cm);

    /* one output of the last submodel as two of the executor's: exchanging one would change the other */
    xm_model *m = si_calloc(1, sizeof *m);
    m->base.iface = &xm_iface;
    mock_ports(&m->base, &m->in, &m->out, -1);
    si_cmodel *one[1] = {&m->base};
    si_src in_x[1] = {{.kind = SI_SRC_INPUT, .index = 0}};
    si_src *one_in[1] = {in_x};
    si_port pouts[2] = {pout, {.name = "y2", .dtype = SI_F32, .ndim = 1, .dims = {-1}}};
    si_src twice[2] = {{.kind = SI_SRC_SUB, .index = 0, .port = 0}, {.kind = SI_SRC_SUB, .index = 0, .port = 0}};
    si_exec_desc d2 = {.n_subs = 1, .subs = one, .sub_inputs = one_in, .n_inputs = 1, .n_outputs = 2, .inputs = &pin, .outputs = pouts,
                       .out_src = twice, .label = "twice"};
    cm = NULL;
    CHECK(si_exec_create(&d2, &cm) == SI_OK);
    CHECK(cm && cm->iface->request && !cm->iface->request->outputs_exchangeable);
    if (cm) cm->iface->free(cm);
}

// --- control flow over mock bodies: a body is a C function of its inputs ------------------------------------------

typedef si_result (*body_fn)(si_tensor *const *in, si_tensor *out);
typedef struct fn_model {
    si_cmodel base;
    si_port ins[8], outs[6];
    body_fn fn;
} fn_model;
typedef struct fn_req {
    si_ireq base;
    si_tensor *in[8];
    si_tensor out[6];
} fn_req;

static si_result f_set_input(si_ireq *r, int i, si_tensor *t) { return si_bind_input(r->model, i, t, ((fn_req *)r)->in); }
static si_result f_get_output(si_ireq *r, int i, si_tensor **t) {
    si_result s = si_output_index(r->model, i);
    if (!s) *t = &((fn_req *)r)->out[i];
    return s;
}
static si_result f_infer(si_ireq *r_) {
    fn_req *r = (fn_req *)r_;
    si_result s = si_check_bound(r->base.model, r->in);
    return s ? s : ((fn_model *)r->base.model)->fn(r->in, r->out);
}
static void f_req_free(si_ireq *r_) {
    fn_req *r = (fn_req *)r_;
    for (int k = 0; k < 6; k++) si_tensor_release(&r->out[k]);
    si_free(r);
}
static const si_ireq_i fn_req_iface = {.set_input = f_set_input, .get_output = f_get_output, .infer = f_infer, .free = f_req_free};
static si_result f_create(si_cmodel *m, si_ireq **out) {
    fn_req *r = si_calloc(1, sizeof *r);
    if (!r) return si_err(SI_ERR_NO_MEM, "oom");
    r->base.iface = &fn_req_iface;
    r->base.model = m;
    *out = &r->base;
    return SI_OK;
}
static const si_cmodel_i fn_iface = {.create_request = f_create, .free = m_free};

/* A body with n_in inputs and n_out outputs of the given types, any shape. */
static si_cmodel *fn_body(body_fn fn, int n_in, const si_dtype *in_t, int n_out, const si_dtype *out_t) {
    fn_model *m = si_calloc(1, sizeof *m);
    m->base.iface = &fn_iface;
    m->base.n_inputs = n_in;
    m->base.n_outputs = n_out;
    for (int i = 0; i < n_in; i++) m->ins[i] = (si_port){.name = "in", .dtype = in_t[i], .ndim = -1};
    for (int k = 0; k < n_out; k++) m->outs[k] = (si_port){.name = "out", .dtype = out_t[k], .ndim = -1};
    m->base.inputs = m->ins;
    m->base.outputs = m->outs;
    m->base.device = "mock";
    m->fn = fn;
    return &m->base;
}

static si_result like(si_tensor *o, si_dtype dt, const si_tensor *shape) {
    si_tensor_release(o);
    si_result s = si_tensor_init(o, dt, shape->ndim, shape->dims);
    return s ? s : si_tensor_alloc(o);
}
static int64_t n_of(const si_tensor *t) { return si_tensor_count(t); }

/* If: then out = x + 1, else out = x as int64 (a type the node's float output cannot take) */
static si_result then_fn(si_tensor *const *in, si_tensor *out) {
    si_result s = like(&out[0], SI_F32, in[0]);
    for (int64_t i = 0; !s && i < n_of(in[0]); i++) ((float *)out[0].data)[i] = ((float *)in[0]->data)[i] + 1;
    return s;
}
static si_result else_fn(si_tensor *const *in, si_tensor *out) {
    si_result s = like(&out[0], SI_I64, in[0]);
    for (int64_t i = 0; !s && i < n_of(in[0]); i++) ((int64_t *)out[0].data)[i] = (int64_t)((float *)in[0]->data)[i];
    return s;
}
/* Loop body (iter, cond, v, k) -> (cond: iter < 4, v + k, v * iter) */
static si_result loop_fn(si_tensor *const *in, si_tensor *out) {
    int64_t it = *(int64_t *)in[0]->data;
    si_result s = like(&out[0], SI_BOOL, in[1]);
    if (!s) *(bool *)out[0].data = it < 4;
    if (!s) s = like(&out[1], SI_F32, in[2]);
    if (!s) s = like(&out[2], SI_F32, in[2]);
    for (int64_t i = 0; !s && i < n_of(in[2]); i++) {
        float v = ((float *)in[2]->data)[i];
        ((float *)out[1].data)[i] = v + *(float *)in[3]->data;
        ((float *)out[2].data)[i] = v * (float)it;
    }
    return s;
}
/* Scan body (s, x) -> (s + x, s + x) */
static si_result scan_fn(si_tensor *const *in, si_tensor *out) {
    si_result s = like(&out[0], SI_F32, in[0]);
    if (!s) s = like(&out[1], SI_F32, in[0]);
    for (int64_t i = 0; !s && i < n_of(in[0]); i++)
        ((float *)out[0].data)[i] = ((float *)out[1].data)[i] = ((float *)in[0]->data)[i] + ((float *)in[1]->data)[i];
    return s;
}

/* An If whose branches' requests are exchangeable (their outputs rewritten whole, buffers kept while they fit):
 * then y = x + 1, else y = x - 1, written in place. The node takes a branch's output buffer instead of copying
 * it, and keeps the buffer its output had for the branch to write next: after the first inferences, three
 * buffers go round (the node's output, its fresh result, the branch's output) and nothing is allocated. A
 * failing inference (a branch output of the wrong type) leaves the last results. */
static void *branch_wrote;
static si_result then_x(si_tensor *const *in, si_tensor *out) {
    si_result s = si_tensor_reshape(&out[0], SI_F32, in[0]->ndim, in[0]->dims);
    for (int64_t i = 0; !s && i < n_of(in[0]); i++) ((float *)out[0].data)[i] = ((float *)in[0]->data)[i] + 1;
    branch_wrote = out[0].data;
    return s;
}
static si_result else_x(si_tensor *const *in, si_tensor *out) {
    if (((float *)in[0]->data)[0] < -100.0f) return like(&out[0], SI_I64, in[0]); /* a wrong type: the node refuses it */
    si_result s = si_tensor_reshape(&out[0], SI_F32, in[0]->ndim, in[0]->dims);
    for (int64_t i = 0; !s && i < n_of(in[0]); i++) ((float *)out[0].data)[i] = ((float *)in[0]->data)[i] - 1;
    branch_wrote = out[0].data;
    return s;
}
static const si_ireq_i fnx_req_iface = {.set_input = f_set_input, .get_output = f_get_output, .infer = f_infer, .free = f_req_free,
                                        .outputs_exchangeable = true};
static si_result fx_create(si_cmodel *m, si_ireq **out) {
    si_result s = f_create(m, out);
    if (!s) (*out)->iface = &fnx_req_iface;
    return s;
}
static void fx_free(si_cmodel *m) { si_free(m); }
static const si_cmodel_i fnx_iface = {.create_request = fx_create, .free = fx_free};

static void test_if_exchange(void) {
    const si_dtype f32 = SI_F32;
    si_port if_in[2] = {{.name = "c", .dtype = SI_BOOL, .ndim = 0}, {.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {-1}}};
    si_port if_out[1] = {{.name = "y", .dtype = SI_F32, .ndim = 1, .dims = {-1}}};
    si_cmodel *branches[2] = {fn_body(then_x, 1, &f32, 1, &f32), fn_body(else_x, 1, &f32, 1, &f32)};
    branches[0]->iface = branches[1]->iface = &fnx_iface;
    si_src cond_src[1] = {{.kind = SI_SRC_INPUT, .index = 0}}, x_src[1] = {{.kind = SI_SRC_INPUT, .index = 1}};
    const si_src *body_in[2] = {x_src, x_src};
    int no_formal[2] = {0, 0}, out0[1] = {0};
    si_cf_desc d = {.kind = SI_CF_IF, .name = "ifx", .n_inputs = 2, .n_outputs = 1, .inputs = if_in, .outputs = if_out,
                    .n_node_in = 1, .node_in = cond_src, .n_node_out = 1, .node_out = out0, .n_bodies = 2,
                    .bodies = branches, .n_formal = no_formal, .body_in = body_in};
    si_cmodel *cm = NULL;
    si_ireq *r = NULL;
    si_tensor *c = NULL, *x = NULL, *y = NULL;
    int64_t n = 3000;
    CHECK(si_cf_create(&d, &cm) == SI_OK);
    CHECK(cm && cm->iface->create_request(cm, &r) == SI_OK);
    CHECK(si_tensor_create(SI_BOOL, 0, NULL, &c) == SI_OK);
    CHECK(si_tensor_create(SI_F32, 1, &n, &x) == SI_OK);
    if (!r || !c || !x) goto out;
    CHECK(r->iface->set_input(r, 0, c) == SI_OK && r->iface->set_input(r, 1, x) == SI_OK);
    void *seen[8];
    for (int it = 0; it < 8; it++) {
        for (int i = 0; i < n; i++) ((float *)x->data)[i] = (float)(i + it);
        *(bool *)c->data = it % 3 != 1; /* then, else, then, then, else, ... */
        CHECK(r->iface->infer(r) == SI_OK);
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK);
        bool right = y && y->ndim == 1 && y->dims[0] == n;
        for (int i = 0; right && i < n; i++) right = ((float *)y->data)[i] == (float)(i + it) + (it % 3 != 1 ? 1.0f : -1.0f);
        CHECK(right);
        seen[it] = y ? y->data : NULL;
        CHECK(seen[it] == branch_wrote); /* taken, not copied */
    }
    /* the first inferences allocate (the branches' outputs start empty), then the same buffers go round */
    int distinct = 0;
    for (int i = 0; i < 8; i++) {
        bool again = false;
        for (int j = 0; j < i; j++) again |= seen[j] == seen[i];
        distinct += !again;
    }
    CHECK(distinct <= 4);
    ((float *)x->data)[0] = -1000.0f;
    *(bool *)c->data = false;
    CHECK(r->iface->infer(r) == SI_ERR_INVALID_ARG);
    CHECK(r->iface->get_output(r, 0, &y) == SI_OK && y->data == seen[7] && ((float *)y->data)[1] == 1.0f + 7.0f - 1.0f);
out:
    si_tensor_free(c);
    si_tensor_free(x);
    if (r) r->iface->free(r);
    if (cm) cm->iface->free(cm);
}

static void test_control(void) {
    const si_dtype f32 = SI_F32, i64 = SI_I64;
    int64_t two = 2;
    /* If(c; outer x): inputs c, x; output y float32 */
    si_port if_in[2] = {{.name = "c", .dtype = SI_BOOL, .ndim = 0}, {.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {-1}}};
    si_port if_out[1] = {{.name = "y", .dtype = SI_F32, .ndim = 1, .dims = {-1}}};
    si_cmodel *branches[2] = {fn_body(then_fn, 1, &f32, 1, &f32), fn_body(else_fn, 1, &f32, 1, &i64)};
    si_src cond_src[1] = {{.kind = SI_SRC_INPUT, .index = 0}}, x_src[1] = {{.kind = SI_SRC_INPUT, .index = 1}};
    const si_src *body_in[2] = {x_src, x_src};
    int no_formal[2] = {0, 0}, out0[1] = {0};
    si_cf_desc d = {.kind = SI_CF_IF, .name = "if", .n_inputs = 2, .n_outputs = 1, .inputs = if_in, .outputs = if_out,
                    .n_node_in = 1, .node_in = cond_src, .n_node_out = 1, .node_out = out0, .n_bodies = 2,
                    .bodies = branches, .n_formal = no_formal, .body_in = body_in};
    si_cmodel *cm = NULL;
    si_ireq *r = NULL;
    CHECK(si_cf_create(&d, &cm) == SI_OK);
    CHECK(cm && cm->iface->create_request(cm, &r) == SI_OK);
    si_tensor *c, *x, *y;
    CHECK(si_tensor_create(SI_BOOL, 0, NULL, &c) == SI_OK);
    CHECK(si_tensor_create(SI_F32, 1, &two, &x) == SI_OK);
    ((float *)x->data)[0] = 1.5f;
    ((float *)x->data)[1] = -2.0f;
    *(bool *)c->data = true;
    if (r) {
        CHECK(r->iface->set_input(r, 0, c) == SI_OK && r->iface->set_input(r, 1, x) == SI_OK);
        CHECK(r->iface->infer(r) == SI_OK);
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK && y->ndim == 1 && ((float *)y->data)[0] == 2.5f && ((float *)y->data)[1] == -1.0f);
        *(bool *)c->data = false; /* the else-branch makes int64: a named error, the outputs stay */
        CHECK(r->iface->infer(r) == SI_ERR_INVALID_ARG && strstr(si_last_error(), "If (node 'if'): else_branch output 0 is int64[2]"));
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK && ((float *)y->data)[0] == 2.5f);
        r->iface->free(r);
    }
    if (cm) cm->iface->free(cm);

    /* Loop(M = 10 (a constant), cond absent, v; outer k): ends on the body's condition after 5 iterations */
    int64_t one = 1;
    si_tensor *mt, *k;
    CHECK(si_tensor_create(SI_I64, 0, NULL, &mt) == SI_OK);
    *(int64_t *)mt->data = 10;
    CHECK(si_tensor_create(SI_F32, 1, &one, &k) == SI_OK);
    *(float *)k->data = 0.5f;
    si_port lp_in[2] = {{.name = "v", .dtype = SI_F32, .ndim = 1, .dims = {-1}}, {.name = "k", .dtype = SI_F32, .ndim = 1, .dims = {1}}};
    si_port lp_out[2] = {{.name = "vf", .dtype = SI_F32, .ndim = 1, .dims = {-1}}, {.name = "vs", .dtype = SI_F32, .ndim = 2, .dims = {-1, -1}}};
    si_dtype lin[4] = {SI_I64, SI_BOOL, SI_F32, SI_F32}, lout[3] = {SI_BOOL, SI_F32, SI_F32};
    si_cmodel *lb[1] = {fn_body(loop_fn, 4, lin, 3, lout)};
    si_src lp_node_in[3] = {{.kind = SI_SRC_CONST, .constant = mt}, {.kind = SI_SRC_NONE}, {.kind = SI_SRC_INPUT, .index = 0}};
    si_src k_src[1] = {{.kind = SI_SRC_INPUT, .index = 1}};
    const si_src *lbody_in[1] = {k_src};
    int lformal[1] = {3}, lout_ports[2] = {0, 1};
    si_cf_desc ld = {.kind = SI_CF_LOOP, .name = "loop", .n_inputs = 2, .n_outputs = 2, .inputs = lp_in, .outputs = lp_out,
                     .n_node_in = 3, .node_in = lp_node_in, .n_node_out = 2, .node_out = lout_ports, .n_bodies = 1,
                     .bodies = lb, .n_formal = lformal, .body_in = lbody_in};
    CHECK(si_cf_create(&ld, &cm) == SI_OK);
    si_const_unref(mt); /* the step holds its own reference */
    r = NULL;
    CHECK(cm && cm->iface->create_request(cm, &r) == SI_OK);
    if (r) {
        CHECK(r->iface->set_input(r, 0, x) == SI_OK && r->iface->set_input(r, 1, k) == SI_OK);
        CHECK(r->iface->infer(r) == SI_OK);
        si_tensor *vf, *vs;
        CHECK(r->iface->get_output(r, 0, &vf) == SI_OK && r->iface->get_output(r, 1, &vs) == SI_OK);
        /* iterations 0..4 (the condition after iteration 4 is false): v = x + 5 * 0.5; vs[i] = (x + i/2) * i */
        CHECK(vf->ndim == 1 && ((float *)vf->data)[0] == 4.0f && ((float *)vf->data)[1] == 0.5f);
        CHECK(vs->ndim == 2 && vs->dims[0] == 5 && vs->dims[1] == 2);
        for (int i = 0; vs->ndim == 2 && vs->dims[0] == 5 && i < 5; i++)
            CHECK(((float *)vs->data)[i * 2] == (1.5f + 0.5f * (float)i) * (float)i);
        r->iface->free(r);
    }
    if (cm) cm->iface->free(cm);

    /* Scan(s; x[3,2] scanned along axis 0 in reverse), scan output stacked along axis 1 */
    int64_t xd[2] = {3, 2};
    si_tensor *xs;
    CHECK(si_tensor_create(SI_F32, 2, xd, &xs) == SI_OK);
    for (int i = 0; i < 6; i++) ((float *)xs->data)[i] = (float)(i + 1);
    si_port sc_in[2] = {{.name = "s", .dtype = SI_F32, .ndim = 1, .dims = {2}}, {.name = "xs", .dtype = SI_F32, .ndim = 2, .dims = {-1, 2}}};
    si_port sc_out[2] = {{.name = "sf", .dtype = SI_F32, .ndim = 1, .dims = {2}}, {.name = "ys", .dtype = SI_F32, .ndim = 2, .dims = {2, -1}}};
    si_dtype sin_[2] = {SI_F32, SI_F32};
    si_cmodel *sb[1] = {fn_body(scan_fn, 2, sin_, 2, sin_)};
    si_src sc_node_in[2] = {{.kind = SI_SRC_INPUT, .index = 0}, {.kind = SI_SRC_INPUT, .index = 1}};
    const si_src *sbody_in[1] = {NULL};
    int sformal[1] = {2}, sout_ports[2] = {0, 1};
    int64_t rev[1] = {1}, oaxes[1] = {1};
    si_cf_desc sd = {.kind = SI_CF_SCAN, .name = "scan", .n_inputs = 2, .n_outputs = 2, .inputs = sc_in, .outputs = sc_out,
                     .n_node_in = 2, .node_in = sc_node_in, .n_node_out = 2, .node_out = sout_ports, .n_bodies = 1,
                     .bodies = sb, .n_formal = sformal, .body_in = sbody_in,
                     .scan = {.n_scan_inputs = 1, .in_rev = rev, .out_axes = oaxes}};
    CHECK(si_cf_create(&sd, &cm) == SI_OK);
    r = NULL;
    CHECK(cm && cm->iface->create_request(cm, &r) == SI_OK);
    if (r) {
        si_tensor *s0;
        CHECK(si_tensor_create(SI_F32, 1, &two, &s0) == SI_OK);
        CHECK(r->iface->set_input(r, 0, s0) == SI_OK && r->iface->set_input(r, 1, xs) == SI_OK);
        CHECK(r->iface->infer(r) == SI_OK);
        si_tensor *sf, *ys;
        CHECK(r->iface->get_output(r, 0, &sf) == SI_OK && r->iface->get_output(r, 1, &ys) == SI_OK);
        /* rows in reverse: (5,6), (3,4), (1,2): running sums (5,6), (8,10), (9,12); ys[j][t] */
        CHECK(((float *)sf->data)[0] == 9.0f && ((float *)sf->data)[1] == 12.0f);
        const float want[6] = {5, 8, 9, 6, 10, 12};
        CHECK(ys->ndim == 2 && ys->dims[0] == 2 && ys->dims[1] == 3);
        for (int i = 0; ys->ndim == 2 && ys->dims[1] == 3 && i < 6; i++) CHECK(((float *)ys->data)[i] == want[i]);
        r->iface->free(r);
        si_tensor_free(s0);
    }
    if (cm) cm->iface->free(cm);
    si_tensor_free(c);
    si_tensor_free(x);
    si_tensor_free(k);
    si_tensor_free(xs);
}


// --- host flash attention over mock models: q [B, S, D], k [B, L, D], v [B, L, Dv], scale 0.5, causal ----------

static int tile_calls, tile_fail_at;

static si_result hfa_plain_fn(si_tensor *const *in, si_tensor *out) {
    const si_tensor *q = in[0], *k = in[1], *v = in[2];
    const int64_t B = q->dims[0], S = q->dims[1], D = q->dims[2], L = k->dims[1], Dv = v->dims[2];
    si_tensor_release(out);
    si_result st = si_tensor_init(out, SI_F32, 3, (int64_t[]){B, S, Dv});
    if (st || (st = si_tensor_alloc(out))) return st;
    const float *qd = q->data, *kd = k->data, *vd = v->data;
    float *o = out->data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < S; i++) {
            double sc[64], mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < L && j < 64; j++) {
                double d = 0;
                for (int64_t e = 0; e < D; e++) d += (double)qd[(b * S + i) * D + e] * kd[(b * L + j) * D + e];
                sc[j] = j > i ? -INFINITY : 0.5 * d;
                mx = fmax(mx, sc[j]);
            }
            for (int64_t j = 0; j < L; j++) sum += sc[j] = exp(sc[j] - mx);
            for (int64_t e = 0; e < Dv; e++) {
                double a = 0;
                for (int64_t j = 0; j < L; j++) a += sc[j] * vd[(b * L + j) * Dv + e];
                o[(b * S + i) * Dv + e] = (float)(a / sum);
            }
        }
    return SI_OK;
}

/* (q, k_tile, v_tile, mask_tile [1, S, T], acc [1, B S, Dv], m, l) -> (acc', m', l'), as hfa.h states */
static si_result hfa_tile_fn(si_tensor *const *in, si_tensor *out) {
    if (++tile_calls == tile_fail_at) return si_err(SI_ERR_DEVICE, "mock tile failure");
    const si_tensor *q = in[0], *k = in[1], *v = in[2], *mt = in[3], *acc = in[4], *m = in[5], *l = in[6];
    const int64_t B = q->dims[0], S = q->dims[1], D = q->dims[2], T = k->dims[1], Dv = v->dims[2];
    if (mt->ndim != 3 || mt->dims[1] != S || mt->dims[2] != T || acc->dims[1] != B * S) return si_err(SI_ERR_INVALID_ARG, "mock tile: shapes");
    si_result st;
    for (int x = 0; x < 3; x++)
        if ((st = like(&out[x], SI_F32, in[4 + x]))) return st;
    const float *qd = q->data, *kd = k->data, *vd = v->data, *md = mt->data, *ad = acc->data, *mm = m->data, *ld = l->data;
    float *a2 = out[0].data, *m2 = out[1].data, *l2 = out[2].data;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < S; i++) {
            const int64_t row = b * S + i;
            float sc[64], mx = mm[row];
            for (int64_t j = 0; j < T && j < 64; j++) {
                float d = 0;
                for (int64_t e = 0; e < D; e++) d += qd[row * D + e] * kd[(b * T + j) * D + e];
                sc[j] = 0.5f * d + md[i * T + j];
                mx = fmaxf(mx, sc[j]);
            }
            const float alpha = expf(mm[row] - mx);
            float sum = 0;
            for (int64_t j = 0; j < T; j++) sum += sc[j] = expf(sc[j] - mx);
            m2[row] = mx;
            l2[row] = ld[row] * alpha + sum;
            for (int64_t e = 0; e < Dv; e++) {
                float a = ad[row * Dv + e] * alpha;
                for (int64_t j = 0; j < T; j++) a += sc[j] * vd[(b * T + j) * Dv + e];
                a2[row * Dv + e] = a;
            }
        }
    return SI_OK;
}

static si_result hfa_final_fn(si_tensor *const *in, si_tensor *out) {
    si_result st = like(out, SI_F32, in[0]);
    if (st) return st;
    const int64_t R = in[0]->dims[1], Dv = in[0]->dims[2];
    const float *a = in[0]->data, *l = in[1]->data;
    float *o = out->data;
    for (int64_t r = 0; r < R; r++)
        for (int64_t e = 0; e < Dv; e++) o[r * Dv + e] = a[r * Dv + e] / fmaxf(l[r], FLT_MIN);
    return SI_OK;
}

static void test_hfa(void) {
    static const si_dtype f3[3] = {SI_F32, SI_F32, SI_F32}, f7[7] = {SI_F32, SI_F32, SI_F32, SI_F32, SI_F32, SI_F32, SI_F32};
    si_hfa_desc d = {.plain = fn_body(hfa_plain_fn, 3, f3, 1, f3), .tile = fn_body(hfa_tile_fn, 7, f7, 3, f3),
                     .final = fn_body(hfa_final_fn, 2, f3, 1, f3), .q_in = 0, .k_in = 1, .v_in = 2, .mask_in = -1,
                     .k_axis = 1, .causal = true, .tile_keys = 4, .label = "mock attention"};
    si_cmodel *cm = NULL, *ref = fn_body(hfa_plain_fn, 3, f3, 1, f3);
    CHECK(si_hfa_create(&d, &cm) == SI_OK);
    si_ireq *r = NULL, *rr = NULL;
    CHECK(cm && cm->iface->create_request(cm, &r) == SI_OK);
    CHECK(ref->iface->create_request(ref, &rr) == SI_OK);
    for (int64_t L = 3; r && L <= 11; L += 4) { /* 3: one tile or less, the plain model; 7, 11: 2 and 3 tiles */
        si_tensor *q, *k, *v, *y, *want;
        CHECK(si_tensor_create(SI_F32, 3, (int64_t[]){2, 3, 4}, &q) == SI_OK);
        CHECK(si_tensor_create(SI_F32, 3, (int64_t[]){2, L, 4}, &k) == SI_OK);
        CHECK(si_tensor_create(SI_F32, 3, (int64_t[]){2, L, 5}, &v) == SI_OK);
        si_tensor *all[3] = {q, k, v};
        for (int t = 0; t < 3; t++)
            for (int64_t i = 0; i < si_tensor_count(all[t]); i++) ((float *)all[t]->data)[i] = (float)sin((double)(i * 7 + t * 3 + L));
        for (int t = 0; t < 3; t++) {
            CHECK(r->iface->set_input(r, t, all[t]) == SI_OK);
            CHECK(rr->iface->set_input(rr, t, all[t]) == SI_OK);
        }
        const int64_t runs = si_hfa_tile_runs();
        CHECK(r->iface->infer(r) == SI_OK && rr->iface->infer(rr) == SI_OK);
        CHECK(si_hfa_tile_runs() - runs == (L <= 4 ? 0 : (L + 3) / 4));
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK && rr->iface->get_output(rr, 0, &want) == SI_OK);
        CHECK(y->ndim == 3 && y->dims[0] == 2 && y->dims[1] == 3 && y->dims[2] == 5);
        double diff = 0;
        for (int64_t i = 0; i < si_tensor_count(want); i++) diff = fmax(diff, fabs((double)((float *)y->data)[i] - ((float *)want->data)[i]));
        CHECK(diff < 1e-5);
        /* the second tile fails: the inference fails with the device's status, naming the tile model */
        if (L == 11) {
            tile_fail_at = tile_calls + 2;
            CHECK(r->iface->infer(r) == SI_ERR_DEVICE);
            CHECK(strstr(si_last_error(), "mock attention: tile model: mock tile failure") != NULL);
            CHECK(r->iface->infer(r) == SI_OK); /* and the request stays usable */
        }
        for (int t = 0; t < 3; t++) {
            CHECK(r->iface->set_input(r, t, NULL) == SI_OK);
            CHECK(rr->iface->set_input(rr, t, NULL) == SI_OK);
            si_tensor_free(all[t]);
        }
    }
    if (r) r->iface->free(r);
    if (rr) rr->iface->free(rr);
    if (cm) cm->iface->free(cm);
    ref->iface->free(ref);
}

/* Output buffers keep their room while shapes change: a growing tensor (a KV cache, one position a step) takes
 * twice what it needs (up to 4 MiB more, then 4 MiB or a quarter more; just what it needs when a memory budget has
 * no room for more), the next steps fit in it (same buffer), a much smaller shape gets a buffer of its own; copies leave the destination whole until the second pass, and carry type, shape and bytes. */
static void test_tensor_room(void) {
    si_tensor t = {0};
    CHECK(si_tensor_reshape(&t, SI_F32, 3, (const int64_t[]){1, 8, 1000}) == SI_OK);
    CHECK(t.owned && t.data && t.nbytes == 32000 && t.cap == 32000);
    CHECK(si_tensor_reshape(&t, SI_F32, 3, (const int64_t[]){1, 8, 1001}) == SI_OK); /* grows: headroom */
    CHECK(t.nbytes == 32032 && t.cap == 2 * 32032 && t.dims[2] == 1001);
    void *p1 = t.data;
    for (int64_t l = 1002; l <= 2002; l++) {
        CHECK(si_tensor_reshape(&t, SI_F32, 3, (const int64_t[]){1, 8, l}) == SI_OK);
        CHECK(t.data == p1 && t.dims[2] == l); /* fits: no new buffer for 1001 steps */
    }
    CHECK(si_tensor_reshape(&t, SI_F32, 3, (const int64_t[]){1, 8, 2003}) == SI_OK);
    CHECK(t.data != NULL && t.nbytes == 64096 && t.cap == 2 * 64096);
    CHECK(si_tensor_reshape(&t, SI_F32, 2, (const int64_t[]){1000, 1000}) == SI_OK);
    CHECK(t.nbytes == 4000000 && t.cap == 8000000);                             /* up to 4 MiB: twice */
    CHECK(si_tensor_reshape(&t, SI_F32, 2, (const int64_t[]){4000, 1000}) == SI_OK);
    CHECK(t.nbytes == 16000000 && t.cap == 16000000 + ((size_t)4 << 20));         /* then 4 MiB more */
    CHECK(si_tensor_reshape(&t, SI_F32, 2, (const int64_t[]){25000, 1000}) == SI_OK);
    CHECK(t.nbytes == 100000000 && t.cap == 125000000);                          /* or a quarter more */
    CHECK(si_tensor_reshape(&t, SI_F32, 1, (const int64_t[]){10}) == SI_OK); /* far smaller: not kept */
    CHECK(t.cap == 40 && t.nbytes == 40);
    CHECK(si_tensor_reshape(&t, SI_F32, 1, (const int64_t[]){-1}) == SI_ERR_INVALID_ARG && t.nbytes == 40);
    int64_t n = 6;
    si_tensor *src = NULL;
    CHECK(si_tensor_create(SI_I64, 1, &n, &src) == SI_OK);
    for (int i = 0; src && i < 6; i++) ((int64_t *)src->data)[i] = 100 + i;
    si_tensor fresh;
    void *before = t.data;
    CHECK(si_tensor_copy_room(&t, src, &fresh) == SI_OK && fresh.data != NULL); /* 48 bytes do not fit in 40 */
    CHECK(t.data == before && t.nbytes == 40 && t.dtype == SI_F32);                 /* whole until the second pass */
    void *made = fresh.data;
    si_tensor_copy_into(&t, src, &fresh);
    CHECK(t.data == made && t.dtype == SI_I64 && t.ndim == 1 && t.dims[0] == 6 && t.cap == 96 && !fresh.data);
    for (int i = 0; i < 6; i++) CHECK(((int64_t *)t.data)[i] == 100 + i);
    src->dims[0] = 5, src->nbytes = 40, ((int64_t *)src->data)[0] = 7;
    CHECK(si_tensor_copy_room(&t, src, &fresh) == SI_OK && fresh.data == NULL); /* fits */
    si_tensor_copy_into(&t, src, &fresh);
    CHECK(t.data != NULL && t.dims[0] == 5 && t.nbytes == 40 && ((int64_t *)t.data)[0] == 7);
    si_tensor_release(&t);
    si_tensor_free(src);

    /* a memory budget with no room for the headroom: reshape and copy_room take just what is needed (the capacity
     * says so); what the budget cannot give at all is refused, the destination left as it was */
    si_budget b;
    si_budget_init(&b, (int64_t)4 << 20);
    const int64_t mib = (1 << 20) / 4, two = 2 * mib, three = 3 * mib, four = 4 * mib; /* float32 elements */
    si_tensor *src2 = NULL, *src4 = NULL;
    CHECK(si_tensor_create(SI_F32, 1, &two, &src2) == SI_OK && si_tensor_create(SI_F32, 1, &four, &src4) == SI_OK);
    si_budget *prev = si_budget_enter(&b);
    CHECK(si_tensor_reshape(&t, SI_F32, 1, &mib) == SI_OK && t.cap == (size_t)1 << 20);
    CHECK(si_tensor_reshape(&t, SI_F32, 1, &three) == SI_OK && t.cap == (size_t)3 << 20); /* 1 + 6 MiB would not fit */
    si_tensor_release(&t);
    CHECK(si_tensor_reshape(&t, SI_F32, 1, &mib) == SI_OK);
    before = t.data;
    CHECK(src4 && si_tensor_copy_room(&t, src4, &fresh) == SI_ERR_NO_MEM && !fresh.data); /* 1 + 4 MiB > 4 */
    CHECK(t.data == before && t.nbytes == (size_t)1 << 20);
    CHECK(src2 && si_tensor_copy_room(&t, src2, &fresh) == SI_OK && fresh.data && fresh.cap == (size_t)2 << 20); /* not 4 */
    si_tensor_copy_into(&t, src2, &fresh);
    CHECK(t.cap == (size_t)2 << 20 && t.nbytes == (size_t)2 << 20);
    si_tensor_release(&t);
    si_budget_leave(prev);
    si_budget_destroy(&b);
    si_tensor_free(src2);
    si_tensor_free(src4);
}

int main(void) {
    test_tensor_room();
    test_release_dead();
    test_if_exchange();
    int calls = 0;
    /* model input -> sub0 (+1) -> sub1 (+10) -> output 0; output 1 is the model input itself; output 2 a constant */
    si_cmodel *subs[2] = {mock(1.0f, &calls), mock(10.0f, &calls)};
    si_src in0[1] = {{.kind = SI_SRC_INPUT, .index = 0}};
    si_src in1[1] = {{.kind = SI_SRC_SUB, .index = 0, .port = 0}};
    si_src *sub_inputs[2] = {in0, in1};
    int64_t three = 3;
    si_tensor *cst;
    CHECK(si_tensor_create(SI_F32, 1, &three, &cst) == SI_OK);
    ((float *)cst->data)[2] = 7.0f;
    si_port ports_in[1] = {{.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {-1}}};
    si_port ports_out[3] = {{.name = "y", .dtype = SI_F32, .ndim = 1, .dims = {-1}},
                            {.name = "x_again", .dtype = SI_F32, .ndim = 1, .dims = {-1}},
                            {.name = "c", .dtype = SI_F32, .ndim = 1, .dims = {3}}};
    si_src out_src[3] = {{.kind = SI_SRC_SUB, .index = 1, .port = 0}, {.kind = SI_SRC_INPUT, .index = 0},
                         {.kind = SI_SRC_CONST, .constant = cst}};
    si_exec_desc d = {.n_subs = 2, .subs = subs, .sub_inputs = sub_inputs, .n_inputs = 1, .n_outputs = 3,
                      .inputs = ports_in, .outputs = ports_out, .out_src = out_src, .label = "mock,mock"};
    si_cmodel *cm = NULL;
    CHECK(si_exec_create(&d, &cm) == SI_OK);
    si_const_unref(cst); /* the executor holds its own reference */
    si_ireq *r = NULL;
    CHECK(cm->iface->create_request(cm, &r) == SI_OK);
    CHECK(r->iface->infer(r) == SI_ERR_INVALID_ARG); /* input not set: the caller's mistake */
    int64_t n = 4;
    si_tensor *x;
    CHECK(si_tensor_create(SI_F32, 1, &n, &x) == SI_OK);
    for (int i = 0; i < 4; i++) ((float *)x->data)[i] = (float)i;
    CHECK(r->iface->set_input(r, 0, x) == SI_OK);
    si_tensor *wrong;
    int64_t n2[2] = {2, 2};
    CHECK(si_tensor_create(SI_I64, 2, n2, &wrong) == SI_OK);
    CHECK(r->iface->set_input(r, 0, wrong) == SI_ERR_INVALID_ARG); /* port check by the core */
    si_tensor_free(wrong);
    for (int round = 0; round < 2; round++) {
        CHECK(r->iface->infer(r) == SI_OK);
        si_tensor *y, *xa, *c;
        CHECK(r->iface->get_output(r, 0, &y) == SI_OK);
        CHECK(r->iface->get_output(r, 1, &xa) == SI_OK);
        CHECK(r->iface->get_output(r, 2, &c) == SI_OK);
        for (int i = 0; i < 4; i++) {
            CHECK(((float *)y->data)[i] == (float)i + 11.0f + (float)round);
            CHECK(((float *)xa->data)[i] == (float)i + (float)round);
        }
        CHECK(c->ndim == 1 && c->dims[0] == 3 && ((float *)c->data)[2] == 7.0f);
        for (int i = 0; i < 4; i++) ((float *)x->data)[i] += 1.0f;
    }
    /* zero copy: the second submodel reads the first one's output tensor object itself */
    CHECK(calls == 4);
    CHECK(bound_in_second != NULL && bound_in_second == output_of_first);
    r->iface->free(r);
    cm->iface->free(cm);
    CHECK(models_freed == 2);
    si_tensor_free(x);
    models_freed = 0;
    test_control();
    CHECK(models_freed == 4); /* the bodies went with their control-flow models */
    models_freed = 0;
    test_hfa();
    CHECK(models_freed == 4); /* plain, tile and final went with the driver; the reference */
    if (failures) fprintf(stderr, "test_exec_mock: %d failures\n", failures);
    else printf("test_exec_mock: executor core ran mock submodels, control flow and flash attention with no device code linked: ok\n");
    return failures ? 1 : 0;
}
