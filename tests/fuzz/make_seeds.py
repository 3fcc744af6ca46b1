#!/usr/bin/python3
"""Build the fuzz seed corpora in tests/fuzz/seeds/ (committed; rerun only to refresh them).

  /usr/bin/python3 tests/fuzz/make_seeds.py [ONNX_TESTS_DIR]   (default ../shared/onnx-tests)

model:      tests/data/*.onnx without external data, plus the smallest ONNX backend test model of each op
            (node suite, at most 3 KB each)
model_file: [u16 little-endian model length][model][external data file bytes] (see fuzz_model_file.c): the
            external-data fixtures of tests/data, plus some models without external data
npy:        tests/data/*.npy and small arrays of every dtype and rank written with numpy (v1 and v2 headers)
pb:         the smallest backend test TensorProto of each element type and rank (at most 2 KB each)
config:     key=value lines and fault specs
"""
import glob, hashlib, io, os, struct, sys
import numpy as np
import onnx
import onnx.numpy_helper

root = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(root))
tests = sys.argv[1] if len(sys.argv) > 1 else os.path.join(repo, '..', 'shared', 'onnx-tests')
data = os.path.join(repo, 'tests', 'data')

def put(kind, name, blob):
    d = os.path.join(root, 'seeds', kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(blob)

# --- model ---
ext_fixtures = {'ext.onnx', 'ext_abs.onnx', 'ext_badlen.onnx', 'ext_escape.onnx', 'ext_escape_mid.onnx',
                'ext_missing.onnx', 'ext_short.onnx'}
for p in sorted(glob.glob(os.path.join(data, '*.onnx'))):
    if os.path.basename(p) not in ext_fixtures and os.path.getsize(p) > 0:
        put('model', 'data_' + os.path.basename(p), open(p, 'rb').read())
best = {}
for p in sorted(glob.glob(os.path.join(tests, 'node', '*', 'model.onnx'))):
    size = os.path.getsize(p)
    if size > 3072:
        continue
    try:
        m = onnx.load(p)
    except Exception:
        continue
    if not m.graph.node:
        continue
    key = m.graph.node[0].op_type
    if key not in best or size < best[key][0]:
        best[key] = (size, p)
for op, (size, p) in sorted(best.items()):
    put('model', 'node_' + op + '.onnx', open(p, 'rb').read())

# --- model_file ---
def pack(model, ext):
    return struct.pack('<H', len(model)) + model + ext
ext = open(os.path.join(data, 'ext.bin'), 'rb').read()
for n in sorted(ext_fixtures):
    put('model_file', n.replace('.onnx', ''), pack(open(os.path.join(data, n), 'rb').read(), ext))
put('model_file', 'ext_truncated', pack(open(os.path.join(data, 'ext.onnx'), 'rb').read(), ext[:10]))
for n in ['small.onnx', 'matmul.onnx', 'constant.onnx', 'passthrough.onnx']:
    put('model_file', n.replace('.onnx', ''), pack(open(os.path.join(data, n), 'rb').read(), b''))
# an initializer big enough (>= 1 KB) that the streaming reader leaves its raw_data in the file
w = onnx.numpy_helper.from_array(np.arange(512, dtype=np.float32).reshape(2, 256), 'W')
g = onnx.helper.make_graph([onnx.helper.make_node('Add', ['X', 'W'], ['Y'])], 'g',
                           [onnx.helper.make_tensor_value_info('X', onnx.TensorProto.FLOAT, [2, 256])],
                           [onnx.helper.make_tensor_value_info('Y', onnx.TensorProto.FLOAT, [2, 256])], [w])
mb = onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid('', 13)]).SerializeToString()
put('model_file', 'big_raw', pack(mb, b''))
w2 = onnx.TensorProto()
w2.CopyFrom(w)
w2.ClearField('raw_data')
w2.data_location = onnx.TensorProto.EXTERNAL
for k, v in (('location', 'ext.bin'), ('offset', '0'), ('length', str(512 * 4))):
    e = w2.external_data.add()
    e.key, e.value = k, v
g2 = onnx.helper.make_graph(g.node, 'g', g.input, g.output, [w2])
mb2 = onnx.helper.make_model(g2, opset_imports=[onnx.helper.make_opsetid('', 13)]).SerializeToString()
put('model_file', 'big_ext', pack(mb2, np.arange(512, dtype=np.float32).tobytes()))

# --- npy ---
for p in sorted(glob.glob(os.path.join(data, '*.npy'))):
    put('npy', 'data_' + os.path.basename(p), open(p, 'rb').read())
arrays = {
    'f32_2x3': np.arange(6, dtype=np.float32).reshape(2, 3), 'f64_scalar': np.array(2.5),
    'f16_4': np.arange(4, dtype=np.float16), 'i8_3': np.array([-1, 0, 1], np.int8), 'u8_empty': np.zeros((0, 3), np.uint8),
    'i16_2x2': np.ones((2, 2), np.int16), 'u16_1': np.array([7], np.uint16), 'i32_rank4': np.zeros((1, 2, 1, 2), np.int32),
    'u32_2': np.array([1, 2], np.uint32), 'i64_3': np.array([1, -2, 3], np.int64), 'u64_1': np.array([9], np.uint64),
    'bool_4': np.array([True, False, True, True]), 'f32_rank8': np.zeros((1,) * 8, np.float32),
    'f32_fortran': np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
    'f32_bigendian': np.arange(3, dtype='>f4'),
}
for n, a in arrays.items():
    b = io.BytesIO()
    np.save(b, a)
    put('npy', n + '.npy', b.getvalue())
b = io.BytesIO()
np.lib.format.write_array(b, np.arange(3, dtype=np.float32), version=(2, 0))
put('npy', 'f32_v2.npy', b.getvalue())

# --- pb ---
bestpb = {}
for p in sorted(glob.glob(os.path.join(tests, '*', '*', 'test_data_set_0', '*.pb'))):
    size = os.path.getsize(p)
    if size > 2048:
        continue
    t = onnx.TensorProto()
    try:
        t.ParseFromString(open(p, 'rb').read())
    except Exception:
        continue
    key = (t.data_type, len(t.dims), bool(t.raw_data))
    if key not in bestpb or size < bestpb[key][0]:
        bestpb[key] = (size, p)
for (dt, rank, raw), (size, p) in sorted(bestpb.items()):
    put('pb', 'dt%d_rank%d_%s.pb' % (dt, rank, 'raw' if raw else 'typed'), open(p, 'rb').read())
for dt, vals in ((onnx.TensorProto.FLOAT, [1.5, 2]), (onnx.TensorProto.INT64, [1, -2]), (onnx.TensorProto.INT32, [3]),
                 (onnx.TensorProto.DOUBLE, [0.25]), (onnx.TensorProto.UINT64, [5]), (onnx.TensorProto.FLOAT16, [15360]),
                 (onnx.TensorProto.BOOL, [1, 0])):
    t = onnx.helper.make_tensor('t', dt, [len(vals)], vals)
    put('pb', 'typed_dt%d.pb' % dt, t.SerializeToString())

# --- config ---
configs = {
    'devices': b'devices=REF\n', 'faults_infer': b'devices=REF\nfaults=REF.infer=2\n',
    'faults_lost': b'faults=REF.compile=always:lost\n', 'faults_prob': b'retries=3\nfaults=REF.infer=p0.5@7:nan\n',
    'faults_many': b'faults=REF.create=1+:oom, REF.infer=3:error ,OCL.1.infer=P1\n', 'spec_only': b'OCL.infer=3\n',
    'policies': b'retries=2\ninfer_timeout_ms=1000\ncompile_timeout_ms=5000\nstandby=on\nfailback_ms=10\n',
    'checks': b'check_outputs=nan\nstrict=off\nadaptive_threads=on\nthreads=2\n', 'budget': b'max_memory_mb=64\n',
    'budget_zero': b'max_memory_mb=0\n', 'unknown': b'colour=blue\n', 'devices_list': b'devices=OCL,CPU,REF\n',
}
for n, c in configs.items():
    put('config', n, c)
print('seeds:', {k: len(os.listdir(os.path.join(root, 'seeds', k))) for k in os.listdir(os.path.join(root, 'seeds'))})
