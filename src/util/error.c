/*
 * error.c — the thread-local last-error message and status names. Failure sites call si_err, which formats
 * the message and returns the status, so reporting an error is one line.
 */
#include "util/util.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char err_buf[SI_ERR_CAP];

const char *si_last_error(void) { return err_buf; }

void si_err_clear(void) { err_buf[0] = 0; }

si_result si_error_save(si_error *e, si_result s) {
    e->status = s;
    if (s) memcpy(e->msg, err_buf, strnlen(err_buf, SI_ERR_CAP - 1) + 1);
    else e->msg[0] = 0;
    e->msg[SI_ERR_CAP - 1] = 0;
    return s;
}

si_result si_error_restore(const si_error *e) {
    if (e->msg != err_buf) memcpy(err_buf, e->msg, strnlen(e->msg, SI_ERR_CAP - 1) + 1);
    err_buf[SI_ERR_CAP - 1] = 0;
    return e->status;
}

si_result si_err(si_result s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return s;
}

si_result si_err_wrap(si_result s, const char *fmt, ...) {
    char old[SI_ERR_CAP];
    char pre[SI_ERR_CAP];
    memcpy(old, err_buf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t n = strlen(pre);
    if (n > SI_ERR_CAP - 3) n = SI_ERR_CAP - 3;
    memcpy(err_buf, pre, n);
    memcpy(err_buf + n, ": ", 2);
    size_t rest = SI_ERR_CAP - n - 3, m = strlen(old);
    if (m > rest) m = rest;
    memcpy(err_buf + n + 2, old, m);
    err_buf[n + 2 + m] = 0;
    return s;
}

const char *si_result_str(si_result s) {
    switch (s) {
    case SI_OK: return "SI_OK";
    case SI_ERR_INVALID_ARG: return "SI_ERR_INVALID_ARG";
    case SI_ERR_NO_MEM: return "SI_ERR_NO_MEM";
    case SI_ERR_IO: return "SI_ERR_IO";
    case SI_ERR_PARSE: return "SI_ERR_PARSE";
    case SI_ERR_UNSUPPORTED: return "SI_ERR_UNSUPPORTED";
    case SI_ERR_DEVICE: return "SI_ERR_DEVICE";
    case SI_ERR_ABORTED: return "SI_ERR_ABORTED";
    case SI_ERR_INTERNAL: return "SI_ERR_INTERNAL";
    case SI_ERR_DEVICE_LOST: return "SI_ERR_DEVICE_LOST";
    }
    return "SI_ERR_UNKNOWN";
}

void si_free_string(char *s) { si_free(s); }
