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

static void port_from_value(si_port *p, const si_val *v) {
    p->name = v->name;
    p->dtype = v->dtype;
    p->ndim = v->ndim;
    for (int i = 0; i < SI_MAX_DIMS; i++) p->dims[i] = i < v->ndim ? v->dims[i] : -1;
}

void si_cmodel_ports_from_graph(si_cmodel *m, const si_graph *g, si_port *in, si_port *out) {
    for (int i = 0; i < g->n_inputs; i++) port_from_value(&in[i], &g->values[g->inputs[i]]);
    for (int i = 0; i < g->n_outputs; i++) port_from_value(&out[i], &g->values[g->outputs[i]]);
    m->n_inputs = g->n_inputs;
    m->n_outputs = g->n_outputs;
    m->inputs = in;
    m->outputs = out;
}

const char *si_options_get(const si_options *o, const char *key) {
    if (!o) return NULL;
    for (int i = 0; i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return o->values[i];
    return NULL;
}

// --- constants shared by the compiles of one model ----------------------------------------------------------

#include <pthread.h>

typedef struct shared_entry {
    const si_tensor *key;
    char *tag;
    void *value;
    void (*free_fn)(void *);
} shared_entry;

struct si_shared_consts {
    pthread_mutex_t lock;
    shared_entry *v;
    int n, cap;
};

si_result si_shared_consts_new(si_shared_consts **out) {
    *out = si_calloc(1, sizeof **out);
    if (!*out) return si_err(SI_ERR_NO_MEM, "out of memory");
    pthread_mutex_init(&(*out)->lock, NULL);
    return SI_OK;
}

void si_shared_consts_free(si_shared_consts *sc) {
    if (!sc) return;
    for (int i = 0; i < sc->n; i++) {
        if (sc->v[i].free_fn) sc->v[i].free_fn(sc->v[i].value);
        si_free(sc->v[i].tag);
    }
    si_free(sc->v);
    pthread_mutex_destroy(&sc->lock);
    si_free(sc);
}

si_result si_shared_const(si_shared_consts *sc, const si_tensor *key, const char *tag, si_shared_make_fn make,
                          void (*free_fn)(void *), void *user, void **out) {
    *out = NULL;
    if (!key || !tag || !make) return si_err(SI_ERR_INVALID_ARG, "si_shared_const: key, tag or make is NULL");
    if (!sc) return make(user, key, out);
    pthread_mutex_lock(&sc->lock);
    si_result s = SI_OK;
    for (int i = 0; i < sc->n; i++)
        if (sc->v[i].key == key && !strcmp(sc->v[i].tag, tag)) {
            *out = sc->v[i].value;
            goto done;
        }
    if (sc->n == sc->cap) {
        int cap = sc->cap ? 2 * sc->cap : 16;
        shared_entry *nv = si_realloc(sc->v, sizeof *nv * (size_t)cap);
        if (!nv) {
            s = si_err(SI_ERR_NO_MEM, "out of memory");
            goto done;
        }
        sc->v = nv;
        sc->cap = cap;
    }
    char *t = si_strdup(tag);
    if (!t) {
        s = si_err(SI_ERR_NO_MEM, "out of memory");
        goto done;
    }
    void *val = NULL;
    if ((s = make(user, key, &val))) {
        si_free(t);
        goto done;
    }
    sc->v[sc->n++] = (shared_entry){.key = key, .tag = t, .value = val, .free_fn = free_fn};
    *out = val;
done:
    pthread_mutex_unlock(&sc->lock);
    return s;
}
