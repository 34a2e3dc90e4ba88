"""Several real processes marking one state at once."""

from __future__ import annotations

from conftest import marker_files

import gracefulstop

WORKER = """
import sys, gracefulstop
state = gracefulstop.open(sys.argv[1], node=int(sys.argv[2]))
count = 0
for unit in state.work():
    state.mark_done(unit)
    count += 1
print(count)
"""


def _run_workers(path, nodes_of_workers):
    import subprocess
    import sys

    from conftest import child_environment

    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(node)], env=child_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for node in nodes_of_workers
    ]
    results = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, err) in zip(workers, results):
        assert worker.returncode == 0, err
    return [int(out) for out, _ in results]


def test_eight_processes_mark_twenty_thousand_units(tmp_path):
    units = [f"unit-{i:05d}" for i in range(20_000)]
    gracefulstop.create(tmp_path, units, nodes=8, partition="round-robin")
    counts = _run_workers(tmp_path, range(8))
    # Each unit is claimed before it is begun, so the workers' counts add up to the units exactly
    # (balancing lets one that finished its 2,500 early take units of the others).
    assert sum(counts) == 20_000 and all(count > 0 for count in counts), counts
    state = gracefulstop.open(tmp_path, node=0)
    for node in range(8):
        assert state.remaining_units(node) == []
    assert (tmp_path / "run.done").exists()
    assert len(marker_files(tmp_path)) == 20_000


def test_eight_processes_on_one_node_share_its_units(tmp_path):
    # Every worker walks the same list; a unit another worker holds (its claim) or finished is
    # skipped, so together they mark each unit exactly once, and the last one out leaves run.done.
    units = [f"u{i}" for i in range(4000)]
    gracefulstop.create(tmp_path, units, nodes=1)
    counts = _run_workers(tmp_path, [0] * 8)
    assert sum(counts) == 4000, counts
    assert gracefulstop.open(tmp_path).remaining_units() == []
    assert (tmp_path / "run.done").exists()
    assert len(marker_files(tmp_path)) == 4000
