#!/usr/bin/python3
"""Decoder-only LLMs with a KV cache, random weights from a fixed seed, in the two forms people run:

  plain   plain ONNX (opset 17): Gather embedding, RMSNorm written out (Pow, ReduceMean, Sqrt, Div, Mul), rotary
          embedding as Slice/Mul/Concat, attention as MatMul -> Softmax -> MatMul with a causal + padding mask
          built from Shape/Range/LessOrEqual/Where, grouped KV heads repeated with Expand/Reshape, SwiGLU MLP.
  genai   the form ONNX Runtime GenAI's model builder emits: MatMulNBits (4- or 8-bit blockwise weights),
          GroupQueryAttention with do_rotary and cos/sin caches, SimplifiedLayerNormalization and
          SkipSimplifiedLayerNormalization, seqlens_k / total_sequence_length computed from attention_mask.
  --moe   (genai or plain) the MLP of every layer becomes a com.microsoft MoE (router MatMul, top-k experts).
  --qmoe  (with --moe) the experts become a com.microsoft QMoE: --bits weights in blocks of --block along each
          expert row (scales [E, out, in / block], zero points with --zero-points), as the GenAI builder emits
          for quantized MoE models. --moe-act swiglu: the experts' activation is interleaved SwiGLU (gate and up
          rows alternating in fc1, swiglu_fusion 1), as the builder writes it; default silu.

I/O (the Hugging Face / GenAI naming):
  inputs   input_ids int64 [batch, sequence_length], attention_mask int64 [batch, total_sequence_length],
           past_key_values.L.key / .value float32 [batch, kv_heads, past_sequence_length, head_dim]
  outputs  logits float32 [batch, sequence_length, vocab], present.L.key / .value [batch, kv_heads, total, head_dim]

usage: llm.py OUT.onnx [--form plain|genai] [--layers 8] [--hidden 512] [--heads 8] [--kv-heads 8]
              [--inter 1408] [--vocab 2048] [--bits 4] [--block 32] [--accuracy-level 0] [--zero-points]
              [--moe [--qmoe] [--moe-act silu|swiglu]] [--experts 4] [--top-k 2] [--max-pos 4096] [--seed 1]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder, MS, F32, I64, I32, BOOL, tensor, save  # noqa: E402


def rope_tables(max_pos, head_dim, base=10000.0):
    inv = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    ang = np.arange(max_pos, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def pack_nbits(w, bits, block, zero_points, rng):
    """w [N, K] float32 -> (B uint8 [N, nb, blob], scales float32 [N, nb], zp uint8 [N, ceil(nb*bits/8)] or None,
    the dequantized weight [N, K]) following MatMulNBits' layout (even index in the low bits)."""
    n, k = w.shape
    nb = (k + block - 1) // block
    per = 8 // bits
    qmax = (1 << bits) - 1
    wp = np.zeros((n, nb * block), np.float32)
    wp[:, :k] = w
    wb = wp.reshape(n, nb, block)
    if zero_points:
        lo, hi = np.minimum(wb.min(-1), 0), np.maximum(wb.max(-1), 0)
        scale = np.maximum(hi - lo, 1e-8) / qmax
        zp = np.clip(np.round(-lo / scale), 0, qmax).astype(np.int32)
    else:
        scale = np.maximum(np.abs(wb).max(-1), 1e-8) / (qmax // 2 + 0.5)
        zp = np.full((n, nb), 1 << (bits - 1), np.int32)
    q = np.clip(np.round(wb / scale[..., None]) + zp[..., None], 0, qmax).astype(np.int32)
    q[:, -1, k - (nb - 1) * block:] = rng.integers(0, qmax + 1, size=(n, nb * block - k))  # padding: ignored
    deq = ((q - zp[..., None]) * scale[..., None]).reshape(n, nb * block)[:, :k].astype(np.float32)
    blob = block * bits // 8
    packed = np.zeros((n, nb, blob), np.uint8)
    for j in range(block):
        packed[:, :, j // per] |= (q[:, :, j].astype(np.uint8) << ((j % per) * bits)).astype(np.uint8)
    zpp = None
    if zero_points:
        zrow = (nb * bits + 7) // 8
        zpp = np.zeros((n, zrow), np.uint8)
        for b in range(nb):
            zpp[:, b // per] |= (zp[:, b].astype(np.uint8) << ((b % per) * bits)).astype(np.uint8)
    return packed, scale.astype(np.float32), zpp, deq


class LLM:
    def __init__(self, a):
        self.a = a
        self.b = Builder(a.seed)
        self.hd = a.hidden // a.heads
        assert a.hidden % a.heads == 0 and a.heads % a.kv_heads == 0

    # --- weights ---------------------------------------------------------------------------------------------
    def weight(self, base, k, n, std=None):
        """A [K, N] projection: returns the float weight for plain, or MatMulNBits initializers for genai."""
        std = std if std is not None else 1.0 / np.sqrt(k)
        return self.b.normal((k, n), std)

    def linear(self, x, base, k, n, std=None):
        w = self.weight(base, k, n, std)
        if self.a.form == "plain":
            return self.b.node("MatMul", [x, self.b.const(base, w)], base=base)
        a = self.a
        packed, scales, zp, _ = pack_nbits(w.T.copy(), a.bits, a.block, a.zero_points, self.b.rng)
        ins = [x, self.b.const(base + ".qweight", packed), self.b.const(base + ".scales", scales.reshape(-1))]
        if zp is not None:
            ins.append(self.b.const(base + ".qzeros", zp.reshape(-1)))
        return self.b.node("MatMulNBits", ins, base=base, domain=MS, K=k, N=n, bits=a.bits, block_size=a.block,
                           accuracy_level=a.accuracy_level)

    def gamma(self, base):
        return self.b.const(base, (1.0 + 0.1 * self.b.rng.standard_normal(self.a.hidden)).astype(np.float32))

    # --- plain-ONNX pieces -------------------------------------------------------------------------------------
    def rmsnorm(self, x, base):
        b = self.b
        sq = b.node("Pow", [x, b.f32("two", 2.0)], base=base + ".pow")
        ms = b.node("ReduceMean", [sq], base=base + ".mean", axes=[-1], keepdims=1)
        sd = b.node("Sqrt", [b.node("Add", [ms, b.f32("eps", 1e-5)], base=base + ".add")], base=base + ".sqrt")
        return b.node("Mul", [b.node("Div", [x, sd], base=base + ".div"), self.gamma(base + ".weight")], base=base)

    def heads(self, x, n, base):
        b = self.b
        r = b.node("Reshape", [x, b.i64("shape_heads", [0, 0, n, self.hd])], base=base + ".reshape")
        return b.node("Transpose", [r], base=base + ".t", perm=[0, 2, 1, 3])

    def rope(self, x, cos, sin, base):
        b, h2 = self.b, self.hd // 2
        x1 = b.node("Slice", [x, b.i64("r0", [0]), b.i64("r1", [h2]), b.i64("r3", [3])], base=base + ".x1")
        x2 = b.node("Slice", [x, b.i64("r1", [h2]), b.i64("r2", [self.hd]), b.i64("r3", [3])], base=base + ".x2")
        lo = b.node("Sub", [b.node("Mul", [x1, cos]), b.node("Mul", [x2, sin])], base=base + ".lo")
        hi = b.node("Add", [b.node("Mul", [x2, cos]), b.node("Mul", [x1, sin])], base=base + ".hi")
        return b.node("Concat", [lo, hi], base=base, axis=3)

    def repeat_kv(self, x, base):
        a, b = self.a, self.b
        g = a.heads // a.kv_heads
        if g == 1:
            return x
        u = b.node("Unsqueeze", [x, b.i64("ax2", [2])], base=base + ".unsq")
        s01 = b.node("Shape", [x], base=base + ".s01", start=0, end=2)
        s23 = b.node("Shape", [x], base=base + ".s23", start=2, end=4)
        shp = b.node("Concat", [s01, b.i64("rep", [g]), s23], base=base + ".shape", axis=0)
        e = b.node("Expand", [u, shp], base=base + ".expand")
        return b.node("Reshape", [e, b.i64("shape_rep", [0, a.heads, -1, self.hd])], base=base)

    # --- the graph ---------------------------------------------------------------------------------------------
    def build(self):
        a, b = self.a, self.b
        inputs = [tensor("input_ids", I64, ["batch_size", "sequence_length"]),
                  tensor("attention_mask", I64, ["batch_size", "total_sequence_length"])]
        outputs = [tensor("logits", F32, ["batch_size", "sequence_length", a.vocab])]
        for l in range(a.layers):
            for kv in ("key", "value"):
                inputs.append(tensor(f"past_key_values.{l}.{kv}", F32,
                                     ["batch_size", a.kv_heads, "past_sequence_length", self.hd]))
                outputs.append(tensor(f"present.{l}.{kv}", F32,
                                      ["batch_size", a.kv_heads, "total_sequence_length", self.hd]))
        cos_t, sin_t = rope_tables(a.max_pos, self.hd)
        x = b.node("Gather", [b.const("model.embed_tokens.weight", b.normal((a.vocab, a.hidden), 1.0)),
                              "input_ids"], base="embed")
        if a.form == "plain":
            x = self.plain_layers(x, cos_t, sin_t)
            h = self.rmsnorm(x, "model.norm")
        else:
            x, h = self.genai_layers(x, cos_t, sin_t)
        lm = b.const("lm_head.weight", b.normal((a.hidden, a.vocab), 1.0 / np.sqrt(a.hidden)))
        b.node("MatMul", [h, lm], base="lm_head", outputs=["logits"])
        return b.model(f"llm_{a.form}{'_moe' if a.moe else ''}", inputs, outputs, opset=17)

    def plain_layers(self, x, cos_t, sin_t):
        a, b = self.a, self.b
        # positions P .. P+S-1, where P is the past length; cos/sin rows for them; the additive mask [B,1,S,T]
        past = b.node("Squeeze", [b.node("Shape", ["past_key_values.0.key"], base="past_len1", start=2, end=3)],
                      base="past_len")
        seq = b.node("Squeeze", [b.node("Shape", ["input_ids"], base="seq_len1", start=1, end=2)], base="seq_len")
        total = b.node("Squeeze", [b.node("Shape", ["attention_mask"], base="total_len1", start=1, end=2)],
                       base="total_len")
        one = b.i64("one", 1)
        pos = b.node("Range", [past, b.node("Add", [past, seq], base="pos_end"), one], base="positions")
        cos = b.node("Gather", [b.const("cos_cached", cos_t), pos], base="cos")
        sin = b.node("Gather", [b.const("sin_cached", sin_t), pos], base="sin")
        cols = b.node("Range", [b.i64("zero", 0), total, one], base="key_positions")
        rows = b.node("Unsqueeze", [pos, b.i64("ax1", [1])], base="query_positions")
        causal = b.node("LessOrEqual", [cols, rows], base="causal")
        pad = b.node("Unsqueeze", [b.node("Cast", ["attention_mask"], base="mask_bool", to=BOOL),
                                   b.i64("ax12", [1, 2])], base="pad")
        allowed = b.node("And", [causal, pad], base="allowed")
        bias = b.node("Where", [allowed, b.f32("zero_f", 0.0), b.f32("neg", -1e9)], base="attn_bias")
        scale = b.f32("scale", 1.0 / np.sqrt(self.hd))
        for l in range(a.layers):
            p = f"model.layers.{l}"
            h = self.rmsnorm(x, p + ".input_layernorm")
            q = self.rope(self.heads(self.linear(h, p + ".q_proj", a.hidden, a.hidden), a.heads, p + ".q"),
                          cos, sin, p + ".q_rot")
            kvd = a.kv_heads * self.hd
            k = self.rope(self.heads(self.linear(h, p + ".k_proj", a.hidden, kvd), a.kv_heads, p + ".k"),
                          cos, sin, p + ".k_rot")
            v = self.heads(self.linear(h, p + ".v_proj", a.hidden, kvd), a.kv_heads, p + ".v")
            pk = b.node("Concat", [f"past_key_values.{l}.key", k], axis=2, outputs=[f"present.{l}.key"])
            pv = b.node("Concat", [f"past_key_values.{l}.value", v], axis=2, outputs=[f"present.{l}.value"])
            kk, vv = self.repeat_kv(pk, p + ".k_rep"), self.repeat_kv(pv, p + ".v_rep")
            kt = b.node("Transpose", [kk], base=p + ".kt", perm=[0, 1, 3, 2])
            s = b.node("Add", [b.node("Mul", [b.node("MatMul", [q, kt], base=p + ".qk"), scale]), bias],
                       base=p + ".scores")
            pr = b.node("Softmax", [s], base=p + ".probs", axis=-1)
            o = b.node("Transpose", [b.node("MatMul", [pr, vv], base=p + ".pv")], base=p + ".ot", perm=[0, 2, 1, 3])
            o = b.node("Reshape", [o, b.i64("shape_merge", [0, 0, a.hidden])], base=p + ".merge")
            x = b.node("Add", [x, self.linear(o, p + ".o_proj", a.hidden, a.hidden)], base=p + ".attn_res")
            h = self.rmsnorm(x, p + ".post_attention_layernorm")
            x = b.node("Add", [x, self.mlp(h, p)], base=p + ".mlp_res")
        return x

    def genai_layers(self, x, cos_t, sin_t):
        a, b = self.a, self.b
        red = b.node("ReduceSum", ["attention_mask", b.i64("ax1", [1])], base="mask_sum", keepdims=0)
        seqlens = b.node("Cast", [b.node("Sub", [red, b.i64("one", 1)], base="mask_sum_m1")], base="seqlens_k",
                         to=I32)
        tsl = b.node("Cast", [b.node("Shape", ["attention_mask"], base="total_len1", start=1, end=2)],
                     base="total_seq_len", to=I32)
        cos, sin = b.const("cos_cache", cos_t), b.const("sin_cache", sin_t)
        h = b.node("SimplifiedLayerNormalization", [x, self.gamma("model.layers.0.input_layernorm.weight")],
                   base="model.layers.0.input_layernorm", axis=-1, epsilon=1e-5)
        resid = x
        for l in range(a.layers):
            p = f"model.layers.{l}"
            kvd = a.kv_heads * self.hd
            q = self.linear(h, p + ".q_proj", a.hidden, a.hidden)
            k = self.linear(h, p + ".k_proj", a.hidden, kvd)
            v = self.linear(h, p + ".v_proj", a.hidden, kvd)
            attn, _, _ = b.node("GroupQueryAttention",
                          [q, k, v, f"past_key_values.{l}.key", f"past_key_values.{l}.value", seqlens, tsl, cos, sin],
                          base=p + ".attn", domain=MS,
                          outputs=[p + ".attn_out", f"present.{l}.key", f"present.{l}.value"],
                          num_heads=a.heads, kv_num_heads=a.kv_heads, do_rotary=1, rotary_interleaved=0,
                          local_window_size=-1, scale=float(1.0 / np.sqrt(self.hd)))
            o = self.linear(attn, p + ".o_proj", a.hidden, a.hidden)
            h, _, _, resid = b.node("SkipSimplifiedLayerNormalization",
                                    [o, resid, self.gamma(p + ".post_attention_layernorm.weight")],
                                    base=p + ".post_attention_layernorm", domain=MS, n_out=4, epsilon=1e-5)
            m = self.mlp(h, p)
            nxt = f"model.layers.{l + 1}.input_layernorm" if l + 1 < a.layers else "model.norm"
            h, _, _, resid = b.node("SkipSimplifiedLayerNormalization", [m, resid, self.gamma(nxt + ".weight")],
                                    base=nxt, domain=MS, n_out=4, epsilon=1e-5)
        return resid, h

    def mlp(self, h, p):
        a, b = self.a, self.b
        if a.moe:
            return self.moe(h, p)
        gate = self.linear(h, p + ".gate_proj", a.hidden, a.inter)
        up = self.linear(h, p + ".up_proj", a.hidden, a.inter)
        act = b.node("Mul", [b.node("Mul", [gate, b.node("Sigmoid", [gate], base=p + ".sig")], base=p + ".silu"), up],
                     base=p + ".act")
        return self.linear(act, p + ".down_proj", a.inter, a.hidden)

    def moe(self, h, p):
        a, b = self.a, self.b
        router = b.node("MatMul", [h, b.const(p + ".router.weight", b.normal((a.hidden, a.experts), 0.5))],
                        base=p + ".router")
        router2 = b.node("Reshape", [router, b.i64("shape_router", [-1, a.experts])], base=p + ".router2d")
        act = getattr(a, "moe_act", "silu")
        f = 2 if act == "swiglu" else 1  # SwiGLU: gate and linear rows interleaved in fc1 (swiglu_fusion 1)
        fc1 = b.normal((a.experts, f * a.inter, a.hidden), 1.0 / np.sqrt(a.hidden))
        sw = dict(swiglu_fusion=1) if f == 2 else {}
        fc2 = b.normal((a.experts, a.hidden, a.inter), 1.0 / np.sqrt(a.inter))
        if getattr(a, "qmoe", False):  # each expert's [out, in] rows in MatMulNBits' blocks: the same bytes, flattened per row
            ins = []
            for name, w in (("fc1", fc1), ("fc2", fc2)):
                qs = [pack_nbits(w[e], a.bits, a.block, a.zero_points, b.rng) for e in range(a.experts)]
                ins.append([b.const(f"{p}.experts.{name}.qweight", np.stack([q[0].reshape(q[0].shape[0], -1) for q in qs])),
                            b.const(f"{p}.experts.{name}.scales", np.stack([q[1] for q in qs]))] +
                           ([b.const(f"{p}.experts.{name}.zp", np.stack([q[2] for q in qs]))] if a.zero_points else []))
            (w1, s1, *z1), (w2, s2, *z2) = ins
            zps = ["", "", "", z1[0], z2[0]] if a.zero_points else []
            return b.node("QMoE", [h, router2, w1, s1, "", w2, s2, ""] + zps, base=p + ".moe", domain=MS, k=a.top_k,
                          activation_type=act, normalize_routing_weights=1, expert_weight_bits=a.bits,
                          block_size=a.block, **sw)
        return b.node("MoE", [h, router2, b.const(p + ".experts.fc1", fc1), "", b.const(p + ".experts.fc2", fc2)],
                      base=p + ".moe", domain=MS, k=a.top_k, activation_type=act, normalize_routing_weights=1, **sw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--form", choices=["plain", "genai"], default="plain")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=None)
    ap.add_argument("--inter", type=int, default=1408)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--bits", type=int, default=4, choices=[4, 8])
    ap.add_argument("--block", type=int, default=32)
    ap.add_argument("--accuracy-level", type=int, default=0)
    ap.add_argument("--zero-points", action="store_true")
    ap.add_argument("--moe", action="store_true")
    ap.add_argument("--qmoe", action="store_true")
    ap.add_argument("--moe-act", choices=["silu", "swiglu", "relu", "gelu"], default="silu")
    ap.add_argument("--experts", type=int, default=4)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--max-pos", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if a.qmoe and not a.moe:
        ap.error("--qmoe needs --moe")
    if a.kv_heads is None:
        a.kv_heads = a.heads if a.form == "plain" else max(1, a.heads // 4)
    m = LLM(a).build()
    save(m, a.out, check=False)  # the checker of onnx 1.12 does not know the com.microsoft ops
    n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    print(f"{a.out}: {a.form}{' qmoe' if getattr(a, 'qmoe', False) else ' moe' if a.moe else ''}, {a.layers} layers, hidden {a.hidden}, {n / 1e6:.1f}M values")


if __name__ == "__main__":
    main()
