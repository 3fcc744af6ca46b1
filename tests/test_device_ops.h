/*
 * test_device_ops.h — the device-vs-REF op test (like ggml's test-backend-ops): one table of cases
 * (test_device_ops_cases.c) that every device runs, and the harness that builds each case's graph, compiles
 * it on the device under test and on REF, runs both on the same random inputs and compares the outputs
 * (test_device_ops.c, with the per-device hooks and tests).
 *
 *     test_device_ops DEVICE [OP]     e.g. `test_device_ops CPU`, `test_device_ops OCL Conv`
 *
 * OP keeps the cases whose graph has a node of that op type. Exit status 77 (ctest: skipped) when the device
 * is not available on this machine or not built in.
 */
#ifndef SI_TEST_DEVICE_OPS_H
#define SI_TEST_DEVICE_OPS_H

#include "device/device.h"
#include "ops/ops.h"
#include "test_graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a case expects beyond "the outputs match REF". Zero-initialised: nothing more. */
typedef struct dop_opts {
    const char *cpu_plan; /* CPU: a step its plan must contain ("Conv+BatchNormalization+Relu"), so that a fast
                           * kernel which silently fell back to the reference one is reported */
    bool cpu_no_ref;      /* CPU: no step of the plan may run a reference kernel */
    const char *cpu_kernel; /* CPU on an AVX-512 machine (on any, when the name says avx2): a step's kernel must be this one */
    const char *cpu_avoid; /* CPU: no step of the plan may run on a kernel whose name contains this ("gemm:jit") */
    const char *cpu_avoid_in; /* ... only among the steps whose name starts with this ("Conv"), when set */
    bool avx512_plan;     /* cpu_plan is expected on an AVX-512 CPU only (oneDNN's AVX2 kernels want other layouts) */
    const char *opt_key;  /* a compile option of one device ("ocl.gemm"): the case runs on that device only */
    const char *opt_value;
    const char *opt_device; /* the device opt_key is for, where the key does not name it ("threads" for "CPU") */
    const char *may_refuse; /* devices that may refuse a node of this case ("OCL"): they skip it; any other
                             * device that refuses a node fails the case */
    bool int8;            /* the case's CPU plan expectations need exact int8 products (si_cpu_int8_exact): on a CPU
                           * without VNNI the CPU device runs them on other kernels, and only the outputs are compared */
    int qtol;             /* uint8 / int8 outputs may differ from REF's by this many units (an integer kernel for a
                           * graph written in float, the QDQ form: it rounds once where REF rounds twice) */
} dop_opts;

/* Whether this CPU has AVX-512F (the kernels the CPU device picks differ on AVX2). */
bool dop_cpu_avx512(void);

/* A group of cases: builds each graph and runs it (dop_run). */
typedef struct dop_group {
    const char *name;
    void (*run)(void);
} dop_group;

extern const dop_group dop_groups[];
extern const int dop_n_groups;

// --- graph building (the case under construction is G; the builders: test_graph.h) ----------------------------

/* A float32 graph input. Its random values depend on the name's prefix: "pos" (0.1..3), "unit" (-0.9..0.9),
 * "ge1" (1.1..3), "nz" (+-0.5..2, no zeros), "wide" (-40..40), else -2..2. */
void input(const char *name, const int64_t *dims, int nd);
void input0(const char *name); /* a float32 scalar input */
/* A float32 initializer, random in lo..hi. */
void weight(const char *name, float lo, float hi, const int64_t *dims, int nd);

/* A small CNN (Conv, MaxPool, depthwise Conv, residual Add, HardSwish, GlobalAveragePool, Gemm, Softmax) with
 * input "image" [batch, 3, 16, 16] and outputs "probs", "logits". */
void dop_small_net(int64_t batch);
void begin_ms(void);                                        /* a graph importing com.microsoft too */
int msnode(const char *op, const char *ins, const char *outs); /* a com.microsoft node */

/* The LLM ops' cases (test_device_ops_llm.c). */
void dop_cases_llm_nbits(void);
void dop_cases_llm_gqa(void);
void dop_cases_llm_mha(void);
void dop_cases_llm_norm(void);

/* Einsum, QuantizeLinear / DequantizeLinear, DepthToSpace / SpaceToDepth, Pad, Resize (test_device_ops_data.c). */
void dop_cases_einsum(void);
void dop_cases_qdq(void);
void dop_cases_depth_to_space(void);
void dop_cases_pad(void);
void dop_cases_layout(void); /* views, Transpose, Slice, Concat and the other layout ops */
void dop_cases_resize(void);
void dop_cases_resize_layouts(void);
void dop_cases_conv_dw1d(void);
void dop_cases_bn1d(void);
void dop_cases_groupnorm(void);
void dop_cases_conv_temb(void);

// --- running --------------------------------------------------------------------------------------------------

/* Finish G, run it on the device and on REF, compare; frees G. o may be NULL. */
void dop_run(const char *label, const dop_opts *o);
void dop_runf(const dop_opts *o, const char *fmt, ...) SI_PRINTF(2, 3);

#endif
