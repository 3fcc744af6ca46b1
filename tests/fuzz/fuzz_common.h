/*
 * fuzz_common.h — what the fuzz harnesses share: the libFuzzer entry points, a private scratch folder per
 * process (on /dev/shm when it exists; $SI_FUZZ_TMPDIR overrides), writing the fuzzed bytes to a file, the property checks (a failed call names its error; a tensor
 * that comes back is consistent and readable to its last byte) and "exercise a model that loaded": fixed
 * small shapes, a compile on REF under a memory budget, one inference with zero inputs.
 *
 * The harnesses run under libFuzzer (tests/fuzz/CMakeLists.txt, SI_FUZZ=ON, clang) and, in every other
 * build, under replay_main.c, which feeds them the seed and regression files once each (a ctest).
 * A violated property calls fz_fail, which aborts: libFuzzer (or the replay) reports it as a crash.
 */
#ifndef SI_FUZZ_COMMON_H
#define SI_FUZZ_COMMON_H

#include "safeinfer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The library's process-wide cap on one allocation (internal, util.h): the harnesses lower it well under
 * libFuzzer's -malloc_limit_mb so that an absurd allocation shows up as the library's named error, and one
 * that gets past it as a libFuzzer "malloc limit" crash. */
void si_mem_set_cap(size_t bytes);
#define FZ_MEM_CAP ((size_t)256 << 20)
/* The memory budget the harnesses compile under (the compile property max_memory_mb). */
#define FZ_BUDGET_MB "128"

static inline void fz_fail(const char *what) {
    fprintf(stderr, "fuzz property violated: %s (last error: \"%s\")\n", what, si_last_error());
    abort();
}

/* A failed call must say what failed. */
static inline void fz_check_error(si_result s) {
    if (s != SI_OK && !*si_last_error()) fz_fail("an error without a message");
    if (s != SI_OK && !strcmp(si_result_str(s), "SI_ERR_UNKNOWN")) fz_fail("an unknown status code");
}

/* A tensor that came back is consistent (size = count * element size) and readable to its last byte. */
static inline void fz_check_tensor(const si_tensor *t) {
    if (!t) fz_fail("a NULL tensor with SI_OK");
    int nd = si_tensor_ndim(t);
    if (nd < 0 || nd > SI_MAX_DIMS) fz_fail("tensor rank out of range");
    size_t esz = si_dtype_size(si_tensor_dtype(t));
    if (!esz) fz_fail("tensor with an element type that cannot be stored");
    int64_t count = si_tensor_count(t);
    if (count < 0 || (uint64_t)count * esz != si_tensor_nbytes(t)) fz_fail("tensor size does not match its shape");
    const unsigned char *p = si_tensor_data(t);
    if (si_tensor_nbytes(t) && !p) fz_fail("tensor without data");
    volatile unsigned char x = 0;
    for (size_t i = 0; i < si_tensor_nbytes(t); i++) x ^= p[i];
    (void)x;
}

/* The process's scratch folder (made once; removed at exit with what the harnesses wrote in it). */
static char fz_dir_buf[256];
static inline void fz_cleanup(void) {
    if (!fz_dir_buf[0]) return;
    static const char *const names[] = {"in.npy", "out.npy", "in.pb", "model.onnx", "ext.bin", "weights.bin", "data"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", fz_dir_buf, names[i]);
        unlink(p);
    }
    rmdir(fz_dir_buf);
}
static inline const char *fz_dir(void) {
    if (!fz_dir_buf[0]) {
        /* tmpfs when there is one: rewriting a file on ext4 many times a second waits for the disk
         * (auto_da_alloc flushes a truncated-and-rewritten file on close) */
        const char *t = getenv("SI_FUZZ_TMPDIR");
        if (!t || !*t) t = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
        snprintf(fz_dir_buf, sizeof fz_dir_buf, "%s/si-fuzz-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir_buf)) { perror("mkdtemp"); exit(1); }
        atexit(fz_cleanup);
    }
    return fz_dir_buf;
}

/* Write bytes to NAME in the scratch folder; the full path goes to path (at least 512 bytes). */
static inline void fz_write(const char *name, const void *data, size_t size, char *path) {
    snprintf(path, 512, "%s/%s", fz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror(path); exit(1); }
    if (size && fwrite(data, 1, size, f) != size) { perror(path); exit(1); }
    if (fclose(f) != 0) { perror(path); exit(1); }
}

/* A model that loaded: fix symbolic dimensions to 2, compile on REF under the budget, bind zero inputs of the
 * declared shapes (when over 64Ki elements, with dimensions capped at 16) and run once. Any status is fine; a
 * crash, a leak, a hang or an error without a message is not. */
static inline void fz_exercise_model(si_model *m) {
    int n_in = si_model_num_inputs(m);
    for (int i = 0; i < n_in; i++) {
        si_value_info vi;
        if (si_model_input_info(m, i, &vi)) fz_fail("input info of a loaded model");
        for (int d = 0; d < vi.ndim && d < SI_MAX_DIMS; d++)
            if (vi.dim_names[d]) {
                si_result s = si_model_set_dim(m, vi.dim_names[d], 2);
                fz_check_error(s);
                if (s) return;
            }
    }
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    enum { MAX_IN = 16 };
    si_tensor *ins[MAX_IN] = {0};
    si_result s;
    if (si_config_create(&cfg) || si_config_set(cfg, "devices", "REF") || si_config_set(cfg, "max_memory_mb", FZ_BUDGET_MB))
        fz_fail("config for the fuzz compile");
    s = si_compile(m, cfg, &cm);
    fz_check_error(s);
    if (s) goto done;
    s = si_request_create(cm, &rq);
    fz_check_error(s);
    if (s) goto done;
    if (n_in > MAX_IN) goto done;
    for (int i = 0; i < n_in; i++) {
        si_value_info vi;
        if (si_model_input_info(m, i, &vi)) fz_fail("input info of a compiled model");
        int nd = vi.ndim < 0 ? 1 : vi.ndim;
        int64_t dims[SI_MAX_DIMS], count = 1;
        for (int d = 0; d < nd; d++) { /* the declared shape when it is small, else dimensions capped at 16 */
            dims[d] = vi.ndim < 0 || vi.dims[d] < 0 ? 2 : vi.dims[d];
            count = dims[d] > (1 << 16) || count > (1 << 16) ? (1 << 17) : count * dims[d];
        }
        if (count > (1 << 16)) {
            count = 1;
            for (int d = 0; d < nd; d++) count *= dims[d] = dims[d] > 16 ? 16 : dims[d];
            if (count > (1 << 20)) goto done;
        }
        s = si_tensor_create(vi.dtype, nd, dims, &ins[i]);
        fz_check_error(s);
        if (s) goto done;
        s = si_request_set_input(rq, i, ins[i]);
        fz_check_error(s);
        if (s) goto done;
    }
    s = si_request_infer(rq);
    fz_check_error(s);
    if (s) goto done;
    for (int k = 0; k < si_compiled_num_outputs(cm); k++) {
        si_tensor *o = NULL;
        s = si_request_get_output(rq, k, &o);
        fz_check_error(s);
        if (s) fz_fail("an output of a successful inference");
        fz_check_tensor(o);
    }
done:
    if (getenv("SI_FUZZ_VERBOSE")) /* what each input reached: for checking that the seeds get far */
        fprintf(stderr, "  %s%s\n", s ? "stopped: " : "ran: ", s ? si_last_error() : "every output checked");
    si_request_free(rq);
    for (int i = 0; i < MAX_IN; i++) si_tensor_free(ins[i]);
    si_compiled_free(cm);
    si_config_free(cfg);
}

/* A model load's result: the status names its error, a failed load leaves no model, and a model that loaded is
 * exercised (fz_exercise_model) and freed. */
static inline void fz_loaded_model(si_result s, si_model *m) {
    fz_check_error(s);
    if (s) {
        if (m) fz_fail("a model with an error");
        return;
    }
    fz_exercise_model(m);
    si_model_free(m);
}

/* The LLVMFuzzerInitialize of a harness that needs nothing but the process's allocation cap. */
#define FZ_INITIALIZE_WITH_CAP()                                                                               \
    int LLVMFuzzerInitialize(int *argc, char ***argv) {                                                        \
        (void)argc;                                                                                            \
        (void)argv;                                                                                            \
        si_mem_set_cap(FZ_MEM_CAP);                                                                            \
        return 0;                                                                                              \
    }

#endif
