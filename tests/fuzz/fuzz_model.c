/*
 * fuzz_model.c — si_model_load_memory on fuzzed bytes; a model that loads is compiled on REF with small fixed
 * shapes under a 128 MiB budget and run once (fz_exercise_model). Properties: every failure names its error;
 * outputs are consistent and readable; no crash, leak, hang or allocation past the process cap.
 * Under libFuzzer, a structure-aware mutator (fuzz_mutate.h) produces well-formed models half of the time.
 */
#include "fuzz_common.h"
#ifdef SI_LIBFUZZER
#include "fuzz_mutate.h"
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    return fz_mutate_model(data, size, max_size, seed);
}
#endif

FZ_INITIALIZE_WITH_CAP()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    si_model *m = NULL;
    si_result s = si_model_load_memory(data, size, NULL, &m);
    fz_loaded_model(s, m);
    return 0;
}
