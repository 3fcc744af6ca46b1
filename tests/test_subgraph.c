/*
 * test_subgraph.c — subgraphs in the IR (If, Loop, Scan; nested), against tests/data/control_*.onnx
 * (scripts/make_test_models.py): the loader keeps graph attributes with their outer-scope references, shape
 * inference types the nodes from their subgraphs, deep copies and partitioning carry the subgraphs (the values
 * they read from the outer scope become inputs of the host submodel that holds the node, one per control-flow
 * node; on REF, REF,CPU, OCL,CPU and on a device that declines some ops), nesting is bounded
 * (SI_MAX_GRAPH_DEPTH), devices refuse control flow by name (the executor runs it) while si_compile takes it.
 * Allocation failures anywhere in load, inference, copy and partitioning end in a named error and leak nothing
 * (ASan builds check the leaks). Running control flow: test_control.c.
 *
 *   test_subgraph [BUILD_DIR]
 */
#include "si_test.h"

#include "api/compiled.h"
#include "onnx/onnx.h"
#include "ops/ops.h"

static const char *data(const char *name) {
    static char path[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", SI_TEST_DATA, name);
    return path[k];
}

/* The fixture `name` loaded as a graph; NULL (a failed check) when it does not load. */
static si_graph *load_fixture(const char *name) {
    si_graph *g = NULL;
    CHECK_OK(si_onnx_load_file(data(name), NULL, &g));
    return g;
}

/* A fixture with its shapes inferred, or NULL (a failed check). */
static si_graph *load_shaped(const char *name) {
    si_graph *g = load_fixture(name);
    if (g) CHECK_OK(si_graph_infer_shapes(g, 1 << 20));
    return g;
}

/* A test's start: what it tests printed, and the fixture file loaded (its shapes inferred when `shaped`); NULL (a
 * failed check) when it does not load. */
static si_graph *open_fixture(const char *what, const char *file, bool shaped) {
    fprintf(stderr, "%s\n", what);
    return shaped ? load_shaped(file) : load_fixture(file);
}

static const si_node *node_named(const si_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, name)) return &g->nodes[i];
    return NULL;
}

static si_graph *branch(const si_node *n, const char *attr) {
    const si_attr *a = n ? si_node_attr(n, attr) : NULL;
    return a && a->type == SI_ATTR_GRAPH ? a->g : NULL;
}

/* The names of g's outer-scope values, sorted, comma-separated. */
static const char *outer_names(const si_graph *g, char *buf, size_t n) {
    const char *names[64];
    int k = 0;
    for (int i = 0; i < g->n_outer && k < 64; i++) names[k++] = g->values[g->outer[i]].name;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            const char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < k && o < n; i++) o += (size_t)snprintf(buf + o, n - o, i ? ",%s" : "%s", names[i]);
    return buf;
}

/* The names of n's implicit inputs (values of g), sorted, comma-separated. */
static const char *implicit_names(const si_graph *g, const si_node *n, char *buf, size_t cap) {
    si_graph tmp;
    int ids[64];
    memset(&tmp, 0, sizeof tmp);
    for (int i = 0; i < n->n_implicit && i < 64; i++) ids[i] = n->implicit[i];
    tmp.values = g->values;
    tmp.outer = ids;
    tmp.n_outer = n->n_implicit;
    return outer_names(&tmp, buf, cap);
}

/* The shape of value `name` of g as text ("batch,3"; "?" for unknown; symbols by name). */
static const char *shape_of(const si_graph *g, const char *name, char *buf, size_t n) {
    int v = si_graph_find_value(g, name);
    buf[0] = 0;
    if (v < 0) return "(no such value)";
    const si_val *val = &g->values[v];
    if (val->ndim < 0) return "(rank unknown)";
    size_t o = (size_t)snprintf(buf, n, "%s[", si_dtype_name(val->dtype));
    for (int d = 0; d < val->ndim && o < n; d++) {
        const char *s = si_graph_sym_name(g, val->dims[d]);
        if (val->dims[d] >= 0) o += (size_t)snprintf(buf + o, n - o, d ? ",%lld" : "%lld", (long long)val->dims[d]);
        else o += (size_t)snprintf(buf + o, n - o, d ? ",%s" : "%s", s ? s : "?");
    }
    if (o < n) snprintf(buf + o, n - o, "]");
    return buf;
}

/* Shape inference on g works, and then each value named in want ("name", "shape" pairs, NULL-terminated) has that
 * type and shape. */
static void check_inferred(si_graph *g, const char *const *want) {
    char b[256];
    CHECK_OK(si_graph_infer_shapes(g, 1 << 20));
    for (int i = 0; want[i]; i += 2) {
        CHECK_STREQ(shape_of(g, want[i], b, sizeof b), want[i + 1]);
        if (strcmp(b, want[i + 1])) fprintf(stderr, "  (value %s)\n", want[i]);
    }
}

/* The If of control_flow.onnx in g (the model's graph or a copy of it, or the host submodel holding it): its
 * branches present, parents right, outer references and implicit inputs intact. */
static void check_if(const si_graph *g, const char *what) {
    char b[256];
    fprintf(stderr, "  If structure of %s\n", what);
    const si_node *nif = node_named(g, "if");
    CHECK(nif && si_node_is(nif, SI_OP_IF));
    si_graph *th = branch(nif, "then_branch"), *el = branch(nif, "else_branch");
    CHECK(th && el);
    if (!th || !el) return;
    CHECK(th->parent == g && el->parent == g);
    CHECK(th->depth == g->depth + 1);
    CHECK_STREQ(outer_names(th, b, sizeof b), "A,C,W,X");
    CHECK_STREQ(outer_names(el, b, sizeof b), "Q");
    CHECK_STREQ(implicit_names(g, nif, b, sizeof b), "A,C,Q,W,X");
    for (int i = 0; i < nif->n_implicit; i++) /* each implicit input is a value of g named as the outer value */
        CHECK(nif->implicit[i] >= 0 && nif->implicit[i] < g->n_values);
    const si_node *inner = node_named(th, "inner_if");
    si_graph *it = branch(inner, "then_branch"), *ie = branch(inner, "else_branch");
    CHECK(inner && it && ie);
    if (!it || !ie) return;
    CHECK(it->parent == th && ie->parent == th && it->depth == g->depth + 2);
    CHECK_STREQ(outer_names(it, b, sizeof b), "TR,W"); /* TR of the then-branch, W of the model */
    CHECK_STREQ(outer_names(ie, b, sizeof b), "W,X");
    CHECK_STREQ(implicit_names(th, inner, b, sizeof b), "TR,W,X");
    CHECK(node_named(it, "inner_mul") && node_named(ie, "inner_sub"));
    /* outer values resolve by name in the enclosing graph */
    for (int i = 0; i < th->n_outer; i++) CHECK(si_graph_find_value(g, th->values[th->outer[i]].name) >= 0);
    for (int i = 0; i < it->n_outer; i++) CHECK(si_graph_find_value(th, it->values[it->outer[i]].name) >= 0);
}

/* The Loop of control_flow.onnx in g, likewise. */
static void check_loop(const si_graph *g, const char *what) {
    char b[256];
    fprintf(stderr, "  Loop structure of %s\n", what);
    const si_node *nloop = node_named(g, "loop");
    CHECK(nloop && si_node_is(nloop, SI_OP_LOOP));
    si_graph *body = branch(nloop, "body");
    CHECK(body);
    if (!body) return;
    CHECK(body->parent == g && body->depth == g->depth + 1);
    CHECK_STREQ(outer_names(body, b, sizeof b), "W,X");
    CHECK_STREQ(implicit_names(g, nloop, b, sizeof b), "W,X");
    CHECK(node_named(body, "body_scan"));
    CHECK(body->n_inputs == 3 && body->n_outputs == 3);
}

/* The structure of control_flow.onnx in g (the model's graph or a copy of it): both control-flow nodes. */
static void check_structure(const si_graph *g, const char *what) {
    check_if(g, what);
    check_loop(g, what);
}

/* The names of g's inputs, sorted, comma-separated. */
static const char *input_names(const si_graph *g, char *buf, size_t cap) {
    si_graph tmp;
    memset(&tmp, 0, sizeof tmp);
    tmp.values = g->values;
    tmp.outer = g->inputs;
    tmp.n_outer = g->n_inputs;
    return outer_names(&tmp, buf, cap);
}

static void test_load_and_infer(void) {
    si_graph *g = open_fixture("load, infer", "control_flow.onnx", false);
    if (!g) return;
    check_structure(g, "the loaded model");
    /* If: both branches give float32[batch,3] (the nested If's too); Loop: the carried value keeps its width,
     * its rows after the body are not known; the scan output stacks one [?,3] per iteration */
    check_inferred(g, (const char *const[]){"Y", "float32[batch,3]", "AF", "float32[?,3]", "S", "float32[?,?,3]", NULL});
    char b[256];
    si_graph *th = branch(node_named(g, "if"), "then_branch");
    si_graph *body = branch(node_named(g, "loop"), "body");
    CHECK(th && body);
    if (th) {
        CHECK_STREQ(shape_of(th, "A", b, sizeof b), "float32[batch,3]"); /* an outer value takes its type */
        CHECK_STREQ(shape_of(th, "TI", b, sizeof b), "float32[batch,3]");
    }
    if (body) {
        CHECK_STREQ(shape_of(body, "i", b, sizeof b), "int64[]");
        CHECK_STREQ(shape_of(body, "v", b, sizeof b), "float32[?,?]"); /* rank of the initial value, dims open */
        CHECK_STREQ(shape_of(body, "v2", b, sizeof b), "float32[?,3]");
    }
    /* a fixed batch: the shapes follow */
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->values[g->inputs[i]].name, "X")) g->values[g->inputs[i]].dims[0] = 2;
    check_inferred(g, (const char *const[]){"Y", "float32[2,3]", NULL});
    if (th) CHECK_STREQ(shape_of(th, "TI", b, sizeof b), "float32[2,3]");
    si_graph_free(g);
}

static void test_clone(void) {
    si_graph *g = open_fixture("clone", "control_flow.onnx", true), *c = NULL, *cc = NULL;
    if (!g) return;
    CHECK_OK(si_graph_clone(g, &c));
    si_graph_free(g); /* the copy owns everything it holds (ASan: no use after free below) */
    if (!c) return;
    check_structure(c, "a copy of the model");
    CHECK_OK(si_graph_clone(c, &cc)); /* a copy of a copy */
    if (cc) check_structure(cc, "a copy of the copy");
    char b[128];
    if (cc) CHECK_STREQ(shape_of(cc, "Y", b, sizeof b), "float32[batch,3]");
    si_graph_free(c);
    si_graph_free(cc);
}

/* A device that is the CPU device (or REF without CPU) except that it declines Add and Mul: the nodes that make
 * A and Q go to the next device, the If and the Loop stay here. */
static const si_device_i *picky_inner;
static si_device *picky_base;

static si_result picky_supports(const si_device *d, const si_graph *g, const si_node *n) {
    (void)d;
    if (si_node_is(n, SI_OP_ADD) || si_node_is(n, SI_OP_MUL))
        return si_err(SI_ERR_UNSUPPORTED, "picky: declines %s", n->op_type);
    return picky_inner->supports_op(picky_base, g, n);
}

static si_result picky_compile(si_device *d, const si_graph *g, const si_compile_ctx *cc, si_cmodel **out) {
    (void)d;
    return picky_inner->compile(picky_base, g, cc, out);
}

static const si_device_i picky_iface = {.api_version = SI_DEVICE_API_VERSION, .supports_op = picky_supports,
                                        .compile = picky_compile};

static si_device *first_device(void) {
    si_device *d = NULL;
#ifdef SI_HAVE_CPU
    if (si_device_get("CPU", &d)) d = NULL;
#endif
    if (!d) si_device_get("REF", &d);
    return d;
}

/* The submodel of p holding node `name`, or NULL. */
static const si_submodel *sub_holding(const si_partition *p, const char *name) {
    for (int i = 0; p && i < p->n; i++)
        if (node_named(p->subs[i].g, name)) return &p->subs[i];
    return NULL;
}

/* The host submodels of control_flow.onnx's If and Loop in p: one node each, subgraphs intact (there, and in a
 * copy made after the partition is gone), the outer values they read as inputs (constants shared, not inputs);
 * a device's compile refuses such a graph by name. */
static void check_host_subs(si_partition *p, si_device *dev, const char *what) {
    char b[256];
    const si_submodel *sif = sub_holding(p, "if"), *sloop = sub_holding(p, "loop");
    CHECK(sif && sloop && sif != sloop);
    if (!sif || !sloop || sif == sloop) return;
    CHECK(sif->host && sloop->host && sif->device == -1 && sif->capable == 0 && sloop->capable == 0);
    CHECK(sif->g->n_nodes == 1 && sloop->g->n_nodes == 1);
    fprintf(stderr, "  host submodels of %s\n", what);
    check_if(sif->g, "the host submodel of the If");
    check_loop(sloop->g, "the host submodel of the Loop");
    CHECK_STREQ(input_names(sif->g, b, sizeof b), "A,C,Q,X"); /* W is a constant: shared, not an input */
    CHECK_STREQ(input_names(sloop->g, b, sizeof b), "A,X");   /* M too */
    int w = si_graph_find_value(sif->g, "W");
    CHECK(w >= 0 && sif->g->values[w].const_val);
    si_cmodel *cm = NULL;
    si_compile_ctx cc = {0};
    CHECK_ERR(dev->iface->compile(dev, sif->g, &cc, &cm), SI_ERR_UNSUPPORTED, "If");
    CHECK(cm == NULL);
    si_graph *ci = NULL, *cl = NULL;
    CHECK_OK(si_graph_clone(sif->g, &ci));
    CHECK_OK(si_graph_clone(sloop->g, &cl));
    si_partition_free(p);
    if (ci) check_if(ci, "a copy of the If's submodel graph (partition freed)");
    if (cl) check_loop(cl, "a copy of the Loop's submodel graph (partition freed)");
    si_graph_free(ci);
    si_graph_free(cl);
}

static void test_partition(void) {
    si_graph *g = open_fixture("partition", "control_flow.onnx", true);
    if (!g) return;
    si_device *ref = NULL, *cpu = first_device();
    CHECK_OK(si_device_get("REF", &ref));

    /* CPU,REF: Add and Mul on the first device; the If and the Loop each a host submodel of its own */
    si_device *devs[2] = {cpu, ref};
    si_partition *p = NULL;
    CHECK_OK(si_partition_graph(g, devs, 2, &p));
    CHECK(p && p->n == 3);
    const si_submodel *s0 = sub_holding(p, "add");
    CHECK(s0 && s0 == sub_holding(p, "square") && !s0->host && s0->device == 0 && s0->g->n_nodes == 2);
    if (p && p->n == 3) check_host_subs(p, cpu, "CPU,REF");
    else si_partition_free(p);

    /* a device that declines Add and Mul, then REF: A and Q are made on REF; the If's host submodel takes A (read by
     * its then-branch) and Q (read only by its else-branch) as inputs */
    static si_device picky;
    picky_inner = cpu->iface;
    picky_base = cpu;
    picky = (si_device){.iface = &picky_iface, .name = "PICKY", .ctx = NULL};
    devs[0] = &picky;
    p = NULL;
    CHECK_OK(si_partition_graph(g, devs, 2, &p));
    CHECK(p && p->n == 3);
    if (p && p->n == 3) {
        s0 = sub_holding(p, "add");
        CHECK(s0 && s0 == sub_holding(p, "square") && s0->device == 1 && !node_named(s0->g, "if"));
        bool outs_q = false, outs_a = false;
        for (int k = 0; s0 && k < s0->g->n_outputs; k++) {
            outs_q |= !strcmp(s0->g->values[s0->g->outputs[k]].name, "Q");
            outs_a |= !strcmp(s0->g->values[s0->g->outputs[k]].name, "A");
        }
        CHECK(outs_q && outs_a); /* Q leaves submodel 0 although no node reads it explicitly */
        si_graph_free(g);
        g = NULL;
        check_host_subs(p, ref, "PICKY,REF (model freed)");
    } else {
        si_partition_free(p);
    }
    si_graph_free(g);
}

/* Partition control_flow.onnx (batch fixed to 2, as --shape does) on a real device list: Add and Mul on `pre_dev`
 * (one submodel), the If and the Loop in host submodels of their own, their subgraphs intact there and in copies
 * made after the model and the partition are gone. */
static void partition_on(const char *what, si_device **devs, int n, int pre_dev) {
    fprintf(stderr, "partition on %s\n", what);
    si_graph *g = load_fixture("control_flow.onnx");
    if (!g) return;
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->values[g->inputs[i]].name, "X")) g->values[g->inputs[i]].dims[0] = 2;
    CHECK_OK(si_graph_infer_shapes(g, 1 << 20));
    si_partition *p = NULL;
    CHECK_OK(si_partition_graph(g, devs, n, &p));
    CHECK(p && p->n == 3);
    if (p && p->n != 3)
        for (int i = 0; i < p->n; i++)
            fprintf(stderr, "  submodel %d on %s: %s\n", i, p->subs[i].host ? "host" : devs[p->subs[i].device]->name, p->subs[i].why);
    const si_submodel *sif = sub_holding(p, "if"), *sadd = sub_holding(p, "add");
    CHECK(sif && sadd && sadd->device == pre_dev && sadd == sub_holding(p, "square"));
    char b[128];
    if (sif) CHECK_STREQ(shape_of(sif->g, "Y", b, sizeof b), "float32[2,3]");
    si_graph_free(g);
    if (p && p->n == 3) check_host_subs(p, devs[0], what);
    else si_partition_free(p);
}

static void test_partition_devices(void) {
    si_device *ref = NULL, *cpu = NULL;
    CHECK_OK(si_device_get("REF", &ref));
    si_device *devs[2] = {ref, ref};
    partition_on("REF", devs, 1, 0);
#ifdef SI_HAVE_CPU
    CHECK_OK(si_device_get("CPU", &cpu));
    if (cpu) {
        devs[1] = cpu; /* REF takes Add and Mul */
        partition_on("REF,CPU", devs, 2, 0);
    }
#endif
#if defined(SI_HAVE_OCL) && defined(SI_HAVE_CPU)
    si_device *ocl = NULL;
    if (cpu && !si_device_get("OCL", &ocl) && ocl) {
        /* OCL takes Add and Mul; control flow is the host's whatever the list */
        devs[0] = ocl;
        devs[1] = cpu;
        partition_on("OCL,CPU", devs, 2, 0);
    } else {
        fprintf(stderr, "partition on OCL,CPU: skipped (%s)\n", cpu ? si_last_error() : "no CPU device");
        si_err_clear();
    }
#else
    (void)cpu;
#endif
}

/* Scan: the body's formal inputs take the state's and one slice's types, its outer value W resolves in the
 * model's graph, the outputs stack along scan_output_axes; the body survives copying and partitioning. */
static void check_scan(const si_graph *g, const char *what) {
    char b[128];
    fprintf(stderr, "  scan structure of %s\n", what);
    const si_node *n = node_named(g, "scan");
    si_graph *body = branch(n, "body");
    CHECK(n && si_node_is(n, SI_OP_SCAN) && body);
    if (!n || !body) return;
    CHECK(body->parent == g && body->depth == g->depth + 1);
    CHECK_STREQ(outer_names(body, b, sizeof b), "W");
    CHECK_STREQ(implicit_names(g, n, b, sizeof b), "W");
    CHECK(body->n_inputs == 2 && body->n_outputs == 2 && body->n_nodes == 3);
    CHECK(node_named(body, "body_mul") && node_named(body, "body_add") && node_named(body, "body_relu"));
    int w = si_graph_find_value(g, "W");
    CHECK(w >= 0 && g->values[w].const_val);
}

static void test_scan(void) {
    si_graph *g = open_fixture("scan", "control_scan.onnx", false), *c = NULL;
    if (!g) return;
    check_scan(g, "the loaded model");
    /* YS: stacked along axis 1, one per step */
    check_inferred(g, (const char *const[]){"P", "float32[seq,3]", "HF", "float32[3]", "YS", "float32[3,seq]", NULL});
    char b[128];
    si_graph *body = branch(node_named(g, "scan"), "body");
    if (body) {
        CHECK_STREQ(shape_of(body, "W", b, sizeof b), "float32[3]"); /* the outer value takes the model's type */
        CHECK_STREQ(shape_of(body, "h2", b, sizeof b), "float32[3]");
        CHECK_STREQ(shape_of(body, "y", b, sizeof b), "float32[3]");
    }
    CHECK_OK(si_graph_clone(g, &c));
    if (c) {
        check_scan(c, "a copy of the model");
        CHECK_STREQ(shape_of(c, "YS", b, sizeof b), "float32[3,seq]");
    }
    /* a device that declines Mul, then REF: the square goes to REF, the Scan is a host submodel that takes P as an
     * input; W (read only inside the body) goes with it as a shared constant */
    si_device *ref = NULL, *cpu = first_device();
    CHECK_OK(si_device_get("REF", &ref));
    static si_device picky;
    picky_inner = cpu->iface;
    picky_base = cpu;
    picky = (si_device){.iface = &picky_iface, .name = "PICKY", .ctx = NULL};
    si_device *devs[2] = {&picky, ref};
    si_partition *p = NULL;
    CHECK_OK(si_partition_graph(g, devs, 2, &p));
    CHECK(p && p->n == 2);
    const si_submodel *ss = sub_holding(p, "scan"), *sq = sub_holding(p, "square");
    CHECK(ss && sq && ss != sq && ss->host && ss->device == -1 && sq->device == 1);
    if (ss && sq && ss != sq) {
        bool in_p = false;
        for (int k = 0; k < ss->g->n_inputs; k++) in_p |= !strcmp(ss->g->values[ss->g->inputs[k]].name, "P");
        CHECK(in_p);
        check_scan(ss->g, "the submodel holding the Scan");
        si_graph *copy = NULL;
        CHECK_OK(si_graph_clone(ss->g, &copy));
        si_partition_free(p);
        p = NULL;
        if (copy) check_scan(copy, "a copy of that submodel's graph");
        si_graph_free(copy);
    }
    si_partition_free(p);
    si_graph_free(c);
    si_graph_free(g);
    /* si_compile takes it (the executor runs it: test_control.c) */
    si_model *m = NULL;
    si_compiled *cm = NULL;
    CHECK_OK(si_model_load(data("control_scan.onnx"), &m));
    if (m) CHECK_OK(si_compile(m, NULL, &cm));
    si_compiled_free(cm);
    si_model_free(m);
}

/* A text that describes the subgraphs of g's nodes, recursively: per subgraph its attribute, depth, nodes (op types),
 * inputs, outputs and outer values by name. Equal for a graph, its partition and its copies when the subgraphs
 * survive. */
static void describe(const si_graph *g, char *buf, size_t cap, size_t *o) {
    for (int i = 0; i < g->n_nodes; i++) {
        const si_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attr; a++) {
            const si_attr *at = &n->attrs[a];
            int ng = at->g ? 1 : at->gs ? at->n : 0;
            for (int k = 0; k < ng; k++) {
                const si_graph *sg = at->g ? at->g : at->gs[k];
                char outer[1024];
                if (*o >= cap) return;
                *o += (size_t)snprintf(buf + *o, cap - *o, "{%s.%s d%d in%d out%d outer[%s] parent%s:", n->op_type,
                                       at->name, sg->depth - g->depth, sg->n_inputs, sg->n_outputs,
                                       outer_names(sg, outer, sizeof outer), sg->parent == g ? "ok" : "WRONG");
                for (int j = 0; j < sg->n_nodes && *o < cap; j++)
                    *o += (size_t)snprintf(buf + *o, cap - *o, " %s", sg->nodes[j].op_type);
                describe(sg, buf, cap, o);
                if (*o < cap) *o += (size_t)snprintf(buf + *o, cap - *o, "}");
            }
        }
    }
}

/* The ONNX backend test models that hold If, Loop or Scan ($SI_ONNX_TESTS/node, else ../shared/onnx-tests/node beside
 * the repository; skipped when absent): each
 * loads, shape inference takes it, and its subgraphs are the same after partitioning on REF,CPU (or REF) and
 * after copying the submodel's graph with the model and the partition gone. */
static void test_onnx_models(void) {
    static const char *const cases[] = {
        "test_if", "test_loop11", "test_scan_sum", "test_scan9_sum", "test_scan9_multi_state",
        "test_range_float_type_positive_delta_expanded", "test_range_int32_type_negative_delta_expanded",
        "test_affine_grid_2d_expanded", "test_affine_grid_3d_align_corners_expanded",
        "test_linear_attention_linear_expanded", "test_linear_attention_gated_delta_gqa_expanded"};
    char root[1024], path[1200];
    const char *env = getenv("SI_ONNX_TESTS"); /* as for tests/conformance.sh */
    if (env && *env) snprintf(root, sizeof root, "%s/node", env);
    else snprintf(root, sizeof root, "%s/../../../shared/onnx-tests/node", SI_TEST_DATA);
    if (access(root, R_OK)) {
        fprintf(stderr, "ONNX backend models: skipped (%s not found)\n", root);
        return;
    }
    si_device *devs[2] = {NULL, NULL};
    int n_devs = 1;
    CHECK_OK(si_device_get("REF", &devs[0]));
#ifdef SI_HAVE_CPU
    if (!si_device_get("CPU", &devs[1])) n_devs = 2;
#endif
    static char before[16384], parted[16384], copied[16384];
    int loaded = 0;
    for (size_t c = 0; c < SI_ARRAY_LEN(cases); c++) {
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, cases[c]);
        if (access(path, R_OK)) {
            fprintf(stderr, "  %s: not in this copy of the suite\n", cases[c]);
            continue;
        }
        si_graph *g = NULL;
        si_partition *p = NULL;
        si_graph *copy = NULL;
        CHECK_OK(si_onnx_load_file(path, NULL, &g));
        if (!g) continue;
        loaded++;
        size_t o = 0;
        describe(g, before, sizeof before, &o);
        CHECK(o > 0 && !strstr(before, "WRONG"));
        CHECK_OK(si_graph_infer_shapes(g, 1 << 20));
        CHECK_OK(si_partition_graph(g, devs, n_devs, &p));
        parted[0] = copied[0] = 0;
        for (int i = 0; p && i < p->n; i++) {
            o = strlen(parted);
            describe(p->subs[i].g, parted, sizeof parted, &o);
        }
        CHECK_STREQ(parted, before);
        if (p && p->n == 1) {
            CHECK_OK(si_graph_clone(p->subs[0].g, &copy));
            si_partition_free(p);
            p = NULL;
            si_graph_free(g);
            g = NULL;
            o = 0;
            if (copy) describe(copy, copied, sizeof copied, &o);
            CHECK_STREQ(copied, before);
        }
        fprintf(stderr, "  %s: %.160s%s\n", cases[c], before, strlen(before) > 160 ? "..." : "");
        si_graph_free(copy);
        si_partition_free(p);
        si_graph_free(g);
    }
    CHECK(loaded > 0);
}

/* si_compile takes control flow on every device list (the executor runs it; the report shows the host submodels
 * and each branch's and body's own); a device's compile alone refuses it (check_host_subs). */
static void test_compile(void) {
    fprintf(stderr, "compile\n");
    si_model *m = NULL;
    si_config *cfg = NULL;
    si_compiled *c = NULL;
    CHECK_OK(si_model_load(data("control_flow.onnx"), &m));
    CHECK_OK(si_config_create(&cfg));
    if (!m || !cfg) {
        si_model_free(m);
        si_config_free(cfg);
        return;
    }
    const char *lists[] = {"REF", "CPU,REF"};
    for (size_t i = 0; i < SI_ARRAY_LEN(lists); i++) {
#ifndef SI_HAVE_CPU
        if (strstr(lists[i], "CPU")) continue;
#endif
        CHECK_OK(si_config_set(cfg, "devices", lists[i]));
        CHECK_OK(si_compile(m, cfg, &c));
        char *rep = NULL;
        if (c) CHECK_OK(si_compiled_report_json(c, &rep));
        if (rep) {
            CHECK(strstr(rep, "\"device\":\"host\""));
            CHECK(strstr(rep, "\"scope\":\"if.then_branch\"") && strstr(rep, "\"scope\":\"if.else_branch\"") &&
                  strstr(rep, "\"scope\":\"loop.body\"") && strstr(rep, "\"scope\":\"if.then_branch/inner_if.then_branch\""));
        }
        si_free_string(rep);
        si_compiled_free(c);
        c = NULL;
    }
    si_config_free(cfg);
    si_model_free(m);
}

/* si_graph_fold_ifs on control_if_fold.onnx: three Ifs go (one found in a branch brought in), their output values
 * keep their names and get producers (an Identity where a branch returns a value it does not make), the one
 * whose branch reuses a model value's name stays; si_graph_detach makes a branch a graph of its own whose outer
 * reads are inputs. */
static void test_fold_detach(void) {
    si_graph *g = open_fixture("fold Ifs, detach", "control_if_fold.onnx", true);
    if (!g) return;
    int folded = -1;
    CHECK_OK(si_graph_fold_ifs(g, 1 << 20, &folded));
    CHECK(folded == 3);
    CHECK(!node_named(g, "if1") && !node_named(g, "if2") && !node_named(g, "inner_if") && node_named(g, "if3"));
    CHECK(branch(node_named(g, "if3"), "then_branch") && branch(node_named(g, "if3"), "then_branch")->depth == 1);
    int y1 = si_graph_find_value(g, "Y1"), y2 = si_graph_find_value(g, "Y2");
    CHECK(y1 >= 0 && g->values[y1].const_val); /* Identity(W): folded into a constant */
    CHECK(y2 >= 0 && g->values[y2].producer >= 0 && si_node_is(&g->nodes[g->values[y2].producer], SI_OP_IDENTITY));
    /* detach if3's then-branch: X (a model input) becomes its input */
    const si_node *n3 = node_named(g, "if3");
    si_graph *d = NULL;
    if (n3) CHECK_OK(si_graph_detach(branch(n3, "then_branch"), &d));
    if (d) {
        char b[64];
        CHECK(d->parent == NULL && d->depth == 0 && d->n_outer == 0 && d->n_nodes == 1);
        CHECK_STREQ(input_names(d, b, sizeof b), "X");
        CHECK(si_graph_opset(d, "") == 17);
    }
    si_graph_free(d);
    si_graph_free(g);
}

/* The constants a compile context shares (si_shared_const): one make per (constant, tag), the same value for
 * every later ask, freed once with the cache; without a cache the value is the caller's; a failing make stores
 * nothing. */
static int makes, frees;
static si_result make_copy(void *user, const si_tensor *key, void **out) {
    makes++;
    if (user) return si_err(SI_ERR_DEVICE, "make failed on purpose");
    float *v = si_malloc(sizeof(float));
    if (!v) return si_err(SI_ERR_NO_MEM, "out of memory");
    *v = si_load_f64(key->dtype, key->data, 0) * 2;
    *out = v;
    return SI_OK;
}
static void free_copy(void *p) {
    frees++;
    si_free(p);
}

static void test_shared_consts(void) {
    si_graph *g = open_fixture("shared constants", "control_flow.onnx", false);
    if (!g) return;
    int w = si_graph_find_value(g, "W"), m = si_graph_find_value(g, "M");
    CHECK(w >= 0 && m >= 0);
    if (w < 0 || m < 0) {
        si_graph_free(g);
        return;
    }
    const si_tensor *kw = g->values[w].const_val, *km = g->values[m].const_val;
    si_shared_consts *sc = NULL;
    CHECK_OK(si_shared_consts_new(&sc));
    void *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    makes = frees = 0;
    CHECK_OK(si_shared_const(sc, kw, "DEV.0:buffer", make_copy, free_copy, NULL, &a));
    CHECK_OK(si_shared_const(sc, kw, "DEV.0:buffer", make_copy, free_copy, NULL, &b));
    CHECK(a && a == b && makes == 1 && *(float *)a == 2.0f); /* W[0] = 1 */
    CHECK_OK(si_shared_const(sc, kw, "DEV.1:buffer", make_copy, free_copy, NULL, &c)); /* another tag: its own */
    CHECK(c && c != a && makes == 2);
    CHECK_OK(si_shared_const(sc, km, "DEV.0:buffer", make_copy, free_copy, NULL, &d)); /* another constant */
    CHECK(d && d != a && makes == 3 && *(float *)d == 6.0f);           /* M = 3 */
    /* the same constant reached through a copy of the graph is the same key (constants are shared, not copied) */
    si_graph *copy = NULL;
    CHECK_OK(si_graph_clone(g, &copy));
    if (copy) {
        void *e = NULL;
        CHECK(copy->values[w].const_val == kw);
        CHECK_OK(si_shared_const(sc, copy->values[w].const_val, "DEV.0:buffer", make_copy, free_copy, NULL, &e));
        CHECK(e == a && makes == 3);
    }
    si_graph_free(copy);
    void *f = (void *)1;
    CHECK_ERR(si_shared_const(sc, kw, "DEV.2:buffer", make_copy, free_copy, (void *)1, &f), SI_ERR_DEVICE, "on purpose");
    CHECK(f == NULL && makes == 4);
    CHECK_ERR(si_shared_const(sc, kw, NULL, make_copy, free_copy, NULL, &f), SI_ERR_INVALID_ARG, "NULL");
    CHECK(frees == 0);
    si_shared_consts_free(sc);
    CHECK(frees == 3);
    /* no cache: made each time, the caller's to free */
    CHECK_OK(si_shared_const(NULL, kw, "DEV.0:buffer", make_copy, free_copy, NULL, &a));
    CHECK_OK(si_shared_const(NULL, kw, "DEV.0:buffer", make_copy, free_copy, NULL, &b));
    CHECK(a && b && a != b && makes == 6);
    si_free(a);
    si_free(b);
    si_graph_free(g);
}

/* A GRAPHS attribute: every graph kept, each with the model's graph as its parent and its outer reads resolved;
 * copies keep them (and free them: ASan). */
static void check_graphs(const si_graph *g, const char *what) {
    char b[128];
    fprintf(stderr, "  graphs attribute of %s\n", what);
    const si_node *n = node_named(g, "multi");
    const si_attr *a = n ? si_node_attr(n, "bodies") : NULL;
    CHECK(a && a->type == SI_ATTR_GRAPHS && a->n == 2 && a->gs && !a->g);
    if (!a || a->type != SI_ATTR_GRAPHS || a->n != 2 || !a->gs) return;
    CHECK(a->gs[0] && a->gs[1] && a->gs[0]->parent == g && a->gs[1]->parent == g);
    if (!a->gs[0] || !a->gs[1]) return;
    CHECK(a->gs[0]->depth == g->depth + 1 && a->gs[1]->depth == g->depth + 1);
    CHECK_STREQ(outer_names(a->gs[0], b, sizeof b), "X");
    CHECK_STREQ(outer_names(a->gs[1], b, sizeof b), "W");
    CHECK_STREQ(implicit_names(g, n, b, sizeof b), "W,X");
    CHECK(node_named(a->gs[0], "g0") && node_named(a->gs[1], "g1"));
}

static void test_graphs_attr(void) {
    si_graph *g = open_fixture("graphs attribute", "control_graphs.onnx", false), *c = NULL, *cc = NULL;
    if (!g) return;
    check_graphs(g, "the loaded model");
    CHECK_OK(si_graph_clone(g, &c));
    si_graph_free(g);
    if (c) {
        check_graphs(c, "a copy");
        CHECK_OK(si_graph_clone(c, &cc));
        si_graph_free(c);
        if (cc) check_graphs(cc, "a copy of the copy");
    }
    si_graph_free(cc);
}

static void test_bad_models(void) {
    fprintf(stderr, "bad models\n");
    si_graph *g = NULL;
    CHECK_OK(si_onnx_load_file(data("control_nested16.onnx"), NULL, &g));
    if (g) check_inferred(g, (const char *const[]){"Y0", "float32[2]", NULL});
    si_graph_free(g);
    g = NULL;
    CHECK_ERR(si_onnx_load_file(data("control_nested17.onnx"), NULL, &g), SI_ERR_UNSUPPORTED, "nested more than 16 deep");
    CHECK(g == NULL);
    CHECK_ERR(si_onnx_load_file(data("control_dangling.onnx"), NULL, &g), SI_ERR_PARSE, "'nowhere'");
    CHECK(g == NULL);
    CHECK_OK(si_onnx_load_file(data("control_if_types.onnx"), NULL, &g));
    if (g) CHECK_ERR(si_graph_infer_shapes(g, 1 << 20), SI_ERR_INVALID_ARG, "float32 in then_branch and int64 in else_branch");
    si_graph_free(g);
    /* shapes that contradict only once an open dimension is known: accepted while it is open (as before partial
     * shapes), refused by name when it is fixed */
    CHECK_OK(si_onnx_load_file(data("bad_broadcast_open.onnx"), NULL, &g));
    if (g) {
        CHECK_OK(si_graph_infer_shapes(g, 1 << 20));
        g->values[g->inputs[0]].dims[0] = 2;
        CHECK_ERR(si_graph_infer_shapes(g, 1 << 20), SI_ERR_INVALID_ARG, "node 'add'");
    }
    si_graph_free(g);
    /* through the API: refused at load, by name */
    si_model *m = NULL;
    CHECK_ERR(si_model_load(data("control_if_types.onnx"), &m), SI_ERR_INVALID_ARG, "else_branch");
    si_model_free(m);
}

/* Allocation failure at every step of load, inference, copy and partitioning: a named error, nothing leaked. */
/* Allocation failure at every step of load, inference, copy and partitioning (partition: also the submodels) of
 * `file`: a named error, nothing leaked. */
static void alloc_failures(const char *file, bool partition) {
    fprintf(stderr, "allocation failures: %s\n", file);
    si_device *ref = NULL;
    CHECK_OK(si_device_get("REF", &ref));
    size_t len = 0;
    char *buf = NULL;
    CHECK_OK(si_read_file(data(file), &buf, &len));
    if (!buf) return;
    int fails = 0, n;
    for (n = 1; n < 100000; n++) {
        si_alloc_fail_after(n, 0);
        si_graph *g = NULL, *c = NULL;
        si_partition *p = NULL;
        si_result s = si_onnx_load(buf, len, NULL, &g);
        if (!s) s = si_graph_infer_shapes(g, 1 << 20);
        if (!s) s = si_graph_clone(g, &c);
        if (!s && partition) s = si_partition_graph(c, &ref, 1, &p);
        si_alloc_fail_after(0, 0);
        if (s) { /* NO_MEM; protobuf-c reports its own allocation failures as a malformed message (PARSE) */
            fails++;
            bool named = (s == SI_ERR_NO_MEM || s == SI_ERR_PARSE) && si_last_error()[0];
            if (!named) fprintf(stderr, "  allocation %d: status %s, message '%s'\n", n, si_result_str(s), si_last_error());
            CHECK(named);
        }
        si_partition_free(p);
        si_graph_free(c);
        si_graph_free(g);
        if (!s) break; /* the Nth allocation was never reached: every earlier one has failed once */
    }
    fprintf(stderr, "  %d allocations, each failed once\n", fails);
    CHECK(fails > 100 && n < 100000);
    si_free(buf);
}

static void test_alloc_failures(void) {
    alloc_failures("control_flow.onnx", true);
    alloc_failures("control_scan.onnx", true);
    alloc_failures("control_graphs.onnx", false); /* a custom op: no device takes it */
}

/* Placement rules (config key avoid): an op or a node kept off a device goes to the next device that runs it,
 * and the device is not its failover candidate; bad rules are refused by name. */
static void test_avoid(void) {
    fprintf(stderr, "avoid\n");
    si_avoid *a = NULL;
    CHECK_OK(si_avoid_parse("", &a));
    CHECK(a == NULL);
    static const char *const bad[] = {"Op:Add", "Op:/CPU", "Op:Add/", "Add/CPU", "Opx:Add/CPU", "Op:Add/GPU", "Op:Add/CPU,", ",Op:Add/CPU"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(si_avoid_parse(bad[i], &a), SI_ERR_INVALID_ARG, "avoid");
        CHECK(a == NULL);
    }
    si_graph *g = load_shaped("control_flow.onnx");
    if (!g) return;
    si_device *ref = NULL, *cpu = first_device();
    CHECK_OK(si_device_get("REF", &ref));
    si_device *devs[2] = {cpu, ref};
    /* Add off the first device (by op type), then Mul too (by node name): each moves to REF, CPU no candidate */
    static const char *const specs[2] = {"Op:Add/CPU", "Op:Add/CPU,Node:square/CPU"};
    for (int k = 0; k < 2 && strcmp(cpu->name, "CPU") == 0; k++) { /* (a build without the CPU device: not this part) */
        CHECK_OK(si_avoid_parse(specs[k], &a));
        CHECK(a && a->n == k + 1);
        si_partition *p = NULL;
        CHECK_OK(si_partition_graph_avoid(g, devs, 2, a, &p));
        const si_submodel *sa = p ? sub_holding(p, "add") : NULL, *sq = p ? sub_holding(p, "square") : NULL;
        CHECK(sa && sa->device == 1 && sa->capable == 2u);
        CHECK(sa && strstr(sa->why, "kept off by avoid=Op:Add/CPU"));
        CHECK(sq && sq->device == (k ? 1 : 0));
        si_partition_free(p);
        si_avoid_free(a);
        a = NULL;
    }
    /* a rule for the only device: the node has nowhere to go, and the message says why */
    CHECK_OK(si_avoid_parse("Op:Add/REF", &a));
    si_partition *p = NULL;
    CHECK_ERR(si_partition_graph_avoid(g, &ref, 1, a, &p), SI_ERR_UNSUPPORTED, "kept off by avoid=Op:Add/REF");
    si_avoid_free(a);
    si_graph_free(g);
}

int main(void) {
    test_avoid();
    test_load_and_infer();
    test_clone();
    test_partition();
    test_partition_devices();
    test_scan();
    test_onnx_models();
    test_graphs_attr();
    test_compile();
    test_fold_detach();
    test_shared_consts();
    test_bad_models();
    test_alloc_failures();
    fprintf(stderr, "test_subgraph: %d checks, %d failed\n", n_checks, n_failed);
    return n_failed ? 1 : 0;
}
