"""Solves this node's share of the equations; after a stop signal, finishes the current one and
exits; the requeued job continues with what is left. Equations finished by the old scripts
(logs/completed/<eq>.done) count as done.   python run_equations.py EQUATIONS_FILE"""
import os
import sys
from pathlib import Path

import gracefulstop


def solve(equation: str) -> str:  # stands in for the real solver
    return str(sum(ord(c) ** 2 for c in equation))


with open(sys.argv[1]) as listing:
    equations = [line.strip() for line in listing if line.strip()]
state = gracefulstop.create(os.environ["GRACEFULSTOP_STATE_DIR"], equations, nodes=int(os.environ.get("SLURM_JOB_NUM_NODES", 1)),
                            partition="block", legacy_done_dir=os.path.abspath("logs/completed"))
Path("results").mkdir(exist_ok=True)
for equation in state.work():                 # this node's equations not done yet, then (balancing) others'; ends early on a stop
    Path("results", f"{equation}.txt").write_text(solve(equation))
    state.mark_done(equation)                 # durable once it returns
print(f"node {state.node}: {state.progress().remaining} equations left; stop: {state.stop_reason()}")
