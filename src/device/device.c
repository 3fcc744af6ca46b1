/*
 * device.c — the device registry and helpers shared by device implementations.
 */
#include "device/device.h"

#include <stdio.h>

#include <stdlib.h>

static si_device *const registry[] = {
#ifdef SI_HAVE_CPU
    &si_device_cpu,
#endif
    &si_device_ref,
};

const char *si_device_names(void) {
    return ""
#ifdef SI_HAVE_OCL
           "OCL, OCL.N, "
#endif
#ifdef SI_HAVE_CPU
           "CPU, "
#endif
           "REF";
}

static si_result check_version(si_device *d, si_device **out) {
    if (d->iface->api_version != SI_DEVICE_API_VERSION)
        return si_err(SI_ERR_UNSUPPORTED, "device %s has interface version %d, expected %d", d->name, d->iface->api_version,
                      SI_DEVICE_API_VERSION);
    *out = d;
    return SI_OK;
}

si_result si_device_get(const char *name, si_device **out) {
    *out = NULL;
    if (!name) return si_err(SI_ERR_INVALID_ARG, "device name is NULL");
    for (size_t i = 0; i < SI_ARRAY_LEN(registry); i++)
        if (!strcmp(registry[i]->name, name)) return check_version(registry[i], out);
#ifdef SI_HAVE_OCL
    if (!strncmp(name, "OCL", 3) && (name[3] == 0 || name[3] == '.')) {
        long idx = 0;
        if (name[3] == '.') {
            char *end;
            idx = strtol(name + 4, &end, 10);
            if (end == name + 4 || *end || idx < 0 || idx > 64)
                return si_err(SI_ERR_INVALID_ARG, "bad OpenCL device name '%s' (expected OCL or OCL.N)", name);
        }
        si_device *d;
        si_result s = si_device_ocl_get((int)idx, &d);
        if (s) return s;
        return check_version(d, out);
    }
#else
    if (!strncmp(name, "OCL", 3) && (name[3] == 0 || name[3] == '.'))
        return si_err(SI_ERR_UNSUPPORTED, "this build of safeinfer has no OpenCL device");
#endif
#ifndef SI_HAVE_CPU
    if (!strcmp(name, "CPU")) return si_err(SI_ERR_UNSUPPORTED, "this build of safeinfer has no CPU device");
#endif
    return si_err(SI_ERR_INVALID_ARG, "unknown device '%s' (known: %s)", name, si_device_names());
}

si_result si_device_name_check(const char *name, char *canon, size_t n) {
    if (!name) return si_err(SI_ERR_INVALID_ARG, "device name is NULL");
    if (!strcmp(name, "REF") || !strcmp(name, "CPU")) {
        snprintf(canon, n, "%s", name);
        return SI_OK;
    }
    if (!strncmp(name, "OCL", 3) && (name[3] == 0 || name[3] == '.')) {
        long idx = 0;
        if (name[3] == '.') {
            char *end;
            idx = strtol(name + 4, &end, 10);
            if (end == name + 4 || *end || idx < 0 || idx > 64 || name[4] == '-' || name[4] == '+' || name[4] == ' ')
                return si_err(SI_ERR_INVALID_ARG, "bad OpenCL device name '%s' (expected OCL or OCL.N)", name);
        }
        if (idx) snprintf(canon, n, "OCL.%ld", idx);
        else snprintf(canon, n, "OCL");
        return SI_OK;
    }
    return si_err(SI_ERR_INVALID_ARG, "unknown device '%s' (known: %s)", name, si_device_names());
}

const char *si_options_get(const si_options *o, const char *key) {
    if (!o) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->values[i];
    return NULL;
}
