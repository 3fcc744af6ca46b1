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

/* A growing string; oom is set (and later writes ignored) when an allocation fails. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;
void sb_put(sbuf *b, const char *fmt, ...) SI_PRINTF(2, 3);
/* s as a JSON string literal, quotes included. */
void sb_str(sbuf *b, const char *s);

bool parse_long(const char *s, long lo, long hi, long *out);
int parse_onoff(const char *s); /* 1 on, 0 off, -1 neither */

/* Constant folding limits (bytes of output per folded node). */
#define SI_FOLD_AT_LOAD ((size_t)1 << 20)
#define SI_FOLD_AT_COMPILE ((size_t)2 << 30)

#endif
