/*
 * thread.c — detached threads, the monotonic clock and deadlines (see thread.h).
 */
#include "util/thread.h"

#include <errno.h>

si_result si_thread_detached(void *(*fn)(void *), void *arg) {
    pthread_attr_t a;
    int rc = pthread_attr_init(&a);
    if (rc) return si_err(SI_ERR_NO_MEM, "cannot start a thread (pthread_attr_init: error %d)", rc);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    rc = pthread_create(&t, &a, fn, arg);
    pthread_attr_destroy(&a);
    return rc ? si_err(SI_ERR_NO_MEM, "cannot start a thread (pthread_create: error %d)", rc) : SI_OK;
}

double si_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct timespec si_deadline_ms(long ms) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    if (ms <= 0) return t;
    t.tv_sec += (time_t)(ms / 1000);
    t.tv_nsec += (ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

int si_cond_init(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc) return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!rc) rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

bool si_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *deadline) {
    return pthread_cond_timedwait(cv, mu, deadline) == ETIMEDOUT;
}
