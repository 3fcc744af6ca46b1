#!/usr/bin/env node
// Greedy transcription with ONNX Runtime (onnxruntime-node, CPU) on a speech.py export: the encoder on a fixed
// log-mel input, then the greedy loop over the merged decoder (first step use_cache_branch = false with empty
// past tensors, later steps true with the present.* outputs fed back as past_key_values.*): the reference the
// safeinfer runs are compared with.
//
// usage: node models/ort_speech.js DIR STEPS [THREADS] [--quantized] [--frames N] [--features FILE.npy]
//                                  [--dump-features FILE.npy] [--check]
//   DIR          holds encoder_model.onnx, decoder_model_merged.onnx (…_quantized.onnx with --quantized) and
//                config.json (geometry, default frame count, decoder prompt)
//   --features   a float32 .npy [1, 80, frames] instead of the built-in input; --dump-features writes the
//                built-in one. Built-in: f[m][t] = 0.6 sin(0.05 t (1 + m % 7) + 0.3 m) + 0.2 cos(0.011 t m) - 0.2
//   --check      then runs the decoder once more without the cache (use_cache_branch = false) on the prompt and
//                all generated tokens and compares its logits at every position with the logits of the cached
//                steps: the two branches must agree (max |diff| <= 1e-3 * (1 + max |logit|); 3e-2 for the
//                quantized model, whose activation scales depend on the rows quantized together); exit 1 if not.
// Prints one JSON line: {"tokens", "prompt", "frames", "compile_ms", "encoder_ms", "first_step_ms",
// "decode_ms", "decode_tok_s", "min_margin", "peak_rss_mib"[, "check_tolerance", "check_max_abs_diff", "check"]}. min_margin is the
// smallest gap between the best and the second-best logit over the greedy steps. Exit 77 without onnxruntime-node.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('./ort_load.js').loadOrt(require);
const { readNpy, writeNpy } = require('./npy.js');

function features(mels, frames) {
  const f = new Float32Array(mels * frames);
  for (let m = 0; m < mels; m++)
    for (let t = 0; t < frames; t++)
      f[m * frames + t] = 0.6 * Math.sin(0.05 * t * (1 + (m % 7)) + 0.3 * m) + 0.2 * Math.cos(0.011 * t * m) - 0.2;
  return new ort.Tensor('float32', f, [1, mels, frames]);
}

// argmax and top-1 / top-2 gap of row r of logits [1, S, V]
function best(logits, r) {
  const v = logits.dims[2], d = logits.data, off = r * v;
  let i1 = 0, i2 = -1;
  for (let i = 1; i < v; i++) {
    if (d[off + i] > d[off + i1]) { i2 = i1; i1 = i; } else if (i2 < 0 || d[off + i] > d[off + i2]) i2 = i;
  }
  return [i1, d[off + i1] - d[off + i2]];
}

async function main() {
  const args = process.argv.slice(2);
  const opt = name => { const i = args.indexOf(name); if (i < 0) return null; const v = args[i + 1]; args.splice(i, 2); return v; };
  const flag = name => { const i = args.indexOf(name); if (i < 0) return false; args.splice(i, 1); return true; };
  const quantized = flag('--quantized'), check = flag('--check');
  const framesArg = opt('--frames'), featFile = opt('--features'), dumpFile = opt('--dump-features');
  const [dir, st, th] = args;
  if (!dir || !st) { console.error('usage: ort_speech.js DIR STEPS [THREADS] [--quantized] [--frames N] [--features F.npy] [--dump-features F.npy] [--check]'); process.exit(2); }
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const N = parseInt(st, 10), threads = parseInt(th || '1', 10);
  const suffix = quantized ? '_quantized.onnx' : '.onnx';
  const so = { intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
  let t = process.hrtime.bigint();
  const enc = await ort.InferenceSession.create(path.join(dir, 'encoder_model' + suffix), so);
  const dec = await ort.InferenceSession.create(path.join(dir, 'decoder_model_merged' + suffix), so);
  const compileMs = Number(process.hrtime.bigint() - t) / 1e6;
  const feats = featFile ? readNpy(ort, featFile) : features(cfg.num_mel_bins, framesArg ? parseInt(framesArg, 10) : cfg.frames);
  if (dumpFile) writeNpy(dumpFile, feats);
  const H = cfg.decoder_attention_heads, hd = cfg.d_model / H, L = cfg.decoder_layers;
  const pasts = dec.inputNames.filter(n => n.startsWith('past_key_values.'));

  t = process.hrtime.bigint();
  const eo = await enc.run({ input_features: feats });
  const encoderMs = Number(process.hrtime.bigint() - t) / 1e6;
  const hidden = eo.last_hidden_state;

  const prompt = cfg.decoder_start_ids;
  const empty = new ort.Tensor('float32', new Float32Array(0), [1, H, 0, hd]);
  const ids = (a) => new ort.Tensor('int64', BigInt64Array.from(a.map(BigInt)), [1, a.length]);
  const flagT = (v) => new ort.Tensor('bool', [v], [1]);
  const feeds = { input_ids: ids(prompt), encoder_hidden_states: hidden, use_cache_branch: flagT(false) };
  for (const n of pasts) feeds[n] = empty;
  t = process.hrtime.bigint();
  let out = await dec.run(feeds);
  const firstMs = Number(process.hrtime.bigint() - t) / 1e6;
  const tokens = [], rows = [];
  let minMargin = Infinity;
  const keep = (lg, r) => rows.push(Float32Array.from(lg.data.subarray(r * lg.dims[2], (r + 1) * lg.dims[2])));
  if (check) for (let r = 0; r < prompt.length; r++) keep(out.logits, r);
  t = process.hrtime.bigint();
  for (let i = 0; i < N; i++) {
    const [next, margin] = best(out.logits, out.logits.dims[1] - 1);
    tokens.push(next);
    minMargin = Math.min(minMargin, margin);
    if (i === N - 1) break;
    const f = { input_ids: ids([next]), encoder_hidden_states: hidden, use_cache_branch: flagT(true) };
    for (const n of pasts) f[n] = out[n.replace('past_key_values.', 'present.')];
    out = await dec.run(f);
    if (check) keep(out.logits, 0);
  }
  const decodeMs = Number(process.hrtime.bigint() - t) / 1e6;
  const res = { tokens, prompt, frames: feats.dims[2], compile_ms: +compileMs.toFixed(2), encoder_ms: +encoderMs.toFixed(2),
    first_step_ms: +firstMs.toFixed(2), decode_ms: +decodeMs.toFixed(2),
    decode_tok_s: N > 1 ? +((N - 1) / decodeMs * 1000).toFixed(2) : 0, min_margin: +minMargin.toFixed(4),
    peak_rss_mib: +(process.resourceUsage().maxRSS / 1024).toFixed(1) };
  let ok = true;
  if (check) {
    const all = prompt.concat(tokens.slice(0, N - 1));
    const f = { input_ids: ids(all), encoder_hidden_states: hidden, use_cache_branch: flagT(false) };
    for (const n of pasts) f[n] = empty;
    const full = await dec.run(f);
    let diff = 0, mag = 0;
    const V = full.logits.dims[2];
    for (let r = 0; r < all.length; r++)
      for (let i = 0; i < V; i++) {
        const a = full.logits.data[r * V + i], b = rows[r][i];
        diff = Math.max(diff, Math.abs(a - b)); mag = Math.max(mag, Math.abs(a));
      }
    // the cross-attention K/V of the cache branch are the ones the first step computed
    for (let l = 0; l < L; l++)
      for (const kv of ['key', 'value']) {
        const a = full[`present.${l}.encoder.${kv}`].data, b = out[`present.${l}.encoder.${kv}`].data;
        for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
      }
    // dynamic quantization scales each run's activations by their own range: a cached step and the full run
    // quantize different row sets, so the quantized model's branches agree to quantization error only
    const tol = (quantized ? 3e-2 : 1e-3) * (1 + mag);
    ok = diff <= tol;
    res.check_tolerance = +tol.toExponential(3);
    res.check_max_abs_diff = +diff.toExponential(3);
    res.check = ok ? 'ok' : 'FAIL';
  }
  console.log(JSON.stringify(res));
  if (!ok) process.exit(1);
}

main().catch(e => { console.error('ort_speech:', e.message || e); process.exit(1); });
