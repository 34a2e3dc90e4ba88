"""A Lightning callback that makes gracefulstop the one owner of the stop and the requeue.

Left to itself under SLURM, Lightning's ``SLURMEnvironment(auto_requeue=True)`` (its default when
it sees SLURM's variables) replaces gracefulstop's signal handlers with its own, so
``should_stop()`` never sees the warning; it runs ``scontrol requeue`` itself, on top of gstop's;
its SIGTERM handler makes the fit loop raise instead of checkpointing; and after ``fit()`` it puts
back the handlers Python knew of before (for USR1: the default, so a late warning kills the
process). With this callback::

    trainer = lightning.Trainer(callbacks=[gracefulstop.lightning.GracefulStop("stop.ckpt")], ...)
    trainer.fit(model, ckpt_path=gracefulstop.lightning.resume_from("stop.ckpt"))

- Lightning's SLURM auto-requeue is switched off (logged once): gstop alone decides on the requeue,
  from the state.
- gracefulstop's handlers are put back after Lightning installs its own, and Lightning is kept
  from restoring anything over them when ``fit()`` ends.
- After each training step, once gracefulstop's ``should_stop()`` is true (a warning, a stop request
  from another node, the deadline), the trainer stops at that step boundary and writes the
  checkpoint; the next attempt's ``fit(ckpt_path=resume_from(path))`` goes on from it.

Importing this module imports Lightning (``lightning``, else ``pytorch_lightning``); importing
``gracefulstop`` does not.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

try:
    import lightning.pytorch as pl
    from lightning.fabric.plugins.environments.slurm import SLURMEnvironment
except ImportError:  # pragma: no cover - the older package name
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef,unused-ignore]
        from lightning_fabric.plugins.environments.slurm import SLURMEnvironment  # type: ignore[assignment,no-redef,unused-ignore]
    except ImportError as error:
        raise ImportError("gracefulstop.lightning needs Lightning: pip install lightning") from error

import gracefulstop

from . import state as _state

__all__ = ["GracefulStop", "resume_from"]

_log = logging.getLogger("gracefulstop.lightning")


def resume_from(checkpoint_path: str | os.PathLike[str]) -> str | None:
    """``checkpoint_path`` when a stop left it (pass it to ``fit(ckpt_path=...)``), else None."""
    path = os.fspath(checkpoint_path)
    return path if os.path.exists(path) else None


class GracefulStop(pl.Callback):
    """Stops the trainer at a step boundary when gracefulstop says so, with a checkpoint at
    ``checkpoint_path``; keeps Lightning's SLURM requeue and signal handlers out of the way.

    ``state``: the gracefulstop state (default: the default state, from $GRACEFULSTOP_STATE_DIR).
    """

    def __init__(self, checkpoint_path: str | os.PathLike[str], state: _state.State | None = None) -> None:
        super().__init__()
        self.checkpoint_path = os.fspath(checkpoint_path)
        self._state = state
        #: Why the trainer was stopped (a ``StopReason``), or None.
        self.stopped: _state.StopReason | None = None
        self._signals: list[int] = []

    def _should_stop(self) -> bool:
        return self._state.should_stop() if self._state is not None else gracefulstop.should_stop()

    def _reason(self) -> _state.StopReason | None:
        return self._state.stop_reason() if self._state is not None else gracefulstop.stop_reason()

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        # Before Lightning registers its handlers (it does so after on_fit_start): without
        # auto-requeue it installs no USR1 handler and never calls scontrol.
        environment = trainer._accelerator_connector.cluster_environment
        if isinstance(environment, SLURMEnvironment) and environment.auto_requeue:
            environment.auto_requeue = False
            _log.info("gracefulstop owns the requeue: Lightning's SLURM auto-requeue is switched off")
        if self._state is None:
            gracefulstop.default_state()  # opens it: its handlers are in place from here on
        _state._ensure_signals()
        self._signals = _state.trapped_signals()

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        # Lightning has just put its SIGTERM handler (which makes the fit loop raise) in place of
        # gracefulstop's. Back to gracefulstop's, chaining to nothing of Lightning's: SIG_IGN first
        # (never the default, not even for an instant), then gracefulstop's on top.
        for number in self._signals:
            signal.signal(number, signal.SIG_IGN)
        _state.install_signals(self._signals or None)
        # Lightning's teardown would put back what Python knew of before fit() (for USR1, the
        # default: a late warning would kill the process). It restores nothing now.
        connector = getattr(trainer, "_signal_connector", None)
        if connector is not None and hasattr(connector, "_original_handlers"):
            connector._original_handlers = {}

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.stopped is not None or not self._should_stop():
            return
        self.stopped = self._reason()
        trainer.should_stop = True
        trainer.save_checkpoint(self.checkpoint_path)
        _log.info(
            "stopped at step %d (%s); checkpoint %s", trainer.global_step, self.stopped.detail if self.stopped else "stop", self.checkpoint_path
        )
