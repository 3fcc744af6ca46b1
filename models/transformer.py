#!/usr/bin/python3
"""Transformer encoders with open batch and sequence dimensions, random weights from a fixed seed, opset 17.

bert       a BERT encoder as Hugging Face exports it: word + position (Range over the sequence length, Gather) +
           token-type embeddings, LayerNormalization; N post-LN layers of multi-head self-attention (MatMul,
           Reshape, Transpose, Softmax) with the attention mask as an additive bias (1 - mask) * -10000 broadcast
           over heads and queries, GELU (Erf) feed-forward; the tanh pooler on the first token.
             inputs   input_ids, attention_mask, token_type_ids int64 [batch_size, sequence_length]
             outputs  last_hidden_state float32 [batch_size, sequence_length, hidden]
                      pooler_output float32 [batch_size, hidden]
           default: 2 layers, hidden 128, 2 heads, ffn 512, vocabulary 1024; --base: BERT-base (12 layers, 768,
           12 heads, ffn 3072, vocabulary 30522).
bert_fused the same model (same seed: same weights, same I/O) as ONNX Runtime's transformer optimizer leaves it:
           EmbedLayerNormalization, Attention, SkipLayerNormalization and BiasGelu (com.microsoft), checked by
           running it on ONNX Runtime (make_all.py --check compares it with bert).
conformer  a Conformer speech encoder as WeNet exports it: conv subsampling (Unsqueeze, two 3x3 stride-2 Conv2d +
           ReLU, Transpose/Reshape to [batch, frames/4, C * 19], Linear), x sqrt(d) + sinusoidal positions sliced
           to the length, N macaron Conformer blocks (half-step Swish FFN; MHSA with the padding mask as an
           additive bias; convolution module: pointwise Conv1d to 2d, GLU (Split, Sigmoid, Mul), padding zeroed,
           depthwise Conv1d (kernel 15), BatchNormalization, Swish, pointwise Conv1d; half-step FFN;
           LayerNormalization), a final LayerNormalization. The output lengths ((len - 1) // 2 - 1) // 2 and the
           mask (Range < length) are computed in the graph.
             inputs   speech float32 [batch, frames, 80], speech_lengths int64 [batch]
             outputs  encoder_out float32 [batch, frames_out, d], encoder_out_lens int64 [batch]
           default: d 96, 4 heads, 2 blocks, ffn 384; --base: WeNet's conformer (d 256, 4 heads, 12 blocks,
           ffn 2048). Frames are open; the tests feed 200 (2 s; --base: 1000) with a shorter second utterance.

Weights: embeddings N(0, 1) before the LayerNormalization, projections N(0, 1/fan_in), residual branch outputs
scaled 0.5, so attention is neither uniform nor one-hot and activations stay unit-ish through depth.

usage: transformer.py MODEL OUT.onnx [--base] [--layers N] [--hidden N] [--heads N] [--ffn N] [--vocab N] [--seed N]
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from builder import Builder, F32, I64, tensor, save  # noqa: E402
from layers import conv, batchnorm, relu, silu, layernorm, linear, split_heads, merge_heads, attention, \
    gelu_erf  # noqa: E402


def mhsa(b, x, d, heads, bias, p, scale=0.5):
    hd = d // heads
    q = split_heads(b, linear(b, x, d, d, p + ".query"), heads, hd, p + ".q")
    k = split_heads(b, linear(b, x, d, d, p + ".key"), heads, hd, p + ".k")
    v = split_heads(b, linear(b, x, d, d, p + ".value"), heads, hd, p + ".v")
    o = merge_heads(b, attention(b, q, k, v, hd, p, bias=bias), d, p + ".merge")
    return linear(b, o, d, d, p + ".output.dense", scale=scale)


def bert(a):
    b = Builder(a.seed)
    d, L, H, F, V = a.hidden or 128, a.layers or 2, a.heads or 2, a.ffn or 512, a.vocab or 1024
    if a.base:
        d, L, H, F, V = 768, 12, 12, 3072, 30522
    seq = b.node("Shape", ["input_ids"], base="seq_len", start=1, end=2)
    pos = b.node("Range", [b.i64("zero", 0), b.node("Squeeze", [seq], base="seq_len0"), b.i64("one", 1)],
                 base="position_ids")
    e = b.node("Add", [b.node("Gather", [b.const("embeddings.word_embeddings.weight", b.normal((V, d), 1.0)),
                                          "input_ids"], base="embeddings.word"),
                       b.node("Gather", [b.const("embeddings.position_embeddings.weight", b.normal((512, d), 0.5)),
                                         pos], base="embeddings.position")], base="embeddings.add1")
    e = b.node("Add", [e, b.node("Gather", [b.const("embeddings.token_type_embeddings.weight", b.normal((2, d), 0.5)),
                                             "token_type_ids"], base="embeddings.token_type")], base="embeddings.add2")
    x = layernorm(b, e, d, "embeddings.LayerNorm")
    m = b.node("Cast", ["attention_mask"], base="mask_float", to=F32)
    m = b.node("Mul", [b.node("Sub", [b.f32("one_f", 1.0), m], base="mask_inv"), b.f32("neg", -10000.0)],
               base="mask_bias")
    bias = b.node("Unsqueeze", [m, b.i64("ax12", [1, 2])], base="extended_attention_mask")
    for l in range(L):
        p = f"encoder.layer.{l}"
        x = layernorm(b, b.node("Add", [x, mhsa(b, x, d, H, bias, p + ".attention.self")], base=p + ".attn_res"),
                      d, p + ".attention.output.LayerNorm")
        h = gelu_erf(b, linear(b, x, d, F, p + ".intermediate.dense"), p + ".intermediate.gelu")
        x = layernorm(b, b.node("Add", [x, linear(b, h, F, d, p + ".output.dense", scale=0.5)], base=p + ".ffn_res"),
                      d, p + ".output.LayerNorm")
    b.node("Identity", [x], base="last_hidden_state.identity", outputs=["last_hidden_state"])
    first = b.node("Gather", [x, b.i64("first", 0)], base="pooler.first", axis=1)
    b.node("Tanh", [linear(b, first, d, d, "pooler.dense")], base="pooler.tanh", outputs=["pooler_output"])
    ins = [tensor(n, I64, ["batch_size", "sequence_length"]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    outs = [tensor("last_hidden_state", F32, ["batch_size", "sequence_length", d]),
            tensor("pooler_output", F32, ["batch_size", d])]
    return b.model("bert_like", ins, outs, opset=17), {"vocab": V}


def bert_fused(a):
    """The BERT above as ONNX Runtime's transformer optimizer leaves it (com.microsoft ops), same weights:
    Cast of the ids and mask to int32, EmbedLayerNormalization (embeddings, LayerNorm and the mask index in one
    op), per layer Attention (q/k/v packed in one [hidden, 3 hidden] weight, the mask index), MatMul +
    SkipLayerNormalization (the bias and the residual folded in), MatMul + BiasGelu (exact Erf GELU), MatMul +
    SkipLayerNormalization; the pooler unchanged. Its outputs equal the plain model's up to float rounding."""
    from onnx import numpy_helper
    plain, info = bert(a)
    W = {t.name: numpy_helper.to_array(t) for t in plain.graph.initializer}
    L = sum(1 for k in W if k.endswith(".attention.self.query.weight"))
    H = 12 if a.base else (a.heads or 2)
    b = Builder(a.seed)
    ms = "com.microsoft"

    def w(name):
        return b.const(name, W[name])

    ids = b.node("Cast", ["input_ids"], base="input_ids_int32", to=6)
    seg = b.node("Cast", ["token_type_ids"], base="token_type_ids_int32", to=6)
    mask = b.node("Cast", ["attention_mask"], base="attention_mask_int32", to=6)
    x, mask_index = b.node("EmbedLayerNormalization", [
        ids, seg, w("embeddings.word_embeddings.weight"), w("embeddings.position_embeddings.weight"),
        w("embeddings.token_type_embeddings.weight"), w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"),
        mask],
        base="EmbedLayerNormalization_0", n_out=2, domain=ms, epsilon=1e-5)

    def dense_skip_ln(h, x, dense, ln, mm_base, base):
        """MatMul by dense.weight, then SkipLayerNormalization with the residual x, the LayerNorm ln and the
        dense bias folded in."""
        o = b.node("MatMul", [h, w(dense + ".weight")], base=mm_base)
        return b.node("SkipLayerNormalization", [o, x, w(ln + ".weight"), w(ln + ".bias"), w(dense + ".bias")],
                      base=base, domain=ms, epsilon=1e-5)

    for l in range(L):
        p = f"encoder.layer.{l}"
        q = p + ".attention.self."
        qkv_w = np.concatenate([W[q + n + ".weight"] for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([W[q + n + ".bias"] for n in ("query", "key", "value")])
        att = b.node("Attention", [x, b.const(p + ".attention.qkv.weight", qkv_w),
                                   b.const(p + ".attention.qkv.bias", qkv_b), mask_index],
                     base=p + ".Attention", domain=ms, num_heads=H)
        x = dense_skip_ln(att, x, q + "output.dense", p + ".attention.output.LayerNorm",
                          p + ".attention.output.matmul", p + ".SkipLayerNorm_attention")
        h = b.node("MatMul", [x, w(p + ".intermediate.dense.weight")], base=p + ".intermediate.matmul")
        h = b.node("BiasGelu", [h, w(p + ".intermediate.dense.bias")], base=p + ".BiasGelu", domain=ms)
        x = dense_skip_ln(h, x, p + ".output.dense", p + ".output.LayerNorm", p + ".output.matmul",
                          p + ".SkipLayerNorm_ffn")
    b.node("Identity", [x], base="last_hidden_state.identity", outputs=["last_hidden_state"])
    first = b.node("Gather", [x, b.i64("first", 0)], base="pooler.first", axis=1)
    y = b.node("Add", [b.node("MatMul", [first, w("pooler.dense.weight")], base="pooler.dense.matmul"),
                       w("pooler.dense.bias")], base="pooler.dense")
    b.node("Tanh", [y], base="pooler.tanh", outputs=["pooler_output"])
    return b.model("bert_like_ort_fused", list(plain.graph.input), list(plain.graph.output), opset=17), info


def sinusoid(n, d):
    pos = np.arange(n)[:, None]
    div = np.exp(np.arange(0, d, 2) * -(np.log(10000.0) / d))
    pe = np.zeros((n, d), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos * div), np.cos(pos * div)
    return pe


def conformer(a):
    b = Builder(a.seed)
    d, L, H, F, K = a.hidden or 96, a.layers or 2, a.heads or 4, a.ffn or 384, 15
    if a.base:
        d, L, H, F = 256, 12, 4, 2048
    # conv subsampling (Conv2dSubsampling4)
    x = b.node("Unsqueeze", ["speech", b.i64("ax1", [1])], base="embed.unsqueeze")
    x = relu(b, conv(b, x, 1, d, 3, "embed.conv.0", stride=2, pad=0), "embed.conv.1")
    x = relu(b, conv(b, x, d, d, 3, "embed.conv.2", stride=2, pad=0), "embed.conv.3")
    x = b.node("Transpose", [x], base="embed.transpose", perm=[0, 2, 1, 3])
    x = b.node("Reshape", [x, b.i64("embed.shape", [0, 0, -1])], base="embed.flatten")
    f_out = ((80 - 1) // 2 - 1) // 2
    x = linear(b, x, d * f_out, d, "embed.out.0")
    x = b.node("Mul", [x, b.f32("xscale", np.sqrt(d))], base="embed.pos_enc.xscale")
    t = b.node("Shape", [x], base="frames_out", start=1, end=2)
    pe = b.node("Slice", [b.const("embed.pos_enc.pe", sinusoid(5000, d)), b.i64("zero1", [0]), t, b.i64("ax0", [0])],
                base="embed.pos_enc.slice")
    x = b.node("Add", [x, pe], base="embed.pos_enc.add")
    # lengths and masks
    one, two = b.i64("one", 1), b.i64("two", 2)
    lens = b.node("Div", [b.node("Sub", ["speech_lengths", one], base="lens.sub1"), two], base="lens.div1")
    lens = b.node("Div", [b.node("Sub", [lens, one], base="lens.sub2"), two], base="lens.div2",
                  outputs=["encoder_out_lens"])
    steps = b.node("Range", [b.i64("zero", 0), b.node("Squeeze", [t], base="frames_out0"), one], base="mask.range")
    valid = b.node("Less", [steps, b.node("Unsqueeze", [lens, b.i64("ax1b", [1])], base="mask.lens")],
                   base="mask.valid")  # [batch, frames_out]
    bias = b.node("Where", [b.node("Unsqueeze", [valid, b.i64("ax12", [1, 2])], base="mask.bias4"),
                            b.f32("zero_f", 0.0), b.f32("neg", -10000.0)], base="mask.bias")
    pad = b.node("Unsqueeze", [b.node("Cast", [valid], base="mask.float", to=F32), b.i64("ax1c", [1])],
                 base="mask.pad")  # [batch, 1, frames_out]

    def ffn(x, p):
        h = layernorm(b, x, d, p + ".norm")
        h = linear(b, silu(b, linear(b, h, d, F, p + ".w_1"), p + ".swish"), F, d, p + ".w_2", scale=0.5)
        return b.node("Add", [x, b.node("Mul", [h, b.f32("half", 0.5)], base=p + ".half")], base=p + ".res")

    for l in range(L):
        p = f"encoder.encoders.{l}"
        x = ffn(x, p + ".feed_forward_macaron")
        h = layernorm(b, x, d, p + ".norm_mha")
        x = b.node("Add", [x, mhsa(b, h, d, H, bias, p + ".self_attn")], base=p + ".mha_res")
        h = layernorm(b, x, d, p + ".norm_conv")
        h = b.node("Transpose", [h], base=p + ".conv_module.to_channels", perm=[0, 2, 1])
        h = conv(b, h, d, 2 * d, 1, p + ".conv_module.pointwise_conv1", dims=1, gain=1.0)
        ga, gb = b.node("Split", [h, b.i64(p + ".glu_split", [d, d])], base=p + ".conv_module.glu", n_out=2, axis=1)
        h = b.node("Mul", [ga, b.node("Sigmoid", [gb], base=p + ".conv_module.glu.sig")],
                   base=p + ".conv_module.glu.mul")
        h = b.node("Mul", [h, pad], base=p + ".conv_module.mask_pad")
        h = conv(b, h, d, d, K, p + ".conv_module.depthwise_conv", dims=1, group=d, gain=1.0)
        h = silu(b, batchnorm(b, h, d, p + ".conv_module.norm"), p + ".conv_module.swish")
        h = conv(b, h, d, d, 1, p + ".conv_module.pointwise_conv2", dims=1, gain=0.25)
        h = b.node("Transpose", [h], base=p + ".conv_module.to_time", perm=[0, 2, 1])
        x = b.node("Add", [x, h], base=p + ".conv_res")
        x = ffn(x, p + ".feed_forward")
        x = layernorm(b, x, d, p + ".norm_final")
    layernorm(b, x, d, "encoder.after_norm")
    b.nodes[-1].output[0] = "encoder_out"
    ins = [tensor("speech", F32, ["batch", "frames", 80]), tensor("speech_lengths", I64, ["batch"])]
    outs = [tensor("encoder_out", F32, ["batch", "frames_out", d]), tensor("encoder_out_lens", I64, ["batch"])]
    return b.model("conformer_like", ins, outs, opset=17), {}


MODELS = {"bert": bert, "bert_fused": bert_fused, "conformer": conformer}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=sorted(MODELS))
    ap.add_argument("out")
    ap.add_argument("--base", action="store_true", help="the realistic size (BERT-base, WeNet's conformer)")
    for k in ("layers", "hidden", "heads", "ffn", "vocab"):
        ap.add_argument("--" + k, type=int, default=None)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    m, _ = MODELS[a.model](a)
    save(m, a.out, check=a.model != "bert_fused")  # onnx 1.12's checker does not know the com.microsoft ops
    n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    print(f"{a.out}: {a.model}{' base' if a.base else ''}, {n / 1e6:.2f}M values, {len(m.graph.node)} nodes")


if __name__ == "__main__":
    main()
