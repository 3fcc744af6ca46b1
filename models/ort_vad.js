#!/usr/bin/env node
// Streaming voice-activity detection with ONNX Runtime (onnxruntime-node, CPU) on a vad.py model: N chunks of a
// built-in audio signal, each run fed the previous run's stateN as state (zeros at the start): the reference the
// safeinfer runs are compared with.
//
// usage: node models/ort_vad.js MODEL CHUNKS [THREADS] [--sr 16000|8000] [--batch B] [--dump-audio FILE.npy]
// The audio (float32, chunk = 512 samples at 16 kHz, 256 at 8 kHz; batch row r starts r * 3 chunks later):
//   sample n: 0.01 * u(n) + voiced(n) * 0.3 * sum_{h=1..4} sin(2 pi h f0(n) n / sr) / h
//   u(n) uniform in [-1, 1) from a 64-bit LCG (seed 1; u = (state >> 11) / 2^53 * 2 - 1), f0(n) = 140 Hz *
//   (1 + 0.1 sin(2 pi n / sr)), voiced(n) = 1 where (floor(n / (sr / 4)) % 3) == 1 (a quarter second of voice
//   after half a second of faint noise), else 0. --dump-audio writes it as [CHUNKS, B, chunk].
// Prints one JSON line: {"sr", "chunk", "batch", "probs" (CHUNKS rows of B), "compile_ms", "total_ms",
// "ms_per_chunk", "peak_rss_mib"}. Exit 77 without onnxruntime-node.
'use strict';
const ort = require('./ort_load.js').loadOrt(require);
const { writeNpy } = require('./npy.js');

function audio(total, sr) {
  const a = new Float32Array(total);
  let s = 1n;
  for (let n = 0; n < total; n++) {
    s = (s * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    const u = Number(s >> 11n) / 2 ** 53 * 2 - 1;
    let v = 0.01 * u;
    if (Math.floor(n / (sr / 4)) % 3 === 1) {
      const f0 = 140 * (1 + 0.1 * Math.sin(2 * Math.PI * n / sr));
      for (let h = 1; h <= 4; h++) v += 0.3 * Math.sin(2 * Math.PI * h * f0 * n / sr) / h;
    }
    a[n] = v;
  }
  return a;
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, def) => { const i = args.indexOf(name); if (i < 0) return def; const v = args[i + 1]; args.splice(i, 2); return v; };
  const sr = parseInt(opt('--sr', '16000'), 10), B = parseInt(opt('--batch', '1'), 10), dump = opt('--dump-audio', null);
  const [model, ch, th] = args;
  if (!model || !ch || (sr !== 16000 && sr !== 8000)) {
    console.error('usage: ort_vad.js MODEL CHUNKS [THREADS] [--sr 16000|8000] [--batch B] [--dump-audio FILE.npy]'); process.exit(2);
  }
  const N = parseInt(ch, 10), threads = parseInt(th || '1', 10), C = sr === 16000 ? 512 : 256;
  let t = process.hrtime.bigint();
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1,
                                                          executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const compileMs = Number(process.hrtime.bigint() - t) / 1e6;
  const sig = audio((N + 3 * (B - 1)) * C, sr);
  const chunks = new Float32Array(N * B * C);
  for (let k = 0; k < N; k++)
    for (let r = 0; r < B; r++) chunks.set(sig.subarray((k + 3 * r) * C, (k + 3 * r + 1) * C), (k * B + r) * C);
  if (dump) writeNpy(dump, new ort.Tensor('float32', chunks, [N, B, C]));
  let state = new ort.Tensor('float32', new Float32Array(2 * B * 128), [2, B, 128]);
  const srT = new ort.Tensor('int64', BigInt64Array.from([BigInt(sr)]), []);
  const probs = [];
  t = process.hrtime.bigint();
  for (let k = 0; k < N; k++) {
    const input = new ort.Tensor('float32', chunks.slice(k * B * C, (k + 1) * B * C), [B, C]);
    const out = await sess.run({ input, state, sr: srT });
    probs.push(Array.from(out.output.data, v => +v.toFixed(6)));
    state = out.stateN;
  }
  const totalMs = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(JSON.stringify({ sr, chunk: C, batch: B, probs, compile_ms: +compileMs.toFixed(2), total_ms: +totalMs.toFixed(2),
    ms_per_chunk: +(totalMs / N).toFixed(4), peak_rss_mib: +(process.resourceUsage().maxRSS / 1024).toFixed(1) }));
}

main().catch(e => { console.error('ort_vad:', e.message || e); process.exit(1); });
