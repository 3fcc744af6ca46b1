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
#include "partition/partition.h"

/* What a submodel's factory needs: borrowed from the compiled model, which outlives every call. */
typedef struct factory_ctx {
    struct si_compiled *c;
    int sub;
} factory_ctx;

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
    si_partition *part;
    factory_ctx *fctx;
    si_options opts;
    const char *keys[CFG_MAX], *vals[CFG_MAX];
    char *kv_store[2 * CFG_MAX];
    si_cmodel **sub_cms; /* per submodel (borrowed from cm's tree) for the report */
    si_prof *prof;       /* profile=on: the step profile the requests add to after each inference */
    si_budget budget;    /* max_memory_mb: charged by the graph stage, every device compile and requests (also
                          * on watchdog threads); lives as long as c, so calls abandoned by a watchdog can
                          * still give their bytes back */
};

/* The one device-list parser (config.c): fills ds->n, names, devs (no wrappers), isolated. A known device
 * absent on this machine becomes an absent device that declines every node. A device named in ds->isolate
 * (and every device when ds->no_lookup) is not looked up: its name is checked, devs[i] stays NULL. Errors:
 * INVALID_ARG naming the list and the entry (empty entry, spaces, unknown device, a device listed twice,
 * more than SI_MAX_DEVICES). */
si_result si_devices_parse(const char *list, device_set *ds);
/* The submodel (and its output port) that produces parent value `value`; *sub = -1 when none does. */
void si_sub_out(const si_partition *p, int value, int *sub, int *port);

#endif
