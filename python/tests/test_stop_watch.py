"""should_stop() off the shared filesystem: the processes of a host share one watcher of the state's
stop requests (a page in /dev/shm), so the state directory is looked at once per check interval per
host however many processes ask; counted with strace on real processes. A stop still reaches every
process within the interval, and a forked child takes the watch over when its parent is gone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import child_environment

INTERVAL = 0.5

HOST = r"""
import os, sys, time, gracefulstop
def say(*words):  # one write per line: the forked processes share the pipe
    os.write(1, (" ".join(map(str, words)) + "\n").encode())
state_dir, processes, seconds, request_after = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
gracefulstop.create(state_dir, ["a"], nodes=1)
children = []
started = time.time()
for i in range(processes):
    pid = os.fork()
    if pid == 0:
        state = gracefulstop.open(state_dir)
        state.should_stop()
        say("ready", time.time())
        end = started + seconds
        worst = 0.0
        while time.time() < end:
            before = time.perf_counter()
            stopped = state.should_stop()
            worst = max(worst, time.perf_counter() - before)
            if stopped:
                say("stopped", time.time())
                break
            time.sleep(0.001)
        say("worst", worst)
        os._exit(0)
    children.append(pid)
if request_after >= 0:
    time.sleep(request_after)
    say("request", time.time())
    gracefulstop.open(state_dir).request_stop("test: every process must hear it")
for pid in children:
    os.waitpid(pid, 0)
"""


def need_strace() -> str:
    path = shutil.which("strace")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("strace counts the looks; ./scripts/test installs it")
        pytest.skip("strace is not installed (./scripts/test installs it): it counts the looks at the state directory")
    return path


def run_host(tmp_path: Path, processes: int, seconds: float, request_after: float = -1, **env: str) -> tuple[list[str], list[float]]:
    """Runs HOST under strace; returns its output lines and the times of the looks at the state
    directory (opens of it) made after every process had made its first call."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = tmp_path / "state"
    trace = tmp_path / "trace"
    result = subprocess.run(
        [
            need_strace(),
            "-f",
            "-ttt",
            "-e",
            "trace=openat",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            HOST,
            str(state),
            str(processes),
            str(seconds),
            str(request_after),
        ],
        env=child_environment(GRACEFULSTOP_CHECK_INTERVAL=str(INTERVAL), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ready = max(float(line.split()[1]) for line in lines if line.startswith("ready"))
    looks = [
        float(line.split()[1])
        for line in trace.read_text().splitlines()
        if re.search(rf'openat\(AT_FDCWD, "{re.escape(str(state))}", O_RDONLY\|O_CLOEXEC\|O_DIRECTORY', line)
    ]
    return lines, [t for t in looks if t > ready]


def test_eight_processes_of_a_host_look_at_the_state_once_per_interval_between_them(tmp_path):
    seconds = 5.0
    _, shared = run_host(tmp_path / "shared", 8, seconds)
    _, alone = run_host(tmp_path / "alone", 8, seconds, GRACEFULSTOP_HOST_BOARD="0")
    window = seconds - 1.0  # from the last process's first call to the end, about
    print(
        f"\nlooks at the state directory by 8 processes in ~{window:.0f} s at a {INTERVAL} s interval: "
        f"shared watcher {len(shared)}, each process its own {len(alone)}"
    )
    assert len(shared) <= window / INTERVAL + 3, shared
    assert len(alone) >= 4 * len(shared), (len(alone), len(shared))  # the condition is real here


def test_a_request_reaches_every_process_within_the_interval_and_no_call_waits(tmp_path):
    lines, _ = run_host(tmp_path, 8, 10.0, request_after=3.0)
    requested = next(float(line.split()[1]) for line in lines if line.startswith("request"))
    heard = [float(line.split()[1]) - requested for line in lines if line.startswith("stopped")]
    worst = max(float(line.split()[1]) for line in lines if line.startswith("worst"))
    assert len(heard) == 8 and max(heard) <= INTERVAL + 1.0, heard
    print(f"\nstop request heard by 8 processes after {min(heard):.2f}-{max(heard):.2f} s; slowest should_stop() {worst * 1e3:.2f} ms")


FORKED = r"""
import os, sys, time, gracefulstop
state_dir = sys.argv[1]
gracefulstop.create(state_dir, ["a"], nodes=1)
state = gracefulstop.open(state_dir)
state.should_stop()
time.sleep(1.0)  # the parent's watcher leads
state.should_stop()
pid = os.fork()
if pid:
    print("parent gone", time.time(), flush=True)
    os._exit(0)  # the leader exits; its child must take the watch over
while not state.should_stop():
    time.sleep(0.01)
print("stopped", time.time(), state.stop_reason().detail, flush=True)
"""


def test_a_forked_child_takes_the_watch_over_when_its_parent_is_gone(tmp_path):
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-c", FORKED, str(state)],
        env=child_environment(GRACEFULSTOP_CHECK_INTERVAL=str(INTERVAL)),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().startswith("parent gone")
    time.sleep(2 * INTERVAL)
    requested = time.time()
    subprocess.run(
        [sys.executable, "-c", f"import gracefulstop; gracefulstop.open({str(state)!r}).request_stop('for the child')"],
        env=child_environment(),
        check=True,
        timeout=60,
    )
    line = child.stdout.readline()
    child.wait(timeout=30)
    assert line.startswith("stopped") and "for the child" in line, line
    # The parent's beat goes stale after 3 intervals + 1 s; the child's watcher then leads.
    assert float(line.split()[1]) - requested <= 4 * INTERVAL + 1.5, line
