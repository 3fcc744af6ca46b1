/*
 * alloc.c — the single allocation hook. Every allocation of the library goes through here so that tests can
 * make the Nth allocation fail (si_alloc_fail_after) and check that each failure is reported cleanly.
 */
#include "util/util.h"

#include <stdatomic.h>
#include <stdlib.h>

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

void *si_malloc(size_t n) {
    if (should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *si_calloc(size_t n, size_t size) {
    if (should_fail()) return NULL;
    if (n == 0 || size == 0) return calloc(1, 1);
    return calloc(n, size);
}

void *si_realloc(void *p, size_t n) {
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void si_free(void *p) { free(p); }

char *si_strdup(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = si_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}
