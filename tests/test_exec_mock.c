/*
 * test_exec_mock.c — the layering proof: the executor core (src/exec) builds and runs against mock compiled
 * models, linked with nothing but src/exec/exec.c, src/device/iface.c and src/util (no device, no fail-safe
 * layer, no loader: see tests/CMakeLists.txt). The mocks add a constant to a float32 vector.
 */
#include "exec/exec.h"

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

typedef struct mock_req {
    si_ireq base;
    si_tensor *in;
    si_tensor out;
} mock_req;

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

static void m_req_free(si_ireq *r_) {
    mock_req *r = (mock_req *)r_;
    si_tensor_release(&r->out);
    si_free(r);
}

static const si_ireq_i mock_req_iface = {.set_input = m_set_input, .get_output = m_get_output, .infer = m_infer, .free = m_req_free};

static si_result m_create(si_cmodel *m, si_ireq **out) {
    mock_req *r = si_calloc(1, sizeof *r);
    if (!r) return si_err(SI_ERR_NO_MEM, "oom");
    r->base.iface = &mock_req_iface;
    r->base.model = m;
    r->out.dtype = SI_F32;
    *out = &r->base;
    return SI_OK;
}

static int models_freed;
static void m_free(si_cmodel *m) {
    models_freed++;
    si_free(m);
}

static const si_cmodel_i mock_iface = {.create_request = m_create, .free = m_free};

static si_cmodel *mock(float k, int *calls) {
    mock_model *m = si_calloc(1, sizeof *m);
    m->base.iface = &mock_iface;
    m->base.n_inputs = m->base.n_outputs = 1;
    m->in = (si_port){.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {-1}};
    m->out = (si_port){.name = "y", .dtype = SI_F32, .ndim = 1, .dims = {-1}};
    m->base.inputs = &m->in;
    m->base.outputs = &m->out;
    m->base.device = "mock";
    m->k = k;
    m->infer_calls = calls;
    return &m->base;
}

int main(void) {
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
    if (failures) fprintf(stderr, "test_exec_mock: %d failures\n", failures);
    else printf("test_exec_mock: executor core ran mock submodels with no device code linked: ok\n");
    return failures ? 1 : 0;
}
