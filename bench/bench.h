/*
 * bench.h — the few helpers the benchmark programs in this folder share: a monotonic clock in milliseconds, a
 * comparison for qsort over doubles (medians), and die(): the program's name, what failed and the library's
 * last message on stderr, then exit 1. Define BENCH_NAME (the program's name) before including it.
 */
#ifndef SI_BENCH_H
#define SI_BENCH_H

#include "safeinfer.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static inline int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#ifdef BENCH_NAME
static inline void die(const char *what) {
    fprintf(stderr, BENCH_NAME ": %s: %s\n", what, si_last_error());
    exit(1);
}
#endif

#endif
