"""gstop in the SLURM configurations real clusters use, on the real test cluster (scripts/slurm-cluster):
the warning sent to the job's steps rather than to gstop (`--signal=USR1@N` without `B:`, `scancel
--signal` without `-b`), a real time limit with such a warning, preemption by a higher-priority
partition, a node that dies, a job that cannot be requeued, several tasks per node, and a job of
an unprivileged user. Each test checks that every unit is done exactly once and none is left (or
the clear refusal), and that gstop's decision line says what happened.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CLUSTER_DIR, USER, submit_as_user
from slurmtest import assert_each_unit_once, events, work_log

import gracefulstop


def decisions(state: Path) -> list[dict]:
    return events(state, "decision")


def remaining(state: Path) -> int:
    with gracefulstop.open(state, node=0) as opened:
        return opened.progress().run_total - opened.progress().run_done


@pytest.fixture(scope="module")
def limit_jobs(cluster, tmp_path_factory):
    """Jobs that reach a real one-minute time limit with a warning 30 s before it, submitted first
    so that they run while the other scenarios do (kept off n3, which the preemption tests hold):
    `--signal=USR1@30` without `B:` with srun (the steps get the warning) and without (nobody
    does: the command's deadline stops it), and `--signal=B:USR1@30` (gstop gets it)."""
    jobs = {}
    # SLURM sends the warning when its periodic check finds 30 s or less left: seen here between 12
    # and 30 s into a one-minute job. 35 one-second units outlast the latest, so the first attempt is
    # always warned; the second or third finishes.
    for kind, signal_option, command, units in (
        ("srun", "USR1@30", "srun {python} -u {worker}", "35"),
        ("batch", "USR1@30", "", "70"),
        ("B", "B:USR1@30", "", "35"),
    ):
        directory = tmp_path_factory.mktemp(f"limit-{kind}")
        state = directory / "state"
        job = cluster.submit(
            directory, state, sbatch=f"--time=1 --signal={signal_option} --exclude=n3", command=command, WORKER_UNITS=units, WORKER_SECONDS="1"
        )
        jobs[kind] = (job, directory, state)
    return jobs


def resume_after_the_limit(cluster, limit_jobs, kind: str, units: int, reason: str) -> None:
    """The job of `kind` is requeued at its limit for `reason`, resumes (again, if SLURM's warning
    came early enough to cut the next attempt short too) and finishes, each unit once."""
    job, _directory, state = limit_jobs[kind]
    for restart in range(1, 6):
        info = cluster.wait_state(job, "PENDING", "COMPLETED", timeout=150)
        if info["JobState"] == "COMPLETED":
            break
        cluster.wait_state(job, "PENDING", restarts=restart)
        cluster.release(job)
        cluster.wait_state(job, "RUNNING", "COMPLETING", "COMPLETED", restarts=restart, timeout=60)
    actions = [d["action"] for d in decisions(state)]
    assert len(actions) >= 2 and set(actions[:-1]) == {"requeue"} and actions[-1] == "finish", actions
    assert all(any(reason in r for r in d["reasons"]) for d in decisions(state)[:-1]), decisions(state)
    assert_each_unit_once(state, units)
    assert remaining(state) == 0


def test_a_warning_to_the_steps_requeues_every_node_and_the_job_finishes(cluster, limit_jobs, tmp_path):
    # scancel --signal=USR1 without -b: the steps get it, gstop does not. Before: "no stop was
    # asked; not requeued" (exit 75) with most units left.
    state = tmp_path / "state"
    job = cluster.start_on_nodes(tmp_path, state, nodes=3, units=30)
    cluster.command("scancel", "--signal=USR1", job)
    cluster.wait_state(job, "PENDING", restarts=1)
    first = decisions(state)[0]
    assert first["action"] == "requeue" and first["target"] == job, first
    assert any("SIGUSR1 (the time-limit warning) [SIGUSR1 to the job's steps" in r for r in first["reasons"]), first
    assert not events(state, "signal"), "the signal reached gstop: this test must send it to the steps only"
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 30)
    assert [d["action"] for d in decisions(state)] == ["requeue", "finish"]
    assert remaining(state) == 0


def test_a_signal_to_one_nodes_process_stops_every_node(cluster, limit_jobs, tmp_path):
    # One process learns of the stop; its stop request tells the other nodes, which stop within
    # about a second instead of working on to their last unit (30 s).
    state = tmp_path / "state"
    job = cluster.start_on_nodes(tmp_path, state, nodes=3, units=90)
    pids = {}
    for line in cluster.output(tmp_path, job).splitlines():
        if line.startswith("worker: node ") and ", pid " in line:
            pids[line.split()[2].rstrip(",")] = int(line.split(", pid ")[1].split(",")[0])
    os.kill(pids["2"], signal.SIGUSR1)
    signalled = time.monotonic()
    cluster.wait_state(job, "PENDING", restarts=1, timeout=30)
    stopped_after = time.monotonic() - signalled
    assert stopped_after < 12, f"the other nodes took {stopped_after:.1f} s to stop"
    decision = decisions(state)[0]
    assert decision["action"] == "requeue" and any("SIGUSR1 to the job's steps, node 2" in r for r in decision["reasons"]), decision
    stops = events(state, "process_stop")
    assert {e["node"] for e in stops if e["reason"] == "signal"} == {2}
    assert {e["node"] for e in stops if e["reason"] == "request"} == {0, 1}, stops
    log = work_log(state)
    assert all(sum(1 for _, node, *_ in log if node == n) < 30 for n in "01"), "a node worked on to its end"
    cluster.command("scancel", job)


def test_a_real_time_limit_warning_to_the_steps_requeues(cluster, limit_jobs):
    resume_after_the_limit(cluster, limit_jobs, "srun", 35, "[SIGUSR1 to the job's steps, node 0")


def test_without_a_step_the_deadline_stops_the_command_before_the_limit(cluster, limit_jobs):
    # `gstop run -- python` without B:: the warning reaches nobody; GRACEFULSTOP_DEADLINE does.
    resume_after_the_limit(cluster, limit_jobs, "batch", 70, "stopped itself at or before its deadline")


def test_a_real_time_limit_warning_to_gstop_requeues(cluster, limit_jobs):
    resume_after_the_limit(cluster, limit_jobs, "B", 35, "(the time-limit warning) [SIGUSR1 to gstop]")


def test_several_tasks_per_node_each_work_their_own_share(cluster, limit_jobs, tmp_path):
    # Before: ranks 0 and 1 of a node got the same units (SLURM_NODEID), so every unit ran twice.
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path,
        state,
        sbatch="--nodes=2 --ntasks-per-node=2 --exclude=n3",
        command="srun {python} -u {worker}",
        WORKER_UNITS="24",
        WORKER_NODES="4",
        WORKER_SECONDS="1",
    )
    cluster.wait("all four tasks working", lambda: {node for _, node, *_ in work_log(state)} == {"0", "1", "2", "3"})
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    log = assert_each_unit_once(state, 24)
    assert {node for _, node, *_ in log} == {"0", "1", "2", "3"}
    assert remaining(state) == 0


def test_with_the_strict_split_fewer_shares_than_tasks_is_refused_with_what_to_set(cluster, limit_jobs, tmp_path):
    # Balancing (the default) runs such a state (test_slurm_balance.py); --balance off keeps each
    # task to its own share, and 4 tasks cannot share 2 shares that way.
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path,
        state,
        gstop_options="--balance off",
        sbatch="--nodes=2 --ntasks-per-node=2 --exclude=n3",
        command="srun {python} -u {worker}",
        WORKER_UNITS="8",
        WORKER_NODES="2",
    )
    cluster.wait_state(job, "FAILED", timeout=60)
    output = cluster.output(tmp_path, job)
    assert "this job has 4 tasks (from SLURM_PROCID)" in output and "create the state with nodes=4" in output, output
    assert work_log(state) == []  # no unit was begun, so none twice


def test_a_job_that_cannot_be_requeued_says_so_before_trying(cluster, limit_jobs, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="--no-requeue --exclude=n3", WORKER_UNITS="40", WORKER_SECONDS="0.5")
    cluster.wait("two units started", lambda: len(work_log(state)) >= 2)
    cluster.warn(job)
    info = cluster.wait_state(job, "FAILED", timeout=60)
    assert info["ExitCode"] == "75:0" and info["Requeue"] == "0"
    decision = decisions(state)[0]
    assert decision["action"] == "stop" and decision["exit"] == 75, decision
    assert any("the job cannot be requeued: scontrol show job says Requeue=0" in r for r in decision["reasons"]), decision
    output = cluster.output(tmp_path, job)
    assert "decision: stop without requeue (exit 75)" in output and "requeue failed" not in output, output
    with gracefulstop.open(state) as opened:  # the stop was graceful: every begun unit is marked
        assert len(work_log(state)) == 40 - len(opened.remaining_units())


# Preemption: "low" (PriorityTier 1, GraceTime) on n3, preempted by a job in "high".


def test_preemption_with_srun_stops_in_grace_time_and_gstop_requeues_once(cluster, limit_jobs, tmp_path):
    # The steps get TERM when GraceTime starts, while the job is RUNNING with PreemptTime set. If
    # the script exits then, SLURM completes the job without requeuing it (seen here), so gstop
    # requeues it. Before: "cancelled", the job ended with 54 of 60 units left.
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="-p low --exclusive", command="srun {python} -u {worker}", WORKER_UNITS="40", WORKER_SECONDS="1")
    cluster.preempt(tmp_path, state)
    cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
    first = decisions(state)[0]
    assert first["action"] == "requeue", first
    assert any(r.startswith("preempted (PreemptTime set, GraceTime running) [SIGTERM to the job's steps") for r in first["reasons"]), first
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 40)
    assert cluster.show(job)["Restarts"] == "1"  # one requeue: gstop's, and none from SLURM on top
    assert remaining(state) == 0


def test_preemption_of_a_batch_only_job_is_left_to_slurm_which_requeues_it(cluster, limit_jobs, tmp_path):
    # Without a step, nothing reaches the job until GraceTime ends; then gstop gets TERM while
    # SLURM has already requeued the job (COMPLETING, Restarts moved): gstop stops the command
    # gracefully, does not requeue a second time, and exits 0.
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, sbatch="-p low --exclusive", WORKER_UNITS="60", WORKER_SECONDS="1")
    cluster.preempt(tmp_path, state)
    cluster.wait("gstop's decision", lambda: decisions(state), timeout=90)
    first = decisions(state)[0]
    assert first["action"] == "slurm_requeued" and first["exit"] == 0, first
    assert any("SLURM requeued the job (Restarts 0 -> 1)" in r for r in first["reasons"]), first
    cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 60)
    assert remaining(state) == 0


def stepd_of(job: str, node: str) -> list[int]:
    """The slurmstepd of `job`'s first step on `node`, and its task (this machine's processes)."""
    found = []
    for line in subprocess.run(["pgrep", "-f", rf"slurmstepd: \[{job}\.0\]"], capture_output=True, text=True).stdout.split():
        stepd = int(line)
        for child in subprocess.run(["pgrep", "-P", str(stepd)], capture_output=True, text=True).stdout.split():
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            if f"SLURMD_NODENAME={node}".encode() in environ:
                found += [stepd, int(child)]
    return found


def test_a_node_failure_is_named_and_the_job_resumes(cluster, limit_jobs, tmp_path):
    # n2 dies (its slurmd, step daemon and task killed): SLURM requeues the job itself.
    # Before: the surviving node's decision said "cancelled".
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path, state, sbatch="--nodes=2 -w n1,n2", command="srun {python} -u {worker}", WORKER_UNITS="40", WORKER_NODES="2", WORKER_SECONDS="1"
    )
    cluster.wait("both nodes working", lambda: {node for _, node, *_ in work_log(state)} == {"0", "1"})
    victims = stepd_of(job, "n2")
    assert len(victims) == 2, victims
    slurmd = int(Path(f"{CLUSTER_DIR}/run/slurmd.n2.pid").read_text())
    for pid in [*victims, slurmd]:
        os.kill(pid, signal.SIGKILL)
    try:
        cluster.wait("gstop's decision", lambda: decisions(state), timeout=120)
    finally:
        subprocess.run(["slurmd", "-f", f"{CLUSTER_DIR}/slurm.conf", "-N", "n2"], check=True, env=cluster.env)
    first = decisions(state)[0]
    assert first["action"] == "slurm_requeued" and first["exit"] == 0, first
    assert any(r.startswith("a node of the job failed (SLURM has requeued the job)") for r in first["reasons"]), first
    cluster.wait("n2 back", lambda: "idle" in cluster.command("sinfo", "-h", "-n", "n2", "-o", "%t"), timeout=90)
    cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert remaining(state) == 0
    log = work_log(state)
    assert sorted({unit for unit, *_ in log}) == [f"u{i:03d}" for i in range(40)]
    twice = [unit for unit in {u for u, *_ in log} if sum(1 for u, *_ in log if u == unit) > 1]
    assert len(twice) <= 1 and all(int(u[1:]) >= 20 for u in twice), twice  # only n2's unit in flight may run again


def test_a_job_of_an_unprivileged_user_is_warned_requeued_resumed_and_finished(cluster, limit_jobs, unprivileged):
    job, state = submit_as_user(cluster, unprivileged, "field", sbatch="--exclude=n3", WORKER_UNITS="12", WORKER_SECONDS="1")
    assert cluster.show(job)["UserId"].startswith(f"{USER}(")
    cluster.wait("three units started", lambda: len(work_log(state)) >= 3)
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1)
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 12)
    assert [d["action"] for d in decisions(state)] == ["requeue", "finish"]
    owner = pwd.getpwnam(USER).pw_uid
    assert {p.stat().st_uid for p in state.rglob("*")} == {owner}  # every file the job wrote is the user's


def test_a_command_the_user_cannot_reach_is_permission_denied_not_not_found(unprivileged, tmp_path):
    base, work = unprivileged
    locked = Path("/tmp/gracefulstop-locked")
    locked.mkdir(mode=0o700, exist_ok=True)
    os.chmod(locked, 0o700)
    program = locked / "python"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    result = subprocess.run(
        ["runuser", "-u", USER, "--", str(base / "gstop"), "run", "--state", str(work / "denied"), "--", str(program)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 74, result.stderr
    assert f"cannot run {program}: permission denied" in result.stderr, result.stderr
