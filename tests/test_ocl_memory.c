/*
 * test_ocl_memory.c — compiling on OCL again and again does not keep memory: CYCLES times the example model is
 * compiled on OCL, two requests run two inferences each (checked against REF), and everything is freed; after
 * WARMUP such cycles the heap in use (glibc mallinfo2, which is steadier than RSS) may not grow by more than
 * LIMIT_KIB over the next CYCLES (it grows by about 10 KiB). Each compile used to build and release its own
 * OpenCL program, and PoCL 3.1 keeps about 5 KiB of every program it builds for good (tests/pocl/program_rss.c
 * shows it without safeinfer): 300 cycles kept 1.4 to 1.6 MiB, and a fail-back loop that recompiles OCL grew
 * without bound.
 *
 *   test_ocl_memory SCRATCH [--cycles N]
 *
 * Under AddressSanitizer (its own allocator) the memory check is not made; the cycles still run,
 * so that LeakSanitizer sees their leaks. Exits 77 (ctest: skipped) without an OCL device.
 */
#include "si_test.h"

#include <stdbool.h>
#include <malloc.h>
#include <stdint.h>

#if defined(__SANITIZE_ADDRESS__)
#define SI_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SI_ASAN 1
#endif
#endif

#define WARMUP 50
#define LIMIT_KIB 256

/* Heap bytes in use (glibc's mallinfo2: small blocks plus mmapped ones), in KiB. */
static double heap_kib(void) {
    struct mallinfo2 mi = mallinfo2();
    return (double)(mi.uordblks + mi.hblkhd) / 1024.0;
}

static si_compiled *compile_on(const si_model *m, const char *devices, si_result *st) {
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    *st = si_config_create(&cfg);
    if (!*st) *st = si_config_set(cfg, "devices", devices);
    if (!*st) *st = si_compile(m, cfg, &c);
    si_config_free(cfg);
    return c;
}

/* Output "probs" of one inference on a fresh request of c, copied into out[20]. */
static bool infer_probs(si_compiled *c, si_tensor *in, float out[20]) {
    si_request *r = NULL;
    si_tensor *o = NULL;
    int k = compiled_index(c, 1, "probs");
    bool ok = k >= 0 && !si_request_create(c, &r) && !si_request_set_input(r, 0, in) && !si_request_infer(r) &&
              !si_request_infer(r) && !si_request_get_output(r, k, &o) && si_tensor_count(o) == 20;
    if (ok) memcpy(out, si_tensor_data(o), sizeof(float) * 20);
    si_request_free(r);
    return ok;
}

int main(int argc, char **argv) {
    int cycles = 300;
    for (int i = 2; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--cycles")) cycles = atoi(argv[i + 1]);
    si_model *m = NULL;
    if (si_model_load(SI_EXAMPLE_MODEL, &m) || si_model_set_dim(m, "batch", 2)) {
        fprintf(stderr, "cannot load %s: %s\n", SI_EXAMPLE_MODEL, si_last_error());
        return 2;
    }
    si_tensor *in = NULL;
    const int64_t dims[4] = {2, 3, 32, 32};
    if (si_tensor_create(SI_F32, 4, dims, &in)) return 2;
    float *p = si_tensor_data(in);
    for (int i = 0; i < 2 * 3 * 32 * 32; i++) p[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    si_result st;
    float want[20], got[20];
    si_compiled *ref = compile_on(m, "REF", &st);
    if (!ref || !infer_probs(ref, in, want)) {
        fprintf(stderr, "REF: %s\n", si_last_error());
        return 2;
    }
    si_compiled_free(ref);
    si_compiled *c = compile_on(m, "OCL", &st);
    if (!c) {
        fprintf(stderr, "test_ocl_memory: skipped: %s\n", si_last_error());
        si_tensor_free(in);
        si_model_free(m);
        return st == SI_ERR_UNSUPPORTED || st == SI_ERR_INVALID_ARG ? 77 : 1;
    }
    si_compiled_free(c);
    double before = 0;
    int wrong = 0;
    for (int k = 0; k < WARMUP + cycles; k++) {
        if (k == WARMUP) before = heap_kib();
        c = compile_on(m, "OCL", &st);
        bool ok = c && infer_probs(c, in, got) && infer_probs(c, in, got);
        for (int i = 0; ok && i < 20; i++) ok = fabsf(got[i] - want[i]) <= 1e-4f + 1e-3f * fabsf(want[i]);
        if (!ok && !wrong++) fprintf(stderr, "cycle %d: OCL failed or differs from REF (%s)\n", k, si_last_error());
        si_compiled_free(c);
    }
    double growth = heap_kib() - before;
    CHECK(wrong == 0);
    fprintf(stderr, "%d OCL compile/infer/free cycles after %d: heap in use grew by %.0f KiB (limit %d KiB)\n", cycles, WARMUP, growth, LIMIT_KIB);
#ifndef SI_ASAN
    CHECK(growth <= LIMIT_KIB);
#endif
    si_tensor_free(in);
    si_model_free(m);
    return test_summary("test_ocl_memory");
}
