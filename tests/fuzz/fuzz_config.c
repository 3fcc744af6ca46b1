/*
 * fuzz_config.c — the fault-spec parser and si_config_set with fuzzed keys and values.
 *
 * Input: lines "KEY=VALUE" (split at the first '='; a line without '=' is a fault spec given to
 * si_fault_spec_parse directly). Every line goes to si_config_set and every fault spec to the parser.
 * Properties: a refused key/value or spec names its error; an accepted value reads back unchanged; a parsed
 * spec frees cleanly. When every line was accepted, a small model (Relu) is compiled with the config on REF
 * and run three times (so that N-th call faults fire): any status is fine, a crash, leak or hang is not.
 * Specs with the "hang", "crash" or "segv" effect are parsed but not run (an injected hang blocks for up to
 * 30 s; crash and segv end a process whose device is not isolated, as documented).
 */
#include "fuzz_common.h"

#include <ctype.h>
#include <strings.h>

#include "passthrough_model.h"

/* internal (src/device/faulty/faulty.h) */
typedef struct si_fault_spec si_fault_spec;
si_result si_fault_spec_parse(const char *spec, si_fault_spec **out);
void si_fault_spec_free(si_fault_spec *s);
bool si_fault_spec_mentions(const si_fault_spec *s, const char *device);

static si_model *model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    si_mem_set_cap(FZ_MEM_CAP);
    unsetenv("SAFEINFER_FAULTS");
    if (si_model_load_memory(passthrough_onnx, passthrough_onnx_len, NULL, &model)) {
        fprintf(stderr, "fuzz_config: the built-in model does not load: %s\n", si_last_error());
        exit(1);
    }
    return 0;
}

/* Effects that are not run: "hang" blocks for up to 30 s by design; "crash" and "segv" end the process by
 * design when the device is not isolated (the config harness runs everything in process). */
static bool mentions_hang(const char *s) {
    for (; *s; s++)
        if (!strncasecmp(s, "hang", 4) || !strncasecmp(s, "crash", 5) || !strncasecmp(s, "segv", 4)) return true;
    return false;
}

static void parse_spec(const char *spec) {
    si_fault_spec *fs = NULL;
    si_result s = si_fault_spec_parse(spec, &fs);
    fz_check_error(s);
    if (s) {
        if (fs) fz_fail("a fault spec with an error");
        return;
    }
    if (!fs) fz_fail("no fault spec with SI_OK");
    (void)si_fault_spec_mentions(fs, "REF");
    (void)si_fault_spec_mentions(fs, "OCL");
    si_fault_spec_free(fs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0; /* C strings: the text ends at its first NUL */
    si_config *cfg = NULL;
    if (si_config_create(&cfg)) fz_fail("si_config_create");
    bool all_ok = true, hang = mentions_hang(text), any = false;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        char *eq = strchr(line, '=');
        if (!eq) {
            parse_spec(line);
            continue;
        }
        /* "OCL.infer=3" is a fault spec too: parse every line as one as well */
        parse_spec(line);
        *eq = 0;
        const char *key = line, *value = eq + 1;
        si_result s = si_config_set(cfg, key, value);
        fz_check_error(s);
        if (s) { all_ok = false; continue; }
        any = true;
        const char *back = si_config_get(cfg, key);
        if (!back || strcmp(back, value)) fz_fail("a configuration value does not read back");
    }
    if (all_ok && any && !hang) {
        si_compiled *cm = NULL;
        si_request *rq = NULL;
        si_tensor *x = NULL;
        int64_t dims[2] = {2, 2};
        si_result s = si_compile(model, cfg, &cm);
        fz_check_error(s);
        if (!s) s = si_request_create(cm, &rq);
        fz_check_error(s);
        if (!s && (si_tensor_create(SI_F32, 2, dims, &x) || si_request_set_input(rq, 0, x))) fz_fail("binding the input");
        for (int i = 0; !s && i < 3; i++) {
            s = si_request_infer(rq);
            fz_check_error(s);
            si_tensor *o = NULL;
            if (!s && si_request_get_output(rq, 0, &o)) fz_fail("the output after a successful inference");
            if (!s) fz_check_tensor(o);
            s = SI_OK; /* a failed inference leaves the request usable: go on */
        }
        si_request_free(rq);
        si_tensor_free(x);
        si_compiled_free(cm);
    }
    si_config_free(cfg);
    free(text);
    return 0;
}
