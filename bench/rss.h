/*
 * rss.h — the resident set size of this process in MiB (from /proc/self/statm; 0 where it cannot be read), for
 * the programs that watch memory over many cycles: bench/rss_soak.c and tests/pocl/program_rss.c (plain
 * OpenCL, so this header needs nothing of safeinfer).
 */
#ifndef SI_BENCH_RSS_H
#define SI_BENCH_RSS_H

#include <stdio.h>
#include <unistd.h>

static inline double rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

#endif
