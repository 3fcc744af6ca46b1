/*
 * api.c — the public API (include/safeinfer.h) over the layers below: models (a loaded graph plus the
 * caller's shape overrides), configurations, compilation onto devices, and requests.
 */
#include "api/internal.h"
#include "device/faulty/faulty.h"
#include "onnx/onnx.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>

// --- models -------------------------------------------------------------------------------------------------


static si_result model_from_graph(si_graph *g, si_model **out) {
    si_model *m = si_calloc(1, sizeof *m);
    if (!m) { si_graph_free(g); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    m->g = g;
    /* best-effort inference of what the declared shapes allow (for inspect); errors surface at compile */
    si_result s = si_graph_infer_shapes(g, SI_FOLD_AT_LOAD);
    if (s) { si_model_free(m); return s; }
    *out = m;
    return SI_OK;
}

si_result si_model_load_memory(const void *buf, size_t len, const char *base_dir, si_model **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_model_load_memory: out is NULL");
    *out = NULL;
    si_graph *g;
    si_result s = si_onnx_load(buf, len, base_dir, &g);
    if (s) return s;
    return model_from_graph(g, out);
}

si_result si_model_load(const char *path, si_model **out) {
    if (!out || !path) return si_err(SI_ERR_INVALID_ARG, "si_model_load: path or out is NULL");
    *out = NULL;
    char *dir_copy = si_strdup(path);
    if (!dir_copy) return si_err(SI_ERR_NO_MEM, "out of memory");
    si_graph *g;
    si_result s = si_onnx_load_file(path, dirname(dir_copy), &g);
    si_free(dir_copy);
    if (s) return si_err_wrap(s, "%s", path);
    return model_from_graph(g, out);
}

void si_model_free(si_model *m) {
    if (!m) return;
    si_graph_free(m->g);
    si_free(m);
}

int si_model_num_inputs(const si_model *m) { return m ? m->g->n_inputs : 0; }
int si_model_num_outputs(const si_model *m) { return m ? m->g->n_outputs : 0; }

static void fill_info(const si_val *v, si_value_info *out) {
    memset(out, 0, sizeof *out);
    out->name = v->name;
    out->dtype = v->dtype;
    out->ndim = v->ndim;
    for (int i = 0; i < SI_MAX_DIMS; i++) {
        out->dims[i] = i < v->ndim ? v->dims[i] : -1;
        out->dim_names[i] = v->dim_names[i];
    }
}

si_result si_model_input_info(const si_model *m, int index, si_value_info *out) {
    if (!m || !out || index < 0 || index >= m->g->n_inputs) return si_err(SI_ERR_INVALID_ARG, "input index %d out of range", index);
    fill_info(&m->g->values[m->g->inputs[index]], out);
    return SI_OK;
}

si_result si_model_output_info(const si_model *m, int index, si_value_info *out) {
    if (!m || !out || index < 0 || index >= m->g->n_outputs) return si_err(SI_ERR_INVALID_ARG, "output index %d out of range", index);
    fill_info(&m->g->values[m->g->outputs[index]], out);
    return SI_OK;
}

int si_model_input_index(const si_model *m, const char *name) {
    for (int i = 0; m && name && i < m->g->n_inputs; i++)
        if (!strcmp(m->g->values[m->g->inputs[i]].name, name)) return i;
    return -1;
}

int si_model_output_index(const si_model *m, const char *name) {
    for (int i = 0; m && name && i < m->g->n_outputs; i++)
        if (!strcmp(m->g->values[m->g->outputs[i]].name, name)) return i;
    return -1;
}

/* Forget what inference derived (all non-input, non-constant values), then infer again. */
static si_result reinfer(si_model *m) {
    si_graph *g = m->g;
    for (int v = 0; v < g->n_values; v++) {
        si_val *val = &g->values[v];
        if (val->is_input || val->is_initializer || val->producer < 0) continue;
        si_const_unref(val->const_val);
        val->const_val = NULL;
        val->dtype = SI_DTYPE_UNDEFINED;
        val->ndim = -1;
    }
    return si_graph_infer_shapes(g, SI_FOLD_AT_LOAD);
}

/* At most 2^40 elements of at most 16 bytes: larger shapes are refused up front rather than overflowing. */
static bool shape_fits(int ndim, const int64_t *dims) {
    int64_t n = si_shape_count(ndim, dims);
    return n >= 0 && n <= ((int64_t)1 << 40);
}

si_result si_model_set_dim(si_model *m, const char *name, int64_t value) {
    if (!m || !name) return si_err(SI_ERR_INVALID_ARG, "si_model_set_dim: model or name is NULL");
    if (value < 1) return si_err(SI_ERR_INVALID_ARG, "dimension '%s': value %lld must be at least 1", name, (long long)value);
    int hits = 0;
    for (int i = 0; i < m->g->n_inputs; i++) {
        si_val *v = &m->g->values[m->g->inputs[i]];
        int64_t dims[SI_MAX_DIMS];
        bool named = false;
        for (int d = 0; d < v->ndim; d++) {
            named |= v->dim_names[d] && !strcmp(v->dim_names[d], name);
            dims[d] = (v->dim_names[d] && !strcmp(v->dim_names[d], name)) ? value : (v->dims[d] < 0 ? 1 : v->dims[d]);
        }
        if (named && !shape_fits(v->ndim, dims))
            return si_err(SI_ERR_INVALID_ARG, "dimension '%s' = %lld makes input '%s' too large", name, (long long)value, v->name);
    }
    for (int i = 0; i < m->g->n_inputs; i++) {
        si_val *v = &m->g->values[m->g->inputs[i]];
        for (int d = 0; d < v->ndim; d++)
            if (v->dim_names[d] && !strcmp(v->dim_names[d], name)) { v->dims[d] = value; hits++; }
    }
    if (!hits) return si_err(SI_ERR_INVALID_ARG, "no input dimension is named '%s'", name);
    return reinfer(m);
}

si_result si_model_set_input_shape(si_model *m, const char *input, int ndim, const int64_t *dims) {
    if (!m || !input) return si_err(SI_ERR_INVALID_ARG, "si_model_set_input_shape: model or input is NULL");
    int i = si_model_input_index(m, input);
    if (i < 0) return si_err(SI_ERR_INVALID_ARG, "the model has no input named '%s'", input);
    si_val *v = &m->g->values[m->g->inputs[i]];
    if (ndim < 0 || ndim > SI_MAX_DIMS || (ndim && !dims)) return si_err(SI_ERR_INVALID_ARG, "input '%s': bad rank %d", input, ndim);
    if (v->ndim >= 0 && v->ndim != ndim)
        return si_err(SI_ERR_INVALID_ARG, "input '%s' has rank %d, the shape given has rank %d", input, v->ndim, ndim);
    for (int d = 0; d < ndim; d++) {
        if (dims[d] < 0) return si_err(SI_ERR_INVALID_ARG, "input '%s': dimension %d is negative", input, d);
        if (v->ndim >= 0 && v->dims[d] >= 0 && v->dims[d] != dims[d] && !v->dim_names[d])
            return si_err(SI_ERR_INVALID_ARG, "input '%s': dimension %d is fixed to %lld, cannot be %lld", input, d,
                          (long long)v->dims[d], (long long)dims[d]);
    }
    if (!shape_fits(ndim, dims)) return si_err(SI_ERR_INVALID_ARG, "input '%s': the shape is too large", input);
    v->ndim = ndim;
    for (int d = 0; d < ndim; d++) v->dims[d] = dims[d];
    return reinfer(m);
}

void si_model_summary_get(const si_model *m, si_model_summary *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!m) return;
    const si_graph *g = m->g;
    out->ir_version = g->ir_version;
    out->producer = g->producer;
    out->n_nodes = g->n_nodes;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].is_initializer) {
            out->n_initializers++;
            out->n_params += si_tensor_count(g->values[v].const_val);
            out->param_bytes += (int64_t)g->values[v].const_val->nbytes;
        }
}

int si_model_num_opsets(const si_model *m) { return m ? m->g->n_opsets : 0; }
void si_model_opset(const si_model *m, int i, const char **domain, int64_t *version) {
    if (domain) *domain = "";
    if (version) *version = 0;
    if (!m || i < 0 || i >= m->g->n_opsets) return;
    if (domain) *domain = m->g->opsets[i].domain;
    if (version) *version = m->g->opsets[i].version;
}
int si_model_num_nodes(const si_model *m) { return m ? m->g->n_nodes : 0; }
const char *si_model_node_op(const si_model *m, int i) {
    return (m && i >= 0 && i < m->g->n_nodes) ? m->g->nodes[i].op_type : NULL;
}

// --- configuration ------------------------------------------------------------------------------------


static const char *const known_keys[] = {"devices",     "threads",       "faults",        "retries",
                                         "infer_timeout_ms", "compile_timeout_ms", "standby", "failback_ms",
                                         "check_outputs", "strict", "adaptive_threads", "max_memory_mb"};

si_result si_config_create(si_config **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_config_create: out is NULL");
    *out = si_calloc(1, sizeof(si_config));
    return *out ? SI_OK : si_err(SI_ERR_NO_MEM, "out of memory");
}

void si_config_free(si_config *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) { si_free(c->keys[i]); si_free(c->values[i]); }
    si_free(c);
}

static si_result check_devices(const char *list) {
    if (!*list) return si_err(SI_ERR_INVALID_ARG, "devices: the list is empty");
    char name[64];
    const char *p = list;
    while (1) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || n >= sizeof name) return si_err(SI_ERR_INVALID_ARG, "devices: bad entry in '%s'", list);
        memcpy(name, p, n);
        name[n] = 0;
        si_device *d;
        si_result s = si_device_get(name, &d);
        if (s == SI_ERR_INVALID_ARG) return si_err_wrap(s, "devices '%s'", list);
        /* a known device that is not present here is fine: the model will run on the rest of the list */
        if (!e) break;
        p = e + 1;
    }
    return SI_OK;
}

si_result si_config_set(si_config *c, const char *key, const char *value) {
    if (!c || !key || !value) return si_err(SI_ERR_INVALID_ARG, "si_config_set: NULL argument");
    bool known = false;
    for (size_t i = 0; i < SI_ARRAY_LEN(known_keys); i++) known |= !strcmp(key, known_keys[i]);
    if (!known) return si_err(SI_ERR_INVALID_ARG, "unknown configuration key '%s' (known: devices, threads, faults, retries, "
                                                          "infer_timeout_ms, compile_timeout_ms, standby, failback_ms, check_outputs, strict, "
                                                          "adaptive_threads, max_memory_mb)", key);
    if (!strcmp(key, "devices")) {
        si_result s = check_devices(value);
        if (s) return s;
    } else if (!strcmp(key, "threads")) {
        long v;
        if (!parse_long(value, 1, 1024, &v)) return si_err(SI_ERR_INVALID_ARG, "threads: '%s' is not a number in 1..1024", value);
    } else if (!strcmp(key, "max_memory_mb")) {
        long v;
        if (!parse_long(value, 0, SI_MAX_MEMORY_MB, &v))
            return si_err(SI_ERR_INVALID_ARG, "max_memory_mb: '%s' is not a number of MiB in 0..%ld (0 = no budget)", value, (long)SI_MAX_MEMORY_MB);
    } else if (!strcmp(key, "retries")) {
        long v;
        if (!parse_long(value, 0, 100, &v)) return si_err(SI_ERR_INVALID_ARG, "retries: '%s' is not a number in 0..100", value);
    } else if (!strcmp(key, "infer_timeout_ms") || !strcmp(key, "failback_ms") || !strcmp(key, "compile_timeout_ms")) {
        long v;
        if (!parse_long(value, 0, 86400000, &v)) return si_err(SI_ERR_INVALID_ARG, "%s: '%s' is not a number of milliseconds (0 = off)", key, value);
    } else if (!strcmp(key, "standby") || !strcmp(key, "strict") || !strcmp(key, "adaptive_threads")) {
        if (parse_onoff(value) < 0) return si_err(SI_ERR_INVALID_ARG, "%s: '%s' is not on or off", key, value);
    } else if (!strcmp(key, "check_outputs")) {
        if (strcmp(value, "nan") && strcmp(value, "off") && strcmp(value, "none"))
            return si_err(SI_ERR_INVALID_ARG, "check_outputs: '%s' is not nan or off", value);
    } else if (!strcmp(key, "faults")) {
        si_fault_spec *fs;
        si_result s = si_fault_spec_parse(value, &fs);
        if (s) return s;
        si_fault_spec_free(fs);
    }
    char *v = si_strdup(value);
    if (!v) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->keys[i], key)) { si_free(c->values[i]); c->values[i] = v; return SI_OK; }
    if (c->n == CFG_MAX) { si_free(v); return si_err(SI_ERR_INVALID_ARG, "too many configuration keys"); }
    if (!(c->keys[c->n] = si_strdup(key))) { si_free(v); return si_err(SI_ERR_NO_MEM, "out of memory"); }
    c->values[c->n++] = v;
    return SI_OK;
}

bool parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int parse_onoff(const char *s) {
    if (!strcmp(s, "on") || !strcmp(s, "1") || !strcmp(s, "true")) return 1;
    if (!strcmp(s, "off") || !strcmp(s, "0") || !strcmp(s, "false")) return 0;
    return -1;
}

si_result si_config_set_callback(si_config *c, si_event_fn fn, void *user) {
    if (!c) return si_err(SI_ERR_INVALID_ARG, "si_config_set_callback: config is NULL");
    c->fn = fn;
    c->user = user;
    return SI_OK;
}

const char *si_config_get(const si_config *c, const char *key) {
    for (int i = 0; c && key && i < c->n; i++)
        if (!strcmp(c->keys[i], key)) return c->values[i];
    return NULL;
}

// --- tensors from protobuf files ------------------------------------------------------------------------

si_result si_tensor_read_pb(const char *path, si_tensor **out, char **name_out) {
    if (!path || !out) return si_err(SI_ERR_INVALID_ARG, "si_tensor_read_pb: path or out is NULL");
    char *buf;
    size_t len;
    si_result s = si_read_file(path, &buf, &len);
    if (s) return s;
    s = si_onnx_read_tensor(buf, len, out, name_out);
    si_free(buf);
    return s ? si_err_wrap(s, "%s", path) : SI_OK;
}
