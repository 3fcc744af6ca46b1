/*
 * call.h — function calls in the executor core: a folded block's call (ir/fold.h) as a compiled model that runs
 * the function's body, shared by every call, with its own inputs and weights.
 *
 * A function (si_fn) holds the body's compiled model, made once for all its calls (for the API layer: partitioned
 * and fail-safe like any graph, so a body that fails on a device fails over once, for every call). Each call model
 * holds a reference; the last one frees the body. The function also keeps a pool of idle body requests: a call's
 * inference takes one (the calls of one inference run one after the other, so they share it), binds the body's
 * inputs to its own inputs or to constants (its weights), runs it, copies the body's outputs into its own output
 * tensors and gives the request back.
 *
 * Failures are the body's: a call fails the inference with the body's status (named with the call).
 */
#ifndef SI_EXEC_CALL_H
#define SI_EXEC_CALL_H

#include "exec/exec.h"

typedef struct si_fn si_fn;

/* A function over compiled body `body` (taken over; freed on failure too), with one reference. */
si_result si_fn_new(si_cmodel *body, si_fn **out);
si_fn *si_fn_ref(si_fn *f);
/* Drop a reference; the last frees the body (every request of every call is gone by then). */
void si_fn_unref(si_fn *f);
const si_cmodel *si_fn_body(const si_fn *f);

typedef struct si_call_desc {
    const char *name;        /* for messages (copied) */
    si_fn *fn;               /* a reference is taken */
    int n_inputs, n_outputs;
    const si_port *inputs;   /* this model's ports (copied) */
    const si_port *outputs;
    const si_src *body_in;   /* per body input: SI_SRC_INPUT (a port of this model) or SI_SRC_CONST (copied;
                              * constants get a reference) */
    const int *out_body;     /* per output port of this model: the body output it is */
} si_call_desc;

si_result si_call_create(const si_call_desc *d, si_cmodel **out);

#endif
