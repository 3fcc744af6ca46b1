/*
 * sbuf.c — a growing string buffer for the texts the API layer builds (report, partition descriptions).
 */
#include "api/internal.h"

#include <stdarg.h>
#include <stdio.h>

void sb_put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if ((size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        size_t cap = b->cap * 2 + (size_t)k + 64;
        char *np = si_realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
}

void sb_str(sbuf *b, const char *s) {
    sb_put(b, "\"");
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') sb_put(b, "\\%c", ch);
        else if (ch < 0x20) sb_put(b, "\\u%04x", ch);
        else sb_put(b, "%c", ch);
    }
    sb_put(b, "\"");
}

