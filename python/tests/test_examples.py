"""The examples run as shipped: the "run" example under gstop in local mode, resuming work the old
scripts had finished."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

from conftest import GSTOP, REPOSITORY, child_environment


def test_the_run_example_under_gstop_honours_old_markers_and_finishes(tmp_path):
    for name in ("run_equations.py", "run_equations.sbatch"):
        shutil.copy(REPOSITORY / "examples" / "run" / name, tmp_path)
    equations = [f"eq_{i}" for i in range(1, 21)]
    (tmp_path / "equations.txt").write_text("\n".join(equations) + "\n")
    (tmp_path / "logs" / "completed").mkdir(parents=True)
    for done in ("eq_1", "eq_2", "eq_3"):  # finished by the old scripts
        (tmp_path / "logs" / "completed" / f"{done}.done").touch()
    result = subprocess.run(
        [GSTOP, "run", "--state", str(tmp_path / "state"), "--", "python3", "run_equations.py", "equations.txt"],
        cwd=tmp_path,
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "all work is done (run.done)" in result.stderr
    assert sorted(p.stem for p in (tmp_path / "results").iterdir()) == sorted(equations[3:])  # old ones not redone
    commands = [line for line in (tmp_path / "run_equations.sbatch").read_text().splitlines() if not line.startswith("#")]
    assert len(commands) == 1 and commands[0].startswith("exec gstop run --state")  # no trap, no flag file


def test_the_readme_recipes_are_the_examples_own_lines():
    # Each block after <!-- tested: FILE --> must be lines of FILE (the tests below run the files).
    readme = (REPOSITORY / "README.md").read_text()
    blocks = re.findall(r"<!-- tested: (\S+) -->\n```\w*\n(.*?)```", readme, re.S)
    assert {name for name, _ in blocks} >= {
        "examples/torch/train.py",
        "examples/lightning/train.py",
        "examples/sweeps/sweep.sbatch",
        "examples/torch/train.sbatch",
    }
    for name, block in blocks:
        lines = {line.strip() for line in (REPOSITORY / name).read_text().splitlines()}
        for line in block.splitlines():
            assert line.strip() in lines, f"README's recipe line is not in {name}: {line!r}"


def run_example(tmp_path, directory: str, *arguments: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The example under gstop in local mode: a warning 2 s before each 7 s attempt, restarts until done."""
    shutil.copy(REPOSITORY / "examples" / directory / "train.py", tmp_path)
    return subprocess.run(
        [GSTOP, "run", "--state", str(tmp_path / "state"), "--time-limit", "7s", "--warn-before", "2s", "--", sys.executable, "train.py", *arguments],
        cwd=tmp_path,
        env=env or child_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_torch_example_resumed_at_the_end_of_its_last_epoch_finishes(tmp_path):
    # A stop after the last batch of the last epoch checkpoints (epoch 2, step 16): the next attempt
    # trains no batch, and once said its loss from a variable no batch had set (NameError, exit 1:
    # a CI run under load stopped there).
    checkpoint = (
        "import torch; m = torch.nn.Linear(1, 1); o = torch.optim.SGD(m.parameters(), lr=0.1); "
        "torch.save({'model': m.state_dict(), 'optimizer': o.state_dict(), 'epoch': 2, 'step': 16}, 'checkpoint.pt')"
    )
    subprocess.run([sys.executable, "-c", checkpoint], cwd=tmp_path, check=True, timeout=120)
    result = run_example(tmp_path, "torch")
    assert result.returncode == 0 and "trained 3 epochs: loss" in result.stdout, result.stdout + result.stderr[-3000:]
    assert [e["exit"] for e in attempts(tmp_path)] == [0]


def attempts(tmp_path) -> list[dict]:
    lines = (tmp_path / "state" / "events.jsonl").read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == "child_exit"]


def test_the_torch_example_stops_with_a_checkpoint_and_the_restart_finishes(tmp_path):
    result = run_example(tmp_path, "torch", "--step-seconds", "0.1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all work is done (study.done)" in result.stderr and "trained 3 epochs" in result.stdout, result.stdout + result.stderr[-3000:]
    assert "checkpoint written" in result.stdout and "killed by signal" not in result.stderr
    exits = attempts(tmp_path)
    assert len(exits) >= 2 and all(e["exit"] == 0 for e in exits), exits


def test_the_lightning_example_as_a_slurm_job_sees_it_stops_and_resumes_without_lightning_requeueing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path / 'scontrol.log'}\n")
    (bin_dir / "scontrol").chmod(0o755)
    # What Lightning reads to turn on its SLURMEnvironment with auto-requeue (only the command sees it).
    slurm = {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "train",
        "SLURM_NTASKS": "1",
        "SLURM_NODELIST": "n1",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    shutil.copy(REPOSITORY / "examples" / "lightning" / "train.py", tmp_path)
    result = subprocess.run(
        [
            GSTOP,
            "run",
            "--state",
            str(tmp_path / "state"),
            "--time-limit",
            "9s",
            "--warn-before",
            "3s",
            "--",
            "env",
            *[f"{k}={v}" for k, v in slurm.items()],
            sys.executable,
            "train.py",
            "--steps",
            "80",
            "--step-seconds",
            "0.05",
        ],
        cwd=tmp_path,
        env=child_environment(PATH=f"{bin_dir}:{os.environ['PATH']}"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all work is done (study.done)" in result.stderr and "trained 80 steps" in result.stdout
    assert "stopped at step" in result.stdout
    assert not (tmp_path / "scontrol.log").exists()  # Lightning called no scontrol
    assert len(attempts(tmp_path)) >= 2
