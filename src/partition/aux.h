/*
 * aux.h — units of a graph that run as auxiliary compiled models driven by the host (host flash attention):
 * which nodes make one, found the same way by the partitioner (which cuts each unit into a submodel of its own,
 * marked `aux`) and by the compile step (which finds the attention again in that submodel's graph and builds
 * its tile and final models).
 */
#ifndef SI_PARTITION_AUX_H
#define SI_PARTITION_AUX_H

#include "ir/ir.h"

/* Kinds of auxiliary units (si_submodel.aux). */
enum { SI_AUX_NONE = 0, SI_AUX_HFA = 1, SI_AUX_MOE = 2 };

#define SI_HFA_MAX_NODES 5

/* One attention found in a graph: out = softmax(scale x (q . k) + mask) . v, over the last axis. */
typedef struct si_hfa_match {
    int nodes[SI_HFA_MAX_NODES], n_nodes; /* the unit's nodes in order: Attention, or MatMul [Mul|Div] [Add] Softmax MatMul */
    int q, k, v, mask;                    /* value ids (mask -1 when none) */
    int k_axis;                           /* the keys' axis of k: rank-2 (Attention: K [.., keys, head]) or rank-1 (K^T) */
    bool transpose_k;                     /* k is K (the tile model transposes it), not K^T */
    bool causal;
    int scale_node;                       /* the pattern's Mul/Div node (-1: none); Attention: -1 */
    float scale;                          /* Attention: its scale (the attribute or 1/sqrt(head)) */
    int out;                              /* the attention's output value */
    int64_t keys;                         /* the context length as inferred (negative: not known at compile time) */
} si_hfa_match;

/* Is node `n` of g the start of an attention the host loop can run (float32; Attention: 4-D, one head count, no
 * past, no softcap, only its first output used)? Fills *m. */
bool si_hfa_match_at(const si_graph *g, int n, si_hfa_match *m);

/* One MoE or QMoE (com.microsoft) whose experts can run as auxiliary models: float32 input [tokens, hidden] or
 * [batch, sequence, hidden], router logits from the graph, expert weights and biases constant, activation relu,
 * gelu, silu, identity or interleaved SwiGLU (swiglu_fusion 1; the graph's default opset 13 or later), no fc3. QMoE: 2/4/8-bit weights in blocks MatMulNBits takes (a power of two
 * of 16 or more; row-wise: a row of such a length), float32 scales, zero points per block (MatMulNBits' packed layout)
 * or per row; each expert then runs as MatMulNBits on views of its weights, and its shares are always renormalised. */
enum { SI_MOE_RELU, SI_MOE_GELU, SI_MOE_SILU, SI_MOE_IDENTITY, SI_MOE_SWIGLU };
typedef struct si_moe_match {
    int node;
    int x, router;          /* value ids */
    int w1, b1, w2, b2;     /* constant value ids ([E, fF, H], [E, fF], [E, H, F], [E, H]; f = 2 with SwiGLU); b1, b2 -1 when absent */
    int act;
    float alpha, beta, limit; /* SwiGLU's (limit INFINITY: none) */
    int64_t k, E, F, H;
    bool normalize;
    bool quant;             /* QMoE: w1, w2 are packed uint8 [E, fF, H / per], [E, H, F / per] */
    int bits;               /* QMoE: 2, 4, 8 */
    int64_t block;          /* QMoE: block_size, or the row length when row-wise */
    int s1, s2, z1, z2;     /* QMoE: scales and zero points (constant value ids; z -1 when absent) */
    bool rowzp;             /* QMoE: zero points per row ([E, rows / per]: the expert models get them as floats) */
} si_moe_match;
bool si_moe_match_at(const si_graph *g, int n, si_moe_match *m);

/* Mark the attentions of g worth tiling for hfa_tile keys per tile (a context known to be shorter than twice
 * that is not) and, with moe, the MoE nodes whose experts can run as auxiliary models: unit[i] = the unit of
 * node i (0, 1, ...) or -1; kind[u] (when not NULL, room for g->n_nodes) = the unit's SI_AUX_ kind. Returns the
 * number of units. */
int si_aux_find(const si_graph *g, int64_t hfa_tile, bool moe, int *unit, int *kind);

#endif
