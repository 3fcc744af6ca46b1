#!/usr/bin/python3
"""Long-context GroupQueryAttention on the CPU device against ONNX Runtime: outputs, time and peak memory.

  decode_8192    one query over 8192 cached positions (past K/V [1, 8, 8192, 128], N=32 heads, N_kv=8)
  prefill_2048   2048 queries over an empty cache (causal 2048 x 2048)

usage: bench/llm_long_ctx.py [--si build/bin/safeinfer] [--dir build/bench-llm] [--threads "1 2"] [--repeat 5]
Per case and thread count: safeinfer (`safeinfer run --devices CPU`) and ONNX Runtime (bench/ort_run.js) write
their outputs; prints the largest |safeinfer - ORT| over the three outputs, the median latency of an inference
(`safeinfer bench`, bench/ort_time.js: R runs after warm-up) and each timed process's peak RSS (/usr/bin/time -f %M of
`safeinfer bench` and of bench/ort_run.js; both hold the same inputs and outputs: the K/V caches dominate). A benchmark: it
prints, it asserts nothing.
"""
import os
import re
import subprocess
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import llm_bench_args
from llm_bench_args import HERE


def model(d, name, S, past, N=32, Nkv=8, H=128):
    rng = np.random.default_rng(3)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    feeds = {"query": f(1, S, N * H), "key": f(1, S, Nkv * H), "value": f(1, S, Nkv * H),
             "past_key": f(1, Nkv, past, H), "past_value": f(1, Nkv, past, H)}
    node = helper.make_node("GroupQueryAttention", ["query", "key", "value", "past_key", "past_value", "seqlens_k",
                                                    "total_sequence_length"], ["output", "present_key", "present_value"],
                            domain="com.microsoft", num_heads=N, kv_num_heads=Nkv)
    ins = [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(v.shape)) for k, v in feeds.items()]
    inits = [numpy_helper.from_array(np.array([past + S - 1], np.int32), "seqlens_k"),
             numpy_helper.from_array(np.array([past + S], np.int32), "total_sequence_length")]
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in ("output", "present_key", "present_value")]
    m = helper.make_model(helper.make_graph([node], name, ins, outs, inits),
                          opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    m.ir_version = 8
    path = os.path.join(d, name + ".onnx")
    with open(path, "wb") as fh:
        fh.write(m.SerializeToString())
    files = {}
    for k, v in feeds.items():
        files[k] = os.path.join(d, f"{name}.{k}.npy")
        np.save(files[k], v)
    return path, files


def timed_rss(cmd, env=None):
    r = subprocess.run(["/usr/bin/time", "-f", "RSS_KB=%M"] + cmd, capture_output=True, text=True, env=env)
    m = re.search(r"RSS_KB=(\d+)", r.stderr)
    return r, (int(m.group(1)) / 1024 if m else float("nan"))


def main():
    ap = llm_bench_args.parser("si", "safeinfer", "decode_8192,prefill_2048")
    ap.add_argument("--repeat", type=int, default=5)
    a = llm_bench_args.parse(ap)
    shapes = {"decode_8192": (1, 8192), "prefill_2048": (2048, 0)}
    print(f"{'case':<13} {'threads':>7} {'max |si - ORT|':>15} {'si ms':>9} {'ORT ms':>9} {'si peak MiB':>12} {'ORT peak MiB':>13}")
    for name in a.cases.split(","):
        S, past = shapes[name]
        path, feeds = model(a.dir, name, S, past)
        for t in [int(x) for x in a.threads.split()]:
            so, oo = os.path.join(a.dir, name + ".si"), os.path.join(a.dir, name + ".ort")
            os.makedirs(so, exist_ok=True), os.makedirs(oo, exist_ok=True)
            args = [f"{k}={v}" for k, v in feeds.items()]
            env = dict(os.environ, OMP_NUM_THREADS=str(t))
            r, si_rss = timed_rss([a.si, "bench", path, "--devices", "CPU", "--threads", str(t), "--iterations", str(a.repeat),
                                   "--warmup", "1"] + sum((["--input", x] for x in args), []), env)
            m = re.search(r"median latency\s+([\d.]+) ms", r.stdout)
            si_ms = float(m.group(1)) if m else float("nan")
            if r.returncode:
                print(f"{name:<13} {t:>7} safeinfer bench failed: {(r.stdout + r.stderr)[-300:]}")
                continue
            r, _ = timed_rss([a.si, "run", path, "--devices", "CPU", "--output-dir", so] + sum((["--input", x] for x in args), []), env)
            if r.returncode:
                print(f"{name:<13} {t:>7} safeinfer run failed: {(r.stdout + r.stderr)[-300:]}")
                continue
            r, ort_rss = timed_rss(["node", os.path.join(HERE, "ort_run.js"), path, oo, str(t), str(a.repeat)] + args,
                                   dict(os.environ, ORT_WARMUP="1"))
            if r.returncode:
                print(f"{name:<13} {t:>7} ONNX Runtime failed: {(r.stdout + r.stderr)[-300:]}")
                continue
            r2 = subprocess.run(["node", os.path.join(HERE, "ort_time.js"), path, str(t), str(a.repeat)] + args, capture_output=True, text=True)
            m = re.search(r'"median_ms":([\d.]+)', r2.stdout)
            ort_ms = float(m.group(1)) if m else float("nan")
            diff = max(float(np.max(np.abs(np.load(os.path.join(so, o + ".npy")) - np.load(os.path.join(oo, o + ".npy")))))
                       for o in ("output", "present_key", "present_value"))
            print(f"{name:<13} {t:>7} {diff:>15.3g} {si_ms:>9.2f} {ort_ms:>9.2f} {si_rss:>12.1f} {ort_rss:>13.1f}", flush=True)
    print("si ms / ORT ms: median latency of one inference (safeinfer bench, bench/ort_time.js); peak MiB: the whole "
          "process's peak RSS (safeinfer bench, bench/ort_run.js), inputs and outputs included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
