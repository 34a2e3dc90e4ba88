"""The crash-loop guard and the requeue's truth on the real test cluster (scripts/slurm-cluster):
a job whose events.jsonl cannot be written (a directory in its place) and whose command fails
every time under --retry-failures 2 stops with exit 74 at its first attempt, instead of going
through the queue 20 times (each attempt is a new gstop: the guard's memory is that file); and a
requeue whose scontrol is slow to return — killed by the requeue's own TERM before it answers —
is reported as the requeue it was."""

from __future__ import annotations

from slurmtest import assert_each_unit_once, events, scontrol_wrapper, work_log

import gracefulstop


def test_a_job_whose_guard_cannot_keep_its_counts_stops_with_exit_74(cluster, tmp_path):
    state = tmp_path / "state"
    gracefulstop.create(state, [f"u{i:03d}" for i in range(12)], nodes=1)
    (state / "events.jsonl").mkdir()
    starts = tmp_path / "starts"
    job = cluster.submit(tmp_path, state, gstop_options="--retry-failures 2", command=f"sh -c 'echo x >> {starts}; exit 1'")
    info = cluster.wait_state(job, "FAILED", "COMPLETED", timeout=120)
    output = cluster.output(tmp_path, job)
    decisions = cluster.decision_lines(tmp_path, job)
    assert starts.read_text().count("x") == 1 and int(info["Restarts"]) == 0, (output, info)
    assert len(decisions) == 1 and "stop without requeue (exit 74)" in decisions[0], output
    assert "the crash-loop guard cannot count the attempts before this one" in decisions[0] and str(state / "events.jsonl") in decisions[0]
    assert info["ExitCode"].startswith("74:"), info
    print(f"\nunwritable events.jsonl under SLURM, --retry-failures 2: one start, then {decisions[0].split('gstop: ')[1][:60]}...")


SLOW_REQUEUE = """#!/bin/bash
# scontrol, but a requeue answers late: the requeue's TERM reaches this process first.
echo "$(date +%s.%N) $*" >> {log}
if [ "$1" = requeue ]; then {real} "$@"; status=$?; sleep 8; exit $status; fi
exec {real} "$@"
"""


def test_a_requeue_whose_scontrol_dies_by_the_requeues_term_is_reported_as_requeued(cluster, tmp_path):
    path, _ = scontrol_wrapper(cluster, tmp_path, SLOW_REQUEUE)
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--time=10", WORKER_UNITS="12", WORKER_SECONDS="1", PATH=path)
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 12)
    first = events(state, "decision")[0]
    assert first["action"] == "requeue", first  # what SLURM did, not "stop"
    output = cluster.output(tmp_path, job)
    said = cluster.decision_lines(tmp_path, job)[0]
    assert "decision: requeue" in said and "did not answer" not in said and "never reached" not in said, output
    if "exit 143" in said:  # the wrapper died by the requeue's TERM, as the real scontrol can
        assert "but SLURM shows the job requeued" in said, said
    print(f"\nscontrol requeue slow to answer: {said.split('gstop: ')[1]}")
