"""A job's loop over units, as gracefulstop expects it: work on this node's remaining units, mark
each one done, and stop after the current unit when a stop comes (SIGUSR1/SIGTERM, a stop request,
or a deadline). Run it again and it continues where it stopped.

    python examples/demo_loop.py STATE_DIR [SECONDS_PER_UNIT]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import gracefulstop

UNITS = [f"unit-{i:02d}" for i in range(1, 9)]


def main() -> int:
    state_dir = Path(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    state = gracefulstop.create(state_dir, UNITS, nodes=1)
    print(f"job: {len(state.remaining_units())} of {len(UNITS)} units to do", flush=True)
    for unit in state.work():
        with open(state_dir / "work.log", "a") as log:  # what the demo checks: each unit worked on once
            log.write(unit + "\n")
        print(f"job:   working on {unit} ...", flush=True)
        time.sleep(seconds)
        state.mark_done(unit)
        print(f"job:   {unit} done", flush=True)
    if state.should_stop():
        print(f"job: stopping cleanly ({state.stop_reason()}); "
              f"{len(state.remaining_units())} units left for the next attempt", flush=True)
    else:
        print(f"job: all {len(UNITS)} units done (run.done: {(state_dir / 'run.done').exists()})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
