/*
 * cpu_arena.c — the activation arenas of CPU requests, lent out per inference from a pool (cpu.h).
 *
 * A request needs its arena (the intermediate buffers of its plan) only while it runs. A partitioned or folded
 * model runs several CPU requests one after the other in each inference (the submodels before and after a block
 * of calls, the calls' shared body): when each owned an arena, the first inference touched every one of them,
 * and on a machine where a first touch costs 10+ us a page (a VM) that was a third of an LLM's first prefill.
 * So an inference borrows an arena from the pool and gives it back when it returns: requests that run one after
 * the other reuse the same memory, already faulted in, and only requests running at the same time hold arenas
 * of their own.
 *
 * Arenas are pooled by key: the memory budget the requests charge (si_budget_current(): one per compiled
 * model), so an arena is only lent to requests of the compiled model whose budget paid for it. An arena that is
 * too small for a borrower grows (see grow: in whole huge pages from 1 MiB on). The pool keeps idle arenas only
 * for keys with live requests: when the last request of a key is freed, its idle arenas are freed too.
 *
 * The device's own kernels take their per-call scratch (attention's rotated queries, a GEMM's packed rows) from
 * the same pool (cpu_scratch_take): memory malloc'd and freed per call was mmapped and faulted in afresh at every
 * call once it passed glibc's mmap threshold.
 */
#include "device/cpu/cpu.h"

#include <pthread.h>

struct cpu_arena {
    void *raw;
    uint8_t *base; /* raw aligned to 64 bytes */
    size_t cap;    /* usable bytes from base */
    const void *key;
    cpu_arena *next; /* in the idle list */
};

typedef struct {
    const void *key;
    int live; /* requests registered with the key */
} key_count;

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static cpu_arena *idle; /* most recently given back first */
static key_count *keys;
static int n_keys, cap_keys;
static si_cpu_arena_stats_t stats; /* under pool_mu, but for idle counts (computed) */

static key_count *find_key(const void *key) {
    for (int i = 0; i < n_keys; i++)
        if (keys[i].key == key) return &keys[i];
    return NULL;
}

static void arena_free(cpu_arena *a) {
    if (!a) return;
    si_free(a->raw);
    si_free(a);
}

si_result cpu_arena_user(const void *key) {
    pthread_mutex_lock(&pool_mu);
    key_count *k = find_key(key);
    if (!k && n_keys == cap_keys) {
        int cap = cap_keys ? 2 * cap_keys : 8;
        key_count *nk = si_realloc(keys, sizeof *nk * (size_t)cap);
        if (nk) keys = nk, cap_keys = cap;
    }
    if (!k && n_keys < cap_keys) {
        k = &keys[n_keys++];
        *k = (key_count){key, 0};
    }
    if (k) k->live++;
    pthread_mutex_unlock(&pool_mu);
    return k ? SI_OK : si_err(SI_ERR_NO_MEM, "CPU: out of memory");
}

void cpu_arena_user_gone(const void *key) {
    cpu_arena *drop = NULL;
    pthread_mutex_lock(&pool_mu);
    key_count *k = find_key(key);
    if (k && --k->live <= 0) {
        *k = keys[--n_keys];
        for (cpu_arena **pp = &idle; *pp;) { /* the key's idle arenas go with its last request */
            cpu_arena *a = *pp;
            if (a->key != key) {
                pp = &a->next;
                continue;
            }
            *pp = a->next;
            a->next = drop;
            drop = a;
        }
    }
    pthread_mutex_unlock(&pool_mu);
    while (drop) {
        cpu_arena *a = drop;
        drop = a->next;
        arena_free(a);
    }
}

/* Grow a to hold need bytes: by half at least, so that a growing request (a decode loop: one position more per
 * step) does not reallocate at every new shape; just need when that much is not to be had. An arena of 1 MiB
 * or more is laid out in whole 2 MiB huge pages (si_mem_huge): its first touch, which si_mem_prefault makes
 * for the part a borrower needs, then maps 2 MiB per fault (a 64-token prefill's 1.2 MiB arena cost ~2.5 ms
 * in small pages on this VM, ~0.3 ms in one huge page). The contents are not kept (an arena is lent empty).
 * *touched: the bytes at the start of the new block already in memory (what realloc copied; 0 for a new block). */
static bool grow(cpu_arena *a, size_t need, size_t *touched) {
    size_t want = a->cap && a->cap + a->cap / 2 > need ? a->cap + a->cap / 2 : need;
    for (int attempt = 0; attempt < 2; attempt++, want = need) {
        const bool huge = want >= SI_HUGE_PAGE / 2 && want <= SIZE_MAX / 2;
        const size_t align = huge ? SI_HUGE_PAGE : 64, size = huge ? (want + SI_HUGE_PAGE - 1) & ~(SI_HUGE_PAGE - 1) : want;
        /* small: realloc (a large block grows by mremap, keeping its touched pages); huge: a new block, aligned */
        void *raw = huge ? si_malloc(size + align) : si_realloc(a->raw, size + align);
        if (!raw) continue; /* a is unchanged */
        if (huge) si_free(a->raw);
        *touched = huge ? 0 : a->cap;
        a->raw = raw;
        a->base = (uint8_t *)(((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1));
        a->cap = size;
        if (huge) si_mem_huge(a->base, size);
        return true;
    }
    return false;
}

si_result cpu_arena_take(const void *key, size_t need, cpu_arena **out) {
    *out = NULL;
    cpu_arena *a = NULL, **best = NULL;
    pthread_mutex_lock(&pool_mu);
    /* the smallest idle arena of the key that fits (so that a kernel's scratch does not take the arena a plan
     * needs next), else the largest one, grown */
    for (cpu_arena **pp = &idle; *pp; pp = &(*pp)->next) {
        if ((*pp)->key != key) continue;
        const bool fits = (*pp)->cap >= need, best_fits = best && (*best)->cap >= need;
        if (!best || (fits && (!best_fits || (*pp)->cap < (*best)->cap)) || (!fits && !best_fits && (*pp)->cap > (*best)->cap))
            best = pp;
    }
    if (best) {
        a = *best;
        *best = a->next;
        a->next = NULL;
    }
    pthread_mutex_unlock(&pool_mu);
    if (!a && !(a = si_calloc(1, sizeof *a))) return si_err(SI_ERR_NO_MEM, "CPU: out of memory");
    a->key = key;
    const size_t had = a->cap;
    size_t touched = had;
    if (had < need && !grow(a, need, &touched)) {
        cpu_arena_give(a); /* unchanged: still good for smaller plans */
        return si_err(SI_ERR_NO_MEM, "CPU: out of memory for a %zu-byte arena", need);
    }
    if (a->cap > had) si_mem_prefault(a->base + touched, need - touched); /* the part the borrower needs, not in memory yet */
    pthread_mutex_lock(&pool_mu);
    stats.lent++;
    stats.made += had == 0 && a->cap > 0;
    stats.grown += had > 0 && a->cap > had;
    pthread_mutex_unlock(&pool_mu);
    *out = a;
    return SI_OK;
}

void cpu_arena_give(cpu_arena *a) {
    if (!a) return;
    pthread_mutex_lock(&pool_mu);
    bool keep = find_key(a->key) != NULL;
    if (keep) {
        a->next = idle;
        idle = a;
    }
    pthread_mutex_unlock(&pool_mu);
    if (!keep) arena_free(a);
}

uint8_t *cpu_arena_base(const cpu_arena *a) { return a->base; }

void *cpu_scratch_take_key(const void *key, size_t n, cpu_arena **hold) {
    *hold = NULL;
    if (cpu_arena_take(key, n ? n : 1, hold)) {
        si_err_clear();
        return NULL;
    }
    return (*hold)->base;
}

void *cpu_scratch_take(size_t n, cpu_arena **hold) { return cpu_scratch_take_key(si_budget_current(), n, hold); }

void si_cpu_arena_stats(si_cpu_arena_stats_t *st) {
    pthread_mutex_lock(&pool_mu);
    *st = stats;
    st->idle = 0;
    st->idle_bytes = 0;
    for (const cpu_arena *a = idle; a; a = a->next) st->idle++, st->idle_bytes += a->cap;
    pthread_mutex_unlock(&pool_mu);
}
