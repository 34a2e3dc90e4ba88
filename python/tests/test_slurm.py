"""gstop on a real SLURM cluster: munged, slurmctld and three slurmd on this machine
(scripts/slurm-cluster), real sbatch jobs, real signals from scancel and from the time limit.

These tests need root (to install and run SLURM). Elsewhere they skip and say why; under CI=true
they must run, and a cluster that does not start fails them.
"""

from __future__ import annotations

import sys
import time

import pytest
from conftest import REPOSITORY
from slurmtest import assert_each_unit_once, events, work_log

import gracefulstop


@pytest.fixture(scope="module")
def time_limit_job(cluster, tmp_path_factory):
    """A job that reaches a real time limit (--time=1, no early warning), submitted first so that
    the other scenarios run while it waits for its limit."""
    directory = tmp_path_factory.mktemp("time-limit")
    state = directory / "state"
    # No deadline either: the command must be stopped by the TERM itself.
    job = cluster.submit(directory, state, gstop_options="--deadline-margin off", sbatch="--time=1", WORKER_UNITS="400", WORKER_SECONDS="1")
    return job, directory, state


def test_warning_requeues_and_the_restart_resumes_and_finishes(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, WORKER_UNITS="12", WORKER_SECONDS="1")
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    cluster.warn(job)
    info = cluster.wait_state(job, "PENDING", restarts=1)
    assert info["Reason"] in ("BeginTime", "None", "Priority", "Resources")
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    log = assert_each_unit_once(state, 12)
    first = [u for u, _, restart, resume in log if restart == "0" and resume == "0"]
    second = [u for u, _, restart, resume in log if restart == "1" and resume == "1"]
    assert len(first) >= 3 and len(second) >= 1 and len(first) + len(second) == 12
    assert [d["action"] for d in events(state, "decision")] == ["requeue", "finish"]
    assert events(state, "decision")[0]["target"] == job
    assert events(state, "signal")[0]["signal"] == "SIGUSR1"
    time.sleep(3)
    assert cluster.show(job)["Restarts"] == "1"  # no further requeue
    output = (tmp_path / f"slurm-{job}.out").read_text()
    assert "decision: requeue" in output and "decision: finish" in output


def test_scancel_ends_the_job_without_requeue(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, WORKER_UNITS="100", WORKER_SECONDS="0.5")
    cluster.wait("two units started", lambda: len(work_log(state)) >= 2)
    cluster.command("scancel", job)
    cluster.wait("gstop's decision", lambda: events(state, "decision"), timeout=60)
    decision = events(state, "decision")[0]
    assert decision["action"] == "stop" and any("a cancel always ends the job" in r for r in decision["reasons"])
    for _ in range(6):
        info = cluster.show(job)
        assert info["JobState"] in ("CANCELLED", "COMPLETING") and info["Restarts"] == "0", info
        time.sleep(1)
    # The command finished its current unit: nothing half-done, every started unit is marked.
    with gracefulstop.open(state) as opened:
        assert len(work_log(state)) == 100 - len(opened.remaining_units())


def test_an_array_task_warned_alone_is_requeued_alone(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    # 12 units a share: with balancing, three tasks would finish a share of 4 before a fourth that
    # starts seconds late (a loaded machine) had begun one, and it would never log a unit.
    array = cluster.submit(tmp_path, state, sbatch="--array=0-3", WORKER_UNITS="48", WORKER_NODES="4", WORKER_SECONDS="1")
    cluster.wait("all four tasks working", lambda: {node for _, node, *_ in work_log(state)} == {"0", "1", "2", "3"})
    cluster.warn(f"{array}_2")
    cluster.wait_state(f"{array}_2", "PENDING", restarts=1)
    cluster.release(f"{array}_2")
    for task in range(4):
        info = cluster.wait_state(f"{array}_{task}", "COMPLETED", timeout=180)
        assert info["Restarts"] == ("1" if task == 2 else "0"), f"task {task}: {info['Restarts']} restarts"
    log = assert_each_unit_once(state, 48)
    # Only task 2 ran a second attempt (balancing: the others may have finished its share meanwhile).
    assert {node for _, node, restart, _ in log if restart == "1"} <= {"2"}
    requeues = [d for d in events(state, "decision") if d["action"] == "requeue"]
    assert [d["target"] for d in requeues] == [f"{array}_2"]  # the task, never the array id
    assert (state / "run.done").exists()


def test_a_three_node_job_works_per_node_and_is_requeued_as_a_job(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path, state, sbatch="--nodes=3", command="srun {python} -u {worker}", WORKER_UNITS="15", WORKER_NODES="3", WORKER_SECONDS="1"
    )
    cluster.wait("all three nodes working", lambda: {node for _, node, *_ in work_log(state)} == {"0", "1", "2"})
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    log = assert_each_unit_once(state, 15)
    # Each node began with its own block of units (block partition: node k has units 5k..5k+4);
    # balancing lets a node that ran out take units from the end of another's block.
    first = {}
    for unit, node, *_ in log:
        first.setdefault(node, unit)
    assert first == {"0": "u000", "1": "u005", "2": "u010"}, first
    decision = events(state, "decision")[0]
    assert decision["action"] == "requeue" and any("the run has" in r for r in decision["reasons"])


def test_a_crash_is_not_requeued(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, WORKER_MODE="crash")
    info = cluster.wait_state(job, "FAILED", timeout=60)
    assert info["ExitCode"] == "3:0" and info["Restarts"] == "0"
    assert events(state, "decision")[0]["action"] == "stop"


def test_attempts_without_progress_stop_requeuing_at_the_guard(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, gstop_options="--max-idle-attempts 2", WORKER_MODE="idle")
    for restart in range(2):
        cluster.wait(f"attempt {restart} running", lambda: any(e["restart"] == restart for e in events(state, "attempt_start")), timeout=60)
        time.sleep(1)
        cluster.warn(job)
        if restart == 0:
            cluster.wait_state(job, "PENDING", restarts=1)
            cluster.release(job)
    info = cluster.wait_state(job, "FAILED", timeout=60)
    assert info["Restarts"] == "1" and info["ExitCode"] == "75:0"
    last = events(state, "decision")[-1]
    assert last["action"] == "stop" and any("2 attempts in a row marked no unit" in r for r in last["reasons"])


def test_a_completed_run_exits_at_once_without_starting_the_work(cluster, time_limit_job, tmp_path):
    state = tmp_path / "state"
    with gracefulstop.create(state, ["a", "b"], nodes=1) as done:
        done.mark_done("a")
        done.mark_done("b")
    marker = tmp_path / "started"
    job = cluster.submit(tmp_path, state, command=f"touch {marker}")
    cluster.wait_state(job, "COMPLETED", timeout=60)
    assert not marker.exists()
    assert "all work is done already (run.done): not starting the command" in (tmp_path / f"slurm-{job}.out").read_text()


def test_a_sweep_array_warned_mid_trial_finishes_at_exactly_n_trials(cluster, time_limit_job, tmp_path):
    from test_optuna import FINISHED, gso, optuna  # installs optuna when missing

    state, log = tmp_path / "state", tmp_path / "optuna.log"
    sweep = REPOSITORY / "examples" / "sweeps" / "sweep.py"
    started = time.monotonic()
    array = cluster.submit(
        tmp_path,
        state,
        sbatch="--array=0-3",
        command=f"{sys.executable} -u {sweep} --storage journal:{log} --study s --n-trials 40 --trial-seconds 1",
    )

    def study():
        return optuna.load_study(study_name="s", storage=gso.storage(f"journal:{log}"))

    def trials_now(**states) -> list:
        # The journal file appears a moment before the study's record in it: not there yet, no trials.
        try:
            return study().get_trials(deepcopy=False, **states) if log.exists() else []
        except KeyError:
            return []

    def running(task: int) -> bool:
        return any(
            t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get(gso.OWNER, "").startswith(f"{array}_{task}/") for t in trials_now()
        )

    cluster.wait("6 finished trials", lambda: len(trials_now(states=FINISHED)) >= 6)
    for task in (1, 3):
        cluster.wait(f"task {task} in the middle of a trial", lambda task=task: running(task))
        cluster.warn(f"{array}_{task}")
    for task in (1, 3):
        cluster.wait_state(f"{array}_{task}", "PENDING", restarts=1)
        cluster.release(f"{array}_{task}")
    for task in range(4):
        cluster.wait_state(f"{array}_{task}", "COMPLETED", restarts=1 if task in (1, 3) else 0, timeout=180)
    elapsed = time.monotonic() - started
    trials = study().get_trials(deepcopy=False)
    uncounted = {t.number for t in trials if t.user_attrs.get(gso.SURPLUS)} | {
        t.user_attrs[gso.RETRY_OF] for t in trials if gso.RETRY_OF in t.user_attrs
    }
    finished = [t for t in trials if t.state in FINISHED and t.number not in uncounted]
    assert len(finished) == 40
    assert not [t for t in trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)]
    assert (state / "study.done").exists()
    decisions = events(state, "decision")
    assert sorted(d["target"] for d in decisions if d["action"] == "requeue") == [f"{array}_1", f"{array}_3"]
    time.sleep(3)
    assert [cluster.show(f"{array}_{task}")["Restarts"] for task in range(4)] == ["0", "1", "0", "1"]  # none after the end
    print(f"\nsweep on SLURM: {len(trials)} trials in all, {len(finished)} finished, {len(uncounted)} surplus or retried, {elapsed:.1f} s")


def test_a_real_time_limit_requeues_from_the_term(cluster, time_limit_job):
    job, _directory, state = time_limit_job
    cluster.wait_state(job, "PENDING", restarts=1, timeout=240)
    signal_events = events(state, "signal")
    assert signal_events[0]["signal"] == "SIGTERM"
    assert signal_events[0]["cause"] == "stopped by the time limit (TERM, Reason=TimeLimit)"
    decision = events(state, "decision")[0]
    assert decision["action"] == "requeue" and decision["target"] == job
    exits = events(state, "child_exit")
    assert exits[0]["asked_to_stop"] and exits[0]["marked"] > 0
    # The command stopped after a whole unit: every unit it started is marked.
    with gracefulstop.open(state) as opened:
        assert len(work_log(state)) == 400 - len(opened.remaining_units())
    cluster.command("scancel", job)


def test_units_that_outlast_the_warning_are_never_begun_only_to_be_lost(cluster, tmp_path):
    # A 1-minute job of 8 s units, warned only by the deadline gstop gives the command: the end
    # minus 6 s (a tenth of the job), shorter than a unit. (No --signal: SLURM sends a B:USR1@N
    # warning up to a minute early on its own timer, which would stop the loop long before the
    # deadline and show nothing.) The run's unit times keep work() from beginning, at ~49 s, a unit
    # the limit would kill at 60 s; gstop requeues; every unit is done once.
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--time=1", WORKER_UNITS="7", WORKER_SECONDS="8")
    cluster.wait_state(job, "PENDING", restarts=1, timeout=180)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", timeout=180)
    assert_each_unit_once(state, 7)  # none begun twice: none begun and lost
    decisions = events(state, "decision")
    assert [d["action"] for d in decisions] == ["requeue", "finish"], decisions
    assert decisions[0]["reasons"][0].startswith("stopped itself at or before its deadline (GRACEFULSTOP_DEADLINE) [the next unit needs ~8s, ")
    refused = [s for s in events(state, "process_stop") if s["reason"] == "deadline" and "the next unit needs ~8s" in s["detail"]]
    assert len(refused) == 1 and refused[0]["restart"] == 0, events(state, "process_stop")
    output = cluster.output(tmp_path, job)
    assert "SIGKILL" not in output and "did not stop in time" not in output and "stopped by the time limit" not in output
    print(f"\nunits outlasting the warning on SLURM: attempt 1: {decisions[0]['reasons'][0]}")
