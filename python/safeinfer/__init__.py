"""safeinfer for Python: ONNX models on a priority list of devices with failover, through ctypes over the shared
library libsafeinfer.so.0 (no compiler needed), numpy arrays in and out. Shaped like ONNX Runtime's API:

    import safeinfer
    s = safeinfer.InferenceSession("model.onnx", devices="OCL,CPU", threads=2, standby=True)
    s.get_inputs(), s.get_outputs()        # NodeArgs: .name, .shape, .type ("tensor(float)")
    outs = s.run(None, {"x": x})           # a list of numpy arrays (s.run(["probs"], feed) for a subset)
    s.report(), s.counters()               # the JSON report as a dict; inferences, failovers, retries, failbacks

Every configuration key of the library is a keyword argument of InferenceSession (config_keys() lists them);
errors raise Error subclasses, one per status, with the library's message. See help(InferenceSession).
"""
from ._errors import (Error, InvalidArgument, UnknownArgument, NoMemory, IoError, ParseError, Unsupported,
                      DeviceError, DeviceLost, Aborted, InternalError)
from ._lib import LIB as _LIB, LIBRARY_PATH as library_path
from ._session import (InferenceSession, NodeArg, ModelMetadata, ConfigKey, CompatWarning, config_keys)

__version__ = _LIB.si_version(None, None, None).decode()
version = __version__

__all__ = ["InferenceSession", "NodeArg", "ModelMetadata", "ConfigKey", "CompatWarning", "config_keys",
           "library_path", "version", "Error", "InvalidArgument", "UnknownArgument", "NoMemory", "IoError",
           "ParseError", "Unsupported", "DeviceError", "DeviceLost", "Aborted", "InternalError"]
