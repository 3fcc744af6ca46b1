/*
 * watchdog.c — a call with a deadline (see watchdog.h).
 *
 * One mutex guards the hand-over between the caller and the worker: the caller posts a call and waits on
 * `done_cv` with a deadline; the worker runs the call without the lock, then, under the lock, either hands the
 * result back (the caller is still waiting) or, when the caller has given up (`abandoned`, set under the same
 * lock), reclaims the call's context and ends. Because the give-up and the completion are decided under one
 * lock, exactly one side owns the context at any moment, and the abandon hook runs while the call cannot
 * complete.
 */
#include "failsafe/watchdog.h"

#include "util/thread.h"

struct si_watchdog {
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* the worker waits for a call or for quit */
    pthread_cond_t done_cv; /* the caller waits for the result (monotonic deadline) */
    const si_wd_ops *ops;
    void *ctx;
    si_budget *budget; /* the caller's memory budget (util.h): the call charges it on the worker too */
    bool posted, done, abandoned, quit;
    si_error err; /* the call's status and message */
};

static void wd_destroy(si_watchdog *w) {
    pthread_cond_destroy(&w->work_cv);
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
    si_free(w);
}

static void *wd_main(void *arg) {
    si_watchdog *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->posted && !w->quit) pthread_cond_wait(&w->work_cv, &w->mu);
        if (!w->posted) break; /* quit while idle */
        w->posted = false;
        const si_wd_ops *ops = w->ops;
        void *ctx = w->ctx;
        si_budget *budget = w->budget;
        bool late = w->abandoned; /* given up on before it even started (a starved worker): do not run it */
        pthread_mutex_unlock(&w->mu);
        si_budget *prev = si_budget_enter(budget);
        si_result st = late ? SI_ERR_ABORTED : ops->run(ctx);
        si_budget_leave(prev);
        pthread_mutex_lock(&w->mu);
        if (w->abandoned) { /* nobody waits any more: release what the call owned, then end */
            pthread_mutex_unlock(&w->mu);
            ops->reclaim(ctx, st);
            wd_destroy(w);
            return NULL;
        }
        si_error_save(&w->err, st);
        w->done = true;
        pthread_cond_signal(&w->done_cv);
    }
    pthread_mutex_unlock(&w->mu);
    wd_destroy(w);
    return NULL;
}

static si_watchdog *wd_new(void) {
    si_watchdog *w = si_calloc(1, sizeof *w);
    if (!w) return NULL;
    if (pthread_mutex_init(&w->mu, NULL)) { si_free(w); return NULL; }
    if (pthread_cond_init(&w->work_cv, NULL)) { pthread_mutex_destroy(&w->mu); si_free(w); return NULL; }
    if (si_cond_init(&w->done_cv)) {
        pthread_cond_destroy(&w->work_cv);
        pthread_mutex_destroy(&w->mu);
        si_free(w);
        return NULL;
    }
    if (si_thread_detached(wd_main, w)) { wd_destroy(w); return NULL; }
    return w;
}

si_result si_watchdog_call(si_watchdog **wp, const si_wd_ops *ops, void *ctx, int timeout_ms, const char *what,
                           bool *abandoned) {
    *abandoned = false;
    if (!*wp) *wp = wd_new();
    si_watchdog *w = *wp;
    if (!w) { /* no worker thread: run the call here, without a deadline */
        si_err_clear();
        return ops->run(ctx);
    }
    struct timespec deadline = si_deadline_ms(timeout_ms);
    pthread_mutex_lock(&w->mu);
    w->ops = ops;
    w->ctx = ctx;
    w->budget = si_budget_current();
    w->done = false;
    w->posted = true;
    pthread_cond_signal(&w->work_cv);
    while (!w->done && !si_cond_wait_until(&w->done_cv, &w->mu, &deadline)) {}
    if (w->done) {
        si_result st = w->err.status ? si_error_restore(&w->err) : SI_OK;
        pthread_mutex_unlock(&w->mu);
        return st;
    }
    /* give up: under w->mu the call cannot complete, so what it uses is still alive for the hook */
    if (ops->abandon) ops->abandon(ctx);
    w->abandoned = true;
    *wp = NULL; /* the worker belongs to the call now and ends after reclaim */
    pthread_mutex_unlock(&w->mu);
    *abandoned = true;
    return si_err(SI_ERR_DEVICE, "%s did not return within %d ms (abandoned)", what, timeout_ms);
}

void si_watchdog_free(si_watchdog *w) {
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->quit = true;
    pthread_cond_signal(&w->work_cv);
    pthread_mutex_unlock(&w->mu);
}
