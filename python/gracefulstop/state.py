"""``State``: one opened gracefulstop state directory, and the functions that open one."""

from __future__ import annotations

import _thread
import ctypes
import os

from . import _ffi
from .errors import InvalidArgumentError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds
if TYPE_CHECKING:  # typing costs milliseconds at import; annotations stay strings
    from collections.abc import Iterable, Iterator
    from typing import Any, Callable, Optional, Union

    Unit = Union[str, bytes]
    _StopReasonTuple = tuple[str, Optional[int], str]
    _ProgressTuple = tuple[int, int, int, int, int]
else:
    _StopReasonTuple = _ProgressTuple = tuple

#: Partition rules: unit i goes to node i mod nodes, or node k gets the k-th contiguous slice.
PARTITIONS = ("round-robin", "block")

_REASONS = {1: "signal", 2: "request", 3: "deadline"}
_BEGIN_OUTCOMES = {0: "begun", 1: "stop", 2: "done", 3: "quarantined", 4: "claimed"}


class StopReason(_StopReasonTuple):
    """Why ``should_stop()`` is true: ``kind`` is "signal", "request" or "deadline"; ``signal`` the
    signal number for kind "signal", else None; ``detail`` a sentence from the library ("received
    SIGUSR1", "stop requested by host:pid ..."). A tuple, written out rather than made with
    namedtuple, which would import collections at ``import gracefulstop``."""

    __slots__ = ()

    def __new__(cls, kind: str, signal: "int | None", detail: str) -> "StopReason":
        return tuple.__new__(cls, (kind, signal, detail))

    @property
    def kind(self) -> str:
        return self[0]

    @property
    def signal(self) -> int | None:
        return self[1]

    @property
    def detail(self) -> str:
        return self[2]

    def __repr__(self) -> str:
        return f"StopReason(kind={self[0]!r}, signal={self[1]!r}, detail={self[2]!r})"

    def __str__(self) -> str:
        return self.detail or self.kind


class Progress(_ProgressTuple):
    """Done and total units of one node (``node``, ``done``, ``total``) and of the whole run
    (``run_done``, ``run_total``); ``remaining`` is this node's units still to do (quarantined
    ones are not). With ``progress(estimate=True)`` (the default) also how long units take and
    when the work will be done, from a sample of the markers, as ``gstop status --json`` has it:
    ``unit_seconds`` ({"p50": s, "p90": s}, or None before any unit recorded its duration),
    ``units_per_hour``, ``eta_seconds`` (this node's), ``run_unit_seconds``, ``run_eta_seconds``,
    ``quarantined`` (the run's quarantined unit names), ``taken`` (this node's units done by workers of
    other shares: balancing) and ``run_taken`` (the run's), and ``status`` (the whole report)."""

    status: dict[str, Any]
    quarantined_here: int
    unit_seconds: dict[str, float] | None
    units_per_hour: float | None
    eta_seconds: float | None
    run_unit_seconds: dict[str, float] | None
    run_eta_seconds: float | None
    quarantined: list[str]
    taken: int
    run_taken: int

    def __new__(cls, node: int, done: int, total: int, run_done: int, run_total: int, status: dict[str, Any] | None = None) -> Progress:
        self = tuple.__new__(cls, (node, done, total, run_done, run_total))
        self.status = status or {}
        mine: dict[str, Any] = next((n for n in self.status.get("nodes", ()) if n.get("node") == node), {})
        self.quarantined_here = mine.get("quarantined", 0)
        self.unit_seconds = mine.get("unit_seconds")
        self.units_per_hour = mine.get("units_per_hour")
        self.eta_seconds = mine.get("eta_seconds")
        self.run_unit_seconds = self.status.get("unit_seconds")
        self.run_eta_seconds = self.status.get("eta_seconds")
        self.quarantined = [q["unit"] for q in self.status.get("quarantined", ())]
        self.taken = mine.get("taken", 0)
        self.run_taken = self.status.get("taken", 0)
        return self

    @property
    def node(self) -> int:
        return self[0]

    @property
    def done(self) -> int:
        return self[1]

    @property
    def total(self) -> int:
        return self[2]

    @property
    def run_done(self) -> int:
        return self[3]

    @property
    def run_total(self) -> int:
        return self[4]

    @property
    def remaining(self) -> int:
        return self[2] - self[1] - self.quarantined_here

    def __repr__(self) -> str:
        return (
            "Progress(node={}, done={}, total={}, run_done={}, run_total={})".format(*self)
            if not self.status
            else (
                "Progress(node={}, done={}, total={}, run_done={}, run_total={}".format(*self)
                + f", unit_seconds={self.unit_seconds!r}, eta_seconds={self.eta_seconds!r}, quarantined={self.quarantined!r})"
            )
        )


def _unit_bytes(unit: Unit) -> bytes:
    if isinstance(unit, bytes):
        return unit
    if isinstance(unit, str):
        # surrogatepass: a str that is not valid Unicode reaches the library, which says so.
        return unit.encode("utf-8", "surrogatepass")
    raise TypeError(f"a unit name is a str or bytes, not {type(unit).__name__}")


_signals_installed = False
_signals_lock = _thread.allocate_lock()


def _signal_array(signals: Iterable[int] | None) -> tuple[ctypes.Array[ctypes.c_int] | None, int]:
    """(array, count) for the C calls; (None, 0) means the configured default signals."""
    if signals is None:
        return None, 0
    numbers = [int(s) for s in signals]
    return (ctypes.c_int * len(numbers))(*numbers), len(numbers)


def install_signals(signals: Iterable[int] | None = None) -> None:
    """Traps the stop signals: ``signals``, else $GRACEFULSTOP_SIGNALS, else SIGUSR1 and SIGTERM.

    The handler records the signal and chains to the one installed before it, so a
    ``signal.signal`` handler you set earlier keeps running. Opening a state calls this once; call
    it again after installing your own handler later (Python's ``signal.signal`` replaces ours).
    """
    global _signals_installed
    with _signals_lock:
        _ffi.lib.gracefulstop_install_signals(*_signal_array(signals))
        _signals_installed = True


def uninstall_signals(signals: Iterable[int] | None = None) -> None:
    """Restores the handlers that were installed before ours (ours only where still installed)."""
    global _signals_installed
    with _signals_lock:
        _ffi.lib.gracefulstop_uninstall_signals(*_signal_array(signals))
        _signals_installed = False


def trapped_signals() -> list[int]:
    """The signals whose handler is gracefulstop's now."""
    buffer = (ctypes.c_int * 64)()
    count = _ffi.lib.gracefulstop_trapped_signals(buffer, 64)
    return list(buffer[:count])


#: The list ``stop_flag()`` returns.
_python_flag: list[int] = [0]


def stop_flag() -> list[int]:
    """The fastest check for a stop from Python: a one-item list whose item becomes the number of
    the stop signal when one arrives. ``if flag[0]:`` costs about as much as one iteration of an
    empty loop (no call into the library)::

        flag = gracefulstop.stop_flag()
        for batch in loader:
            if flag[0]:
                break

    It sees signals only (they are what gstop sends); call ``should_stop()`` now and then for stop
    requests and the deadline. Python runs signal handlers in the main thread, so call this from
    it; a handler you had set is still called.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("gracefulstop.stop_flag() installs a Python signal handler: call it from the main thread")
    _ensure_signals()
    for number in trapped_signals():
        previous = signal.getsignal(number)
        if getattr(previous, "_gracefulstop_flag", False):
            continue

        def record(signum: int, frame: object, previous: object = previous) -> None:
            _python_flag[0] = signum
            if callable(previous):
                previous(signum, frame)

        record._gracefulstop_flag = True  # type: ignore[attr-defined]
        signal.signal(number, record)
    install_signals()  # our C handler on top again: it records the stop and chains to the handler above
    if _ffi.lib.gracefulstop_received_signal():
        _python_flag[0] = _ffi.lib.gracefulstop_received_signal()
    return _python_flag


def received_signal() -> int | None:
    """The last trapped signal that reached this process, or None."""
    return _ffi.lib.gracefulstop_received_signal() or None


def clear_signal() -> None:
    """Forgets a received signal (for a process that goes on after a stop, and for tests)."""
    _ffi.lib.gracefulstop_clear_signal()
    _python_flag[0] = 0


def _ensure_signals() -> None:
    if not _signals_installed:
        install_signals()


class State:
    """An opened state directory: the run's units, this process's node, and the stop check.

    Use ``gracefulstop.create()`` or ``gracefulstop.open()`` to get one. Thread-safe. Closing is
    optional (the handle is released when garbage-collected); ``with`` closes it.
    """

    def __init__(self, handle: ctypes.c_void_p, path: str | None, units: bool = True) -> None:
        self._handle: ctypes.c_void_p | None = handle
        #: The state directory, or None for a handle that only checks signals and the deadline.
        self.path = path
        if path is not None and units:
            node, nodes, count = ctypes.c_int64(), ctypes.c_uint32(), ctypes.c_uint64()
            _ffi.lib.gracefulstop_info(handle, ctypes.byref(node), ctypes.byref(nodes), ctypes.byref(count))
            #: This process's node.
            self.node: int | None = node.value
            #: How many nodes share the run.
            self.nodes: int | None = nodes.value
            #: How many units the run has.
            self.unit_count: int | None = count.value
        else:
            self.node = self.nodes = self.unit_count = None

    def __repr__(self) -> str:
        if self.path is None:
            return "<gracefulstop.State without a state directory>"
        if self.nodes is None:
            return f"<gracefulstop.State {self.path!r} without a unit list (a sweep)>"
        return f"<gracefulstop.State {self.path!r} node {self.node} of {self.nodes}, {self.unit_count} units>"

    def close(self) -> None:
        """Releases the handle. The state on disk is not touched."""
        handle, self._handle = self._handle, None
        if handle:
            _ffi.lib.gracefulstop_close(handle)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _live(self) -> ctypes.c_void_p:
        if not self._handle:
            raise InvalidArgumentError(f"the state {self.path} is closed")
        return self._handle

    # Stopping

    def should_stop(self) -> bool:
        """True once this process should stop: a trapped signal arrived, another process or node
        asked for a stop (checked once per interval, default 1 s), or GRACEFULSTOP_DEADLINE passed.
        Stays true once true. Cheap: call it every iteration."""
        return _ffi.lib.gracefulstop_should_stop(self._handle)

    def stop_reason(self) -> StopReason | None:
        """Why ``should_stop()`` is true, or None while it is not."""
        reason, signal, detail = ctypes.c_int(), ctypes.c_int(), ctypes.c_void_p()
        _ffi.lib.gracefulstop_stop_reason(self._handle, ctypes.byref(reason), ctypes.byref(signal), ctypes.byref(detail))
        text = _ffi.take_string(detail)
        if reason.value == 0:
            return None
        return StopReason(_REASONS.get(reason.value, "unknown"), signal.value or None, text)

    def request_stop(self, reason: str = "request_stop()") -> None:
        """Asks the processes of this job (every node of it, or this array task; everyone outside
        SLURM) to stop through the state directory, and this one at once."""
        _ffi.lib.gracefulstop_request_stop(self._live(), reason.encode())

    def set_check_interval(self, seconds: float) -> None:
        """How often ``should_stop()`` looks at the stop-request file (0: every call)."""
        _ffi.lib.gracefulstop_set_check_interval(self._live(), float(seconds))

    # Units

    def mark_done(self, unit: Unit) -> None:
        """Marks ``unit`` done, durably: once this returns, the mark survives kill -9 and power
        loss. Idempotent. Raises ``UnknownUnitError`` for a unit that is not in the manifest."""
        data = _unit_bytes(unit)
        _ffi.lib.gracefulstop_mark_done(self._live(), data, len(data), None)

    def is_done(self, unit: Unit) -> bool:
        """Whether ``unit`` is done (one stat)."""
        data = _unit_bytes(unit)
        done = ctypes.c_bool()
        _ffi.lib.gracefulstop_is_done(self._live(), data, len(data), ctypes.byref(done))
        return done.value

    def marker_path(self, unit: Unit) -> str:
        """Where ``unit``'s done-marker is: ``STATE/done/<node>/<marker>.done``."""
        data = _unit_bytes(unit)
        path = ctypes.c_void_p()
        _ffi.lib.gracefulstop_marker_path(self._live(), data, len(data), ctypes.byref(path))
        return os.path.join(self.path or "", _ffi.take_string(path))

    def remaining_units(self, node: int | None = None) -> list[str]:
        """The units of ``node`` (default: this process's node) not done yet, in manifest order.
        One directory read, however many units."""
        units = _ffi.UnitList()
        _ffi.lib.gracefulstop_remaining_units(self._live(), _ffi.NODE_DEFAULT if node is None else _node(node), ctypes.byref(units))
        return _ffi.take_unit_list(units)

    def progress(self, node: int | None = None, estimate: bool = True) -> Progress:
        """Done and total units of ``node`` (default: this process's node) and of the whole run,
        and (``estimate``) unit times and the time to finish (see ``Progress``), which reads a
        sample of every node's markers."""
        chosen = (self.node or 0) if node is None else _node(node)  # a sweep's handle has no node: 0, as the library says
        done, total = ctypes.c_uint64(), ctypes.c_uint64()
        _ffi.lib.gracefulstop_counts(self._live(), chosen, ctypes.byref(done), ctypes.byref(total))
        run_done, run_total = ctypes.c_uint64(), ctypes.c_uint64()
        _ffi.lib.gracefulstop_counts(self._live(), _ffi.ALL_NODES, ctypes.byref(run_done), ctypes.byref(run_total))
        return Progress(chosen, done.value, total.value, run_done.value, run_total.value, self.status() if estimate else None)

    def status(self) -> dict[str, Any]:
        """What ``gstop status --json`` prints for this state, as a dict."""
        import json

        text = ctypes.c_void_p()
        _ffi.lib.gracefulstop_status_json(self._live(), ctypes.byref(text))
        report: dict[str, Any] = json.loads(_ffi.take_string(text))
        return report

    def begin(self, unit: Unit, estimate: float | None = None) -> str:
        """Begins ``unit`` for a loop that does not use ``work()``: records the attempt (it counts
        toward the unit's quarantine if this process dies in it) and its start, for the unit's
        duration. The record is an exclusive claim: no other worker begins the unit while this one
        holds it. Returns "begun" (work on it, then ``mark_done``), "stop" (end the loop: a stop is
        due, or the unit's expected time — ``estimate`` seconds, else the p90 of this run's unit
        times — exceeds the time left before GRACEFULSTOP_DEADLINE; ``stop_reason()`` says which),
        "done", "quarantined" or "claimed" (another live worker holds it: skip it)::

            for unit in state.remaining_units():
                outcome = state.begin(unit)
                if outcome == "stop":
                    break
                if outcome == "begun":
                    solve(unit)
                    state.mark_done(unit)
        """
        data = _unit_bytes(unit)
        outcome = ctypes.c_int()
        seconds = -1.0 if estimate is None else float(estimate)
        if estimate is not None and not seconds >= 0:
            raise InvalidArgumentError(f"the estimate for unit {unit!r} must be a number of seconds, 0 or more (got {estimate!r})")
        _ffi.lib.gracefulstop_begin_unit(self._live(), data, len(data), seconds, ctypes.byref(outcome))
        return _BEGIN_OUTCOMES[outcome.value]

    def abandon(self, unit: Unit) -> None:
        """Gives up a unit this process began and will not finish: when a stop is due, its attempt
        is forgotten (a stop is not the unit's fault); otherwise it counts toward quarantine."""
        data = _unit_bytes(unit)
        _ffi.lib.gracefulstop_abandon_unit(self._live(), data, len(data))

    def release(self, unit: Unit) -> bool:
        """Puts a quarantined unit back (as ``gstop release``); returns whether it was quarantined."""
        data = _unit_bytes(unit)
        was = ctypes.c_bool()
        _ffi.lib.gracefulstop_release_unit(self._live(), data, len(data), ctypes.byref(was))
        return was.value

    def run_done(self) -> bool:
        """Whether every unit of the whole run is done; creates ``run.done`` when so."""
        done = ctypes.c_bool()
        _ffi.lib.gracefulstop_run_done(self._live(), ctypes.byref(done))
        return done.value

    def mark_study_done(self, detail: str = "") -> None:
        """Declares a sweep's work complete: writes ``study.done``, so that gstop does not requeue
        and tasks that start later find nothing to do."""
        _ffi.lib.gracefulstop_mark_study_done(self._live(), detail.encode())

    def study_done(self) -> bool:
        """Whether ``study.done`` exists."""
        done = ctypes.c_bool()
        _ffi.lib.gracefulstop_study_done(self._live(), ctypes.byref(done))
        return done.value

    def record_finished(self, count: int = 1, what: str = "trial") -> None:
        """Tells gstop that this process finished ``count`` more pieces of a sweep's work: call it
        with 0 when the sweep starts and with 1 after each finished trial (``gracefulstop.optuna``
        does). gstop then counts an attempt that finished nothing as idle for
        ``--max-idle-attempts``. Does nothing outside gstop."""
        _ffi.lib.gracefulstop_record_finished(self._live(), count, what.encode())

    def work(self, estimate: "float | Callable[[str], float | None] | None" = None, balance: bool | None = None) -> Iterator[str]:
        """The units this process should do, one at a time, ending early once ``should_stop()`` is
        true: this node's remaining units, then — balancing — units of other shares.

        Call ``mark_done(unit)`` when a unit is finished::

            for unit in state.work():
                solve(unit)
                state.mark_done(unit)

        Each unit is begun (see ``begin``): its attempt is recorded as an exclusive claim, so that
        no two workers ever begin one unit, and a unit that kills its worker every time is
        quarantined after GRACEFULSTOP_MAX_UNIT_ATTEMPTS (default 3) attempts while the rest of the
        run goes on; and with a deadline (GRACEFULSTOP_DEADLINE, which gstop sets) a unit is not
        begun when its expected time exceeds the time left — the loop ends instead,
        ``stop_reason()`` says so, and gstop requeues. ``estimate``: seconds a unit takes, or a
        function of the unit giving them (or None), instead of the p90 of this run's units.

        ``balance`` (default: $GRACEFULSTOP_BALANCE, on): once this node's share has nothing left
        to begin, take units of other shares — shares no worker owns (fewer workers than shares),
        then the end of the share with the most left (a slower or later worker's), whose owner
        goes from the front. A worker whose node is beyond the state's shares (more workers than
        shares) only takes over. ``balance=False`` keeps to this node's share. A unit finished
        meanwhile, held by another worker, or quarantined, is skipped. When the loop runs out of
        units, the run is checked for completion, so whichever worker finishes last leaves
        ``run.done``.
        """
        handle = self._live()
        mode = -1 if balance is None else int(bool(balance))
        first = True
        while True:
            pointer, length = ctypes.c_void_p(), ctypes.c_size_t()
            _ffi.lib.gracefulstop_next_unit(handle, mode, first, ctypes.byref(pointer), ctypes.byref(length))
            first = False
            if not pointer.value:
                break
            try:
                unit = ctypes.string_at(pointer.value, length.value).decode("utf-8")
            finally:
                _ffi.lib.gracefulstop_string_free(pointer)
            expected = estimate(unit) if callable(estimate) else estimate
            outcome = self.begin(unit, expected)
            if outcome == "stop":
                return
            if outcome != "begun":
                continue
            try:
                yield unit
            except GeneratorExit:
                # The loop left during this unit (a break on a stop, an exception): unless it was
                # marked done, the attempt is given up (forgotten when a stop is due).
                self.abandon(unit)
                raise
        self.run_done()


def _node(node: int) -> int:
    if isinstance(node, bool) or not isinstance(node, int):
        raise TypeError(f"a node is an int, not {type(node).__name__}")
    if node < 0:
        raise InvalidArgumentError(f"node {node} is out of range: nodes are numbered from 0")
    return node


def _path(path: str | os.PathLike[str]) -> bytes:
    return os.fsencode(os.fspath(path))


def create(
    state_dir: str | os.PathLike[str],
    units: Iterable[Unit],
    nodes: int = 1,
    partition: str = "round-robin",
    *,
    legacy_done_dir: str | os.PathLike[str] | None = None,
    node: int | None = None,
) -> State:
    """Creates the state ``state_dir`` for ``units`` shared by ``nodes`` nodes, or opens it when it
    exists for the same run (so every task may call this at start).

    ``partition`` is "round-robin" (unit i to node i mod nodes) or "block" (contiguous slices).
    ``legacy_done_dir`` is a directory of the old scripts' ``<unit>.done`` files to honour.
    ``node`` defaults to $GRACEFULSTOP_NODE, $SLURM_ARRAY_TASK_ID, under mpirun $OMPI_COMM_WORLD_RANK (``nodes``: the
    rank count), inside an srun step the task's
    $SLURM_PROCID (then ``nodes`` must be the step's task count, e.g. ``int(os.environ["SLURM_NTASKS"])``;
    $GRACEFULSTOP_SHARE=node makes the tasks of a host share its units instead), $SLURM_NODEID, else 0.
    Raises ``StateMismatchError`` when the state exists for a different run.
    """
    encoded = []
    for index, unit in enumerate(units):
        data = _unit_bytes(unit)
        if b"\0" in data:  # the list goes to the library NUL-separated: say it here, in its words
            raise InvalidArgumentError(f"the unit list, unit #{index}: unit name {data[:80]!r} contains a NUL byte at byte {data.index(0)}")
        encoded.append(data)
    blob = b"\0".join(encoded) + b"\0" if encoded else b""
    buffer = ctypes.create_string_buffer(blob, len(blob))
    unit_list = _ffi.UnitList(ctypes.cast(buffer, ctypes.c_void_p), len(blob), len(encoded))
    if isinstance(nodes, bool) or not isinstance(nodes, int) or not 1 <= nodes <= 0xFFFFFFFF:
        raise InvalidArgumentError(f"the node count must be a whole number from 1 (got {nodes!r})")
    handle = ctypes.c_void_p()
    _ffi.lib.gracefulstop_create(
        _path(state_dir),
        ctypes.byref(unit_list),
        nodes,
        partition.encode(),
        None if legacy_done_dir is None else _path(legacy_done_dir),
        _ffi.NODE_DEFAULT if node is None else _node(node),
        ctypes.byref(handle),
    )
    _ensure_signals()
    return State(handle, os.fspath(state_dir))


def open(state_dir: str | os.PathLike[str] | None = None, node: int | None = None) -> State:
    """Opens an existing state. ``state_dir`` None means $GRACEFULSTOP_STATE_DIR; when that is unset
    too, the handle checks signals and the deadline only, and marking units raises.
    ``node`` as for ``create()``. Installs the stop signal handlers (see ``install_signals``)."""
    handle = ctypes.c_void_p()
    _ffi.lib.gracefulstop_open(
        None if state_dir is None else _path(state_dir), _ffi.NODE_DEFAULT if node is None else _node(node), ctypes.byref(handle)
    )
    _ensure_signals()
    path = os.fspath(state_dir) if state_dir is not None else os.environ.get("GRACEFULSTOP_STATE_DIR") or None
    return State(handle, path)


def open_sweep(state_dir: str | os.PathLike[str]) -> State:
    """Opens (creating it if missing) a state directory that need not hold a unit list: a sweep's,
    whose work is a shared study. ``should_stop()`` sees its stop requests, ``mark_study_done()``
    declares the work complete. A directory that does hold a manifest opens as with ``open()``."""
    handle = ctypes.c_void_p()
    _ffi.lib.gracefulstop_open_sweep(_path(state_dir), ctypes.byref(handle))
    _ensure_signals()
    has_units = os.path.exists(os.path.join(os.fspath(state_dir), "manifest.json"))
    return State(handle, os.fspath(state_dir), units=has_units)


def job() -> str | None:
    """This process's SLURM job as stop requests name it ("ARRAYJOBID_TASKID" for an array task,
    else SLURM_JOB_ID), or None outside SLURM."""
    pointer = ctypes.c_void_p()
    _ffi.lib.gracefulstop_job(ctypes.byref(pointer))
    return _ffi.take_string(pointer) or None


def restart_count() -> int:
    """This attempt's restart count: $GRACEFULSTOP_RESTART_COUNT (set by gstop), else
    $SLURM_RESTART_COUNT, else 0."""
    return _ffi.lib.gracefulstop_restart_count()


def resuming() -> bool:
    """Whether this attempt continues work an earlier one began (a restart)."""
    return restart_count() > 0


def marker_name(unit: Unit) -> str:
    """The file name of ``unit``'s done-marker (docs/state-format.md)."""
    data = _unit_bytes(unit)
    name = ctypes.c_void_p()
    _ffi.lib.gracefulstop_marker_name(data, len(data), ctypes.byref(name))
    return _ffi.take_string(name)
