/*
 * helper.h — the helper process of an isolated device, as the proxy (proxy.c) sees it: start it, open
 * channels to it, notice its death (and collect its exit status once), kill it, stop it.
 *
 * A helper has incarnations: each start is a new one, numbered from 1. Compiled models and requests remember
 * the incarnation they were made on; once it is dead, every call on them fails with SI_ERR_DEVICE_LOST, and a
 * later compile may start the next incarnation.
 *
 * Locks: `mu` guards the state and is never held across I/O or a wait for the process; `ctl_mu` serializes
 * writes on the control socket. They are never nested.
 */
#ifndef SI_ISOLATE_HELPER_H
#define SI_ISOLATE_HELPER_H

#include "device/isolate/wire.h"

typedef struct si_helper si_helper;

/* A helper for device `name` with fault spec `faults` (copied; NULL for none). Nothing is started yet. */
si_result si_helper_new(const char *name, const char *faults, si_helper **out);
/* Stop the running incarnation (orderly, then SIGKILL after SI_ISOLATE_STOP_GRACE_MS), reap it, free h. */
void si_helper_free(si_helper *h);

/* The running incarnation in *inc, starting one when none runs. SI_ERR_DEVICE_LOST naming why it cannot be
 * started (with the status of the helper's own refusal, e.g. UNSUPPORTED for a device that is not there, in
 * *refusal when refusal is not NULL). */
si_result si_helper_ensure(si_helper *h, uint64_t *inc, si_result *refusal);
/* Is incarnation inc still running (as far as is known)? */
bool si_helper_alive(si_helper *h, uint64_t inc);
/* A new channel of `kind` (for SI_CH_REQUEST: on model `model_id`) to incarnation inc; *fd is this side's end
 * (close-on-exec; the caller closes it). SI_ERR_DEVICE_LOST when the incarnation is gone. */
si_result si_helper_channel(si_helper *h, uint64_t inc, si_channel_kind kind, uint64_t model_id, int *fd);
/* A socket of incarnation inc failed (EOF, reset): the helper died, or is killed now. Collects its exit status
 * once and returns SI_ERR_DEVICE_LOST, "<device> (isolated): the helper process (pid N) died during <during>:
 * <how>". */
si_result si_helper_lost(si_helper *h, uint64_t inc, const char *during);
/* Kill incarnation inc now (SIGKILL), `why` for the message of the calls that fail then. No-op when it is
 * already gone. Never blocks. */
void si_helper_kill(si_helper *h, uint64_t inc, const char *why);

/* A call starts (+1) or stops (-1) waiting on the helper. */
void si_helper_busy(si_helper *h, int delta);
/* Kill the running incarnation when a call is waiting on it (see si_isolate_abort_calls). */
void si_helper_kill_busy(si_helper *h, const char *why);

/* Fault-injection continuity: a call of stage 0 compile, 1 create, 2 infer is about to be sent; the flags of
 * a reply (SI_REPLY_FAULT_LOST). */
void si_helper_count(si_helper *h, int stage);
void si_helper_note_flags(si_helper *h, uint32_t flags);
/* A status read from the helper, checked: a known si_result, else SI_ERR_INTERNAL. */
si_result si_helper_status(uint32_t s);
/* The pid of incarnation inc (0 when gone). */
int si_helper_pid(si_helper *h, uint64_t inc);

#endif
