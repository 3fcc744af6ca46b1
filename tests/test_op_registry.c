/*
 * test_op_registry.c — the op registry (ops/oplist.h, ops/ops.c): every op of the list has exactly one
 * definition for every opset (versions tile the opsets without gaps or overlaps), names are unique, nodes
 * resolve to the version of their opset in si_graph_finalize, and flags replace the tests on op names.
 */
#include "ir/ir.h"
#include "ops/ops.h"

#include "si_test.h"

#define OPSET_LAST 30 /* beyond the newest ONNX opset */

static int covering(si_op_id id, int opset) {
    int count = 0, n = 0;
    const si_op_def *const *all = si_op_all(&n);
    for (int i = 0; i < n; i++)
        if (all[i]->id == id && (all[i]->since <= 0 || opset >= all[i]->since) &&
            (all[i]->until <= 0 || opset <= all[i]->until))
            count++;
    return count;
}

static void test_table(void) {
    int n = 0;
    const si_op_def *const *all = si_op_all(&n);
    CHECK(n >= SI_OP_COUNT);
    for (int i = 0; i < n; i++) {
        CHECK((int)all[i]->id >= 0 && all[i]->id < SI_OP_COUNT);
        CHECK(all[i]->infer && (all[i]->run || (all[i]->flags & (SI_OPF_SUBGRAPH | SI_OPF_HOST)))); /* run by the executor */
        CHECK(all[i]->until <= 0 || all[i]->until >= all[i]->since);
    }
    for (int id = 0; id < SI_OP_COUNT; id++) {
        for (int v = 1; v <= OPSET_LAST; v++) {
            int c = covering((si_op_id)id, v);
            if (c != 1) fprintf(stderr, "op %s at opset %d: %d definitions\n", si_op_name((si_op_id)id), v, c);
            CHECK(c == 1);
        }
        CHECK(si_op_id_of(si_op_domain((si_op_id)id), si_op_name((si_op_id)id)) == id); /* names are unique */
    }
}

static void test_find(void) {
    const si_op_def *c6 = si_op_find("", "Clip", 6), *c10 = si_op_find("", "Clip", 10);
    const si_op_def *c11 = si_op_find("ai.onnx", "Clip", 11), *c13 = si_op_find("", "Clip", 13);
    CHECK(c6 && c6 == c10 && c6->until == 10 && c6->id == SI_OP_CLIP);
    CHECK(c11 && c11 == c13 && c11->since == 11 && c11 != c10);
    const si_op_def *r10 = si_op_find("", "Resize", 10), *r18 = si_op_find("", "Resize", 18);
    CHECK(r10 && r18 && r10 != r18 && r10->id == SI_OP_RESIZE && r18->id == SI_OP_RESIZE);
    CHECK(si_op_find("", "ReduceSum", 12) != si_op_find("", "ReduceSum", 13));
    CHECK(si_op_find("", "ReduceMean", 13) == si_op_find("", "ReduceMean", 17));
    CHECK(si_op_find("", "NoSuchOp", 13) == NULL);
    CHECK(si_op_find("com.example", "Relu", 1) == NULL);
    CHECK(si_op_id_of("", "NoSuchOp") == -1);
    CHECK(si_op_find("", "Shape", 13)->flags & SI_OPF_SHAPE_ONLY);
    CHECK(si_op_find("", "Size", 13)->flags & SI_OPF_SHAPE_ONLY);
    CHECK(!(si_op_find("", "Relu", 13)->flags & SI_OPF_SHAPE_ONLY));
    CHECK(!strcmp(si_op_name(SI_OP_CONV_TRANSPOSE), "ConvTranspose") && !strcmp(si_op_domain(SI_OP_CONV), ""));
}

/* A node resolves, in finalize, to the version of the model's opset for its domain. */
static void test_resolve(int opset, const si_op_def *want) {
    si_graph *g = si_graph_new();
    CHECK(g != NULL);
    if (!g) return;
    g->opsets = si_calloc(1, sizeof(si_opset));
    g->opsets[0].domain = si_strdup("");
    g->opsets[0].version = opset;
    g->n_opsets = 1;
    int x = si_graph_value(g, "x"), y = si_graph_value(g, "y");
    g->values[x].is_input = true;
    g->values[x].dtype = SI_F32;
    g->values[x].ndim = 1;
    g->values[x].dims[0] = 4;
    g->inputs = si_malloc(sizeof(int));
    g->inputs[0] = x;
    g->n_inputs = 1;
    g->outputs = si_malloc(sizeof(int));
    g->outputs[0] = y;
    g->n_outputs = 1;
    g->values[y].is_output = true;
    si_node n = {0};
    n.name = si_strdup("clip");
    n.op_type = si_strdup("Clip");
    n.domain = si_strdup("");
    n.in = si_malloc(sizeof(int));
    n.out = si_malloc(sizeof(int));
    n.in[0] = x;
    n.out[0] = y;
    n.n_in = n.n_out = 1;
    CHECK(si_graph_add_node(g, &n) == 0);
    CHECK_OK(si_graph_finalize(g));
    CHECK(g->nodes[0].opset == opset && g->nodes[0].op == want);
    si_graph_free(g);
}

/* Families say whether their infers follow the partial contract (ops.h); shape inference asks the others only
 * with every input dimension known. Every family here is ported; a definition outside the tables is not. */
static void test_partial(void) {
    const si_op_def *add = si_op_find("", "Add", 17), *iff = si_op_find("", "If", 17);
    CHECK(add && iff && si_op_partial(add) && si_op_partial(iff));
    static const si_op_def outside = {.id = SI_OP_ADD};
    CHECK(!si_op_partial(&outside));
}

int main(void) {
    test_table();
    test_partial();
    test_find();
    test_resolve(6, si_op_find("", "Clip", 6));
    test_resolve(13, si_op_find("", "Clip", 13));
    return test_summary("test_op_registry");
}
