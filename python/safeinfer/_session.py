"""InferenceSession: a compiled model and a pool of requests, shaped like ONNX Runtime's InferenceSession."""
import atexit
import contextlib
import ctypes
import json
import os
import threading
import warnings
import weakref

import numpy as np

from . import _errors
from ._lib import LIB, P, ConfigKeyInfo, Counters, EVENT_FN, ModelSummary, ValueInfo, string, take_string

# ---- element types ---------------------------------------------------------------------------------------
# si_dtype (ONNX TensorProto numbers) -> numpy dtype. bfloat16 (16) travels as its uint16 bit patterns (numpy has
# no bfloat16); string (8) is never stored. The narrow types (17..26: float8, 4-bit, 2-bit; safeinfer.h) travel as the
# library stores them, one byte per element: float codes as uint8, int4/int2 as int8, uint4/uint2 as uint8.
NUMPY_OF = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32, 7: np.int64,
            9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64, 16: np.uint16,
            17: np.uint8, 18: np.uint8, 19: np.uint8, 20: np.uint8, 21: np.uint8, 22: np.int8, 23: np.uint8,
            24: np.uint8, 25: np.uint8, 26: np.int8}
NUMPY_OF = {k: np.dtype(v) for k, v in NUMPY_OF.items()}
ORT_TYPE = {0: "tensor(undefined)", 1: "tensor(float)", 2: "tensor(uint8)", 3: "tensor(int8)", 4: "tensor(uint16)",
            5: "tensor(int16)", 6: "tensor(int32)", 7: "tensor(int64)", 8: "tensor(string)", 9: "tensor(bool)",
            10: "tensor(float16)", 11: "tensor(double)", 12: "tensor(uint32)", 13: "tensor(uint64)",
            16: "tensor(bfloat16)", 17: "tensor(float8e4m3fn)", 18: "tensor(float8e4m3fnuz)",
            19: "tensor(float8e5m2)", 20: "tensor(float8e5m2fnuz)", 21: "tensor(uint4)", 22: "tensor(int4)",
            23: "tensor(float4e2m1)", 24: "tensor(float8e8m0)", 25: "tensor(uint2)", 26: "tensor(int2)"}
_SI_OF_NUMPY = {v: k for k, v in NUMPY_OF.items() if k < 16}


def _ort_type_of_numpy(dt):
    code = _SI_OF_NUMPY.get(dt.newbyteorder("="))
    return ORT_TYPE[code] if code is not None else "numpy %s" % dt


# ---- configuration keys, from the library's table -----------------------------------------------------------
class ConfigKey:
    """One configuration key of the library: name, values (what it takes), default ("" when none), doc."""
    __slots__ = ("name", "values", "default", "doc")

    def __init__(self, name, values, default, doc):
        self.name, self.values, self.default, self.doc = name, values, default, doc

    def __repr__(self):
        return "ConfigKey(%r, values=%r, default=%r)" % (self.name, self.values, self.default)


def _read_keys():
    keys = {}
    info = ConfigKeyInfo()
    for i in range(LIB.si_config_num_keys()):
        LIB.si_config_key(i, ctypes.byref(info))
        k = ConfigKey(string(info.name), string(info.values), string(info.default_value), string(info.doc))
        keys[k.name] = k
    return keys


CONFIG_KEYS = _read_keys()
# the session's own keyword arguments (besides ORT's positional ones); must not collide with configuration keys
SESSION_KWARGS = ("shapes", "on_event")


def config_keys():
    """The library's configuration keys (every one is a keyword argument of InferenceSession): {name: ConfigKey}."""
    return dict(CONFIG_KEYS)


def _property_text(key, value):
    """A keyword argument's value as the library's string: booleans on/off, ints in decimal, device lists joined."""
    if isinstance(value, (bool, np.bool_)):
        return "on" if value else "off"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise _errors.InvalidArgument("%s=%r: expected a string, an int or a bool (the key takes %s)"
                                  % (key, value, CONFIG_KEYS[key].values))


class CompatWarning(UserWarning):
    """An ONNX Runtime argument that safeinfer ignores (providers it has no device for, provider options, ...)."""


def _warn(msg):
    warnings.warn(msg, CompatWarning, stacklevel=4)


def _devices_from_providers(providers, provider_options):
    """ORT's providers list as a device list: CPUExecutionProvider -> CPU; a name that is not an ORT provider is
    taken as a safeinfer device ("OCL", "REF"); other ORT providers are ignored with a warning."""
    if isinstance(providers, str):
        providers = [providers]
    devices, ignored = [], []
    for p in providers:
        name = p[0] if isinstance(p, (tuple, list)) else p
        if not isinstance(name, str):
            raise _errors.InvalidArgument("providers: %r is not a provider name" % (p,))
        if name == "CPUExecutionProvider":
            dev = "CPU"
        elif name.endswith("ExecutionProvider"):
            ignored.append(name)
            continue
        else:
            dev = name
        if dev not in devices:
            devices.append(dev)
    if ignored:
        _warn("safeinfer has no device for %s (ignored); give devices= a safeinfer device list (\"OCL,CPU\")"
              % ", ".join(ignored))
    if provider_options and any(provider_options):
        _warn("provider_options are ignored by safeinfer; use its configuration keys (%s)" % ", ".join(CONFIG_KEYS))
    if any(isinstance(p, (tuple, list)) and len(p) > 1 and p[1] for p in providers):
        _warn("provider options in providers= are ignored by safeinfer")
    return ",".join(devices) if devices else None


# ---- model description ---------------------------------------------------------------------------------------
class NodeArg:
    """An input or output of the model, as ORT's NodeArg: name, shape (a list of ints, with the symbolic name for a
    dimension that is not fixed, or None when it has no name; None for an unknown rank), type ("tensor(float)")."""
    __slots__ = ("name", "shape", "type", "dtype")

    def __init__(self, name, shape, type_, dtype):
        self.name, self.shape, self.type, self.dtype = name, shape, type_, dtype

    def __repr__(self):
        return "NodeArg(name=%r, type=%r, shape=%r)" % (self.name, self.type, self.shape)


def _node_arg(v):
    if v.ndim < 0:
        shape = None
    else:
        shape = [int(v.dims[d]) if v.dims[d] >= 0 else string(v.dim_names[d]) for d in range(v.ndim)]
    return NodeArg(string(v.name), shape, ORT_TYPE.get(v.dtype, "tensor(undefined)"), v.dtype)


class ModelMetadata:
    """What get_modelmeta() returns. safeinfer's C API gives the producer, the IR version and the opsets; ORT's
    graph_name, domain, description, graph_description, version and custom_metadata_map are None (not exposed)."""

    def __init__(self, producer_name, ir_version, opsets, n_nodes, n_parameters):
        self.producer_name = producer_name
        self.ir_version = ir_version
        self.opsets = opsets            # {domain ("" for ONNX): version}
        self.n_nodes = n_nodes
        self.n_parameters = n_parameters
        self.graph_name = self.domain = self.description = self.graph_description = None
        self.version = self.custom_metadata_map = None

    def __repr__(self):
        return "ModelMetadata(producer_name=%r, ir_version=%r, opsets=%r)" % (self.producer_name, self.ir_version,
                                                                               self.opsets)


# ---- the C objects a session owns, freed in order by close() ----------------------------------------------
_tls = threading.local()  # .in_callback: this thread is inside an on_event callback


def _not_in_callback(what):
    if getattr(_tls, "in_callback", False):
        raise _errors.InvalidArgument("%s called from inside an on_event callback: the callback must not call back "
                                      "into the session" % what)


class _Request:
    __slots__ = ("ptr", "tensors", "arrays")

    def __init__(self, ptr):
        self.ptr, self.tensors, self.arrays = ptr, [], []

    def free_tensors(self):
        for t in self.tensors:
            LIB.si_tensor_free(t)
        self.tensors, self.arrays = [], []


class _Handles:
    """The compiled model, its requests (a pool: a run takes a free one or makes one, and gives it back) and the
    ctypes callback, which must outlive the compiled model. Not referring to the session, so that a finalizer can
    close it."""

    def __init__(self):
        self.compiled = None
        self.callback = None
        self.requests = []   # every request made
        self.free = []       # those not in use
        self.cond = threading.Condition()
        self.active = 0
        self.closed = False

    def acquire(self):
        with self.cond:
            if self.closed:
                raise _errors.InvalidArgument("run: the session is closed")
            self.active += 1
            if self.free:
                return self.free.pop()
        try:
            ptr = P()
            LIB.si_request_create(self.compiled, ctypes.byref(ptr))
        except BaseException:
            self.release(None)
            raise
        rq = _Request(ptr)
        with self.cond:
            self.requests.append(rq)
        return rq

    @contextlib.contextmanager
    def held(self, what):
        """Hold the compiled model open (close() waits) for a call `what` that takes no request (and does not come
        from inside an on_event callback); yields the compiled model."""
        _not_in_callback(what)
        with self.cond:
            if self.closed:
                raise _errors.InvalidArgument("%s: the session is closed" % what)
            self.active += 1
        try:
            yield self.compiled
        finally:
            self.release(None)

    def release(self, rq):
        with self.cond:
            if rq is not None:
                self.free.append(rq)
            self.active -= 1
            if self.active == 0:
                self.cond.notify_all()

    def close(self, wait=True):
        """Free the requests, then the compiled model. wait=False (interpreter exit): when runs are still in
        progress (daemon threads), leave everything as it is rather than wait for them."""
        with self.cond:
            if self.closed and not self.compiled:
                return
            self.closed = True
            if self.active and not wait:
                return
            while self.active:
                self.cond.wait()
            compiled, self.compiled = self.compiled, None
            requests, self.requests, self.free = self.requests, [], []
        for rq in requests:
            LIB.si_request_free(rq.ptr)
            rq.free_tensors()
        if compiled:
            LIB.si_compiled_free(compiled)  # no callback after this returns
        self.callback = None


# Sessions still open at interpreter exit are closed then, before the interpreter goes away under the library's
# background threads (which may call an on_event callback).
_live = weakref.WeakSet()


@atexit.register
def _close_all_at_exit():
    for h in list(_live):
        h.close(wait=False)


def _event_dict(e):
    return {"type": string(LIB.si_event_type_str(e.type)), "t_ms": e.t_ms, "submodel": e.submodel,
            "from": string(e.from_) or "", "to": string(e.to) or "", "stage": string(e.stage) or "",
            "status": string(LIB.si_result_str(e.status)), "message": string(e.message) or ""}


def _make_callback(fn):
    def callback(ev, user):
        d = _event_dict(ev.contents)  # the strings are valid only during the call: copied here
        _tls.in_callback = True
        try:
            fn(d)
        finally:
            _tls.in_callback = False
    return EVENT_FN(callback)


# ---- inputs -----------------------------------------------------------------------------------------------
def _as_input(arg, value):
    """The array for one input: the model's dtype exactly for numpy arrays (no silent conversion), lists and Python
    scalars converted when no value changes kind (ints to floats yes, floats to ints no); C-contiguous and aligned
    (copied when not)."""
    want = NUMPY_OF.get(arg.dtype)
    if want is None:
        raise _errors.Unsupported("input '%s': its element type %s cannot be fed from numpy" % (arg.name, arg.type))
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype != want:
            if arr.dtype.newbyteorder("=") == want and arr.dtype.byteorder not in ("=", "|"):
                arr = arr.astype(want)  # the same type in the other byte order: converted exactly
            else:
                raise _errors.InvalidArgument(
                    "input '%s': unexpected data type %s (numpy %s); the model expects %s (numpy %s): convert it, "
                    "e.g. x.astype(numpy.%s)" % (arg.name, _ort_type_of_numpy(arr.dtype), arr.dtype, arg.type, want,
                                                 want.name))
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as e:
            raise _errors.InvalidArgument("input '%s': cannot make an array of %s: %s"
                                          % (arg.name, type(value).__name__, e)) from None
        if arr.dtype == object or arr.dtype.kind in "USV" or not np.can_cast(arr.dtype, want, "same_kind"):
            raise _errors.InvalidArgument("input '%s': %s values (numpy %s) cannot be taken as %s without changing "
                                          "them" % (arg.name, type(value).__name__, arr.dtype, arg.type))
        conv = arr.astype(want)
        if want.kind in "iub" and not np.array_equal(conv, arr):
            raise _errors.InvalidArgument("input '%s': values out of the range of %s" % (arg.name, arg.type))
        arr = conv
    if not (arr.flags.c_contiguous and arr.flags.aligned):
        arr = np.array(arr, order="C", copy=True)
    return arr


def _wrap(arr, code):
    dims = (ctypes.c_int64 * max(arr.ndim, 1))(*arr.shape)
    t = P()
    LIB.si_tensor_wrap(code, arr.ndim, dims, ctypes.c_void_p(arr.ctypes.data), arr.nbytes, ctypes.byref(t))
    return t


def _output_array(t):
    code = LIB.si_tensor_dtype(t)
    dt = NUMPY_OF.get(code)
    if dt is None:
        raise _errors.Unsupported("an output has element type %s, which numpy cannot hold"
                                  % string(LIB.si_dtype_name(code)))
    nd = LIB.si_tensor_ndim(t)
    dims = LIB.si_tensor_dims(t)
    shape = tuple(int(dims[i]) for i in range(nd))
    arr = np.empty(shape, dt)
    nbytes = LIB.si_tensor_nbytes(t)
    if nbytes != arr.nbytes:
        raise _errors.InternalError("an output holds %d bytes for shape %s of %s" % (nbytes, shape, dt))
    if nbytes:
        ctypes.memmove(arr.ctypes.data, LIB.si_tensor_data(t), nbytes)
    return arr


# ---- the session ------------------------------------------------------------------------------------------
class InferenceSession:
    """A model compiled for a device list, run like ONNX Runtime's InferenceSession.

    InferenceSession(path_or_bytes, sess_options=None, providers=None, provider_options=None, *,
                     shapes=None, on_event=None, **properties)

    path_or_bytes  a model file (str or os.PathLike) or its bytes (bytes, bytearray, memoryview).
    properties     every configuration key of the library is a keyword argument (see safeinfer.config_keys() or
                   `safeinfer config --list`): devices="OCL,CPU" (default the library's, AUTO), threads=2,
                   standby=True, faults="CPU.infer=2", retries=1, ... Booleans become on/off, ints decimal, a list of
                   device names is joined with commas; None leaves the key at its default.
    shapes         fixes open dimensions before compiling: {"batch": 1} (a symbolic dimension, wherever it appears)
                   or {"image": [1, 3, 224, 224]} (one input's whole shape), as the CLI's --shape.
    on_event       fn(dict) called for each event (compile, failover, retry, quarantine, standby_ready, failback,
                   all_failed) with type, t_ms, submodel, from, to, stage, status, message. The library calls it on
                   its own threads, possibly several at once: it must be thread-safe and must not call back into the
                   session (run, report, counters, close raise InvalidArgument there).
    providers      ORT's list: CPUExecutionProvider -> CPU, a safeinfer device name is taken as one, other ORT
                   providers are ignored with a CompatWarning. devices= wins over it.
    provider_options, sess_options   ignored with a CompatWarning (sess_options.intra_op_num_threads > 0 sets
                   threads unless threads= is given).

    run() may be called from several threads at once; each run uses its own request, and the arrays it returns are
    the caller's. Errors raise safeinfer.Error subclasses carrying the library's message.
    """

    def __init__(self, path_or_bytes, sess_options=None, providers=None, provider_options=None, **kwargs):
        self._h = _Handles()
        _live.add(self._h)
        self._finalizer = weakref.finalize(self, self._h.close)
        self._finalizer.atexit = False  # _close_all_at_exit does it, without waiting for daemon threads
        shapes = kwargs.pop("shapes", None)
        on_event = kwargs.pop("on_event", None)
        unknown = [k for k in kwargs if k not in CONFIG_KEYS]
        if unknown:
            raise _errors.UnknownArgument(
                "InferenceSession: unknown keyword argument%s %s; known: %s" %
                ("s" if len(unknown) > 1 else "", ", ".join(repr(k) for k in unknown),
                 ", ".join(list(CONFIG_KEYS) + list(SESSION_KWARGS) + ["providers", "provider_options",
                                                                         "sess_options"])))
        props = {k: v for k, v in kwargs.items() if v is not None}
        if providers is not None and "devices" not in props:
            devices = _devices_from_providers(providers, provider_options)
            if devices:
                props["devices"] = devices
        elif providers is not None:
            _warn("providers= is ignored: devices=%r is given" % props["devices"])
        elif provider_options:
            _warn("provider_options are ignored by safeinfer")
        if sess_options is not None:
            n = getattr(sess_options, "intra_op_num_threads", 0)
            if isinstance(n, int) and n > 0 and "threads" not in props:
                props["threads"] = n
            _warn("sess_options is ignored by safeinfer%s; use its configuration keys as keyword arguments"
                  % (" except intra_op_num_threads (threads=%d)" % n if isinstance(n, int) and n > 0 else ""))
        if on_event is not None and not callable(on_event):
            raise _errors.InvalidArgument("on_event must be callable, not %s" % type(on_event).__name__)

        model = P()
        cfg = P()
        try:
            self._load(path_or_bytes, model)
            self._apply_shapes(model, shapes)
            self._describe(model)
            LIB.si_config_create(ctypes.byref(cfg))
            for k, v in props.items():
                LIB.si_config_set(cfg, k.encode(), _property_text(k, v).encode())
            dev = LIB.si_config_get(cfg, b"devices")
            self._providers = (string(dev) if dev else CONFIG_KEYS["devices"].default or "AUTO").split(",")
            if on_event is not None:
                self._h.callback = _make_callback(on_event)
                LIB.si_config_set_callback(cfg, self._h.callback, None)
            compiled = P()
            LIB.si_compile(model, cfg, ctypes.byref(compiled))
            self._h.compiled = compiled
        finally:
            LIB.si_config_free(cfg)
            LIB.si_model_free(model)
        self._plan = (string(LIB.si_compiled_devices(self._h.compiled)) or "").split(",")

    # -- construction -----------------------------------------------------------------------------------------
    @staticmethod
    def _load(src, model):
        if isinstance(src, (bytes, bytearray, memoryview)):
            buf = np.frombuffer(src, dtype=np.uint8)  # no copy; the library copies what it keeps
            LIB.si_model_load_memory(ctypes.c_void_p(buf.ctypes.data), buf.nbytes, None, ctypes.byref(model))
        elif isinstance(src, (str, os.PathLike)):
            LIB.si_model_load(os.fsencode(src), ctypes.byref(model))
        else:
            raise _errors.InvalidArgument("InferenceSession: expected a model path or the model's bytes, not %s"
                                          % type(src).__name__)

    @staticmethod
    def _apply_shapes(model, shapes):
        if not shapes:
            return
        if not isinstance(shapes, dict):
            raise _errors.InvalidArgument("shapes: expected a dict such as {'batch': 1} or {'x': [1, 3, 224, 224]}")
        for name, value in shapes.items():
            if isinstance(value, (bool, np.bool_)) or not isinstance(name, str):
                raise _errors.InvalidArgument("shapes: %r: %r is neither a dimension nor a shape" % (name, value))
            if isinstance(value, (int, np.integer)):
                LIB.si_model_set_dim(model, name.encode(), int(value))
            elif isinstance(value, (list, tuple)) and all(isinstance(d, (int, np.integer)) and
                                                          not isinstance(d, bool) for d in value):
                dims = (ctypes.c_int64 * max(len(value), 1))(*value)
                LIB.si_model_set_input_shape(model, name.encode(), len(value), dims)
            else:
                raise _errors.InvalidArgument("shapes: %r: %r is neither a dimension (an int) nor a shape (a list of "
                                              "ints)" % (name, value))

    def _describe(self, model):
        v = ValueInfo()
        self._inputs, self._outputs = [], []
        for i in range(LIB.si_model_num_inputs(model)):
            LIB.si_model_input_info(model, i, ctypes.byref(v))
            self._inputs.append(_node_arg(v))
        for i in range(LIB.si_model_num_outputs(model)):
            LIB.si_model_output_info(model, i, ctypes.byref(v))
            self._outputs.append(_node_arg(v))
        self._input_index = {a.name: i for i, a in enumerate(self._inputs)}
        self._output_index = {a.name: i for i, a in enumerate(self._outputs)}
        s = ModelSummary()
        LIB.si_model_summary_get(model, ctypes.byref(s))
        opsets = {}
        dom, ver = ctypes.c_char_p(), ctypes.c_int64()
        for i in range(LIB.si_model_num_opsets(model)):
            LIB.si_model_opset(model, i, ctypes.byref(dom), ctypes.byref(ver))
            opsets[string(dom.value) or ""] = ver.value
        self._meta = ModelMetadata(string(s.producer) or "", s.ir_version, opsets, s.n_nodes, s.n_params)

    # -- ORT's API ----------------------------------------------------------------------------------------------
    def get_inputs(self):
        """The model's inputs (graph inputs that are not initializers), as NodeArgs, after shapes= is applied."""
        return list(self._inputs)

    def get_outputs(self):
        """The model's outputs as NodeArgs (shapes as inferred at load; run() returns the actual ones)."""
        return list(self._outputs)

    def get_modelmeta(self):
        return self._meta

    def get_providers(self):
        """The device list the session was compiled for ("AUTO" when it was the default)."""
        return list(self._providers)

    def get_devices(self):
        """The device each submodel runs on now, in submodel order (it changes after a failover or fail-back)."""
        return [sub["device"] for sub in self.report()["submodels"]]

    def get_fallbacks(self):
        """Each submodel's devices in the order it tries them (["OCL>CPU", "CPU"]), as si_compiled_devices says."""
        return list(self._plan)

    def run(self, output_names, input_feed, run_options=None):
        """Run the model: output_names None (or empty) for every output, or a list of names; input_feed a dict
        {input name: numpy array (or a list / scalar)} with every input. Returns a list of new numpy arrays, one
        per requested output, in the order asked for."""
        _not_in_callback("run")
        if run_options is not None:
            _warn("run_options is ignored by safeinfer")
        if not isinstance(input_feed, dict):
            raise _errors.InvalidArgument("run: input_feed must be a dict {input name: array}")
        if output_names:
            if isinstance(output_names, str):
                output_names = [output_names]
            try:
                outs = [self._output_index[n] for n in output_names]
            except KeyError as e:
                raise _errors.InvalidArgument("run: %r is not an output of the model (outputs: %s)" %
                                              (e.args[0], ", ".join(a.name for a in self._outputs))) from None
        else:
            outs = list(range(len(self._outputs)))
        for name in input_feed:
            if name not in self._input_index:
                raise _errors.InvalidArgument("run: %r is not an input of the model (inputs: %s)" %
                                              (name, ", ".join(a.name for a in self._inputs)))
        missing = [a.name for a in self._inputs if a.name not in input_feed]
        if missing:
            raise _errors.InvalidArgument("run: missing input%s %s (the model's inputs: %s)" %
                                          ("s" if len(missing) > 1 else "", ", ".join(repr(n) for n in missing),
                                           ", ".join(a.name for a in self._inputs)))
        arrays = [_as_input(a, input_feed[a.name]) for a in self._inputs]

        rq = self._h.acquire()
        try:
            new = []
            try:
                for i, (a, arr) in enumerate(zip(self._inputs, arrays)):
                    new.append(_wrap(arr, a.dtype))
                    LIB.si_request_set_input(rq.ptr, i, new[-1])
            except BaseException:
                # the request may hold some of the new tensors and some of the old ones: keep both alive
                rq.tensors.extend(new)
                rq.arrays.extend(arrays)
                raise
            rq.free_tensors()  # every input is bound to a new tensor now
            rq.tensors, rq.arrays = new, arrays
            LIB.si_request_infer(rq.ptr)
            result = []
            for o in outs:
                t = P()
                LIB.si_request_get_output(rq.ptr, o, ctypes.byref(t))
                result.append(_output_array(t))
            return result
        finally:
            self._h.release(rq)

    # -- safeinfer's own --------------------------------------------------------------------------------------
    def report(self):
        """The report as a dict: devices, submodels (id, ops, device, attempts), events, counters."""
        with self._h.held("report") as compiled:
            p = P()
            LIB.si_compiled_report_json(compiled, ctypes.byref(p))
            return json.loads(take_string(p))

    def counters(self):
        """{"inferences", "failovers", "retries", "failbacks"} so far."""
        with self._h.held("counters") as compiled:
            c = Counters()
            LIB.si_compiled_counters(compiled, ctypes.byref(c))
        return {"inferences": c.inferences, "failovers": c.failovers, "retries": c.retries, "failbacks": c.failbacks}

    def close(self):
        """Free the compiled model and its requests (waits for runs in progress). Also done when the session is
        garbage-collected and at interpreter exit."""
        _not_in_callback("close")
        self._finalizer()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "InferenceSession(inputs=%s, outputs=%s, devices=%r)" % (
            [a.name for a in self._inputs], [a.name for a in self._outputs], ",".join(self._plan))
