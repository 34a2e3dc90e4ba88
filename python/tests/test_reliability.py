"""Reliability (issue 6): kill -9 while marking, many processes and threads at once, signals under
load, supervisor faults, full and unwritable disks. Every test checks what must hold and records
its figures in a JSON report ($GRACEFULSTOP_RELIABILITY_REPORT, default
/tmp/gracefulstop-reliability.json) from which docs/reliability.md is written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import GSTOP, REPOSITORY, child_environment, marker_files, record_reliability, start_python, worker_command

import gracefulstop


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> str:
    """Tests/Reliability/mark_worker.c, built against the header and the library under test."""
    library = Path(gracefulstop.LIBRARY_PATH)
    binary = tmp_path_factory.mktemp("worker") / "mark_worker"
    subprocess.run(
        [
            "gcc",
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{REPOSITORY / 'include'}",
            str(REPOSITORY / "Tests" / "Reliability" / "mark_worker.c"),
            str(library),
            f"-Wl,-rpath,{library.parent}",
            "-lpthread",
            "-o",
            str(binary),
        ],
        check=True,
    )
    return str(binary)


def unit(i: int) -> str:
    return f"u{i:06d}"


def returned_marks(output: bytes | str) -> list[int]:
    """The indices of the marks a worker reported as returned (its lines that are only digits)."""
    text = output.decode() if isinstance(output, bytes) else output
    return [int(line) for line in text.splitlines() if line.isdigit()]


# 1 ----------------------------------------------------------------------------------------------


def test_kill_9_while_marking_loses_no_returned_mark_and_leaves_no_torn_marker_but_the_interrupted_one(worker, tmp_path):
    trials = int(os.environ.get("GRACEFULSTOP_KILL_TRIALS", "1000"))
    per_trial = 12
    units = [unit(i) for i in range(trials * per_trial)]
    state = gracefulstop.create(tmp_path, units, nodes=1)
    done_dir = tmp_path / "done" / "0"
    rng = random.Random(20261125)
    landed: Counter = Counter()
    violations: list[str] = []
    returned_total = 0
    in_progress_in_place: set[str] = set()
    for trial in range(trials):
        # Half the trials write markers as files without a name linked into place (O_TMPFILE, on
        # local filesystems), half created in place (O_EXCL: the path NFS takes, where O_TMPFILE fails).
        way = "anonymous file" if trial % 2 == 0 else "created in place"
        first = trial * per_trial
        process = subprocess.Popen(
            [worker, str(tmp_path), "0", str(first), str(per_trial), "1"],
            stdout=subprocess.PIPE,
            env={**os.environ, "GRACEFULSTOP_ANONYMOUS_FILES": "1" if way == "anonymous file" else "0"},
        )
        assert process.stdout.readline() == b"ready\n"  # the state is open: from here on it marks
        # A mark takes about a millisecond (two fsyncs): delays up to 8 ms put the kill anywhere in
        # the trial's sequence of marks, and so in any step of one.
        time.sleep(rng.uniform(0, 0.008))
        process.kill()
        out, _ = process.communicate()
        returned = returned_marks(out)
        returned_total += len(returned)
        for index in returned:
            if not state.is_done(units[index]):
                violations.append(f"trial {trial}: {units[index]} returned but is not done")
        # (The first trial may be killed before its first mark made the node's directory.)
        temporaries = [p for p in done_dir.iterdir() if p.name.startswith(f".tmp.{process.pid}.")] if done_dir.exists() else []
        if way == "anonymous file" and temporaries:
            violations.append(f"trial {trial}: a writer of anonymous files left {temporaries[0].name}")
        # Where did the kill land? The unit in progress is the first whose mark had not returned.
        in_progress = first + len(returned)
        if in_progress >= first + per_trial:
            landed[f"{way}: after the trial's last mark"] += 1
            continue
        marker = done_dir / f"{units[in_progress]}.done"
        if marker.exists() and way == "created in place" and marker.stat().st_size < len(units[in_progress]):
            landed[f"{way}: marker created, before its write ended"] += 1
            in_progress_in_place.add(marker.name)
        elif marker.exists():
            landed[f"{way}: marker in place (its fsyncs, return not yet seen)"] += 1
        elif any(p.stat().st_size == len(units[in_progress]) for p in temporaries):
            landed[f"{way}: temporary written, before the link (write, fsync)"] += 1
        elif temporaries:
            landed[f"{way}: temporary created, before its write"] += 1
        elif way == "anonymous file":
            landed[f"{way}: before the marker appeared (existence check, the unseen file's write and fsync, between marks)"] += 1
        else:
            landed[f"{way}: before the marker (existence check, or between marks)"] += 1
    # Readers decide by a marker's name alone. A marker with short content may exist only for the
    # unit whose in-place create a kill interrupted (its work was done: it was being marked); every
    # other marker holds its whole unit name.
    torn = 0
    done_dir.mkdir(parents=True, exist_ok=True)  # a loaded machine may kill every trial before its first mark made it
    for path in done_dir.iterdir():
        # The name, then (this release) a NUL and the unit's timing record.
        if not path.name.startswith(".") and path.name.endswith(".done") and path.read_bytes().split(b"\0")[0] != path.name[:-5].encode():
            torn += 1
            if path.name not in in_progress_in_place:
                violations.append(f"torn marker {path.name}: {path.read_bytes()!r}")
    reopened = gracefulstop.open(tmp_path)
    remaining = set(reopened.remaining_units())
    marked = {path.name[:-5] for path in done_dir.iterdir() if not path.name.startswith(".")}
    if remaining != set(units) - marked:
        violations.append("remaining_units disagrees with the markers on disk")
    temporaries = [p for p in done_dir.iterdir() if p.name.startswith(".tmp.")]
    # An hour later, the next `gstop run` removes what the kills left, and nothing else.
    markers = sorted(p.name for p in done_dir.iterdir() if not p.name.startswith("."))
    for path in temporaries:
        os.utime(path, (time.time() - 3700, time.time() - 3700))
    tidy = subprocess.run([GSTOP, "run", "--state", str(tmp_path), "--requeue", "never", "--", "true"], capture_output=True, text=True)
    left_after_gstop = sum(1 for p in done_dir.iterdir() if p.name.startswith(".tmp."))
    record_reliability(
        "kill -9 while marking",
        trials=trials,
        marks_returned_before_kills=returned_total,
        violations=len(violations),
        short_markers_of_interrupted_marks=torn,
        leftover_temporary_files=len(temporaries),
        temporary_files_after_next_gstop_run=left_after_gstop,
        kills_landed=dict(landed),
    )
    assert violations == []
    steps = Counter(key.split(":")[0] for key in landed)
    assert steps["created in place"] >= 2 and steps["anonymous file"] >= 2, f"kills landed in too few steps: {dict(landed)}"
    if temporaries:
        assert f"removed {len(temporaries)} temporary file(s)" in tidy.stderr, tidy.stderr
    assert left_after_gstop == 0
    assert sorted(p.name for p in done_dir.iterdir() if not p.name.startswith(".")) == markers


# 2 ----------------------------------------------------------------------------------------------


def test_64_processes_and_threads_mark_64000_units_and_run_done_is_created_once(worker, tmp_path):
    processes, per_process, nodes = 64, 1000, 8
    units = [unit(i) for i in range(processes * per_process)]
    gracefulstop.create(tmp_path, units, nodes=nodes, partition="block")
    started = time.monotonic()
    # Processes 0-15 use four threads each, the others one.
    workers = [
        subprocess.Popen(
            [worker, str(tmp_path), str(p // (processes // nodes)), str(p * per_process), str(per_process), "4" if p < 16 else "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    results = [w.communicate(timeout=600) for w in workers]
    elapsed = time.monotonic() - started
    errors = [err for w, (_, err) in zip(workers, results) if w.returncode != 0]
    returned = sum(len(returned_marks(out)) for out, _ in results)
    state = gracefulstop.open(tmp_path)
    remaining = sum(len(state.remaining_units(node)) for node in range(nodes))
    files = marker_files(tmp_path)
    run_done = json.loads((tmp_path / "run.done").read_text())
    creator = int(run_done["by"].split(":")[1])
    record_reliability(
        "64 processes marking at once",
        processes=processes,
        threads="4 in 16 processes, 1 in 48",
        units=len(units),
        marks_returned=returned,
        markers=len(files),
        remaining=remaining,
        errors=len(errors),
        seconds=round(elapsed, 1),
        marks_per_second=round(returned / elapsed),
    )
    assert errors == []
    assert returned == 64_000 and len(files) == 64_000 and remaining == 0
    assert creator in {w.pid for w in workers}
    assert not any(name.split("/")[1].startswith(".tmp.") for name in files)
    # Created once: the file a reader sees never changes (an exclusive link, never replaced).
    assert json.loads((tmp_path / "run.done").read_text()) == run_done


def test_two_nodes_finishing_at_the_same_instant_always_leave_run_done(worker, tmp_path):
    trials = int(os.environ.get("GRACEFULSTOP_RACE_TRIALS", "200"))
    missing = 0
    creators: Counter = Counter()
    for trial in range(trials):
        state_dir = tmp_path / str(trial)
        gracefulstop.create(state_dir, [unit(0), unit(1)], nodes=2)
        start_at = str(time.time_ns() + 30_000_000)
        pair = [
            subprocess.Popen(
                [worker, str(state_dir), str(node), str(node), "1", "1"], stdout=subprocess.PIPE, env={**os.environ, "START_AT": start_at}
            )
            for node in (0, 1)
        ]
        for process in pair:
            process.communicate(timeout=60)
        if not (state_dir / "run.done").exists():
            missing += 1
        else:
            by = int(json.loads((state_dir / "run.done").read_text())["by"].split(":")[1])
            creators["node 0's process" if by == pair[0].pid else "node 1's process" if by == pair[1].pid else "other"] += 1
    record_reliability("two nodes finishing at once", trials=trials, run_done_missing=missing, created_by=dict(creators))
    assert missing == 0
    assert creators["other"] == 0


CREATOR = """
import sys, time, gracefulstop
units = [f"unit-{i:07d}" for i in range(int(sys.argv[2]))]
print("ready", flush=True)
begun = time.monotonic()
gracefulstop.create(sys.argv[1], units, nodes=int(sys.argv[3]), node=int(sys.argv[4]))
print("created", time.monotonic() - begun, flush=True)
"""


def test_kill_9_while_creating_a_version_2_state_never_leaves_a_half_state(tmp_path):
    """Creation writes every shard, then the manifest (docs/state-format.md, version 2): a creator
    killed at any instant leaves either no state (the next creator completes it, writing only the
    shards that are missing) or a whole one, never a manifest whose shards are missing or torn."""
    count, nodes = 300_000, 1000
    units = [f"unit-{i:07d}" for i in range(count)]
    trials = int(os.environ.get("GRACEFULSTOP_CREATE_KILL_TRIALS", "24"))
    # How long one undisturbed creation takes, so that the kills spread over all of it.
    timing = subprocess.run(
        [sys.executable, "-c", CREATOR, str(tmp_path / "timing"), str(count), str(nodes), "0"],
        env=child_environment(),
        check=True,
        capture_output=True,
        text=True,
    )
    full = float(timing.stdout.split()[-1])
    outcomes: Counter = Counter()
    rng = random.Random(20261127)
    for trial in range(trials):
        state_dir = tmp_path / f"trial-{trial}"
        creator = subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(state_dir), str(count), str(nodes), str(trial * 37 % nodes)],
            env=child_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert creator.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.0, full * 1.1))
        creator.send_signal(signal.SIGKILL)
        creator.communicate(timeout=60)
        shards = list((state_dir / "units").glob("*/*.json")) if (state_dir / "units").exists() else []
        if not state_dir.exists():
            outcomes["killed before its first write"] += 1
        elif (state_dir / "manifest.json").exists():
            outcomes["whole"] += 1
            assert len(shards) == nodes  # the manifest is written last
        else:
            outcomes["no manifest, {} shards".format("some" if shards else "no")] += 1
            with pytest.raises(gracefulstop.BadStateError, match=r"manifest\.json does not exist"):
                gracefulstop.open(state_dir, node=0)
        # The next creator (another node's) opens or completes it; every node then reads its share.
        with gracefulstop.create(state_dir, units, nodes=nodes, node=5) as state:
            assert state.remaining_units() == units[5::nodes]
            assert state.remaining_units(node=nodes - 1) == units[nodes - 1 :: nodes]
        assert len(list((state_dir / "units").glob("*/*.json"))) == nodes
        assert not list((state_dir / "units").glob("*/.tmp*"))
    record_reliability(
        "kill -9 while creating a state", trials=trials, units=count, nodes=nodes, creation_seconds=round(full, 2), outcomes=dict(outcomes)
    )
    assert sum(outcomes.values()) == trials
    # The kills must have hit the middle of creation, not only before or after it.
    assert outcomes["no manifest, some shards"] > 0


# 3 ----------------------------------------------------------------------------------------------

SIGNALLED_MARKER = """
import os, signal, sys, time, gracefulstop
counts = {"USR1": 0, "USR2": 0}
signal.signal(signal.SIGUSR1, lambda n, f: counts.__setitem__("USR1", counts["USR1"] + 1))
# USR2 gets a plain Python handler and no gracefulstop handler: CPython installs it without
# SA_RESTART, so system calls it interrupts fail with EINTR unless they are retried.
signal.signal(signal.SIGUSR2, lambda n, f: counts.__setitem__("USR2", counts["USR2"] + 1))
state = gracefulstop.create(sys.argv[1], [f"u{i:06d}" for i in range(int(sys.argv[2]))], nodes=1)
gracefulstop.install_signals()
print("ready", flush=True)
errors = 0
checks = 0
for unit in state.remaining_units():
    try:
        state.mark_done(unit)
    except Exception as error:
        errors += 1
        print("error", error, flush=True)
    for _ in range(50):
        checks += state.should_stop()
print("done", errors, counts["USR1"], counts["USR2"], checks, state.should_stop(), flush=True)
"""


def test_ten_thousand_signals_while_marking_lose_nothing(tmp_path):
    units = 2000
    child = start_python(SIGNALLED_MARKER.replace("sys.argv[1]", repr(str(tmp_path))).replace("int(sys.argv[2])", str(units)))
    assert child.stdout.readline().strip() == "ready"
    sent = 0
    while sent < 10_000 and child.poll() is None:
        for _ in range(50):
            try:
                os.kill(child.pid, signal.SIGUSR1 if sent % 2 == 0 else signal.SIGUSR2)
            except ProcessLookupError:
                break
            sent += 1
        time.sleep(0.0005)
    out, err = child.communicate(timeout=120)
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "done", out + err
    errors, usr1, usr2 = int(last[1]), int(last[2]), int(last[3])
    state = gracefulstop.open(tmp_path)
    lost = len(state.remaining_units())
    record_reliability(
        "signals under load",
        signals_sent=sent,
        marks=units,
        errors=errors,
        marks_lost=lost,
        python_usr1_handler_runs=usr1,
        python_usr2_handler_runs=usr2,
    )
    assert sent >= 10_000, f"only {sent} signals were sent before the child finished"
    assert errors == 0 and lost == 0
    assert usr1 > 0 and usr2 > 0  # the chained Python handler still runs
    assert last[5] == "True"  # and the stop was seen


# 4 ----------------------------------------------------------------------------------------------


def test_a_second_term_during_the_grace_period_shortens_it(tmp_path):
    supervisor = subprocess.Popen(
        [GSTOP, "run", "--state", str(tmp_path), "--grace", "60s", "--term-grace", "1s", "--kill-after", "1s", "--", *worker_command()],
        env=child_environment(WORKER_MODE="ignore"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    supervisor.stdout.readline()
    started = time.monotonic()
    supervisor.send_signal(signal.SIGUSR1)  # the warning: a minute of grace
    time.sleep(0.5)
    supervisor.send_signal(signal.SIGTERM)  # then TERM: a second of grace is all that is left
    _, err = supervisor.communicate(timeout=60)
    elapsed = time.monotonic() - started
    record_reliability("supervisor faults", second_term_stop_seconds=round(elapsed, 2))
    assert elapsed < 10, err
    assert "SIGKILL to its process group" in err
    assert supervisor.returncode == 75 and "a cancel always ends the job" in err


def test_a_command_exiting_as_the_signal_arrives_never_hangs_gstop(tmp_path):
    rng = random.Random(7)
    outcomes: Counter = Counter()
    command = [GSTOP, "run", "--requeue", "never", "--", sys.executable, "-c", "import time; time.sleep(0.05)"]
    # How long one run takes on this machine now, so that the signals land before, around and
    # after the moment the command exits however loaded the machine is.
    started = time.monotonic()
    subprocess.run([*command[:2], "--state", str(tmp_path / "baseline"), *command[2:]], check=True, capture_output=True)
    baseline = time.monotonic() - started
    for trial in range(40):
        supervisor = subprocess.Popen([*command[:2], "--state", str(tmp_path / str(trial)), *command[2:]], stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.2, 1.6) * baseline)
        try:
            supervisor.send_signal(signal.SIGUSR1)
        except ProcessLookupError:
            pass
        _, err = supervisor.communicate(timeout=30)
        outcomes[supervisor.returncode] += 1
        assert "decision:" in err, err
        assert supervisor.returncode in (0, 75), err
    record_reliability(
        "supervisor faults",
        command_exiting_at_the_signal_trials=40,
        command_exiting_at_the_signal_exit_codes={str(k): v for k, v in outcomes.items()},
    )
    # Both sides of the race were reached: stopped by the warning (75), and finished first (0).
    assert outcomes[0] > 0 and outcomes[75] > 0, dict(outcomes)


# 5 ----------------------------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true", reason="mounting a small tmpfs needs root")
def test_a_full_disk_fails_clearly_and_keeps_every_marker(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=4096", "tmpfs", str(mount)], check=True)
    try:
        state_dir = mount / "state"
        state = gracefulstop.create(state_dir, [unit(i) for i in range(50)], nodes=1)
        for i in range(10):
            state.mark_done(unit(i))
        before = marker_files(state_dir)
        with open(mount / "filler", "wb") as filler:  # fill the disk
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        with pytest.raises(gracefulstop.StateSystemError) as raised:
            state.mark_done(unit(10))
        message = str(raised.value)
        assert "No space left on device" in message and str(state_dir / "done" / "0" / f"{unit(10)}.done") in message
        assert marker_files(state_dir) == before  # nothing lost, nothing half-written
        assert state.remaining_units() == [unit(i) for i in range(10, 50)]
        result = subprocess.run([GSTOP, "mark-done", "--state", str(state_dir), unit(11)], capture_output=True, text=True)
        assert result.returncode == 74 and "No space left on device" in result.stderr
        os.remove(mount / "filler")
        state.mark_done(unit(10))  # room again: it works
        assert state.is_done(unit(10))
        state.close()
        record_reliability("full and unwritable disks", full_disk="ENOSPC named the path; 10 markers intact; none half-written; gstop exit 74")
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root (as a user, test_unwritable's chmod covers it)")
def test_permission_denied_fails_clearly_and_keeps_every_marker():
    import shutil
    import tempfile

    # Everything under a world-readable directory: nobody can read the state and run gstop (a
    # static binary, copied there), but not write.
    root = Path(tempfile.mkdtemp(prefix="gracefulstop-perm-"))
    try:
        os.chmod(root, 0o755)
        state = gracefulstop.create(root / "state", ["a", "b"], nodes=1)
        state.mark_done("a")
        state.close()
        gstop = root / "gstop"
        shutil.copy(GSTOP, gstop)
        as_nobody = {"user": 65534, "group": 65534, "extra_groups": [], "capture_output": True, "text": True, "timeout": 60}
        denied = subprocess.run([str(gstop), "mark-done", "--state", str(root / "state"), "b"], **as_nobody)
        assert denied.returncode == 74, denied.stderr
        assert "Permission denied" in denied.stderr and f"cannot create {root / 'state' / 'done' / '0' / 'b.done'}:" in denied.stderr
        listed = subprocess.run([str(gstop), "remaining", "--state", str(root / "state")], **as_nobody)
        assert listed.returncode == 0 and listed.stdout == "b\n", listed.stderr  # the state still reads
        assert marker_files(root / "state") == ["0/a.done"]  # intact, nothing half-written
        record_reliability(
            "full and unwritable disks",
            permission_denied=f"EACCES named the path ({denied.stderr.strip()}); markers intact; the state still reads; gstop exit 74",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
