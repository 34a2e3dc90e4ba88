"""Balancing with real processes on one machine (no SLURM): a worker whose share is done takes over
units of other shares; a state runs with fewer or more workers than shares; a worker that starts
after the run is done exits at once; a unit held by a worker killed with kill -9 is taken over.
Every unit is checked done, and begun exactly once by a live worker (the work log)."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import GSTOP, WORKER, child_environment
from slurmtest import assert_each_unit_once, work_log

import gracefulstop


def start(state: Path, node: int, shares: int, units: int, seconds: float, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-u", WORKER],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_environment(
            GRACEFULSTOP_STATE_DIR=str(state),
            GRACEFULSTOP_NODE=str(node),
            WORKER_UNITS=str(units),
            WORKER_NODES=str(shares),
            WORKER_SECONDS=str(seconds),
            **env,
        ),
    )


def finish(workers: list[subprocess.Popen], timeout: float = 120) -> None:
    for worker in workers:
        _, err = worker.communicate(timeout=timeout)
        assert worker.returncode == 0, err


def by_worker(state: Path) -> collections.Counter:
    return collections.Counter(node for _, node, *_ in work_log(state))


def status(state: Path) -> dict:
    result = subprocess.run([GSTOP, "status", "--json", "--state", str(state)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_slower_worker_is_helped_by_the_faster_one(tmp_path):
    # Two shares of 10 units; node 1's worker is 4x slower. Without balancing node 1 would do its 10
    # units alone while node 0 sits idle; with it node 0 takes units from the end of node 1's share.
    state = tmp_path / "state"
    workers = [start(state, node, 2, 20, 0.05, WORKER_SLOW="1:4") for node in (0, 1)]
    finish(workers)
    assert_each_unit_once(state, 20)
    counts = by_worker(state)
    assert counts["0"] > 10 and counts["1"] < 10, counts
    assert gracefulstop.open(state, node=0).run_done()
    report = status(state)
    share1 = report["nodes"][1]
    assert share1["done"] == 10 and share1["taken"] == counts["0"] - 10 and share1["taken_by"] == {"0": counts["0"] - 10}
    assert report["taken"] == counts["0"] - 10 and report["nodes"][0]["taken"] == 0
    text = subprocess.run([GSTOP, "status", "--state", str(state)], capture_output=True, text=True).stdout
    assert f"node 1: {counts['1']} done by its own worker, {counts['0'] - 10} by others (node 0: {counts['0'] - 10})" in text, text
    # The fast worker's claims of node 1's units moved to taken/ when marked; nothing is left in begun/.
    assert sorted(p.name for p in (state / "taken" / "1").iterdir()) == sorted(
        f"{int(u[1:]) - 10}.0" for u, node, *_ in work_log(state) if node == "0" and int(u[1:]) >= 10
    )
    assert [p for d in (state / "begun").iterdir() for p in d.iterdir()] == []


def test_the_strict_split_leaves_the_slow_share_to_its_worker(tmp_path):
    state = tmp_path / "state"
    workers = [start(state, node, 2, 20, 0.05, WORKER_SLOW="1:4", GRACEFULSTOP_BALANCE="0") for node in (0, 1)]
    finish(workers)
    assert_each_unit_once(state, 20)
    assert by_worker(state) == {"0": 10, "1": 10}
    assert not (state / "taken").exists()


def test_fewer_workers_than_shares(tmp_path):
    # A state of 4 shares, run by 2 workers (a job that came back smaller): every unit once.
    state = tmp_path / "state"
    finish([start(state, node, 4, 24, 0.02) for node in (0, 1)])
    assert_each_unit_once(state, 24)
    assert set(by_worker(state)) == {"0", "1"} and (state / "run.done").exists()
    assert sum(status(state)["nodes"][share]["taken"] for share in (2, 3)) == 12  # the shares nobody owns


def test_more_workers_than_shares_and_many_at_once(tmp_path):
    # 6 workers on 3 shares (workers 3-5 own none), short units: they meet at the ends of the shares,
    # and the exclusive claims keep every unit to one worker.
    state = tmp_path / "state"
    finish([start(state, node, 3, 90, 0.01) for node in range(6)])
    log = assert_each_unit_once(state, 90)
    assert {node for _, node, *_ in log} & {"3", "4", "5"}, "the extra workers took over nothing"
    assert (state / "run.done").exists() and status(state)["remaining"] == 0


def test_a_worker_that_starts_after_the_run_is_done_exits_at_once(tmp_path):
    # Like an array task held until the others have done everything.
    state = tmp_path / "state"
    finish([start(state, 0, 2, 8, 0.01)])
    assert by_worker(state) == {"0": 8} and (state / "run.done").exists()
    done_at = (state / "run.done").stat().st_mtime_ns
    late = start(state, 1, 2, 8, 0.01)
    out, err = late.communicate(timeout=60)
    assert late.returncode == 0 and "0 units to do" in out and "leaves 0 units" in out, (out, err)
    assert by_worker(state) == {"0": 8} and (state / "run.done").stat().st_mtime_ns == done_at


def test_a_unit_held_by_a_killed_worker_is_taken_over(tmp_path):
    # Node 0's worker takes u011 (the end of node 1's share) and hangs in it; it is killed with
    # kill -9. Its claim's process is gone, so node 1's worker takes the unit over and the run ends.
    state = tmp_path / "state"
    thief = start(state, 0, 2, 12, 0.02, WORKER_HANG="u011@0")
    owner = start(state, 1, 2, 12, 0.4)
    deadline = time.monotonic() + 60
    while ["u011", "0"] not in [entry[:2] for entry in work_log(state)]:
        assert time.monotonic() < deadline, "node 0 never took u011"
        time.sleep(0.05)
    time.sleep(0.1)
    os.kill(thief.pid, signal.SIGKILL)
    thief.wait(timeout=30)
    finish([owner])
    log = work_log(state)
    begun = collections.Counter(unit for unit, *_ in log)
    assert begun["u011"] == 2 and all(count == 1 for unit, count in begun.items() if unit != "u011"), begun
    assert [node for unit, node, *_ in log if unit == "u011"] == ["0", "1"]
    assert (state / "run.done").exists() and gracefulstop.open(state, node=1).remaining_units() == []


def test_a_unit_that_kills_its_takers_is_quarantined_and_the_rest_finishes(tmp_path):
    # u011 (the end of node 1's share) segfaults whoever begins it: node 0's worker takes it first,
    # when its own share is done (node 1's, 10x slower, reaches its last unit much later). Each death leaves a claim that is over (its process is gone), the
    # next worker takes the next generation, and after 3 the unit is quarantined; every other unit
    # is done once.
    state = tmp_path / "state"
    for _ in range(4):
        workers = [start(state, node, 2, 12, 0.01, WORKER_MODE="poison", WORKER_POISON="u011", WORKER_SLOW="1:10") for node in (0, 1)]
        for worker in workers:
            worker.communicate(timeout=120)
            assert worker.returncode in (0, -signal.SIGSEGV), worker.returncode
        if (state / "quarantine" / "1" / "5.json").exists():
            break
    record = json.loads((state / "quarantine" / "1" / "5.json").read_text())
    assert record["unit"] == "u011" and len(record["attempts"]) == 3
    assert 0 in [attempt["worker"] for attempt in record["attempts"]]  # a taker died on it
    begun = collections.Counter(unit for unit, *_ in work_log(state))
    assert begun["u011"] == 3 and all(begun[f"u{i:03d}"] == 1 for i in range(11)), begun
    opened = gracefulstop.open(state, node=0)
    assert opened.remaining_units(0) == [] and opened.remaining_units(1) == []
    assert status(state)["quarantined"][0]["unit"] == "u011"
