/*
 * test_header.c — include/safeinfer.h as a consumer sees it: built twice, with <signal.h> included before
 * the header (SI_SIGNAL_FIRST) and after it, with POSIX visible so that glibc defines its siginfo_t field
 * macros (si_status, si_value, si_pid, ...); one build links the shared library (only the SI_API exports),
 * the other the static one. Runs the bundled example model on REF and checks the version functions and
 * the event names.
 *
 *   test_header_signal_first | test_header_signal_last
 */
#define _POSIX_C_SOURCE 200809L
#ifdef SI_SIGNAL_FIRST
#include <signal.h>
#include "safeinfer.h"
#else
#include "safeinfer.h"
#include <signal.h>
#endif

#include <stdio.h>
#include <string.h>

static int failed;
#define EXPECT(c)                                                                                              \
    do {                                                                                                       \
        if (!(c)) { fprintf(stderr, "%s:%d: failed: %s (%s)\n", __FILE__, __LINE__, #c, si_last_error()); failed++; } \
    } while (0)

int main(void) {
    /* the signal.h names still work next to safeinfer's types */
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_status = 3;
    EXPECT(info.si_status == 3);
    si_result status = SI_OK;
    EXPECT(status == SI_OK);

    int major = -1, minor = -1, patch = -1;
    const char *v = si_version(&major, &minor, &patch);
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", major, minor, patch);
    EXPECT(v && !strcmp(v, want));
    EXPECT(major == SI_VERSION_MAJOR && minor == SI_VERSION_MINOR && patch == SI_VERSION_PATCH);
    EXPECT(!strcmp(v, SI_VERSION_STRING));
    EXPECT(si_version(NULL, NULL, NULL) == v);

    EXPECT(!strcmp(si_event_type_str(SI_EVENT_FAILOVER), "failover"));
    EXPECT(!strcmp(si_event_type_str(SI_EVENT_STANDBY_READY), "standby_ready"));
    EXPECT(!strcmp(si_event_type_str(SI_EVENT_ALL_FAILED), "all_failed"));
    EXPECT(!strcmp(si_event_type_str((si_event_type)99), "unknown"));

    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *cm = NULL;
    si_request *rq = NULL;
    si_tensor *x = NULL, *y = NULL;
    int64_t dims[4] = {1, 3, 32, 32};
    if ((status = si_model_load(SI_EXAMPLE_MODEL, &m)) || (status = si_model_set_dim(m, "batch", 1)) ||
        (status = si_config_create(&cfg)) || (status = si_config_set(cfg, "devices", "REF")) ||
        (status = si_compile(m, cfg, &cm)) || (status = si_request_create(cm, &rq)) ||
        (status = si_tensor_create(SI_F32, 4, dims, &x)) || (status = si_request_set_input(rq, 0, x)) ||
        (status = si_request_infer(rq)) || (status = si_request_get_output(rq, 0, &y))) {
        fprintf(stderr, "example model: %s: %s\n", si_result_str(status), si_last_error());
        failed++;
    } else {
        EXPECT(si_tensor_count(y) == 10);
        double sum = 0; /* the first output is a softmax over 10 classes */
        for (int i = 0; i < 10; i++) sum += ((const float *)si_tensor_data(y))[i];
        EXPECT(sum > 0.999 && sum < 1.001);
    }
    si_request_free(rq);
    si_tensor_free(x);
    si_compiled_free(cm);
    si_config_free(cfg);
    si_model_free(m);
    printf("%s: safeinfer %s, %s\n", failed ? "FAIL" : "OK", v, failed ? "checks failed" : "all checks passed");
    return failed ? 1 : 0;
}
