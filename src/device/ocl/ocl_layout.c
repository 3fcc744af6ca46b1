/*
 * ocl_layout.c — the OCL planners of the layout ops (Reshape, Flatten, Squeeze and Unsqueeze as views;
 * Transpose, Concat, Split, Slice, Expand, Tile, Pad and Gather as strided copies), Resize/Upsample (REF's
 * geometry and taps, weighted sums on the device) and Shape/Size (constants of the compiled model).
 */
#include "device/ocl/ocl_ops.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

/* Strided copy: Y[doff + c.dstride] = X[soff + c.sstride] for every coordinate c of dims. */
static si_result emit_copy(ocl_plan *p, ocl_arg x, ocl_arg y, int nd, const int64_t *dims_in, const int64_t *sst_in,
                           const int64_t *dst_in, int64_t soff, int64_t doff) {
    int64_t n = si_shape_count(nd, dims_in);
    if (n == 0) return SI_OK;
    int64_t dims[SI_MAX_DIMS * 2], st[2][SI_MAX_DIMS * 2];
    memcpy(dims, dims_in, sizeof(int64_t) * (size_t)nd);
    memcpy(st[0], sst_in, sizeof(int64_t) * (size_t)nd);
    memcpy(st[1], dst_in, sizeof(int64_t) * (size_t)nd);
    int r = ocl_merge_dims(nd, dims, 2, st);
    if (r <= 3) { /* a 3-D launch without index arithmetic */
        int m3[11];
        m3[0] = (int)soff;
        m3[1] = (int)doff;
        for (int k = 0; k < 3; k++) {
            bool on = k < r;
            m3[2 + k] = on ? (int)dims[r - 1 - k] : 1;
            m3[5 + k] = on ? (int)st[0][r - 1 - k] : 0;
            m3[8 + k] = on ? (int)st[1][r - 1 - k] : 0;
        }
        int mid;
        si_result s = ocl_meta(p, m3, 11, &mid);
        if (s) return s;
        ocl_step stp;
        st_init(&stp, "copy3");
        a_any(&stp, x);
        a_any(&stp, y);
        a_meta(&stp, mid);
        stp.dims = 3;
        stp.gws[0] = (size_t)m3[2];
        stp.gws[1] = (size_t)m3[3];
        stp.gws[2] = (size_t)m3[4];
        return ocl_emit(p, &stp);
    }
    int meta[3 + 3 * SI_MAX_DIMS * 2];
    meta[0] = r;
    meta[1] = (int)soff;
    meta[2] = (int)doff;
    for (int k = 0; k < r; k++) {
        meta[3 + k] = (int)dims[k];
        meta[3 + r + k] = (int)st[0][k];
        meta[3 + 2 * r + k] = (int)st[1][k];
    }
    int mid;
    si_result s = ocl_meta(p, meta, 3 + 3 * r, &mid);
    if (s) return s;
    ocl_step stp;
    st_init(&stp, "copy_nd");
    a_any(&stp, x);
    a_any(&stp, y);
    a_int(&stp, n);
    a_meta(&stp, mid);
    return ocl_emit_1d(p, &stp, n);
}

// --- layout -------------------------------------------------------------------------------------------------

si_result ocl_plan_reshape(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int64_t sh[SI_MAX_DIMS];
    int n;
    if (p->node->opset < 5) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, "shape", sh, SI_MAX_DIMS, &n))) return s;
        if (n < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "attribute shape is missing");
    } else {
        if ((s = ocl_max_inputs(p, 2)) || (s = ocl_need_in(p, 1)) || (s = ocl_const_ints(p, 1, sh, SI_MAX_DIMS, &n))) return s;
    }
    bool allowzero = si_attr_int(p->node, "allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (sh[i] == 0 && !allowzero) {
            if (i >= x->ndim) return ocl_err(p, SI_ERR_INVALID_ARG, "shape[%d] = 0 copies a dimension the input lacks", i);
            sh[i] = x->dims[i];
        }
        if (sh[i] == -1) {
            if (infer >= 0) return ocl_err(p, SI_ERR_INVALID_ARG, "more than one -1 in shape");
            infer = i;
        } else if (sh[i] < 0) {
            return ocl_err(p, SI_ERR_INVALID_ARG, "shape[%d] = %lld", i, (long long)sh[i]);
        } else {
            known *= sh[i];
        }
    }
    int64_t total = dcount(x);
    if (infer >= 0) {
        if (known == 0 || total % known) return ocl_err(p, SI_ERR_INVALID_ARG, "cannot infer the -1 dimension");
        sh[infer] = total / known;
    } else if (known != total) {
        return ocl_err(p, SI_ERR_INVALID_ARG, "%lld elements cannot be reshaped to %lld", (long long)total, (long long)known);
    }
    if ((s = ocl_set_out(p, 0, n, sh))) return s;
    return ocl_emit_view(p);
}

si_result ocl_plan_flatten(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_inputs(p, 1)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int64_t axis = si_attr_int(p->node, "axis", 1);
    if (axis < 0) axis += x->ndim;
    if (axis < 0 || axis > x->ndim) return ocl_err(p, SI_ERR_INVALID_ARG, "axis out of range");
    int64_t od[2] = {si_shape_count((int)axis, x->dims), si_shape_count(x->ndim - (int)axis, x->dims + axis)};
    if ((s = ocl_set_out(p, 0, 2, od))) return s;
    return ocl_emit_view(p);
}

static si_result squeeze_axes(ocl_plan *p, int64_t *axes, int *n) {
    si_result s;
    *n = -1;
    if (p->node->opset < 13) return ocl_attr_ints(p, "axes", axes, SI_MAX_DIMS * 2, n);
    if ((s = ocl_max_inputs(p, 2))) return s;
    if (has_in(p, 1)) return ocl_const_ints(p, 1, axes, SI_MAX_DIMS * 2, n);
    return SI_OK;
}

si_result ocl_plan_squeeze(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int64_t axes[SI_MAX_DIMS * 2];
    int n;
    if ((s = squeeze_axes(p, axes, &n))) return s;
    bool drop[SI_MAX_DIMS] = {false};
    if (n < 0) {
        for (int k = 0; k < x->ndim; k++) drop[k] = x->dims[k] == 1;
    } else {
        for (int i = 0; i < n; i++) {
            int a;
            if ((s = ocl_norm_axis(p, axes[i], x->ndim, &a))) return s;
            if (x->dims[a] != 1) return ocl_err(p, SI_ERR_INVALID_ARG, "cannot squeeze dimension %d of size %lld", a, (long long)x->dims[a]);
            drop[a] = true;
        }
    }
    int64_t od[SI_MAX_DIMS];
    int nd = 0;
    for (int k = 0; k < x->ndim; k++)
        if (!drop[k]) od[nd++] = x->dims[k];
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    return ocl_emit_view(p);
}

si_result ocl_plan_unsqueeze(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int64_t axes[SI_MAX_DIMS * 2];
    int n;
    if ((s = squeeze_axes(p, axes, &n))) return s;
    if (n < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "axes are missing");
    int nd = x->ndim + n;
    if (nd > SI_MAX_DIMS) return ocl_err(p, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    bool ins[SI_MAX_DIMS] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        if ((s = ocl_norm_axis(p, axes[i], nd, &a))) return s;
        if (ins[a]) return ocl_err(p, SI_ERR_INVALID_ARG, "axis %d appears twice", a);
        ins[a] = true;
    }
    int64_t od[SI_MAX_DIMS];
    for (int k = 0, j = 0; k < nd; k++) od[k] = ins[k] ? 1 : x->dims[j++];
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    return ocl_emit_view(p);
}

si_result ocl_plan_transpose(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_inputs(p, 1)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim;
    int64_t perm[SI_MAX_DIMS];
    int n;
    if ((s = ocl_attr_ints(p, "perm", perm, SI_MAX_DIMS, &n))) return s;
    if (n < 0) {
        for (int k = 0; k < nd; k++) perm[k] = nd - 1 - k;
    } else if (n != nd) {
        return ocl_err(p, SI_ERR_INVALID_ARG, "perm has %d values for rank %d", n, nd);
    }
    bool seen[SI_MAX_DIMS] = {false};
    int64_t od[SI_MAX_DIMS], ist[SI_MAX_DIMS], sst[SI_MAX_DIMS], dst[SI_MAX_DIMS];
    si_strides(nd, x->dims, ist);
    for (int k = 0; k < nd; k++) {
        if (perm[k] < 0 || perm[k] >= nd || seen[perm[k]]) return ocl_err(p, SI_ERR_INVALID_ARG, "perm is not a permutation");
        seen[perm[k]] = true;
        od[k] = x->dims[perm[k]];
        sst[k] = ist[perm[k]];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    si_strides(nd, od, dst);
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), nd, od, sst, dst, 0, 0);
}

si_result ocl_plan_concat(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s;
    if (p->n_in < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "no inputs");
    if ((s = ocl_max_outputs(p, 1))) return s;
    for (int k = 0; k < p->n_in; k++)
        if ((s = ocl_need_f32(p, k))) return s;
    const ocl_desc *x0 = &p->in[0];
    int nd = x0->ndim, axis;
    if (!si_node_attr(p->node, "axis")) return ocl_err(p, SI_ERR_INVALID_ARG, "attribute axis is missing");
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 0), nd, &axis))) return s;
    int64_t od[SI_MAX_DIMS];
    memcpy(od, x0->dims, sizeof od);
    od[axis] = 0;
    for (int k = 0; k < p->n_in; k++) {
        const ocl_desc *x = &p->in[k];
        if (x->ndim != nd) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d has rank %d, input 0 has %d", k, x->ndim, nd);
        for (int i = 0; i < nd; i++)
            if (i != axis && x->dims[i] != x0->dims[i]) return ocl_err(p, SI_ERR_INVALID_ARG, "input %d differs in dimension %d", k, i);
        od[axis] += x->dims[axis];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t outer = si_shape_count(axis, od), inner = si_shape_count(nd - axis - 1, od + axis + 1), off = 0;
    for (int k = 0; k < p->n_in; k++) {
        int64_t len = p->in[k].dims[axis] * inner;
        int64_t dims[2] = {outer, len}, sst[2] = {len, 1}, dst[2] = {od[axis] * inner, 1};
        if ((s = emit_copy(p, arg_val(p->in[k].vid), arg_val(p->out[0].vid), 2, dims, sst, dst, 0, off))) return s;
        off += len;
    }
    return SI_OK;
}

si_result ocl_plan_split(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s) return s;
    const ocl_desc *x = &p->in[0];
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 0), x->ndim, &axis))) return s;
    int64_t sizes[OCL_MAX_IO];
    int n = -1, nout = p->n_out;
    if (p->node->opset < 13) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, "split", sizes, OCL_MAX_IO, &n))) return s;
    } else {
        if ((s = ocl_max_inputs(p, 2))) return s;
        if (has_in(p, 1) && (s = ocl_const_ints(p, 1, sizes, OCL_MAX_IO, &n))) return s;
    }
    int64_t d = x->dims[axis];
    if (n < 0) {
        int64_t num = p->node->opset >= 18 ? si_attr_int(p->node, "num_outputs", nout) : nout;
        if (num != nout || nout < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "num_outputs %lld for %d outputs", (long long)num, nout);
        if (p->node->opset >= 18 && si_node_attr(p->node, "num_outputs")) {
            int64_t chunk = (d + nout - 1) / nout;
            for (int k = 0; k < nout; k++) sizes[k] = SI_MAX(0, SI_MIN(chunk, d - chunk * k));
        } else {
            if (d % nout) return ocl_err(p, SI_ERR_INVALID_ARG, "dimension %lld does not split into %d equal parts", (long long)d, nout);
            for (int k = 0; k < nout; k++) sizes[k] = d / nout;
        }
    } else {
        int64_t sum = 0;
        if (n != nout) return ocl_err(p, SI_ERR_INVALID_ARG, "split has %d sizes for %d outputs", n, nout);
        for (int k = 0; k < n; k++) sum += sizes[k];
        if (sum != d) return ocl_err(p, SI_ERR_INVALID_ARG, "split sizes add up to %lld, not %lld", (long long)sum, (long long)d);
    }
    int64_t outer = si_shape_count(axis, x->dims), inner = si_shape_count(x->ndim - axis - 1, x->dims + axis + 1), off = 0;
    for (int k = 0; k < nout; k++) {
        int64_t od[SI_MAX_DIMS];
        memcpy(od, x->dims, sizeof od);
        od[axis] = sizes[k];
        if ((s = ocl_set_out(p, k, x->ndim, od))) return s;
        if (has_out(p, k)) {
            int64_t len = sizes[k] * inner;
            int64_t dims[2] = {outer, len}, sst[2] = {d * inner, 1}, dst[2] = {len, 1};
            if ((s = emit_copy(p, arg_val(x->vid), arg_val(p->out[k].vid), 2, dims, sst, dst, off, 0))) return s;
        }
        off += sizes[k] * inner;
    }
    return SI_OK;
}

si_result ocl_plan_slice(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim;
    int64_t starts[SI_MAX_DIMS], ends[SI_MAX_DIMS], axes[SI_MAX_DIMS], steps[SI_MAX_DIMS];
    int ns, ne, na = -1, nst = -1;
    if (p->node->opset < 10) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, "starts", starts, SI_MAX_DIMS, &ns)) || (s = ocl_attr_ints(p, "ends", ends, SI_MAX_DIMS, &ne)) ||
            (s = ocl_attr_ints(p, "axes", axes, SI_MAX_DIMS, &na)))
            return s;
    } else {
        if ((s = ocl_max_inputs(p, 5)) || (s = ocl_need_in(p, 1)) || (s = ocl_need_in(p, 2))) return s;
        if ((s = ocl_const_ints(p, 1, starts, SI_MAX_DIMS, &ns)) || (s = ocl_const_ints(p, 2, ends, SI_MAX_DIMS, &ne))) return s;
        if (has_in(p, 3) && (s = ocl_const_ints(p, 3, axes, SI_MAX_DIMS, &na))) return s;
        if (has_in(p, 4) && (s = ocl_const_ints(p, 4, steps, SI_MAX_DIMS, &nst))) return s;
    }
    if (ns < 0 || ne != ns) return ocl_err(p, SI_ERR_INVALID_ARG, "starts and ends differ in length");
    if (na >= 0 && na != ns) return ocl_err(p, SI_ERR_INVALID_ARG, "axes has %d values for %d starts", na, ns);
    if (nst >= 0 && nst != ns) return ocl_err(p, SI_ERR_INVALID_ARG, "steps has %d values for %d starts", nst, ns);
    int64_t st0[SI_MAX_DIMS], step[SI_MAX_DIMS], od[SI_MAX_DIMS];
    bool seen[SI_MAX_DIMS] = {false};
    for (int k = 0; k < nd; k++) {
        st0[k] = 0;
        step[k] = 1;
        od[k] = x->dims[k];
    }
    for (int i = 0; i < ns; i++) {
        int a;
        if ((s = ocl_norm_axis(p, na >= 0 ? axes[i] : i, nd, &a))) return s;
        if (seen[a]) return ocl_err(p, SI_ERR_INVALID_ARG, "axis %d appears twice", a);
        seen[a] = true;
        int64_t d = x->dims[a], b = starts[i], e = ends[i], t = nst >= 0 ? steps[i] : 1;
        if (t == 0) return ocl_err(p, SI_ERR_INVALID_ARG, "step 0");
        if (b < 0) b = b < -d ? 0 : b + d;
        if (e < 0) e = e < -d ? -1 : e + d;
        int64_t cnt;
        if (t > 0) {
            b = SI_MIN(b, d);
            e = SI_MAX((int64_t)0, SI_MIN(e, d));
            cnt = e > b ? (e - b + t - 1) / t : 0;
        } else {
            if (ends[i] < -d) e = -1;
            b = SI_MIN(b, d - 1);
            e = SI_MIN(e, d - 1);
            cnt = b > e ? (b - e + (-t) - 1) / (-t) : 0;
        }
        if (cnt < 0) cnt = 0;
        st0[a] = cnt ? b : 0;
        step[a] = t;
        od[a] = cnt;
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t ist[SI_MAX_DIMS], sst[SI_MAX_DIMS], dst[SI_MAX_DIMS], soff = 0;
    si_strides(nd, x->dims, ist);
    si_strides(nd, od, dst);
    for (int k = 0; k < nd; k++) {
        soff += st0[k] * ist[k];
        sst[k] = ist[k] * step[k];
    }
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), nd, od, sst, dst, soff, 0);
}

si_result ocl_plan_expand(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_need_in(p, 1)) || (s = ocl_max_inputs(p, 2)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int64_t sh[SI_MAX_DIMS], od[SI_MAX_DIMS];
    int n, nd;
    if ((s = ocl_const_ints(p, 1, sh, SI_MAX_DIMS, &n))) return s;
    if ((s = ocl_bcast(p, x->ndim, x->dims, n, sh, &nd, od))) return s;
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t sst[SI_MAX_DIMS], dst[SI_MAX_DIMS];
    si_broadcast_strides(x->ndim, x->dims, nd, od, sst);
    si_strides(nd, od, dst);
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), nd, od, sst, dst, 0, 0);
}

si_result ocl_plan_tile(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_need_in(p, 1)) || (s = ocl_max_inputs(p, 2)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim, n;
    int64_t rep[SI_MAX_DIMS];
    if ((s = ocl_const_ints(p, 1, rep, SI_MAX_DIMS, &n))) return s;
    if (n != nd) return ocl_err(p, SI_ERR_INVALID_ARG, "repeats has %d values for rank %d", n, nd);
    int64_t od[SI_MAX_DIMS], ist[SI_MAX_DIMS], ost[SI_MAX_DIMS];
    for (int k = 0; k < nd; k++) {
        if (rep[k] < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "negative repeat");
        od[k] = x->dims[k] * rep[k];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    /* view the output as [rep0, in0, rep1, in1, ...]: the repeat dims read the input with stride 0 */
    si_strides(nd, x->dims, ist);
    si_strides(nd, od, ost);
    int64_t dims[SI_MAX_DIMS * 2], sst[SI_MAX_DIMS * 2], dst[SI_MAX_DIMS * 2];
    for (int k = 0; k < nd; k++) {
        dims[2 * k] = rep[k];
        dims[2 * k + 1] = x->dims[k];
        sst[2 * k] = 0;
        sst[2 * k + 1] = ist[k];
        dst[2 * k] = x->dims[k] * ost[k];
        dst[2 * k + 1] = ost[k];
    }
    return emit_copy(p, arg_val(x->vid), arg_val(p->out[0].vid), 2 * nd, dims, sst, dst, 0, 0);
}

si_result ocl_plan_pad(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int nd = x->ndim, n, na = -1;
    int64_t pads[2 * SI_MAX_DIMS], axes[SI_MAX_DIMS];
    float value = 0;
    if (p->node->opset < 11) {
        if ((s = ocl_max_inputs(p, 1)) || (s = ocl_attr_ints(p, p->node->opset < 2 ? "paddings" : "pads", pads, 2 * SI_MAX_DIMS, &n))) return s;
        value = si_attr_float(p->node, "value", 0.0f);
    } else {
        if ((s = ocl_max_inputs(p, 4)) || (s = ocl_need_in(p, 1)) || (s = ocl_const_ints(p, 1, pads, 2 * SI_MAX_DIMS, &n))) return s;
        if (has_in(p, 2) && dcount(&p->in[2]) > 0 && (s = ocl_const_float(p, 2, &value))) return s;
        if (has_in(p, 3) && (s = ocl_const_ints(p, 3, axes, SI_MAX_DIMS, &na))) return s;
    }
    const char *mode = si_attr_str(p->node, "mode", "constant");
    int mcode = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2 : !strcmp(mode, "wrap") ? 3 : -1;
    if (mcode < 0) return ocl_err(p, SI_ERR_UNSUPPORTED, "mode '%s' is not supported", mode);
    int64_t pb[SI_MAX_DIMS] = {0}, pe[SI_MAX_DIMS] = {0};
    int nax = na >= 0 ? na : nd;
    if (n != 2 * nax) return ocl_err(p, SI_ERR_INVALID_ARG, "pads has %d values for %d axes", n, nax);
    for (int i = 0; i < nax; i++) {
        int a = i;
        if (na >= 0 && (s = ocl_norm_axis(p, axes[i], nd, &a))) return s;
        pb[a] = pads[i];
        pe[a] = pads[nax + i];
    }
    int64_t od[SI_MAX_DIMS], xst[SI_MAX_DIMS];
    si_strides(nd, x->dims, xst);
    int meta[2 + 5 * SI_MAX_DIMS];
    meta[0] = nd;
    meta[1] = mcode;
    for (int k = 0; k < nd; k++) {
        od[k] = x->dims[k] + pb[k] + pe[k];
        if (od[k] < 0) return ocl_err(p, SI_ERR_INVALID_ARG, "pads remove more than dimension %d holds", k);
        /* negative pads crop: the kept input is [lo, lo + len) */
        int64_t lo = SI_MAX((int64_t)0, -pb[k]), len = x->dims[k] - lo - SI_MAX((int64_t)0, -pe[k]);
        if (mcode && len <= 0 && od[k] > 0) return ocl_err(p, SI_ERR_INVALID_ARG, "mode '%s' cannot pad an empty dimension %d", mode, k);
        meta[2 + k] = (int)od[k];
        meta[2 + nd + k] = (int)SI_MAX(len, (int64_t)0);
        meta[2 + 2 * nd + k] = (int)SI_MAX(pb[k], (int64_t)0);
        meta[2 + 3 * nd + k] = (int)lo;
        meta[2 + 4 * nd + k] = (int)xst[k];
    }
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int mid;
    if ((s = ocl_meta(p, meta, 2 + 5 * nd, &mid))) return s;
    ocl_step st;
    st_init(&st, "pad_nd");
    a_val(&st, x->vid);
    a_val(&st, p->out[0].vid);
    a_int(&st, si_shape_count(nd, od));
    a_meta(&st, mid);
    a_flt(&st, value);
    return ocl_emit_1d(p, &st, si_shape_count(nd, od));
}

/* Gather with float32 data and int32/int64 indices (constants, or model inputs checked before each run). */
si_result ocl_plan_gather(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_need_in(p, 1)) || (s = ocl_max_inputs(p, 2)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0], *ix = &p->in[1];
    if (ix->dtype != SI_I64 && ix->dtype != SI_I32)
        return ocl_err(p, SI_ERR_UNSUPPORTED, "indices have element type %s; int32 or int64 expected", si_dtype_name(ix->dtype));
    if (x->ndim < 1) return ocl_err(p, SI_ERR_INVALID_ARG, "data must have rank 1 or more");
    int axis;
    if ((s = ocl_norm_axis(p, si_attr_int(p->node, "axis", 0), x->ndim, &axis))) return s;
    int nd = x->ndim - 1 + ix->ndim;
    if (nd > SI_MAX_DIMS) return ocl_err(p, SI_ERR_UNSUPPORTED, "output rank %d exceeds %d", nd, SI_MAX_DIMS);
    int64_t od[SI_MAX_DIMS];
    int o = 0;
    for (int k = 0; k < axis; k++) od[o++] = x->dims[k];
    for (int k = 0; k < ix->ndim; k++) od[o++] = ix->dims[k];
    for (int k = axis + 1; k < x->ndim; k++) od[o++] = x->dims[k];
    if ((s = ocl_set_out(p, 0, nd, od))) return s;
    int64_t len = x->dims[axis], nidx = dcount(ix), inner = si_shape_count(x->ndim - axis - 1, x->dims + axis + 1);
    if (nidx > INT_MAX) return ocl_err(p, SI_ERR_UNSUPPORTED, "too many indices");
    if (ix->cval) {
        for (int64_t i = 0; i < nidx; i++) {
            int64_t k = si_load_i64(ix->cval->dtype, ix->cval->data, i);
            if (k < -len || k >= len) return ocl_err(p, SI_ERR_INVALID_ARG, "index %lld is out of range for a dimension of %lld", (long long)k, (long long)len);
        }
    } else if ((s = ocl_index_check(p, 1, len))) {
        return s;
    }
    if (!has_out(p, 0)) return SI_OK;
    ocl_step st;
    st_init(&st, ix->dtype == SI_I64 ? "gather_i64" : "gather_i32");
    a_val(&st, x->vid);
    a_val(&st, ix->vid);
    a_val(&st, p->out[0].vid);
    a_int(&st, dcount(&p->out[0]));
    a_int(&st, nidx);
    a_int(&st, len);
    a_int(&st, inner);
    return ocl_emit_1d(p, &st, dcount(&p->out[0]));
}

// --- Resize / Upsample ------------------------------------------------------------------------------------------
/* The geometry and the taps are REF's (ops/resize.c: si_resize_prepare, si_resize_taps); only the weighted sums
 * run on the device. */

/* Resize/Upsample geometry, read from this node's constants; scales, sizes and roi must be constants here. */
static si_result resize_prep(ocl_plan *p, si_resize *q) {
    const si_resize_form form = si_resize_form_of(p->node);
    si_result s = ocl_need_f32(p, 0);
    if (s || (s = ocl_max_outputs(p, 1)) || (s = ocl_max_inputs(p, form == SI_RESIZE_FULL ? 4 : 2))) return s;
    si_tensor desc[OCL_MAX_IO];
    const si_tensor *ins[OCL_MAX_IO];
    for (int k = 0; k < p->n_in; k++) {
        ins[k] = NULL;
        if (!has_in(p, k)) continue;
        if (p->in[k].cval) { ins[k] = p->in[k].cval; continue; }
        memset(&desc[k], 0, sizeof desc[k]);
        desc[k].dtype = p->in[k].dtype;
        desc[k].ndim = p->in[k].ndim < 0 ? 0 : p->in[k].ndim;
        memcpy(desc[k].dims, p->in[k].dims, sizeof desc[k].dims);
        desc[k].nbytes = (size_t)dcount(&p->in[k]) * si_dtype_size(desc[k].dtype);
        ins[k] = &desc[k];
    }
    si_kctx c = {.node = p->node, .opset = p->node->opset, .n_in = p->n_in, .in = ins, .n_out = 0, .out = NULL};
    s = si_resize_prepare(&c, form, q);
    if (s == SI_SHAPE_DYNAMIC) return ocl_err(p, SI_ERR_UNSUPPORTED, "scales, sizes and roi must be constants");
    return s;
}

/* Taps of axis d into tab (o * (1 + 2 * nt) ints per output coordinate: outside flag, then index and float
 * weight bits per tap); returns nt. */
static int64_t resize_taps(const si_resize *q, int d, int *tab, bool count_only) {
    const int64_t nt = si_resize_ntaps(q, d);
    if (count_only || nt > 64) return nt;
    int64_t idx[64];
    double w[64];
    for (int64_t o = 0; o < q->out[d]; o++) {
        int *e = tab + o * (1 + 2 * nt);
        bool outside;
        si_resize_taps(q, d, o, idx, w, &outside);
        e[0] = outside;
        for (int64_t k = 0; k < nt; k++) {
            e[1 + 2 * k] = (int)idx[k];
            e[2 + 2 * k] = f2bits((float)w[k]);
        }
    }
    return nt;
}

si_result ocl_plan_resize(ocl_plan *p, const void *arg) {
    (void)arg;
    si_resize q;
    si_result s = resize_prep(p, &q);
    if (s) return s;
    const ocl_desc *x = &p->in[0];
    int r = q.rank;
    if ((s = ocl_set_out(p, 0, r, q.out))) return s;
    if (!has_out(p, 0)) return SI_OK;
    int64_t n = dcount(&p->out[0]);
    if (n == 0) return SI_OK;
    if (dcount(x) == 0) return ocl_err(p, SI_ERR_INVALID_ARG, "cannot resize an empty input to a non-empty output");
    int64_t nts[SI_MAX_DIMS], total = 0;
    for (int d = 0; d < r; d++) {
        nts[d] = resize_taps(&q, d, NULL, true);
        if (nts[d] > 64) return ocl_err(p, SI_ERR_UNSUPPORTED, "%lld interpolation taps per axis are too many", (long long)nts[d]);
        total += q.out[d] * (1 + 2 * nts[d]);
    }
    if (total > (1 << 24)) return ocl_err(p, SI_ERR_UNSUPPORTED, "interpolation tables too large");
    if (!p->build) return SI_OK; /* the tables are only built when compiling */
    int *tab = si_malloc(sizeof(int) * (size_t)(total + 1));
    if (!tab) return si_err(SI_ERR_NO_MEM, "out of memory");
    int meta[2 + 5 * SI_MAX_DIMS];
    int64_t xs[SI_MAX_DIMS], off = 0;
    si_strides(r, x->dims, xs);
    meta[0] = r;
    for (int d = 0; d < r; d++) {
        resize_taps(&q, d, tab + off, false);
        meta[1 + d] = (int)q.out[d];
        meta[1 + r + d] = (int)xs[d];
        meta[1 + 3 * r + d] = (int)nts[d];
        meta[1 + 4 * r + d] = (int)off;
        off += q.out[d] * (1 + 2 * nts[d]);
    }
    for (int d = 0; d < r; d++) meta[1 + 2 * r + d] = 0;
    meta[1 + 5 * r] = f2bits(q.extrap);
    int mid, tid;
    s = ocl_meta(p, meta, 2 + 5 * r, &mid);
    if (!s) s = ocl_meta(p, tab, (int)total, &tid);
    si_free(tab);
    if (s) return s;
    ocl_step st;
    st_init(&st, "resize");
    a_val(&st, x->vid);
    a_val(&st, p->out[0].vid);
    a_int(&st, n);
    a_meta(&st, mid);
    a_meta(&st, tid);
    return ocl_emit_1d(p, &st, n);
}

/* Shape and Size: known at compile time, so their outputs become constants of the compiled model. */
si_result ocl_plan_shape(ocl_plan *p, const void *arg) {
    (void)arg;
    si_result s = ocl_need_in(p, 0);
    if (s || (s = ocl_max_inputs(p, 1)) || (s = ocl_max_outputs(p, 1))) return s;
    const ocl_desc *x = &p->in[0];
    int64_t vals[SI_MAX_DIMS], n = 0;
    if (si_node_is(p->node, SI_OP_SIZE)) {
        vals[n++] = dcount(x);
    } else {
        int64_t b = si_attr_int(p->node, "start", 0), e = si_attr_int(p->node, "end", x->ndim);
        if (b < 0) b += x->ndim;
        if (e < 0) e += x->ndim;
        b = SI_MAX((int64_t)0, SI_MIN(b, (int64_t)x->ndim));
        e = SI_MAX((int64_t)0, SI_MIN(e, (int64_t)x->ndim));
        for (int64_t i = b; i < e; i++) vals[n++] = x->dims[i];
    }
    bool size = si_node_is(p->node, SI_OP_SIZE);
    if ((s = ocl_set_out(p, 0, size ? 0 : 1, &n))) return s;
    p->out[0].dtype = SI_I64;
    if (!has_out(p, 0)) return SI_OK;
    return ocl_const_out(p, 0, vals, (int)n);
}
