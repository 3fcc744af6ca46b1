/*
 * faulty.h — fault injection: a decorator device that wraps any si_device and makes chosen calls fail, so
 * that the fail-safe layer, the executor and the API can be tested against device failures on demand
 * (like SQLite's test VFS). What fails is given by a fault spec:
 *
 *     SPEC   := RULE (',' RULE)*            an empty spec (or only whitespace) is valid: no rules
 *     RULE   := DEVICE '.' STAGE '=' WHEN [':' EFFECT]
 *     DEVICE := a device name as in the device list ("OCL", "CPU", "REF", "OCL.1"); the rule is split at the
 *               LAST '.' before '=', so names may contain dots
 *     STAGE  := compile | create | infer    (device compile, create_request on a compiled model, request infer)
 *     WHEN   := always | N | N+ | pX[@SEED]  (N >= 1: only the Nth call; N+: the Nth and every later call;
 *               pX: each call with probability X in [0,1], deterministic for SEED (default 0), see below)
 *     EFFECT := error (default) | lost | hang | nan | oom | crash | segv
 * Whitespace around tokens is allowed; STAGE, WHEN and EFFECT keywords are case-insensitive, DEVICE is not.
 *
 * Calls are counted per wrapper and per STAGE, 1-based, with atomic counters shared by every compiled model
 * and request made through the wrapper: "OCL.infer=3" fails the 3rd infer made through this wrapper,
 * whichever request makes it. When several rules name the same stage, the first one (in spec order) whose
 * WHEN matches the call applies.
 *
 * pX@SEED fires at call k when  u(SEED, k) < X,  u(s, k) = (mix64(s ^ mix64(k)) >> 11) * 2^-53, where mix64
 * is the splitmix64 finalizer (x += 0x9E3779B97F4A7C15; x = (x ^ x >> 30) * 0xBF58476D1CE4E5B9;
 * x = (x ^ x >> 27) * 0x94D049BB133111EB; x ^= x >> 31). Which calls fail depends only on the seed and the
 * call numbers, so a run is reproducible whatever the number of threads.
 *
 * EFFECTs (messages start with "<device> <stage> call <k>:"):
 *   error  SI_ERR_DEVICE, "... injected fault". An infer computes nothing.
 *   lost   SI_ERR_DEVICE_LOST, "... device lost (injected fault)"; from then on every compile, create and
 *          infer through the wrapper fails the same way (the device is gone for good: the fail-safe layer
 *          quarantines it instead of retrying). si_faulty_is_lost() tells whether it has happened.
 *          set_input/get_output/cancel/free keep working.
 *   hang   the call blocks (condition variable, no busy wait) until it is abandoned: by the request's cancel
 *          (infer stage), by si_faulty_release_hangs, or after SI_FAULT_HANG_MAX_MS; it then returns
 *          SI_ERR_DEVICE, "... hang abandoned (...)". Only a cancel or release made after the call started
 *          wakes it.
 *   nan    the call succeeds. At compile: every output of every inference through that compiled model is
 *          NaN; at create: every output of that request's inferences; at infer: that inference's outputs.
 *          The inner infer runs, then the float outputs (float32/16/64, bfloat16) of the inner request are
 *          overwritten in place with NaN; other dtypes are untouched.
 *   oom    SI_ERR_NO_MEM, "... out of device memory (injected fault)".
 *   crash  the call aborts (abort(): SIGABRT) inside the device, as a driver that hits an assertion does.
 *   segv   the call makes a real segmentation fault inside the device (a write to a page mapped without
 *          access, with SIGSEGV's default action restored so that no handler turns it into an exit).
 *          Both end the process that runs the device, without a core file: the whole program, unless the
 *          device is isolated (isolate=DEVICE runs it in a helper process, src/device/isolate/), where the
 *          helper dies and the library sees a lost device.
 *
 * Everything else is forwarded unchanged: ports, device name, supports_op (a fault never changes it),
 * set_input, get_output (the caller sees the inner request's stable output tensors), cancel, free.
 */
#ifndef SI_FAULTY_H
#define SI_FAULTY_H

#include "device/device.h"

#include <stdbool.h>

/* Safety cap of an injected hang, in milliseconds. */
#define SI_FAULT_HANG_MAX_MS 30000

typedef struct si_fault_spec si_fault_spec;

/* Parse a fault spec (grammar above). NULL is treated as "". On success the caller owns *out (free with
 * si_fault_spec_free). Errors: SI_ERR_INVALID_ARG with a message that quotes the bad rule and names the bad
 * part, e.g. "fault spec 'OCL.infer=3x': bad WHEN '3x' (expected always, N, N+ or pX[@SEED])"; NO_MEM. */
si_result si_fault_spec_parse(const char *spec, si_fault_spec **out);
/* NULL is a no-op. */
void si_fault_spec_free(si_fault_spec *s);
/* Does the spec have a rule for this device name (exact, case-sensitive)? False for a NULL spec. */
bool si_fault_spec_mentions(const si_fault_spec *s, const char *device);

/* A new device that behaves like `inner` but applies the spec's rules for the device named inner->name (the
 * rules are copied: the spec may be freed right after). The wrapper's name is inner's; a spec that does not
 * mention it gives a pure pass-through. Thread-safe like the inner device. Free with si_faulty_free after
 * every compiled model made through it has been freed. Errors: INVALID_ARG (NULL argument), NO_MEM. */
si_result si_faulty_wrap(si_device *inner, const si_fault_spec *spec, si_device **out);
/* NULL, or a device that is not a fault wrapper, is a no-op. No call may be running through it. */
void si_faulty_free(si_device *d);
/* Wake every call of this wrapper that is hanging now; they return SI_ERR_DEVICE "... hang abandoned". */
void si_faulty_release_hangs(si_device *d);
/* Has a "lost" fault fired on this wrapper (so that every later call fails)? False for other devices. */
bool si_faulty_is_lost(si_device *d);

/* Stages, in the order of si_faulty_resume's calls[]: compile, create, infer. */
#define SI_FAULT_STAGES 3
/* Continue from another wrapper of the same device: its calls so far per stage (the next call of a stage is
 * calls[stage] + 1) and whether a "lost" fault fired on it. An isolated device's helper process that replaces
 * a dead one counts on where the dead one stopped, so a spec means the same with and without isolation.
 * Call it before any call goes through d; no-op for other devices. */
void si_faulty_resume(si_device *d, const int64_t calls[SI_FAULT_STAGES], bool lost);

#endif
