"""PyTorch training loops that stop cleanly: DataLoader workers that survive the stop signal, and
ranks of a ``torch.distributed`` job that agree on the step at which they stop.

DataLoader workers. SLURM's time limit, ``scancel`` and gstop's escalation send SIGTERM to the
whole process group, workers included. A worker dies from it (PyTorch's worker handler exits
quietly only for a TERM from its own parent), the loader's SIGCHLD check then raises
"DataLoader worker (pid N) is killed by signal: Terminated" in the middle of a step, and the stop
checkpoint is never written. The warning (SIGUSR1) kills workers forked before gracefulstop trapped
it the same way. One line makes the workers deaf to the stop signals, from their first instruction
on, so the main loop finishes its step, checkpoints and returns; the workers still end when the
loader shuts them down (it sends each a sentinel) or when the main process is gone (their
watchdog), and SIGKILL still ends them::

    loader = DataLoader(dataset, num_workers=4, **gracefulstop.torch.loader_options())
    # spawn, and an init of your own: **gracefulstop.torch.loader_options("spawn", init=my_init)

It sets ``multiprocessing_context`` (the stop signals are blocked while a worker starts, so that a
signal in the seconds a spawned worker takes to import torch waits, and is then ignored) and
``worker_init_fn`` (the worker ignores them). ``worker_init_fn`` alone protects forked workers
from their first step on.

Ranks that agree. In a distributed job every rank must stop at the same step, or the ranks that go
on wait forever in the next collective. ``DistributedStop`` all-reduces the ranks' answers every
``every`` steps and answers False in between, so all ranks see True at the same call::

    stop = gracefulstop.torch.DistributedStop(every=10)
    for step in range(start, steps):
        train_step()
        if stop.should_stop():          # the same answer on every rank, at the same step
            if stop.rank == 0:
                save_checkpoint(step)
            break

Under ``torchrun`` run gstop with ``--child-signal none``: torchrun forwards INT, TERM, HUP and
QUIT to its workers but dies from USR1; the stop request gstop writes into the state reaches every
rank's ``should_stop()`` within the check interval (1 s) instead.

Importing this module does not import torch; the functions import it when called.
"""

from __future__ import annotations

import multiprocessing.context
import signal
from typing import Any, Callable

from . import state as _state

__all__ = ["STOP_SIGNALS", "DistributedStop", "chain_worker_init", "loader_options", "worker_context", "worker_init_fn"]

#: The signals a DataLoader worker ignores: every signal a stop may arrive by.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP)


def worker_init_fn(worker_id: int) -> None:
    """Pass as ``DataLoader(worker_init_fn=...)``: the worker ignores the stop signals (it runs in
    the worker after PyTorch set its own handlers), then lets through those that were held back
    while it started (``worker_context``): they are dropped."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


class _Guarded:
    """Process.start() with the stop signals blocked in the starting thread: the new process
    inherits the mask (across fork, and exec for spawn), so a stop signal sent to the group while it
    starts waits in it until ``worker_init_fn`` ignores it. The starting process gets its own
    signals the moment start() returns."""

    def start(self) -> None:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            super().start()  # type: ignore[misc]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# Module level, so that spawn can pickle the process object by its class's name.
class _GuardedForkProcess(_Guarded, multiprocessing.context.ForkProcess):
    pass


class _GuardedSpawnProcess(_Guarded, multiprocessing.context.SpawnProcess):
    pass


class _GuardedForkContext(multiprocessing.context.ForkContext):
    Process = _GuardedForkProcess


class _GuardedSpawnContext(multiprocessing.context.SpawnContext):
    Process = _GuardedSpawnProcess


def worker_context(method: str | None = None) -> multiprocessing.context.BaseContext:
    """A multiprocessing context for ``DataLoader(multiprocessing_context=...)`` whose workers start
    with the stop signals held back (see ``worker_init_fn``). ``method``: "fork" or "spawn"
    (default: fork, PyTorch's default on Linux)."""
    method = method or "fork"
    if method == "fork":
        return _GuardedForkContext()
    if method == "spawn":
        # Spawned workers' queues start multiprocessing's resource tracker, a process in this
        # group that ignores INT and TERM but dies from USR1 (then "leaked" semaphores and
        # KeyError tracebacks): started here, with the stop signals held back for good.
        from multiprocessing import resource_tracker

        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            resource_tracker.ensure_running()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return _GuardedSpawnContext()
    raise ValueError(f"method must be 'fork' or 'spawn' (got {method!r}; forkserver workers inherit the server's signal mask)")


def loader_options(method: str | None = None, init: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """The DataLoader keyword arguments that keep its workers alive through a stop signal to the
    process group: ``DataLoader(dataset, num_workers=N, **loader_options())``. ``init``: your own
    ``worker_init_fn``, called after gracefulstop's."""
    return {"multiprocessing_context": worker_context(method), "worker_init_fn": chain_worker_init(init) if init else worker_init_fn}


class chain_worker_init:
    """``worker_init_fn`` and then your own ``init(worker_id)``; picklable for spawn when ``init``
    is (a module-level function)."""

    def __init__(self, init: Callable[[int], Any]) -> None:
        self.init = init

    def __call__(self, worker_id: int) -> None:
        worker_init_fn(worker_id)
        self.init(worker_id)


class DistributedStop:
    """``should_stop()`` for the ranks of a ``torch.distributed`` process group: every ``every``-th
    call all-reduces (MAX) each rank's own answer, so that all ranks return True at the same call;
    the calls in between return False without a collective (call it at the same place on every
    rank, once per step). Once True, it stays True.

    ``state``: the gracefulstop state whose ``should_stop()`` is the local answer (default: the
    default state from $GRACEFULSTOP_STATE_DIR). ``group``: the process group (default: the world).
    With ``every=1`` every step is a collective (one tiny all-reduce).
    """

    def __init__(self, every: int = 10, *, state: _state.State | None = None, group: Any = None) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1 (got {every})")
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("DistributedStop needs torch.distributed initialized (init_process_group) first")
        self.every = every
        self.group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self._state = state
        self._calls = 0
        self._stopped = False
        self._reason: str | None = None

    def _local(self) -> bool:
        if self._state is None:
            import gracefulstop

            return gracefulstop.should_stop()
        return self._state.should_stop()

    def should_stop(self) -> bool:
        if self._stopped:
            return True
        self._calls += 1
        if self._calls % self.every:
            return False
        import torch
        import torch.distributed as dist

        # NCCL reduces only tensors on the GPU; gloo (and MPI) on the CPU.
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend(self.group) == "nccl" else torch.device("cpu")
        flag = torch.tensor([1 if self._local() else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group)
        self._stopped = bool(flag.item())
        return self._stopped

    @property
    def calls(self) -> int:
        """How many times ``should_stop()`` was called, up to the call that returned True."""
        return self._calls
