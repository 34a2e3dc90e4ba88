#!/bin/bash
# The seed's way of passing a stop to Python, for comparison: a bash trap touches a flag file, and
# the Python loop polls for it every step.   seed_trap_job.sh FLAG_FILE COMMAND...
flag=$1
shift
stop() { touch "$flag"; wait "$child"; exit 0; }
trap stop USR1 TERM
"$@" &
child=$!
wait "$child"
