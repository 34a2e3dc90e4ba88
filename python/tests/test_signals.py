"""Real signals: sent to this test process and to child processes, with a user's Python handler
installed first (it must keep running)."""

from __future__ import annotations

import os
import signal
import time

from conftest import marker_files, start_python

import gracefulstop


def test_sigusr1_to_this_process_stops_and_the_python_handler_still_runs(tmp_path):
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda number, frame: seen.append(number))
    try:
        state = gracefulstop.create(tmp_path, ["a", "b"], nodes=1)
        gracefulstop.install_signals()  # chains to the Python handler set above
        assert not state.should_stop()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert state.should_stop()  # on the very next call
        assert gracefulstop.should_stop()
        assert gracefulstop.signal_flag.value == signal.SIGUSR1
        for _ in range(100):  # Python runs its handlers between bytecodes of the main thread
            if seen:
                break
            time.sleep(0.001)
        assert seen == [signal.SIGUSR1]
        reason = state.stop_reason()
        assert (reason.kind, reason.signal, reason.detail) == ("signal", signal.SIGUSR1, "received SIGUSR1")
    finally:
        gracefulstop.uninstall_signals()
        signal.signal(signal.SIGUSR1, previous)


def test_sigterm_does_not_kill_and_sigint_is_not_trapped(tmp_path):
    gracefulstop.install_signals()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # default action would end pytest here
        assert gracefulstop.received_signal() == signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        gracefulstop.uninstall_signals()


LOOP = """
import os, signal, sys, time, gracefulstop
handled = []
signal.signal(signal.SIGUSR1, lambda n, f: handled.append(n))
state = gracefulstop.create(sys.argv[1] if len(sys.argv) > 1 else {state!r}, [f"u{{i}}" for i in range(1000)], nodes=1)
print("ready", flush=True)
for unit in state.work():
    time.sleep(0.02)          # a unit of work; the signal lands in the middle of one
    state.mark_done(unit)
print("stopped", state.stop_reason(), "handler ran" if handled else "handler did not run", flush=True)
print("remaining", len(state.remaining_units()), flush=True)
"""


def test_a_child_loop_stops_after_its_current_unit_on_sigusr1(tmp_path):
    child = start_python(LOOP.format(state=str(tmp_path)))
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    child.send_signal(signal.SIGUSR1)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "stopped received SIGUSR1 handler ran"
    remaining = int(lines[1].split()[1])
    done = sorted(name.split("/")[1] for name in marker_files(tmp_path))
    assert 0 < len(done) < 1000 and len(done) + remaining == 1000
    # It finished the unit it was in: the done units are exactly the first ones, no gap.
    assert done == sorted(f"u{i}.done" for i in range(len(done)))


def test_sigterm_to_a_child_is_graceful_and_sigint_is_immediate(tmp_path):
    child = start_python(LOOP.format(state=str(tmp_path / "term")))
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    child.terminate()
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0 and out.startswith("stopped received SIGTERM")

    child = start_python(LOOP.format(state=str(tmp_path / "int")))
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode != 0 and "KeyboardInterrupt" in err and "stopped" not in out


def test_forked_children_get_the_default_handlers_back_and_keep_the_flag(tmp_path):
    child = start_python("""
import os, signal, time, gracefulstop
gracefulstop.install_signals()
pid = os.fork()
if pid == 0:                     # a worker that does nothing about signals: USR1 ends it, as without gracefulstop
    time.sleep(30)
    os._exit(5)
time.sleep(0.3)
os.kill(pid, signal.SIGUSR1)
_, status = os.waitpid(pid, 0)
print("plain worker exit", os.waitstatus_to_exitcode(status), flush=True)
pid = os.fork()
if pid == 0:                     # a worker that wants to stop gracefully installs the handlers again
    gracefulstop.install_signals()
    print("worker ready", flush=True)
    while not gracefulstop.should_stop():
        time.sleep(0.01)
    os._exit(0 if gracefulstop.received_signal() == signal.SIGUSR1 else 3)
print("parent ready", flush=True)
time.sleep(0.3)
os.kill(pid, signal.SIGUSR1)     # not killed by it: the inherited handler records it
_, status = os.waitpid(pid, 0)
print("worker exit", os.waitstatus_to_exitcode(status), "parent stop", gracefulstop.should_stop(), flush=True)
os.kill(os.getpid(), signal.SIGUSR1)
pid = os.fork()
if pid == 0:
    os._exit(0 if gracefulstop.should_stop() else 4)   # forked after the stop: already sees it
_, status = os.waitpid(pid, 0)
print("late worker exit", os.waitstatus_to_exitcode(status), flush=True)
""")
    out, err = child.communicate(timeout=60)
    assert f"plain worker exit {-signal.SIGUSR1}" in out, err
    assert "worker exit 0 parent stop False" in out, err
    assert "late worker exit 0" in out, err


def test_stop_flag_is_set_by_a_real_signal_and_keeps_the_users_handler():
    child = start_python("""
import os, signal, time, gracefulstop
seen = []
signal.signal(signal.SIGUSR1, lambda n, f: seen.append(n))
flag = gracefulstop.stop_flag()
assert flag == [0] and signal.SIGUSR1 in gracefulstop.trapped_signals()
os.kill(os.getpid(), signal.SIGUSR1)
for _ in range(10000):
    if flag[0]:
        break
print(flag[0], seen, gracefulstop.should_stop(), flush=True)
""")
    out, err = child.communicate(timeout=60)
    assert out.split("\n")[0] == f"{signal.SIGUSR1} [{signal.SIGUSR1}] True", err


def test_module_level_should_stop_becomes_the_library_function_and_still_sees_requests(tmp_path):
    gracefulstop.create(tmp_path, ["a"], nodes=1)
    child = start_python(
        """
import os, signal, gracefulstop
first = gracefulstop.should_stop()
print(first, type(gracefulstop.should_stop).__name__, flush=True)
gracefulstop.default_state().set_check_interval(0)
gracefulstop.request_stop("from the test")
print(gracefulstop.should_stop(), gracefulstop.stop_reason().kind, flush=True)
""",
        GRACEFULSTOP_STATE_DIR=str(tmp_path),
    )
    out, err = child.communicate(timeout=60)
    assert out.split("\n")[:2] == ["False _FuncPtr", "True request"], err


POOL = """
import multiprocessing, os, signal, sys, time, gracefulstop

def work(unit):
    state = gracefulstop.open({state!r})
    state.mark_done(unit)
    time.sleep(0.05)
    # What a forked worker sees: the handlers that were there before gracefulstop's (none), so
    # TERM ends it as it would without gracefulstop.
    return unit, gracefulstop.trapped_signals()

def forever(_):
    time.sleep(600)

if __name__ == "__main__":
    state = gracefulstop.create({state!r}, [f"u{{i}}" for i in range(16)], nodes=1)
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(work, [f"u{{i}}" for i in range(12)])
        pending = pool.map_async(forever, range(4))  # workers busy, as in a job stopped mid-map
        time.sleep(0.5)
        started = time.monotonic()
        pool.terminate()  # SIGTERM to each worker, then joins them
        print("terminated in", round(time.monotonic() - started, 2), flush=True)
    print("worker handlers", sorted({{tuple(h) for _, h in results}}), flush=True)
    print("parent-handlers", gracefulstop.trapped_signals(), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)  # the parent still stops gracefully
    print("parent-stop", state.should_stop(), state.stop_reason().detail, flush=True)
    print("remaining", state.remaining_units(), flush=True)
"""


def test_a_forked_pool_worker_dies_from_sigterm_and_the_parent_keeps_its_handlers(tmp_path):
    # Before: the workers inherited gracefulstop's handler, ignored TERM, and terminate() hung
    # until gstop's SIGKILL (5 of 5 runs).
    state = tmp_path / "state"
    child = start_python(POOL.format(state=str(state)))
    try:
        output, errors = child.communicate(timeout=60)
    except Exception:
        child.kill()
        raise
    assert child.returncode == 0, errors
    lines = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    assert float(lines["terminated"].split()[1]) < 5, output
    assert lines["worker"] == "handlers [()]", output  # every worker: no gracefulstop handler
    assert lines["parent-handlers"] == str(sorted([int(signal.SIGUSR1), int(signal.SIGTERM)])), output
    assert lines["parent-stop"] == "True received SIGTERM", output
    assert lines["remaining"] == str([f"u{i}" for i in range(12, 16)]), output  # the workers' marks are intact
    assert sorted(marker_files(state)) == sorted(f"0/{gracefulstop.marker_name(f'u{i}')}" for i in range(12))
