"""Shared helpers for the Python tests: where the fixtures are, copies of fixture states, and a
way to run a fresh Python process with gracefulstop (signals and environment are per process)."""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
FIXTURES = REPOSITORY / "Tests" / "Fixtures"

import gracefulstop  # noqa: E402  (after the paths, for the messages below)

# The tests in nfs_rig/ run inside scripts/nfs-rig's NFS hosts, where test_nfs.py starts them.
collect_ignore = [] if os.environ.get("GSTOP_NFS_ON_B") else ["nfs_rig"]


# ./scripts/test --quick: the tests that need no root, rig or chroot. What each left-out test needs,
# by the fixture (or module) that stands it up; the run ends by saying what it left out.
QUICK = os.environ.get("GSTOP_QUICK") == "1"
NEEDS = {
    "cluster": "a SLURM cluster (root)",
    "release": "SLURM chroots (root)",
    "postgres": "PostgreSQL (root)",
    "small_filesystem": "a tmpfs mount (root)",
    "mount_point": "a tmpfs mount and another user (root)",
    "release_wheel": "the release wheel and a Debian 11 chroot",
}
NEEDING_MODULES = {"test_nfs": "the NFS rig (User-Mode Linux, root)"}
NEEDING_TESTS = {
    "test_a_full_disk_fails_clearly_and_keeps_every_marker": "a tmpfs mount (root)",
    "test_permission_denied_fails_clearly_and_keeps_every_marker": "another user (root)",
    "test_a_source_build_is_tagged_with_what_its_binaries_need": "a release build of the package (minutes)",
    "test_the_library_carries_the_swift_runtime_inside": "a release build of the package (minutes)",
    # The quick tier's debug build marks too slowly for kills to land inside marks.
    "test_kill_9_while_marking_loses_no_returned_mark_and_leaves_no_torn_marker_but_the_interrupted_one": "the release build's speed",
    # Minutes each: the full run has them.
    "test_kill_9_while_creating_a_version_2_state_never_leaves_a_half_state": "a minute and more of kills (slow)",
    "test_returned_buffers_are_freed_under_valgrind": "valgrind (slow)",
    "test_the_python_unit_tests_under_valgrind_lose_nothing_allocated_in_the_library": "valgrind (slow)",
}
# Variants that the quick tier's five minutes leave to the full run: the same test with another
# start method or signal (one spawn and one fork variant stay), and the load tests of many processes.
_GROUP_STOP = "test_a_stop_signal_to_the_whole_group_stops_at_a_step_with_a_checkpoint_and_resumes_exactly"
NEEDING_VARIANTS = {
    f"{_GROUP_STOP}[{variant}]": "more variants of one test (slow)"
    for variant in ("spawn-persistent-SIGTERM-late", "spawn-persistent-SIGUSR1-late", "fork-fresh-SIGTERM", "fork-persistent-SIGTERM")
} | {
    "test_64_processes_and_threads_mark_64000_units_and_run_done_is_created_once": "64 processes at once (slow)",
    "test_eight_processes_of_a_host_look_at_the_state_once_per_interval_between_them": "eight processes for seconds (slow)",
}
_left_out: dict[str, int] = {}


def pytest_collection_modifyitems(config, items):
    if not QUICK:
        return
    kept, dropped = [], []
    for item in items:
        needs = next((NEEDS[name] for name in item.fixturenames if name in NEEDS), None)
        needs = needs or NEEDING_MODULES.get(item.module.__name__) or NEEDING_TESTS.get(item.originalname) or NEEDING_VARIANTS.get(item.name)
        if needs:
            dropped.append(item)
            _left_out[needs] = _left_out.get(needs, 0) + 1
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_terminal_summary(terminalreporter):
    if QUICK and _left_out:
        terminalreporter.write_line(
            "quick tier: left out "
            + "; ".join(f"{count} needing {needs}" for needs, count in sorted(_left_out.items()))
            + " (./scripts/test runs them)"
        )


@pytest.fixture(autouse=True)
def no_leftover_signal():
    """Each test starts and ends with no received signal (tests send real ones to this process)."""
    gracefulstop.clear_signal()
    yield
    gracefulstop.clear_signal()


@pytest.fixture
def fixture_state(tmp_path):
    """Returns a function that copies a fixture state into tmp_path and returns its path."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(FIXTURES / "states" / name, target, symlinks=True)
        return target

    return copy


def marker_files(state: Path) -> list[str]:
    """Every file in a state's node directories (done/<node>/...), as "node/name", sorted."""
    done = Path(state) / "done"
    return sorted(f"{node.name}/{f.name}" for node in done.iterdir() if node.is_dir() for f in node.iterdir())


def expected(name: str) -> dict:
    return json.loads((FIXTURES / "states" / name / "expected.json").read_text(encoding="utf-8"))


def child_environment(**extra: str) -> dict[str, str]:
    """The environment for a child Python: it imports the same gracefulstop as this process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRACEFULSTOP_", "SLURM_"))}
    package_parent = str(Path(gracefulstop.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = package_parent + os.pathsep + env.get("PYTHONPATH", "")
    env["GRACEFULSTOP_LIBRARY"] = gracefulstop.LIBRARY_PATH
    env.update(extra)
    return env


def find_gstop() -> str:
    """The gstop that belongs to the gracefulstop under test: $GSTOP, next to this Python (pip
    installs it into the environment's bin/), on PATH, then the checkout's build folders."""
    candidates = [
        os.environ.get("GSTOP"),
        str(Path(sys.executable).parent / "gstop"),
        shutil.which("gstop"),
        str(REPOSITORY / ".build-wheel/release/gstop"),
        str(REPOSITORY / ".build/debug/gstop"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("gstop not found: pip install ./python, or swift build, or set GSTOP")


GSTOP = find_gstop()
WORKER = str(Path(__file__).resolve().parent / "job_worker.py")


def worker_command() -> list[str]:
    return [sys.executable, "-u", WORKER]


def run_python(code: str, *, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh Python with gracefulstop importable; returns the finished process."""
    return subprocess.run([sys.executable, "-c", code], env=child_environment(**env), capture_output=True, text=True, timeout=timeout)


def start_python(code: str, **env: str) -> subprocess.Popen:
    """Starts `code` in a fresh Python (stdout piped, line-buffered text)."""
    return subprocess.Popen(
        [sys.executable, "-u", "-c", code], env=child_environment(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )


RELIABILITY_REPORT = Path(os.environ.get("GRACEFULSTOP_RELIABILITY_REPORT", "/tmp/gracefulstop-reliability.json"))


def record_reliability(section: str, **figures) -> None:
    """Adds figures to the reliability report (one JSON object, merged across tests), from which
    scripts/reliability-report writes docs/reliability.md. Locked: ./scripts/test runs its test
    streams side by side, and each adds its figures."""
    with open(f"{RELIABILITY_REPORT}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = json.loads(RELIABILITY_REPORT.read_text()) if RELIABILITY_REPORT.exists() else {}
        report.setdefault(section, {}).update(figures)
        temporary = RELIABILITY_REPORT.with_name(RELIABILITY_REPORT.name + ".tmp")
        temporary.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        temporary.replace(RELIABILITY_REPORT)


CLUSTER_DIR = os.environ.get("GSTOP_SLURM_DIR", "/tmp/gracefulstop-slurm")


@pytest.fixture(scope="session")
def cluster():
    """The real SLURM cluster (scripts/slurm-cluster), started once for every test module that uses it."""
    if os.geteuid() != 0 and os.environ.get("CI") != "true":
        pytest.skip("the SLURM tests need root to install and start slurmctld/slurmd (run ./scripts/test as root, as CI does)")
    started = time.monotonic()
    result = subprocess.run([str(REPOSITORY / "scripts" / "slurm-cluster"), "start", CLUSTER_DIR], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        message = f"the SLURM test cluster did not start:\n{result.stdout}\n{result.stderr}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    print(f"\nSLURM cluster up in {time.monotonic() - started:.1f} s: {result.stdout.strip()}")
    from slurmtest import Cluster

    yield Cluster(f"{CLUSTER_DIR}/slurm.conf")
    if "already running" not in result.stdout:  # a cluster somebody else started stays up
        subprocess.run([str(REPOSITORY / "scripts" / "slurm-cluster"), "stop", CLUSTER_DIR], timeout=120)


USER = "gstopuser"


@pytest.fixture(scope="module")
def unprivileged(cluster, tmp_path_factory):
    """An ordinary user, and a copy of the installed package, gstop and the worker that user can
    reach (the test's own paths are under root's private directories)."""
    if subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/bash", USER], check=True)
    account = pwd.getpwnam(USER)
    base = Path(f"/tmp/gracefulstop-{USER}-{Path(CLUSTER_DIR).name}")  # one per cluster: streams may run side by side
    shutil.rmtree(base, ignore_errors=True)
    (base / "site").mkdir(parents=True)
    shutil.copytree(Path(gracefulstop.__file__).parent, base / "site" / "gracefulstop", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(gracefulstop.LIBRARY_PATH, base / "site" / "gracefulstop" / "libgracefulstop.so")
    shutil.copy2(GSTOP, base / "gstop")
    shutil.copy2(WORKER, base / "job_worker.py")
    for path in [base, *base.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() or path.name in ("gstop",) else 0o644)
    work = base / "work"
    work.mkdir()
    os.chown(work, account.pw_uid, account.pw_gid)
    return base, work


def submit_as_user(cluster, unprivileged, name: str, *, sbatch: str, gstop_options: str = "", **worker_env: str) -> tuple[str, Path]:
    """Submits job_worker.py under gstop as the ordinary user, in its own directory `name` of the
    user's work directory: the job id and the state's path."""
    base, work = unprivileged
    directory = work / name
    directory.mkdir()
    shutil.chown(directory, USER, USER)
    state = directory / "state"
    python = shutil.which("python3", path="/usr/bin:/bin")
    job = cluster.submit(
        directory,
        state,
        user=USER,
        gstop=str(base / "gstop"),
        gstop_options=gstop_options,
        command=f"{python} -u {base / 'job_worker.py'}",
        sbatch=sbatch,
        PYTHONPATH=str(base / "site"),
        GRACEFULSTOP_LIBRARY=str(base / "site" / "gracefulstop" / "libgracefulstop.so"),
        **worker_env,
    )
    return job, state
