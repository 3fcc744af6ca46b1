#!/usr/bin/python3
"""Run a model on safeinfer and on ONNX Runtime with the same random inputs and compare the outputs.
usage: compare_ort.py SAFEINFER MODEL [--devices LIST] [--shape NAME=DIMS]... [--config KEY=VALUE]... [--rtol 1e-4] [--workdir DIR]
                      [--ort-opt disabled|basic|extended|all]
Needs python3-numpy and node with onnxruntime-node (ORT_NODE_MODULES=.../node_modules); exits 77 when absent.
Prints the relative error per output (max |safeinfer - ORT| / max |ORT|) and exits 1 when any exceeds rtol.
"""
import argparse, os, subprocess, sys, tempfile
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("safeinfer"); ap.add_argument("model")
ap.add_argument("--devices", default="REF"); ap.add_argument("--shape", action="append", default=[])
ap.add_argument("--rtol", type=float, default=1e-4); ap.add_argument("--workdir")
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--inputs", help="a folder of NAME.npy: those inputs instead of random ones (shapes from the files)")
ap.add_argument("--ort-opt", default="all", help="ONNX Runtime's graph optimization level (its optimizer's rewrites of "
                "quantized graphs compute differently from the graph as written: 'disabled' compares with the graph)")
ap.add_argument("--config", action="append", default=[], help="KEY=VALUE: a configuration flag for safeinfer run")
a = ap.parse_args()
here = os.path.dirname(os.path.abspath(__file__))
work = a.workdir or tempfile.mkdtemp(prefix="si-cmp-")
os.makedirs(work, exist_ok=True)

# Ask safeinfer for the input shapes (inspect), applying --shape by name or symbolic dim.
import onnx
m = onnx.load(a.model, load_external_data=False)
inits = {i.name for i in m.graph.initializer}
fixed = {}
for s in a.shape:
    k, v = s.split("=", 1)
    fixed[k] = [int(x) for x in v.split("x")]
rng = np.random.default_rng(a.seed)
feeds = []
NP = {1: np.float32, 7: np.int64, 6: np.int32, 9: np.bool_, 10: np.float16, 11: np.float64, 2: np.uint8, 3: np.int8}
for inp in m.graph.input:
    if inp.name in inits:
        continue
    given = os.path.join(a.inputs, inp.name + ".npy") if a.inputs else None
    if given and os.path.exists(given):  # the model's own inputs (models/make_all.py writes MODEL.inputs/NAME.npy)
        feeds.append((inp.name, given))
        continue
    tt = inp.type.tensor_type
    if inp.name in fixed:
        shape = fixed[inp.name]
    else:
        shape = []
        for d in tt.shape.dim:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            elif d.dim_param in fixed:
                shape.append(fixed[d.dim_param][0])
            else:
                sys.exit(f"input {inp.name}: dimension '{d.dim_param}' needs --shape")
    dt = NP[tt.elem_type]
    if dt in (np.float32, np.float64, np.float16):
        x = rng.uniform(-1, 1, shape).astype(dt)
    elif dt == np.bool_:
        x = rng.integers(0, 2, shape).astype(dt)
    else:
        x = rng.integers(0, 10, shape).astype(dt)
    f = os.path.join(work, f"in_{len(feeds)}.npy")
    np.save(f, x)
    feeds.append((inp.name, f))

si_out, ort_out = os.path.join(work, "si"), os.path.join(work, "ort")
cmd = [a.safeinfer, "run", a.model, "--devices", a.devices, "--output-dir", si_out]
for kv in a.config:
    k, v = kv.split("=", 1)
    cmd += ["--" + k.replace("_", "-"), v]
for s in a.shape:
    cmd += ["--shape", s]
for n, f in feeds:
    cmd += ["--input", f"{n}={f}"]
r = subprocess.run(cmd, capture_output=True, text=True)
if r.returncode:
    print(r.stdout, r.stderr); sys.exit(f"safeinfer failed ({r.returncode})")
r = subprocess.run(["node", os.path.join(here, "..", "bench", "ort_run.js"), a.model, ort_out, "1"] + [f"{n}={f}" for n, f in feeds],
                   capture_output=True, text=True, env={**os.environ, "ORT_OPT": a.ort_opt})
if r.returncode == 77 or "SKIP" in r.stdout:
    print(r.stdout.strip()); sys.exit(77)
if r.returncode:
    print(r.stdout, r.stderr); sys.exit("onnxruntime failed")
worst = 0.0
for o in m.graph.output:
    fn = o.name.replace("/", "_").replace(":", "_").replace("\\", "_") + ".npy"
    x, y = np.load(os.path.join(si_out, fn)), np.load(os.path.join(ort_out, fn))
    if x.shape != y.shape or x.dtype != y.dtype:
        print(f"{o.name}: safeinfer {x.dtype}{list(x.shape)} vs onnxruntime {y.dtype}{list(y.shape)}"); sys.exit(1)
    if x.dtype.kind == "f":
        # relative to the output's scale: max |x - y| / max |y| (elementwise relative errors blow up on values
        # near zero, e.g. a sigmoid's 1e-5 tails, where runtimes legitimately differ in the last bits)
        d = np.abs(x.astype(np.float64) - y)
        scale = float(np.max(np.abs(y))) if y.size else 0.0
        err = float(np.max(d)) / scale if scale > 0 else float(np.max(d)) if d.size else 0.0
        elem = float(np.max(d / (np.abs(y.astype(np.float64)) + 1e-6))) if d.size else 0.0
        extra = f" (max abs {float(np.max(d)) if d.size else 0:.3g}, elementwise {elem:.3g})"
    else:
        err = 0.0 if np.array_equal(x, y) else float("inf")
        extra = ""
    print(f"{os.path.basename(a.model)} {o.name}: {x.dtype}{list(x.shape)} relative error {err:.3g}{extra}", flush=True)
    worst = max(worst, err)
sys.exit(0 if worst <= a.rtol else 1)
