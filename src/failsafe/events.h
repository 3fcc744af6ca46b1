/*
 * events.h — the event sink shared by the fail-safe compiled models of one compile: it timestamps events,
 * passes them to the user's callback, counts them, keeps a log and per-submodel compile attempts for the
 * report, and holds the quarantine table (devices lost for good, by index in the device list).
 * It is reference counted: abandoned device calls (watchdog) keep it alive until they return.
 */
#ifndef SI_EVENTS_H
#define SI_EVENTS_H

#include "safeinfer.h"
#include "util/util.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct si_attempt {
    int submodel;
    int device;     /* index in the device list */
    char stage[16]; /* compile / create / infer / check / probe */
    si_result status;
    char *message;
} si_attempt;

typedef struct si_logged_event {
    si_event_type type;
    double t_ms;
    int submodel;
    int from, to;   /* device indices, -1 when none */
    char stage[16];
    si_result status;
    char *message;
} si_logged_event;

typedef struct si_sink {
    _Atomic int refs;
    double t0_ms;
    si_event_fn fn;
    void *user;
    int n_devices;
    char **device_names;
    pthread_mutex_t mu;
    si_attempt *attempts;
    int n_attempts, cap_attempts;
    si_logged_event *log;
    int n_log, cap_log;
    _Atomic long inferences, failovers, retries, failbacks;
    _Atomic bool quarantined[SI_MAX_DEVICES]; /* by device index (n_devices <= SI_MAX_DEVICES) */
    _Atomic int outstanding; /* abandoned calls still running */
    void (*cleanup)(void *arg); /* called when the last reference drops (frees what devices need) */
    void *cleanup_arg;
} si_sink;

si_result si_sink_create(const char *const *device_names, int n_devices, si_event_fn fn, void *user, si_sink **out);
si_sink *si_sink_ref(si_sink *s);
void si_sink_unref(si_sink *s);
double si_sink_now(const si_sink *s);
/* Record an event (also calls the user's callback and bumps the counters). */
void si_sink_event(si_sink *s, si_event_type type, int submodel, int from, int to, const char *stage, si_result status,
                   const char *fmt, ...) SI_PRINTF(8, 9);
void si_sink_attempt(si_sink *s, int submodel, int device, const char *stage, si_result status, const char *message);
const char *si_event_type_name(si_event_type t);

#endif
