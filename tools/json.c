/*
 * json.c — a small JSON reader for the CLI (the library's partition JSON and `run --report` files, which a
 * user may hand over damaged): a tree of values, errors with the byte offset, nesting limited to 64 levels.
 */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct jparser {
    const char *s, *p;
    char *err;
    size_t errn;
} jparser;

static bool jfail(jparser *j, const char *what) {
    if (!*j->err) snprintf(j->err, j->errn, "%s at byte %ld", what, (long)(j->p - j->s));
    return false;
}

static void skip_ws(jparser *j) {
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r') j->p++;
}

/* Append the UTF-8 encoding of code point c. */
static size_t put_utf8(char *o, unsigned c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3f)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3f)); o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f)); o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

static bool hex4(jparser *j, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return jfail(j, "bad \\u escape");
    }
    j->p += 4;
    *out = v;
    return true;
}

/* A string at j->p (after the opening quote has been checked): a new NUL-terminated copy. */
static bool parse_string(jparser *j, char **out) {
    j->p++; /* the quote */
    size_t cap = 16, n = 0;
    char *o = malloc(cap);
    if (!o) return jfail(j, "out of memory");
    for (;;) {
        if (n + 8 > cap) {
            char *no = realloc(o, cap *= 2);
            if (!no) { free(o); return jfail(j, "out of memory"); }
            o = no;
        }
        unsigned char c = (unsigned char)*j->p;
        if (!c) { free(o); return jfail(j, "unterminated string"); }
        if (c < 0x20) { free(o); return jfail(j, "control character in a string"); }
        j->p++;
        if (c == '"') break;
        if (c != '\\') { o[n++] = (char)c; continue; }
        char e = *j->p++;
        switch (e) {
        case '"': o[n++] = '"'; break;
        case '\\': o[n++] = '\\'; break;
        case '/': o[n++] = '/'; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (!hex4(j, &cp)) { free(o); return false; }
            if (cp >= 0xd800 && cp < 0xdc00 && j->p[0] == '\\' && j->p[1] == 'u') { /* a surrogate pair */
                unsigned lo;
                j->p += 2;
                if (!hex4(j, &lo)) { free(o); return false; }
                cp = (lo >= 0xdc00 && lo < 0xe000) ? 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00) : 0xfffd;
            } else if (cp >= 0xd800 && cp < 0xe000) {
                cp = 0xfffd;
            }
            if (!cp) cp = 0xfffd; /* no NUL inside C strings */
            n += put_utf8(o + n, cp);
            break;
        }
        default: free(o); j->p--; return jfail(j, "bad escape in a string");
        }
    }
    o[n] = 0;
    *out = o;
    return true;
}

static bool parse_value(jparser *j, jval *v, int depth);

static bool push(jparser *j, jval *v, int *cap) {
    if (v->n < *cap) return true;
    int nc = *cap ? *cap * 2 : 4;
    jval *ni = realloc(v->items, sizeof *ni * (size_t)nc);
    if (!ni) return jfail(j, "out of memory");
    v->items = ni;
    if (v->type == J_OBJ) {
        char **nk = realloc(v->keys, sizeof *nk * (size_t)nc);
        if (!nk) return jfail(j, "out of memory");
        v->keys = nk;
    }
    *cap = nc;
    return true;
}

static bool parse_container(jparser *j, jval *v, int depth) {
    bool obj = *j->p == '{';
    char close = obj ? '}' : ']';
    v->type = obj ? J_OBJ : J_ARR;
    j->p++;
    int cap = 0;
    skip_ws(j);
    if (*j->p == close) { j->p++; return true; }
    for (;;) {
        if (!push(j, v, &cap)) return false;
        jval *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        if (obj) {
            skip_ws(j);
            if (*j->p != '"') return jfail(j, "expected a key");
            if (!parse_string(j, &v->keys[v->n])) return false;
            skip_ws(j);
            if (*j->p != ':') { free(v->keys[v->n]); return jfail(j, "expected ':'"); }
            j->p++;
        }
        v->n++; /* counted now, so that json_free releases a half-parsed item */
        if (!parse_value(j, item, depth + 1)) return false;
        skip_ws(j);
        if (*j->p == ',') { j->p++; continue; }
        if (*j->p == close) { j->p++; return true; }
        return jfail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool parse_value(jparser *j, jval *v, int depth) {
    if (depth > JSON_MAX_DEPTH) return jfail(j, "nested too deeply");
    skip_ws(j);
    char c = *j->p;
    if (c == '{' || c == '[') return parse_container(j, v, depth);
    if (c == '"') { v->type = J_STR; return parse_string(j, &v->str); }
    if (!strncmp(j->p, "true", 4)) { v->type = J_BOOL; v->num = 1; j->p += 4; return true; }
    if (!strncmp(j->p, "false", 5)) { v->type = J_BOOL; j->p += 5; return true; }
    if (!strncmp(j->p, "null", 4)) { v->type = J_NULL; j->p += 4; return true; }
    if (c == '-' || (c >= '0' && c <= '9')) {
        char *end;
        errno = 0;
        v->num = strtod(j->p, &end);
        if (end == j->p) return jfail(j, "bad number");
        v->type = J_NUM;
        j->p = end;
        return true;
    }
    return jfail(j, c ? "unexpected character" : "unexpected end");
}

static void json_free_items(jval *v) {
    for (int i = 0; i < v->n; i++) {
        json_free_items(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

void json_free(jval *v) {
    if (!v) return;
    json_free_items(v);
    free(v);
}

jval *json_parse(const char *text, char *err, size_t errn) {
    err[0] = 0;
    jparser j = {.s = text, .p = text, .err = err, .errn = errn};
    jval *v = calloc(1, sizeof *v);
    if (!v) { snprintf(err, errn, "out of memory"); return NULL; }
    bool ok = parse_value(&j, v, 0);
    if (ok) {
        skip_ws(&j);
        if (*j.p) ok = jfail(&j, "text after the value");
    }
    if (!ok) { json_free(v); return NULL; }
    return v;
}

const jval *json_get(const jval *obj, const char *key) {
    if (!obj || obj->type != J_OBJ) return NULL;
    for (int i = 0; i < obj->n; i++)
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}

const char *json_str_of(const jval *v, const char *dflt) { return v && v->type == J_STR ? v->str : dflt; }

int json_int_of(const jval *v, int dflt) {
    return v && v->type == J_NUM && v->num >= -2147483648.0 && v->num <= 2147483647.0 ? (int)v->num : dflt;
}

char *read_text_file(const char *path, char *err, size_t errn) {
    FILE *f = fopen(path, "rb");
    if (!f) { snprintf(err, errn, "cannot open %s: %s", path, strerror(errno)); return NULL; }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = cap > ((size_t)1 << 30) ? NULL : realloc(buf, cap *= 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf) { snprintf(err, errn, "%s: out of memory (or larger than 1 GiB)", path); return NULL; }
    if (bad) { free(buf); snprintf(err, errn, "cannot read %s", path); return NULL; }
    buf[n] = 0;
    if (strlen(buf) != n) { free(buf); snprintf(err, errn, "%s: a NUL byte in the text", path); return NULL; }
    return buf;
}
