/*
 * iface.h — the two interfaces everything above the devices is written against: the compiled model
 * (si_cmodel: ports, create_request, free) and the request (si_ireq: set_input, get_output, infer, cancel,
 * free). Devices implement them; the fail-safe layer wraps them; the executor core runs them. Nothing here
 * knows what a device is.
 */
#ifndef SI_IFACE_H
#define SI_IFACE_H

#include "util/prof.h"
#include "util/util.h"

typedef struct si_cmodel si_cmodel;
typedef struct si_ireq si_ireq;

/* A port descriptor: name, element type and shape (-1 for dimensions only known at run time). */
typedef struct si_port {
    const char *name;
    si_dtype dtype;
    int ndim;
    int64_t dims[SI_MAX_DIMS];
} si_port;

typedef struct si_cmodel_i {
    /* A new request. Must be safe to call from several threads at once. */
    si_result (*create_request)(si_cmodel *m, si_ireq **out);
    /* Free the compiled model; every request has been freed before. */
    void (*free)(si_cmodel *m);
    /* (optional, may be NULL) Input i will be bound to the constant t (which outlives the model) by some
     * inferences: do now what the first such bind would do (pack, upload), so that the first inference does not
     * pay for it. A hint: an error only says it was not done (the bind will do it, or report the error). */
    si_result (*prepare_input)(si_cmodel *m, int i, const si_tensor *t);
    /* The interface of the model's requests, for si_ireq_create (the usual create_request, which makes requests
     * of this kind); NULL where the model makes its requests itself. */
    const struct si_ireq_i *request;
} si_cmodel_i;

/* m->iface->prepare_input where the model has one; SI_OK where it has none. */
si_result si_cmodel_prepare_input(si_cmodel *m, int i, const si_tensor *t);

struct si_cmodel {
    const si_cmodel_i *iface;
    int n_inputs, n_outputs;
    const si_port *inputs, *outputs; /* owned by the implementation */
    const char *device;              /* a label for reports: what it runs on ("CPU", "OCL>CPU") */
};

typedef struct si_ireq_i {
    /* Bind input port i to t (borrowed until unbound or the request is freed). Checks dtype, rank and fixed
     * dimensions: INVALID_ARG on mismatch. */
    si_result (*set_input)(si_ireq *r, int i, si_tensor *t);
    /* The tensor of output port i (owned by the request, the same object after every infer). */
    si_result (*get_output)(si_ireq *r, int i, si_tensor **t);
    /* Run once. INVALID_ARG for a missing input or a shape the model cannot take; DEVICE/UNSUPPORTED/NO_MEM
     * otherwise. The request stays usable after a failure, and its outputs should stay as they were (the
     * fail-safe layer shows them, uncopied, as the last successful inference's results). */
    si_result (*infer)(si_ireq *r);
    void (*free)(si_ireq *r);
    /* (optional, may be NULL) Ask an infer running on another thread to return soon with SI_ERR_ABORTED.
     * Called by a watchdog that has given up on the call; must be safe to call concurrently with infer. */
    void (*cancel)(si_ireq *r);
    /* (optional, may be NULL) Add the step timings gathered since the last call to sink (util/prof.h) and
     * reset them. A request gathers timings only when its model was compiled with the option profile=on;
     * wrappers pass the call on to the requests they run. Not called concurrently with infer. */
    void (*profile)(si_ireq *r, si_prof *sink);
    /* For si_ireq_create (0 and NULL where the implementation makes its requests itself): the size of the
     * implementation's request struct (whose first member is its si_ireq base), a label for messages, and
     * (optional, may be NULL) init: what the implementation sets up beyond the base. When init fails, free is
     * called on the partly built request, and must take it. */
    size_t size;
    const char *who;
    si_result (*init)(si_ireq *r);
    /* The request rewrites its output tensors whole at every infer (type, shape and bytes) and never reads them:
     * its owner may exchange an output's buffer for another between inferences (the executor does so instead of
     * copying a model output it must keep apart from the submodel's). */
    bool outputs_exchangeable;
} si_ireq_i;

/* The part of a request every implementation shares (devices, the fail-safe layer, the executor core, the
 * fault decorator, the proxy of an isolated device): the caller's bound inputs and the stable output tensors.
 * si_ireq_init sets it up and si_ireq_fini frees it; si_ireq_set_input / si_ireq_get_output are the usual
 * set_input / get_output (an implementation puts them in its vtable, or wraps them). An implementation
 * writes only what is its own: new output contents, through si_ireq_publish. */
struct si_ireq {
    const si_ireq_i *iface;
    si_cmodel *model;
    si_tensor **bound; /* per input port: the caller's tensor (borrowed), NULL while unbound */
    si_tensor **outs;  /* per output port: the tensor objects handed out, owned; the same after every infer */
};

/* Set up r's base for model m: no input bound, every output an empty tensor of its port's dtype. NO_MEM (with
 * `who` in the message) on allocation failure; r's base is then empty and si_ireq_fini is still safe. */
si_result si_ireq_init(si_ireq *r, const si_ireq_i *iface, si_cmodel *m, const char *who);
/* Free what si_ireq_init allocated (the output tensors and their data). Safe on a zeroed base. */
void si_ireq_fini(si_ireq *r);
/* The usual create_request (a model's vtable names it, with the interface of its requests as `request`): *out = a
 * zeroed request of request->size bytes with its base set up (si_ireq_init), then request->init(*out) sets up
 * what is the implementation's own. When init fails, the partly built request is freed through request->free and
 * *out = NULL; init's status is returned, its message kept. NO_MEM (naming request->who) and *out = NULL when out
 * of memory for the request itself; nothing is left allocated then. */
si_result si_ireq_create(si_cmodel *m, si_ireq **out);
/* The end of an implementation's free, for a request made by si_ireq_create: si_ireq_fini, then the request. */
void si_ireq_destroy(si_ireq *r);
/* The usual set_input: the index and the port checked (t may be NULL to unbind), then bound[i] = t. */
si_result si_ireq_set_input(si_ireq *r, int i, si_tensor *t);
/* The usual get_output: the stable tensor of output port i. */
si_result si_ireq_get_output(si_ireq *r, int i, si_tensor **t);
/* The initializer of a request vtable that keeps the base's set_input and get_output (above): an implementation
 * names only what is its own, e.g. `static const si_ireq_i my_iface = SI_IREQ_IFACE(.infer = my_infer, .free =
 * my_free, .size = sizeof(my_req), .who = "MINE", .init = my_init);`. One that wraps set_input or get_output
 * writes its whole vtable. */
#define SI_IREQ_IFACE(...) {.set_input = si_ireq_set_input, .get_output = si_ireq_get_output, __VA_ARGS__}
/* The same for an implementation that has all of infer, free, cancel, profile and init, named after its prefix P:
 * P_infer, P_req_free, P_cancel, P_profile, P_req_init, and its request type P_req. After P: who, then any other
 * fields, e.g. `SI_IREQ_IFACE_OF(my, "MINE", .outputs_exchangeable = true)`. */
#define SI_IREQ_IFACE_OF(P, ...)                                                                                        \
    SI_IREQ_IFACE(.infer = P##_infer, .free = P##_req_free, .cancel = P##_cancel, .profile = P##_profile,              \
                  .size = sizeof(P##_req), .init = P##_req_init, .who = __VA_ARGS__)
/* What a wrapper does with cancel and profile: pass the call on to request r (NULL: nothing) when it has one. */
void si_ireq_cancel(si_ireq *r);
void si_ireq_profile(si_ireq *r, si_prof *sink);
/* The same for each of the n requests rs[0..n-1]. */
void si_ireqs_cancel(si_ireq *const *rs, int n);
void si_ireqs_profile(si_ireq *const *rs, int n, si_prof *sink);
/* Before an infer: every input bound, with data, matching its port (si_check_bound on r's inputs). */
si_result si_ireq_check_inputs(const si_ireq *r);
/* Output k takes over fresh's contents (data, shape, ownership; its old data is released); fresh is left
 * empty. The tensor object the caller holds stays the same. */
void si_ireq_publish(si_ireq *r, int k, si_tensor *fresh);
/* Output k holds a tensor of this type and shape: its memory is kept while it fits (si_tensor_fits: a decode
 * loop's growing outputs are not allocated anew each step), else it is allocated anew; the caller's tensor object
 * stays. The contents are the caller's to write. NO_MEM. */
si_result si_ireq_shape_output(si_ireq *r, int k, si_dtype dt, int ndim, const int64_t *dims);

/* Check a tensor bound to a port: dtype, rank and fixed dims. INVALID_ARG with a message naming the port. */
si_result si_port_check(const si_port *p, const si_tensor *t);
/* The usual set_input: check the index and the port (t may be NULL to unbind), then slots[i] = t. */
si_result si_bind_input(const si_cmodel *m, int i, si_tensor *t, si_tensor **slots);
/* Before an infer: every input bound, with data, and (again: its shape may have changed since it was set)
 * matching its port. INVALID_ARG naming the input otherwise. */
si_result si_check_bound(const si_cmodel *m, si_tensor *const *bound);
/* SI_OK when k is a valid output index of m, else INVALID_ARG. */
si_result si_output_index(const si_cmodel *m, int k);
/* Deep copies of port arrays (names included); NULL on allocation failure. */
si_port *si_ports_copy(const si_port *p, int n);
void si_ports_free(si_port *p, int n);
/* The end of a model's free for one that keeps its own port arrays (m->n_inputs and m->n_outputs long): frees
 * them, then the model (m is the first member of the implementation's struct). */
void si_cmodel_destroy(si_cmodel *m, si_port *in_ports, si_port *out_ports);

#endif
