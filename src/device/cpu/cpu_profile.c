/*
 * cpu_profile.c — the CPU device's rows of a step profile (util/prof.h): per plan step, the ONNX nodes it
 * runs (plan->node_step), its ops, its kernel (oneDNN's implementation name, an own kernel, "reference").
 */
#include "device/cpu/cpu.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct nodes_ctx {
    const cpu_plan *p;
    int step;
} nodes_ctx;

/* The names of the nodes step `step` runs, comma separated; a reorder names the node it feeds. */
static char *step_nodes(void *ctx_) {
    const nodes_ctx *ctx = ctx_;
    const cpu_plan *p = ctx->p;
    const si_graph *g = p->g;
    size_t len = 1;
    int n_cov = 0;
    for (int n = 0; n < g->n_nodes; n++)
        if (p->node_step[n] == ctx->step) len += strlen(g->nodes[n].name) + 1, n_cov++;
    const cpu_step *st = &p->steps[ctx->step];
    if (!n_cov && st->node >= 0) len += strlen(g->nodes[st->node].name) + 8;
    char *s = si_malloc(len);
    if (!s) return NULL;
    size_t o = 0;
    s[0] = 0;
    for (int n = 0; n < g->n_nodes; n++)
        if (p->node_step[n] == ctx->step) o += (size_t)snprintf(s + o, len - o, "%s%s", o ? "," : "", g->nodes[n].name);
    if (!n_cov && st->node >= 0) snprintf(s, len, "(for) %s", g->nodes[st->node].name);
    return s;
}

void cpu_profile_flush(const cpu_plan *p, double *ms, int64_t *calls, si_prof *sink) {
    for (int i = 0; i < p->n_steps; i++) {
        if (!calls[i]) continue;
        const cpu_step *st = &p->steps[i];
        nodes_ctx ctx = {p, i};
        char ops[104];
        snprintf(ops, sizeof ops, "%s%s", st->kind == STEP_REF ? "ref:" : "", st->what);
        /* a failure (out of memory) loses this step's sample, never the inference */
        /* oneDNN's own reference implementations ("ref:any", "ref_int8:any", "bnorm_ref:any", ...) count as
         * reference kernels too */
        bool ref = st->kind == STEP_REF || !strncmp(st->kernel, "ref", 3) || strstr(st->kernel, "_ref:") || strstr(st->kernel, "_ref_");
        (void)si_prof_add(sink, st, ops, "CPU", st->kernel[0] ? st->kernel : "oneDNN", ref, step_nodes, &ctx,
                          calls[i], ms[i]);
        calls[i] = 0;
        ms[i] = 0;
    }
}

bool cpu_no_own(void) { return getenv("SI_CPU_NO_OWN") != NULL; }
