/*
 * faulty.c — the fault-injecting decorator device (see faulty.h for the spec grammar and the effects).
 *
 * Three thin wrappers, one per interface: the device (rules, per-stage call counters, the "lost" flag and
 * the hang condition variable), the compiled model (its inner model and whether a compile-stage "nan"
 * poisons it) and the request (its inner request, whether it is poisoned, and a cancel generation that
 * wakes an injected hang). Every call first counts itself, picks the first matching rule and applies its
 * effect; calls that are not faulted go straight to the inner object.
 */
#include "device/faulty/faulty.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

typedef enum { ST_COMPILE, ST_CREATE, ST_INFER, ST_N } fault_stage;
typedef enum { W_ALWAYS, W_NTH, W_FROM, W_PROB } fault_when;
typedef enum { E_NONE, E_ERROR, E_LOST, E_HANG, E_NAN, E_OOM, E_CRASH, E_SEGV, E_N } fault_effect;
_Static_assert(ST_N == SI_FAULT_STAGES, "si_faulty_resume's calls[] has one entry per stage");

static const char *const stage_names[ST_N] = {"compile", "create", "infer"};
static const char *const effect_names[E_N] = {"", "error", "lost", "hang", "nan", "oom", "crash", "segv"};

typedef struct fault_rule {
    char *device;        /* owned in a spec; NULL in a wrapper's copy */
    fault_stage stage;
    fault_when when;
    int64_t n;           /* W_NTH, W_FROM: the call number (>= 1) */
    double p;            /* W_PROB: probability in [0,1] */
    uint64_t seed;       /* W_PROB */
    fault_effect effect;
} fault_rule;

struct si_fault_spec {
    int n;
    fault_rule *rules;
};

// --- the spec parser --------------------------------------------------------------------------------------

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

/* INVALID_ARG "fault spec 'RULE': WHAT". */
static si_result bad_rule(const char *rule, const char *fmt, ...) SI_PRINTF(2, 3);
static si_result bad_rule(const char *rule, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return si_err(SI_ERR_INVALID_ARG, "fault spec '%s': %s", rule, what);
}

/* Decimal digits only, into *v (false on no digits, other characters or overflow). */
static bool parse_u64(const char *s, uint64_t max, uint64_t *v) {
    if (!*s) return false;
    uint64_t x = 0;
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s)) return false;
        unsigned d = (unsigned)(*s - '0');
        if (x > (max - d) / 10) return false;
        x = x * 10 + d;
    }
    *v = x;
    return true;
}

/* WHEN into r; on failure *why gets a detail to append to the message. */
static bool parse_when(char *w, fault_rule *r, const char **why) {
    *why = "";
    if (!strcasecmp(w, "always")) {
        r->when = W_ALWAYS;
        return true;
    }
    if (isdigit((unsigned char)w[0])) {
        size_t len = strlen(w);
        bool from = w[len - 1] == '+';
        if (from) w[len - 1] = 0;
        uint64_t n;
        bool ok = parse_u64(w, INT64_MAX, &n);
        if (from) w[len - 1] = '+';
        if (!ok) return false;
        if (n == 0) { *why = "; calls count from 1"; return false; }
        r->when = from ? W_FROM : W_NTH;
        r->n = (int64_t)n;
        return true;
    }
    if (w[0] != 'p' && w[0] != 'P') return false;
    char *x = w + 1, *at = strchr(x, '@');
    if (at) *at = 0;
    int digits = 0, dots = 0;
    for (const char *c = x; *c; c++) {
        if (isdigit((unsigned char)*c)) digits++;
        else if (*c == '.') dots++;
        else dots = 99;
    }
    double p = digits && dots <= 1 ? strtod(x, NULL) : -1;
    uint64_t seed = 0;
    bool seed_ok = !at || parse_u64(at + 1, UINT64_MAX, &seed);
    if (at) *at = '@';
    if (!(p >= 0 && p <= 1)) { *why = "; X must be a number in [0,1]"; return false; }
    if (!seed_ok) { *why = "; SEED must be a non-negative integer"; return false; }
    r->when = W_PROB;
    r->p = p;
    r->seed = seed;
    return true;
}

/* One rule: `rule` is a trimmed, writable copy (cut in place), `quoted` the same text for messages. */
static si_result parse_rule(char *rule, const char *quoted, fault_rule *r) {
    char *eq = strchr(rule, '=');
    if (!eq) return bad_rule(quoted, "missing '=' (expected DEVICE.STAGE=WHEN[:EFFECT])");
    *eq = 0;
    char *dot = strrchr(rule, '.');
    if (!dot) return bad_rule(quoted, "missing '.' between DEVICE and STAGE (expected DEVICE.STAGE=WHEN[:EFFECT])");
    *dot = 0;
    char *dev = trim(rule), *stage = trim(dot + 1), *when = eq + 1, *effect = NULL;
    char *colon = strchr(when, ':');
    if (colon) {
        *colon = 0;
        effect = trim(colon + 1);
    }
    when = trim(when);

    if (!*dev) return bad_rule(quoted, "empty DEVICE before '.%s'", stage);
    for (const char *c = dev; *c; c++)
        if (isspace((unsigned char)*c) || *c == ':')
            return bad_rule(quoted, "bad DEVICE '%s' (a device name such as OCL, CPU, REF or OCL.1)", dev);
    int st = -1;
    for (int i = 0; i < ST_N; i++)
        if (!strcasecmp(stage, stage_names[i])) st = i;
    if (st < 0) return bad_rule(quoted, "unknown STAGE '%s' (expected compile, create or infer)", stage);
    r->stage = (fault_stage)st;
    const char *why;
    if (!parse_when(when, r, &why))
        return bad_rule(quoted, "bad WHEN '%s' (expected always, N, N+ or pX[@SEED]%s)", when, why);
    r->effect = E_ERROR;
    if (effect) {
        int e = -1;
        for (int i = E_ERROR; i < E_N; i++)
            if (!strcasecmp(effect, effect_names[i])) e = i;
        if (e < 0) return bad_rule(quoted, "unknown EFFECT '%s' (expected error, lost, hang, nan, oom, crash or segv)", effect);
        r->effect = (fault_effect)e;
    }
    if (!(r->device = si_strdup(dev))) return si_err(SI_ERR_NO_MEM, "out of memory parsing a fault spec");
    return SI_OK;
}

void si_fault_spec_free(si_fault_spec *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) si_free(s->rules[i].device);
    si_free(s->rules);
    si_free(s);
}

si_result si_fault_spec_parse(const char *spec, si_fault_spec **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_fault_spec_parse: out is NULL");
    *out = NULL;
    if (!spec) spec = "";
    size_t len = strlen(spec);
    si_fault_spec *s = si_calloc(1, sizeof *s);
    char *buf = si_malloc(len + 1), *quoted = si_malloc(len + 1);
    size_t cap = 1;
    for (const char *c = spec; *c; c++) cap += *c == ',';
    if (s) s->rules = si_calloc(cap, sizeof(fault_rule));
    if (!s || !s->rules || !buf || !quoted) {
        si_free(buf);
        si_free(quoted);
        si_fault_spec_free(s);
        return si_err(SI_ERR_NO_MEM, "out of memory parsing a fault spec");
    }
    memcpy(buf, spec, len + 1);
    si_result st = SI_OK;
    if (*trim(buf)) { /* an empty or blank spec has no rules */
        int idx = 0;
        for (const char *p = spec; !st; idx++) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            memcpy(buf, p, n);
            buf[n] = 0;
            char *rule = trim(buf);
            if (!*rule) {
                st = si_err(SI_ERR_INVALID_ARG, "fault spec '%s': empty rule %d%s", spec, idx + 1,
                            !comma && idx ? " (trailing ',')" : "");
                break;
            }
            strcpy(quoted, rule);
            if ((st = parse_rule(rule, quoted, &s->rules[s->n]))) break;
            s->n++;
            if (!comma) break;
            p = comma + 1;
        }
    }
    si_free(buf);
    si_free(quoted);
    if (st) {
        si_fault_spec_free(s);
        return st;
    }
    *out = s;
    return SI_OK;
}

bool si_fault_spec_mentions(const si_fault_spec *s, const char *device) {
    for (int i = 0; s && device && i < s->n; i++)
        if (!strcmp(s->rules[i].device, device)) return true;
    return false;
}

// --- the wrappers -----------------------------------------------------------------------------------------

typedef struct faulty_dev {
    si_device base;           /* name = inner's, ctx = this */
    si_device *inner;
    fault_rule *rules;        /* this device's rules, in spec order */
    int n_rules;
    _Atomic int64_t calls[ST_N];
    atomic_bool lost;
    char lost_at[64];         /* "infer call 3": written once, under mu, before lost is set */
    pthread_mutex_t mu;       /* with cv: injected hangs wait here */
    pthread_cond_t cv;
    uint64_t release_gen;     /* under mu: bumped by si_faulty_release_hangs */
} faulty_dev;

typedef struct faulty_model {
    si_cmodel base;           /* ports and device copied from inner */
    si_cmodel *inner;
    faulty_dev *dev;
    bool nan;                 /* a compile-stage "nan": every output of every inference is poisoned */
} faulty_model;

typedef struct faulty_req {
    si_ireq base;
    si_ireq *inner;
    faulty_dev *dev;
    bool nan;                 /* a compile- or create-stage "nan" */
    _Atomic uint64_t cancel_gen; /* bumped (under dev->mu) by cancel */
} faulty_req;

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static bool when_matches(const fault_rule *r, int64_t k) {
    switch (r->when) {
    case W_ALWAYS: return true;
    case W_NTH: return k == r->n;
    case W_FROM: return k >= r->n;
    case W_PROB: return (double)(mix64(r->seed ^ mix64((uint64_t)k)) >> 11) * 0x1p-53 < r->p;
    }
    return false;
}

/* Count a call of stage st (*k: its number) and return the effect of the first matching rule, or E_NONE. */
static fault_effect next_call(faulty_dev *d, fault_stage st, int64_t *k) {
    *k = atomic_fetch_add(&d->calls[st], 1) + 1;
    for (int i = 0; i < d->n_rules; i++)
        if (d->rules[i].stage == st && when_matches(&d->rules[i], *k)) return d->rules[i].effect;
    return E_NONE;
}

#define CAP_STR_(x) #x
#define CAP_STR(x) CAP_STR_(x)

/* Block until released, cancelled (r, from cancel generation snap) or the cap passes. */
static si_result hang(faulty_dev *d, fault_stage st, int64_t k, faulty_req *r, uint64_t snap) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += SI_FAULT_HANG_MAX_MS / 1000;
    until.tv_nsec += (long)(SI_FAULT_HANG_MAX_MS % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    const char *why = NULL;
    pthread_mutex_lock(&d->mu);
    uint64_t gen = d->release_gen;
    while (!why) {
        if (d->release_gen != gen) why = "released";
        else if (r && atomic_load(&r->cancel_gen) != snap) why = "cancelled";
        else if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT)
            why = "safety cap of " CAP_STR(SI_FAULT_HANG_MAX_MS) " ms reached";
    }
    pthread_mutex_unlock(&d->mu);
    return si_err(SI_ERR_DEVICE, "%s %s call %lld: injected fault: hang abandoned (%s)", d->base.name, stage_names[st],
                  (long long)k, why);
}

/* The "crash" and "segv" effects: end this process the way a crashing driver does, without a core file. */
static _Noreturn void crash_now(fault_effect e) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    if (e == E_CRASH) abort();
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGSEGV, &dfl, NULL); /* a sanitizer's handler would report and exit instead */
    void *page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page != MAP_FAILED) *(volatile int *)page = 1; /* SIGSEGV: the page has no access */
    raise(SIGSEGV);
    abort();
}

/* Apply effect e to call k of stage st: the status to return, SI_OK to go on (E_NONE, E_NAN). A lost device
 * fails every call. */
static si_result inject(faulty_dev *d, fault_stage st, int64_t k, fault_effect e, faulty_req *r, uint64_t snap) {
    const char *dn = d->base.name, *sn = stage_names[st];
    if (atomic_load(&d->lost))
        return si_err(SI_ERR_DEVICE_LOST, "%s %s call %lld: device lost (injected fault at %s)", dn, sn, (long long)k,
                      d->lost_at);
    switch (e) {
    case E_ERROR: return si_err(SI_ERR_DEVICE, "%s %s call %lld: injected fault", dn, sn, (long long)k);
    case E_LOST:
        pthread_mutex_lock(&d->mu);
        if (!atomic_load(&d->lost)) {
            snprintf(d->lost_at, sizeof d->lost_at, "%s call %lld", sn, (long long)k);
            atomic_store(&d->lost, true);
        }
        pthread_mutex_unlock(&d->mu);
        return si_err(SI_ERR_DEVICE_LOST, "%s %s call %lld: device lost (injected fault)", dn, sn, (long long)k);
    case E_HANG: return hang(d, st, k, r, snap);
    case E_OOM:
        return si_err(SI_ERR_NO_MEM, "%s %s call %lld: out of device memory (injected fault)", dn, sn, (long long)k);
    case E_CRASH:
    case E_SEGV: crash_now(e);
    default: return SI_OK;
    }
}

/* Overwrite every float element of t with NaN. */
static void poison(si_tensor *t) {
    size_t es = si_dtype_size(t->dtype);
    size_t n = t->data && es ? t->nbytes / es : 0;
    for (size_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case SI_F32: ((float *)t->data)[i] = NAN; break;
        case SI_F64: ((double *)t->data)[i] = NAN; break;
        case SI_F16: ((uint16_t *)t->data)[i] = 0x7E00; break;
        case SI_BF16: ((uint16_t *)t->data)[i] = 0x7FC0; break;
        default: return;
        }
    }
}

// --- requests ---------------------------------------------------------------------------------------------

static si_result faulty_set_input(si_ireq *r, int i, si_tensor *t) {
    si_ireq *in = ((faulty_req *)r)->inner;
    return in->iface->set_input(in, i, t);
}

static si_result faulty_get_output(si_ireq *r, int i, si_tensor **t) {
    si_ireq *in = ((faulty_req *)r)->inner;
    return in->iface->get_output(in, i, t);
}

static si_result faulty_infer(si_ireq *r_) {
    faulty_req *r = (faulty_req *)r_;
    uint64_t snap = atomic_load(&r->cancel_gen); /* only a cancel from now on wakes a hang of this call */
    int64_t k;
    fault_effect e = next_call(r->dev, ST_INFER, &k);
    si_result s = inject(r->dev, ST_INFER, k, e, r, snap);
    if (s) return s;
    if ((s = r->inner->iface->infer(r->inner))) return s;
    if (!r->nan && e != E_NAN) return SI_OK;
    for (int i = 0; i < r->base.model->n_outputs; i++) {
        si_tensor *t;
        if ((s = r->inner->iface->get_output(r->inner, i, &t))) return s;
        poison(t);
    }
    return SI_OK;
}

static void faulty_cancel(si_ireq *r_) {
    faulty_req *r = (faulty_req *)r_;
    pthread_mutex_lock(&r->dev->mu);
    atomic_fetch_add(&r->cancel_gen, 1);
    pthread_cond_broadcast(&r->dev->cv);
    pthread_mutex_unlock(&r->dev->mu);
    si_ireq_cancel(r->inner);
}

static void faulty_profile(si_ireq *r_, si_prof *sink) { si_ireq_profile(((faulty_req *)r_)->inner, sink); }

static void faulty_req_free(si_ireq *r_) {
    faulty_req *r = (faulty_req *)r_;
    if (!r) return;
    r->inner->iface->free(r->inner);
    si_free(r);
}

static const si_ireq_i faulty_req_iface = {
    .set_input = faulty_set_input,
    .get_output = faulty_get_output,
    .infer = faulty_infer,
    .free = faulty_req_free,
    .cancel = faulty_cancel,
    .profile = faulty_profile,
};

// --- compiled models --------------------------------------------------------------------------------------

static si_result faulty_create_request(si_cmodel *m_, si_ireq **out) {
    faulty_model *m = (faulty_model *)m_;
    *out = NULL;
    int64_t k;
    fault_effect e = next_call(m->dev, ST_CREATE, &k);
    si_result s = inject(m->dev, ST_CREATE, k, e, NULL, 0);
    if (s) return s;
    faulty_req *r = si_calloc(1, sizeof *r);
    if (!r) return si_err(SI_ERR_NO_MEM, "%s: out of memory creating a request", m->dev->base.name);
    if ((s = m->inner->iface->create_request(m->inner, &r->inner))) {
        si_free(r);
        return s;
    }
    r->base.iface = &faulty_req_iface;
    r->base.model = m_;
    r->dev = m->dev;
    r->nan = m->nan || e == E_NAN;
    *out = &r->base;
    return SI_OK;
}

static void faulty_model_free(si_cmodel *m_) {
    faulty_model *m = (faulty_model *)m_;
    if (!m) return;
    m->inner->iface->free(m->inner);
    si_free(m);
}

static const si_cmodel_i faulty_model_iface = {.create_request = faulty_create_request, .free = faulty_model_free};

// --- the device -------------------------------------------------------------------------------------------

static si_result faulty_supports_op(const si_device *d, const si_graph *g, const si_node *n) {
    si_device *in = ((const faulty_dev *)d->ctx)->inner;
    return in->iface->supports_op(in, g, n);
}

static si_result faulty_compile(si_device *d_, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out) {
    faulty_dev *d = d_->ctx;
    *out = NULL;
    int64_t k;
    fault_effect e = next_call(d, ST_COMPILE, &k);
    si_result s = inject(d, ST_COMPILE, k, e, NULL, 0);
    if (s) return s;
    faulty_model *m = si_calloc(1, sizeof *m);
    if (!m) return si_err(SI_ERR_NO_MEM, "%s: out of memory compiling", d->base.name);
    if ((s = d->inner->iface->compile(d->inner, g, cc, &m->inner))) {
        si_free(m);
        return s;
    }
    m->base = *m->inner;
    m->base.iface = &faulty_model_iface;
    m->dev = d;
    m->nan = e == E_NAN;
    *out = &m->base;
    return SI_OK;
}

static const si_device_i faulty_iface = {
    .api_version = SI_DEVICE_API_VERSION,
    .supports_op = faulty_supports_op,
    .compile = faulty_compile,
};

static faulty_dev *as_faulty(si_device *d) { return d && d->iface == &faulty_iface ? d->ctx : NULL; }

si_result si_faulty_wrap(si_device *inner, const si_fault_spec *spec, si_device **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_faulty_wrap: out is NULL");
    *out = NULL;
    if (!inner || !inner->iface || !inner->name) return si_err(SI_ERR_INVALID_ARG, "si_faulty_wrap: no inner device");
    faulty_dev *d = si_calloc(1, sizeof *d);
    int n = 0;
    for (int i = 0; spec && i < spec->n; i++) n += !strcmp(spec->rules[i].device, inner->name);
    if (d) d->rules = si_calloc((size_t)n + 1, sizeof(fault_rule));
    if (!d || !d->rules) {
        if (d) si_free(d->rules);
        si_free(d);
        return si_err(SI_ERR_NO_MEM, "%s: out of memory wrapping the device for fault injection", inner->name);
    }
    for (int i = 0; spec && i < spec->n; i++)
        if (!strcmp(spec->rules[i].device, inner->name)) {
            d->rules[d->n_rules] = spec->rules[i];
            d->rules[d->n_rules++].device = NULL;
        }
    pthread_condattr_t ca;
    bool ok = !pthread_condattr_init(&ca);
    if (ok) {
        ok = !pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) && !pthread_cond_init(&d->cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (ok && pthread_mutex_init(&d->mu, NULL)) {
        pthread_cond_destroy(&d->cv);
        ok = false;
    }
    if (!ok) {
        si_free(d->rules);
        si_free(d);
        return si_err(SI_ERR_DEVICE, "%s: cannot create the fault wrapper's mutex or condition variable", inner->name);
    }
    for (int st = 0; st < ST_N; st++) atomic_init(&d->calls[st], 0);
    atomic_init(&d->lost, false);
    d->inner = inner;
    d->base.iface = &faulty_iface;
    d->base.name = inner->name;
    d->base.ctx = d;
    *out = &d->base;
    return SI_OK;
}

void si_faulty_free(si_device *d_) {
    faulty_dev *d = as_faulty(d_);
    if (!d) return;
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    si_free(d->rules);
    si_free(d);
}

void si_faulty_release_hangs(si_device *d_) {
    faulty_dev *d = as_faulty(d_);
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    d->release_gen++;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

bool si_faulty_is_lost(si_device *d_) {
    faulty_dev *d = as_faulty(d_);
    return d && atomic_load(&d->lost);
}

void si_faulty_resume(si_device *d_, const int64_t calls[SI_FAULT_STAGES], bool lost) {
    faulty_dev *d = as_faulty(d_);
    if (!d) return;
    for (int st = 0; st < ST_N; st++) atomic_store(&d->calls[st], calls[st] > 0 ? calls[st] : 0);
    if (lost) {
        pthread_mutex_lock(&d->mu);
        snprintf(d->lost_at, sizeof d->lost_at, "an earlier helper process");
        atomic_store(&d->lost, true);
        pthread_mutex_unlock(&d->mu);
    }
}
