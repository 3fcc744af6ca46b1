#!/usr/bin/env node
// Greedy generation with ONNX Runtime (onnxruntime-node, CPU) on a decoder with a KV cache
// (input_ids, attention_mask, past_key_values.L.key/value -> logits, present.L.key/value), the reference
// the safeinfer runs are compared with.
//
// usage: node models/ort_generate.js MODEL PROMPT_LEN STEPS [THREADS] [SEED]
// Prints one JSON line: {"tokens":[...], "prompt":[...], "prefill_ms", "decode_ms", "prefill_tok_s",
// "decode_tok_s", "decode_step_median_ms", "decode_step_min_ms" (the median and the fastest of the decode
// runs, sess.run only), "compile_ms", "peak_rss_mib"}. The prompt is PROMPT_LEN token ids drawn from a fixed
// generator (SEED), the same ones `safeinfer bench --generate` uses. Exit 77 when onnxruntime-node is absent.
'use strict';
const ort = require('./ort_load.js').loadOrt(require);

// The prompt generator: a 64-bit LCG (Knuth's MMIX constants), token = (state >> 33) % vocab.
function prompt(n, vocab, seed) {
  let s = BigInt(seed) & 0xffffffffffffffffn;
  const out = [];
  for (let i = 0; i < n; i++) {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    out.push(Number((s >> 33n) % BigInt(vocab)));
  }
  return out;
}

function argmaxLast(logits) {
  const [b, s, v] = logits.dims;
  const d = logits.data;
  const off = (s - 1) * v;
  let best = 0;
  for (let i = 1; i < v; i++) if (d[off + i] > d[off + best]) best = i;
  return best;
}

async function main() {
  const [model, pl, st, th, sd] = process.argv.slice(2);
  if (!model) { console.error('usage: ort_generate.js MODEL PROMPT_LEN STEPS [THREADS] [SEED]'); process.exit(2); }
  const P = parseInt(pl, 10), N = parseInt(st, 10), threads = parseInt(th || '1', 10), seed = parseInt(sd || '1', 10);
  const t0 = process.hrtime.bigint();
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1,
                                                          executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const pasts = sess.inputNames.filter(n => n.startsWith('past_key_values.'));
  const meta = sess.inputMetadata ? sess.inputMetadata : null;
  // The vocabulary and the KV geometry are read from the outputs of a one-token probe would cost a run; take
  // them from the model's declared shapes instead (logits' last dim, past's dims 1 and 3).
  let vocab = 0, kvHeads = 0, headDim = 0;
  const outMeta = sess.outputMetadata;
  for (const m of (Array.isArray(outMeta) ? outMeta : Object.values(outMeta || {}))) {
    if (m.name === 'logits') vocab = m.shape[2];
  }
  for (const m of (Array.isArray(meta) ? meta : Object.values(meta || {}))) {
    if (m.name && m.name.startsWith('past_key_values.')) { kvHeads = m.shape[1]; headDim = m.shape[3]; }
  }
  if (!vocab || !kvHeads || !headDim) { console.error('ort_generate: cannot read vocab/kv geometry from the model'); process.exit(2); }
  const ids = prompt(P, vocab, seed);
  const feeds = {};
  const empty = new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim]);
  for (const n of pasts) feeds[n] = empty;
  feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, P]);
  feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(P).fill(1n), [1, P]);
  const tokens = [];
  let t = process.hrtime.bigint();
  let out = await sess.run(feeds);
  const prefillMs = Number(process.hrtime.bigint() - t) / 1e6;
  let total = P;
  t = process.hrtime.bigint();
  const steps = [];
  for (let i = 0; i < N; i++) {
    const next = argmaxLast(out.logits);
    tokens.push(next);
    if (i === N - 1) break;
    total += 1;
    const f = {};
    for (const n of pasts) f[n] = out[n.replace('past_key_values.', 'present.')];
    f.input_ids = new ort.Tensor('int64', BigInt64Array.from([BigInt(next)]), [1, 1]);
    f.attention_mask = new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]);
    const ts = process.hrtime.bigint();
    out = await sess.run(f);
    steps.push(Number(process.hrtime.bigint() - ts) / 1e6);
  }
  steps.sort((a, b) => a - b);
  const decodeMs = Number(process.hrtime.bigint() - t) / 1e6;
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify({ tokens, prompt: ids, compile_ms: +compileMs.toFixed(2), prefill_ms: +prefillMs.toFixed(2),
    decode_ms: +decodeMs.toFixed(2), prefill_tok_s: +(P / prefillMs * 1000).toFixed(2),
    decode_tok_s: N > 1 ? +((N - 1) / decodeMs * 1000).toFixed(2) : 0,
    decode_step_median_ms: steps.length ? +steps[Math.floor(steps.length / 2)].toFixed(3) : 0,
    decode_step_min_ms: steps.length ? +steps[0].toFixed(3) : 0, peak_rss_mib: +rss.toFixed(1) }));
}

main().catch(e => { console.error('ort_generate:', e.message || e); process.exit(1); });
