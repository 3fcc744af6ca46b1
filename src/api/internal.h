/*
 * internal.h — what the files of the API layer share: the model and config structs and small parsers.
 */
#ifndef SI_API_INTERNAL_H
#define SI_API_INTERNAL_H

#include "device/device.h"

struct si_model {
    si_graph *g;
};

#define CFG_MAX 32
struct si_config {
    int n;
    char *keys[CFG_MAX];
    char *values[CFG_MAX];
    si_event_fn fn;
    void *user;
};

bool parse_long(const char *s, long lo, long hi, long *out);
int parse_onoff(const char *s); /* 1 on, 0 off, -1 neither */

/* The largest max_memory_mb (MiB): 16 TiB. */
#define SI_MAX_MEMORY_MB (1L << 24)

/* Constant folding limits (bytes of output per folded node). */
#define SI_FOLD_AT_LOAD ((size_t)1 << 20)
#define SI_FOLD_AT_COMPILE ((size_t)2 << 30)

#endif
