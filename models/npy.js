// .npy files <-> onnxruntime-node tensors, for the reference drivers in this folder. Handles float32/64, float16
// (as the raw uint16 bits ONNX Runtime takes), int8/16/32/64, uint8/16/32/64 and bool, little-endian, C order.
'use strict';
const fs = require('fs');

const DT = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<f2': ['float16', Uint16Array],
  '<i8': ['int64', BigInt64Array], '<i4': ['int32', Int32Array], '<i2': ['int16', Int16Array], '|i1': ['int8', Int8Array],
  '<u8': ['uint64', BigUint64Array], '<u4': ['uint32', Uint32Array], '<u2': ['uint16', Uint16Array], '|u1': ['uint8', Uint8Array],
  '|b1': ['bool', Uint8Array],
};
const DESCR = {};
for (const [d, [t]] of Object.entries(DT)) DESCR[t] = d;

function parseNpy(buf) {
  if (buf.slice(0, 6).toString('latin1') !== '\x93NUMPY') throw new Error('not a .npy file');
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const h = buf.slice(start, start + hlen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(h)[1];
  if (/'fortran_order':\s*True/.test(h)) throw new Error('fortran-order .npy not supported');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(h)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  if (!DT[descr]) throw new Error(`unsupported .npy dtype ${descr}`);
  const [type, Arr] = DT[descr];
  const body = buf.buffer.slice(buf.byteOffset + start + hlen, buf.byteOffset + buf.length);
  return { type, shape, data: new Arr(body) };
}

function readNpy(ort, file) {
  const { type, shape, data } = parseNpy(fs.readFileSync(file));
  if (type === 'bool') return new ort.Tensor('bool', Array.from(data, v => !!v), shape);
  return new ort.Tensor(type, data, shape);
}

function writeNpy(file, t) {
  const descr = DESCR[t.type];
  if (!descr) throw new Error(`cannot write a ${t.type} tensor as .npy`);
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + h.length + 1) % 64);
  h = h + ' '.repeat(pad === 64 ? 0 : pad) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1'); head[6] = 1; head[7] = 0; head.writeUInt16LE(h.length, 8);
  const data = t.type === 'bool' ? Buffer.from(Array.from(t.data, v => (v ? 1 : 0)))
    : Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(h, 'latin1'), data]));
}

module.exports = { readNpy, writeNpy, parseNpy };
