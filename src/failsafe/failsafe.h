/*
 * failsafe.h — the fail-safe compiled model: built from a list of candidate devices and a factory
 * `factory(device) -> compiled model`, and itself a compiled model (device/device.h interfaces).
 *
 * Compile: the first candidate whose factory call succeeds wins; every failure is kept (events, attempts).
 * Runtime: the active state {candidate, generation, compiled model} lives under one lock. A request that
 * fails on generation g fails the model over from g; if another request already moved it on, it joins the
 * new generation. Inner requests are re-created lazily when the generation changes; the caller's tensors
 * (inputs it set, outputs it got) stay the same objects and are re-bound; the failed inference is re-run.
 * The caller's mistakes (SI_ERR_INVALID_ARG) are returned as they are; everything else fails over. After a
 * failed inference the request's outputs still hold the last successful inference's results.
 * The layer knows device names only to report them: what a device is, it learns from the factory alone.
 *
 * Lifetime: freeing the compiled model does not wait for its background work or for calls a watchdog
 * abandoned; they hold references (on the sink, which owns what the factory needs, and on what they use) and
 * the last to finish frees it. The factory's `user` must therefore live as long as the sink.
 */
#ifndef SI_FAILSAFE_H
#define SI_FAILSAFE_H

#include "device/iface.h"
#include "failsafe/events.h"

/* Compile the submodel on candidate `device` (an index in the sink's device list). */
typedef si_result (*si_factory_fn)(void *user, int device, si_cmodel **out);

typedef struct si_failsafe_policy {
    int retries;          /* retries on the same device before failing over (not for SI_ERR_DEVICE_LOST) */
    int infer_timeout_ms; /* 0: none; else a watchdog abandons an infer or a request creation that has not
                           * returned in time (the device is then quarantined) */
    int compile_timeout_ms; /* 0: none; else the same for compiles */
    bool standby;         /* compile the next candidate in the background once the first is up */
    int failback_ms;      /* 0: none; else re-probe better candidates every failback_ms after a failover */
    bool check_nan;       /* non-finite outputs the next candidate does not confirm (element by element) are a failure */
    int recovery_ms;      /* 0: none (every candidate failed: the model stays failed; a watchdog timeout
                           * quarantines for good); else after every candidate failed, the first request
                           * recovery_ms later tries them all again (the wait doubles with each fruitless
                           * round, up to 64x; an inference that works resets it), and a watchdog timeout
                           * quarantines for recovery_ms (doubling per timeout of that device, up to 64x) */
    bool acc_check;       /* accuracy check (zero-initialised policies have none) */
    int acc_device;       /* acc_check: the device index whose outputs are the reference. On sampled
                           * inferences on another candidate, the same inputs run on it and an output whose NRMSE
                           * (RMS difference over the reference's range) exceeds acc_threshold is a failure of the
                           * active device (stage "accuracy"): fail over, re-run. Not a candidate: no check */
    double acc_threshold;
    int acc_every;        /* check every acc_every-th inference of the submodel (>= 1) */
} si_failsafe_policy;

/* The compile property recovery_ms when it is not set. */
#define SI_RECOVERY_MS_DEFAULT 1000

typedef struct si_failsafe_desc {
    int submodel;            /* id for events */
    int n_candidates;
    const int *candidates;   /* device indices in priority order (copied) */
    si_factory_fn factory;
    void *user;              /* passed to factory; must live as long as the sink (see Lifetime above) */
    si_failsafe_policy policy;
    si_sink *sink;           /* a reference is taken */
    const char *device_desc; /* copied; reported as the compiled model's device */
    /* Parameters: per input (n_in_param of them; 0: none), whether it is a constant the caller binds for the
     * compiled model's whole life (a function body's weight, ir/fold.h). It is never copied for the watchdog, and
     * warm-ups and fail-back probes bind the one an inference bound rather than a zero tensor (devices may cache
     * what they derive from it). Copied. */
    int n_in_param;
    const bool *in_param;
} si_failsafe_desc;

/* Errors: the status of the last candidate when all fail, with a message naming each device and why. */
si_result si_failsafe_create(const si_failsafe_desc *d, si_cmodel **out);
/* The device index the compiled model runs on now (-1 when every candidate failed). */
int si_failsafe_active_device(si_cmodel *m);
/* Is this compiled model a fail-safe one? */
bool si_failsafe_is(const si_cmodel *m);

#endif
