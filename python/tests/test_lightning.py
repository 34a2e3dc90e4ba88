"""gracefulstop.lightning with the real Lightning package, in a process that looks like a SLURM job
to Lightning (its SLURMEnvironment with auto-requeue, the default), a fake `scontrol` first on PATH
logging every call: the warning stops the trainer at a step with a checkpoint, nobody but gstop
requeues, a late warning does not kill, and the next attempt resumes at the next step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GSTOP, child_environment


def _import_lightning():
    try:
        import lightning  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "lightning"], check=True, timeout=1200)


_import_lightning()

JOB = str(Path(__file__).resolve().parent / "lightning_job.py")
STEPS = 60
# What Lightning reads to choose its SLURMEnvironment (auto_requeue=True by default).
SLURM_LOOK = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "train",
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_NODELIST": "n1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}


@pytest.fixture
def fake_scontrol(tmp_path):
    """A directory with an `scontrol` that logs its arguments and its caller, and succeeds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scontrol.log"
    script = bin_dir / "scontrol"
    script.write_text(f"#!/bin/sh\necho \"$(cat /proc/$PPID/comm) $*\" >> {log}\nexit 0\n")
    script.chmod(0o755)
    return bin_dir, log


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def steps(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "steps.jsonl").read_text().splitlines()]


def run_job(directory: Path, bin_dir: Path, *options: str, warnings: int = 1):
    """The job as a SLURM step would run it; the warning (USR1) once training runs, and with
    warnings=2 a second one after fit() returned."""
    env = child_environment(PATH=f"{bin_dir}:{os.environ['PATH']}", **SLURM_LOOK)
    # In its own directory: Lightning writes its own SLURM checkpoints (hpc_ckpt_N.ckpt) into the
    # working directory, and resumes from any it finds there.
    job = subprocess.Popen(
        [sys.executable, JOB, str(directory), *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=directory
    )
    assert job.stdout.readline() == "training\n"
    time.sleep(0.8)
    job.send_signal(signal.SIGUSR1)
    lines = []
    if warnings == 2:
        for line in job.stdout:
            lines.append(line)
            if line.startswith("fit returned"):
                time.sleep(0.3)
                job.send_signal(signal.SIGUSR1)  # the late warning
                break
    out, err = job.communicate(timeout=300)
    return job.returncode, "".join(lines) + out, err


def test_without_the_callback_lightning_takes_the_signal_and_calls_scontrol_itself(tmp_path, fake_scontrol):
    # The field condition: Lightning replaces gracefulstop's handler and requeues on its own.
    bin_dir, log = fake_scontrol
    _status, _out, err = run_job(tmp_path, bin_dir)
    assert any(call.endswith("requeue 4242") for call in calls(log)), (calls(log), err[-2000:])
    assert list(tmp_path.glob("hpc_ckpt_*.ckpt")), "Lightning saved no checkpoint of its own"


def test_the_callback_stops_at_a_step_with_a_checkpoint_and_nobody_else_requeues(tmp_path, fake_scontrol):
    bin_dir, log = fake_scontrol
    status, out, err = run_job(tmp_path, bin_dir, "--callback", "--linger", "2", warnings=2)
    assert status == 0, err[-3000:]
    assert calls(log) == []  # Lightning's auto-requeue is off: no scontrol at all
    assert "alive after lingering" in out  # the late warning, after fit(), did not kill it
    stopped_at = int(out.split("fit returned at step ")[1].split()[0])
    assert 0 < stopped_at < STEPS and (tmp_path / "stop.ckpt").exists()
    assert [s["step"] for s in steps(tmp_path)] == list(range(stopped_at))

    # The next attempt resumes at the next step and finishes.
    env = child_environment(PATH=f"{bin_dir}:{os.environ['PATH']}", GRACEFULSTOP_RESTART_COUNT="1", **SLURM_LOOK)
    result = subprocess.run([sys.executable, JOB, str(tmp_path), "--callback"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"fit returned at step {STEPS}" in result.stdout
    assert sorted(s["step"] for s in steps(tmp_path)) == list(range(STEPS))  # every step once across both attempts
    assert calls(log) == []


def test_under_gstop_one_requeue_per_warning_and_the_run_finishes(tmp_path, fake_scontrol):
    bin_dir, log = fake_scontrol
    state, work = tmp_path / "state", tmp_path / "work"
    work.mkdir()
    # gstop in local mode acts out the time limit; the command sees SLURM's variables, as Lightning
    # would in a job. Each warning must lead to exactly one requeue: gstop's (a local restart).
    result = subprocess.run(
        [
            GSTOP,
            "run",
            "--state",
            str(state),
            "--time-limit",
            "8s",
            "--warn-before",
            "3s",
            "--",
            "env",
            *[f"{k}={v}" for k, v in SLURM_LOOK.items()],
            sys.executable,
            JOB,
            str(work),
            "--callback",
        ],
        env=child_environment(PATH=f"{bin_dir}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=work,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all work is done (study.done)" in result.stderr
    events = [json.loads(line) for line in (state / "events.jsonl").read_text().splitlines()]
    exits = [e for e in events if e["event"] == "child_exit"]
    decisions = [e["action"] for e in events if e["event"] == "decision"]
    # Every attempt but the last was stopped by the warning and requeued once, by gstop.
    assert len(exits) >= 2 and all("warning" in e["cause"] for e in exits[:-1]), exits
    assert decisions == ["requeue"] * (len(exits) - 1) + ["finish"], decisions
    assert calls(log) == []  # no requeue from Lightning
    assert sorted(s["step"] for s in steps(work)) == list(range(STEPS))
    assert not list(work.glob("hpc_ckpt_*.ckpt"))  # Lightning's own SLURM checkpoint never written
