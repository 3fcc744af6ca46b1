#!/usr/bin/python3
"""Greedy generation of a decoder LLM on safeinfer (REF, CPU) and ONNX Runtime, prefill and per-token decode.

usage: bench/llm_generate_bench.py MODEL [--prompt 64] [--steps 17] [--threads "1 2"] [--repeats 5] [--no-ref]
                                   [--gen build/bin/llm_generate]

Each configuration (safeinfer REF at 1 thread, safeinfer CPU and ONNX Runtime at each thread count, --before's
llm_generate at each thread count) runs --repeats times as a fresh process, the configurations taking turns (bench/llm_generate.c, models/ort_generate.js: the same prompt from the same generator).
Prints per configuration the medians over the runs of: prefill latency (the first inference, PROMPT tokens over an
empty cache), the per-token decode latency (the median decode step of a run) and the fastest decode step seen
in any run; for safeinfer also "rerun ms/tok", the median of a second inference of each decode step on the same
inputs (llm_generate's RERUN: the CPU device plans once per distinct input shape, and the second run finds the plan
cached, so decode ms/tok - rerun ms/tok is what planning a new shape costs per token); the median peak RSS; and whether every run's
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
    ap.add_argument("--before", default="", help="another llm_generate (e.g. main's) run as 'before CPU' rows")
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split()]
    confs = []
    for t in threads:
        confs.append(("ONNX Runtime", t, ["node", os.path.join(ROOT, "models", "ort_generate.js"), a.model, str(a.prompt), str(a.steps), str(t)]))
    if not a.no_ref:
        confs.append(("safeinfer REF", 1, [a.gen, a.model, "REF", "1", str(a.prompt), str(a.steps), "1", "1"]))
    for t in threads:
        if a.before:
            confs.append(("before CPU", t, [a.before, a.model, "CPU", str(t), str(a.prompt), str(a.steps), "1", "1"]))
        confs.append(("safeinfer CPU", t, [a.gen, a.model, "CPU", str(t), str(a.prompt), str(a.steps), "1", "1"]))
    print(f"model {a.model}: prompt {a.prompt} tokens, {a.steps} greedy tokens ({a.steps - 1} decode steps), {a.repeats} runs each,"
          " the configurations alternating")
    res = {i: [] for i in range(len(confs))}
    err = {}
    for k in range(a.repeats):
        for i, (who, t, cmd) in enumerate(confs):
            if i in err or (who == "safeinfer REF" and k >= max(1, a.repeats // 2)):
                continue
            r, e = run(cmd)
            if r is None:
                err[i] = e
            else:
                res[i].append(r)
    ref_tokens = next((res[i][0]["tokens"] for i, c in enumerate(confs) if c[0] == "ONNX Runtime" and res[i]), None)
    print(f"{'runtime':<14} {'threads':>7} {'prefill ms':>11} {'prefill tok/s':>13} {'decode ms/tok':>13} {'decode tok/s':>12} "
          f"{'min step ms':>11} {'rerun ms/tok':>12} {'peak MiB':>9}  tokens")
    for i, (who, t, cmd) in enumerate(confs):
        rs = res[i]
        if not rs:
            print(f"{who:<14} {t:>7} {'-':>11}  ({err.get(i, '')})", flush=True)
            continue
        same = "-" if ref_tokens is None else ("= ORT" if all(r["tokens"] == ref_tokens for r in rs) else "DIFFER from ORT")
        pre = statistics.median(r["prefill_ms"] for r in rs)
        dec = statistics.median(r["decode_step_median_ms"] for r in rs)
        mn = min(r["decode_step_min_ms"] for r in rs)
        rr = [r["rerun_step_median_ms"] for r in rs if "rerun_step_median_ms" in r]
        rcol = f"{statistics.median(rr):>12.3f}" if rr else f"{'-':>12}"
        pk = [r["peak_rss_mib"] for r in rs if "peak_rss_mib" in r]
        pcol = f"{statistics.median(pk):>9.1f}" if pk else f"{'-':>9}"
        print(f"{who:<14} {t:>7} {pre:>11.2f} {a.prompt / pre * 1e3:>13.1f} {dec:>13.3f} {1e3 / dec:>12.1f} {mn:>11.3f} {rcol} {pcol}  {same}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
