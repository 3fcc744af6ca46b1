/*
 * npy.c — reading and writing NumPy .npy files (si_tensor_read_npy, si_tensor_write_npy).
 *
 * Written from the format description in numpy/lib/format.py:
 *
 *   magic      6 bytes   "\x93NUMPY"
 *   version    2 bytes   major, minor: 1.0, 2.0 or 3.0
 *   header_len 2 bytes (1.0) or 4 bytes (2.0, 3.0), little-endian
 *   header     header_len bytes: a Python dict literal (latin-1 in 1.0/2.0, UTF-8 in 3.0), usually
 *              "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces and ended by
 *              '\n' so that the data starts at a multiple of 64 (16 in old writers)
 *   data       the elements, C order (or Fortran order when fortran_order is True)
 *
 * The header is parsed by hand and strictly: exactly the three keys, in any order, with Python's
 * whitespace, single or double quotes and an optional trailing comma. Nothing read from the file is
 * trusted: lengths and dimensions are checked for overflow and against the file's real size before any
 * allocation, so a malformed file yields SI_ERR_PARSE (or SI_ERR_UNSUPPORTED for a well-formed file that
 * safeinfer cannot represent), never a crash or an absurd allocation.
 */
#include "util/util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Status for a well-formed file that uses a feature safeinfer lacks (big-endian data, Fortran order, an
 * unknown dtype, rank above SI_MAX_DIMS, a future format version). */
#define NPY_UNSUPPORTED SI_ERR_UNSUPPORTED

/* A header longer than this is refused: with at most SI_MAX_DIMS dimensions a real header is < 200 bytes
 * (numpy itself refuses headers over 10000 bytes unless told otherwise). */
#define NPY_MAX_HEADER_LEN (1u << 20)

static const unsigned char npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static bool host_is_le(void) {
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* Reverse the bytes of each `size`-byte element of buf, in place. */
static void swap_elems(unsigned char *buf, size_t n_elems, size_t size) {
    for (size_t i = 0; i < n_elems; i++) {
        unsigned char *e = buf + i * size;
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            unsigned char tmp = e[a];
            e[a] = e[b];
            e[b] = tmp;
        }
    }
}

/* ---- dtype names ----------------------------------------------------------------------------------------- */

typedef struct npy_type {
    char kind; /* 'f', 'i', 'u', 'b' */
    int size;  /* bytes */
    si_dtype dtype;
} npy_type;

static const npy_type npy_types[] = {
    {'f', 4, SI_F32}, {'f', 8, SI_F64}, {'f', 2, SI_F16}, {'i', 1, SI_I8},  {'u', 1, SI_U8},
    {'i', 2, SI_I16}, {'u', 2, SI_U16}, {'i', 4, SI_I32}, {'u', 4, SI_U32}, {'i', 8, SI_I64},
    {'u', 8, SI_U64}, {'b', 1, SI_BOOL},
};

/* ---- the header parser ----------------------------------------------------------------------------------- */

typedef struct hparser {
    const char *path;
    const char *s; /* header text (not NUL-terminated) */
    size_t n;
    size_t pos;
} hparser;

/* The header's character at pos, or -1 at the end. */
static int hp_peek(const hparser *p) { return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1; }

static void hp_skip_ws(hparser *p) {
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
            p->pos++;
        else
            break;
    }
}

/* A printable description of the character at pos, for messages. */
static const char *hp_what(const hparser *p, char *buf, size_t n) {
    int c = hp_peek(p);
    if (c < 0)
        snprintf(buf, n, "end of header");
    else if (c >= 0x20 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", (unsigned)c);
    return buf;
}

static si_result hp_error(const hparser *p, const char *expected) {
    char buf[32];
    return si_err(SI_ERR_PARSE, "%s: malformed .npy header: expected %s at offset %zu, found %s", p->path,
                  expected, p->pos, hp_what(p, buf, sizeof buf));
}

/* White space, the character c, white space. A parse error naming `what` (what was expected) when c is not
 * there. */
static si_result hp_expect(hparser *p, int c, const char *what) {
    hp_skip_ws(p);
    if (hp_peek(p) != c)
        return hp_error(p, what);
    p->pos++;
    hp_skip_ws(p);
    return SI_OK;
}

/* After an item of a tuple or dict: white space, then ',' (taken with the white space after it; *comma = true)
 * or the closer `close` (left for the caller; *comma = false). A parse error naming `what` otherwise. */
static si_result hp_after_item(hparser *p, int close, const char *what, bool *comma) {
    hp_skip_ws(p);
    *comma = hp_peek(p) == ',';
    if (*comma) {
        p->pos++;
        hp_skip_ws(p);
    } else if (hp_peek(p) != close) {
        return hp_error(p, what);
    }
    return SI_OK;
}

/* A quoted Python string ('...' or "..."). *str and *len point into the header (escapes are left as they are:
 * no valid key or dtype name contains one, so an escaped string simply fails to match later). */
static si_result hp_string(hparser *p, const char **str, size_t *len) {
    int q = hp_peek(p);
    if (q != '\'' && q != '"')
        return hp_error(p, "a quoted string");
    size_t start = ++p->pos;
    while (p->pos < p->n && p->s[p->pos] != (char)q) {
        if (p->s[p->pos] == '\\' && p->pos + 1 < p->n)
            p->pos++;
        if (p->s[p->pos] == '\n')
            return hp_error(p, "the end of a string");
        p->pos++;
    }
    if (p->pos >= p->n)
        return hp_error(p, "the end of a string");
    *str = p->s + start;
    *len = p->pos - start;
    p->pos++;
    return SI_OK;
}

static bool hp_word(hparser *p, const char *w) {
    size_t l = strlen(w);
    if (p->n - p->pos < l || memcmp(p->s + p->pos, w, l) != 0)
        return false;
    /* the word must not continue as an identifier ("Truex") */
    if (p->pos + l < p->n) {
        char c = p->s[p->pos + l];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            return false;
    }
    p->pos += l;
    return true;
}

static si_result hp_bool(hparser *p, bool *out) {
    if (hp_word(p, "True"))
        *out = true;
    else if (hp_word(p, "False"))
        *out = false;
    else
        return hp_error(p, "True or False for 'fortran_order'");
    return SI_OK;
}

/* A non-negative decimal integer (a Python int literal; the 'L' suffix of Python 2 era files is allowed). */
static si_result hp_dim(hparser *p, int64_t *out) {
    int c = hp_peek(p);
    if (c == '-')
        return si_err(SI_ERR_PARSE, "%s: malformed .npy header: negative dimension in 'shape' at offset %zu",
                      p->path, p->pos);
    if (c < '0' || c > '9')
        return hp_error(p, "a dimension (a non-negative integer)");
    size_t start = p->pos;
    int64_t v = 0;
    while ((c = hp_peek(p)) >= '0' && c <= '9') {
        int d = c - '0';
        if (v > (INT64_MAX - d) / 10)
            return si_err(SI_ERR_PARSE, "%s: malformed .npy header: dimension at offset %zu is too large",
                          p->path, start);
        v = v * 10 + d;
        p->pos++;
    }
    /* Python 3 forbids leading zeros ("03", but "00" is 0); so does numpy's literal_eval */
    if (p->s[start] == '0' && v != 0) {
        p->pos = start;
        return hp_error(p, "a dimension without leading zeros");
    }
    if (c == 'L' || c == 'l')
        p->pos++;
    c = hp_peek(p);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.')
        return hp_error(p, "',' or ')' after a dimension");
    *out = v;
    return SI_OK;
}

/* A tuple of dimensions: "()", "(3,)", "(2, 3)", "(2, 3,)". "(3)" is the int 3 in Python, not a tuple,
 * and is refused like numpy does. */
static si_result hp_shape(hparser *p, int *ndim, int64_t *dims, int *rank_seen) {
    si_result s = hp_expect(p, '(', "a tuple '(...)' for 'shape'");
    if (s)
        return s;
    int n = 0;
    bool trailing_comma = false;
    while (hp_peek(p) != ')') {
        int64_t d = 0;
        if ((s = hp_dim(p, &d)))
            return s;
        if (n < SI_MAX_DIMS)
            dims[n] = d;
        if (n < INT32_MAX)
            n++;
        if ((s = hp_after_item(p, ')', "',' or ')' in 'shape'", &trailing_comma)))
            return s;
    }
    if (n == 1 && !trailing_comma)
        return si_err(SI_ERR_PARSE, "%s: malformed .npy header: 'shape' is an int in parentheses, not a tuple "
                      "(a 1-d shape is written '(n,)')", p->path);
    p->pos++; /* ')' */
    *rank_seen = n;
    *ndim = SI_MIN(n, SI_MAX_DIMS);
    return SI_OK;
}

typedef struct npy_header {
    const char *descr;
    size_t descr_len;
    bool descr_is_str; /* false: a list (structured dtype) */
    bool fortran;
    int ndim;      /* min(rank, SI_MAX_DIMS) */
    int rank_seen; /* the rank in the file */
    int64_t dims[SI_MAX_DIMS];
} npy_header;

/* Skip a balanced Python list (a structured dtype's descr) without interpreting it. */
static si_result hp_skip_list(hparser *p) {
    int depth = 0;
    do {
        int c = hp_peek(p);
        if (c < 0)
            return hp_error(p, "the end of the 'descr' list");
        if (c == '\'' || c == '"') {
            const char *s;
            size_t l;
            si_result st = hp_string(p, &s, &l);
            if (st)
                return st;
            continue;
        }
        if (c == '[' || c == '(')
            depth++;
        else if (c == ']' || c == ')')
            depth--;
        p->pos++;
    } while (depth > 0);
    return SI_OK;
}

static si_result parse_header(const char *path, const char *text, size_t len, npy_header *h) {
    hparser p = {path, text, len, 0};
    bool have_descr = false, have_fortran = false, have_shape = false;
    bool comma;
    si_result s = hp_expect(&p, '{', "'{' (the header is a Python dict)");
    if (s)
        return s;
    while (hp_peek(&p) != '}') {
        const char *key;
        size_t klen;
        size_t key_pos = p.pos;
        if ((s = hp_string(&p, &key, &klen)))
            return s;
        if ((s = hp_expect(&p, ':', "':' after a key")))
            return s;
        bool *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            seen = &have_descr;
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            seen = &have_fortran;
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            seen = &have_shape;
        } else {
            return si_err(SI_ERR_PARSE,
                          "%s: malformed .npy header: unexpected key '%.*s' at offset %zu (expected 'descr', "
                          "'fortran_order' and 'shape')",
                          path, (int)SI_MIN(klen, 40), key, key_pos);
        }
        if (*seen)
            return si_err(SI_ERR_PARSE, "%s: malformed .npy header: key '%.*s' appears twice", path, (int)klen,
                          key);
        *seen = true;
        if (seen == &have_descr) {
            if (hp_peek(&p) == '[') {
                h->descr_is_str = false;
                h->descr = p.s + p.pos;
                if ((s = hp_skip_list(&p)))
                    return s;
                h->descr_len = (size_t)(p.s + p.pos - h->descr);
            } else {
                h->descr_is_str = true;
                if ((s = hp_string(&p, &h->descr, &h->descr_len)))
                    return s;
            }
        } else if (seen == &have_fortran) {
            if ((s = hp_bool(&p, &h->fortran)))
                return s;
        } else {
            if ((s = hp_shape(&p, &h->ndim, h->dims, &h->rank_seen)))
                return s;
        }
        if ((s = hp_after_item(&p, '}', "',' or '}' in the header dict", &comma)))
            return s;
    }
    p.pos++; /* '}' */
    hp_skip_ws(&p);
    if (p.pos != p.n) {
        /* numpy pads with spaces and ends with '\n'; some writers pad with NULs */
        while (p.pos < p.n && p.s[p.pos] == '\0')
            p.pos++;
        if (p.pos != p.n)
            return hp_error(&p, "only padding after the header dict");
    }
    if (!have_descr || !have_fortran || !have_shape)
        return si_err(SI_ERR_PARSE, "%s: malformed .npy header: missing key '%s'", path,
                      !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return SI_OK;
}

/* Map a descr string to a dtype. *swap is set when the data must be byte-swapped for this host. */
static si_result descr_to_dtype(const char *path, const npy_header *h, const npy_type **type, bool *swap) {
    const char *d = h->descr;
    size_t l = h->descr_len;
    if (!h->descr_is_str)
        return si_err(NPY_UNSUPPORTED, "%s: .npy structured dtype %.*s is not supported", path,
                      (int)SI_MIN(l, 60), d);
    char order = '=';
    size_t i = 0;
    if (l > 0 && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '='))
        order = d[i++];
    char kind = 0;
    int size = 0;
    if (l - i == 1 && d[i] == '?') {
        kind = 'b';
        size = 1;
    } else if (l - i == 2 && d[i + 1] >= '1' && d[i + 1] <= '9') {
        kind = d[i];
        size = d[i + 1] - '0';
    }
    const npy_type *t = NULL;
    for (size_t k = 0; k < SI_ARRAY_LEN(npy_types); k++)
        if (npy_types[k].kind == kind && npy_types[k].size == size)
            t = &npy_types[k];
    if (!t)
        return si_err(NPY_UNSUPPORTED, "%s: .npy dtype '%.*s' is not supported", path, (int)SI_MIN(l, 40), d);
    bool file_le;
    if (order == '<')
        file_le = true;
    else if (order == '>')
        file_le = false;
    else
        file_le = host_is_le(); /* '=' native, '|' not applicable (numpy reads '|i4' as native) */
    if (t->size > 1 && !file_le)
        return si_err(NPY_UNSUPPORTED, "%s: .npy dtype '%.*s' is big-endian; only little-endian data is supported",
                      path, (int)l, d);
    *type = t;
    *swap = t->size > 1 && file_le != host_is_le();
    return SI_OK;
}

/* ---- reading --------------------------------------------------------------------------------------------- */

static uint32_t le16(const unsigned char *b) { return (uint32_t)b[0] | (uint32_t)b[1] << 8; }
static uint32_t le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static si_result read_error(const char *path, FILE *f, const char *what) {
    if (ferror(f))
        return si_err(SI_ERR_IO, "%s: read error in %s: %s", path, what, strerror(errno));
    return si_err(SI_ERR_PARSE, "%s: truncated .npy file: it ends inside the %s", path, what);
}

static si_result read_npy_file(const char *path, FILE *f, si_tensor **out) {
    unsigned char pre[12];
    si_result s;

    struct stat st;
    bool size_known = false;
    uint64_t file_size = 0;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return si_err(SI_ERR_IO, "%s: is a directory", path);
        if (S_ISREG(st.st_mode) && st.st_size >= 0) {
            size_known = true;
            file_size = (uint64_t)st.st_size;
        }
    }

    size_t got = fread(pre, 1, 8, f);
    if (got < 8) {
        if (ferror(f))
            return si_err(SI_ERR_IO, "%s: read error: %s", path, strerror(errno));
        if (got < 6)
            return si_err(SI_ERR_PARSE, "%s: not a .npy file (%zu bytes, too short for the magic string)", path,
                          got);
        if (memcmp(pre, npy_magic, 6) != 0)
            return si_err(SI_ERR_PARSE, "%s: not a .npy file (bad magic string; expected \\x93NUMPY)", path);
        return si_err(SI_ERR_PARSE, "%s: truncated .npy file: it ends inside the version", path);
    }
    if (memcmp(pre, npy_magic, 6) != 0)
        return si_err(SI_ERR_PARSE, "%s: not a .npy file (bad magic string; expected \\x93NUMPY)", path);
    unsigned major = pre[6], minor = pre[7];
    size_t len_bytes;
    if (major == 1 && minor == 0)
        len_bytes = 2;
    else if ((major == 2 || major == 3) && minor == 0)
        len_bytes = 4;
    else
        return si_err(NPY_UNSUPPORTED, "%s: unsupported .npy format version %u.%u (1.0, 2.0 and 3.0 are known)",
                      path, major, minor);
    if (fread(pre + 8, 1, len_bytes, f) != len_bytes)
        return read_error(path, f, "header length");
    uint32_t hlen = len_bytes == 2 ? le16(pre + 8) : le32(pre + 8);
    uint64_t data_off = 8 + (uint64_t)len_bytes + hlen;
    if (hlen > NPY_MAX_HEADER_LEN)
        return si_err(SI_ERR_PARSE, "%s: malformed .npy file: header length %" PRIu32 " is absurd (limit %u)", path,
                      hlen, NPY_MAX_HEADER_LEN);
    if (size_known && data_off > file_size)
        return si_err(SI_ERR_PARSE,
                      "%s: truncated .npy file: the header needs %" PRIu32 " bytes but the file has %" PRIu64
                      " bytes",
                      path, hlen, file_size);

    char *text = si_malloc(hlen ? hlen : 1);
    if (!text)
        return si_err(SI_ERR_NO_MEM, "%s: out of memory for a %" PRIu32 "-byte .npy header", path, hlen);
    if (fread(text, 1, hlen, f) != hlen) {
        si_free(text);
        return read_error(path, f, "header");
    }
    npy_header h;
    memset(&h, 0, sizeof h);
    s = parse_header(path, text, hlen, &h);
    const npy_type *type = NULL;
    bool swap = false;
    if (!s)
        s = descr_to_dtype(path, &h, &type, &swap); /* h.descr points into text */
    si_free(text);
    if (s)
        return s;

    if (h.fortran)
        return si_err(NPY_UNSUPPORTED, "%s: .npy data in Fortran order (fortran_order: True) is not supported",
                      path);
    if (h.rank_seen > SI_MAX_DIMS)
        return si_err(NPY_UNSUPPORTED, "%s: .npy array of rank %d is not supported (at most %d dimensions)", path,
                      h.rank_seen, SI_MAX_DIMS);

    /* element count and byte size, with overflow checks */
    const si_dtype dt = type->dtype;
    const size_t esize = (size_t)type->size;
    int64_t count = 1;
    bool zero = false;
    for (int i = 0; i < h.ndim; i++)
        if (h.dims[i] == 0)
            zero = true;
    if (zero) {
        count = 0;
    } else {
        for (int i = 0; i < h.ndim; i++) {
            if (count > INT64_MAX / h.dims[i])
                return si_err(SI_ERR_PARSE, "%s: malformed .npy header: the element count of the shape overflows",
                              path);
            count *= h.dims[i];
        }
    }
    if ((uint64_t)count > (uint64_t)INT64_MAX / esize || (uint64_t)count > (uint64_t)SIZE_MAX / esize)
        return si_err(SI_ERR_PARSE, "%s: malformed .npy header: the data size of the shape overflows", path);
    size_t nbytes = (size_t)count * esize;
    if (size_known && (uint64_t)nbytes > file_size - data_off) {
        char sh[160];
        return si_err(SI_ERR_PARSE,
                      "%s: truncated .npy file: %s needs %zu data bytes but the file has %" PRIu64 " after the header",
                      path, si_shape_str(sh, sizeof sh, dt, h.ndim, h.dims), nbytes, file_size - data_off);
    }
    if (size_known && (uint64_t)nbytes < file_size - data_off)
        return si_err(SI_ERR_PARSE,
                      "%s: malformed .npy file: %" PRIu64 " bytes after the data (the shape needs %zu data bytes)",
                      path, file_size - data_off - nbytes, nbytes);

    si_tensor *t = NULL;
    if ((s = si_tensor_create(dt, h.ndim, h.dims, &t))) /* NO_MEM, or a shape too large for a tensor */
        return si_err_wrap(s == SI_ERR_INVALID_ARG ? SI_ERR_PARSE : s, "%s", path);
    if (nbytes > 0) {
        unsigned char *data = si_tensor_data(t);
        size_t r = fread(data, 1, nbytes, f);
        if (r != nbytes) {
            si_tensor_free(t);
            if (ferror(f))
                return si_err(SI_ERR_IO, "%s: read error in the data: %s", path, strerror(errno));
            return si_err(SI_ERR_PARSE, "%s: truncated .npy file: the data has %zu of %zu bytes", path, r, nbytes);
        }
        if (swap)
            swap_elems(data, (size_t)count, esize);
        if (dt == SI_BOOL) /* keep the 0/1 invariant whatever the file holds */
            for (size_t i = 0; i < nbytes; i++)
                data[i] = data[i] != 0;
    }
    if (!size_known && fgetc(f) != EOF) {
        si_tensor_free(t);
        return si_err(SI_ERR_PARSE, "%s: malformed .npy file: bytes after the data", path);
    }
    *out = t;
    return SI_OK;
}

si_result si_tensor_read_npy(const char *path, si_tensor **out) {
    if (!out)
        return si_err(SI_ERR_INVALID_ARG, "si_tensor_read_npy: out is NULL");
    *out = NULL;
    if (!path)
        return si_err(SI_ERR_INVALID_ARG, "si_tensor_read_npy: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return si_err(SI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    si_result s = read_npy_file(path, f, out);
    fclose(f);
    return s;
}

/* ---- writing --------------------------------------------------------------------------------------------- */

static si_result write_error(const char *path, int err) {
    return si_err(SI_ERR_IO, "%s: cannot write: %s", path, strerror(err ? err : EIO));
}

si_result si_tensor_write_npy(const si_tensor *t, const char *path) {
    if (!t || !path)
        return si_err(SI_ERR_INVALID_ARG, "si_tensor_write_npy: %s is NULL", !t ? "tensor" : "path");
    const npy_type *nt = NULL;
    for (size_t k = 0; k < SI_ARRAY_LEN(npy_types); k++)
        if (npy_types[k].dtype == t->dtype)
            nt = &npy_types[k];
    if (!nt)
        return si_err(SI_ERR_UNSUPPORTED, "%s: cannot write a %s tensor as .npy (numpy has no such dtype)", path,
                      si_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > SI_MAX_DIMS)
        return si_err(SI_ERR_INVALID_ARG, "%s: tensor rank %d is out of range", path, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->dims[i] < 0)
            return si_err(SI_ERR_INVALID_ARG, "%s: tensor has negative dimension %" PRId64, path, t->dims[i]);
    int64_t count = si_shape_count(t->ndim, t->dims);
    if (count < 0 || (uint64_t)count > SIZE_MAX / (size_t)nt->size || (size_t)count * (size_t)nt->size != t->nbytes ||
        (t->nbytes > 0 && !t->data)) {
        char sh[160];
        return si_err(SI_ERR_INVALID_ARG, "%s: tensor %s is inconsistent (%zu data bytes%s)", path,
                      si_shape_str(sh, sizeof sh, t->dtype, t->ndim, t->dims), t->nbytes,
                      t->data ? "" : ", no data");
    }

    /* the header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" padded with spaces and a
     * final '\n' so that the data starts at a multiple of 64 bytes */
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%c%c%d', 'fortran_order': False, 'shape': (",
                     nt->size == 1 ? '|' : '<', nt->kind, nt->size);
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, i ? ", %" PRId64 : "%" PRId64, t->dims[i]);
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%s), }", t->ndim == 1 ? "," : "");
    size_t total = 10 + (size_t)n + 1; /* magic, version, length, dict, '\n' */
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    if (padded > sizeof hdr + 10) /* cannot happen with SI_MAX_DIMS int64 dims */
        return si_err(SI_ERR_INTERNAL, "%s: .npy header too long", path);
    unsigned char pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    memset(hdr + n, ' ', hlen - 1 - (size_t)n);
    hdr[hlen - 1] = '\n';

    FILE *f = fopen(path, "wb");
    if (!f)
        return si_err(SI_ERR_IO, "%s: cannot open for writing: %s", path, strerror(errno));
    int err = 0;
    errno = 0;
    if (fwrite(pre, 1, sizeof pre, f) != sizeof pre || fwrite(hdr, 1, hlen, f) != hlen)
        err = errno ? errno : EIO;
    if (!err && t->nbytes > 0) {
        if (nt->size == 1 || host_is_le()) {
            if (fwrite(t->data, 1, t->nbytes, f) != t->nbytes)
                err = errno ? errno : EIO;
        } else { /* big-endian host: write little-endian through a small buffer */
            unsigned char buf[4096];
            const unsigned char *src = t->data;
            size_t per = sizeof buf / (size_t)nt->size;
            for (size_t done = 0; !err && done < (size_t)count; done += per) {
                size_t k = SI_MIN(per, (size_t)count - done);
                memcpy(buf, src + done * (size_t)nt->size, k * (size_t)nt->size);
                swap_elems(buf, k, (size_t)nt->size);
                if (fwrite(buf, (size_t)nt->size, k, f) != k)
                    err = errno ? errno : EIO;
            }
        }
    }
    if (fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    if (err)
        return write_error(path, err);
    return SI_OK;
}
