/*
 * test_api.c — unit tests of the public API (include/safeinfer.h) on the fixtures in tests/data
 * (scripts/make_test_models.py).
 *
 *   test_api [BUILD_DIR]      temp files go to a fresh folder under BUILD_DIR (default /tmp), removed at the end
 *
 * Covers: status/dtype helpers; tensors (create, wrap, free(NULL), accessors, bad arguments); configuration
 * (keys, devices, threads); model loading and its information (inputs, outputs, dim names, summary, opsets,
 * nodes), set_dim / set_input_shape and their errors; compile, requests and inference with outputs computed
 * here by hand; the output tensor staying the same object across infers; recovery after a failed infer;
 * Clip at opsets 6, 11 and 13; Constant nodes; raw vs typed initializers; external data; loading from
 * memory; an output that is also an input; requests from several threads; MatMul and Gemm. Exit status 0
 * when every check passes.
 */
#include "si_test.h"

#include <stdint.h>

/* Under AddressSanitizer, let impossible allocations return NULL (as malloc does) instead of aborting, so
 * that the library's NO_MEM paths for huge shapes can be tested. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static char tmp_dir[4096];

/* ---- the valid model's arithmetic, written out: Y = Relu(X * W + B), Z = Transpose(Y) flattened ---------- */
static const float W_[3] = {1.0f, -2.0f, 0.5f};
static const float B_[3] = {0.5f, 1.0f, -1.0f};

static void small_expected(const float *x, int batch, float *y, float *z) {
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < 3; j++) {
            float a = x[b * 3 + j] * W_[j] + B_[j];
            y[b * 3 + j] = a > 0 ? a : 0;
        }
    for (int j = 0; j < 3; j++)
        for (int b = 0; b < batch; b++) z[j * batch + b] = y[b * 3 + j];
}

static si_model *load(const char *name) {
    si_model *m = NULL;
    si_result s = si_model_load(data_path(name), &m);
    if (s) fprintf(stderr, "loading %s: %s: %s\n", name, si_result_str(s), si_last_error());
    CHECK(m != NULL); /* every fixture loaded here must load */
    return m;
}

/* m compiled for the config's key/value pairs (NULL-terminated; NULL: no config, the defaults), and freed right
 * after: the compiled model must not need it. NULL (reported) on failure. */
static si_compiled *compile_model(si_model *m, const char *const *kv) {
    si_compiled *cm = NULL;
    si_config *cfg = NULL;
    if (!m) return NULL;
    si_result s = kv ? si_config_create(&cfg) : SI_OK;
    for (int i = 0; !s && kv && kv[i]; i += 2) s = si_config_set(cfg, kv[i], kv[i + 1]);
    if (!s) s = si_compile(m, cfg, &cm);
    if (s) fprintf(stderr, "compile: %s: %s\n", si_result_str(s), si_last_error());
    si_config_free(cfg);
    si_model_free(m);
    return cm;
}

/* Load, compile for REF and create a request; NULL on failure (reported). */
typedef struct runner {
    si_compiled *cm;
    si_request *rq;
} runner;

static int runner_open_model(runner *r, si_model *m) {
    memset(r, 0, sizeof *r);
    r->cm = compile_model(m, (const char *const[]){"devices", "REF", NULL});
    if (!r->cm) return 0;
    si_result s = si_request_create(r->cm, &r->rq);
    if (s) {
        fprintf(stderr, "request: %s: %s\n", si_result_str(s), si_last_error());
        si_compiled_free(r->cm);
        r->cm = NULL;
        return 0;
    }
    return 1;
}

static int runner_open(runner *r, const char *name) { return runner_open_model(r, load(name)); }

static void runner_close(runner *r) {
    si_request_free(r->rq);
    si_compiled_free(r->cm);
    memset(r, 0, sizeof *r);
}

/* Wrap x, float32 [d0, d1], as *tx (the caller frees it), bind it as input 0 of rq, infer, and fetch outputs 0
 * and 1 into *o0 and *o1 (NULL when they fail). */
static void infer_2d(si_request *rq, float *x, int64_t d0, int64_t d1, si_tensor **tx, si_tensor **o0, si_tensor **o1) {
    int64_t d[2] = {d0, d1};
    *tx = NULL, *o0 = NULL, *o1 = NULL;
    CHECK_OK(si_tensor_wrap(SI_F32, 2, d, x, sizeof(float) * (size_t)(d0 * d1), tx));
    CHECK_OK(si_request_set_input(rq, 0, *tx));
    CHECK_OK(si_request_infer(rq));
    CHECK_OK(si_request_get_output(rq, 0, o0));
    CHECK_OK(si_request_get_output(rq, 1, o1));
}

/* t (when not NULL) is [d0, d1] holding want. */
static void check_2d(const si_tensor *t, int64_t d0, int64_t d1, const float *want) {
    if (!t) return;
    CHECK(si_tensor_ndim(t) == 2 && si_tensor_dims(t)[0] == d0 && si_tensor_dims(t)[1] == d1);
    CHECK_FLOATS(si_tensor_data(t), want, d0 * d1);
}

/* A value's information: its name, float32, rank nd, dims[0] open and named dim0 (NULL: unnamed), dims[1] = dim1
 * when nd is 2. */
static void check_value_info(const si_value_info *vi, const char *name, int nd, const char *dim0, int64_t dim1) {
    CHECK_STREQ(vi->name, name);
    CHECK(vi->dtype == SI_F32);
    CHECK(vi->ndim == nd);
    CHECK(vi->dims[0] == -1);
    if (dim0) CHECK_STREQ(vi->dim_names[0], dim0);
    else CHECK(vi->dim_names[0] == NULL);
    if (nd == 2) CHECK(vi->dims[1] == dim1);
}

/* ---------------------------------------------------------------------------------------------------------- */

static void test_helpers(void) {
    CHECK_STREQ(si_result_str(SI_OK), "SI_OK");
    CHECK_STREQ(si_result_str(SI_ERR_INVALID_ARG), "SI_ERR_INVALID_ARG");
    CHECK_STREQ(si_result_str(SI_ERR_NO_MEM), "SI_ERR_NO_MEM");
    CHECK_STREQ(si_result_str(SI_ERR_IO), "SI_ERR_IO");
    CHECK_STREQ(si_result_str(SI_ERR_PARSE), "SI_ERR_PARSE");
    CHECK_STREQ(si_result_str(SI_ERR_UNSUPPORTED), "SI_ERR_UNSUPPORTED");
    CHECK_STREQ(si_result_str(SI_ERR_DEVICE), "SI_ERR_DEVICE");
    CHECK_STREQ(si_result_str(SI_ERR_ABORTED), "SI_ERR_ABORTED");
    CHECK_STREQ(si_result_str(SI_ERR_INTERNAL), "SI_ERR_INTERNAL");
    CHECK(si_result_str((si_result)99) != NULL);
    CHECK(si_result_str((si_result)-1) != NULL);
    CHECK(si_last_error() != NULL);
    CHECK_STREQ(si_dtype_name(SI_F32), "float32");
    CHECK_STREQ(si_dtype_name(SI_I64), "int64");
    CHECK_STREQ(si_dtype_name(SI_BF16), "bfloat16");
    CHECK_STREQ(si_dtype_name((si_dtype)99), "undefined");
    CHECK_STREQ(si_dtype_name((si_dtype)-3), "undefined");
    CHECK(si_dtype_size(SI_F32) == 4);
    CHECK(si_dtype_size(SI_F64) == 8);
    CHECK(si_dtype_size(SI_F16) == 2);
    CHECK(si_dtype_size(SI_BOOL) == 1);
    CHECK(si_dtype_size(SI_U64) == 8);
    CHECK(si_dtype_size(SI_STRING) == 0);
    CHECK(si_dtype_size(SI_DTYPE_UNDEFINED) == 0);
    CHECK(si_dtype_size((si_dtype)14) == 0);
    CHECK(si_dtype_size((si_dtype)1000) == 0);
}

static void test_tensors(void) {
    si_tensor *t = NULL;
    int64_t d23[2] = {2, 3};
    CHECK_OK(si_tensor_create(SI_F32, 2, d23, &t));
    CHECK(t != NULL);
    if (t) {
        CHECK(si_tensor_dtype(t) == SI_F32);
        CHECK(si_tensor_ndim(t) == 2);
        CHECK(si_tensor_dims(t) && si_tensor_dims(t)[0] == 2 && si_tensor_dims(t)[1] == 3);
        CHECK(si_tensor_count(t) == 6);
        CHECK(si_tensor_nbytes(t) == 24);
        const float *p = si_tensor_data(t);
        CHECK(p != NULL);
        int zero = 1;
        for (int i = 0; p && i < 6; i++) zero &= p[i] == 0.0f;
        CHECK(zero);
        /* the dims array is the tensor's own copy */
        d23[0] = 7;
        CHECK(si_tensor_dims(t)[0] == 2);
        d23[0] = 2;
    }
    si_tensor_free(t);

    /* rank 0: dims may be NULL, one element */
    t = NULL;
    CHECK_OK(si_tensor_create(SI_I64, 0, NULL, &t));
    CHECK(t && si_tensor_ndim(t) == 0 && si_tensor_count(t) == 1 && si_tensor_nbytes(t) == 8);
    si_tensor_free(t);

    /* zero-size dimension */
    int64_t d05[2] = {0, 5};
    t = NULL;
    CHECK_OK(si_tensor_create(SI_F32, 2, d05, &t));
    CHECK(t && si_tensor_count(t) == 0 && si_tensor_nbytes(t) == 0);
    si_tensor_free(t);

    /* every storable type; bool is one byte */
    const si_dtype all[] = {SI_F32, SI_U8, SI_I8, SI_U16, SI_I16, SI_I32, SI_I64, SI_BOOL, SI_F16, SI_F64, SI_U32, SI_U64, SI_BF16};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int64_t d4[1] = {4};
        t = NULL;
        CHECK_OK(si_tensor_create(all[i], 1, d4, &t));
        CHECK(t && si_tensor_nbytes(t) == 4 * si_dtype_size(all[i]) && si_tensor_dtype(t) == all[i]);
        si_tensor_free(t);
    }

    /* rank 8 is the maximum */
    int64_t d8[9] = {1, 1, 1, 1, 1, 1, 1, 2, 1};
    t = NULL;
    CHECK_OK(si_tensor_create(SI_F32, 8, d8, &t));
    CHECK(t && si_tensor_ndim(t) == 8 && si_tensor_count(t) == 2);
    si_tensor_free(t);

    /* bad arguments: INVALID_ARG and *out NULL */
    t = (si_tensor *)&t; /* garbage that must be overwritten */
    CHECK_ERR(si_tensor_create(SI_STRING, 2, d23, &t), SI_ERR_INVALID_ARG, "string");
    CHECK(t == NULL);
    CHECK_STATUS(si_tensor_create(SI_DTYPE_UNDEFINED, 2, d23, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_create((si_dtype)99, 2, d23, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_create((si_dtype)14, 2, d23, &t), SI_ERR_INVALID_ARG);
    /* header: "Errors: INVALID_ARG (bad dtype, rank or a negative dimension)" */
    CHECK_STATUS(si_tensor_create(SI_F32, 9, d8, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_create(SI_F32, -1, d23, &t), SI_ERR_INVALID_ARG);
    CHECK(t == NULL);
    CHECK_STATUS(si_tensor_create(SI_F32, 2, NULL, &t), SI_ERR_INVALID_ARG);
    int64_t dneg[2] = {2, -1};
    CHECK_ERR(si_tensor_create(SI_F32, 2, dneg, &t), SI_ERR_INVALID_ARG, "negative");
    CHECK(t == NULL);
    CHECK_STATUS(si_tensor_create(SI_F32, 2, d23, NULL), SI_ERR_INVALID_ARG);
    /* absurd shapes: refused (INVALID_ARG) or out of memory, never a crash */
    int64_t dhuge[3] = {INT64_C(1) << 40, INT64_C(1) << 40, INT64_C(1) << 40};
    si_result s = si_tensor_create(SI_F32, 3, dhuge, &t);
    CHECK(s == SI_ERR_INVALID_ARG || s == SI_ERR_NO_MEM);
    CHECK(t == NULL);
    int64_t dbig[2] = {INT64_C(1) << 28, INT64_C(1) << 28}; /* 2^56 elements: passes overflow checks, cannot fit */
    s = si_tensor_create(SI_F32, 2, dbig, &t);
    CHECK(s == SI_ERR_INVALID_ARG || s == SI_ERR_NO_MEM);
    CHECK(t == NULL);

    /* wrap: the caller's memory, not copied, not freed */
    float buf[6] = {1, 2, 3, 4, 5, 6};
    t = NULL;
    CHECK_OK(si_tensor_wrap(SI_F32, 2, d23, buf, sizeof buf, &t));
    CHECK(t && si_tensor_data(t) == (void *)buf && si_tensor_count(t) == 6 && si_tensor_nbytes(t) == sizeof buf);
    si_tensor_free(t); /* must not free buf (a stack array: ASan would report it) */
    CHECK(buf[5] == 6.0f);
    t = (si_tensor *)&t;
    CHECK_ERR(si_tensor_wrap(SI_F32, 2, d23, buf, sizeof buf - 4, &t), SI_ERR_INVALID_ARG, "bytes");
    CHECK(t == NULL);
    CHECK_STATUS(si_tensor_wrap(SI_F32, 2, d23, buf, sizeof buf + 4, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_wrap(SI_F32, 2, d23, NULL, sizeof buf, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_wrap(SI_F32, 2, d23, buf, sizeof buf, NULL), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_wrap(SI_STRING, 2, d23, buf, sizeof buf, &t), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_tensor_wrap(SI_F32, 2, dneg, buf, sizeof buf, &t), SI_ERR_INVALID_ARG);
    CHECK(t == NULL);
    /* an empty tensor may wrap NULL */
    t = NULL;
    CHECK_OK(si_tensor_wrap(SI_F32, 2, d05, NULL, 0, &t));
    CHECK(t && si_tensor_count(t) == 0);
    si_tensor_free(t);

    /* NULL tensor: accessors return neutral values, free is a no-op */
    si_tensor_free(NULL);
    CHECK(si_tensor_dtype(NULL) == SI_DTYPE_UNDEFINED);
    CHECK(si_tensor_ndim(NULL) == 0);
    CHECK(si_tensor_dims(NULL) == NULL);
    CHECK(si_tensor_count(NULL) == 0);
    CHECK(si_tensor_nbytes(NULL) == 0);
    CHECK(si_tensor_data(NULL) == NULL);
    si_free_string(NULL);
}

static void test_config(void) {
    si_config *c = NULL;
    CHECK_OK(si_config_create(&c));
    if (!c) return;
    CHECK(si_config_get(c, "devices") == NULL);
    CHECK(si_config_get(c, "threads") == NULL);
    CHECK_OK(si_config_set(c, "devices", "REF"));
    CHECK_STREQ(si_config_get(c, "devices"), "REF");
    CHECK_OK(si_config_set(c, "devices", "REF,CPU"));
    CHECK_STREQ(si_config_get(c, "devices"), "REF,CPU");
    /* strings are copied */
    char val[8] = "REF";
    CHECK_OK(si_config_set(c, "devices", val));
    val[0] = 'X';
    CHECK_STREQ(si_config_get(c, "devices"), "REF");

    /* bad devices: INVALID_ARG naming the culprit; the old value stays */
    CHECK_ERR(si_config_set(c, "devices", "FOO"), SI_ERR_INVALID_ARG, "FOO");
    CHECK_ERR(si_config_set(c, "devices", "REF,FOO"), SI_ERR_INVALID_ARG, "FOO");
    CHECK_ERR(si_config_set(c, "devices", "ref"), SI_ERR_INVALID_ARG, "ref"); /* case-sensitive */
    CHECK_STATUS(si_config_set(c, "devices", ""), SI_ERR_INVALID_ARG);
    CHECK(*si_last_error());
    CHECK_STATUS(si_config_set(c, "devices", "REF,"), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_config_set(c, "devices", ",REF"), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_config_set(c, "devices", "REF,,REF"), SI_ERR_INVALID_ARG);
    char longname[300];
    memset(longname, 'A', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    CHECK_STATUS(si_config_set(c, "devices", longname), SI_ERR_INVALID_ARG);
    CHECK_STREQ(si_config_get(c, "devices"), "REF");
    /* what si_compile would refuse, refused here with a named error (the old value stays) */
    CHECK_ERR(si_config_set(c, "devices", "REF,REF"), SI_ERR_INVALID_ARG, "REF is listed twice");
    CHECK_ERR(si_config_set(c, "devices", "CPU,REF,CPU"), SI_ERR_INVALID_ARG, "CPU is listed twice");
    CHECK_ERR(si_config_set(c, "devices", "OCL,OCL.0"), SI_ERR_INVALID_ARG, "listed twice"); /* one device */
    CHECK_ERR(si_config_set(c, "devices", "AUTO,CPU"), SI_ERR_INVALID_ARG, "CPU is listed twice (AUTO");
    CHECK_ERR(si_config_set(c, "devices", "REF, CPU"), SI_ERR_INVALID_ARG, "' CPU' contains a space");
    CHECK_ERR(si_config_set(c, "devices", " REF"), SI_ERR_INVALID_ARG, "space");
    CHECK_ERR(si_config_set(c, "devices", "REF "), SI_ERR_INVALID_ARG, "space");
    CHECK_ERR(si_config_set(c, "devices", "NPU"), SI_ERR_INVALID_ARG, "unknown device 'NPU' (known: AUTO");
    CHECK_ERR(si_config_set(c, "devices", "OCL.x"), SI_ERR_INVALID_ARG, "OCL.x");
    CHECK_ERR(si_config_set(c, "devices", "auto"), SI_ERR_INVALID_ARG, "auto");
    char many[256] = "";
    for (int i = 0; i <= SI_MAX_DEVICES; i++) /* OCL.0 .. OCL.16: known names, whether present or not */
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sOCL.%d", i ? "," : "", i + 1);
    CHECK_ERR(si_config_set(c, "devices", many), SI_ERR_INVALID_ARG, "more than 16 devices");
    CHECK_STREQ(si_config_get(c, "devices"), "REF");
    CHECK_OK(si_config_set(c, "devices", "AUTO"));
    CHECK_OK(si_config_set(c, "devices", "AUTO,REF"));
    CHECK_OK(si_config_set(c, "devices", "OCL.3,REF")); /* a known device absent here is fine */

    /* threads */
    CHECK_OK(si_config_set(c, "threads", "4"));
    CHECK_STREQ(si_config_get(c, "threads"), "4");
    const char *bad_threads[] = {"0", "-1", "abc", "4x", "", " ", "1025", "99999999999999999999999", "1.5",
                                 " 5", "5 ", "+5", "0x10", "5\n", "\t5"};
    for (size_t i = 0; i < sizeof bad_threads / sizeof bad_threads[0]; i++)
        CHECK_ERR(si_config_set(c, "threads", bad_threads[i]), SI_ERR_INVALID_ARG, "threads");
    CHECK_STREQ(si_config_get(c, "threads"), "4");
    CHECK_OK(si_config_set(c, "threads", "1"));
    CHECK_OK(si_config_set(c, "threads", "1024"));
    CHECK_STREQ(si_config_get(c, "threads"), "1024");
    /* plan_cache: plans the CPU device keeps for run-time shapes, 0..1024 */
    CHECK_ERR(si_config_set(c, "plan_cache", "1025"), SI_ERR_INVALID_ARG, "plan_cache");
    CHECK_ERR(si_config_set(c, "plan_cache", "-1"), SI_ERR_INVALID_ARG, "plan_cache");
    CHECK_ERR(si_config_set(c, "plan_cache", "two"), SI_ERR_INVALID_ARG, "plan_cache");
    CHECK_OK(si_config_set(c, "plan_cache", "0"));
    CHECK_OK(si_config_set(c, "plan_cache", "1024"));
    CHECK_STREQ(si_config_get(c, "plan_cache"), "1024");

    /* every key by its kind: numbers in range with digits only, on/off words, choices */
    CHECK_ERR(si_config_set(c, "retries", "101"), SI_ERR_INVALID_ARG, "retries: '101' is not a whole number in 0..100");
    CHECK_ERR(si_config_set(c, "retries", "-1"), SI_ERR_INVALID_ARG, "retries");
    CHECK_OK(si_config_set(c, "retries", "100"));
    CHECK_ERR(si_config_set(c, "infer_timeout_ms", "86400001"), SI_ERR_INVALID_ARG, "infer_timeout_ms");
    CHECK_ERR(si_config_set(c, "failback_ms", "10 "), SI_ERR_INVALID_ARG, "failback_ms");
    CHECK_OK(si_config_set(c, "compile_timeout_ms", "0"));
    CHECK_ERR(si_config_set(c, "standby", "yes"), SI_ERR_INVALID_ARG, "standby: 'yes' is not on or off");
    CHECK_ERR(si_config_set(c, "strict", " on"), SI_ERR_INVALID_ARG, "strict");
    CHECK_OK(si_config_set(c, "strict", "off"));
    CHECK_ERR(si_config_set(c, "check_outputs", "inf"), SI_ERR_INVALID_ARG, "check_outputs: 'inf' is not one of nan|off");
    CHECK_OK(si_config_set(c, "check_outputs", "nan"));
    CHECK_ERR(si_config_set(c, "faults", "OCL.infer=3x"), SI_ERR_INVALID_ARG, "3x");
    CHECK_OK(si_config_set(c, "faults", ""));

    /* the key table: each key is documented, its default is a value it accepts, and the "known" list of
     * the unknown-key message is the table's */
    int nk = si_config_num_keys();
    CHECK(nk >= 11);
    si_config_key_info ki;
    CHECK_STATUS(si_config_key(nk, &ki), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_config_key(-1, &ki), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_config_key(0, NULL), SI_ERR_INVALID_ARG);
    CHECK_ERR(si_config_set(c, "bogus", "1"), SI_ERR_INVALID_ARG, "bogus");
    char known[1024];
    snprintf(known, sizeof known, "%s", si_last_error());
    for (int i = 0; i < nk; i++) {
        CHECK_OK(si_config_key(i, &ki));
        CHECK(ki.name && ki.values && ki.default_value && ki.doc && strlen(ki.doc) > 10);
        if (!ki.name) continue;
        CHECK(strstr(known, ki.name) != NULL);
        si_config *d = NULL;
        CHECK_OK(si_config_create(&d));
        if (d) CHECK_OK(si_config_set(d, ki.name, ki.default_value));
        si_config_free(d);
    }

    /* unknown keys */
    CHECK_ERR(si_config_set(c, "bogus", "1"), SI_ERR_INVALID_ARG, "bogus");
    CHECK_STATUS(si_config_set(c, "", "1"), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_config_set(c, "Devices", "REF"), SI_ERR_INVALID_ARG);
    CHECK(si_config_get(c, "bogus") == NULL);
    CHECK(si_config_get(c, "nope") == NULL);
    si_config_free(c);
    si_config_free(NULL);
}

static void test_model_info(void) {
    si_model *m = load("small.onnx");
    if (!m) return;
    CHECK(si_model_num_inputs(m) == 1);
    CHECK(si_model_num_outputs(m) == 2);

    si_value_info vi;
    CHECK_OK(si_model_input_info(m, 0, &vi));
    check_value_info(&vi, "X", 2, "batch", 3);
    CHECK(vi.dim_names[1] == NULL);
    for (int i = 2; i < SI_MAX_DIMS; i++) CHECK(vi.dims[i] == -1 && vi.dim_names[i] == NULL);

    CHECK_OK(si_model_output_info(m, 0, &vi));
    check_value_info(&vi, "Y", 2, "batch", 3);
    CHECK_OK(si_model_output_info(m, 1, &vi));
    check_value_info(&vi, "Z", 1, NULL, 0);

    CHECK_STATUS(si_model_input_info(m, 1, &vi), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_input_info(m, -1, &vi), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_output_info(m, 2, &vi), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_output_info(m, -1, &vi), SI_ERR_INVALID_ARG);
    CHECK(si_model_input_index(m, "X") == 0);
    CHECK(si_model_input_index(m, "W") == -1); /* initializers are not inputs */
    CHECK(si_model_input_index(m, "Y") == -1);
    CHECK(si_model_input_index(m, "") == -1);
    CHECK(si_model_output_index(m, "Y") == 0);
    CHECK(si_model_output_index(m, "Z") == 1);
    CHECK(si_model_output_index(m, "X") == -1);

    si_model_summary sm;
    si_model_summary_get(m, &sm);
    CHECK(sm.ir_version == 8);
    CHECK_STREQ(sm.producer, "safeinfer-tests");
    CHECK(sm.n_nodes == 5);
    CHECK(sm.n_initializers == 3);
    CHECK(sm.n_params == 7);
    CHECK(sm.param_bytes == 32);
    CHECK(si_model_num_opsets(m) == 1);
    const char *dom = NULL;
    int64_t ver = 0;
    si_model_opset(m, 0, &dom, &ver);
    CHECK_STREQ(dom, "");
    CHECK(ver == 17);
    si_model_opset(m, 5, &dom, &ver); /* out of range: "" and 0 */
    CHECK_STREQ(dom, "");
    CHECK(ver == 0);
    CHECK(si_model_num_nodes(m) == 5);
    const char *ops[5] = {"Mul", "Add", "Relu", "Transpose", "Reshape"};
    for (int i = 0; i < 5; i++) CHECK_STREQ(si_model_node_op(m, i), ops[i]);
    CHECK(si_model_node_op(m, 5) == NULL);
    CHECK(si_model_node_op(m, -1) == NULL);

    /* set_dim: fixes the input and what inference derives from it; the name stays */
    CHECK_OK(si_model_set_dim(m, "batch", 4));
    CHECK_OK(si_model_input_info(m, 0, &vi));
    CHECK(vi.ndim == 2 && vi.dims[0] == 4 && vi.dims[1] == 3);
    CHECK_STREQ(vi.dim_names[0], "batch");
    CHECK_OK(si_model_output_info(m, 0, &vi));
    CHECK(vi.ndim == 2 && vi.dims[0] == 4 && vi.dims[1] == 3);
    CHECK_OK(si_model_output_info(m, 1, &vi));
    CHECK(vi.ndim == 1 && vi.dims[0] == 12);
    CHECK_OK(si_model_set_dim(m, "batch", 2)); /* may be changed again */
    CHECK_OK(si_model_input_info(m, 0, &vi));
    CHECK(vi.dims[0] == 2);
    CHECK_OK(si_model_output_info(m, 1, &vi));
    CHECK(vi.ndim == 1 && vi.dims[0] == 6);
    CHECK_ERR(si_model_set_dim(m, "nope", 2), SI_ERR_INVALID_ARG, "nope");
    CHECK_ERR(si_model_set_dim(m, "batch", 0), SI_ERR_INVALID_ARG, "batch");
    CHECK_STATUS(si_model_set_dim(m, "batch", -5), SI_ERR_INVALID_ARG);
    CHECK_OK(si_model_input_info(m, 0, &vi));
    CHECK(vi.dims[0] == 2); /* failed calls change nothing */

    /* set_input_shape */
    int64_t s53[2] = {5, 3}, s54[2] = {5, 4}, s513[3] = {5, 1, 3}, sneg[2] = {-2, 3};
    CHECK_OK(si_model_set_input_shape(m, "X", 2, s53));
    CHECK_OK(si_model_input_info(m, 0, &vi));
    CHECK(vi.ndim == 2 && vi.dims[0] == 5 && vi.dims[1] == 3);
    CHECK_OK(si_model_output_info(m, 0, &vi));
    CHECK(vi.dims[0] == 5 && vi.dims[1] == 3);
    CHECK_ERR(si_model_set_input_shape(m, "X", 2, s54), SI_ERR_INVALID_ARG, "X");
    CHECK_ERR(si_model_set_input_shape(m, "X", 3, s513), SI_ERR_INVALID_ARG, "rank");
    CHECK_ERR(si_model_set_input_shape(m, "nope", 2, s53), SI_ERR_INVALID_ARG, "nope");
    CHECK_ERR(si_model_set_input_shape(m, "W", 1, s53), SI_ERR_INVALID_ARG, "W"); /* an initializer */
    CHECK_STATUS(si_model_set_input_shape(m, "X", 2, sneg), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_set_input_shape(m, "X", 9, s53), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_set_input_shape(m, "X", -1, s53), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_model_set_input_shape(m, "X", 2, NULL), SI_ERR_INVALID_ARG);
    CHECK_OK(si_model_input_info(m, 0, &vi));
    CHECK(vi.ndim == 2 && vi.dims[0] == 5 && vi.dims[1] == 3);
    si_model_free(m);
    si_model_free(NULL);
}

/* compile + request + infer on small.onnx; Y and Z checked against the arithmetic above */
static void test_infer_small(void) {
    si_compiled *cm = compile_model(load("small.onnx"), (const char *const[]){"devices", "REF", "threads", "2", NULL});
    CHECK(cm != NULL);
    if (!cm) return;
    CHECK(si_compiled_num_inputs(cm) == 1);
    CHECK(si_compiled_num_outputs(cm) == 2);
    CHECK_STREQ(si_compiled_input_name(cm, 0), "X");
    CHECK_STREQ(si_compiled_output_name(cm, 0), "Y");
    CHECK_STREQ(si_compiled_output_name(cm, 1), "Z");
    CHECK(si_compiled_input_name(cm, 1) == NULL);
    CHECK(si_compiled_input_name(cm, -1) == NULL);
    CHECK(si_compiled_output_name(cm, 2) == NULL);
    CHECK_STREQ(si_compiled_devices(cm), "REF");

    si_request *rq = NULL;
    CHECK_OK(si_request_create(cm, &rq));
    CHECK(rq != NULL);
    if (!rq) { si_compiled_free(cm); return; }

    /* first run, batch 2, values by hand:
     *   X*W+B = [[1.5,-3,0.5],[-0.5,5,-2.5]] -> Y = [[1.5,0,0.5],[0,5,0]], Z = [1.5,0, 0,5, 0.5,0] */
    float x1[6] = {1, 2, 3, -1, -2, -3};
    const float y1[6] = {1.5f, 0, 0.5f, 0, 5, 0};
    const float z1[6] = {1.5f, 0, 0, 5, 0.5f, 0};
    int64_t d1[2] = {2, 3};
    si_tensor *tx1, *ty, *tz;
    infer_2d(rq, x1, 2, 3, &tx1, &ty, &tz);
    CHECK(ty && tz);
    if (!ty || !tz) goto out;
    CHECK(si_tensor_dtype(ty) == SI_F32 && si_tensor_ndim(ty) == 2 && si_tensor_dims(ty)[0] == 2 && si_tensor_dims(ty)[1] == 3);
    CHECK(si_tensor_count(ty) == 6 && si_tensor_nbytes(ty) == 24);
    CHECK_FLOATS(si_tensor_data(ty), y1, 6);
    CHECK(si_tensor_dtype(tz) == SI_F32 && si_tensor_ndim(tz) == 1 && si_tensor_dims(tz)[0] == 6);
    CHECK_FLOATS(si_tensor_data(tz), z1, 6);
    CHECK_STATUS(si_request_get_output(rq, 2, &ty), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_request_get_output(rq, -1, &ty), SI_ERR_INVALID_ARG);
    CHECK_OK(si_request_get_output(rq, 0, &ty));

    /* the same again gives the same */
    CHECK_OK(si_request_infer(rq));
    CHECK_FLOATS(si_tensor_data(ty), y1, 6);

    /* second run, batch 3, other values: the output objects are the same, with new shapes and values */
    float x2[9] = {0.25f, -1, 8, 10, 0.5f, 2, -4, -0.25f, 1};
    float y2[9], z2[9];
    small_expected(x2, 3, y2, z2);
    /* by hand: [0.75, 3, 3], [10.5, 0, 0], [0, 1.5, 0] */
    const float y2_hand[9] = {0.75f, 3, 3, 10.5f, 0, 0, 0, 1.5f, 0};
    CHECK_FLOATS(y2, y2_hand, 9);
    si_tensor *tx2, *ty2, *tz2;
    infer_2d(rq, x2, 3, 3, &tx2, &ty2, &tz2);
    CHECK(ty2 == ty);
    CHECK(tz2 == tz);
    CHECK(si_tensor_ndim(ty) == 2 && si_tensor_dims(ty)[0] == 3 && si_tensor_dims(ty)[1] == 3);
    CHECK(si_tensor_count(ty) == 9 && si_tensor_nbytes(ty) == 36);
    CHECK_FLOATS(si_tensor_data(ty), y2, 9);
    CHECK(si_tensor_ndim(tz) == 1 && si_tensor_dims(tz)[0] == 9);
    CHECK_FLOATS(si_tensor_data(tz), z2, 9);

    /* the input is borrowed: changing its data and running again gives new results */
    x2[0] = 100;
    small_expected(x2, 3, y2, z2);
    CHECK_OK(si_request_infer(rq));
    CHECK_FLOATS(si_tensor_data(ty), y2, 9);
    CHECK(y2[0] == 100.5f);

    /* a second request on the same compiled model is independent */
    si_request *rq2 = NULL;
    CHECK_OK(si_request_create(cm, &rq2));
    if (rq2) {
        CHECK_OK(si_request_set_input(rq2, 0, tx1));
        CHECK_OK(si_request_infer(rq2));
        si_tensor *o = NULL;
        CHECK_OK(si_request_get_output(rq2, 0, &o));
        CHECK(o && o != ty);
        if (o) CHECK_FLOATS(si_tensor_data(o), y1, 6);
        CHECK_FLOATS(si_tensor_data(ty), y2, 9); /* the first request's output is untouched */
        si_request_free(rq2);
    }

    /* an owned input tensor (si_tensor_create) and write into its data */
    si_tensor *tx3 = NULL;
    CHECK_OK(si_tensor_create(SI_F32, 2, d1, &tx3));
    if (tx3) {
        memcpy(si_tensor_data(tx3), x1, sizeof x1);
        CHECK_OK(si_request_set_input(rq, 0, tx3));
        CHECK_OK(si_request_infer(rq));
        CHECK_FLOATS(si_tensor_data(ty), y1, 6);
    }

    /* outputs can be written as .npy and read back */
    char npy[4200];
    snprintf(npy, sizeof npy, "%s/y.npy", tmp_dir);
    CHECK_OK(si_tensor_write_npy(ty, npy));
    si_tensor *back = NULL;
    CHECK_OK(si_tensor_read_npy(npy, &back));
    CHECK(back && si_tensor_ndim(back) == 2 && si_tensor_dims(back)[0] == 2 && si_tensor_dtype(back) == SI_F32);
    if (back) CHECK_FLOATS(si_tensor_data(back), y1, 6);
    si_tensor_free(back);
    remove(npy);

out:
    si_request_free(rq); /* frees the output tensors */
    si_tensor_free(tx1);
    si_tensor_free(tx2);
    si_tensor_free(tx3);
    si_compiled_free(cm);
    si_request_free(NULL);
    si_compiled_free(NULL);
}

/* compile without a config (default devices), and with a fixed batch: ports check the fixed dimension */
static void test_compile_variants(void) {
    si_model *m = load("small.onnx");
    if (!m) return;
    si_compiled *cm = NULL;
    CHECK_OK(si_compile(m, NULL, &cm));
#ifdef SI_HAVE_CPU
    if (cm) CHECK(strstr(si_compiled_devices(cm), "CPU") != NULL); /* AUTO: ... then CPU */
#else
    if (cm) CHECK_STREQ(si_compiled_devices(cm), "REF");
#endif
    si_compiled_free(cm);

    CHECK_OK(si_model_set_dim(m, "batch", 2));
    cm = NULL;
    CHECK_OK(si_compile(m, NULL, &cm));
    si_model_free(m);
    if (!cm) return;
    si_request *rq = NULL;
    CHECK_OK(si_request_create(cm, &rq));
    if (rq) {
        float x[9] = {0};
        int64_t d33[2] = {3, 3}, d23[2] = {2, 3};
        si_tensor *t33 = NULL, *t23 = NULL;
        CHECK_OK(si_tensor_wrap(SI_F32, 2, d33, x, sizeof x, &t33));
        CHECK_OK(si_tensor_wrap(SI_F32, 2, d23, x, 6 * sizeof(float), &t23));
        CHECK_ERR(si_request_set_input(rq, 0, t33), SI_ERR_INVALID_ARG, "X");
        check_small_on_zeros(rq, t23);
        si_tensor_free(t33);
        si_tensor_free(t23);
        si_request_free(rq);
    }
    si_compiled_free(cm);

    /* a config with a bad device list cannot be built; a config naming only REF compiles */
    si_config *cfg = NULL;
    CHECK_OK(si_config_create(&cfg));
    CHECK_STATUS(si_config_set(cfg, "devices", "GPU"), SI_ERR_INVALID_ARG);
    m = load("small.onnx");
    cm = NULL;
    if (m) CHECK_OK(si_compile(m, cfg, &cm)); /* nothing was set: default devices (AUTO) */
#ifdef SI_HAVE_CPU
    /* AUTO: GPU/accelerator OpenCL devices, then CPU; a CPU-type OpenCL device (PoCL) is not picked, so
     * the list ends with CPU and, on a machine without a GPU, is CPU alone */
    if (cm) {
        const char *d = si_compiled_devices(cm);
        CHECK(strlen(d) >= 3 && !strcmp(d + strlen(d) - 3, "CPU"));
        CHECK(!strstr(d, "REF"));
    }
#endif
    si_compiled_free(cm);
    cm = NULL;
    /* NULL config: the same defaults */
    if (m) CHECK_OK(si_compile(m, NULL, &cm));
    si_compiled_free(cm);
    cm = NULL;
    /* a bad $SAFEINFER_FAULTS (read when the config has no faults) is refused by si_compile by name */
    setenv("SAFEINFER_FAULTS", "REF.infer=sometimes", 1);
    if (m) CHECK_ERR(si_compile(m, cfg, &cm), SI_ERR_INVALID_ARG, "sometimes");
    CHECK(cm == NULL);
    CHECK_OK(si_config_set(cfg, "faults", "")); /* an explicit empty spec: no faults, the variable is ignored */
    if (m) CHECK_OK(si_compile(m, cfg, &cm));
    unsetenv("SAFEINFER_FAULTS");
    si_compiled_free(cm);
    si_model_free(m);
    si_config_free(cfg);
}

/* A failed infer leaves the request usable, and the outputs keep the last successful results. */
static void test_error_recovery(void) {
    runner r;
    if (!runner_open(&r, "add_dyn.onnx")) { CHECK(0); return; }
    float a[6] = {1, 2, 3, 4, 5, 6}, b3[3] = {10, 20, 30}, b4[4] = {1, 1, 1, 1};
    int64_t da[2] = {2, 3}, db3[1] = {3}, db4[1] = {4};
    si_tensor *ta = NULL, *tb3 = NULL, *tb4 = NULL;
    CHECK_OK(si_tensor_wrap(SI_F32, 2, da, a, sizeof a, &ta));
    CHECK_OK(si_tensor_wrap(SI_F32, 1, db3, b3, sizeof b3, &tb3));
    CHECK_OK(si_tensor_wrap(SI_F32, 1, db4, b4, sizeof b4, &tb4));

    /* missing inputs first */
    CHECK_ERR(si_request_infer(r.rq), SI_ERR_INVALID_ARG, "not set");
    CHECK_OK(si_request_set_input(r.rq, 0, ta));
    CHECK_ERR(si_request_infer(r.rq), SI_ERR_INVALID_ARG, "'B'");
    CHECK_OK(si_request_set_input(r.rq, 1, tb3));
    CHECK_OK(si_request_infer(r.rq));
    si_tensor *c = NULL;
    CHECK_OK(si_request_get_output(r.rq, 0, &c));
    const float want1[6] = {11, 22, 33, 14, 25, 36};
    if (c) CHECK_FLOATS(si_tensor_data(c), want1, 6);

    /* B of length 4 passes the port check ([n]) but cannot broadcast with [2,3]: infer fails */
    CHECK_OK(si_request_set_input(r.rq, 1, tb4));
    CHECK_ERR(si_request_infer(r.rq), SI_ERR_INVALID_ARG, "broadcast");
    si_tensor *c2 = NULL;
    CHECK_OK(si_request_get_output(r.rq, 0, &c2));
    CHECK(c2 == c);
    if (c2) {
        CHECK(si_tensor_ndim(c2) == 2 && si_tensor_dims(c2)[0] == 2 && si_tensor_dims(c2)[1] == 3);
        CHECK_FLOATS(si_tensor_data(c2), want1, 6); /* still the last successful results */
    }
    /* and again, to be sure a failure does not leave half a state behind */
    CHECK_STATUS(si_request_infer(r.rq), SI_ERR_INVALID_ARG);

    /* back to a good input: works, new values in the same object */
    b3[0] = -1;
    CHECK_OK(si_request_set_input(r.rq, 1, tb3));
    CHECK_OK(si_request_infer(r.rq));
    const float want2[6] = {0, 22, 33, 3, 25, 36};
    CHECK_OK(si_request_get_output(r.rq, 0, &c2));
    CHECK(c2 == c);
    if (c2) CHECK_FLOATS(si_tensor_data(c2), want2, 6);

    /* bad set_input calls change nothing either */
    int64_t dl[1] = {6};
    si_tensor *ti = NULL;
    int64_t iv[6] = {0};
    CHECK_OK(si_tensor_wrap(SI_I64, 1, dl, iv, sizeof iv, &ti));
    CHECK_ERR(si_request_set_input(r.rq, 1, ti), SI_ERR_INVALID_ARG, "B");
    CHECK_STATUS(si_request_set_input(r.rq, 2, tb3), SI_ERR_INVALID_ARG);
    CHECK_STATUS(si_request_set_input(r.rq, -1, tb3), SI_ERR_INVALID_ARG);
    CHECK_OK(si_request_infer(r.rq));
    if (c) CHECK_FLOATS(si_tensor_data(c), want2, 6);

    si_tensor_free(ti);
    runner_close(&r);
    si_tensor_free(ta);
    si_tensor_free(tb3);
    si_tensor_free(tb4);
}

/* run a single-input, single-output model on n values of type dt; the output's data copied to out */
static void run_one(const char *model, si_dtype dt, const void *x, int n, void *out, size_t esz) {
    runner r;
    memset(out, 0, (size_t)n * esz);
    if (!runner_open(&r, model)) { CHECK(0 && "runner_open"); return; }
    int64_t d[1] = {n};
    si_tensor *tx = NULL;
    CHECK_OK(si_tensor_wrap(dt, 1, d, (void *)x, (size_t)n * esz, &tx));
    CHECK_OK(si_request_set_input(r.rq, 0, tx));
    si_result s = si_request_infer(r.rq);
    if (s) fprintf(stderr, "%s: infer: %s: %s\n", model, si_result_str(s), si_last_error());
    CHECK(s == SI_OK);
    si_tensor *y = NULL;
    if (!s && !si_request_get_output(r.rq, 0, &y) && y) {
        CHECK(si_tensor_dtype(y) == dt && si_tensor_count(y) == n);
        if (si_tensor_data(y) && si_tensor_nbytes(y) == (size_t)n * esz) memcpy(out, si_tensor_data(y), (size_t)n * esz);
    }
    si_tensor_free(tx);
    runner_close(&r);
}

static void test_clip_opsets(void) {
    const float x[6] = {-3, -1, -0.5f, 0.5f, 2, 5};
    float y[6];
    /* opset 6: attributes min=-1, max=2 */
    const float want6[6] = {-1, -1, -0.5f, 0.5f, 2, 2};
    run_one("clip6.onnx", SI_F32, x, 6, y, 4);
    CHECK_FLOATS(y, want6, 6);
    /* opset 11: inputs min=-1, max=2 */
    run_one("clip11.onnx", SI_F32, x, 6, y, 4);
    CHECK_FLOATS(y, want6, 6);
    /* opset 13: no min, max=0.5 */
    const float want13[6] = {-3, -1, -0.5f, 0.5f, 0.5f, 0.5f};
    run_one("clip13.onnx", SI_F32, x, 6, y, 4);
    CHECK_FLOATS(y, want13, 6);
    /* opset 13 on int32: min=-2, max=3 */
    const int32_t xi[6] = {-5, -2, 0, 1, 3, 7};
    const int32_t wanti[6] = {-2, -2, 0, 1, 3, 3};
    int32_t yi[6];
    run_one("clip13_int.onnx", SI_I32, xi, 6, yi, 4);
    CHECK(memcmp(yi, wanti, sizeof yi) == 0);

    /* the opset is what the model says */
    si_model *m = load("clip6.onnx");
    if (m) {
        const char *dom;
        int64_t ver;
        si_model_opset(m, 0, &dom, &ver);
        CHECK(ver == 6);
        si_model_free(m);
    }
}

static void test_constant(void) {
    runner r;
    if (!runner_open(&r, "constant.onnx")) { CHECK(0); return; }
    float x[6] = {0, 1, 2, 3, 4, 5};
    si_tensor *tx, *y, *z;
    infer_2d(r.rq, x, 2, 3, &tx, &y, &z);
    /* Y = X + [1,2,3]; Z = Reshape(Y, [3,2]) */
    const float want[6] = {1, 3, 5, 4, 6, 8};
    check_2d(y, 2, 3, want);
    check_2d(z, 3, 2, want);
    x[5] = -5;
    CHECK_OK(si_request_infer(r.rq));
    const float want2[6] = {1, 3, 5, 4, 6, -2};
    if (y) CHECK_FLOATS(si_tensor_data(y), want2, 6);
    si_tensor_free(tx);
    runner_close(&r);

    si_model *m = load("constant.onnx");
    if (m) {
        si_value_info vi;
        CHECK_OK(si_model_output_info(m, 1, &vi));
        CHECK(vi.ndim == 2 && vi.dims[0] == 3 && vi.dims[1] == 2);
        CHECK(si_model_num_nodes(m) == 4);
        si_model_free(m);
    }
}

/* run the small model (or a variant) on batch 2 and copy Y, Z */
static int run_small_variant(si_model *m, float y[6], float z[6]) {
    runner r;
    if (!runner_open_model(&r, m)) return 0;
    float x[6] = {1, 2, 3, -1, -2, -3};
    int64_t d[2] = {2, 3};
    si_tensor *tx = NULL, *ty = NULL, *tz = NULL;
    int ok = !si_tensor_wrap(SI_F32, 2, d, x, sizeof x, &tx) && !si_request_set_input(r.rq, 0, tx) &&
             !si_request_infer(r.rq) && !si_request_get_output(r.rq, 0, &ty) && !si_request_get_output(r.rq, 1, &tz) &&
             si_tensor_nbytes(ty) == 24 && si_tensor_nbytes(tz) == 24;
    if (ok) {
        memcpy(y, si_tensor_data(ty), 24);
        memcpy(z, si_tensor_data(tz), 24);
    } else {
        fprintf(stderr, "run_small_variant: %s\n", si_last_error());
    }
    si_tensor_free(tx);
    runner_close(&r);
    return ok;
}

static void test_initializer_forms(void) {
    const float y1[6] = {1.5f, 0, 0.5f, 0, 5, 0};
    const float z1[6] = {1.5f, 0, 0, 5, 0.5f, 0};
    float yr[6], zr[6], yt[6], zt[6], ye[6], ze[6], ym[6], zm[6];
    CHECK(run_small_variant(load("small.onnx"), yr, zr));
    CHECK_FLOATS(yr, y1, 6);
    CHECK_FLOATS(zr, z1, 6);
    CHECK(run_small_variant(load("small_typed.onnx"), yt, zt));
    CHECK(memcmp(yr, yt, sizeof yr) == 0 && memcmp(zr, zt, sizeof zr) == 0);

    si_model *m = load("small_typed.onnx");
    if (m) {
        si_model_summary sm;
        si_model_summary_get(m, &sm);
        CHECK(sm.n_initializers == 3 && sm.n_params == 7 && sm.param_bytes == 32);
        si_model_free(m);
    }

    /* external data next to the model */
    m = load("ext.onnx");
    if (m) {
        si_model_summary sm;
        si_model_summary_get(m, &sm);
        CHECK(sm.n_initializers == 3 && sm.param_bytes == 32);
        CHECK(run_small_variant(m, ye, ze));
        CHECK(memcmp(yr, ye, sizeof yr) == 0 && memcmp(zr, ze, sizeof zr) == 0);
    }

    /* from memory: the buffer may be freed right after loading */
    size_t len;
    unsigned char *buf = read_all(data_path("small.onnx"), &len);
    m = NULL;
    CHECK_OK(si_model_load_memory(buf, len, NULL, &m));
    memset(buf, 0xAB, len);
    free(buf);
    CHECK(m != NULL);
    if (m) {
        CHECK(run_small_variant(m, ym, zm));
        CHECK(memcmp(yr, ym, sizeof yr) == 0 && memcmp(zr, zm, sizeof zr) == 0);
    }

    /* external data from memory: refused without a folder, loaded with one */
    buf = read_all(data_path("ext.onnx"), &len);
    m = (si_model *)&m;
    CHECK_ERR(si_model_load_memory(buf, len, NULL, &m), SI_ERR_INVALID_ARG, "ext.bin");
    CHECK(m == NULL);
    m = NULL;
    CHECK_OK(si_model_load_memory(buf, len, SI_TEST_DATA, &m));
    if (m) {
        memset(ym, 0, sizeof ym);
        CHECK(run_small_variant(m, ym, zm));
        CHECK(memcmp(yr, ym, sizeof yr) == 0);
    }
    /* a folder without the file: IO */
    m = (si_model *)&m;
    CHECK_ERR(si_model_load_memory(buf, len, tmp_dir, &m), SI_ERR_IO, "ext.bin");
    CHECK(m == NULL);
    free(buf);
}

/* two outputs, the second is the graph input itself */
static void test_passthrough(void) {
    runner r;
    if (!runner_open(&r, "passthrough.onnx")) { CHECK(0); return; }
    CHECK(si_compiled_num_outputs(r.cm) == 2);
    CHECK_STREQ(si_compiled_output_name(r.cm, 1), "X");
    float x[4] = {-1, 2, -3, 4};
    si_tensor *tx, *y, *xo;
    infer_2d(r.rq, x, 2, 2, &tx, &y, &xo);
    const float wy[4] = {0, 2, 0, 4}, wx[4] = {-1, 2, -3, 4};
    if (y) CHECK_FLOATS(si_tensor_data(y), wy, 4);
    if (xo) CHECK(xo != tx);
    check_2d(xo, 2, 2, wx);
    /* the output is the request's copy: it does not follow later changes of the caller's tensor */
    x[0] = 9;
    if (xo) CHECK(((float *)si_tensor_data(xo))[0] == -1);
    CHECK_OK(si_request_infer(r.rq));
    const float wy2[4] = {9, 2, 0, 4}, wx2[4] = {9, 2, -3, 4};
    if (y) CHECK_FLOATS(si_tensor_data(y), wy2, 4);
    if (xo) CHECK_FLOATS(si_tensor_data(xo), wx2, 4);
    si_tensor_free(tx);
    runner_close(&r);
    /* the caller's tensor is still fine after the request is gone */
    CHECK(x[3] == 4);
}

/* Requests created and run from several threads on one compiled model (the header allows
 * si_request_create from many threads; each thread then uses its own request). */
static void thread_main(test_thread *t) {
    for (int rep = 0; rep < 20 && !t->failed; rep++) {
        si_request *rq = test_thread_request(t);
        if (!rq) break;
        float x[6];
        for (int i = 0; i < 6; i++) x[i] = (float)(t->id * 10 + rep - i);
        float y[6], z[6];
        small_expected(x, 2, y, z);
        int64_t d[2] = {2, 3};
        si_tensor *tx = NULL, *ty = NULL;
        if (si_tensor_wrap(SI_F32, 2, d, x, sizeof x, &tx) || si_request_set_input(rq, 0, tx) || si_request_infer(rq) ||
            si_request_get_output(rq, 0, &ty) || si_tensor_nbytes(ty) != sizeof y) {
            test_thread_failed(t, "infer");
        } else {
            const float *p = si_tensor_data(ty);
            int good = 1;
            for (int i = 0; i < 6; i++)
                if (!(fabsf(p[i] - y[i]) <= 1e-6f * (1.0f + fabsf(y[i])))) good = 0;
            if (good) t->ok++;
            else test_thread_failed(t, "output differs");
        }
        si_tensor_free(tx);
        si_request_free(rq);
    }
}

static void test_threads(void) {
    si_compiled *cm = compile_model(load("small.onnx"), NULL);
    CHECK(cm != NULL);
    if (!cm) return;
    test_thread t[4];
    int ok = 0, failed = 0;
    run_threads(t, 4, cm, NULL, thread_main, &ok, &failed);
    CHECK(ok == 4 * 20 && failed == 0);
    si_compiled_free(cm);
}

/* MatMul and Gemm (src/ops/nn.c) */
static void test_matmul(void) {
    runner r;
    if (!runner_open(&r, "matmul.onnx")) { CHECK(0); return; }
    float x[6] = {1, 2, 3, -1, 0, 1};
    si_tensor *tx, *y, *g;
    infer_2d(r.rq, x, 2, 3, &tx, &y, &g);
    /* X@Wm = [[22,28],[4,4]]; + [0.5,-10] = [[22.5,18],[4.5,-6]]; Relu */
    const float wy[4] = {22.5f, 18, 4.5f, 0};
    /* X@Wg^T = [[-2,3],[-2,0]]; *2 + 0.5*[1,2] */
    const float wg[4] = {-3.5f, 7, -3.5f, 1};
    check_2d(y, 2, 2, wy);
    check_2d(g, 2, 2, wg);
    /* batch 1 */
    float x1[3] = {0, 0, 1};
    int64_t d1[2] = {1, 3};
    si_tensor *tx1 = NULL;
    CHECK_OK(si_tensor_wrap(SI_F32, 2, d1, x1, sizeof x1, &tx1));
    CHECK_OK(si_request_set_input(r.rq, 0, tx1));
    CHECK_OK(si_request_infer(r.rq));
    si_tensor *y1 = NULL;
    CHECK_OK(si_request_get_output(r.rq, 0, &y1));
    CHECK(y1 == y);
    const float wy1[2] = {5.5f, 0}, wg1[2] = {-1.5f, 2};
    if (y) CHECK(si_tensor_count(y) == 2);
    if (y) CHECK_FLOATS(si_tensor_data(y), wy1, 2);
    if (g) CHECK_FLOATS(si_tensor_data(g), wg1, 2);
    si_tensor_free(tx);
    si_tensor_free(tx1);
    runner_close(&r);
}

int main(int argc, char **argv) {
    static void (*const tests[])(void) = {test_helpers, test_tensors, test_config, test_model_info, test_infer_small,
                                          test_compile_variants, test_error_recovery, test_clip_opsets, test_constant,
                                          test_initializer_forms, test_passthrough, test_threads, test_matmul, NULL};
    return run_tests("test_api", tmp_dir, sizeof tmp_dir, argc, argv, tests);
}
