#!/usr/bin/env node
// Run many small models with ONNX Runtime (onnxruntime-node, CPU, one intra-op thread) in one process, for
// tests/llm_ops_ort.py: MANIFEST.json lists {"model", "feeds": {name: file.npy}, "out": dir}; each case's outputs
// are written to dir/NAME.npy, or its error message to dir/ERROR when ORT refuses the model or the run fails.
// Exit 77 without onnxruntime-node.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require(path.join(__dirname, '..', 'models', 'ort_load.js')).loadOrt(require);
const { readNpy, writeNpy } = require(path.join(__dirname, '..', 'models', 'npy.js'));

async function main() {
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  for (const c of cases) {
    fs.mkdirSync(c.out, { recursive: true });
    try {
      const sess = await ort.InferenceSession.create(c.model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
      const feeds = {};
      for (const [n, f] of Object.entries(c.feeds)) feeds[n] = readNpy(ort, f);
      const out = await sess.run(feeds);
      for (const n of sess.outputNames) writeNpy(path.join(c.out, n.replace(/[\/:\\]/g, '_') + '.npy'), out[n]);
    } catch (e) {
      fs.writeFileSync(path.join(c.out, 'ERROR'), String(e.message || e));
    }
  }
}

main().catch(e => { console.error('llm_ort_batch:', e.message || e); process.exit(1); });
