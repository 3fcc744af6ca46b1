/*
 * util.h — internal basics shared by every layer: error reporting, the allocation hook, the tensor struct
 * and element-type helpers (float16/bfloat16 conversions, generic element load/store).
 */
#ifndef SI_UTIL_H
#define SI_UTIL_H

#include "safeinfer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------------------------------------------
 * si_err sets the thread-local message and returns the status, so a failure site reads
 *     return si_err(SI_ERR_PARSE, "node %s: attribute %s has no value", name, attr);
 */
#if defined(__GNUC__)
#define SI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SI_PRINTF(a, b)
#endif
si_result si_err(si_result s, const char *fmt, ...) SI_PRINTF(2, 3);
/* Prefix the current message with more context: "ctx: old message". Returns s. */
si_result si_err_wrap(si_result s, const char *fmt, ...) SI_PRINTF(2, 3);
void si_err_clear(void);

/* The capacity of the thread-local message (bytes, NUL included). */
#define SI_ERR_CAP 2048
/* A failure kept aside: its status and a copy of its message. The thread-local message belongs to one thread
 * and is overwritten by the next failing call; a snapshot carries it across threads (a worker's failure to
 * the caller) or past calls made before it is reported:
 *     si_error e; si_error_save(&e, st);  ...other calls...  return si_error_restore(&e);   */
typedef struct si_error {
    si_result status;
    char msg[SI_ERR_CAP];
} si_error;
/* Save status s with this thread's current message ("" for SI_OK). Returns s. */
si_result si_error_save(si_error *e, si_result s);
/* Make e this thread's current failure (message included). Returns e->status. */
si_result si_error_restore(const si_error *e);

/* ---- allocation: every allocation of the library goes through these ------------------------------------ */
void *si_malloc(size_t n);
void *si_calloc(size_t n, size_t size);
void *si_realloc(void *p, size_t n);
void si_free(void *p);
/* Free what the pointer lvalue p points to and set p to NULL (a pointer freed and kept for later: no dangling). */
#define SI_FREE_CLEAR(p) (si_free(p), (p) = NULL)
/* si_free each pointer listed, in order: SI_FREE_ALL(m->a, m->b, ...) (the members of a struct that owns several
 * arrays, the buffers of a kernel). */
void si_free_each(void *const *p, size_t n);
#define SI_FREE_ALL(...) si_free_each((void *const[]){__VA_ARGS__}, sizeof((void *const[]){__VA_ARGS__}) / sizeof(void *))
char *si_strdup(const char *s);
/* Test hook: the Nth allocation from now (1-based) and every `count - 1` after it fail; 0 disables. */
void si_alloc_fail_after(long n, long count);

/* ---- memory bounds (alloc.c) ------------------------------------------------------------------------------
 * Allocations of at least SI_BIG_ALLOC bytes are checked against a process-wide cap on one allocation
 * (default: physical memory) and charged to the calling thread's budget, if it has entered one. A budget
 * counts the live bytes of the big blocks charged to it (a block gives its bytes back when freed, on any
 * thread) and refuses an allocation that would take it over its limit (0 = no limit): si_malloc returns
 * NULL. si_mem_check / si_mem_fits give the named error before an allocation: NO_MEM "WHAT: 4.0 GiB would
 * exceed the memory budget max_memory_mb=256 (10.0 MiB in use)". */
#define SI_BIG_ALLOC ((size_t)1 << 20)
#define SI_RECYCLE_SLOTS 16
#define SI_RECYCLE_MAX_BYTES ((size_t)256 << 20)
typedef struct si_budget {
    int64_t limit;        /* bytes; 0 = no limit */
    _Atomic int64_t used; /* live bytes charged (counted only when there is a limit) */
    _Atomic int64_t peak; /* the most that was live at once */
    /* tensor blocks given back while the budget was entered, kept for the next tensor of about their size
     * (si_budget_keep / si_budget_reuse): oldest first, under a spin lock */
    _Atomic int rc_lock;
    int rc_n;
    size_t rc_bytes;
    void *rc_p[SI_RECYCLE_SLOTS];
    size_t rc_cap[SI_RECYCLE_SLOTS];
} si_budget;
void si_budget_init(si_budget *b, int64_t limit_bytes);
/* Free the blocks b keeps for reuse and forget those still charged to it (before b's storage goes away; charged
 * blocks are not freed). */
void si_budget_destroy(si_budget *b);
/* Tensor memory recycling. A request's tensors (a submodel's outputs, a device's run-time tensors, the copies of
 * the executor) are made and dropped at every inference as buffers move between submodels; each new block of
 * SI_PREFAULT_MIN or more came from the system, and on a VM its pages cost ~10 us each the first time they are
 * written: a quarter of an LLM's first prefill went to the pages of hidden states that lived for one layer.
 * si_budget_keep: a tensor's owned block of cap bytes (>= SI_PREFAULT_MIN) goes to the calling thread's budget
 * instead of free() (false: no budget entered, or the block is not taken: caller frees it). The budget keeps at
 * most SI_RECYCLE_SLOTS blocks and SI_RECYCLE_MAX_BYTES in all, dropping its oldest first.
 * si_budget_reuse: a kept block for n bytes (its size between n and 2n + 64 KiB; the smallest such), its size in
 * *cap; NULL when the current budget has none. Kept blocks stay charged to the budget; they are freed before the
 * budget refuses an allocation, and by si_budget_destroy. */
bool si_budget_keep(void *p, size_t cap);
void *si_budget_reuse(size_t n, size_t *cap);
/* Make b (may be NULL) the calling thread's budget; returns the previous one, for si_budget_leave. */
si_budget *si_budget_enter(si_budget *b);
void si_budget_leave(si_budget *prev);
si_budget *si_budget_current(void);
/* Could n bytes be allocated now (process cap; the current budget's limit less what it has in use)? */
si_result si_mem_check(size_t n, const char *what);
/* Could n bytes ever be allocated (process cap; the current budget's whole limit)? For sizes known before
 * anything is allocated, e.g. an inferred shape. */
si_result si_mem_fits(size_t n, const char *what);
size_t si_mem_cap(void);
/* Set the process-wide cap on one allocation (tests and fuzzers lower it). */
void si_mem_set_cap(size_t bytes);
/* Map the pages of [p, p + n) now, in one call, ahead of a buffer being written whole (n of at least
 * SI_PREFAULT_MIN; smaller ones and failures are ignored: it only saves time). On a VM whose page tables are shadowed by the
 * hypervisor, writing a fresh page costs ~17 us when it faults on first write and ~9 us when it was populated
 * before (the guest fault is batched away): a layer's fresh outputs and arena cost a fifth less to fill. */
#define SI_PREFAULT_MIN ((size_t)64 << 10)
void si_mem_prefault(void *p, size_t n);
/* Transparent huge pages for [p, p + n) (p aligned to SI_HUGE_PAGE; n rounded down to whole huge pages), where the
 * kernel offers them on request (THP "madvise", Debian's default): one fault maps 2 MiB. On this VM a 2 MiB huge
 * page is written in ~0.3 ms, its 512 small pages in ~4.5 ms populated and ~9 ms faulted one by one.
 * si_mem_prefault asks for them on the 2 MiB-aligned interior of what it populates; the CPU device's arenas are
 * laid out in whole huge pages (cpu_arena.c). SI_NO_HUGEPAGE=1 turns it off (comparisons). */
#define SI_HUGE_PAGE ((size_t)2 << 20)
void si_mem_huge(void *p, size_t n);

/* ---- tensors --------------------------------------------------------------------------------------------- */
struct si_tensor {
    si_dtype dtype;
    int ndim;
    int64_t dims[SI_MAX_DIMS];
    void *data;      /* NULL only when the tensor has no elements or is a descriptor without data */
    size_t nbytes;   /* count * element size */
    bool owned;      /* data was allocated by the library and is freed with the tensor */
    size_t cap;      /* owned data: the bytes allocated (>= nbytes; 0 when not known) */
    _Atomic int refs; /* extra references to a shared constant (see si_const_ref); 0 = one owner */
};

int64_t si_shape_count(int ndim, const int64_t *dims);
bool si_dtype_valid(si_dtype t); /* a type that can be stored (not STRING or UNDEFINED) */
/* Initialise a tensor struct in place (no data). Checks rank and dims. */
si_result si_tensor_init(si_tensor *t, si_dtype dtype, int ndim, const int64_t *dims);
/* Give an initialised tensor owned, zero-filled storage for its shape (frees earlier owned data). */
si_result si_tensor_alloc(si_tensor *t);
/* The same without the zero fill: for a caller that writes every byte before anything reads them (the loader's
 * initializers, read from the file: zero-filling them first took a quarter of loading an LLM). */
si_result si_tensor_alloc_raw(si_tensor *t);
/* Release data of a tensor struct that is not itself heap-allocated. */
void si_tensor_release(si_tensor *t);
/* Output buffers that keep their room while shapes change (a KV cache grows by one position a step, and each
 * step's outputs would otherwise be a new allocation, faulted in page by page, and a copy):
 * si_tensor_fits: t's own buffer can hold nbytes and is not more than about twice that;
 * si_tensor_room_for: how much to allocate for nbytes where it does not fit (when t grows: twice that up to 4 MiB,
 * then 4 MiB or a quarter more, whichever is larger; so that a decode loop allocates once in many steps: the fresh
 * pages of each new buffer cost more than the step's compute on a virtual machine); the new buffers of reshape and
 * copy_room take just nbytes where that room cannot be had (the memory budget, an allocation failure);
 * si_tensor_adopt: t owns data (cap bytes) from now on, its previous owned data freed;
 * si_tensor_reshape: t takes the type and shape, keeping its buffer where it fits, else a new one (zero-filled);
 * the contents are not kept. On failure t is unchanged. */
bool si_tensor_fits(const si_tensor *t, size_t nbytes);
size_t si_tensor_room_for(const si_tensor *t, size_t nbytes);
void si_tensor_adopt(si_tensor *t, void *data, size_t cap);
si_result si_tensor_reshape(si_tensor *t, si_dtype dtype, int ndim, const int64_t *dims);
/* Copies that leave the previous ones whole on failure, in two passes: si_tensor_copy_room gives *fresh (a tensor
 * struct, emptied first) a new buffer and its capacity where dst's own cannot take src's bytes (none where it can;
 * NO_MEM leaves dst as it was); si_tensor_copy_into then gives dst src's type, shape and bytes, in fresh's buffer
 * when it has one (fresh is left empty). */
si_result si_tensor_copy_room(const si_tensor *dst, const si_tensor *src, si_tensor *fresh);
void si_tensor_copy_into(si_tensor *dst, const si_tensor *src, si_tensor *fresh);
/* a and b exchange type, shape and storage (their reference counts stay). */
void si_tensor_exchange(si_tensor *a, si_tensor *b);
/* dst becomes a view of src's data (type, shape, data; not owned, no references): the fields are read one by one,
 * never src's reference count, which other threads may be changing (a shared constant). */
void si_tensor_view(si_tensor *dst, const si_tensor *src);
/* Shared immutable constants (graph initializers and folded values): graph copies share them.
 * si_const_ref adds a reference and returns t; si_const_unref drops one and frees t with the last. */
si_tensor *si_const_ref(si_tensor *t);
void si_const_unref(si_tensor *t);
/* A new owned deep copy. */
si_result si_tensor_clone(const si_tensor *src, si_tensor **out);
/* "float32[1,3,224,224]" into buf ("?" for a dimension that is not known). */
const char *si_shape_str(char *buf, size_t n, si_dtype dt, int ndim, const int64_t *dims);

/* ---- element helpers ------------------------------------------------------------------------------------- */
float si_f16_to_f32(uint16_t h);
uint16_t si_f32_to_f16(float f);
float si_bf16_to_f32(uint16_t h);
uint16_t si_f32_to_bf16(float f);
bool si_dtype_is_float(si_dtype t);  /* F32, F64, F16, BF16 */
bool si_dtype_is_int(si_dtype t);    /* signed or unsigned integers (not bool) */
bool si_dtype_is_signed(si_dtype t);
/* Element i of a buffer of type t, as double / as int64 (floats truncate toward zero, saturating). */
double si_load_f64(si_dtype t, const void *p, int64_t i);
int64_t si_load_i64(si_dtype t, const void *p, int64_t i);
/* Store v as element i, converting like ONNX Cast (float->int truncates toward zero; ->bool is v != 0). */
void si_store_f64(si_dtype t, void *p, int64_t i, double v);
void si_store_i64(si_dtype t, void *p, int64_t i, int64_t v);

/* ---- narrow types (narrow.c): float8, float4e2m1, int4/uint4, int2/uint2, one element per byte ------------- */
bool si_dtype_is_narrow(si_dtype t); /* SI_F8E4M3FN .. SI_I2 */
#define SI_T_NARROW_MASK                                                                                        \
    ((1u << SI_F8E4M3FN) | (1u << SI_F8E4M3FNUZ) | (1u << SI_F8E5M2) | (1u << SI_F8E5M2FNUZ) | (1u << SI_U4) |   \
     (1u << SI_I4) | (1u << SI_F4E2M1) | (1u << SI_F8E8M0) | (1u << SI_U2) | (1u << SI_I2))
bool si_dtype_is_minifloat(si_dtype t); /* the float8 types and float4e2m1 */
/* Bits per element in ONNX's packed form (4 or 2 for the packed types; 0 for types stored a byte or more each). */
int si_dtype_packed_bits(si_dtype t);
/* The value of a float8 / float4e2m1 code (NaN for NaN codes, +-inf for float8e5m2's). */
double si_minifloat_decode(si_dtype t, uint8_t code);
/* x rounded to nearest, ties to even, as a float8 / float4e2m1 code. saturate (ONNX Cast's attribute): values
 * beyond the largest finite one, infinities included, become it; else they become NaN (inf for float8e5m2).
 * float4e2m1 has neither and always saturates (NaN gives the code 0x8, as ONNX's reference does). */
uint8_t si_minifloat_encode(si_dtype t, double x, bool saturate);
/* float8e8m0 (a power of two 2^(code-127), 0xff NaN): round_mode 0 up, 1 down, 2 nearest. */
uint8_t si_e8m0_encode(double x, bool saturate, int round_mode);
/* Unpack count elements of a packed 4-bit / 2-bit type from src (low bits first) into one byte each (signed
 * types sign-extended); pack is its inverse (dst has (count * bits + 7) / 8 bytes). */
void si_narrow_unpack(si_dtype t, const uint8_t *src, uint8_t *dst, int64_t count);
void si_narrow_pack(si_dtype t, const uint8_t *src, uint8_t *dst, int64_t count);

/* ---- small helpers --------------------------------------------------------------------------------------- */
#define SI_MIN(a, b) ((a) < (b) ? (a) : (b))
#define SI_MAX(a, b) ((a) > (b) ? (a) : (b))
/* A qsort result for a ranking: the larger key first (ka against kb), ties broken by the smaller tb (ta against
 * tb). Keys and tie-breaks of any arithmetic type. */
#define SI_RANK_CMP(ka, kb, ta, tb) ((ka) != (kb) ? ((ka) > (kb) ? -1 : 1) : (ta) < (tb) ? -1 : (ta) > (tb))
#define SI_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Read a whole file into a new buffer (NUL-terminated, *len excludes the NUL). */
si_result si_read_file(const char *path, char **data, size_t *len);

#endif
