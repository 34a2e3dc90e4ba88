"""Cross-host freshness on NFS, measured in scripts/nfs-rig: how long after host nfsa acts does host
nfsb see it, through gracefulstop's own calls. Run inside the rig (it needs $GSTOP_NFS_*):

    scripts/nfs-rig run python3 bench/nfs_probe.py [--trials N] [--cap SECONDS] [--json FILE]

For each NFS version (v4.2, v3) and each kind of sighting, a fresh follower process on nfsb opens
the state first (so that its client has the directory's attributes and names cached, as a job that
has been running has), says it is ready, then polls; nfsa acts after a random pause of 0.5-2.5 s;
the follower prints when it saw the change. Both hosts are one kernel, so time.time() is one clock.

- stop:      nfsa `request_stop()` -> nfsb `should_stop()` true
- remaining: nfsa marks the first unit of node 0 (done/0 did not exist yet) -> gone from nfsb's
             `remaining_units(0)`
- is_done:   nfsb asked `is_done(u)` (false) before; nfsa marks u -> nfsb's `is_done(u)` true

With --footprint SECONDS it also counts, on the server (/proc/net/rpc/nfsd), the requests and
operations that 8 processes per host on both hosts calling `should_stop()` in a loop cost per
host-second: with the host's processes sharing one watcher (/dev/shm), and each watching on its own
(GRACEFULSTOP_HOST_BOARD=0, as before issue 21).

With --marks N it also times N marks on nfsa's mount of each version against plain durable creates,
and what `is_done(u)` of an unfinished unit costs in a node directory of N markers while the
directory changed in the last 2 s (NFS readers then list it rather than trust a cached "no such
name", see docs/state-format.md) against once it has settled.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time

import gracefulstop

KINDS = ("stop", "remaining", "is_done")
POLL = 0.02


def follower(kind: str, state_dir: str, cap: float) -> None:
    """On nfsb: open, look once, say ready, then poll until the change shows (or the cap)."""
    state = gracefulstop.open(state_dir, node=0)
    if kind == "stop":
        look = state.should_stop
    elif kind == "remaining":
        look = lambda: "u0" not in state.remaining_units(0)  # noqa: E731
    else:
        look = lambda: state.is_done("u0")  # noqa: E731
    assert not look(), f"{kind}: already true before nfsa acted"
    print("ready", flush=True)
    give_up = time.monotonic() + cap
    while time.monotonic() < give_up:
        if look():
            print(f"seen {time.time()!r}", flush=True)
            return
        time.sleep(POLL)
    print("never", flush=True)


def trial(kind: str, mount_a: str, mount_b: str, name: str, cap: float) -> float | None:
    state_a = os.path.join(mount_a, name)
    gracefulstop.create(state_a, ["u0", "u1", "u2", "u3"], nodes=2)
    on_b = shlex.split(os.environ["GSTOP_NFS_ON_B"])
    watcher = subprocess.Popen(
        [*on_b, sys.executable, __file__, "follow", kind, os.path.join(mount_b, name), str(cap)], stdout=subprocess.PIPE, text=True
    )
    assert watcher.stdout is not None
    line = watcher.stdout.readline().strip()
    assert line == "ready", f"the follower on nfsb said {line!r}"
    time.sleep(random.uniform(0.5, 2.5))
    state = gracefulstop.open(state_a, node=0)
    acted = time.time()
    if kind == "stop":
        state.request_stop("nfs probe")
    else:
        state.mark_done("u0")
    seen = watcher.stdout.readline().strip()
    watcher.wait(timeout=cap + 30)
    if seen == "never":
        print(f"  {kind} {name}: nfsb did not see it within {cap} s", flush=True)
        return None
    assert seen.startswith("seen "), f"the follower on nfsb failed ({watcher.returncode}): {seen!r}"
    return float(seen.split()[1]) - acted


def mark_rate(mount: str, count: int, rounds: int = 3) -> dict:
    """Marks per second on one mount: `mark_done` against the plain durable create it must match
    (O_CREAT|O_EXCL, write, fsync, close, fsync of the directory), alternating, fresh directories."""
    ours: list[float] = []
    plain: list[float] = []
    claimed: list[float] = []
    recorded: list[float] = []
    checked: list[float] = []
    for round_number in range(rounds):
        base = os.path.join(mount, f"marks-{os.getpid()}-{os.path.basename(mount)}-{round_number}")
        units = [f"u{i:06d}" for i in range(count)]
        state = gracefulstop.create(base + "-state", units, nodes=1)
        state.mark_done(units[0])  # the node directory exists and O_TMPFILE has been tried once
        started = time.perf_counter()
        for unit in units[1:]:
            state.mark_done(unit)
        ours.append((count - 1) / (time.perf_counter() - started))
        os.makedirs(base + "-plain")
        directory = os.open(base + "-plain", os.O_RDONLY | os.O_DIRECTORY)
        started = time.perf_counter()
        for unit in units[1:]:
            fd = os.open(f"{unit}.done", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=directory)
            os.write(fd, unit.encode())
            os.fsync(fd)
            os.close(fd)
            os.fsync(directory)
        plain.append((count - 1) / (time.perf_counter() - started))
        os.close(directory)
        # What work() does per unit now (an exclusive claim, then the mark, which removes it), did in
        # the release before (a begin record: the done check, then a non-exclusive record; what
        # GRACEFULSTOP_SHARE=node still writes) and before that (is_done, then the mark).
        ways = [("claim", claimed), ("record", recorded), ("check", checked)]
        for way, rates in ways[round_number % 3 :] + ways[: round_number % 3]:
            state = gracefulstop.create(f"{base}-{way}", units, nodes=1)
            if way == "record":
                os.environ["GRACEFULSTOP_SHARE"] = "node"
            state.begin(units[0])
            state.mark_done(units[0])
            started = time.perf_counter()
            for unit in units[1:]:
                state.begin(unit) if way != "check" else state.is_done(unit)
                state.mark_done(unit)
            rates.append((count - 1) / (time.perf_counter() - started))
            os.environ.pop("GRACEFULSTOP_SHARE", None)
    mark_s, claim_s, record_s, check_s = (1 / statistics.median(r) for r in (ours, claimed, recorded, checked))
    return {
        "marks": count - 1,
        "rounds": rounds,
        "mark_done_per_s": round(statistics.median(ours), 1),
        "begin_and_mark_per_s": round(statistics.median(claimed), 1),
        "record_and_mark_per_s": round(statistics.median(recorded), 1),
        "is_done_and_mark_per_s": round(statistics.median(checked), 1),
        "begin_added": round((claim_s - check_s) / mark_s, 3),
        "claim_vs_record": round(claim_s / record_s, 3),
        "plain_create_per_s": round(statistics.median(plain), 1),
        "ratio": round(statistics.median(ours) / statistics.median(plain), 3),
    }


def is_done_cost(mount: str, count: int, bound: float = 1.2) -> dict:
    """`is_done` calls per second of an unfinished unit among `count` markers: right after a mark
    (the directory's ctime is young: a listing) and after it settled (a lookup), in one process."""
    units = [f"u{i:06d}" for i in range(count + 1)]
    state = gracefulstop.create(os.path.join(mount, f"is-done-{os.getpid()}-{os.path.basename(mount)}"), units, nodes=1)
    for unit in units[:-1]:
        state.mark_done(unit)

    def rate() -> float:
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < bound:  # within the 2 s a young ctime lasts
            assert state.is_done(units[-1]) is False
            calls += 1
        return calls / (time.perf_counter() - started)

    young = rate()
    time.sleep(2.2)
    state.is_done(units[-1])  # the one read past the cache after the ctime settled
    settled = rate()
    return {"markers": count, "young_per_s": round(young, 1), "settled_per_s": round(settled, 1), "ratio": round(young / settled, 3)}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


FOOTPRINT_LOOP = r"""
import os, sys, time, gracefulstop
state = gracefulstop.open(sys.argv[1])
state.should_stop()
for _ in range(7):
    if os.fork() == 0:
        break
os.write(1, b"ready\n")
end = time.time() + float(sys.argv[2])
while time.time() < end:
    state.should_stop()
    time.sleep(0.002)
"""


def server_counts() -> tuple[int, int]:
    """(RPC calls, NFS operations) the server has handled so far."""
    calls = operations = 0
    with open("/proc/net/rpc/nfsd") as counters:
        text = counters.read()
    for line in text.splitlines():
        fields = line.split()
        if fields[0] == "rpc":
            calls = int(fields[1])
        elif fields[0] in ("proc3", "proc4ops"):
            operations += sum(int(value) for value in fields[2:])
    return calls, operations


def footprint(mount_a: str, mount_b: str, seconds: float) -> dict:
    """Requests and operations per host-second of 8 should_stop() loops per host, shared and alone."""
    figures = {"processes_per_host": 8, "seconds": seconds}
    for way, extra in (("shared", {}), ("each_process", {"GRACEFULSTOP_HOST_BOARD": "0"})):
        name = f"footprint-{way}-{os.getpid()}"
        gracefulstop.create(os.path.join(mount_a, name), ["a"], nodes=1)
        on_b = shlex.split(os.environ["GSTOP_NFS_ON_B"])
        loops = [
            subprocess.Popen(
                [*prefix, sys.executable, "-c", FOOTPRINT_LOOP, os.path.join(mount, name), str(seconds + 3)],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, **extra},
            )
            for prefix, mount in (([], mount_a), (on_b, mount_b))
        ]
        for loop in loops:
            for _ in range(8):
                loop.stdout.readline()
        time.sleep(1.5)
        calls, operations = server_counts()
        started = time.monotonic()
        time.sleep(seconds)
        calls_after, operations_after = server_counts()
        elapsed = time.monotonic() - started
        for loop in loops:
            loop.wait(timeout=300)
        figures[f"{way}_requests_per_host_s"] = round((calls_after - calls) / (2 * elapsed), 2)
        figures[f"{way}_operations_per_host_s"] = round((operations_after - operations) / (2 * elapsed), 2)
    return figures


UNIT_COST_LOOP = r"""
import sys, gracefulstop
state_dir, mount = sys.argv[1], sys.argv[2]
def client():
    ops = read = 0
    section = False
    for line in open("/proc/self/mountstats"):
        if line.startswith("device "):
            section = line.split()[4] == mount
        elif section and ":" in line and line.split()[0].rstrip(":").isupper() and len(line.split()) >= 9:
            fields = line.split()  # op: ops transmissions timeouts bytes_sent bytes_received ...
            ops += int(fields[1])
            read += int(fields[5])
    return ops, read
state = gracefulstop.open(state_dir)
count = 0
for unit in state.work():
    state.mark_done(unit)
    count += 1
    if count == 1:  # from the second unit on: the first paid the worker's one listing of its share
        before = client()
after = client()
print(count - 1, after[0] - before[0], after[1] - before[1])
"""


def server_requests() -> int:
    with open("/proc/net/rpc/nfsd") as counters:
        for line in counters:
            if line.startswith("rpc "):
                return int(line.split()[1])
    return 0


def unit_cost(mount: str, markers: int, measured: int = 200, gstop: str | None = None) -> dict:
    """Requests and bytes per unit of a `work()` loop on `mount` in a share that already holds
    `markers` markers (written on the server's own disk, fast), from the loop's second unit on;
    and the server requests of one cold `gstop status` of that state when `gstop` is given."""
    name = f"unit-cost-{os.path.basename(mount)}-{markers}-{os.getpid()}"
    units = [f"u{i:05d}" for i in range(markers + measured)]
    server = os.path.join(os.environ["GSTOP_NFS_SERVER"], name)
    gracefulstop.create(server, units, nodes=1)
    done = os.path.join(server, "done", "0")
    os.makedirs(done, exist_ok=True)
    for unit in units[:markers]:
        with open(os.path.join(done, f"{unit}.done"), "w") as marker:
            marker.write(unit)
    requests = server_requests()
    loop = subprocess.run([sys.executable, "-c", UNIT_COST_LOOP, os.path.join(mount, name), mount], capture_output=True, text=True, timeout=600)
    if loop.returncode != 0:
        raise RuntimeError(f"the unit-cost loop failed: {loop.stderr[-2000:]}")
    requests = server_requests() - requests
    count, client_ops, read = map(int, loop.stdout.split())
    if count != measured - 1:
        raise RuntimeError(f"the loop did {count + 1} units, not {measured}")
    figures = {
        "markers": markers,
        "units": count,
        "client_requests_per_unit": round(client_ops / count, 1),
        "server_requests_per_unit": round(requests / count, 1),
        "bytes_read_per_unit": round(read / count),
    }
    if gstop:
        subprocess.run(["sh", "-c", "echo 2 > /proc/sys/vm/drop_caches"], check=False)  # cold: this host's names forgotten
        requests = server_requests()
        status = subprocess.run([gstop, "status", "--state", os.path.join(mount, name)], capture_output=True, text=True, timeout=600)
        if status.returncode != 0:
            raise RuntimeError(f"gstop status failed: {status.stderr[-2000:]}")
        figures["status_server_requests"] = server_requests() - requests
    shutil.rmtree(server)  # the export's inodes are for the next size
    return figures


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "follow":
        follower(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--cap", type=float, default=90.0, help="seconds a follower waits before it gives up")
    parser.add_argument("--versions", default="v4.2,v3", help="a comma-separated subset of v4.2,v3")
    parser.add_argument("--kinds", default=",".join(KINDS), help="a comma-separated subset of " + ",".join(KINDS) + ", or none")
    parser.add_argument("--marks", type=int, default=0, help="also time this many marks per mount against plain creates")
    parser.add_argument("--footprint", type=float, default=0, help="also count should_stop()'s server load for this many seconds")
    parser.add_argument("--unit-cost", action="store_true", help="also count a unit's and a gstop status's requests at 0-30,000 markers")
    parser.add_argument("--gstop", help="the gstop whose status --unit-cost counts")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    if "GSTOP_NFS_ON_B" not in os.environ:
        parser.error("run me inside scripts/nfs-rig (no $GSTOP_NFS_ON_B)")
    results: dict[str, dict] = {}
    for version, (mount_a, mount_b) in {
        "v4.2": (os.environ["GSTOP_NFS_A4"], os.environ["GSTOP_NFS_B4"]),
        "v3": (os.environ["GSTOP_NFS_A3"], os.environ["GSTOP_NFS_B3"]),
    }.items():
        if version not in args.versions.split(","):
            continue
        for kind in [k for k in args.kinds.split(",") if k and k != "none"]:
            seen: list[float] = []
            missed = 0
            for number in range(args.trials):
                latency = trial(kind, mount_a, mount_b, f"probe-{version}-{kind}-{number}-{os.getpid()}", args.cap)
                if latency is None:
                    missed += 1
                else:
                    seen.append(latency)
            figures = {"trials": args.trials, "never_within_cap": missed, "cap_s": args.cap}
            if seen:
                figures.update(p50_s=round(statistics.median(seen), 3), p99_s=round(percentile(seen, 0.99), 3), max_s=round(max(seen), 3))
            results[f"{version} {kind}"] = figures
            print(f"{version} {kind}: {json.dumps(figures)}", flush=True)
        if args.footprint:
            results[f"{version} footprint"] = footprint(mount_a, mount_b, args.footprint)
            print(f"{version} footprint: {json.dumps(results[f'{version} footprint'])}", flush=True)
        if args.marks:
            results[f"{version} marks"] = mark_rate(mount_a, args.marks)
            print(f"{version} marks: {json.dumps(results[f'{version} marks'])}", flush=True)
            results[f"{version} is_done cost"] = is_done_cost(mount_a, args.marks)
            print(f"{version} is_done cost: {json.dumps(results[f'{version} is_done cost'])}", flush=True)
        if args.unit_cost:
            results[f"{version} unit cost"] = {"rows": [unit_cost(mount_a, markers, gstop=args.gstop) for markers in (0, 10_000, 30_000)]}
            print(f"{version} unit cost: {json.dumps(results[f'{version} unit cost'])}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"mount_options": os.environ.get("GSTOP_NFS_OPTIONS", ""), "results": results}, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
