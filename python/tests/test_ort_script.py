"""A script written for ONNX Runtime (python/tests/ort_style_script.py: `import onnxruntime as ort`,
ort.InferenceSession(path, providers=["CPUExecutionProvider"]), get_inputs, run(None, feed), get_outputs,
get_modelmeta) runs unchanged on safeinfer once its import line reads `import safeinfer as ort`, with no
CompatWarning (-W error::UserWarning), and gives exactly what `safeinfer run --devices CPU` gives on the same inputs
(open dimensions are 2 in the script: no shapes= and no --shape, the arrays' shapes are used).

Run by python/tests/run.sh (ctest: python_ort_script) with SAFEINFER_LIBRARY, SAFEINFER_CLI, PYTHONPATH=python.
"""
import os
import subprocess
import sys
import unittest

import numpy as np

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLI = os.environ.get("SAFEINFER_CLI", os.path.join(ROOT, "build", "bin", "safeinfer"))
WORK = os.environ.get("SI_TEST_WORKDIR") or "/tmp/si-py-ort-script"
MODELS = [os.path.join(ROOT, "examples", "tiny_cnn.onnx")] + \
         [os.path.join(ROOT, "tests", "data", m) for m in ("small.onnx", "matmul.onnx", "constant.onnx",
                                                            "clip13_int.onnx", "passthrough.onnx")]


class TestOrtScript(unittest.TestCase):
    def test_script_runs_unchanged(self):
        with open(os.path.join(ROOT, "python", "tests", "ort_style_script.py")) as f:
            text = f.read()
        self.assertEqual(text.count("import onnxruntime as ort\n"), 1)
        swapped = text.replace("import onnxruntime as ort\n", "import safeinfer as ort\n")
        os.makedirs(WORK, exist_ok=True)
        script = os.path.join(WORK, "script_on_safeinfer.py")
        with open(script, "w") as f:
            f.write(swapped)
        # the only difference between the two scripts is that line
        diff = [(a, b) for a, b in zip(text.splitlines(), swapped.splitlines()) if a != b]
        self.assertEqual(diff, [("import onnxruntime as ort", "import safeinfer as ort")])
        for model in MODELS:
            name = os.path.splitext(os.path.basename(model))[0]
            with self.subTest(model=name):
                out = os.path.join(WORK, name, "script")
                r = subprocess.run([sys.executable, "-W", "error::UserWarning", script, model, out], capture_output=True,
                                   text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn("providers: ['CPU']", r.stdout)
                self.assertTrue(r.stdout.rstrip().endswith("ok"), r.stdout)
                # the CLI on the inputs the script made
                ins = sorted(f for f in os.listdir(out) if f.startswith("in_"))
                self.assertTrue(ins)
                cli_out = os.path.join(WORK, name, "cli")
                cmd = [CLI, "run", model, "--devices", "CPU", "--output-dir", cli_out]
                for f in ins:
                    cmd += ["--input", "%s=%s" % (f[3:-4], os.path.join(out, f))]
                r = subprocess.run(cmd, capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                outs = sorted(os.listdir(cli_out))
                self.assertTrue(outs)
                for f in outs:
                    a, b = np.load(os.path.join(out, f)), np.load(os.path.join(cli_out, f))
                    self.assertEqual((a.dtype, a.shape), (b.dtype, b.shape), f)
                    self.assertTrue(np.array_equal(a, b), "%s %s: the script's output differs from the CLI's"
                                    % (name, f))


if __name__ == "__main__":
    unittest.main(verbosity=2)
