/*
 * fuzz_mutate.h — a structure-aware mutation of a serialized ONNX ModelProto for libFuzzer's custom mutator.
 *
 * Byte-level mutations of a protobuf mostly break its length prefixes, so the loader's parse errors are all
 * they reach. Half of the time (and whenever the input does not unpack) the harness uses libFuzzer's own
 * mutation; otherwise it unpacks the model with protobuf-c, changes one to three things a hostile model
 * would (a dimension of an initializer or an input to an extreme value, an initializer's element type or
 * data, an attribute's value, a new attribute, a node's op type, a node's inputs, the opset, a node removed
 * or duplicated, which value is an output) and packs it again: the result is a well-formed model that gets
 * through parsing into shape inference, constant folding, compilation and the kernels.
 *
 * Strings replaced here are freed unless they are protobuf-c's shared empty string; everything allocated here
 * is owned by the message afterwards (protobuf-c's default allocator is malloc/free), so that
 * onnx__model_proto__free_unpacked releases it all.
 */
#ifndef SI_FUZZ_MUTATE_H
#define SI_FUZZ_MUTATE_H

#include "onnx.pb-c.h"
#include "ops/ops.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

typedef struct fz_rng {
    uint64_t s;
} fz_rng;

static inline uint64_t fz_next(fz_rng *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    uint64_t x = r->s;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static inline size_t fz_below(fz_rng *r, size_t n) { return n ? (size_t)(fz_next(r) % n) : 0; }

static inline int64_t fz_int(fz_rng *r) {
    static const int64_t v[] = {0, 1, -1, 2, 3, -2, 4, 7, 8, 16, 255, 256, 1024, 65535, 65536, INT32_MAX,
                                (int64_t)INT32_MAX + 1, (int64_t)1 << 32, (int64_t)1 << 40, (int64_t)1 << 62,
                                INT64_MAX, INT64_MIN, INT64_MIN + 1, INT32_MIN, -1000000, 1000000007};
    switch (fz_below(r, 4)) {
    case 0: return (int64_t)fz_below(r, 21) - 10;
    case 1: return (int64_t)fz_below(r, 100000);
    default: return v[fz_below(r, sizeof v / sizeof v[0])];
    }
}

static inline float fz_float(fz_rng *r) {
    static const float v[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 2.0f, 1e-30f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX,
                              FLT_MIN, 1e-45f, 3.0f, 1e6f, -1e6f};
    switch (fz_below(r, 5)) {
    case 0: return NAN;
    case 1: return fz_below(r, 2) ? INFINITY : -INFINITY;
    case 2: return (float)((int64_t)fz_below(r, 2001) - 1000) / 10.0f;
    default: return v[fz_below(r, sizeof v / sizeof v[0])];
    }
}

static inline void fz_set_str(char **field, const char *value) {
    char *n = strdup(value);
    if (!n) return;
    if (*field && *field != protobuf_c_empty_string) free(*field);
    *field = n;
}

/* Grow a protobuf-c repeated field of pointers by one slot. */
static inline bool fz_grow(void ***arr, size_t *n) {
    void **na = realloc(*arr, sizeof(void *) * (*n + 1));
    if (!na) return false;
    *arr = na;
    return true;
}

/* Every value name of the graph: initializers, inputs, node outputs. */
static inline const char *fz_some_name(fz_rng *r, const Onnx__GraphProto *g) {
    size_t total = g->n_initializer + g->n_input;
    for (size_t i = 0; i < g->n_node; i++) total += g->node[i]->n_output;
    if (!total) return "x";
    size_t k = fz_below(r, total);
    if (k < g->n_initializer) return g->initializer[k]->name ? g->initializer[k]->name : "";
    k -= g->n_initializer;
    if (k < g->n_input) return g->input[k]->name ? g->input[k]->name : "";
    k -= g->n_input;
    for (size_t i = 0; i < g->n_node; i++) {
        if (k < g->node[i]->n_output) return g->node[i]->output[k] ? g->node[i]->output[k] : "";
        k -= g->node[i]->n_output;
    }
    return "x";
}

static const char *const fz_attr_names[] = {
    "axis", "axes", "perm", "shape", "keepdims", "to", "value", "pads", "strides", "kernel_shape", "dilations",
    "group", "mode", "alpha", "beta", "epsilon", "transA", "transB", "starts", "ends", "split", "allowzero",
    "num_outputs", "blocksize", "coordinate_transformation_mode", "auto_pad", "ceil_mode", "count_include_pad",
    "select_last_index", "exclusive", "reverse", "output_padding", "output_shape", "size", "bias", "lambd",
    "min", "max", "noop_with_empty_axes", "largest", "sorted", "k", "direction", "seed", "dtype", "repeats",
    "sizes", "scales", "nearest_mode", "cubic_coeff_a", "storage_order", "batch_dims", "reduction", "detect_negative",
    "fmod", "stash_type", "antialias", "keep_aspect_ratio_policy", "layout", "saturate", "value_ints", "value_int",
    "value_float", "value_floats"};

static inline void fz_mutate_attr(fz_rng *r, Onnx__AttributeProto *a) {
    switch (a->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: a->i = fz_int(r); a->has_i = 1; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: a->f = fz_float(r); a->has_f = 1; break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        if (a->n_ints && fz_below(r, 3)) {
            a->ints[fz_below(r, a->n_ints)] = fz_int(r);
        } else if (fz_below(r, 2) || !a->n_ints) {
            int64_t *ni = realloc(a->ints, sizeof(int64_t) * (a->n_ints + 1));
            if (ni) { a->ints = ni; a->ints[a->n_ints++] = fz_int(r); }
        } else {
            a->n_ints--;
        }
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        if (a->n_floats) a->floats[fz_below(r, a->n_floats)] = fz_float(r);
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING: {
        static const char *const s[] = {"", "constant", "reflect", "edge", "linear", "nearest", "cubic", "SAME_UPPER",
                                        "VALID", "NOTSET", "half_pixel", "align_corners", "tf_crop_and_resize", "floor",
                                        "ceil", "DCR", "CRD", "add", "mul", "max", "RIGHT", "xyz\xff"};
        free(a->s.data);
        const char *v = s[fz_below(r, sizeof s / sizeof s[0])];
        a->s.len = strlen(v);
        a->s.data = malloc(a->s.len + 1);
        if (a->s.data) memcpy(a->s.data, v, a->s.len + 1);
        else a->s.len = 0;
        a->has_s = 1;
        break;
    }
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        if (a->t && a->t->n_dims) a->t->dims[fz_below(r, a->t->n_dims)] = fz_int(r);
        else if (a->t) a->t->data_type = (int32_t)fz_below(r, 27);
        break;
    default: a->type = (Onnx__AttributeProto__AttributeType)(fz_below(r, 15)); a->has_type = 1; break;
    }
}

static inline Onnx__AttributeProto *fz_new_attr(fz_rng *r) {
    Onnx__AttributeProto *a = malloc(sizeof *a);
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = strdup(fz_attr_names[fz_below(r, sizeof fz_attr_names / sizeof fz_attr_names[0])]);
    if (!a->name) { free(a); return NULL; }
    a->has_type = 1;
    switch (fz_below(r, 3)) {
    case 0: a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT; break;
    case 1: a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT; break;
    default: a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS; break;
    }
    fz_mutate_attr(r, a);
    return a;
}

static inline void fz_mutate_tensor_data(fz_rng *r, Onnx__TensorProto *t) {
    if (t->has_raw_data && t->raw_data.len) {
        size_t esz = t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE ? 8 : 4;
        if (t->raw_data.len >= esz) {
            size_t at = fz_below(r, t->raw_data.len / esz) * esz;
            if (esz == 8) { int64_t v = fz_int(r); memcpy(t->raw_data.data + at, &v, 8); }
            else if (t->data_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) { float v = fz_float(r); memcpy(t->raw_data.data + at, &v, 4); }
            else { int32_t v = (int32_t)fz_int(r); memcpy(t->raw_data.data + at, &v, 4); }
        } else {
            t->raw_data.data[fz_below(r, t->raw_data.len)] = (uint8_t)fz_next(r);
        }
    } else if (t->n_int64_data) {
        t->int64_data[fz_below(r, t->n_int64_data)] = fz_int(r);
    } else if (t->n_float_data) {
        t->float_data[fz_below(r, t->n_float_data)] = fz_float(r);
    } else if (t->n_int32_data) {
        t->int32_data[fz_below(r, t->n_int32_data)] = (int32_t)fz_int(r);
    }
}

/* One structural change; false when there was nothing to change. */
static inline bool fz_mutate_once(fz_rng *r, Onnx__ModelProto *m) {
    Onnx__GraphProto *g = m->graph;
    if (!g) return false;
    switch (fz_below(r, 13)) {
    case 0: { /* an initializer's dimension */
        if (!g->n_initializer) return false;
        Onnx__TensorProto *t = g->initializer[fz_below(r, g->n_initializer)];
        if (t->n_dims && fz_below(r, 4)) {
            t->dims[fz_below(r, t->n_dims)] = fz_int(r);
        } else if (t->n_dims < 9) {
            int64_t *nd = realloc(t->dims, sizeof(int64_t) * (t->n_dims + 1));
            if (!nd) return false;
            t->dims = nd;
            t->dims[t->n_dims++] = fz_int(r);
        }
        return true;
    }
    case 1: { /* an initializer's element type */
        if (!g->n_initializer) return false;
        Onnx__TensorProto *t = g->initializer[fz_below(r, g->n_initializer)];
        t->data_type = (int32_t)fz_below(r, 27);
        t->has_data_type = 1;
        return true;
    }
    case 2: /* an initializer's data (shape values, axes, indices, ...) */
        if (!g->n_initializer) return false;
        fz_mutate_tensor_data(r, g->initializer[fz_below(r, g->n_initializer)]);
        return true;
    case 3: { /* an attribute's value */
        if (!g->n_node) return false;
        Onnx__NodeProto *n = g->node[fz_below(r, g->n_node)];
        if (!n->n_attribute) return false;
        fz_mutate_attr(r, n->attribute[fz_below(r, n->n_attribute)]);
        return true;
    }
    case 4: { /* a new attribute */
        if (!g->n_node) return false;
        Onnx__NodeProto *n = g->node[fz_below(r, g->n_node)];
        Onnx__AttributeProto *a = fz_new_attr(r);
        if (!a) return false;
        if (!fz_grow((void ***)&n->attribute, &n->n_attribute)) { onnx__attribute_proto__free_unpacked(a, NULL); return false; }
        n->attribute[n->n_attribute++] = a;
        return true;
    }
    case 5: { /* a node's op type */
        if (!g->n_node) return false;
        int count = 0;
        const si_op_def *const *all = si_op_all(&count);
        if (!count) return false;
        fz_set_str(&g->node[fz_below(r, g->n_node)]->op_type, si_op_name(all[fz_below(r, (size_t)count)]->id));
        return true;
    }
    case 6: { /* a node's inputs: another value, an absent optional input, one more or one fewer */
        if (!g->n_node) return false;
        Onnx__NodeProto *n = g->node[fz_below(r, g->n_node)];
        size_t how = fz_below(r, 4);
        if (how == 0 && n->n_input) {
            n->n_input--;
            if (n->input[n->n_input] != protobuf_c_empty_string) free(n->input[n->n_input]);
            return true;
        }
        if (how == 1 || !n->n_input) {
            if (!fz_grow((void ***)&n->input, &n->n_input)) return false;
            n->input[n->n_input] = strdup(fz_some_name(r, g));
            if (!n->input[n->n_input]) return false;
            n->n_input++;
            return true;
        }
        fz_set_str(&n->input[fz_below(r, n->n_input)], how == 2 ? "" : fz_some_name(r, g));
        return true;
    }
    case 7: { /* a graph input's dimension: extreme, or symbolic */
        if (!g->n_input) return false;
        Onnx__ValueInfoProto *vi = g->input[fz_below(r, g->n_input)];
        if (!vi->type || vi->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !vi->type->tensor_type->shape) return false;
        Onnx__TensorShapeProto *sh = vi->type->tensor_type->shape;
        if (!sh->n_dim) return false;
        Onnx__TensorShapeProto__Dimension *d = sh->dim[fz_below(r, sh->n_dim)];
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM) {
            if (d->dim_param && d->dim_param != protobuf_c_empty_string) free(d->dim_param);
            d->dim_param = NULL;
        }
        if (fz_below(r, 3)) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = fz_int(r);
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = strdup(fz_below(r, 2) ? "N" : "batch");
            if (!d->dim_param) d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE__NOT_SET;
        }
        return true;
    }
    case 8: /* the opset */
        if (!m->n_opset_import) return false;
        m->opset_import[0]->version = (int64_t)fz_below(r, 24);
        m->opset_import[0]->has_version = 1;
        return true;
    case 9: { /* remove a node */
        if (g->n_node < 2) return false;
        size_t k = fz_below(r, g->n_node);
        onnx__node_proto__free_unpacked(g->node[k], NULL);
        memmove(&g->node[k], &g->node[k + 1], sizeof(void *) * (g->n_node - k - 1));
        g->n_node--;
        return true;
    }
    case 10: { /* duplicate a node, its outputs renamed, one of them made a graph output */
        if (!g->n_node || g->n_node > 256) return false;
        Onnx__NodeProto *src = g->node[fz_below(r, g->n_node)];
        size_t len = onnx__node_proto__get_packed_size(src);
        uint8_t *buf = malloc(len ? len : 1);
        if (!buf) return false;
        onnx__node_proto__pack(src, buf);
        Onnx__NodeProto *n = onnx__node_proto__unpack(NULL, len, buf);
        free(buf);
        if (!n) return false;
        char name[64];
        for (size_t i = 0; i < n->n_output; i++) {
            snprintf(name, sizeof name, "fz%llu_%zu", (unsigned long long)(fz_next(r) & 0xffff), i);
            fz_set_str(&n->output[i], name);
        }
        if (!fz_grow((void ***)&g->node, &g->n_node)) { onnx__node_proto__free_unpacked(n, NULL); return false; }
        g->node[g->n_node++] = n;
        if (n->n_output && g->n_output) fz_set_str(&g->output[fz_below(r, g->n_output)]->name, n->output[0]);
        return true;
    }
    case 11: /* which value is an output */
        if (!g->n_output) return false;
        fz_set_str(&g->output[fz_below(r, g->n_output)]->name, fz_some_name(r, g));
        return true;
    default: { /* a node's output renamed (a value produced twice, or never) */
        if (!g->n_node) return false;
        Onnx__NodeProto *n = g->node[fz_below(r, g->n_node)];
        if (!n->n_output) return false;
        fz_set_str(&n->output[fz_below(r, n->n_output)], fz_some_name(r, g));
        return true;
    }
    }
}

/* Mutate the model in data[0..size) in place (at most max_size bytes); returns the new size. */
static inline size_t fz_mutate_model(uint8_t *data, size_t size, size_t max_size, unsigned seed) {
    fz_rng r = {seed};
    if (fz_below(&r, 2) == 0) return LLVMFuzzerMutate(data, size, max_size);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m) return LLVMFuzzerMutate(data, size, max_size);
    size_t rounds = 1 + fz_below(&r, 3);
    bool changed = false;
    for (size_t i = 0; i < rounds * 4 && !changed; i++)
        for (size_t k = 0; k < rounds; k++) changed |= fz_mutate_once(&r, m);
    size_t out = 0;
    if (changed && onnx__model_proto__get_packed_size(m) <= max_size) out = onnx__model_proto__pack(m, data);
    onnx__model_proto__free_unpacked(m, NULL);
    return out ? out : LLVMFuzzerMutate(data, size, max_size);
}

#endif
