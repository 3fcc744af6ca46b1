/*
 * safeinfer.h — the public C API of safeinfer.
 *
 * safeinfer loads ONNX models and runs them on a priority list of devices ("OCL,CPU,REF"). This header is
 * the only way in: the CLI in tools/ uses nothing else.
 *
 * Worked example (error handling shortened):
 *
 *     si_model *m;     si_config *cfg;     si_compiled *cm;     si_request *rq;
 *     if (si_model_load("net.onnx", &m)) { fprintf(stderr, "%s\n", si_last_error()); return 1; }
 *     si_model_set_dim(m, "batch", 1);                   // fix a symbolic dimension
 *     si_config_create(&cfg);
 *     si_config_set(cfg, "devices", "REF");
 *     si_compile(m, cfg, &cm);                           // the model may be freed after this
 *     si_request_create(cm, &rq);
 *     int64_t dims[4] = {1, 3, 224, 224};
 *     si_tensor *x; si_tensor_create(SI_F32, 4, dims, &x);  // zero-filled, owned by the caller
 *     si_request_set_input(rq, 0, x);                   // borrowed: keep x alive while rq uses it
 *     si_request_infer(rq);
 *     si_tensor *y; si_request_get_output(rq, 0, &y);   // owned by rq; the same object after every infer
 *     const float *p = si_tensor_data(y);
 *     si_request_free(rq); si_tensor_free(x); si_compiled_free(cm); si_config_free(cfg); si_model_free(m);
 *
 * Errors: every fallible function returns an si_result; SI_OK is 0. On failure a message naming what is
 * wrong is stored in a thread-local buffer read with si_last_error(). The library never exits or aborts on
 * bad input or device failure.
 *
 * Thread safety, unless a function says otherwise: functions on different objects may be called from
 * different threads at once; one object must not be used from two threads at once, except an si_compiled,
 * on which si_request_create may be called from many threads (each thread then uses its own request).
 */
#ifndef SAFEINFER_H
#define SAFEINFER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SI_API_VERSION 1

/* The version of this header; si_version() gives the library's (they differ when a program runs with
 * another build of the shared library than it was compiled against). CMake reads the version from here. */
#define SI_VERSION_MAJOR 0
#define SI_VERSION_MINOR 1
#define SI_VERSION_PATCH 0
#define SI_VERSION_STRING "0.1.0"

/* SI_API marks what the shared library exports; everything else in it is hidden. */
#if defined(_WIN32) || defined(__CYGWIN__)
#if defined(SI_BUILDING_LIBRARY)
#define SI_API __declspec(dllexport)
#elif defined(SI_STATIC)
#define SI_API
#else
#define SI_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define SI_API __attribute__((visibility("default")))
#else
#define SI_API
#endif

#if defined(__GNUC__)
#define SI_NODISCARD __attribute__((warn_unused_result))
#else
#define SI_NODISCARD
#endif

/* The library's version ("0.1.0"); *major, *minor, *patch receive its numbers when not NULL. */
SI_API const char *si_version(int *major, int *minor, int *patch);

/* ---------------------------------------------------------------------------------------------------------
 * Status and messages
 */
typedef enum si_result {
    SI_OK = 0,
    SI_ERR_INVALID_ARG = 1, /* the caller's mistake: bad argument, shape, dtype, missing input, bad spec */
    SI_ERR_NO_MEM = 2,      /* an allocation failed */
    SI_ERR_IO = 3,          /* a file could not be read or written */
    SI_ERR_PARSE = 4,       /* a model, tensor or .npy file is malformed */
    SI_ERR_UNSUPPORTED = 5, /* a device or the library cannot do this (op, dtype, attribute) */
    SI_ERR_DEVICE = 6,      /* a device tried and failed (compiler error, device lost, timeout, ...) */
    SI_ERR_ABORTED = 7,     /* the operation was abandoned */
    SI_ERR_INTERNAL = 8,    /* a broken invariant inside safeinfer: a bug */
    SI_ERR_DEVICE_LOST = 9  /* a device is gone for good: never retried, quarantined for every submodel (only a
                             * recovery round, see recovery_ms, tries it again once every device has failed) */
} si_result;

/* The message of the last failure on this thread; "" when none. The pointer stays valid until the next
 * failing call on this thread. */
SI_API const char *si_last_error(void);
/* A fixed name for a status ("SI_ERR_PARSE"); never NULL. */
SI_API const char *si_result_str(si_result s);

/* ---------------------------------------------------------------------------------------------------------
 * Element types. The values are ONNX's TensorProto.DataType numbers.
 */
typedef enum si_dtype {
    SI_DTYPE_UNDEFINED = 0,
    SI_F32 = 1,
    SI_U8 = 2,
    SI_I8 = 3,
    SI_U16 = 4,
    SI_I16 = 5,
    SI_I32 = 6,
    SI_I64 = 7,
    SI_STRING = 8, /* recognised so that it can be refused by name; never stored */
    SI_BOOL = 9,   /* one byte per element, 0 or 1 */
    SI_F16 = 10,
    SI_F64 = 11,
    SI_U32 = 12,
    SI_U64 = 13,
    SI_BF16 = 16,
    /* Narrow types. In memory each element takes one byte: a float8 its 8-bit code; float4e2m1 its 4-bit code
     * in the low bits; int4 / int2 their value sign-extended (an int8 in -8..7 / -2..1); uint4 / uint2 their
     * value (a uint8 in 0..15 / 0..3). Only the high bits beyond the type's width are ignored when read. ONNX
     * files pack 4-bit and 2-bit types (two / four per byte, low bits first); the loader unpacks them. Only some
     * ops accept them (Cast, CastLike, QuantizeLinear, DequantizeLinear, ...); other ops refuse them by name. */
    SI_F8E4M3FN = 17,
    SI_F8E4M3FNUZ = 18,
    SI_F8E5M2 = 19,
    SI_F8E5M2FNUZ = 20,
    SI_U4 = 21,
    SI_I4 = 22,
    SI_F4E2M1 = 23,
    SI_F8E8M0 = 24,
    SI_U2 = 25,
    SI_I2 = 26
} si_dtype;

#define SI_MAX_DIMS 8

/* "float32", "int64", ...; "undefined" for unknown values. Never NULL. */
SI_API const char *si_dtype_name(si_dtype t);
/* Bytes per element; 0 for types that cannot be stored. */
SI_API size_t si_dtype_size(si_dtype t);

/* ---------------------------------------------------------------------------------------------------------
 * Tensors: an element type, a shape (rank 0..SI_MAX_DIMS, C order) and data that is either owned by the
 * tensor or borrowed from the caller.
 */
typedef struct si_tensor si_tensor;

/* A new tensor owning zero-filled memory. dims may be NULL when ndim is 0. Errors: INVALID_ARG (bad dtype,
 * rank or a negative dimension), NO_MEM. The caller frees *out with si_tensor_free. */
SI_API SI_NODISCARD si_result si_tensor_create(si_dtype dtype, int ndim, const int64_t *dims, si_tensor **out);
/* A new tensor over the caller's memory (not copied, not freed by safeinfer); nbytes must equal the
 * element count times the element size. The memory must outlive the tensor. */
SI_API SI_NODISCARD si_result si_tensor_wrap(si_dtype dtype, int ndim, const int64_t *dims, void *data,
                                             size_t nbytes, si_tensor **out);
/* Frees the tensor (and its data when owned). NULL is a no-op. Must not be called on tensors owned by a
 * request (those from si_request_get_output). */
SI_API void si_tensor_free(si_tensor *t);
SI_API si_dtype si_tensor_dtype(const si_tensor *t);
SI_API int si_tensor_ndim(const si_tensor *t);
/* The dims array (ndim entries), valid while the tensor's shape does not change. */
SI_API const int64_t *si_tensor_dims(const si_tensor *t);
SI_API int64_t si_tensor_count(const si_tensor *t);
SI_API size_t si_tensor_nbytes(const si_tensor *t);
SI_API void *si_tensor_data(const si_tensor *t);

/* Read a .npy file (format 1.0/2.0/3.0, little-endian, C order, one of the dtypes above) into a new owned
 * tensor. Errors: IO, PARSE (malformed header, size mismatch), UNSUPPORTED (dtype, Fortran order, big-endian). */
SI_API SI_NODISCARD si_result si_tensor_read_npy(const char *path, si_tensor **out);
/* Write t as a .npy file (format 1.0). Errors: IO, UNSUPPORTED (dtype numpy cannot name). */
SI_API SI_NODISCARD si_result si_tensor_write_npy(const si_tensor *t, const char *path);
/* Read a serialized ONNX TensorProto (the files in test_data_set_N folders). *name_out, when not NULL, receives
 * the tensor's name (caller frees with si_free_string; "" when unnamed). Errors: IO, PARSE, UNSUPPORTED. */
SI_API SI_NODISCARD si_result si_tensor_read_pb(const char *path, si_tensor **out, char **name_out);
SI_API void si_free_string(char *s);

/* ---------------------------------------------------------------------------------------------------------
 * Models: a loaded ONNX graph. Loading validates the graph (references, cycles, opsets) and infers what it
 * can of types and shapes.
 */
typedef struct si_model si_model;
typedef struct si_config si_config;

/* Load an ONNX model file. External data files are looked up relative to the model's folder; a location
 * that leaves that folder is refused (INVALID_ARG). Errors: IO, PARSE (truncated or malformed protobuf, a
 * cycle, a dangling reference), UNSUPPORTED (an element type or a feature safeinfer lacks), NO_MEM. */
SI_API SI_NODISCARD si_result si_model_load(const char *path, si_model **out);
/* Load from memory (copied as needed; buf may be freed after the call). External data is refused unless
 * base_dir is given. */
SI_API SI_NODISCARD si_result si_model_load_memory(const void *buf, size_t len, const char *base_dir, si_model **out);
SI_API void si_model_free(si_model *m);

/* Model inputs are the graph inputs that are not initializers. */
SI_API int si_model_num_inputs(const si_model *m);
SI_API int si_model_num_outputs(const si_model *m);
typedef struct si_value_info {
    const char *name;               /* borrowed from the model */
    si_dtype dtype;
    int ndim;                       /* -1 when the rank is unknown */
    int64_t dims[SI_MAX_DIMS];      /* -1 for a dimension that is not fixed */
    const char *dim_names[SI_MAX_DIMS]; /* symbolic name of a dimension, or NULL */
} si_value_info;
SI_API SI_NODISCARD si_result si_model_input_info(const si_model *m, int index, si_value_info *out);
SI_API SI_NODISCARD si_result si_model_output_info(const si_model *m, int index, si_value_info *out);
/* Index of the input or output with that name, or -1. */
SI_API int si_model_input_index(const si_model *m, const char *name);
SI_API int si_model_output_index(const si_model *m, const char *name);

/* Fix every input dimension whose symbolic name is `name` ("batch", "sequence") to `value` (>= 1).
 * Errors: INVALID_ARG when no input dimension has that name or value < 1. */
SI_API SI_NODISCARD si_result si_model_set_dim(si_model *m, const char *name, int64_t value);
/* Fix the whole shape of one input. Errors: INVALID_ARG when the input does not exist or the shape
 * contradicts a fixed dimension or the rank of the declaration. */
SI_API SI_NODISCARD si_result si_model_set_input_shape(si_model *m, const char *input, int ndim, const int64_t *dims);

/* Summary for `inspect`. Strings are borrowed from the model. */
typedef struct si_model_summary {
    int64_t ir_version;
    const char *producer;
    int n_nodes;
    int n_initializers;
    int64_t n_params;     /* elements in all initializers */
    int64_t param_bytes;  /* bytes in all initializers */
} si_model_summary;
SI_API void si_model_summary_get(const si_model *m, si_model_summary *out);
SI_API int si_model_num_opsets(const si_model *m);
/* The domain ("" for the default ONNX domain) and version of opset import i. */
SI_API void si_model_opset(const si_model *m, int i, const char **domain, int64_t *version);
SI_API int si_model_num_nodes(const si_model *m);
/* How the model would be cut for the devices in cfg ("devices", "faults" are read; nothing is compiled; the
 * devices answer in this process, "isolate" or not):
 * a human-readable description of each submodel (its device and fallbacks, its ops, the tensors that cross
 * into and out of it, and why nodes did not go to earlier devices). *text is a new string (free with
 * si_free_string). Errors: as si_compile's partitioning (UNSUPPORTED names a node no device accepts). */
SI_API SI_NODISCARD si_result si_model_partition_text(const si_model *m, const si_config *cfg, char **text);
/* The same as JSON, for programs (`inspect --dot` draws it): {"config_devices": "AUTO", "devices": [the
 * list, AUTO expanded], "inputs"/"outputs": [{"name","dtype","shape" (-1 for a dimension not fixed; null
 * when the rank is unknown), outputs also "from": the submodel producing it, -1 for none}], "submodels":
 * [{"id", "device", "fallbacks": [...], "ops": [op_type per node], "why", "inputs": [{"name","dtype",
 * "shape","from": submodel or -1 for a model input}], "outputs": [{"name","dtype","shape","to": [submodels],
 * "model_output": bool}]}]}. *json is a new string (si_free_string). Errors: as si_model_partition_text. */
SI_API SI_NODISCARD si_result si_model_partition_json(const si_model *m, const si_config *cfg, char **json);
/* op_type of node i in topological order (borrowed), or NULL when out of range. */
SI_API const char *si_model_node_op(const si_model *m, int i);

/* ---------------------------------------------------------------------------------------------------------
 * Configuration for compilation: key/value properties. The keys, what each takes, its default and its
 * documentation come from one table inside the library, listed by si_config_num_keys/si_config_key (and by
 * `safeinfer config --list`; the README's table is generated from it). The main ones:
 *   devices   priority list, comma separated, each device once (default AUTO: every GPU or accelerator
 *             OpenCL device, then CPU). Known: OCL, OCL.N, CPU, REF where built in.
 *   threads   worker threads for devices that use them (default 1)
 *   faults    fault injection spec (also $SAFEINFER_FAULTS when unset), see the README; the effects crash and
 *             segv end the process that runs the device (the program itself, unless the device is isolated)
 *   isolate   devices of the list to run out of process, each in a helper process the library starts
 *             (safeinfer-worker, found next to the library, in libexec or through $SAFEINFER_WORKER): a helper
 *             that aborts, segfaults or is killed is a lost device (SI_ERR_DEVICE_LOST, failover), not the end
 *             of the program; a call the watchdog gives up on kills it. si_compiled_free reaps it.
 *   and the fail-safe policies retries, infer_timeout_ms, compile_timeout_ms, standby, failback_ms,
 *   check_outputs, recovery_ms, strict; adaptive_threads for the CPU device.
 *   max_memory_mb  N: a memory budget in MiB for the compiled model's buffers of 1 MiB or more (folded
 *             constants, device plans, the tensors of its inferences and request creations, also on watchdog
 *             threads; not a standby's warm-up); an allocation past it fails with SI_ERR_NO_MEM naming the
 *             budget (default 0: none; one allocation larger than physical memory is always refused)
 */
#define SI_MAX_DEVICES 16 /* entries in a device list */

typedef struct si_config_key_info {
    const char *name;          /* "retries" */
    const char *values;        /* what it takes: "0..100", "on|off", "LIST", "SPEC" */
    const char *default_value; /* "" when there is none */
    const char *doc;           /* one paragraph */
} si_config_key_info;
/* The number of configuration keys. */
SI_API int si_config_num_keys(void);
/* Key i (0..si_config_num_keys()-1); the strings are static. Errors: INVALID_ARG when i is out of range. */
SI_API SI_NODISCARD si_result si_config_key(int i, si_config_key_info *out);

SI_API SI_NODISCARD si_result si_config_create(si_config **out);
SI_API void si_config_free(si_config *c);
/* Set a property; the strings are copied. The value is checked as si_compile would read it: INVALID_ARG
 * naming the key and the value for an unknown key, a number out of range or with anything but digits
 * (" 5", "5x"), a word that is not one of the key's, a device list with an unknown device, an empty entry,
 * a space, a device listed twice or more than SI_MAX_DEVICES entries, or a malformed fault spec. The
 * previous value stays on failure. */
SI_API SI_NODISCARD si_result si_config_set(si_config *c, const char *key, const char *value);
/* The value of a property, or NULL when unset (borrowed from the config). */
SI_API const char *si_config_get(const si_config *c, const char *key);

/* ---------------------------------------------------------------------------------------------------------
 * Events: every compile attempt, failover, retry, quarantine, standby-ready and fail-back of a compiled
 * model is passed to a callback (set on the config before si_compile) and counted.
 */
typedef enum si_event_type {
    SI_EVENT_COMPILE = 0,       /* a compile attempt of a submodel on a device (status says how it went) */
    SI_EVENT_FAILOVER = 1,      /* a submodel moved from one device to a later one (stage infer/create: it ran
                                 * there; stage compile: its first device would not compile it) */
    SI_EVENT_RETRY = 2,         /* a failed call is retried on the same device */
    SI_EVENT_QUARANTINE = 3,    /* a device was lost; no submodel will use it again */
    SI_EVENT_STANDBY_READY = 4, /* the next device was compiled in the background */
    SI_EVENT_FAILBACK = 5,      /* a submodel moved back to a preferred device that works again */
    SI_EVENT_ALL_FAILED = 6     /* every device of a submodel has failed */
} si_event_type;

typedef struct si_event {
    si_event_type type;
    double t_ms;          /* milliseconds since si_compile started */
    int submodel;         /* submodel id (0-based) */
    const char *from;     /* device names ("" when not applicable); valid during the callback */
    const char *to;
    const char *stage;    /* "compile", "create", "infer", "check", "probe" */
    si_result status;     /* the failure that caused it (SI_OK for successes) */
    const char *message;
} si_event;

/* A fixed name for an event type, as in the report ("failover", "standby_ready"); "unknown" for values
 * outside the enum. Never NULL. */
SI_API const char *si_event_type_str(si_event_type t);

/* Called synchronously on the thread where the event happens (a request's thread or a background thread
 * of the compiled model); it must be thread-safe and must not call back into safeinfer. */
typedef void (*si_event_fn)(const si_event *e, void *user);
/* Set (or clear with NULL) the event callback used by compiled models made with this config. */
SI_API SI_NODISCARD si_result si_config_set_callback(si_config *c, si_event_fn fn, void *user);

/* ---------------------------------------------------------------------------------------------------------
 * Compiled models and requests.
 */
typedef struct si_compiled si_compiled;
typedef struct si_request si_request;

/* Compile the model for the configured devices. The compiled model keeps what it needs (the model may be
 * freed afterwards). Errors: INVALID_ARG (bad config), UNSUPPORTED (a node no listed device supports: the
 * message names it; or no safeinfer-worker program for an isolated device), DEVICE (every device that could
 * take it failed), NO_MEM. */
SI_API SI_NODISCARD si_result si_compile(const si_model *m, const si_config *cfg, si_compiled **out);
/* Free the compiled model (its requests first). It does not wait for device calls still running in the
 * background (a compile ahead, a call a watchdog gave up on): they release what they hold when they return
 * (an isolated device's helper still busy with one is killed, so that it returns now). Isolated devices'
 * helper processes are stopped and reaped once nothing uses them any more. The event callback is not called
 * once this has returned. */
SI_API void si_compiled_free(si_compiled *c);
SI_API int si_compiled_num_inputs(const si_compiled *c);
SI_API int si_compiled_num_outputs(const si_compiled *c);
/* Borrowed name of input/output i, or NULL. */
SI_API const char *si_compiled_input_name(const si_compiled *c, int i);
SI_API const char *si_compiled_output_name(const si_compiled *c, int i);
/* Name of the device each part of the model runs on, comma separated (e.g. "REF"; "host" for a control-flow node,
 * whose branches and bodies the report lists); borrowed. */
SI_API const char *si_compiled_devices(const si_compiled *c);

typedef struct si_counters {
    int64_t inferences; /* si_request_infer calls on requests of this compiled model */
    int64_t failovers, retries, failbacks;
} si_counters;
/* Counters so far. Thread-safe. */
SI_API void si_compiled_counters(const si_compiled *c, si_counters *out);
/* The report as JSON: {"devices":[...], "submodels":[{"id","ops","device","attempts":[...]}],
 * ["subgraphs":[{"scope","submodels":[...]}],] "events":[{"t_ms","type","submodel","from","to","stage","status",
 * "message"}], "counters":{...}}. A control-flow node is a submodel on device "host"; the submodels of its
 * branches and bodies (compiled like the model's graph) are listed under "subgraphs" by scope
 * ("loop.body", "if.then_branch/inner.else_branch"), with ids after the model's.
 * *json is a new string (free with si_free_string). Thread-safe. */
SI_API SI_NODISCARD si_result si_compiled_report_json(const si_compiled *c, char **json);
/* The step profile of a model compiled with the property profile=on: what its devices' steps cost over
 * every inference so far (each request adds its timings after each of its inferences), as JSON sorted by
 * time: {"total_ms", "reference_ms", "steps": [{"nodes" (the ONNX node names the step covers, comma
 * separated), "ops" ("Conv+BatchNormalization+Relu"), "device", "kernel" (a oneDNN implementation name,
 * "own:..." for a device's own kernel, "reference" for a reference kernel), "reference" (bool), "calls",
 * "total_ms", "mean_ms", "share"}]}. A device without step timings adds no rows. INVALID_ARG when the model
 * was compiled without profile=on. *json is a new string (free with si_free_string). Thread-safe. */
SI_API SI_NODISCARD si_result si_compiled_profile_json(const si_compiled *c, char **json);

/* A new request. Safe to call from several threads on one compiled model. Free requests before the
 * compiled model. */
SI_API SI_NODISCARD si_result si_request_create(si_compiled *c, si_request **out);
SI_API void si_request_free(si_request *r);
/* Bind input `index` to t (borrowed: t must stay alive and unchanged in shape while the request may use
 * it). Errors: INVALID_ARG for an index out of range or a dtype/rank/fixed dimension that does not match. */
SI_API SI_NODISCARD si_result si_request_set_input(si_request *r, int index, si_tensor *t);
/* Run the model. Errors: INVALID_ARG (a missing input, a shape the model cannot take), DEVICE,
 * UNSUPPORTED, NO_MEM. After a failure the request stays usable. */
SI_API SI_NODISCARD si_result si_request_infer(si_request *r);
/* The tensor holding output `index` after the last successful infer. Owned by the request: the same
 * object is returned after every infer (its data and shape are refreshed); valid until si_request_free. */
SI_API SI_NODISCARD si_result si_request_get_output(si_request *r, int index, si_tensor **out);

#ifdef __cplusplus
}
#endif
#endif /* SAFEINFER_H */
