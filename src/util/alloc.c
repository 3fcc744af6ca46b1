/*
 * alloc.c — the single allocation hook. Every allocation of the library goes through here so that tests can
 * make the Nth allocation fail (si_alloc_fail_after) and check that each failure is reported cleanly, and so
 * that large allocations can be bounded:
 *
 *  - a process-wide cap on one allocation (default: the machine's physical memory; si_mem_set_cap), so that
 *    an absurd size computed from a hostile model is refused instead of being handed to the kernel's
 *    overcommit, where it would end in an OOM kill when touched;
 *  - memory budgets (si_budget, the compile property max_memory_mb): while a thread has entered a budget,
 *    every allocation of at least SI_BIG_ALLOC bytes it makes is charged to that budget, and refused when
 *    the budget's live total would exceed its limit. Charged blocks are remembered in a small table, so that
 *    freeing one (on any thread) gives its bytes back. Smaller allocations are not counted: the budget bounds
 *    the big buffers (initializer copies, folded constants, device plans, tensors), not the bookkeeping.
 */
#include "util/util.h"

#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static atomic_long fail_countdown; /* 0: off; n: the nth allocation from now fails */
static atomic_long fail_every;

void si_alloc_fail_after(long n, long count) {
    atomic_store(&fail_every, count);
    atomic_store(&fail_countdown, n);
}

static bool should_fail(void) {
    long n = atomic_load(&fail_countdown);
    if (n <= 0) return false;
    n = atomic_fetch_sub(&fail_countdown, 1);
    if (n == 1) {
        long every = atomic_load(&fail_every);
        if (every > 1) atomic_store(&fail_countdown, every);
        return true;
    }
    return false;
}

// --- the process cap and budgets ----------------------------------------------------------------------------

static _Atomic size_t mem_cap;            /* 0: not set yet (physical memory) */
static _Thread_local si_budget *cur_budget; /* the budget this thread charges, or NULL */
static bool rc_flush(si_budget *b);

size_t si_mem_cap(void) {
    size_t c = atomic_load(&mem_cap);
    if (c) return c;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    c = pages > 0 && psize > 0 && (uint64_t)pages <= SIZE_MAX / (uint64_t)psize ? (size_t)pages * (size_t)psize
                                                                              : SIZE_MAX / 2;
    size_t zero = 0;
    atomic_compare_exchange_strong(&mem_cap, &zero, c);
    return atomic_load(&mem_cap);
}

void si_mem_set_cap(size_t bytes) { atomic_store(&mem_cap, bytes); }

void si_budget_init(si_budget *b, int64_t limit_bytes) {
    b->limit = limit_bytes > 0 ? limit_bytes : 0;
    atomic_store(&b->used, 0);
    atomic_store(&b->peak, 0);
    atomic_store(&b->rc_lock, 0);
    b->rc_n = 0;
    b->rc_bytes = 0;
}

si_budget *si_budget_enter(si_budget *b) {
    si_budget *prev = cur_budget;
    cur_budget = b;
    return prev;
}

void si_budget_leave(si_budget *prev) { cur_budget = prev; }

si_budget *si_budget_current(void) { return cur_budget; }

static const char *human(char *buf, size_t n, uint64_t bytes) {
    if (bytes >= (uint64_t)1 << 30) snprintf(buf, n, "%.1f GiB", (double)bytes / (double)((uint64_t)1 << 30));
    else if (bytes >= (uint64_t)1 << 20) snprintf(buf, n, "%.1f MiB", (double)bytes / (double)((uint64_t)1 << 20));
    else snprintf(buf, n, "%" PRIu64 " bytes", bytes);
    return buf;
}

static si_result check(size_t n, const char *what, bool count_used) {
    if (n < SI_BIG_ALLOC) return SI_OK;
    char a[32], b[32], c[32];
    size_t cap = si_mem_cap();
    if (n > cap)
        return si_err(SI_ERR_NO_MEM, "%s: %s is more than this process may allocate at once (%s)", what,
                      human(a, sizeof a, n), human(b, sizeof b, cap));
    si_budget *bg = cur_budget;
    if (!bg || !bg->limit) return SI_OK;
    int64_t used = count_used ? atomic_load(&bg->used) : 0;
    if (count_used && (uint64_t)used + n > (uint64_t)bg->limit && rc_flush(bg)) used = atomic_load(&bg->used); /* kept blocks first */
    if ((uint64_t)n > (uint64_t)bg->limit || (uint64_t)used + n > (uint64_t)bg->limit)
        return si_err(SI_ERR_NO_MEM, "%s: %s would exceed the memory budget max_memory_mb=%lld (%s in use)", what,
                      human(a, sizeof a, n), (long long)(bg->limit >> 20), human(c, sizeof c, (uint64_t)used));
    return SI_OK;
}

si_result si_mem_check(size_t n, const char *what) { return check(n, what, true); }
si_result si_mem_fits(size_t n, const char *what) { return check(n, what, false); }

/* The table of blocks charged to a budget: open addressing on the pointer, under one mutex (only big
 * allocations and frees of big blocks come here). */
typedef struct charged {
    void *p; /* NULL: empty; TOMB: deleted */
    size_t n;
    si_budget *b;
} charged;
#define TOMB ((void *)1)
static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static charged *tab;
static size_t tab_cap, tab_used; /* used counts tombstones too */
static atomic_size_t n_charged;

static size_t slot_of(const void *p, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

static bool tab_grow(void) { /* called with tab_mu held */
    size_t cap = tab_cap ? tab_cap * 2 : 256;
    size_t live = atomic_load(&n_charged);
    while (live * 2 >= cap) cap *= 2;
    charged *nt = calloc(cap, sizeof *nt);
    if (!nt) return false;
    for (size_t i = 0; i < tab_cap; i++)
        if (tab[i].p && tab[i].p != TOMB) {
            size_t j = slot_of(tab[i].p, cap);
            while (nt[j].p) j = (j + 1) & (cap - 1);
            nt[j] = tab[i];
        }
    free(tab);
    tab = nt;
    tab_cap = cap;
    tab_used = live;
    return true;
}

static bool tab_put(void *p, size_t n, si_budget *b) {
    pthread_mutex_lock(&tab_mu);
    bool ok = true;
    if ((tab_used + 1) * 2 > tab_cap) ok = tab_grow();
    if (ok) {
        size_t j = slot_of(p, tab_cap);
        while (tab[j].p && tab[j].p != TOMB) j = (j + 1) & (tab_cap - 1);
        if (!tab[j].p) tab_used++;
        tab[j] = (charged){p, n, b};
        atomic_fetch_add(&n_charged, 1);
    }
    pthread_mutex_unlock(&tab_mu);
    return ok;
}

/* Remove p from the table; returns its entry (p NULL when it was not charged). */
static charged tab_take(void *p) {
    charged e = {0};
    pthread_mutex_lock(&tab_mu);
    if (tab_cap) {
        for (size_t j = slot_of(p, tab_cap); tab[j].p; j = (j + 1) & (tab_cap - 1))
            if (tab[j].p == p) {
                e = tab[j];
                tab[j].p = TOMB;
                atomic_fetch_sub(&n_charged, 1);
                break;
            }
    }
    pthread_mutex_unlock(&tab_mu);
    return e;
}

void si_budget_destroy(si_budget *b) {
    if (!b) return;
    rc_flush(b);
    pthread_mutex_lock(&tab_mu);
    for (size_t i = 0; i < tab_cap; i++)
        if (tab[i].p && tab[i].p != TOMB && tab[i].b == b) {
            tab[i].p = TOMB;
            atomic_fetch_sub(&n_charged, 1);
        }
    pthread_mutex_unlock(&tab_mu);
}

static bool reserve(si_budget *b, size_t n) {
    int64_t now = atomic_fetch_add(&b->used, (int64_t)n) + (int64_t)n;
    if (b->limit && now > b->limit) {
        atomic_fetch_sub(&b->used, (int64_t)n);
        if (!rc_flush(b)) return false; /* the blocks kept for reuse go before the budget says no */
        now = atomic_fetch_add(&b->used, (int64_t)n) + (int64_t)n;
        if (now > b->limit) {
            atomic_fetch_sub(&b->used, (int64_t)n);
            return false;
        }
    }
    int64_t pk = atomic_load(&b->peak);
    while (now > pk && !atomic_compare_exchange_weak(&b->peak, &pk, now)) {}
    return true;
}

/* Was p (from malloc) charged? Cheap test first: only blocks of at least SI_BIG_ALLOC can be. */
static charged take_if_charged(void *p) {
    charged none = {0};
    if (!p || atomic_load(&n_charged) == 0 || malloc_usable_size(p) < SI_BIG_ALLOC) return none;
    return tab_take(p);
}

static void *big_alloc(size_t n, bool zero) {
    if (n > si_mem_cap()) return NULL;
    si_budget *b = cur_budget;
    if (!b || !b->limit) return zero ? calloc(1, n) : malloc(n); /* no limit: nothing to count */
    if (!reserve(b, n)) return NULL;
    void *p = zero ? calloc(1, n) : malloc(n);
    if (!p || !tab_put(p, n, b)) atomic_fetch_sub(&b->used, (int64_t)n); /* not charged after all */
    return p;
}

void *si_malloc(size_t n) {
    if (should_fail()) return NULL;
    if (n >= SI_BIG_ALLOC) return big_alloc(n, false);
    return malloc(n ? n : 1);
}

void *si_calloc(size_t n, size_t size) {
    if (should_fail()) return NULL;
    if (n == 0 || size == 0) return calloc(1, 1);
    if (n > SIZE_MAX / size) return NULL;
    if (n * size >= SI_BIG_ALLOC) return big_alloc(n * size, true);
    return calloc(n, size);
}

void *si_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    if (!p) return n >= SI_BIG_ALLOC ? big_alloc(n, false) : malloc(n ? n : 1);
    if (n >= SI_BIG_ALLOC && n > si_mem_cap()) return NULL;
    charged old = take_if_charged(p);
    si_budget *b = old.p ? old.b : (n >= SI_BIG_ALLOC && cur_budget && cur_budget->limit ? cur_budget : NULL);
    size_t was = old.p ? old.n : 0;
    /* charge the growth (or the whole block when it was not charged before) */
    if (b && n > was && !reserve(b, n - was)) {
        if (old.p && !tab_put(p, was, b)) atomic_fetch_sub(&b->used, (int64_t)was);
        return NULL;
    }
    void *np = realloc(p, n ? n : 1);
    if (!np) { /* p is unchanged: back to how it was */
        if (b && n > was) atomic_fetch_sub(&b->used, (int64_t)(n - was));
        if (old.p && !tab_put(p, was, b)) atomic_fetch_sub(&b->used, (int64_t)was);
        return NULL;
    }
    if (b) {
        if (n < was) atomic_fetch_sub(&b->used, (int64_t)(was - n));
        if (n < SI_BIG_ALLOC || !tab_put(np, n, b)) atomic_fetch_sub(&b->used, (int64_t)n); /* no longer charged */
    }
    return np;
}

void si_free(void *p) {
    charged e = take_if_charged(p);
    if (e.p) atomic_fetch_sub(&e.b->used, (int64_t)e.n);
    free(p);
}

// --- recycled tensor blocks (util.h) -------------------------------------------------------------------------

static void rc_lock(si_budget *b) {
    int z = 0;
    while (!atomic_compare_exchange_weak_explicit(&b->rc_lock, &z, 1, memory_order_acquire, memory_order_relaxed)) z = 0;
}

static void rc_unlock(si_budget *b) { atomic_store_explicit(&b->rc_lock, 0, memory_order_release); }

/* Drop b's oldest kept block into *out (NULL when none); called with the lock held. */
static void *rc_pop_oldest(si_budget *b) {
    if (!b->rc_n) return NULL;
    void *p = b->rc_p[0];
    b->rc_bytes -= b->rc_cap[0];
    b->rc_n--;
    memmove(b->rc_p, b->rc_p + 1, sizeof b->rc_p[0] * (size_t)b->rc_n);
    memmove(b->rc_cap, b->rc_cap + 1, sizeof b->rc_cap[0] * (size_t)b->rc_n);
    return p;
}

bool si_budget_keep(void *p, size_t cap) {
    si_budget *b = cur_budget;
    if (!b || !p || cap < SI_PREFAULT_MIN || cap > SI_RECYCLE_MAX_BYTES) return false;
    void *drop[SI_RECYCLE_SLOTS + 1];
    int nd = 0;
    rc_lock(b);
    while (b->rc_n && (b->rc_n == SI_RECYCLE_SLOTS || b->rc_bytes + cap > SI_RECYCLE_MAX_BYTES)) drop[nd++] = rc_pop_oldest(b);
    b->rc_p[b->rc_n] = p;
    b->rc_cap[b->rc_n++] = cap;
    b->rc_bytes += cap;
    rc_unlock(b);
    for (int i = 0; i < nd; i++) si_free(drop[i]);
    return true;
}

void *si_budget_reuse(size_t n, size_t *cap) {
    si_budget *b = cur_budget;
    if (!b || n < SI_PREFAULT_MIN) return NULL;
    void *p = NULL;
    rc_lock(b);
    int best = -1;
    for (int i = 0; i < b->rc_n; i++)
        if (b->rc_cap[i] >= n && b->rc_cap[i] / 2 <= n + 65536 && (best < 0 || b->rc_cap[i] < b->rc_cap[best])) best = i;
    if (best >= 0) {
        p = b->rc_p[best];
        *cap = b->rc_cap[best];
        b->rc_bytes -= b->rc_cap[best];
        b->rc_n--;
        memmove(b->rc_p + best, b->rc_p + best + 1, sizeof b->rc_p[0] * (size_t)(b->rc_n - best));
        memmove(b->rc_cap + best, b->rc_cap + best + 1, sizeof b->rc_cap[0] * (size_t)(b->rc_n - best));
    }
    rc_unlock(b);
    return p;
}

/* Free every block b keeps; true when there was one. */
static bool rc_flush(si_budget *b) {
    bool any = false;
    for (;;) {
        rc_lock(b);
        void *p = rc_pop_oldest(b);
        rc_unlock(b);
        if (!p) return any;
        si_free(p);
        any = true;
    }
}

void si_free_each(void *const *p, size_t n) {
    for (size_t i = 0; i < n; i++) si_free(p[i]);
}

char *si_strdup(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = si_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL, which is ignored */
#endif

void si_mem_prefault(void *p, size_t n) {
    static atomic_int off = -1; /* SI_NO_PREFAULT: for comparisons; first calls may run on several threads */
    int o = atomic_load_explicit(&off, memory_order_relaxed);
    if (o < 0) atomic_store_explicit(&off, o = getenv("SI_NO_PREFAULT") != NULL, memory_order_relaxed);
    if (o || !p || n < SI_PREFAULT_MIN) return;
    const uintptr_t pg = 4096, lo = ((uintptr_t)p + pg - 1) & ~(pg - 1), hi = ((uintptr_t)p + n) & ~(pg - 1);
    const uintptr_t hlo = ((uintptr_t)p + SI_HUGE_PAGE - 1) & ~(uintptr_t)(SI_HUGE_PAGE - 1),
                    hhi = ((uintptr_t)p + n) & ~(uintptr_t)(SI_HUGE_PAGE - 1);
    if (hhi > hlo) si_mem_huge((void *)hlo, hhi - hlo);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE);
}

void si_mem_huge(void *p, size_t n) {
    static atomic_int off = -1; /* SI_NO_HUGEPAGE: for comparisons */
    int o = atomic_load_explicit(&off, memory_order_relaxed);
    if (o < 0) atomic_store_explicit(&off, o = getenv("SI_NO_HUGEPAGE") != NULL, memory_order_relaxed);
    if (o || !p || n < SI_HUGE_PAGE || ((uintptr_t)p & (SI_HUGE_PAGE - 1))) return;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, n & ~(SI_HUGE_PAGE - 1), MADV_HUGEPAGE); /* EINVAL without THP: ignored */
#endif
}
