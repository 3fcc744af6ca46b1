/*
 * gemm.c — the GEMM kernels every matrix product of the reference kernels runs on, and MatMul and Gemm.
 *
 * float32 (and float16/bfloat16 converted to float32) goes through one cache-blocked GEMM (si_sgemm); float64
 * uses a plain triple loop in double; integer MatMul/Gemm accumulate in 64-bit integers.
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

#define NN_T_GEMM (SI_T_FLOATS | SI_T(SI_I32) | SI_T(SI_I64) | SI_T(SI_U32) | SI_T(SI_U64))

/* =========================================================================================================
 * GEMM: C[M x N] (=|+=) A[M x K] * B[K x N] with arbitrary row/column strides (so transposes are free).
 * float32: packed, cache-blocked, with a 6x8 register micro-kernel written in plain C that compilers
 * vectorise. float64: plain loops.
 */

#define NN_MR 6
#define NN_NR 8
#define NN_KC 256
#define NN_MC 96
#define NN_NC 2048

static void nn_ukernel(int64_t kc, const float *restrict a, const float *restrict b, float *restrict cc, int64_t ldc,
                       int mr, int nr, bool acc) {
    float t[NN_MR][NN_NR];
    for (int i = 0; i < NN_MR; i++)
        for (int j = 0; j < NN_NR; j++) t[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < NN_MR; i++) {
            const float av = a[i];
            for (int j = 0; j < NN_NR; j++) t[i][j] += av * b[j];
        }
        a += NN_MR;
        b += NN_NR;
    }
    if (mr == NN_MR && nr == NN_NR) {
        if (acc) {
            for (int i = 0; i < NN_MR; i++)
                for (int j = 0; j < NN_NR; j++) cc[i * ldc + j] += t[i][j];
        } else {
            for (int i = 0; i < NN_MR; i++)
                for (int j = 0; j < NN_NR; j++) cc[i * ldc + j] = t[i][j];
        }
    } else {
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) cc[i * ldc + j] = acc ? cc[i * ldc + j] + t[i][j] : t[i][j];
    }
}

static void nn_pack_a(int64_t mc, int64_t kc, const float *a, int64_t rs, int64_t cs, float *p) {
    for (int64_t i0 = 0; i0 < mc; i0 += NN_MR) {
        int mr = (int)SI_MIN(mc - i0, (int64_t)NN_MR);
        for (int64_t k = 0; k < kc; k++) {
            const float *src = a + i0 * rs + k * cs;
            for (int i = 0; i < mr; i++) p[i] = src[i * rs];
            for (int i = mr; i < NN_MR; i++) p[i] = 0.0f;
            p += NN_MR;
        }
    }
}

static void nn_pack_b(int64_t kc, int64_t nc, const float *b, int64_t rs, int64_t cs, float *p) {
    for (int64_t j0 = 0; j0 < nc; j0 += NN_NR) {
        int nr = (int)SI_MIN(nc - j0, (int64_t)NN_NR);
        for (int64_t k = 0; k < kc; k++) {
            const float *src = b + k * rs + j0 * cs;
            if (cs == 1 && nr == NN_NR) {
                memcpy(p, src, NN_NR * sizeof(float));
            } else {
                for (int j = 0; j < nr; j++) p[j] = src[j * cs];
                for (int j = nr; j < NN_NR; j++) p[j] = 0.0f;
            }
            p += NN_NR;
        }
    }
}

static float nn_sdot(int64_t n, const float *a, int64_t sa, const float *b, int64_t sb) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    if (sa == 1 && sb == 1) {
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    }
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i * sa] * b[i * sb];
    return r;
}

/* C = A*B (accumulate: C += A*B). Returns false when out of memory (C is then unchanged). */
bool si_sgemm(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsa, int64_t csa, const float *B, int64_t rsb,
              int64_t csb, float *C, int64_t ldc, bool accumulate) {
    if (M <= 0 || N <= 0) return true;
    if (K <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(float));
        return true;
    }
    if (M < 4) {
        /* matrix-vector shaped: no packing, stream B once per row of A */
        for (int64_t i = 0; i < M; i++) {
            float *cr = C + i * ldc;
            const float *ar = A + i * rsa;
            if (csb == 1) {
                if (!accumulate) memset(cr, 0, (size_t)N * sizeof(float));
                for (int64_t k = 0; k < K; k++) {
                    const float av = ar[k * csa];
                    const float *br = B + k * rsb;
                    for (int64_t j = 0; j < N; j++) cr[j] += av * br[j];
                }
            } else {
                for (int64_t j = 0; j < N; j++) {
                    float v = nn_sdot(K, ar, csa, B + j * csb, rsb);
                    cr[j] = accumulate ? cr[j] + v : v;
                }
            }
        }
        return true;
    }
    int64_t ncap = SI_MIN(N, (int64_t)NN_NC);
    ncap = (ncap + NN_NR - 1) / NN_NR * NN_NR;
    int64_t kcap = SI_MIN(K, (int64_t)NN_KC);
    int64_t mcap = (SI_MIN(M, (int64_t)NN_MC) + NN_MR - 1) / NN_MR * NN_MR;
    float *pa = si_malloc((size_t)(mcap * kcap) * sizeof(float));
    float *pb = si_malloc((size_t)(ncap * kcap) * sizeof(float));
    if (!pa || !pb) {
        SI_FREE_ALL(pa, pb);
        return false;
    }
    for (int64_t jc = 0; jc < N; jc += NN_NC) {
        int64_t nc = SI_MIN(N - jc, (int64_t)NN_NC);
        for (int64_t pc = 0; pc < K; pc += NN_KC) {
            int64_t kc = SI_MIN(K - pc, (int64_t)NN_KC);
            bool acc = accumulate || pc > 0;
            nn_pack_b(kc, nc, B + pc * rsb + jc * csb, rsb, csb, pb);
            for (int64_t ic = 0; ic < M; ic += NN_MC) {
                int64_t mc = SI_MIN(M - ic, (int64_t)NN_MC);
                nn_pack_a(mc, kc, A + ic * rsa + pc * csa, rsa, csa, pa);
                for (int64_t jr = 0; jr < nc; jr += NN_NR) {
                    int nr = (int)SI_MIN(nc - jr, (int64_t)NN_NR);
                    for (int64_t ir = 0; ir < mc; ir += NN_MR) {
                        int mr = (int)SI_MIN(mc - ir, (int64_t)NN_MR);
                        nn_ukernel(kc, pa + ir * kc, pb + jr * kc, C + (ic + ir) * ldc + jc + jr, ldc, mr, nr, acc);
                    }
                }
            }
        }
    }
    SI_FREE_ALL(pa, pb);
    return true;
}

void si_dgemm(int64_t M, int64_t N, int64_t K, const double *A, int64_t rsa, int64_t csa, const double *B, int64_t rsb,
              int64_t csb, double *C, int64_t ldc, bool accumulate) {
    for (int64_t i = 0; i < M; i++) {
        double *cr = C + i * ldc;
        if (!accumulate)
            for (int64_t j = 0; j < N; j++) cr[j] = 0.0;
        for (int64_t k = 0; k < K; k++) {
            const double av = A[i * rsa + k * csa];
            const double *br = B + k * rsb;
            for (int64_t j = 0; j < N; j++) cr[j] += av * br[j * csb];
        }
    }
}

/* Integer GEMM with wrap-around 64-bit arithmetic (operands already widened to int64). */
void si_igemm(int64_t M, int64_t N, int64_t K, const int64_t *A, int64_t rsa, int64_t csa, const int64_t *B,
              int64_t rsb, int64_t csb, int64_t *C, int64_t ldc) {
    for (int64_t i = 0; i < M; i++) {
        uint64_t *cr = (uint64_t *)(C + i * ldc);
        for (int64_t j = 0; j < N; j++) cr[j] = 0;
        for (int64_t k = 0; k < K; k++) {
            const uint64_t av = (uint64_t)A[i * rsa + k * csa];
            const int64_t *br = B + k * rsb;
            for (int64_t j = 0; j < N; j++) cr[j] += av * (uint64_t)br[j * csb];
        }
    }
}

/* =========================================================================================================
 * MatMul, Gemm
 */

si_result si_mm_shape(const si_kctx *c, const si_tensor *a, const si_tensor *b, nn_mm *p) {
    si_result st;
    if (a->ndim < 1 || b->ndim < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "operands must have rank >= 1");
    const int ar = a->ndim, br = b->ndim;
    p->M = ar >= 2 ? a->dims[ar - 2] : 1;
    p->K = a->dims[ar - 1];
    const int64_t kb = br >= 2 ? b->dims[br - 2] : b->dims[0];
    p->N = br >= 2 ? b->dims[br - 1] : 1;
    if (si_dim_ne(kb, p->K)) {
        char s1[96], s2[96];
        return si_op_err(c, SI_ERR_INVALID_ARG, "inner dimensions differ: A %s, B %s",
                         si_shape_str(s1, sizeof s1, a->dtype, a->ndim, a->dims),
                         si_shape_str(s2, sizeof s2, b->dtype, b->ndim, b->dims));
    }
    const int na = ar >= 2 ? ar - 2 : 0, nb = br >= 2 ? br - 2 : 0;
    if ((st = si_broadcast_shape(c, na, a->dims, nb, b->dims, &p->ob, p->bd))) return st;
    if (si_dims_known(p->ob, p->bd) && si_dims_known(na, a->dims) && si_dims_known(nb, b->dims)) { /* run time */
        si_broadcast_strides(na, a->dims, p->ob, p->bd, p->ast);
        si_broadcast_strides(nb, b->dims, p->ob, p->bd, p->bst);
    }
    p->nbatch = si_prod(p->bd, 0, p->ob);
    p->abatch = si_prod(a->dims, 0, na);
    p->bbatch = si_prod(b->dims, 0, nb);
    p->nout = 0;
    for (int i = 0; i < p->ob; i++) p->odims[p->nout++] = p->bd[i];
    if (ar >= 2) p->odims[p->nout++] = p->M;
    if (br >= 2) p->odims[p->nout++] = p->N;
    if (p->nout > SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "result rank exceeds %d", SI_MAX_DIMS);
    return SI_OK;
}

static si_result mm_prep(si_kctx *c, nn_mm *p) {
    si_result st;
    if ((st = si_inputs_typed(c, 2, 2, (const uint32_t[]){NN_T_GEMM, SI_T_LIKE0}, (const char *const[]){"A", "B"}))) return st;
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 1);
    return si_mm_shape(c, a, b, p);
}

SI_OP_PLANNED(matmul_infer, nn_mm, p, mm_prep) {
    return si_set_out(c, 0, si_in(c, 0)->dtype, p->nout, p->odims);
}

void si_mm_offsets(const nn_mm *p, int64_t bi, int64_t *ao, int64_t *bo) {
    int64_t a = 0, b = 0;
    for (int d = p->ob - 1; d >= 0; d--) {
        const int64_t i = bi % p->bd[d];
        bi /= p->bd[d];
        a += i * p->ast[d];
        b += i * p->bst[d];
    }
    *ao = a;
    *bo = b;
}

/* A and B as float32 and Y's float32 buffer: the tensors themselves for float32, converted copies for
 * float16/bfloat16 (f32_done stores Y back and frees them). */
typedef struct f32_ops {
    const float *a, *b;
    float *y, *ta, *tb, *ty;
} f32_ops;

static bool f32_get(f32_ops *o, const si_tensor *a, const si_tensor *b, si_tensor *y) {
    memset(o, 0, sizeof *o);
    if (a->dtype == SI_F32) {
        o->a = a->data, o->b = b->data, o->y = y->data;
        return true;
    }
    o->a = o->ta = si_tensor_to_f32(a);
    o->b = o->tb = si_tensor_to_f32(b);
    o->y = o->ty = si_malloc((size_t)si_count(y) * sizeof(float));
    return o->a && o->b && o->y;
}

static void f32_done(f32_ops *o, si_tensor *y, bool ok) {
    if (ok && o->ty) si_tensor_from_f32(y, o->ty);
    SI_FREE_ALL(o->ta, o->tb, o->ty);
}

SI_OP_PLANNED(matmul_run, nn_mm, p, mm_prep) {
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 1);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    if (p->K == 0) return SI_OK; /* an empty inner dimension: the outputs are the (zero-filled) sums of nothing */
    const int64_t M = p->M, N = p->N, K = p->K, asz = M * K, bsz = K * N, ysz = M * N;
    const si_dtype dt = a->dtype;
    if (dt == SI_F32 || dt == SI_F16 || dt == SI_BF16) {
        f32_ops f;
        bool ok = f32_get(&f, a, b, y);
        if (ok && p->bbatch == 1 && p->abatch == p->nbatch) {
            /* B shared by every batch: one GEMM over all rows of A */
            ok = si_sgemm(p->nbatch * M, N, K, f.a, K, 1, f.b, N, 1, f.y, N, false);
        } else {
            for (int64_t bi = 0; ok && bi < p->nbatch; bi++) {
                int64_t ao, bo;
                si_mm_offsets(p, bi, &ao, &bo);
                ok = si_sgemm(M, N, K, f.a + ao * asz, K, 1, f.b + bo * bsz, N, 1, f.y + bi * ysz, N, false);
            }
        }
        f32_done(&f, y, ok);
        return ok ? SI_OK : si_op_nomem(c);
    }
    if (dt == SI_F64) {
        const double *ad = a->data, *bd = b->data;
        double *yd = y->data;
        for (int64_t bi = 0; bi < p->nbatch; bi++) {
            int64_t ao, bo;
            si_mm_offsets(p, bi, &ao, &bo);
            si_dgemm(M, N, K, ad + ao * asz, K, 1, bd + bo * bsz, N, 1, yd + bi * ysz, N, false);
        }
        return SI_OK;
    }
    int64_t *ai = si_tensor_to_i64(a), *bi64 = si_tensor_to_i64(b),
            *yi = si_malloc((size_t)si_count(y) * sizeof(int64_t));
    if (!ai || !bi64 || !yi) {
        SI_FREE_ALL(ai, bi64, yi);
        return si_op_nomem(c);
    }
    for (int64_t bi = 0; bi < p->nbatch; bi++) {
        int64_t ao, bo;
        si_mm_offsets(p, bi, &ao, &bo);
        si_igemm(M, N, K, ai + ao * asz, K, 1, bi64 + bo * bsz, N, 1, yi + bi * ysz, N);
    }
    for (int64_t i = 0; i < si_count(y); i++) si_store_i64(y->dtype, y->data, i, yi[i]);
    SI_FREE_ALL(ai, bi64, yi);
    return SI_OK;
}

typedef struct nn_gemm {
    int64_t M, N, K;
    bool ta, tb;
} nn_gemm;

static si_result gemm_prep(si_kctx *c, nn_gemm *p) {
    si_result st;
    if ((st = si_inputs_typed(c, 2, 3, (const uint32_t[]){NN_T_GEMM, SI_T_LIKE0, SI_T_LIKE0}, (const char *const[]){"A", "B", "C"})))
        return st;
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 1), *cc = si_in(c, 2);
    if (a->ndim != 2 || b->ndim != 2)
        return si_op_err(c, SI_ERR_INVALID_ARG, "A and B must be 2-D (got ranks %d and %d)", a->ndim, b->ndim);
    p->ta = si_attr_int(c->node, "transA", 0) != 0;
    p->tb = si_attr_int(c->node, "transB", 0) != 0;
    p->M = p->ta ? a->dims[1] : a->dims[0];
    p->K = p->ta ? a->dims[0] : a->dims[1];
    const int64_t kb = p->tb ? b->dims[1] : b->dims[0];
    p->N = p->tb ? b->dims[0] : b->dims[1];
    if (si_dim_ne(kb, p->K))
        return si_op_err(c, SI_ERR_INVALID_ARG, "inner dimensions differ: %lld (A) and %lld (B)", (long long)p->K,
                         (long long)kb);
    if (cc) {
        int64_t dims[2] = {p->M, p->N};
        if ((st = si_unibroadcast_check(c, cc, 2, dims, "C"))) return st;
    }
    return SI_OK;
}

SI_OP_PLANNED(gemm_infer, nn_gemm, p, gemm_prep) {
    int64_t dims[2] = {p->M, p->N};
    return si_set_out(c, 0, si_in(c, 0)->dtype, 2, dims);
}

SI_OP_PLANNED(gemm_run, nn_gemm, p, gemm_prep) {
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 1), *cc = si_in(c, 2);
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    const double alpha = si_attr_float(c->node, "alpha", 1.0f), beta = si_attr_float(c->node, "beta", 1.0f);
    const int64_t M = p->M, N = p->N, K = p->K, MN = M * N;
    const int64_t rsa = p->ta ? 1 : K, csa = p->ta ? M : 1, rsb = p->tb ? 1 : N, csb = p->tb ? K : 1;
    int64_t dims[2] = {M, N};
    double *cd = cc ? si_broadcast_to_f64(cc, 2, dims) : NULL;
    if (cc && !cd) return si_op_nomem(c);
    const si_dtype dt = a->dtype;
    bool ok = true;
    if (dt == SI_F32 || dt == SI_F16 || dt == SI_BF16) {
        f32_ops f;
        ok = f32_get(&f, a, b, y) && si_sgemm(M, N, K, f.a, rsa, csa, f.b, rsb, csb, f.y, N, false);
        if (ok && (alpha != 1.0 || cd))
            for (int64_t i = 0; i < MN; i++) f.y[i] = (float)(alpha * f.y[i] + (cd ? beta * cd[i] : 0.0));
        f32_done(&f, y, ok);
        si_free(cd);
    } else if (dt == SI_F64) {
        double *yd = y->data;
        si_dgemm(M, N, K, a->data, rsa, csa, b->data, rsb, csb, yd, N, false);
        for (int64_t i = 0; i < MN; i++) yd[i] = alpha * yd[i] + (cd ? beta * cd[i] : 0.0);
        si_free(cd);
    } else {
        int64_t *ai = si_tensor_to_i64(a), *bi = si_tensor_to_i64(b), *yi = si_malloc((size_t)MN * sizeof(int64_t));
        int64_t *ci = cc ? si_tensor_to_i64(cc) : NULL;
        ok = ai && bi && yi && (!cc || ci);
        if (ok) {
            si_igemm(M, N, K, ai, rsa, csa, bi, rsb, csb, yi, N);
            if (alpha == 1.0 && (beta == 1.0 || !cc)) {
                /* exact integer path; C broadcast via its expanded doubles' source indices */
                int64_t cst[2] = {0, 0};
                if (cc) si_broadcast_strides(cc->ndim, cc->dims, 2, dims, cst);
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        uint64_t v = (uint64_t)yi[i * N + j];
                        if (cc) v += (uint64_t)ci[i * cst[0] + j * cst[1]];
                        si_store_i64(y->dtype, y->data, i * N + j, (int64_t)v);
                    }
            } else {
                for (int64_t i = 0; i < MN; i++)
                    si_store_f64(y->dtype, y->data, i, alpha * (double)yi[i] + (cd ? beta * cd[i] : 0.0));
            }
        }
        SI_FREE_ALL(ai, bi, yi, ci, cd);
    }
    return ok ? SI_OK : si_op_nomem(c);
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(GEMM, NN_T_GEMM, gemm_infer, gemm_run),
    SI_OP_DEF(MATMUL, NN_T_GEMM, matmul_infer, matmul_run),
};

SI_OP_FAMILY_PARTIAL(gemm, defs);
