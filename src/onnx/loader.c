/*
 * loader.c — ONNX ModelProto -> graph IR, using protobuf-c code generated at build time from Debian's
 * onnx.proto. Initializer bytes are taken over from the unpacked message without a copy where possible
 * (raw_data), and the file buffer is released right after unpacking, so peak memory stays near twice the
 * model's size.
 */
#include "onnx/onnx.h"
#include "ir/fold.h"

#include "onnx.pb-c.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

// --- allocator: route protobuf-c through the library's hook -------------------------------------------

static void *pb_alloc(void *ud, size_t n) { (void)ud; return si_malloc(n); }
static void pb_free(void *ud, void *p) { (void)ud; si_free(p); }
static ProtobufCAllocator pb_allocator = {pb_alloc, pb_free, NULL};

// --- tensors ----------------------------------------------------------------------------------------------

static si_result check_dtype(int32_t dt, const char *what) {
    si_dtype t = (si_dtype)dt;
    if (t == SI_STRING) return si_err(SI_ERR_UNSUPPORTED, "%s: element type string is not supported", what);
    if (!si_dtype_valid(t)) {
        static const char *names[] = {[14] = "complex64", [15] = "complex128", [17] = "float8e4m3fn",
                                      [18] = "float8e4m3fnuz", [19] = "float8e5m2", [20] = "float8e5m2fnuz",
                                      [21] = "uint4", [22] = "int4", [23] = "float4e2m1", [24] = "float8e8m0",
                                      [25] = "uint2", [26] = "int2"};
        const char *n = (dt >= 0 && dt < (int32_t)SI_ARRAY_LEN(names) && names[dt]) ? names[dt] : NULL;
        if (n) return si_err(SI_ERR_UNSUPPORTED, "%s: element type %s is not supported", what, n);
        return si_err(SI_ERR_PARSE, "%s: unknown element type %d", what, (int)dt);
    }
    return SI_OK;
}

/* Is `loc` a plain relative path that stays inside its folder (no absolute path, no ".." component)? */
static bool path_stays_inside(const char *loc) {
    if (!*loc || loc[0] == '/' || loc[0] == '\\') return false;
    const char *p = loc;
    while (*p) {
        const char *e = p;
        while (*e && *e != '/' && *e != '\\') e++;
        if (e - p == 2 && p[0] == '.' && p[1] == '.') return false;
        p = *e ? e + 1 : e;
    }
    return true;
}

static si_result read_external(const Onnx__TensorProto *tp, const char *base_dir, const char *what, si_tensor *t) {
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key || !e->value) continue;
        char *end = NULL;
        if (!strcmp(e->key, "location")) loc = e->value;
        else if (!strcmp(e->key, "offset")) { errno = 0; offset = strtoll(e->value, &end, 10); if (errno || *end || offset < 0) return si_err(SI_ERR_PARSE, "%s: bad external data offset '%s'", what, e->value); }
        else if (!strcmp(e->key, "length")) { errno = 0; length = strtoll(e->value, &end, 10); if (errno || *end || length < 0) return si_err(SI_ERR_PARSE, "%s: bad external data length '%s'", what, e->value); }
    }
    if (!loc) return si_err(SI_ERR_PARSE, "%s: external data without a location", what);
    if (!base_dir) return si_err(SI_ERR_INVALID_ARG, "%s: external data '%s' cannot be used for a model loaded from memory without a folder", what, loc);
    if (!path_stays_inside(loc)) return si_err(SI_ERR_INVALID_ARG, "%s: external data location '%s' leaves the model's folder", what, loc);
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", base_dir, loc) >= sizeof path) return si_err(SI_ERR_INVALID_ARG, "%s: external data path too long", what);
    /* symlinks could still point outside: compare real paths */
    char rbase[PATH_MAX], rpath[PATH_MAX];
    if (!realpath(base_dir, rbase)) return si_err(SI_ERR_IO, "%s: cannot resolve folder '%s': %s", what, base_dir, strerror(errno));
    if (!realpath(path, rpath)) return si_err(SI_ERR_IO, "%s: external data file '%s': %s", what, path, strerror(errno));
    size_t bl = strlen(rbase);
    if (strncmp(rpath, rbase, bl) != 0 || (rpath[bl] != '/' && !(bl == 1 && rbase[0] == '/')))
        return si_err(SI_ERR_INVALID_ARG, "%s: external data location '%s' leaves the model's folder", what, loc);
    if (length >= 0 && (size_t)length != t->nbytes)
        return si_err(SI_ERR_PARSE, "%s: external data length %lld does not match the shape's %zu bytes", what, (long long)length, t->nbytes);
    FILE *f = fopen(rpath, "rb");
    if (!f) return si_err(SI_ERR_IO, "%s: cannot open external data '%s': %s", what, rpath, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)offset + t->nbytes > (uint64_t)st.st_size) {
        fclose(f);
        return si_err(SI_ERR_PARSE, "%s: external data '%s' is shorter than offset %lld + %zu bytes", what, loc, (long long)offset, t->nbytes);
    }
    si_result s = si_tensor_alloc(t);
    if (!s && t->nbytes && (fseeko(f, (off_t)offset, SEEK_SET) != 0 || fread(t->data, 1, t->nbytes, f) != t->nbytes))
        s = si_err(SI_ERR_IO, "%s: reading external data '%s' failed", what, loc);
    fclose(f);
    return s;
}

/* Convert a TensorProto; steals raw_data from the message when it can. */
static si_result tensor_from_proto(Onnx__TensorProto *tp, const char *base_dir, const char *what, si_tensor **out) {
    *out = NULL;
    si_result s = check_dtype(tp->data_type, what);
    if (s) return s;
    if (tp->segment) return si_err(SI_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
    if (tp->n_dims > SI_MAX_DIMS) return si_err(SI_ERR_UNSUPPORTED, "%s: rank %zu exceeds %d", what, tp->n_dims, SI_MAX_DIMS);
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "%s: out of memory", what);
    if ((s = si_tensor_init(t, (si_dtype)tp->data_type, (int)tp->n_dims, tp->dims))) { /* a malformed shape */
        si_free(t);
        return si_err_wrap(s == SI_ERR_INVALID_ARG ? SI_ERR_PARSE : s, "%s", what);
    }
    int64_t count = si_shape_count(t->ndim, t->dims);
    size_t esz = si_dtype_size(t->dtype);
    const int pbits = si_dtype_packed_bits(t->dtype); /* 4-bit / 2-bit types: packed in the file */
    bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if (external && pbits) {
        s = si_err(SI_ERR_UNSUPPORTED, "%s: external data of packed element type %s is not supported", what,
                   si_dtype_name(t->dtype));
    } else if (external) {
        s = read_external(tp, base_dir, what, t);
    } else if (pbits && tp->has_raw_data && (tp->raw_data.len || !tp->n_int32_data)) {
        size_t need = (size_t)((count * pbits + 7) / 8);
        if (tp->raw_data.len != need)
            s = si_err(SI_ERR_PARSE, "%s: raw_data has %zu bytes, shape %s needs %zu (%d-bit values, packed)", what,
                       tp->raw_data.len, si_shape_str((char[128]){0}, 128, t->dtype, t->ndim, t->dims), need, pbits);
        else if (!(s = si_tensor_alloc(t)))
            si_narrow_unpack(t->dtype, tp->raw_data.data, t->data, count);
    } else if (pbits) {
        size_t need = (size_t)((count * pbits + 7) / 8);
        if (tp->n_int32_data != need) {
            s = si_err(SI_ERR_PARSE, "%s: %zu int32_data values stored, shape %s needs %zu (%d-bit values, packed)", what,
                       tp->n_int32_data, si_shape_str((char[128]){0}, 128, t->dtype, t->ndim, t->dims), need, pbits);
        } else if (!(s = si_tensor_alloc(t))) {
            uint8_t *bytes = si_malloc(need ? need : 1);
            if (!bytes) {
                s = si_err(SI_ERR_NO_MEM, "%s: out of memory", what);
            } else {
                for (size_t i = 0; i < need; i++) bytes[i] = (uint8_t)tp->int32_data[i];
                si_narrow_unpack(t->dtype, bytes, t->data, count);
                si_free(bytes);
            }
        }
    } else if (tp->has_raw_data && (tp->raw_data.len || !(tp->n_float_data | tp->n_int32_data | tp->n_int64_data | tp->n_double_data | tp->n_uint64_data))) {
        if (tp->raw_data.len != t->nbytes) {
            s = si_err(SI_ERR_PARSE, "%s: raw_data has %zu bytes, shape %s needs %zu", what, tp->raw_data.len,
                       si_shape_str((char[128]){0}, 128, t->dtype, t->ndim, t->dims), t->nbytes);
        } else if (t->nbytes && ((uintptr_t)tp->raw_data.data % 8) == 0) {
            t->data = tp->raw_data.data; /* take over the buffer (allocated through si_malloc) */
            t->owned = true;
            tp->raw_data.data = NULL;
            tp->raw_data.len = 0;
        } else if (!(s = si_tensor_alloc(t)) && t->nbytes) {
            memcpy(t->data, tp->raw_data.data, t->nbytes);
        }
    } else {
        size_t n = 0;
        switch (t->dtype) {
        case SI_F32: n = tp->n_float_data; break;
        case SI_F64: n = tp->n_double_data; break;
        case SI_I64: n = tp->n_int64_data; break;
        case SI_U32: case SI_U64: n = tp->n_uint64_data; break;
        default: n = tp->n_int32_data; break;
        }
        /* compare before allocating: a malformed shape must not turn into a huge allocation */
        if ((int64_t)n != count) {
            s = si_err(SI_ERR_PARSE, "%s: %zu values stored, the shape needs %lld", what, n, (long long)count);
        } else if (!(s = si_tensor_alloc(t))) {
            for (int64_t i = 0; i < count; i++) {
                switch (t->dtype) {
                case SI_F32: ((float *)t->data)[i] = tp->float_data[i]; break;
                case SI_F64: ((double *)t->data)[i] = tp->double_data[i]; break;
                case SI_I64: ((int64_t *)t->data)[i] = tp->int64_data[i]; break;
                case SI_U32: ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i]; break;
                case SI_U64: ((uint64_t *)t->data)[i] = tp->uint64_data[i]; break;
                case SI_F16: case SI_BF16: ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i]; break;
                case SI_F8E4M3FN: case SI_F8E4M3FNUZ: case SI_F8E5M2: case SI_F8E5M2FNUZ: case SI_F8E8M0:
                    ((uint8_t *)t->data)[i] = (uint8_t)tp->int32_data[i]; /* the 8-bit code */
                    break;
                default: si_store_i64(t->dtype, t->data, i, tp->int32_data[i]); break;
                }
            }
        }
    }
    (void)esz;
    if (s) { si_tensor_free(t); return s; }
    *out = t;
    return SI_OK;
}

si_result si_onnx_read_tensor(const void *buf, size_t len, si_tensor **out, char **name) {
    *out = NULL;
    if (name) *name = NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(&pb_allocator, len, buf);
    if (!tp) return si_err(SI_ERR_PARSE, "not a valid serialized TensorProto (%zu bytes)", len);
    si_result s = tensor_from_proto(tp, NULL, tp->name && *tp->name ? tp->name : "tensor", out);
    if (!s && name && !(*name = si_strdup(tp->name ? tp->name : ""))) {
        si_tensor_free(*out);
        *out = NULL;
        s = si_err(SI_ERR_NO_MEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, &pb_allocator);
    return s;
}

// --- nesting depth ----------------------------------------------------------------------------------------
/*
 * protobuf-c unpacks nested messages recursively, so a hostile model that nests subgraphs (an If in an If in
 * ...) or types (a sequence of a sequence of ...) a few hundred thousand levels deep would overflow the stack
 * inside onnx__model_proto__unpack. Before unpacking, this walks the wire format, following only the fields
 * through which ONNX messages can recurse (the other messages have a small fixed depth), and refuses more
 * than SI_MAX_WIRE_GRAPH_DEPTH nested graphs or SI_MAX_MSG_DEPTH nested messages. Malformed wire data is refused
 * too (protobuf-c would refuse it as well).
 */
enum { PK_MODEL, PK_GRAPH, PK_NODE, PK_ATTR, PK_FUNCTION, PK_TRAINING, PK_VALUE_INFO, PK_TYPE, PK_TYPE_ELEM, PK_TYPE_MAP, PK_NONE };

/* The kind of the message in field `field` of a message of kind `kind`, or PK_NONE where it cannot nest. */
static int nested_kind(int kind, uint64_t field) {
    switch (kind) {
    case PK_MODEL: return field == 7 ? PK_GRAPH : field == 20 ? PK_TRAINING : field == 25 ? PK_FUNCTION : PK_NONE;
    case PK_TRAINING: return field == 1 || field == 2 ? PK_GRAPH : PK_NONE;
    case PK_GRAPH: return field == 1 ? PK_NODE : field >= 11 && field <= 13 ? PK_VALUE_INFO : PK_NONE;
    case PK_NODE: return field == 5 ? PK_ATTR : PK_NONE;
    case PK_ATTR: return field == 6 || field == 11 ? PK_GRAPH : field == 14 || field == 15 ? PK_TYPE : PK_NONE;
    case PK_FUNCTION: return field == 7 ? PK_NODE : PK_NONE;
    case PK_VALUE_INFO: return field == 2 ? PK_TYPE : PK_NONE;
    case PK_TYPE: return field == 4 || field == 9 ? PK_TYPE_ELEM : field == 5 ? PK_TYPE_MAP : PK_NONE;
    case PK_TYPE_ELEM: return field == 1 ? PK_TYPE : PK_NONE; /* Sequence.elem_type, Optional.elem_type */
    case PK_TYPE_MAP: return field == 2 ? PK_TYPE : PK_NONE;  /* Map.value_type */
    default: return PK_NONE;
    }
}

static bool wire_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *pos < end; shift += 7) {
        uint8_t c = p[(*pos)++];
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return true;
    }
    return false;
}

/* 0: fine; 1: malformed; 2: too deep (*what says which limit). */
static int wire_depth(const uint8_t *p, size_t start, size_t end, int kind, int depth, int graphs, const char **what) {
    if (kind == PK_GRAPH && ++graphs > SI_MAX_WIRE_GRAPH_DEPTH) { *what = "subgraphs"; return 2; }
    if (++depth > SI_MAX_MSG_DEPTH) { *what = "messages"; return 2; }
    size_t pos = start;
    while (pos < end) {
        uint64_t tag, len;
        if (!wire_varint(p, end, &pos, &tag)) return 1;
        switch (tag & 7) {
        case 0: if (!wire_varint(p, end, &pos, &len)) return 1; break;
        case 1: if (end - pos < 8) return 1; pos += 8; break;
        case 5: if (end - pos < 4) return 1; pos += 4; break;
        case 2: {
            if (!wire_varint(p, end, &pos, &len) || len > end - pos) return 1;
            int sub = nested_kind(kind, tag >> 3);
            if (sub != PK_NONE) {
                int r = wire_depth(p, pos, pos + (size_t)len, sub, depth, graphs, what);
                if (r) return r;
            }
            pos += (size_t)len;
            break;
        }
        default: return 1; /* groups: not used by ONNX, and not by protobuf-c either */
        }
    }
    return 0;
}

static si_result check_nesting(const void *buf, size_t len) {
    const char *what = "";
    int r = wire_depth(buf, 0, len, PK_MODEL, 0, 0, &what);
    if (r == 1) return si_err(SI_ERR_PARSE, "not a valid ONNX model: the protobuf is malformed or truncated (%zu bytes)", len);
    if (r == 2)
        return si_err(SI_ERR_PARSE, "the model nests %s deeper than %d levels", what,
                      !strcmp(what, "subgraphs") ? SI_MAX_WIRE_GRAPH_DEPTH : SI_MAX_MSG_DEPTH);
    return SI_OK;
}

// --- value infos ------------------------------------------------------------------------------------------

/* The declared type of v (a value of g). required: v must be a tensor with a type (graph inputs and outputs); a
 * dim_param becomes the dimension symbol of that name. */
static si_result apply_value_info(si_graph *g, int vid, const Onnx__ValueInfoProto *vi, bool required) {
    si_val *v = &g->values[vid];
    const Onnx__TypeProto *tp = vi->type;
    if (!tp) {
        if (required) return si_err(SI_ERR_PARSE, "value '%s' has no type", v->name);
        return SI_OK;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        const char *kind = tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE ? "sequence"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE      ? "map"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE ? "optional"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE ? "sparse tensor"
                                                                                         : "unknown";
        if (required) return si_err(SI_ERR_UNSUPPORTED, "value '%s' has %s type; only tensors are supported", v->name, kind);
        return SI_OK;
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        char what[300];
        snprintf(what, sizeof what, "value '%s'", v->name);
        si_result s = check_dtype(tt->elem_type, what);
        if (s) return required ? s : (si_err_clear(), SI_OK);
        v->dtype = (si_dtype)tt->elem_type;
    }
    if (tt->shape) {
        if (tt->shape->n_dim > SI_MAX_DIMS) {
            if (required) return si_err(SI_ERR_UNSUPPORTED, "value '%s': rank %zu exceeds %d", v->name, tt->shape->n_dim, SI_MAX_DIMS);
            return SI_OK;
        }
        v->ndim = (int)tt->shape->n_dim;
        for (size_t i = 0; i < tt->shape->n_dim; i++) {
            const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
            v->dims[i] = SI_DIM_UNKNOWN;
            si_free(v->dim_names[i]);
            v->dim_names[i] = NULL;
            if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0) {
                v->dims[i] = d->dim_value;
            } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param && *d->dim_param) {
                int sym = si_graph_sym(g, d->dim_param);
                if (sym < 0 || !(v->dim_names[i] = si_strdup(d->dim_param))) return si_err(SI_ERR_NO_MEM, "out of memory");
                v->dims[i] = si_dim_sym(sym);
            }
        }
        /* a declared shape whose element count overflows (int64) can never be a tensor */
        int64_t known[SI_MAX_DIMS];
        for (int i = 0; i < v->ndim; i++) known[i] = v->dims[i] < 0 ? 1 : v->dims[i];
        if (si_shape_count(v->ndim, known) > INT64_MAX / 16) {
            if (required) {
                char sh[160];
                return si_err(SI_ERR_PARSE, "value '%s': declared shape %s is too large", v->name,
                              si_shape_str(sh, sizeof sh, v->dtype, v->ndim, v->dims));
            }
            v->ndim = -1; /* only a hint: forget it */
        }
    }
    return SI_OK;
}

// --- value names ------------------------------------------------------------------------------------------
/* The loader looks up every input and output name of every node: a hash index over the graph's value names
 * (si_graph_find_value scans) keeps loading linear in the model's size. */

typedef struct name_index {
    int *slot; /* value id + 1; 0 = empty */
    size_t cap, n;
} name_index;

static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static bool index_put(name_index *ix, const si_graph *g, int id) {
    if ((ix->n + 1) * 2 > ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 256;
        int *ns = si_calloc(cap, sizeof(int));
        if (!ns) return false;
        for (size_t i = 0; i < ix->cap; i++)
            if (ix->slot[i]) {
                size_t j = (size_t)name_hash(g->values[ix->slot[i] - 1].name) & (cap - 1);
                while (ns[j]) j = (j + 1) & (cap - 1);
                ns[j] = ix->slot[i];
            }
        si_free(ix->slot);
        ix->slot = ns;
        ix->cap = cap;
    }
    size_t j = (size_t)name_hash(g->values[id].name) & (ix->cap - 1);
    while (ix->slot[j]) j = (j + 1) & (ix->cap - 1);
    ix->slot[j] = id + 1;
    ix->n++;
    return true;
}

static int index_find(const name_index *ix, const si_graph *g, const char *name) {
    if (!ix->cap) return -1;
    for (size_t j = (size_t)name_hash(name) & (ix->cap - 1); ix->slot[j]; j = (j + 1) & (ix->cap - 1))
        if (!strcmp(g->values[ix->slot[j] - 1].name, name)) return ix->slot[j] - 1;
    return -1;
}

/* The id of the value named `name`, made when new; -1 on allocation failure. */
static int value_id(name_index *ix, si_graph *g, const char *name) {
    int v = index_find(ix, g, name);
    if (v >= 0) return v;
    if ((v = si_graph_add_value(g, name)) < 0 || !index_put(ix, g, v)) return -1;
    return v;
}

// --- nodes ----------------------------------------------------------------------------------------------

static si_result load_subgraph(Onnx__GraphProto *gp, si_graph *parent, const char *base_dir, const char *what,
                               si_graph **out);

static si_result convert_attr(si_graph *g, si_attr *a, Onnx__AttributeProto *ap, const char *node_name,
                              const char *base_dir) {
    if (!(a->name = si_strdup(ap->name ? ap->name : ""))) return si_err(SI_ERR_NO_MEM, "out of memory");
    int type = ap->has_type ? (int)ap->type : 0;
    if (type == 0) { /* very old models: infer the kind from the field that is set */
        if (ap->has_f) type = SI_ATTR_FLOAT;
        else if (ap->has_i) type = SI_ATTR_INT;
        else if (ap->has_s) type = SI_ATTR_STRING;
        else if (ap->t) type = SI_ATTR_TENSOR;
        else if (ap->g) type = SI_ATTR_GRAPH;
        else if (ap->n_floats) type = SI_ATTR_FLOATS;
        else if (ap->n_ints) type = SI_ATTR_INTS;
        else if (ap->n_strings) type = SI_ATTR_STRINGS;
        else if (ap->n_tensors) type = SI_ATTR_TENSORS;
        else if (ap->n_graphs) type = SI_ATTR_GRAPHS;
    }
    a->type = (si_attr_type)type;
    char what[512];
    snprintf(what, sizeof what, "node '%s' attribute '%s'", node_name, a->name);
    switch (a->type) {
    case SI_ATTR_FLOAT: a->f = ap->f; break;
    case SI_ATTR_INT: a->i = ap->i; break;
    case SI_ATTR_STRING:
        if (!(a->s = si_malloc(ap->s.len + 1))) return si_err(SI_ERR_NO_MEM, "out of memory");
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        break;
    case SI_ATTR_TENSOR:
        if (!ap->t) return si_err(SI_ERR_PARSE, "%s: tensor attribute without a tensor", what);
        return tensor_from_proto(ap->t, NULL, what, &a->t);
    case SI_ATTR_FLOATS:
        a->n = (int)ap->n_floats;
        if (!(a->floats = si_malloc(sizeof(float) * (ap->n_floats + 1)))) return si_err(SI_ERR_NO_MEM, "out of memory");
        if (ap->n_floats) memcpy(a->floats, ap->floats, sizeof(float) * ap->n_floats);
        break;
    case SI_ATTR_INTS:
        a->n = (int)ap->n_ints;
        if (!(a->ints = si_malloc(sizeof(int64_t) * (ap->n_ints + 1)))) return si_err(SI_ERR_NO_MEM, "out of memory");
        if (ap->n_ints) memcpy(a->ints, ap->ints, sizeof(int64_t) * ap->n_ints);
        break;
    case SI_ATTR_STRINGS:
        a->n = (int)ap->n_strings;
        if (!(a->strings = si_calloc(ap->n_strings + 1, sizeof(char *)))) return si_err(SI_ERR_NO_MEM, "out of memory");
        for (size_t i = 0; i < ap->n_strings; i++) {
            if (!(a->strings[i] = si_malloc(ap->strings[i].len + 1))) return si_err(SI_ERR_NO_MEM, "out of memory");
            if (ap->strings[i].len) memcpy(a->strings[i], ap->strings[i].data, ap->strings[i].len);
            a->strings[i][ap->strings[i].len] = 0;
        }
        break;
    case SI_ATTR_GRAPH:
        if (!ap->g) return si_err(SI_ERR_PARSE, "%s: graph attribute without a graph", what);
        return load_subgraph(ap->g, g, base_dir, what, &a->g);
    case SI_ATTR_GRAPHS:
        if (!(a->gs = si_calloc(ap->n_graphs + 1, sizeof(si_graph *)))) return si_err(SI_ERR_NO_MEM, "out of memory");
        a->n = (int)ap->n_graphs;
        for (size_t i = 0; i < ap->n_graphs; i++) {
            si_result s = load_subgraph(ap->graphs[i], g, base_dir, what, &a->gs[i]);
            if (s) return s;
        }
        break;
    default: break; /* sparse tensors, type protos: kept as a typed marker; ops needing them are unsupported */
    }
    return SI_OK;
}

static si_result convert_node(si_graph *g, name_index *ix, Onnx__NodeProto *np, int index, const char *base_dir) {
    si_node n;
    memset(&n, 0, sizeof n);
    char fallback[32];
    snprintf(fallback, sizeof fallback, "#%d", index);
    si_result s = SI_OK;
    if (!np->op_type || !*np->op_type) return si_err(SI_ERR_PARSE, "node %d has no op_type", index);
    if (np->domain && !strcmp(np->domain, SI_FOLD_DOMAIN)) /* its ops are made by safeinfer itself (ir/fold.h) */
        return si_err(SI_ERR_UNSUPPORTED, "node '%s' (%s): domain %s is safeinfer's own (the calls it makes when it folds "
                      "repeated blocks); a model may not use it", np->name && *np->name ? np->name : fallback, np->op_type, SI_FOLD_DOMAIN);
    if (!(n.name = si_strdup(np->name && *np->name ? np->name : fallback)) || !(n.op_type = si_strdup(np->op_type)) ||
        !(n.domain = si_strdup(np->domain ? np->domain : "")))
        goto oom;
    n.n_in = (int)np->n_input;
    n.n_out = (int)np->n_output;
    if (!(n.in = si_malloc(sizeof(int) * (np->n_input + 1))) || !(n.out = si_malloc(sizeof(int) * (np->n_output + 1)))) goto oom;
    for (size_t i = 0; i < np->n_input; i++) {
        const char *nm = np->input[i];
        n.in[i] = -1;
        if (nm && *nm && (n.in[i] = value_id(ix, g, nm)) < 0) goto oom;
    }
    for (size_t i = 0; i < np->n_output; i++) {
        const char *nm = np->output[i];
        n.out[i] = -1;
        if (nm && *nm && (n.out[i] = value_id(ix, g, nm)) < 0) goto oom;
    }
    if (!(n.attrs = si_calloc(np->n_attribute + 1, sizeof(si_attr)))) goto oom;
    for (size_t i = 0; i < np->n_attribute; i++) {
        n.n_attr = (int)i + 1;
        if (np->attribute[i]->ref_attr_name && *np->attribute[i]->ref_attr_name) {
            s = si_err(SI_ERR_PARSE, "node '%s': attribute reference outside a function", n.name);
            goto fail;
        }
        if ((s = convert_attr(g, &n.attrs[i], np->attribute[i], n.name, base_dir))) goto fail;
    }
    if (si_graph_add_node(g, &n) < 0) goto oom;
    return SI_OK;
oom:
    s = si_err(SI_ERR_NO_MEM, "out of memory loading node %d", index);
fail:
    si_node_clear(&n);
    return s;
}

// --- model ----------------------------------------------------------------------------------------------

/* Initializer bytes left in the file by the streaming reader: initializer `index` has its raw_data at
 * [offset, offset + len) of the file `fd`. */
typedef struct raw_slice {
    size_t index;
    uint64_t offset, len;
} raw_slice;

typedef struct raw_slices {
    int fd;
    raw_slice *v;
    size_t n, cap;
} raw_slices;

static si_result tensor_from_slice(Onnx__TensorProto *tp, const raw_slices *rs, const raw_slice *sl, const char *what,
                                   si_tensor **out) {
    *out = NULL;
    si_result s = check_dtype(tp->data_type, what);
    if (s) return s;
    if (tp->n_dims > SI_MAX_DIMS) return si_err(SI_ERR_UNSUPPORTED, "%s: rank %zu exceeds %d", what, tp->n_dims, SI_MAX_DIMS);
    si_tensor *t = si_calloc(1, sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "%s: out of memory", what);
    if ((s = si_tensor_init(t, (si_dtype)tp->data_type, (int)tp->n_dims, tp->dims))) {
        si_free(t);
        return si_err_wrap(s == SI_ERR_INVALID_ARG ? SI_ERR_PARSE : s, "%s", what);
    }
    if (si_dtype_packed_bits(t->dtype)) { /* packed 4-bit / 2-bit values: read, then unpack */
        const int64_t count = si_shape_count(t->ndim, t->dims);
        const uint64_t need = (uint64_t)((count * si_dtype_packed_bits(t->dtype) + 7) / 8);
        uint8_t *bytes = NULL;
        if (need != sl->len) s = si_err(SI_ERR_PARSE, "%s: raw_data has %llu bytes, the shape needs %llu (packed)", what,
                                        (unsigned long long)sl->len, (unsigned long long)need);
        else if (!(s = si_tensor_alloc_raw(t)) && !(bytes = si_malloc((size_t)need + 1))) s = si_err(SI_ERR_NO_MEM, "%s: out of memory", what);
        for (uint64_t done = 0; !s && done < need;) {
            ssize_t k = pread(rs->fd, bytes + done, (size_t)SI_MIN(need - done, (uint64_t)1 << 30), (off_t)(sl->offset + done));
            if (k <= 0) s = si_err(SI_ERR_IO, "%s: reading its data failed", what);
            else done += (uint64_t)k;
        }
        if (!s) si_narrow_unpack(t->dtype, bytes, t->data, count);
        si_free(bytes);
        if (s) { si_tensor_free(t); return s; }
        *out = t;
        return SI_OK;
    }
    if (t->nbytes != sl->len) {
        size_t need = t->nbytes; /* read before the tensor is freed */
        si_tensor_free(t);
        return si_err(SI_ERR_PARSE, "%s: raw_data has %llu bytes, the shape needs %zu", what, (unsigned long long)sl->len, need);
    }
    if ((s = si_tensor_alloc_raw(t))) { si_tensor_free(t); return s; } /* every byte is read into below */
    for (uint64_t done = 0; done < sl->len;) {
        ssize_t k = pread(rs->fd, (char *)t->data + done, (size_t)SI_MIN(sl->len - done, (uint64_t)1 << 30), (off_t)(sl->offset + done));
        if (k <= 0) { si_tensor_free(t); return si_err(SI_ERR_IO, "%s: reading its data failed", what); }
        done += (uint64_t)k;
    }
    *out = t;
    return SI_OK;
}

static si_result convert_graph_indexed(Onnx__ModelProto *mp, const char *base_dir, const raw_slices *rs, si_graph *g,
                                       name_index *ix);

static si_result convert_body(Onnx__GraphProto *gp, const char *base_dir, const raw_slices *rs, si_graph *g,
                              name_index *ix);

static si_result load_subgraph(Onnx__GraphProto *gp, si_graph *parent, const char *base_dir, const char *what,
                               si_graph **out) {
    *out = NULL;
    if (parent->depth + 1 > SI_MAX_GRAPH_DEPTH)
        return si_err(SI_ERR_UNSUPPORTED, "%s: subgraphs nested more than %d deep are not supported", what,
                      SI_MAX_GRAPH_DEPTH);
    si_graph *g = si_graph_new();
    if (!g) return si_err(SI_ERR_NO_MEM, "out of memory");
    g->parent = parent;
    g->depth = parent->depth + 1;
    g->ir_version = parent->ir_version;
    name_index ix = {0}; /* the subgraph's own names */
    si_result s = (g->producer = si_strdup("")) ? convert_body(gp, base_dir, NULL, g, &ix) : si_err(SI_ERR_NO_MEM, "out of memory");
    si_free(ix.slot);
    if (s) {
        si_graph_free(g);
        return si_err_wrap(s, "%s", what);
    }
    *out = g;
    return SI_OK;
}

static si_result convert_graph(Onnx__ModelProto *mp, const char *base_dir, const raw_slices *rs, si_graph *g) {
    name_index ix = {0};
    si_result s = convert_graph_indexed(mp, base_dir, rs, g, &ix);
    si_free(ix.slot);
    return s;
}

static si_result convert_graph_indexed(Onnx__ModelProto *mp, const char *base_dir, const raw_slices *rs, si_graph *g,
                                       name_index *ix) {
    Onnx__GraphProto *gp = mp->graph;
    if (!gp) return si_err(SI_ERR_PARSE, "the model has no graph");
    g->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    if (!(g->producer = si_strdup(mp->producer_name ? mp->producer_name : ""))) return si_err(SI_ERR_NO_MEM, "out of memory");
    if (!(g->opsets = si_calloc(mp->n_opset_import + 1, sizeof(si_opset)))) return si_err(SI_ERR_NO_MEM, "out of memory");
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        g->n_opsets = (int)i + 1;
        g->opsets[i].version = mp->opset_import[i]->version;
        if (!(g->opsets[i].domain = si_strdup(mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "")))
            return si_err(SI_ERR_NO_MEM, "out of memory");
    }
    if (mp->n_opset_import == 0 && g->ir_version >= 3)
        return si_err(SI_ERR_PARSE, "the model (IR version %lld) imports no opset (truncated or malformed?)", (long long)g->ir_version);
    if (mp->n_opset_import == 0) { /* IR version 1/2 models predate opset_import: opset 1 */
        if (!(g->opsets[0].domain = si_strdup(""))) return si_err(SI_ERR_NO_MEM, "out of memory");
        g->opsets[0].version = 1;
        g->n_opsets = 1;
    }
    return convert_body(gp, base_dir, rs, g, ix);
}

/* A GraphProto's initializers, inputs, nodes and outputs into g: the model's graph, or a subgraph (g->parent
 * set), whose inputs and outputs may omit their types and whose outputs may be values of enclosing graphs. */
static si_result convert_body(Onnx__GraphProto *gp, const char *base_dir, const raw_slices *rs, si_graph *g,
                              name_index *ix) {
    const bool sub = g->parent != NULL;
    si_result s;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        Onnx__TensorProto *tp = gp->initializer[i];
        if (!tp->name || !*tp->name) return si_err(SI_ERR_PARSE, "initializer %zu has no name", i);
        int v = value_id(ix, g, tp->name);
        if (v < 0) return si_err(SI_ERR_NO_MEM, "out of memory");
        if (g->values[v].is_initializer) return si_err(SI_ERR_PARSE, "initializer '%s' is defined twice", tp->name);
        char what[300];
        snprintf(what, sizeof what, "initializer '%s'", tp->name);
        si_tensor *t;
        const raw_slice *sl = NULL;
        for (size_t k = 0; rs && k < rs->n && !sl; k++)
            if (rs->v[k].index == i) sl = &rs->v[k];
        if ((s = sl ? tensor_from_slice(tp, rs, sl, what, &t) : tensor_from_proto(tp, base_dir, what, &t))) return s;
        si_val_set_const(&g->values[v], t);
    }
    if (gp->n_sparse_initializer) return si_err(SI_ERR_UNSUPPORTED, "sparse initializers are not supported");
    if (!(g->inputs = si_malloc(sizeof(int) * (gp->n_input + 1))) || !(g->outputs = si_malloc(sizeof(int) * (gp->n_output + 1))))
        return si_err(SI_ERR_NO_MEM, "out of memory");
    for (size_t i = 0; i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        if (!vi->name || !*vi->name) return si_err(SI_ERR_PARSE, "graph input %zu has no name", i);
        int v = value_id(ix, g, vi->name);
        if (v < 0) return si_err(SI_ERR_NO_MEM, "out of memory");
        if (g->values[v].is_initializer) continue; /* an initializer listed as input: a constant here */
        if (g->values[v].is_input) return si_err(SI_ERR_PARSE, "graph input '%s' is listed twice", vi->name);
        if ((!sub || vi->type) && (s = apply_value_info(g, v, vi, true))) return s;
        if (!sub && g->values[v].dtype == SI_DTYPE_UNDEFINED) return si_err(SI_ERR_PARSE, "graph input '%s' has no element type", vi->name);
        g->values[v].is_input = true;
        g->inputs[g->n_inputs++] = v;
    }
    for (size_t i = 0; i < gp->n_node; i++)
        if ((s = convert_node(g, ix, gp->node[i], (int)i, base_dir))) return s;
    for (size_t i = 0; i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        if (!vi->name || !*vi->name) return si_err(SI_ERR_PARSE, "graph output %zu has no name", i);
        /* a subgraph's output may be a value of an enclosing graph, returned as it is */
        int v = sub ? value_id(ix, g, vi->name) : index_find(ix, g, vi->name);
        if (v < 0 && sub) return si_err(SI_ERR_NO_MEM, "out of memory");
        if (v < 0) return si_err(SI_ERR_PARSE, "graph output '%s' is not produced by any node", vi->name);
        if ((!sub || vi->type) && (s = apply_value_info(g, v, vi, true))) return s;
        g->values[v].is_output = true;
        g->outputs[g->n_outputs++] = v;
    }
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        int v = vi->name ? index_find(ix, g, vi->name) : -1;
        if (v >= 0 && !g->values[v].is_input && !g->values[v].const_val) {
            if ((s = apply_value_info(g, v, vi, false))) return s;
        }
    }
    return si_graph_finalize(g);
}

si_result si_onnx_load(const void *buf, size_t len, const char *base_dir, si_graph **out) {
    *out = NULL;
    if (!buf) return si_err(SI_ERR_INVALID_ARG, "model buffer is NULL");
    if (len == 0) return si_err(SI_ERR_PARSE, "empty model");
    si_result ns = check_nesting(buf, len);
    if (ns) return ns;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(&pb_allocator, len, buf);
    if (!mp) return si_err(SI_ERR_PARSE, "not a valid ONNX model: the protobuf is malformed or truncated (%zu bytes)", len);
    si_graph *g = si_graph_new();
    si_result s = g ? convert_graph(mp, base_dir, NULL, g) : si_err(SI_ERR_NO_MEM, "out of memory");
    onnx__model_proto__free_unpacked(mp, &pb_allocator);
    if (s) { si_graph_free(g); return s; }
    *out = g;
    return SI_OK;
}

// --- streaming load from a file -------------------------------------------------------------------------
/*
 * protobuf-c unpacks a message from one buffer and copies every bytes field, so loading a model from a
 * buffer holds the file and the weights at once (twice the model's size). For files, a small wire-format
 * walker reads the ModelProto through a window and rebuilds it without the large raw_data fields of the
 * graph's initializers, remembering where those bytes are in the file; protobuf-c unpacks the small rebuilt
 * message and each initializer is then read straight from the file into its tensor. Peak memory is the
 * weights plus the rebuilt structure.
 */

#define WIN_SIZE ((size_t)1 << 16)
#define SLICE_MIN 1024 /* raw_data fields at least this long stay in the file until converted */

typedef struct reader {
    int fd;
    uint64_t size;
    unsigned char win[WIN_SIZE];
    uint64_t wstart;
    size_t wlen;
    bool io_error;
} reader;

typedef struct obuf {
    unsigned char *p;
    size_t n, cap;
} obuf;

static bool ob_reserve(obuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + extra) cap *= 2;
    unsigned char *np = si_realloc(b->p, cap);
    if (!np) return false;
    b->p = np;
    b->cap = cap;
    return true;
}

static bool ob_varint(obuf *b, uint64_t v) {
    if (!ob_reserve(b, 10)) return false;
    do {
        b->p[b->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return true;
}

static int rd_byte(reader *r, uint64_t pos) {
    if (pos >= r->size) return -1;
    if (pos < r->wstart || pos >= r->wstart + r->wlen) {
        ssize_t k = pread(r->fd, r->win, WIN_SIZE, (off_t)pos);
        if (k <= 0) { r->io_error = true; return -1; }
        r->wstart = pos;
        r->wlen = (size_t)k;
    }
    return r->win[pos - r->wstart];
}

static bool rd_varint(reader *r, uint64_t *pos, uint64_t end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= end) return false;
        int c = rd_byte(r, (*pos)++);
        if (c < 0) return false;
        *v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) return true;
    }
    return false;
}

/* Append the file bytes [pos, pos + len) to b. */
static bool rd_copy(reader *r, uint64_t pos, uint64_t len, obuf *b) {
    if (len > r->size || !ob_reserve(b, (size_t)len)) return false;
    for (uint64_t done = 0; done < len;) {
        ssize_t k = pread(r->fd, b->p + b->n, (size_t)(len - done), (off_t)(pos + done));
        if (k <= 0) { r->io_error = true; return false; }
        b->n += (size_t)k;
        done += (uint64_t)k;
    }
    return true;
}

enum { MSG_MODEL, MSG_GRAPH, MSG_TENSOR };

/* Copy the message [start, end) of kind `kind` into out, leaving large initializer raw_data in the file.
 * Returns false on malformed input (or IO/allocation failure: see r->io_error, *oom). */
static bool rebuild(reader *r, uint64_t start, uint64_t end, int kind, obuf *out, raw_slices *rs, size_t *init_index,
                    bool *oom) {
    uint64_t pos = start;
    while (pos < end) {
        uint64_t field_start = pos, tag, len = 0;
        if (!rd_varint(r, &pos, end, &tag)) return false;
        uint64_t field = tag >> 3, wt = tag & 7;
        switch (wt) {
        case 0: { uint64_t v; if (!rd_varint(r, &pos, end, &v)) return false; break; }
        case 1: pos += 8; break;
        case 5: pos += 4; break;
        case 2:
            if (!rd_varint(r, &pos, end, &len) || len > end - pos) return false;
            break;
        default: return false; /* groups (3, 4) are not used by ONNX */
        }
        if (pos > end) return false;
        uint64_t body = pos;
        if (wt == 2) pos += len;
        bool nested = wt == 2 && ((kind == MSG_MODEL && field == 7) || (kind == MSG_GRAPH && field == 5));
        if (nested) {
            obuf sub = {0};
            size_t my_index = *init_index;
            if (kind == MSG_GRAPH) (*init_index)++;
            bool ok = rebuild(r, body, body + len, kind == MSG_MODEL ? MSG_GRAPH : MSG_TENSOR, &sub, rs, &my_index, oom);
            if (kind == MSG_MODEL) *init_index = my_index;
            if (ok && !(ob_varint(out, tag) && ob_varint(out, sub.n) && ob_reserve(out, sub.n))) {
                ok = false;
                *oom = true;
            }
            if (ok && sub.n) { memcpy(out->p + out->n, sub.p, sub.n); out->n += sub.n; }
            si_free(sub.p);
            if (!ok) return false;
            continue;
        }
        if (kind == MSG_TENSOR && field == 9 && wt == 2 && len >= SLICE_MIN) {
            if (rs->n == rs->cap) {
                size_t cap = rs->cap ? rs->cap * 2 : 64;
                raw_slice *nv = si_realloc(rs->v, sizeof *nv * cap);
                if (!nv) { *oom = true; return false; }
                rs->v = nv;
                rs->cap = cap;
            }
            rs->v[rs->n++] = (raw_slice){.index = *init_index, .offset = body, .len = len};
            continue;
        }
        if (!rd_copy(r, field_start, pos - field_start, out)) { *oom = !r->io_error; return false; }
    }
    return pos == end;
}

si_result si_onnx_load_file(const char *path, const char *base_dir, si_graph **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return si_err(SI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return si_err(SI_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return si_err(SI_ERR_PARSE, "empty model");
    }
    reader *r = si_calloc(1, sizeof *r);
    obuf msg = {0};
    raw_slices rs = {.fd = fd};
    size_t init_index = 0;
    bool oom = false;
    si_result s = SI_OK;
    if (!r) s = si_err(SI_ERR_NO_MEM, "out of memory");
    else {
        r->fd = fd;
        r->size = (uint64_t)st.st_size;
        if (!rebuild(r, 0, r->size, MSG_MODEL, &msg, &rs, &init_index, &oom)) {
            if (r->io_error) s = si_err(SI_ERR_IO, "%s: read failed", path);
            else if (oom) s = si_err(SI_ERR_NO_MEM, "out of memory reading the model");
            else s = si_err(SI_ERR_PARSE, "not a valid ONNX model: the protobuf is malformed or truncated (%llu bytes)",
                            (unsigned long long)r->size);
        }
    }
    si_free(r);
    Onnx__ModelProto *mp = NULL;
    if (!s) s = check_nesting(msg.p, msg.n);
    if (!s && !(mp = onnx__model_proto__unpack(&pb_allocator, msg.n, msg.p)))
        s = si_err(SI_ERR_PARSE, "not a valid ONNX model: the protobuf is malformed or truncated (%llu bytes)",
                   (unsigned long long)st.st_size);
    si_free(msg.p);
    si_graph *g = NULL;
    if (!s && !(g = si_graph_new())) s = si_err(SI_ERR_NO_MEM, "out of memory");
    if (!s) s = convert_graph(mp, base_dir, &rs, g);
    if (mp) onnx__model_proto__free_unpacked(mp, &pb_allocator);
    si_free(rs.v);
    close(fd);
    if (s) { si_graph_free(g); return s; }
    *out = g;
    return SI_OK;
}
