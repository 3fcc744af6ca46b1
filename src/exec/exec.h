/*
 * exec.h — the executor core: runs a sequence of compiled submodels as one compiled model.
 *
 * It feeds the model's inputs to the submodels that read them, binds each submodel's outputs straight to the
 * inputs of the submodels that read them (the same tensor object: no copy) and exposes the model's outputs.
 * It is written only against the compiled-model and request interfaces of device/iface.h: it never sees a
 * device name, a device list or a recovery policy (a submodel is just a compiled model, whoever made it).
 */
#ifndef SI_EXEC_H
#define SI_EXEC_H

#include "device/iface.h"

typedef enum si_src_kind {
    SI_SRC_INPUT = 0, /* model input `index` */
    SI_SRC_SUB = 1,   /* output `port` of submodel `index` (an earlier one) */
    SI_SRC_CONST = 2, /* a constant tensor (borrowed, must outlive the compiled model; use si_const_ref) */
    SI_SRC_NONE = 3   /* nothing (control flow: an absent optional input); not a valid source in si_exec_desc */
} si_src_kind;

typedef struct si_src {
    si_src_kind kind;
    int index;
    int port;
    si_tensor *constant;
} si_src;

typedef struct si_exec_desc {
    int n_subs;
    si_cmodel **subs;        /* taken over: freed with the executor's compiled model */
    si_src **sub_inputs;     /* per submodel, per input port: where its tensor comes from (copied) */
    int n_inputs, n_outputs;
    const si_port *inputs;   /* the model's ports (copied, names too) */
    const si_port *outputs;
    const si_src *out_src;   /* per model output (copied); SI_SRC_CONST tensors get a reference */
    const char *label;       /* a label for reports, not interpreted here (copied) */
} si_exec_desc;

/* A compiled model that runs the submodels in order. On success the submodels belong to it; on failure
 * they are freed too. */
si_result si_exec_create(const si_exec_desc *d, si_cmodel **out);

#endif
