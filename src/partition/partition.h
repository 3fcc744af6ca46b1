/*
 * partition.h — cut a graph into submodels by device capability.
 *
 * For the device list D1..Dn each node goes to the first device whose supports_op accepts it; nodes are
 * ordered so that runs on one device stay together (a topological order that prefers the device of the run
 * in progress), and each run becomes a submodel: a graph of its own whose inputs are the values that cross
 * into it and whose outputs are the values later submodels or the model's outputs read. Constants are shared
 * with the parent graph, not copied. The partitioner only calls supports_op; it compiles nothing.
 *
 * Control flow (If, Loop, Scan: ops with subgraphs) is not given to a device: each such node becomes a host
 * submodel of its own (host set, device -1, no candidates), whose graph holds the node with its subgraphs. The
 * compile step runs it on the host through the executor and compiles its subgraphs like a model of their own.
 */
#ifndef SI_PARTITION_H
#define SI_PARTITION_H

#include "device/device.h"

typedef struct si_submodel {
    int id;
    bool host;          /* one control-flow node, run by the executor on the host (device -1, capable 0) */
    int aux;            /* SI_AUX_HFA / SI_AUX_MOE (partition/aux.h): an attention or a MoE run as auxiliary models by a
                         * host loop; else 0 */
    int device;         /* index in the device list of the first device that accepts every node; -1 for host */
    uint64_t capable;   /* bit i: device i accepts every node of the submodel (the failover candidates) */
    int n_nodes;
    int *nodes;         /* node indices in the parent graph, in execution order */
    si_graph *g;        /* the submodel's own graph */
    int *in_values;     /* parent value id of each submodel input (g->inputs order) */
    int *out_values;    /* parent value id of each submodel output (g->outputs order) */
    char *why;          /* why nodes did not go to earlier devices ("" when they went to the first) */
} si_submodel;

typedef struct si_partition {
    int n;
    si_submodel *subs;
} si_partition;

/* Partition g (shapes inferred, constants folded) over devs[0..n_devs). Nodes whose outputs are all constant
 * are left out (they were folded); nodes with subgraphs become host submodels (above), devices are not asked. Errors: UNSUPPORTED naming a node no device accepts and every device's
 * reason; NO_MEM. */
si_result si_partition_graph(const si_graph *g, si_device *const *devs, int n_devs, si_partition **out);

/* Placement rules (config key `avoid`): keep ops or nodes off a device. "Op:Softmax/OCL,Node:attn_3/OCL": an
 * entry is KIND:NAME/DEVICE with KIND Op (an op type, any domain) or Node (a node name); the device named (as
 * in the device list) does not get the nodes the entry matches, as if it did not support them (they go to the
 * next device of the list that does, and the device is not their failover candidate). */
typedef struct si_avoid {
    int n;
    struct si_avoid_rule {
        bool node;        /* Node: (else Op:) */
        char name[128];   /* op type or node name */
        char device[64];  /* canonical device name */
    } *rules;
} si_avoid;
/* Parse an avoid spec ("" or NULL: no rules; *out NULL). Errors: INVALID_ARG naming the entry; NO_MEM. */
si_result si_avoid_parse(const char *spec, si_avoid **out);
void si_avoid_free(si_avoid *a);
/* si_partition_graph with placement rules (NULL: none). */
si_result si_partition_graph_avoid(const si_graph *g, si_device *const *devs, int n_devs, const si_avoid *avoid, si_partition **out);
/* si_partition_graph_avoid that also cuts each attention worth tiling for hfa_tile keys per tile (config
 * hfa_tile; 0: none) into a submodel of its own with aux = SI_AUX_HFA, and with moe (config moe_experts) each MoE
 * whose experts can run as auxiliary models with aux = SI_AUX_MOE, on the first device that accepts all its
 * nodes (a unit no device takes whole, or whose nodes cannot run in one stretch, is left as it is). */
si_result si_partition_graph_aux(const si_graph *g, si_device *const *devs, int n_devs, const si_avoid *avoid, int64_t hfa_tile,
                                 bool moe, si_partition **out);
void si_partition_free(si_partition *p);

#endif
