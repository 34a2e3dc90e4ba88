"""Balancing on the real SLURM cluster (scripts/slurm-cluster): a 2-node job whose second node's
worker is twice as slow finishes near the ideal time instead of waiting for the slow node's half; a
state of 4 shares is run by a job of 2 tasks; an array of 4 whose tasks 2-3 are held until tasks
0-1 have done every unit: 2-3 then exit 0 at once, with no requeue. Every unit is done exactly once."""

from __future__ import annotations

from pathlib import Path

from slurmtest import assert_each_unit_once, events, work_log

import gracefulstop

UNIT_SECONDS = 1.0
UNITS = 30


def job_seconds(state: Path) -> float:
    """From gstop's attempt start to its command's end, as gstop logged them (one attempt)."""
    start = events(state, "attempt_start")
    end = events(state, "child_exit")
    assert len(start) == 1 and len(end) == 1, (start, end)
    return end[0]["time"] - start[0]["time"]


def run_slow_node_job(cluster, directory: Path, balance: str) -> tuple[float, list]:
    state = directory / "state"
    job = cluster.submit(
        directory,
        state,
        gstop_options=f"--balance {balance}",
        sbatch="--nodes=2 --exclude=n3",
        command="srun {python} -u {worker}",
        WORKER_UNITS=str(UNITS),
        WORKER_NODES="2",
        WORKER_SECONDS=str(UNIT_SECONDS),
        WORKER_SLOW="1:2",
    )
    cluster.wait_state(job, "COMPLETED", timeout=240)
    log = assert_each_unit_once(state, UNITS)
    assert [d["action"] for d in events(state, "decision")] == ["finish"]
    assert cluster.show(job)["Restarts"] == "0"
    return job_seconds(state), log


def test_a_slower_node_is_helped_and_the_job_ends_near_the_ideal_time(cluster, tmp_path):
    # Node 0's worker takes 1 s a unit, node 1's 2 s: together 1.5 units a second, so the ideal for
    # 30 units is 20 s. The strict split makes node 1 do its 15 units alone: 30 s, 1.5x.
    ideal = UNITS * UNIT_SECONDS / 1.5
    (tmp_path / "strict").mkdir()
    (tmp_path / "balanced").mkdir()
    strict, strict_log = run_slow_node_job(cluster, tmp_path / "strict", "off")
    balanced, log = run_slow_node_job(cluster, tmp_path / "balanced", "on")
    print(
        f"\nslow node: strict split {strict:.1f} s ({strict / ideal:.2f}x the ideal {ideal:.0f} s), "
        f"balanced {balanced:.1f} s ({balanced / ideal:.2f}x)"
    )
    assert strict / ideal >= 1.4, strict  # the condition is real here
    assert balanced / ideal <= 1.15, balanced
    fast = [unit for unit, node, *_ in log if node == "0"]
    assert len(fast) > UNITS / 2 and any(int(unit[1:]) >= UNITS // 2 for unit in fast)  # it took node 1's units
    assert sum(node == "0" for _, node, *_ in strict_log) == UNITS // 2  # the strict split: half each


def test_a_state_of_four_shares_runs_with_a_job_of_two_tasks(cluster, tmp_path):
    state = tmp_path / "state"
    job = cluster.submit(
        tmp_path,
        state,
        sbatch="--nodes=2 --exclude=n3",
        command="srun {python} -u {worker}",
        WORKER_UNITS="16",
        WORKER_NODES="4",
        WORKER_SECONDS="0.3",
    )
    cluster.wait_state(job, "COMPLETED", timeout=180)
    log = assert_each_unit_once(state, 16)
    assert {node for _, node, *_ in log} == {"0", "1"}
    assert [d["action"] for d in events(state, "decision")] == ["finish"] and (state / "run.done").exists()
    output = cluster.output(tmp_path, job)
    assert "gracefulstop: 2 workers for 4 shares: each begins with its own share, then takes over shares 2-3" in output, output


def test_held_array_tasks_find_the_run_done_and_exit_at_once(cluster, tmp_path):
    state = tmp_path / "state"
    array = cluster.submit(tmp_path, state, sbatch="--array=0-3", sbatch_args=("--hold",), WORKER_UNITS="16", WORKER_NODES="4", WORKER_SECONDS="0.3")
    tasks = [f"{array}_{task}" for task in range(4)]
    cluster.command("scontrol", "release", tasks[0], tasks[1])
    for task in tasks[:2]:
        cluster.wait_state(task, "COMPLETED", timeout=180)
    assert (state / "run.done").exists()
    log = assert_each_unit_once(state, 16)
    assert {node for _, node, *_ in log} == {"0", "1"}  # tasks 0-1 did shares 2-3 too
    done_at = (state / "run.done").stat().st_mtime_ns
    assert all(cluster.show(task)["JobState"] == "PENDING" for task in tasks[2:])
    cluster.command("scontrol", "release", tasks[2], tasks[3])
    for task in tasks[2:]:
        info = cluster.wait_state(task, "COMPLETED", timeout=120)
        assert info["ExitCode"] == "0:0" and info["Restarts"] == "0", info
        assert "all work is done already (run.done): not starting the command" in cluster.output(tmp_path, info["JobId"])
    assert len(work_log(state)) == 16 and (state / "run.done").stat().st_mtime_ns == done_at
    decisions = events(state, "decision")
    assert [d["action"] for d in decisions] == ["finish"] * 4, decisions
    assert all(cluster.show(task)["Restarts"] == "0" for task in tasks)
    with gracefulstop.open(state, node=0) as opened:
        assert opened.progress(estimate=False).run_done == 16
