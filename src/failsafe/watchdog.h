/*
 * watchdog.h — a call with a deadline: run a call on a worker thread and wait for it at most T ms. When it
 * returns in time, its status and message come back to the caller's thread. When it does not, the watchdog
 * gives up on it ("abandons" it): it tells the call through the `abandon` hook, returns SI_ERR_DEVICE at
 * once, and the call becomes the owner of its context; when the call finally returns, the worker thread runs
 * `reclaim`, which releases what the call owned. Nothing here knows what the call does.
 *
 * Ownership: ctx (and everything the call reads or writes) belongs to the caller while the call may still
 * return in time, and to the abandoned call after the watchdog gave up. A caller whose call was abandoned must
 * not touch ctx again. Whatever an abandoned call can reach must therefore be owned by ctx or held by a
 * reference that ctx owns: never borrowed from the caller (whose tensors and requests may be freed the moment
 * the caller gets its answer).
 *
 * The abandon hook is where the way a call is isolated shows: in-process, it asks the call to stop soon
 * (a request's cancel); with a device in a helper process, it kills that process, so that the call returns
 * at once (as a lost device) and is reclaimed.
 *
 * A watchdog is one worker thread that runs one call at a time; it is reused for the next call as long as no
 * call is abandoned on it (an abandoned call keeps its worker, which ends after reclaim). Calls on one
 * watchdog must not overlap.
 */
#ifndef SI_WATCHDOG_H
#define SI_WATCHDOG_H

#include "util/util.h"

typedef struct si_wd_ops {
    /* The call. Runs on the worker thread; its failure message is carried back to the caller. */
    si_result (*run)(void *ctx);
    /* (optional) The watchdog gave up on the call. Runs on the caller's thread while the call cannot complete
     * (what it uses is still alive), so it must not block: ask the call to return soon, or end it. */
    void (*abandon)(void *ctx);
    /* An abandoned call returned with status st: release ctx and what it owns. Runs on the worker thread. */
    void (*reclaim)(void *ctx, si_result st);
} si_wd_ops;

typedef struct si_watchdog si_watchdog;

/* Run ops->run(ctx) on *w (a new worker when *w is NULL; *w is then set, to be reused and freed with
 * si_watchdog_free) and wait at most timeout_ms (> 0). The call's status (its message restored on this
 * thread) when it returned in time. Otherwise: ops->abandon(ctx), *abandoned = true, *w = NULL (the worker
 * went with the call), and SI_ERR_DEVICE "WHAT did not return within T ms (abandoned)". When no worker thread
 * can be started, the call runs here, without a deadline. The call runs under the caller's memory budget
 * (si_budget_current, util.h): what it allocates on the worker is charged as if the caller made it. The
 * budget must outlive an abandoned call (the caller's compiled model does: the call holds a reference). */
si_result si_watchdog_call(si_watchdog **w, const si_wd_ops *ops, void *ctx, int timeout_ms, const char *what,
                           bool *abandoned);
/* Let the (idle) worker end. NULL is a no-op. */
void si_watchdog_free(si_watchdog *w);

#endif
