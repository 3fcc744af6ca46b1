/*
 * ops.c — the op registry: the names of oplist.h by id, and the definitions of the family files
 * (SI_OP_FAMILIES), searched by domain, type and opset. Nodes are resolved once, by si_graph_finalize; everything
 * after that goes by node->op (and node->op->id).
 */
#include "ops/ops.h"


static const char *const op_names[] = {
#define SI_OP_NAME_(id, name, domain) name,
    SI_OP_LIST(SI_OP_NAME_)
#undef SI_OP_NAME_
};
static const char *const op_domains[] = {
#define SI_OP_DOMAIN_(id, name, domain) domain,
    SI_OP_LIST(SI_OP_DOMAIN_)
#undef SI_OP_DOMAIN_
};
_Static_assert(SI_ARRAY_LEN(op_names) == SI_OP_COUNT, "op_names must name every op of oplist.h");
_Static_assert(SI_ARRAY_LEN(op_domains) == SI_OP_COUNT, "op_domains must cover every op of oplist.h");

static const si_op_table *const families[] = {
#define SI_OP_FAMILY_(fam) &si_ops_##fam,
    SI_OP_FAMILIES(SI_OP_FAMILY_)
#undef SI_OP_FAMILY_
};

bool si_op_partial(const si_op_def *d) {
    for (size_t f = 0; f < SI_ARRAY_LEN(families); f++)
        if (d >= families[f]->defs && d < families[f]->defs + families[f]->n) return families[f]->partial;
    return false;
}

const char *si_op_name(si_op_id id) { return (int)id >= 0 && id < SI_OP_COUNT ? op_names[id] : "?"; }

const char *si_op_domain(si_op_id id) { return (int)id >= 0 && id < SI_OP_COUNT ? op_domains[id] : "?"; }

static bool default_domain(const char *d) { return !d || !*d || !strcmp(d, "ai.onnx"); }

static bool same_domain(const char *a, const char *b) {
    return default_domain(a) ? default_domain(b) : (b && !strcmp(a, b));
}

int si_op_id_of(const char *domain, const char *op_type) {
    if (!op_type) return -1;
    for (int i = 0; i < SI_OP_COUNT; i++)
        if (!strcmp(op_names[i], op_type) && same_domain(op_domains[i], domain)) return i;
    return -1;
}

const si_op_def *si_op_find(const char *domain, const char *op_type, int opset) {
    int id = si_op_id_of(domain, op_type);
    if (id < 0) return NULL;
    for (size_t f = 0; f < SI_ARRAY_LEN(families); f++)
        for (int i = 0; i < families[f]->n; i++) {
            const si_op_def *d = &families[f]->defs[i];
            if ((int)d->id == id && (d->since <= 0 || opset >= d->since) && (d->until <= 0 || opset <= d->until))
                return d;
        }
    return NULL;
}

const si_op_def *const *si_op_all(int *count) {
    enum { CAP = 2 * SI_OP_COUNT };
    static const si_op_def *all[CAP];
    static int n = -1;
    if (n < 0) { /* built once; racing threads write identical contents */
        int k = 0;
        for (size_t f = 0; f < SI_ARRAY_LEN(families); f++)
            for (int i = 0; i < families[f]->n && k < CAP; i++) all[k++] = &families[f]->defs[i];
        n = k;
    }
    *count = n;
    return all;
}

/* UNSUPPORTED: node's op does not take input k (element type of t). */
static si_result type_refused(const si_node *node, const si_tensor *t, int k) {
    if (k == 0)
        return si_err(SI_ERR_UNSUPPORTED, "op %s does not support element type %s", node->op_type, si_dtype_name(t->dtype));
    return si_err(SI_ERR_UNSUPPORTED, "op %s does not support element type %s for input %d", node->op_type,
                  si_dtype_name(t->dtype), k);
}

si_result si_op_supported(const si_node *node, int n_in, const si_tensor *const *in) {
    const si_op_def *op = node->op;
    if (!op) {
        const char *dom = node->domain[0] ? node->domain : "";
        if (si_op_id_of(node->domain, node->op_type) >= 0)
            return si_err(SI_ERR_UNSUPPORTED, "op %s%s%s is not implemented for opset %d", dom, *dom ? "." : "",
                          node->op_type, node->opset);
        return si_err(SI_ERR_UNSUPPORTED, "op %s%s%s is not implemented", dom, *dom ? "." : "", node->op_type);
    }
    for (int k = 0; k < n_in; k++) { /* narrow types only where an op names them (types[k]) */
        if (!in[k] || !si_dtype_is_narrow(in[k]->dtype) ||
            (k < SI_OP_TYPED_INPUTS && (op->types[k] & SI_T(in[k]->dtype))))
            continue;
        return type_refused(node, in[k], k);
    }
    for (int k = 0; k < n_in && k < SI_OP_TYPED_INPUTS; k++) {
        if (!op->types[k] || !in[k] || in[k]->dtype == SI_DTYPE_UNDEFINED || (op->types[k] & SI_T(in[k]->dtype)))
            continue;
        return type_refused(node, in[k], k);
    }
    if (op->check) {
        si_kctx c = {.node = node, .opset = node->opset, .n_in = n_in, .in = in, .n_out = 0, .out = NULL};
        return op->check(&c);
    }
    return SI_OK;
}

si_result si_op_runnable(const si_node *node) {
    if (!node->op) return si_op_supported(node, 0, NULL); /* names what is not implemented */
    if (node->op->run) return SI_OK;
    if (node->op->flags & (SI_OPF_SUBGRAPH | SI_OPF_HOST))
        return si_err(SI_ERR_UNSUPPORTED, "%s: control flow runs on the host (the executor), not in a device", node->op_type);
    return si_err(SI_ERR_UNSUPPORTED, "%s: there is no kernel for it", node->op_type);
}
