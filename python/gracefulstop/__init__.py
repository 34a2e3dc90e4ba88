"""gracefulstop: stop Python jobs on SLURM cleanly before their time limit, remember exactly which
units finished, and requeue only when work remains.

The module-level functions work on a default state taken from the environment
($GRACEFULSTOP_STATE_DIR, node from $GRACEFULSTOP_NODE, $SLURM_ARRAY_TASK_ID, an mpirun rank ($OMPI_COMM_WORLD_RANK), the srun task's $SLURM_PROCID,
$SLURM_NODEID, else 0),
opened on first use::

    import gracefulstop

    for unit in gracefulstop.work():      # this node's remaining units; ends early on a stop
        solve(unit)
        gracefulstop.mark_done(unit)      # durable: survives kill -9

The same methods exist on a handle from ``gracefulstop.create(...)`` or ``gracefulstop.open(...)``.
"""

from __future__ import annotations

import _thread
import os as _os

from . import _ffi
from ._ffi import LIBRARY_PATH, VERSION, signal_flag
from .errors import (
    BadStateError,
    DiskFullError,
    GracefulStopError,
    InternalError,
    InvalidArgumentError,
    NodeOutOfRangeError,
    StateMismatchError,
    StateSystemError,
    UnknownUnitError,
)
from .state import (
    PARTITIONS,
    Progress,
    State,
    StopReason,
    clear_signal,
    create,
    install_signals,
    job,
    marker_name,
    open,
    open_sweep,
    received_signal,
    restart_count,
    resuming,
    stop_flag,
    trapped_signals,
    uninstall_signals,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations stay strings
    from collections.abc import Iterator
    from typing import Callable

    from .state import Unit

__version__ = VERSION

__all__ = [
    "LIBRARY_PATH",
    "PARTITIONS",
    "BadStateError",
    "DiskFullError",
    "GracefulStopError",
    "InternalError",
    "InvalidArgumentError",
    "NodeOutOfRangeError",
    "Progress",
    "State",
    "StateMismatchError",
    "StateSystemError",
    "StopReason",
    "UnknownUnitError",
    "abandon",
    "begin",
    "clear_signal",
    "create",
    "default_state",
    "install_signals",
    "is_done",
    "job",
    "mark_done",
    "marker_name",
    "open",
    "open_sweep",
    "progress",
    "received_signal",
    "remaining_units",
    "request_stop",
    "restart_count",
    "resuming",
    "run_done",
    "should_stop",
    "signal_flag",
    "stop_flag",
    "stop_reason",
    "trapped_signals",
    "uninstall_signals",
    "work",
]

_default: State | None = None
_default_lock = _thread.allocate_lock()


def default_state() -> State:
    """The state the module-level functions use: $GRACEFULSTOP_STATE_DIR, opened on first use
    (as a sweep state when it holds no unit list; without the variable, a handle that checks
    signals and the deadline only)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                path = _os.environ.get("GRACEFULSTOP_STATE_DIR")
                has_units = path and _os.path.exists(_os.path.join(path, "manifest.json"))
                _default = open() if not path or has_units else open_sweep(path)
    return _default


def should_stop() -> bool:  # noqa: F811 - rebound below to the library's function after the first call
    """``default_state().should_stop()``: true once a stop signal, stop request or deadline came.

    After its first call, ``gracefulstop.should_stop`` is the library's
    ``gracefulstop_should_stop_default`` itself: no Python frame and no argument for ctypes to
    convert, so the check costs about as much as the emptiest call into the library.
    """
    global should_stop
    _ffi.lib.gracefulstop_set_default(default_state()._handle)
    should_stop = _ffi.lib.gracefulstop_should_stop_default
    return should_stop()


def stop_reason() -> StopReason | None:
    """``default_state().stop_reason()``."""
    return default_state().stop_reason()


def mark_done(unit: Unit) -> None:
    """``default_state().mark_done(unit)``: durably marks the unit done."""
    default_state().mark_done(unit)


def is_done(unit: Unit) -> bool:
    """``default_state().is_done(unit)``."""
    return default_state().is_done(unit)


def remaining_units(node: int | None = None) -> list[str]:
    """``default_state().remaining_units(node)``: this node's units not done yet, in order."""
    return default_state().remaining_units(node)


def request_stop(reason: str = "request_stop()") -> None:
    """``default_state().request_stop(reason)``: asks the processes of this job to stop."""
    default_state().request_stop(reason)


def progress(node: int | None = None) -> Progress:
    """``default_state().progress(node)``."""
    return default_state().progress(node)


def run_done() -> bool:
    """``default_state().run_done()``."""
    return default_state().run_done()


def work(estimate: "float | Callable[[str], float | None] | None" = None, balance: "bool | None" = None) -> Iterator[str]:
    """``default_state().work(estimate, balance)``: this node's remaining units, then (balancing)
    units of other shares, ending early on a stop, and before a unit that could not finish before
    the deadline."""
    return default_state().work(estimate, balance)


def begin(unit: Unit, estimate: float | None = None) -> str:
    """``default_state().begin(unit, estimate)``: "begun", "stop", "done" or "quarantined"."""
    return default_state().begin(unit, estimate)


def abandon(unit: Unit) -> None:
    """``default_state().abandon(unit)``."""
    default_state().abandon(unit)
