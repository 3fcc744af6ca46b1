/*
 * nbits.c — MatMulNBits (com.microsoft): a GEMM against a weight quantized to 2, 4 or 8 bits in blocks along
 * K, as ONNX Runtime GenAI's model builder and the ORT quantizers write LLM projections.
 *
 *   A       [..., K] float32 / float16 / bfloat16
 *   B       uint8 [N, n_blocks, blob] (any shape with that many bytes): for output row n and weight index k,
 *           block blk = k / block_size, j = k % block_size, code (B[(n*n_blocks + blk)*blob + j/per] >>
 *           ((j % per) * bits)) & (2^bits - 1) with per = 8 / bits (the even j in the low bits)
 *   scales  [N * n_blocks], A's type
 *   zero_points (opt) uint8 packed along the blocks the same way, ceil(n_blocks * bits / 8) bytes per row, or
 *           A's type unpacked [N * n_blocks]; absent: 2^(bits-1)
 *   g_idx   (opt, deprecated): not supported
 *   bias    (opt) [N]
 *
 * W[n, k] = (code - zero_point) * scale; Y = A W^T + bias, in float32 whatever accuracy_level asks (ORT's level
 * 4 quantizes A to int8 for constant weights with integer zero points; this reference does not: the level allows
 * float32. The CPU device does, as ORT, on a CPU with AVX-512 VNNI: cpu_llm_nbq8.c).
 * Codes of the padding of the last block (K not a multiple of block_size) are ignored.
 */
#include "ops/llm.h"

#include <string.h>

si_result si_nbits_prepare(const si_kctx *c, si_nbits *p) {
    si_result st;
    memset(p, 0, sizeof *p);
    if ((st = si_need_inputs(c, 3))) return st;
    const si_tensor *a = si_in(c, 0), *b = si_in(c, 1), *sc = si_in(c, 2), *zp = si_in(c, 3);
    if ((st = si_check_type(c, a->dtype, LLM_T_FLOAT, "A"))) return st;
    if (b->dtype != SI_U8) return si_op_err(c, SI_ERR_INVALID_ARG, "B must be uint8, got %s", si_dtype_name(b->dtype));
    if ((st = si_same_type(c, a, sc, "scales"))) return st;
    const si_attr *ak = si_node_attr(c->node, "K"), *an = si_node_attr(c->node, "N"), *abs_ = si_node_attr(c->node, "block_size");
    if (!ak || !an || !abs_) return si_op_err(c, SI_ERR_INVALID_ARG, "attributes K, N and block_size are required");
    p->K = ak->i;
    p->N = an->i;
    p->block = (int)abs_->i;
    const int64_t bits = si_attr_int(c->node, "bits", 4);
    if (bits != 2 && bits != 4 && bits != 8)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "bits = %lld is not supported (2, 4 or 8)", (long long)bits);
    p->bits = (int)bits;
    if (p->K < 1 || p->N < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "K (%lld) and N (%lld) must be positive", (long long)p->K, (long long)p->N);
    if (!si_nbits_block_ok(abs_->i))
        return si_op_err(c, SI_ERR_INVALID_ARG, "block_size %lld must be a power of two >= 16", (long long)abs_->i);
    const int64_t acc = si_attr_int(c->node, "accuracy_level", 0);
    if (acc < 0 || acc > 4) return si_op_err(c, SI_ERR_INVALID_ARG, "accuracy_level %lld is not in 0..4", (long long)acc);
    if (si_attr_int(c->node, "weight_prepacked", 0) != 0)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "weight_prepacked (GPU layouts) is not supported");
    if (a->ndim < 1 || a->dims[a->ndim - 1] != p->K)
        return si_op_err(c, SI_ERR_INVALID_ARG, "A's last dimension must be K = %lld, got %lld", (long long)p->K,
                         a->ndim ? (long long)a->dims[a->ndim - 1] : 0LL);
    p->M = si_prod(a->dims, 0, a->ndim - 1);
    si_nbits_layout(p);
    if (si_count(b) != p->N * p->nb * p->blob)
        return si_op_err(c, SI_ERR_INVALID_ARG, "B has %lld bytes, expected N x n_blocks x blob = %lld x %lld x %lld",
                         (long long)si_count(b), (long long)p->N, (long long)p->nb, (long long)p->blob);
    if (si_count(sc) != p->N * p->nb)
        return si_op_err(c, SI_ERR_INVALID_ARG, "scales has %lld values, expected N x n_blocks = %lld", (long long)si_count(sc),
                         (long long)(p->N * p->nb));
    p->zp = NB_ZP_NONE;
    if (zp) {
        if (zp->dtype == SI_U8) {
            p->zp = NB_ZP_PACKED;
            if (si_count(zp) != p->N * p->zrow)
                return si_op_err(c, SI_ERR_INVALID_ARG, "packed zero_points has %lld bytes, expected N x %lld = %lld",
                                 (long long)si_count(zp), (long long)p->zrow, (long long)(p->N * p->zrow));
        } else if (zp->dtype == a->dtype) {
            p->zp = NB_ZP_FLOAT;
            if (si_count(zp) != p->N * p->nb)
                return si_op_err(c, SI_ERR_INVALID_ARG, "zero_points has %lld values, expected N x n_blocks = %lld",
                                 (long long)si_count(zp), (long long)(p->N * p->nb));
        } else {
            return si_op_err(c, SI_ERR_INVALID_ARG, "zero_points must be uint8 (packed) or %s, got %s", si_dtype_name(a->dtype),
                             si_dtype_name(zp->dtype));
        }
    }
    if (si_in_nonempty(c, 4)) return si_op_err(c, SI_ERR_UNSUPPORTED, "g_idx (act-order groups) is not supported");
    const si_tensor *bias = si_in(c, 5);
    if (bias) {
        if ((st = si_same_type(c, a, bias, "bias"))) return st;
        if (si_count(bias) != p->N)
            return si_op_err(c, SI_ERR_INVALID_ARG, "bias has %lld values, expected N = %lld", (long long)si_count(bias), (long long)p->N);
        p->bias = true;
    }
    return SI_OK;
}

static si_result nbits_infer(si_kctx *c) {
    if (llm_dims_open(c)) { /* A's leading dimensions, then N */
        const si_tensor *a = si_in(c, 0);
        const si_attr *an = si_node_attr(c->node, "N");
        if (!a || a->ndim < 1 || !an || an->i < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "A (rank >= 1) and attribute N are required");
        int64_t dims[SI_MAX_DIMS];
        memcpy(dims, a->dims, sizeof(int64_t) * (size_t)a->ndim);
        dims[a->ndim - 1] = an->i;
        return si_set_out(c, 0, a->dtype, a->ndim, dims);
    }
    si_nbits p;
    si_result st = si_nbits_prepare(c, &p);
    if (st) return st;
    const si_tensor *a = si_in(c, 0);
    int64_t dims[SI_MAX_DIMS];
    memcpy(dims, a->dims, sizeof(int64_t) * (size_t)a->ndim);
    dims[a->ndim - 1] = p.N;
    return si_set_out(c, 0, a->dtype, a->ndim, dims);
}

/* The reference: dequantize one row of W at a time, then the dot products of every row of A with it. */
SI_OP_PLANNED(nbits_run, si_nbits, p, si_nbits_prepare) {
    si_tensor *y = si_out(c, 0);
    if (!y || p->M == 0) return SI_OK;
    const si_tensor *zpt = si_in(c, 3), *bt = si_in(c, 5);
    const uint8_t *B = si_in(c, 1)->data, *zp8 = p->zp == NB_ZP_PACKED ? zpt->data : NULL;
    float *a = si_tensor_to_f32(si_in(c, 0)), *sc = si_tensor_to_f32(si_in(c, 2));
    float *zpf = p->zp == NB_ZP_FLOAT ? si_tensor_to_f32(zpt) : NULL, *bias = bt ? si_tensor_to_f32(bt) : NULL;
    float *w = si_malloc((size_t)p->K * sizeof(float)), *yf = si_malloc((size_t)(p->M * p->N) * sizeof(float));
    if (!a || !sc || (p->zp == NB_ZP_FLOAT && !zpf) || (bt && !bias) || !w || !yf) {
        si_free(a), si_free(sc), si_free(zpf), si_free(bias), si_free(w), si_free(yf);
        return si_op_nomem(c);
    }
    const int per = 8 / p->bits, msk = (1 << p->bits) - 1;
    for (int64_t n = 0; n < p->N; n++) {
        for (int64_t blk = 0; blk < p->nb; blk++) {
            const float s = sc[n * p->nb + blk], z = si_nbits_zero(p, zp8, zpf, n, blk);
            const uint8_t *blob = B + (n * p->nb + blk) * p->blob;
            for (int64_t j = 0; j < p->block && blk * p->block + j < p->K; j++) {
                const int q = (blob[j / per] >> ((j % per) * p->bits)) & msk;
                w[blk * p->block + j] = ((float)q - z) * s;
            }
        }
        for (int64_t m = 0; m < p->M; m++) {
            const float *am = a + m * p->K;
            float acc = 0;
            for (int64_t k = 0; k < p->K; k++) acc += am[k] * w[k];
            yf[m * p->N + n] = acc + (bias ? bias[n] : 0.0f);
        }
    }
    si_tensor_from_f32(y, yf);
    si_free(a), si_free(sc), si_free(zpf), si_free(bias), si_free(w), si_free(yf);
    return SI_OK;
}

static const si_op_def defs[] = {
    SI_OP_DEF(MATMUL_NBITS, LLM_T_FLOAT, nbits_infer, nbits_run),
};

SI_OP_FAMILY_PARTIAL(nbits, defs);
