/*
 * cpu_stats.h — for tests and reports (no oneDNN needed to include it): what a CPU compiled model has planned and
 * packed.
 */
#ifndef SI_CPU_STATS_H
#define SI_CPU_STATS_H

#include "device/device.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* plans_built counts every plan made (the compile-time ones too), plans_evicted those the cache freed,
 * plans_cached the plans kept for run-time shapes and plans_bound those of them a request is bound to;
 * weight_packs counts the entries of the model's store (each one packing or conversion of weights, made once per
 * compiled model and shared by its plans), store_bytes their memory. */
typedef struct si_cpu_plan_stats_t {
    int64_t plans_built, plans_evicted;
    int plans_cached, plans_bound;
    int64_t weight_packs;
    int store_entries;
    size_t store_bytes;
    int64_t pd_made, pd_reused; /* oneDNN primitive descriptors created, and clones of ones kept from earlier plans */
} si_cpu_plan_stats_t;

/* The counts of CPU compiled model m; -1 when m is not one. */
int si_cpu_plan_stats(const si_cmodel *m, si_cpu_plan_stats_t *st);

/* Whether oneDNN's int8 convolutions and matmuls compute exactly on this CPU whatever the weights: with VNNI
 * (vpdpbusd) they accumulate u8 x s8 products in int32; without it they pair products in int16 with saturation
 * (vpmaddubsw) and can be wrong by thousands of units (oneDNN's "nuances of int8 computations"), so there the CPU
 * device uses them only for 7-bit weights (cpu_quant.c). SI_CPU_NO_VNNI=1 in the environment says no on any CPU
 * (tests of the fallback). */
bool si_cpu_int8_exact(void);

/* The process's pool of activation arenas (cpu_arena.c): arenas allocated, grown, lent to an inference or a
 * kernel's scratch, and those idle now with their bytes. */
typedef struct si_cpu_arena_stats_t {
    int64_t made, grown, lent;
    int idle;
    size_t idle_bytes;
} si_cpu_arena_stats_t;
void si_cpu_arena_stats(si_cpu_arena_stats_t *st);

#endif
