"""Per-unit intelligence under `gstop run` in local mode, with real processes, real timers and a real
segfault: units that cannot finish before the deadline are not begun, a unit that kills its worker
every time is quarantined while the rest of the run finishes, and the estimate in `gstop status`."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time
from pathlib import Path

from conftest import child_environment, worker_command
from test_gstop import events, gstop, work_log

import gracefulstop

UNITS = [f"u{i:03d}" for i in range(6)]


def run_short_limit(state: Path, mode: str) -> subprocess.CompletedProcess:
    # Units of 1 s; a 3 s limit whose warning comes 0.5 s before it; a short escalation (TERM 0.3 s
    # after the warning, KILL 0.2 s later), as SLURM's KillWait would cut a job that overruns.
    return gstop(
        "run",
        "--state",
        str(state),
        "--time-limit",
        "3s",
        "--warn-before",
        "0.5s",
        "--grace",
        "0.3s",
        "--term-grace",
        "0.3s",
        "--kill-after",
        "0.2s",
        "--max-idle-attempts",
        "0",
        "--",
        *worker_command(),
        WORKER_UNITS=str(len(UNITS)),
        WORKER_SECONDS="1",
        WORKER_MODE=mode,
        timeout=180,
    )


def test_the_seed_loop_begins_units_it_cannot_finish_and_loses_them(tmp_path):
    # Before: the loop checks should_stop() only; at 2.1 s it begins a 1 s unit that the limit kills.
    result = run_short_limit(tmp_path, "loop")
    assert result.returncode == 0, result.stderr
    begun = collections.Counter(unit for unit, *_ in work_log(tmp_path))
    assert set(begun) == set(UNITS) and (tmp_path / "run.done").exists()
    lost = sum(count - 1 for count in begun.values())
    assert lost >= 1, begun  # the condition the next test removes is real here
    print(f"\nseed loop: {sum(begun.values())} units begun, {len(UNITS)} done, {lost} begun and lost")


def test_work_never_begins_a_unit_that_cannot_finish_before_the_deadline(tmp_path):
    result = run_short_limit(tmp_path, "work")
    assert result.returncode == 0, result.stderr
    begun = collections.Counter(unit for unit, *_ in work_log(tmp_path))
    assert begun == dict.fromkeys(UNITS, 1), begun  # every unit begun once: none begun and lost
    state = gracefulstop.open(tmp_path)
    assert state.remaining_units() == [] and state.run_done()
    decisions = [e for e in events(tmp_path) if e["event"] == "decision"]
    assert [d["action"] for d in decisions] == ["requeue"] * (len(decisions) - 1) + ["finish"]
    # The attempts ended themselves before a unit they had no time for, and gstop requeued them.
    stops = [e for e in events(tmp_path) if e["event"] == "process_stop"]
    assert any(e["reason"] == "deadline" and "the next unit needs ~1s" in e["detail"] for e in stops), stops
    assert "stopped itself at or before its deadline" in result.stderr and "the next unit needs ~1s" in result.stderr
    assert "SIGKILL" not in result.stderr and "did not stop in time" not in result.stderr
    # Each marker records its unit's time: about 1 s.
    status = json.loads(gstop("status", "--json", "--state", str(tmp_path)).stdout)
    assert 0.9 <= status["unit_seconds"]["p50"] <= 1.5 and status["unit_seconds"]["sampled"] == len(UNITS), status
    assert not (tmp_path / "begun" / "0").exists() or list((tmp_path / "begun" / "0").iterdir()) == []
    print(f"\nwork(): {sum(begun.values())} units begun, {len(UNITS)} done, 0 lost, {len(decisions)} attempts")


def test_a_units_own_estimate_is_used_before_any_unit_has_finished(tmp_path):
    code = (
        "import gracefulstop, sys; s = gracefulstop.create(sys.argv[1], ['a', 'b']); "
        "print(s.begin('a', estimate=100)); print(s.stop_reason().detail); print(s.begin('b'))"
    )
    import subprocess
    import sys

    from conftest import child_environment

    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_environment(GRACEFULSTOP_DEADLINE=str(time.time() + 30)),
    )
    assert result.returncode == 0, result.stderr
    outcome, detail, second = result.stdout.splitlines()
    assert outcome == "stop" and "the next unit needs ~1m40s" in detail and second == "stop"


POISON_UNITS = 40


def run_poison(state: Path, *extra: str, mode: str = "poison", retry: bool = True, **env: str) -> subprocess.CompletedProcess:
    return gstop(
        "run",
        "--state",
        str(state),
        *(["--retry-failures", "5"] if retry else []),
        *extra,
        "--",
        *worker_command(),
        WORKER_UNITS=str(POISON_UNITS),
        WORKER_SECONDS="0.01",
        WORKER_MODE=mode,
        WORKER_POISON="u003",
        timeout=300,
        **env,
    )


def test_a_unit_that_sigkills_its_worker_is_quarantined_with_default_options(tmp_path):
    # Before: the first SIGKILL inside u003 (the OOM killer's signal) ended the run, "not requeued
    # (--retry-failures 0)", with 37 of 40 units left and no word of which unit was running.
    result = run_poison(tmp_path, retry=False, WORKER_POISON_SIGNAL="KILL")
    assert result.returncode == 65, result.stderr
    begun = collections.Counter(unit for unit, *_ in work_log(tmp_path))
    assert begun["u003"] == 3 and all(count == 1 for unit, count in begun.items() if unit != "u003"), begun
    assert len(begun) == POISON_UNITS  # the rest of the run went on: every other unit done once
    lines = [line for line in result.stderr.splitlines() if "decision:" in line]
    assert [line.split("decision: ")[1].split(" (")[0] for line in lines] == ["requeue a local restart"] * 3 + ["finish"], lines
    for attempt, line in enumerate(lines[:3], 1):
        assert f"killed by SIGKILL while on u003, attempt {attempt} of 3" in line, line
    assert "now quarantined" in lines[2] and "1 unit quarantined (u003)" in lines[3], lines
    print(f"\na unit that SIGKILLs its worker, default options: {lines[0]}")


def test_without_quarantine_a_poison_unit_stalls_the_run(tmp_path, monkeypatch):
    # Before: every retry dies at u003 (a real SIGSEGV); the crash-loop guard ends the job (three
    # attempts in a row marked nothing) with 36 units never run.
    result = run_poison(tmp_path, "--max-unit-attempts", "0")
    assert result.returncode == 75 and "the run: 37 of 40 units left" in result.stderr, result.stderr
    assert "3 attempts in a row marked no unit" in result.stderr
    monkeypatch.setenv("GRACEFULSTOP_MAX_UNIT_ATTEMPTS", "0")  # read as the job did (its claims record 4 failed attempts)
    assert len(gracefulstop.open(tmp_path).remaining_units()) == POISON_UNITS - 3
    print(f"\nno quarantine: exit {result.returncode}, {POISON_UNITS - 3} of {POISON_UNITS} units left")


def test_a_poison_unit_is_quarantined_and_every_other_unit_finishes_once(tmp_path):
    result = run_poison(tmp_path)
    # Every other unit done, the poison unit named, no requeue: exit 65.
    assert result.returncode == 65, result.stderr
    begun = collections.Counter(unit for unit, *_ in work_log(tmp_path))
    assert begun["u003"] == 3  # three attempts died in it (the default --max-unit-attempts)
    assert all(count == 1 for unit, count in begun.items() if unit != "u003"), begun
    state = gracefulstop.open(tmp_path)
    assert state.remaining_units() == []
    assert [u for u in (f"u{i:03d}" for i in range(POISON_UNITS)) if not state.is_done(u)] == ["u003"]
    assert (tmp_path / "run.quarantined").exists() and not (tmp_path / "run.done").exists()
    last = [e for e in events(tmp_path) if e["event"] == "decision"][-1]
    assert last["action"] == "finish" and last["exit"] == 65 and any("u003" in r for r in last["reasons"]), last
    assert "1 unit quarantined (u003)" in result.stderr
    quarantine = [e for e in events(tmp_path) if e["event"] == "quarantine"]
    assert [(e["unit"], e["attempts"]) for e in quarantine] == [("u003", 3)]
    # The guard saw progress: the attempt whose crash quarantined u003 does not count as idle.
    exits = [e for e in events(tmp_path) if e["event"] == "child_exit"]
    assert [e["exit"] for e in exits] == [139, 139, 139, 0] and [e["quarantined"] for e in exits] == [0, 0, 1, 0]

    # gstop status lists it (text and JSON) with its attempts; progress() too.
    status = json.loads(gstop("status", "--json", "--state", str(tmp_path)).stdout)
    assert [(q["unit"], q["attempts"]) for q in status["quarantined"]] == [("u003", 3)]
    assert [a["restart"] for a in status["quarantined"][0]["record"]["attempts"]] == [0, 1, 2]
    assert status["nodes"][0]["quarantined"] == 1 and status["remaining"] == 0 and status["run_quarantined"]
    text = gstop("status", "--state", str(tmp_path)).stdout
    assert "quarantined: u003 (node 0): begun 3 times without finishing" in text and f"gstop release --state {tmp_path} u003" in text
    assert state.progress().quarantined == ["u003"]

    # Released, it is begun again: with the bug fixed, the run completes.
    released = gstop("release", "--state", str(tmp_path), "u003")
    assert released.returncode == 0 and "released u003" in released.stderr
    assert not (tmp_path / "run.quarantined").exists() and state.remaining_units() == ["u003"]
    assert json.loads(gstop("status", "--json", "--state", str(tmp_path)).stdout)["quarantined"] == []
    fixed = run_poison(tmp_path, mode="work")
    assert fixed.returncode == 0, fixed.stderr
    assert (tmp_path / "run.done").exists() and state.remaining_units() == []
    assert [e["unit"] for e in events(tmp_path) if e["event"] == "release"] == ["u003"]


def test_a_stop_mid_unit_does_not_count_toward_quarantine(tmp_path):
    # A unit given up because a stop is due (the loop breaks) leaves no begin record; one given up
    # by an exception keeps it (it counts).
    state = gracefulstop.create(tmp_path, ["a", "b"])
    for unit in state.work():
        assert unit == "a"
        assert len(list((tmp_path / "begun" / "0").iterdir())) == 1
        break  # no stop due: the attempt counts
    records = list((tmp_path / "begun" / "0").iterdir())
    assert len(records) == 1 and json.loads(records[0].read_text())["unit"] == "a"
    state.request_stop("test")
    loop = state.work()
    assert list(loop) == []  # a stop is due: nothing begun
    gracefulstop.clear_signal()
    second = gracefulstop.create(tmp_path, ["a", "b"])
    assert second.begin("b") == "begun"
    second.request_stop("test")
    second.abandon("b")  # a stop is due: released (the claim keeps its name, and counts for nothing)
    records = [json.loads(p.read_text()) for p in (tmp_path / "begun" / "0").iterdir()]
    assert [(r["unit"], r.get("released", False)) for r in sorted(records, key=lambda r: r["unit"])] == [("a", False), ("b", True)]


def test_bad_estimates_are_refused_and_leave_the_state_intact(tmp_path):
    state = gracefulstop.create(tmp_path, ["a"])
    import pytest

    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(gracefulstop.InvalidArgumentError, match="estimate"):
            state.begin("a", estimate=bad)
    with pytest.raises(gracefulstop.UnknownUnitError):
        state.begin("zzz")
    assert not (tmp_path / "begun").exists() and state.remaining_units() == ["a"]


DIE_IN_UNIT = (
    "import gracefulstop, os, signal, sys; s = gracefulstop.open(sys.argv[1]); "
    "assert s.begin(sys.argv[2]) == 'begun', s.stop_reason(); os.kill(os.getpid(), signal.SIGKILL)"
)


def test_a_bad_nodes_failures_count_toward_no_quarantine(tmp_path):
    # Three attempts (restarts 0-2) each die inside u000 on SLURM node n2: quarantined after
    # --max-unit-attempts 3 — unless gstop has judged n2 bad, when they are the node's failures.
    for bad in (False, True):
        state = tmp_path / f"bad-{bad}"
        gracefulstop.create(state, UNITS)
        if bad:
            (state / "bad-nodes").mkdir()
            (state / "bad-nodes" / "n2.json").write_text('{"node": "n2", "units": ["u004", "u005"], "job": "7"}\n')
        for restart in range(3):
            died = subprocess.run(
                [sys.executable, "-c", DIE_IN_UNIT, str(state), "u000"],
                capture_output=True,
                text=True,
                env=child_environment(SLURMD_NODENAME="n2", GRACEFULSTOP_RESTART_COUNT=str(restart)),
            )
            assert died.returncode == -9, died.stderr
        left = gstop("remaining", "--state", str(state), GRACEFULSTOP_RESTART_COUNT="3").stdout.split()  # the next attempt's scan
        assert left == (UNITS if bad else UNITS[1:]), left
        status = json.loads(gstop("status", "--json", "--state", str(state), GRACEFULSTOP_RESTART_COUNT="3").stdout)
        assert [q["unit"] for q in status["quarantined"]] == ([] if bad else ["u000"]), status["quarantined"]
        assert [b["node"] for b in status["bad_nodes"]] == (["n2"] if bad else [])
    text = gstop("status", "--state", str(tmp_path / "bad-True")).stdout
    assert "bad node n2: u004, u005 failed there and were done elsewhere (judged by job 7)" in text, text
