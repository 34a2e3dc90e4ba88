"""Site realities on the real test cluster (scripts/slurm-cluster): OpenMPI's mpirun as the launcher
(each rank its own share, the warning forwarded to every rank), and separate budgets — preemptions
do not use up --max-restarts, while time limits still stop at it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from slurmtest import assert_each_unit_once, events, work_log

import gracefulstop

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_btl": "self,tcp",
    "OMPI_MCA_btl_tcp_if_include": "lo",
    "OMPI_MCA_oob_tcp_if_include": "lo",
}


def decisions(state: Path) -> list[dict]:
    return [event for event in events(state) if event.get("event") == "decision"]


@pytest.fixture
def mpirun():
    if shutil.which("mpirun") is None and os.environ.get("CI") != "true":
        pytest.skip("OpenMPI's mpirun is not installed (./scripts/test installs openmpi-bin)")
    assert shutil.which("mpirun"), "mpirun is missing: ./scripts/test installs openmpi-bin"


@pytest.mark.parametrize("layout", ["2 ranks on one node", "1 rank on each of 2 nodes"])
def test_mpirun_ranks_each_work_their_own_share_and_stop_at_a_unit_boundary_on_the_warning(cluster, mpirun, tmp_path, layout):
    state = tmp_path / "state"
    sbatch = "--nodes=1 --ntasks=2" if layout.startswith("2 ranks") else "--nodes=2 --ntasks-per-node=1"
    job = cluster.submit(
        tmp_path,
        state,
        sbatch=sbatch,
        command="mpirun -np 2 {python} -u {worker}",
        WORKER_UNITS="40",
        WORKER_NODES="2",
        WORKER_SECONDS="0.5",
        **MPI_ENV,
    )
    # Both ranks at work (each logs its own share's node number), then the warning mid-run.
    cluster.wait("both ranks working", lambda: {line[1] for line in work_log(state)} == {"0", "1"}, timeout=120)
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1, timeout=90)
    first = decisions(state)[0]
    assert first["action"] == "requeue" and any("the time-limit warning" in r for r in first["reasons"]), first
    # Every rank stopped at a unit boundary: each unit begun in the first attempt was marked.
    begun_first = [line[0] for line in work_log(state) if line[2] == "0"]
    with gracefulstop.open(state, node=0) as opened:
        left = set(opened.remaining_units(0)) | set(opened.remaining_units(1))
    assert not left & set(begun_first), (left & set(begun_first), cluster.output(tmp_path, job)[-3000:])
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 40)  # none begun twice: by two ranks at once, or again after the stop
    assert cluster.show(job)["Restarts"] == "1"
    exits = [event for event in events(state) if event.get("event") == "child_exit"]
    assert [e["exit"] for e in exits] == [0, 0], exits
    print(
        f"\nmpirun, {layout}: {len(begun_first)} units before the warning, one requeue, 40 units once; "
        f"forwarded: {'mpirun: Forwarding signal 10' in cluster.output(tmp_path, job)}"
    )


def test_preemptions_do_not_use_up_max_restarts(cluster, tmp_path):
    # "low" (PriorityTier 1, GraceTime) on n3, preempted twice by jobs in "high"; --max-restarts 1.
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path,
        state,
        gstop_options="--max-restarts 1",
        sbatch="-p low --exclusive",
        command="srun {python} -u {worker}",
        WORKER_UNITS="30",
        WORKER_SECONDS="1",
    )
    for preemption in (1, 2):
        started = len(work_log(state))
        cluster.wait("three more units started", lambda: len(work_log(state)) >= started + 3, timeout=120)
        cluster.command("sbatch", "--parsable", "-p", "high", "-o", str(tmp_path / "high-%j.out"), "--wrap", "sleep 2")
        cluster.wait_state(job, "PENDING", restarts=preemption, timeout=90)
        cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=2, timeout=240)
    assert_each_unit_once(state, 30)
    lines = decisions(state)
    assert [d["action"] for d in lines] == ["requeue", "requeue", "finish"], lines
    assert any("preemption 1, not counted against --max-restarts (0 of 1 used)" in r for r in lines[0]["reasons"]), lines[0]
    assert any("preemption 2, not counted against --max-restarts (0 of 1 used)" in r for r in lines[1]["reasons"]), lines[1]
    print(f"\npreempted twice under --max-restarts 1: {lines[1]['reasons'][-1]}; COMPLETED")


def test_time_limit_warnings_still_stop_at_max_restarts(cluster, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(tmp_path, state, gstop_options="--max-restarts 1", WORKER_UNITS="60", WORKER_SECONDS="1")
    for attempt in (0, 1):
        cluster.wait("a unit of this attempt", lambda: any(line[2] == str(attempt) for line in work_log(state)), timeout=120)
        cluster.warn(job)
        if attempt == 0:
            cluster.wait_state(job, "PENDING", restarts=1, timeout=90)
            cluster.release(job)
    info = cluster.wait_state(job, "FAILED", "COMPLETED", timeout=120)
    lines = decisions(state)
    assert [d["action"] for d in lines] == ["requeue", "stop"], lines
    assert any("restart 1 of at most 1" in r for r in lines[0]["reasons"]), lines[0]
    assert any("restart 1 reached --max-restarts 1; not requeued" in r for r in lines[1]["reasons"]), lines[1]
    assert info["ExitCode"].startswith("75:"), info


def crashes(state: Path) -> list[list[str]]:
    path = state / "crashes.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_a_node_that_kills_every_unit_is_excluded_and_its_units_are_not_quarantined(cluster, tmp_path):
    # Every unit begun on n2 kills its worker; n1's worker takes such a unit first (a second
    # opinion) and does it. Two of them make n2 bad: the requeue excludes it, the job finishes on
    # n1 and n3, and no unit is quarantined for n2's failures.
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path,
        state,
        gstop_options="--retry-failures 3",
        sbatch="--nodes=2",
        command="srun {python} -u {worker}",
        WORKER_UNITS="24",
        WORKER_NODES="2",
        WORKER_SECONDS="1",
        WORKER_CRASH_NODE="n2",
    )

    def done_on_n1(unit: str) -> bool:
        with gracefulstop.open(state, node=0) as opened:
            return opened.is_done(unit)

    for attempt in (0, 1):
        running = cluster.wait_state(job, "RUNNING", restarts=attempt, timeout=120)
        assert running["NodeList"] == "n[1-2]", running  # first fit: n2 again, until it is excluded
        cluster.wait(f"n2's worker dies in attempt {attempt}", lambda: any(c[2] == str(attempt) for c in crashes(state)), timeout=120)
        crashed = next(c[0] for c in crashes(state) if c[2] == str(attempt))
        cluster.wait(f"{crashed} done on n1", lambda: done_on_n1(crashed), timeout=120)
        cluster.warn(job)
        cluster.wait_state(job, "PENDING", restarts=attempt + 1, timeout=90)
        if attempt == 0:
            cluster.release(job)
    second = decisions(state)[1]
    assert second["action"] == "requeue", second
    assert any("bad node n2 (" in r and "the requeued job excludes n2 (ExcNodeList=n2)" in r for r in second["reasons"]), second
    assert cluster.show(job)["ExcNodeList"] == "n2"
    cluster.release(job)
    info = cluster.wait_state(job, "COMPLETED", restarts=2, timeout=180)
    assert info["NodeList"] == "n[1,3]", info
    assert_each_unit_once(state, 24)  # a crash on n2 comes before the work.log line
    status = json.loads(cluster.command("env", f"PATH={os.environ['PATH']}", cluster.gstop, "status", "--json", "--state", str(state)))
    assert status["quarantined"] == [] and status["remaining"] == 0 and status["run_done"], status
    assert [bad["node"] for bad in status["bad_nodes"]] == ["n2"] and len(status["bad_nodes"][0]["units"]) == 2, status["bad_nodes"]
    print(f"\nbad node: {next(r for r in second['reasons'] if 'bad node' in r)}")
