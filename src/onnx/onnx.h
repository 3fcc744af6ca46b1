/*
 * onnx.h — the ONNX loader: a serialized ModelProto (or TensorProto) into the graph IR.
 */
#ifndef SI_ONNX_H
#define SI_ONNX_H

#include "ir/ir.h"

/* Nesting limits of a model (checked on the wire before protobuf-c unpacks it recursively): subgraphs in
 * attributes (If/Loop/Scan bodies) at most SI_MAX_WIRE_GRAPH_DEPTH deep (the IR then allows SI_MAX_GRAPH_DEPTH), any messages at most SI_MAX_MSG_DEPTH. */
#define SI_MAX_WIRE_GRAPH_DEPTH 32
#define SI_MAX_MSG_DEPTH 128

/* Parse a ModelProto. base_dir (may be NULL: external data is then refused) is the folder external data
 * locations are relative to. On success *out is a finalized graph with declared shapes and constants. */
si_result si_onnx_load(const void *buf, size_t len, const char *base_dir, si_graph **out);
/* Load a model file without holding the file and the weights in memory at once (see loader.c). */
si_result si_onnx_load_file(const char *path, const char *base_dir, si_graph **out);
/* Parse a TensorProto into a new owned tensor; *name (optional) receives a copy of its name. */
si_result si_onnx_read_tensor(const void *buf, size_t len, si_tensor **out, char **name);

#endif
