"""What one unit of a `work()` loop costs the NFS server, with 0, 10,000 and 30,000 markers already
in the worker's share: counted on the client (/proc/self/mountstats: this process's mount) and the
server (/proc/net/rpc/nfsd). Before, beginning the next unit re-listed the share's directory
(the worker's own last mark moved its ctime, so its cached names were never trusted): 12 requests
per unit with an empty share, 24 with 30,000 markers, and the bytes read grew with the share.
Counted from a loop's second unit: its start lists the share once (a job-start cost, documented). On
v4.2 a fresh open revalidates the cached names exactly (a change attribute), so the cost is flat;
v3 (ctime ticks) still lists, and is printed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import gracefulstop

# Units measured per size: v3 re-lists the share per unit (MBs at 30,000 markers), so fewer.
MEASURED = {"v4.2": 200, "v3": 50}

LOOP = r"""
import os, sys, gracefulstop
state_dir, mount = sys.argv[1], sys.argv[2]
def client():
    ops = read = 0
    section = False
    for line in open("/proc/self/mountstats"):
        if line.startswith("device "):
            section = line.split()[4] == mount
        elif section and line.strip().startswith(("READDIR:", "READDIRPLUS:", "LOOKUP:", "GETATTR:", "ACCESS:", "OPEN:", "CREATE:",
                                                  "WRITE:", "COMMIT:", "CLOSE:", "REMOVE:", "SETATTR:", "READ:", "OPEN_NOATTR:")):
            fields = line.split()
            ops += int(fields[1])
            read += int(fields[5]) if len(fields) > 5 else 0
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


def server_ops() -> int:
    for line in Path("/proc/net/rpc/nfsd").read_text().splitlines():
        if line.startswith("rpc "):
            return int(line.split()[1])
    return 0


def cost(version: str, markers: int) -> dict:
    mount = os.environ["GSTOP_NFS_A4" if version == "v4.2" else "GSTOP_NFS_A3"]
    name = f"unit-cost-{version}-{markers}-{os.getpid()}"
    measured = MEASURED[version]
    units = [f"u{i:05d}" for i in range(markers + measured)]
    server = Path(os.environ["GSTOP_NFS_SERVER"]) / name
    gracefulstop.create(str(server), units, nodes=1)  # on the server's own disk: made fast
    done = server / "done" / "0"
    done.mkdir(parents=True, exist_ok=True)
    for unit in units[:markers]:  # the share's markers, written where the server keeps them
        (done / f"{unit}.done").write_text(f'{unit} {{"ended": 1, "host": "server", "node": 0, "restart": 0}}\n')
    requests = server_ops()
    loop = subprocess.run([sys.executable, "-c", LOOP, os.path.join(mount, name), mount], capture_output=True, text=True, timeout=600)
    assert loop.returncode == 0, loop.stderr
    requests = server_ops() - requests
    count, client_ops, read = map(int, loop.stdout.split())
    assert count == measured - 1
    shutil.rmtree(server)  # the export's inodes are for the next size
    return {"markers": markers, "client_requests_per_unit": round(client_ops / count, 1), "server_requests_per_unit": round(requests / count, 1),
            "bytes_read_per_unit": round(read / count)}


@pytest.mark.parametrize("version", ["v4.2", "v3"])
def test_a_units_cost_does_not_grow_with_its_shares_markers(version):
    rows = [cost(version, markers) for markers in (0, 10_000, 30_000)]
    for row in rows:
        print(f"\n{version}: {row}", end="")
    if version == "v4.2":
        flat, big = rows[0]["server_requests_per_unit"], rows[2]["server_requests_per_unit"]
        assert big <= flat * 1.2 + 0.5, rows  # flat within 20 % from 0 to 30,000 markers
        assert rows[2]["bytes_read_per_unit"] <= rows[0]["bytes_read_per_unit"] * 1.2 + 1024, rows
