#!/usr/bin/env node
// Run a model with ONNX Runtime (onnxruntime-node, CPU) on .npy inputs; write the outputs as .npy and print one
// JSON line with the timings and a summary of each output (bench/ort_run.js does the same for the benchmark
// script's text format). Both read and write float16 (u2net_fp16) and bool through models/npy.js.
//
// usage: node models/ort_run.js MODEL NAME=FILE.npy... [--out DIR] [--threads N] [--repeat N] [--warmup N]
//                               [--opt all|basic|disabled]
// Prints {"model", "compile_ms", "median_ms", "min_ms", "runs", "peak_rss_mib", "outputs": {name: {"type",
// "dims", "min", "max", "mean", "rms", "nonfinite"}}}. Float16 summaries are computed from the decoded values.
// Exit 77 without onnxruntime-node, 1 when ONNX Runtime refuses the model or a run fails (the message on stderr).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('./ort_load.js').loadOrt(require);
const { readNpy, writeNpy } = require('./npy.js');

function half(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function summary(t) {
  let min = Infinity, max = -Infinity, sum = 0, sq = 0, bad = 0, n = 0;
  const conv = t.type === 'float16' ? half : (typeof t.data[0] === 'bigint' ? Number : (v) => +v);
  for (const raw of t.data) {
    const v = conv(raw);
    if (!Number.isFinite(v)) { bad++; continue; }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v; sq += v * v; n++;
  }
  const r = (x) => (Number.isFinite(x) ? +x.toPrecision(6) : null);
  return { type: t.type, dims: t.dims, min: r(min), max: r(max), mean: r(n ? sum / n : NaN), rms: r(n ? Math.sqrt(sq / n) : NaN),
           nonfinite: bad };
}

async function main() {
  const args = process.argv.slice(2);
  const opt = (name, def) => { const i = args.indexOf(name); if (i < 0) return def; const v = args[i + 1]; args.splice(i, 2); return v; };
  const outDir = opt('--out', null), threads = parseInt(opt('--threads', '1'), 10);
  const repeat = parseInt(opt('--repeat', '1'), 10), warmup = parseInt(opt('--warmup', '0'), 10);
  const level = opt('--opt', 'all');
  const [model, ...feedArgs] = args;
  if (!model) { console.error('usage: ort_run.js MODEL NAME=FILE.npy... [--out DIR] [--threads N] [--repeat N] [--warmup N] [--opt all|basic|disabled]'); process.exit(2); }
  let t = process.hrtime.bigint();
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1,
                                                          executionMode: 'sequential', graphOptimizationLevel: level });
  const compileMs = Number(process.hrtime.bigint() - t) / 1e6;
  const feeds = {};
  for (const a of feedArgs) { const i = a.indexOf('='); feeds[a.slice(0, i)] = readNpy(ort, a.slice(i + 1)); }
  for (const n of sess.inputNames) if (!feeds[n]) { console.error(`ort_run: no .npy for input ${n}`); process.exit(2); }
  let out;
  for (let r = 0; r < warmup; r++) out = await sess.run(feeds);
  const times = [];
  for (let r = 0; r < repeat; r++) {
    t = process.hrtime.bigint();
    out = await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((x, y) => x - y);
  const outputs = {};
  for (const n of sess.outputNames) {
    outputs[n] = summary(out[n]);
    if (outDir) { fs.mkdirSync(outDir, { recursive: true }); writeNpy(path.join(outDir, n.replace(/[\/:\\]/g, '_') + '.npy'), out[n]); }
  }
  console.log(JSON.stringify({ model: path.basename(model), compile_ms: +compileMs.toFixed(2),
    median_ms: +times[times.length >> 1].toFixed(3), min_ms: +times[0].toFixed(3), runs: repeat,
    peak_rss_mib: +(process.resourceUsage().maxRSS / 1024).toFixed(1), outputs }));
}

main().catch(e => { console.error('ort_run:', e.message || e); process.exit(1); });
