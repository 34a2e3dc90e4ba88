/// The help of gstop and of each subcommand: what it does, its options with their defaults, and
/// an example to copy.
enum Help {
    static let overview = """
        gstop: stop a SLURM job gracefully before its time limit, and requeue it only while work remains.

        usage: gstop COMMAND [OPTIONS]

        commands:
          run             supervise the job's command: turn SLURM's signals into a graceful stop, then decide on requeue
          init            create a state for a list of units
          doctor          check a job's setup (signal, requeue, state filesystem, tasks, competing handlers)
          status          done / remaining / quarantined per node, unit times and when the work will be done
          history         one row per attempt: when, where, how long, why it ended, what gstop decided
          report          one HTML file with pictures: attempts on a timeline, progress, unit times, quarantine
          remaining       this node's remaining units, one per line
          mark-done       mark units done
          release         put quarantined units back (units whose worker died every time they were begun)
          should-requeue  exit 0 if the job should be requeued, 1 if not (for your own trap)
          stop            ask every process of every job using the state to stop
          resume-flag     print --resume on a restart, nothing on the first attempt

        `gstop COMMAND --help` explains each. The state directory comes from --state DIR or
        $GRACEFULSTOP_STATE_DIR; its format is docs/state-format.md.

        A batch script becomes its #SBATCH lines and one exec:

          #!/bin/bash
          #SBATCH --time=04:00:00 --signal=B:USR1@300 --requeue --open-mode=append
          exec gstop run --state /shared/exp1/state -- python train.py

        Exit codes: 0 done (or requeued); 64 bad usage; 65 bad data (state, unit); 70 internal error;
        74 a file could not be read or written; 75 work remains but the job was not requeued;
        otherwise the command's own exit code when it failed by itself.
        """

    static let run = """
        usage: gstop run [OPTIONS] -- COMMAND [ARG...]

        Runs COMMAND in its own process group and waits (asleep, using no CPU) until it ends. On a
        graceful signal (USR1 and TERM by default) gstop writes a stop request into the state (so every
        node hears it through the shared filesystem) and sends the command SIGUSR1; a Python loop using
        gracefulstop finishes its current unit and exits. If the command has not stopped within the grace
        period, gstop sends SIGTERM, then SIGKILL, to its process group. SIGINT is forwarded at once.
        If gstop itself is killed, the command is killed too.

        A signal that goes to the job's steps instead of gstop (--signal=USR1@N without B:, scancel
        --signal without -b, a preemption's TERM) reaches the command's processes: gracefulstop records
        in the state which signal stopped which node's process, tells the job's other nodes, and gstop
        decides as if the signal had reached it. B: is still recommended: with it the warning reaches
        gstop even when the command is not run by srun (a plain `python ...` is not a step, so without
        B: only its deadline stops it).

        When the command has ended, gstop decides, prints the decision on one line with its reasons (and
        in brackets how the stop arrived), and appends it to STATE/events.jsonl:
          - all work done (run.done, study.done)               -> no requeue, exit 0
          - stopped by the time-limit warning (USR1, to gstop or to the steps), by its deadline, or by
            TERM while scontrol says Reason=TimeLimit, and work remains -> scontrol requeue, exit 0
          - preempted during GraceTime (PreemptTime set)       -> scontrol requeue, exit 0 (SLURM would
                                                                  complete the job once the script exits)
          - SLURM requeued the job itself (its Restarts moved: the end of GraceTime, a node failure,
            an administrator)                                  -> no second requeue, exit 0
          - cancelled (scancel: TERM without a time limit)     -> never requeued, exit 75
          - the command failed on its own                      -> not requeued; its exit code (--retry-failures:
                                                                  requeued that many times in a row)
          - every unit done but some quarantined (run.quarantined) -> no requeue, exit 65, naming them
          - the job cannot be requeued (Requeue=0: --no-requeue, JobRequeue=0), --max-restarts reached,
            or --max-idle-attempts attempts in a row marked no unit (a sweep: finished no trial)
                                                           -> exit 75, saying which

        Units that cannot finish: a loop using work() (or begin_unit) records each attempt at a unit
        before it starts, and with GRACEFULSTOP_DEADLINE set does not begin a unit whose expected time
        (the p90 of this run's unit times, or your own estimate) exceeds the time left: it stops, and
        gstop requeues as after a warning, so no unit is begun only to be killed. A unit begun
        --max-unit-attempts times by attempts that died without finishing it (a segfault, the OOM killer,
        os._exit) is quarantined: skipped from then on, listed by `gstop status`, put back by `gstop
        release`. An attempt that marked or quarantined a unit is progress: the --retry-failures and
        --max-idle-attempts guards count only attempts in a row without it.

        Balancing (default): a worker whose share has nothing left to begin takes over units of other
        shares (those no worker owns, then the end of the share with the most left), so a slower, later
        or missing worker does not hold up the run; each unit is claimed exclusively, so none is begun
        twice. A state runs with any number of workers: fewer than its shares (a job that came back
        smaller), or more (the extra ones only take over). An array task answers for its own share
        (and, with fewer tasks than shares, its part of the shares no task owns) less what live workers
        of other tasks hold, plus what it took from others and did not finish: it is requeued only
        for those, so a task whose share others finished ends with exit 0.

        The command sees GRACEFULSTOP_STATE_DIR, GRACEFULSTOP_RESTART_COUNT (SLURM_RESTART_COUNT, 0 on
        the first attempt), GRACEFULSTOP_RESUME (1 on restarts), GRACEFULSTOP_ATTEMPT_START and
        GRACEFULSTOP_DEADLINE (the job's end time minus --deadline-margin).

        options:
          --state DIR               the state directory (default: $GRACEFULSTOP_STATE_DIR); created if missing
          --requeue MODE            task: the job, or for an array task that task alone (default)
                                    array: the whole array (every task shares one piece of work, as a sweep)
                                    never: only report what would be done
          --remaining SCOPE         whose units must remain for a requeue: this (this node or array task),
                                    any (any node), auto (any, except for an array task: this; default;
                                    with --balance off, any only for a multi-node job)
          --signals LIST            graceful signals (default USR1,TERM); others among TERM, HUP are forwarded
          --child-signal SIG        the signal that asks the command to stop (default USR1); none: only the stop
                                request in the state, which gracefulstop reads within its check interval
                                (for launchers that die from USR1, such as torchrun)
          --grace DURATION          time to stop after a warning (default: until 10 s before the job's end, else 2m)
          --term-grace DURATION     time to stop after a TERM (default 20s; keep it below SLURM's KillWait)
          --kill-after DURATION     from the escalating SIGTERM to SIGKILL (default 5s)
          --deadline-margin DURATION  GRACEFULSTOP_DEADLINE = end time - this (default 60s, at most a tenth of the
                                    time left; locally: --warn-before); "off": no deadline, only signals stop the command
          --progress-every DURATION a progress line in the job's output this often (default 10m; off): this
                                    node's units done of total, the run's, units/h, p50, when it will be done
          --max-restarts N          no requeue once N restarts were for time limits or failures (default 20);
                                    preemptions and node failures are not counted
          --max-preemptions N       no requeue by gstop after N preemptions or node failures (default unlimited)
          --exclude-bad-nodes K|off a SLURM node on which K units failed that were then done on other nodes is bad
                                    (default 2): its failures stop counting toward quarantine, and requeues
                                    exclude it (ExcNodeList), unless too few nodes would be left
          --max-idle-attempts K     no requeue after K attempts in a row that marked no unit, or of a sweep
                                that finished no trial (gracefulstop.optuna reports them) (default 3; 0: off)
          --retry-failures K        requeue a command that failed on its own, at most K times in a row without
                                progress (default 0)
          --max-unit-attempts K     quarantine a unit begun K times without finishing (default 3; 0: never);
                                the command sees it as GRACEFULSTOP_MAX_UNIT_ATTEMPTS
          --balance on|off          take over units of other shares once this worker's share is done (default on);
                                the command sees it as GRACEFULSTOP_BALANCE; off keeps the strict split
          --right-size auto|off     after a requeue, ask the scheduler only for what the work left needs (default
                                    auto): TimeLimit lowered to the units left × their p90 time + 25 % + 1 min
                                    (never raised), and a TimeMin (the start's overhead + enough units that it is
                                    a tenth of the window) so that backfill can start the job in a gap sooner;
                                    off: the requeued job asks for what it was submitted with

        local mode (outside SLURM, for a laptop or a test):
          --time-limit DURATION     act out a time limit: at the limit, stop as SLURM's TERM would
          --warn-before DURATION    send the warning this long before the limit (as --signal=B:USR1@N)
        A "requeue" then starts the command again with the restart count increased, until the work is
        done or a guard stops it.

        examples:
          #SBATCH --time=04:00:00 --signal=B:USR1@300 --requeue --open-mode=append
          exec gstop run --state /shared/exp1/state -- python train.py

          #SBATCH --array=0-3 --signal=B:USR1@120 --requeue
          exec gstop run --state /shared/sweep/state -- python sweep.py $(gstop resume-flag)

          gstop run --state /tmp/demo --time-limit 90s --warn-before 30s -- python loop.py
        """

    static let initialize = """
        usage: gstop init --units FILE --nodes N [--partition RULE] [--legacy-done-dir DIR] [--null] [--state DIR]

        Creates a state for the units listed in FILE (one per line; --null: separated by NUL bytes; "-"
        reads standard input). Running it again with the same list is fine; a different list, node count
        or rule is an error.

        options:
          --units FILE              the units, in order
          --nodes N                 how many nodes (or array tasks) share them
          --partition RULE          round-robin (unit i to node i mod N; default) or block (contiguous slices)
          --legacy-done-dir DIR     a directory of the old scripts' <unit>.done files to honour
          --null                    units in FILE are separated by NUL bytes, not newlines
          --state DIR               the state directory (default: $GRACEFULSTOP_STATE_DIR)

        example:
          gstop init --state /shared/exp1/state --units equations.txt --nodes 4 --partition block
        """

    static let doctor = """
        usage: gstop doctor [--json] [--state DIR] [--signals LIST] [--script] [BATCH_SCRIPT]

        Checks a job's setup before it runs into its time limit, and says how to fix each problem:
          - signal             --signal is set, and goes to gstop (B:) rather than to the steps
          - warning lead       the warning comes long enough before the end for the longest unit the
                               state has seen (SLURM may send it up to 60 s early, never late)
          - requeue            the job can be requeued (--requeue; Requeue=1 in scontrol)
          - scontrol           is on PATH
          - state directory    is on a filesystem every node sees (NFS, Lustre, GPFS...) and writable
          - tasks              srun tasks match the nodes the state shares its units among
          - exec, competing handler, competing requeue, torchrun
                               the script execs gstop; no trap, `scontrol requeue` or Lightning
                               auto-requeue (in the script or the Python files it names) competes;
                               torchrun under gstop gets --child-signal none (USR1 kills torchrun)
          - mpirun             gstop asks mpirun to stop with a signal it forwards (USR1; TERM aborts the job)
        Inside a job (SLURM_JOB_ID set) it asks scontrol for the job's submit line, batch script and
        Requeue; on a login node, name the batch script to check before submitting it.

        Exit status: 0 when nothing is a problem (warnings allowed), 65 when something is.

        options:
          --json          one JSON object: {"ok": bool, "findings": [{check, status, message, fix}]}
          --state DIR     the state directory (default: $GRACEFULSTOP_STATE_DIR)
          --signals LIST  the signals gstop run is given (default USR1,TERM)
          --script FILE   the batch script (also: the first argument)

        examples:
          gstop doctor --state $HOME/states/sweep job.sbatch     # on the login node, before sbatch
          gstop doctor                                           # in the batch script, before exec gstop run
        """

    static let history = """
        usage: gstop history [--last N] [--json] [--state DIR]

        One row per attempt of the run, oldest first, from events.jsonl: the job (or array task) and
        gstop's node, the restart, the host, when it started (UTC) and how long it ran, its exit, what
        gstop decided (finish, requeue, stop, slurm_requeued) with its exit code, the units it marked
        and quarantined, and why it ended, with the route the stop took. An attempt still running (or
        whose gstop was killed) has no end. A line that does not parse (a write cut short) is skipped,
        with a note on standard error. The log is read once, forward, holding only the attempts:
        a log of a million lines takes seconds; --last reads only its end.

        options:
          --last N      only the last N attempts to start (read from the log's end: as fast on a
                        log of millions of lines as on a new one)
          --json        {"attempts": [{job, node, restart, host, start, end, duration, cause, route,
                        exit, outcome, decision, decision_exit, marked, quarantined, budget}],
                        "skipped_lines": N}; outcome is done, warning, timelimit, preempted, nodefail,
                        cancelled, failed, stopped or running
          --state DIR   the state directory (default: $GRACEFULSTOP_STATE_DIR)
        """

    static let report = """
        usage: gstop report [--out FILE] [--state DIR]

        Writes one self-contained HTML file about the run (default report.html in the current
        directory): no script and nothing fetched, the pictures are inline SVG, so it opens in any
        browser, from the shared filesystem too. It shows the counts (as gstop status); the attempts on
        a timeline, one lane per job (array task) and node, each bar coloured by how the attempt ended,
        requeues as the gaps (the newest 5,000 attempts; gstop history lists all); units done over time, exact at each attempt's end, with the line to the
        estimated end; the distribution of sampled unit times with p50 and p90 and the slowest sampled
        units; the quarantined units with the command that puts each back; bad nodes; and for a sweep,
        the trials each worker finished over time. It reads what gstop status and gstop history read.

        options:
          --out FILE    where to write it (default report.html); written whole, then renamed into place
          --state DIR   the state directory (default: $GRACEFULSTOP_STATE_DIR)
        """

    static let status = """
        usage: gstop status [--json | --totals] [--state DIR]

        Shows done / remaining / quarantined / total units per node (progress bars on a terminal, a
        plain table otherwise); how long units take (p50 and p90, units per hour per node) and when the
        work will be done, as a duration and a clock time; the quarantined units with their attempts;
        whether run.done, run.quarantined or study.done exists; stop requests; and the last decision.

        Unit times come from the done-markers of units begun through work() or begin_unit() (a sample
        of up to 64 per node). The estimate assumes every node with units left is working on them, one
        unit at a time: an array whose tasks wait in the queue finishes later.

        options:
          --json        one JSON object instead: per node and for the run, unit_seconds {p50, p90},
                        units_per_hour and eta_seconds (eta_at: the unix time), and quarantined
          --totals      one line, cheap at any scale: the run's done and total units from complete/
                        and the shares' summaries (progress/, written as units are marked, at most
                        every 10 s per process): O(shares) small reads, seconds old, a lower bound
          --state DIR   the state directory (default: $GRACEFULSTOP_STATE_DIR)
        """

    static let remaining = """
        usage: gstop remaining [--node N] [--null] [--state DIR]

        Prints the units of a node that are not done, in manifest order, one per line.

        options:
          --node N      the node (default: $GRACEFULSTOP_NODE, $SLURM_ARRAY_TASK_ID, $SLURM_NODEID, else 0)
          --null        end each unit with a NUL byte instead of a newline (for names with newlines)
          --state DIR   the state directory (default: $GRACEFULSTOP_STATE_DIR)
        """

    static let markDone = """
        usage: gstop mark-done [--state DIR] UNIT...

        Marks units done, durably (as gracefulstop.mark_done does). Marking a done unit again is fine.

        example:
          gstop mark-done --state /shared/exp1/state eq_17 eq_18
        """

    static let release = """
        usage: gstop release [--state DIR] UNIT...

        Puts quarantined units back: removes each one's quarantine, the records of its failed attempts
        (so its count starts again) and run.quarantined. The next attempt that reaches the unit begins
        it again. `gstop status` lists the quarantined units; a unit that was not quarantined is fine.
        Requeue or resubmit the job afterwards for the units to run.

        example:
          gstop release --state /shared/exp1/state eq_17
        """

    static let shouldRequeue = """
        usage: gstop should-requeue [--remaining SCOPE] [--node N] [--max-restarts N] [--max-idle-attempts K] [--state DIR]

        For a batch script that keeps its own trap: after the job's command has stopped, decides as
        `gstop run` would after a time-limit warning. Prints the decision; exits 0 when the job should be
        requeued, 1 when not. It does not requeue anything itself.

        example:
          trap 'kill -USR1 $pid; wait $pid; gstop should-requeue && scontrol requeue $SLURM_JOB_ID' USR1
        """

    static let stop = """
        usage: gstop stop [--reason TEXT] [--state DIR]

        Asks every process of every job using the state to stop gracefully: writes STATE/stop.request,
        which each should_stop() sees within its check interval (1 s by default). Attempts that start
        later ignore it. The jobs then end without a requeue.
        """

    static let resumeFlag = """
        usage: gstop resume-flag [--flag=TEXT]

        Prints --resume (or TEXT) when this is a restart (GRACEFULSTOP_RESTART_COUNT or
        SLURM_RESTART_COUNT above 0), and nothing on the first attempt:

          exec gstop run -- python sweep.py $(gstop resume-flag)
          exec gstop run -- python sweep.py $(gstop resume-flag --flag=--continue)

        (A value that starts with -- is given with =, as above.)
        """
}
