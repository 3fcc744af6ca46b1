/*
 * einsum.c — Einsum: any equation of up to 52 labels and broadcast (ellipsis) dimensions, computed in double
 * for floats and in 64-bit integers for integers.
 */
#include "ops/nn.h"

#include <math.h>
#include <string.h>

static int nn_ein_label(char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return 26 + (ch - 'a');
    return -1;
}

/* Parses one term: letters and at most one "..."; labels[] receives letter labels with -2 marking where the
 * ellipsis stands. Returns the number of entries or -1 on a syntax error. */
static int nn_ein_term(const char *s, const char *end, int *labels, int max) {
    int n = 0;
    bool ell = false;
    while (s < end) {
        if (*s == ' ') {
            s++;
            continue;
        }
        if (*s == '.') {
            if (end - s < 3 || s[1] != '.' || s[2] != '.' || ell) return -1;
            ell = true;
            if (n >= max) return -1;
            labels[n++] = -2;
            s += 3;
            continue;
        }
        const int l = nn_ein_label(*s);
        if (l < 0 || n >= max) return -1;
        labels[n++] = l;
        s++;
    }
    return n;
}

si_result si_einsum_prepare(const si_kctx *c, si_einsum *e) {
    si_result st;
    const char *eq = si_attr_str(c->node, "equation", NULL);
    if (!eq) return si_op_err(c, SI_ERR_INVALID_ARG, "attribute equation is required");
    if (c->n_in < 1) return si_op_err(c, SI_ERR_INVALID_ARG, "at least one input is required");
    if (c->n_in > SI_EIN_MAXOPS)
        return si_op_err(c, SI_ERR_UNSUPPORTED, "more than %d operands are not supported", SI_EIN_MAXOPS);
    e->nops = c->n_in;
    for (int i = 0; i < e->nops; i++) {
        if ((st = si_need_input(c, i, false))) return st;
        if ((st = si_check_type(c, si_in(c, i)->dtype, SI_T_NUMERIC, "input"))) return st;
        if (i > 0 && (st = si_same_type(c, si_in(c, 0), si_in(c, i), "input"))) return st;
    }
    const char *arrow = strstr(eq, "->");
    const char *lhs_end = arrow ? arrow : eq + strlen(eq);
    for (int l = 0; l < SI_EIN_LABELS; l++) e->size[l] = SI_EIN_UNUSED;
    int count[SI_EIN_LETTERS] = {0};
    int ell_rank = 0, terms[SI_EIN_MAXOPS][SI_MAX_DIMS + 1], nterm[SI_EIN_MAXOPS];
    /* first pass: split terms and find the broadcast rank */
    const char *s = eq;
    for (int i = 0; i < e->nops; i++) {
        const char *t_end = s;
        while (t_end < lhs_end && *t_end != ',') t_end++;
        if (i < e->nops - 1 && t_end >= lhs_end)
            return si_op_err(c, SI_ERR_INVALID_ARG, "equation '%s' has fewer terms than the %d inputs", eq, e->nops);
        if (i == e->nops - 1 && t_end != lhs_end)
            return si_op_err(c, SI_ERR_INVALID_ARG, "equation '%s' has more terms than the %d inputs", eq, e->nops);
        nterm[i] = nn_ein_term(s, t_end, terms[i], SI_MAX_DIMS + 1);
        if (nterm[i] < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "cannot parse equation '%s'", eq);
        const si_tensor *x = si_in(c, i);
        int letters = 0;
        bool ell = false;
        for (int k = 0; k < nterm[i]; k++) {
            if (terms[i][k] == -2)
                ell = true;
            else {
                letters++;
                count[terms[i][k]]++;
            }
        }
        if (letters > x->ndim || (!ell && letters != x->ndim))
            return si_op_err(c, SI_ERR_INVALID_ARG, "term %d of '%s' does not match input rank %d", i, eq, x->ndim);
        if (ell) ell_rank = SI_MAX(ell_rank, x->ndim - letters);
        s = t_end + 1;
    }
    /* second pass: labels per dimension and sizes */
    for (int i = 0; i < e->nops; i++) {
        const si_tensor *x = si_in(c, i);
        int letters = 0, dim = 0;
        for (int k = 0; k < nterm[i]; k++) letters += terms[i][k] != -2;
        const int er = x->ndim - letters;
        for (int k = 0; k < nterm[i]; k++) {
            if (terms[i][k] == -2) {
                for (int j = 0; j < er; j++) e->lab[i][dim++] = SI_EIN_LETTERS + (ell_rank - er + j);
            } else {
                e->lab[i][dim++] = terms[i][k];
            }
        }
        for (int d = 0; d < x->ndim; d++) {
            const int l = e->lab[i][d];
            const int64_t n = x->dims[d], was = e->size[l];
            if (was == SI_EIN_UNUSED)
                e->size[l] = n;
            else if (!si_dim_broadcast(was, n, &e->size[l])) /* 1 broadcasts (a 1 and a 0 give 0) */
                return si_op_err(c, SI_ERR_INVALID_ARG, "dimension sizes %lld and %lld of one label differ",
                                 (long long)n, (long long)was);
        }
    }
    /* output labels */
    e->nout = 0;
    if (arrow) {
        int ol[SI_MAX_DIMS + 1];
        int n = nn_ein_term(arrow + 2, arrow + strlen(arrow), ol, SI_MAX_DIMS + 1);
        if (n < 0) return si_op_err(c, SI_ERR_INVALID_ARG, "cannot parse the output of equation '%s'", eq);
        bool used[SI_EIN_LABELS] = {false};
        for (int k = 0; k < n; k++) {
            if (ol[k] == -2) {
                for (int j = 0; j < ell_rank; j++) {
                    if (e->nout >= SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank too large");
                    e->out[e->nout++] = SI_EIN_LETTERS + j;
                }
                continue;
            }
            if (e->size[ol[k]] == SI_EIN_UNUSED || used[ol[k]])
                return si_op_err(c, SI_ERR_INVALID_ARG, "output label '%c' of '%s' is unknown or repeated",
                                 ol[k] < 26 ? 'A' + ol[k] : 'a' + ol[k] - 26, eq);
            used[ol[k]] = true;
            if (e->nout >= SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank too large");
            e->out[e->nout++] = ol[k];
        }
    } else {
        for (int j = 0; j < ell_rank; j++) e->out[e->nout++] = SI_EIN_LETTERS + j;
        for (int l = 0; l < SI_EIN_LETTERS; l++)
            if (count[l] == 1) {
                if (e->nout >= SI_MAX_DIMS) return si_op_err(c, SI_ERR_UNSUPPORTED, "output rank too large");
                e->out[e->nout++] = l;
            }
    }
    return SI_OK;
}

SI_OP_PLANNED(einsum_infer, si_einsum, e, si_einsum_prepare) {
    int64_t dims[SI_MAX_DIMS];
    for (int k = 0; k < e->nout; k++) dims[k] = e->size[e->out[k]];
    return si_set_out(c, 0, si_in(c, 0)->dtype, e->nout, dims);
}

SI_OP_PLANNED(einsum_run, si_einsum, e, si_einsum_prepare) {
    si_tensor *y = si_out(c, 0);
    if (!y || si_count(y) == 0) return SI_OK;
    /* loop labels: the output labels, then the summed ones */
    int loop[SI_EIN_LABELS], nl = 0;
    bool is_out[SI_EIN_LABELS] = {false};
    for (int k = 0; k < e->nout; k++) {
        loop[nl++] = e->out[k];
        is_out[e->out[k]] = true;
    }
    for (int l = 0; l < SI_EIN_LABELS; l++)
        if (e->size[l] != SI_EIN_UNUSED && !is_out[l]) loop[nl++] = l;
    int64_t inner = 1;
    for (int k = e->nout; k < nl; k++) inner *= e->size[loop[k]];
    /* per operand stride of each loop label (repeated labels add up: diagonals; broadcast dims: 0) */
    int64_t(*st_)[SI_EIN_LABELS] = si_calloc(SI_EIN_MAXOPS, sizeof(*st_));
    const bool isf = si_dtype_is_float(y->dtype);
    double *ops_d[SI_EIN_MAXOPS] = {NULL};
    int64_t *ops_i[SI_EIN_MAXOPS] = {NULL};
    bool ok = st_ != NULL;
    for (int i = 0; ok && i < e->nops; i++) {
        const si_tensor *x = si_in(c, i);
        int64_t stride = 1;
        for (int d = x->ndim - 1; d >= 0; d--) {
            const int l = e->lab[i][d];
            for (int k = 0; k < nl; k++)
                if (loop[k] == l && !(x->dims[d] == 1 && e->size[l] != 1)) st_[i][k] += stride;
            stride *= x->dims[d];
        }
        if (isf)
            ok = (ops_d[i] = si_tensor_to_f64(x)) != NULL;
        else
            ok = (ops_i[i] = si_tensor_to_i64(x)) != NULL;
    }
    if (ok) {
        const int64_t nouter = si_count(y);
        int64_t idx[SI_EIN_LABELS] = {0}, off[SI_EIN_MAXOPS] = {0};
        for (int64_t o = 0; o < nouter; o++) {
            double accd = 0;
            uint64_t acci = 0;
            for (int64_t s = 0; s < inner; s++) {
                if (isf) {
                    double v = 1;
                    for (int i = 0; i < e->nops; i++) v *= ops_d[i][off[i]];
                    accd += v;
                } else {
                    uint64_t v = 1;
                    for (int i = 0; i < e->nops; i++) v *= (uint64_t)ops_i[i][off[i]];
                    acci += v;
                }
                /* advance the summed labels (innermost) and, after the last one, the output labels */
                for (int k = nl - 1; k >= 0; k--) {
                    if (k < e->nout && s + 1 < inner) break;
                    idx[k]++;
                    for (int i = 0; i < e->nops; i++) off[i] += st_[i][k];
                    if (idx[k] < e->size[loop[k]]) break;
                    for (int i = 0; i < e->nops; i++) off[i] -= st_[i][k] * idx[k];
                    idx[k] = 0;
                }
            }
            if (isf)
                si_store_f64(y->dtype, y->data, o, accd);
            else
                si_store_i64(y->dtype, y->data, o, (int64_t)acci);
        }
    }
    for (int i = 0; i < e->nops; i++) {
        SI_FREE_ALL(ops_d[i], ops_i[i]);
    }
    si_free(st_);
    return ok ? SI_OK : si_op_nomem(c);
}

/* =========================================================================================================
 * Op table
 */

static const si_op_def defs[] = {
    SI_OP_DEF(EINSUM, SI_T_NUMERIC, einsum_infer, einsum_run),
};

SI_OP_FAMILY_PARTIAL(einsum, defs);
