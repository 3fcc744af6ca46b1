#!/usr/bin/env node
// Run a model with ONNX Runtime (onnxruntime-node, CPU provider) on .npy inputs and write .npy outputs.
// usage: node bench/ort_run.js MODEL OUTDIR THREADS [REPEAT] NAME=FILE.npy...
// Prints "ort: median_ms=X min_ms=Y runs=N start_rss_mib=S peak_rss_mib=P". ONNX Runtime is looked up from
// $ORT_NODE_MODULES (a node_modules folder holding onnxruntime-node) or the usual resolution; exit 77 when absent.
// $ORT_WARMUP (default 0) untimed runs come before the REPEAT timed ones. start_rss_mib is the process's peak
// RSS once node and onnxruntime are loaded (before the session); peak_rss_mib is the peak at the end (maxRSS).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', 'models', 'ort_load.js')).loadOrt(require);
const { readNpy, writeNpy } = require(path.join(__dirname, '..', 'models', 'npy.js'));

(async () => {
  const [model, outdir, threads, repeatArg, ...rest] = process.argv.slice(2);
  let repeat = Number(repeatArg), feedArgs = rest;
  if (!Number.isInteger(repeat)) { feedArgs = [repeatArg, ...rest].filter(x => x !== undefined); repeat = 1; }
  const startRss = process.resourceUsage().maxRSS / 1024; // KiB -> MiB
  // ORT_OPT: ONNX Runtime's graph optimization level (disabled, basic, extended, all; default all)
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: Number(threads) || 1, interOpNumThreads: 1,
                                                          executionMode: 'sequential',
                                                          graphOptimizationLevel: process.env.ORT_OPT || 'all' });
  const feeds = {};
  for (const a of feedArgs) { const i = a.indexOf('='); feeds[a.slice(0, i)] = readNpy(ort, a.slice(i + 1)); }
  let out, times = [];
  const warmup = Number(process.env.ORT_WARMUP || 0);
  for (let r = 0; r < warmup; r++) out = await sess.run(feeds);
  for (let r = 0; r < repeat; r++) {
    const t0 = process.hrtime.bigint();
    out = await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  fs.mkdirSync(outdir, { recursive: true });
  for (const name of sess.outputNames) writeNpy(path.join(outdir, name.replace(/[\/:\\]/g, '_') + '.npy'), out[name]);
  times.sort((a, b) => a - b);
  console.log(`ort: median_ms=${times[times.length >> 1].toFixed(3)} min_ms=${times[0].toFixed(3)} runs=${repeat} start_rss_mib=${startRss.toFixed(1)} ` +
              `peak_rss_mib=${(process.resourceUsage().maxRSS / 1024).toFixed(1)}`);
})().catch(e => { console.error('ort error:', e.message); process.exit(1); });
