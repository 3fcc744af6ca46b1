"""A script written for ONNX Runtime's Python API, left as it is: the python_ort_script test
(python/tests/test_ort_script.py) runs a copy with the import line swapped for `import safeinfer as ort` and
nothing else changed.

usage: ort_style_script.py MODEL OUTDIR   (writes OUTDIR/in_<input>.npy and OUTDIR/<output>.npy)
"""
import os
import sys

import numpy as np
import onnxruntime as ort

model, outdir = sys.argv[1], sys.argv[2]
os.makedirs(outdir, exist_ok=True)

sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
print("providers:", sess.get_providers())
meta = sess.get_modelmeta()
print("producer:", meta.producer_name)

types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
         "tensor(int32)": np.int32, "tensor(bool)": np.bool_}
rng = np.random.default_rng(0)
feed = {}
for inp in sess.get_inputs():
    shape = [d if isinstance(d, int) else 2 for d in inp.shape]  # open dimensions: 2
    dtype = types[inp.type]
    if np.issubdtype(dtype, np.floating):
        x = rng.standard_normal(shape).astype(dtype)
    else:
        x = rng.integers(-4, 5, shape).astype(dtype)
    print("input %s %s %s -> %s" % (inp.name, inp.type, inp.shape, list(x.shape)))
    feed[inp.name] = x
    np.save(os.path.join(outdir, "in_%s.npy" % inp.name), x)

outputs = sess.run(None, feed)
for out, value in zip(sess.get_outputs(), outputs):
    print("output %s %s -> %s %s" % (out.name, out.type, value.dtype, list(value.shape)))
    np.save(os.path.join(outdir, out.name + ".npy"), value)

# the usual one-input call, and a subset of the outputs by name
first = sess.get_inputs()[0].name
if len(sess.get_inputs()) == 1:
    again = sess.run(None, {first: feed[first]})
    assert all(np.array_equal(a, b) for a, b in zip(again, outputs))
last = sess.get_outputs()[-1].name
(only,) = sess.run([last], feed)
assert np.array_equal(only, outputs[-1])
print("ok")
