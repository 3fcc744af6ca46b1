/*
 * test_shapes.c — partial shape inference on real models with open dimensions: every value of the model, in
 * its subgraphs too, must get an element type and a rank from shape inference, although batch, sequence or
 * image sizes are left open (dim_param symbols). Dimensions may stay symbols or unknown; each one must be a
 * valid dimension (si_dim_valid), and a symbol must name one of the model's. The counts are printed.
 *
 *     test_shapes MODEL.onnx [NAME=DIM ...] [--all-known] [--expect VALUE=SHAPE ...] ...
 *
 * NAME=DIM fixes the input dimensions named NAME first (what --shape does); --all-known then asks that every
 * dimension of every value of the model's graph is known (the concrete shapes devices plan with).
 * SHAPE is a comma list of sizes, symbol names or "?" ("batch_size,sequence_length,256"): the inferred shape of
 * VALUE (a value of the model's graph) must be exactly that. Each model argument starts a new group of
 * options. Exit status 0 when every check holds. With SI_TEST_SHAPES_DUMP=1 in the environment every value's
 * shape is printed.
 */
#include "ir/ir.h"
#include "onnx/onnx.h"

#include <stdio.h>
#include <stdlib.h>

static int failures;

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        fprintf(stderr, "FAIL: " __VA_ARGS__);                                                                         \
        fprintf(stderr, "\n");                                                                                         \
        failures++;                                                                                                    \
    } while (0)

typedef struct counts {
    int values, sub_values, graphs, known, syms, unknown;
} counts;

static void shape_text(const si_graph *g, const si_val *v, char *buf, size_t n) {
    size_t o = 0;
    buf[0] = 0;
    if (v->ndim < 0) {
        snprintf(buf, n, "(rank unknown)");
        return;
    }
    for (int d = 0; d < v->ndim && o < n; d++) {
        const char *sym = si_graph_sym_name(g, v->dims[d]);
        if (v->dims[d] >= 0) o += (size_t)snprintf(buf + o, n - o, d ? ",%lld" : "%lld", (long long)v->dims[d]);
        else o += (size_t)snprintf(buf + o, n - o, d ? ",%s" : "%s", sym ? sym : "?");
    }
}

/* Every value of g and of its subgraphs: typed, with valid dimensions. */
static void walk(const char *model, const si_graph *g, counts *c) {
    c->graphs++;
    for (int i = 0; i < g->n_values; i++) {
        const si_val *v = &g->values[i];
        if (g->parent) c->sub_values++;
        else c->values++;
        const char *prod = v->producer >= 0 ? g->nodes[v->producer].op_type : v->is_input ? "input" : v->is_outer ? "outer" : "const";
        if (getenv("SI_TEST_SHAPES_DUMP")) {
            char sh[512];
            shape_text(g, v, sh, sizeof sh);
            printf("  %*s%s = %s(%s) [%s]\n", 2 * g->depth, "", v->name, prod, si_dtype_name(v->dtype), sh);
        }
        if (v->dtype == SI_DTYPE_UNDEFINED || v->ndim < 0) {
            FAIL("%s: value '%s' (from %s, graph depth %d) has %s%s", model, v->name, prod, g->depth,
                 v->dtype == SI_DTYPE_UNDEFINED ? "no element type" : "", v->ndim < 0 ? " no rank" : "");
            continue;
        }
        for (int d = 0; d < v->ndim; d++) {
            int64_t x = v->dims[d];
            if (!si_dim_valid(x)) FAIL("%s: value '%s' dimension %d is %lld, not a dimension", model, v->name, d, (long long)x);
            else if (x >= 0) c->known++;
            else if (si_dim_sym_id(x) >= 0) {
                c->syms++;
                if (!si_graph_sym_name(g, x)) FAIL("%s: value '%s' dimension %d is a symbol the model lacks", model, v->name, d);
            } else c->unknown++;
        }
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attr; a++) {
            const si_attr *at = &g->nodes[i].attrs[a];
            if (at->g) walk(model, at->g, c);
            for (int k = 0; at->gs && k < at->n; k++) walk(model, at->gs[k], c);
        }
}

/* Fix dimension `name` of every graph input to `value` (the API's si_model_set_dim, at the IR level). */
static void set_dim(si_graph *g, const char *name, int64_t value) {
    for (int i = 0; i < g->n_inputs; i++) {
        si_val *v = &g->values[g->inputs[i]];
        for (int d = 0; d < v->ndim; d++)
            if (v->dim_names[d] && !strcmp(v->dim_names[d], name)) v->dims[d] = value;
    }
}

static void expect(const char *model, const si_graph *g, const char *spec) {
    char name[512];
    const char *eq = strchr(spec, '=');
    if (!eq || (size_t)(eq - spec) >= sizeof name) {
        FAIL("bad --expect '%s'", spec);
        return;
    }
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = 0;
    int v = si_graph_find_value(g, name);
    if (v < 0) {
        FAIL("%s: no value '%s'", model, name);
        return;
    }
    char got[512];
    shape_text(g, &g->values[v], got, sizeof got);
    if (strcmp(got, eq + 1)) FAIL("%s: value '%s' has shape [%s], expected [%s]", model, name, got, eq + 1);
    else printf("  %s: [%s]\n", name, got);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_shapes MODEL.onnx [NAME=DIM ...] [--expect VALUE=SHAPE ...] ...\n");
        return 2;
    }
    for (int i = 1; i < argc;) {
        const char *model = argv[i++];
        si_graph *g = NULL;
        si_result s = si_onnx_load_file(model, NULL, &g);
        if (s) {
            FAIL("%s: load: %s", model, si_last_error());
            while (i < argc && !strstr(argv[i], ".onnx")) i++;
            continue;
        }
        int first_expect = -1;
        bool all_known = false;
        for (; i < argc && !strstr(argv[i], ".onnx"); i++) {
            if (!strcmp(argv[i], "--all-known")) {
                all_known = true;
                continue;
            }
            if (!strcmp(argv[i], "--expect")) {
                if (first_expect < 0) first_expect = i;
                i++;
                continue;
            }
            if (first_expect >= 0) continue;
            const char *eq = strchr(argv[i], '=');
            if (eq) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(eq - argv[i]), argv[i]);
                set_dim(g, name, strtoll(eq + 1, NULL, 10));
            }
        }
        if ((s = si_graph_infer_shapes(g, (size_t)1 << 20))) {
            FAIL("%s: shape inference: %s", model, si_last_error());
        } else {
            counts c = {0};
            int before = failures;
            walk(model, g, &c);
            printf("%s: %d values in the graph, %d in %d subgraphs%s; dimensions: %d known, %d symbols, %d unknown\n",
                   model, c.values, c.sub_values, c.graphs - 1, failures == before ? ", every one typed and ranked" : "",
                   c.known, c.syms, c.unknown);
            for (int k = first_expect; k >= 0 && k + 1 < i; k++)
                if (!strcmp(argv[k], "--expect")) expect(model, g, argv[++k]);
            if (all_known && (c.syms || c.unknown)) {
                int shown = 0;
                for (int v = 0; v < g->n_values && shown < 5; v++)
                    if (!si_dims_known(g->values[v].ndim, g->values[v].dims)) {
                        char sh[256];
                        shape_text(g, &g->values[v], sh, sizeof sh);
                        FAIL("%s: value '%s' has shape [%s] although every input dimension is fixed", model,
                             g->values[v].name, sh);
                        shown++;
                    }
                if (!shown) FAIL("%s: %d symbols and %d unknown dimensions in subgraphs", model, c.syms, c.unknown);
            }
        }
        si_graph_free(g);
    }
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
