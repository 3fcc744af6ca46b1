/*
 * thread.h — the few thread and time helpers the library needs: start a detached thread, a monotonic clock,
 * condition variables that wait on it, and deadlines ("now + T ms") for pthread_cond_timedwait.
 *
 * Every timed wait of the library uses CLOCK_MONOTONIC, so that setting the wall clock neither fires nor
 * delays a watchdog.
 */
#ifndef SI_THREAD_H
#define SI_THREAD_H

#include "util/util.h"

#include <pthread.h>
#include <time.h>

/* Run fn(arg) on a new detached thread. SI_ERR_NO_MEM (message names the reason) when no thread could be
 * started; fn is then not called and arg still belongs to the caller. */
si_result si_thread_detached(void *(*fn)(void *), void *arg);

/* Milliseconds on the monotonic clock (an arbitrary origin: use differences). */
double si_mono_ms(void);
/* The monotonic time `ms` milliseconds from now (ms <= 0: now), for si_cond_wait_until. */
struct timespec si_deadline_ms(long ms);
/* A condition variable whose timed waits use the monotonic clock. 0 on success, an errno value otherwise. */
int si_cond_init(pthread_cond_t *cv);
/* Wait on cv (initialised by si_cond_init) until signalled or `deadline` passes; true when it passed. Callers
 * loop on their own condition, as with any condition variable. */
bool si_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, const struct timespec *deadline);

#endif
