/*
 * kernels.cl — the OpenCL C 1.2 kernels of the OCL device (float32 only).
 *
 * This file is the source; the build embeds it as C string literals (ocl_kernels.c, written by embed.sh in the
 * build folder; test_device_ops checks that the two agree), so the library never reads it at run time.
 *
 * Conventions: indices are int (the host refuses tensors of 2^31 elements or more); every kernel guards
 * its global id (the host rounds global sizes up to the work-group size); shape metadata that does not fit
 * in a few scalars comes in a small read-only int buffer `m` built at compile time. Build options:
 * SI_TS (GEMM tile, 8 or 16) and SI_WG (work-group size of the reductions, a power of two).
 */
#ifdef SI_OCL_TEST_BUILD_ERROR
#error "deliberate build failure requested by the tests (SI_OCL_TEST_BUILD_ERROR)"
#endif
#ifndef SI_TS
#define SI_TS 16
#endif
#ifndef SI_WG
#define SI_WG 64
#endif

/* ---- element-wise: unary (a, b are the op's attributes) ------------------------------------------------ */

float si_sigmoid(float x) { return x >= 0.0f ? 1.0f / (1.0f + exp(-x)) : exp(x) / (1.0f + exp(x)); }
float si_softplus(float x) { return x > 0.0f ? x + log1p(exp(-x)) : log1p(exp(x)); }
float si_clamp01(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
float si_sign(float x) { return x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x; }

#define UNARY(NAME, EXPR)                                                                                  \
    __kernel void NAME(__global const float *X, __global float *Y, const int n, const float a, const float b) \
    {                                                                                                      \
        int i = get_global_id(0);                                                                          \
        if (i < n) {                                                                                       \
            float x = X[i];                                                                                \
            Y[i] = (EXPR);                                                                                 \
        }                                                                                                  \
    }

UNARY(u_copy, x)
UNARY(u_relu, x < 0.0f ? 0.0f : x)
UNARY(u_leaky_relu, x < 0.0f ? a * x : x)
UNARY(u_sigmoid, si_sigmoid(x))
UNARY(u_hard_sigmoid, si_clamp01(a * x + b))
UNARY(u_hard_swish, x * si_clamp01(x / 6.0f + 0.5f))
UNARY(u_tanh, tanh(x))
UNARY(u_clip, x < a ? a : x > b ? b : x)
UNARY(u_exp, exp(x))
UNARY(u_log, log(x))
UNARY(u_sqrt, sqrt(x))
UNARY(u_erf, erf(x))
UNARY(u_neg, -x)
UNARY(u_abs, fabs(x))
UNARY(u_reciprocal, 1.0f / x)
UNARY(u_floor, floor(x))
UNARY(u_ceil, ceil(x))
UNARY(u_round, rint(x))
UNARY(u_sign, si_sign(x))
UNARY(u_elu, x < 0.0f ? a * (exp(x) - 1.0f) : x)
UNARY(u_selu, x > 0.0f ? b * x : b * (a * exp(x) - a))
UNARY(u_celu, (x > 0.0f ? x : 0.0f) + fmin(0.0f, a * (exp(x / a) - 1.0f)))
UNARY(u_softplus, si_softplus(x))
UNARY(u_softsign, x / (1.0f + fabs(x)))
UNARY(u_mish, x * tanh(si_softplus(x)))
UNARY(u_swish, x * si_sigmoid(a * x))
UNARY(u_gelu, 0.5f * x * (1.0f + erf(x * 0.70710678118654752f)))
UNARY(u_gelu_tanh, 0.5f * x * (1.0f + tanh(0.79788456080286535588f * (x + 0.044715f * x * x * x))))
UNARY(u_thresholded_relu, x > a ? x : 0.0f)
UNARY(u_shrink, x < -a ? x + b : x > a ? x - b : 0.0f)
UNARY(u_sin, sin(x))
UNARY(u_cos, cos(x))
UNARY(u_tan, tan(x))
UNARY(u_asin, asin(x))
UNARY(u_acos, acos(x))
UNARY(u_atan, atan(x))
UNARY(u_sinh, sinh(x))
UNARY(u_cosh, cosh(x))
UNARY(u_asinh, asinh(x))
UNARY(u_acosh, acosh(x))
UNARY(u_atanh, atanh(x))
UNARY(u_scale, x * a + b)

/* Clip with min/max given as one-element tensors (flags: 1 min present, 2 max present). */
__kernel void u_clip_t(__global const float *X, __global const float *Lo, __global const float *Hi, __global float *Y,
                       const int n, const int flags)
{
    int i = get_global_id(0);
    if (i < n) {
        float x = X[i];
        if ((flags & 1) && x < Lo[0])
            x = Lo[0];
        if ((flags & 2) && x > Hi[0])
            x = Hi[0];
        Y[i] = x;
    }
}

/* ---- element-wise: binary with numpy broadcasting ---------------------------------------------------------
 * mode 0: general, m = [rank, dims[rank], strides of A[rank], strides of B[rank]] (merged on the host);
 * mode 1: same shape; mode 2: B is one element; mode 3: A is one element. */

#define BINARY(NAME, EXPR)                                                                                 \
    __kernel void NAME(__global const float *A, __global const float *B, __global float *Y, const int n,   \
                       __global const int *m, const int mode)                                              \
    {                                                                                                      \
        int i = get_global_id(0);                                                                          \
        if (i >= n)                                                                                        \
            return;                                                                                        \
        int ia = i, ib = i;                                                                                \
        if (mode == 2) {                                                                                   \
            ib = 0;                                                                                        \
        } else if (mode == 3) {                                                                            \
            ia = 0;                                                                                        \
        } else if (mode == 0) {                                                                            \
            int r = m[0], rem = i;                                                                         \
            ia = 0;                                                                                        \
            ib = 0;                                                                                        \
            for (int k = r - 1; k >= 0; k--) {                                                             \
                int d = m[1 + k], c = rem % d;                                                             \
                rem /= d;                                                                                  \
                ia += c * m[1 + r + k];                                                                    \
                ib += c * m[1 + 2 * r + k];                                                                \
            }                                                                                              \
        }                                                                                                  \
        float a = A[ia], b = B[ib];                                                                        \
        Y[i] = (EXPR);                                                                                     \
    }

/* The same for up to 3 (merged) dimensions without index arithmetic: work item (i0, i1, i2) from the
 * innermost dimension out; m = [d0, d1, d2, A strides (3), B strides (3)]. */
#define BINARY3(NAME, EXPR)                                                                                \
    __kernel void NAME(__global const float *A, __global const float *B, __global float *Y,                \
                       __global const int *m)                                                              \
    {                                                                                                      \
        const int i0 = get_global_id(0), i1 = get_global_id(1), i2 = get_global_id(2);                    \
        if (i0 >= m[0] || i1 >= m[1] || i2 >= m[2])                                                        \
            return;                                                                                        \
        float a = A[i2 * m[5] + i1 * m[4] + i0 * m[3]], b = B[i2 * m[8] + i1 * m[7] + i0 * m[6]];          \
        Y[(i2 * m[1] + i1) * m[0] + i0] = (EXPR);                                                          \
    }

#define BINARY_OPS(NAME, EXPR) BINARY(NAME, EXPR) BINARY3(NAME##3, EXPR)
BINARY_OPS(b_add, a + b)
BINARY_OPS(b_sub, a - b)
BINARY_OPS(b_mul, a * b)
BINARY_OPS(b_div, a / b)
BINARY_OPS(b_pow, pow(a, b))
BINARY_OPS(b_max, (a != a || a > b) ? a : b)
BINARY_OPS(b_min, (a != a || a < b) ? a : b)
BINARY_OPS(b_prelu, a < 0.0f ? b * a : a)

/* Cast of integer or bool model inputs to float32. */
#define CAST(NAME, T)                                                                                      \
    __kernel void NAME(__global const T *X, __global float *Y, const int n)                                \
    {                                                                                                      \
        int i = get_global_id(0);                                                                          \
        if (i < n)                                                                                         \
            Y[i] = (float)X[i];                                                                            \
    }
CAST(cast_i64, long)
CAST(cast_i32, int)
CAST(cast_u8, uchar)

__kernel void fill_f32(__global float *Y, const int n, const float v)
{
    int i = get_global_id(0);
    if (i < n)
        Y[i] = v;
}

__kernel void fill_u8(__global uchar *Y, const int n, const int v)
{
    int i = get_global_id(0);
    if (i < n)
        Y[i] = (uchar)v;
}

/* ---- data movement ----------------------------------------------------------------------------------------
 * Y[doff + sum(c_k * dstride_k)] = X[soff + sum(c_k * sstride_k)] for every coordinate c of `dims`:
 * Transpose, Slice (any step), Concat and Split (one call per part), Expand (stride 0).
 * m = [rank, soff, doff, dims[rank], sstride[rank], dstride[rank]] */
__kernel void copy_nd(__global const float *X, __global float *Y, const int n, __global const int *m)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int r = m[0], is = m[1], id = m[2], rem = i;
    for (int k = r - 1; k >= 0; k--) {
        int d = m[3 + k], c = rem % d;
        rem /= d;
        is += c * m[3 + r + k];
        id += c * m[3 + 2 * r + k];
    }
    Y[id] = X[is];
}

/* copy_nd for up to 3 dimensions: m = [soff, doff, d0, d1, d2, source strides (3), destination strides (3)],
 * work item (i0, i1, i2) from the innermost dimension out. */
__kernel void copy3(__global const float *X, __global float *Y, __global const int *m)
{
    const int i0 = get_global_id(0), i1 = get_global_id(1), i2 = get_global_id(2);
    if (i0 >= m[2] || i1 >= m[3] || i2 >= m[4])
        return;
    Y[m[1] + i2 * m[10] + i1 * m[9] + i0 * m[8]] = X[m[0] + i2 * m[7] + i1 * m[6] + i0 * m[5]];
}

/* Pad: negative pads crop first, then the cropped input is padded. m = [rank, mode, out[rank], len[rank],
 * shift[rank], lo[rank], xstride[rank]] per dimension: output size, cropped length, leading pad, first kept
 * input index, input stride. mode 0 constant, 1 reflect, 2 edge, 3 wrap. */
__kernel void pad_nd(__global const float *X, __global float *Y, const int n, __global const int *m, const float value)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int r = m[0], mode = m[1], rem = i, is = 0;
    for (int k = r - 1; k >= 0; k--) {
        int d = m[2 + k], len = m[2 + r + k], c = rem % d - m[2 + 2 * r + k];
        rem /= d;
        if (c < 0 || c >= len) {
            if (mode == 0) {
                Y[i] = value;
                return;
            } else if (mode == 1) {
                if (len == 1) {
                    c = 0;
                } else {
                    int period = 2 * (len - 1);
                    c = c % period;
                    if (c < 0)
                        c += period;
                    if (c >= len)
                        c = period - c;
                }
            } else if (mode == 2) {
                c = c < 0 ? 0 : len - 1;
            } else {
                c = c % len;
                if (c < 0)
                    c += len;
            }
        }
        is += (m[2 + 3 * r + k] + c) * m[2 + 4 * r + k];
    }
    Y[i] = X[is];
}

/* Gather along one axis: Y[o][j][r] = X[o][I[j]][r] for outer o, index j, inner r (negative indices count
 * from the end; the host has checked the range). */
#define GATHER(NAME, T)                                                                                    \
    __kernel void NAME(__global const float *X, __global const T *I, __global float *Y, const int n,       \
                       const int nidx, const int axis_len, const int inner)                                \
    {                                                                                                      \
        int i = get_global_id(0);                                                                          \
        if (i >= n)                                                                                        \
            return;                                                                                        \
        int r = i % inner, j = (i / inner) % nidx, o = i / (inner * nidx);                                 \
        int k = (int)I[j];                                                                                 \
        if (k < 0)                                                                                         \
            k += axis_len;                                                                                 \
        Y[i] = (k >= 0 && k < axis_len) ? X[(o * axis_len + k) * inner + r] : NAN;                         \
    }
GATHER(gather_i64, long)
GATHER(gather_i32, int)

/* Resize / Upsample with interpolation taps computed on the host: per axis k and output coordinate c, the
 * table holds an "outside the crop box" flag and nt[k] (source index, weight bits) pairs. Y is the sum over
 * every combination of taps of the product of the weights times X at the taps' indices.
 * m = [r, out[r], xstride[r], nt[r], table offset[r], extrapolation value bits] */
__kernel void resize(__global const float *X, __global float *Y, const int n, __global const int *m,
                     __global const int *tab)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    const int r = m[0];
    int c[8], t[8];
    __global const int *e[8];
    int rem = i;
    bool ext = false;
    for (int k = r - 1; k >= 0; k--) {
        int d = m[1 + k];
        c[k] = rem % d;
        rem /= d;
        e[k] = tab + m[1 + 4 * r + k] + c[k] * (1 + 2 * m[1 + 3 * r + k]);
        if (e[k][0])
            ext = true;
        t[k] = 0;
    }
    if (ext) {
        Y[i] = as_float(m[1 + 5 * r]);
        return;
    }
    float acc = 0.0f;
    for (;;) {
        float w = 1.0f;
        int off = 0;
        for (int k = 0; k < r; k++) {
            __global const int *p = e[k] + 1 + 2 * t[k];
            off += p[0] * m[1 + r + k];
            w *= as_float(p[1]);
        }
        if (w != 0.0f)
            acc += w * X[off];
        int k = r - 1;
        while (k >= 0 && ++t[k] == m[1 + 3 * r + k])
            t[k--] = 0;
        if (k < 0)
            break;
    }
    Y[i] = acc;
}

/* ---- matrix multiplication -------------------------------------------------------------------------------
 * Y[b][r][c] = alpha * sum_k A(r, k) * B(k, c) + beta * C(r, c) for the batch b of get_global_id(2), with
 * any element strides (transposes, broadcast bias, 1x1 convolutions). Batch offsets: m = [brank,
 * bdims[brank], A batch strides[brank], B batch strides[brank], C batch strides[brank]]; Y is contiguous
 * M x N per batch, at Y + b * ystride.
 * s = [M, N, K, sam, sak, sbk, sbn, scm, scn, ystride] */
__kernel __attribute__((reqd_work_group_size(SI_TS, SI_TS, 1))) void gemm(
    __global const float *A, __global const float *B, __global const float *C, __global float *Y,
    __global const int *m, __global const int *s, const int has_c, const float alpha, const float beta)
{
    __local float As[SI_TS][SI_TS + 1];
    __local float Bs[SI_TS][SI_TS + 1];
    const int M = s[0], N = s[1], K = s[2], sam = s[3], sak = s[4], sbk = s[5], sbn = s[6];
    const int col = get_global_id(0), row = get_global_id(1), b = get_global_id(2);
    const int lc = get_local_id(0), lr = get_local_id(1);
    int oa = 0, ob = 0, oc = 0, rem = b, br = m[0];
    for (int k = br - 1; k >= 0; k--) {
        int d = m[1 + k], c = rem % d;
        rem /= d;
        oa += c * m[1 + br + k];
        ob += c * m[1 + 2 * br + k];
        oc += c * m[1 + 3 * br + k];
    }
    /* each work item loads A(row0 + lr, t + lc) and B(t + lr, col0 + lc) */
    const int arow = get_group_id(1) * SI_TS + lr, bcol = get_group_id(0) * SI_TS + lc;
    float acc = 0.0f;
    for (int t = 0; t < K; t += SI_TS) {
        int ka = t + lc, kb = t + lr;
        As[lr][lc] = (arow < M && ka < K) ? A[oa + arow * sam + ka * sak] : 0.0f;
        Bs[lr][lc] = (kb < K && bcol < N) ? B[ob + kb * sbk + bcol * sbn] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < SI_TS; k++)
            acc += As[lr][k] * Bs[k][lc];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (row < M && col < N) {
        float v = alpha * acc;
        if (has_c)
            v += beta * C[oc + row * s[7] + col * s[8]];
        Y[b * s[9] + row * N + col] = v;
    }
}

/* GEMM for CPU devices (explicit vectors instead of local-memory tiles, which CPU OpenCL drivers emulate
 * slowly). Same arguments as gemm. gemm_v8 needs sbn == 1: every work item computes 4 rows x 8 columns
 * (get_global_id(0) * 8, get_global_id(1) * 4) with float8 loads of B; rows past M are clamped for the
 * loads and not stored. gemm_dot needs sak == sbk == 1: every work item computes 1 row x 4 columns as dot
 * products with float8 loads along K. */
void si_gemm_batch(__global const int *m, int b, int *oa, int *ob, int *oc)
{
    int rem = b, br = m[0];
    *oa = *ob = *oc = 0;
    for (int k = br - 1; k >= 0; k--) {
        int d = m[1 + k], c = rem % d;
        rem /= d;
        *oa += c * m[1 + br + k];
        *ob += c * m[1 + 2 * br + k];
        *oc += c * m[1 + 3 * br + k];
    }
}

__kernel void gemm_v8(__global const float *A, __global const float *B, __global const float *C, __global float *Y,
                      __global const int *m, __global const int *s, const int has_c, const float alpha, const float beta)
{
    const int M = s[0], N = s[1], K = s[2], sam = s[3], sak = s[4], sbk = s[5];
    const int c0 = get_global_id(0) * 8, r0 = get_global_id(1) * 4, b = get_global_id(2);
    if (c0 >= N || r0 >= M)
        return;
    int oa, ob, oc;
    si_gemm_batch(m, b, &oa, &ob, &oc);
    __global const float *a0 = A + oa + r0 * sam;
    __global const float *a1 = A + oa + min(r0 + 1, M - 1) * sam;
    __global const float *a2 = A + oa + min(r0 + 2, M - 1) * sam;
    __global const float *a3 = A + oa + min(r0 + 3, M - 1) * sam;
    __global const float *bp = B + ob + c0;
    float r[4][8];
    if (c0 + 8 <= N) {
        float8 acc0 = (float8)(0.0f), acc1 = (float8)(0.0f), acc2 = (float8)(0.0f), acc3 = (float8)(0.0f);
        for (int k = 0; k < K; k++) {
            float8 bv = vload8(0, bp + k * sbk);
            int ka = k * sak;
            acc0 += a0[ka] * bv;
            acc1 += a1[ka] * bv;
            acc2 += a2[ka] * bv;
            acc3 += a3[ka] * bv;
        }
        vstore8(acc0, 0, r[0]);
        vstore8(acc1, 0, r[1]);
        vstore8(acc2, 0, r[2]);
        vstore8(acc3, 0, r[3]);
    } else {
        for (int j = 0; j < N - c0; j++) {
            float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
            for (int k = 0; k < K; k++) {
                float bv = bp[k * sbk + j];
                int ka = k * sak;
                s0 += a0[ka] * bv;
                s1 += a1[ka] * bv;
                s2 += a2[ka] * bv;
                s3 += a3[ka] * bv;
            }
            r[0][j] = s0;
            r[1][j] = s1;
            r[2][j] = s2;
            r[3][j] = s3;
        }
    }
    const int rows = min(4, M - r0), cols = min(8, N - c0);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float v = alpha * r[i][j];
            if (has_c)
                v += beta * C[oc + (r0 + i) * s[7] + (c0 + j) * s[8]];
            Y[b * s[9] + (r0 + i) * N + c0 + j] = v;
        }
}

__kernel void gemm_dot(__global const float *A, __global const float *B, __global const float *C, __global float *Y,
                       __global const int *m, __global const int *s, const int has_c, const float alpha, const float beta)
{
    const int M = s[0], N = s[1], K = s[2], sam = s[3], sbn = s[6];
    const int c0 = get_global_id(0) * 4, row = get_global_id(1), b = get_global_id(2);
    if (c0 >= N || row >= M)
        return;
    int oa, ob, oc;
    si_gemm_batch(m, b, &oa, &ob, &oc);
    __global const float *a = A + oa + row * sam;
    __global const float *b0 = B + ob + c0 * sbn;
    __global const float *b1 = B + ob + min(c0 + 1, N - 1) * sbn;
    __global const float *b2 = B + ob + min(c0 + 2, N - 1) * sbn;
    __global const float *b3 = B + ob + min(c0 + 3, N - 1) * sbn;
    float8 acc0 = (float8)(0.0f), acc1 = (float8)(0.0f), acc2 = (float8)(0.0f), acc3 = (float8)(0.0f);
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        float8 av = vload8(0, a + k);
        acc0 += av * vload8(0, b0 + k);
        acc1 += av * vload8(0, b1 + k);
        acc2 += av * vload8(0, b2 + k);
        acc3 += av * vload8(0, b3 + k);
    }
    float r[4];
    r[0] = acc0.s0 + acc0.s1 + acc0.s2 + acc0.s3 + acc0.s4 + acc0.s5 + acc0.s6 + acc0.s7;
    r[1] = acc1.s0 + acc1.s1 + acc1.s2 + acc1.s3 + acc1.s4 + acc1.s5 + acc1.s6 + acc1.s7;
    r[2] = acc2.s0 + acc2.s1 + acc2.s2 + acc2.s3 + acc2.s4 + acc2.s5 + acc2.s6 + acc2.s7;
    r[3] = acc3.s0 + acc3.s1 + acc3.s2 + acc3.s3 + acc3.s4 + acc3.s5 + acc3.s6 + acc3.s7;
    for (; k < K; k++) {
        float av = a[k];
        r[0] += av * b0[k];
        r[1] += av * b1[k];
        r[2] += av * b2[k];
        r[3] += av * b3[k];
    }
    const int cols = min(4, N - c0);
    for (int j = 0; j < cols; j++) {
        float v = alpha * r[j];
        if (has_c)
            v += beta * C[oc + row * s[7] + (c0 + j) * s[8]];
        Y[b * s[9] + row * N + c0 + j] = v;
    }
}

/* ---- convolution ------------------------------------------------------------------------------------------
 * m = [N, C, ID, IH, IW, OC, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW, G] */

/* The output element i of a convolution with geometry m: batch nb, channel oc, position (od, oh, ow). */
void si_conv_out_at(__global const int *m, int i, int *nb, int *oc, int *od, int *oh, int *ow)
{
    const int OC = m[5], OD = m[6], OH = m[7], OW = m[8];
    *ow = i % OW;
    i /= OW;
    *oh = i % OH;
    i /= OH;
    *od = i % OD;
    i /= OD;
    *oc = i % OC;
    *nb = i / OC;
}

/* The start of conv and conv_transpose: work item i (none past n), the geometry of m as constants and the
 * output position of i. */
#define SI_CONV_ITEM(n, m)                                                                                 \
    const int i = get_global_id(0);                                                                        \
    if (i >= n)                                                                                            \
        return;                                                                                            \
    const int C = m[1], ID = m[2], IH = m[3], IW = m[4], OC = m[5];                                        \
    const int KD = m[9], KH = m[10], KW = m[11], SD = m[12], SH = m[13], SW = m[14];                       \
    const int PD = m[15], PH = m[16], PW = m[17], DD = m[18], DH = m[19], DW = m[20], G = m[21];           \
    int nb, oc, od, oh, ow;                                                                                \
    si_conv_out_at(m, i, &nb, &oc, &od, &oh, &ow)

/* Direct convolution over 1 to 3 spatial dimensions (missing ones have size 1), grouped, strided, padded,
 * dilated. One work item per output element. */
__kernel void conv(__global const float *X, __global const float *W, __global const float *Bias, __global float *Y,
                   const int n, __global const int *m, const int has_bias)
{
    SI_CONV_ITEM(n, m);
    const int CG = C / G, OCG = OC / G, g = oc / OCG;
    float acc = has_bias ? Bias[oc] : 0.0f;
    const int d0 = od * SD - PD, h0 = oh * SH - PH, w0 = ow * SW - PW;
    for (int ic = 0; ic < CG; ic++) {
        __global const float *x = X + ((nb * C + g * CG + ic) * ID) * IH * IW;
        __global const float *w = W + ((oc * CG + ic) * KD) * KH * KW;
        for (int kd = 0; kd < KD; kd++) {
            int id = d0 + kd * DD;
            if (id < 0 || id >= ID)
                continue;
            for (int kh = 0; kh < KH; kh++) {
                int ih = h0 + kh * DH;
                if (ih < 0 || ih >= IH)
                    continue;
                __global const float *xr = x + (id * IH + ih) * IW;
                __global const float *wr = w + (kd * KH + kh) * KW;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = w0 + kw * DW;
                    if (iw >= 0 && iw < IW)
                        acc += xr[iw] * wr[kw];
                }
            }
        }
    }
    Y[i] = acc;
}

/* The input position that output position o of a transposed convolution reads through kernel tap k (pad P,
 * dilation D, stride S, input size I), or -1 where it reads none. */
int si_convt_src(int o, int k, int P, int D, int S, int I)
{
    int t = o + P - k * D;
    if (t < 0 || t % S)
        return -1;
    t /= S;
    return t < I ? t : -1;
}

/* ConvTranspose, direct: every output element gathers the input elements whose window covers it.
 * m as for conv with OC the output channels; W is [C, OC/G, k...]; P* may be negative. */
__kernel void conv_transpose(__global const float *X, __global const float *W, __global const float *Bias,
                             __global float *Y, const int n, __global const int *m, const int has_bias)
{
    SI_CONV_ITEM(n, m);
    const int CG = C / G, OCG = OC / G, g = oc / OCG, ocg = oc % OCG;
    float acc = has_bias ? Bias[oc] : 0.0f;
    for (int ic = 0; ic < CG; ic++) {
        const int c = g * CG + ic;
        __global const float *x = X + (nb * C + c) * ID * IH * IW;
        __global const float *w = W + ((c * OCG + ocg) * KD) * KH * KW;
        for (int kd = 0; kd < KD; kd++) {
            int id = si_convt_src(od, kd, PD, DD, SD, ID);
            if (id < 0)
                continue;
            for (int kh = 0; kh < KH; kh++) {
                int ih = si_convt_src(oh, kh, PH, DH, SH, IH);
                if (ih < 0)
                    continue;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = si_convt_src(ow, kw, PW, DW, SW, IW);
                    if (iw >= 0)
                        acc += x[(id * IH + ih) * IW + iw] * w[(kd * KH + kh) * KW + kw];
                }
            }
        }
    }
    Y[i] = acc;
}

/* im2col for one convolution: Col[(n * C + c) * KK + kk][p] with kk = (kd * KH + kh) * KW + kw and
 * p = (od * OH + oh) * OW + ow, so that the GEMM kernel multiplies each group's weights with its rows.
 * Work item (get_global_id(0), get_global_id(1)) = (od * OH + oh, (n * C + c) * KK + kk) fills OW values.
 * Same m as conv. */
__kernel void im2col(__global const float *X, __global float *Col, const int rows, __global const int *m)
{
    const int q = get_global_id(0), row = get_global_id(1);
    const int ID = m[2], IH = m[3], IW = m[4], OD = m[6], OH = m[7], OW = m[8];
    const int KD = m[9], KH = m[10], KW = m[11], SD = m[12], SH = m[13], SW = m[14];
    const int PD = m[15], PH = m[16], PW = m[17], DD = m[18], DH = m[19], DW = m[20];
    if (q >= OD * OH || row >= rows)
        return;
    const int KK = KD * KH * KW, kk = row % KK, c = row / KK;
    const int kw = kk % KW, kh = (kk / KW) % KH, kd = kk / (KW * KH);
    const int oh = q % OH, od = q / OH;
    const int id = od * SD - PD + kd * DD, ih = oh * SH - PH + kh * DH;
    __global float *out = Col + (row * OD * OH + q) * OW;
    if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
        for (int ow = 0; ow < OW; ow++)
            out[ow] = 0.0f;
        return;
    }
    __global const float *x = X + ((c * ID + id) * IH + ih) * IW;
    const int w0 = kw * DW - PW;
    for (int ow = 0; ow < OW; ow++) {
        int iw = ow * SW + w0;
        out[ow] = (iw >= 0 && iw < IW) ? x[iw] : 0.0f;
    }
}

/* ---- pooling ----------------------------------------------------------------------------------------------
 * m = [N*C, ID, IH, IW, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW, DD, DH, DW, ED, EH, EW]
 * (P*: pads at the beginning, E*: the end of the padded input, i.e. I* + end pad). mode 0: max,
 * 1: average over the window's elements inside the input, 2: average counting the padding. */
__kernel void pool(__global const float *X, __global float *Y, const int n, __global const int *m, const int mode)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    const int ID = m[1], IH = m[2], IW = m[3], OD = m[4], OH = m[5], OW = m[6];
    const int KD = m[7], KH = m[8], KW = m[9], SD = m[10], SH = m[11], SW = m[12];
    const int PD = m[13], PH = m[14], PW = m[15], DD = m[16], DH = m[17], DW = m[18];
    const int ED = m[19], EH = m[20], EW = m[21];
    int rem = i;
    const int ow = rem % OW;
    rem /= OW;
    const int oh = rem % OH;
    rem /= OH;
    const int od = rem % OD;
    const int nc = rem / OD;
    __global const float *x = X + nc * ID * IH * IW;
    const int d0 = od * SD - PD, h0 = oh * SH - PH, w0 = ow * SW - PW;
    float acc = mode == 0 ? -INFINITY : 0.0f;
    int cnt = 0, cnt_pad = 0;
    for (int kd = 0; kd < KD; kd++) {
        int id = d0 + kd * DD;
        bool din = id >= 0 && id < ID, dpad = id >= -PD && id < ED;
        for (int kh = 0; kh < KH; kh++) {
            int ih = h0 + kh * DH;
            bool hin = ih >= 0 && ih < IH, hpad = ih >= -PH && ih < EH;
            for (int kw = 0; kw < KW; kw++) {
                int iw = w0 + kw * DW;
                bool win = iw >= 0 && iw < IW, wpad = iw >= -PW && iw < EW;
                if (dpad && hpad && wpad)
                    cnt_pad++;
                if (!(din && hin && win))
                    continue;
                float v = x[(id * IH + ih) * IW + iw];
                if (mode == 0)
                    acc = (v > acc || v != v) ? v : acc;
                else
                    acc += v;
                cnt++;
            }
        }
    }
    if (mode == 1)
        acc = cnt ? acc / (float)cnt : NAN;
    else if (mode == 2)
        acc = cnt_pad ? acc / (float)cnt_pad : NAN;
    Y[i] = acc;
}

/* ---- reductions -------------------------------------------------------------------------------------------
 * One work item per output element. m = [kr, kdims[kr], kstrides[kr], rr, rdims[rr], rstrides[rr], rcount]
 * (kept and reduced dimensions of the input with their strides). ops: 0 sum, 1 mean, 2 max, 3 min, 4 prod,
 * 5 l1, 6 l2, 7 sum of squares, 8 log sum, 9 log sum exp. */
/* The offset of the j-th reduced element from base: j decomposed over the rr reduced dimensions rd[0..rr) with
 * their strides rd[rr..2rr). */
static inline int si_reduce_off(int base, int j, int rr, __global const int *rd)
{
    int off = base;
    for (int k = rr - 1; k >= 0; k--) {
        int d = rd[k], c = j % d;
        j /= d;
        off += c * rd[rr + k];
    }
    return off;
}

__kernel void reduce(__global const float *X, __global float *Y, const int n, __global const int *m, const int op)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    const int kr = m[0];
    const int rr = m[1 + 2 * kr];
    __global const int *rd = m + 2 + 2 * kr;
    const int rcount = m[2 + 2 * kr + 2 * rr];
    int base = 0, rem = i;
    for (int k = kr - 1; k >= 0; k--) {
        int d = m[1 + k], c = rem % d;
        rem /= d;
        base += c * m[1 + kr + k];
    }
    float acc = op == 2 ? -INFINITY : op == 3 ? INFINITY : op == 4 ? 1.0f : 0.0f;
    float mx = -INFINITY;
    if (op == 9) {
        for (int j = 0; j < rcount; j++) {
            mx = fmax(mx, X[si_reduce_off(base, j, rr, rd)]);
        }
        if (isinf(mx))
            mx = 0.0f;
    }
    for (int j = 0; j < rcount; j++) {
        float v = X[si_reduce_off(base, j, rr, rd)];
        switch (op) {
        case 2: acc = (v > acc || v != v) ? v : acc; break;
        case 3: acc = (v < acc || v != v) ? v : acc; break;
        case 4: acc *= v; break;
        case 5: acc += fabs(v); break;
        case 6:
        case 7: acc += v * v; break;
        case 9: acc += exp(v - mx); break;
        default: acc += v; break;
        }
    }
    if (op == 1)
        acc = acc / (float)rcount;
    else if (op == 6)
        acc = sqrt(acc);
    else if (op == 8)
        acc = log(acc);
    else if (op == 9)
        acc = log(acc) + mx;
    Y[i] = acc;
}

/* Softmax / LogSoftmax along one axis: rows of `len` elements `inner` apart; one work item per row. */
__kernel void softmax(__global const float *X, __global float *Y, const int rows, const int len, const int inner,
                      const int log_mode)
{
    int i = get_global_id(0);
    if (i >= rows)
        return;
    int base = (i / inner) * len * inner + i % inner;
    __global const float *x = X + base;
    __global float *y = Y + base;
    float mx = -INFINITY;
    for (int j = 0; j < len; j++)
        mx = fmax(mx, x[j * inner]);
    float sum = 0.0f;
    for (int j = 0; j < len; j++)
        sum += exp(x[j * inner] - mx);
    if (log_mode) {
        float ls = log(sum);
        for (int j = 0; j < len; j++)
            y[j * inner] = x[j * inner] - mx - ls;
    } else {
        float inv = 1.0f / sum;
        for (int j = 0; j < len; j++)
            y[j * inner] = exp(x[j * inner] - mx) * inv;
    }
}

/* ---- normalization ---------------------------------------------------------------------------------------- */

/* BatchNormalization (inference): channel c = (i / inner) % C. */
__kernel void batchnorm(__global const float *X, __global const float *S, __global const float *B,
                        __global const float *Mean, __global const float *Var, __global float *Y, const int n,
                        const int C, const int inner, const float eps)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    int c = (i / inner) % C;
    Y[i] = (X[i] - Mean[c]) / sqrt(Var[c] + eps) * S[c] + B[c];
}

/* Per-channel affine map y = x * AB[c] + AB[C + c] (BatchNormalization with constant parameters, folded on
 * the host). Work item (get_global_id(0), get_global_id(1)) = (element within the channel, n * C + c). */
__kernel void chan_affine(__global const float *X, __global const float *AB, __global float *Y, const int inner,
                          const int nc, const int C)
{
    const int j = get_global_id(0), row = get_global_id(1);
    if (j >= inner || row >= nc)
        return;
    const int c = row % C, i = row * inner + j;
    Y[i] = X[i] * AB[c] + AB[C + c];
}

/* LRN across channels: rows of C channels S elements apart. */
__kernel void lrn(__global const float *X, __global float *Y, const int n, const int C, const int S, const int size,
                  const float alpha, const float beta, const float bias)
{
    int i = get_global_id(0);
    if (i >= n)
        return;
    const int ch = (i / S) % C, base = i - ch * S;
    const int lo = (size - 1) / 2, hi = size - 1 - lo;
    const int c0 = max(0, ch - lo), c1 = min(C - 1, ch + hi);
    float sq = 0.0f;
    for (int k = c0; k <= c1; k++) {
        float v = X[base + k * S];
        sq += v * v;
    }
    float b = bias + alpha / (float)size * sq; /* > 0; pow() is slow on CPU drivers: b^beta = exp(beta * log(b)) */
    Y[i] = X[i] / (beta == 0.75f ? sqrt(b) * sqrt(sqrt(b)) : exp(beta * log(b)));
}

/* Sum of v over the work-group (SI_WG items); every item gets the result. */
float si_wg_sum(__local float *red, float v)
{
    int l = get_local_id(0);
    red[l] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = SI_WG / 2; s > 0; s >>= 1) {
        if (l < s)
            red[l] += red[l + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float r = red[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}

/* LayerNormalization: one work-group per row of `cols` contiguous elements. flags: 1 bias present,
 * 2 write Mean and InvStdDev, 4 RMS normalization (no mean subtraction). Scale and bias are indexed
 * modulo their length (`slen`, `blen`), so a shape that is a suffix of the normalized shape broadcasts. */
__kernel __attribute__((reqd_work_group_size(SI_WG, 1, 1))) void layernorm(
    __global const float *X, __global const float *S, __global const float *B, __global float *Y,
    __global float *MeanOut, __global float *InvOut, const int cols, const float eps, const int flags,
    const int slen, const int blen)
{
    __local float red[SI_WG];
    const int row = get_group_id(0), l = get_local_id(0);
    __global const float *x = X + row * cols;
    __global float *y = Y + row * cols;
    float mean = 0.0f;
    if (!(flags & 4)) {
        float s = 0.0f;
        for (int j = l; j < cols; j += SI_WG)
            s += x[j];
        mean = si_wg_sum(red, s) / (float)cols;
    }
    float v = 0.0f;
    for (int j = l; j < cols; j += SI_WG) {
        float d = x[j] - mean;
        v += d * d;
    }
    float var = si_wg_sum(red, v) / (float)cols;
    float inv = 1.0f / sqrt(var + eps);
    for (int j = l; j < cols; j += SI_WG) {
        float r = (x[j] - mean) * inv * S[j % slen];
        if (flags & 1)
            r += B[j % blen];
        y[j] = r;
    }
    if (l == 0 && (flags & 2)) {
        MeanOut[row] = mean;
        InvOut[row] = inv;
    }
}

/* InstanceNormalization / GroupNormalization: one work-group per (n, group) row of `cols` elements; the
 * channel of element j is (row % groups) * cpg + j / spatial, scale and bias are per channel. */
__kernel __attribute__((reqd_work_group_size(SI_WG, 1, 1))) void groupnorm(
    __global const float *X, __global const float *S, __global const float *B, __global float *Y, const int cols,
    const int groups, const int cpg, const int spatial, const float eps)
{
    __local float red[SI_WG];
    const int row = get_group_id(0), l = get_local_id(0);
    __global const float *x = X + row * cols;
    __global float *y = Y + row * cols;
    float s = 0.0f;
    for (int j = l; j < cols; j += SI_WG)
        s += x[j];
    float mean = si_wg_sum(red, s) / (float)cols;
    float v = 0.0f;
    for (int j = l; j < cols; j += SI_WG) {
        float d = x[j] - mean;
        v += d * d;
    }
    float inv = 1.0f / sqrt(si_wg_sum(red, v) / (float)cols + eps);
    const int c0 = (row % groups) * cpg;
    for (int j = l; j < cols; j += SI_WG) {
        int c = c0 + j / spatial;
        y[j] = (x[j] - mean) * inv * S[c] + B[c];
    }
}

/* ==== LLM and quantized ops (com.microsoft contrib ops; planners in ocl_llm.c) ============================== */

/* SimplifiedLayerNormalization, SkipLayerNormalization, SkipSimplifiedLayerNormalization: one work-group per
 * row of m[0] = cols contiguous elements. v = x + skip[row % m[2]] + bias; y = (v - mean) * inv * gamma + beta,
 * with mean 0 when simplified. m[1] flags: 1 skip, 2 bias, 4 beta, 8 simplified, 16 write Mean, 32 write
 * InvStdDev, 64 write the sum v. Gamma is indexed modulo m[3] (a suffix of the normalized shape). */
/* ms_norm's input element j of a row: x plus the skip and the bias its flags ask for. */
inline float ms_in(__global const float *x, __global const float *sk, __global const float *Bias, int flags, int j)
{
    float v = x[j];
    if (flags & 1)
        v += sk[j];
    if (flags & 2)
        v += Bias[j];
    return v;
}

__kernel __attribute__((reqd_work_group_size(SI_WG, 1, 1))) void ms_norm(
    __global const float *X, __global const float *Skip, __global const float *Bias, __global const float *G,
    __global const float *Beta, __global float *Y, __global float *MeanOut, __global float *InvOut,
    __global float *SumOut, __global const int *m, const float eps)
{
    __local float red[SI_WG];
    const int cols = m[0], flags = m[1], skip_rows = m[2], glen = m[3];
    const int row = get_group_id(0), l = get_local_id(0);
    __global const float *x = X + row * cols;
    __global const float *sk = Skip + (row % skip_rows) * cols;
    __global float *y = Y + row * cols;
    float s = 0.0f;
    for (int j = l; j < cols; j += SI_WG) {
        float v = ms_in(x, sk, Bias, flags, j);
        if (flags & 64)
            SumOut[row * cols + j] = v;
        s += v;
    }
    float mean = (flags & 8) ? 0.0f : si_wg_sum(red, s) / (float)cols;
    float q = 0.0f;
    for (int j = l; j < cols; j += SI_WG) {
        float v = ms_in(x, sk, Bias, flags, j);
        float d = v - mean;
        q += d * d;
    }
    float inv = 1.0f / sqrt(si_wg_sum(red, q) / (float)cols + eps);
    for (int j = l; j < cols; j += SI_WG) {
        float v = ms_in(x, sk, Bias, flags, j);
        float r = (v - mean) * inv * G[j % glen];
        if (flags & 4)
            r += Beta[j];
        y[j] = r;
    }
    if (l == 0) {
        if (flags & 16)
            MeanOut[row] = mean;
        if (flags & 32)
            InvOut[row] = inv;
    }
}

/* MatMulNBits metadata m: K, N, block, bits, n_blocks, blob bytes, zero-point bytes per row, zero-point mode
 * (0 none: 2^(bits-1), 1 packed uint8, 2 float), bias present, M. The zero point of block `blk` of row n. */
float si_nbits_zero(__global const uchar *Zp8, __global const float *Zpf, __global const int *m, int n, int blk)
{
    const int bits = m[3], mode = m[7];
    if (mode == 2)
        return Zpf[n * m[4] + blk];
    if (mode == 0)
        return (float)(1 << (bits - 1));
    const int per = 8 / bits;
    return (float)((Zp8[n * m[6] + blk / per] >> ((blk % per) * bits)) & ((1 << bits) - 1));
}

/* MatMulNBits for few rows of A (decode): one work-group per output (n, m); its work items walk the bytes of
 * row n of B (coalesced), decode the 8 / bits codes of each and reduce the dot product with row m of A. */
__kernel __attribute__((reqd_work_group_size(SI_WG, 1, 1))) void nbits_gemv(
    __global const float *A, __global const uchar *B, __global const float *Sc, __global const uchar *Zp8,
    __global const float *Zpf, __global const float *Bias, __global float *Y, __global const int *m)
{
    __local float red[SI_WG];
    const int K = m[0], N = m[1], block = m[2], bits = m[3], nb = m[4], blob = m[5];
    const int n = get_group_id(0), row = get_global_id(1), l = get_local_id(0);
    const int per = 8 / bits, msk = (1 << bits) - 1, nbytes = nb * blob;
    __global const uchar *b = B + n * nbytes;
    __global const float *a = A + row * K;
    float acc = 0.0f;
    for (int t = l; t < nbytes; t += SI_WG) {
        const int blk = t / blob, k0 = blk * block + (t - blk * blob) * per;
        const float s = Sc[n * nb + blk], z = si_nbits_zero(Zp8, Zpf, m, n, blk);
        const int byte = b[t];
        for (int i = 0; i < per && k0 + i < K; i++)
            acc += a[k0 + i] * (((float)((byte >> (i * bits)) & msk) - z) * s);
    }
    float r = si_wg_sum(red, acc);
    if (l == 0)
        Y[row * N + n] = r + (m[8] ? Bias[n] : 0.0f);
}

/* The same on a CPU device (PoCL): one work item per output, walking its packed row block by block (scale and
 * zero point read once per block), no local memory or barriers. Same arithmetic per element as nbits_gemv. */
__kernel void nbits_gemv_col(__global const float *A, __global const uchar *B, __global const float *Sc,
                             __global const uchar *Zp8, __global const float *Zpf, __global const float *Bias,
                             __global float *Y, __global const int *m)
{
    const int K = m[0], N = m[1], block = m[2], bits = m[3], nb = m[4], blob = m[5];
    const int n = get_global_id(0), row = get_global_id(1);
    if (n >= N)
        return;
    const int per = 8 / bits, msk = (1 << bits) - 1;
    __global const uchar *b = B + n * nb * blob;
    __global const float *a = A + row * K;
    float acc = 0.0f;
    for (int blk = 0; blk < nb; blk++) {
        const float s = Sc[n * nb + blk], z = si_nbits_zero(Zp8, Zpf, m, n, blk);
        const int kend = min(K, (blk + 1) * block);
        for (int t = 0; t < blob; t++) {
            const int byte = b[blk * blob + t], kb = blk * block + t * per;
            for (int i = 0; i < per && kb + i < kend; i++)
                acc += a[kb + i] * (((float)((byte >> (i * bits)) & msk) - z) * s);
        }
    }
    Y[row * N + n] = acc + (m[8] ? Bias[n] : 0.0f);
}

/* MatMulNBits for many rows: W [N, K] dequantized into the scratch buffer first, one work item per byte. */
__kernel void nbits_dequant(__global const uchar *B, __global const float *Sc, __global const uchar *Zp8,
                            __global const float *Zpf, __global float *W, __global const int *m, const int total)
{
    const int t = get_global_id(0);
    if (t >= total)
        return;
    const int K = m[0], block = m[2], bits = m[3], nb = m[4], blob = m[5];
    const int per = 8 / bits, msk = (1 << bits) - 1, nbytes = nb * blob;
    const int n = t / nbytes, r = t - n * nbytes, blk = r / blob, k0 = blk * block + (r - blk * blob) * per;
    const float s = Sc[n * nb + blk], z = si_nbits_zero(Zp8, Zpf, m, n, blk);
    const int byte = B[t];
    for (int i = 0; i < per && k0 + i < K; i++)
        W[n * K + k0 + i] = ((float)((byte >> (i * bits)) & msk) - z) * s;
}

/* Y [M, N] = A [M, K] W [N, K]^T + bias: SI_TS x SI_TS tiles through local memory. */
__kernel __attribute__((reqd_work_group_size(SI_TS, SI_TS, 1))) void nbits_mm(
    __global const float *A, __global const float *W, __global const float *Bias, __global float *Y,
    __global const int *m)
{
    __local float as[SI_TS][SI_TS + 1], ws[SI_TS][SI_TS + 1];
    const int K = m[0], N = m[1], M = m[9];
    const int lx = get_local_id(0), ly = get_local_id(1);
    const int n = get_group_id(0) * SI_TS + lx, row = get_group_id(1) * SI_TS + ly;
    const int n_t = get_group_id(0) * SI_TS + ly; /* the W row this item loads */
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += SI_TS) {
        as[ly][lx] = row < M && k0 + lx < K ? A[row * K + k0 + lx] : 0.0f;
        ws[ly][lx] = n_t < N && k0 + lx < K ? W[n_t * K + k0 + lx] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < SI_TS; i++)
            acc += as[ly][i] * ws[lx][i];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (row < M && n < N)
        Y[row * N + n] = acc + (m[8] ? Bias[n] : 0.0f);
}

/* FastGelu (kind 0), BiasGelu (1), QuickGelu (2, alpha): bias (has_bias) over the last axis of `last`. */
__kernel void ms_gelu(__global const float *X, __global const float *Bias, __global float *Y, const int n,
                      const int last, const int kind, const int has_bias, const float alpha)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    float v = X[i];
    if (has_bias)
        v += Bias[i % last];
    float r;
    if (kind == 0)
        r = 0.5f * v * (1.0f + tanh(0.79788456080286535588f * (v + 0.044715f * v * v * v)));
    else if (kind == 1)
        r = 0.5f * v * (1.0f + erf(v * 0.70710678118654752f));
    else
        r = v * si_sigmoid(alpha * v);
    Y[i] = r;
}

/* DequantizeLinear, int8 (flags 1) or uint8, zero point (flags 2) or none: y = (x - zp[k]) * s[k] with
 * k = (i / inner) % len (per tensor: inner 1, len 1). (x - zp) is exact, the product rounds once. */
__kernel void dq_linear(__global const uchar *X, __global const float *S, __global const uchar *Zp, __global float *Y,
                        const int n, const int inner, const int len, const int flags)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int k = (i / inner) % len;
    int q = (flags & 1) ? (int)as_char(X[i]) : (int)X[i];
    if (flags & 2)
        q -= (flags & 1) ? (int)as_char(Zp[k]) : (int)Zp[k];
    Y[i] = (float)q * S[k];
}

/* QuantizeLinear, float32 to int8 (flags 1) or uint8, zero point (flags 2) or none:
 * y = saturate(rint(x / s[k]) + zp[k]) with k = (i / inner) % len; the division is correctly rounded (the program
 * is built with -cl-fp32-correctly-rounded-divide-sqrt, else the planner refuses the op); the conversion rounds
 * half to even and saturates, NaN to 0, so NaN gives zp as in the reference. */
__kernel void q_linear(__global const float *X, __global const float *S, __global const uchar *Zp, __global uchar *Y,
                       const int n, const int inner, const int len, const int flags)
{
    const int i = get_global_id(0);
    if (i >= n)
        return;
    const int k = (i / inner) % len;
    const int s8 = flags & 1;
    const int z = (flags & 2) ? (s8 ? (int)as_char(Zp[k]) : (int)Zp[k]) : 0;
    const int q = clamp(add_sat(convert_int_sat_rte(X[i] / S[k]), z), s8 ? -128 : 0, s8 ? 127 : 255);
    Y[i] = (uchar)q;
}

/* ==== end of LLM and quantized ops ================================================================== */
