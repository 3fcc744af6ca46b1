"""The Python package against ONNX Runtime (onnxruntime-node) on models from models/*.py (small variants): the
same inputs through safeinfer.InferenceSession and through models/ort_run.js; float outputs must agree within 1e-4
of the output's scale (max |safeinfer - ORT| <= 1e-4 * max |ORT|; 1e-2 for the float16 model, see MODELS), integer
ones exactly, shapes and dtypes equal. The models: BERT (int64 ids and mask, a padded row), YOLOv8n (160 x 160), a
CRNN recogniser and a Conformer (open batch and width/frames taken from the arrays: no shapes= given; int64 lengths
out), a float16 U^2-Net (float16 arrays in and out).

usage: python3 python/tests/compare_ort.py WORKDIR [--devices CPU,REF]
Needs python3-onnx (the generators), node and onnxruntime-node ($ORT_NODE_MODULES, default build/ort/node_modules);
exits 77 with a message when one is missing, 1 when an output differs.
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)


def inputs_bert(rng):
    b, t = 2, 12
    mask = np.ones((b, t), np.int64)
    mask[1, 8:] = 0  # a padded second row
    return {"input_ids": rng.integers(0, 1024, (b, t)).astype(np.int64), "attention_mask": mask,
            "token_type_ids": (np.arange(t) >= 6).astype(np.int64)[None].repeat(b, 0)}


def inputs_yolo(rng):
    return {"images": rng.uniform(0, 1, (1, 3, 160, 160)).astype(np.float32)}


def inputs_crnn(rng):
    return {"x": rng.uniform(-1, 1, (2, 3, 48, 96)).astype(np.float32)}


def inputs_u2net(rng):
    return {"input.1": rng.uniform(0, 1, (1, 3, 64, 64)).astype(np.float16)}


def inputs_conformer(rng):
    return {"speech": rng.standard_normal((2, 120, 80)).astype(np.float32),
            "speech_lengths": np.array([120, 90], np.int64)}


# name, generator arguments (models/...), its flags, inputs, tolerance (None: --rtol). The float16 U^2-Net rounds
# every activation of its ~640 nodes to float16 (an ulp is 4.9e-4 near 1), in a different order than ORT: its
# outputs agree to a few float16 ulps, so it gets 1e-2 of the scale; it is here for float16 arrays in and out.
MODELS = [
    ("bert", ["transformer.py", "bert"], [], inputs_bert, None),
    ("yolo", ["cnn.py", "yolo"], ["--small"], inputs_yolo, None),
    ("crnn", ["cnn.py", "crnn"], ["--small"], inputs_crnn, None),
    ("conformer", ["transformer.py", "conformer"], [], inputs_conformer, None),
    ("u2net_fp16", ["cnn.py", "u2net_fp16"], ["--small", "--size", "64"], inputs_u2net, 1e-2),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workdir")
    ap.add_argument("--devices", default="CPU,REF")
    ap.add_argument("--rtol", type=float, default=1e-4)
    a = ap.parse_args()
    try:
        import onnx  # noqa: F401 - the generators need it
    except ImportError:
        skip("no onnx module in %s (python3-onnx) for the model generators" % sys.executable)
    if not shutil.which("node"):
        skip("node not installed")
    mods = os.environ.get("ORT_NODE_MODULES") or os.path.join(ROOT, "build", "ort", "node_modules")
    if not os.path.isdir(os.path.join(mods, "onnxruntime-node")):
        skip("onnxruntime-node not found at %s (set ORT_NODE_MODULES)" % mods)
    env = dict(os.environ, ORT_NODE_MODULES=mods)

    import safeinfer
    print("safeinfer %s from %s; devices %s" % (safeinfer.version, safeinfer.library_path, a.devices))
    failed = 0
    for name, gen, flags, make_inputs, tol in MODELS:
        rtol = tol or a.rtol
        work = os.path.join(a.workdir, name)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        path = os.path.join(work, name + ".onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "models", gen[0])] + gen[1:] + [path] + flags, check=True,
                       stdout=subprocess.DEVNULL)
        feed = make_inputs(np.random.default_rng(3))
        sess = safeinfer.InferenceSession(path, devices=a.devices)
        outs = sess.run(None, feed)
        args = []
        for k, v in feed.items():
            f = os.path.join(work, "in_%d.npy" % len(args))
            np.save(f, v)
            args.append("%s=%s" % (k, f))
        r = subprocess.run(["node", os.path.join(ROOT, "models", "ort_run.js"), path] + args +
                           ["--out", os.path.join(work, "ort")], capture_output=True, text=True, env=env)
        if r.returncode == 77:
            skip(r.stdout.strip())
        if r.returncode:
            print("%s: onnxruntime failed: %s%s" % (name, r.stdout, r.stderr))
            failed += 1
            continue
        for arg, got in zip(sess.get_outputs(), outs):
            ref = np.load(os.path.join(work, "ort", "".join("_" if c in "/\\:" else c for c in arg.name) + ".npy"))
            if got.shape != ref.shape or got.dtype != ref.dtype:
                print("%s %s: safeinfer %s%s, onnxruntime %s%s  FAIL" % (name, arg.name, got.dtype, list(got.shape),
                                                                         ref.dtype, list(ref.shape)))
                failed += 1
                continue
            if got.dtype.kind == "f":
                g, e = got.astype(np.float64), ref.astype(np.float64)
                scale = float(np.max(np.abs(e))) if e.size else 0.0
                err = float(np.max(np.abs(g - e))) if e.size else 0.0
                ok = np.array_equal(np.isfinite(g), np.isfinite(e)) and err <= rtol * scale + 1e-7
                print("%s %s %s%s: max |diff| %.3g, scale %.3g, relative %.3g (limit %g)  %s" % (
                    name, arg.name, got.dtype, list(got.shape), err, scale, err / scale if scale else 0.0, rtol,
                    "ok" if ok else "FAIL"))
            else:
                ok = np.array_equal(got, ref)
                print("%s %s %s%s: %s" % (name, arg.name, got.dtype, list(got.shape), "equal" if ok else "DIFFER  FAIL"))
            failed += not ok
        sess.close()
    print("%d output(s) differ" % failed if failed else "all outputs agree with onnxruntime")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
