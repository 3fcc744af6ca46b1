/*
 * dim.c — the dimension algebra of partial shapes (ir.h): a dimension is a known size, a symbol or unknown.
 * Known operands give the exact result; an operand that is the identity of the operation (0 for +, 1 for *
 * and /) keeps the other operand, symbol included; everything else is unknown. Shape inference never
 * guesses: a dimension it reports as known or as a symbol is what the run will have.
 */
#include "ir/ir.h"

int64_t si_dim_add(int64_t a, int64_t b) {
    if (a >= 0 && b >= 0) return a > INT64_MAX - b ? INT64_MAX : a + b; /* saturate: si_set_out refuses it */
    if (b == 0) return a;
    if (a == 0) return b;
    return SI_DIM_UNKNOWN;
}

int64_t si_dim_sub(int64_t a, int64_t b) {
    if (a >= 0 && b >= 0) return a - b; /* may be negative: the caller says what is wrong */
    if (b == 0) return a;
    return SI_DIM_UNKNOWN;
}

int64_t si_dim_mul(int64_t a, int64_t b) {
    if (a >= 0 && b >= 0) return b && a > INT64_MAX / b ? INT64_MAX : a * b; /* saturate: si_set_out refuses it */
    if (a == 0 || b == 0) return 0;
    if (b == 1) return a;
    if (a == 1) return b;
    return SI_DIM_UNKNOWN;
}

int64_t si_dim_div(int64_t a, int64_t b, bool ceil) {
    if (b == 1) return a;
    if (a >= 0 && b > 0) return a / b + (ceil && a % b); /* not (a + b - 1) / b: a may be a saturated INT64_MAX */
    return SI_DIM_UNKNOWN;
}

int64_t si_dim_prod(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    bool unknown = false;
    for (int i = from; i < to; i++) {
        if (dims[i] == 0) return 0;
        if (dims[i] < 0) unknown = true;
        else if (!unknown) p *= dims[i];
    }
    if (!unknown) return p;
    /* one factor that is not known and the rest 1: that factor (a symbol stays a symbol) */
    int64_t only = 1;
    int n = 0;
    for (int i = from; i < to; i++)
        if (dims[i] != 1) {
            only = dims[i];
            n++;
        }
    return n == 1 ? only : SI_DIM_UNKNOWN;
}

int64_t si_dim_merge(int64_t a, int64_t b) {
    if (a >= 0) return a;
    if (b >= 0) return b;
    if (si_dim_sym_id(a) >= 0) return a;
    if (si_dim_sym_id(b) >= 0) return b;
    return SI_DIM_UNKNOWN;
}

bool si_dim_broadcast(int64_t a, int64_t b, int64_t *out) {
    if (a == b || b == 1) {
        *out = a;
        return true;
    }
    if (a == 1) {
        *out = b;
        return true;
    }
    if (a >= 0 && b >= 0) return false;
    /* one known size other than 1: the other is that size or 1 (else the run fails), the result is it */
    if (a >= 0) {
        *out = a;
        return true;
    }
    if (b >= 0) {
        *out = b;
        return true;
    }
    *out = SI_DIM_UNKNOWN; /* two different symbols, or unknown: either may be 1 */
    return true;
}

bool si_dims_known(int ndim, const int64_t *dims) {
    if (ndim < 0) return false;
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0) return false;
    return true;
}
