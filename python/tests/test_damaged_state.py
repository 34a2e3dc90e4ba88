"""A damaged or hostile state: each file of a small state truncated, emptied, replaced by random
bytes, by a directory, a FIFO, a symlink to /dev/zero or to another directory, numbers out of range,
one changed byte in a unit shard, stray completion records, a file made unreadable to a non-root
user — each on a fresh copy, then run through the Python loop, progress(), `gstop status` (text and
--json) and `gstop run`, each with a timeout. Never a crash (no signal death, no Swift runtime
failure), never a hang, never a silently wrong result, and every existing marker unchanged."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import GSTOP, child_environment, record_reliability

import gracefulstop

UNITS = [f"u{i:02d}" for i in range(30)]
DONE_BEFORE = ["u00", "u02", "u04", "u01", "u03"]  # u00-u04: round-robin puts evens on node 0, odds on node 1
TIMEOUT = 30

LOOP = """
import os, sys, gracefulstop
state = gracefulstop.open(sys.argv[1], node=int(sys.argv[2]))
done = []
for unit in state.work(balance=False):
    state.mark_done(unit)
    done.append(unit)
print("LOOP-DONE " + " ".join(done))
"""

PROGRESS = """
import sys, gracefulstop
progress = gracefulstop.open(sys.argv[1], node=0).progress()
print("PROGRESS", progress.run_done, progress.run_total)
"""

WORKER = """
import os, gracefulstop
state = gracefulstop.open(os.environ["GRACEFULSTOP_STATE_DIR"], node=0)
for unit in state.work():
    state.mark_done(unit)
"""


def build(base: Path) -> Path:
    """A small state as a run leaves it: 30 units over 2 nodes, 5 done (with timing records), an
    events log, a stop request an earlier attempt left, and the share summaries."""
    state = base / "state"
    opened = gracefulstop.create(state, UNITS, nodes=2)
    for unit in DONE_BEFORE:
        opened.begin(unit)
        opened.mark_done(unit)
    opened.close()
    (state / "events.jsonl").write_text(
        json.dumps({"time": 1.0, "event": "attempt_start", "job": "local-x", "node": 0, "restart": 0})
        + "\n"
        + json.dumps({"time": 2.0, "event": "decision", "job": "local-x", "node": 0, "action": "requeue", "exit": 0, "reasons": ["earlier"]})
        + "\n"
    )
    (state / "stop.request").write_text(json.dumps({"requested_at": 1.5, "by": "old:1", "reason": "an earlier attempt's"}))
    return state


def shard(state: Path, node: int) -> Path:
    return next((state / "units").glob(f"*/{node}.json"))


def a_marker(state: Path) -> Path:
    return sorted((state / "done" / "0").iterdir())[0]


# Which file each case damages (a function of the state), and how.
TARGETS = {
    "manifest": lambda s: s / "manifest.json",
    "shard": lambda s: shard(s, 0),
    "marker": a_marker,
    "stop request": lambda s: s / "stop.request",
    "events log": lambda s: s / "events.jsonl",
    "share summary": lambda s: next((s / "progress").iterdir()),
}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, len(path.read_bytes()) // 2)])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(257))


def directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def to_dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


def to_other_directory(path: Path) -> None:
    other = path.parent.parent / f"elsewhere-{path.name}"
    other.mkdir(exist_ok=True)
    path.unlink()
    path.symlink_to(other)


DAMAGES = {
    "truncated": truncate,
    "emptied": empty,
    "random bytes": random_bytes,
    "a directory": directory,
    "a FIFO": fifo,
    "a symlink to /dev/zero": to_dev_zero,
    "a symlink to another directory": to_other_directory,
}


def stop_request_at(when: float):
    def damage(state: Path) -> None:
        (state / "stop.request").write_text(json.dumps({"requested_at": when, "by": "x:1", "reason": "odd"}))

    return damage


def flip_a_name(state: Path) -> None:
    path = shard(state, 0)
    path.write_bytes(path.read_bytes().replace(b'"u22"', b'"t22"'))


def stray_complete(state: Path) -> None:
    (state / "complete").mkdir(exist_ok=True)
    (state / "complete" / "0").write_bytes(b"")


def stray_run_done(state: Path) -> None:
    (state / "run.done").write_bytes(b"")


def symlinked_run_done(state: Path) -> None:
    (state / "run.done").symlink_to("/etc/hostname")


def no_manifest(state: Path) -> None:
    (state / "manifest.json").unlink()


def symlinked_node_directory(state: Path) -> None:
    node = state / "done" / "1"
    elsewhere = state.parent / "elsewhere-done-1"
    shutil.move(node, elsewhere)
    node.symlink_to(elsewhere)


def symlinked_events(state: Path) -> None:
    target = state.parent / "elsewhere-events.jsonl"
    shutil.move(state / "events.jsonl", target)
    (state / "events.jsonl").symlink_to(target)


def future_stop_request(state: Path) -> None:
    (state / "stop.request").write_text(json.dumps({"requested_at": 4.1e9, "by": "ahead:1", "reason": "a clock far ahead"}))
    os.utime(state / "stop.request", (4.1e9, 4.1e9))


def huge_marker(state: Path) -> None:
    with open(a_marker(state), "ab") as marker:
        marker.truncate(100 * 1024 * 1024)  # sparse: 100 MB that take no disk


SPECIAL = {
    "stop request dated 1e19": stop_request_at(1e19),
    "stop request dated -1e300": stop_request_at(-1e300),
    "stop request dated 1e308": stop_request_at(1e308),
    "one changed byte in a shard (u22 -> t22)": flip_a_name,
    "a stray complete/0 (empty)": stray_complete,
    "a stray run.done (empty)": stray_run_done,
    "run.done a symlink to another file": symlinked_run_done,
    "manifest.json deleted": no_manifest,
    "done/1 a symlink to another directory": symlinked_node_directory,
    "events.jsonl a symlink": symlinked_events,
    "a stop request from the future": future_stop_request,
    "a 100 MB marker": huge_marker,
}

CASES = {f"{target} {how}": (target, how) for target in TARGETS for how in DAMAGES} | {name: (None, name) for name in SPECIAL}


def damage(state: Path, case: str) -> None:
    target, how = CASES[case]
    if target is None:
        SPECIAL[how](state)
    else:
        DAMAGES[how](TARGETS[target](state))


def markers(state: Path) -> dict[str, bytes]:
    """Every marker file (under real node directories, not through links) and its content."""
    found = {}
    done = state / "done"
    if done.is_dir() and not done.is_symlink():
        for node in done.iterdir():
            if node.is_dir() and not node.is_symlink():
                for marker in node.iterdir():
                    if marker.is_file() and not marker.is_symlink():
                        found[f"{node.name}/{marker.name}"] = marker.read_bytes()
    return found


def run(arguments: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, errors="replace")
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"hung for {TIMEOUT} s: {' '.join(arguments)}\n{expired.stdout}\n{expired.stderr}") from None


def runners(state: Path, python: str = sys.executable, gstop: str = GSTOP) -> dict[str, list[str]]:
    return {
        "loop": [python, "-c", LOOP, str(state), "1"],
        "progress()": [python, "-c", PROGRESS, str(state)],
        "gstop status": [gstop, "status", "--state", str(state)],
        "gstop status --json": [gstop, "status", "--json", "--state", str(state)],
        "gstop run": [gstop, "run", "--state", str(state), "--", python, "-c", WORKER],
    }


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_damaged_state_is_never_a_crash_a_hang_or_a_silently_wrong_answer(tmp_path, case):
    state = build(tmp_path)
    damage(state, case)
    before = markers(state)
    env = child_environment()
    outcomes = {}
    for name, arguments in runners(state).items():
        result = run(arguments, env, tmp_path)
        output = result.stdout + result.stderr
        where = f"{case}: {name} (exit {result.returncode})\n{output[-3000:]}"
        # Never a crash: no signal death, no Swift runtime failure.
        assert result.returncode >= 0, where
        assert "Fatal error" not in output and "Program crashed" not in output, where
        if "Traceback" in result.stderr:  # Python: only gracefulstop's own errors, which name the problem
            assert result.stderr.strip().splitlines()[-1].startswith("gracefulstop.errors."), where
        if result.returncode != 0:
            # A clear error: it names the state (the damaged file is a path inside it).
            assert str(state) in output, where
        outcomes[name] = (result.returncode, output)
    after = markers(state)
    # Every marker that was there is there, unchanged.
    for key, content in before.items():
        assert after.get(key) == content, f"{case}: marker {key} changed or removed"
    # Never a marker for a unit that does not exist. (A unit is done by its marker's name,
    # whatever the entry is: a marker damaged into a FIFO still says its unit was done.)
    names = {entry.name for node in (state / "done").glob("*") if node.is_dir() and not node.is_symlink() for entry in node.iterdir()}
    strays = {n for n in names if n.removesuffix(".done") not in UNITS and not n.startswith(".")}
    assert not strays, f"{case}: markers of units that do not exist: {strays}"
    # Never a silently wrong answer: a run that says it finished has every unit done; a status
    # that answers counts what the markers say.
    done_units = {n.removesuffix(".done") for n in names}
    code, output = outcomes["gstop run"]
    if code == 0 and "decision: finish" in output:
        assert done_units == set(UNITS), f"{case}: gstop run finished with {len(UNITS) - len(done_units)} units left\n{output[-2000:]}"
    code, output = outcomes["gstop status --json"]
    if code == 0:
        status = json.loads(output)
        assert status["units"] in (0, len(UNITS)) and not (status["units"] == 0 and before), f"{case}: {output[:500]}"
        if status["units"]:
            assert status["done"] <= len(done_units), f"{case}: status says {status['done']} done, the markers {len(done_units)}"
    if case == "a stop request from the future":
        # Left from before this attempt began, it is stale whatever its date says: the attempt
        # runs and finishes, rather than every later attempt stopping at once until it is deleted.
        code, output = outcomes["gstop run"]
        assert code == 0 and "decision: finish" in output and done_units == set(UNITS), f"{case}: {output[-2000:]}"
    # The table of docs/reliability.md: each runner's exit (0, or the error's sysexits/Python status).
    summary = ", ".join(f"{name} {code}" for name, (code, _) in outcomes.items())
    record_reliability("damaged states", **{case: summary})


def test_a_file_unreadable_to_a_non_root_user_is_a_clear_error(tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("needs root to run the tools as another user")
        pytest.skip("needs root to run the tools as another user (CI runs it)")
    # Under /tmp itself: the other user must reach the state (pytest's tmp_path is root's own).
    base = Path(tempfile.mkdtemp(prefix="gracefulstop-unreadable-", dir="/tmp"))
    state = build(base)
    # The package, its library and gstop where that user can reach them, and the system's Python.
    shutil.copytree(Path(gracefulstop.__file__).parent, base / "site" / "gracefulstop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(gracefulstop.LIBRARY_PATH, base / "site" / "gracefulstop" / "libgracefulstop.so")
    shutil.copy2(GSTOP, base / "gstop")
    for path in [base, *base.rglob("*")]:
        os.chmod(path, 0o777 if path.is_dir() or path.name == "gstop" else 0o666)
    python = shutil.which("python3", path="/usr/bin:/bin")
    env = child_environment(PYTHONPATH=str(base / "site"), GRACEFULSTOP_LIBRARY=str(base / "site" / "gracefulstop" / "libgracefulstop.so"))
    before = markers(state)
    for path in (state / "manifest.json", shard(state, 0), state / "stop.request", state / "events.jsonl"):
        os.chmod(path, 0o000)
        for name, arguments in runners(state, python=python, gstop=str(base / "gstop")).items():
            result = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *arguments], env, base)
            output = result.stdout + result.stderr
            assert result.returncode >= 0 and "Fatal error" not in output, f"{path.name}: {name}\n{output[-2000:]}"
            if result.returncode != 0:
                assert str(state) in output, f"{path.name}: {name}\n{output[-2000:]}"
        os.chmod(path, 0o666)
    after = markers(state)
    shutil.rmtree(base)
    assert all(after.get(key) == content for key, content in before.items())


def test_signals_never_kill_the_runners_on_a_fifo(tmp_path):
    # The hang the FIFO used to cause could only be ended by SIGKILL: now nothing waits on it.
    state = build(tmp_path)
    fifo(state / "stop.request")
    result = run([GSTOP, "status", "--state", str(state)], child_environment(), tmp_path)
    assert result.returncode not in (-signal.SIGKILL, -signal.SIGTERM)
    assert "FIFO" in result.stdout + result.stderr or result.returncode == 0
