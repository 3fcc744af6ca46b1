/*
 * detect.c — object detection: NonMaxSuppression (opsets 10 and 11, which only differ in their documentation).
 *
 * For each batch and class: the boxes whose score is above score_threshold, highest score first (ties: the lower
 * box index first), each kept unless its intersection over union with a box already kept exceeds iou_threshold,
 * at most max_output_boxes_per_class of them (0, the default, selects nothing). The output's length depends on
 * the values, so shape inference runs the selection (at compile time only constant inputs allow it).
 */
#include "ops/ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct nms_plan {
    int64_t nb, nbox, ncls, max_out;
    double iou, score_min;
    bool has_score_min, center;
} nms_plan;

static si_result nms_prep(const si_kctx *c, nms_plan *p) {
    si_result s;
    if ((s = si_inputs_typed(c, 2, 2, (const uint32_t[]){SI_T_FLOATS, SI_T_LIKE0}, (const char *const[]){"boxes", "scores"}))) return s;
    const si_tensor *b = c->in[0], *sc = c->in[1];
    if (b->ndim != 3 || b->dims[2] != 4)
        return si_op_err(c, SI_ERR_INVALID_ARG, "boxes must be [num_batches, spatial_dimension, 4], got rank %d", b->ndim);
    if (sc->ndim != 3 || sc->dims[0] != b->dims[0] || sc->dims[2] != b->dims[1])
        return si_op_err(c, SI_ERR_INVALID_ARG, "scores must be [num_batches, num_classes, spatial_dimension] = [%lld, C, %lld]",
                         (long long)b->dims[0], (long long)b->dims[1]);
    p->nb = b->dims[0];
    p->nbox = b->dims[1];
    p->ncls = sc->dims[1];
    int64_t cpb = si_attr_int(c->node, "center_point_box", 0);
    if (cpb != 0 && cpb != 1) return si_op_err(c, SI_ERR_INVALID_ARG, "center_point_box must be 0 or 1, got %lld", (long long)cpb);
    p->center = cpb == 1;
    p->max_out = 0;
    p->iou = 0;
    p->has_score_min = false;
    const si_tensor *t;
    if ((t = si_in_nonempty(c, 2))) {
        if ((s = si_need_input(c, 2, true)) || (s = si_tensor_scalar_i64(c, t, "max_output_boxes_per_class", &p->max_out))) return s;
        if (p->max_out < 0) p->max_out = 0;
    }
    if ((t = si_in_nonempty(c, 3))) {
        if ((s = si_need_input(c, 3, true))) return s;
        if (si_count(t) != 1 || !si_dtype_is_float(t->dtype))
            return si_op_err(c, SI_ERR_INVALID_ARG, "iou_threshold must be one float value");
        p->iou = si_load_f64(t->dtype, t->data, 0);
        if (!(p->iou >= 0 && p->iou <= 1)) return si_op_err(c, SI_ERR_INVALID_ARG, "iou_threshold %g is not in [0, 1]", p->iou);
    }
    if ((t = si_in_nonempty(c, 4))) {
        if ((s = si_need_input(c, 4, true))) return s;
        if (si_count(t) != 1 || !si_dtype_is_float(t->dtype))
            return si_op_err(c, SI_ERR_INVALID_ARG, "score_threshold must be one float value");
        p->score_min = si_load_f64(t->dtype, t->data, 0);
        p->has_score_min = true;
    }
    return SI_OK;
}

/* Box i of batch bt as (y1, x1, y2, x2) with y1 <= y2, x1 <= x2. */
static void nms_box(const nms_plan *p, const si_tensor *b, int64_t bt, int64_t i, double *out) {
    double v[4];
    const int64_t at = (bt * p->nbox + i) * 4;
    for (int k = 0; k < 4; k++) v[k] = b->dtype == SI_F32 ? (double)((const float *)b->data)[at + k] : si_load_f64(b->dtype, b->data, at + k);
    if (p->center) { /* x_center, y_center, width, height */
        out[0] = v[1] - v[3] / 2, out[2] = v[1] + v[3] / 2;
        out[1] = v[0] - v[2] / 2, out[3] = v[0] + v[2] / 2;
    } else {
        out[0] = fmin(v[0], v[2]), out[2] = fmax(v[0], v[2]);
        out[1] = fmin(v[1], v[3]), out[3] = fmax(v[1], v[3]);
    }
}

static bool nms_overlaps(const double *a, const double *b, double thr) {
    double ih = fmin(a[2], b[2]) - fmax(a[0], b[0]), iw = fmin(a[3], b[3]) - fmax(a[1], b[1]);
    if (ih <= 0 || iw <= 0) return false;
    double inter = ih * iw, aa = (a[2] - a[0]) * (a[3] - a[1]), ab = (b[2] - b[0]) * (b[3] - b[1]);
    double uni = aa + ab - inter;
    if (aa <= 0 || ab <= 0 || uni <= 0) return false;
    return inter / uni > thr;
}

typedef struct nms_cand {
    double score;
    int64_t index;
} nms_cand;

static int nms_cmp(const void *a_, const void *b_) {
    const nms_cand *a = a_, *b = b_;
    return SI_RANK_CMP(a->score, b->score, a->index, b->index);
}

/* Run the selection: the number of triples into *count, and the first cap triples into out (when not NULL). */
static si_result nms_select(const si_kctx *c, const nms_plan *p, int64_t *count, int64_t *out, int64_t cap) {
    const si_tensor *b = c->in[0], *sc = c->in[1];
    *count = 0;
    if (p->max_out == 0 || p->nbox == 0) return SI_OK;
    nms_cand *cand = si_malloc(sizeof(nms_cand) * (size_t)p->nbox);
    double *boxes = si_malloc(sizeof(double) * 4 * (size_t)p->nbox);
    int64_t *kept = si_malloc(sizeof(int64_t) * (size_t)p->nbox);
    if (!cand || !boxes || !kept) {
        SI_FREE_ALL(cand, boxes, kept);
        return si_op_nomem(c);
    }
    for (int64_t bt = 0; bt < p->nb; bt++) {
        for (int64_t i = 0; i < p->nbox; i++) nms_box(p, b, bt, i, boxes + 4 * i);
        for (int64_t cl = 0; cl < p->ncls; cl++) {
            int64_t nc = 0, nk = 0;
            const int64_t row = (bt * p->ncls + cl) * p->nbox;
            const float *f32 = sc->dtype == SI_F32 ? (const float *)sc->data + row : NULL;
            for (int64_t i = 0; i < p->nbox; i++) {
                double v = f32 ? (double)f32[i] : si_load_f64(sc->dtype, sc->data, row + i);
                if (isnan(v) || (p->has_score_min && !(v > p->score_min))) continue;
                cand[nc++] = (nms_cand){v, i};
            }
            qsort(cand, (size_t)nc, sizeof *cand, nms_cmp);
            for (int64_t j = 0; j < nc && nk < p->max_out; j++) {
                const double *bx = boxes + 4 * cand[j].index;
                bool drop = false;
                for (int64_t k = 0; k < nk && !drop; k++) drop = nms_overlaps(boxes + 4 * kept[k], bx, p->iou);
                if (drop) continue;
                kept[nk++] = cand[j].index;
                if (out && *count < cap) {
                    out[*count * 3] = bt;
                    out[*count * 3 + 1] = cl;
                    out[*count * 3 + 2] = cand[j].index;
                }
                ++*count;
            }
        }
    }
    SI_FREE_ALL(cand, boxes, kept);
    return SI_OK;
}

SI_OP_PLANNED(nms_infer, nms_plan, p, nms_prep) {
    si_result s = SI_OK;
    if (!si_has_values(c->in[0]) || !si_has_values(c->in[1])) return si_set_out_unknown(c, 0, SI_I64, 2);
    int64_t n;
    if ((s = nms_select(c, p, &n, NULL, 0))) return s;
    int64_t dims[2] = {n, 3};
    return si_set_out(c, 0, SI_I64, 2, dims);
}

SI_OP_PLANNED(nms_run, nms_plan, p, nms_prep) {
    si_result s = si_run_ready(c);
    if (s) return s;
    si_tensor *y = si_out(c, 0);
    if (!y) return SI_OK;
    /* one selection, writing at most the rows shape inference found room for */
    int64_t n;
    if (y->ndim != 2 || y->dims[1] != 3) return si_op_err(c, SI_ERR_INTERNAL, "output of shape other than [n, 3]");
    if ((s = nms_select(c, p, &n, y->data, y->dims[0]))) return s;
    if (y->dims[0] != n) return si_op_err(c, SI_ERR_INTERNAL, "the selection changed since shape inference");
    return SI_OK;
}

static const si_op_def defs[] = {
    SI_OP_DEF(NON_MAX_SUPPRESSION, SI_T_FLOATS, nms_infer, nms_run),
};

SI_OP_FAMILY(detect, defs);
