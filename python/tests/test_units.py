"""Creating and opening states, marking units, errors for bad input, work()."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_environment, marker_files, run_python

import gracefulstop

UNITS = [f"eq{i}" for i in range(1, 11)] + ["a/b c", "..", "x" * 1000, "ünï ✓", "new\nline"]


def test_create_mark_and_remaining(tmp_path):
    state = gracefulstop.create(tmp_path / "s", UNITS, nodes=3, partition="block", node=1)
    assert repr(state).endswith("node 1 of 3, 15 units>")
    assert state.remaining_units() == UNITS[5:10]
    assert state.remaining_units(node=2) == UNITS[10:]
    for unit in UNITS[10:]:
        assert not state.is_done(unit)
        state.mark_done(unit)
        state.mark_done(unit)  # idempotent
        assert state.is_done(unit)
    assert state.remaining_units(node=2) == []
    assert state.progress(node=2) == gracefulstop.Progress(2, 5, 5, 5, 15)
    assert marker_files(tmp_path / "s") == sorted(f"2/{gracefulstop.marker_name(u)}" for u in UNITS[10:])
    # The hashed marker of the 1000-byte name holds the name.
    assert state.marker_path("x" * 1000) == str(tmp_path / "s" / "done" / "2" / gracefulstop.marker_name("x" * 1000))
    name, _, timing = Path(state.marker_path("x" * 1000)).read_bytes().partition(b"\0")
    assert name == b"x" * 1000 and json.loads(timing)["node"] == state.node  # then its timing record (the marking node)


def test_create_again_opens_and_a_different_run_is_refused(tmp_path):
    gracefulstop.create(tmp_path, UNITS, nodes=2)
    assert gracefulstop.create(tmp_path, UNITS, nodes=2).unit_count == len(UNITS)
    with pytest.raises(gracefulstop.StateMismatchError, match="unit #0"):
        gracefulstop.create(tmp_path, list(reversed(UNITS)), nodes=2)
    with pytest.raises(gracefulstop.StateMismatchError, match="node count 2 here, 3 asked"):
        gracefulstop.create(tmp_path, UNITS, nodes=3)
    with pytest.raises(gracefulstop.StateMismatchError, match="partition"):
        gracefulstop.create(tmp_path, UNITS, nodes=2, partition="block")


@pytest.mark.parametrize(
    "unit, error, text",
    [
        ("", gracefulstop.InvalidArgumentError, "must not be empty"),
        ("a\0b", gracefulstop.InvalidArgumentError, "NUL"),
        (b"\xc3", gracefulstop.InvalidArgumentError, "not valid UTF-8"),
        ("\udcff", gracefulstop.InvalidArgumentError, "not valid UTF-8"),
        ("not-a-unit", gracefulstop.UnknownUnitError, "not in the manifest"),
        ("y" * 5000, gracefulstop.InvalidArgumentError, "the limit is 4096"),
    ],
)
def test_bad_unit_names_raise_and_write_nothing(tmp_path, unit, error, text):
    state = gracefulstop.create(tmp_path, UNITS, nodes=1)
    state.mark_done("eq1")
    with pytest.raises(error, match=text):
        state.mark_done(unit)
    assert marker_files(tmp_path) == ["0/eq1.done"]
    with pytest.raises(error):
        state.is_done(unit)


@pytest.mark.parametrize(
    "units, nodes, partition, error, text",
    [
        ([], 1, "block", gracefulstop.InvalidArgumentError, "at least one unit"),
        (["a", "a"], 1, "block", gracefulstop.InvalidArgumentError, "appears twice"),
        (["a", ""], 1, "block", gracefulstop.InvalidArgumentError, "must not be empty"),
        (["a\0b"], 1, "block", gracefulstop.InvalidArgumentError, "NUL"),
        (["a"], 0, "block", gracefulstop.InvalidArgumentError, "node count"),
        (["a"], 2_000_000, "block", gracefulstop.InvalidArgumentError, "above the limit"),
        (["a"], 1, "random", gracefulstop.InvalidArgumentError, "unknown partition rule 'random'"),
    ],
)
def test_bad_create_arguments(tmp_path, units, nodes, partition, error, text):
    with pytest.raises(error, match=text):
        gracefulstop.create(tmp_path / "s", units, nodes=nodes, partition=partition)
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_nodes_out_of_range_and_missing_states(tmp_path, monkeypatch):
    gracefulstop.create(tmp_path / "s", ["a", "b"], nodes=2)
    # Balancing (the default): node 2 of 2 shares is a worker that only takes over.
    helper = gracefulstop.open(tmp_path / "s", node=2)
    assert helper.remaining_units() == [] and helper.progress(estimate=False)[1:3] == (0, 0)
    done = []
    for unit in helper.work():
        helper.mark_done(unit)
        done.append(unit)
    assert sorted(done) == ["a", "b"] and (tmp_path / "s" / "run.done").exists()
    monkeypatch.setenv("GRACEFULSTOP_BALANCE", "0")  # the strict split: out of range
    with pytest.raises(gracefulstop.NodeOutOfRangeError, match="node 2 is out of range"):
        gracefulstop.open(tmp_path / "s", node=2)
    monkeypatch.delenv("GRACEFULSTOP_BALANCE")
    with pytest.raises(gracefulstop.NodeOutOfRangeError):
        gracefulstop.open(tmp_path / "s", node=0).remaining_units(node=5)
    with pytest.raises(gracefulstop.InvalidArgumentError):
        gracefulstop.open(tmp_path / "s", node=-1)
    with pytest.raises(gracefulstop.StateSystemError, match=f"{tmp_path}/absent does not exist"):
        gracefulstop.open(tmp_path / "absent")
    with pytest.raises(gracefulstop.BadStateError, match=r"manifest\.json does not exist"):
        gracefulstop.open(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(gracefulstop.StateSystemError, match="file"):
        gracefulstop.create(tmp_path / "file", ["a"], nodes=1)


def test_closed_handles_refuse_politely(tmp_path):
    state = gracefulstop.create(tmp_path, ["a"], nodes=1)
    state.close()
    state.close()
    with pytest.raises(gracefulstop.InvalidArgumentError, match="closed"):
        state.mark_done("a")


def test_work_yields_remaining_units_and_ends_on_a_stop(tmp_path):
    state = gracefulstop.create(tmp_path, UNITS[:6], nodes=1)
    state.mark_done("eq2")
    seen = []
    for unit in state.work():
        seen.append(unit)
        state.mark_done(unit)
        if unit == "eq4":
            state.request_stop("test: enough")
    assert seen == ["eq1", "eq3", "eq4"]
    assert state.should_stop()
    reason = state.stop_reason()
    assert reason.kind == "request" and "test: enough" in reason.detail
    assert (tmp_path / "stop.request").exists()
    # A new attempt (started after the request) is not stopped by it, and finishes.
    assert (
        run_python(f"""
import gracefulstop, time
state = gracefulstop.open({str(tmp_path)!r})
state.set_check_interval(0)
assert not state.should_stop(), state.stop_reason()
units = list(state.work())
for unit in units: state.mark_done(unit)
print(units)
assert state.run_done()
""").stdout.strip()
        == "['eq5', 'eq6']"
    )
    assert (tmp_path / "run.done").exists()


def test_module_level_api_uses_the_environment(tmp_path):
    # GRACEFULSTOP_BALANCE=0: each process keeps to the share the environment gives it (balancing,
    # the default, would let the first one do every share: test_balance.py).
    gracefulstop.create(tmp_path, [f"u{i}" for i in range(6)], nodes=3)
    code = """
import gracefulstop
units = list(gracefulstop.work())
for unit in units:
    gracefulstop.mark_done(unit)
print(gracefulstop.default_state().node, units, gracefulstop.progress())
"""
    out = run_python(code, GRACEFULSTOP_STATE_DIR=str(tmp_path), SLURM_ARRAY_TASK_ID="1", GRACEFULSTOP_BALANCE="0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1 ['u1', 'u4'] Progress(node=1, done=2, total=2, run_done=2, run_total=6, unit_seconds={")
    out = run_python(code, GRACEFULSTOP_STATE_DIR=str(tmp_path), SLURM_NODEID="2", GRACEFULSTOP_NODE="0", GRACEFULSTOP_BALANCE="0")
    assert out.stdout.startswith("0 ['u0', 'u3']"), out.stderr
    out = run_python(code, GRACEFULSTOP_STATE_DIR=str(tmp_path), SLURM_NODEID="2", GRACEFULSTOP_BALANCE="0")
    assert out.stdout.startswith("2 ['u2', 'u5']"), out.stderr
    assert (tmp_path / "run.done").exists()
    # Without a state directory: should_stop() works, marking says what is missing.
    out = run_python("""
import gracefulstop
print(gracefulstop.should_stop())
gracefulstop.mark_done("x")
""")
    assert out.stdout.strip() == "False"
    assert "no state directory: set GRACEFULSTOP_STATE_DIR" in out.stderr
    out = run_python(
        "import gracefulstop; gracefulstop.should_stop()", GRACEFULSTOP_STATE_DIR=str(tmp_path), GRACEFULSTOP_NODE="9", GRACEFULSTOP_BALANCE="0"
    )
    assert "node 9 (from GRACEFULSTOP_NODE) is out of range" in out.stderr


def test_deadline_from_the_environment(tmp_path):
    out = run_python("import gracefulstop; print(gracefulstop.should_stop(), gracefulstop.stop_reason().kind)", GRACEFULSTOP_DEADLINE="1000")
    assert out.stdout.strip() == "True deadline", out.stderr
    out = run_python("import gracefulstop; print(gracefulstop.should_stop())", GRACEFULSTOP_DEADLINE="9999999999")
    assert out.stdout.strip() == "False", out.stderr
    out = run_python("import gracefulstop; gracefulstop.should_stop()", GRACEFULSTOP_DEADLINE="tomorrow")
    assert "GRACEFULSTOP_DEADLINE='tomorrow' is not a unix time in seconds" in out.stderr


SHARE = """
import gracefulstop, sys
try:
    state = gracefulstop.create(sys.argv[1], [f"u{i}" for i in range(8)], nodes=int(sys.argv[2]))
    print("share", state.node, state.remaining_units())
except gracefulstop.GracefulStopError as error:
    print("refused", type(error).__name__, error)
"""


def test_a_process_in_an_srun_step_works_its_tasks_share(tmp_path):
    """Which share a process works on, from the variables srun sets for task 3 of 4 (node 1 of 2)."""
    step = {
        "SLURM_JOB_ID": "77",
        "SLURM_STEP_ID": "0",
        "SLURM_PROCID": "3",
        "SLURM_NODEID": "1",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_NUM_TASKS": "4",
        "SLURM_NTASKS": "4",
    }

    def run(nodes: int, stderr: bool = False, **env: str) -> str:
        state = tmp_path / f"s{nodes}-{len(env)}-{env.get('GRACEFULSTOP_SHARE', '')}"
        result = subprocess.run(
            [sys.executable, "-c", SHARE, str(state), str(nodes)], env=child_environment(**env), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stderr.strip() if stderr else result.stdout.strip()

    assert run(4, **step) == "share 3 ['u3', 'u7']"  # one share per task
    assert run(2, **step, GRACEFULSTOP_SHARE="node") == "share 1 ['u1', 'u3', 'u5', 'u7']"  # the host's, together
    # Per task, but the state has 2 shares: task 3 owns none and only takes over (balancing); task 0
    # says in the job's log how the shares are covered; the strict split refuses.
    assert run(2, **step) == "share 3 []"
    assert run(2, stderr=True, **{**step, "SLURM_PROCID": "0"}) == (
        "gracefulstop: 4 workers for 2 shares: workers 2-3 own no share and take over units of the others, from the end of "
        "the share with the most left (GRACEFULSTOP_BALANCE=0 keeps the strict split)"
    )
    assert run(2, stderr=True, **step) == ""  # one line per job, from task 0
    refused = run(2, **step, GRACEFULSTOP_BALANCE="0")
    assert refused.startswith("refused StateMismatchError this job has 4 tasks (from SLURM_PROCID)"), refused
    assert "create the state with nodes=4" in refused and "GRACEFULSTOP_BALANCE" in refused
    assert run(4, **{k: v for k, v in step.items() if k != "SLURM_STEP_ID"}) == "share 1 ['u1', 'u5']"  # the batch script: its node
    assert run(8, **step, SLURM_ARRAY_TASK_ID="5") == "share 5 ['u5']"  # an array task is its own share
    assert run(8, **step, GRACEFULSTOP_NODE="6") == "share 6 ['u6']"
    bad = run(4, **step, GRACEFULSTOP_SHARE="rank")
    assert bad.startswith("refused InvalidArgumentError GRACEFULSTOP_SHARE='rank' is not a share kind"), bad


def test_a_finished_node_writes_its_complete_file_and_run_done_is_decided_from_those(tmp_path):
    state = gracefulstop.create(tmp_path / "s", [f"u{i}" for i in range(9)], nodes=3)  # round-robin: node k owns uk, u(k+3), u(k+6)
    complete = tmp_path / "s" / "complete"
    for unit in ("u0", "u3", "u6"):
        state.mark_done(unit)
    assert sorted(p.name for p in complete.iterdir()) == ["0"] and not (tmp_path / "s" / "run.done").exists()
    record = json.loads((complete / "0").read_text())
    assert record["node"] == 0 and record["units"] == 3 and "completed_at" in record
    # Once a node's file exists its markers are not read again: the end of a run costs one listing
    # of complete/ (O(nodes)), not a scan of every node's markers (O(units)). Shown by taking a
    # marker away by hand (never done otherwise): run.done still follows from the files.
    (tmp_path / "s" / state.marker_path("u3")).unlink()
    for unit in ("u1", "u4", "u7", "u2", "u5", "u8"):
        state.mark_done(unit)
    assert sorted(p.name for p in complete.iterdir()) == ["0", "1", "2"]
    assert (tmp_path / "s" / "run.done").exists() and state.run_done()


def test_a_state_without_complete_files_still_gets_run_done(tmp_path):
    # A state begun by a release that wrote no complete/ files, or a process killed between its
    # node's last marker and the file: the nodes without one are scanned, and get theirs.
    state = gracefulstop.create(tmp_path / "s", [f"u{i}" for i in range(6)], nodes=2)
    for unit in [f"u{i}" for i in range(6)]:
        state.mark_done(unit)
    shutil.rmtree(tmp_path / "s" / "complete")
    (tmp_path / "s" / "run.done").unlink()
    fresh = gracefulstop.open(tmp_path / "s", node=0)
    assert fresh.run_done()
    assert sorted(p.name for p in (tmp_path / "s" / "complete").iterdir()) == ["0", "1"]
    assert (tmp_path / "s" / "run.done").exists()
    # Not done: nothing is written.
    other = gracefulstop.create(tmp_path / "t", ["a", "b"], nodes=2)
    other.mark_done("a")
    assert not other.run_done() and not (tmp_path / "t" / "run.done").exists()
    assert sorted(p.name for p in (tmp_path / "t" / "complete").iterdir()) == ["0"]


def words64(names: list[str]) -> str:
    """names_words64 as docs/state-format.md defines it, written from the text alone."""
    prime, mask = 0x100000001B3, (1 << 64) - 1
    hash_ = 0xCBF29CE484222325
    data = b"".join(name.encode() for name in names)
    padded = data + b"\0" * (-len(data) % 8)
    for offset in range(0, len(padded), 8):
        hash_ = ((hash_ ^ int.from_bytes(padded[offset : offset + 8], "little")) * prime) & mask
    for name in names:
        hash_ = ((hash_ ^ len(name.encode())) * prime) & mask
    return f"{((hash_ ^ len(data)) * prime) & mask:016x}"


def test_each_shard_carries_the_documented_checksum_of_its_names(tmp_path):
    # Names of every length around a word's 8 bytes, and multi-byte UTF-8, over 3 shards.
    names = [f"n{'x' * (i % 19)}{i}" for i in range(40)] + ["é", "日本語-7", "a b"]
    gracefulstop.create(tmp_path / "state", names, nodes=3)
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert manifest["shard_checksums"] == "words64"
    shards = sorted((tmp_path / "state" / "units" / manifest["units_sha256"]).glob("*.json"))
    assert len(shards) == 3
    for shard in shards:
        content = json.loads(shard.read_text())
        assert content["names_words64"] == words64(content["units"]), shard
    # The same names with one boundary moved ("ab", "c" against "a", "bc") are another checksum.
    assert words64(["ab", "c"]) != words64(["a", "bc"]) and words64(["a"]) != words64(["a\0"])
