"""What should_stop() costs the NFS server, counted on the server (/proc/net/rpc/nfsd): 8 processes
per host on both hosts calling it in a loop, with the processes of a host sharing one watcher of the
stop requests, against each process watching on its own (GRACEFULSTOP_HOST_BOARD=0, as before).
And with the server stopped for 60 s under such loops, no call waits for it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gracefulstop

ON_B = shlex.split(os.environ["GSTOP_NFS_ON_B"])
FIGURES = Path(os.environ.get("GSTOP_NFS_FIGURES", "/tmp/gracefulstop-nfs-figures.json"))
PROCESSES = 8

LOOPER = r"""
import os, sys, time, gracefulstop
state_dir, processes, seconds, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())
state = gracefulstop.open(state_dir)
state.should_stop()  # the first call looks itself, as open() reads the state
children = []
for _ in range(processes - 1):
    pid = os.fork()
    if pid == 0:
        children = []  # a child waits for nobody (its elder siblings are not its children)
        break
    children.append(pid)
say("ready", time.time())
end = time.time() + seconds
worst = calls = 0
slow = []
while time.time() < end:
    before = time.perf_counter()
    state.should_stop()
    took = time.perf_counter() - before
    if took > 0.005:
        slow.append(f"{time.time():.2f}:{took * 1e3:.1f}")
    worst = max(worst, took)
    calls += 1
    time.sleep(pause)
say("worst", worst, calls, *slow[:500])
if children:
    for pid in children:
        os.waitpid(pid, 0)
os._exit(0)
"""


def record(key: str, **figures) -> None:
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data[key] = {**figures, "mount_options": os.environ.get("GSTOP_NFS_OPTIONS", "")}
    FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def server_counts() -> dict[str, int]:
    """RPC calls and NFS operations the server has handled so far."""
    counts = {"rpc": 0, "ops": 0}
    for line in Path("/proc/net/rpc/nfsd").read_text().splitlines():
        fields = line.split()
        if fields[0] == "rpc":
            counts["rpc"] = int(fields[1])
        elif fields[0] in ("proc3", "proc4ops"):
            counts["ops"] += sum(int(value) for value in fields[2:])
    return counts


def settle_background(limit: float = 2.0, window: float = 2.0, timeout: float = 60.0) -> None:
    """Waits until the server handles at most `limit` operations a second with no loop running: the
    clients return the delegations of the files earlier phases and tests left (tens of operations a
    second for a while), which would otherwise swing the background taken off the next figure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = server_counts()
        time.sleep(window)
        if (server_counts()["ops"] - before["ops"]) / window <= limit:
            return


def loop_on_both_hosts(version: str, name: str, seconds: float, pause: float = 0.002, **env: str) -> list[subprocess.Popen]:
    a_mount, b_mount = {"v4.2": ("GSTOP_NFS_A4", "GSTOP_NFS_B4"), "v3": ("GSTOP_NFS_A3", "GSTOP_NFS_B3")}[version]
    state_a = os.path.join(os.environ[a_mount], name)
    gracefulstop.create(state_a, ["a"], nodes=1)
    state_b = os.path.join(os.environ[b_mount], name)
    environment = {**os.environ, **env}
    loops = [
        subprocess.Popen(
            [*prefix, sys.executable, "-c", LOOPER, state, str(PROCESSES), str(seconds), str(pause)],
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
        )
        for prefix, state in (([], state_a), (ON_B, state_b))
    ]
    for loop in loops:
        for _ in range(PROCESSES):
            assert loop.stdout.readline().startswith("ready")
    return loops


def finish(loops: list[subprocess.Popen]) -> list[tuple[float, int]]:
    results = []
    for loop in loops:
        out, _ = loop.communicate(timeout=300)
        assert loop.returncode == 0
        results += [(float(line.split()[1]), int(line.split()[2]), line.split()[3:]) for line in out.splitlines() if line.startswith("worst")]
    assert len(results) == 2 * PROCESSES, results
    return results


@pytest.mark.parametrize("version", ["v4.2", "v3"])
def test_the_server_sees_one_watcher_per_host_not_one_per_process(version):
    # The server also serves what the clients do on their own (v4 lease renewals, delegations the
    # earlier tests' files left to return): counted over the same time with no loop running, and
    # taken off, so the figures are the loops' own.
    seconds = float(os.environ.get("GSTOP_NFS_LOOP_SECONDS", "20"))
    rates = {}
    for way, env in (("shared", {}), ("each process", {"GRACEFULSTOP_HOST_BOARD": "0"})):
        settle_background()
        idle, idle_started = server_counts(), time.monotonic()
        time.sleep(seconds / 2)
        idle_after, idle_elapsed = server_counts(), time.monotonic() - idle_started
        background = {k: (idle_after[k] - idle[k]) / idle_elapsed for k in idle}
        loops = loop_on_both_hosts(version, f"footprint-{way.replace(' ', '-')}-{os.getpid()}-{version}", seconds + 2, **env)
        time.sleep(1)
        before, started = server_counts(), time.monotonic()
        time.sleep(seconds)
        after, elapsed = server_counts(), time.monotonic() - started
        finish(loops)
        rates[way] = {k: max(0.0, (after[k] - before[k]) / elapsed - background[k]) / 2 for k in after}  # per host and second
        rates[way]["background"] = background["ops"]
    shared, alone = rates["shared"], rates["each process"]
    print(
        f"\n{version}: {PROCESSES} processes per host: shared watcher {shared['ops']:.1f} operations / {shared['rpc']:.2f} requests "
        f"per host-second; each process watching {alone['ops']:.1f} / {alone['rpc']:.2f} (the clients' own background, "
        f"{shared['background']:.1f} and {alone['background']:.1f} operations a second, taken off)"
    )
    record(
        f"should_stop() footprint, {version}",
        processes_per_host=PROCESSES,
        seconds=seconds,
        ops_per_host_second_shared=round(shared["ops"], 2),
        requests_per_host_second_shared=round(shared["rpc"], 2),
        ops_per_host_second_each_process=round(alone["ops"], 2),
        requests_per_host_second_each_process=round(alone["rpc"], 2),
        background_ops_per_second=round(shared["background"], 2),
    )
    # One watcher per host, not one per process: a fraction of the per-process load, and far from
    # the 8 requests a second of eight processes looking each. The goal of ≤ 10 operations per
    # host-second is bench figure 16's (docs/footprint.md has the figures).
    assert shared["rpc"] <= 4 and alone["rpc"] >= 6, (shared, alone)
    assert alone["ops"] >= 2 * shared["ops"], (alone, shared)


PROBE = r"""
import os, sys, time, gracefulstop
state_dir, seconds = sys.argv[1], float(sys.argv[2])
# First among the CPU's takers (SCHED_FIFO): a call's time is its own, not the 16 loopers' turns.
os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
state = gracefulstop.open(state_dir)
state.should_stop()
os.write(1, f"ready {time.time()}\n".encode())
end = time.time() + seconds
calls = []
while time.time() < end:
    before = time.perf_counter()
    state.should_stop()
    calls.append((time.time(), (time.perf_counter() - before) * 1e3))
    time.sleep(0.01)
os.write(1, ("\n".join(f"{at:.3f} {ms:.3f}" for at, ms in calls) + "\n").encode())
"""


def test_a_stopped_server_never_stalls_should_stop():
    # 8 processes per host loop for 80 s; the server is stopped from 10 s to 70 s (hard mounts: the
    # watchers' looks wait for it, 60 s). A call that waited for the server would take up to 60 s;
    # the slowest calls are compared with those of the 10 s before the stop, under the same load
    # (one UML CPU for 16 Python processes, nfsd and both clients: a call preempted mid-way takes a
    # scheduler slice or more, server or not).
    name = f"stall-{os.getpid()}"
    loops = loop_on_both_hosts("v4.2", name, 80, pause=0.01)
    # And one process on nfsa that the scheduler serves first: its calls measure should_stop() itself.
    probe = subprocess.Popen([sys.executable, "-c", PROBE, os.path.join(os.environ["GSTOP_NFS_A4"], name), "78"], stdout=subprocess.PIPE, text=True)
    assert probe.stdout.readline().startswith("ready")
    started = time.time()
    time.sleep(10)
    stopped = time.time()
    subprocess.run(["rpc.nfsd", "0"], check=True, timeout=60)
    try:
        time.sleep(60)
    finally:
        subprocess.run(["rpc.nfsd", "8"], check=True, timeout=60)
    restarted = time.time()
    results = finish(loops)
    probed = [tuple(map(float, line.split())) for line in probe.communicate(timeout=120)[0].splitlines() if line.strip()]
    assert probe.returncode == 0
    probe_before = [ms for at, ms in probed if started <= at < stopped]
    probe_during = [ms for at, ms in probed if stopped <= at < restarted]
    print(
        f"\nthe probe (SCHED_FIFO, one call per 10 ms): {len(probe_before)} calls before the stop, slowest {max(probe_before):.2f} ms; "
        f"{len(probe_during)} during the 60 s outage, slowest {max(probe_during):.2f} ms, {sum(ms > 10 for ms in probe_during)} over 10 ms"
    )
    slow = [(float(at), float(ms)) for *_, events in results for at, ms in (event.split(":") for event in events)]
    before = [ms for at, ms in slow if started <= at < stopped]
    during = [ms for at, ms in slow if stopped <= at < restarted]
    calls = sum(c for _, c, _ in results)
    worst_before, worst_during = max(before, default=0.0), max(during, default=0.0)
    print(
        f"\nserver stopped 60 s: {calls} should_stop() calls on both hosts; slowest in the 10 s before the stop "
        f"{worst_before:.1f} ms, during the 60 s outage {worst_during:.1f} ms; calls over 10 ms: "
        f"{sum(ms > 10 for ms in before)} before, {sum(ms > 10 for ms in during)} during"
    )
    record(
        "should_stop() with the server stopped for 60 s, v4.2",
        calls=calls,
        slowest_ms_before_the_stop=round(worst_before, 1),
        slowest_ms_during_the_outage=round(worst_during, 1),
        calls_over_10ms_before=sum(ms > 10 for ms in before),
        calls_over_10ms_during=sum(ms > 10 for ms in during),
    )
    record(
        "should_stop() of a process served first (SCHED_FIFO) with the server stopped for 60 s, v4.2",
        calls=len(probe_during),
        slowest_ms_before_the_stop=round(max(probe_before), 2),
        slowest_ms_during_the_outage=round(max(probe_during), 2),
    )
    # A call that waited for the server would take most of the minute. The loopers' slowest calls
    # take what the one CPU's scheduling gives 16 Python processes, as before the stop (printed
    # above); the probe, which the scheduler serves first, shows the call's own time.
    assert worst_during < 500, worst_during
    assert max(probe_during) <= 10, sorted(probe_during)[-10:]


MARKER = r"""
import os, sys, time, gracefulstop
state = gracefulstop.open(sys.argv[1], node=int(sys.argv[2]))
for unit in state.work():
    time.sleep(0.05)
    state.mark_done(unit)
    os.write(1, f"marked {unit} {time.time()}\n".encode())
os.write(1, b"end\n")
"""


def test_marking_loops_on_both_hosts_ride_out_a_server_restart():
    # Two workers (one per host, balancing over 2 shares) mark 400 units of 50 ms; the server is
    # stopped for 20 s in the middle. Hard mounts: the loops wait and resume. Every returned mark is
    # on the server, every unit done once, none quarantined (a worker that only waited is alive:
    # its claim is never over), and the run is done.
    name = f"restart-{os.getpid()}"
    units = [f"u{i:03d}" for i in range(400)]
    state_a = os.path.join(os.environ["GSTOP_NFS_A4"], name)
    gracefulstop.create(state_a, units, nodes=2)
    workers = [
        subprocess.Popen([*prefix, sys.executable, "-c", MARKER, state, str(node)], stdout=subprocess.PIPE, text=True)
        for prefix, state, node in (([], state_a, 0), (ON_B, os.path.join(os.environ["GSTOP_NFS_B4"], name), 1))
    ]
    time.sleep(4)
    stopped = time.time()
    subprocess.run(["rpc.nfsd", "0"], check=True, timeout=60)
    try:
        time.sleep(20)
    finally:
        subprocess.run(["rpc.nfsd", "8"], check=True, timeout=60)
    marked = []
    for worker in workers:
        out, _ = worker.communicate(timeout=600)
        assert worker.returncode == 0 and out.endswith("end\n"), out[-500:]
        marked += [line.split() for line in out.splitlines() if line.startswith("marked")]
    names = [unit for _, unit, _ in marked]
    before, after = sum(float(at) < stopped for *_, at in marked), sum(float(at) > stopped + 20 for *_, at in marked)
    server = Path(os.environ["GSTOP_NFS_SERVER"]) / name
    on_server = {p.name[:-5] for share in ("0", "1") for p in (server / "done" / share).iterdir()}
    print(f"\nserver stopped 20 s under two marking loops: {before} units marked before, {after} after; {len(on_server)} markers on the server")
    assert sorted(names) == units  # every unit once, by one of the two
    assert on_server == set(units)  # every returned mark is on the server
    assert not (server / "quarantine").exists() and (server / "run.done").exists()
    assert before > 0 and after > 0  # the outage fell in the middle
    record(
        "marking loops through a 20 s server stop, v4.2",
        units=len(units),
        marked_before=before,
        marked_after=after,
        returned_marks_lost=len(set(names) - on_server),
        quarantined=0,
    )


FULL_WORKER = r"""
import os, sys, time, gracefulstop
state_dir, log = sys.argv[1], sys.argv[2]
state = gracefulstop.create(state_dir, [f"u{i:03d}" for i in range(40)], nodes=1)
for unit in state.work():
    time.sleep(0.05)
    state.mark_done(unit)
    with open(log, "a") as out:
        out.write(unit + "\n")
"""


def test_a_full_export_stops_gstop_without_a_requeue_and_the_next_run_finishes(tmp_path):
    # gstop (local mode) on nfsa with its state on the NFS mount; the server's filesystem is filled
    # on the server while the job marks units. The write fails at the client (at fsync or close),
    # the library says no space and names the path, gstop stops without a requeue, every marker
    # stays, and after the filler is removed the next run finishes every unit once.
    gstop = os.environ["GSTOP"]
    name = f"full-{os.getpid()}"
    state = Path(os.environ["GSTOP_NFS_A4"]) / name
    server = Path(os.environ["GSTOP_NFS_SERVER"])
    log = tmp_path / "work.log"  # outside the export
    command = [gstop, "run", "--state", str(state), "--", sys.executable, "-c", FULL_WORKER, str(state), str(log)]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not log.exists() or len(log.read_text().split()) < 8:
        assert time.monotonic() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.05)
    filler = server / f"filler-{os.getpid()}"
    stats = os.statvfs(server)
    subprocess.run(["fallocate", "-l", str(stats.f_bfree * stats.f_frsize), str(filler)], check=False, capture_output=True)
    with open(filler, "ab") as out:  # whatever fallocate left: written until the disk says no
        try:
            while True:
                out.write(b"\0" * (1 << 20))
                out.flush()
                os.fsync(out.fileno())
        except OSError:
            pass
    _, err = job.communicate(timeout=300)
    decision = next((line for line in err.splitlines() if "decision:" in line), "")
    assert job.returncode == 75 and "the state cannot be written" in decision, err[-3000:]
    assert "no space left on the state's filesystem" in err and str(state) in err, err[-3000:]
    marked = log.read_text().split()
    markers = {p.name[:-5] for p in (server / name / "done" / "0").iterdir() if p.name.endswith(".done")}
    assert set(marked) <= markers, (marked, markers)  # every returned mark is on the server
    # gstop's own lines: on the server, or their loss said. NFS reports a write that found no space
    # only at fsync or close; before, those results were ignored and lines vanished without a word.
    logged = (server / name / "events.jsonl").read_text() if (server / name / "events.jsonl").exists() else ""
    lost_said = [line for line in err.splitlines() if "could not write the events log" in line]
    assert '"event": "decision"' in logged or any("no space" in line and "events.jsonl" in line for line in lost_said), err[-3000:]
    filler.unlink()
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = log.read_text().split()
    assert sorted(lines) == [f"u{i:03d}" for i in range(40)], lines
    assert (server / name / "run.done").exists()
    print(f"\nfull export: {len(marked)} units marked, then exit 75 without a requeue; {len(lines) - len(marked)} more after space was freed")
    record("a full export, v4.2", marked_before=len(marked), exit_when_full=75, finished_after=len(lines) - len(marked))
