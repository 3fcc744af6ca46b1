/*
 * fuzz_pb.c — si_tensor_read_pb on fuzzed serialized TensorProto files (the test-data format of the ONNX
 * backend tests). Properties: a failure names its error; a tensor that loads is consistent and readable to its
 * last byte and comes with a name.
 */
#include "fuzz_common.h"

FZ_INITIALIZE_WITH_CAP()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512];
    fz_write("in.pb", data, size, path);
    si_tensor *t = NULL;
    char *name = NULL;
    si_result s = si_tensor_read_pb(path, &t, &name);
    fz_check_error(s);
    if (s) {
        if (t || name) fz_fail("a tensor or a name with an error");
        return 0;
    }
    fz_check_tensor(t);
    if (!name) fz_fail("no name with SI_OK");
    si_free_string(name);
    si_tensor_free(t);
    return 0;
}
