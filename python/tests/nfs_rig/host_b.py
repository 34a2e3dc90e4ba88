"""A process on the rig's second host (nfsb) that holds a state open and answers questions about it,
one JSON line per request line on stdin, so that its NFS client's caches stay warm between them, as
a long-running job's do."""

from __future__ import annotations

import json
import sys
import time

import gracefulstop

state = gracefulstop.open(sys.argv[1], node=0)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    request = line.split()
    if not request:
        continue
    if request[0] == "remaining":
        answer = state.remaining_units(int(request[1]))
    elif request[0] == "is_done":
        answer = state.is_done(request[1])
    elif request[0] == "should_stop":
        answer = state.should_stop()
    elif request[0] == "wait_stop":  # poll until true or the bound: the seconds it took, or None
        started, bound = time.time(), float(request[1])
        answer = None
        while time.time() - started < bound:
            if state.should_stop():
                answer = time.time()
                break
            time.sleep(0.02)
    elif request[0] == "mark":
        answer = [state.mark_done(unit) for unit in request[1:]] and True
    else:
        answer = f"unknown request {request[0]}"
    print(json.dumps({"answer": answer}), flush=True)
