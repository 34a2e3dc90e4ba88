"""Stop requests whatever the clocks say (Debian's faketime skews the requester's clock): a request
from a process whose clock is 90 s behind stops the running attempt, and one left by a process
whose clock is 5 minutes ahead never stops the attempts after it. Before, a request applied when
its time (the requester's clock) was not older than the attempt's start (gstop's clock): the first
was ignored (the loop ran all 60 units), the second stopped every later attempt at once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import child_environment
from test_gstop import start_supervisor, work_log

UNITS = 60
REQUESTER = "import sys, time, gracefulstop; gracefulstop.open(sys.argv[1]).request_stop(); print(time.time())"


def request_stop_with_clock(state: Path, offset_seconds: int) -> None:
    faketime = shutil.which("faketime")
    if not faketime:
        if os.environ.get("CI") == "true":
            pytest.fail("faketime is not installed (scripts/test installs it)")
        pytest.skip("faketime is not installed (apt-get install faketime)")
    done = subprocess.run(
        [faketime, "-f", f"{offset_seconds:+d}s", sys.executable, "-c", REQUESTER, str(state)],
        env=child_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    skew = float(done.stdout) - time.time()
    assert abs(skew - offset_seconds) < 5, f"faketime did not skew the requester's clock ({skew:.0f} s)"


def test_a_request_from_a_clock_90_s_behind_stops_the_attempt(tmp_path):
    supervisor = start_supervisor(tmp_path, WORKER_UNITS=str(UNITS), WORKER_SECONDS="0.1")
    while len(work_log(tmp_path)) < 5:
        time.sleep(0.05)
    request_stop_with_clock(tmp_path, -90)
    _, err = supervisor.communicate(timeout=120)
    done = len(work_log(tmp_path))
    assert supervisor.returncode == 75 and "a requested stop ends the job" in err, err
    assert done < UNITS - 10, f"the loop ran {done} of {UNITS} units"  # stopped within a look or two (1 s)
    print(f"\na request from a clock 90 s behind: the loop stopped after {done} of {UNITS} units")


def test_a_request_from_a_clock_5_minutes_ahead_never_stops_a_later_attempt(tmp_path):
    supervisor = start_supervisor(tmp_path, WORKER_UNITS=str(UNITS), WORKER_SECONDS="0.1")
    while len(work_log(tmp_path)) < 5:
        time.sleep(0.05)
    request_stop_with_clock(tmp_path, 300)  # stops this attempt...
    _, err = supervisor.communicate(timeout=120)
    assert supervisor.returncode == 75 and "a requested stop ends the job" in err, err
    stopped_at = len(work_log(tmp_path))
    again = start_supervisor(tmp_path, WORKER_UNITS=str(UNITS), WORKER_SECONDS="0.1")  # ...not the next one
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0 and "decision: finish" in err, err
    units = sorted(unit for unit, *_ in work_log(tmp_path))
    assert len(units) == UNITS and len(set(units)) == UNITS, "every unit once"
    print(f"\na request from a clock 5 minutes ahead stopped its attempt at {stopped_at} units; the next attempt finished the run")
