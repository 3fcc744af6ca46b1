/*
 * events.h — the event sink shared by the fail-safe compiled models of one compile: it timestamps events,
 * passes them to the user's callback, counts them, keeps a log and per-submodel compile attempts for the
 * report, and holds the quarantine table (by index in the device list: devices lost, or abandoned by a
 * watchdog, that no submodel may use until the quarantine ends or is lifted).
 * It is reference counted and owns, through `cleanup`, what device calls need (the devices, the submodel
 * graphs, the options): every compiled model, abandoned call and background job holds a reference, so the
 * last of them to finish frees it, and nobody ever waits for a call that may not return.
 */
#ifndef SI_EVENTS_H
#define SI_EVENTS_H

#include "safeinfer.h"
#include "util/util.h"

#include <pthread.h>
#include <stdatomic.h>

/* Devices per sink (device list entries). */
#define SI_SINK_MAX_DEVICES 64

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
    _Atomic int64_t q_until_us[SI_SINK_MAX_DEVICES]; /* quarantine end (si_mono_ms * 1000); 0: none; INT64_MAX: until lifted */
    _Atomic int q_strikes[SI_SINK_MAX_DEVICES];      /* timed quarantines so far (for the back-off) */
    pthread_rwlock_t cb_lock; /* held (read) around the user's callback; close takes it to write */
    bool closed;              /* under cb_lock: no more callbacks */
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
/* No user callback starts after this returns, and none is running (events are still logged and counted).
 * The owner of the user's callback calls it before letting go of the callback's `user`. */
void si_sink_close(si_sink *s);

/* Quarantine device d for every submodel: for `ms` milliseconds (> 0), or until lifted (ms < 0). A shorter
 * quarantine never cuts a longer one. True when d was not quarantined before (the caller reports it). */
bool si_sink_quarantine(si_sink *s, int d, long ms);
bool si_sink_quarantined(const si_sink *s, int d);
/* End d's quarantine (a recovery round got it working again) and forget its strikes. */
void si_sink_lift(si_sink *s, int d);
/* Count a timed quarantine of d; returns the number counted before this one. */
int si_sink_strike(si_sink *s, int d);

#endif
