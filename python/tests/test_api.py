"""The safeinfer Python package against the library and the CLI.

Run by python/tests/run.sh (ctest: python_api) with SAFEINFER_LIBRARY and SAFEINFER_CLI set to the build's library
and CLI, PYTHONPATH=python and SI_TEST_WORKDIR a scratch folder:
    SAFEINFER_CLI=build/bin/safeinfer PYTHONPATH=python /usr/bin/python3 -m unittest -v python/tests/test_api.py
"""
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import warnings

import numpy as np

import safeinfer

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")
EXAMPLE = os.path.join(ROOT, "examples", "tiny_cnn.onnx")
CLI = os.environ.get("SAFEINFER_CLI", os.path.join(ROOT, "build", "bin", "safeinfer"))
WORK = os.environ.get("SI_TEST_WORKDIR") or tempfile.mkdtemp(prefix="si-py-")
DEVICES = ["REF", "CPU"]
CLI_DEVICES = DEVICES + ["OCL,CPU"]  # OCL where there is an OpenCL device (PoCL), else CPU alone


def data(name):
    return os.path.join(DATA, name)


def rand(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(-2, 2, shape).astype(dtype)
    return rng.integers(-5, 6, shape).astype(dtype)


def image(batch=2, seed=0):
    return rand((batch, 3, 32, 32), seed=seed)


# The test models (tests/data, made by scripts/make_test_models.py) and the bundled example: (file, shapes for the
# session, --shape arguments for the CLI, {input: array}).
def cases():
    x23 = rand((2, 3), seed=1)
    return [
        ("tiny_cnn", EXAMPLE, {"batch": 2}, ["batch=2"], {"image": image(2, seed=3)}),
        ("small", data("small.onnx"), {"batch": 2}, ["batch=2"], {"X": x23}),
        ("small_typed", data("small_typed.onnx"), {"X": [2, 3]}, ["X=2x3"], {"X": x23}),
        ("ext", data("ext.onnx"), {"batch": 2}, ["batch=2"], {"X": x23}),
        ("clip6", data("clip6.onnx"), None, [], {"X": rand((6,), seed=4)}),
        ("clip11", data("clip11.onnx"), None, [], {"X": rand((6,), seed=4)}),
        ("clip13", data("clip13.onnx"), None, [], {"X": rand((6,), seed=4)}),
        ("clip13_int", data("clip13_int.onnx"), None, [], {"X": rand((6,), np.int32, seed=4)}),
        ("constant", data("constant.onnx"), None, [], {"X": x23}),
        ("passthrough", data("passthrough.onnx"), None, [], {"X": rand((2, 2), seed=5)}),
        ("add_dyn", data("add_dyn.onnx"), {"batch": 2, "n": 3}, ["batch=2", "n=3"],
         {"A": x23, "B": rand((3,), seed=6)}),
        ("matmul", data("matmul.onnx"), {"batch": 2}, ["batch=2"], {"X": x23}),
        ("mixed_cumsum", data("mixed_cumsum.onnx"), None, [], {"X": rand((2, 4), seed=7)}),
    ]


def cli_run(model, devices, shape_args, feed, outdir):
    os.makedirs(outdir, exist_ok=True)
    cmd = [CLI, "run", model, "--devices", devices, "--output-dir", outdir]
    for s in shape_args:
        cmd += ["--shape", s]
    for name, arr in feed.items():
        path = os.path.join(outdir, "in_%s.npy" % name)
        np.save(path, arr)
        cmd += ["--input", "%s=%s" % (name, path)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return outdir


def out_file(outdir, name):
    return os.path.join(outdir, "".join("_" if c in "/\\:" else c for c in name) + ".npy")


class Base(unittest.TestCase):
    def assertSame(self, a, b, what=""):
        """Equal dtype, shape and values (NaNs equal)."""
        self.assertEqual(a.dtype, b.dtype, what)
        self.assertEqual(a.shape, b.shape, what)
        self.assertTrue(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), "%s: values differ, largest difference "
                        "%s" % (what, np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))) if a.size else 0))


class TestAgainstCli(Base):
    """Each model through Python gives exactly what `safeinfer run ... --output-dir` writes for the same input."""

    def test_models_equal_cli(self):
        n = 0
        for name, path, shapes, shape_args, feed in cases():
            for dev in CLI_DEVICES:
                with self.subTest(model=name, devices=dev):
                    outdir = cli_run(path, dev, shape_args, feed, os.path.join(WORK, "cli", name + "_" + dev.replace(",", "_")))
                    s = safeinfer.InferenceSession(path, devices=dev, shapes=shapes)
                    outs = s.run(None, feed)
                    self.assertEqual(len(outs), len(s.get_outputs()))
                    for arg, got in zip(s.get_outputs(), outs):
                        self.assertSame(got, np.load(out_file(outdir, arg.name)), "%s %s %s" % (name, dev, arg.name))
                    n += 1
        self.assertEqual(n, len(CLI_DEVICES) * len(cases()))

    def test_model_from_bytes(self):
        with open(EXAMPLE, "rb") as f:
            blob = f.read()
        feed = {"image": image(2, seed=8)}
        ref = safeinfer.InferenceSession(EXAMPLE, devices="REF").run(None, feed)
        for b in (blob, bytearray(blob), memoryview(blob)):
            outs = safeinfer.InferenceSession(b, devices="REF").run(None, feed)
            for r, o in zip(ref, outs):
                self.assertSame(o, r, type(b).__name__)


class TestSession(Base):
    def test_inputs_outputs(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF")
        (i,) = s.get_inputs()
        self.assertEqual((i.name, i.shape, i.type), ("image", ["batch", 3, 32, 32], "tensor(float)"))
        self.assertEqual([(o.name, o.shape, o.type) for o in s.get_outputs()],
                         [("probs", ["batch", 10], "tensor(float)"), ("logits", ["batch", 10], "tensor(float)")])
        self.assertIn("NodeArg(name='image'", repr(i))
        # a dimension with neither value nor name
        z = safeinfer.InferenceSession(data("small.onnx"), devices="REF").get_outputs()[1]
        self.assertEqual((z.name, z.shape), ("Z", [None]))
        t = safeinfer.InferenceSession(data("clip13_int.onnx"), devices="REF").get_inputs()[0]
        self.assertEqual((t.shape, t.type), ([6], "tensor(int32)"))

    def test_shapes_fix_dims(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF", shapes={"batch": 3})
        self.assertEqual(s.get_inputs()[0].shape, [3, 3, 32, 32])
        self.assertEqual(s.get_outputs()[0].shape, [3, 10])
        self.assertEqual(s.run(None, {"image": image(3)})[0].shape, (3, 10))
        with self.assertRaises(safeinfer.InvalidArgument) as c:
            s.run(None, {"image": image(2)})  # batch was fixed to 3
        self.assertIn("image", str(c.exception))
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF", shapes={"image": (1, 3, 32, 32)})
        self.assertEqual(s.get_inputs()[0].shape, [1, 3, 32, 32])
        self.assertEqual(s.run(None, {"image": image(1)})[0].shape, (1, 10))

    def test_open_dims_take_the_array_shape(self):
        """No shapes=: each run passes the array's shape and the outputs come back in the shape the tensors have;
        row i of a batch equals the same image run alone."""
        for dev in DEVICES:
            s = safeinfer.InferenceSession(EXAMPLE, devices=dev)
            x = image(3, seed=9)
            probs3, logits3 = s.run(None, {"image": x})
            self.assertEqual((probs3.shape, logits3.shape), ((3, 10), (3, 10)))
            for b in range(3):
                p1, l1 = s.run(None, {"image": x[b:b + 1]})
                self.assertEqual(p1.shape, (1, 10))
                np.testing.assert_allclose(l1[0], logits3[b], rtol=1e-5, atol=1e-6)
            self.assertEqual(s.run(None, {"image": image(2)})[0].shape, (2, 10))

    def test_output_subset_and_order(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF")
        feed = {"image": image(2, seed=10)}
        probs, logits = s.run(None, feed)
        (only,) = s.run(["logits"], feed)
        self.assertSame(only, logits)
        a, b = s.run(["logits", "probs"], feed)
        self.assertSame(a, logits)
        self.assertSame(b, probs)
        self.assertEqual(len(s.run([], feed)), 2)

    def test_outputs_are_the_callers(self):
        """The returned arrays are copies: the next run (which refreshes the request's tensors) leaves them as they
        were, and writing into them changes nothing in the session."""
        s = safeinfer.InferenceSession(EXAMPLE, devices="CPU")
        first = s.run(None, {"image": image(2, seed=11)})[1]
        keep = first.copy()
        second = s.run(None, {"image": image(2, seed=12)})[1]
        self.assertFalse(np.array_equal(first, second))
        self.assertSame(first, keep)
        self.assertTrue(first.flags.owndata and first.flags.writeable)
        first[:] = 0
        self.assertSame(s.run(None, {"image": image(2, seed=12)})[1], second)

    def test_input_conversions(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF")
        x = image(2, seed=13)
        ref = s.run(None, {"image": x})[1]
        # non-contiguous views are copied
        big = np.zeros((2, 3, 32, 64), np.float32)
        big[..., ::2] = x
        self.assertFalse(big[..., ::2].flags.c_contiguous)
        self.assertSame(s.run(None, {"image": big[..., ::2]})[1], ref)
        fortran = np.asfortranarray(x)
        self.assertSame(s.run(None, {"image": fortran})[1], ref)
        # the other byte order: the same values
        self.assertSame(s.run(None, {"image": x.astype(">f4")})[1], ref)
        # nested lists of Python floats / ints are taken as the model's type
        self.assertSame(s.run(None, {"image": x.tolist()})[1], ref)
        c = safeinfer.InferenceSession(data("clip13_int.onnx"), devices="REF")
        self.assertSame(c.run(None, {"X": [-7, -2, 0, 1, 3, 9]})[0], np.array([-2, -2, 0, 1, 3, 3], np.int32))
        f = safeinfer.InferenceSession(data("clip6.onnx"), devices="REF")
        self.assertSame(f.run(None, {"X": [-3, 0, 1, 5, 2, -1]})[0], np.array([-1, 0, 1, 2, 2, -1], np.float32))

    def test_passthrough_output_is_a_copy_of_the_input(self):
        s = safeinfer.InferenceSession(data("passthrough.onnx"), devices="REF")
        x = rand((2, 2), seed=14)
        y, xo = s.run(None, {"X": x})
        self.assertSame(xo, x)
        self.assertSame(y, np.maximum(x, 0))
        xo[:] = 7
        self.assertFalse(np.array_equal(x, xo))

    def test_report_and_counters(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF")
        self.assertEqual(s.counters(), {"inferences": 0, "failovers": 0, "retries": 0, "failbacks": 0})
        for i in range(3):
            s.run(None, {"image": image(1, seed=i)})
        self.assertEqual(s.counters(), {"inferences": 3, "failovers": 0, "retries": 0, "failbacks": 0})
        r = s.report()
        self.assertEqual(r["devices"], ["REF"])
        self.assertEqual(r["counters"], s.counters())
        self.assertEqual(len(r["submodels"]), 1)
        self.assertEqual(r["submodels"][0]["device"], "REF")
        self.assertIn("Conv", r["submodels"][0]["ops"])
        self.assertEqual([(e["type"], e["to"], e["status"]) for e in r["events"]], [("compile", "REF", "SI_OK")])
        self.assertEqual(s.get_devices(), ["REF"])

    def test_metadata_and_providers(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF,CPU")
        m = s.get_modelmeta()
        self.assertEqual((m.producer_name, m.ir_version, m.opsets), ("safeinfer-example", 8, {"": 14}))
        self.assertIsNone(m.custom_metadata_map)
        self.assertEqual(s.get_providers(), ["REF", "CPU"])
        self.assertEqual(safeinfer.InferenceSession(EXAMPLE).get_providers(), ["AUTO"])  # the library's default

    def test_every_config_key_is_a_keyword(self):
        keys = safeinfer.config_keys()
        for k in ("devices", "threads", "faults", "retries", "infer_timeout_ms", "standby", "strict"):
            self.assertIn(k, keys)
        self.assertEqual(keys["devices"].default, "AUTO")
        # booleans map to on/off, ints to decimal, lists are joined: all accepted by the library
        s = safeinfer.InferenceSession(EXAMPLE, devices=["REF"], threads=2, standby=False, strict=True, retries=1,
                                       recovery_ms=0, check_outputs="nan", infer_timeout_ms=None)
        self.assertEqual(s.get_providers(), ["REF"])
        # the CLI's list of keys is the package's
        r = subprocess.run([CLI, "config", "--list"], capture_output=True, text=True)
        for k in keys:
            self.assertIn("--" + k.replace("_", "-") + " ", r.stdout)

    def test_context_manager_and_close(self):
        with safeinfer.InferenceSession(EXAMPLE, devices="REF") as s:
            s.run(None, {"image": image(1)})
        with self.assertRaises(safeinfer.InvalidArgument):
            s.run(None, {"image": image(1)})
        with self.assertRaises(safeinfer.InvalidArgument):
            s.counters()
        s.close()  # twice is fine
        # sessions dropped without close() are freed by the garbage collector
        for _ in range(20):
            safeinfer.InferenceSession(EXAMPLE, devices="REF").run(None, {"image": image(1)})
        gc.collect()


class TestErrors(Base):
    def check(self, cls, fn, *words):
        with self.assertRaises(cls) as c:
            fn()
        e = c.exception
        self.assertIsInstance(e, safeinfer.Error)
        self.assertEqual(e.status, cls.status)
        self.assertTrue(e.status_name.startswith("SI_ERR_"))
        for w in words:
            self.assertIn(w, str(e))
        return e

    def test_classes(self):
        self.assertTrue(issubclass(safeinfer.InvalidArgument, ValueError))
        self.assertTrue(issubclass(safeinfer.IoError, OSError))
        self.assertTrue(issubclass(safeinfer.NoMemory, MemoryError))
        self.assertTrue(issubclass(safeinfer.DeviceLost, safeinfer.DeviceError))
        self.assertTrue(issubclass(safeinfer.UnknownArgument, TypeError))
        statuses = {c.status for c in (safeinfer.InvalidArgument, safeinfer.NoMemory, safeinfer.IoError,
                                       safeinfer.ParseError, safeinfer.Unsupported, safeinfer.DeviceError,
                                       safeinfer.Aborted, safeinfer.InternalError, safeinfer.DeviceLost)}
        self.assertEqual(statuses, set(range(1, 10)))

    def test_load_errors(self):
        self.check(safeinfer.IoError, lambda: safeinfer.InferenceSession(os.path.join(WORK, "no_such.onnx")),
                   "no_such.onnx")
        self.check(safeinfer.ParseError, lambda: safeinfer.InferenceSession(data("text.onnx")), "text.onnx")
        self.check(safeinfer.ParseError, lambda: safeinfer.InferenceSession(b"\x0a\xff\xff\xff garbage"))
        with open(EXAMPLE, "rb") as f:
            blob = f.read()
        self.check(safeinfer.ParseError, lambda: safeinfer.InferenceSession(blob[:len(blob) // 2]))
        self.check(safeinfer.ParseError, lambda: safeinfer.InferenceSession(data("cycle.onnx")))
        # external data needs a folder: refused for a model given as bytes
        with open(data("ext.onnx"), "rb") as f:
            self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(f.read()), "ext.bin")
        self.check(safeinfer.Unsupported, lambda: safeinfer.InferenceSession(data("unknown_op.onnx"), devices="REF"),
                   "FooBar")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(42))

    def test_the_message_is_the_librarys(self):
        """The message is si_last_error()'s, read on the failing thread: the CLI prints the same one."""
        e = self.check(safeinfer.ParseError, lambda: safeinfer.InferenceSession(data("text.onnx")))
        r = subprocess.run([CLI, "inspect", data("text.onnx")], capture_output=True, text=True)
        self.assertIn(str(e), r.stderr)
        self.assertEqual(e.status_name, "SI_ERR_PARSE")

    def test_keyword_errors(self):
        e = self.check(safeinfer.UnknownArgument,
                       lambda: safeinfer.InferenceSession(EXAMPLE, devices="REF", thread=2), "'thread'")
        for k in safeinfer.config_keys():
            self.assertIn(k, str(e))  # the known keys are listed
        self.assertIsInstance(e, TypeError)
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, threads=0), "threads")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, devices="GPU"), "GPU")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, devices="CPU,CPU"), "CPU")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, faults="OCL.bogus=1"),
                   "bogus")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, standby="maybe"), "standby")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, retries=1.5), "retries")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, shapes={"nodim": 1}),
                   "nodim")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, shapes={"batch": 0}))
        self.check(safeinfer.InvalidArgument,
                   lambda: safeinfer.InferenceSession(EXAMPLE, shapes={"image": [1, 4, 32, 32]}), "image")
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, shapes={"batch": "x"}))
        self.check(safeinfer.InvalidArgument, lambda: safeinfer.InferenceSession(EXAMPLE, on_event=5))

    def test_run_errors(self):
        s = safeinfer.InferenceSession(EXAMPLE, devices="REF")
        x = image(2)
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {}), "missing", "image")
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": x, "extra": x}), "extra")
        self.check(safeinfer.InvalidArgument, lambda: s.run(["nope"], {"image": x}), "nope", "probs")
        # dtypes: arrays must have the model's type; floats are never silently turned into ints
        e = self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": x.astype(np.float64)}),
                       "image", "tensor(double)", "tensor(float)")
        self.assertIsInstance(e, ValueError)
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": x.astype(np.float16)}), "float16")
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": x.astype(np.int64)}), "int64")
        c = safeinfer.InferenceSession(data("clip13_int.onnx"), devices="REF")
        self.check(safeinfer.InvalidArgument, lambda: c.run(None, {"X": np.zeros(6, np.float32)}), "tensor(int32)")
        self.check(safeinfer.InvalidArgument, lambda: c.run(None, {"X": [0.5, 1, 2, 3, 4, 5]}), "tensor(int32)")
        self.check(safeinfer.InvalidArgument, lambda: c.run(None, {"X": [2 ** 40] * 6}), "range")
        self.check(safeinfer.InvalidArgument, lambda: c.run(None, {"X": ["a"] * 6}))
        # rank and fixed dimensions: the library's check, its message
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": x[0]}), "image")
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": x[:, :, :31]}), "image")
        self.check(safeinfer.InvalidArgument, lambda: s.run(None, {"image": np.zeros([1] * 9, np.float32)}))
        # a shape only the inference finds wrong (B must broadcast against A)
        a = safeinfer.InferenceSession(data("add_dyn.onnx"), devices="REF")
        self.check(safeinfer.InvalidArgument,
                   lambda: a.run(None, {"A": rand((2, 3)), "B": rand((2,))}), "add")
        # the session stays usable after each of these
        self.assertEqual(s.run(None, {"image": x})[0].shape, (2, 10))
        self.assertEqual(a.run(None, {"A": rand((2, 3)), "B": rand((3,))})[0].shape, (2, 3))

    def test_device_errors(self):
        x = image(1)
        s = safeinfer.InferenceSession(EXAMPLE, devices="CPU", faults="CPU.infer=1", strict=True)
        self.check(safeinfer.DeviceError, lambda: s.run(None, {"image": x}), "CPU", "injected")
        self.assertEqual(s.run(None, {"image": x})[0].shape, (1, 10))  # the request stays usable
        s = safeinfer.InferenceSession(EXAMPLE, devices="CPU", faults="CPU.infer=1:lost", strict=True)
        e = self.check(safeinfer.DeviceLost, lambda: s.run(None, {"image": x}), "lost")
        self.assertIsInstance(e, safeinfer.DeviceError)
        self.check(safeinfer.DeviceError, lambda: safeinfer.InferenceSession(EXAMPLE, devices="CPU",
                                                                            faults="CPU.compile=always"), "CPU")
        self.check(safeinfer.NoMemory, lambda: safeinfer.InferenceSession(EXAMPLE, devices="CPU", strict=True,
                                                                         faults="CPU.compile=always:oom"))


class TestOrtCompat(Base):
    def test_providers_map(self):
        feed = {"image": image(2, seed=15)}
        ref = safeinfer.InferenceSession(EXAMPLE, devices="CPU").run(None, feed)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the CPU provider needs no warning
            s = safeinfer.InferenceSession(EXAMPLE, providers=["CPUExecutionProvider"])
        self.assertEqual(s.get_providers(), ["CPU"])
        for a, b in zip(s.run(None, feed), ref):
            self.assertSame(a, b)
        with self.assertWarns(safeinfer.CompatWarning) as w:
            s = safeinfer.InferenceSession(EXAMPLE, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        self.assertIn("CUDAExecutionProvider", str(w.warning))
        self.assertEqual(s.get_providers(), ["CPU"])
        # a safeinfer device name works as a provider; devices= wins over providers=
        self.assertEqual(safeinfer.InferenceSession(EXAMPLE, providers=["REF"]).get_providers(), ["REF"])
        with self.assertWarns(safeinfer.CompatWarning):
            s = safeinfer.InferenceSession(EXAMPLE, providers=["CPUExecutionProvider"], devices="REF")
        self.assertEqual(s.get_providers(), ["REF"])
        with self.assertWarns(safeinfer.CompatWarning):
            safeinfer.InferenceSession(EXAMPLE, providers=[("CPUExecutionProvider", {"arena": 1})])
        with self.assertWarns(safeinfer.CompatWarning):
            s = safeinfer.InferenceSession(EXAMPLE, providers=["TensorrtExecutionProvider"])
        self.assertEqual(s.get_providers(), ["AUTO"])

    def test_sess_options_and_run_options(self):
        class Opts:  # what matters of ORT's SessionOptions
            intra_op_num_threads = 2
            graph_optimization_level = 99
        with self.assertWarns(safeinfer.CompatWarning) as w:
            s = safeinfer.InferenceSession(EXAMPLE, Opts(), devices="REF")
        self.assertIn("threads=2", str(w.warning))
        with self.assertWarns(safeinfer.CompatWarning):
            s.run(None, {"image": image(1)}, object())


class TestThreads(Base):
    def test_eight_threads(self):
        """8 threads run one session at once, each its own inputs, 12 times: every output equals the sequential
        run's (each run has its own request; the returned arrays are the caller's)."""
        for dev in DEVICES:
            s = safeinfer.InferenceSession(EXAMPLE, devices=dev)
            inputs = [image(1 + t % 3, seed=100 + t) for t in range(8)]
            expected = [s.run(None, {"image": x}) for x in inputs]
            errors, done = [], []
            barrier = threading.Barrier(8)

            def work(t):
                try:
                    barrier.wait()
                    for _ in range(12):
                        got = s.run(None, {"image": inputs[t]})
                        for g, e in zip(got, expected[t]):
                            if g.shape != e.shape or not np.array_equal(g, e):
                                errors.append("thread %d: output differs" % t)
                    done.append(t)
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append("thread %d: %r" % (t, e))

            threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            self.assertEqual(errors, [], dev)
            self.assertEqual(sorted(done), list(range(8)))
            self.assertEqual(s.counters()["inferences"], 8 + 8 * 12)

    def test_gil_released_during_inference(self):
        """A run blocked inside the library (a hung device, abandoned by the watchdog after 3 s) does not hold the
        GIL: another thread runs Python code and other sessions meanwhile."""
        x = image(1)
        s = safeinfer.InferenceSession(EXAMPLE, devices="CPU,REF", faults="CPU.infer=1:hang",
                                       infer_timeout_ms=3000)
        other = safeinfer.InferenceSession(EXAMPLE, devices="REF")
        result = {}
        th = threading.Thread(target=lambda: result.setdefault("out", s.run(None, {"image": x})))
        th.start()
        time.sleep(0.3)
        n = 0
        while n < 5 and th.is_alive():
            other.run(None, {"image": x})
            n += 1
        self.assertTrue(th.is_alive(), "the hung run finished before the other thread could do anything")
        self.assertEqual(n, 5)
        th.join()
        self.assertSame(result["out"][1], other.run(None, {"image": x})[1])  # re-run on REF after the failover
        self.assertEqual(s.counters()["failovers"], 1)


class TestEvents(Base):
    def test_failover_event(self):
        events, threads, reentry = [], set(), []

        def on_event(e):
            events.append(e)
            threads.add(threading.get_ident())
            if e["type"] == "failover":
                try:
                    s.counters()
                except safeinfer.InvalidArgument as err:
                    reentry.append(str(err))

        x = image(2, seed=20)
        ref = safeinfer.InferenceSession(EXAMPLE, devices="REF").run(None, {"image": x})
        s = safeinfer.InferenceSession(EXAMPLE, devices="CPU,REF", faults="CPU.infer=2", on_event=on_event)
        for i in range(4):
            outs = s.run(None, {"image": x})
            if i == 0:
                self.assertEqual([e["type"] for e in events], ["compile"])
        fo = [e for e in events if e["type"] == "failover"]
        self.assertEqual(len(fo), 1, events)
        e = fo[0]
        self.assertEqual((e["from"], e["to"], e["stage"], e["status"], e["submodel"]),
                         ("CPU", "REF", "infer", "SI_ERR_DEVICE", 0))
        self.assertIn("CPU", e["message"])
        self.assertGreaterEqual(e["t_ms"], 0)
        self.assertEqual(sorted(events[0]), sorted(["type", "t_ms", "submodel", "from", "to", "stage", "status",
                                                    "message"]))
        # the outputs after the failover are REF's
        for a, b in zip(outs, ref):
            self.assertSame(a, b)
        self.assertEqual(s.counters(), {"inferences": 4, "failovers": 1, "retries": 0, "failbacks": 0})
        self.assertEqual(s.get_devices(), ["REF"])
        self.assertEqual(s.get_fallbacks(), ["CPU>REF"])
        r = s.report()
        self.assertEqual([(x["type"], x["from"], x["to"]) for x in r["events"] if x["type"] == "failover"],
                         [("failover", "CPU", "REF")])
        # calling back into the session from the callback is refused, not a deadlock
        self.assertEqual(len(reentry), 1)
        self.assertIn("on_event", reentry[0])

    def test_standby_event_on_a_library_thread(self):
        got = threading.Event()
        seen = []

        def on_event(e):
            seen.append((e["type"], threading.get_ident()))
            if e["type"] == "standby_ready":
                got.set()

        s = safeinfer.InferenceSession(EXAMPLE, devices="CPU,REF", standby=True, on_event=on_event)
        s.run(None, {"image": image(1)})
        self.assertTrue(got.wait(60), seen)
        ready = [t for k, t in seen if k == "standby_ready"]
        self.assertNotEqual(ready[0], threading.get_ident())  # called on the library's background thread
        s.close()
        n = len(seen)
        time.sleep(0.2)
        self.assertEqual(len(seen), n)  # nothing after close

    def test_callback_exception_does_not_break_the_run(self):
        def on_event(e):
            raise RuntimeError("from the callback")
        old = sys.unraisablehook
        caught = []
        sys.unraisablehook = lambda u: caught.append(u.exc_value)
        try:
            s = safeinfer.InferenceSession(EXAMPLE, devices="CPU,REF", faults="CPU.infer=1", on_event=on_event)
            self.assertEqual(s.run(None, {"image": image(1)})[0].shape, (1, 10))
        finally:
            sys.unraisablehook = old
        self.assertTrue(any("from the callback" in str(c) for c in caught), caught)
        self.assertEqual(s.counters()["failovers"], 1)


class TestLibrary(Base):
    def test_library_found(self):
        self.assertTrue(os.path.exists(safeinfer.library_path), safeinfer.library_path)
        self.assertRegex(safeinfer.version, r"^\d+\.\d+\.\d+$")
        r = subprocess.run([CLI, "--version"], capture_output=True, text=True)
        self.assertIn(safeinfer.version, r.stdout)

    def test_library_search(self):
        """$SAFEINFER_LIBRARY wins and a bad one is an ImportError naming it; without it the package finds the build
        tree's library (python/../build/lib) from a checkout."""
        code = "import safeinfer; print(safeinfer.library_path)"
        env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
        env["SAFEINFER_LIBRARY"] = os.path.join(WORK, "no-such-lib.so")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("no-such-lib.so", r.stderr)
        env["SAFEINFER_LIBRARY"] = safeinfer.library_path
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        self.assertEqual(r.stdout.strip(), safeinfer.library_path, r.stderr)
        build_lib = os.path.join(ROOT, "build", "lib", "libsafeinfer.so.0")
        if os.path.exists(build_lib):
            del env["SAFEINFER_LIBRARY"]
            r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), build_lib)
        # a copy of the package with the library beside it loads that one
        pkg = os.path.join(WORK, "pkgcopy")
        shutil.rmtree(pkg, ignore_errors=True)
        shutil.copytree(os.path.join(ROOT, "python", "safeinfer"), os.path.join(pkg, "safeinfer"),
                        ignore=shutil.ignore_patterns("__pycache__", "_config.py"))
        shutil.copy(safeinfer.library_path, os.path.join(pkg, "safeinfer", "libsafeinfer.so.0"))
        env = {k: v for k, v in os.environ.items() if k != "SAFEINFER_LIBRARY"}
        env["PYTHONPATH"] = pkg
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
        self.assertEqual(r.stdout.strip(), os.path.join(pkg, "safeinfer", "libsafeinfer.so.0"), r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
