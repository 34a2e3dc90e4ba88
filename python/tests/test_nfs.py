"""The shared-filesystem tests on a real NFS server with two client hosts: scripts/nfs-rig boots
the kernel's nfsd and two kernel NFS clients (User-Mode Linux; v4.2 and v3 mounts at default
options) and runs the tests of nfs_rig/ there, which are collected only inside the rig."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import GSTOP, REPOSITORY, record_reliability


def test_the_nfs_tests_pass_on_a_real_nfs_server_seen_by_two_hosts(tmp_path):
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the NFS rig needs root (apt-get, and User-Mode Linux's nfsd as root)")
        pytest.skip("the NFS rig needs root (apt-get, and User-Mode Linux's nfsd as root); CI runs it")
    figures = tmp_path / "nfs-figures.json"
    result = subprocess.run(
        [
            str(REPOSITORY / "scripts" / "nfs-rig"),
            "run",
            "env",
            f"GSTOP_NFS_FIGURES={figures}",
            f"GSTOP={GSTOP}",
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--color=no",
            "-p",
            "no:cacheprovider",
            "-rs",
            str(Path(__file__).resolve().parent / "nfs_rig"),
        ],
        capture_output=True,
        text=True,
        timeout=1500,
        cwd=tmp_path,
    )
    output = result.stdout + result.stderr
    print(output[-6000:])
    assert result.returncode == 0, output[-6000:]
    summary = [line for line in result.stdout.splitlines() if " passed" in line]
    assert summary and "skipped" not in summary[-1] and "failed" not in summary[-1], summary
    assert "21 passed" in summary[-1], summary  # 6 tests x (v4.2, v3), 5 of footprint and outages, 2 of quota and restart, 2 of unit cost
    record_reliability("nfs", **json.loads(figures.read_text()))
