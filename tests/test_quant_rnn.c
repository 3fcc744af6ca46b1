/*
 * test_quant_rnn.c — the quantization and recurrent ops refuse bad input with a named error (a zero scale that
 * divides, zero point types that differ, an axis out of range, blocked scales of the wrong shape, an int32 input
 * with a zero point, recurrent weights of the wrong shape, sequence lengths past the sequence, unknown
 * activations, ...) on REF and on CPU; and DynamicQuantizeLinear gives the specification's values on the edge
 * cases its fast kernel treats apart (ties to even, NaN, the all-zero input, saturation) on both devices.
 */
#include "si_test.h"

#include "device/device.h"
#include "partition/partition.h"
#include "test_graph.h"

/* A constant of element type dt and shape dims holding vals (as doubles). */
static void cnst(const char *name, si_dtype dt, const int64_t *dims, int nd, const double *vals) {
    si_tensor *t;
    if (si_tensor_create(dt, nd, dims, &t)) die("tensor");
    for (int64_t i = 0; i < si_tensor_count(t); i++) si_store_f64(dt, t->data, i, vals ? vals[i] : 0.1 * (double)(i % 7) - 0.3);
    set_const(name, t);
}

/* Finish G and run it on device d with inputs filled with small values (value `fill` for float ones); the first
 * failing status, with its message in si_last_error. out0 receives output 0 (caller frees) when not NULL. */
static si_result run_on(si_device *d, double fill, si_tensor **out0) {
    si_result s = si_graph_finalize(G);
    if (!s) s = si_graph_infer_shapes(G, 1 << 20);
    si_cmodel *m = NULL;
    si_ireq *r = NULL;
    si_tensor *ins[8] = {0};
    if (!s) s = d->iface->compile(d, G, NULL, &m);
    if (!s) s = m->iface->create_request(m, &r);
    for (int i = 0; !s && i < G->n_inputs && i < 8; i++) {
        const si_val *v = &G->values[G->inputs[i]];
        if ((s = si_tensor_create(v->dtype, v->ndim, v->dims, &ins[i]))) break;
        for (int64_t k = 0; k < si_tensor_count(ins[i]); k++) si_store_f64(v->dtype, ins[i]->data, k, si_dtype_is_float(v->dtype) ? fill : 1);
        s = r->iface->set_input(r, i, ins[i]);
    }
    if (!s) s = r->iface->infer(r);
    if (!s && out0) {
        si_tensor *o;
        if (!(s = r->iface->get_output(r, 0, &o))) s = si_tensor_clone(o, out0);
    }
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", si_last_error());
    if (r) r->iface->free(r);
    if (m) m->iface->free(m);
    for (int i = 0; i < 8; i++) si_tensor_free(ins[i]);
    if (s) si_err(s, "%s", msg);
    return s;
}

static si_device *devs[2];
static int n_devs;

/* Build the graph with `build`, run it on every device with float inputs `fill`: status want with `sub` in the
 * message. */
static void expect_err_fill(void (*build)(void), double fill, si_result want, const char *sub) {
    for (int i = 0; i < n_devs; i++) {
        build();
        CHECK_ERR(run_on(devs[i], fill, NULL), want, sub);
        si_graph_free(G);
        G = NULL;
    }
}

static void expect_err(void (*build)(void), si_result want, const char *sub) { expect_err_fill(build, 0.5, want, sub); }

// --- quantization -------------------------------------------------------------------------------------------------

/* y = op(x, s, z): x a graph input of type xt and shape dims (nd), s a float32 scalar, z a scalar of type zt; the
 * node's index. */
static int qdq_scalars(int opset, const char *op, si_dtype xt, const int64_t *dims, int nd, double s, si_dtype zt,
                       double z) {
    begin(opset);
    input_typed("x", xt, dims, nd);
    cnst("s", SI_F32, NULL, 0, (const double[]){s});
    cnst("z", zt, NULL, 0, (const double[]){z});
    int n = node(op, "x,s,z", "y");
    output("y");
    return n;
}

/* x float32 [2, 3] quantized with a scale of `len` values along `axis`. */
static void q_per_axis(int64_t len, int64_t axis) {
    begin(13);
    input_typed("x", SI_F32, D(2, 3));
    cnst("s", SI_F32, D(len), NULL);
    ai(node("QuantizeLinear", "x,s", "y"), "axis", axis);
    output("y");
}

static void q_zero_scale(void) { qdq_scalars(13, "QuantizeLinear", SI_F32, D(2, 3), 0.0, SI_U8, 3); }

static void q_zero_scale_input(void) { /* a scale known only at run time */
    begin(13);
    input_typed("x", SI_F32, D(2, 3));
    input_typed("s", SI_F32, NULL, 0);
    node("QuantizeLinear", "x,s", "y");
    output("y");
}

static void q_axis_out_of_range(void) { q_per_axis(3, 2); }

static void q_per_axis_length(void) { q_per_axis(4, 1); }

static void q_blocked_shape(void) {
    begin(21);
    input_typed("x", SI_F32, D(2, 6));
    cnst("s", SI_F32, D(2, 2), NULL); /* block 2 needs [2, 3] */
    int n = node("QuantizeLinear", "x,s", "y");
    ai(n, "axis", 1);
    ai(n, "block_size", 2);
    output("y");
}

static void q_output_dtype_mismatch(void) {
    ai(qdq_scalars(21, "QuantizeLinear", SI_F32, D(4), 0.1, SI_U8, 0), "output_dtype", SI_I8);
}

static void dq_zp_type(void) { qdq_scalars(13, "DequantizeLinear", SI_U8, D(4), 0.1, SI_I8, 0); }

static void dq_zp_shape(void) {
    begin(13);
    input_typed("x", SI_U8, D(2, 3));
    cnst("s", SI_F32, D(3), NULL);
    cnst("z", SI_U8, D(2), NULL);
    node("DequantizeLinear", "x,s,z", "y");
    output("y");
}

static void dq_int32_zp(void) { qdq_scalars(13, "DequantizeLinear", SI_I32, D(4), 0.1, SI_I32, 5); }

static void dql_uint8(void) {
    begin(11);
    input_typed("x", SI_U8, D(4));
    node("DynamicQuantizeLinear", "x", "y,s,z");
    output("y");
}

/* MatMulInteger of a uint8 [2, 3] input and an int8 [3, 4] constant with the zero point az of type azt and shape
 * azd (aznd; NULL: a scalar) holding azv (NULL: the default values). */
static void mmi_with_zp(si_dtype azt, const int64_t *azd, int aznd, const double *azv) {
    begin(10);
    input_typed("a", SI_U8, D(2, 3));
    cnst("b", SI_I8, D(3, 4), NULL);
    cnst("az", azt, azd, aznd, azv);
    node("MatMulInteger", "a,b,az", "y");
    output("y");
}

static void mmi_zp_type(void) { mmi_with_zp(SI_I8, NULL, 0, (const double[]){1}); }

static void mmi_zp_shape(void) { mmi_with_zp(SI_U8, D(3), NULL); } /* per row needs 2 */

static void convi_x_zp_vector(void) {
    begin(10);
    input_typed("x", SI_U8, D(1, 2, 5, 5));
    cnst("w", SI_U8, D(3, 2, 3, 3), NULL);
    cnst("xz", SI_U8, D(2), NULL);
    node("ConvInteger", "x,w,xz", "y");
    output("y");
}

static void qlmm_zero_y_scale(void) {
    begin(10);
    input_typed("a", SI_U8, D(2, 3));
    cnst("as", SI_F32, NULL, 0, (const double[]){0.1});
    cnst("az", SI_U8, NULL, 0, (const double[]){1});
    cnst("b", SI_U8, D(3, 2), NULL);
    cnst("bs", SI_F32, NULL, 0, (const double[]){0.1});
    cnst("bz", SI_U8, NULL, 0, (const double[]){1});
    cnst("ys", SI_F32, NULL, 0, (const double[]){0.0});
    cnst("yz", SI_U8, NULL, 0, (const double[]){1});
    node("QLinearMatMul", "a,as,az,b,bs,bz,ys,yz", "y");
    output("y");
}

// --- recurrent layers ---------------------------------------------------------------------------------------------

static int lstm_base(int64_t wrows, const char *seq) {
    begin(14);
    input_typed("x", SI_F32, D(3, 2, 4));
    cnst("W", SI_F32, D(1, wrows, 4), NULL);
    cnst("R", SI_F32, D(1, 20, 5), NULL);
    if (seq) cnst("seq", SI_I32, D(2), (const double[]){3, 4});
    int n = node("LSTM", seq ? "x,W,R,,seq" : "x,W,R,,", "y,yh");
    ai(n, "hidden_size", 5);
    output("y");
    return n;
}

static void lstm_w_shape(void) { lstm_base(16, NULL); }
static void lstm_seq_past_end(void) { lstm_base(20, "seq"); }
static void lstm_unknown_activation(void) {
    int n = lstm_base(20, NULL);
    si_attr *a = attr(n, "activations", SI_ATTR_STRINGS);
    a->strings = si_calloc(3, sizeof(char *));
    if (!a->strings) die("attr");
    a->strings[0] = si_strdup("Sigmoid"), a->strings[1] = si_strdup("Swoosh"), a->strings[2] = si_strdup("Tanh");
    a->n = 3;
}
static void lstm_activation_count(void) {
    int n = lstm_base(20, NULL);
    si_attr *a = attr(n, "activations", SI_ATTR_STRINGS);
    a->strings = si_calloc(2, sizeof(char *));
    if (!a->strings) die("attr");
    a->strings[0] = si_strdup("Sigmoid"), a->strings[1] = si_strdup("Tanh");
    a->n = 2;
}
static void lstm_layout(void) { ai(lstm_base(20, NULL), "layout", 2); }
static void lstm_direction(void) { as(lstm_base(20, NULL), "direction", "sideways"); }

static void gru_initial_h_shape(void) {
    begin(14);
    input_typed("x", SI_F32, D(3, 2, 4));
    input_typed("h0", SI_F32, D(1, 3, 5));
    cnst("W", SI_F32, D(1, 15, 4), NULL);
    cnst("R", SI_F32, D(1, 15, 5), NULL);
    ai(node("GRU", "x,W,R,,,h0", "y"), "hidden_size", 5);
    output("y");
}

// --- DynamicQuantizeLinear's edge values ----------------------------------------------------------------------------

static void dql_edges(void) {
    /* range [0, 255]: scale 1, zero point 0; ties round to even; NaN gives the zero point */
    static const float xs[] = {0, 255, 2.5f, 3.5f, 100.5f, NAN, -0.0f, 254.5f, 0.49f, 1.5f};
    static const uint8_t want[] = {0, 255, 2, 4, 100, 0, 0, 254, 0, 2};
    /* an all-zero input: scale 1/255, zero point 0, zeros */
    for (int i = 0; i < n_devs; i++)
        for (int zero = 0; zero < 2; zero++) {
            const int64_t n = 10 + 70000 * zero; /* the large one runs the vector kernel with its tail */
            begin(11);
            input_typed("x", SI_F32, &n, 1);
            node("DynamicQuantizeLinear", "x", "y,s,z");
            output("y"), output("s"), output("z");
            si_result s = si_graph_finalize(G);
            if (!s) s = si_graph_infer_shapes(G, 1 << 20);
            si_cmodel *m = NULL;
            si_ireq *r = NULL;
            si_tensor *x = NULL;
            CHECK_OK(s);
            CHECK_OK(devs[i]->iface->compile(devs[i], G, NULL, &m));
            if (m) CHECK_OK(m->iface->create_request(m, &r));
            CHECK_OK(si_tensor_create(SI_F32, 1, &n, &x));
            if (r && x) {
                float *xv = x->data;
                for (int64_t k = 0; k < n; k++) xv[k] = zero ? 0.0f : xs[k % 10];
                if (zero) xv[0] = -0.0f;
                CHECK_OK(r->iface->set_input(r, 0, x));
                CHECK_OK(r->iface->infer(r));
                si_tensor *y, *sc, *zp;
                CHECK_OK(r->iface->get_output(r, 0, &y));
                CHECK_OK(r->iface->get_output(r, 1, &sc));
                CHECK_OK(r->iface->get_output(r, 2, &zp));
                const uint8_t *yv = y->data;
                bool ok = true;
                for (int64_t k = 0; k < n; k++) ok &= yv[k] == (zero ? 0 : want[k % 10]);
                CHECK(ok);
                CHECK(*(const float *)sc->data == (zero ? 1.0f / 255.0f : 1.0f));
                CHECK(*(const uint8_t *)zp->data == 0);
                if (!ok) fprintf(stderr, "  on %s\n", devs[i]->name);
            }
            si_tensor_free(x);
            if (r) r->iface->free(r);
            if (m) m->iface->free(m);
            si_graph_free(G);
            G = NULL;
        }
}

/* x [3, k] times DequantizeLinear(int8 [k, n], per column or per tensor): `also` adds a second reader of the
 * dequantized weights (a graph output). */
static void dq_weights(int64_t k, int64_t n, bool percol, bool also) {
    begin(13);
    input_typed("x", SI_F32, D(3, k));
    si_tensor *w;
    const int64_t wd[2] = {k, n};
    if (si_tensor_create(SI_I8, 2, wd, &w)) die("tensor");
    for (int64_t i = 0; i < k * n; i++) ((int8_t *)w->data)[i] = (int8_t)((i * 37 + 11) % 255 - 127);
    set_const("wq", w);
    double sv[64];
    for (int j = 0; j < 64; j++) sv[j] = 0.001 + 0.0001 * j;
    if (percol) cnst("ws", SI_F32, D(n), sv);
    else cnst("ws", SI_F32, NULL, 0, sv);
    int d = node("DequantizeLinear", "wq,ws", "w");
    if (percol) ai(d, "axis", 1);
    node("MatMul", "x,w", "y");
    output("y");
    if (also) output("w");
}

static void dq_keep(void) {
    static const struct {
        int64_t k, n;
        bool percol, also, kept;
    } cases[] = {
        {512, 64, true, false, true},   /* 128 KiB of float weights, read by the MatMul alone: kept */
        {1024, 32, false, false, true}, /* per tensor likewise */
        {512, 64, true, true, false},   /* also a graph output: folded */
        {16, 8, true, false, false},    /* small: folded */
    };
    for (size_t c = 0; c < SI_ARRAY_LEN(cases); c++) {
        si_tensor *y[2] = {0};
        for (int i = 0; i < n_devs; i++) {
            dq_weights(cases[c].k, cases[c].n, cases[c].percol, cases[c].also);
            CHECK_OK(si_graph_finalize(G));
            CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
            const si_val *w = &G->values[val("w")];
            CHECK(!w->const_val == cases[c].kept);
            if (!w->const_val != cases[c].kept) fprintf(stderr, "  case %zu: weights %s\n", c, w->const_val ? "folded" : "kept");
            if (w->const_val) CHECK(w->dq_q != NULL); /* folded: its quantized source is remembered */
            CHECK_OK(run_on(devs[i], 0.25, &y[i]));
            si_graph_free(G);
            G = NULL;
        }
        if (n_devs == 2 && y[0] && y[1]) { /* the same float arithmetic on both devices, to rounding (of the output's
                                            * scale: sums of 1024 products are added in another order on each CPU) */
            const float *a = y[0]->data, *b = y[1]->data;
            double worst = 0, scale = 0;
            for (int64_t i = 0; i < si_tensor_count(y[0]); i++) scale = fmax(scale, fabs((double)a[i]));
            for (int64_t i = 0; i < si_tensor_count(y[0]); i++) worst = fmax(worst, fabs((double)a[i] - b[i]) / scale);
            CHECK(scale > 0 && worst < 1e-5);
            if (worst >= 1e-5) fprintf(stderr, "  case %zu: REF and CPU differ by %g of the output's scale\n", c, worst);
        }
        si_tensor_free(y[0]);
        si_tensor_free(y[1]);
    }
}

/* The submodel index of p holding the node named `name`, or -1. */
static int sub_of(const si_partition *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < p->subs[i].g->n_nodes; k++)
            if (!strcmp(p->subs[i].g->nodes[k].name, name)) return i;
    return -1;
}

/* Two kept weight DequantizeLinears written first (as quantizers write them), their MatMuls behind Relus that
 * are kept off the first device: each DequantizeLinear must land in its MatMul's submodel (before, both made a
 * submodel of their own on the first device, whose outputs, the float weights, were copied at each run). */
static void dq_partition(void) {
    if (n_devs < 2) return;
    begin(13);
    input_typed("x", SI_F32, D(2, 256));
    for (int i = 0; i < 2; i++) {
        si_tensor *w;
        const int64_t wd[2] = {256, 256};
        if (si_tensor_create(SI_I8, 2, wd, &w)) die("tensor");
        for (int64_t k = 0; k < 256 * 256; k++) ((int8_t *)w->data)[k] = (int8_t)((k * 13 + i) % 200 - 100);
        set_const(i ? "wq2" : "wq1", w);
    }
    cnst("ws", SI_F32, NULL, 0, (const double[]){0.01});
    node("DequantizeLinear", "wq1,ws", "w1");
    node("DequantizeLinear", "wq2,ws", "w2");
    node("Relu", "x", "r1");
    node("MatMul", "r1,w1", "a");
    node("Relu", "a", "r2");
    node("MatMul", "r2,w2", "y");
    output("y");
    for (int k = 0; k < G->n_nodes; k++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n%d", k);
        si_free(G->nodes[k].name);
        G->nodes[k].name = si_strdup(nm);
    }
    CHECK_OK(si_graph_finalize(G));
    CHECK_OK(si_graph_infer_shapes(G, 1 << 20));
    char spec[64];
    snprintf(spec, sizeof spec, "Op:Relu/%s", devs[n_devs - 1]->name); /* the Relus on the first device, the rest on the last */
    si_device *list[2] = {devs[n_devs - 1], devs[0]};
    si_avoid *a = NULL;
    si_partition *p = NULL;
    CHECK_OK(si_avoid_parse(spec, &a));
    CHECK_OK(si_partition_graph_avoid(G, list, 2, a, &p));
    if (p) {
        CHECK(sub_of(p, "n0") >= 0 && sub_of(p, "n0") == sub_of(p, "n3")); /* DequantizeLinear w1 with MatMul a */
        CHECK(sub_of(p, "n1") >= 0 && sub_of(p, "n1") == sub_of(p, "n5")); /* w2 with y's MatMul */
        CHECK(p->n == 4);
        if (p->n != 4 || sub_of(p, "n0") != sub_of(p, "n3"))
            for (int i = 0; i < p->n; i++) fprintf(stderr, "  submodel %d: %d nodes, first %s\n", i, p->subs[i].g->n_nodes, p->subs[i].g->nodes[0].name);
    }
    si_partition_free(p);
    si_avoid_free(a);
    si_graph_free(G);
    G = NULL;
}

int main(void) {
    CHECK_OK(si_device_get("REF", &devs[n_devs]));
    if (devs[n_devs]) n_devs++;
#ifdef SI_HAVE_CPU
    CHECK_OK(si_device_get("CPU", &devs[n_devs]));
    if (devs[n_devs]) n_devs++;
#endif
    expect_err(q_zero_scale, SI_ERR_INVALID_ARG, "non-zero");
    expect_err_fill(q_zero_scale_input, 0.0, SI_ERR_INVALID_ARG, "y_scale[0] is 0");
    expect_err(q_axis_out_of_range, SI_ERR_INVALID_ARG, "axis 2 is out of range");
    expect_err(q_per_axis_length, SI_ERR_INVALID_ARG, "per-axis y_scale must be 1-D of length 3");
    expect_err(q_blocked_shape, SI_ERR_INVALID_ARG, "blocked y_scale has 2 in dimension 1, expected 3");
    expect_err(q_output_dtype_mismatch, SI_ERR_INVALID_ARG, "output_dtype 3 does not match y_zero_point");
    expect_err(dq_zp_type, SI_ERR_INVALID_ARG, "x_zero_point has element type int8, x has uint8");
    expect_err(dq_zp_shape, SI_ERR_INVALID_ARG, "x_zero_point must have the shape of x_scale");
    expect_err(dq_int32_zp, SI_ERR_INVALID_ARG, "x_zero_point must be 0");
    expect_err(dql_uint8, SI_ERR_UNSUPPORTED, "DynamicQuantizeLinear");
    expect_err(mmi_zp_type, SI_ERR_INVALID_ARG, "a_zero_point has element type int8, A has uint8");
    expect_err(mmi_zp_shape, SI_ERR_INVALID_ARG, "a_zero_point has 3 values");
    expect_err(convi_x_zp_vector, SI_ERR_INVALID_ARG, "x_zero_point must be a scalar");
    expect_err(qlmm_zero_y_scale, SI_ERR_INVALID_ARG, "y_scale[0] is 0");
    expect_err(lstm_w_shape, SI_ERR_INVALID_ARG, "W has shape float32[1,16,4], expected float32[1,20,4]");
    expect_err(lstm_seq_past_end, SI_ERR_INVALID_ARG, "sequence_lens[1] = 4 is outside 0..3");
    expect_err(lstm_unknown_activation, SI_ERR_UNSUPPORTED, "activation 'Swoosh'");
    expect_err(lstm_activation_count, SI_ERR_INVALID_ARG, "activations has 2 names, expected 3");
    expect_err(lstm_layout, SI_ERR_INVALID_ARG, "layout 2 must be 0 or 1");
    expect_err(lstm_direction, SI_ERR_INVALID_ARG, "sideways");
    expect_err(gru_initial_h_shape, SI_ERR_INVALID_ARG, "initial_h has shape float32[1,3,5], expected float32[1,2,5]");
    dql_edges();
    dq_keep();
    dq_partition();
    return test_summary("test_quant_rnn");
}
