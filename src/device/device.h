/*
 * device.h — the two interfaces everything above the devices is written against (compiled model and
 * request), and the device vtable with its registry.
 *
 * A device compiles a (sub)graph into an si_cmodel; an si_cmodel creates si_ireq requests. The API layer
 * (and, later, the executor core and the fail-safe layer) only ever see these interfaces. Ports are
 * addressed by index: inputs and outputs in the order of the compiled graph's inputs and outputs.
 *
 * Status contract for devices: SI_ERR_UNSUPPORTED means "this device cannot do this" (an op, a dtype, an
 * attribute); SI_ERR_DEVICE means "it tried and failed" (compiler error, out of device memory, device
 * lost, timeout); SI_ERR_INVALID_ARG is the caller's mistake (shape, dtype, missing input) and is never a
 * reason to change device.
 */
#ifndef SI_DEVICE_H
#define SI_DEVICE_H

#include "device/iface.h"
#include "ir/ir.h"

#define SI_DEVICE_API_VERSION 2 /* 2: compile takes an si_compile_ctx */

typedef struct si_device si_device;

/* Key/value options passed to compile (borrowed). */
typedef struct si_options {
    int n;
    const char *const *keys;
    const char *const *values;
} si_options;
const char *si_options_get(const si_options *o, const char *key);

/* A device's compiled model gets its ports from its graph g: in[i] and out[k] (arrays of g->n_inputs and
 * g->n_outputs, the model's own) describe g's inputs and outputs (names borrowed from g; dimensions past the
 * rank, or of unknown rank, -1), and m's port counts and arrays are set to them. */
void si_cmodel_ports_from_graph(si_cmodel *m, const si_graph *g, si_port *in, si_port *out);

/* Constants prepared by devices (uploaded buffers, packed weights), shared by the compiles of one compiled
 * model: submodels on one device, the candidates a fail-safe model compiles and recompiles. An entry is keyed
 * by a constant of the graph (shared by every copy of it, see si_const_ref) and a tag naming what was made of
 * it ("OCL.0:buffer"); it lives until the compiled model goes. Thread-safe. */
typedef struct si_shared_consts si_shared_consts;
si_result si_shared_consts_new(si_shared_consts **out);
/* Frees every entry (its free_fn) and the cache. */
void si_shared_consts_free(si_shared_consts *sc);
/* The entry for (key, tag): *out is the value stored first for it; when there is none, make(user, key, out) makes
 * it (under the cache's lock: one make per entry) and free_fn (may be NULL) will free it. A NULL cache makes a
 * value that is the caller's to free. */
typedef si_result (*si_shared_make_fn)(void *user, const si_tensor *key, void **out);
si_result si_shared_const(si_shared_consts *sc, const si_tensor *key, const char *tag, si_shared_make_fn make,
                          void (*free_fn)(void *), void *user, void **out);

/* What a device's compile receives besides the graph; borrowed for the call (the shared constants live as long
 * as the compiled model). A NULL context is an empty one. */
typedef struct si_compile_ctx {
    const si_options *opts;   /* key/value options (the compile's configuration properties) */
    si_shared_consts *consts; /* constants prepared by devices, shared within one compiled model (may be NULL) */
    void *aux;                /* reserved: auxiliary compiled models (subgraph bodies) a device may call; NULL */
    int64_t max_memory_mb;    /* the compile's memory budget (property max_memory_mb; 0: none) */
} si_compile_ctx;
static inline const si_options *si_compile_opts(const si_compile_ctx *cc) { return cc ? cc->opts : NULL; }

typedef struct si_device_i {
    int api_version; /* SI_DEVICE_API_VERSION */
    /* Can this device run node n of graph g (types and shapes as far as inferred)? Cheap, no side effects.
     * SI_OK or SI_ERR_UNSUPPORTED with a message naming the reason. */
    si_result (*supports_op)(const si_device *d, const si_graph *g, const si_node *n);
    /* Compile a graph (a whole model or a submodel). The graph and the context are borrowed for the call only. */
    si_result (*compile)(si_device *d, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out);
} si_device_i;

struct si_device {
    const si_device_i *iface;
    const char *name; /* "REF", "CPU", "OCL", "OCL.1" */
    void *ctx;
};

/* Find a device by name ("REF", "CPU", "OCL", "OCL.1"; case-sensitive). SI_ERR_INVALID_ARG naming the known
 * devices when there is none. Devices are process-wide singletons; the pointer stays valid. */
si_result si_device_get(const char *name, si_device **out);
/* Is `name` a device name this library knows the form of ("REF", "CPU", "OCL", "OCL.N" with N in 0..64),
 * whether or not the device is present or built in? Looks nothing up (no driver is touched). On success
 * canon (n bytes) receives the canonical name ("OCL.0" -> "OCL"), so that two names of one device compare
 * equal. INVALID_ARG naming the known devices otherwise. */
si_result si_device_name_check(const char *name, char *canon, size_t n);
/* "REF" (comma-separated list of known device names). */
const char *si_device_names(void);



/* Built-in devices. REF is always present; CPU and OCL are compiled in when their folders exist
 * (SI_HAVE_CPU / SI_HAVE_OCL). */
extern si_device si_device_ref;
#ifdef SI_HAVE_CPU
extern si_device si_device_cpu;
#endif
#ifdef SI_HAVE_OCL
/* The OpenCL device `index` (0 for "OCL", n for "OCL.n") in the order the ICD loader lists GPUs first,
 * then other devices. SI_ERR_UNSUPPORTED (message names the reason) when there is no such device. The
 * returned device is a process-wide singleton. */
si_result si_device_ocl_get(int index, si_device **out);
/* Is d an OpenCL device of type GPU or ACCELERATOR (what devices=AUTO picks)? False for a CPU-type OpenCL
 * device (PoCL) and for anything that is not an OCL device. */
bool si_device_ocl_is_gpu_or_accelerator(const si_device *d);
#endif

#endif
