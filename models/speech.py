#!/usr/bin/python3
"""A Whisper-like speech recogniser exported the way Hugging Face optimum exports Whisper for ONNX Runtime, random
weights from a fixed seed: an encoder model and a merged decoder (one model with an If on use_cache_branch).

encoder_model.onnx (opset 17)
  log-mel features -> Conv1d(80 -> d, k 3, pad 1) + GELU -> Conv1d(d -> d, k 3, stride 2, pad 1) + GELU
  -> transpose to [batch, frames/2, d] -> + sinusoidal positions (a [max_source_positions, d] table sliced to the
  length) -> N pre-LN encoder layers (LayerNormalization; MatMul attention with q scaled by head_dim^-0.5, k
  without bias; GELU MLP with GELU as 0.5 x (1 + Erf(x / sqrt 2))) -> LayerNormalization.
    inputs   input_features float32 [batch_size, 80, encoder_frames]
    outputs  last_hidden_state float32 [batch_size, encoder_sequence_length, d]    (encoder_frames / 2)

decoder_model_merged.onnx (opset 17)
    inputs   input_ids int64 [batch_size, decoder_sequence_length]
             encoder_hidden_states float32 [batch_size, encoder_sequence_length, d]
             past_key_values.L.decoder.key / .value float32 [batch_size, heads, past_decoder_sequence_length, hd]
             past_key_values.L.encoder.key / .value float32 [batch_size, heads, encoder_sequence_length_out, hd]
             use_cache_branch bool [1]
    outputs  logits float32 [batch_size, decoder_sequence_length, vocab]
             present.L.decoder.key / .value [batch_size, heads, past + decoder_sequence_length, hd]
             present.L.encoder.key / .value [batch_size, heads, encoder_sequence_length_out, hd]
  One If on use_cache_branch; both branches are subgraphs without inputs that read the main graph's inputs and
  initializers from the outer scope (one copy of the weights), as optimum's merged decoders are built:
    else (no cache, the first step): token + learned position embeddings from position 0, causal self-attention
      over the tokens, cross-attention K/V computed from encoder_hidden_states (the past inputs are fed empty and
      not read); present.L.decoder.* are the tokens' K/V, present.L.encoder.* the cross K/V.
    then (with cache): positions from the past length on, self-attention over past + new K/V (present.L.decoder.*
      = Concat(past, new), growing by one per step) with a causal mask offset by the past length, cross-attention
      on past_key_values.L.encoder.* which come back unchanged as present.L.encoder.*.
  Decoder layers are pre-LN: self-attention, cross-attention, GELU MLP; then LayerNormalization and the logits
  projection (proj_out, a MatMul by a [d, vocab] weight).

--quantize dynamic also writes encoder_model_quantized.onnx and decoder_model_merged_quantized.onnx: every MatMul
by a constant weight rewritten as ONNX Runtime's dynamic quantizer does (DynamicQuantizeLinear on the activation,
int8 weight with scale and zero point, MatMulInteger, Cast to float, Mul by the product of the scales), inside
the If branches too (quant.py). config.json holds the geometry, the default frame count and the decoder prompt
that ort_speech.js uses.

Weights: projections N(0, 1/fan_in), residual branch outputs scaled 0.5, token embeddings N(0, 1), so logits have
a standard deviation of several units and greedy tokens are decided with clear margins (ort_speech.js prints the
smallest top-1 / top-2 gap it saw).

usage: speech.py OUTDIR [--tiny] [--quantize dynamic] [--d-model 128] [--heads 4] [--encoder-layers 2]
                 [--decoder-layers 2] [--ffn 512] [--vocab 1024] [--frames 200] [--seed 8]
  default  a small model for tests (d 128, 2 + 2 layers, vocab 1024, 200 frames: 2 s of audio)
  --tiny   whisper-tiny's geometry (d 384, 6 heads, 4 + 4 layers, ffn 1536, vocab 51865, 3000 frames: 30 s)
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder, F32, I64, BOOL, tensor, save  # noqa: E402
from layers import conv, gelu_erf, split_heads, merge_heads, attention  # noqa: E402
from quant import quantize_dynamic  # noqa: E402

N_MELS = 80
MAX_SOURCE = 1500
MAX_TARGET = 448
LOGIT_SCALE = 4.0  # logits of standard deviation ~4, as trained decoders have


def sinusoids(length, channels):
    """Whisper's encoder position table: [sin | cos] with log-spaced timescales up to 10000."""
    inc = np.log(10000) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


class Speech:
    def __init__(self, a):
        self.a = a
        self.hd = a.d_model // a.heads
        assert a.d_model % a.heads == 0

    # --- weights as names of initializers, created once --------------------------------------------------------
    def ln_w(self, b, base):
        d = self.a.d_model
        return (b.const(base + ".weight", (1.0 + 0.1 * b.rng.standard_normal(d)).astype(np.float32)),
                b.const(base + ".bias", (0.05 * b.rng.standard_normal(d)).astype(np.float32)))

    def lin_w(self, b, base, k, n, bias=True, scale=1.0):
        w = b.const(base + ".weight", b.normal((k, n), scale / np.sqrt(k)))
        return (w, b.const(base + ".bias", b.normal((n,), 0.02)) if bias else None)

    @staticmethod
    def ln(b, x, w, base):
        return b.node("LayerNormalization", [x, w[0], w[1]], base=base, axis=-1, epsilon=1e-5)

    @staticmethod
    def lin(b, x, w, base):
        y = b.node("MatMul", [x, w[0]], base=base + ".matmul")
        return y if w[1] is None else b.node("Add", [y, w[1]], base=base)

    def attn_w(self, b, base):
        d = self.a.d_model
        return {"q": self.lin_w(b, base + ".q_proj", d, d), "k": self.lin_w(b, base + ".k_proj", d, d, bias=False),
                "v": self.lin_w(b, base + ".v_proj", d, d), "o": self.lin_w(b, base + ".out_proj", d, d, scale=0.5)}

    def q_heads(self, b, h, w, base):
        q = self.lin(b, h, w, base)
        q = b.node("Mul", [q, b.f32("q_scaling", self.hd ** -0.5)], base=base + ".scaled")
        return split_heads(b, q, self.a.heads, self.hd, base + ".heads")

    def kv_heads(self, b, h, w, base):
        return split_heads(b, self.lin(b, h, w, base), self.a.heads, self.hd, base + ".heads")

    def mlp(self, b, x, w, base):
        h = self.ln(b, x, w["ln"], base + ".final_layer_norm")
        h = gelu_erf(b, self.lin(b, h, w["fc1"], base + ".fc1"), base + ".gelu")
        return b.node("Add", [x, self.lin(b, h, w["fc2"], base + ".fc2")], base=base + ".mlp_res")

    def mlp_w(self, b, base):
        d, f = self.a.d_model, self.a.ffn
        return {"ln": self.ln_w(b, base + ".final_layer_norm"), "fc1": self.lin_w(b, base + ".fc1", d, f),
                "fc2": self.lin_w(b, base + ".fc2", f, d, scale=0.5)}

    # --- encoder ------------------------------------------------------------------------------------------------
    def encoder(self):
        a, d = self.a, self.a.d_model
        b = Builder(a.seed)
        x = conv(b, "input_features", N_MELS, d, 3, "model.encoder.conv1", dims=1, gain=1.0)
        x = gelu_erf(b, x, "model.encoder.conv1.gelu")
        x = conv(b, x, d, d, 3, "model.encoder.conv2", stride=2, dims=1, gain=2.0)
        x = gelu_erf(b, x, "model.encoder.conv2.gelu")
        x = b.node("Transpose", [x], base="model.encoder.transpose", perm=[0, 2, 1])
        length = b.node("Shape", [x], base="model.encoder.length", start=1, end=2)
        pos = b.node("Slice", [b.const("model.encoder.embed_positions.weight", sinusoids(MAX_SOURCE, d)),
                               b.i64("zero1", [0]), length, b.i64("axis0", [0])], base="model.encoder.positions")
        x = b.node("Add", [x, pos], base="model.encoder.embed")
        for l in range(a.encoder_layers):
            p = f"model.encoder.layers.{l}"
            aw, lnw = self.attn_w(b, p + ".self_attn"), self.ln_w(b, p + ".self_attn_layer_norm")
            h = self.ln(b, x, lnw, p + ".self_attn_layer_norm")
            q = self.q_heads(b, h, aw["q"], p + ".self_attn.q_proj")
            k = self.kv_heads(b, h, aw["k"], p + ".self_attn.k_proj")
            v = self.kv_heads(b, h, aw["v"], p + ".self_attn.v_proj")
            o = merge_heads(b, attention(b, q, k, v, self.hd, p + ".self_attn", scale_q=False), d, p + ".merge")
            x = b.node("Add", [x, self.lin(b, o, aw["o"], p + ".self_attn.out_proj")], base=p + ".attn_res")
            x = self.mlp(b, x, self.mlp_w(b, p), p)
        self.ln(b, x, self.ln_w(b, "model.encoder.layer_norm"), "model.encoder.layer_norm")
        b.nodes[-1].output[0] = "last_hidden_state"
        m = b.model("whisper_like_encoder", [tensor("input_features", F32, ["batch_size", N_MELS, "encoder_frames"])],
                    [tensor("last_hidden_state", F32, ["batch_size", "encoder_sequence_length", d])], opset=17)
        return m

    # --- merged decoder -----------------------------------------------------------------------------------------
    def decoder(self):
        a, d, H, hd = self.a, self.a.d_model, self.a.heads, self.hd
        b = Builder(a.seed + 1)
        W = {"embed": b.const("model.decoder.embed_tokens.weight", b.normal((a.vocab, d), 1.0)),
             "pos": b.const("model.decoder.embed_positions.weight", b.normal((MAX_TARGET, d), 0.5)),
             "layers": [], "ln": self.ln_w(b, "model.decoder.layer_norm"),
             "proj": b.const("proj_out.weight", b.normal((d, a.vocab), LOGIT_SCALE / np.sqrt(d)))}
        for l in range(a.decoder_layers):
            p = f"model.decoder.layers.{l}"
            W["layers"].append({"sa": self.attn_w(b, p + ".self_attn"),
                                "sa_ln": self.ln_w(b, p + ".self_attn_layer_norm"),
                                "ca": self.attn_w(b, p + ".encoder_attn"),
                                "ca_ln": self.ln_w(b, p + ".encoder_attn_layer_norm"), "mlp": self.mlp_w(b, p)})
        inputs = [tensor("input_ids", I64, ["batch_size", "decoder_sequence_length"]),
                  tensor("encoder_hidden_states", F32, ["batch_size", "encoder_sequence_length", d])]
        outputs = [tensor("logits", F32, ["batch_size", "decoder_sequence_length", a.vocab])]
        names = ["logits"]
        for l in range(a.decoder_layers):
            for kind, seq in (("decoder", "past_decoder_sequence_length"), ("encoder", "encoder_sequence_length_out")):
                for kv in ("key", "value"):
                    inputs.append(tensor(f"past_key_values.{l}.{kind}.{kv}", F32, ["batch_size", H, seq, hd]))
                    pseq = "past_decoder_sequence_length + 1" if kind == "decoder" else seq
                    outputs.append(tensor(f"present.{l}.{kind}.{kv}", F32, ["batch_size", H, pseq, hd]))
                    names.append(f"present.{l}.{kind}.{kv}")
        inputs.append(tensor("use_cache_branch", BOOL, [1]))
        branches = {}
        for cache in (True, False):
            sb = b.sub()
            outs = self.decoder_branch(sb, W, cache)
            tag = "with_past" if cache else "no_past"
            infos = []
            for o, n in zip(outs, names):
                infos.append(tensor(f"{tag}.{n}", F32, None))
                sb.node("Identity", [o], base=f"{tag}.{n}.identity", outputs=[f"{tag}.{n}"])
            branches[cache] = sb.graph(f"decoder_{tag}", infos)
        b.node("If", ["use_cache_branch"], base="optimum::if", outputs=names,
               then_branch=branches[True], else_branch=branches[False])
        return b.model("whisper_like_decoder_merged", inputs, outputs, opset=17)

    def decoder_branch(self, b, W, cache):
        """The decoder's nodes in builder b; returns [logits, present.L.decoder.key, .value, .encoder.key, ...]."""
        d = self.a.d_model
        tag = "with_past" if cache else "no_past"
        one = b.i64(tag + ".one", 1)
        seq = b.node("Squeeze", [b.node("Shape", ["input_ids"], base=tag + ".seq1", start=1, end=2)], base=tag + ".seq")
        if cache:
            past = b.node("Squeeze", [b.node("Shape", ["past_key_values.0.decoder.key"], base=tag + ".past1",
                                             start=2, end=3)], base=tag + ".past")
        else:
            past = b.i64(tag + ".past", 0)
        total = b.node("Add", [past, seq], base=tag + ".total")
        pos = b.node("Range", [past, total, one], base=tag + ".positions")
        x = b.node("Add", [b.node("Gather", [W["embed"], "input_ids"], base=tag + ".embed_tokens"),
                           b.node("Gather", [W["pos"], pos], base=tag + ".embed_positions")], base=tag + ".embed")
        cols = b.node("Range", [b.i64(tag + ".zero", 0), total, one], base=tag + ".key_positions")
        rows = b.node("Unsqueeze", [pos, b.i64(tag + ".ax1", [1])], base=tag + ".query_positions")
        causal = b.node("LessOrEqual", [cols, rows], base=tag + ".causal")
        bias = b.node("Where", [causal, b.f32(tag + ".zero_f", 0.0), b.f32(tag + ".neg", -1e9)], base=tag + ".mask")
        outs = []
        for l, w in enumerate(W["layers"]):
            p = f"{tag}.model.decoder.layers.{l}"
            h = self.ln(b, x, w["sa_ln"], p + ".self_attn_layer_norm")
            q = self.q_heads(b, h, w["sa"]["q"], p + ".self_attn.q_proj")
            k = self.kv_heads(b, h, w["sa"]["k"], p + ".self_attn.k_proj")
            v = self.kv_heads(b, h, w["sa"]["v"], p + ".self_attn.v_proj")
            if cache:
                k = b.node("Concat", [f"past_key_values.{l}.decoder.key", k], base=p + ".present_key", axis=2)
                v = b.node("Concat", [f"past_key_values.{l}.decoder.value", v], base=p + ".present_value", axis=2)
            o = merge_heads(b, attention(b, q, k, v, self.hd, p + ".self_attn", bias=bias, scale_q=False), d,
                            p + ".self_attn.merge")
            x = b.node("Add", [x, self.lin(b, o, w["sa"]["o"], p + ".self_attn.out_proj")], base=p + ".sa_res")
            h = self.ln(b, x, w["ca_ln"], p + ".encoder_attn_layer_norm")
            q = self.q_heads(b, h, w["ca"]["q"], p + ".encoder_attn.q_proj")
            if cache:
                ck, cv = f"past_key_values.{l}.encoder.key", f"past_key_values.{l}.encoder.value"
            else:
                ck = self.kv_heads(b, "encoder_hidden_states", w["ca"]["k"], p + ".encoder_attn.k_proj")
                cv = self.kv_heads(b, "encoder_hidden_states", w["ca"]["v"], p + ".encoder_attn.v_proj")
            o = merge_heads(b, attention(b, q, ck, cv, self.hd, p + ".encoder_attn", scale_q=False), d,
                            p + ".encoder_attn.merge")
            x = b.node("Add", [x, self.lin(b, o, w["ca"]["o"], p + ".encoder_attn.out_proj")], base=p + ".ca_res")
            x = self.mlp(b, x, w["mlp"], p)
            outs.append((k, v, ck, cv))
        h = self.ln(b, x, W["ln"], tag + ".model.decoder.layer_norm")
        logits = b.node("MatMul", [h, W["proj"]], base=tag + ".proj_out")
        return [logits] + [t for kv in outs for t in kv]

    def config(self):
        a = self.a
        # Whisper's <|startoftranscript|> <|en|> <|transcribe|> <|notimestamps|>, or the last four ids
        prompt = [50258, 50259, 50359, 50363] if a.vocab == 51865 else [a.vocab - 4 + i for i in range(4)]
        return {"model_type": "whisper-like (safeinfer models/speech.py)", "d_model": a.d_model,
                "encoder_attention_heads": a.heads, "decoder_attention_heads": a.heads,
                "encoder_layers": a.encoder_layers, "decoder_layers": a.decoder_layers, "encoder_ffn_dim": a.ffn,
                "decoder_ffn_dim": a.ffn, "vocab_size": a.vocab, "num_mel_bins": N_MELS,
                "max_source_positions": MAX_SOURCE, "max_target_positions": MAX_TARGET, "frames": a.frames,
                "decoder_start_ids": prompt, "seed": a.seed}


def params(m):
    return sum(int(np.prod(t.dims)) for t in m.graph.initializer)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--tiny", action="store_true", help="whisper-tiny's geometry")
    ap.add_argument("--quantize", choices=["dynamic"], default=None)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--encoder-layers", type=int, default=2)
    ap.add_argument("--decoder-layers", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--seed", type=int, default=8)
    a = ap.parse_args()
    if a.tiny:
        a.d_model, a.heads, a.encoder_layers, a.decoder_layers = 384, 6, 4, 4
        a.ffn, a.vocab, a.frames = 1536, 51865, 3000
    assert a.frames // 2 <= MAX_SOURCE
    os.makedirs(a.outdir, exist_ok=True)
    s = Speech(a)
    enc, dec = s.encoder(), s.decoder()
    save(enc, os.path.join(a.outdir, "encoder_model.onnx"))
    save(dec, os.path.join(a.outdir, "decoder_model_merged.onnx"))
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(s.config(), f, indent=1)
    print(f"{a.outdir}: whisper-like, d {a.d_model}, {a.encoder_layers}+{a.decoder_layers} layers, vocab {a.vocab}: "
          f"encoder {params(enc) / 1e6:.2f}M, decoder {params(dec) / 1e6:.2f}M values")
    if a.quantize == "dynamic":
        for name, m in (("encoder_model", enc), ("decoder_model_merged", dec)):
            q, counts = quantize_dynamic(onnx.ModelProto.FromString(m.SerializeToString()), ops=("MatMul",))
            save(q, os.path.join(a.outdir, name + "_quantized.onnx"))
            print(f"  {name}_quantized.onnx: {counts['MatMul']} MatMuls -> MatMulInteger")


if __name__ == "__main__":
    main()
