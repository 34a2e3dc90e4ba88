"""The queue wait of a requeued job with and without right-sizing, on a real SLURM cluster with
sched/backfill (scripts/slurm-cluster): the scenario of test_slurm_right_size.py, run both ways.

A job of 30 units x 2 s with --time=60 is requeued with 20 units left while a blocker holds n1 for
BLOCK minutes and a top-priority 3-node job waits for it; n2 and n3 stand free meanwhile. Prints
how long after its requeue the job started each way, and the scontrol calls gstop made per requeue.
Run as root (it submits as root; the SLURM tests show a non-root owner can do the same):

    SLURM_CONF=/tmp/gracefulstop-slurm/slurm.conf python3 bench/right_size_wait.py [--block MINUTES]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))
from slurmtest import Cluster, events, work_log


def scenario(cluster: Cluster, right_size: str, block: int) -> tuple[float, str]:
    directory = Path(tempfile.mkdtemp(prefix=f"right-size-{right_size}-"))
    state = directory / "state"
    job = cluster.submit(
        directory, state, gstop_options=f"--right-size {right_size}", sbatch="-p fit --time=60 -w n3", WORKER_UNITS="30", WORKER_SECONDS="2"
    )
    others = []
    try:
        cluster.wait_state(job, "RUNNING", timeout=60)
        others.append(
            cluster.command(
                "sbatch", "--parsable", "-p", "fit", f"--time={block}", "-w", "n1", "-o", "/dev/null", "--wrap", f"sleep {block * 60}"
            ).strip()
        )
        cluster.wait_state(others[0], "RUNNING", timeout=60)
        others.append(cluster.command("sbatch", "--parsable", "-p", "fit", "--time=10", "-N", "3", "-o", "/dev/null", "--wrap", "sleep 5").strip())
        cluster.command("scontrol", "update", f"JobId={others[1]}", "Priority=4294967000")
        cluster.wait("ten units done", lambda: len(work_log(state)) >= 10, timeout=90)
        cluster.warn(job)
        cluster.wait_state(job, "PENDING", restarts=1, timeout=60)
        requeued = time.monotonic()
        cluster.release(job)
        cluster.wait_state(job, "RUNNING", "COMPLETING", "COMPLETED", restarts=1, timeout=block * 60 + 300)
        waited = time.monotonic() - requeued
        asked = next((r for r in events(state, "decision")[0]["reasons"] if r.startswith("right-size:")), "as submitted")
        cluster.wait_state(job, "COMPLETED", restarts=1, timeout=300)
        return waited, asked
    finally:
        for other in others:
            cluster.command("scancel", other, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block", type=int, default=10, help="minutes the blocker holds n1 (default 10, as the issue measured)")
    arguments = parser.parse_args()
    cluster = Cluster(os.environ.get("SLURM_CONF", "/tmp/gracefulstop-slurm/slurm.conf"))
    print(f"{cluster.version.strip()}, sched/backfill (bf_interval 30 s), blocker {arguments.block} min")
    for way in ("auto", "off"):
        waited, asked = scenario(cluster, way, arguments.block)
        print(f"--right-size {way}: started {waited:.0f} s after its requeue; {asked}")


if __name__ == "__main__":
    main()
