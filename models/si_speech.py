#!/usr/bin/python3
"""Greedy transcription with safeinfer (the Python package, over include/safeinfer.h) on a speech.py export, the
same loop as ort_speech.js: the encoder on the same built-in log-mel input, then the merged decoder (its If on
use_cache_branch runs on the host, each branch compiled like a model) — first step use_cache_branch = false with
empty past tensors ([1, heads, 0, head_dim]), later steps true with the present.* outputs fed back. Both models
are compiled once with their dimensions open.

usage: si_speech.py DIR STEPS [--devices LIST] [--faults SPEC] [--quantized] [--frames N] [--report FILE] [--threads N]
Prints one JSON line: {"tokens", "prompt", "frames", "devices", "decoder_devices", "failovers", "min_margin",
"compile_ms", "encoder_ms", "first_step_ms", "decode_ms"} (times as ort_speech.js measures them).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import safeinfer  # noqa: E402


def features(mels, frames):
    m = np.arange(mels, dtype=np.float64)[:, None]
    t = np.arange(frames, dtype=np.float64)[None, :]
    f = 0.6 * np.sin(0.05 * t * (1 + (m % 7)) + 0.3 * m) + 0.2 * np.cos(0.011 * t * m) - 0.2
    return f.astype(np.float32)[None]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("steps", type=int)
    ap.add_argument("--devices", default="CPU")
    ap.add_argument("--faults", default=None)
    ap.add_argument("--quantized", action="store_true")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--report", default=None)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.dir, "config.json")))
    suffix = "_quantized.onnx" if a.quantized else ".onnx"
    props = {"devices": a.devices}
    if a.faults:
        props["faults"] = a.faults
    if a.threads:
        props["threads"] = str(a.threads)
    t = time.perf_counter()
    enc = safeinfer.InferenceSession(os.path.join(a.dir, "encoder_model" + suffix), **props)
    dec = safeinfer.InferenceSession(os.path.join(a.dir, "decoder_model_merged" + suffix), **props)
    compile_ms = (time.perf_counter() - t) * 1e3
    feats = features(cfg["num_mel_bins"], a.frames or cfg["frames"])
    t = time.perf_counter()
    hidden = enc.run(["last_hidden_state"], {"input_features": feats})[0]
    encoder_ms = (time.perf_counter() - t) * 1e3
    H, L = cfg["decoder_attention_heads"], cfg["decoder_layers"]
    hd = cfg["d_model"] // H
    in_names = [i.name for i in dec.get_inputs()]
    out_names = [o.name for o in dec.get_outputs()]
    pasts = [n for n in in_names if n.startswith("past_key_values.")]
    prompt = cfg["decoder_start_ids"]
    empty = np.zeros((1, H, 0, hd), np.float32)
    feeds = {"input_ids": np.array([prompt], np.int64), "encoder_hidden_states": hidden,
             "use_cache_branch": np.array([False])}
    for n in pasts:
        feeds[n] = empty
    t = time.perf_counter()
    out = dict(zip(out_names, dec.run(out_names, feeds)))
    first_ms = (time.perf_counter() - t) * 1e3
    tokens, margin = [], float("inf")
    t = time.perf_counter()
    for i in range(a.steps):
        row = out["logits"][0, -1]
        top2 = np.argpartition(row, -2)[-2:]  # linear, as ort_speech.js's scan (a full sort cost ~3 ms a step)
        first, second = (top2[1], top2[0]) if row[top2[1]] >= row[top2[0]] else (top2[0], top2[1])
        if row[first] == row[second]:
            first = min(first, second)  # ties: the lowest index, as argmax
        tokens.append(int(first))
        margin = min(margin, float(row[top2].max() - row[top2].min()))
        if i == a.steps - 1:
            break
        f = {"input_ids": np.array([[tokens[-1]]], np.int64), "encoder_hidden_states": hidden,
             "use_cache_branch": np.array([True])}
        for n in pasts:
            f[n] = out[n.replace("past_key_values.", "present.")]
        out = dict(zip(out_names, dec.run(out_names, f)))
    decode_ms = (time.perf_counter() - t) * 1e3
    rep = dec.report()
    if a.report:
        with open(a.report, "w") as fh:
            json.dump(rep, fh)
    print(json.dumps({"tokens": tokens, "prompt": prompt, "frames": int(feats.shape[2]), "devices": a.devices,
                      "decoder_devices": dec.get_devices(), "failovers": rep["counters"]["failovers"],
                      "min_margin": round(margin, 4), "compile_ms": round(compile_ms, 2),
                      "encoder_ms": round(encoder_ms, 2), "first_step_ms": round(first_ms, 2),
                      "decode_ms": round(decode_ms, 2)}))


if __name__ == "__main__":
    main()
