// Loads onnxruntime-node for the reference drivers (models/ort_*.js, bench/ort_*.js, tests/llm_ort_batch.js): from
// $ORT_NODE_MODULES (a node_modules folder holding onnxruntime-node) when set, else by the caller's own module
// resolution (pass the caller's `require`). Without it, prints a SKIP line and exits 77 (ctest's skip code).
'use strict';
const path = require('path');

function loadOrt(req) {
  const dir = process.env.ORT_NODE_MODULES;
  try {
    return req(dir ? path.join(dir, 'onnxruntime-node') : 'onnxruntime-node');
  } catch (e) {
    console.log('SKIP: onnxruntime-node not found (npm install --ignore-scripts onnxruntime-node; set ORT_NODE_MODULES)');
    process.exit(77);
  }
}

module.exports = { loadOrt };
