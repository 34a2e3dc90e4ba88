"""The real SLURM cluster the tests use (scripts/slurm-cluster), and helpers to read what a job did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from conftest import GSTOP, WORKER, child_environment

FREE_TEXT = {"Command", "WorkDir", "Comment", "AdminComment", "SystemComment", "StdErr", "StdIn", "StdOut", "SubmitLine"}


class Cluster:
    """The running test cluster, and the few SLURM commands the tests use."""

    def __init__(self, conf: str, chroot: str | None = None) -> None:
        self.env = child_environment(SLURM_CONF=conf)
        #: Client commands run inside the chroot of another SLURM release (scripts/slurm-cluster).
        self.prefix = ["chroot", chroot, "/usr/bin/env", f"SLURM_CONF={conf}"] if chroot else []
        #: What jobs run: gstop, Python and the worker (copies the chroot can reach, there), and
        #: variables every job exports.
        self.gstop, self.python, self.worker = GSTOP, sys.executable, WORKER
        self.job_env: dict[str, str] = {}
        self.version = self.command("sinfo", "-V").strip()

    def command(self, *arguments: str, check: bool = True) -> str:
        runuser = list(arguments[:4]) if arguments[0] == "runuser" else []
        rest = list(arguments[len(runuser) :])
        result = subprocess.run(runuser + self.prefix + rest, env=self.env, capture_output=True, text=True, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(arguments)} failed: {result.stderr}")
        return result.stdout

    def submit(
        self,
        directory: Path,
        state: Path,
        gstop_options: str = "",
        command: str = "",
        sbatch: str = "",
        user: str | None = None,
        gstop: str | None = None,
        sbatch_args: tuple[str, ...] = (),
        **worker_env: str,
    ) -> str:
        """Submits a batch script that execs gstop run on the test worker (as `user`, when given);
        returns the job id. In `command`, {python} and {worker} stand for this cluster's."""
        exports = " ".join(f"{k}={v}" for k, v in {**self.job_env, **worker_env}.items())
        run = (command or "{python} -u {worker}").format(python=self.python, worker=self.worker)
        gstop = gstop or self.gstop
        script = directory / "job.sh"
        script.write_text(f"""#!/bin/bash
#SBATCH --requeue --open-mode=append --output={directory}/slurm-%j.out {sbatch}
export {exports or 'WORKER_UNITS=12'}
exec {gstop} run --state {state} {gstop_options} -- {run}
""")
        script.chmod(0o755)
        as_user = ["runuser", "-u", user, "--"] if user else []
        return self.command(*as_user, "sbatch", "--parsable", *sbatch_args, str(script)).strip()

    def output(self, directory: Path, job: str) -> str:
        """What the job's batch script printed (gstop's lines among it)."""
        path = directory / f"slurm-{job}.out"
        return path.read_text() if path.exists() else ""

    def decision_lines(self, directory: Path, job: str) -> list[str]:
        return [line for line in self.output(directory, job).splitlines() if "gstop: decision:" in line]

    def show(self, job: str) -> dict[str, str]:
        """`scontrol show job -o JOB` as a dict (the first line: the job, or the array task named).
        The first value of each key wins, read from the job name's end (` UserId=`) to the first
        free-text field: user text in the name or a comment never shadows the job's own fields."""
        line = self.command("scontrol", "show", "job", "-o", job).splitlines()[0]
        head, _, rest = line.partition(" UserId=")
        fields = {
            key: value for key, _, value in (token.partition("=") for token in head.split()[:3]) if key in ("JobId", "ArrayJobId", "ArrayTaskId")
        }
        for token in ("UserId=" + rest).split():
            key, equals, value = token.partition("=")
            if key in FREE_TEXT:
                break
            if equals:
                fields.setdefault(key, value)
        return fields

    def wait(self, what: str, condition, timeout: float = 120):
        """Waits until condition() is true (returns its value), or fails saying what was awaited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def wait_state(self, job: str, *states: str, restarts: int | None = None, timeout: float = 120) -> dict[str, str]:
        def reached():
            info = self.show(job)
            ok = info["JobState"] in states and (restarts is None or int(info["Restarts"]) == restarts)
            return info if ok else None

        return self.wait(f"job {job} in {'/'.join(states)}" + (f" with Restarts={restarts}" if restarts is not None else ""), reached, timeout)

    def release(self, job: str) -> None:
        """Starts a requeued job now instead of after SLURM's requeue delay (about 120 s).

        Not in the same second as the requeue: slurmd revokes the old run's credential, and a new
        start within that second fails with "Job credential revoked" (seen in slurmctld.log here).
        """
        time.sleep(2.5)
        self.command("scontrol", "update", f"JobId={job}", "StartTime=now")

    def preempt(self, directory: Path, state: Path) -> None:
        """Once a job in "low" (on n3) has begun three units, a job in "high" preempts it."""
        self.wait("three units started", lambda: len(work_log(state)) >= 3, timeout=90)
        self.command("sbatch", "--parsable", "-p", "high", "-o", str(directory / "high-%j.out"), "--wrap", "sleep 2")

    def start_on_nodes(self, directory: Path, state: Path, nodes: int, units: int) -> str:
        """Submits an srun job over `nodes` nodes and waits until every node has begun a unit."""
        job = self.submit(
            directory,
            state,
            sbatch=f"--nodes={nodes}",
            command="srun {python} -u {worker}",
            WORKER_UNITS=str(units),
            WORKER_NODES=str(nodes),
            WORKER_SECONDS="1",
        )
        self.wait(f"all {nodes} nodes working", lambda: {n for _, n, *_ in work_log(state)} == {str(i) for i in range(nodes)})
        return job

    def warn(self, job: str) -> None:
        """The time-limit warning, as --signal=B:USR1@N sends it: SIGUSR1 to the batch script."""
        self.command("scancel", "-b", "-s", "USR1", job)


def scontrol_wrapper(cluster: Cluster, directory: Path, script: str) -> tuple[str, Path]:
    """An `scontrol` on a PATH of its own that runs `script` ({log}: a file it may append to, {real}:
    the real scontrol); returns the PATH to give the job and the log."""
    wrapper_dir, log = directory / "bin", directory / "scontrol.log"
    wrapper_dir.mkdir()
    real = subprocess.run(["which", "scontrol"], capture_output=True, text=True, env=cluster.env).stdout.strip()
    (wrapper_dir / "scontrol").write_text(script.format(log=log, real=real))
    (wrapper_dir / "scontrol").chmod(0o755)
    return f"{wrapper_dir}:{os.environ['PATH']}", log


def work_log(state: Path) -> list[list[str]]:
    path = state / "work.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def events(state: Path, kind: str | None = None) -> list[dict]:
    path = state / "events.jsonl"
    if not path.exists():
        return []
    found = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in found if kind is None or e["event"] == kind]


def assert_each_unit_once(state: Path, count: int) -> list[list[str]]:
    log = work_log(state)
    times = Counter(unit for unit, *_ in log)
    assert sorted(times) == [f"u{i:03d}" for i in range(count)], "units missing from the work log"
    assert [unit for unit, n in times.items() if n != 1] == [], "units worked on more than once"
    return log
