"""gstop with its state on NFS when the server says no or goes away: an ordinary user over quota
on the export (the server's ext4 enforces user quotas; the limit is set on the server with
quotactl), and the server stopped for 20 s under a gstop job. Each runs gstop in local mode on
host nfsa, its state on the v4.2 mount."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gracefulstop

# An ordinary user by number alone: the rig's / is this machine's, whose /etc/passwd it leaves be.
UID = 4242
EXPORT_DEVICE = b"/dev/ubdb"
Q_GETQUOTA, Q_SETQUOTA, USRQUOTA, QIF_LIMITS = 0x800007, 0x800008, 0, 5

WORKER = r"""
import os, sys, time, gracefulstop
state_dir, log, count, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
state = gracefulstop.create(state_dir, [f"u{i:03d}" for i in range(count)], nodes=1)
for unit in state.work():
    time.sleep(seconds)
    state.mark_done(unit)
    with open(log, "a") as out:
        out.write(unit + "\n")
"""


class Quota(ctypes.Structure):
    """struct if_dqblk (linux/quota.h): block limits in KiB, inode limits in files."""

    _fields_ = [
        (name, ctypes.c_uint64) for name in ("bhardlimit", "bsoftlimit", "curspace", "ihardlimit", "isoftlimit", "curinodes", "btime", "itime")
    ] + [("valid", ctypes.c_uint32)]


def quotactl(command: int, quota: Quota) -> Quota:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.quotactl((command << 8) | USRQUOTA, EXPORT_DEVICE, UID, ctypes.byref(quota)) != 0:
        raise OSError(ctypes.get_errno(), f"quotactl on {EXPORT_DEVICE.decode()}")
    return quota


def limit_files(files: int) -> None:
    """The user's inode limit on the export (0: none)."""
    quotactl(Q_SETQUOTA, Quota(ihardlimit=files, isoftlimit=files, valid=QIF_LIMITS))


@pytest.fixture
def reachable(tmp_path):
    """The package, its library and gstop where the user can read them, and /usr/bin/python3 (the
    test's own Python may live under root's home)."""
    base = Path(f"/tmp/gracefulstop-quota-{os.getpid()}")
    shutil.rmtree(base, ignore_errors=True)
    (base / "site").mkdir(parents=True)
    shutil.copytree(Path(gracefulstop.__file__).parent, base / "site" / "gracefulstop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(gracefulstop.LIBRARY_PATH, base / "site" / "gracefulstop" / "libgracefulstop.so")
    shutil.copy2(os.environ["GSTOP"], base / "gstop")
    for path in [base, *base.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() or path.name == "gstop" else 0o644)
    yield base
    limit_files(0)
    shutil.rmtree(base, ignore_errors=True)


def test_over_quota_stops_gstop_without_a_requeue_and_the_next_run_finishes(reachable):
    name = f"quota-{os.getpid()}"
    home = Path(os.environ["GSTOP_NFS_A4"]) / name
    home.mkdir()
    os.chown(home, UID, UID)
    state, log = home / "state", home / "work.log"
    server = Path(os.environ["GSTOP_NFS_SERVER"]) / name / "state"
    command = [
        "setpriv",
        f"--reuid={UID}",
        f"--regid={UID}",
        "--clear-groups",
        "env",
        "-i",
        f"PYTHONPATH={reachable / 'site'}",
        f"GRACEFULSTOP_LIBRARY={reachable / 'site' / 'gracefulstop' / 'libgracefulstop.so'}",
        "HOME=/tmp",
        "LANG=C.UTF-8",
        str(reachable / "gstop"),
        "run",
        "--state",
        str(state),
        "--",
        "/usr/bin/python3",
        "-c",
        WORKER,
        str(state),
        str(log),
        "60",
        "0.1",
    ]
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not log.exists() or len(log.read_text().split()) < 8:
        assert time.monotonic() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.05)
    used = quotactl(Q_GETQUOTA, Quota()).curinodes
    limit_files(used + 2)  # a marker or two more, then "Disk quota exceeded"
    _, err = job.communicate(timeout=300)
    decision = next((line for line in err.splitlines() if "decision:" in line), "")
    assert job.returncode == 75 and "the state cannot be written" in decision and "over quota" in decision, err[-3000:]
    assert "over quota on the state's filesystem" in err and str(state) in err, err[-3000:]
    marked = log.read_text().split()
    markers = {p.name[:-5] for p in (server / "done" / "0").iterdir() if p.name.endswith(".done")}
    assert set(marked) <= markers and len(marked) < 60, (marked, markers)  # every returned mark is on the server
    assert not (server / "requeue.failed").exists()
    limit_files(0)  # the quota raised
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    lines = log.read_text().split()
    assert sorted(lines) == [f"u{i:03d}" for i in range(60)], lines  # every unit once
    assert (server / "run.done").exists() and {p.stat().st_uid for p in server.rglob("*")} == {UID}
    print(
        f"\nover quota (inode limit {used + 2}): {len(marked)} units marked, exit 75 without a requeue; "
        f"{len(lines) - len(marked)} more once the quota was raised"
    )


def test_gstop_decides_as_if_nothing_happened_when_the_server_stops_for_20_s_under_its_job(tmp_path):
    # 300 units of 50 ms under gstop; the server is stopped for 20 s in the middle (hard mount: the
    # job's calls wait and resume). The job finishes: decision "finish", exit 0, every unit once,
    # none quarantined, no failed attempt.
    name = f"gstop-restart-{os.getpid()}"
    state = Path(os.environ["GSTOP_NFS_A4"]) / name
    server = Path(os.environ["GSTOP_NFS_SERVER"]) / name
    log = tmp_path / "work.log"
    job = subprocess.Popen(
        [os.environ["GSTOP"], "run", "--state", str(state), "--", sys.executable, "-c", WORKER, str(state), str(log), "300", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not log.exists() or len(log.read_text().split()) < 20:
        assert time.monotonic() < deadline and job.poll() is None, job.communicate()
        time.sleep(0.05)
    subprocess.run(["rpc.nfsd", "0"], check=True, timeout=60)
    try:
        time.sleep(20)
        during = len(log.read_text().split())
    finally:
        subprocess.run(["rpc.nfsd", "8"], check=True, timeout=60)
    _, err = job.communicate(timeout=600)
    lines = log.read_text().split()
    decisions = [line for line in err.splitlines() if "decision:" in line]
    assert job.returncode == 0 and len(decisions) == 1 and "decision: finish" in decisions[0], err[-3000:]
    assert sorted(lines) == [f"u{i:03d}" for i in range(300)], "every unit once"
    assert not (server / "quarantine").exists() and (server / "run.done").exists()
    assert "warning" not in err and "failed" not in err, err[-3000:]
    assert 20 <= during < 300, during  # the outage fell in the middle
    print(f"\nserver stopped 20 s under a gstop job: {during} units marked when it came back; decision: finish, every unit once")
