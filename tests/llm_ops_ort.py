#!/usr/bin/python3
"""The LLM ops (com.microsoft contrib ops and their ONNX siblings) against ONNX Runtime, one single-node model per case.

usage: llm_ops_ort.py SAFEINFER WORKDIR [--devices REF] [--filter SUBSTRING] [--threads N] [--list]

Each case is a single-node model (written with onnx's helpers, domain com.microsoft, not checked: onnx 1.12's checker
does not know these ops) and random inputs from a fixed seed. ONNX Runtime (onnxruntime-node, tests/llm_ort_batch.js)
runs every case in one process; `safeinfer run` runs each on --devices; the outputs must agree within the case's
tolerance (max |safeinfer - ORT| / max |ORT| per output: 1e-5, 1e-4 for long reductions, 2e-3 for float16 outputs;
integer outputs exactly, the quantized outputs of the com.microsoft QOperator ops within 1 unit).
Cases marked as errors must be refused by both (safeinfer's message must name the reason); a case that ORT runs but
safeinfer refuses on purpose (MoE weights in the legacy [E, in, out] layout, which ORT silently computes wrongly) is
marked so. The cases follow ../shared/LLM-OPS-NOTES.md §12.

Needs numpy, onnx, node and onnxruntime-node (ORT_NODE_MODULES=.../node_modules); exits 77 when one is missing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    print("SKIP: no onnx module")
    sys.exit(77)

MS = "com.microsoft"
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models"))
from quant import int8_weights  # noqa: E402
rng = np.random.default_rng(1234)
CASES = []

NP2ONNX = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float16): TensorProto.FLOAT16,
           np.dtype(np.int32): TensorProto.INT32, np.dtype(np.int64): TensorProto.INT64,
           np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8, np.dtype(np.bool_): TensorProto.BOOL}


def R(*shape, scale=1.0, dt=np.float32):
    return (rng.standard_normal(shape) * scale).astype(dt)


def case(name, op, inputs, outputs, attrs=None, domain=MS, opset=17, init=(), rtol=1e-5, error=None, si_only_error=None,
         out_types=None, qtol=0):
    """inputs: list of (name, array) or None (an absent optional input); outputs: names ('' for an absent one).
    init: input names stored as initializers. error: both must refuse (safeinfer's message contains it);
    si_only_error: ORT runs it, safeinfer must refuse with this text. qtol: integer outputs may differ by this much
    (quantized outputs: ORT's vector kernels round some intermediates differently, 1 unit of the quantized type)."""
    CASES.append(dict(name=name, op=op, inputs=inputs, outputs=outputs, attrs=attrs or {}, domain=domain, opset=opset,
                      init=set(init), rtol=rtol, error=error, si_only_error=si_only_error, out_types=out_types or {},
                      qtol=qtol))


def build(c):
    ins, inits, names = [], [], []
    for x in c["inputs"]:
        if x is None:
            names.append("")
            continue
        n, a = x
        names.append(n)
        if n in c["init"]:
            inits.append(numpy_helper.from_array(a, n))
        else:
            ins.append(helper.make_tensor_value_info(n, NP2ONNX[a.dtype], list(a.shape)))
    while names and names[-1] == "":
        names.pop()
    first = next(a for x in c["inputs"] if x is not None for a in [x[1]])
    fdt = first.dtype if first.dtype in (np.float32, np.float16) else np.float32
    outs = [helper.make_tensor_value_info(o, c["out_types"].get(o, NP2ONNX[np.dtype(fdt)]), None)
            for o in c["outputs"] if o]
    node = helper.make_node(c["op"], names, c["outputs"], domain=c["domain"], **c["attrs"])
    g = helper.make_graph([node], c["name"], ins, outs, inits)
    imports = [helper.make_opsetid("", c["opset"])] + ([helper.make_opsetid(MS, 1)] if c["domain"] == MS else [])
    m = helper.make_model(g, opset_imports=imports, producer_name="llm_ops_ort")
    m.ir_version = 10 if c["opset"] >= 23 else 8
    return m


# --- cases --------------------------------------------------------------------------------------------------------

def rope_tables(rows, half, base=10000.0, dt=np.float32):
    inv = 1.0 / base ** (np.arange(half, dtype=np.float64) / half)
    ang = np.arange(rows, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(dt), np.sin(ang).astype(dt)


def gqa(name, B, S, past, seqlens, tsl, N=4, Nkv=2, H=16, attrs=None, rotary=None, packed=False, pos=None,
        bias=False, sink=False, dt=np.float32, tsl_shape=(1,), qk=False, error=None, rtol=None):
    a = dict(num_heads=N, kv_num_heads=Nkv)
    a.update(attrs or {})
    ins = []
    if packed:
        ins += [("query", R(B, S, (N + 2 * Nkv) * H, dt=dt)), None, None]
    else:
        ins += [("query", R(B, S, N * H, dt=dt)), ("key", R(B, S, Nkv * H, dt=dt)), ("value", R(B, S, Nkv * H, dt=dt))]
    if past is not None:
        ins += [("past_key", R(B, Nkv, past, H, dt=dt)), ("past_value", R(B, Nkv, past, H, dt=dt))]
    else:
        ins += [None, None]
    ins += [("seqlens_k", np.array(seqlens, np.int32)), ("total_sequence_length", np.full(tsl_shape, tsl, np.int32))]
    if rotary is not None:
        rows, half = rotary
        c, s = rope_tables(rows, half, dt=dt)
        ins += [("cos_cache", c), ("sin_cache", s)]
    else:
        ins += [None, None]
    ins += [("position_ids", np.array(pos, np.int64)) if pos is not None else None]
    ins += [("attention_bias", R(B, N, S, tsl, dt=dt)) if bias else None]
    ins += [("head_sink", R(N, dt=dt)) if sink else None]
    outs = ["output", "present_key", "present_value"] + (["output_qk"] if qk else [])
    case("gqa_" + name, "GroupQueryAttention", ins, outs, a, error=error,
         rtol=rtol or (2e-3 if dt == np.float16 else 1e-5))


def cases_gqa():
    gqa("prefill", 1, 5, None, [4], 5)
    gqa("prefill_past0", 1, 5, 0, [4], 5)
    gqa("prefill_stale_past", 1, 5, 3, [4], 5)
    gqa("decode", 1, 1, 5, [5], 6)
    gqa("decode_tsl_scalar", 1, 1, 5, [5], 6, tsl_shape=())
    gqa("ragged_decode", 2, 1, 6, [3, 6], 7)
    gqa("capacity", 1, 1, 8, [4], 5)
    gqa("padded_prompt", 2, 4, None, [3, 1], 4)
    for il in (0, 1):
        r = dict(do_rotary=1, rotary_interleaved=il)
        gqa(f"rotary{il}_prefill", 1, 5, None, [4], 5, attrs=r, rotary=(32, 8))
        gqa(f"rotary{il}_decode", 1, 1, 7, [7], 8, attrs=r, rotary=(32, 8))
        gqa(f"rotary{il}_chunk", 1, 3, 4, [6], 7, attrs=r, rotary=(32, 8))
        gqa(f"rotary{il}_partial", 1, 5, None, [4], 5, H=32, attrs=r, rotary=(16, 8))
        gqa(f"rotary{il}_ragged", 2, 1, 6, [3, 6], 7, attrs=r, rotary=(32, 8))
    gqa("caches_no_rotary", 1, 4, None, [3], 4, rotary=(16, 8))
    for w in (1, 2, 3, 6):
        gqa(f"window{w}", 1, 7, None, [6], 7, attrs=dict(local_window_size=w))
    gqa("window3_decode", 1, 1, 6, [6], 7, attrs=dict(local_window_size=3))
    gqa("softcap", 1, 5, None, [4], 5, attrs=dict(softcap=0.5))
    gqa("softcap_bias", 1, 5, None, [4], 5, attrs=dict(softcap=0.7), bias=True)
    gqa("bias_decode", 2, 1, 4, [4, 4], 5, bias=True)
    gqa("smooth_softmax", 1, 5, None, [4], 5, attrs=dict(smooth_softmax=1))
    gqa("head_sink", 1, 5, None, [4], 5, sink=True)
    gqa("head_sink_decode", 1, 1, 4, [4], 5, sink=True)
    gqa("noncausal", 1, 5, None, [4], 5, attrs=dict(causal=0))
    gqa("scale", 1, 5, None, [4], 5, attrs=dict(scale=0.3))
    gqa("packed", 1, 5, None, [4], 5, packed=True)
    gqa("packed_rotary_decode", 1, 1, 3, [3], 4, packed=True, attrs=dict(do_rotary=1), rotary=(16, 8))
    gqa("position_ids", 1, 3, None, [2], 3, attrs=dict(do_rotary=1), rotary=(32, 8), pos=[[10, 11, 12]])
    gqa("mqa", 1, 4, None, [3], 4, N=4, Nkv=1)
    gqa("mha_heads", 1, 4, None, [3], 4, N=2, Nkv=2, H=32)
    gqa("qk1", 1, 4, None, [3], 4, attrs=dict(qk_output=1), qk=True)
    gqa("qk1_window_bias", 1, 5, None, [4], 5, attrs=dict(qk_output=1, local_window_size=2, softcap=0.8), bias=True, qk=True)
    gqa("qk1_decode", 2, 1, 4, [2, 4], 5, attrs=dict(qk_output=1), qk=True)
    gqa("qk2", 1, 4, None, [3], 4, attrs=dict(qk_output=2), qk=True)
    gqa("qk2_decode", 1, 1, 3, [3], 4, attrs=dict(qk_output=2), qk=True)
    gqa("fp16_prefill_rotary", 1, 5, None, [4], 5, attrs=dict(do_rotary=1), rotary=(16, 8), dt=np.float16)
    gqa("fp16_decode", 1, 1, 5, [5], 6, dt=np.float16)
    # rejected
    gqa("err_head12", 1, 4, None, [3], 4, H=12, error="multiple of 8")
    gqa("err_head8_caches", 1, 4, None, [3], 4, H=8, rotary=(16, 4), error="multiple of 16")
    gqa("err_chunk_batch2", 2, 3, 4, [6, 6], 7, error="needs batch 1")
    gqa("err_tsl2", 1, 4, None, [3], 4, tsl_shape=(2,), error="exactly one value")
    gqa("err_cos_rows", 1, 5, None, [4], 5, attrs=dict(do_rotary=1), rotary=(4, 8), error="fewer than total_sequence_length")
    gqa("err_rotary_no_caches", 1, 4, None, [3], 4, attrs=dict(do_rotary=1), error="needs cos_cache")


def nbits_pack(N, K, bits, block, zp_kind, dt=np.float32):
    nb = (K + block - 1) // block
    per = 8 // bits
    qmax = (1 << bits) - 1
    q = rng.integers(0, qmax + 1, size=(N, nb, block))
    packed = np.zeros((N, nb, block * bits // 8), np.uint8)
    for j in range(block):
        packed[:, :, j // per] |= (q[:, :, j] << ((j % per) * bits)).astype(np.uint8)
    scales = (rng.uniform(0.5, 1.5, (N, nb)) / qmax).astype(dt)
    zp = None
    if zp_kind == "packed":
        zq = rng.integers(0, qmax + 1, size=(N, nb))
        zrow = (nb * bits + 7) // 8
        zp = np.zeros((N, zrow), np.uint8)
        for b in range(nb):
            zp[:, b // per] |= (zq[:, b] << ((b % per) * bits)).astype(np.uint8)
    elif zp_kind == "float":
        zp = rng.uniform(0, qmax, (N, nb)).astype(dt)
    return packed, scales.reshape(-1), zp


def nbits(name, M, K, N, bits=4, block=32, zp=None, bias=False, lead=(), dt=np.float32, acc=None, as_input=False,
          rtol=None, error=None, attrs=None):
    B, s, z = nbits_pack(N, K, bits, block, zp, dt)
    a = dict(K=K, N=N, bits=bits, block_size=block)
    if acc is not None:
        a["accuracy_level"] = acc
    a.update(attrs or {})
    ins = [("A", R(*lead, M, K, dt=dt)), ("B", B), ("scales", s), ("zero_points", z) if z is not None else None, None,
           ("bias", R(N, dt=dt)) if bias else None]
    init = () if as_input else ("B", "scales", "zero_points")
    case("nbits_" + name, "MatMulNBits", ins, ["Y"], a, init=init, error=error,
         rtol=rtol or (2e-3 if dt == np.float16 else 1e-4 if K >= 512 else 1e-5))


def cpu_quantises_a():
    """safeinfer's CPU device quantises A at accuracy_level 4 with AVX-512 VNNI or with AVX2 + FMA (cpu_llm_nbq8.c)."""
    try:
        flags = next((ln.split(":", 1)[1].split() for ln in open("/proc/cpuinfo") if ln.startswith("flags")), [])
    except OSError:
        return False
    return all(f in flags for f in ("avx2", "fma")) and not os.environ.get("SI_CPU_NO_AVX2") and not os.environ.get("SI_CPU_NBITS_F32")


# accuracy_level 4 tolerance by device: safeinfer's CPU device with AVX2 or VNNI quantises A as ORT does (1e-5, float
# rounding only); anything else computes in float32, which level 4 allows (ORT's int8 result is within ~1% of it)
ACC4_RTOL = {"CPU": 1e-5 if cpu_quantises_a() else 1.2e-2, "*": 1.2e-2}


def cases_nbits():
    for zp in (None, "packed", "float"):
        nbits(f"4bit_zp_{zp}", 3, 64, 8, zp=zp)
        nbits(f"4bit_zp_{zp}_gemv", 1, 64, 8, zp=zp)
    for bits in (2, 8):
        for zp in (None, "packed"):
            nbits(f"{bits}bit_zp_{zp}", 3, 64, 8, bits=bits, zp=zp)
            nbits(f"{bits}bit_zp_{zp}_gemv", 1, 128, 24, bits=bits, zp=zp)
    nbits("k40", 2, 40, 8)
    nbits("k40_gemv_zp", 1, 40, 8, zp="packed")
    nbits("k96_zp", 2, 96, 8, zp="packed")
    nbits("k96_zp_gemv", 1, 96, 8, zp="packed")
    nbits("block16", 2, 256, 8, block=16, zp="packed")
    nbits("block128", 2, 256, 8, block=128, zp="packed")
    nbits("block128_gemv", 1, 256, 40, block=128)
    nbits("a3d", 3, 64, 8, lead=(2,), zp="packed")
    nbits("bias", 3, 64, 8, bias=True)
    nbits("bias_gemv", 1, 64, 40, bias=True, zp="packed")
    for acc in (0, 1, 2, 3):
        nbits(f"acc{acc}", 4, 1024, 256, acc=acc, zp="packed")
    nbits("acc4_input_weights", 4, 1024, 256, acc=4, zp="packed", as_input=True)
    # accuracy_level 4 with constant weights and integer zero points: ORT quantises A to int8 per block, and so does
    # safeinfer's CPU device on a CPU with AVX2 or AVX-512 VNNI, the same way (then they agree to float rounding); other
    # devices and CPUs compute in float32, within the level's ~1% of it (ACC4_RTOL). Float zero points: ORT computes
    # in float32 (so does safeinfer). The GEMV (up to 8 rows) and the panel GEMM (more), blocks 32 / 64 / 128 / 256,
    # a padded last block, N not a multiple of 16 or 32, bias, 3-D A.
    for zp in (None, "packed", "float"):
        q8 = zp != "float"
        nbits(f"acc4_gemv_zp_{zp}", 1, 1024, 72, acc=4, zp=zp, rtol=ACC4_RTOL if q8 else 1e-4)
        nbits(f"acc4_gemm_zp_{zp}", 19, 512, 72, acc=4, zp=zp, rtol=ACC4_RTOL if q8 else 1e-4)
    for block in (64, 128, 256):
        nbits(f"acc4_block{block}_gemv", 3, 768, 40, block=block, acc=4, zp="packed", rtol=ACC4_RTOL)
        nbits(f"acc4_block{block}_gemm", 24, 768, 40, block=block, acc=4, zp="packed", rtol=ACC4_RTOL)
    nbits("acc4_k40_gemv", 2, 40, 8, acc=4, zp="packed", rtol=ACC4_RTOL)
    nbits("acc4_k200_gemm", 9, 200, 33, acc=4, zp="packed", rtol=ACC4_RTOL)
    nbits("acc4_bias_a3d", 5, 256, 48, lead=(2,), acc=4, bias=True, zp="packed", rtol=ACC4_RTOL)
    nbits("gemv_1024x256", 1, 1024, 256, zp="packed")
    nbits("gemm_33x512x96", 33, 512, 96)
    nbits("weights_as_inputs", 3, 64, 8, zp="float", as_input=True)
    nbits("fp16", 3, 64, 8, dt=np.float16, zp="packed")
    nbits("fp16_gemv", 1, 128, 16, dt=np.float16)
    nbits("err_bits3", 2, 64, 8, bits=4, attrs=dict(bits=3), error="bits")
    B, s, _ = nbits_pack(8, 64, 4, 32, None)
    case("nbits_err_k_mismatch", "MatMulNBits", [("A", R(2, 60)), ("B", B), ("scales", s)], ["Y"],
         dict(K=64, N=8, bits=4, block_size=32), init=("B", "scales"), error="last dimension")
    case("nbits_err_b_size", "MatMulNBits", [("A", R(2, 64)), ("B", B[:, :1]), ("scales", s)], ["Y"],
         dict(K=64, N=8, bits=4, block_size=32), init=("B", "scales"), error="bytes")


def mha(name, B=2, S=3, L=4, N=2, H=8, Hv=None, bias=False, mask=None, abias=False, past=None, cross=False, qk=False,
        attrs=None, dt=np.float32, error=None, q=None):
    Hv = Hv or H
    D, Dv = N * H, N * Hv
    P = past or 0
    T = P + L
    ins = [("query", q if q is not None else R(B, S, D, dt=dt))]
    if cross:
        ins += [("key", R(B, N, L, H, dt=dt)), ("value", R(B, N, L, Hv, dt=dt))]
    else:
        ins += [("key", R(B, L, D, dt=dt)), ("value", R(B, L, Dv, dt=dt))]
    ins += [("bias", R(2 * D + Dv, dt=dt)) if bias else None]
    if mask == "1d":
        ins += [("key_padding_mask", np.array([T - 1, 2][:B], np.int32))]
    elif mask == "2d":
        m = np.ones((B, T), np.int32)
        m[0, -2:] = 0
        m[-1, 1] = 0
        ins += [("key_padding_mask", m)]
    elif mask == "3d":
        ins += [("key_padding_mask", (rng.uniform(size=(B, S, T)) > 0.3).astype(np.int32))]
    else:
        ins += [None]
    ins += [("attention_bias", R(B, N, S, T, dt=dt)) if abias else None]
    if past:
        ins += [("past_key", R(B, N, P, H, dt=dt)), ("past_value", R(B, N, P, Hv, dt=dt))]
    outs = ["output"] + (["present_key", "present_value"] if past or cross else []) + (["qk"] if qk else [])
    if qk and not (past or cross):
        outs = ["output", "", "", "qk"]
    case("mha_" + name, "MultiHeadAttention", ins, outs, dict(num_heads=N, **(attrs or {})), error=error,
         rtol=2e-3 if dt == np.float16 else 1e-5)


def cases_mha():
    mha("plain")
    mha("bias", bias=True)
    mha("mask1d", mask="1d")
    mha("mask2d", mask="2d")
    mha("mask3d", mask="3d")
    mha("mask2d_filter", mask="2d", attrs=dict(mask_filter_value=-5.0))
    mha("attention_bias", abias=True)
    mha("past", past=5, bias=True)
    mha("past_unidirectional", past=5, attrs=dict(unidirectional=1))
    mha("unidirectional", attrs=dict(unidirectional=1), S=4)
    mha("cross4d", cross=True, L=6, bias=True)
    mha("hv4", Hv=4, bias=True)
    mha("qk", qk=True, mask="2d", abias=True)
    mha("scale", attrs=dict(scale=0.2))
    mha("fp16", dt=np.float16, bias=True, mask="2d")
    mha("err_packed_qkv", q=R(2, 3, 2, 3, 8), error="packed")


def ms_rope(name, B=2, S=3, N=2, H=16, four_d=False, il=0, pos="full", rdim=None, nh=True, dt=np.float32, error=None,
            pos_dt=np.int64, rows=32, half=None):
    x = R(B, N, S, H, dt=dt) if four_d else R(B, S, N * H, dt=dt)
    half = half or (rdim or H) // 2
    c, s = rope_tables(rows, half, dt=dt)
    p = rng.integers(0, rows - S, size=(B, S)).astype(pos_dt) if pos == "full" else np.array([pos], pos_dt)
    a = dict(interleaved=il)
    if nh:
        a["num_heads"] = N
    if rdim:
        a["rotary_embedding_dim"] = rdim
    case("msrope_" + name, "RotaryEmbedding", [("input", x), ("position_ids", p), ("cos_cache", c), ("sin_cache", s)],
         ["output"], a, error=error, rtol=2e-3 if dt == np.float16 else 1e-5)


def cases_rope():
    for il in (0, 1):
        ms_rope(f"3d_il{il}", il=il)
        ms_rope(f"3d_nonum_il{il}", il=il, nh=False)
        ms_rope(f"4d_il{il}", il=il, four_d=True)
        ms_rope(f"offset_il{il}", il=il, pos=5)
        ms_rope(f"partial_il{il}", il=il, rdim=8)
    ms_rope("fp16", dt=np.float16)
    ms_rope("err_int32_pos", pos_dt=np.int32, error="int64")
    ms_rope("err_rdim_without_heads", rdim=8, nh=False, error="needs num_heads")
    ms_rope("err_pos_range", pos=40, error="outside")
    # the ONNX RotaryEmbedding (opset 23)
    for il in (0, 1):
        x = R(2, 2, 3, 16)
        c, s = rope_tables(32, 8)
        p = rng.integers(0, 29, size=(2, 3)).astype(np.int64)
        case(f"onnxrope_4d_il{il}", "RotaryEmbedding", [("X", x), ("cos_cache", c), ("sin_cache", s), ("position_ids", p)],
             ["Y"], dict(interleaved=il), domain="", opset=23)
    x = R(2, 3, 32)
    c, s = rope_tables(32, 4)
    case("onnxrope_3d_partial", "RotaryEmbedding", [("X", x), ("cos_cache", c), ("sin_cache", s),
                                                   ("position_ids", rng.integers(0, 29, size=(2, 3)).astype(np.int64))],
         ["Y"], dict(num_heads=2, rotary_embedding_dim=8), domain="", opset=23)


def moe(name, T=5, hidden=16, F=24, E=4, k=2, act="relu", biases=True, lead=None, attrs=None, legacy=False, error=None,
        si_only_error=None, sets=None):
    f = 2 if act == "swiglu" else 1
    x = R(*(lead or (T,)), hidden)
    w1 = R(E, f * F, hidden, scale=0.3) if not legacy else R(E, hidden, f * F, scale=0.3)
    w2 = R(E, hidden, F, scale=0.3) if not legacy else R(E, F, hidden, scale=0.3)
    ins = [("input", x), ("router_probs", R(T, E)), ("fc1_experts_weights", w1),
           ("fc1_experts_bias", R(E, f * F)) if biases else None, ("fc2_experts_weights", w2),
           ("fc2_experts_bias", R(E, hidden)) if biases else None]
    a = dict(k=k, activation_type=act)
    if act == "swiglu":
        a["swiglu_fusion"] = 1
    a.update(attrs or {})
    case("moe_" + name, "MoE", ins, ["output"], a, init=("fc1_experts_weights", "fc1_experts_bias", "fc2_experts_weights",
                                                          "fc2_experts_bias"), error=error, si_only_error=si_only_error)
    if sets:
        CASES[-1]["sets"] = sets


def cases_moe():
    for act in ("relu", "gelu", "silu", "identity"):
        moe(act, act=act)
    moe("normalize", attrs=dict(normalize_routing_weights=1))
    moe("no_biases", biases=False, act="silu")
    moe("k1", k=1)
    moe("k4_all", k=4, attrs=dict(normalize_routing_weights=1))
    moe("input_3d", lead=(1, 5))
    moe("swiglu", act="swiglu")
    moe("swiglu_gptoss", act="swiglu", attrs=dict(activation_alpha=1.702, activation_beta=1.0, swiglu_limit=0.5))
    moe("err_k5", k=5, error="k = 5")
    moe("err_swiglu_fusion0", act="swiglu", attrs=dict(swiglu_fusion=0), error="swiglu_fusion")
    moe("err_legacy_layout", legacy=True, hidden=16, F=24, si_only_error="[E, out, in]")
    # the experts as auxiliary models, SwiGLU among them (Slice by 2, Min / Clip at the limit)
    moe("aux_silu", act="silu", sets=["moe_experts=on"])
    moe("aux_swiglu_gptoss", act="swiglu", attrs=dict(activation_alpha=1.702, activation_beta=1.0, swiglu_limit=0.5),
        sets=["moe_experts=on"])


def qmoe_pack(v, bits):
    """Values [..., n] (0 .. 2^bits - 1) packed 8 / bits to a byte, the first in the low bits; n padded to whole bytes."""
    per = 8 // bits
    pad = (-v.shape[-1]) % per
    if pad:
        v = np.concatenate([v, np.zeros(v.shape[:-1] + (pad,), v.dtype)], axis=-1)
    v = v.reshape(*v.shape[:-1], v.shape[-1] // per, per).astype(np.uint32)
    b = np.zeros(v.shape[:-1], np.uint32)
    for j in range(per):
        b |= v[..., j] << (bits * j)
    return b.astype(np.uint8)


def qmoe(name, T=5, hidden=32, F=64, E=4, k=2, bits=4, block=0, zp=False, act="relu", biases=True, lead=None, attrs=None,
         error=None, si_only_error=None, sets=None):
    """QMoE with random packed weights: scales per row ([E, out]) or per block ([E, out, in / block]), zero points
    packed along the rows."""
    f = 2 if act == "swiglu" else 1
    q = 1 << bits

    def fc(rows, cols):
        w = qmoe_pack(rng.integers(0, q, (E, rows, cols)), bits)
        s = (rng.random((E, rows) + ((cols // block,) if block else ())) * 0.05 + 0.01).astype(np.float32)
        z = None
        if zp:
            z = qmoe_pack(rng.integers(0, q, (E, rows, cols // block) if block else (E, rows)), bits)
        return w, s, z
    w1, s1, z1 = fc(f * F, hidden)
    w2, s2, z2 = fc(hidden, F)
    ins = [("input", R(*(lead or (T,)), hidden)), ("router_probs", R(T, E)), ("fc1_experts_weights", w1), ("fc1_scales", s1),
           ("fc1_experts_bias", R(E, f * F, scale=0.1)) if biases else None, ("fc2_experts_weights", w2), ("fc2_scales", s2),
           ("fc2_experts_bias", R(E, hidden, scale=0.1)) if biases else None]
    if zp:
        ins += [None, None, None, ("fc1_zero_points", z1), ("fc2_zero_points", z2)]
    a = dict(k=k, activation_type=act, expert_weight_bits=bits)
    if block:
        a["block_size"] = block
    if act == "swiglu":
        a["swiglu_fusion"] = 1
    a.update(attrs or {})
    case("qmoe_" + name, "QMoE", ins, ["output"], a, init=[x[0] for x in ins[2:] if x is not None], error=error,
         si_only_error=si_only_error)
    if sets:
        CASES[-1]["sets"] = sets


def cases_qmoe():
    qmoe("b4_row")
    qmoe("b4_row_normalize", attrs=dict(normalize_routing_weights=1))
    qmoe("b8_row", bits=8)
    qmoe("b2_row", bits=2)
    qmoe("b4_block32", block=32, hidden=64, F=128)
    qmoe("b8_block16", bits=8, block=16)
    qmoe("b2_block32", bits=2, block=32, hidden=64, F=64)
    qmoe("b4_row_zp", zp=True)
    qmoe("b8_row_zp", bits=8, zp=True)
    qmoe("b4_swiglu", act="swiglu", attrs=dict(activation_alpha=1.702, activation_beta=1.0, swiglu_limit=0.5))
    qmoe("b4_silu_no_biases", act="silu", biases=False)
    qmoe("b4_gelu_k1", act="gelu", k=1)
    qmoe("b4_input_3d", lead=(1, 5))
    qmoe("b4_block32_zp", block=32, hidden=64, F=128, zp=True)
    qmoe("b8_block16_zp", bits=8, block=16, zp=True)
    qmoe("b2_block16_zp", bits=2, block=16, hidden=64, F=128, zp=True)
    qmoe("err_bits3", bits=4, attrs=dict(expert_weight_bits=3), error="expert_weight_bits")
    # the experts as auxiliary models (MatMulNBits on views; zero points per row as floats)
    qmoe("aux_b4_row_zp", zp=True, act="silu", sets=["moe_experts=on"])
    qmoe("aux_b4_block32_zp", block=32, hidden=64, F=128, zp=True, sets=["moe_experts=on"])
    qmoe("aux_b8_row", bits=8, k=1, biases=False, sets=["moe_experts=on"])
    qmoe("aux_b2_block16_3d", bits=2, block=16, lead=(1, 5), act="gelu", sets=["moe_experts=on"])
    qmoe("aux_b4_swiglu", act="swiglu", zp=True, attrs=dict(activation_alpha=1.702, activation_beta=1.0, swiglu_limit=0.5),
         sets=["moe_experts=on"])
    qmoe("aux_b4_block32_swiglu", act="swiglu", block=32, hidden=64, F=64, sets=["moe_experts=on"])


def cases_norms():
    for tiny in (1.0, 1e-3):
        t = "_tiny" if tiny < 1 else ""
        x = R(2, 3, 8, scale=tiny)
        case("sln" + t, "SimplifiedLayerNormalization", [("X", x), ("scale", R(8))], ["Y", "inv_std_var"], domain="",
             out_types={"inv_std_var": TensorProto.FLOAT})
        case("skipsln" + t, "SkipSimplifiedLayerNormalization",
             [("input", x), ("skip", R(2, 3, 8, scale=tiny)), ("gamma", R(8)), ("bias", R(8, scale=tiny))],
             ["output", "mean", "inv_std_var", "input_skip_bias_sum"], out_types={"mean": TensorProto.FLOAT,
                                                                                  "inv_std_var": TensorProto.FLOAT})
        case("skipln" + t, "SkipLayerNormalization",
             [("input", x), ("skip", R(2, 3, 8, scale=tiny)), ("gamma", R(8)), ("beta", R(8)), ("bias", R(8, scale=tiny))],
             ["output", "mean", "inv_std_var", "input_skip_bias_sum"], out_types={"mean": TensorProto.FLOAT,
                                                                                  "inv_std_var": TensorProto.FLOAT})
    case("sln_axis1", "SimplifiedLayerNormalization", [("X", R(2, 3, 8)), ("scale", R(3, 8))], ["Y"], dict(axis=1), domain="")
    case("sln_eps", "SimplifiedLayerNormalization", [("X", R(4, 64)), ("scale", R(64))], ["Y"], dict(epsilon=1e-6), domain="")
    case("skipsln_skip_1sh", "SkipSimplifiedLayerNormalization", [("input", R(2, 3, 8)), ("skip", R(1, 3, 8)), ("gamma", R(8))],
         ["output"], dict(epsilon=1e-6))
    case("skipln_skip_sh", "SkipLayerNormalization", [("input", R(2, 3, 8)), ("skip", R(3, 8)), ("gamma", R(8))],
         ["output", "", "", "input_skip_bias_sum"])
    case("skipln_2d", "SkipLayerNormalization", [("input", R(6, 8)), ("skip", R(6, 8)), ("gamma", R(8)), None, ("bias", R(8))],
         ["output"], dict(epsilon=1e-5))
    case("skipsln_fp16", "SkipSimplifiedLayerNormalization",
         [("input", R(2, 3, 8, dt=np.float16)), ("skip", R(2, 3, 8, dt=np.float16)), ("gamma", R(8, dt=np.float16))],
         ["output", "", "", "input_skip_bias_sum"], rtol=2e-3)
    case("skipsln_err_gamma", "SkipSimplifiedLayerNormalization", [("input", R(2, 3, 8)), ("skip", R(2, 3, 8)), ("gamma", R(6))],
         ["output"], error="gamma")
    x = R(2, 3, 16, scale=2.0)
    case("fastgelu", "FastGelu", [("X", x)], ["Y"])
    case("fastgelu_bias", "FastGelu", [("X", x), ("bias", R(16))], ["Y"])
    case("fastgelu_fp16", "FastGelu", [("X", x.astype(np.float16)), ("bias", R(16, dt=np.float16))], ["Y"], rtol=2e-3)
    case("fastgelu_err_bias", "FastGelu", [("X", x), ("bias", R(2, 3, 16))], ["Y"], error="bias")
    case("biasgelu", "BiasGelu", [("A", x), ("B", R(16))], ["C"])
    case("biasgelu_fp16", "BiasGelu", [("A", x.astype(np.float16)), ("B", R(16, dt=np.float16))], ["C"], rtol=2e-3)
    case("biasgelu_err_2d", "BiasGelu", [("A", x), ("B", R(3, 16))], ["C"], error="1-D")
    case("quickgelu", "QuickGelu", [("X", x)], ["Y"])
    case("quickgelu_alpha", "QuickGelu", [("X", x)], ["Y"], dict(alpha=1.0))
    case("quickgelu_fp16", "QuickGelu", [("X", x.astype(np.float16))], ["Y"], rtol=2e-3)


def cases_bert():
    B, S, H, V = 2, 5, 16, 30
    ids = rng.integers(0, V, size=(B, S)).astype(np.int32)
    seg = rng.integers(0, 2, size=(B, S)).astype(np.int32)
    mask = np.ones((B, S), np.int32)
    mask[1, 3:] = 0
    tabs = [("word_embedding", R(V, H)), ("position_embedding", R(16, H)), ("segment_embedding", R(2, H)),
            ("gamma", R(H)), ("beta", R(H))]
    init = [t[0] for t in tabs]
    case("eln", "EmbedLayerNormalization", [("input_ids", ids), ("segment_ids", seg)] + tabs + [("mask", mask)],
         ["output", "mask_index", "embedding_sum"], dict(epsilon=1e-5), init=init,
         out_types={"mask_index": TensorProto.INT32})
    case("eln_no_segment", "EmbedLayerNormalization", [("input_ids", ids), None] + tabs[:2] + [None] + tabs[3:],
         ["output", "mask_index"], init=init, out_types={"mask_index": TensorProto.INT32})
    case("eln_position_ids", "EmbedLayerNormalization",
         [("input_ids", ids), ("segment_ids", seg)] + tabs + [None, ("position_ids", np.array([[3, 1, 4, 1, 5]] * 2, np.int32))],
         ["output", "mask_index", "embedding_sum"], init=init, out_types={"mask_index": TensorProto.INT32})
    case("eln_err_id", "EmbedLayerNormalization",
         [("input_ids", np.full((B, S), V + 3, np.int32)), ("segment_ids", seg)] + tabs, ["output"], init=init,
         error="out of range")
    Din, N = 16, 2
    for nm, m in (("mask1d", np.array([5, 3], np.int32)), ("mask2d", mask), ("mask_end_start", np.array([5, 4, 0, 1], np.int32)),
                  ("nomask", None)):
        case("msattn_" + nm, "Attention", [("input", R(B, S, Din)), ("weights", R(Din, 3 * Din, scale=0.3)),
                                           ("bias", R(3 * Din)), ("mask_index", m) if m is not None else None],
             ["output"], dict(num_heads=N), init=("weights", "bias"))
    case("msattn_unidirectional", "Attention", [("input", R(B, S, Din)), ("weights", R(Din, 3 * Din, scale=0.3)),
                                                ("bias", R(3 * Din))], ["output"], dict(num_heads=N, unidirectional=1),
         init=("weights", "bias"))
    case("msattn_past", "Attention", [("input", R(B, 1, Din)), ("weights", R(Din, 3 * Din, scale=0.3)), ("bias", R(3 * Din)),
                                      ("mask_index", np.ones((B, 5), np.int32)), ("past", R(2, B, N, 4, Din // N))],
         ["output", "present"], dict(num_heads=N, unidirectional=1), init=("weights", "bias"))
    case("msattn_qkv_sizes", "Attention", [("input", R(B, S, Din)), ("weights", R(Din, 16 + 16 + 8, scale=0.3)),
                                           ("bias", R(40))], ["output"], dict(num_heads=N, qkv_hidden_sizes=[16, 16, 8]),
         init=("weights", "bias"))
    case("msattn_bias", "Attention", [("input", R(B, S, Din)), ("weights", R(Din, 3 * Din, scale=0.3)), ("bias", R(3 * Din)),
                                      None, None, ("attention_bias", R(B, N, S, S))], ["output"], dict(num_heads=N),
         init=("weights", "bias"))


def cases_onnx_attention():
    # ONNX Attention (opset 23) through ORT too, a few shapes beyond the backend suite's
    q, k, v = R(2, 4, 3, 8), R(2, 2, 5, 8), R(2, 2, 5, 8)
    case("onnxattn_gqa_causal", "Attention", [("Q", q), ("K", k), ("V", v)], ["Y"], dict(is_causal=1), domain="", opset=23)
    m = (rng.uniform(size=(3, 5)) > 0.3)
    m[:, 0] = True
    case("onnxattn_boolmask_past", "Attention", [("Q", q), ("K", k), ("V", v), ("attn_mask", np.concatenate([m, m], 1)),
                                                 ("past_key", R(2, 2, 5, 8)), ("past_value", R(2, 2, 5, 8))],
         ["Y", "present_key", "present_value"], domain="", opset=23)


def cases_models():
    """Whole decoder LLMs in ONNX Runtime GenAI's form (models/llm.py --form genai: MatMulNBits, GroupQueryAttention
    with rotary caches, SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization; --moe adds MoE), prefill
    after a one-token past and decode, with the symbolic dimensions fixed."""
    import llm as llm_model
    for moe in (False, True):
        a = argparse.Namespace(form="genai", layers=2, hidden=128, heads=4, kv_heads=2, inter=256, vocab=512, bits=4, block=32,
                               accuracy_level=0, zero_points=not moe, moe=moe, experts=4, top_k=2, max_pos=64, seed=3)
        m = llm_model.LLM(a).build()
        for past, S in ((1, 8), (8, 1)):
            ins = [("input_ids", rng.integers(0, 512, size=(1, S)).astype(np.int64)), ("attention_mask", np.ones((1, past + S), np.int64))]
            for l in range(2):
                ins += [(f"past_key_values.{l}.key", R(1, 2, past, 32)), (f"past_key_values.{l}.value", R(1, 2, past, 32))]
            outs = ["logits"] + [f"present.{l}.{kv}" for l in range(2) for kv in ("key", "value")]
            name = f"model_genai{'_moe' if moe else ''}_{'prefill' if S > 1 else 'decode'}"
            CASES.append(dict(name=name, model=m, inputs=ins, outputs=outs, init=set(), rtol=1e-5, error=None, si_only_error=None,
                              shapes=[f"batch_size=1", f"sequence_length={S}", f"total_sequence_length={past + S}",
                                      f"past_sequence_length={past}"]))


# --- com.microsoft QOperator ops (ONNX Runtime's quantize_static(QuantFormat.QOperator)) ----------------------------

QT = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8}


def Qd(shape, dt=np.uint8):
    i = np.iinfo(dt)
    return rng.integers(i.min, i.max + 1, size=shape).astype(dt)


def Qw(shape, dt, adt):
    """Weights of an integer product with activations of type adt: int8 ones after uint8 activations within
    +-INT8_WEIGHT_MAX (7 bits where ORT's uint8 x int8 products saturate: models/quant.py)."""
    return int8_weights(rng, shape) if dt == np.int8 and adt == np.uint8 else Qd(shape, dt)


def qcase(name, op, ins, attrs=None, dt=np.uint8, init=None, out=None, **kw):
    """A quantized single-node case: every input but the data (names X*/A/B) is an initializer unless init says;
    output Y of type dt (or out: an ONNX type), within 1 unit of ORT."""
    names = [x[0] for x in ins if x is not None]
    if init is None:
        init = [n for n in names if n not in ("X", "A", "B", "X0", "X1", "X2")]
    kw.setdefault("qtol", 1)
    case("qlinear_" + name, op, ins, ["Y"], attrs, init=init, out_types={"Y": out if out is not None else QT[np.dtype(dt)]}, **kw)


def sc(v):
    return np.array(v, np.float32)


def zp(v, dt=np.uint8):
    return np.array(v, dt)


def cases_qop():
    for dt, z in ((np.uint8, 128), (np.int8, 0)):
        t = np.dtype(dt).name
        for op in ("QLinearAdd", "QLinearMul"):
            o = op[7:].lower()
            ys = 0.05 if op == "QLinearAdd" else 0.15
            for sn, sa, sb in (("same", (2, 3, 8, 8), (2, 3, 8, 8)), ("bc_row", (2, 3, 4, 5), (5,)), ("bc_both", (2, 1, 4), (3, 1)),
                               ("bc_chan", (1, 8, 5, 5), (1, 8, 1, 1)), ("scalar_b", (3, 7), ())):
                qcase(f"{o}_{t}_{sn}", op, [("A", Qd(sa, dt)), ("A_scale", sc(0.02)), ("A_zero_point", zp(z + 3, dt)),
                                            ("B", Qd(sb, dt)), ("B_scale", sc(0.03)), ("B_zero_point", zp(z - 5, dt)),
                                            ("C_scale", sc(ys)), ("C_zero_point", zp(z + 1, dt))], dt=dt)
        qcase(f"add_{t}_no_c_zero_point", "QLinearAdd", [("A", Qd((4, 6), dt)), ("A_scale", sc(0.02)), ("A_zero_point", zp(z, dt)),
                                                         ("B", Qd((4, 6), dt)), ("B_scale", sc(0.01)), ("B_zero_point", zp(z, dt)),
                                                         ("C_scale", sc(0.04))], dt=dt)
        qcase(f"sigmoid_{t}", "QLinearSigmoid", [("X", Qd((2, 16, 9), dt)), ("X_scale", sc(0.05)), ("X_zero_point", zp(z, dt)),
                                                 ("Y_scale", sc(1 / 256)), ("Y_zero_point", zp(z - 128 if dt == np.int8 else 0, dt))], dt=dt)
        qcase(f"leakyrelu_{t}", "QLinearLeakyRelu", [("X", Qd((3, 40), dt)), ("X_scale", sc(0.04)), ("X_zero_point", zp(z + 10, dt)),
                                                     ("Y_scale", sc(0.03)), ("Y_zero_point", zp(z - 20, dt))], dict(alpha=0.1), dt=dt)
        qcase(f"gap_{t}", "QLinearGlobalAveragePool", [("X", Qd((2, 8, 5, 7), dt)), ("x_scale", sc(0.02)), ("x_zero_point", zp(z + 2, dt)),
                                                       ("y_scale", sc(0.01)), ("y_zero_point", zp(z - 3, dt))], dt=dt)
        qcase(f"gap_{t}_channels_last", "QLinearGlobalAveragePool",
              [("X", Qd((2, 4, 6, 5), dt)), ("x_scale", sc(0.02)), ("x_zero_point", zp(z, dt)), ("y_scale", sc(0.005)),
               ("y_zero_point", zp(z, dt))], dict(channels_last=1), dt=dt)
        for pn, a in (("k3s2p1", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
                      ("k3s2p1_incl", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
                      ("k2_ceil", dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)),
                      ("k3_pads_uneven", dict(kernel_shape=[3, 2], pads=[0, 1, 2, 0], count_include_pad=1)),
                      ("k3_same_upper", dict(kernel_shape=[3, 3], auto_pad="SAME_UPPER"))):
            qcase(f"avgpool_{t}_{pn}", "QLinearAveragePool",
                  [("X", Qd((2, 3, 7, 9), dt)), ("x_scale", sc(0.03)), ("x_zero_point", zp(z - 7, dt)), ("y_scale", sc(0.02)),
                   ("y_zero_point", zp(z + 4, dt))], a, dt=dt)
        qcase(f"avgpool_{t}_1d", "QLinearAveragePool", [("X", Qd((2, 5, 11), dt)), ("x_scale", sc(0.03)), ("x_zero_point", zp(z, dt)),
                                                        ("y_scale", sc(0.03)), ("y_zero_point", zp(z, dt))], dict(kernel_shape=[4], strides=[3]), dt=dt)
        qcase(f"concat_{t}_3_inputs", "QLinearConcat",
              [("Y_scale", sc(0.05)), ("Y_zero_point", zp(z, dt)),
               ("X0", Qd((2, 3, 4), dt)), ("s0", sc(0.02)), ("z0", zp(z + 9, dt)),
               ("X1", Qd((2, 5, 4), dt)), ("s1", sc(0.05)), ("z1", zp(z, dt)),
               ("X2", Qd((2, 1, 4), dt)), ("s2", sc(0.1)), ("z2", zp(z - 30, dt))], dict(axis=1), dt=dt)
        qcase(f"concat_{t}_last_axis", "QLinearConcat",
              [("Y_scale", sc(0.04)), ("Y_zero_point", zp(z - 2, dt)),
               ("X0", Qd((3, 2, 5), dt)), ("s0", sc(0.03)), ("z0", zp(z + 1, dt)),
               ("X1", Qd((3, 2, 3), dt)), ("s1", sc(0.06)), ("z1", zp(z, dt))], dict(axis=-1), dt=dt)
        qcase(f"softmax_{t}_opset13", "QLinearSoftmax", [("X", Qd((3, 4, 10), dt)), ("X_scale", sc(0.05)), ("x_zero_point", zp(z, dt)),
                                                         ("y_scale", sc(1 / 256)), ("y_zero_point", zp(z - 128 if dt == np.int8 else 0, dt))],
              dict(axis=-1, opset=13), dt=dt)
        qcase(f"softmax_{t}_opset12", "QLinearSoftmax", [("X", Qd((3, 4, 5), dt)), ("X_scale", sc(0.08)), ("x_zero_point", zp(z, dt)),
                                                         ("y_scale", sc(1 / 256)), ("y_zero_point", zp(z - 128 if dt == np.int8 else 0, dt))],
              dict(axis=1, opset=12), dt=dt)
    # scales and zero points as graph inputs: read at run time
    qcase("add_uint8_params_as_inputs", "QLinearAdd", [("A", Qd((2, 8), np.uint8)), ("A_scale", sc(0.02)), ("A_zero_point", zp(120)),
                                                       ("B", Qd((8,), np.uint8)), ("B_scale", sc(0.02)), ("B_zero_point", zp(130)),
                                                       ("C_scale", sc(0.03)), ("C_zero_point", zp(128))], init=())
    # QGemm: uint8 x int8 (ORT's usual pairing), int8 x int8, with/without C, y_scale, per-column b_scale
    M, K, N = 5, 24, 7
    for gn, adt, bdt, az, tb, bias, yq, percol, alpha in (
            ("u8s8_c_yq", np.uint8, np.int8, 130, 0, True, True, False, 1.0),
            ("u8s8_transb_float", np.uint8, np.int8, 120, 1, False, False, False, 1.0),
            ("s8s8_transb_c_yq", np.int8, np.int8, 3, 1, True, True, False, 1.0),
            ("u8u8_c_float_alpha", np.uint8, np.uint8, 128, 0, True, False, False, 0.5),
            ("u8s8_percol_c_yq", np.uint8, np.int8, 125, 1, True, True, True, 1.0),
            ("s8s8_percol_float", np.int8, np.int8, -4, 0, False, False, True, 2.0)):
        bsh = (N, K) if tb else (K, N)
        ins = [("A", Qd((M, K), adt)), ("a_scale", sc(0.02)), ("a_zero_point", zp(az, adt)), ("B", Qw(bsh, bdt, adt)),
               ("b_scale", (rng.uniform(0.005, 0.02, N).astype(np.float32) if percol else sc(0.01))),
               ("b_zero_point", np.zeros(N, bdt) if percol else zp(0 if bdt == np.int8 else 127, bdt)),
               ("C", rng.integers(-3000, 3000, size=(N,)).astype(np.int32)) if bias else None]
        if yq:
            ins += [("y_scale", sc(0.05)), ("y_zero_point", zp(128 if adt == np.uint8 else 0, adt))]
        qcase("qgemm_" + gn, "QGemm", ins, dict(alpha=alpha, transB=tb), dt=adt, out=None if yq else TensorProto.FLOAT,
              rtol=1e-6)
    qcase("qgemm_c_matrix", "QGemm", [("A", Qd((3, 6), np.uint8)), ("a_scale", sc(0.03)), ("a_zero_point", zp(128)),
                                      ("B", Qw((6, 4), np.int8, np.uint8)), ("b_scale", sc(0.02)), ("b_zero_point", zp(0, np.int8)),
                                      ("C", rng.integers(-500, 500, size=(3, 1)).astype(np.int32)), ("y_scale", sc(0.04)),
                                      ("y_zero_point", zp(100))])
    # refused
    qcase("err_add_zero_c_scale", "QLinearAdd", [("A", Qd((2, 3))), ("A_scale", sc(0.02)), ("A_zero_point", zp(128)),
                                                 ("B", Qd((2, 3))), ("B_scale", sc(0.02)), ("B_zero_point", zp(128)),
                                                 ("C_scale", sc(0.0)), ("C_zero_point", zp(128))], init=(),
          si_only_error="a scale that divides must be non-zero and finite")
    qcase("err_sigmoid_zp_type", "QLinearSigmoid", [("X", Qd((2, 3))), ("X_scale", sc(0.02)), ("X_zero_point", zp(0, np.int8)),
                                                    ("Y_scale", sc(0.01)), ("Y_zero_point", zp(0))], error="they must be the same")
    qcase("err_qgemm_rank3", "QGemm", [("A", Qd((2, 3, 4))), ("a_scale", sc(0.02)), ("a_zero_point", zp(128)),
                                       ("B", Qd((4, 5), np.int8)), ("b_scale", sc(0.02)), ("b_zero_point", zp(0, np.int8))],
          out=TensorProto.FLOAT, error="rank 2")


GROUPS = [cases_gqa, cases_nbits, cases_mha, cases_rope, cases_moe, cases_qmoe, cases_norms, cases_bert, cases_onnx_attention, cases_models, cases_qop]


# --- running ----------------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("safeinfer")
    ap.add_argument("workdir")
    ap.add_argument("--devices", default="REF")
    ap.add_argument("--filter", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    for g in GROUPS:
        g()
    cases = [c for c in CASES if a.filter in c["name"]]
    if a.list:
        for c in cases:
            print(c["name"])
        return 0
    if not shutil.which("node"):
        print("SKIP: node not installed")
        return 77
    mods = os.environ.get("ORT_NODE_MODULES", os.path.join(HERE, "..", "build", "ort", "node_modules"))
    if not os.path.isdir(os.path.join(mods, "onnxruntime-node")):
        print(f"SKIP: onnxruntime-node not found at {mods}")
        return 77
    os.environ["ORT_NODE_MODULES"] = mods
    os.makedirs(a.workdir, exist_ok=True)
    manifest = []
    for c in cases:
        d = os.path.join(a.workdir, c["name"])
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        onnx.save(c["model"] if "model" in c else build(c), os.path.join(d, "model.onnx"))
        feeds = {}
        for x in c["inputs"]:
            if x is not None and x[0] not in c["init"]:
                f = os.path.join(d, f"in_{len(feeds)}.npy")
                np.save(f, x[1])
                feeds[x[0]] = f
        c["dir"], c["feeds"] = d, feeds
        manifest.append(dict(model=os.path.join(d, "model.onnx"), feeds=feeds, out=os.path.join(d, "ort")))
    mf = os.path.join(a.workdir, "manifest.json")
    with open(mf, "w") as f:
        json.dump(manifest, f)
    r = subprocess.run(["node", os.path.join(HERE, "llm_ort_batch.js"), mf], capture_output=True, text=True)
    if r.returncode == 77:
        print(r.stdout.strip())
        return 77
    if r.returncode:
        print(r.stdout, r.stderr)
        return 1
    failed = []
    for c in cases:
        ok, msg = run_case(a, c)
        print(f"{'ok  ' if ok else 'FAIL'} {c['name']}: {msg}", flush=True)
        if not ok:
            failed.append(c["name"])
    print(f"{len(cases) - len(failed)} of {len(cases)} cases agree with ONNX Runtime on {a.devices}")
    if failed:
        print("failed:", " ".join(failed))
    return 1 if failed else 0


def run_case(a, c):
    d = c["dir"]
    ort_err = os.path.join(d, "ort", "ERROR")
    ort_failed = os.path.exists(ort_err)
    cmd = [a.safeinfer, "run", os.path.join(d, "model.onnx"), "--devices", a.devices, "--output-dir", os.path.join(d, "si")]
    if a.threads > 1:
        cmd += ["--threads", str(a.threads)]
    for n, f in c["feeds"].items():
        cmd += ["--input", f"{n}={f}"]
    for sh in c.get("shapes", []):
        cmd += ["--shape", sh]
    for kv in c.get("sets", []):  # configuration keys: --moe-experts on
        k, v = kv.split("=", 1)
        cmd += ["--" + k.replace("_", "-"), v]
    if "moe_experts=on" in c.get("sets", []):  # the experts must really become auxiliary models
        ins = subprocess.run([a.safeinfer, "inspect", os.path.join(d, "model.onnx"), "--devices", a.devices, "--set", "moe_experts=on"],
                             capture_output=True, text=True)
        if "(one model per expert)" not in ins.stdout:
            return False, "no unit of expert models: " + ins.stdout[-300:]
    r = subprocess.run(cmd, capture_output=True, text=True)
    si_msg = (r.stdout + r.stderr).strip().replace("\n", " | ")
    if c["error"] or c["si_only_error"]:
        want = c["error"] or c["si_only_error"]
        if c["error"] and not ort_failed:
            return False, "ONNX Runtime ran a case expected to fail"
        if c["si_only_error"] and ort_failed:
            return False, "ONNX Runtime refused: " + open(ort_err).read()[:200]
        if r.returncode == 0:
            return False, "safeinfer ran a case expected to fail"
        if want not in si_msg:
            return False, f"safeinfer's message lacks '{want}': {si_msg[:300]}"
        return True, f"refused ({si_msg[-160:]})"
    if ort_failed:
        return False, "ONNX Runtime failed: " + open(ort_err).read()[:300]
    if r.returncode:
        return False, "safeinfer failed: " + si_msg[:400]
    worst, notes = 0.0, []
    for o in c["outputs"]:
        if not o:
            continue
        fn = o + ".npy"
        x, y = np.load(os.path.join(d, "si", fn)), np.load(os.path.join(d, "ort", fn))
        if x.shape != y.shape or x.dtype != y.dtype:
            return False, f"{o}: safeinfer {x.dtype}{list(x.shape)}, ORT {y.dtype}{list(y.shape)}"
        if x.dtype.kind != "f":
            qtol = c.get("qtol", 0)
            dq = np.abs(x.astype(np.int64) - y.astype(np.int64))
            if dq.size and dq.max() > qtol:
                i = int(np.argmax(dq))
                return False, (f"{o}: integers differ by up to {dq.max()} (tol {qtol}) at {i}: {x.ravel()[i]} vs {y.ravel()[i]}; "
                               f"{x.ravel()[:8]} vs {y.ravel()[:8]}")
            if qtol:
                notes.append(f"{o} {int(np.count_nonzero(dq))} of {dq.size} off by <= {qtol}")
            continue
        diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
        scale = float(np.max(np.abs(y.astype(np.float64)))) if y.size else 0.0
        err = float(diff.max()) / scale if scale > 0 else float(diff.max()) if diff.size else 0.0
        if not np.isfinite(x).all() and not np.array_equal(np.isfinite(x), np.isfinite(y)):
            return False, f"{o}: non-finite values differ"
        worst = max(worst, err)
        notes.append(f"{o} {err:.2g}")
    tol = c["rtol"] if not isinstance(c["rtol"], dict) else c["rtol"].get(a.devices, c["rtol"]["*"])
    return worst <= tol, f"max rel err {worst:.3g} (tol {tol:g}): " + ", ".join(notes)


if __name__ == "__main__":
    sys.exit(main())
