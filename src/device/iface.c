/*
 * iface.c — helpers of the compiled-model and request interfaces, shared by devices, the fail-safe layer and
 * the executor core. No device lives here (the executor core's tests link this file without any device).
 */
#include "device/device.h"

#include <stdio.h>

const char *si_options_get(const si_options *o, const char *key) {
    if (!o) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->values[i];
    return NULL;
}

si_status si_port_check(const si_port *p, const si_tensor *t) {
    char want[256], got[256];
    bool ok = t->dtype == p->dtype && (p->ndim < 0 || p->ndim == t->ndim);
    for (int i = 0; ok && p->ndim >= 0 && i < p->ndim; i++)
        if (p->dims[i] >= 0 && p->dims[i] != t->dims[i]) ok = false;
    if (ok) return SI_OK;
    if (p->ndim >= 0) {
        size_t o = (size_t)snprintf(want, sizeof want, "%s[", si_dtype_name(p->dtype));
        for (int i = 0; i < p->ndim && o < sizeof want; i++)
            o += p->dims[i] >= 0 ? (size_t)snprintf(want + o, sizeof want - o, i ? ",%lld" : "%lld", (long long)p->dims[i])
                                 : (size_t)snprintf(want + o, sizeof want - o, i ? ",?" : "?");
        if (o < sizeof want) snprintf(want + o, sizeof want - o, "]");
    } else {
        snprintf(want, sizeof want, "%s of any shape", si_dtype_name(p->dtype));
    }
    return si_err(SI_ERR_INVALID_ARG, "input '%s': expected %s, got %s", p->name, want,
                  si_shape_str(got, sizeof got, t->dtype, t->ndim, t->dims));
}
