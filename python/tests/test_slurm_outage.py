"""gstop through slurmctld outages, on the real test cluster (scripts/slurm-cluster): slurmctld stopped
just before the time-limit warning and started again 90 s later (the requeue is tried until it
goes through, and the run finishes), and stopped for longer than the job has left (the decision
line and requeue.failed in the state say so; gstop status shows it). And how many scontrol calls an
attempt makes, counted by a logging wrapper on the job's PATH."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CLUSTER_DIR, GSTOP
from slurmtest import assert_each_unit_once, events, scontrol_wrapper, work_log


def stop_slurmctld() -> None:
    pid = int(Path(f"{CLUSTER_DIR}/run/slurmctld.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


def start_slurmctld(cluster) -> None:
    subprocess.run(["slurmctld", "-f", f"{CLUSTER_DIR}/slurm.conf"], env=cluster.env, check=True, timeout=60)
    cluster.wait(
        "slurmctld answers",
        lambda: subprocess.run(["scontrol", "ping"], env=cluster.env, capture_output=True, text=True).stdout.count("UP") > 0,
        timeout=60,
    )


def gstop_pid(state: Path) -> int:
    return events(state, "attempt_start")[-1]["pid"]


@pytest.fixture
def controller_back(cluster):
    """Whatever the test does, slurmctld runs again after it."""
    yield
    if subprocess.run(["scontrol", "ping"], env=cluster.env, capture_output=True, text=True).stdout.count("UP") == 0:
        start_slurmctld(cluster)


def test_a_warning_during_a_90_s_slurmctld_outage_is_requeued_once_it_is_back(cluster, controller_back, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--time=10", WORKER_UNITS="24", WORKER_SECONDS="1")
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    stop_slurmctld()
    os.kill(gstop_pid(state), signal.SIGUSR1)  # the warning, as --signal=B:USR1 delivers it
    cluster.wait("the first requeue try", lambda: events(state, "requeue_try"), timeout=60)
    time.sleep(90 - 5)
    start_slurmctld(cluster)
    cluster.wait("gstop's decision", lambda: events(state, "decision"), timeout=120)
    decision = events(state, "decision")[0]
    assert decision["action"] == "requeue" and decision["requeue_tries"] >= 2, decision
    assert any("requeued after" in reason for reason in decision["reasons"]), decision
    cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 24)
    assert [d["action"] for d in events(state, "decision")] == ["requeue", "finish"]
    output = cluster.output(tmp_path, job)
    assert "scontrol requeue" in output and "trying again in" in output, output
    print(f"\nslurmctld down 90 s at the warning: requeued after {decision['requeue_tries']} tries; the run finished")


def test_an_outage_longer_than_the_job_has_left_says_so_in_the_state(cluster, controller_back, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--time=1", WORKER_UNITS="200", WORKER_SECONDS="1")
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    stop_slurmctld()
    os.kill(gstop_pid(state), signal.SIGUSR1)
    cluster.wait("the first requeue try", lambda: events(state, "requeue_try"), timeout=60)
    # Said in the state from the first failed try: SLURM could kill gstop while it tries.
    assert '"still_trying": true' in (state / "requeue.failed").read_text()
    # gstop tries until a margin (10 s) before the KILL that comes KillWait (30 s) after the job's end.
    cluster.wait("gstop's decision", lambda: events(state, "decision"), timeout=150)
    decision = events(state, "decision")[0]
    assert decision["action"] == "stop" and decision["exit"] == 75, decision
    assert any("the requeue never reached slurmctld" in reason and "scontrol requeue" in reason for reason in decision["reasons"]), decision
    failed = (state / "requeue.failed").read_text()
    assert f'"target": "{job}"' in failed and "what_to_do" in failed and '"still_trying": false' in failed, failed
    tried_until = events(state, "decision")[0]["time"] - events(state, "attempt_start")[0]["time"]
    # No try begun that would end after that margin (each takes scontrol's own timeouts in an outage).
    assert 40 < tried_until <= 60 + 30 - 10, f"tried until {tried_until:.0f} s into a 1-minute job whose KILL comes 30 s after its end"
    status = subprocess.run([GSTOP, "status", "--state", str(state)], capture_output=True, text=True, timeout=60)
    assert status.stdout.startswith(f"state {state}\nREQUEUE FAILED: job {job}"), status.stdout
    start_slurmctld(cluster)
    output = cluster.output(tmp_path, job)
    assert "decision: stop without requeue (exit 75)" in output and "the requeue never reached slurmctld" in output, output


def test_a_term_in_a_slurmctld_outage_stops_the_command_at_once_and_waits_for_scontrol_to_say_why(cluster, controller_back, tmp_path):
    # A TERM is a time limit (requeue) or a cancel (end): only slurmctld tells which. It is down.
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--time=10", WORKER_UNITS="200", WORKER_SECONDS="1")
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    stop_slurmctld()
    started_before = len(work_log(state))
    os.kill(gstop_pid(state), signal.SIGTERM)  # as slurmd delivers it, for a cancel made just before the outage
    cluster.wait("the first scontrol show job retry", lambda: events(state, "lookup_try"), timeout=90)
    # The command heard at once, not after scontrol gave up: it began at most the unit it was at.
    assert len(work_log(state)) <= started_before + 1, (started_before, len(work_log(state)))
    time.sleep(15)
    assert not events(state, "decision"), "decided without knowing why the TERM came"
    start_slurmctld(cluster)
    cluster.wait("gstop's decision", lambda: events(state, "decision"), timeout=120)
    decision = events(state, "decision")[0]
    # slurmctld shows the job running, no time limit reached: the TERM was somebody's cancel.
    assert decision["action"] == "stop" and any("a cancel always ends the job" in r for r in decision["reasons"]), decision
    failed_tries = len(events(state, "lookup_try"))
    assert failed_tries >= 1 and len(work_log(state)) <= started_before + 1
    output = cluster.output(tmp_path, job)
    assert "scontrol show job failed (try 1)" in output and f"scontrol show job answered after {failed_tries + 1} tries" in output, output
    assert not any("scontrol could not say why" in line for line in cluster.decision_lines(tmp_path, job)), output
    # The command's time is its own, not gstop's lookups after it ended (before: "after 1m15s").
    ended = next(line for line in output.splitlines() if "gstop: command ended" in line)
    seconds = float(re.search(r"after (?:(\d+)m)?([\d.]+)s", ended).group(2)) + 60 * int(re.search(r"after (?:(\d+)m)?", ended).group(1) or 0)
    assert seconds < 45, ended  # started, 3 units, stopped at the TERM: well under the outage
    print(f"\nTERM during a slurmctld outage: the command stopped at once; scontrol show job answered at try {failed_tries + 1}; classified a cancel")


WRAPPER = """#!/bin/bash
# Logs each scontrol call, then runs the real one.
echo "$(date +%s.%N) $*" >> {log}
exec {real} "$@"
"""


def test_the_scontrol_calls_of_an_attempt_are_few_and_none_while_the_command_works(cluster, tmp_path):
    # An attempt warned and requeued, then one that finishes: every scontrol call logged.
    path, log = scontrol_wrapper(cluster, tmp_path, WRAPPER)
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--time=10", WORKER_UNITS="12", WORKER_SECONDS="1", PATH=path)
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    time.sleep(2)  # the command works: nothing may ask slurmctld meanwhile
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    calls = [line.split(maxsplit=1) for line in log.read_text().splitlines()]
    names = [call for _, call in calls]
    # The requeue is followed by the right-sizing of the pending job (one update; --time=10 is more
    # than the 9 units left need), made by attempt 1's gstop.
    split = names.index(f"requeue {job}") + 2
    first, second = names[:split], names[split:]
    warned = events(state, "signal")[0]["time"]
    # Attempt 1 worked for seconds before the warning: the start's lookup is the only call before it.
    before_warning = [call for at, call in calls[:split] if float(at) < warned]
    # Attempt 2 worked through the units left (seconds): nothing between its start and its end lookup.
    span = float(calls[-1][0]) - float(calls[split][0])
    print(f"\nscontrol calls: attempt 1 (warned, requeued) {first}; attempt 2 (finished) {second}, {span:.0f} s apart")
    assert before_warning == [f"show job -o {job}"], before_warning
    assert first[:3] == [f"show job -o {job}", f"show job -o {job}", f"requeue {job}"], first
    assert first[3].startswith(f"update JobId={job} TimeLimit=") and len(first) == 4, first
    assert second == [f"show job -o {job}", f"show job -o {job}"] and span >= 3, (second, span)
