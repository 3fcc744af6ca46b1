#!/usr/bin/python3
"""Greedy generation of a decoder LLM on safeinfer (REF, CPU) and ONNX Runtime, prefill and per-token decode.

usage: bench/llm_generate_bench.py MODEL [--prompt 64] [--steps 17] [--threads "1 2"] [--repeats 5] [--no-ref]
                                   [--gen build/bin/llm_generate]

Each configuration (safeinfer REF at 1 thread, safeinfer CPU and ONNX Runtime at each thread count) runs --repeats
times as a fresh process (bench/llm_generate.c, models/ort_generate.js: the same prompt from the same generator).
Prints per configuration the medians over the runs of: prefill latency (the first inference, PROMPT tokens over an
empty cache), the per-token decode latency (the median decode step of a run) and the fastest decode step seen
in any run; for safeinfer also "rerun ms/tok", the median of a second inference of each decode step on the same
inputs (llm_generate's RERUN: the CPU device plans once per distinct input shape, and the second run finds the plan
cached, so decode ms/tok - rerun ms/tok is what planning a new shape costs per token); and whether every run's
greedy tokens equal ONNX Runtime's. On a shared machine the medians move
with the load: look at the min column and repeat.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        return None, (r.stdout + r.stderr).strip()[-300:]
    return json.loads(r.stdout.strip().splitlines()[-1]), ""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--steps", type=int, default=17)
    ap.add_argument("--threads", default="1 2")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-ref", action="store_true")
    ap.add_argument("--gen", default=os.path.join(ROOT, "build", "bin", "llm_generate"))
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split()]
    confs = []
    for t in threads:
        confs.append(("ONNX Runtime", t, ["node", os.path.join(ROOT, "models", "ort_generate.js"), a.model, str(a.prompt), str(a.steps), str(t)]))
    if not a.no_ref:
        confs.append(("safeinfer REF", 1, [a.gen, a.model, "REF", "1", str(a.prompt), str(a.steps), "1", "1"]))
    for t in threads:
        confs.append(("safeinfer CPU", t, [a.gen, a.model, "CPU", str(t), str(a.prompt), str(a.steps), "1", "1"]))
    ref_tokens = None
    print(f"model {a.model}: prompt {a.prompt} tokens, {a.steps} greedy tokens ({a.steps - 1} decode steps), {a.repeats} runs each")
    print(f"{'runtime':<14} {'threads':>7} {'prefill ms':>11} {'prefill tok/s':>13} {'decode ms/tok':>13} {'decode tok/s':>12} "
          f"{'min step ms':>11} {'rerun ms/tok':>12}  tokens")
    for who, t, cmd in confs:
        res = []
        err = ""
        for _ in range(a.repeats if who != "safeinfer REF" else max(1, a.repeats // 2)):
            r, err = run(cmd)
            if r is None:
                break
            res.append(r)
        if not res:
            print(f"{who:<14} {t:>7} {'-':>11}  ({err})", flush=True)
            continue
        if who == "ONNX Runtime" and ref_tokens is None:
            ref_tokens = res[0]["tokens"]
        same = "-" if ref_tokens is None else ("= ORT" if all(r["tokens"] == ref_tokens for r in res) else "DIFFER from ORT")
        pre = statistics.median(r["prefill_ms"] for r in res)
        dec = statistics.median(r["decode_step_median_ms"] for r in res)
        mn = min(r["decode_step_min_ms"] for r in res)
        rr = [r["rerun_step_median_ms"] for r in res if "rerun_step_median_ms" in r]
        rcol = f"{statistics.median(rr):>12.3f}" if rr else f"{'-':>12}"
        print(f"{who:<14} {t:>7} {pre:>11.2f} {a.prompt / pre * 1e3:>13.1f} {dec:>13.3f} {1e3 / dec:>12.1f} {mn:>11.3f} {rcol}  {same}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
