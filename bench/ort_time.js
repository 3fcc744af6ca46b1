#!/usr/bin/env node
// Time one model's inference on ONNX Runtime (onnxruntime-node, CPU) like bench/llm_ops_time.c does on safeinfer:
//   node bench/ort_time.js MODEL THREADS ITERATIONS [NAME=FILE.npy]...
// prints {"median_ms", "min_ms", "cpu_ms"} (cpu_ms: process user + system time per inference over the timed runs).
// Exit 77 without onnxruntime-node (ORT_NODE_MODULES).
'use strict';
const path = require('path');
const ort = require(path.join(__dirname, '..', 'models', 'ort_load.js')).loadOrt(require);
const { readNpy } = require(path.join(__dirname, '..', 'models', 'npy.js'));

async function main() {
  const [model, threads, iters, ...feedArgs] = process.argv.slice(2);
  const n = parseInt(iters, 10);
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: parseInt(threads, 10), interOpNumThreads: 1,
                                                          executionMode: 'sequential' });
  const feeds = {};
  for (const a of feedArgs) { const i = a.indexOf('='); feeds[a.slice(0, i)] = readNpy(ort, a.slice(i + 1)); }
  for (let w = 0; w < 2; w++) await sess.run(feeds);
  const times = [];
  const c0 = process.cpuUsage();
  for (let r = 0; r < n; r++) {
    const t = process.hrtime.bigint();
    await sess.run(feeds);
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const c = process.cpuUsage(c0);
  times.sort((x, y) => x - y);
  console.log(JSON.stringify({ median_ms: times[n >> 1], min_ms: times[0], cpu_ms: (c.user + c.system) / 1e3 / n }));
}

main().catch(e => { console.error('ort_time:', e.message || e); process.exit(1); });
