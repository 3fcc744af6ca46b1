#!/usr/bin/python3
"""LLM hot-path ops, one node each, on safeinfer (REF and the CPU device's native kernels) and ONNX Runtime.

  nbits_gemv   MatMulNBits, M=1, K=N=4096, 4-bit, block 32, packed zero points (the decode projection)
  nbits_gemm   the same weight with M=64 (a prefill chunk)
  nbits_gemv_l4, nbits_gemm_l4   the same at accuracy_level 4 (int8 A: ONNX Runtime's and safeinfer's VNNI kernels)
  nbits_down_l4, nbits_down64_l4 K=1408, N=512 at level 4, M=1 and 64 (the 8-layer test LLM's down projection)
  nbits_up64_l4  K=512, N=1408, M=64 at level 4 (its up / gate projections in a prefill)
  gqa_2048     GroupQueryAttention decode: 1 query, 2048 cached positions (N=32, N_kv=8, H=128)
  gqa_8192     the same with 8192 cached positions

usage: bench/llm_ops_bench.py [--timer build/bin/llm_ops_time] [--dir build/bench-llm] [--threads "1 2"]
                              [--iterations 20] [--cases nbits_gemv,...] [--no-ref]
Prints, per runtime and thread count, the median and best wall-clock latency of an inference (ms), the process CPU
time per inference (all threads), and the bytes the op must stream over the best latency (GB/s: MatMulNBits'
packed weights, scales and zero points; GQA's past K and V). safeinfer runs through bench/llm_ops_time.c (the
llm_ops_time target), ONNX Runtime through bench/ort_time.js when onnxruntime-node is found (ORT_NODE_MODULES), with
the same inputs and intra-op threads. REF has no threads: it runs once, at 1.
"""
import json
import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import llm_bench_args
from llm_bench_args import HERE


def save(model, path):
    with open(path, "wb") as f:
        f.write(model.SerializeToString())


def nbits_model(d, name, M, K=4096, N=4096, block=32, bits=4, acc=0):
    rng = np.random.default_rng(0)
    nb = (K + block - 1) // block
    B = rng.integers(0, 256, size=(N, nb, block * bits // 8), dtype=np.uint8)
    scales = rng.uniform(0.001, 0.01, size=(N * nb,)).astype(np.float32)
    zp = rng.integers(0, 256, size=(N * ((nb * bits + 7) // 8),), dtype=np.uint8)
    node = helper.make_node("MatMulNBits", ["A", "B", "scales", "zero_points"], ["Y"], domain="com.microsoft",
                            K=K, N=N, bits=bits, block_size=block, accuracy_level=acc)
    g = helper.make_graph([node], name, [helper.make_tensor_value_info("A", TensorProto.FLOAT, [M, K])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [M, N])],
                          [numpy_helper.from_array(B, "B"), numpy_helper.from_array(scales, "scales"),
                           numpy_helper.from_array(zp, "zero_points")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    save(m, os.path.join(d, name + ".onnx"))
    a = rng.standard_normal((M, K)).astype(np.float32)
    np.save(os.path.join(d, name + ".A.npy"), a)
    return {"A": os.path.join(d, name + ".A.npy")}, B.nbytes + scales.nbytes + zp.nbytes


def gqa_model(d, name, past, N=32, Nkv=8, H=128):
    rng = np.random.default_rng(1)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    feeds = {"query": f(1, 1, N * H), "key": f(1, 1, Nkv * H), "value": f(1, 1, Nkv * H),
             "past_key": f(1, Nkv, past, H), "past_value": f(1, Nkv, past, H)}
    node = helper.make_node("GroupQueryAttention", ["query", "key", "value", "past_key", "past_value", "seqlens_k",
                                                    "total_sequence_length"], ["output", "present_key", "present_value"],
                            domain="com.microsoft", num_heads=N, kv_num_heads=Nkv)
    ins = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in feeds.items()]
    inits = [numpy_helper.from_array(np.array([past], np.int32), "seqlens_k"),
             numpy_helper.from_array(np.array([past + 1], np.int32), "total_sequence_length")]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("output", "present_key", "present_value")]
    m = helper.make_model(helper.make_graph([node], name, ins, outs, inits),
                          opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    save(m, os.path.join(d, name + ".onnx"))
    files = {}
    for k, v in feeds.items():
        files[k] = os.path.join(d, f"{name}.{k}.npy")
        np.save(files[k], v)
    return files, 2 * Nkv * past * H * 4


def timed(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        return None, (r.stdout + r.stderr).strip()[-300:]
    return json.loads(r.stdout.strip().splitlines()[-1]), ""


def si_bench(a, model, feeds, device, threads, iters):
    return timed([a.timer, model, device, str(threads), str(iters)] + [f"{k}={v}" for k, v in feeds.items()])


def ort_bench(a, model, feeds, threads, iters):
    mods = os.environ.get("ORT_NODE_MODULES", "")
    if not mods or not os.path.isdir(os.path.join(mods, "onnxruntime-node")):
        return None, "onnxruntime-node not found (ORT_NODE_MODULES)"
    return timed(["node", os.path.join(HERE, "ort_time.js"), model, str(threads), str(iters)] +
                 [f"{k}={v}" for k, v in feeds.items()])


def main():
    ap = llm_bench_args.parser("timer", "llm_ops_time", "nbits_gemv,nbits_gemm,gqa_2048,gqa_8192")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--no-ref", action="store_true")
    a = llm_bench_args.parse(ap)
    makers = {"nbits_gemv": lambda: nbits_model(a.dir, "nbits_gemv", 1), "nbits_gemm": lambda: nbits_model(a.dir, "nbits_gemm", 64),
              "nbits_gemv_l4": lambda: nbits_model(a.dir, "nbits_gemv_l4", 1, acc=4),
              "nbits_gemm_l4": lambda: nbits_model(a.dir, "nbits_gemm_l4", 64, acc=4),
              "nbits_down_l4": lambda: nbits_model(a.dir, "nbits_down_l4", 1, K=1408, N=512, acc=4),
              "nbits_down64_l4": lambda: nbits_model(a.dir, "nbits_down64_l4", 64, K=1408, N=512, acc=4),
              "nbits_up64_l4": lambda: nbits_model(a.dir, "nbits_up64_l4", 64, K=512, N=1408, acc=4),
              "gqa_2048": lambda: gqa_model(a.dir, "gqa_2048", 2048), "gqa_8192": lambda: gqa_model(a.dir, "gqa_8192", 8192)}
    threads = [int(t) for t in a.threads.split()]
    print(f"{'case':<12} {'runtime':<14} {'threads':>7} {'median ms':>10} {'min ms':>9} {'cpu ms':>9} {'GB/s':>7}")
    for name in a.cases.split(","):
        feeds, nbytes = makers[name]()
        model = os.path.join(a.dir, name + ".onnx")
        rows = []
        if not a.no_ref:
            rows.append(("safeinfer REF", 1, lambda: si_bench(a, model, feeds, "REF", 1, max(3, a.iterations // 5))))
        for t in threads:
            rows.append(("safeinfer CPU", t, lambda t=t: si_bench(a, model, feeds, "CPU", t, a.iterations)))
        for t in threads:
            rows.append(("ONNX Runtime", t, lambda t=t: ort_bench(a, model, feeds, t, a.iterations)))
        for who, t, run in rows:
            r, err = run()
            if r is None:
                print(f"{name:<12} {who:<14} {t:>7} {'-':>10}  ({err})", flush=True)
            else:
                print(f"{name:<12} {who:<14} {t:>7} {r['median_ms']:>10.3f} {r['min_ms']:>9.3f} {r['cpu_ms']:>9.3f} "
                      f"{nbytes / r['min_ms'] / 1e6:>7.2f}", flush=True)
    print("GB/s: MatMulNBits weight bytes (packed codes, scales, zero points) or GQA cache bytes read (past K and V)"
          " over the best latency; cpu ms: process CPU time per inference, all threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
