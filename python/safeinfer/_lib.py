"""Finding libsafeinfer.so.0 and declaring the C API of include/safeinfer.h to ctypes.

The library is searched in this order; the first that loads is used:
  1. $SAFEINFER_LIBRARY (a path to the .so; when set, nothing else is tried);
  2. the path `make install` wrote into _config.py beside this file;
  3. this package's folder (a copy of libsafeinfer.so.0 placed next to it);
  4. the source tree's build folder (python/safeinfer/../../build/lib), for running from a checkout;
  5. the system loader (LD_LIBRARY_PATH, ldconfig's cache): "libsafeinfer.so.0".
Every function that returns an si_result raises the matching safeinfer.Error subclass with si_last_error()'s
message, read on the same thread right after the failing call (ctypes' errcheck runs there).
"""
import ctypes
import os

from . import _errors

SONAME = "libsafeinfer.so.0"
ABI_MAJOR = 0  # the SOVERSION this package is written for

# ---- structs (layouts as in include/safeinfer.h) ----------------------------------------------------------
SI_MAX_DIMS = 8


class ValueInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("dtype", ctypes.c_int), ("ndim", ctypes.c_int),
                ("dims", ctypes.c_int64 * SI_MAX_DIMS), ("dim_names", ctypes.c_char_p * SI_MAX_DIMS)]


class ModelSummary(ctypes.Structure):
    _fields_ = [("ir_version", ctypes.c_int64), ("producer", ctypes.c_char_p), ("n_nodes", ctypes.c_int),
                ("n_initializers", ctypes.c_int), ("n_params", ctypes.c_int64), ("param_bytes", ctypes.c_int64)]


class ConfigKeyInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("values", ctypes.c_char_p), ("default_value", ctypes.c_char_p),
                ("doc", ctypes.c_char_p)]


class Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("t_ms", ctypes.c_double), ("submodel", ctypes.c_int),
                ("from_", ctypes.c_char_p), ("to", ctypes.c_char_p), ("stage", ctypes.c_char_p),
                ("status", ctypes.c_int), ("message", ctypes.c_char_p)]


class Counters(ctypes.Structure):
    _fields_ = [("inferences", ctypes.c_int64), ("failovers", ctypes.c_int64), ("retries", ctypes.c_int64),
                ("failbacks", ctypes.c_int64)]


EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(Event), ctypes.c_void_p)

P = ctypes.c_void_p  # every opaque handle
PP = ctypes.POINTER(ctypes.c_void_p)
CHARP = ctypes.c_char_p
I64P = ctypes.POINTER(ctypes.c_int64)
INTP = ctypes.POINTER(ctypes.c_int)

R = "result"  # marks functions returning si_result: errcheck raises on failure
# name: (restype, argtypes)
PROTOTYPES = {
    "si_version": (CHARP, [INTP, INTP, INTP]),
    "si_last_error": (CHARP, []),
    "si_result_str": (CHARP, [ctypes.c_int]),
    "si_dtype_name": (CHARP, [ctypes.c_int]),
    "si_dtype_size": (ctypes.c_size_t, [ctypes.c_int]),
    "si_tensor_create": (R, [ctypes.c_int, ctypes.c_int, I64P, PP]),
    "si_tensor_wrap": (R, [ctypes.c_int, ctypes.c_int, I64P, P, ctypes.c_size_t, PP]),
    "si_tensor_free": (None, [P]),
    "si_tensor_dtype": (ctypes.c_int, [P]),
    "si_tensor_ndim": (ctypes.c_int, [P]),
    "si_tensor_dims": (I64P, [P]),
    "si_tensor_count": (ctypes.c_int64, [P]),
    "si_tensor_nbytes": (ctypes.c_size_t, [P]),
    "si_tensor_data": (P, [P]),
    "si_free_string": (None, [P]),
    "si_model_load": (R, [CHARP, PP]),
    "si_model_load_memory": (R, [P, ctypes.c_size_t, CHARP, PP]),
    "si_model_free": (None, [P]),
    "si_model_num_inputs": (ctypes.c_int, [P]),
    "si_model_num_outputs": (ctypes.c_int, [P]),
    "si_model_input_info": (R, [P, ctypes.c_int, ctypes.POINTER(ValueInfo)]),
    "si_model_output_info": (R, [P, ctypes.c_int, ctypes.POINTER(ValueInfo)]),
    "si_model_input_index": (ctypes.c_int, [P, CHARP]),
    "si_model_output_index": (ctypes.c_int, [P, CHARP]),
    "si_model_set_dim": (R, [P, CHARP, ctypes.c_int64]),
    "si_model_set_input_shape": (R, [P, CHARP, ctypes.c_int, I64P]),
    "si_model_summary_get": (None, [P, ctypes.POINTER(ModelSummary)]),
    "si_model_num_opsets": (ctypes.c_int, [P]),
    "si_model_opset": (None, [P, ctypes.c_int, ctypes.POINTER(CHARP), I64P]),
    "si_model_partition_json": (R, [P, P, ctypes.POINTER(P)]),
    "si_config_num_keys": (ctypes.c_int, []),
    "si_config_key": (R, [ctypes.c_int, ctypes.POINTER(ConfigKeyInfo)]),
    "si_config_create": (R, [PP]),
    "si_config_free": (None, [P]),
    "si_config_set": (R, [P, CHARP, CHARP]),
    "si_config_get": (CHARP, [P, CHARP]),
    "si_event_type_str": (CHARP, [ctypes.c_int]),
    "si_config_set_callback": (R, [P, EVENT_FN, P]),
    "si_compile": (R, [P, P, PP]),
    "si_compiled_free": (None, [P]),
    "si_compiled_num_inputs": (ctypes.c_int, [P]),
    "si_compiled_num_outputs": (ctypes.c_int, [P]),
    "si_compiled_input_name": (CHARP, [P, ctypes.c_int]),
    "si_compiled_output_name": (CHARP, [P, ctypes.c_int]),
    "si_compiled_devices": (CHARP, [P]),
    "si_compiled_counters": (None, [P, ctypes.POINTER(Counters)]),
    "si_compiled_report_json": (R, [P, ctypes.POINTER(P)]),
    "si_request_create": (R, [P, PP]),
    "si_request_free": (None, [P]),
    "si_request_set_input": (R, [P, ctypes.c_int, P]),
    "si_request_infer": (R, [P]),
    "si_request_get_output": (R, [P, ctypes.c_int, PP]),
}


def _candidates():
    here = os.path.dirname(os.path.abspath(__file__))
    env = os.environ.get("SAFEINFER_LIBRARY")
    if env:
        return [("$SAFEINFER_LIBRARY", env)]
    out = []
    try:
        from . import _config  # written by `make install`
        out.append(("installed (_config.py)", _config.LIBRARY))
    except ImportError:
        pass
    out.append(("package folder", os.path.join(here, SONAME)))
    out.append(("build tree", os.path.normpath(os.path.join(here, "..", "..", "build", "lib", SONAME))))
    out.append(("system loader", SONAME))
    return out


def _mapped_path(name):
    """The file the dynamic loader mapped for a library loaded by name (Linux: /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)  # address perms offset dev inode [path]
                if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith("libsafeinfer.so"):
                    return fields[5].strip()
    except OSError:
        pass
    return name


def _errcheck(result, func, args):
    if result != 0:
        msg = LIB.si_last_error()
        msg = msg.decode("utf-8", "replace") if msg else ""
        name = LIB.si_result_str(result)
        raise _errors.for_status(result, msg, name.decode() if name else None)
    return result


def _declare(lib):
    for name, (restype, argtypes) in PROTOTYPES.items():
        fn = getattr(lib, name)  # AttributeError: a library older than this package
        fn.argtypes = argtypes
        if restype == R:
            fn.restype = ctypes.c_int
            fn.errcheck = _errcheck
        else:
            fn.restype = restype


def _load():
    tried = []
    for where, path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append("%s: %s (absent)" % (where, path))
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s: %s (%s)" % (where, path, e))
            continue
        try:
            _declare(lib)
        except AttributeError as e:
            tried.append("%s: %s (lacks %s: an older library?)" % (where, path, e))
            continue
        major = ctypes.c_int()
        lib.si_version(ctypes.byref(major), None, None)
        if major.value != ABI_MAJOR:
            tried.append("%s: %s (version %s; this package needs %d.x)" %
                         (where, path, lib.si_version(None, None, None).decode(), ABI_MAJOR))
            continue
        return lib, (os.path.abspath(path) if os.sep in path else _mapped_path(path))
    raise ImportError("safeinfer: cannot load %s; tried:\n  %s\n(set SAFEINFER_LIBRARY to the library's path, or "
                      "run `make install`)" % (SONAME, "\n  ".join(tried)))


LIB, LIBRARY_PATH = _load()


def string(p):
    """A Python str from a C string (None stays None)."""
    return p.decode("utf-8", "replace") if p is not None else None


def take_string(ptr):
    """A Python str from a char* the library allocated, freed with si_free_string."""
    try:
        return ctypes.string_at(ptr).decode("utf-8", "replace")
    finally:
        LIB.si_free_string(ptr)
