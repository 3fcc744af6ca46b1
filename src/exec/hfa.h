/*
 * hfa.h — host flash attention: a compiled model that runs one attention over a long context as a loop over
 * key/value tiles on the host, driving two auxiliary compiled models (made by whoever calls si_hfa_create, on
 * one device; this file knows no device):
 *
 *   tile   (q, k_tile, v_tile, mask_tile, acc, m, l) -> (acc', m', l'): the scores of one tile of keys, the
 *          running max m, the running sum l of exp(score - m) and the accumulator acc of exp(score - m) x v,
 *          rescaled by exp(m - m') (online softmax);
 *   final  (acc, l) -> out = acc / l.
 *
 * The state is [1, rows, Dv] and [1, rows, 1] (rows: every query of every leading dimension), the final
 * model's output [1, rows, Dv], given the attention's shape here. The host slices K and V into tiles of `tile` keys (zero padded at the end), makes the mask tile (the
 * attention's additive or boolean mask sliced, the causal mask, -inf on padded keys) and keeps acc, m and l
 * between the tile runs, so that memory is O(queries x tile), not O(queries x keys). A context of at most
 * `tile` keys runs the `plain` model (the attention as compiled normally) instead, as does a shape the loop
 * does not take (batch dimensions that differ between Q, K and V).
 *
 * A failure of any auxiliary request fails this model's inference with its status and message (prefixed with
 * the model that failed): to the fail-safe layer above, the tile, final and plain models are one compiled
 * model on one device, failed over and rebuilt together.
 */
#ifndef SI_EXEC_HFA_H
#define SI_EXEC_HFA_H

#include "device/iface.h"

typedef struct si_hfa_desc {
    si_cmodel *plain, *tile, *final; /* taken over (freed with the model; on failure too) */
    int q_in, k_in, v_in;            /* the plain model's input ports of Q, K (or K^T), V */
    int mask_in;                     /* the mask's input port, or -1 */
    si_tensor *mask_const;           /* or a constant mask (a reference is taken), or NULL */
    int k_axis;                      /* the axis of K that holds the keys: rank-2 for K, rank-1 for K^T */
    bool causal;                     /* key j of query i masked when j > i */
    bool mask_short;                 /* keys past the mask's last dimension are masked (the Attention op: a mask may
                                      * cover fewer keys); else a last dimension of 1 broadcasts (an Add) */
    int64_t tile_keys;               /* keys per tile (> 0) */
    const char *label;               /* for messages ("attention 'attn'"), copied */
    void *owned;                     /* freed by owned_free(owned) after the three models (what they read: graphs) */
    void (*owned_free)(void *owned);
} si_hfa_desc;

/* The driver model; its ports are plain's. INVALID_ARG for a bad descriptor, NO_MEM. */
si_result si_hfa_create(const si_hfa_desc *d, si_cmodel **out);

/* How many tile inferences the requests of models made by si_hfa_create have run in this process (tests). */
int64_t si_hfa_tile_runs(void);

#endif
