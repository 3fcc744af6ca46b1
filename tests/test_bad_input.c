/*
 * test_bad_input.c — every kind of bad input gets its status and a non-empty message naming the problem, and
 * never a crash (run under AddressSanitizer/UBSan in CI, where a leak fails the test too).
 *
 *   test_bad_input [BUILD_DIR]     temp files go to a fresh folder under BUILD_DIR (default /tmp)
 *
 * Covers: truncated copies of a valid model at every byte offset; seeded random buffers; seeded random
 * mutations of a valid model (each that still loads is compiled and run); empty, missing, folder and text
 * paths; cycles, unknown ops, dangling references, missing outputs, values produced twice; external data
 * leaving the model's folder (relative, absolute, through a symlink), missing or short; unsupported element
 * types and ranks; inconsistent initializers; wrong input dtypes and shapes; missing inputs; malformed .npy
 * and TensorProto files; NULL for every pointer argument of the public API; malformed inputs of the newer
 * ops' reference kernels (NegativeLogLikelihoodLoss, GridSample, Col2Im, TensorScatter, RoiAlign) on REF and CPU.
 */
#include "si_test.h"

#include <stdint.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static char tmp_dir[4096];

/* deterministic pseudo-random numbers (xorshift64*) */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Dull;
}

/* When a model loads, compile and run it with zero inputs of the declared shapes (symbolic dims = 2): any
 * status is fine, a crash or leak is not. Returns the first failing status (SI_OK when all went through). */
static si_result exercise(si_model *m) {
    si_result s = SI_OK;
    for (int i = 0; i < si_model_num_inputs(m); i++) {
        si_value_info vi;
        if (si_model_input_info(m, i, &vi)) continue;
        for (int d = 0; d < vi.ndim; d++)
            if (vi.dim_names[d] && si_model_set_dim(m, vi.dim_names[d], 2)) break;
    }
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    si_tensor *ins[16] = {0};
    int n_in = si_model_num_inputs(m);
    if ((s = si_compile(m, NULL, &cm))) goto done;
    if ((s = si_request_create(cm, &rq))) goto done;
    for (int i = 0; i < n_in && i < 16; i++) {
        si_value_info vi;
        if ((s = si_model_input_info(m, i, &vi))) goto done;
        int64_t dims[SI_MAX_DIMS];
        int nd = vi.ndim < 0 ? 1 : vi.ndim;
        int64_t count = 1;
        for (int d = 0; d < nd; d++) {
            dims[d] = vi.ndim < 0 || vi.dims[d] < 0 ? 2 : vi.dims[d];
            if (dims[d] > 64) dims[d] = 64; /* mutated shapes can be absurd: the port check will refuse them */
            count *= dims[d];
        }
        if (count > (1 << 20)) { s = SI_ERR_INVALID_ARG; goto done; }
        if ((s = si_tensor_create(vi.dtype, nd, dims, &ins[i]))) goto done;
        if ((s = si_request_set_input(rq, i, ins[i]))) goto done;
    }
    if ((s = si_request_infer(rq))) goto done;
    for (int k = 0; k < si_compiled_num_outputs(cm); k++) {
        si_tensor *o = NULL;
        if ((s = si_request_get_output(rq, k, &o))) goto done;
        CHECK(o != NULL);
        if (o && si_tensor_nbytes(o)) {
            /* touch every byte so that ASan sees an output buffer that is too short */
            volatile unsigned char sum = 0;
            const unsigned char *p = si_tensor_data(o);
            CHECK(p != NULL);
            for (size_t b = 0; p && b < si_tensor_nbytes(o); b++) sum ^= p[b];
            (void)sum;
        }
    }
done:
    if (s) CHECK(*si_last_error());
    si_request_free(rq);
    for (int i = 0; i < 16; i++) si_tensor_free(ins[i]);
    si_compiled_free(cm);
    return s;
}

/* ---- truncation, random bytes, mutations -------------------------------------------------------------- */

/* Load the len bytes at b from memory (NULL when len is 0): a model that loads (said, with `label`) is exercised and
 * freed; a failure must leave the model NULL and name what is wrong. The status. */
static si_result load_bytes(const unsigned char *b, size_t len, const char *label) {
    si_model *m = (si_model *)&m;
    si_result s = si_model_load_memory(len ? b : NULL, len, NULL, &m);
    if (s == SI_OK) {
        fprintf(stderr, "%s loads OK\n", label);
        exercise(m);
        si_model_free(m);
        return s;
    }
    if (!*si_last_error() || m != NULL)
        fprintf(stderr, "%s: status %s, message \"%s\"\n", label, si_result_str(s), si_last_error());
    CHECK(*si_last_error());
    CHECK(m == NULL);
    return s;
}

static void test_truncated(void) {
    size_t len;
    unsigned char *full = read_all(data_path("small.onnx"), &len);
    int ok_cuts = 0;
    for (size_t cut = 0; cut < len; cut++) {
        /* a heap copy of exactly `cut` bytes, so that ASan catches a read past the end */
        unsigned char *b = malloc(cut ? cut : 1);
        memcpy(b, full, cut);
        char label[96];
        snprintf(label, sizeof label, "truncated small.onnx at %zu of %zu bytes", cut, len);
        si_result s = load_bytes(b, cut, label);
        if (s == SI_OK) ok_cuts++;
        else CHECK(s == SI_ERR_PARSE || s == SI_ERR_INVALID_ARG || s == SI_ERR_UNSUPPORTED);
        free(b);
    }
    /* A cut only loads when it is the whole file. (A cut between top-level fields leaves a well-formed
     * protobuf: the loader must then notice what is missing, e.g. the graph or the opset imports that an IR
     * version >= 3 model must have.) */
    CHECK(ok_cuts == 0);
    si_model *m = NULL;
    CHECK_OK(si_model_load_memory(full, len, NULL, &m));
    si_model_free(m);
    /* the same through files, at a few cuts */
    for (size_t cut = 1; cut < len; cut += len / 7 + 1) {
        char p[4200];
        snprintf(p, sizeof p, "%s/cut%zu.onnx", tmp_dir, cut);
        write_all(p, full, cut);
        m = (si_model *)&m;
        si_result s = si_model_load(p, &m);
        CHECK(s != SI_OK);
        CHECK(m == NULL);
        if (s == SI_OK) si_model_free(m);
        CHECK(strstr(si_last_error(), p) != NULL); /* file errors name the file */
        remove(p);
    }
    free(full);
}

/* The file loader streams large initializers from the file (loader.c): truncate a model that has some at
 * many offsets, inside the raw bytes too, and check each cut is refused; the full file gives the same
 * outputs as loading from memory. */
static void test_truncated_stream(void) {
    size_t len;
    unsigned char *full = read_all(SI_EXAMPLE_MODEL, &len);
    char p[4200];
    snprintf(p, sizeof p, "%s/stream.onnx", tmp_dir);
    int ok_cuts = 0;
    for (size_t cut = 1; cut < len; cut += 3) {
        write_all(p, full, cut);
        si_model *m = (si_model *)&m;
        si_result s = si_model_load(p, &m);
        if (s == SI_OK) { ok_cuts++; si_model_free(m); continue; }
        CHECK(m == NULL);
        CHECK(*si_last_error());
    }
    CHECK(ok_cuts == 0);
    write_all(p, full, len);
    si_model *a = NULL, *b = NULL;
    CHECK_OK(si_model_load(p, &a));
    CHECK_OK(si_model_load_memory(full, len, NULL, &b));
    if (a && b) {
        si_model_summary sa, sb;
        si_model_summary_get(a, &sa);
        si_model_summary_get(b, &sb);
        CHECK(sa.n_params == sb.n_params && sa.param_bytes == sb.param_bytes && sa.n_nodes == sb.n_nodes);
        CHECK_OK(si_model_set_dim(a, "batch", 1));
        CHECK_OK(si_model_set_dim(b, "batch", 1));
        si_compiled *ca = NULL, *cb = NULL;
        si_request *ra = NULL, *rb = NULL;
        int64_t dims[4] = {1, 3, 32, 32};
        si_tensor *x = NULL;
        CHECK_OK(si_tensor_create(SI_F32, 4, dims, &x));
        for (int i = 0; x && i < 3072; i++) ((float *)si_tensor_data(x))[i] = (float)(i % 17) / 17.0f;
        CHECK_OK(si_compile(a, NULL, &ca));
        CHECK_OK(si_compile(b, NULL, &cb));
        if (ca && cb && x && !si_request_create(ca, &ra) && !si_request_create(cb, &rb)) {
            CHECK_OK(si_request_set_input(ra, 0, x));
            CHECK_OK(si_request_set_input(rb, 0, x));
            CHECK_OK(si_request_infer(ra));
            CHECK_OK(si_request_infer(rb));
            si_tensor *ya = NULL, *yb = NULL;
            CHECK_OK(si_request_get_output(ra, 1, &ya));
            CHECK_OK(si_request_get_output(rb, 1, &yb));
            CHECK(ya && yb && si_tensor_nbytes(ya) == si_tensor_nbytes(yb) &&
                  !memcmp(si_tensor_data(ya), si_tensor_data(yb), si_tensor_nbytes(ya)));
        }
        si_request_free(ra);
        si_request_free(rb);
        si_compiled_free(ca);
        si_compiled_free(cb);
        si_tensor_free(x);
    }
    si_model_free(a);
    si_model_free(b);
    remove(p);
    free(full);
}

static void test_random_bytes(void) {
    int ok = 0;
    for (int i = 0; i < 400; i++) {
        size_t len = i < 64 ? (size_t)i + 1 : (size_t)(1 + rng() % (i < 300 ? 300u : 5000u));
        unsigned char *b = malloc(len);
        for (size_t k = 0; k < len; k++) b[k] = (unsigned char)rng();
        if (i % 4 == 1) b[0] = 0x08; /* start like a ModelProto (ir_version varint) to get past the first byte */
        if (i % 4 == 2 && len > 2) { b[0] = 0x3a; b[1] = (unsigned char)(len - 2 < 127 ? len - 2 : 127); } /* graph */
        char label[64];
        snprintf(label, sizeof label, "random buffer %d (%zu bytes)", i, len);
        if (load_bytes(b, len, label) == SI_OK) ok++;
        free(b);
    }
    CHECK(ok == 0);
}

/* Random byte changes of a valid model: whatever loads is compiled and run; no crash, no leak. */
static void test_mutations(void) {
    const char *models[] = {"small.onnx", "constant.onnx", "clip11.onnx", "add_dyn.onnx", "passthrough.onnx",
                            "ext.onnx", "matmul.onnx", "clip6.onnx"};
    int loaded = 0, ran = 0, total = 0;
    /* SI_TEST_MUTATIONS=N runs N mutants per model instead of 600 (for longer fuzzing sessions) */
    int per_model = getenv("SI_TEST_MUTATIONS") ? atoi(getenv("SI_TEST_MUTATIONS")) : 600;
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        size_t len;
        unsigned char *full = read_all(data_path(models[mi]), &len);
        for (int i = 0; i < per_model; i++) {
            size_t blen = len;
            unsigned char *b = malloc(len + 64);
            memcpy(b, full, len);
            int n = 1 + (int)(rng() % 3);
            for (int k = 0; k < n; k++) {
                size_t at = rng() % blen;
                switch (rng() % 7) {
                case 0: b[at] ^= (unsigned char)(1u << (rng() % 8)); break;
                case 1: b[at] = (unsigned char)rng(); break;
                case 2: b[at] = 0xff; break;
                case 3: b[at] = (unsigned char)(b[at] + 1); break;
                case 4: /* delete a byte */
                    if (blen > 1) { memmove(b + at, b + at + 1, blen - at - 1); blen--; }
                    break;
                case 5: /* insert a byte */
                    if (blen < len + 60) { memmove(b + at + 1, b + at, blen - at); b[at] = (unsigned char)rng(); blen++; }
                    break;
                default: { /* duplicate up to 8 bytes */
                    size_t c = 1 + rng() % 8;
                    if (at + c <= blen && blen + c <= len + 64) { memmove(b + at + c, b + at, blen - at); blen += c; }
                    break;
                }
                }
            }
            total++;
            si_model *m = NULL;
            /* a heap block of exactly the mutant's size (ASan sees reads past its end); with the data folder, so
             * that external data (ext.onnx) resolves */
            unsigned char *exact = malloc(blen);
            memcpy(exact, b, blen);
            free(b);
            b = exact;
            si_result s = si_model_load_memory(b, blen, SI_TEST_DATA, &m);
            if (!s) {
                loaded++;
                if (!exercise(m)) ran++;
                si_model_free(m);
            } else {
                CHECK(*si_last_error());
            }
            free(b);
        }
        free(full);
    }
    fprintf(stderr, "mutations: %d tried, %d loaded, %d ran\n", total, loaded, ran);
}

/* ---- files ---------------------------------------------------------------------------------------------- */

static void test_files(void) {
    si_model *m = (si_model *)&m;
    CHECK_ERR(si_model_load(data_path("empty.onnx"), &m), SI_ERR_PARSE, "empty");
    CHECK(m == NULL);
    CHECK_ERR(si_model_load(data_path("empty.onnx"), &m), SI_ERR_PARSE, "empty.onnx");
    CHECK_ERR(si_model_load(data_path("text.onnx"), &m), SI_ERR_PARSE, "text.onnx");
    CHECK_ERR(si_model_load(data_path("no_such_model.onnx"), &m), SI_ERR_IO, "no_such_model.onnx");
    CHECK(m == NULL);
    CHECK_ERR(si_model_load("", &m), SI_ERR_IO, "");
    /* a folder */
    CHECK_STATUS(si_model_load(SI_TEST_DATA, &m), SI_ERR_IO);
    CHECK(strstr(si_last_error(), SI_TEST_DATA) != NULL);
    CHECK(m == NULL);
    CHECK_STATUS(si_model_load(tmp_dir, &m), SI_ERR_IO);
    CHECK_STATUS(si_model_load("/", &m), SI_ERR_IO);
    CHECK(m == NULL);
    /* a folder with a trailing slash */
    char p[4200];
    snprintf(p, sizeof p, "%s/", tmp_dir);
    CHECK_STATUS(si_model_load(p, &m), SI_ERR_IO);
    /* a file inside something that is not a folder */
    CHECK_STATUS(si_model_load(data_path("small.onnx/x.onnx"), &m), SI_ERR_IO);
    /* an unreadable special file */
    CHECK(si_model_load("/dev/null", &m) != SI_OK);
    CHECK(m == NULL);
    CHECK(*si_last_error());
    m = (si_model *)&m;
    CHECK_ERR(si_model_load_memory("", 0, NULL, &m), SI_ERR_PARSE, "empty");
    CHECK(m == NULL);
    CHECK_ERR(si_model_load(data_path("no_graph.onnx"), &m), SI_ERR_PARSE, "graph");
}

/* ---- structurally bad models -------------------------------------------------------------------------- */

/* Absurd dimensions: set_dim and compile may refuse them (INVALID_ARG) or accept them (nothing is allocated for
 * shapes), but shape arithmetic must not overflow (UBSan) or crash. */
static void absurd_dims(void *arg) {
    (void)arg;
    const int64_t absurd[] = {INT64_MAX, INT64_MAX / 3 + 1, INT64_C(1) << 62, INT64_C(1) << 40};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        si_model *m = NULL;
        CHECK_OK(si_model_load(data_path("small.onnx"), &m));
        if (!m) break;
        si_result s = si_model_set_dim(m, "batch", absurd[i]);
        CHECK(s == SI_OK || s == SI_ERR_INVALID_ARG);
        if (s) CHECK(*si_last_error());
        si_compiled *cm = NULL;
        s = si_compile(m, NULL, &cm);
        CHECK(s == SI_OK || s == SI_ERR_INVALID_ARG);
        si_compiled_free(cm);
        si_model_free(m);
        /* the same through set_input_shape */
        m = NULL;
        CHECK_OK(si_model_load(data_path("small.onnx"), &m));
        if (!m) break;
        int64_t dims[2] = {absurd[i], 3};
        s = si_model_set_input_shape(m, "X", 2, dims);
        CHECK(s == SI_OK || s == SI_ERR_INVALID_ARG);
        si_model_free(m);
    }
}

/* Loading data/<file> fails with `want`, its message holding `needle` (and `needle2` when not NULL); *out is NULL. */
typedef struct bad_file {
    const char *file;
    si_result want;
    const char *needle, *needle2;
} bad_file;

static void check_bad_models(const bad_file *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int before = n_failed;
        si_model *m = (si_model *)&m;
        CHECK_ERR(si_model_load(data_path(b[i].file), &m), b[i].want, b[i].needle);
        if (b[i].needle2) CHECK(strstr(si_last_error(), b[i].needle2) != NULL);
        CHECK(m == NULL);
        if (n_failed != before) fprintf(stderr, "  (loading %s)\n", b[i].file);
    }
}

static void test_bad_models(void) {
    static const bad_file malformed[] = {
        {"cycle.onnx", SI_ERR_PARSE, "cycle", NULL},
        {"dangling.onnx", SI_ERR_PARSE, "ghost", NULL},
        {"output_missing.onnx", SI_ERR_PARSE, "nowhere", NULL},
        {"double_producer.onnx", SI_ERR_PARSE, "more than once", NULL},
        {"no_default_opset.onnx", SI_ERR_PARSE, "opset", NULL},
        {"raw_size_mismatch.onnx", SI_ERR_PARSE, "'W'", NULL},
        {"typed_count_mismatch.onnx", SI_ERR_PARSE, "'W'", NULL},
        /* a negative dimension in an initializer is a malformed model (PARSE per the header), not a caller's
         * argument error */
        {"neg_dim_init.onnx", SI_ERR_PARSE, "'W'", NULL},
    };
    check_bad_models(malformed, sizeof malformed / sizeof malformed[0]);
    /* a gigantic initializer shape without data: refused, never an attempt to allocate it */
    si_model *m = (si_model *)&m;
    si_result s = si_model_load(data_path("huge_init.onnx"), &m);
    CHECK(s == SI_ERR_PARSE || s == SI_ERR_UNSUPPORTED);
    CHECK(strstr(si_last_error(), "'W'") != NULL);
    CHECK(m == NULL);

    /* unsupported types and ranks */
    static const bad_file unsupported[] = {
        {"string_input.onnx", SI_ERR_UNSUPPORTED, "string", "'X'"},
        {"sequence_input.onnx", SI_ERR_UNSUPPORTED, "sequence", NULL},
        {"rank9_input.onnx", SI_ERR_UNSUPPORTED, "rank 9", NULL},
        {"complex_init.onnx", SI_ERR_UNSUPPORTED, "complex64", NULL},
    };
    check_bad_models(unsupported, sizeof unsupported / sizeof unsupported[0]);

    /* an unknown op loads, and compile names it */
    m = NULL;
    CHECK_OK(si_model_load(data_path("unknown_op.onnx"), &m));
    if (m) {
        CHECK_STREQ(si_model_node_op(m, 1), "FooBar");
        si_compiled *cm = (si_compiled *)&cm;
        CHECK_ERR(si_compile(m, NULL, &cm), SI_ERR_UNSUPPORTED, "FooBar");
        CHECK(cm == NULL);
        si_config *cfg = NULL;
        CHECK_OK(si_config_create(&cfg));
        CHECK_OK(si_config_set(cfg, "devices", "REF"));
        CHECK_ERR(si_compile(m, cfg, &cm), SI_ERR_UNSUPPORTED, "FooBar");
        CHECK(strstr(si_last_error(), "REF") != NULL);
        si_config_free(cfg);
        si_model_free(m);
    }

    /* declared shapes that cannot broadcast: refused at load or at compile, naming the node */
    m = NULL;
    s = si_model_load(data_path("bad_broadcast.onnx"), &m);
    if (s == SI_OK) {
        si_compiled *cm = NULL;
        s = si_compile(m, NULL, &cm);
        si_compiled_free(cm);
        si_model_free(m);
    }
    CHECK(s == SI_ERR_INVALID_ARG || s == SI_ERR_PARSE);
    CHECK(strstr(si_last_error(), "add") != NULL && strstr(si_last_error(), "broadcast") != NULL);

    /* absurd dimensions (in a child process: an overflow caught by UBSan ends only that) */
    CHECK_NO_CRASH(absurd_dims, NULL);

    /* set_dim leading to a contradiction: INVALID_ARG naming the node; the model stays usable */
    m = NULL;
    CHECK_OK(si_model_load(data_path("add_dyn.onnx"), &m));
    if (m) {
        CHECK_OK(si_model_set_dim(m, "batch", 2));
        CHECK_ERR(si_model_set_dim(m, "n", 4), SI_ERR_INVALID_ARG, "add");
        CHECK_OK(si_model_set_dim(m, "n", 3));
        si_compiled *cm = NULL;
        CHECK_OK(si_compile(m, NULL, &cm));
        si_compiled_free(cm);
        si_model_free(m);
    }
}

/* ---- external data ------------------------------------------------------------------------------------- */

static void test_external(void) {
    si_model *m = (si_model *)&m;
    CHECK_ERR(si_model_load(data_path("ext_escape.onnx"), &m), SI_ERR_INVALID_ARG, "leaves");
    CHECK(strstr(si_last_error(), "../escape.bin") != NULL);
    CHECK(m == NULL);
    CHECK_ERR(si_model_load(data_path("ext_escape_mid.onnx"), &m), SI_ERR_INVALID_ARG, "leaves");
    CHECK_ERR(si_model_load(data_path("ext_abs.onnx"), &m), SI_ERR_INVALID_ARG, "leaves");
    CHECK(strstr(si_last_error(), "/tmp/safeinfer_abs.bin") != NULL);
    CHECK(m == NULL);
    CHECK_ERR(si_model_load(data_path("ext_missing.onnx"), &m), SI_ERR_IO, "no_such_file.bin");
    CHECK_ERR(si_model_load(data_path("ext_short.onnx"), &m), SI_ERR_PARSE, "ext.bin");
    CHECK_ERR(si_model_load(data_path("ext_badlen.onnx"), &m), SI_ERR_PARSE, "length");
    CHECK(m == NULL);

    /* from memory: escaping is refused whatever the folder; without a folder, any external data is */
    size_t len;
    unsigned char *buf = read_all(data_path("ext_escape.onnx"), &len);
    CHECK_ERR(si_model_load_memory(buf, len, SI_TEST_DATA, &m), SI_ERR_INVALID_ARG, "leaves");
    CHECK_STATUS(si_model_load_memory(buf, len, NULL, &m), SI_ERR_INVALID_ARG);
    CHECK(m == NULL);
    free(buf);
    buf = read_all(data_path("ext_abs.onnx"), &len);
    CHECK_ERR(si_model_load_memory(buf, len, SI_TEST_DATA, &m), SI_ERR_INVALID_ARG, "leaves");
    CHECK_ERR(si_model_load_memory(buf, len, "/", &m), SI_ERR_INVALID_ARG, "leaves");
    free(buf);

    /* a symlink inside the folder pointing outside it: refused too */
    char sub[4200], outside[4200], link[4300], model[4300];
    snprintf(sub, sizeof sub, "%s/model", tmp_dir);
    snprintf(outside, sizeof outside, "%s/outside.bin", tmp_dir);
    snprintf(link, sizeof link, "%s/ext.bin", sub);
    snprintf(model, sizeof model, "%s/ext.onnx", sub);
    CHECK(mkdir(sub, 0700) == 0);
    unsigned char *bin = read_all(data_path("ext.bin"), &len);
    write_all(outside, bin, len);
    free(bin);
    buf = read_all(data_path("ext.onnx"), &len);
    write_all(model, buf, len);
    CHECK(symlink("../outside.bin", link) == 0);
    CHECK_ERR(si_model_load(model, &m), SI_ERR_INVALID_ARG, "leaves");
    CHECK(m == NULL);
    CHECK_ERR(si_model_load_memory(buf, len, sub, &m), SI_ERR_INVALID_ARG, "leaves");
    /* the same with a regular file in place of the link: loads */
    remove(link);
    write_all(link, "", 0);
    CHECK_ERR(si_model_load(model, &m), SI_ERR_PARSE, "shorter"); /* an empty data file */
    remove(link);
    rename(outside, link);
    m = NULL;
    CHECK_OK(si_model_load(model, &m));
    si_model_free(m);
    /* a data "file" that is a folder */
    remove(link);
    CHECK(mkdir(link, 0700) == 0);
    m = (si_model *)&m;
    CHECK(si_model_load(model, &m) != SI_OK);
    CHECK(m == NULL);
    CHECK(strstr(si_last_error(), "ext.bin") != NULL);
    rmdir(link);
    remove(model);
    rmdir(sub);
    free(buf);
}

/* ---- requests --------------------------------------------------------------------------------------------- */

static void test_request_errors(void) {
    si_model *m = NULL;
    CHECK_OK(si_model_load(data_path("small.onnx"), &m));
    if (!m) return;
    si_compiled *cm = NULL;
    CHECK_OK(si_compile(m, NULL, &cm));
    si_model_free(m);
    if (!cm) return;
    si_request *rq = NULL;
    CHECK_OK(si_request_create(cm, &rq));
    if (!rq) { si_compiled_free(cm); return; }

    /* missing input */
    CHECK_ERR(si_request_infer(rq), SI_ERR_INVALID_ARG, "not set");
    CHECK(strstr(si_last_error(), "'X'") != NULL);
    /* output before any infer: the index is checked, the tensor is empty */
    si_tensor *o = NULL;
    CHECK_STATUS(si_request_get_output(rq, 5, &o), SI_ERR_INVALID_ARG);
    CHECK(*si_last_error());

    /* wrong dtype: int64 for the float input, named */
    int64_t d23[2] = {2, 3};
    si_tensor *ti = NULL, *tf = NULL, *t24 = NULL, *t3 = NULL, *t123 = NULL, *t0 = NULL, *tf64 = NULL;
    CHECK_OK(si_tensor_create(SI_I64, 2, d23, &ti));
    CHECK_ERR(si_request_set_input(rq, 0, ti), SI_ERR_INVALID_ARG, "'X'");
    CHECK(strstr(si_last_error(), "int64") != NULL && strstr(si_last_error(), "float32") != NULL);
    CHECK_OK(si_tensor_create(SI_F64, 2, d23, &tf64));
    CHECK_ERR(si_request_set_input(rq, 0, tf64), SI_ERR_INVALID_ARG, "'X'");
    /* still unset after the refusals */
    CHECK_ERR(si_request_infer(rq), SI_ERR_INVALID_ARG, "not set");
    /* wrong shapes: second dimension fixed to 3; rank 2 */
    int64_t d24[2] = {2, 4}, d3[1] = {3}, d123[3] = {1, 2, 3}, d03[2] = {0, 3};
    CHECK_OK(si_tensor_create(SI_F32, 2, d24, &t24));
    CHECK_ERR(si_request_set_input(rq, 0, t24), SI_ERR_INVALID_ARG, "'X'");
    CHECK_OK(si_tensor_create(SI_F32, 1, d3, &t3));
    CHECK_ERR(si_request_set_input(rq, 0, t3), SI_ERR_INVALID_ARG, "'X'");
    CHECK_OK(si_tensor_create(SI_F32, 3, d123, &t123));
    CHECK_ERR(si_request_set_input(rq, 0, t123), SI_ERR_INVALID_ARG, "'X'");
    /* out-of-range indices */
    CHECK_OK(si_tensor_create(SI_F32, 2, d23, &tf));
    CHECK_STATUS(si_request_set_input(rq, 1, tf), SI_ERR_INVALID_ARG);
    CHECK(*si_last_error());
    CHECK_STATUS(si_request_set_input(rq, -1, tf), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_request_set_input(rq, 1 << 30, tf), SI_ERR_INVALID_ARG);
    /* a batch of 0 is a legal shape: runs, empty outputs */
    CHECK_OK(si_tensor_create(SI_F32, 2, d03, &t0));
    CHECK_OK(si_request_set_input(rq, 0, t0));
    si_result s = si_request_infer(rq);
    CHECK(s == SI_OK || s == SI_ERR_INVALID_ARG);
    if (s == SI_OK) {
        CHECK_OK(si_request_get_output(rq, 0, &o));
        CHECK(o && si_tensor_count(o) == 0 && si_tensor_dims(o)[0] == 0);
    }
    /* and then a good one */
    check_small_on_zeros(rq, tf);

    si_request_free(rq);
    si_compiled_free(cm);
    si_tensor_free(ti);
    si_tensor_free(tf);
    si_tensor_free(t24);
    si_tensor_free(t3);
    si_tensor_free(t123);
    si_tensor_free(t0);
    si_tensor_free(tf64);
}

/* ---- tensor files ------------------------------------------------------------------------------------------ */

static void test_tensor_files(void) {
    /* .npy files: the message names the file */
    static const struct {
        const char *file;
        si_result want;
    } npy[] = {{"bad_header.npy", SI_ERR_PARSE}, {"short_data.npy", SI_ERR_PARSE}, {"small.onnx", SI_ERR_PARSE},
               {"empty.onnx", SI_ERR_PARSE}, {"nope.npy", SI_ERR_IO}};
    si_tensor *t = (si_tensor *)&t;
    for (size_t i = 0; i < sizeof npy / sizeof npy[0]; i++) {
        t = (si_tensor *)&t;
        CHECK_ERR(si_tensor_read_npy(data_path(npy[i].file), &t), npy[i].want, npy[i].file);
        CHECK(t == NULL);
    }
    CHECK_STATUS(si_tensor_read_npy(SI_TEST_DATA, &t), SI_ERR_IO);
    CHECK(t == NULL);
    /* TensorProto files */
    char *name = (char *)&name;
    CHECK_ERR(si_tensor_read_pb(data_path("nope.pb"), &t, &name), SI_ERR_IO, "nope.pb");
    CHECK(t == NULL);
    CHECK_ERR(si_tensor_read_pb(data_path("text.onnx"), &t, NULL), SI_ERR_PARSE, "text.onnx");
    CHECK(t == NULL);
    /* a ModelProto is not a TensorProto: refused or at least not a crash; never a leak */
    name = NULL;
    si_result s = si_tensor_read_pb(data_path("small.onnx"), &t, &name);
    if (s == SI_OK) {
        si_tensor_free(t);
        si_free_string(name);
    } else {
        CHECK(t == NULL);
        CHECK(*si_last_error());
    }
    /* writing to a folder that does not exist */
    si_tensor *w = NULL;
    int64_t d[1] = {2};
    CHECK_OK(si_tensor_create(SI_F32, 1, d, &w));
    CHECK_ERR(si_tensor_write_npy(w, "/nonexistent-folder/x.npy"), SI_ERR_IO, "/nonexistent-folder/x.npy");
    si_tensor_free(w);
}

/* ---- NULL arguments ------------------------------------------------------------------------------------- */

static si_model *g_model;
static void summary_null(void *arg) { (void)arg; si_model_summary_get(g_model, NULL); }
static void summary_null_model(void *arg) {
    (void)arg;
    si_model_summary sm;
    si_model_summary_get(NULL, &sm);
}
static void opset_null_out(void *arg) { (void)arg; si_model_opset(g_model, 0, NULL, NULL); }
static void opset_null_model(void *arg) {
    (void)arg;
    const char *d;
    int64_t v;
    si_model_opset(NULL, 0, &d, &v);
}

static void test_null_args(void) {
    si_tensor *t = NULL;
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    int64_t d2[1] = {2};
    float buf[2] = {0};
    si_value_info vi;

    /* tensors */
    CHECK_ERR(si_tensor_create(SI_F32, 1, d2, NULL), SI_ERR_INVALID_ARG, "NULL");
    CHECK_STATUS(si_tensor_create(SI_F32, 1, NULL, &t), SI_ERR_INVALID_ARG);
    CHECK_ERR(si_tensor_wrap(SI_F32, 1, d2, buf, sizeof buf, NULL), SI_ERR_INVALID_ARG, "NULL");
    CHECK_STATUS(si_tensor_wrap(SI_F32, 1, NULL, buf, sizeof buf, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_wrap(SI_F32, 1, d2, NULL, sizeof buf, &t), SI_ERR_INVALID_ARG);
    CHECK(t == NULL);
    CHECK_STATUS(si_tensor_read_npy(NULL, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_read_npy(data_path("short_data.npy"), NULL), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_write_npy(NULL, "/tmp/x.npy"), SI_ERR_INVALID_ARG);
    CHECK_OK(si_tensor_create(SI_F32, 1, d2, &t));
    CHECK_STATUS(si_tensor_write_npy(t, NULL), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_read_pb(NULL, &t, NULL), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_read_pb(data_path("text.onnx"), NULL, NULL), SI_ERR_INVALID_ARG);
    si_tensor_free(t);
    t = NULL;

    /* models */
    CHECK_ERR(si_model_load(NULL, &m), SI_ERR_INVALID_ARG, "NULL");
    CHECK_ERR(si_model_load(data_path("small.onnx"), NULL), SI_ERR_INVALID_ARG, "NULL");
    CHECK_STATUS(si_model_load_memory(buf, sizeof buf, NULL, NULL), SI_ERR_INVALID_ARG);
    /* a NULL buffer with a length is the caller's mistake, not a malformed model */
    CHECK_STATUS(si_model_load_memory(NULL, 100, NULL, &m), SI_ERR_INVALID_ARG);
    CHECK(m == NULL);
    CHECK(si_model_num_inputs(NULL) == 0);
    CHECK(si_model_num_outputs(NULL) == 0);
    CHECK_STATUS(si_model_input_info(NULL, 0, &vi), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_output_info(NULL, 0, &vi), SI_ERR_INVALID_ARG);
    CHECK(si_model_input_index(NULL, "X") == -1);
    CHECK(si_model_output_index(NULL, "Y") == -1);
    CHECK_STATUS(si_model_set_dim(NULL, "batch", 1), SI_ERR_INVALID_ARG);
    int64_t d13[2] = {1, 3};
    CHECK_STATUS(si_model_set_input_shape(NULL, "X", 2, d13), SI_ERR_INVALID_ARG);
    CHECK(si_model_num_opsets(NULL) == 0);
    CHECK(si_model_num_nodes(NULL) == 0);
    CHECK(si_model_node_op(NULL, 0) == NULL);
    CHECK_NO_CRASH(summary_null_model, NULL);
    CHECK_NO_CRASH(opset_null_model, NULL);
    si_model_free(NULL);

    CHECK_OK(si_model_load(data_path("small.onnx"), &m));
    if (m) {
        CHECK_STATUS(si_model_input_info(m, 0, NULL), SI_ERR_INVALID_ARG);
        CHECK_STATUS(si_model_output_info(m, 0, NULL), SI_ERR_INVALID_ARG);
        CHECK(si_model_input_index(m, NULL) == -1);
        CHECK(si_model_output_index(m, NULL) == -1);
        CHECK_STATUS(si_model_set_dim(m, NULL, 1), SI_ERR_INVALID_ARG);
        CHECK_STATUS(si_model_set_input_shape(m, NULL, 2, d13), SI_ERR_INVALID_ARG);
        CHECK_STATUS(si_model_set_input_shape(m, "X", 2, NULL), SI_ERR_INVALID_ARG);
        /* void functions with output pointers: a NULL there must not crash */
        g_model = m;
        CHECK_NO_CRASH(summary_null, NULL);
        CHECK_NO_CRASH(opset_null_out, NULL);
    }

    /* configs */
    CHECK_ERR(si_config_create(NULL), SI_ERR_INVALID_ARG, "NULL");
    CHECK_STATUS(si_config_set(NULL, "devices", "REF"), SI_ERR_INVALID_ARG);
    CHECK_OK(si_config_create(&cfg));
    CHECK_STATUS(si_config_set(cfg, NULL, "REF"), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_config_set(cfg, "devices", NULL), SI_ERR_INVALID_ARG);
    CHECK(si_config_get(NULL, "devices") == NULL);
    CHECK(si_config_get(cfg, NULL) == NULL);
    si_config_free(NULL);

    /* compile and requests */
    CHECK_ERR(si_compile(NULL, cfg, &cm), SI_ERR_INVALID_ARG, "NULL");
    if (m) CHECK_STATUS(si_compile(m, cfg, NULL), SI_ERR_INVALID_ARG);
    CHECK(si_compiled_num_inputs(NULL) == 0);
    CHECK(si_compiled_num_outputs(NULL) == 0);
    CHECK(si_compiled_input_name(NULL, 0) == NULL);
    CHECK(si_compiled_output_name(NULL, 0) == NULL);
    CHECK(si_compiled_devices(NULL) != NULL);
    si_compiled_free(NULL);
    CHECK_ERR(si_request_create(NULL, &rq), SI_ERR_INVALID_ARG, "NULL");
    CHECK(rq == NULL);
    if (m) CHECK_OK(si_compile(m, cfg, &cm));
    if (cm) {
        CHECK_STATUS(si_request_create(cm, NULL), SI_ERR_INVALID_ARG);
        CHECK_OK(si_request_create(cm, &rq));
    }
    CHECK_STATUS(si_request_set_input(NULL, 0, t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_request_infer(NULL), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_request_get_output(NULL, 0, &t), SI_ERR_INVALID_ARG);
    if (rq) {
        CHECK_STATUS(si_request_set_input(rq, 0, NULL), SI_ERR_INVALID_ARG);
        CHECK_STATUS(si_request_get_output(rq, 0, NULL), SI_ERR_INVALID_ARG);
        CHECK_ERR(si_request_infer(rq), SI_ERR_INVALID_ARG, "not set");
    }
    si_request_free(NULL);
    si_request_free(rq);
    si_compiled_free(cm);
    si_config_free(cfg);
    si_model_free(m);
    si_free_string(NULL);
    si_tensor_free(NULL);
}

/* ---- malformed op inputs (reference kernels of the newer ops) ------------------------------------------------ */

static char bad_op_msg[1024];

/* Load data/<file>, compile it for `devices` and run it with the given inputs (NULL: zeros of the declared
 * shape): the first failing status, its message kept in bad_op_msg. */
static si_result run_bad_op(const char *file, const char *devices, int n_in, si_tensor *const *ins) {
    si_model *m = NULL;
    bad_op_msg[0] = 0;
    si_result s = si_model_load(data_path(file), &m);
    if (s) snprintf(bad_op_msg, sizeof bad_op_msg, "%s", si_last_error());
    else s = compile_infer_once(m, (const char *const[]){"devices", devices, NULL}, ins, n_in, bad_op_msg, sizeof bad_op_msg);
    si_model_free(m);
    return s;
}

static void test_bad_ops(void) {
    static const char *const devs[] = {"REF", "CPU"};
    int64_t d23[2] = {2, 3}, d2[1] = {2}, d1[1] = {1}, d142[3] = {1, 4, 2}, d122[3] = {1, 2, 2}, d1144[4] = {1, 1, 4, 4};
    si_tensor *x23 = NULL, *t2 = NULL, *p = NULL, *u = NULL, *w = NULL, *x44 = NULL, *bi = NULL;
    CHECK_OK(si_tensor_create(SI_F32, 2, d23, &x23));
    CHECK_OK(si_tensor_create(SI_I64, 1, d2, &t2));
    CHECK_OK(si_tensor_create(SI_F32, 3, d142, &p));
    CHECK_OK(si_tensor_create(SI_F32, 3, d122, &u));
    CHECK_OK(si_tensor_create(SI_I64, 1, d1, &w));
    CHECK_OK(si_tensor_create(SI_F32, 4, d1144, &x44));
    CHECK_OK(si_tensor_create(SI_I64, 1, d1, &bi));
    if (!x23 || !t2 || !p || !u || !w || !x44 || !bi) goto done;
    for (int d = 0; d < 2; d++) {
        /* a target outside [0, C) that is not ignore_index; the ignored -1 and valid targets run */
        int64_t *tv = si_tensor_data(t2);
        tv[0] = 1;
        tv[1] = 7;
        CHECK_STATUS(run_bad_op("op_bad_nll.onnx", devs[d], 2, (si_tensor *[]){x23, t2}), SI_ERR_INVALID_ARG);
        CHECK(strstr(bad_op_msg, "nll") && strstr(bad_op_msg, "target value 7") && strstr(bad_op_msg, "ignore_index"));
        tv[1] = -1;
        CHECK_OK(run_bad_op("op_bad_nll.onnx", devs[d], 2, (si_tensor *[]){x23, t2}));
        /* a grid of rank 3 for a rank-4 X */
        CHECK(run_bad_op("op_bad_gridsample.onnx", devs[d], 0, NULL) == SI_ERR_INVALID_ARG);
        CHECK(strstr(bad_op_msg, "gs") && strstr(bad_op_msg, "'grid' must have rank 4"));
        /* block_shape 3x3 with 4 values per column */
        CHECK(run_bad_op("op_bad_col2im.onnx", devs[d], 0, NULL) == SI_ERR_INVALID_ARG);
        CHECK(strstr(bad_op_msg, "c2i") && strstr(bad_op_msg, "not a multiple of prod(block_shape) = 9"));
        /* two updates written at 3 of 4 positions (linear): refused; at 2 they fit */
        ((int64_t *)si_tensor_data(w))[0] = 3;
        CHECK_STATUS(run_bad_op("op_bad_tensorscatter.onnx", devs[d], 3, (si_tensor *[]){p, u, w}), SI_ERR_INVALID_ARG);
        CHECK(strstr(bad_op_msg, "ts") && strstr(bad_op_msg, "write_indices[0] = 3"));
        ((int64_t *)si_tensor_data(w))[0] = 2;
        CHECK_OK(run_bad_op("op_bad_tensorscatter.onnx", devs[d], 3, (si_tensor *[]){p, u, w}));
        /* a batch index past the batch */
        ((int64_t *)si_tensor_data(bi))[0] = 5;
        CHECK_STATUS(run_bad_op("op_bad_roialign.onnx", devs[d], 2, (si_tensor *[]){x44, bi}), SI_ERR_INVALID_ARG);
        CHECK(strstr(bad_op_msg, "roi") && strstr(bad_op_msg, "batch_indices[0] = 5"));
    }
done:
    si_tensor_free(x23);
    si_tensor_free(t2);
    si_tensor_free(p);
    si_tensor_free(u);
    si_tensor_free(w);
    si_tensor_free(x44);
    si_tensor_free(bi);
}

int main(int argc, char **argv) {
    static void (*const tests[])(void) = {test_files, test_bad_models, test_external, test_request_errors,
                                          test_tensor_files, test_null_args, test_bad_ops, test_truncated,
                                          test_truncated_stream, test_random_bytes, test_mutations, NULL};
    return run_tests("test_bad_input", tmp_dir, sizeof tmp_dir, argc, argv, tests);
}
