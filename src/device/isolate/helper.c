/*
 * helper.c — the helper process of an isolated device: finding the worker program, starting it, its death
 * and its end (see helper.h and isolate.h).
 */
#include "device/isolate/helper.h"
#include "device/faulty/faulty.h"
#include "device/isolate/isolate.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/thread.h"

extern char **environ;

#ifndef SI_WORKER_NAME
#define SI_WORKER_NAME "safeinfer-worker"
#endif

struct si_helper {
    char device[64];
    char *faults;
    pthread_mutex_t start_mu; /* one start at a time */
    pthread_mutex_t mu;       /* the state below */
    pthread_cond_t cv;        /* a reaping ends */
    uint64_t inc;             /* the latest incarnation (0: never started) */
    bool alive;               /* inc runs, as far as is known */
    bool reaping;             /* a thread is collecting inc's exit status */
    pid_t pid;                /* inc's process, while alive or reaping */
    char death[512];          /* how inc ended, once it has */
    char kill_why[128];       /* why inc was killed by us ("" when it was not) */
    atomic_bool kill_now;     /* a kill was asked for while reaping: the reaper does it */
    pthread_mutex_t ctl_mu;   /* writes on the control socket */
    int ctl;                  /* under ctl_mu: the control socket of ctl_inc, or -1 */
    uint64_t ctl_inc;
    _Atomic int64_t calls[SI_FAULT_STAGES];
    atomic_bool fault_lost;
    atomic_int busy;          /* calls waiting on the helper */
};

static atomic_int g_last_stop_status = -1;

int si_isolate_last_stop_status(void) { return atomic_load(&g_last_stop_status); }

// --- the worker program ---------------------------------------------------------------------------------

static bool executable(const char *p) { return access(p, X_OK) == 0; }

/* Append "dir/rel/name" to the candidates when it fits. */
static void candidate(char (*cand)[PATH_MAX], int *n, const char *dir, const char *rel) {
    if (*n >= 8 || !dir || !*dir) return;
    int k = snprintf(cand[*n], PATH_MAX, "%s%s%s/%s", dir, rel && *rel ? "/" : "", rel ? rel : "", SI_WORKER_NAME);
    if (k > 0 && k < PATH_MAX) (*n)++;
}

si_result si_isolate_worker_path(char *buf, size_t n) {
    const char *env = getenv("SAFEINFER_WORKER");
    if (env && *env) {
        if (!executable(env))
            return si_err(SI_ERR_UNSUPPORTED, "SAFEINFER_WORKER=%s is not an executable file", env);
        snprintf(buf, n, "%s", env);
        return SI_OK;
    }
    char cand[8][PATH_MAX];
    int nc = 0;
    char dir[PATH_MAX];
    /* next to the library: dladdr names the shared library, or the program a static library is linked into */
    Dl_info info;
    if (dladdr((void *)(uintptr_t)si_isolate_worker_path, &info) && info.dli_fname && realpath(info.dli_fname, dir)) {
        char *d = dirname(dir);
        candidate(cand, &nc, d, NULL);
#ifdef SI_WORKER_LIBEXEC_REL
        candidate(cand, &nc, d, SI_WORKER_LIBEXEC_REL);
#endif
    }
    ssize_t k = readlink("/proc/self/exe", dir, sizeof dir - 1); /* the program (a static library is in it) */
    if (k > 0) {
        dir[k] = 0;
        char *d = dirname(dir);
        candidate(cand, &nc, d, NULL);
#ifdef SI_WORKER_LIBEXEC_REL
        candidate(cand, &nc, d, SI_WORKER_LIBEXEC_REL); /* bin/../libexec beside lib/../libexec */
#endif
    }
#ifdef SI_WORKER_INSTALL_DIR
    candidate(cand, &nc, SI_WORKER_INSTALL_DIR, NULL);
#endif
#ifdef SI_WORKER_BUILD_DIR
    candidate(cand, &nc, SI_WORKER_BUILD_DIR, NULL);
#endif
    for (int i = 0; i < nc; i++)
        if (executable(cand[i])) {
            snprintf(buf, n, "%s", cand[i]);
            return SI_OK;
        }
    char looked[2048];
    size_t o = 0;
    looked[0] = 0;
    for (int i = 0; i < nc && o < sizeof looked; i++) o += (size_t)snprintf(looked + o, sizeof looked - o, "%s%s", i ? ", " : "", cand[i]);
    return si_err(SI_ERR_UNSUPPORTED, "no %s program found (looked at: %s; set SAFEINFER_WORKER to its path)", SI_WORKER_NAME,
                  nc ? looked : "nowhere");
}

// --- life and death ------------------------------------------------------------------------------------

si_result si_helper_status(uint32_t s) { return s <= SI_ERR_DEVICE_LOST ? (si_result)s : SI_ERR_INTERNAL; }

si_result si_helper_new(const char *name, const char *faults, si_helper **out) {
    *out = NULL;
    si_helper *h = si_calloc(1, sizeof *h);
    if (!h) return si_err(SI_ERR_NO_MEM, "out of memory");
    snprintf(h->device, sizeof h->device, "%s", name);
    if (faults && *faults && !(h->faults = si_strdup(faults))) { si_free(h); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    pthread_mutex_init(&h->start_mu, NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->ctl_mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->ctl = -1;
    atomic_init(&h->kill_now, false);
    atomic_init(&h->fault_lost, false);
    atomic_init(&h->busy, 0);
    for (int i = 0; i < SI_FAULT_STAGES; i++) atomic_init(&h->calls[i], 0);
    *out = h;
    return SI_OK;
}

static void describe_status(char *buf, size_t n, int status, bool known, const char *kill_why) {
    if (!known) snprintf(buf, n, "it ended (its exit status was collected elsewhere: is SIGCHLD ignored?)");
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && kill_why[0])
        snprintf(buf, n, "killed (SIGKILL) by safeinfer: %s", kill_why);
    else if (WIFSIGNALED(status))
        snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status))
        snprintf(buf, n, "it exited with status %d", WEXITSTATUS(status));
    else snprintf(buf, n, "it ended (wait status %d)", status);
}

/* Wait for pid to end, at most grace_ms (or until kill_now), then SIGKILL it and wait. *known: the status
 * is pid's (false when somebody else reaped it). Returns true when it ended by itself. */
static bool reap(si_helper *h, pid_t pid, int grace_ms, int *status, bool *known) {
    double until = si_mono_ms() + grace_ms;
    *known = false;
    *status = 0;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid) { *known = true; return true; }
        if (r < 0 && errno != EINTR) return true; /* ECHILD: not ours any more */
        if (atomic_load(&h->kill_now) || si_mono_ms() >= until) break;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL); /* still ours: not reaped yet */
    for (;;) {
        pid_t r = waitpid(pid, status, 0);
        if (r == pid) { *known = true; return false; }
        if (r < 0 && errno != EINTR) return false;
    }
}

static void close_ctl(si_helper *h, uint64_t inc) {
    pthread_mutex_lock(&h->ctl_mu);
    if (h->ctl_inc == inc && h->ctl >= 0) {
        close(h->ctl);
        h->ctl = -1;
    }
    pthread_mutex_unlock(&h->ctl_mu);
}

/* Mark incarnation inc dead, reaping it (the first caller does; the others wait for it). With h->mu held
 * on entry and on return. */
static void reap_locked(si_helper *h, uint64_t inc, int grace_ms, bool *by_itself, int *status_out) {
    if (by_itself) *by_itself = false;
    if (status_out) *status_out = -1;
    if (inc != h->inc) return;
    if (h->reaping) {
        while (h->reaping && h->inc == inc) pthread_cond_wait(&h->cv, &h->mu);
        return;
    }
    if (!h->alive) return;
    h->reaping = true;
    pid_t pid = h->pid;
    pthread_mutex_unlock(&h->mu);
    int status;
    bool known, itself = reap(h, pid, grace_ms, &status, &known);
    close_ctl(h, inc);
    pthread_mutex_lock(&h->mu);
    char how[256];
    describe_status(how, sizeof how, status, known, h->kill_why);
    snprintf(h->death, sizeof h->death, "the helper process (pid %d) %s%s", (int)pid,
             known && WIFSIGNALED(status) ? "died: " : "ended: ", how);
    h->alive = false;
    h->reaping = false;
    h->pid = 0;
    atomic_store(&h->kill_now, false);
    pthread_cond_broadcast(&h->cv);
    if (by_itself) *by_itself = itself;
    if (status_out) *status_out = known ? status : -1;
}

si_result si_helper_lost(si_helper *h, uint64_t inc, const char *during) {
    char death[512];
    pthread_mutex_lock(&h->mu);
    reap_locked(h, inc, 500, NULL, NULL); /* a dying process closes its sockets just before it can be reaped */
    if (inc == h->inc) snprintf(death, sizeof death, "%s", h->death);
    else snprintf(death, sizeof death, "the helper process that made this object has ended (a new one runs now)");
    pthread_mutex_unlock(&h->mu);
    return si_err(SI_ERR_DEVICE_LOST, "%s (isolated): %s%s%s", h->device, death, during ? "; during " : "", during ? during : "");
}

void si_helper_kill(si_helper *h, uint64_t inc, const char *why) {
    pthread_mutex_lock(&h->mu);
    if (inc == h->inc && (h->alive || h->reaping)) {
        if (!h->kill_why[0]) snprintf(h->kill_why, sizeof h->kill_why, "%s", why);
        if (h->reaping) atomic_store(&h->kill_now, true); /* the reaper kills it: it alone knows it is unreaped */
        else kill(h->pid, SIGKILL);
    }
    pthread_mutex_unlock(&h->mu);
}

bool si_helper_alive(si_helper *h, uint64_t inc) {
    pthread_mutex_lock(&h->mu);
    bool a = inc == h->inc && h->alive;
    pthread_mutex_unlock(&h->mu);
    return a;
}

int si_helper_pid(si_helper *h, uint64_t inc) {
    pthread_mutex_lock(&h->mu);
    int p = inc == h->inc && (h->alive || h->reaping) ? (int)h->pid : 0;
    pthread_mutex_unlock(&h->mu);
    return p;
}

void si_helper_busy(si_helper *h, int delta) { atomic_fetch_add(&h->busy, delta); }

void si_helper_kill_busy(si_helper *h, const char *why) {
    if (atomic_load(&h->busy) <= 0) return;
    pthread_mutex_lock(&h->mu);
    uint64_t inc = h->inc;
    pthread_mutex_unlock(&h->mu);
    si_helper_kill(h, inc, why);
}

void si_helper_count(si_helper *h, int stage) {
    if (stage >= 0 && stage < SI_FAULT_STAGES) atomic_fetch_add(&h->calls[stage], 1);
}

void si_helper_note_flags(si_helper *h, uint32_t flags) {
    if (flags & SI_REPLY_FAULT_LOST) atomic_store(&h->fault_lost, true);
}

// --- starting -------------------------------------------------------------------------------------------

/* posix_spawn the worker with `sock` as its fd 3, default signal dispositions, nothing blocked, in a process
 * group of its own (a terminal's Ctrl-C is the program's to handle; the helper follows the program out),
 * stdin from /dev/null and stdout to the program's stderr. */
static si_result spawn(const char *path, int sock, pid_t *pid) {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if (posix_spawn_file_actions_init(&fa)) return si_err(SI_ERR_NO_MEM, "cannot start the helper process: out of memory");
    if (posix_spawnattr_init(&at)) {
        posix_spawn_file_actions_destroy(&fa);
        return si_err(SI_ERR_NO_MEM, "cannot start the helper process: out of memory");
    }
    int fd = sock, tmp = -1;
    if (fd == 3) { /* dup2(3, 3) would leave close-on-exec set */
        tmp = fcntl(sock, F_DUPFD_CLOEXEC, 10);
        fd = tmp;
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    int rc = fd < 0 ? errno : 0;
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, fd, 3);
    /* no terminal input, nothing on the program's stdout (its stderr is the helper's), and none of the
     * program's other files (a descriptor the program left inheritable is not the helper's to keep open) */
    if (!rc) rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc) rc = posix_spawn_file_actions_adddup2(&fa, 2, 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (!rc) rc = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
#endif
    if (!rc) rc = posix_spawnattr_setsigmask(&at, &none);
    if (!rc) rc = posix_spawnattr_setsigdefault(&at, &all);
    if (!rc) rc = posix_spawnattr_setpgroup(&at, 0);
    if (!rc) rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    char *argv[] = {(char *)SI_WORKER_NAME, (char *)"--fd", (char *)"3", NULL};
    if (!rc) rc = posix_spawn(pid, path, &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (tmp >= 0) close(tmp);
    if (rc) return si_err(SI_ERR_DEVICE, "cannot start the helper process %s: %s", path, strerror(rc));
    return SI_OK;
}

/* With start_mu held and no incarnation running: start the next one. */
static si_result start(si_helper *h, si_result *refusal) {
    char path[PATH_MAX];
    si_result st = si_isolate_worker_path(path, sizeof path);
    if (st) return st;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return si_err(SI_ERR_DEVICE, "cannot start the helper process: socketpair: %s", strerror(errno));
    pid_t pid;
    st = spawn(path, sv[1], &pid);
    close(sv[1]);
    if (st) { close(sv[0]); return st; }
    /* HELLO: who we are and what it hosts */
    si_wbuf b = {0};
    wb_u32(&b, SI_WIRE_PROTOCOL);
    wb_str(&b, SI_VERSION_STRING);
    wb_str(&b, h->device);
    wb_str(&b, h->faults);
    for (int i = 0; i < SI_FAULT_STAGES; i++) wb_i64(&b, atomic_load(&h->calls[i]));
    wb_u8(&b, atomic_load(&h->fault_lost));
    st = si_wire_send(sv[0], SI_MSG_HELLO, &b, NULL, 0);
    uint32_t type = 0;
    int fds[SI_WIRE_MAX_FDS], nfds = 0;
    if (!st) st = si_wire_recv(sv[0], &type, &b, fds, &nfds, SI_ISOLATE_START_TIMEOUT_MS);
    si_wire_close_fds(fds, nfds);
    si_result answer = SI_OK;
    char msg[SI_ERR_CAP] = "";
    if (!st) {
        si_rbuf r = rb_make(b.p, b.n);
        answer = si_helper_status(rb_u32(&r));
        (void)rb_u32(&r);
        rb_str_into(&r, msg, sizeof msg);
        if (type != SI_MSG_REPLY || r.bad) st = si_err(SI_ERR_DEVICE_LOST, "the helper process %s answered its start with a malformed message", path);
    }
    wb_free(&b);
    if (!st && answer) st = si_err(answer, "%s", msg);
    if (st) {
        si_error e;
        si_error_save(&e, st);
        close(sv[0]);
        int status;
        bool known;
        reap(h, pid, answer ? SI_ISOLATE_STOP_GRACE_MS : 0, &status, &known);
        if (refusal) *refusal = answer;
        if (!answer) {
            char how[256];
            describe_status(how, sizeof how, status, known, "");
            return si_err(SI_ERR_DEVICE_LOST, "the helper process %s (pid %d) did not start: %s (%s)", path, (int)pid, e.msg, how);
        }
        return si_error_restore(&e);
    }
    pthread_mutex_lock(&h->ctl_mu);
    pthread_mutex_lock(&h->mu);
    h->inc++;
    h->alive = true;
    h->pid = pid;
    h->kill_why[0] = 0;
    h->death[0] = 0;
    h->ctl = sv[0];
    h->ctl_inc = h->inc;
    pthread_mutex_unlock(&h->mu);
    pthread_mutex_unlock(&h->ctl_mu);
    return SI_OK;
}

si_result si_helper_ensure(si_helper *h, uint64_t *inc, si_result *refusal) {
    if (refusal) *refusal = SI_OK;
    pthread_mutex_lock(&h->start_mu);
    pthread_mutex_lock(&h->mu);
    while (h->reaping) pthread_cond_wait(&h->cv, &h->mu); /* a death being recorded: then start anew */
    bool up = h->alive;
    *inc = h->inc;
    pthread_mutex_unlock(&h->mu);
    si_result st = SI_OK;
    if (!up) {
        st = start(h, refusal);
        pthread_mutex_lock(&h->mu);
        *inc = h->inc;
        pthread_mutex_unlock(&h->mu);
    }
    pthread_mutex_unlock(&h->start_mu);
    if (st) return si_err_wrap(st, "%s (isolated)", h->device);
    return SI_OK;
}

si_result si_helper_channel(si_helper *h, uint64_t inc, si_channel_kind kind, uint64_t model_id, int *fd) {
    *fd = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return si_err(SI_ERR_DEVICE, "%s (isolated): socketpair: %s", h->device, strerror(errno));
    si_wbuf b = {0};
    wb_u32(&b, (uint32_t)kind);
    wb_u64(&b, model_id);
    pthread_mutex_lock(&h->ctl_mu);
    si_result st = h->ctl_inc == inc && h->ctl >= 0 ? si_wire_send(h->ctl, SI_MSG_CHANNEL, &b, &sv[1], 1)
                                                      : SI_ERR_DEVICE_LOST;
    pthread_mutex_unlock(&h->ctl_mu);
    wb_free(&b);
    close(sv[1]);
    if (st) {
        close(sv[0]);
        return st == SI_ERR_NO_MEM ? st : si_helper_lost(h, inc, "a new channel");
    }
    *fd = sv[0];
    return SI_OK;
}

void si_helper_free(si_helper *h) {
    if (!h) return;
    pthread_mutex_lock(&h->mu);
    uint64_t inc = h->inc;
    bool up = h->alive;
    pthread_mutex_unlock(&h->mu);
    if (up) {
        close_ctl(h, inc); /* end of file: the helper exits by itself */
        bool itself;
        int status;
        pthread_mutex_lock(&h->mu);
        reap_locked(h, inc, SI_ISOLATE_STOP_GRACE_MS, &itself, &status);
        pthread_mutex_unlock(&h->mu);
        atomic_store(&g_last_stop_status, itself ? status : -1);
    }
    close_ctl(h, inc);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->ctl_mu);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->start_mu);
    si_free(h->faults);
    si_free(h);
}
