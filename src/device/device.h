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

#define SI_DEVICE_API_VERSION 1

typedef struct si_device si_device;

/* Key/value options passed to compile (borrowed). */
typedef struct si_options {
    int n;
    const char *const *keys;
    const char *const *values;
} si_options;
const char *si_options_get(const si_options *o, const char *key);

typedef struct si_device_i {
    int api_version; /* SI_DEVICE_API_VERSION */
    /* Can this device run node n of graph g (types and shapes as far as inferred)? Cheap, no side effects.
     * SI_OK or SI_ERR_UNSUPPORTED with a message naming the reason. */
    si_result (*supports_op)(const si_device *d, const si_graph *g, const si_node *n);
    /* Compile a graph (a whole model or a submodel). The graph is borrowed for the call only. */
    si_result (*compile)(si_device *d, const si_graph *g, const si_options *opts, si_cmodel **out);
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
