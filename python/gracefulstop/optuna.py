"""One Optuna study shared by many SLURM tasks (the seed's "sweeps" script), stopped between trials,
finished at exactly ``n_trials``, with a study-level done marker that ends the requeues.

    import gracefulstop.optuna as gso

    study = gso.load_or_create_study("sweep", "journal:/shared/sweep/optuna.log", direction="minimize")
    result = gso.optimize(study, objective, n_trials=200)

Stopping. A warning (SIGUSR1 from gstop, a stop request, GRACEFULSTOP_DEADLINE) lets the running
trial finish; the loop then ends before asking for another. SIGTERM (the time limit, gstop's
escalation, scancel) interrupts the running trial: it is recorded as FAIL (never left RUNNING, the
zombie trials of optuna issue #3215) and its parameters are enqueued so that a worker tries them
again after the requeue. A trial left RUNNING by a process that was killed outright (kill -9, a node
failure) is found and handled the same way when its task's next attempt starts.

Exactly n_trials. Optuna's MaxTrialsCallback counts finished trials after each trial, so workers
that start trials at the same time overshoot by up to the number of workers (optuna issue #3518).
Here each trial, right after ``ask()``, counts the trials with a lower number that are finished or
running; trial numbers are assigned by the storage one at a time, so every worker sees the same
order. When ``n_trials`` are already finished or running, the new trial is a *surplus* trial: it is
recorded as FAIL with the user attribute ``gracefulstop:surplus`` (never counted) and the worker stops.
Finished means COMPLETE or PRUNED (and FAIL with ``count_failed=True``). If a running trial later
fails, a worker that is still running fills its place.

Done. When the study has its trials, ``study.done`` is written into the gracefulstop state:
``gstop run`` then does not requeue, and a task that starts later returns at once without a trial.

Storage. For many nodes on a shared filesystem (NFS, Lustre) use Optuna's journal file storage
(``journal:PATH``): it needs no fcntl locks. SQLite (``sqlite:///PATH``) is for one node only: on
NFS it fails with "database is locked" and corrupted files (optuna issues #820, #815, #6036). A
database server works from every node: ``postgresql+psycopg2://USER@HOST:PORT/DB`` (with
``pip install psycopg2-binary``; SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3) or
``mysql+pymysql://...``. Workers that start together on an empty database all try to create
Optuna's tables, and all but one failed with "duplicate key ... pg_type_typname_nsp_index" (the
``CREATE TYPE studydirection`` race); ``storage()`` retries that creation until it sees the
tables.

Requires ``pip install "./python[optuna]"``; the core package has no dependency on Optuna.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable, NamedTuple

try:
    import optuna
    from optuna.trial import FrozenTrial, Trial, TrialState
except ImportError as error:  # pragma: no cover - exercised by users without the extra
    raise ImportError('gracefulstop.optuna needs Optuna: pip install "./python[optuna]" (or pip install optuna)') from error

from . import state as _state
from .state import State, StopReason

__all__ = [
    "ATTEMPT",
    "INTERRUPTED",
    "OWNER",
    "SURPLUS",
    "SweepResult",
    "TrialInterrupted",
    "load_or_create_study",
    "optimize",
    "storage",
]

#: User attributes gracefulstop sets on trials.
SURPLUS = "gracefulstop:surplus"  # a trial asked for when the study was already full; never counted
INTERRUPTED = "gracefulstop:interrupted"  # a trial stopped by a signal (its params were enqueued: see RETRY_OF)
OWNER = "gracefulstop:owner"  # which task ran it ("JOB/NODE")
ATTEMPT = "gracefulstop:attempt"  # which attempt of that task (its restart count; absent: the first, 0)
RETRY_OF = "gracefulstop:retry_of"  # on an enqueued trial: the number of the trial it repeats

_log = logging.getLogger("gracefulstop.optuna")


class TrialInterrupted(BaseException):
    """Raised inside the objective by SIGTERM (a BaseException, so ``except Exception`` in user code
    does not swallow it)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"trial interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


class SweepResult(NamedTuple):
    """What one call of ``optimize`` did."""

    #: Trials this process finished (any final state, surplus excluded).
    ran: int
    #: Finished trials in the whole study when the call returned (as counted for n_trials).
    finished: int
    #: Whether the study has its n_trials (and study.done was written).
    done: bool
    #: Why the loop stopped early, if it did.
    stopped: StopReason | None


# The tuple's generated constructor belongs to no module; its annotations (strings, PEP 563) are
# read in this one's names (documentation tools resolve them there).
SweepResult.__new__.__module__ = __name__


def storage(spec: str) -> "optuna.storages.BaseStorage":
    """An Optuna storage from a string: ``journal:PATH`` (or a path ending in .log or .journal) is a
    journal file storage, for many nodes on a shared filesystem; anything else is a database URL
    (``sqlite:///PATH`` for one node, ``postgresql+psycopg2://...`` for many), whose tables are
    created safely when many workers start together on an empty database."""
    path = spec[len("journal:") :] if spec.startswith("journal:") else spec
    if spec.startswith("journal:") or (":" not in spec and spec.endswith((".log", ".journal"))):
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        return optuna.storages.JournalStorage(JournalFileBackend(path))
    return _database_storage(spec)


#: How often to try creating Optuna's tables while other workers create them too.
_TABLE_CREATION_ATTEMPTS = 10


def _database_storage(url: str) -> "optuna.storages.RDBStorage":
    """RDBStorage(url), tried again when another worker was creating the same tables at that moment:
    PostgreSQL then fails the loser's CREATE TYPE/TABLE or version row with a duplicate key (or
    "already exists"), after which the tables are there and the next try only checks them."""
    import sqlalchemy.exc

    delay = 0.05
    for attempt in range(1, _TABLE_CREATION_ATTEMPTS + 1):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            racing = isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error)
            if not racing or attempt == _TABLE_CREATION_ATTEMPTS:
                raise
            _log.info("another worker is creating Optuna's tables in %s (%s); trying again", _redacted(url), type(error.orig).__name__)
            time.sleep(delay * (1 + random.random()))  # jitter: the workers started together
            delay = min(delay * 2, 1.0)
        except ImportError as error:  # Optuna wraps the driver's ModuleNotFoundError
            missing = error.__cause__ if isinstance(error.__cause__, ImportError) else error
            if url.startswith("postgresql://") and missing.name == "psycopg":
                raise ModuleNotFoundError(
                    f"{_redacted(url)}: SQLAlchemy reads postgresql:// as psycopg 3, which is not installed; write "
                    "postgresql+psycopg2:// (pip install psycopg2-binary) or pip install psycopg",
                    name=missing.name,
                ) from error
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def load_or_create_study(study_name: str, storage_spec: str | optuna.storages.BaseStorage, **create_options: Any) -> optuna.Study:
    """The study named ``study_name``: created on the first attempt, loaded (with all its trials) on
    restarts and by every other task. ``create_options`` go to ``optuna.create_study`` (direction,
    sampler, pruner, ...)."""
    resolved = storage(storage_spec) if isinstance(storage_spec, str) else storage_spec
    return optuna.create_study(study_name=study_name, storage=resolved, load_if_exists=True, **create_options)


def _owner(state: State) -> str:
    job = _state.job() or "local"
    return f"{job}/{state.node if state.node is not None else os.environ.get('GRACEFULSTOP_NODE', '0')}"


def _counted_states(count_failed: bool) -> tuple[TrialState, ...]:
    return (TrialState.COMPLETE, TrialState.PRUNED) + ((TrialState.FAIL,) if count_failed else ())


def _replaced(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of trials that never count: surplus trials, and trials whose place (and parameters)
    went to a retry."""
    return {t.number for t in trials if t.user_attrs.get(SURPLUS)} | {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}


def _finished(trials: Sequence[FrozenTrial], counted: tuple[TrialState, ...]) -> int:
    replaced = _replaced(trials)
    return sum(1 for t in trials if t.state in counted and t.number not in replaced)


def _taken_before(trials: Sequence[FrozenTrial], number: int, counted: tuple[TrialState, ...]) -> int:
    """Trials numbered below `number` that hold a place: finished, or running."""
    replaced = _replaced(trials)
    return sum(1 for t in trials if t.number < number and t.number not in replaced and (t.state in counted or t.state == TrialState.RUNNING))


class _Tally:
    """``_finished`` and ``_taken_before`` kept up to date as the study grows, at a cost per trial
    that does not grow with the study: the trials are read in bulk once, then only those not seen
    yet (by number) and those not yet in a final state (RUNNING, WAITING) are read again, one by
    one. Re-reading every trial on every ``ask()`` made a trial 3.8× plain Optuna's at 16,000 trials.

    A trial's place in the count only changes while it is open: COMPLETE, PRUNED and FAIL are
    final, and the attributes that replace a trial are set while it is open (SURPLUS) or on the new
    trial that takes its place (RETRY_OF). Places are kept in a Fenwick tree over trial numbers, so
    "taken below number N" is a prefix sum.
    """

    def __init__(self, study: optuna.Study, counted: tuple[TrialState, ...]) -> None:
        self._storage, self._study_id, self._counted = study._storage, study._study_id, counted
        self._state: dict[int, TrialState] = {}  # number -> the last state seen
        self._replaced: set[int] = set()  # numbers that never count
        self._open: dict[int, int] = {}  # number -> trial id, for trials not in a final state
        self._next = 0  # every number below was seen
        self._tree = [0]  # Fenwick tree of "holds a place" over numbers (1-based)
        self._holds: list[int] = []  # number -> 0/1, what the tree holds for it
        self._counts: set[int] = set()  # numbers that count as finished
        self.finished = 0  # len(self._counts): counted states, not replaced
        for trial in study.get_trials(deepcopy=False):  # once, in bulk
            self._see(trial)
        self._next = len(self._state)

    def _hold(self, number: int, value: int) -> None:
        while len(self._holds) <= number:
            self._holds.append(0)
            self._tree.append(0)
            index = len(self._tree) - 1  # a new node covers (index - lowbit(index), index]
            low = index & -index
            self._tree[index] = sum(self._holds[index - low : index - 1])
        change = value - self._holds[number]
        if change:
            self._holds[number] = value
            index = number + 1
            while index < len(self._tree):
                self._tree[index] += change
                index += index & -index

    def _place(self, number: int) -> None:
        """Recomputes what `number` contributes, after its state or its replacement changed."""
        state = self._state.get(number)
        counts = state in self._counted and number not in self._replaced
        self._hold(number, 1 if number not in self._replaced and (state in self._counted or state == TrialState.RUNNING) else 0)
        if counts and number not in self._counts:
            self._counts.add(number)
        elif not counts and number in self._counts:
            self._counts.discard(number)
        self.finished = len(self._counts)

    def _see(self, trial: FrozenTrial) -> None:
        number = trial.number
        self._state[number] = trial.state
        if trial.state in (TrialState.RUNNING, TrialState.WAITING):
            self._open[number] = trial._trial_id
        else:
            self._open.pop(number, None)
        if trial.user_attrs.get(SURPLUS) and number not in self._replaced:
            self._replaced.add(number)
        retry_of = trial.user_attrs.get(RETRY_OF)
        if retry_of is not None and retry_of not in self._replaced:
            self._replaced.add(retry_of)
            self._place(retry_of)
        self._place(number)

    def refresh(self) -> "_Tally":
        """Reads the trials created since the last look and those that were open."""
        for _number, trial_id in list(self._open.items()):
            self._see(self._storage.get_trial(trial_id))
        while True:
            try:
                trial_id = self._storage.get_trial_id_from_study_id_trial_number(self._study_id, self._next)
            except KeyError:
                return self
            self._see(self._storage.get_trial(trial_id))
            self._next += 1

    def taken_before(self, number: int) -> int:
        """Trials numbered below `number` that hold a place: finished, or running."""
        index, total = min(number, len(self._holds)), 0
        while index > 0:
            total += self._tree[index]
            index -= index & -index
        return total


def _retry(study: optuna.Study, trial: FrozenTrial) -> None:
    """Gives the place of a trial that could not finish to a new one with its parameters (enqueued:
    the next ``ask()`` of any worker takes it)."""
    study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})


def _recover_dead_trials(study: optuna.Study, owner: str, attempt: int) -> int:
    """Fails the RUNNING trials an earlier attempt of this task left behind (it was killed outright:
    its successor is running, so it is dead) and enqueues their parameters."""
    recovered = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(OWNER) == owner and int(trial.user_attrs.get(ATTEMPT, 0)) < attempt:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            _retry(study, trial)
            recovered += 1
    return recovered


class _Interrupter:
    """Turns SIGTERM into TrialInterrupted while (and only while) the objective runs, so that Optuna's
    own bookkeeping (ask, tell, storage writes) is never cut in half. Signals reach Python handlers in
    the main thread only; in other threads this does nothing and TERM stops the loop between trials."""

    def __init__(self, signals: Sequence[int]) -> None:
        self.signals = tuple(signals)
        self.inside_objective = False
        self.active = threading.current_thread() is threading.main_thread() and bool(self.signals)
        self.previous: dict[int, Any] = {}

    def _handle(self, number: int, frame: Any) -> None:
        if self.inside_objective:
            self.inside_objective = False
            raise TrialInterrupted(number)

    def __enter__(self) -> "_Interrupter":
        if self.active:
            for number in self.signals:
                self.previous[number] = signal.signal(number, self._handle)
            _state.install_signals()  # our C handler on top again: it records the stop, then chains here
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.active:
            for number, handler in self.previous.items():
                signal.signal(number, handler)
            _state.install_signals()

    @contextlib.contextmanager
    def objective(self) -> Iterator[None]:
        self.inside_objective = True
        try:
            yield
        finally:
            self.inside_objective = False


def optimize(
    study: optuna.Study,
    objective: Callable[[Trial], float | Sequence[float]],
    n_trials: int,
    *,
    state: State | str | os.PathLike[str] | None = None,
    count_failed: bool = False,
    catch: type[Exception] | tuple[type[Exception], ...] = (),
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    interrupt_on: Sequence[int] = (signal.SIGTERM,),
) -> SweepResult:
    """Runs trials of ``objective`` until the study has ``n_trials`` finished trials across all
    workers and attempts, or until this process should stop.

    ``state`` is the gracefulstop state (default: $GRACEFULSTOP_STATE_DIR, as gstop sets it; a
    sweep needs no unit list); ``study.done`` is written there when the study is complete.
    ``catch`` lists exceptions of the objective that fail the trial without ending the loop (as in
    ``study.optimize``). ``callbacks`` are called after each trial with the study and the trial.
    ``interrupt_on``: signals that interrupt a running trial (default SIGTERM); others, and stop
    requests and the deadline, let it finish.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1 (got {n_trials})")
    if state is None:
        handle = _state.open_sweep(os.environ["GRACEFULSTOP_STATE_DIR"]) if os.environ.get("GRACEFULSTOP_STATE_DIR") else _state.open(None)
    elif isinstance(state, State):
        handle = state
    else:
        handle = _state.open_sweep(state)
    counted = _counted_states(count_failed)
    owner, attempt = _owner(handle), _state.restart_count()
    catch = catch if isinstance(catch, tuple) else (catch,)

    def complete() -> SweepResult:
        if handle.path is not None and not handle.study_done():
            handle.mark_study_done(f"{n_trials} trials of study {study.study_name}")
        _log.info("study %s has its %d trials", study.study_name, n_trials)
        return SweepResult(ran, n_trials, True, None)

    ran = 0
    if handle.path is not None:
        handle.record_finished(0)  # this attempt reports its trials: one that finishes none is idle
    recovered = _recover_dead_trials(study, owner, attempt) if attempt > 0 else 0
    if recovered:
        _log.warning("failed %d trial(s) an earlier attempt of %s left RUNNING; their parameters are enqueued", recovered, owner)
    tally = _Tally(study, counted)  # after the recovery: it reads the trials in their new states
    if tally.finished >= n_trials:
        return complete()

    with _Interrupter(interrupt_on) as interrupter:
        while not handle.should_stop():
            trial = study.ask()
            trial.set_user_attr(OWNER, owner)
            if attempt:  # the first attempt's trials go without (one storage write less per trial)
                trial.set_user_attr(ATTEMPT, attempt)
            taken = tally.refresh().taken_before(trial.number)
            if taken >= n_trials:
                trial.set_user_attr(SURPLUS, True)
                study.tell(trial, state=TrialState.FAIL)
                if tally.refresh().finished >= n_trials:
                    return complete()
                _log.info("study %s: %d trials finished or running; this worker stops", study.study_name, taken)
                return SweepResult(ran, tally.finished, False, None)
            try:
                with interrupter.objective():
                    values = objective(trial)
            except optuna.TrialPruned:
                frozen = study.tell(trial, state=TrialState.PRUNED)
            except TrialInterrupted as interrupted:
                trial.set_user_attr(INTERRUPTED, interrupted.args[0])
                frozen = study.tell(trial, state=TrialState.FAIL)
                _retry(study, frozen)
                _log.warning(
                    "trial %d interrupted by %s; its parameters are enqueued for a retry",
                    trial.number,
                    signal.Signals(interrupted.signal_number).name,
                )
                break
            except catch as error:
                _log.warning("trial %d failed: %r", trial.number, error)
                frozen = study.tell(trial, state=TrialState.FAIL)
            except Exception:
                study.tell(trial, state=TrialState.FAIL)
                raise
            else:
                frozen = study.tell(trial, values)
            ran += 1
            if handle.path is not None and frozen.state in counted:
                handle.record_finished(1)
            for callback in callbacks:
                callback(study, frozen)
            if tally.refresh().finished >= n_trials:
                return complete()
    finished = tally.refresh().finished
    if finished >= n_trials:
        return complete()
    return SweepResult(ran, finished, False, handle.stop_reason())
