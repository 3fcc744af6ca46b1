/*
 * control.h — control flow in the executor core: If, Loop and Scan as compiled models that run on the host and
 * call the compiled models of their branches and bodies.
 *
 * A control-flow model is a step of the executor like any submodel (it is a compiled model): the executor binds
 * its inputs and reads its outputs. Inside, it evaluates the condition, the trip count or the scan slices
 * itself (plain host memory), binds each body's inputs (the formal ones it makes: iteration number, condition,
 * loop-carried state, scan slices; the rest are outer-scope values, read from its own inputs or constants) and
 * runs the body's compiled model with a request of its own. Whoever builds it compiles the bodies (for the API
 * layer: partitioned and fail-safe like the main graph); to this file a body is just a compiled model, so it
 * never sees a device, a device list or a recovery policy.
 *
 * Body ports: the first n_formal inputs of a body are its formal inputs in ONNX order (If: none; Loop:
 * iteration number, condition, the N carried values; Scan: the N states, the M slices); every later input is
 * an outer-scope value whose source body_in gives. Outputs in ONNX order (Loop: condition, N carried, K scan
 * slices; Scan: N states, K scan slices; If: the node's outputs).
 *
 * Failures: a body that fails fails the inference with its status (a device failure inside a body is the
 * body's fail-safe models' business, and surfaces here only when every candidate failed); a body output of the
 * wrong element type, a condition that is not one bool, a negative trip count, scan inputs of different
 * lengths and a Loop that runs past max_iterations are INVALID_ARG naming the node. The outputs stay the last
 * successful inference's after any failure.
 */
#ifndef SI_EXEC_CONTROL_H
#define SI_EXEC_CONTROL_H

#include "exec/exec.h"

typedef enum si_cf_kind { SI_CF_IF = 0, SI_CF_LOOP = 1, SI_CF_SCAN = 2 } si_cf_kind;

/* Scan-specific attributes, as the node gives them (axes may be negative: normalised at run time). */
typedef struct si_cf_scan {
    bool v8;                 /* Scan-8: input 0 is sequence_lens, every other input and output has a batch axis */
    int n_scan_inputs;       /* M */
    const int64_t *in_axes;  /* per scan input (NULL: all 0; Scan-8 scans axis 1 of the batched input) */
    const int64_t *in_rev;   /* per scan input: nonzero = reverse (NULL: all forward) */
    const int64_t *out_axes; /* per scan output (NULL: all 0) */
    const int64_t *out_rev;  /* per scan output (NULL: all forward) */
} si_cf_scan;

typedef struct si_cf_desc {
    si_cf_kind kind;
    const char *name;             /* the node's name, for messages (copied) */
    int n_inputs, n_outputs;
    const si_port *inputs;        /* this model's ports (copied) */
    const si_port *outputs;
    int n_node_in;
    const si_src *node_in;        /* per node input: SI_SRC_INPUT (a port of this model), SI_SRC_CONST, SI_SRC_NONE */
    int n_node_out;
    const int *node_out;          /* per node output: the port of this model, or -1 when nothing reads it */
    int n_bodies;                 /* If: 2 (then, else); Loop, Scan: 1 */
    si_cmodel **bodies;           /* taken over: freed with this model, also on failure */
    const int *n_formal;          /* per body: formal inputs (the first ports) */
    const si_src *const *body_in; /* per body, per input port from n_formal on: SI_SRC_INPUT or SI_SRC_CONST */
    si_cf_scan scan;              /* Scan only (arrays copied) */
    int64_t max_iterations;       /* Loop: more iterations than this are an error (0: no limit) */
} si_cf_desc;

si_result si_cf_create(const si_cf_desc *d, si_cmodel **out);

#endif
