"""A full filesystem under the state (a real tmpfs of 2 MiB, filled while a job marks units): the
library's error says "no space" and names the path, gstop does not requeue into it (a decision line
saying why, exit 75), every marker written before is intact, and once space is freed the next run
finishes every unit once."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GSTOP, child_environment

import gracefulstop

WORKER = r"""
import os, sys, time, gracefulstop
state_dir, log = sys.argv[1], sys.argv[2]
state = gracefulstop.create(state_dir, [f"u{i:03d}" for i in range(60)], nodes=1)
for unit in state.work():
    time.sleep(0.05)
    state.mark_done(unit)
    with open(log, "a") as out:
        out.write(unit + "\n")
"""


@pytest.fixture
def small_filesystem(tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a small tmpfs needs root")
        pytest.skip("mounting a small tmpfs needs root (CI runs this test as root)")
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
                filler.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error


def gstop_run(state: Path, log: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [GSTOP, "run", "--state", str(state), "--", sys.executable, "-c", WORKER, str(state), str(log)],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_full_filesystem_stops_the_job_without_a_requeue_and_the_next_run_finishes(small_filesystem, tmp_path):
    state, log = small_filesystem / "state", tmp_path / "work.log"
    job = subprocess.Popen(
        [GSTOP, "run", "--state", str(state), "--", sys.executable, "-c", WORKER, str(state), str(log)],
        env=child_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not log.exists() or len(log.read_text().split()) < 10:
        assert time.monotonic() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.05)
    fill(small_filesystem / "filler")
    _, err = job.communicate(timeout=120)
    assert job.returncode == 75, err
    assert "no space left on the state's filesystem" in err and f"{state}/" in err, err  # the library's error names the path
    decision = next(line for line in err.splitlines() if "decision:" in line)
    assert "stop without requeue (exit 75)" in decision and "the state cannot be written" in decision, decision
    assert "free space (or raise the quota), then submit the job again" in decision
    marked = log.read_text().split()
    done_dir = state / "done" / "0"
    markers = sorted(p.name[:-5] for p in done_dir.iterdir() if p.name.endswith(".done"))
    assert set(marked) <= set(markers), (marked, markers)  # every returned mark is there
    # Run again while it is still full: the command is not even started.
    again = gstop_run(state, log)
    assert again.returncode == 75 and "not started" in again.stderr, again.stderr
    assert sorted(p.name[:-5] for p in done_dir.iterdir() if p.name.endswith(".done")) == markers  # intact
    # Space freed: the next run finishes; every unit marked once over both runs.
    (small_filesystem / "filler").unlink()
    finished = gstop_run(state, log)
    assert finished.returncode == 0, finished.stderr
    lines = log.read_text().split()
    assert sorted(lines) == [f"u{i:03d}" for i in range(60)], lines
    assert gracefulstop.open(state).remaining_units() == [] and (state / "run.done").exists()
    print(
        f"\nfull filesystem: {len(marked)} units marked before, the job stopped (exit 75) without a requeue; "
        f"{len(lines) - len(marked)} more after space was freed"
    )
