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
let ort;
try {
  ort = require(process.env.ORT_NODE_MODULES ? path.join(process.env.ORT_NODE_MODULES, 'onnxruntime-node') : 'onnxruntime-node');
} catch (e) {
  console.log('SKIP: onnxruntime-node not found (npm install --ignore-scripts onnxruntime-node; set ORT_NODE_MODULES)');
  process.exit(77);
}

const DT = { '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
             '<i4': ['int32', Int32Array], '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array],
             '|b1': ['bool', Uint8Array] };

function readNpy(file) {
  const b = fs.readFileSync(file);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const off = (major === 1 ? 10 : 12) + hlen;
  const h = b.slice(major === 1 ? 10 : 12, off).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(h)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(h)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const [type, Arr] = DT[descr];
  const data = b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length);
  let arr = new Arr(data.slice(0));
  if (type === 'bool') arr = Uint8Array.from(arr).map(v => v ? 1 : 0);
  return new ort.Tensor(type, type === 'bool' ? Array.from(arr, v => !!v) : arr, shape);
}

function writeNpy(file, t) {
  const descr = { float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', int8: '|i1', uint8: '|u1', bool: '|b1' }[t.type];
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + h.length + 1) % 64);
  h = h + ' '.repeat(pad === 64 ? 0 : pad) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  const data = t.type === 'bool' ? Buffer.from(Array.from(t.data, v => v ? 1 : 0)) : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'), data]));
}

(async () => {
  const [model, outdir, threads, repeatArg, ...rest] = process.argv.slice(2);
  let repeat = Number(repeatArg), feedArgs = rest;
  if (!Number.isInteger(repeat)) { feedArgs = [repeatArg, ...rest].filter(x => x !== undefined); repeat = 1; }
  const startRss = process.resourceUsage().maxRSS / 1024; // KiB -> MiB
  const sess = await ort.InferenceSession.create(model, { intraOpNumThreads: Number(threads) || 1, interOpNumThreads: 1,
                                                          executionMode: 'sequential' });
  const feeds = {};
  for (const a of feedArgs) { const i = a.indexOf('='); feeds[a.slice(0, i)] = readNpy(a.slice(i + 1)); }
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
