"""A job's Python side for the gstop tests: works through this node's units with gracefulstop and
logs every start of a unit to STATE/work.log as "unit node restart resume", so that tests can
check that each unit was worked on exactly once and by which node and attempt.

Configured by environment variables: WORKER_UNITS (count, default 12), WORKER_NODES (1),
WORKER_PARTITION (block), WORKER_SECONDS per unit (0.5), WORKER_MODE: work (default), crash (exit 3
after the first unit), fail (exit 3 before any unit), idle (mark nothing; wait for a stop), ignore (ignore the stop signal and
sleep; for escalation tests), loop (the seed's loop: remaining_units() and should_stop(), no begin,
so a unit may start with too little time left), poison (like work, but the unit WORKER_POISON
kills its worker with a real segfault every time). WORKER_SLOW "NODE:FACTOR,..." makes the worker of
a node that many times slower per unit (a slower machine); WORKER_NODE_NAMES "NAME:FACTOR,..." the same
by SLURMD_NODENAME; WORKER_SLOW_AFTER_RESTART "FACTOR" makes every attempt after the first that many
times slower per unit; WORKER_HANG "UNIT@NODE" makes that node's worker hang in that unit (a stuck
unit, for kill tests). WORKER_CRASH_NODE "NAME" makes every unit begun on that SLURM node kill its
worker (SIGKILL, before its work.log line; STATE/crashes.log gets "unit node restart"): a bad node. Balancing is the library's default: a worker whose share is done takes over
units of others, and its work.log lines name its own node.
"""

import ctypes
import os
import signal
import sys
import time

import gracefulstop

state_dir = os.environ["GRACEFULSTOP_STATE_DIR"]
units = [f"u{i:03d}" for i in range(int(os.environ.get("WORKER_UNITS", "12")))]
mode = os.environ.get("WORKER_MODE", "work")
seconds = float(os.environ.get("WORKER_SECONDS", "0.5"))
state = gracefulstop.create(state_dir, units, nodes=int(os.environ.get("WORKER_NODES", "1")), partition=os.environ.get("WORKER_PARTITION", "block"))
restart = os.environ.get("GRACEFULSTOP_RESTART_COUNT", "?")
for entry in filter(None, os.environ.get("WORKER_SLOW", "").split(",")):
    slow_node, factor = entry.split(":")
    if int(slow_node) == state.node:
        seconds *= float(factor)
for entry in filter(None, os.environ.get("WORKER_NODE_NAMES", "").split(",")):
    name, factor = entry.split(":")
    if name == os.environ.get("SLURMD_NODENAME"):
        seconds *= float(factor)
if restart not in ("?", "0") and os.environ.get("WORKER_SLOW_AFTER_RESTART"):
    seconds *= float(os.environ["WORKER_SLOW_AFTER_RESTART"])  # the units got slower after the first attempt
hang = os.environ.get("WORKER_HANG", "@").split("@")
resume = os.environ.get("GRACEFULSTOP_RESUME", "?")
print(f"worker: node {state.node}, restart {restart}, resume {resume}, pid {os.getpid()}, {len(state.remaining_units())} units to do", flush=True)

if mode == "fail":
    print("worker: failing before any unit", flush=True)
    sys.exit(3)
if mode == "ignore":
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
if mode == "idle":
    while not state.should_stop():
        time.sleep(0.1)
    print(f"worker: stopped without marking anything ({state.stop_reason()})", flush=True)
    sys.exit(0)


def loop():
    for unit in state.remaining_units():
        if state.should_stop():
            return
        yield unit


poison = os.environ.get("WORKER_POISON")
crash_node = os.environ.get("WORKER_CRASH_NODE")
for _count, unit in enumerate(loop() if mode == "loop" else state.work()):
    if crash_node and crash_node == os.environ.get("SLURMD_NODENAME"):
        with open(os.path.join(state_dir, "crashes.log"), "a") as log:
            log.write(f"{unit} {crash_node} {restart}\n")
        os.kill(os.getpid(), signal.SIGKILL)
    with open(os.path.join(state_dir, "work.log"), "a") as log:
        log.write(f"{unit} {state.node} {restart} {resume}\n")
    if mode == "poison" and unit == poison:
        if os.environ.get("WORKER_POISON_SIGNAL") == "KILL":
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer ends a unit that asks too much
        ctypes.string_at(0)  # a real SIGSEGV, as a buggy extension module would
    if unit == hang[0] and str(state.node) == hang[1]:
        time.sleep(3600)
    time.sleep(seconds)
    state.mark_done(unit)
    if mode == "crash":
        print("worker: crashing on purpose", flush=True)
        sys.exit(3)
print(f"worker: node {state.node} leaves {len(state.remaining_units())} units; stop: {state.stop_reason()}", flush=True)
