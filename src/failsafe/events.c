/*
 * events.c — the event sink (see events.h).
 */
#include "failsafe/events.h"

#include "util/thread.h"

#include <stdarg.h>
#include <stdio.h>

si_result si_sink_create(const char *const *names, int n, si_event_fn fn, void *user, si_sink **out) {
    *out = NULL;
    if (n > SI_SINK_MAX_DEVICES) return si_err(SI_ERR_INVALID_ARG, "more than %d devices", SI_SINK_MAX_DEVICES);
    si_sink *s = si_calloc(1, sizeof *s);
    if (!s) return si_err(SI_ERR_NO_MEM, "out of memory");
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->mu, NULL);
    pthread_rwlock_init(&s->cb_lock, NULL);
    s->device_names = si_calloc((size_t)n + 1, sizeof(char *));
    if (!s->device_names) { si_sink_unref(s); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    s->n_devices = n;
    for (int i = 0; i < n; i++)
        if (!(s->device_names[i] = si_strdup(names[i]))) { si_sink_unref(s); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    s->fn = fn;
    s->user = user;
    s->t0_ms = si_mono_ms();
    *out = s;
    return SI_OK;
}

si_sink *si_sink_ref(si_sink *s) {
    if (s) atomic_fetch_add(&s->refs, 1);
    return s;
}

void si_sink_unref(si_sink *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->cleanup) s->cleanup(s->cleanup_arg);
    for (int i = 0; i < s->n_attempts; i++) si_free(s->attempts[i].message);
    for (int i = 0; i < s->n_log; i++) si_free(s->log[i].message);
    for (int i = 0; s->device_names && i < s->n_devices; i++) si_free(s->device_names[i]);
    SI_FREE_ALL(s->device_names, s->attempts, s->log);
    pthread_rwlock_destroy(&s->cb_lock);
    pthread_mutex_destroy(&s->mu);
    si_free(s);
}

double si_sink_now(const si_sink *s) { return si_mono_ms() - s->t0_ms; }

void si_sink_close(si_sink *s) {
    if (!s) return;
    pthread_rwlock_wrlock(&s->cb_lock);
    s->closed = true;
    pthread_rwlock_unlock(&s->cb_lock);
}

static bool q_active(int64_t until) { return until == INT64_MAX || (until && (double)until > si_mono_ms() * 1e3); }

bool si_sink_quarantine(si_sink *s, int d, long ms) {
    if (d < 0 || d >= s->n_devices) return false;
    int64_t until = ms < 0 ? INT64_MAX : (int64_t)(si_mono_ms() * 1e3) + (int64_t)ms * 1000;
    int64_t old = atomic_load(&s->q_until_us[d]);
    do {
        if (q_active(old) && old >= until) return false; /* already quarantined at least that long */
    } while (!atomic_compare_exchange_weak(&s->q_until_us[d], &old, until));
    return !q_active(old);
}

bool si_sink_quarantined(const si_sink *s, int d) {
    if (d < 0 || d >= s->n_devices) return false;
    int64_t until = atomic_load(&((si_sink *)s)->q_until_us[d]);
    return until && q_active(until);
}

void si_sink_lift(si_sink *s, int d) {
    if (d < 0 || d >= s->n_devices) return;
    atomic_store(&s->q_until_us[d], 0);
    atomic_store(&s->q_strikes[d], 0);
}

int si_sink_strike(si_sink *s, int d) {
    if (d < 0 || d >= s->n_devices) return 0;
    return atomic_fetch_add(&s->q_strikes[d], 1);
}

const char *si_event_type_name(si_event_type t) {
    switch (t) {
    case SI_EVENT_COMPILE: return "compile";
    case SI_EVENT_FAILOVER: return "failover";
    case SI_EVENT_RETRY: return "retry";
    case SI_EVENT_QUARANTINE: return "quarantine";
    case SI_EVENT_STANDBY_READY: return "standby_ready";
    case SI_EVENT_FAILBACK: return "failback";
    case SI_EVENT_ALL_FAILED: return "all_failed";
    }
    return "unknown";
}

#define LOG_MAX 100000

void si_sink_event(si_sink *s, si_event_type type, int submodel, int from, int to, const char *stage, si_result status,
                   const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (type == SI_EVENT_FAILOVER) atomic_fetch_add(&s->failovers, 1);
    if (type == SI_EVENT_RETRY) atomic_fetch_add(&s->retries, 1);
    if (type == SI_EVENT_FAILBACK) atomic_fetch_add(&s->failbacks, 1);
    double t = si_sink_now(s);
    pthread_mutex_lock(&s->mu);
    if (s->n_log < LOG_MAX) {
        if (s->n_log == s->cap_log) {
            int cap = s->cap_log ? s->cap_log * 2 : 32;
            si_logged_event *nl = si_realloc(s->log, sizeof *nl * (size_t)cap);
            if (nl) { s->log = nl; s->cap_log = cap; }
        }
        if (s->n_log < s->cap_log) {
            si_logged_event *e = &s->log[s->n_log++];
            e->type = type; e->t_ms = t; e->submodel = submodel; e->from = from; e->to = to; e->status = status;
            snprintf(e->stage, sizeof e->stage, "%s", stage ? stage : "");
            e->message = si_strdup(msg);
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (s->fn) {
        si_event ev = {.type = type, .t_ms = t, .submodel = submodel,
                       .from = from >= 0 && from < s->n_devices ? s->device_names[from] : "",
                       .to = to >= 0 && to < s->n_devices ? s->device_names[to] : "",
                       .stage = stage ? stage : "", .status = status, .message = msg};
        pthread_rwlock_rdlock(&s->cb_lock);
        if (!s->closed) s->fn(&ev, s->user);
        pthread_rwlock_unlock(&s->cb_lock);
    }
}

void si_sink_attempt(si_sink *s, int submodel, int device, const char *stage, si_result status, const char *message) {
    pthread_mutex_lock(&s->mu);
    if (s->n_attempts == s->cap_attempts) {
        int cap = s->cap_attempts ? s->cap_attempts * 2 : 16;
        si_attempt *na = si_realloc(s->attempts, sizeof *na * (size_t)cap);
        if (na) { s->attempts = na; s->cap_attempts = cap; }
    }
    if (s->n_attempts < s->cap_attempts && s->n_attempts < LOG_MAX) {
        si_attempt *a = &s->attempts[s->n_attempts++];
        a->submodel = submodel; a->device = device; a->status = status;
        snprintf(a->stage, sizeof a->stage, "%s", stage);
        a->message = si_strdup(message ? message : "");
    }
    pthread_mutex_unlock(&s->mu);
}
