/*
 * moe_drv.h — sparse mixture of experts: a compiled model that runs one MoE (com.microsoft) with only the top-k
 * experts of each token, driving one auxiliary compiled model per expert (made by whoever calls si_moe_create, on
 * one device; this file knows no device):
 *
 *   expert e   x_e [n, hidden] -> y_e [n, hidden]   (fc2[e] act(fc1[e] x + b1[e]) + b2[e])
 *
 * The host reads the router logits, takes softmax and the top k of each token (ties: the lower expert first),
 * renormalised when asked; gathers the rows routed to each expert (padded with zero rows to a power of two, so that
 * a device that plans per shape makes few plans), runs the expert's request and adds weight x output into the
 * token's row. An expert no token chose does not run. A shape the loop does not take runs the `plain` model (the
 * MoE as compiled normally), which then reports what is wrong.
 *
 * A failure of any expert's request fails this model's inference with its status and message (naming the expert):
 * to the fail-safe layer above, the experts and the plain model are one compiled model on one device, failed over
 * and rebuilt together.
 */
#ifndef SI_EXEC_MOE_DRV_H
#define SI_EXEC_MOE_DRV_H

#include "device/iface.h"

typedef struct si_moe_desc {
    si_cmodel *plain;          /* taken over */
    si_cmodel **experts;       /* n_experts models, taken over (the array is copied) */
    int n_experts;
    int x_in, router_in;       /* the plain model's input ports of the tokens and the router logits */
    int64_t k;                 /* experts per token, 1..n_experts */
    bool normalize;            /* renormalise the k weights to sum 1 */
    const char *label;         /* for messages, copied */
    void *owned;               /* freed by owned_free(owned) after the models */
    void (*owned_free)(void *owned);
} si_moe_desc;

/* The driver model; its ports are plain's. INVALID_ARG for a bad descriptor, NO_MEM; the models are freed on
 * failure too. */
si_result si_moe_create(const si_moe_desc *d, si_cmodel **out);

/* How many expert inferences the requests of models made by si_moe_create have run in this process (tests). */
int64_t si_moe_expert_runs(void);

#endif
