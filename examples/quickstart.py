"""The Python quick start of the README: the bundled example on a device list, with a fault injected.

    PYTHONPATH=python python3 examples/quickstart.py examples/tiny_cnn.onnx    # from a checkout (after make)
    python3 examples/quickstart.py examples/tiny_cnn.onnx                      # after make install
"""
import sys

import numpy as np
import safeinfer

path = sys.argv[1] if len(sys.argv) > 1 else "examples/tiny_cnn.onnx"
events = []
s = safeinfer.InferenceSession(path, devices="CPU,REF", faults="CPU.infer=2", shapes={"batch": 1},
                               on_event=lambda e: events.append(e))
for i in s.get_inputs():
    print("input", i.name, i.shape, i.type)
x = (np.arange(3 * 32 * 32, dtype=np.float32) % 17 / 17).reshape(1, 3, 32, 32)
for run in range(3):
    probs, logits = s.run(None, {"image": x})
    print(f"run {run + 1}: class {probs.argmax()}, p={probs.max():.4f}")
print([e["type"] + " " + e["from"] + "->" + e["to"] for e in events if e["type"] == "failover"])
print(s.counters())
assert s.counters()["failovers"] == 1
