/*
 * compiled.h — the compiled model of the API layer and what its files share: the device set a compile
 * runs on (compile.c), the report (report.c), the request wrappers (request.c) and the partition
 * descriptions (partition_text.c).
 */
#ifndef SI_API_COMPILED_H
#define SI_API_COMPILED_H

#include "api/internal.h"
#include "device/faulty/faulty.h"
#include "failsafe/events.h"
#include "exec/call.h"
#include "ir/fold.h"
#include "partition/partition.h"

/* What a submodel's factory needs: borrowed from the compiled model, which outlives every call. */
typedef struct factory_ctx {
    struct si_compiled *c;
    const si_graph *g; /* the submodel's graph (its scope's partition holds it) */
    int aux;           /* the submodel's si_submodel.aux: SI_AUX_HFA / SI_AUX_MOE build a driver (compile_aux.c) */
} factory_ctx;

/* One graph compiled: the model's (scope 0), or a branch or body of a control-flow node (recursively, each
 * partitioned and compiled like the model's graph). Lives as long as the compiled model (compiled_release),
 * since fail-safe models recompile from its submodel graphs. */
typedef struct si_scope {
    char *path;          /* "" for the model's graph; "loop.body", "loop.body/inner.then_branch" for subgraphs */
    si_graph *g;         /* the graph partitioned (owned; freed once the scope is compiled) */
    si_partition *part;
    factory_ctx *fctx;   /* per submodel */
    si_cmodel **sub_cms; /* per submodel (borrowed from the compiled model's tree) for the report */
    int base;            /* the id of its first submodel in events and the report */
    char devices[256];   /* per submodel: its device (candidates joined by '>'), or "host"; comma separated */
    si_folding fold;     /* the functions of its repeated blocks (ir/fold.h; none when fold=off) */
    si_fn *fns[SI_FOLD_MAX_FUNCS];  /* their bodies, compiled at the first call (a reference each) */
    int fn_scope[SI_FOLD_MAX_FUNCS]; /* the scope each body was compiled as */
} si_scope;

/* A device named in the list that is not there on this machine (no OpenCL platform, ...): it declines
 * every node, so the model runs on the rest of the list, and the reason shows in inspect and the report. */
typedef struct absent_device {
    si_device base;
    char name[64];
    char reason[512];
} absent_device;

typedef struct device_set {
    /* set before si_devices_parse: */
    const char *isolate;                 /* devices to run in a helper process (config "isolate"): not looked up */
    bool no_lookup;                      /* check the list only: look nothing up (devs[] stay NULL) */
    /* filled by si_devices_parse: */
    int n;
    char names[SI_MAX_DEVICES][64];      /* as listed, AUTO expanded */
    absent_device absent[SI_MAX_DEVICES];
    si_device *devs[SI_MAX_DEVICES];    /* what is compiled on: wrappers where the spec names the device; NULL
                                          * for an isolated device until si_compile makes its proxy */
    bool isolated[SI_MAX_DEVICES];       /* named in `isolate` */
    si_device *wrappers[SI_MAX_DEVICES]; /* fault wrappers to free (NULL where none) */
    si_device *proxies[SI_MAX_DEVICES];  /* isolated devices' proxies to free (NULL where none) */
    si_fault_spec *faults;
    si_avoid *avoid;                     /* placement rules (config "avoid"), NULL when none */
} device_set;

/* What device calls read (the devices and fault wrappers, the submodel graphs, the options, the factory
 * contexts) lives in the si_compiled itself, and the si_compiled lives as long as anything may still call into
 * a device: si_compiled_free lets go of the event sink, and the sink's last reference (held by fail-safe
 * models' background work and by calls a watchdog abandoned) frees the rest (compiled_release). */
struct si_compiled {
    si_cmodel *cm;
    char devices[256];
    si_sink *sink;
    device_set *ds;
    si_scope **scopes;          /* scope 0: the model's graph; then the subgraphs in compile order */
    int n_scopes, cap_scopes;
    int n_subs;                 /* submodels over every scope (their ids) */
    si_failsafe_policy policy;  /* for every fail-safe submodel */
    bool strict;                /* no fallback devices */
    int64_t loop_max_iterations;
    bool fold;                  /* config fold */
    int hfa_tile;               /* config hfa_tile */
    bool moe_experts;           /* config moe_experts */
    si_options opts;
    si_compile_ctx cctx;        /* what every device compile of this model receives (opts, consts) */
    si_shared_consts *consts;   /* constants devices prepared, shared by the compiles of this model */
    const char *keys[CFG_MAX], *vals[CFG_MAX];
    char *kv_store[2 * CFG_MAX];
    si_prof *prof;       /* profile=on: the step profile the requests add to after each inference */
    si_budget budget;    /* max_memory_mb: charged by the graph stage, every device compile and requests (also
                          * on watchdog threads); lives as long as c, so calls abandoned by a watchdog can
                          * still give their bytes back */
};

/* Compile graph g (shapes inferred; taken over, freed on failure too) as scope `path` of c: If folding,
 * partition, each device submodel through the factory (fail-safe over its candidates), each control-flow node
 * through si_compile_control, then the executor over them. */
si_result si_compile_graph(si_compiled *c, const char *path, si_graph *g, si_cmodel **out);
/* The control-flow model of host submodel `sub` of scope sc (compile_cf.c): its branches or body detached,
 * compiled by si_compile_graph, and run by the executor core's control step. */
si_result si_compile_control(si_compiled *c, si_scope *sc, int sub, si_cmodel **out);
/* The call of host submodel `sub` of scope sc (a Call node, compile_fn.c): its function's body compiled at the
 * first call (by si_compile_graph, a scope of its own), then the executor core's call step over it. */
si_result si_compile_call(si_compiled *c, si_scope *sc, int sub, si_cmodel **out);
/* The source of value `name` of host submodel graph h: a constant of h, or one of h's inputs (compile_cf.c). */
si_result si_host_source(const si_graph *h, const char *name, si_src *src);
/* The factory's product for an auxiliary unit on device d (compile_aux.c): host flash attention over tile and
 * final models compiled on d (exec/hfa.c), or the sparse MoE driver over one model per expert compiled on d
 * (exec/moe_drv.c), or d's plain compiled model of g when g holds nothing the drivers take or their properties
 * (hfa_tile, moe_experts) are off. Errors: d's compile errors, NO_MEM. */
si_result si_aux_compile(si_device *d, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out);
/* A port describing value v (dims as inferred: negative ones are open). */
void si_port_of(si_port *p, const si_val *v);

/* The one device-list parser (config.c): fills ds->n, names, devs (no wrappers), isolated. A known device
 * absent on this machine becomes an absent device that declines every node. A device named in ds->isolate
 * (and every device when ds->no_lookup) is not looked up: its name is checked, devs[i] stays NULL. Errors:
 * INVALID_ARG naming the list and the entry (empty entry, spaces, unknown device, a device listed twice,
 * more than SI_MAX_DEVICES). */
si_result si_devices_parse(const char *list, device_set *ds);
/* The submodel (and its output port) that produces parent value `value`; *sub = -1 when none does. */
void si_sub_out(const si_partition *p, int value, int *sub, int *port);

#endif
