/*
 * fuzz_npy.c — si_tensor_read_npy on fuzzed files. Properties: a failure names its error; a tensor that
 * loads is consistent, readable to its last byte, and survives a write + read round trip unchanged.
 */
#include "fuzz_common.h"

FZ_INITIALIZE_WITH_CAP()

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[512], out[512];
    fz_write("in.npy", data, size, path);
    si_tensor *t = NULL;
    si_result s = si_tensor_read_npy(path, &t);
    fz_check_error(s);
    if (s) {
        if (t) fz_fail("a tensor with an error");
        return 0;
    }
    fz_check_tensor(t);
    snprintf(out, sizeof out, "%s/out.npy", fz_dir());
    s = si_tensor_write_npy(t, out);
    fz_check_error(s);
    if (s == SI_OK) {
        si_tensor *u = NULL;
        s = si_tensor_read_npy(out, &u);
        if (s) fz_fail("a .npy file written by si_tensor_write_npy does not read back");
        if (si_tensor_dtype(u) != si_tensor_dtype(t) || si_tensor_ndim(u) != si_tensor_ndim(t) ||
            memcmp(si_tensor_dims(u), si_tensor_dims(t), sizeof(int64_t) * (size_t)si_tensor_ndim(t)) ||
            si_tensor_nbytes(u) != si_tensor_nbytes(t) ||
            (si_tensor_nbytes(t) && memcmp(si_tensor_data(u), si_tensor_data(t), si_tensor_nbytes(t))))
            fz_fail("a .npy round trip changed the tensor");
        si_tensor_free(u);
    }
    si_tensor_free(t);
    return 0;
}
