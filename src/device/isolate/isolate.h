/*
 * isolate.h — a device run out of process (compile property isolate=DEVICE[,DEVICE...]).
 *
 * The isolated device is a device-vtable proxy (si_device_i): its supports_op, compile, requests and infers
 * are carried to a helper process, `safeinfer-worker` (built from the same sources), that hosts the real
 * device and nothing else. The layers above see an ordinary device; when the helper dies (abort, segfault,
 * killed) every call on it fails with SI_ERR_DEVICE_LOST, which the fail-safe layer handles as it handles
 * any lost device (quarantine, failover, the inference re-run on the next device). A request's cancel (what
 * the watchdog calls when it gives up on an inference) kills the helper: the call returns at once, lost.
 *
 * What crosses, and how:
 *   commands    stream sockets: one control socket per helper, one channel per compiled model and per
 *               request (each served by its own thread in the helper, so requests on different threads run
 *               at the same time, as they do in-process)
 *   graphs      a compact binary form of si_graph (codec.c), constants by reference into shared memory
 *   constants   memfd segments written once per compiled model (si_compile), shared by every submodel
 *               compile, sealed read-only; the helper maps them
 *   tensors     one memfd arena per request: the inputs, then two slots of outputs (a failed or interrupted
 *               inference never touches the outputs the request shows); sized from the ports and grown
 *               when shapes grow
 *
 * supports_op: the parent never asks the real device anything. The first supports_op call for a graph sends
 * the whole graph to the helper, which answers for every node at once; the answers are kept per node and
 * checked against a fingerprint of the node (op, opset, the types and shapes of its values, its constants),
 * so a different graph at the same address asks again. When the helper cannot be started or dies while
 * answering, every node is declined (SI_ERR_UNSUPPORTED naming why): the model runs on the other devices.
 *
 * The helper process: started (posix_spawn, never fork without exec) when the proxy is created, restarted by
 * the next compile after it died (a fail-back probe or a recovery round), in a process group of its own.
 * It never outlives the library's process: it exits when its control socket reaches end of file (every
 * socket of a dead process is closed) and checks every second that its parent is still the one that
 * started it (PR_SET_PDEATHSIG would fire when the spawning *thread* ends, which a library cannot allow).
 * Fault injection for an isolated device (faults=OCL.infer=3:crash) happens in the helper; the call counts
 * carry over to a restarted helper, so a spec means the same with and without isolation.
 *
 * Where the worker program is found, in order: $SAFEINFER_WORKER (a path; nothing else is tried when it is
 * set); next to the library (or the program it is linked into) and in <that folder>/<libexec relative to
 * lib>/ (an installed tree); the libexec folder of the configured install prefix; the build tree.
 */
#ifndef SI_ISOLATE_H
#define SI_ISOLATE_H

#include "device/device.h"

/* How long the helper may take to start (open its device) or to answer which ops it supports. */
#define SI_ISOLATE_START_TIMEOUT_MS 120000
/* How long an orderly stop waits for the helper to exit before it is killed. */
#define SI_ISOLATE_STOP_GRACE_MS 3000

/* A proxy for device `name` ("OCL", "OCL.1", "CPU", "REF") running in a helper process, with the fault spec
 * `faults` (NULL or "" for none; the helper applies the rules that name the device). Starts the helper. When
 * the helper says the device is not there, or dies while opening it, the proxy is still made and declines
 * every node with the reason (as an absent device does). Nothing of the device is touched in this process.
 * Errors: UNSUPPORTED (no worker program found: the message lists where it looked), DEVICE (it cannot be
 * started), INVALID_ARG (a worker program from another build; NULL arguments), NO_MEM. */
si_result si_isolate_create(const char *name, const char *faults, si_device **out);
/* Stop the helper (an orderly exit, SI_ISOLATE_STOP_GRACE_MS, then SIGKILL), reap it and release the shared
 * memory. Every compiled model made through d must have been freed. NULL or another device: no-op. */
void si_isolate_free(si_device *d);
/* si_compiled_free: when a call is still waiting on the helper (a compile ahead, a call the watchdog gave
 * up on), kill the helper so that it returns now and lets go of the compiled model. No-op otherwise. */
void si_isolate_abort_calls(si_device *d);
/* Is d an isolated device's proxy? */
bool si_isolate_is(const si_device *d);

/* The worker program that would be started, into buf; SI_ERR_UNSUPPORTED naming every place looked at when
 * there is none. */
si_result si_isolate_worker_path(char *buf, size_t n);

/* For tests: the wait status of the last helper stopped in order by si_isolate_free (0: it exited cleanly,
 * which under a sanitizer also means no leak), or -1 when none has been stopped or it had to be killed. */
int si_isolate_last_stop_status(void);

#endif
