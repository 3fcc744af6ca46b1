/*
 * internal.h — what the files of the API layer share: the model and config structs and small parsers.
 */
#ifndef SI_API_INTERNAL_H
#define SI_API_INTERNAL_H

#include "device/device.h"
#include "failsafe/failsafe.h"

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

/* A growing string; oom is set (and later writes ignored) when an allocation fails. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;
void sb_put(sbuf *b, const char *fmt, ...) SI_PRINTF(2, 3);
/* s as a JSON string literal, quotes included. */
void sb_str(sbuf *b, const char *s);

/* Decimal digits only, in [lo, hi]. */
bool parse_long(const char *s, long lo, long hi, long *out);
int parse_onoff(const char *s); /* 1 on, 0 off, -1 neither */

/* The largest max_memory_mb (MiB): 16 TiB. */
#define SI_MAX_MEMORY_MB (1L << 24)

/* What si_compile reads from the configuration itself (devices read theirs from the options). Filled from
 * the table of keys in config.c: the value set, else the key's default. */
typedef struct si_cfg_values {
    si_failsafe_policy policy;
    bool strict;
    int max_memory_mb; /* the compiled model's memory budget in MiB (0: none) */
    int loop_max_iterations;
    bool fold; /* repeated blocks become one function body and calls (ir/fold.h) */
    int hfa_tile;     /* attention cut into host flash attention units over tiles of this many keys (0: off) */
    bool moe_experts; /* MoE cut into units run as one model per expert */
} si_cfg_values;
si_result si_cfg_fill(const si_config *cfg, si_cfg_values *out);
/* The device list of cfg, or the default ("AUTO") when unset or cfg is NULL. */
const char *si_config_devices(const si_config *cfg);

/* Constant folding limits (bytes of output per folded node). */
#define SI_FOLD_AT_LOAD ((size_t)1 << 20)
#define SI_FOLD_AT_COMPILE ((size_t)2 << 30)

#endif
