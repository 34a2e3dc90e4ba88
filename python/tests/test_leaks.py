"""Issue 6, point 7: the library driven from Python leaks nothing through its returned buffers.

Every C function that hands memory to the caller (unit lists, strings) is called many times from
Python under valgrind's memcheck, and the leak report is read for blocks allocated inside
libgracefulstop.so. A control run that skips one free on purpose must show exactly such a block,
so the check is known to see a leak when there is one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_environment, record_reliability

DRIVER = r"""
import ctypes, os, sys
import gracefulstop
from gracefulstop import _ffi

state_dir, rounds, leak_one = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
os.environ["SLURM_JOB_ID"] = "4711"
units = [f"unit {i}/x" if i % 3 else f"u{i}" for i in range(60)] + ["y" * 300]
state = gracefulstop.create(state_dir, units, nodes=3, partition="block")
for i in range(0, len(units), 2):
    state.mark_done(units[i])
for _ in range(rounds):
    for node in range(3):
        state.remaining_units(node)            # gracefulstop_unit_list_free
        state.progress(node)
    state.marker_path(units[-1])               # gracefulstop_string_free
    gracefulstop.marker_name("a/b ü")
    gracefulstop.job()
    state.request_stop("leak check")
    state.stop_reason()                        # its detail string is freed
    for bad in ("not a unit", ""):
        try:
            state.mark_done(bad)               # an error: the thread-local message
        except gracefulstop.GracefulStopError:
            pass
    try:
        gracefulstop.open(os.path.join(state_dir, "missing"))
    except gracefulstop.GracefulStopError:
        pass
    other = gracefulstop.open(state_dir, node=1)  # a handle opened and closed
    other.remaining_units()
    other.close()
if leak_one:                                   # the control: one list never freed
    kept = _ffi.UnitList()
    _ffi.lib.gracefulstop_remaining_units(state._handle, 1, ctypes.byref(kept))
    kept = None
state.close()
print("driver done", flush=True)
"""


def library_records(log: str) -> list[str]:
    """The valgrind loss records (any kind) with a frame in the library: named by the file
    (a release build without symbols) or by a symbol of the Swift module or the C ABI."""
    return [r for r in re.split(r"\n==\d+== \n", log) if " blocks are " in r and re.search(r"libgracefulstop|12GracefulStop|gracefulstop_", r)]


def lost_in_library(log: str) -> list[str]:
    """The records of blocks allocated in the library and definitely or indirectly lost."""
    return [r for r in library_records(log) if re.search(r"are (definitely|indirectly) lost", r)]


def library_bytes(log: str) -> int:
    """All bytes allocated in the library and not freed at exit (lost or still reachable)."""
    return sum(int(re.search(r"([\d,]+)(?: \(.*?\))? bytes in", r).group(1).replace(",", "")) for r in library_records(log))


def run_driver(tmp_path: Path, name: str, rounds: int, leak_one: bool) -> tuple[str, list[str]]:
    log_file = tmp_path / f"{name}.valgrind"
    result = subprocess.run(
        [
            "valgrind",
            "--tool=memcheck",
            "--leak-check=full",
            "--show-leak-kinds=all",
            "--num-callers=40",
            f"--log-file={log_file}",
            sys.executable,
            "-c",
            DRIVER,
            str(tmp_path / name),
            str(rounds),
            "1" if leak_one else "0",
        ],
        env=child_environment(PYTHONMALLOC="malloc"),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0 and "driver done" in result.stdout, result.stdout + result.stderr
    log = log_file.read_text()
    assert "LEAK SUMMARY" in log or "All heap blocks were freed" in log, log[-2000:]
    return log, lost_in_library(log)


@pytest.mark.skipif(
    shutil.which("valgrind") is None and os.environ.get("CI") != "true", reason="valgrind is not installed (scripts/test installs it as root)"
)
def test_returned_buffers_are_freed_under_valgrind(tmp_path):
    rounds = int(os.environ.get("GRACEFULSTOP_LEAK_ROUNDS", "200"))
    short = max(1, rounds // 10)
    log, leaks = run_driver(tmp_path, "freed", rounds, leak_one=False)
    short_log, _ = run_driver(tmp_path, "short", short, leak_one=False)
    control_log, control_leaks = run_driver(tmp_path, "control", 2, leak_one=True)
    kept, kept_short = library_bytes(log), library_bytes(short_log)
    record_reliability(
        "leaks under valgrind",
        rounds=rounds,
        calls_per_round=20,
        library_blocks_lost=len(leaks),
        control_blocks_lost=len(control_leaks),
        library_bytes_kept_at_exit={f"{short} rounds": kept_short, f"{rounds} rounds": kept},
    )
    assert leaks == [], "\n\n".join(leaks)
    # What the library keeps at exit (the Swift runtime's caches) does not grow with the calls.
    assert kept - kept_short <= 256, f"{kept_short} bytes after {short} rounds, {kept} after {rounds}"
    # The control skipped one gracefulstop_unit_list_free: valgrind must name that block.
    assert len(control_leaks) == 1, control_log[-4000:]
    assert "definitely lost" in control_leaks[0] and "gracefulstop_remaining_units" in control_leaks[0], control_leaks[0]


@pytest.mark.skipif(
    shutil.which("valgrind") is None and os.environ.get("CI") != "true", reason="valgrind is not installed (scripts/test installs it as root)"
)
def test_the_python_unit_tests_under_valgrind_lose_nothing_allocated_in_the_library(tmp_path):
    """The package's own tests of units, fixtures and bad input, run inside valgrind: every
    handle, list, string and error they make goes through the library in this one process."""
    tests = Path(__file__).resolve().parent
    modules = [str(tests / name) for name in ("test_units.py", "test_fixtures.py", "test_bad_input.py")]
    result = subprocess.run(
        [
            "valgrind",
            "--tool=memcheck",
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--num-callers=40",
            f"--log-file={tmp_path}/valgrind.%p.log",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={tmp_path / 'inner'}",
            *modules,
        ],
        env=child_environment(PYTHONMALLOC="malloc"),
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=tests,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))
    logs = [path.read_text() for path in tmp_path.glob("valgrind.*.log")]
    assert any("LEAK SUMMARY" in log for log in logs), "valgrind wrote no leak summary"
    leaks = [record for log in logs for record in lost_in_library(log)]
    record_reliability("leaks under valgrind", python_tests_under_valgrind=passed, python_tests_library_blocks_lost=len(leaks))
    assert passed >= 90
    assert leaks == [], "\n\n".join(leaks)
