"""gracefulstop.optuna with real Optuna: several worker processes on one journal-file study, stopped
mid-way by real signals and restarted, end at exactly n_trials. Optuna is installed when missing."""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPOSITORY, child_environment


def _import_optuna():
    try:
        import optuna
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "optuna>=3.6"], check=True)
        import optuna
    return optuna


optuna = _import_optuna()
import gracefulstop.optuna as gso  # noqa: E402  (needs optuna)

SWEEP = str(REPOSITORY / "examples" / "sweeps" / "sweep.py")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


POSTGRES_DIR = os.environ.get("GSTOP_POSTGRES_DIR", "/tmp/gracefulstop-postgres")


def _import_psycopg2():
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "psycopg2-binary"], check=True)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server on loopback (scripts/postgres), started once; yields a function that
    makes a new, empty database and returns its URL."""
    if os.geteuid() != 0 and not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed and installing it needs root")
        pytest.skip("PostgreSQL is not installed and installing it needs root (run ./scripts/test as root, as CI does)")
    _import_psycopg2()
    script = str(REPOSITORY / "scripts" / "postgres")
    started = subprocess.run([script, "start", POSTGRES_DIR], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    count = iter(range(1_000_000))

    def create_database() -> str:
        name = f"gstop_{os.getpid()}_{next(count)}_{int(time.time() * 1000) % 1_000_000}"
        made = subprocess.run([script, "createdb", name], capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    yield create_database
    subprocess.run([script, "stop", POSTGRES_DIR], capture_output=True, timeout=120)


@pytest.fixture(params=["journal", "postgresql"])
def storage_url(request, tmp_path):
    """Where the study lives: Optuna's journal file, or a fresh database on a real PostgreSQL."""
    if request.param == "journal":
        return f"journal:{tmp_path / 'optuna.log'}"
    return request.getfixturevalue("postgres")()


def start_worker(
    tmp_path: Path, worker: int, attempt: int, n_trials: int = 40, seconds: float = 0.25, storage_url: str | None = None
) -> subprocess.Popen:
    env = child_environment(GRACEFULSTOP_STATE_DIR=str(tmp_path / "state"), GRACEFULSTOP_NODE=str(worker), GRACEFULSTOP_RESTART_COUNT=str(attempt))
    return subprocess.Popen(
        [
            sys.executable,
            "-u",
            SWEEP,
            "--storage",
            storage_url or f"journal:{tmp_path / 'optuna.log'}",
            "--study",
            "s",
            "--n-trials",
            str(n_trials),
            "--trial-seconds",
            str(seconds),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def load(tmp_path: Path, storage_url: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name="s", storage=gso.storage(storage_url or f"journal:{tmp_path / 'optuna.log'}"))


def trials_of(study, worker: int):
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(gso.OWNER, "").endswith(f"/{worker}")]


def wait_until(what: str, condition, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def study_exists(tmp_path: Path, storage_url: str) -> bool:
    # The journal file appears a moment before the study's record in it (a KeyError once, under
    # the CI streams' load): the study exists once it loads.
    if storage_url.startswith("journal:") and not (tmp_path / "optuna.log").exists():
        return False
    try:
        load(tmp_path, storage_url)
        return True
    except KeyError:  # optuna: "Record does not exist."
        return False


def wait_for_fresh_trial(tmp_path: Path, storage_url: str, worker: int, within: float) -> None:
    """Until the worker runs a trial that has its parameters (it is in the objective's sleep) and
    began less than `within` seconds ago: a signal sent right after lands inside that sleep, not in
    the tell and ask between two trials, nor before the parameters reach the storage (a trial cut
    there has none to retry, and its retry samples new ones)."""

    def fresh() -> bool:
        now = datetime.datetime.now()  # Optuna stamps datetime_start with the naive local time
        return any(
            t.state == optuna.trial.TrialState.RUNNING
            and set(t.params) == {"x", "layers"}
            and t.datetime_start is not None
            and (now - t.datetime_start).total_seconds() < within
            for t in trials_of(load(tmp_path, storage_url), worker)
        )

    wait_until(f"a trial of worker {worker} with its parameters, begun less than {within} s ago", fresh)


def test_four_workers_stopped_by_real_signals_and_restarted_end_at_exactly_n_trials(tmp_path, storage_url):
    # Workers 1 and 2 run trials of 1.5 s, and each is signalled within 0.7 s of one beginning: TERM
    # must find worker 1 inside a trial and kill -9 must leave worker 2's RUNNING (between two trials,
    # on a loaded database, there are tens of milliseconds of tell and ask; a TERM there stops the
    # worker without interrupting anything, and this test would see no interrupted trial).
    workers = {w: start_worker(tmp_path, w, attempt=0, storage_url=storage_url, seconds=1.5 if w in (1, 2) else 0.6) for w in range(4)}
    # Mid-way:
    wait_until(
        "8 finished trials",
        lambda: study_exists(tmp_path, storage_url) and len(load(tmp_path, storage_url).get_trials(deepcopy=False, states=FINISHED)) >= 8,
    )
    workers[0].send_signal(signal.SIGUSR1)  # the warning: finish the trial, then stop
    wait_for_fresh_trial(tmp_path, storage_url, 1, within=0.7)
    workers[1].send_signal(signal.SIGTERM)  # the time limit: interrupt the trial, record it, retry its parameters
    wait_for_fresh_trial(tmp_path, storage_url, 2, within=0.7)
    workers[2].kill()  # kill -9: its trial stays RUNNING until its next attempt
    outputs = {w: workers[w].communicate(timeout=60) for w in (0, 1, 2)}
    assert workers[0].returncode == 0 and "stopped: received SIGUSR1" in outputs[0][0], outputs[0]
    assert workers[1].returncode == 0 and "stopped: received SIGTERM" in outputs[1][0], outputs[1]
    assert "interrupted by SIGTERM" in outputs[1][1]
    assert workers[2].returncode == -signal.SIGKILL
    study = load(tmp_path, storage_url)
    # The trial worker 1 was running when TERM came (found afterwards: looked up before, it may
    # have finished in between and the TERM met the next one).
    interrupted = [t for t in trials_of(study, 1) if gso.INTERRUPTED in t.user_attrs]
    assert len(interrupted) == 1 and interrupted[0].state == optuna.trial.TrialState.FAIL, (interrupted, outputs[1])
    interrupted = interrupted[0]
    assert [t for t in trials_of(study, 2) if t.state == optuna.trial.TrialState.RUNNING], "worker 2 left no zombie"

    # The requeued attempts (restart count 1); worker 3 kept going throughout.
    restarted = {w: start_worker(tmp_path, w, attempt=1, storage_url=storage_url, seconds=0.6) for w in (0, 1, 2)}
    results = {w: p.communicate(timeout=120) for w, p in {**restarted, 3: workers[3]}.items()}
    for worker, (_out, err) in results.items():
        assert (restarted.get(worker) or workers[3]).returncode == 0, err
    assert "failed 1 trial(s) an earlier attempt of local/2 left RUNNING" in results[2][1]

    study = load(tmp_path, storage_url)
    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    surplus = {t.number for t in trials if t.user_attrs.get(gso.SURPLUS)}
    replaced = {t.user_attrs[gso.RETRY_OF] for t in trials if gso.RETRY_OF in t.user_attrs}
    finished = [t for t in trials if t.state in FINISHED and t.number not in surplus | replaced]
    assert len(finished) == 40  # exactly n_trials: no overshoot across 4 workers and 2 attempts
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.WAITING not in states
    assert interrupted.number in replaced  # the interrupted trial's parameters were tried again:
    # A retry can itself be cut short (worker 2 may have taken it just before its kill -9): follow
    # the chain of retries to the one that completed, each with the same parameters.
    retry = interrupted
    while retry.state != optuna.trial.TrialState.COMPLETE:
        retry = next(t for t in trials if t.user_attrs.get(gso.RETRY_OF) == retry.number)
        assert retry.params == interrupted.params
    assert (tmp_path / "state" / "study.done").exists()
    print(f"\ntrials: {len(trials)} in all, {len(finished)} finished, {len(surplus)} surplus, {len(replaced)} retried")

    # A fifth worker, started after the end, runs no trial.
    late = start_worker(tmp_path, 4, attempt=0, storage_url=storage_url, seconds=0.6)
    out, err = late.communicate(timeout=60)
    assert late.returncode == 0, err
    assert "ran 0 trials; 40/40 finished; study done" in out
    assert len(load(tmp_path, storage_url).trials) == len(trials)


def test_eight_workers_starting_together_do_not_overshoot(tmp_path, storage_url):
    # On PostgreSQL the database is empty: the eight also race to create Optuna's tables.
    workers = [start_worker(tmp_path, w, attempt=0, n_trials=12, seconds=0.2, storage_url=storage_url) for w in range(8)]
    for worker in workers:
        _out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    study = load(tmp_path, storage_url)
    counted = [t for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.user_attrs.get(gso.SURPLUS)]
    assert len(counted) == 12
    assert (tmp_path / "state" / "study.done").exists()


def test_failed_trials_count_only_when_asked(tmp_path):
    study = gso.load_or_create_study("f", f"journal:{tmp_path / 'optuna.log'}")

    def flaky(trial):
        if trial.number % 3 == 0:
            raise RuntimeError("diverged")
        return trial.suggest_float("x", 0, 1)

    result = gso.optimize(study, flaky, n_trials=6, state=tmp_path / "a", catch=(RuntimeError,))
    assert result.done and len(study.get_trials(states=FINISHED)) == 6
    study2 = gso.load_or_create_study("g", f"journal:{tmp_path / 'optuna.log'}")
    result = gso.optimize(study2, flaky, n_trials=6, state=tmp_path / "b", catch=(RuntimeError,), count_failed=True)
    assert result.done and len(study2.trials) == 6
    with pytest.raises(RuntimeError):  # not caught: the trial is recorded, and the error goes on
        gso.optimize(gso.load_or_create_study("h", f"journal:{tmp_path / 'optuna.log'}"), flaky, n_trials=3, state=tmp_path / "c")


def test_storage_strings(tmp_path):
    assert isinstance(gso.storage("journal:/tmp/gracefulstop-storage-test/x.log"), optuna.storages.JournalStorage)
    assert isinstance(gso.storage("/tmp/gracefulstop-storage-test/y.journal"), optuna.storages.JournalStorage)
    assert isinstance(gso.storage(f"sqlite:///{tmp_path / 'one-node.db'}"), optuna.storages.RDBStorage)


def gstop_sweep(tmp_path: Path, state: str, trial_seconds: float, *options: str) -> subprocess.CompletedProcess:
    """`gstop run` on the example sweep with local restarts: each attempt gets 3 s, the warning at
    1.5 s, and the escalating TERM half a second after it (--grace)."""
    from conftest import GSTOP

    return subprocess.run(
        [
            GSTOP,
            "run",
            "--state",
            str(tmp_path / state),
            "--time-limit",
            "3s",
            "--warn-before",
            "1.5s",
            "--grace",
            "0.5s",
            *options,
            "--",
            sys.executable,
            "-u",
            SWEEP,
            "--storage",
            f"journal:{tmp_path / (state + '.log')}",
            "--study",
            "s",
            "--n-trials",
            "6",
            "--trial-seconds",
            str(trial_seconds),
        ],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_sweep_attempts_that_finish_no_trial_stop_at_the_idle_guard(tmp_path):
    # Trials of 10 s in attempts of 3 s: the escalating TERM interrupts every trial, so no attempt
    # finishes one. Before, a sweep's attempts never counted as idle ("marked": null) and gstop
    # requeued until --max-restarts (21 attempts for 9 trials in the field).
    result = gstop_sweep(tmp_path, "stuck", 10.0, "--max-idle-attempts", "3", "--max-restarts", "20")
    assert result.returncode == 75, result.stderr
    log = [json.loads(line) for line in (tmp_path / "stuck" / "events.jsonl").read_text().splitlines()]
    decisions = [e["action"] for e in log if e["event"] == "decision"]
    assert decisions == ["requeue", "requeue", "stop"], result.stderr
    assert [e["marked"] for e in log if e["event"] == "child_exit"] == [0, 0, 0]
    assert "3 attempts in a row finished no trial (--max-idle-attempts 3)" in result.stderr
    # Each attempt said it reports (a count of 0 at its start) and finished nothing.
    reported = [e for e in log if e["event"] == "work_finished"]
    assert len(reported) == 3 and {e["count"] for e in reported} == {0} and {e["what"] for e in reported} == {"trial"}
    assert len({e["attempt_start"] for e in reported}) == 3
    assert "0 trials finished" in result.stderr

    # Short trials: attempts finish trials, so none is idle, and the study ends at exactly 6.
    result = gstop_sweep(tmp_path, "moving", 0.3, "--max-idle-attempts", "1", "--max-restarts", "20")
    assert result.returncode == 0, result.stderr
    log = [json.loads(line) for line in (tmp_path / "moving" / "events.jsonl").read_text().splitlines()]
    marked = [e["marked"] for e in log if e["event"] == "child_exit"]
    assert len(marked) >= 2 and all(m >= 1 for m in marked), (marked, result.stderr)
    assert sum(e["count"] for e in log if e["event"] == "work_finished") == 6
    study = optuna.load_study(study_name="s", storage=gso.storage(f"journal:{tmp_path / 'moving.log'}"))
    assert len([t for t in study.get_trials(deepcopy=False, states=FINISHED) if not t.user_attrs.get(gso.SURPLUS)]) == 6


CREATOR = """
import sys, time
import gracefulstop.optuna as gso
url, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    time.sleep(0.0005)
study = gso.load_or_create_study("s", url, direction="minimize")
print(study.study_name, study._study_id, flush=True)
"""


def test_workers_creating_one_study_at_once_on_an_empty_postgresql_all_get_it(postgres, tmp_path):
    # Before: 2-3 of 4 workers crashed in 4 of 4 fresh databases ("duplicate key value violates
    # unique constraint pg_type_typname_nsp_index": Optuna's tables, CREATE TYPE studydirection).
    for database in range(4):
        url = postgres()
        start = str(time.time() + 1.5)  # all import first, then create at the same instant
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", CREATOR, url, start], env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(6)
        ]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        for worker, (_out, err) in zip(workers, outputs):
            assert worker.returncode == 0, f"database {database}: {err[-2000:]}"
        assert len({out for out, _ in outputs}) == 1, outputs  # one study, the same id for all six
        assert len(optuna.get_all_study_names(storage=gso.storage(url))) == 1


def test_a_bare_postgresql_url_without_psycopg3_says_what_to_write(postgres):
    url = postgres()
    bare = url.replace("postgresql+psycopg2://", "postgresql://")
    try:
        import psycopg  # noqa: F401  (psycopg 3: then the bare URL works)
    except ImportError:
        with pytest.raises(ModuleNotFoundError, match=r"postgresql:// as psycopg 3.*postgresql\+psycopg2://"):
            gso.storage(bare)
    else:
        assert isinstance(gso.storage(bare), optuna.storages.RDBStorage)


@pytest.mark.parametrize("count_failed", [False, True])
def test_the_incremental_tally_counts_as_a_full_read_does(tmp_path, count_failed):
    # optimize() keeps its counts incrementally (a trial's cost must not grow with the study); at
    # every step they must equal the counts from reading every trial, whatever the trials do.
    import random

    rng = random.Random(7)
    study = gso.load_or_create_study("t", f"journal:{tmp_path / 'optuna.log'}")
    counted = gso._counted_states(count_failed)
    tally = gso._Tally(study, counted)
    running = []
    for step in range(300):
        action = rng.random()
        if action < 0.45 or not running:
            trial = study.ask()
            if rng.random() < 0.1:
                trial.set_user_attr(gso.SURPLUS, True)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                running.append(trial)
        else:
            trial = running.pop(rng.randrange(len(running)))
            outcome = rng.random()
            if outcome < 0.6:
                study.tell(trial, 1.0)
            elif outcome < 0.75:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                frozen = study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if rng.random() < 0.7:
                    gso._retry(study, frozen)  # a WAITING trial takes its place; a later ask() runs it
        trials = study.get_trials(deepcopy=False)
        tally.refresh()
        assert tally.finished == gso._finished(trials, counted), step
        for number in range(0, len(trials) + 2, max(1, len(trials) // 7)):
            assert tally.taken_before(number) == gso._taken_before(trials, number, counted), (step, number)
    assert tally.finished > 20
    # A tally made from the finished study counts the same.
    assert gso._Tally(study, counted).finished == tally.finished
