/*
 * cpu_mm1x1.c — a MatMul of activations [M, K] by constant (or function-parameter) weights [K, N] as oneDNN's 1x1
 * convolution over M images of one pixel: src [M, K, 1, 1] and dst [M, N, 1, 1] channels-last are the row-major
 * matrices byte for byte, the weights [N, K, 1, 1] are the [K, N] matrix read through transposed strides and
 * packed once into the convolution's blocked layout.
 *
 * Why: without AVX-512, oneDNN 2.x has no brgemm matmul for float32, and its matmul falls back to its GEMM
 * (gemm:jit), which packs the weights again at every call. Its jit 1x1 convolution keeps them packed: on an AVX2
 * EPYC, one thread, 128x768x3072 took 10-12 ms against 29-34 (a standalone oneDNN test); BERT-base's FFN-in
 * MatMul+Add+Gelu step 20 -> 9.2 ms (bench/README.md, stop 31). Every row count takes this path (decode's one row
 * too: 768x3072 0.20 against 0.32 ms), so that prefill and decode plans share one packed copy of the weights.
 * Where oneDNN has brgemm (AVX-512) the matmul stays. SI_CPU_NO_MM1X1=1 turns it off (read at plan time).
 *
 * The chain keeps its two-dimensional view ([M, N], cpu_chain_init); its binary operands get two trailing unit
 * dims, which are the same bytes.
 */
#include "device/cpu/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool no_brgemm_matmul(void) {
    const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), avx512 = (unsigned)dnnl_cpu_isa_avx512_core;
    return (isa & avx512) != avx512;
}

bool cpu_mm1x1_wanted(const cpu_pb *b, int64_t M) {
    (void)b;
    const char *e = getenv("SI_CPU_NO_MM1X1");
    return M >= 1 && no_brgemm_matmul() && !(e && *e && strcmp(e, "0"));
}

/* src [1, K, M, 1] and dst [1, N, M, 1] channels-last (one image of M pixels: oneDNN's 1x1 kernel blocks over the
 * pixels; M images of one pixel took twice as long), weights [N, K, 1, 1] any layout and their plain source, bias. */
void cpu_mm1x1_descs(int64_t M, int64_t K, int64_t N, dnnl_data_type_t xt, dnnl_data_type_t wt, dnnl_data_type_t yt, bool tb, cpu_mm1x1 *d) {
    dnnl_dims_t sd = {1, K, M, 1}, wd = {N, K, 1, 1}, dd = {1, N, M, 1}, bd = {N};
    dnnl_memory_desc_init_by_tag(&d->src, 4, sd, xt, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&d->wany, 4, wd, wt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&d->dst, 4, dd, yt, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&d->bias, 1, bd, dnnl_f32, dnnl_a);
    const dnnl_dims_t wstr = {tb ? K : 1, tb ? 1 : N, K * N, K * N}; /* [K, N] (or [N, K]) row-major read as [N, K, 1, 1] */
    dnnl_memory_desc_init_by_strides(&d->wplain, 4, wd, wt, wstr);
}

bool cpu_mm1x1_conv(const cpu_mm1x1 *d, bool bias, dnnl_convolution_desc_t *cd) {
    dnnl_dims_t st = {1, 1}, pad = {0, 0};
    return dnnl_convolution_forward_desc_init(cd, dnnl_forward_inference, dnnl_convolution_direct, &d->src, &d->wany, bias ? &d->bias : NULL, &d->dst,
                                              st, pad, pad) == dnnl_success;
}

bool cpu_mm1x1_probe(cpu_pb *b, int64_t M, int64_t K, int64_t N) {
    cpu_mm1x1 d;
    cpu_mm1x1_descs(M, K, N, dnnl_f32, dnnl_f32, dnnl_f32, false, &d);
    dnnl_convolution_desc_t cd;
    if (!cpu_mm1x1_conv(&d, false, &cd)) return false;
    dnnl_primitive_desc_t pd = NULL;
    if (cpu_pb_pd_create(b, NULL, &cd, NULL, &pd) != dnnl_success) return false;
    const char *impl = NULL;
    const bool ok = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl && strstr(impl, "1x1");
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

si_result cpu_mm1x1_lower(cpu_pb *b, int n, cpu_chain *c, int src_value, int64_t M, int64_t K, int64_t N, const cpu_skey *wk, cpu_wfill wfill,
                          const void *wctx, int w_value, const float *bias) {
    const si_node *nd = &b->g->nodes[n];
    cpu_mm1x1 d;
    cpu_mm1x1_descs(M, K, N, dnnl_f32, dnnl_f32, dnnl_f32, false, &d);
    c->mm1x1 = true; /* the chain's operands over [M, N] are given as [1, N, M, 1] channels-last: the same bytes */
    dnnl_convolution_desc_t cd;
    if (!cpu_mm1x1_conv(&d, bias != NULL, &cd)) return cpu_unsupported();
    dnnl_primitive_desc_t pd;
    si_result s = cpu_create_pd(b, c, &cd, &pd, nd->name);
    if (s) return s;
    char tag[24]; /* its own tag: the convolution's layout is never a matmul's */
    snprintf(tag, sizeof tag, "%.10s.1x1", wk->tag);
    cpu_skey k = *wk;
    k.tag = tag;
    const dnnl_memory_desc_t *want = cpu_pd_md(pd, dnnl_query_weights_md);
    /* src and dst are the plain [M, K] / [M, N] buffers seen through the convolution's descriptors */
    dnnl_memory_desc_t s2, d2;
    const int64_t s2d[2] = {M, K}, d2d[2] = {M, N};
    cpu_md_plain(&s2, 2, s2d);
    cpu_md_plain(&d2, 2, d2d);
    int sp = cpu_pb_in_md(b, src_value, &s2);
    int sb = sp < 0 ? -1 : cpu_pb_alias(b, sp, &d.src);
    int wb = sb < 0 ? -1 : w_value >= 0 ? cpu_pb_param_buf(b, w_value, &k, &d.wplain, want) : cpu_pb_pack(b, &k, wfill ? NULL : wctx, wfill, wctx, &d.wplain, want);
    int bb = -1;
    if (wb >= 0 && bias) {
        const void *bc = cpu_pb_shared_data(b, n, "bias", bias, sizeof(float) * (size_t)N);
        if (bc) bb = cpu_pb_const_buf(b, bc, &d.bias);
    }
    cpu_arg args[80] = {{DNNL_ARG_SRC, sb}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_BIAS, bb}};
    int na = bias ? 3 : 2;
    s = wb < 0 || (bias && bb < 0) ? (si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL) : cpu_chain_args(b, c, args, &na);
    int dp = s ? -1 : cpu_chain_dst(b, c, &d2);
    int db = dp < 0 ? -1 : cpu_pb_alias(b, dp, &d.dst);
    if (db < 0) {
        dnnl_primitive_desc_destroy(pd);
        return s ? s : si_last_error()[0] ? SI_ERR_NO_MEM : SI_ERR_INTERNAL;
    }
    args[na].arg = DNNL_ARG_DST;
    args[na++].buf = db;
    char name[96];
    cpu_chain_name(c, nd->op_type, name, sizeof name);
    s = cpu_pb_emit_dnnl(b, c->anchor, name, pd, args, na);
    if (!s) cpu_chain_consume(b, c);
    return s;
}
