/*
 * fold.h — repeated blocks of a graph folded into function calls (fold.c).
 *
 * si_graph_fold_blocks finds runs of identical blocks (the same ops, attributes, types, shapes and wiring,
 * differing in their constants: a transformer's layers), takes the first copy out as a function body and puts a
 * Call node (op "Call", domain SI_FOLD_DOMAIN, INT attribute "function": the body's index) in place of each
 * copy. A body's inputs are, in order: the values its block reads from outside (data), then its *parameters*
 * (si_val.is_param: constants that differ between the copies, the weights; each call passes its own). Constants
 * equal in every copy stay constants of the body. Its outputs are the values that anything after a copy reads.
 * A call's inputs and outputs are the body's, in the same order, for its own copy.
 */
#ifndef SI_IR_FOLD_H
#define SI_IR_FOLD_H

#include "ir/ir.h"

#define SI_FOLD_DOMAIN "ai.safeinfer"
#define SI_FOLD_MAX_FUNCS 4

typedef struct si_fold_func {
    si_graph *body; /* owned */
    int calls;      /* copies replaced by calls */
    int nodes;      /* nodes in the body */
} si_fold_func;

typedef struct si_folding {
    int n_funcs;
    si_fold_func funcs[SI_FOLD_MAX_FUNCS];
} si_folding;

/* Fold g's repeated blocks (g finalized, shapes inferred). moe_params: a MoE node's weights may be parameters (false
 * when the MoE experts run as auxiliary models, which want the weights as constants). g is rewritten and finalized again; *out receives the
 * bodies (none when nothing repeats). On failure g may be half rewritten: drop it. NO_MEM. */
si_result si_graph_fold_blocks(si_graph *g, bool moe_params, si_folding *out);
void si_folding_free(si_folding *f);

#endif
