/*
 * tensor.c — tensors (owned or borrowed storage), element types, float16/bfloat16 conversion and generic
 * element load/store used by reference kernels and casts.
 */
#include "util/util.h"

#include <errno.h>
#include <stdatomic.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

// --- element types -------------------------------------------------------------------------------------

const char *si_dtype_name(si_dtype t) {
    switch (t) {
    case SI_F32: return "float32";
    case SI_U8: return "uint8";
    case SI_I8: return "int8";
    case SI_U16: return "uint16";
    case SI_I16: return "int16";
    case SI_I32: return "int32";
    case SI_I64: return "int64";
    case SI_STRING: return "string";
    case SI_BOOL: return "bool";
    case SI_F16: return "float16";
    case SI_F64: return "float64";
    case SI_U32: return "uint32";
    case SI_U64: return "uint64";
    case SI_BF16: return "bfloat16";
    case SI_F8E4M3FN: return "float8e4m3fn";
    case SI_F8E4M3FNUZ: return "float8e4m3fnuz";
    case SI_F8E5M2: return "float8e5m2";
    case SI_F8E5M2FNUZ: return "float8e5m2fnuz";
    case SI_U4: return "uint4";
    case SI_I4: return "int4";
    case SI_F4E2M1: return "float4e2m1";
    case SI_F8E8M0: return "float8e8m0";
    case SI_U2: return "uint2";
    case SI_I2: return "int2";
    case SI_DTYPE_UNDEFINED: break;
    }
    return "undefined";
}

size_t si_dtype_size(si_dtype t) {
    switch (t) {
    case SI_U8: case SI_I8: case SI_BOOL: return 1;
    case SI_F8E4M3FN: case SI_F8E4M3FNUZ: case SI_F8E5M2: case SI_F8E5M2FNUZ: case SI_U4: case SI_I4:
    case SI_F4E2M1: case SI_F8E8M0: case SI_U2: case SI_I2: return 1; /* one element per byte (safeinfer.h) */
    case SI_U16: case SI_I16: case SI_F16: case SI_BF16: return 2;
    case SI_F32: case SI_I32: case SI_U32: return 4;
    case SI_F64: case SI_I64: case SI_U64: return 8;
    case SI_STRING: case SI_DTYPE_UNDEFINED: break;
    }
    return 0;
}

bool si_dtype_valid(si_dtype t) { return si_dtype_size(t) != 0; }
bool si_dtype_is_float(si_dtype t) { return t == SI_F32 || t == SI_F64 || t == SI_F16 || t == SI_BF16; }
bool si_dtype_is_int(si_dtype t) {
    return t == SI_I8 || t == SI_I16 || t == SI_I32 || t == SI_I64 || t == SI_U8 || t == SI_U16 ||
           t == SI_U32 || t == SI_U64;
}
bool si_dtype_is_signed(si_dtype t) {
    return t == SI_I8 || t == SI_I16 || t == SI_I32 || t == SI_I64 || si_dtype_is_float(t);
}

/* The float with these bits, and the bits of a float. */
static float f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint32_t f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

float si_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    return f32_from_bits(bits);
}

uint16_t si_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff);
    uint32_t man = x & 0x7fffff;
    if (exp == 255) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0)); /* inf / nan */
    int32_t e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);                         /* overflow -> inf */
    if (e <= 0) {                                                          /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = sign | ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* round to nearest even (may carry into exp) */
    return (uint16_t)half;
}

float si_bf16_to_f32(uint16_t h) {
    return f32_from_bits((uint32_t)h << 16);
}

uint16_t si_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    uint32_t round = 0x7fff + ((x >> 16) & 1);
    return (uint16_t)((x + round) >> 16);
}

double si_load_f64(si_dtype t, const void *p, int64_t i) {
    switch (t) {
    case SI_F32: return ((const float *)p)[i];
    case SI_F64: return ((const double *)p)[i];
    case SI_F16: return si_f16_to_f32(((const uint16_t *)p)[i]);
    case SI_BF16: return si_bf16_to_f32(((const uint16_t *)p)[i]);
    case SI_I8: return ((const int8_t *)p)[i];
    case SI_I16: return ((const int16_t *)p)[i];
    case SI_I32: return ((const int32_t *)p)[i];
    case SI_I64: return (double)((const int64_t *)p)[i];
    case SI_U8: return ((const uint8_t *)p)[i];
    case SI_U16: return ((const uint16_t *)p)[i];
    case SI_U32: return ((const uint32_t *)p)[i];
    case SI_U64: return (double)((const uint64_t *)p)[i];
    case SI_BOOL: return ((const uint8_t *)p)[i] ? 1.0 : 0.0;
    case SI_U4: case SI_I4: case SI_U2: case SI_I2: return (double)si_load_i64(t, p, i);
    default: return si_dtype_is_minifloat(t) ? si_minifloat_decode(t, ((const uint8_t *)p)[i]) : 0;
    }
}

static int64_t f64_to_i64(double v) {
    if (isnan(v)) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

int64_t si_load_i64(si_dtype t, const void *p, int64_t i) {
    switch (t) {
    case SI_I8: return ((const int8_t *)p)[i];
    case SI_I16: return ((const int16_t *)p)[i];
    case SI_I32: return ((const int32_t *)p)[i];
    case SI_I64: return ((const int64_t *)p)[i];
    case SI_U8: return ((const uint8_t *)p)[i];
    case SI_U16: return ((const uint16_t *)p)[i];
    case SI_U32: return ((const uint32_t *)p)[i];
    case SI_U64: return (int64_t)((const uint64_t *)p)[i];
    case SI_BOOL: return ((const uint8_t *)p)[i] ? 1 : 0;
    case SI_U4: return ((const uint8_t *)p)[i] & 0xf;
    case SI_U2: return ((const uint8_t *)p)[i] & 0x3;
    case SI_I4: return (int8_t)(uint8_t)(((const uint8_t *)p)[i] << 4) >> 4;
    case SI_I2: return (int8_t)(uint8_t)(((const uint8_t *)p)[i] << 6) >> 6;
    default: return f64_to_i64(si_load_f64(t, p, i));
    }
}

void si_store_f64(si_dtype t, void *p, int64_t i, double v) {
    switch (t) {
    case SI_F32: ((float *)p)[i] = (float)v; break;
    case SI_F64: ((double *)p)[i] = v; break;
    case SI_F16: ((uint16_t *)p)[i] = si_f32_to_f16((float)v); break;
    case SI_BF16: ((uint16_t *)p)[i] = si_f32_to_bf16((float)v); break;
    case SI_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case SI_F8E4M3FN: case SI_F8E4M3FNUZ: case SI_F8E5M2: case SI_F8E5M2FNUZ: case SI_F4E2M1:
        ((uint8_t *)p)[i] = si_minifloat_encode(t, v, true);
        break;
    case SI_F8E8M0: ((uint8_t *)p)[i] = si_e8m0_encode(v, true, 0); break;
    case SI_U64:
        ((uint64_t *)p)[i] = (isnan(v) || v <= 0) ? 0 : v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v;
        break;
    default: si_store_i64(t, p, i, f64_to_i64(v)); break;
    }
}

void si_store_i64(si_dtype t, void *p, int64_t i, int64_t v) {
    switch (t) {
    case SI_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case SI_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case SI_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case SI_I64: ((int64_t *)p)[i] = v; break;
    case SI_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case SI_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case SI_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case SI_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case SI_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case SI_U4: ((uint8_t *)p)[i] = (uint8_t)(v & 0xf); break; /* wraps, as ONNX Cast does */
    case SI_U2: ((uint8_t *)p)[i] = (uint8_t)(v & 0x3); break;
    case SI_I4: ((int8_t *)p)[i] = (int8_t)((uint8_t)((uint64_t)v << 4) ) >> 4; break;
    case SI_I2: ((int8_t *)p)[i] = (int8_t)((uint8_t)((uint64_t)v << 6)) >> 6; break;
    default: si_store_f64(t, p, i, (double)v); break;
    }
}

// --- tensors --------------------------------------------------------------------------------------------

int64_t si_shape_count(int ndim, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] <= 0) return dims[i] == 0 ? 0 : -1;
        if (n > INT64_MAX / dims[i]) return INT64_MAX; /* saturate: callers refuse such shapes */
        n *= dims[i];
    }
    return n;
}

const char *si_shape_str(char *buf, size_t n, si_dtype dt, int ndim, const int64_t *dims) {
    size_t o = (size_t)snprintf(buf, n, "%s[", si_dtype_name(dt));
    for (int i = 0; i < ndim && o < n; i++) /* a dimension not known yet (ir.h: unknown or a symbol) is "?" */
        o += dims[i] >= 0 ? (size_t)snprintf(buf + o, n - o, i ? ",%lld" : "%lld", (long long)dims[i])
                          : (size_t)snprintf(buf + o, n - o, i ? ",?" : "?");
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

si_result si_tensor_init(si_tensor *t, si_dtype dtype, int ndim, const int64_t *dims) {
    memset(t, 0, sizeof *t);
    if (!si_dtype_valid(dtype)) return si_err(SI_ERR_INVALID_ARG, "tensor: element type %d (%s) cannot be stored", (int)dtype, si_dtype_name(dtype));
    if (ndim < 0 || ndim > SI_MAX_DIMS) return si_err(SI_ERR_INVALID_ARG, "tensor: rank %d is outside 0..%d", ndim, SI_MAX_DIMS);
    if (ndim > 0 && !dims) return si_err(SI_ERR_INVALID_ARG, "tensor: dims is NULL for rank %d", ndim);
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return si_err(SI_ERR_INVALID_ARG, "tensor: dimension %d is negative (%lld)", i, (long long)dims[i]);
        if (dims[i] > 0 && count > INT64_MAX / 16 / dims[i]) return si_err(SI_ERR_INVALID_ARG, "tensor: shape too large");
        count *= dims[i];
        t->dims[i] = dims[i];
    }
    t->dtype = dtype;
    t->ndim = ndim;
    t->nbytes = (size_t)count * si_dtype_size(dtype);
    return SI_OK;
}

/* n bytes of which the first used are about to be written (zero: zero-filled first); *cap gets the block's
 * size. Large blocks come from the blocks the current budget keeps for reuse where one fits (si_budget_reuse),
 * else they are prefaulted before the zero fill (si_mem_prefault), which calloc would do page fault by page
 * fault. */
static void *alloc_data(size_t n, size_t used, bool zero, size_t *cap) {
    *cap = n;
    if (n < SI_PREFAULT_MIN) return zero ? si_calloc(1, n) : si_malloc(n);
    void *d = si_budget_reuse(n, cap);
    if (!d) d = si_malloc(n);
    if (d) {
        si_mem_prefault(d, used);
        if (zero) memset(d, 0, used); /* the room past `used` is written before it is read (si_tensor_fits) */
    }
    return d;
}

/* t's owned block goes: to the current budget's kept blocks where it takes it, else free(). */
static void drop_data(si_tensor *t) {
    if (!t->owned || !t->data) return;
    size_t cap = t->cap > t->nbytes ? t->cap : t->nbytes;
    if (!si_budget_keep(t->data, cap)) si_free(t->data);
}

static si_result tensor_alloc(si_tensor *t, bool zero) {
    drop_data(t);
    t->data = NULL;
    t->owned = false;
    if (t->nbytes == 0) return SI_OK;
    if (t->nbytes >= SI_BIG_ALLOC) { /* a named error before the allocation, not an OOM kill after it */
        char sh[160];
        si_result s = si_mem_check(t->nbytes, si_shape_str(sh, sizeof sh, t->dtype, t->ndim, t->dims));
        if (s) return s;
    }
    size_t cap;
    t->data = alloc_data(t->nbytes, t->nbytes, zero, &cap);
    if (!t->data) return si_err(SI_ERR_NO_MEM, "tensor: out of memory allocating %zu bytes", t->nbytes);
    t->owned = true;
    t->cap = cap;
    return SI_OK;
}

si_result si_tensor_alloc(si_tensor *t) { return tensor_alloc(t, true); }

si_result si_tensor_alloc_raw(si_tensor *t) { return tensor_alloc(t, false); }

bool si_tensor_fits(const si_tensor *t, size_t nbytes) {
    size_t room = t->cap > t->nbytes ? t->cap : t->nbytes;
    return t->owned && t->data && nbytes <= room && room / 2 <= nbytes + 65536;
}

size_t si_tensor_room_for(const si_tensor *t, size_t nbytes) {
    bool grows = t->owned && t->data && nbytes > t->nbytes;
    if (!grows || nbytes > SIZE_MAX / 2) return nbytes;
    /* twice the size up to 4 MiB (a KV cache's per-layer presents at short contexts: many small steps), then 4 MiB
     * or a quarter more, whichever is larger (a long context's presents: memory counts more than a step) */
    const size_t step = (size_t)4 << 20;
    return nbytes + (nbytes <= step ? nbytes : nbytes / 4 > step ? nbytes / 4 : step);
}

void si_tensor_adopt(si_tensor *t, void *data, size_t cap) {
    si_tensor_release(t);
    t->data = data;
    t->owned = data != NULL;
    t->cap = data ? cap : 0;
}

/* A new buffer for nbytes (zero-filled when zero) where t's own does not take them: the room
 * si_tensor_room_for gives when the memory check and the allocation allow it, else just nbytes (nbytes > 0). *cap
 * gets its size. NULL when not even nbytes can be had. */
static void *new_room(const si_tensor *t, size_t nbytes, bool zero, size_t *cap) {
    size_t room = si_tensor_room_for(t, nbytes);
    if (room > nbytes && (room < SI_BIG_ALLOC || !si_mem_check(room, "tensor"))) {
        void *d = alloc_data(room, nbytes, zero, cap); /* the room past nbytes may never be written */
        if (d) return d;
    }
    return alloc_data(nbytes, nbytes, zero, cap);
}

si_result si_tensor_reshape(si_tensor *t, si_dtype dtype, int ndim, const int64_t *dims) {
    si_tensor s = {0};
    si_result st = si_tensor_init(&s, dtype, ndim, dims);
    if (st) return st;
    if (!si_tensor_fits(t, s.nbytes)) {
        size_t cap = 0;
        void *d = NULL;
        if (s.nbytes >= SI_BIG_ALLOC) {
            char sh[160];
            if ((st = si_mem_check(s.nbytes, si_shape_str(sh, sizeof sh, dtype, ndim, dims)))) return st;
        }
        if (s.nbytes && !(d = new_room(t, s.nbytes, true, &cap)))
            return si_err(SI_ERR_NO_MEM, "tensor: out of memory allocating %zu bytes", s.nbytes);
        si_tensor_adopt(t, d, cap);
    }
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->dims, s.dims, sizeof t->dims);
    t->nbytes = s.nbytes;
    return SI_OK;
}

si_result si_tensor_copy_room(const si_tensor *o, const si_tensor *src, si_tensor *fresh) {
    memset(fresh, 0, sizeof *fresh);
    if (!src->nbytes || si_tensor_fits(o, src->nbytes)) return SI_OK;
    if (!(fresh->data = new_room(o, src->nbytes, false, &fresh->cap)))
        return si_err(SI_ERR_NO_MEM, "out of memory copying a tensor (%zu bytes)", src->nbytes);
    fresh->owned = true;
    return SI_OK;
}

void si_tensor_copy_into(si_tensor *o, const si_tensor *src, si_tensor *fresh) {
    if (fresh->data || !src->nbytes) {
        si_tensor_adopt(o, fresh->data, fresh->cap);
        memset(fresh, 0, sizeof *fresh);
    }
    o->dtype = src->dtype;
    o->ndim = src->ndim;
    memcpy(o->dims, src->dims, sizeof o->dims);
    o->nbytes = src->nbytes;
    if (src->nbytes) memcpy(o->data, src->data, src->nbytes);
}

/* dst takes src's type, shape and storage fields (not its reference count). */
static void take_storage(si_tensor *dst, const si_tensor *src) {
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    dst->data = src->data;
    dst->nbytes = src->nbytes;
    dst->owned = src->owned;
    dst->cap = src->cap;
}

void si_tensor_exchange(si_tensor *a, si_tensor *b) {
    si_tensor t;
    take_storage(&t, a);
    take_storage(a, b);
    take_storage(b, &t);
}

void si_tensor_view(si_tensor *dst, const si_tensor *src) {
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    memcpy(dst->dims, src->dims, sizeof dst->dims);
    dst->data = src->data;
    dst->nbytes = src->nbytes;
    dst->owned = false;
    dst->cap = 0;
    atomic_store(&dst->refs, 0);
}

void si_tensor_release(si_tensor *t) {
    drop_data(t);
    t->data = NULL;
    t->owned = false;
    t->cap = 0;
}

si_result si_tensor_create(si_dtype dtype, int ndim, const int64_t *dims, si_tensor **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_tensor_create: out is NULL");
    *out = NULL;
    si_tensor tmp;
    si_result s = si_tensor_init(&tmp, dtype, ndim, dims);
    if (s) return s;
    si_tensor *t = si_malloc(sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "si_tensor_create: out of memory");
    *t = tmp;
    if ((s = si_tensor_alloc(t))) { si_free(t); return s; }
    *out = t;
    return SI_OK;
}

si_result si_tensor_wrap(si_dtype dtype, int ndim, const int64_t *dims, void *data, size_t nbytes, si_tensor **out) {
    if (!out) return si_err(SI_ERR_INVALID_ARG, "si_tensor_wrap: out is NULL");
    *out = NULL;
    si_tensor tmp;
    si_result s = si_tensor_init(&tmp, dtype, ndim, dims);
    if (s) return s;
    if (nbytes != tmp.nbytes)
        return si_err(SI_ERR_INVALID_ARG, "si_tensor_wrap: %zu bytes given, the shape needs %zu", nbytes, tmp.nbytes);
    if (!data && nbytes) return si_err(SI_ERR_INVALID_ARG, "si_tensor_wrap: data is NULL");
    si_tensor *t = si_malloc(sizeof *t);
    if (!t) return si_err(SI_ERR_NO_MEM, "si_tensor_wrap: out of memory");
    *t = tmp;
    t->data = data;
    *out = t;
    return SI_OK;
}

si_result si_tensor_clone(const si_tensor *src, si_tensor **out) {
    si_result s = si_tensor_create(src->dtype, src->ndim, src->dims, out);
    if (s) return s;
    if (src->nbytes) memcpy((*out)->data, src->data, src->nbytes);
    return SI_OK;
}

void si_tensor_free(si_tensor *t) {
    if (!t) return;
    si_tensor_release(t);
    si_free(t);
}

si_tensor *si_const_ref(si_tensor *t) {
    if (t) atomic_fetch_add(&t->refs, 1);
    return t;
}

void si_const_unref(si_tensor *t) {
    if (t && atomic_fetch_sub(&t->refs, 1) == 0) si_tensor_free(t);
}

si_dtype si_tensor_dtype(const si_tensor *t) { return t ? t->dtype : SI_DTYPE_UNDEFINED; }
int si_tensor_ndim(const si_tensor *t) { return t ? t->ndim : 0; }
const int64_t *si_tensor_dims(const si_tensor *t) { return t ? t->dims : NULL; }
int64_t si_tensor_count(const si_tensor *t) { return t ? si_shape_count(t->ndim, t->dims) : 0; }
size_t si_tensor_nbytes(const si_tensor *t) { return t ? t->nbytes : 0; }
void *si_tensor_data(const si_tensor *t) { return t ? t->data : NULL; }

// --- files ----------------------------------------------------------------------------------------------

si_result si_read_file(const char *path, char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return si_err(SI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return si_err(SI_ERR_IO, "%s: not a regular file", path);
    }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return si_err(SI_ERR_IO, "%s: cannot seek", path); }
    long n = ftell(f);
    if (n < 0) { fclose(f); return si_err(SI_ERR_IO, "%s: cannot read (is it a folder?)", path); }
    rewind(f);
    si_result s = si_mem_check((size_t)n + 1, path);
    if (s) { fclose(f); return s; }
    char *buf = si_malloc((size_t)n + 1);
    if (!buf) { fclose(f); return si_err(SI_ERR_NO_MEM, "%s: out of memory reading %ld bytes", path, n); }
    size_t got = fread(buf, 1, (size_t)n, f);
    int err = ferror(f);
    fclose(f);
    if (err || got != (size_t)n) { si_free(buf); return si_err(SI_ERR_IO, "%s: read failed", path); }
    buf[n] = 0;
    *data = buf;
    *len = (size_t)n;
    return SI_OK;
}
