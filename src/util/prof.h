/*
 * prof.h — a per-step profile sink: what the steps of a compiled model cost, summed over inferences.
 *
 * A request whose model was compiled with profiling on times its steps; the layer that owns the sink asks
 * it (si_ireq_i.profile) to add what it timed since the last call. A row is one step: the ONNX nodes it
 * covers, the ops ("Conv+BatchNormalization+Relu"), the device, the kernel (a oneDNN implementation name,
 * "own:..." for a device's own kernel, "reference"), the calls and the time. Rows are merged by their key
 * (an address the device keeps stable while the step exists, e.g. its step record) and their labels, so
 * re-adding a step costs a hash lookup, and labels are copied only when a row is new. Thread-safe.
 */
#ifndef SI_PROF_H
#define SI_PROF_H

#include "util/util.h"

typedef struct si_prof si_prof;

typedef struct si_prof_row {
    const void *key;
    char *nodes, *ops, *device, *kernel;
    int64_t calls;
    double ms;
    bool reference; /* runs a reference kernel */
} si_prof_row;

si_result si_prof_create(si_prof **out);
void si_prof_free(si_prof *p);
/* Add calls and ms to the row of (key, labels); nodes may be built lazily: nodes_fn(ctx) is called only when
 * the row is new (it returns an si_malloc'd string, or NULL for none). */
si_result si_prof_add(si_prof *p, const void *key, const char *ops, const char *device, const char *kernel, bool reference,
                      char *(*nodes_fn)(void *ctx), void *ctx, int64_t calls, double ms);
/* The rows as JSON (si_malloc'd), sorted by time: {"total_ms", "reference_ms", "steps": [{"nodes", "ops",
 * "device", "kernel", "reference", "calls", "total_ms", "mean_ms", "share"}]}. */
si_result si_prof_json(si_prof *p, char **out);

#endif
