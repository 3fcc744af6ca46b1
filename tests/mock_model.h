/*
 * mock_model.h — what the mock compiled models of test_exec_mock.c and test_failsafe_mock.c share: a model of one
 * float32 input "x" and one output "y" (1-D), whose requests hold the bound input and own their output tensor. The
 * compute (each test's infer) and the model's own state are the tests'. Needs only src/device/iface.h and src/util
 * (test_exec_mock links no more than that).
 */
#ifndef SI_TEST_MOCK_MODEL_H
#define SI_TEST_MOCK_MODEL_H

#include "device/iface.h"
#include "util/util.h"

typedef struct mock_req {
    si_ireq base;
    si_tensor *in;
    si_tensor out;
} mock_req;

/* A new request of m (size bytes, a mock_req or a struct that starts with one): no input bound, an empty float32
 * output. */
static si_result mock_req_new(si_cmodel *m, const si_ireq_i *iface, size_t size, si_ireq **out) {
    mock_req *r = si_calloc(1, size);
    if (!r) return si_err(SI_ERR_NO_MEM, "mock: out of memory");
    r->base.iface = iface;
    r->base.model = m;
    r->out.dtype = SI_F32;
    *out = &r->base;
    return SI_OK;
}

static void mock_req_free(si_ireq *r) {
    si_tensor_release(&((mock_req *)r)->out);
    si_free(r);
}

/* m's ports: input x and output y, float32 [n] (n -1: open). */
static void mock_ports(si_cmodel *m, si_port *in, si_port *out, int64_t n) {
    *in = (si_port){.name = "x", .dtype = SI_F32, .ndim = 1, .dims = {n}};
    *out = (si_port){.name = "y", .dtype = SI_F32, .ndim = 1, .dims = {n}};
    m->n_inputs = m->n_outputs = 1;
    m->inputs = in;
    m->outputs = out;
    m->device = "mock";
}

#endif
