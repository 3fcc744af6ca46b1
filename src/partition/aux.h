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
enum { SI_AUX_NONE = 0, SI_AUX_HFA = 1 };

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

/* Mark the attentions of g worth tiling for hfa_tile keys per tile (a context known to be shorter than twice
 * that is not): unit[i] = the unit of node i (0, 1, ...) or -1. Returns the number of units. */
int si_aux_find(const si_graph *g, int64_t hfa_tile, int *unit);

#endif
