/*
 * api.c — the public API (include/safeinfer.h) over the layers below: models (a loaded graph plus the
 * caller's shape overrides) and tensors read from protobuf files. Configurations are in config.c,
 * compilation in compile.c, requests in request.c.
 */
#include "api/internal.h"
#include "onnx/onnx.h"

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
        out->dims[i] = i < v->ndim && v->dims[i] >= 0 ? v->dims[i] : -1; /* symbols and unknown: -1 */
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
        si_val_set_dq(val, NULL, NULL, NULL, 0);
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

// --- version ----------------------------------------------------------------------------------------------

const char *si_version(int *major, int *minor, int *patch) {
    if (major) *major = SI_VERSION_MAJOR;
    if (minor) *minor = SI_VERSION_MINOR;
    if (patch) *patch = SI_VERSION_PATCH;
    return SI_VERSION_STRING;
}
