"""An unwritable state: a clear error naming the path, and the markers already there intact.

As root (CI), permission bits do not stop writes, so the state is put on a real read-only
filesystem (a tmpfs remounted read-only); as another user, a directory without write permission.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess

import pytest
from conftest import marker_files

import gracefulstop


@contextlib.contextmanager
def unwritable(path):
    """Makes the directory `path` unwritable for this process, then writable again."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(path)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")] if p.is_dir()}
        for p in modes:
            p.chmod(0o555)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)


@pytest.fixture
def mount_point(tmp_path):
    """A directory of its own filesystem when root (so it can be remounted read-only)."""
    point = tmp_path / "fs"
    point.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], check=True)
    yield point
    if os.geteuid() == 0:
        gc.collect()  # handles kept alive by a traceback's frames hold directory descriptors
        if subprocess.run(["umount", str(point)]).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=True)


def test_marking_in_an_unwritable_state_fails_clearly_and_keeps_markers(mount_point):
    state_dir = mount_point / "state"
    state = gracefulstop.create(state_dir, ["a", "b", "c"], nodes=1)
    state.mark_done("a")
    before = marker_files(state_dir)
    with unwritable(mount_point):
        with pytest.raises(gracefulstop.StateSystemError) as raised:
            state.mark_done("b")
        message = str(raised.value)
        assert str(state_dir / "done" / "0" / "b.done") in message
        assert "Read-only file system" in message or "Permission denied" in message
        # Reading still works, and says the same as before.
        assert state.remaining_units() == ["b", "c"]
        with gracefulstop.open(state_dir) as reader:
            assert reader.remaining_units() == ["b", "c"]
        with pytest.raises(gracefulstop.StateSystemError, match=str(mount_point / "new")):
            gracefulstop.create(mount_point / "new", ["a"], nodes=1)
    assert marker_files(state_dir) == before
    state.mark_done("b")  # writable again: works, nothing half-written was left in the way
    assert state.remaining_units() == ["c"]
    state.close()
