/*
 * events.c — the event sink (see events.h).
 */
#include "failsafe/events.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

si_result si_sink_create(const char *const *names, int n, si_event_fn fn, void *user, si_sink **out) {
    *out = NULL;
    if (n < 1 || n > SI_MAX_DEVICES) return si_err(SI_ERR_INVALID_ARG, "event sink: %d devices (1..%d allowed)", n, SI_MAX_DEVICES);
    si_sink *s = si_calloc(1, sizeof *s);
    if (!s) return si_err(SI_ERR_NO_MEM, "out of memory");
    s->device_names = si_calloc((size_t)n + 1, sizeof(char *));
    if (!s->device_names) { si_free(s); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    s->n_devices = n;
    for (int i = 0; i < n; i++)
        if (!(s->device_names[i] = si_strdup(names[i]))) { si_sink_unref(s); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    pthread_mutex_init(&s->mu, NULL);
    s->fn = fn;
    s->user = user;
    s->t0_ms = mono_ms();
    *out = s;
    return SI_OK;
}

si_sink *si_sink_ref(si_sink *s) {
    if (s) atomic_fetch_add(&s->refs, 1);
    return s;
}

void si_sink_unref(si_sink *s) {
    if (!s || atomic_fetch_sub(&s->refs, 1) != 0) return;
    if (s->cleanup) s->cleanup(s->cleanup_arg);
    for (int i = 0; i < s->n_attempts; i++) si_free(s->attempts[i].message);
    for (int i = 0; i < s->n_log; i++) si_free(s->log[i].message);
    for (int i = 0; s->device_names && i < s->n_devices; i++) si_free(s->device_names[i]);
    si_free(s->device_names);
    si_free(s->attempts);
    si_free(s->log);
    pthread_mutex_destroy(&s->mu);
    si_free(s);
}

double si_sink_now(const si_sink *s) { return mono_ms() - s->t0_ms; }

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
        s->fn(&ev, s->user);
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
