"""Exceptions raised by gracefulstop: one base class carrying the library's status code and
message, and a subclass per status so callers can catch what they expect."""

from __future__ import annotations


class GracefulStopError(Exception):
    """An error reported by libgracefulstop. ``status`` is the C status code; ``str(error)`` is the
    library's message, which names the path and the problem."""

    status: int = 0

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(GracefulStopError, ValueError):
    """A bad argument: empty or NUL-containing unit name, bad node count, unknown partition rule."""

    status = 1


class UnknownUnitError(GracefulStopError, KeyError):
    """The unit is not in the state's manifest."""

    status = 2


class StateSystemError(GracefulStopError, OSError):
    """A system call failed: missing or unwritable directory, full disk, permission denied."""

    status = 3


class DiskFullError(StateSystemError):
    """A write failed for lack of space or quota on the state's filesystem (ENOSPC, EDQUOT): the
    message names the path and says "no space" or "over quota". Every marker written before is
    intact; free space (or raise the quota) and run again."""

    status = 8


class BadStateError(GracefulStopError):
    """The state on disk is unreadable: truncated or corrupt manifest, unknown format version."""

    status = 4


class StateMismatchError(GracefulStopError):
    """The state exists for a different unit list, node count or partition rule."""

    status = 5


class NodeOutOfRangeError(GracefulStopError, IndexError):
    """A node number outside the state's 0..nodes-1."""

    status = 6


class InternalError(GracefulStopError):
    """A bug in gracefulstop."""

    status = 7


_BY_STATUS = {
    cls.status: cls
    for cls in (
        InvalidArgumentError,
        UnknownUnitError,
        StateSystemError,
        BadStateError,
        StateMismatchError,
        NodeOutOfRangeError,
        InternalError,
        DiskFullError,
    )
}


def error_for_status(status: int, message: str) -> GracefulStopError:
    """The exception for a C status code."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        error = GracefulStopError(message)
        error.status = status
        return error
    return cls(message)
