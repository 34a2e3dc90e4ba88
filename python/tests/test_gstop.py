"""gstop in local mode (no SLURM) and its subcommands: real processes, real signals, real files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GSTOP, child_environment, worker_command

import gracefulstop


def gstop(*arguments: str, timeout: float = 120, env: dict | None = None, **extra_env: str) -> subprocess.CompletedProcess:
    environment = child_environment(**extra_env) if env is None else env
    return subprocess.run([GSTOP, *arguments], env=environment, capture_output=True, text=True, timeout=timeout)


def start_supervisor(state: Path, env: dict | None = None, **worker_env: str) -> subprocess.Popen:
    """Starts `gstop run` on the test worker and returns once the command has started."""
    supervisor = subprocess.Popen(
        [GSTOP, "run", "--state", str(state), "--", *worker_command()],
        env=child_environment(**worker_env) if env is None else env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    supervisor.stdout.readline()  # the worker's first line
    return supervisor


def work_log(state: Path) -> list[list[str]]:
    path = state / "work.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def events(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "events.jsonl").read_text().splitlines()]


def test_local_mode_warns_restarts_and_finishes_every_unit_once(tmp_path):
    # No deadline: work() would otherwise end each attempt itself before the warning, at the last
    # unit it has time for (test_unit_attempts tests that).
    result = gstop(
        "run",
        "--state",
        str(tmp_path),
        "--time-limit",
        "3s",
        "--warn-before",
        "1.5s",
        "--deadline-margin",
        "off",
        "--",
        *worker_command(),
        WORKER_UNITS="10",
        WORKER_SECONDS="0.4",
    )
    assert result.returncode == 0, result.stderr
    log = work_log(tmp_path)
    assert sorted(u for u, *_ in log) == [f"u{i:03d}" for i in range(10)]  # each unit exactly once
    restarts = [int(r) for _, _, r, _ in log]
    assert restarts == sorted(restarts) and restarts[-1] >= 1
    assert all(resume == ("1" if r != "0" else "0") for _, _, r, resume in log)
    decisions = [e for e in events(tmp_path) if e["event"] == "decision"]
    assert [d["action"] for d in decisions] == ["requeue"] * (len(decisions) - 1) + ["finish"]
    assert "stopped by SIGUSR1 (the time-limit warning)" in result.stderr
    assert (tmp_path / "run.done").exists()


def test_environment_given_to_the_command(tmp_path):
    code = "import os, json; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('GRACEFULSTOP_')}))"
    before = time.time()
    result = gstop("run", "--state", str(tmp_path / "s"), "--time-limit", "1h", "--warn-before", "10m", "--", sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["GRACEFULSTOP_STATE_DIR"] == str(tmp_path / "s")
    assert seen["GRACEFULSTOP_RESTART_COUNT"] == "0" and seen["GRACEFULSTOP_RESUME"] == "0"
    assert before <= float(seen["GRACEFULSTOP_ATTEMPT_START"]) <= time.time()
    # Deadline: end (start + 1h) minus the warning's lead (10m).
    assert abs(float(seen["GRACEFULSTOP_DEADLINE"]) - (float(seen["GRACEFULSTOP_ATTEMPT_START"]) + 3000)) < 1


def test_a_command_that_ignores_the_stop_is_escalated_in_time(tmp_path):
    started = time.monotonic()
    result = gstop(
        "run",
        "--state",
        str(tmp_path),
        "--time-limit",
        "2s",
        "--warn-before",
        "1s",
        "--grace",
        "1s",
        "--kill-after",
        "1s",
        "--requeue",
        "never",
        "--",
        *worker_command(),
        WORKER_MODE="ignore",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 75, result.stderr
    assert "did not stop in time: SIGTERM to its process group" in result.stderr
    assert "SIGKILL to its process group" in result.stderr
    assert "killed by SIGKILL" in result.stderr
    assert elapsed < 30  # warning at 1 s, TERM at 2 s, KILL at 3 s: nowhere near a hang
    assert "--requeue never: would requeue a local restart" in result.stderr


def test_a_crash_is_not_requeued_unless_retries_are_asked(tmp_path):
    result = gstop("run", "--state", str(tmp_path / "a"), "--", *worker_command(), WORKER_MODE="crash")
    assert result.returncode == 3, result.stderr
    assert "the command failed on its own; not requeued" in result.stderr
    assert len(work_log(tmp_path / "a")) == 1
    # A command that fails before doing anything: the first attempt and two retries.
    result = gstop("run", "--state", str(tmp_path / "b"), "--retry-failures", "2", "--", *worker_command(), WORKER_MODE="fail")
    assert result.returncode == 3, result.stderr
    assert len([e for e in events(tmp_path / "b") if e["event"] == "child_exit"]) == 3
    assert "failure 2 of 2 retried" in result.stderr and "2 retries used of --retry-failures 2" in result.stderr
    # One that fails after each unit is making progress: the retries go on until the work is done
    # (each attempt's failure is the first in a row without progress).
    result = gstop("run", "--state", str(tmp_path / "c"), "--retry-failures", "2", "--", *worker_command(), WORKER_MODE="crash")
    assert result.returncode == 0, result.stderr
    assert sorted(u for u, *_ in work_log(tmp_path / "c")) == [f"u{i:03d}" for i in range(12)]
    assert result.stderr.count("failure 1 of 2 retried") == 11 and (tmp_path / "c" / "run.done").exists()


def test_attempts_without_progress_stop_at_the_guard(tmp_path):
    result = gstop(
        "run",
        "--state",
        str(tmp_path),
        "--time-limit",
        "1s",
        "--warn-before",
        "0.5s",
        "--max-idle-attempts",
        "3",
        "--",
        *worker_command(),
        WORKER_MODE="idle",
    )
    assert result.returncode == 75, result.stderr
    decisions = [e for e in events(tmp_path) if e["event"] == "decision"]
    assert [d["action"] for d in decisions] == ["requeue", "requeue", "stop"]
    assert "3 attempts in a row marked no unit (--max-idle-attempts 3)" in result.stderr


def test_the_restart_limit(tmp_path):
    result = gstop(
        "run",
        "--state",
        str(tmp_path),
        "--time-limit",
        "1s",
        "--warn-before",
        "0.5s",
        "--max-restarts",
        "1",
        "--max-idle-attempts",
        "0",
        "--",
        *worker_command(),
        WORKER_MODE="idle",
    )
    assert result.returncode == 75
    assert "restart 1 reached --max-restarts 1" in result.stderr


def test_a_finished_run_exits_at_once_without_starting_the_command(tmp_path):
    state = gracefulstop.create(tmp_path, ["a"], nodes=1)
    state.mark_done("a")
    marker = tmp_path / "started"
    result = gstop("run", "--state", str(tmp_path), "--", "touch", str(marker))
    assert result.returncode == 0
    assert "all work is done already (run.done): not starting the command" in result.stderr
    assert not marker.exists()


def test_gstop_run_removes_temporaries_killed_writers_left_an_hour_ago(tmp_path):
    state = gracefulstop.create(tmp_path, ["a", "b", "c"], nodes=2)
    state.mark_done("a")
    two_hours_ago = time.time() - 7200
    stale = [tmp_path / "done" / "0" / ".tmp.1234.abc.7", tmp_path / ".tmp.99.def.1", tmp_path / "done" / ".tmp.5.f.2"]
    kept = [
        tmp_path / "done" / "0" / ".tmp.4321.fed.1",  # a minute old: a writer may still be at it
        tmp_path / "done" / "0" / "notes.txt",
    ]  # not a temporary: not ours to remove
    for path in stale + kept:
        path.write_text("a")
        os.utime(path, (two_hours_ago, two_hours_ago))
    os.utime(kept[0], (time.time() - 60, time.time() - 60))
    markers_before = sorted(p.name for p in (tmp_path / "done" / "0").iterdir() if p.name.endswith(".done"))
    result = gstop("run", "--state", str(tmp_path), "--requeue", "never", "--", "true")
    assert result.returncode == 75, result.stderr  # `true` left units undone: a temporary failure
    assert f"removed 3 temporary file(s) over an hour old that killed writers left in {tmp_path}" in result.stderr
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)
    assert sorted(p.name for p in (tmp_path / "done" / "0").iterdir() if p.name.endswith(".done")) == markers_before
    reopened = gracefulstop.open(tmp_path)
    assert reopened.remaining_units(0) == ["c"] and reopened.remaining_units(1) == ["b"]  # the state reads as before
    again = gstop("run", "--state", str(tmp_path), "--requeue", "never", "--", "true")
    assert "temporary file" not in again.stderr  # nothing left to remove, nothing said


def test_killing_gstop_kills_the_command(tmp_path):
    supervisor = subprocess.Popen(
        [GSTOP, "run", "--state", str(tmp_path), "--", *worker_command()],
        env=child_environment(WORKER_MODE="ignore"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = supervisor.stdout.readline()
    child = int(line.split("pid ")[1].split(",")[0])
    os.kill(child, 0)  # running
    supervisor.kill()
    supervisor.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if Path(f"/proc/{child}/stat").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] == "Z":
            break  # dead, waiting for its new parent to reap it
        time.sleep(0.05)
    else:
        pytest.fail(f"the command (pid {child}) outlived gstop")


def test_sigint_is_forwarded_as_an_immediate_stop(tmp_path):
    supervisor = start_supervisor(tmp_path, WORKER_UNITS="100", WORKER_SECONDS="0.2")
    time.sleep(0.5)
    supervisor.send_signal(signal.SIGINT)
    _, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 130, err
    assert "SIGINT: forwarded" in err and "an interrupt ends the job" in err


def test_sigterm_outside_slurm_is_a_cancel(tmp_path):
    supervisor = start_supervisor(tmp_path, WORKER_UNITS="100", WORKER_SECONDS="0.2")
    time.sleep(0.5)
    supervisor.terminate()
    _, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 75, err
    assert "a cancel always ends the job" in err
    # The command finished its current unit and stopped: no unit was left half-done.
    state = gracefulstop.open(tmp_path)
    assert len(work_log(tmp_path)) == 100 - len(state.remaining_units())


def test_a_missing_scontrol_under_slurm_is_a_clear_failure(tmp_path):
    env = child_environment(SLURM_JOB_ID="999999", WORKER_UNITS="50", WORKER_SECONDS="0.2")
    env["PATH"] = str(Path(sys.executable).parent) + ":/nonexistent"
    supervisor = start_supervisor(tmp_path, env=env)
    time.sleep(0.3)
    supervisor.send_signal(signal.SIGUSR1)
    _, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 75, err
    assert "command not found: scontrol" in err
    # What is printed and logged is what happened: no requeue.
    assert "decision: stop without requeue (exit 75)" in err and "the requeue failed: command not found: scontrol" in err, err
    assert "decision: requeue" not in err, err
    decision = [e for e in map(json.loads, (tmp_path / "events.jsonl").read_text().splitlines()) if e["event"] == "decision"][-1]
    assert decision["action"] == "stop" and decision["exit"] == 75 and "requeue_error" in decision


UNITS = ["eq_1", "eq_2", "a b", "eq_4", "eq_5"]


def test_init_status_remaining_mark_done_and_stop(tmp_path):
    units_file = tmp_path / "units.txt"
    units_file.write_text("\n".join(UNITS) + "\n\n")
    state = tmp_path / "state"
    result = gstop("init", "--state", str(state), "--units", str(units_file), "--nodes", "2", "--partition", "block")
    assert result.returncode == 0, result.stderr
    assert "5 units on 2 nodes (block), 0 done" in result.stdout
    assert gstop("remaining", "--state", str(state), "--node", "1").stdout == "eq_4\neq_5\n"
    assert gstop("mark-done", "--state", str(state), "a b", "eq_4").returncode == 0
    assert gstop("remaining", "--state", str(state), "--node", "0", "--null").stdout == "eq_1\0eq_2\0"
    status = gstop("status", "--state", str(state))
    assert "5 units on 2 nodes (block): 2 done, 3 remaining" in status.stdout
    assert status.stdout.splitlines()[2].split() == [
        "node",
        "done",
        "by",
        "others",
        "remaining",
        "quarantined",
        "total",
        "units/h",
        "p50",
        "p90",
        "eta",
    ]
    assert status.stdout.splitlines()[3].split() == ["0", "1", "0", "2", "0", "3", "-", "-", "-", "-"]
    assert status.stdout.splitlines()[4].split() == ["1", "1", "0", "1", "0", "2", "-", "-", "-", "-"]
    assert "estimate: none yet" in status.stdout  # marked by gstop mark-done: no unit time recorded
    report = json.loads(gstop("status", "--state", str(state), "--json").stdout)
    assert [(n["node"], n["done"], n["remaining"], n["total"]) for n in report["nodes"]] == [(0, 1, 2, 3), (1, 1, 1, 2)]
    assert report["run_done"] is False
    # A state made by gstop reads the same in Python.
    assert gracefulstop.open(state, node=0).remaining_units() == ["eq_1", "eq_2"]
    assert gstop("stop", "--state", str(state), "--reason", "maintenance").returncode == 0
    assert "maintenance" in json.loads(gstop("status", "--state", str(state), "--json").stdout)["stop_requests"][0]["reason"]
    # Times read as a person reads them: a clock time and an age, not unix seconds.
    line = next(text for text in gstop("status", "--state", str(state)).stdout.splitlines() if text.startswith("stop.request:"))
    assert re.match(r"stop\.request: requested at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \((now|\d+(\.\d)?s ago)\) by ", line), line


def test_gstop_stop_reaches_a_running_job_which_is_not_requeued(tmp_path):
    supervisor = start_supervisor(tmp_path, WORKER_UNITS="200", WORKER_SECONDS="0.1")
    time.sleep(0.5)
    assert gstop("stop", "--state", str(tmp_path), "--reason", "enough for today").returncode == 0
    _, err = supervisor.communicate(timeout=60)
    assert supervisor.returncode == 75, err
    assert "a stop was requested (enough for today" in err and "a requested stop ends the job" in err


def test_should_requeue_and_resume_flag(tmp_path):
    gracefulstop.create(tmp_path, UNITS, nodes=1)
    yes = gstop("should-requeue", "--state", str(tmp_path))
    assert yes.returncode == 0 and "decision: requeue" in yes.stderr
    for unit in UNITS:
        gracefulstop.open(tmp_path).mark_done(unit)
    no = gstop("should-requeue", "--state", str(tmp_path))
    assert no.returncode == 1 and "all work is done (run.done)" in no.stderr
    assert gstop("resume-flag").stdout == ""
    assert gstop("resume-flag", SLURM_RESTART_COUNT="2").stdout == "--resume\n"
    assert gstop("resume-flag", "--flag=--continue", GRACEFULSTOP_RESTART_COUNT="1").stdout == "--continue\n"


def test_bad_states_and_units_are_bad_data(tmp_path):
    (tmp_path / "manifest.json").write_text("{ truncated")
    result = gstop("status", "--state", str(tmp_path))
    assert result.returncode == 65 and str(tmp_path / "manifest.json") in result.stderr
    good = tmp_path / "good"
    gracefulstop.create(good, ["a"], nodes=1)
    result = gstop("mark-done", "--state", str(good), "zzz")
    assert result.returncode == 65 and "unit 'zzz' is not in the manifest" in result.stderr


@pytest.mark.parametrize("command", ["run", "init", "status", "remaining", "mark-done", "should-requeue", "stop", "resume-flag"])
def test_every_command_has_help_with_usage(command):
    result = gstop(command, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: gstop {command}")
    assert gstop("help", command).stdout == result.stdout


def test_overview_help_teaches_the_sbatch_form():
    result = gstop("--help")
    assert result.returncode == 0
    assert "exec gstop run --state" in result.stdout and "#SBATCH" in result.stdout
