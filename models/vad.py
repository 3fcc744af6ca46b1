#!/usr/bin/python3
"""A stateful Silero-VAD-like (v5) voice-activity detector, random weights from a fixed seed, opset 16.

I/O (Silero VAD v5's names):
  inputs   input float32 [batch, samples]   one chunk of audio: 512 samples at 16 kHz, 256 at 8 kHz
           state float32 [2, batch, 128]    the LSTM's h and c from the previous chunk (zeros at the start)
           sr    int64 []                   the sample rate, 16000 or 8000
  outputs  output float32 [batch, 1]        the speech probability of the chunk
           stateN float32 [2, batch, 128]   the state to feed with the next chunk

The graph: If(Equal(sr, 16000)) with one subgraph per rate (each with its own weights, read as outer-scope
initializers), each:
  Unsqueeze to [batch, 1, samples] -> Pad (reflect, 64 / 32 samples on the right)
  -> STFT as a Conv1d with a fixed basis (Hann-windowed cos and -sin rows for bins 0..N/2; N 256 / 128, hop
     128 / 64) -> Slice real / imaginary -> magnitude Sqrt(re^2 + im^2)  [batch, 129 / 65, 3]
  -> encoder: Conv1d(k 3) + ReLU blocks: bins -> 128 (stride 1), 128 -> 64 (stride 2), 64 -> 64 (stride 2),
     64 -> 128 (stride 1)  [batch, 128, 1]
  -> Transpose to [time, batch, 128] -> LSTM (hidden 128; initial_h / initial_c sliced from state)
     -> stateN = Concat(Y_h, Y_c)
  -> decoder: ReLU -> Conv1d(128 -> 1, k 1) -> Sigmoid -> ReduceMean over time -> output [batch, 1]

Weights are scaled so that the probability follows the audio: low on faint noise, high on voiced (harmonic)
chunks, and in between while the LSTM state catches up (ort_vad.js prints the probabilities of its built-in
audio, which alternates silence and voice).

usage: vad.py OUT.onnx [--hidden 128] [--seed 3]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder, F32, I64, tensor, save  # noqa: E402
from layers import conv, relu  # noqa: E402

# gain: of the first encoder conv, so that its output is unit-ish on voiced audio at -10 dBFS (the 8 kHz
# spectrum sums half the samples per bin)
RATES = {16000: dict(n_fft=256, hop=128, pad=64, chunk=512, gain=2.0),
         8000: dict(n_fft=128, hop=64, pad=32, chunk=256, gain=8.0)}


def stft_basis(n_fft):
    """[2 * (n_fft/2 + 1), 1, n_fft]: Hann-windowed cos rows, then -sin rows."""
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)
    re = np.cos(2 * np.pi * k * n / n_fft) * win
    im = -np.sin(2 * np.pi * k * n / n_fft) * win
    return np.concatenate([re, im])[:, None, :].astype(np.float32)


def branch(b, rate, H, tag):
    """The detector for one sample rate, in subgraph builder b; returns (output, stateN) value names."""
    r = RATES[rate]
    nb = r["n_fft"] // 2 + 1
    p = f"{tag}"
    x = b.node("Unsqueeze", ["input", b.i64(p + ".ax1", [1])], base=p + ".unsqueeze")
    x = b.node("Pad", [x, b.i64(p + ".pads", [0, 0, 0, 0, 0, r["pad"]])], base=p + ".reflect_pad", mode="reflect")
    s = b.node("Conv", [x, b.const(p + ".stft.forward_basis_buffer", stft_basis(r["n_fft"]))], base=p + ".stft",
               kernel_shape=[r["n_fft"]], strides=[r["hop"]], pads=[0, 0])
    re = b.node("Slice", [s, b.i64(p + ".s0", [0]), b.i64(p + ".s1", [nb]), b.i64(p + ".sax", [1])], base=p + ".real")
    im = b.node("Slice", [s, b.i64(p + ".s2", [nb]), b.i64(p + ".s3", [2 * nb]), b.i64(p + ".sax2", [1])],
                base=p + ".imag")
    two = b.f32(p + ".two", 2.0)
    mag = b.node("Sqrt", [b.node("Add", [b.node("Pow", [re, two], base=p + ".re2"),
                                          b.node("Pow", [im, two], base=p + ".im2")], base=p + ".power")],
                 base=p + ".magnitude")
    h = relu(b, conv(b, mag, nb, 128, 3, p + ".encoder.0.reparam_conv", dims=1, gain=r["gain"]), p + ".encoder.0.relu")
    h = relu(b, conv(b, h, 128, 64, 3, p + ".encoder.1.reparam_conv", stride=2, dims=1), p + ".encoder.1.relu")
    h = relu(b, conv(b, h, 64, 64, 3, p + ".encoder.2.reparam_conv", stride=2, dims=1), p + ".encoder.2.relu")
    h = relu(b, conv(b, h, 64, 128, 3, p + ".encoder.3.reparam_conv", dims=1), p + ".encoder.3.relu")
    seq = b.node("Transpose", [h], base=p + ".to_time_major", perm=[2, 0, 1])
    h0 = b.node("Slice", ["state", b.i64(p + ".h0", [0]), b.i64(p + ".h1", [1]), b.i64(p + ".hax", [0])],
                base=p + ".initial_h")
    c0 = b.node("Slice", ["state", b.i64(p + ".c0", [1]), b.i64(p + ".c1", [2]), b.i64(p + ".cax", [0])],
                base=p + ".initial_c")
    W = b.normal((1, 4 * H, 128), 1.0 / np.sqrt(128))
    R = b.normal((1, 4 * H, H), 1.0 / np.sqrt(H))
    Bias = b.normal((1, 8 * H), 0.1)
    Bias[0, 2 * H:3 * H] += 1.0  # forget gate (ONNX gate order i, o, f, c) biased open, as trained LSTMs are
    y, yh, yc = b.node("LSTM", [seq, b.const(p + ".decoder.rnn.weight_ih", W), b.const(p + ".decoder.rnn.weight_hh", R),
                                b.const(p + ".decoder.rnn.bias", Bias), "", h0, c0],
                       base=p + ".decoder.rnn", n_out=3, hidden_size=H)
    state_n = b.node("Concat", [yh, yc], base=p + ".stateN", axis=0)
    y = b.node("Squeeze", [y, b.i64(p + ".ax_dir", [1])], base=p + ".squeeze")
    y = b.node("Transpose", [y], base=p + ".to_channels", perm=[1, 2, 0])
    y = relu(b, y, p + ".decoder.relu")
    w = b.normal((1, H, 1), 8.0 / np.sqrt(H))
    y = b.node("Conv", [y, b.const(p + ".decoder.conv.weight", w), b.const(p + ".decoder.conv.bias",
                                                                         np.array([-1.0], np.float32))],
               base=p + ".decoder.conv", kernel_shape=[1])
    y = b.node("Sigmoid", [y], base=p + ".sigmoid")
    out = b.node("ReduceMean", [y], base=p + ".mean", axes=[2], keepdims=0)
    return out, state_n


def build(a):
    b = Builder(a.seed)
    cond = b.node("Equal", ["sr", b.i64("sr_16k", 16000)], base="is_16k")
    graphs = {}
    for rate in (16000, 8000):
        sb = b.sub()
        tag = f"sr{rate // 1000}k"
        out, st = branch(sb, rate, a.hidden, tag)
        sb.node("Identity", [out], base=tag + ".output", outputs=[tag + ".out.output"])
        sb.node("Identity", [st], base=tag + ".state_out", outputs=[tag + ".out.stateN"])
        graphs[rate] = sb.graph(tag, [tensor(tag + ".out.output", F32, None), tensor(tag + ".out.stateN", F32, None)])
    b.node("If", [cond], base="If_sr", outputs=["output", "stateN"], then_branch=graphs[16000],
           else_branch=graphs[8000])
    inputs = [tensor("input", F32, ["batch", "samples"]), tensor("state", F32, [2, "batch", a.hidden]),
              tensor("sr", I64, [])]
    outputs = [tensor("output", F32, ["batch", 1]), tensor("stateN", F32, [2, "batch", a.hidden])]
    return b.model("silero_vad_like", inputs, outputs, opset=16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    m = build(a)
    save(m, a.out)
    n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    print(f"{a.out}: silero-vad-like, LSTM hidden {a.hidden}, 16 kHz and 8 kHz branches, {n / 1e6:.2f}M values")


if __name__ == "__main__":
    main()
