/*
 * test_npy.c — tests of si_tensor_read_npy / si_tensor_write_npy (src/util/npy.c).
 *
 *   test_npy [TMPDIR]
 *
 * Files are written under TMPDIR (default: a fresh folder made with mkdtemp under /tmp, removed at the end).
 * Covers: a write/read round trip of every dtype over several shapes (rank 0, zero-size dims, rank 8);
 * byte-exact agreement with files written by real numpy (embedded below, including format 2.0 and 3.0
 * headers); header variants numpy or other writers produce; and every malformed or unsupported case, each of
 * which must return the right status and a message naming the file. Exit status: 0 when all checks pass.
 */
#include "si_test.h"
#include "util/util.h"

/* like CHECK, with the failing case's label and the library's last message */
#define CHECKL(cond, label)                                                                                    \
    do {                                                                                                       \
        n_checks++;                                                                                            \
        if (!(cond)) {                                                                                         \
            n_failed++;                                                                                        \
            fprintf(stderr, "%s:%d: CHECK failed [%s]: %s (last error: \"%s\")\n", __FILE__, __LINE__, label,  \
                    #cond, si_last_error());                                                                   \
        }                                                                                                      \
    } while (0)

static char tmp_dir[4096];
static int file_seq;
static char **made; /* every path handed out, removed at the end */
static int n_made, cap_made;

/* A fresh file path under the temp folder, remembered for the clean-up. */
static void tmp_path(char *buf, size_t n, const char *tag) {
    snprintf(buf, n, "%s/t%04d_%s.npy", tmp_dir, file_seq++, tag);
    if (n_made == cap_made) {
        cap_made = cap_made ? cap_made * 2 : 256;
        char **m = realloc(made, (size_t)cap_made * sizeof *m);
        if (!m) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        made = m;
    }
    made[n_made] = malloc(strlen(buf) + 1);
    if (!made[n_made]) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    strcpy(made[n_made++], buf);
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    unsigned char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

/* Build a .npy file: magic, version major.0, header length (hlen_override when >= 0, else the real one), the
 * header text exactly as given, then `data`. */
static void make_npy(const char *path, int major, const char *header, long long hlen_override, const void *data,
                     size_t data_len) {
    size_t hl = strlen(header);
    unsigned long long hv = hlen_override >= 0 ? (unsigned long long)hlen_override : hl;
    unsigned char buf[8192];
    size_t n = 0;
    memcpy(buf, "\x93NUMPY", 6);
    n = 6;
    buf[n++] = (unsigned char)major;
    buf[n++] = 0;
    buf[n++] = (unsigned char)(hv & 0xff);
    buf[n++] = (unsigned char)((hv >> 8) & 0xff);
    if (major != 1) {
        buf[n++] = (unsigned char)((hv >> 16) & 0xff);
        buf[n++] = (unsigned char)((hv >> 24) & 0xff);
    }
    if (n + hl + data_len > sizeof buf) {
        fprintf(stderr, "make_npy: test file too large\n");
        exit(2);
    }
    memcpy(buf + n, header, hl);
    n += hl;
    if (data_len)
        memcpy(buf + n, data, data_len);
    n += data_len;
    write_all(path, buf, n);
}

/* Read `path` and expect failure with `want`, *out left NULL, and a message naming the file and containing
 * `needle` (case-sensitive; NULL: any). */
static void expect_fail_at(const char *path, si_result want, const char *needle, const char *label, int line) {
    si_tensor *t = (si_tensor *)(uintptr_t)1;
    si_err_clear();
    si_result s = si_tensor_read_npy(path, &t);
    const char *msg = si_last_error();
    n_checks++;
    if (s != want || t != NULL || !msg[0] || !strstr(msg, path) || (needle && !strstr(msg, needle))) {
        n_failed++;
        fprintf(stderr, "%s:%d: [%s] expected %s%s%s%s, got %s, out %s, message \"%s\"\n", __FILE__, line, label,
                si_result_str(want), needle ? " with \"" : "", needle ? needle : "", needle ? "\"" : "",
                si_result_str(s), t ? "not NULL" : "NULL", msg);
    }
    if (s == SI_OK && t)
        si_tensor_free(t);
}
#define EXPECT_FAIL(path, want, needle, label) expect_fail_at(path, want, needle, label, __LINE__)

/* Read `path` expecting success with the given dtype and shape; returns the tensor (caller frees) or NULL. */
static si_tensor *expect_read_at(const char *path, si_dtype dt, int ndim, const int64_t *dims, const char *label,
                                 int line) {
    si_tensor *t = NULL;
    si_result s = si_tensor_read_npy(path, &t);
    n_checks++;
    if (s != SI_OK || !t) {
        n_failed++;
        fprintf(stderr, "%s:%d: [%s] read failed: %s: %s\n", __FILE__, line, label, si_result_str(s),
                si_last_error());
        return NULL;
    }
    bool ok = si_tensor_dtype(t) == dt && si_tensor_ndim(t) == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = si_tensor_dims(t)[i] == dims[i];
    int64_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= dims[i];
    ok = ok && si_tensor_count(t) == count && si_tensor_nbytes(t) == (size_t)count * si_dtype_size(dt);
    n_checks++;
    if (!ok) {
        n_failed++;
        char a[200], b[200];
        fprintf(stderr, "%s:%d: [%s] got %s, expected %s\n", __FILE__, line, label,
                si_shape_str(a, sizeof a, si_tensor_dtype(t), si_tensor_ndim(t), si_tensor_dims(t)),
                si_shape_str(b, sizeof b, dt, ndim, dims));
    }
    return t;
}
#define EXPECT_READ(path, dt, ndim, dims, label) expect_read_at(path, dt, ndim, dims, label, __LINE__)

/* ---- files written by numpy 1.24 (np.save / np.lib.format.write_array), byte for byte ------------------- */

/* A file numpy 1.24 wrote (np.save / np.lib.format.write_array), as numpy wrote it: the format version, the header
 * length, the header's dict (numpy pads it with spaces to the header length, whose last byte is '\n'), and the
 * data bytes. np_bytes makes the file's bytes. */
typedef struct np_file {
    int major;
    unsigned hlen;
    const char *dict;
    const char *data;
    size_t data_len;
} np_file;
#define NP_DATA(bytes) bytes, sizeof(bytes) - 1

static const np_file np_f32_2x3 = {1, 118, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
    NP_DATA("\x00\x00\x00\xc0\x00\x00\x00\xbf\x00\x00\x80\x3f\x00\x00\x20\x40"
            "\x00\x00\x80\x40\x00\x00\xb0\x40")};
static const np_file np_i64_v2 = {2, 116, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
    NP_DATA("\xff\xff\xff\xff\xff\xff\xff\xff\x00\x00\x00\x00\x00\x01\x00\x00"
            "\x07\x00\x00\x00\x00\x00\x00\x00")};
static const np_file np_u16_v3 = {3, 116, "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 2), }",
    NP_DATA("\x01\x00\xff\xff")};
static const np_file np_bool_2x2 = {1, 118, "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }",
    NP_DATA("\x01\x00\x00\x01")};
static const np_file np_f16_scalar = {1, 118, "{'descr': '<f2', 'fortran_order': False, 'shape': (), }",
    NP_DATA("\x00\xc1")};
static const np_file np_f64_0x4 = {1, 118, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4), }", NP_DATA("")};
static const np_file np_u8_5 = {1, 118, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }",
    NP_DATA("\x00\x01\x7f\x80\xff")};
static const np_file np_fortran = {1, 118, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
    NP_DATA("\x00\x00\x00\x00\x00\x00\x40\x40\x00\x00\x80\x3f\x00\x00\x80\x40"
            "\x00\x00\x00\x40\x00\x00\xa0\x40")};
static const np_file np_bigendian = {1, 118, "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }",
    NP_DATA("\x00\x00\x00\x01\x00\x00\x00\x02")};
static const np_file np_complex = {1, 118, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }",
    NP_DATA("\x00\x00\x80\x3f\x00\x00\x00\x40")};

enum { NP_MAX = 256 };

/* The bytes of f into buf (NP_MAX bytes); returns their count. */
static size_t np_bytes(const np_file *f, unsigned char *buf) {
    size_t n = 0, dl = strlen(f->dict), lenb = f->major == 1 ? 2 : 4;
    memcpy(buf, "\x93NUMPY", 6);
    n = 6;
    buf[n++] = (unsigned char)f->major;
    buf[n++] = 0;
    for (size_t k = 0; k < lenb; k++) buf[n++] = (unsigned char)(f->hlen >> (8 * k));
    memcpy(buf + n, f->dict, dl);
    memset(buf + n + dl, ' ', f->hlen - 1 - dl);
    n += f->hlen;
    buf[n - 1] = '\n';
    memcpy(buf + n, f->data, f->data_len);
    return n + f->data_len;
}

/* f written to a fresh path (into path, 4200 bytes) under `tag`. */
static void np_write(const np_file *f, char *path, const char *tag) {
    unsigned char buf[NP_MAX];
    size_t n = np_bytes(f, buf);
    tmp_path(path, 4200, tag);
    write_all(path, buf, n);
}

/* The file at path holds exactly numpy's bytes of f. */
static bool file_equals(const char *path, const np_file *f) {
    unsigned char want[NP_MAX];
    size_t want_len = np_bytes(f, want), len = 0;
    unsigned char *got = slurp(path, &len);
    bool eq = got && len == want_len && memcmp(got, want, len) == 0;
    free(got);
    return eq;
}

/* numpy's file f is read as dt and dims (EXPECT_READ); with `rewrite`, writing the tensor read gives numpy's bytes
 * again. Returns the tensor (the caller checks its values and frees it), or NULL. */
static si_tensor *read_numpy(const np_file *f, const char *tag, si_dtype dt, int ndim, const int64_t *dims,
                             const char *label, bool rewrite) {
    char path[4200], out[4200];
    np_write(f, path, tag);
    si_tensor *t = EXPECT_READ(path, dt, ndim, dims, label);
    if (t && rewrite) {
        tmp_path(out, sizeof out, tag);
        CHECKL(si_tensor_write_npy(t, out) == SI_OK, label);
        CHECKL(file_equals(out, f), label);
        unlink(out);
    }
    return t;
}

/* ---- tests ------------------------------------------------------------------------------------------------ */

static void fill_pattern(si_tensor *t, unsigned seed) {
    unsigned char *p = si_tensor_data(t);
    size_t n = si_tensor_nbytes(t);
    if (si_tensor_dtype(t) == SI_BOOL) {
        for (size_t i = 0; i < n; i++)
            p[i] = (unsigned char)((i * 7 + seed) % 3 == 0);
        return;
    }
    uint32_t x = 2463534242u ^ seed;
    for (size_t i = 0; i < n; i++) { /* xorshift bytes: every bit pattern, NaN payloads included */
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

static void test_round_trip(void) {
    static const si_dtype types[] = {SI_F32, SI_F64, SI_F16, SI_I8,  SI_U8,  SI_I16,
                                     SI_U16, SI_I32, SI_U32, SI_I64, SI_U64, SI_BOOL};
    static const struct {
        int ndim;
        int64_t dims[SI_MAX_DIMS];
    } shapes[] = {
        {0, {0}},          {1, {0}},          {1, {1}},       {1, {7}},
        {2, {2, 3}},       {3, {3, 0, 2}},    {4, {2, 1, 3, 5}}, {SI_MAX_DIMS, {1, 2, 1, 3, 1, 2, 1, 2}},
        {2, {1, 1000}},
    };
    for (size_t ti = 0; ti < SI_ARRAY_LEN(types); ti++) {
        for (size_t si = 0; si < SI_ARRAY_LEN(shapes); si++) {
            char label[256], path[4200];
            si_shape_str(label, sizeof label, types[ti], shapes[si].ndim, shapes[si].dims);
            tmp_path(path, sizeof path, "rt");
            si_tensor *a = NULL, *b = NULL;
            CHECKL(si_tensor_create(types[ti], shapes[si].ndim, shapes[si].dims, &a) == SI_OK, label);
            if (!a)
                continue;
            fill_pattern(a, (unsigned)(ti * 31 + si));
            CHECKL(si_tensor_write_npy(a, path) == SI_OK, label);
            /* the data starts at a multiple of 64 and the header ends with '\n' (format 1.0) */
            size_t len = 0;
            unsigned char *raw = slurp(path, &len);
            CHECKL(raw && len >= 10, label);
            if (raw && len >= 10) {
                size_t hlen = (size_t)raw[8] | (size_t)raw[9] << 8;
                CHECKL(memcmp(raw, "\x93NUMPY\x01\x00", 8) == 0, label);
                CHECKL((10 + hlen) % 64 == 0, label);
                CHECKL(10 + hlen <= len && raw[10 + hlen - 1] == '\n', label);
                CHECKL(len == 10 + hlen + si_tensor_nbytes(a), label);
            }
            free(raw);
            b = EXPECT_READ(path, types[ti], shapes[si].ndim, shapes[si].dims, label);
            if (b && si_tensor_nbytes(a) == si_tensor_nbytes(b) && si_tensor_nbytes(a) > 0)
                CHECKL(memcmp(si_tensor_data(a), si_tensor_data(b), si_tensor_nbytes(a)) == 0, label);
            si_tensor_free(a);
            si_tensor_free(b);
            unlink(path);
        }
    }
}

static void test_numpy_files(void) {
    char path[4200];
    si_tensor *t;

    /* float32 (2, 3): reading gives the values, writing them gives numpy's exact bytes */
    t = read_numpy(&np_f32_2x3, "np_f32", SI_F32, 2, ((const int64_t[]){2, 3}), "numpy f32", true);
    if (t) {
        const float *p = si_tensor_data(t);
        for (int i = 0; i < 6; i++)
            CHECK(p[i] == (float)i * 1.5f - 2.0f);
        si_tensor_free(t);
    }

    /* int64 (3,), format 2.0 */
    t = read_numpy(&np_i64_v2, "np_i64_v2", SI_I64, 1, ((const int64_t[]){3}), "numpy i64 v2.0", false);
    if (t) {
        const int64_t *p = si_tensor_data(t);
        CHECK(p[0] == -1 && p[1] == (int64_t)1 << 40 && p[2] == 7);
        si_tensor_free(t);
    }

    /* uint16 (1, 2), format 3.0 */
    t = read_numpy(&np_u16_v3, "np_u16_v3", SI_U16, 2, ((const int64_t[]){1, 2}), "numpy u16 v3.0", false);
    if (t) {
        const uint16_t *p = si_tensor_data(t);
        CHECK(p[0] == 1 && p[1] == 65535);
        si_tensor_free(t);
    }

    /* bool (2, 2) '|b1' */
    t = read_numpy(&np_bool_2x2, "np_bool", SI_BOOL, 2, ((const int64_t[]){2, 2}), "numpy bool", true);
    if (t) {
        const uint8_t *p = si_tensor_data(t);
        CHECK(p[0] == 1 && p[1] == 0 && p[2] == 0 && p[3] == 1);
        si_tensor_free(t);
    }

    /* float16 scalar, shape () */
    t = read_numpy(&np_f16_scalar, "np_f16", SI_F16, 0, NULL, "numpy f16 scalar", true);
    if (t) {
        uint16_t h;
        memcpy(&h, si_tensor_data(t), 2);
        CHECK(h == 0xc100); /* -2.5 */
        si_tensor_free(t);
    }

    /* float64 (0, 4): no data bytes */
    t = read_numpy(&np_f64_0x4, "np_f64_empty", SI_F64, 2, ((const int64_t[]){0, 4}), "numpy f64 (0,4)", true);
    si_tensor_free(t);

    /* uint8 (5,) '|u1' */
    t = read_numpy(&np_u8_5, "np_u8", SI_U8, 1, ((const int64_t[]){5}), "numpy u8", true);
    if (t) {
        const uint8_t *p = si_tensor_data(t);
        CHECK(p[0] == 0 && p[1] == 1 && p[2] == 127 && p[3] == 128 && p[4] == 255);
        si_tensor_free(t);
    }

    /* valid files safeinfer cannot represent */
    np_write(&np_fortran, path, "np_fortran");
    EXPECT_FAIL(path, SI_ERR_UNSUPPORTED, "Fortran", "numpy Fortran order");
    np_write(&np_bigendian, path, "np_bigendian");
    EXPECT_FAIL(path, SI_ERR_UNSUPPORTED, "big-endian", "numpy >i4");
    np_write(&np_complex, path, "np_complex");
    EXPECT_FAIL(path, SI_ERR_UNSUPPORTED, "<c8", "numpy complex64");
}

/* Header spellings other than numpy's own that are still valid Python dict literals. */
static void test_header_variants(void) {
    static const struct {
        const char *label;
        int major;
        const char *header;
        si_dtype dt;
        int ndim;
        int64_t dims[SI_MAX_DIMS];
    } cases[] = {
        {"keys reordered", 1, "{'shape': (2,), 'fortran_order': False, 'descr': '<i4'}\n", SI_I32, 1, {2}},
        {"double quotes", 1, "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2,)}\n", SI_I32, 1, {2}},
        {"no spaces, no comma", 1, "{'descr':'<i4','fortran_order':False,'shape':(2,)}", SI_I32, 1, {2}},
        {"lots of whitespace", 1, " {\t'descr' :\t'<i4' ,\n 'fortran_order' : False ,'shape' : ( 2 , ) , }  \n",
         SI_I32, 1, {2}},
        {"old 16-byte padding", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }    \n", SI_I32, 1,
         {2}},
        {"NUL padding", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\0\0\0", SI_I32, 1, {2}},
        {"Python 2 long", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (1L, 2L), }\n", SI_I32, 2, {1, 2}},
        {"v2.0 header", 2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n", SI_I32, 1, {2}},
        {"'=' native 4-byte", 1, "{'descr': '=i4', 'fortran_order': False, 'shape': (2,), }\n", SI_I32, 1, {2}},
        {"'|' 4-byte", 1, "{'descr': '|i4', 'fortran_order': False, 'shape': (2,), }\n", SI_I32, 1, {2}},
        {"no byte order", 1, "{'descr': 'i4', 'fortran_order': False, 'shape': (2,), }\n", SI_I32, 1, {2}},
        {"'<u1'", 1, "{'descr': '<u1', 'fortran_order': False, 'shape': (8,), }\n", SI_U8, 1, {8}},
        {"'=u1'", 1, "{'descr': '=u1', 'fortran_order': False, 'shape': (8,), }\n", SI_U8, 1, {8}},
        {"'>u1' (1 byte has no order)", 1, "{'descr': '>u1', 'fortran_order': False, 'shape': (8,), }\n", SI_U8,
         1, {8}},
        {"'<i1'", 1, "{'descr': '<i1', 'fortran_order': False, 'shape': (2, 4), }\n", SI_I8, 2, {2, 4}},
        {"'<b1'", 1, "{'descr': '<b1', 'fortran_order': False, 'shape': (8,), }\n", SI_BOOL, 1, {8}},
        {"'?' bool", 1, "{'descr': '?', 'fortran_order': False, 'shape': (8,), }\n", SI_BOOL, 1, {8}},
        {"rank 8", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1,1,2,1,1,2,1,2), }\n", SI_U8, 8,
         {1, 1, 2, 1, 1, 2, 1, 2}},
        {"shape () scalar", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }\n", SI_F64, 0, {0}},
        {"huge dim times zero", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }\n",
         SI_F64, 2, {0, INT64_MAX}},
    };
    static const unsigned char data[8] = {1, 0, 0, 0, 2, 0, 0, 0};
    for (size_t i = 0; i < SI_ARRAY_LEN(cases); i++) {
        char path[4200];
        tmp_path(path, sizeof path, "variant");
        size_t hl = strlen(cases[i].header);
        if (strstr(cases[i].label, "NUL"))
            hl += 3;
        /* make_npy uses strlen; pass the NUL padding through the length override and the data */
        int64_t count = 1;
        for (int d = 0; d < cases[i].ndim; d++)
            count *= cases[i].dims[d];
        size_t nbytes = (size_t)count * si_dtype_size(cases[i].dt);
        if (strstr(cases[i].label, "NUL")) {
            unsigned char buf[128];
            memcpy(buf, "\0\0\0", 3);
            memcpy(buf + 3, data, nbytes);
            make_npy(path, cases[i].major, cases[i].header, (long long)hl, buf, 3 + nbytes);
        } else {
            make_npy(path, cases[i].major, cases[i].header, -1, data, nbytes);
        }
        si_tensor *t = EXPECT_READ(path, cases[i].dt, cases[i].ndim, cases[i].dims, cases[i].label);
        if (t && cases[i].dt == SI_I32) {
            const int32_t *p = si_tensor_data(t);
            CHECKL(p[0] == 1 && p[1] == 2, cases[i].label);
        }
        si_tensor_free(t);
    }

    /* bool bytes other than 0/1 are read as 1 */
    char path[4200];
    tmp_path(path, sizeof path, "bool_2");
    static const unsigned char bools[4] = {0, 2, 255, 1};
    make_npy(path, 1, "{'descr': '|b1', 'fortran_order': False, 'shape': (4,), }\n", -1, bools, 4);
    si_tensor *t = EXPECT_READ(path, SI_BOOL, 1, ((const int64_t[]){4}), "bool normalisation");
    if (t) {
        const uint8_t *p = si_tensor_data(t);
        CHECK(p[0] == 0 && p[1] == 1 && p[2] == 1 && p[3] == 1);
        si_tensor_free(t);
    }
}

static void test_malformed(void) {
    char path[4200];
    static const unsigned char zeros[64];
    static const char good[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";

    /* the file itself */
    tmp_path(path, sizeof path, "missing");
    EXPECT_FAIL(path, SI_ERR_IO, "No such file", "missing file");
    EXPECT_FAIL(tmp_dir, SI_ERR_IO, NULL, "a directory");
    /* raw bytes: not a .npy file, or one that ends early */
#define RAW(bytes) bytes, sizeof(bytes) - 1
    static const struct {
        const char *label, *bytes;
        size_t len;
        si_result want;
        const char *needle;
    } raw[] = {
        {"empty file", RAW(""), SI_ERR_PARSE, "not a .npy"},
        {"4-byte file", RAW("\x93NUM"), SI_ERR_PARSE, "not a .npy"},
        {"bad magic", RAW("\x93NUMPZ\x01\x00\x10\x00{}              "), SI_ERR_PARSE, "magic"},
        {"text file", RAW("hello, this is not numpy data at all\n"), SI_ERR_PARSE, "magic"},
        {"ends in version", RAW("\x93NUMPY\x01"), SI_ERR_PARSE, "version"},
        {"ends in header length", RAW("\x93NUMPY\x01\x00\x76"), SI_ERR_PARSE, "header length"},
        {"v2 ends in header length", RAW("\x93NUMPY\x02\x00\x76\x00\x00"), SI_ERR_PARSE, "header length"},
        {"version 1.1", RAW("\x93NUMPY\x01\x01\x02\x00{}"), SI_ERR_UNSUPPORTED, "version 1.1"},
    };
#undef RAW
    for (size_t i = 0; i < SI_ARRAY_LEN(raw); i++) {
        tmp_path(path, sizeof path, "raw");
        write_all(path, raw[i].bytes, raw[i].len);
        EXPECT_FAIL(path, raw[i].want, raw[i].needle, raw[i].label);
    }

    /* the version, the header length and truncation (make_npy: header length -1 is the real one; zero data) */
    static const struct {
        const char *label;
        int major;
        const char *header;
        long long hlen;
        size_t data_len;
        si_result want;
        const char *needle;
    } framing[] = {
        {"version 4.0", 4, good, -1, 24, SI_ERR_UNSUPPORTED, "version 4.0"},
        {"truncated header", 1, "{'descr': '<f4', 'fort", 118, 0, SI_ERR_PARSE, "truncated"},
        {"header length too small", 1, good, 20, 24, SI_ERR_PARSE, "malformed .npy header"}, /* it cuts the dict */
        {"header length 4 GiB", 2, good, 0xffffffffLL, 24, SI_ERR_PARSE, "header length"},
        {"empty header", 1, "", 0, 0, SI_ERR_PARSE, "'{'"},
        {"data 20 of 24 bytes", 1, good, -1, 20, SI_ERR_PARSE, "truncated"},
        {"no data", 1, good, -1, 0, SI_ERR_PARSE, "truncated"},
        {"one byte too many", 1, good, -1, 25, SI_ERR_PARSE, "after the data"},
        {"scalar with 4 of 8 bytes", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }\n", -1, 4, SI_ERR_PARSE,
         "truncated"},
    };
    for (size_t i = 0; i < SI_ARRAY_LEN(framing); i++) {
        tmp_path(path, sizeof path, "framing");
        make_npy(path, framing[i].major, framing[i].header, framing[i].hlen, zeros, framing[i].data_len);
        EXPECT_FAIL(path, framing[i].want, framing[i].needle, framing[i].label);
    }

    /* header text; HDR: a dict with the three keys in numpy's order, each row changing one of the values */
#define HDR(descr, order, shape) "{'descr': " descr ", 'fortran_order': " order ", 'shape': " shape "}\n"
    static const struct {
        const char *label;
        const char *header;
        si_result want;
        const char *needle;
    } bad[] = {
        {"missing descr", "{'fortran_order': False, 'shape': (2, 3), }\n", SI_ERR_PARSE, "missing key 'descr'"},
        {"missing fortran_order", "{'descr': '<f4', 'shape': (2, 3), }\n", SI_ERR_PARSE,
         "missing key 'fortran_order'"},
        {"missing shape", "{'descr': '<f4', 'fortran_order': False, }\n", SI_ERR_PARSE, "missing key 'shape'"},
        {"empty dict", "{}\n", SI_ERR_PARSE, "missing key"},
        {"extra key", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}\n", SI_ERR_PARSE,
         "unexpected key 'x'"},
        {"duplicate key", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\n",
         SI_ERR_PARSE, "twice"},
        {"not a dict", "['descr', '<f4']\n", SI_ERR_PARSE, "'{'"},
        {"unterminated dict", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), \n", SI_ERR_PARSE,
         "malformed .npy header"},
        {"unterminated string", "{'descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", SI_ERR_PARSE,
         "malformed .npy header"},
        {"missing colon", "{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", SI_ERR_PARSE, "':'"},
        {"missing comma", "{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3)}\n", SI_ERR_PARSE, "','"},
        {"unquoted key", "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3)}\n", SI_ERR_PARSE,
         "quoted string"},
        {"garbage after dict", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} x\n", SI_ERR_PARSE,
         "padding"},
        {"two dicts", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}{}\n", SI_ERR_PARSE, "padding"},
        {"descr not a string", HDR("5", "False", "(2, 3)"), SI_ERR_PARSE, "quoted string"},
        {"fortran_order 0", HDR("'<f4'", "0", "(2, 3)"), SI_ERR_PARSE, "True or False"},
        {"fortran_order false", HDR("'<f4'", "false", "(2, 3)"), SI_ERR_PARSE, "True or False"},
        {"fortran_order Falsey", HDR("'<f4'", "Falsey", "(2, 3)"), SI_ERR_PARSE, "True or False"},
        {"fortran_order True", HDR("'<f4'", "True", "(2, 3)"), SI_ERR_UNSUPPORTED, "Fortran"},
        {"shape list", HDR("'<f4'", "False", "[2, 3]"), SI_ERR_PARSE, "tuple"},
        {"shape int", HDR("'<f4'", "False", "6"), SI_ERR_PARSE, "tuple"},
        {"shape (6) is no tuple", HDR("'<f4'", "False", "(6)"), SI_ERR_PARSE, "not a tuple"},
        {"shape negative", HDR("'<f4'", "False", "(-2, -3)"), SI_ERR_PARSE, "negative"},
        {"shape float", HDR("'<f4'", "False", "(2.0, 3)"), SI_ERR_PARSE, "malformed .npy header"},
        {"shape name", HDR("'<f4'", "False", "(n, 3)"), SI_ERR_PARSE, "dimension"},
        {"shape double comma", HDR("'<f4'", "False", "(2,, 3)"), SI_ERR_PARSE, "dimension"},
        {"shape (,)", HDR("'<f4'", "False", "(,)"), SI_ERR_PARSE, "dimension"},
        {"shape unclosed", HDR("'<f4'", "False", "(2, 3"), SI_ERR_PARSE, "malformed .npy header"},
        {"shape leading zero", HDR("'<f4'", "False", "(02, 3)"), SI_ERR_PARSE, "leading zeros"},
        {"dim over int64", HDR("'<f4'", "False", "(99999999999999999999,)"), SI_ERR_PARSE, "too large"},
        {"count over int64", HDR("'<f4'", "False", "(4294967296, 4294967296)"), SI_ERR_PARSE, "overflows"},
        {"bytes over int64", HDR("'<f8'", "False", "(2305843009213693952,)"), SI_ERR_PARSE, "overflows"},
        {"absurd but representable", HDR("'<f4'", "False", "(1000000, 1000000)"), SI_ERR_PARSE, "truncated"},
        {"rank 9", HDR("'<f4'", "False", "(1,1,1,1,1,1,1,1,1)"), SI_ERR_UNSUPPORTED, "rank 9"},
        {"big-endian f8", HDR("'>f8'", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "big-endian"},
        {"big-endian u2", HDR("'>u2'", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "big-endian"},
        {"unicode dtype", HDR("'<U5'", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "'<U5'"},
        {"object dtype", HDR("'|O'", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "'|O'"},
        {"f16 as f3", HDR("'<f3'", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "'<f3'"},
        {"datetime", HDR("'<M8[ns]'", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "'<M8[ns]'"},
        {"empty descr", HDR("''", "False", "(2, 3)"), SI_ERR_UNSUPPORTED, "''"},
        {"structured dtype", HDR("[('a', '<f4'), ('b', '<i4')]", "False", "(3,)"), SI_ERR_UNSUPPORTED, "structured"},
        {"unclosed descr list", HDR("[('a', '<f4')", "False", "(3,)"), SI_ERR_PARSE, "malformed .npy header"},
        {"control byte", "{'descr': '<f4', \x01'fortran_order': False, 'shape': (2, 3)}\n", SI_ERR_PARSE,
         "byte 0x01"},
        {"latin-1 byte", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}\xe9\n", SI_ERR_PARSE,
         "byte 0xe9"},
    };
#undef HDR
    for (size_t i = 0; i < SI_ARRAY_LEN(bad); i++) {
        tmp_path(path, sizeof path, "bad");
        make_npy(path, 1, bad[i].header, -1, zeros, 24);
        EXPECT_FAIL(path, bad[i].want, bad[i].needle, bad[i].label);
        /* the same header in format 2.0 and 3.0 fails the same way */
        tmp_path(path, sizeof path, "bad_v3");
        make_npy(path, 3, bad[i].header, -1, zeros, 24);
        EXPECT_FAIL(path, bad[i].want, bad[i].needle, bad[i].label);
    }

    /* every prefix of a real numpy file fails cleanly (PARSE), never crashes */
    unsigned char f32[NP_MAX];
    size_t f32_len = np_bytes(&np_f32_2x3, f32);
    for (size_t n = 0; n < f32_len; n++) {
        tmp_path(path, sizeof path, "prefix");
        write_all(path, f32, n);
        char label[64];
        snprintf(label, sizeof label, "prefix of %zu bytes", n);
        EXPECT_FAIL(path, SI_ERR_PARSE, NULL, label);
        unlink(path);
    }
    /* every single-byte corruption of the header area either reads or fails with a message, never crashes */
    for (size_t n = 0; n < 128; n++) {
        unsigned char buf[NP_MAX];
        memcpy(buf, f32, f32_len);
        static const unsigned char subs[] = {0x00, 0xff, '(', ')', ',', '\'', '-', '9', '}'};
        for (size_t k = 0; k < sizeof subs; k++) {
            buf[n] = subs[k];
            tmp_path(path, sizeof path, "corrupt");
            write_all(path, buf, f32_len);
            si_tensor *t = NULL;
            si_err_clear();
            si_result s = si_tensor_read_npy(path, &t);
            CHECK(s == SI_OK ? t != NULL : (t == NULL && si_last_error()[0] != 0));
            CHECK(s == SI_OK || s == SI_ERR_PARSE || s == SI_ERR_UNSUPPORTED);
            si_tensor_free(t);
            unlink(path);
            buf[n] = f32[n];
        }
    }
}

static void test_write_errors(void) {
    char path[4200];
    si_tensor *t = NULL;

    /* bfloat16 has no numpy name */
    CHECK(si_tensor_create(SI_BF16, 1, (const int64_t[]){3}, &t) == SI_OK);
    tmp_path(path, sizeof path, "bf16");
    si_err_clear();
    CHECK(si_tensor_write_npy(t, path) == SI_ERR_UNSUPPORTED);
    CHECK(si_last_error()[0] != 0 && strstr(si_last_error(), "bfloat16"));
    CHECK(access(path, F_OK) != 0); /* nothing was created */
    si_tensor_free(t);
    t = NULL;

    CHECK(si_tensor_create(SI_F32, 2, (const int64_t[]){2, 2}, &t) == SI_OK);
    /* a folder that does not exist */
    snprintf(path, sizeof path, "%s/no/such/dir/x.npy", tmp_dir);
    si_err_clear();
    CHECK(si_tensor_write_npy(t, path) == SI_ERR_IO);
    CHECK(strstr(si_last_error(), path) && strstr(si_last_error(), strerror(ENOENT)));
    /* a full device: the error shows at write or close time */
    if (access("/dev/full", W_OK) == 0) {
        si_err_clear();
        CHECK(si_tensor_write_npy(t, "/dev/full") == SI_ERR_IO);
        CHECK(strstr(si_last_error(), "/dev/full") && strstr(si_last_error(), strerror(ENOSPC)));
    }
    /* NULL arguments */
    CHECK(si_tensor_write_npy(NULL, path) == SI_ERR_INVALID_ARG);
    CHECK(si_tensor_write_npy(t, NULL) == SI_ERR_INVALID_ARG);
    si_tensor *o = (si_tensor *)(uintptr_t)1;
    CHECK(si_tensor_read_npy(NULL, &o) == SI_ERR_INVALID_ARG && o == NULL);
    CHECK(si_tensor_read_npy(path, NULL) == SI_ERR_INVALID_ARG);
    si_tensor_free(t);
}

/* Allocation failures while reading are reported as NO_MEM without leaks (ASan checks the leaks). */
static void test_alloc_failures(void) {
    char path[4200];
    np_write(&np_f32_2x3, path, "alloc");
    int failures = 0;
    for (long n = 1; n < 20; n++) {
        si_tensor *t = NULL;
        si_alloc_fail_after(n, 0);
        si_result s = si_tensor_read_npy(path, &t);
        si_alloc_fail_after(0, 0);
        if (s == SI_OK) {
            CHECK(t != NULL);
            si_tensor_free(t);
            break;
        }
        failures++;
        CHECK(s == SI_ERR_NO_MEM && t == NULL && si_last_error()[0] != 0);
    }
    CHECK(failures >= 2); /* the header buffer, the tensor and its data are all allocated */
}

int main(int argc, char **argv) {
    bool made_dir = false;
    if (argc > 1) {
        if (strlen(argv[1]) > 3000) {
            fprintf(stderr, "temp folder path too long\n");
            return 2;
        }
        snprintf(tmp_dir, sizeof tmp_dir, "%s", argv[1]);
    } else {
        snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_npy_XXXXXX");
        if (!mkdtemp(tmp_dir)) {
            fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
            return 2;
        }
        made_dir = true;
    }
    /* unique names inside a shared folder */
    char sub[sizeof tmp_dir + 64];
    snprintf(sub, sizeof sub, "%s/test_npy_%ld_XXXXXX", tmp_dir, (long)getpid());
    if (!mkdtemp(sub)) {
        fprintf(stderr, "mkdtemp under %s: %s\n", tmp_dir, strerror(errno));
        return 2;
    }
    char parent[sizeof tmp_dir];
    snprintf(parent, sizeof parent, "%s", tmp_dir);
    memcpy(tmp_dir, sub, strlen(sub) + 1); /* argv[1] is at most 3000 characters: it fits */

    test_round_trip();
    test_numpy_files();
    test_header_variants();
    test_malformed();
    test_write_errors();
    test_alloc_failures();

    /* clean up: every file made is in the folder made above */
    for (int i = 0; i < n_made; i++) {
        unlink(made[i]);
        free(made[i]);
    }
    free(made);
    rmdir(tmp_dir);
    if (made_dir)
        rmdir(parent);

    printf("test_npy: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
