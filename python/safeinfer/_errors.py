"""The exceptions: one class per si_result status, all subclasses of safeinfer.Error."""


class Error(Exception):
    """A safeinfer failure. ``status`` is the library's si_result number (1..9), ``status_name`` its name
    ("SI_ERR_PARSE"), ``message`` the library's message (si_last_error())."""

    status = 0
    status_name = "SI_OK"

    def __init__(self, message, status=None, status_name=None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if status_name is not None:
            self.status_name = status_name


class InvalidArgument(Error, ValueError):
    """The caller's mistake: a bad argument, shape, dtype, missing input, property value (SI_ERR_INVALID_ARG)."""
    status, status_name = 1, "SI_ERR_INVALID_ARG"


class UnknownArgument(InvalidArgument, TypeError):
    """A keyword argument that is neither a configuration key nor one of the session's own (also a TypeError,
    as Python raises for an unexpected keyword argument)."""


class NoMemory(Error, MemoryError):
    """An allocation failed (SI_ERR_NO_MEM)."""
    status, status_name = 2, "SI_ERR_NO_MEM"


class IoError(Error, OSError):
    """A file could not be read or written (SI_ERR_IO)."""
    status, status_name = 3, "SI_ERR_IO"

    def __init__(self, message, status=None, status_name=None):
        Error.__init__(self, message, status, status_name)

    def __str__(self):
        return self.message


class ParseError(Error, ValueError):
    """A model, tensor or .npy file is malformed (SI_ERR_PARSE)."""
    status, status_name = 4, "SI_ERR_PARSE"


class Unsupported(Error):
    """A device or the library cannot do this: op, dtype, attribute (SI_ERR_UNSUPPORTED)."""
    status, status_name = 5, "SI_ERR_UNSUPPORTED"


class DeviceError(Error, RuntimeError):
    """A device tried and failed, every device of the list when failover is on (SI_ERR_DEVICE)."""
    status, status_name = 6, "SI_ERR_DEVICE"


class Aborted(Error):
    """The operation was abandoned (SI_ERR_ABORTED)."""
    status, status_name = 7, "SI_ERR_ABORTED"


class InternalError(Error):
    """A broken invariant inside safeinfer: a bug (SI_ERR_INTERNAL)."""
    status, status_name = 8, "SI_ERR_INTERNAL"


class DeviceLost(DeviceError):
    """A device is gone for good (SI_ERR_DEVICE_LOST); a DeviceError too."""
    status, status_name = 9, "SI_ERR_DEVICE_LOST"


BY_STATUS = {c.status: c for c in (InvalidArgument, NoMemory, IoError, ParseError, Unsupported, DeviceError,
                                   Aborted, InternalError, DeviceLost)}


def for_status(status, message, status_name=None):
    """The exception for an si_result status (an unknown number gives a plain Error)."""
    cls = BY_STATUS.get(status)
    if cls is None:
        return Error(message, status, status_name or "status %d" % status)
    return cls(message, status, status_name)
