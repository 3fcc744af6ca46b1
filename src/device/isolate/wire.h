/*
 * wire.h — what the two processes of an isolated device share (the library's proxy, proxy.c, and the helper
 * process, worker.c): framed messages on stream sockets with file descriptors passed alongside, the buffers
 * that encode and decode them, shared-memory segments, and the graph codec (codec.c).
 *
 * Frames: {u32 type, u32 length} then `length` bytes of payload, little-endian as the machine is (both
 * processes are the same build). File descriptors (SCM_RIGHTS) ride with a frame's first byte.
 *
 * Either side may be handed garbage: the worker by a buggy parent, the parent by a worker whose memory a
 * crashing driver scribbled over. Every reader is therefore bounds-checked (an si_rbuf goes `bad` instead
 * of reading past its end) and every count, size, type and index read is validated before it is used.
 */
#ifndef SI_ISOLATE_WIRE_H
#define SI_ISOLATE_WIRE_H

#include "ir/ir.h"

/* Bumped whenever a message's layout changes; the worker must speak the library's (checked at HELLO). */
#define SI_WIRE_PROTOCOL 1
/* The largest frame either side accepts (graph structures; tensors and constants go through shared memory). */
#define SI_WIRE_MAX_FRAME ((size_t)256 << 20)
/* File descriptors per frame. */
#define SI_WIRE_MAX_FDS 32
/* Offsets in shared memory are multiples of this (any element type, and cache lines). */
#define SI_WIRE_ALIGN 64

typedef enum si_msg {
    /* control socket (fd 3 of the worker) */
    SI_MSG_HELLO = 1, /* parent: protocol, version, device, fault spec, fault state. worker: SI_MSG_REPLY */
    SI_MSG_CHANNEL,   /* parent: {u32 kind, u64 model id} + one fd, the worker's end of a new channel */
    /* channels */
    SI_MSG_SUPPORTS,  /* graph + segment fds -> per node: status, message */
    SI_MSG_COMPILE,   /* options, graph + segment fds -> model id, label, ports */
    SI_MSG_INFER,     /* output slot, inputs (shape, offset), outputs (offset, room) [+ arena fd] -> outputs */
    SI_MSG_FETCH,     /* after SI_MSG_NEED: the outputs again, into more room [+ arena fd] */
    SI_MSG_REPLY,     /* worker: {u32 status, u32 flags, str message} then the answer when status is SI_OK */
    SI_MSG_NEED,      /* worker: the outputs do not fit: {u32 n, u64 bytes per output} */
} si_msg;

typedef enum si_channel_kind { SI_CH_SUPPORTS = 1, SI_CH_COMPILE, SI_CH_REQUEST } si_channel_kind;

/* SI_MSG_REPLY flags */
#define SI_REPLY_FAULT_LOST 1u /* the worker's fault injection has fired a "lost" (carried over to a new helper) */

// --- buffers --------------------------------------------------------------------------------------------

/* A growing byte buffer; `oom` is set (and later writes ignored) when it cannot grow. */
typedef struct si_wbuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} si_wbuf;

void wb_free(si_wbuf *b);
void wb_bytes(si_wbuf *b, const void *p, size_t n);
void wb_u8(si_wbuf *b, uint8_t v);
void wb_u32(si_wbuf *b, uint32_t v);
void wb_i32(si_wbuf *b, int32_t v);
void wb_u64(si_wbuf *b, uint64_t v);
void wb_i64(si_wbuf *b, int64_t v);
void wb_f32(si_wbuf *b, float v);
/* u32 length then the bytes (no NUL); NULL is written as length 0xFFFFFFFF. */
void wb_str(si_wbuf *b, const char *s);
/* dtype, rank (-1: unknown), dims. */
void wb_shape(si_wbuf *b, si_dtype dtype, int ndim, const int64_t *dims);

/* A bounds-checked reader: a read past the end sets `bad` and returns zeros. */
typedef struct si_rbuf {
    const uint8_t *p;
    size_t n, pos;
    bool bad;
} si_rbuf;

static inline si_rbuf rb_make(const void *p, size_t n) { return (si_rbuf){.p = p, .n = n}; }
const void *rb_bytes(si_rbuf *r, size_t n);
uint8_t rb_u8(si_rbuf *r);
uint32_t rb_u32(si_rbuf *r);
int32_t rb_i32(si_rbuf *r);
uint64_t rb_u64(si_rbuf *r);
int64_t rb_i64(si_rbuf *r);
float rb_f32(si_rbuf *r);
/* A new NUL-terminated copy (si_free), or NULL: for a NULL string (*was_null set when given) or when bad
 * (also set bad when the copy cannot be allocated, with *oom set when given). */
char *rb_str(si_rbuf *r, bool *was_null);
/* A string into buf (truncated to n-1 bytes). */
void rb_str_into(si_rbuf *r, char *buf, size_t n);
/* A count that must be at most max (else bad). */
uint32_t rb_count(si_rbuf *r, uint32_t max);
/* dtype, rank, dims as wb_shape wrote them. The rank must be in -1..SI_MAX_DIMS (-1 only when allow_unknown),
 * dims >= -1 (>= 0 when !allow_unknown), the dtype an si_dtype value (storable when !allow_unknown). */
void rb_shape(si_rbuf *r, si_dtype *dtype, int *ndim, int64_t *dims, bool allow_unknown);

/* The bytes of a tensor of this type and fully known shape, or SIZE_MAX when it is not storable or overflows. */
size_t si_wire_nbytes(si_dtype dtype, int ndim, const int64_t *dims);
/* n rounded up to SI_WIRE_ALIGN (SIZE_MAX on overflow). */
size_t si_wire_align(size_t n);

// --- frames ---------------------------------------------------------------------------------------------

/* Send a frame with its payload and fds (nfds <= SI_WIRE_MAX_FDS). Never raises SIGPIPE. SI_ERR_DEVICE_LOST
 * ("the connection is closed" / the errno) when the peer is gone. */
si_result si_wire_send(int sock, uint32_t type, const si_wbuf *payload, const int *fds, int nfds);
/* Receive one frame: its type, its payload into *b (reused), its fds (close-on-exec; at most SI_WIRE_MAX_FDS,
 * *nfds receives the count; the caller owns them). timeout_ms < 0 waits for ever. SI_ERR_DEVICE_LOST when the
 * peer closed the socket, it failed, or the frame is malformed or too large (the message says which);
 * SI_ERR_ABORTED when the time ran out; SI_ERR_NO_MEM. */
si_result si_wire_recv(int sock, uint32_t *type, si_wbuf *b, int *fds, int *nfds, int timeout_ms);
void si_wire_close_fds(int *fds, int nfds);

// --- shared memory -------------------------------------------------------------------------------------

/* A new anonymous shared-memory file (memfd "safeinfer-<what>") of `size` bytes, close-on-exec, sealed so
 * that neither side can shrink or grow it (a peer that truncated a mapped file would crash the other with
 * SIGBUS) and, unless seal_later, against any further seal. With seal_later the creator adds
 * F_SEAL_WRITE | F_SEAL_SEAL itself once it has written it. Returns the fd, or -1 with the message set
 * (SI_ERR_NO_MEM). */
int si_shm_create(const char *what, size_t size, bool seal_later);
/* The size of a shared-memory file, or -1. */
long long si_shm_size(int fd);

// --- the graph codec (codec.c) --------------------------------------------------------------------------

/* Where a constant lives in shared memory: segment id and byte offset. */
typedef bool (*si_const_place_fn)(void *user, const si_tensor *t, uint32_t *seg, uint64_t *off);
/* The mapping of segment `seg` (base, size), or NULL when the segment is unknown. */
typedef const uint8_t *(*si_seg_map_fn)(void *user, uint32_t seg, size_t *size);

/* Encode everything of g a device may read: values (names, types, shapes, symbolic dimension names, flags,
 * constants by reference: place() says where each lives), nodes (names, op, domain, opset, inputs, outputs,
 * attributes with their tensors inline), graph inputs and outputs, opsets, IR version and producer. Node and
 * value indices are kept, so an answer per node index means the same node on both sides. false when place()
 * fails (b->oom is set when the buffer could not grow). */
bool si_graph_encode(si_wbuf *b, const si_graph *g, si_const_place_fn place, void *user);
/* Decode a graph: constants become views into the segments (borrowed: the mappings must outlive the graph);
 * producers, op definitions and node opsets are set as si_graph_finalize sets them, without reordering the
 * nodes. SI_ERR_PARSE naming what is malformed (a count, an index out of range, a constant outside its
 * segment, a value produced twice...), SI_ERR_NO_MEM. */
si_result si_graph_decode(si_rbuf *r, si_seg_map_fn map, void *user, si_graph **out);

#endif
