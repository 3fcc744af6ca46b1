/*
 * prof.c — the per-step profile sink (prof.h): rows in an array, found by an open-addressing hash of their
 * key pointer, under one mutex.
 */
#include "util/prof.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

struct si_prof {
    pthread_mutex_t mu;
    si_prof_row *rows;
    int n, cap;
    int *hash; /* row index + 1, 0 for empty; capacity hcap (a power of two) */
    int hcap;
};

si_result si_prof_create(si_prof **out) {
    *out = NULL;
    si_prof *p = si_calloc(1, sizeof *p);
    if (!p) return si_err(SI_ERR_NO_MEM, "out of memory");
    pthread_mutex_init(&p->mu, NULL);
    *out = p;
    return SI_OK;
}

static void row_free(si_prof_row *r) {
    SI_FREE_ALL(r->nodes, r->ops, r->device, r->kernel);
}

void si_prof_free(si_prof *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) row_free(&p->rows[i]);
    si_free(p->rows);
    si_free(p->hash);
    pthread_mutex_destroy(&p->mu);
    si_free(p);
}

static size_t hkey(const void *k) {
    uint64_t x = (uint64_t)(uintptr_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static bool same(const si_prof_row *r, const void *key, const char *ops, const char *device, const char *kernel) {
    return r->key == key && !strcmp(r->ops, ops) && !strcmp(r->device, device) && !strcmp(r->kernel, kernel);
}

static bool rehash(si_prof *p, int hcap) {
    int *h = si_calloc((size_t)hcap, sizeof(int));
    if (!h) return false;
    for (int i = 0; i < p->n; i++) {
        size_t j = hkey(p->rows[i].key) & (size_t)(hcap - 1);
        while (h[j]) j = (j + 1) & (size_t)(hcap - 1);
        h[j] = i + 1;
    }
    si_free(p->hash);
    p->hash = h;
    p->hcap = hcap;
    return true;
}

si_result si_prof_add(si_prof *p, const void *key, const char *ops, const char *device, const char *kernel, bool reference,
                      char *(*nodes_fn)(void *ctx), void *ctx, int64_t calls, double ms) {
    if (!p) return SI_OK;
    ops = ops ? ops : "";
    device = device ? device : "";
    kernel = kernel ? kernel : "";
    pthread_mutex_lock(&p->mu);
    si_result s = SI_OK;
    if (p->hcap) {
        size_t j = hkey(key) & (size_t)(p->hcap - 1);
        for (; p->hash[j]; j = (j + 1) & (size_t)(p->hcap - 1)) {
            si_prof_row *r = &p->rows[p->hash[j] - 1];
            if (same(r, key, ops, device, kernel)) {
                r->calls += calls;
                r->ms += ms;
                pthread_mutex_unlock(&p->mu);
                return SI_OK;
            }
        }
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 64;
        si_prof_row *nr = si_realloc(p->rows, sizeof *nr * (size_t)cap);
        if (!nr) { s = si_err(SI_ERR_NO_MEM, "out of memory for the profile"); goto out; }
        p->rows = nr;
        p->cap = cap;
    }
    if (2 * (p->n + 1) > p->hcap && !rehash(p, p->hcap ? 2 * p->hcap : 128)) { s = si_err(SI_ERR_NO_MEM, "out of memory for the profile"); goto out; }
    si_prof_row *r = &p->rows[p->n];
    memset(r, 0, sizeof *r);
    r->key = key;
    r->ops = si_strdup(ops);
    r->device = si_strdup(device);
    r->kernel = si_strdup(kernel);
    r->nodes = nodes_fn ? nodes_fn(ctx) : NULL;
    if (!r->nodes) r->nodes = si_strdup("");
    if (!r->ops || !r->device || !r->kernel || !r->nodes) {
        row_free(r);
        s = si_err(SI_ERR_NO_MEM, "out of memory for the profile");
        goto out;
    }
    r->reference = reference;
    r->calls = calls;
    r->ms = ms;
    size_t j = hkey(key) & (size_t)(p->hcap - 1);
    while (p->hash[j]) j = (j + 1) & (size_t)(p->hcap - 1);
    p->hash[j] = ++p->n;
out:
    pthread_mutex_unlock(&p->mu);
    return s;
}

// --- JSON -------------------------------------------------------------------------------------------------

typedef struct pbuf {
    char *p;
    size_t n, cap;
    bool oom;
} pbuf;

static void put(pbuf *b, const char *fmt, ...) SI_PRINTF(2, 3);
static void put(pbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = true; return; }
        if (b->p && (size_t)k < b->cap - b->n) { b->n += (size_t)k; return; }
        size_t cap = b->cap * 2 + (size_t)k + 256;
        char *np = si_realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
}

static void put_str(pbuf *b, const char *s) {
    put(b, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') put(b, "\\%c", ch);
        else if (ch < 0x20) put(b, "\\u%04x", ch);
        else put(b, "%c", ch);
    }
    put(b, "\"");
}

static int by_ms_desc(const void *a, const void *b) {
    double x = (*(const si_prof_row *const *)a)->ms, y = (*(const si_prof_row *const *)b)->ms;
    return (x < y) - (x > y);
}

si_result si_prof_json(si_prof *p, char **out) {
    *out = NULL;
    pbuf b = {0};
    pthread_mutex_lock(&p->mu);
    si_prof_row **ord = si_malloc(sizeof *ord * (size_t)(p->n + 1));
    if (!ord) {
        pthread_mutex_unlock(&p->mu);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    double total = 0, ref = 0;
    for (int i = 0; i < p->n; i++) {
        ord[i] = &p->rows[i];
        total += p->rows[i].ms;
        if (p->rows[i].reference) ref += p->rows[i].ms;
    }
    qsort(ord, (size_t)p->n, sizeof *ord, by_ms_desc);
    put(&b, "{\"total_ms\":%.6g,\"reference_ms\":%.6g,\"steps\":[", total, ref);
    for (int i = 0; i < p->n; i++) {
        const si_prof_row *r = ord[i];
        put(&b, "%s\n {\"nodes\":", i ? "," : "");
        put_str(&b, r->nodes);
        put(&b, ",\"ops\":");
        put_str(&b, r->ops);
        put(&b, ",\"device\":");
        put_str(&b, r->device);
        put(&b, ",\"kernel\":");
        put_str(&b, r->kernel);
        put(&b, ",\"reference\":%s,\"calls\":%lld,\"total_ms\":%.6g,\"mean_ms\":%.6g,\"share\":%.6g}", r->reference ? "true" : "false",
            (long long)r->calls, r->ms, r->calls ? r->ms / (double)r->calls : 0.0, total > 0 ? r->ms / total : 0.0);
    }
    put(&b, "]}\n");
    pthread_mutex_unlock(&p->mu);
    si_free(ord);
    if (b.oom) {
        si_free(b.p);
        return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    *out = b.p;
    return SI_OK;
}
