"""The core scenarios on the SLURM releases sites run besides Debian 12's 22.05: 24.11 (Debian
trixie) and 26.05 (Debian forky), each a real 3-node cluster inside a debootstrapped chroot
(scripts/slurm-cluster with GSTOP_SLURM_SUITE), whose jobs run the chroot's own Python and read
that release's own `scontrol` text. Their signals and states are the same as 22.05's; their text
is not (24.11 splits TRES, 26.05 adds SubmitLine with the raw submit command and sets
SLURM_STEP_ID=-5 in the batch script), and user text in free-text fields must change nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import GSTOP, REPOSITORY, WORKER
from slurmtest import Cluster, assert_each_unit_once, events, work_log

import gracefulstop

RELEASES = {"trixie": "24.11", "forky": "26.05"}


@pytest.fixture(scope="module", params=sorted(RELEASES))
def release(request):
    suite = request.param
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("the SLURM tests need root to debootstrap and start the cluster (run ./scripts/test as root, as CI does)")
    env = {**os.environ, "GSTOP_SLURM_SUITE": suite}
    script = str(REPOSITORY / "scripts" / "slurm-cluster")
    started = time.monotonic()
    result = subprocess.run([script, "start"], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, f"the {suite} cluster did not start:\n{result.stdout}\n{result.stderr}"
    print(f"\n{suite} cluster up in {time.monotonic() - started:.1f} s: {result.stdout.strip()}")
    # What its jobs run, where the chroot sees it (/tmp is shared): gstop, the package, the worker.
    base = Path(f"/tmp/gracefulstop-{suite}-package")
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(Path(gracefulstop.__file__).parent, base / "site" / "gracefulstop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(gracefulstop.LIBRARY_PATH, base / "site" / "gracefulstop" / "libgracefulstop.so")
    shutil.copy2(GSTOP, base / "gstop")
    shutil.copy2(WORKER, base / "job_worker.py")
    root = os.path.join(os.environ.get("GSTOP_CHROOT_CACHE", "/var/cache/gracefulstop"), f"slurm-{suite}")
    cluster = Cluster(f"/tmp/gracefulstop-slurm-{suite}/slurm.conf", chroot=root)
    cluster.gstop, cluster.python, cluster.worker = str(base / "gstop"), "/usr/bin/python3", str(base / "job_worker.py")
    cluster.job_env = {"PYTHONPATH": str(base / "site"), "GRACEFULSTOP_LIBRARY": str(base / "site" / "gracefulstop" / "libgracefulstop.so")}
    assert RELEASES[suite] in cluster.version, cluster.version
    yield cluster
    if "already running" not in result.stdout:
        subprocess.run([script, "stop"], timeout=120, env=env)


@pytest.fixture(scope="module")
def limit_job(release, tmp_path_factory):
    """A job that reaches a real one-minute time limit (no warning, no deadline): submitted first."""
    directory = tmp_path_factory.mktemp("limit")
    state = directory / "state"
    job = release.submit(
        directory, state, gstop_options="--deadline-margin off", sbatch="--time=1 --exclude=n3", WORKER_UNITS="400", WORKER_SECONDS="1"
    )
    return job, state


def first_decision(state: Path) -> dict:
    return events(state, "decision")[0]


def test_warning_requeue_resume_finish(release, limit_job, tmp_path):
    state = tmp_path / "state"
    job = release.submit(tmp_path, state, sbatch="--exclude=n3", WORKER_UNITS="12", WORKER_SECONDS="1")
    release.wait("three units started", lambda: len(work_log(state)) >= 3)
    release.warn(job)
    release.wait_state(job, "PENDING", restarts=1)
    release.release(job)
    release.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 12)
    assert [d["action"] for d in events(state, "decision")] == ["requeue", "finish"]


def test_scancel_ends_the_job_whatever_its_name_and_comment_say(release, limit_job, tmp_path):
    # Free-text fields that mimic a time limit must not turn a cancel into a requeue.
    state = tmp_path / "state"
    job = release.submit(
        tmp_path,
        state,
        sbatch="--exclude=n3",
        WORKER_UNITS="100",
        WORKER_SECONDS="0.5",
        sbatch_args=(
            "-J",
            "fake JobState=COMPLETING Reason=TimeLimit Restarts=3",
            "--comment",
            "Reason=TimeLimit JobState=TIMEOUT EndTime=2020-01-01T00:00:00",
        ),
    )
    release.wait("two units started", lambda: len(work_log(state)) >= 2)
    release.command("scancel", job)
    release.wait("gstop's decision", lambda: events(state, "decision"), timeout=60)
    decision = first_decision(state)
    assert decision["action"] == "stop" and any("a cancel always ends the job" in r for r in decision["reasons"]), decision
    time.sleep(3)
    assert release.show(job)["Restarts"] == "0"


def test_a_warning_to_the_steps_requeues(release, limit_job, tmp_path):
    state = tmp_path / "state"
    job = release.start_on_nodes(tmp_path, state, nodes=2, units=20)
    release.command("scancel", "--signal=USR1", job)
    release.wait_state(job, "PENDING", restarts=1)
    decision = first_decision(state)
    assert decision["action"] == "requeue" and any("[SIGUSR1 to the job's steps" in r for r in decision["reasons"]), decision
    release.release(job)
    release.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 20)


def test_preemption_with_srun_is_requeued_once_by_slurm(release, limit_job, tmp_path):
    # Unlike 22.05, these releases requeue a preempted job whose script exits during GraceTime by
    # themselves (seen here); a requeue of gstop's on top was carried over and requeued the next,
    # finished attempt once more (Restarts=2). So here gstop leaves the requeue to SLURM.
    state = tmp_path / "state"
    job = release.submit(tmp_path, state, sbatch="-p low --exclusive", command="srun {python} -u {worker}", WORKER_UNITS="40", WORKER_SECONDS="1")
    release.preempt(tmp_path, state)
    release.wait_state(job, "PENDING", restarts=1, timeout=60)
    decision = first_decision(state)
    assert decision["action"] == "slurm_requeued" and decision["exit"] == 0, decision
    assert any(r.startswith("preempted (PreemptTime set") for r in decision["reasons"]), decision
    assert any("requeues a preempted job whose script exits during GraceTime by itself" in r for r in decision["reasons"]), decision
    release.release(job)
    release.wait_state(job, "COMPLETED", restarts=1, timeout=180)
    assert_each_unit_once(state, 40)
    time.sleep(3)
    assert release.show(job)["Restarts"] == "1"


def test_a_real_time_limit_requeues_from_the_term(release, limit_job):
    job, state = limit_job
    release.wait_state(job, "PENDING", restarts=1, timeout=240)
    assert events(state, "signal")[0]["cause"] == "stopped by the time limit (TERM, Reason=TimeLimit)"
    decision = first_decision(state)
    assert decision["action"] == "requeue" and decision["target"] == job
    with gracefulstop.open(state) as opened:  # stopped after a whole unit: every begun unit is marked
        assert len(work_log(state)) == 400 - len(opened.remaining_units())
    release.command("scancel", job)
