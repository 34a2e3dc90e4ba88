"""Right-sized requeues on the real cluster (sched/backfill): after a requeue gstop lowers the
pending job's TimeLimit to what its remaining units need and sets a TimeMin, so that backfill starts
it in a gap before a top-priority job instead of after it; a limit that proves too short costs one
more requeue, never a unit; `--right-size off` leaves the job as submitted. The jobs are a
non-root user's, as on a real cluster (a user may lower a pending job's limits, not raise them)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from conftest import submit_as_user
from slurmtest import assert_each_unit_once, events, work_log

# SLURM's default bf_interval: backfill looks at the queue every 30 s.
BACKFILL_INTERVAL = 30


def minutes(text: str) -> int | None:
    """TimeLimit/TimeMin as scontrol prints them ("00:03:00", "1-00:00:00", "N/A") in minutes."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+):(\d+):(\d+)", text)
    if not match:
        return None
    days, hours, mins, _ = (int(g) if g else 0 for g in match.groups())
    return days * 1440 + hours * 60 + mins


def right_size_event(state: Path, index: int = -1) -> dict:
    found = events(state, "right_size")
    assert found, "no right_size event in the log"
    return found[index]


def test_a_requeued_job_asking_only_for_what_is_left_is_backfilled_before_a_top_priority_job(cluster, unprivileged):
    # The job: 30 units of 2 s with a 60-minute limit, whole nodes (partition "fit").
    job, state = submit_as_user(cluster, unprivileged, "backfill", sbatch="-p fit --time=60 -w n3", WORKER_UNITS="30", WORKER_SECONDS="2")
    blocker = big = None
    try:
        cluster.wait_state(job, "RUNNING", timeout=60)
        # A blocker holds n1 for 10 minutes; a 3-node job of top priority waits for it (and so
        # for n1's end): n2 and n3 stand free for those 10 minutes once the job is requeued.
        blocker = cluster.command("sbatch", "--parsable", "-p", "fit", "--time=10", "-w", "n1", "-o", "/dev/null", "--wrap", "sleep 600").strip()
        cluster.wait_state(blocker, "RUNNING", timeout=60)
        big = cluster.command("sbatch", "--parsable", "-p", "fit", "--time=10", "-N", "3", "-o", "/dev/null", "--wrap", "sleep 5").strip()
        cluster.command("scontrol", "update", f"JobId={big}", "Priority=4294967000")
        cluster.wait("ten units done", lambda: len(work_log(state)) >= 10, timeout=90)
        cluster.warn(job)
        pending = cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
        requeued_at = time.monotonic()
        # What gstop asked, as its decision line says it, and as SLURM holds it.
        decision = events(state, "decision")[0]
        assert decision["action"] == "requeue", decision
        line = next(r for r in decision["reasons"] if r.startswith("right-size:"))
        asked = right_size_event(state)
        assert asked["time_limit"] is not None and asked["time_limit"] < 60, asked
        assert f"TimeLimit 1 h → {asked['time_limit']} min" in line, line
        pending = cluster.wait("the update on the pending job", lambda: (i := cluster.show(job)) and minutes(i["TimeLimit"]) < 60 and i, 20)
        assert minutes(pending["TimeLimit"]) == asked["time_limit"], (pending["TimeLimit"], asked)
        if asked["time_min"] is not None:
            assert minutes(pending["TimeMin"]) == asked["time_min"] and f"TimeMin {asked['time_min']} min" in line, (pending["TimeMin"], line)
        # The big job waits for the blocker, far beyond the requeued job's start.
        assert cluster.show(big)["JobState"] == "PENDING"
        cluster.release(job)  # SLURM's requeue delay (about 120 s) is not what is measured
        cluster.wait_state(job, "RUNNING", "COMPLETING", "COMPLETED", restarts=1, timeout=90)
        waited = time.monotonic() - requeued_at
        assert cluster.show(big)["JobState"] == "PENDING" and cluster.show(blocker)["JobState"] == "RUNNING"
        print(f"\nrequeued job started {waited:.0f} s after its requeue; {line}")
        cluster.wait_state(job, "COMPLETED", restarts=1, timeout=180)
        assert_each_unit_once(state, 30)
        assert [d["action"] for d in events(state, "decision")] == ["requeue", "finish"]
        assert waited < 90 + BACKFILL_INTERVAL, waited
    finally:
        for other in (big, blocker):
            if other:
                cluster.command("scancel", other, check=False)


def test_units_slower_than_the_estimate_cost_one_more_requeue_never_a_unit(cluster, unprivileged):
    # 20 units of 1 s, then 8 times slower after the requeue: the lowered limit (2 min) is too
    # short for what is left; the attempt stops at its deadline at a unit boundary, is requeued
    # again (right-sized anew), and finishes.
    job, state = submit_as_user(
        cluster, unprivileged, "slower", sbatch="--time=60", WORKER_UNITS="20", WORKER_SECONDS="1", WORKER_SLOW_AFTER_RESTART="8"
    )
    cluster.wait("six units done", lambda: len(work_log(state)) >= 6, timeout=90)
    cluster.warn(job)
    cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
    first = right_size_event(state, 0)
    assert first["time_limit"] is not None and first["time_limit"] <= 3, first
    cluster.release(job)
    cluster.wait_state(job, "PENDING", restarts=2, timeout=first["time_limit"] * 60 + 90)
    second_attempt = events(state, "child_exit")[1]
    assert "deadline" in second_attempt["cause"], second_attempt
    assert second_attempt["remaining"] > 0 and second_attempt["marked"] > 0, second_attempt
    second = right_size_event(state, 1)
    assert second["unit_p90"] > first["unit_p90"], (first, second)  # the new times count
    cluster.release(job)
    assert (second["time_limit"] or second["time_limit_before"]) <= 3, second
    cluster.wait_state(job, "COMPLETED", restarts=2, timeout=(second["time_limit"] or second["time_limit_before"]) * 60 + 60)
    assert_each_unit_once(state, 20)
    assert [d["action"] for d in events(state, "decision")] == ["requeue", "requeue", "finish"]


def test_right_size_off_requeues_the_job_as_submitted(cluster, unprivileged):
    job, state = submit_as_user(
        cluster, unprivileged, "off", sbatch="--time=60", gstop_options="--right-size off", WORKER_UNITS="12", WORKER_SECONDS="1"
    )
    cluster.wait("three units done", lambda: len(work_log(state)) >= 3, timeout=90)
    cluster.warn(job)
    pending = cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
    time.sleep(2)  # gstop would have updated the job by now (it does so right after the requeue)
    pending = cluster.show(job)
    assert minutes(pending["TimeLimit"]) == 60 and pending["TimeMin"] == "N/A", pending
    assert events(state, "right_size") == []
    assert not any("right-size" in r for r in events(state, "decision")[0]["reasons"])
    cluster.release(job)
    cluster.wait_state(job, "COMPLETED", restarts=1, timeout=120)
    assert_each_unit_once(state, 12)
