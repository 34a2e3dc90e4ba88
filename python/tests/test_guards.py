"""The crash-loop guard when events.jsonl, where it counts attempts, cannot be written (here a
directory in its place; a full or over-quota filesystem, a read-only state or a permission change
do the same): gstop keeps the counts of its own restarts in memory, so the guards allow exactly as
many attempts as with a working log. (Under SLURM, where each attempt is a new gstop, an attempt
that got nowhere stops with exit 74 instead: test_slurm_guards.py.)"""

from __future__ import annotations

from pathlib import Path

from test_gstop import gstop

import gracefulstop


def blind(state: Path) -> None:
    gracefulstop.create(state, [f"u{i}" for i in range(5)], nodes=1)
    (state / "events.jsonl").mkdir()


def test_retry_failures_allows_its_retries_and_no_more_without_a_log(tmp_path):
    # Before: a command that failed every time under --retry-failures 2 was started 21 times
    # ("failure 0 of 2 retried ... restart 20 reached --max-restarts 20").
    state, starts = tmp_path / "state", tmp_path / "starts"
    blind(state)
    result = gstop("run", "--state", str(state), "--retry-failures", "2", "--", "sh", "-c", f"echo x >> {starts}; exit 1")
    assert starts.read_text().count("x") == 3, result.stderr  # the first attempt and 2 retries
    assert result.returncode == 1 and "the command failed on its own; not requeued (2 retries used of --retry-failures 2)" in result.stderr
    assert f"could not write the events log: cannot open {state}/events.jsonl" in result.stderr, result.stderr
    print(f"\nunwritable log, --retry-failures 2: {starts.read_text().count('x')} starts (before: 21)")


def test_the_idle_guard_stops_after_its_attempts_without_a_log(tmp_path):
    # Attempts warned by a local time limit that never mark a unit: --max-idle-attempts 3 ends it.
    state, starts = tmp_path / "state", tmp_path / "starts"
    blind(state)
    result = gstop(
        "run",
        "--state",
        str(state),
        "--time-limit",
        "1s",
        "--warn-before",
        "0.5s",
        "--",
        "sh",
        "-c",
        f"echo x >> {starts}; exec sleep 30",
        timeout=180,
    )
    assert starts.read_text().count("x") == 3, result.stderr
    assert result.returncode == 75 and "3 attempts in a row marked no unit (--max-idle-attempts 3); not requeued" in result.stderr, result.stderr
    print(f"\nunwritable log, --max-idle-attempts 3: {starts.read_text().count('x')} starts (before: 21)")
