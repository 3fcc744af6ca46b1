/*
 * fuzz_model_file.c — si_model_load on a fuzzed model file with a fuzzed external data file beside it (the
 * streaming file reader, raw_data left in the file, external data offsets and lengths).
 *
 * Input: [u16 little-endian L][L bytes: model.onnx][the rest: the external data file], written as
 * model.onnx and as ext.bin, weights.bin and data (the locations the seeds and common exporters use) in the
 * scratch folder. A model that loads is exercised like in fuzz_model. Under libFuzzer the custom mutator
 * changes the model part structurally (fuzz_mutate.h) or either part bytewise.
 */
#include "fuzz_common.h"
#ifdef SI_LIBFUZZER
#include "fuzz_mutate.h"
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed) {
    if (size < 2 || max_size < 2 || (seed & 3) == 0) return LLVMFuzzerMutate(data, size, max_size);
    size_t len = (size_t)data[0] | (size_t)data[1] << 8;
    if (len > size - 2) len = size - 2;
    size_t ext = size - 2 - len;
    uint8_t *tail = malloc(ext ? ext : 1);
    if (!tail) return LLVMFuzzerMutate(data, size, max_size);
    memcpy(tail, data + 2 + len, ext);
    size_t room = max_size - 2 - ext, nl = len;
    if ((seed & 3) == 1 && ext) { /* the external data, bytewise */
        size_t ne = LLVMFuzzerMutate(tail, ext, ext);
        memcpy(data + 2 + len, tail, ne);
        free(tail);
        return 2 + len + ne;
    }
    if (room > 0xffff) room = 0xffff;
    if (len <= room) nl = fz_mutate_model(data + 2, len, room, seed >> 2);
    memcpy(data + 2 + nl, tail, ext);
    free(tail);
    data[0] = (uint8_t)(nl & 0xff);
    data[1] = (uint8_t)(nl >> 8);
    return 2 + nl + ext;
}
#endif

FZ_INITIALIZE_WITH_CAP()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t len = size;
    if (size >= 2) {
        len = (size_t)data[0] | (size_t)data[1] << 8;
        if (len > size - 2) len = size - 2;
        data += 2;
        size -= 2;
    }
    char path[512], ext[512];
    fz_write("ext.bin", data + len, size - len, ext);
    fz_write("weights.bin", data + len, size - len, ext);
    fz_write("data", data + len, size - len, ext);
    fz_write("model.onnx", data, len, path);
    si_model *m = NULL;
    si_result s = si_model_load(path, &m);
    fz_loaded_model(s, m);
    return 0;
}
