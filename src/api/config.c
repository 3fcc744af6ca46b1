/*
 * config.c — compile properties: the one table of configuration keys and the one device-list parser.
 *
 * si_cfg_keys[] is the single source of truth for a key: its name, what it takes, its default, where
 * si_compile stores it and its documentation. The table drives si_config_set's validation and its "known
 * keys" message, the policy fill of si_compile (si_cfg_fill), the public key list (si_config_key: the
 * CLI's flags, `safeinfer config --list` and the README table are made from it). A new policy is one line
 * here and one field in si_cfg_values.
 *
 * si_devices_parse is the only reader of a device list: si_config_set validates with it, si_compile and
 * si_model_partition_text build their device set with it, so the three refuse exactly the same lists.
 */
#include "api/compiled.h"
#include "device/faulty/faulty.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

// --- the table ------------------------------------------------------------------------------------------

typedef enum cfg_type {
    CFG_DEVICES, /* a device list (si_devices_parse) */
    CFG_FAULTS,  /* a fault spec (si_fault_spec_parse) */
    CFG_INT,     /* decimal digits only, in [lo, hi] */
    CFG_ONOFF,   /* on|off (also 1|0, true|false) */
    CFG_CHOICE,  /* one of choices[] */
    CFG_NAMES,   /* device names, comma separated (si_device_name_check; nothing looked up) */
    CFG_AVOID,   /* placement rules (si_avoid_parse) */
    CFG_FLOAT,   /* a finite decimal number in [lo, hi] */
} cfg_type;

typedef struct cfg_choice {
    const char *name;
    int value;
} cfg_choice;

typedef struct si_cfg_key {
    const char *name;
    cfg_type type;
    long lo, hi;               /* CFG_INT */
    const cfg_choice *choices; /* CFG_CHOICE: ends with {NULL, 0}; the first ones are documented */
    const char *values;        /* what it takes, for the documentation */
    const char *dflt;          /* the default, as text ("" for none) */
    ptrdiff_t field;           /* where si_cfg_fill stores it in si_cfg_values; -1: read by devices from the options */
    char field_kind;           /* 'i' int, 'b' bool */
    const char *doc;
} si_cfg_key;

#define FIELD_INT(m) offsetof(si_cfg_values, m), 'i'
#define FIELD_BOOL(m) offsetof(si_cfg_values, m), 'b'
#define FIELD_DBL(m) offsetof(si_cfg_values, m), 'd'
#define NO_FIELD -1, 0
#define MS_MAX 86400000L
#define STR_(x) #x
#define STR(x) STR_(x)

static const cfg_choice check_outputs_choices[] = {{"nan", 1}, {"off", 0}, {"none", 0}, {NULL, 0}};

static const si_cfg_key si_cfg_keys[] = {
    {"devices", CFG_DEVICES, 0, 0, NULL, "LIST", "AUTO", NO_FIELD,
     "priority list of devices, comma separated, each listed once (at most 16): OCL, OCL.N, CPU, REF (those "
     "built in). AUTO stands for every GPU or accelerator OpenCL device present, then CPU (a CPU-type OpenCL "
     "device such as PoCL is not picked; name it as OCL.N). Each node runs on the first device that supports "
     "it; a submodel fails over to the later devices that support all of its nodes. A known device absent "
     "on this machine declines every node."},
    {"threads", CFG_INT, 1, 1024, NULL, "1..1024", "1", NO_FIELD,
     "worker threads for the devices that use them (CPU)"},
    {"faults", CFG_FAULTS, 0, 0, NULL, "SPEC", "", NO_FIELD,
     "fault injection (also $SAFEINFER_FAULTS when unset): RULE[,RULE]..., RULE = DEVICE.STAGE=WHEN[:EFFECT], "
     "STAGE compile|create|infer, WHEN always|N|N+|pX[@SEED], EFFECT error|lost|hang|nan|oom|crash|segv (crash and segv end the process that runs the device: use them with isolate)"},
    {"retries", CFG_INT, 0, 100, NULL, "0..100", "0", FIELD_INT(policy.retries),
     "retry a failed call this many times on the same device before failing over; a lost device is never retried"},
    {"infer_timeout_ms", CFG_INT, 0, MS_MAX, NULL, "0..86400000", "0", FIELD_INT(policy.infer_timeout_ms),
     "a watchdog abandons an inference (or request creation) that has not returned in this many ms (0: off); the "
     "device is quarantined and the inference re-run on the next one; the stuck call finishes on its own and its "
     "resources are reclaimed then. It works on copies of the inputs (and the request's outputs are copies), so "
     "the caller may free its tensors as soon as the infer returns"},
    {"compile_timeout_ms", CFG_INT, 0, MS_MAX, NULL, "0..86400000", "0", FIELD_INT(policy.compile_timeout_ms),
     "the same watchdog for compiles (0: off)"},
    {"standby", CFG_ONOFF, 0, 0, NULL, "on|off", "off", FIELD_BOOL(policy.standby),
     "once a submodel is up, compile (and warm up) its next device in the background, so that a failover "
     "costs an inference, not a compile"},
    {"failback_ms", CFG_INT, 0, MS_MAX, NULL, "0..86400000", "0", FIELD_INT(policy.failback_ms),
     "after a failover, re-probe the preferred device at this interval in ms (compile + a trial inference) and move "
     "back when it works (0: off)"},
    {"check_outputs", CFG_CHOICE, 0, 0, check_outputs_choices, "nan|off", "off", FIELD_BOOL(policy.check_nan),
     "nan: outputs with NaN/Inf that the next device able to run the inference does not confirm, element by element "
     "(a NaN where it gives none, an infinity where it gives another value), count as a device failure; a -inf every "
     "device gives (Log(0), a mask) is the answer"},
    {"recovery_ms", CFG_INT, 0, MS_MAX, NULL, "0..86400000", STR(SI_RECOVERY_MS_DEFAULT), FIELD_INT(policy.recovery_ms),
     "once every device of a submodel has failed, the first inference this many ms later tries the devices again "
     "from the first (quarantined ones too: a success lifts the quarantine); each fruitless round doubles the "
     "wait, up to 64 times, and an inference that works resets it. A watchdog timeout quarantines the device for "
     "this long (doubling per timeout of that device, up to 64 times) rather than for good. 0: never (a "
     "failed-out submodel stays failed unless failback_ms finds a device)"},
    {"strict", CFG_ONOFF, 0, 0, NULL, "on|off", "off", FIELD_BOOL(strict),
     "no fallback at all: the first device's failure is returned"},
    {"profile", CFG_ONOFF, 0, 0, NULL, "on|off", "off", NO_FIELD,
     "time each step the devices run (its ONNX nodes, device and kernel); si_compiled_profile_json and "
     "`bench --profile` show them. Off: no clock is read"},
    {"isolate", CFG_NAMES, 0, 0, NULL, "LIST", "", NO_FIELD,
     "run these devices of the list (comma separated, e.g. OCL) out of process: each in a helper process "
     "(safeinfer-worker) that the library starts, so that a driver that aborts, segfaults or is killed costs "
     "that device (a lost device: failover, the inference re-run on the next one), not the program; a hung call "
     "ended by infer_timeout_ms kills the helper. The process never touches the device itself. Costs a copy of "
     "the inputs and outputs through shared memory per inference and of the weights at compile"},
    {"loop_max_iterations", CFG_INT, 0, 2147483647L, NULL, "0..2147483647", "1000000", FIELD_INT(loop_max_iterations),
     "a Loop node that runs more iterations than this in one inference fails with an error naming it, rather "
     "than running on for ever (a trip count of 2^63-1 with a condition that stays true); 0: no limit"},
    {"accuracy_check", CFG_NAMES, 0, 0, NULL, "DEVICE", "", NO_FIELD,
     "a device of the list whose outputs are the reference: on sampled inferences of a submodel that runs on "
     "another device (and that this device can run too), the same inputs run on it, and when an output's NRMSE "
     "(RMS of the differences over the reference's range) exceeds accuracy_threshold the active device counts as "
     "failed (stage accuracy): the submodel fails over and the inference is re-run"},
    {"accuracy_threshold", CFG_FLOAT, 0, 1000000000L, NULL, "X >= 0", "0.02", FIELD_DBL(policy.acc_threshold),
     "the NRMSE above which accuracy_check fails a device"},
    {"accuracy_check_every", CFG_INT, 1, 1000000, NULL, "1..1000000", "1", FIELD_INT(policy.acc_every),
     "accuracy_check samples every N-th inference of a submodel (1: every one)"},
    {"avoid", CFG_AVOID, 0, 0, NULL, "RULES", "", NO_FIELD,
     "keep ops or nodes off a device: Op:OPTYPE/DEVICE or Node:NAME/DEVICE, comma separated (e.g. "
     "Op:Softmax/OCL,Op:GroupQueryAttention/OCL); the nodes go to the next device of the list that runs them, "
     "and the device is not their failover candidate"},
    {"adaptive_threads", CFG_ONOFF, 0, 0, NULL, "on|off", "off", NO_FIELD,
     "the CPU device may drop to one thread while other processes slow its threads down, and retries "
     "`threads` every 8 inferences (off: `threads` is exact)"},
    {"hfa_tile", CFG_INT, 0, 1048576, NULL, "0..1048576", "0", FIELD_INT(hfa_tile),
     "attention over a long context (the Attention op with one head count, and MatMul->Softmax->MatMul with its "
     "scale and additive mask) runs as host flash attention: a tile model updates a running (accumulator, max, "
     "sum) per this many keys and a final model normalizes, both compiled on the attention's device and failing "
     "over with it; memory is O(tile), not O(queries x keys). Contexts of at most this many keys run the plain "
     "attention; a context known at compile time shorter than twice this is not tiled at all. 0: off"},
    {"moe_experts", CFG_ONOFF, 0, 0, NULL, "on|off", "off", FIELD_BOOL(moe_experts),
     "a MoE or QMoE (com.microsoft; float32 activations, constant expert weights (QMoE: blocks MatMulNBits takes), "
     "relu/gelu/silu/identity/interleaved SwiGLU) runs only the top-k experts "
     "of each token: the router on the host, each expert an auxiliary model compiled on the MoE's device (its "
     "weights a view of the node's, not a copy) run on the tokens routed to it, failing over with the MoE"},
    {"plan_cache", CFG_INT, 0, 1024, NULL, "0..1024", "8", NO_FIELD,
     "plans a device that plans per set of input shapes (CPU, OCL) keeps per compiled model beyond the ones requests "
     "are bound to (a model with open dimensions gets one plan per set of input shapes, built at its first "
     "inference); past it the least recently used plan no request is bound to goes. Weights are packed (uploaded) "
     "once per compiled model and shared by its plans, whatever this is"},
    {"fold", CFG_ONOFF, 0, 0, NULL, "on|off", "on", FIELD_BOOL(fold),
     "repeated blocks of the model (identical ops, attributes, shapes and wiring, different weights: a "
     "transformer's layers) become one function body, compiled once per device, and a call per block that binds "
     "its own weights; the body is one fail-safe unit for all its calls. `inspect` and the report show the "
     "functions. off: every block is compiled as it is. Off by default when `isolate` names a device (a call's "
     "weights would be copied to the helper process at every inference)"},
    {"max_memory_mb", CFG_INT, 0, SI_MAX_MEMORY_MB, NULL, "0..16777216", "0", FIELD_INT(max_memory_mb),
     "a memory budget in MiB (0: none): the most the compiled model may hold at once in buffers of 1 MiB or more "
     "(folded constants, device plans, the tensors of its inferences and request creations, also on watchdog "
     "threads; not a standby's warm-up), counted from si_compile on; an allocation past it fails with "
     "SI_ERR_NO_MEM naming the budget. One allocation larger than the machine's physical memory is always refused"},
};

_Static_assert(SI_MAX_MEMORY_MB == 16777216L, "the max_memory_mb entry's range text");

static const si_cfg_key *find_key(const char *name) {
    for (size_t i = 0; i < SI_ARRAY_LEN(si_cfg_keys); i++)
        if (!strcmp(si_cfg_keys[i].name, name)) return &si_cfg_keys[i];
    return NULL;
}

int si_config_num_keys(void) { return (int)SI_ARRAY_LEN(si_cfg_keys); }

si_result si_config_key(int i, si_config_key_info *out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_config_key: out is NULL");
    memset(out, 0, sizeof *out);
    if (i < 0 || i >= si_config_num_keys())
        return si_err(SI_ERR_INVALID_ARG, "configuration key %d out of range (0..%d)", i, si_config_num_keys() - 1);
    const si_cfg_key *k = &si_cfg_keys[i];
    *out = (si_config_key_info){.name = k->name, .values = k->values, .default_value = k->dflt, .doc = k->doc};
    return SI_OK;
}

// --- values ---------------------------------------------------------------------------------------------

/* Decimal digits only (no sign, no spaces, nothing after), in [lo, hi]. */
bool parse_long(const char *s, long lo, long hi, long *out) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int parse_onoff(const char *s) {
    if (!strcmp(s, "on") || !strcmp(s, "1") || !strcmp(s, "true")) return 1;
    if (!strcmp(s, "off") || !strcmp(s, "0") || !strcmp(s, "false")) return 0;
    return -1;
}

/* Validate value for key k; *num receives the number a field stores (ints, on/off, choices). */
static si_result check_value(const si_cfg_key *k, const char *value, long *num) {
    *num = 0;
    switch (k->type) {
    case CFG_DEVICES: {
        device_set *ds = si_calloc(1, sizeof *ds);
        if (!ds) return si_err(SI_ERR_NO_MEM, "out of memory");
        ds->no_lookup = true; /* the names only: no driver is loaded to check a list */
        si_result s = si_devices_parse(value, ds);
        si_free(ds);
        return s;
    }
    case CFG_NAMES: {
        if (!*value) return SI_OK; /* none */
        char seen[SI_MAX_DEVICES][64];
        int n = 0;
        for (const char *p = value;;) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char name[64], canon[64];
            if (!len || len >= sizeof name) return si_err(SI_ERR_INVALID_ARG, "%s '%s': an empty or too long entry", k->name, value);
            memcpy(name, p, len);
            name[len] = 0;
            if (si_device_name_check(name, canon, sizeof canon)) return si_err_wrap(SI_ERR_INVALID_ARG, "%s '%s'", k->name, value);
            for (int i = 0; i < n; i++)
                if (!strcmp(seen[i], canon)) return si_err(SI_ERR_INVALID_ARG, "%s '%s': %s is named twice", k->name, value, name);
            if (n == SI_MAX_DEVICES) return si_err(SI_ERR_INVALID_ARG, "%s '%s': more than %d devices", k->name, value, SI_MAX_DEVICES);
            snprintf(seen[n++], sizeof seen[0], "%s", canon);
            if (!e) break;
            p = e + 1;
        }
        return SI_OK;
    }
    case CFG_AVOID: {
        si_avoid *a;
        si_result s = si_avoid_parse(value, &a);
        si_avoid_free(a);
        return s;
    }
    case CFG_FAULTS: {
        if (!*value) return SI_OK; /* none */
        si_fault_spec *fs;
        si_result s = si_fault_spec_parse(value, &fs);
        if (!s) si_fault_spec_free(fs);
        return s;
    }
    case CFG_FLOAT: {
        char *end = NULL;
        errno = 0;
        double d = *value ? strtod(value, &end) : NAN;
        if (!end || *end || errno || !isfinite(d) || d < (double)k->lo || d > (double)k->hi)
            return si_err(SI_ERR_INVALID_ARG, "%s: '%s' is not a number in %ld..%ld", k->name, value, k->lo, k->hi);
        *num = 0;
        return SI_OK;
    }
    case CFG_INT:
        if (!parse_long(value, k->lo, k->hi, num))
            return si_err(SI_ERR_INVALID_ARG, "%s: '%s' is not a whole number in %ld..%ld (digits only)", k->name, value,
                          k->lo, k->hi);
        return SI_OK;
    case CFG_ONOFF: {
        int v = parse_onoff(value);
        if (v < 0) return si_err(SI_ERR_INVALID_ARG, "%s: '%s' is not on or off", k->name, value);
        *num = v;
        return SI_OK;
    }
    case CFG_CHOICE:
        for (const cfg_choice *c = k->choices; c->name; c++)
            if (!strcmp(c->name, value)) { *num = c->value; return SI_OK; }
        return si_err(SI_ERR_INVALID_ARG, "%s: '%s' is not one of %s", k->name, value, k->values);
    }
    return si_err(SI_ERR_INTERNAL, "configuration key %s has no type", k->name);
}

static si_result unknown_key(const char *key) {
    char known[512];
    size_t o = 0;
    known[0] = 0;
    for (size_t i = 0; i < SI_ARRAY_LEN(si_cfg_keys) && o < sizeof known; i++)
        o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", si_cfg_keys[i].name);
    return si_err(SI_ERR_INVALID_ARG, "unknown configuration key '%s' (known: %s)", key, known);
}

si_result si_cfg_fill(const si_config *cfg, si_cfg_values *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < SI_ARRAY_LEN(si_cfg_keys); i++) {
        const si_cfg_key *k = &si_cfg_keys[i];
        if (k->field < 0) continue;
        const char *v = cfg ? si_config_get(cfg, k->name) : NULL;
        long num;
        si_result s = check_value(k, v ? v : k->dflt, &num);
        if (s) return s;
        char *dst = (char *)out + k->field;
        if (k->field_kind == 'b') *(bool *)dst = num != 0;
        else if (k->field_kind == 'd') *(double *)dst = strtod(v ? v : k->dflt, NULL); /* checked above */
        else *(int *)dst = (int)num;
    }
    return SI_OK;
}

// --- the config object --------------------------------------------------------------------------------------

si_result si_config_create(si_config **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_config_create: out is NULL");
    *out = si_calloc(1, sizeof(si_config));
    return *out ? SI_OK : si_err(SI_ERR_NO_MEM, "out of memory");
}

void si_config_free(si_config *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) { si_free(c->keys[i]); si_free(c->values[i]); }
    si_free(c);
}

si_result si_config_set(si_config *c, const char *key, const char *value) {
    if (!c || !key || !value) return si_err(SI_ERR_INVALID_ARG, "si_config_set: NULL argument");
    const si_cfg_key *k = find_key(key);
    if (!k) return unknown_key(key);
    long num;
    si_result s = check_value(k, value, &num);
    if (s) return s;
    char *v = si_strdup(value);
    if (!v) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i], key)) { si_free(c->values[i]); c->values[i] = v; return SI_OK; }
    if (c->n == CFG_MAX) { si_free(v); return si_err(SI_ERR_INVALID_ARG, "too many configuration keys"); }
    if (!(c->keys[c->n] = si_strdup(key))) { si_free(v); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    c->values[c->n++] = v;
    return SI_OK;
}

si_result si_config_set_callback(si_config *c, si_event_fn fn, void *user) {
    if (!c) return si_err(SI_ERR_INVALID_ARG, "si_config_set_callback: config is NULL");
    c->fn = fn;
    c->user = user;
    return SI_OK;
}

const char *si_config_get(const si_config *c, const char *key) {
    for (int i = 0; c && key && i < c->n; i++)
        if (!strcmp(c->keys[i], key)) return c->values[i];
    return NULL;
}

const char *si_config_devices(const si_config *cfg) {
    const char *v = cfg ? si_config_get(cfg, "devices") : NULL;
    return v ? v : find_key("devices")->dflt;
}

// --- device lists -------------------------------------------------------------------------------------------

static si_result absent_supports(const si_device *d, const si_graph *g, const si_node *n) {
    (void)g; (void)n;
    const absent_device *a = (const absent_device *)d;
    return si_err(SI_ERR_UNSUPPORTED, "device %s is not available: %s", a->name, a->reason);
}

static si_result absent_compile(si_device *d, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out) {
    (void)cc;
    *out = NULL;
    return absent_supports(d, g, NULL);
}

static const si_device_i absent_iface = {.api_version = SI_DEVICE_API_VERSION, .supports_op = absent_supports,
                                         .compile = absent_compile};

/* Two names of one device ("OCL" and "OCL.0")? */
static bool same_device(const char *a, const char *b) {
    char ca[64], cb[64];
    if (si_device_name_check(a, ca, sizeof ca) || si_device_name_check(b, cb, sizeof cb)) {
        si_err_clear();
        return !strcmp(a, b);
    }
    return !strcmp(ca, cb);
}

/* Append device `name`: found as d, not looked up (placeholder: devs[] stays NULL), or absent with the
 * current message when d is NULL. */
static si_result add_device(device_set *ds, const char *list, const char *name, si_device *d, bool placeholder) {
    if (ds->n == SI_MAX_DEVICES)
        return si_err(SI_ERR_INVALID_ARG, "devices '%s': more than %d devices", list, SI_MAX_DEVICES);
    for (int i = 0; i < ds->n; i++)
        if (same_device(ds->names[i], name) || (d && ds->devs[i] == d))
            return si_err(SI_ERR_INVALID_ARG, "devices '%s': %s is listed twice%s", list, name,
                          strstr(list, "AUTO") ? " (AUTO includes every GPU or accelerator OpenCL device and CPU)" : "");
    snprintf(ds->names[ds->n], sizeof ds->names[ds->n], "%s", name);
    if (placeholder) {
        ds->isolated[ds->n] = !ds->no_lookup;
        ds->devs[ds->n++] = NULL;
        return SI_OK;
    }
    if (!d) { /* a known kind of device, not present here */
        absent_device *a = &ds->absent[ds->n];
        snprintf(a->name, sizeof a->name, "%s", name);
        snprintf(a->reason, sizeof a->reason, "%s", si_last_error());
        a->base = (si_device){.iface = &absent_iface, .name = a->name, .ctx = NULL};
        d = &a->base;
    }
    ds->devs[ds->n++] = d;
    return SI_OK;
}

/* Is `name` one of the comma-separated names of list (NULL: none), as a device? */
static bool names_has(const char *list, const char *name) {
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char one[64];
        if (len < sizeof one) {
            memcpy(one, p, len);
            one[len] = 0;
            if (same_device(one, name)) return true;
        }
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* AUTO: every GPU or accelerator OpenCL device present, then CPU (REF in a build without CPU). */
static si_result add_auto(device_set *ds, const char *list) {
    si_result s;
#ifdef SI_HAVE_OCL
    for (int i = 0; i < SI_MAX_DEVICES; i++) {
        si_device *d;
        if (si_device_ocl_get(i, &d)) break; /* no more OpenCL devices (or none at all) */
        bool iso = names_has(ds->isolate, d->name); /* listed here already: from now on only its helper uses it */
        if (si_device_ocl_is_gpu_or_accelerator(d) && (s = add_device(ds, list, d->name, iso ? NULL : d, iso))) return s;
    }
#endif
    const char *last = "REF";
#ifdef SI_HAVE_CPU
    last = "CPU";
#endif
    if (names_has(ds->isolate, last)) return add_device(ds, list, last, NULL, true);
    si_device *d;
    if ((s = si_device_get(last, &d))) return s;
    return add_device(ds, list, last, d, false);
}

si_result si_devices_parse(const char *list, device_set *ds) {
    ds->n = 0;
    if (!list || !*list) return si_err(SI_ERR_INVALID_ARG, "devices: the list is empty (give AUTO or names such as OCL,CPU)");
    const char *p = list;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char name[64];
        if (n == 0) return si_err(SI_ERR_INVALID_ARG, "devices '%s': an empty entry", list);
        if (n >= sizeof name) return si_err(SI_ERR_INVALID_ARG, "devices '%s': an entry longer than %zu characters", list, sizeof name - 1);
        memcpy(name, p, n);
        name[n] = 0;
        for (const char *q = name; *q; q++)
            if (*q == ' ' || *q == '\t' || (unsigned char)*q < 0x20)
                return si_err(SI_ERR_INVALID_ARG, "devices '%s': entry '%s' contains a space or a control character", list, name);
        si_result s;
        if (!strcmp(name, "AUTO")) {
            if ((s = add_auto(ds, list))) return s;
        } else {
            char canon[64];
            s = si_device_name_check(name, canon, sizeof canon);
            if (s && strncmp(name, "OCL", 3))
                return si_err(SI_ERR_INVALID_ARG, "devices '%s': unknown device '%s' (known: AUTO, %s)", list, name, si_device_names());
            if (s) return si_err_wrap(s, "devices '%s'", list);
            if (ds->no_lookup || names_has(ds->isolate, name)) { /* isolated: only its helper process touches it */
                if ((s = add_device(ds, list, name, NULL, true))) return s;
            } else {
                si_device *d;
                s = si_device_get(name, &d);
                if (s == SI_ERR_INVALID_ARG) return si_err_wrap(s, "devices '%s'", list);
                if (s && s != SI_ERR_UNSUPPORTED && s != SI_ERR_DEVICE) return s;
                if ((s = add_device(ds, list, name, s ? NULL : d, false))) return s;
            }
        }
        if (!e) break;
        p = e + 1;
    }
    return SI_OK;
}
