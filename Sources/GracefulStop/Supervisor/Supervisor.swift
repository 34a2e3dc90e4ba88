import Glibc

/// `gstop run`'s options.
public struct SupervisorOptions: Sendable {
    /// Whose remaining units decide a requeue.
    public enum RemainingScope: String, CaseIterable, Sendable {
        /// Every node's for a multi-node job (one batch script decides for all), else this node's.
        case automatic = "auto"
        /// This node's (the array task's, the batch node's).
        case thisNode = "this"
        /// Any node's: requeue while the run has work anywhere.
        case anyNode = "any"
    }

    public var command: [String]
    public var stateDirectory: String
    public var requeue: RequeueMode = .task
    public var remainingScope: RemainingScope = .automatic
    /// Signals that mean "stop gracefully" (default USR1 and TERM).
    public var gracefulSignals: [Int32] = StopSignals.defaults
    /// The signal that asks the command to stop (with the stop request).
    /// The signal that asks the command to stop; 0: none (the stop request in the state alone).
    public var childSignal: Int32 = SIGUSR1
    /// How long the command may take to stop after a warning; nil: until 10 s before the job's end
    /// (or 120 s when the end is unknown).
    public var grace: Double? = nil
    /// How long after a TERM (time limit, cancel) before escalating; below SLURM's KillWait (30 s).
    public var termGrace: Double = 20
    /// Between the escalating TERM and KILL.
    public var killAfter: Double = 5
    /// Under SLURM, how long to wait for SLURM to act (a TERM, a requeue) when the command ended
    /// early with work left and nothing said why.
    public var settleSeconds: Double = 5
    /// GRACEFULSTOP_DEADLINE is the job's end minus this; nil: 60 s under SLURM (at most a tenth of
    /// the attempt's time, so a short job is not stopped at once), the warning's lead locally.
    public var deadlineMargin: Double? = nil
    /// Whether the command gets a GRACEFULSTOP_DEADLINE at all.
    public var setsDeadline = true
    public var limits = RequeueLimits()
    /// Local mode: the time limit to act out, and the warning's lead before it.
    public var timeLimit: Double? = nil
    public var warnBefore: Double? = nil
    /// Whether workers take over units of other shares (GRACEFULSTOP_BALANCE for the command and
    /// gstop's own decision); nil: as the environment says (default on).
    public var balance: Bool? = nil
    /// Units that failed on a node and were done elsewhere after which the node is bad: its
    /// failures stop counting toward quarantine and requeues exclude it (0: off).
    public var badNodeThreshold = BadNodes.defaultThreshold
    /// Seconds between progress lines in the job's output (nil: none).
    public var progressEvery: Double? = 600
    /// After a requeue, lower the pending job's TimeLimit and set its TimeMin to what the
    /// remaining work needs (`RightSize`): `--right-size auto|off`.
    public var rightSize = true

    public init(command: [String], stateDirectory: String) {
        self.command = command
        self.stateDirectory = stateDirectory
    }
}

/// `gstop run`: starts the job's command, turns SLURM's signals (or local mode's timer) into a
/// graceful stop, and after the command exits decides — from the same state files the library
/// writes — whether to requeue. Single-threaded: every signal it handles is blocked and taken with
/// sigtimedwait, so it sleeps in the kernel while the command works (no polling, no CPU) and never
/// runs code inside a signal handler.
public final class Supervisor {
    let options: SupervisorOptions
    let slurm: SlurmJob?
    let directory: Directory
    let statePath: String
    let node: Int
    /// Names the attempts of one job in the events log: the SLURM job (stable across requeues), or
    /// this local run.
    let chain: String
    let report: (String) -> Void
    private var mask = sigset_t()
    /// The current attempt's end (unix seconds), when known: how long a requeue may be tried.
    var attemptEndTime: Double? = nil
    /// How long before the attempt's end its time-limit warning reached gstop, when it did.
    var warningLead: Double? = nil
    /// This gstop's own `child_exit` records: the crash-loop guard's memory of local restarts when
    /// events.jsonl cannot keep them.
    var exitsHere: [JSONValue] = []
    /// Why this attempt's `child_exit` record could not be written (path and error), if so.
    var historyWriteFailure: String? = nil

    /// Signals gstop takes with sigtimedwait: the graceful ones, plus those it forwards.
    private var handledSignals: [Int32] { Array(Set(options.gracefulSignals + [SIGCHLD, SIGINT, SIGTERM, SIGHUP])) }

    public init(options: SupervisorOptions, report: @escaping (String) -> Void) throws {
        slurm = SlurmJob.current()
        if slurm != nil && (options.timeLimit != nil || options.warnBefore != nil) {
            throw GracefulStopError(
                .invalidArgument, "--time-limit and --warn-before are for local mode; under SLURM the job's own limit and --signal apply")
        }
        if options.warnBefore != nil && options.timeLimit == nil {
            throw GracefulStopError(.invalidArgument, "--warn-before needs --time-limit")
        }
        if let limit = options.timeLimit, let warn = options.warnBefore, warn >= limit {
            throw GracefulStopError(
                .invalidArgument, "--warn-before (\(TimeSpan.format(warn))) must be shorter than --time-limit (\(TimeSpan.format(limit)))")
        }
        guard !options.stateDirectory.isEmpty else { throw GracefulStopError(.invalidArgument, "the state directory path is empty") }
        self.options = options
        statePath = options.stateDirectory.hasPrefix("/") ? options.stateDirectory : Supervisor.currentDirectory() + "/" + options.stateDirectory
        directory = try Directory(opening: statePath, create: true)
        node = try Environment.node().number
        chain = slurm?.logID ?? "local-\(HostName.current)-\(getpid())"
        guard options.limits.maxUnitAttempts >= 0 else {
            throw GracefulStopError(.invalidArgument, "--max-unit-attempts must be 0 (never quarantine) or more")
        }
        // gstop's own scans and the command's see the same limit, and the same balancing.
        setenv(Quarantine.attemptsVariable, String(options.limits.maxUnitAttempts), 1)
        if let balance = options.balance { setenv(Balance.variable, balance ? "1" : "0", 1) }
        _ = try Balance.enabled()  // a bad GRACEFULSTOP_BALANCE is said before the command starts
        self.report = report
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs attempts until the work is done or a decision ends the job; returns the exit code.
    public func run() throws -> Int32 {
        guard !options.command.isEmpty else { throw GracefulStopError(.invalidArgument, "no command to run: put it after --") }
        sigemptyset(&mask)
        for signal in handledSignals { sigaddset(&mask, signal) }
        sigprocmask(SIG_BLOCK, &mask, nil)
        let tidied = StaleTemporaries.remove(in: directory, now: Clock.unixSeconds())
        if tidied.removed > 0 {
            report("removed \(tidied.removed) temporary file(s) over an hour old that killed writers left in \(statePath)")
        }
        if let problem = tidied.problem { report("could not remove old temporary files (the run goes on): \(problem)") }
        if let failed = RequeueFailure.read(in: directory) {
            // Loudly: a campaign was left without its requeue; this run goes on with the work.
            report(RequeueFailure.describe(failed, now: Clock.unixSeconds()) + " — this run goes on with the work")
            record("requeue_failed_seen", [("record", failed)])
            try? directory.remove(RequeueFailure.fileName)
        }
        var restart = slurm?.restartCount ?? 0
        while true {
            let attempt = try runAttempt(restart: restart)
            let decision = RequeueDecision.decide(facts(for: attempt, restart: restart))
            switch decision.action {
            case .requeue(let target) where slurm != nil:
                return requeueThroughOutages(
                    decision, target: target, left: attempt.remaining.map { "\(attempt.scope) has \($0) units left" },
                    badNodes: attempt.badNodes, attempt: attempt, restart: restart)
            case .requeue:
                report(decision.line)
                record("decision", decision)
                restart += 1
                report("local mode: starting the command again (restart \(restart))")
            default:
                report(decision.line)
                record("decision", decision)
                return decision.exitCode
            }
        }
    }

    /// Makes the requeue a decision asked for, trying again through a slurmctld outage until the
    /// job's end is near (SlurmRequeue), and says what finally happened: requeued (after how many
    /// tries), or never — then `requeue.failed` in the state tells `gstop status` and the next run.
    private func requeueThroughOutages(
        _ decision: RequeueDecision, target: String, left: String?, badNodes: [BadNodes.BadNode] = [], attempt: Attempt? = nil, restart: Int = 0
    ) -> Int32 {
        let restartsBefore = slurm?.restartCount ?? 0
        let outcome = SlurmRequeue.run(
            target: target, restartsBefore: restartsBefore, deadline: SlurmRequeue.deadline(endTime: attemptEndTime, now: Clock.unixSeconds()),
            now: Clock.unixSeconds, pause: Clock.sleep,
            requeue: Scontrol.requeue, restartsNow: { [slurm] in try? slurm?.info().restarts },
            report: { [self] line in
                report(line)
                record("requeue_try", [("target", .string(target)), ("error", .string(line))])
            },
            stillTrying: { [self] sofar in
                // Said in the state at once: SLURM may kill gstop while it tries.
                try? RequeueFailure.write(in: directory, job: chain, target: target, outcome: sofar, left: left ?? "work was left", stillTrying: true)
            })
        if outcome.requeued {
            if outcome.tries > 1 { try? directory.remove(RequeueFailure.fileName) }
            var done = decision
            if outcome.seenRequeued {
                // scontrol can die by the requeue's own TERM before it answers: what SLURM did is the truth.
                done.reasons.append(
                    "requeued: scontrol requeue reported a failure (\(outcome.lastError ?? "?")), but SLURM shows the job requeued"
                        + (outcome.tries > 1 ? " (after \(outcome.tries) tries over \(TimeSpan.format(outcome.seconds)))" : ""))
            } else if outcome.tries > 1 {
                done.reasons.append(
                    "requeued after \(outcome.tries) tries over \(TimeSpan.format(outcome.seconds))"
                        + (outcome.lastError.map { "; slurmctld did not answer at first: \($0)" } ?? ""))
            }
            if !badNodes.isEmpty { done.reasons.append(excludeFromRequeue(badNodes, target: target)) }
            if let attempt, let line = rightSize(attempt, restart: restart, target: target) { done.reasons.append(line) }
            report(done.line)
            record("decision", done, extra: [("requeue_tries", .number(Double(outcome.tries)))])
            return 0
        }
        // What is logged is what happened: the job was not requeued, and the state says so.
        let failed = RequeueDecision(
            action: .stop, exitCode: RequeueDecision.workRemainsExitCode,
            reasons: decision.reasons.dropLast() + [
                outcome.cannotRun
                    ? "the requeue failed: \(outcome.lastError ?? "?"); \(RequeueFailure.fileName) in the state says so"
                    : "the requeue never reached slurmctld: \(outcome.tries) tr\(outcome.tries == 1 ? "y" : "ies") over \(TimeSpan.format(outcome.seconds)) "
                        + "(last: \(outcome.lastError ?? "?")); \(RequeueFailure.fileName) in the state says so: \(RequeueFailure.whatToDo(target: target))"
            ])
        do {
            try RequeueFailure.write(in: directory, job: chain, target: target, outcome: outcome, left: left ?? "work was left")
        } catch let error as GracefulStopError {
            report("warning: could not write \(directory.pathOf(RequeueFailure.fileName)): \(error.message)")
        } catch {}
        report(failed.line)
        record("decision", failed, extra: [("requeue_error", .string(outcome.lastError ?? "?")), ("requeue_tries", .number(Double(outcome.tries)))])
        return failed.exitCode
    }

    /// Judges the SLURM nodes from the state's evidence (`BadNodes`): records and says each node
    /// newly found bad. Returns every bad node. Attempts that the job's own end explains (the
    /// time limit's kill, a preemption, a cancel: this one, and earlier ones events.jsonl names)
    /// are no evidence. Never fails the attempt: a node not judged is a node trusted.
    private func judgeNodes(cause: StopCause, restart: Int) -> [BadNodes.BadNode] {
        guard slurm != nil, options.badNodeThreshold > 0 else { return [] }
        do {
            let evidence = try NodeFailures.evidence(in: directory)
            guard !evidence.isEmpty else { return [] }
            // Only attempts the evidence names matter: the log back to the oldest of them.
            var named = Set(evidence.flatMap(\.failed))
            named.remove(NodeFailures.AttemptID(job: slurm?.logID, restart: restart))  // this attempt: its cause decides
            let hardStopLines = try? EventLog.readBack(
                from: directory,
                until: { line in
                    if line["event"]?.string == "child_exit", let restart = line["restart"]?.int {
                        named.remove(NodeFailures.AttemptID(job: line["job"]?.string, restart: restart))
                    }
                    return named.isEmpty
                }, keep: { $0["event"]?.string == "child_exit" && $0["hard_stop"] == .bool(true) })
            var hardStopped = Set(
                hardStopLines?.compactMap { line -> NodeFailures.AttemptID? in
                    guard line["event"]?.string == "child_exit", line["hard_stop"] == .bool(true), let restart = line["restart"]?.int else {
                        return nil
                    }
                    return NodeFailures.AttemptID(job: line["job"]?.string, restart: restart)
                } ?? [])
            if cause.explainsDeaths { hardStopped.insert(NodeFailures.AttemptID(job: slurm?.logID, restart: restart)) }
            let bad = BadNodes.find(evidence, hardStopped: hardStopped, threshold: options.badNodeThreshold)
            for node in bad where try NodeFailures.recordBad(node, job: slurm?.logID, in: directory) {
                report(
                    "bad node: \(node.description); its failures no longer count toward quarantine, and requeues exclude it "
                        + "(\(NodeFailures.badDirectory)/\(node.node).json in the state; delete it to trust the node again)")
                record("bad_node", [("bad_node", .string(node.node)), ("units", .array(node.units.map { .string($0) }))])
            }
            return bad
        } catch let error as GracefulStopError {
            report("warning: could not judge the nodes' health (the run goes on): \(error.message)")
        } catch {}
        return []
    }

    /// After a requeue: keeps the job off its bad nodes (ExcNodeList, which SLURM takes once the
    /// job is pending again), unless too few nodes would be left. Returns what happened, for the
    /// decision line.
    private func excludeFromRequeue(_ bad: [BadNodes.BadNode], target: String) -> String {
        let names = bad.map(\.node)
        let what = "bad node\(bad.count == 1 ? "" : "s") " + bad.map(\.description).joined(separator: "; ")
        do {
            let info = try Scontrol.showJob(target, shielded: true)
            let already = try info.excludedNodes.map(Scontrol.hostnames) ?? []
            let partitionNodes = try info.partition.map { try Scontrol.partitionNodeCount(String($0.prefix { $0 != "," })) }
            let (exclude, note) = BadNodes.exclusion(bad: names, alreadyExcluded: already, partitionNodes: partitionNodes, jobNodes: info.nodeCount)
            if let note { return "\(what): \(note)" }
            if exclude.isEmpty { return "\(what): already excluded" }
            try Scontrol.excludeNodes(target, exclude)
            record("exclude_nodes", [("target", .string(target)), ("excluded", .array(exclude.map { .string($0) }))])
            return "\(what): the requeued job excludes \(names.joined(separator: ", ")) (ExcNodeList=\(exclude.joined(separator: ",")))"
        } catch let error as GracefulStopError {
            return "\(what): not excluded, \(error.message)"
        } catch {
            return "\(what): not excluded (\(error))"
        }
    }

    /// The decision `run` would make had its command just stopped after a time-limit warning, for
    /// batch scripts that keep their own trap (`gstop should-requeue`).
    public func decisionAfterWarning() throws -> RequeueDecision {
        let (workDone, after) = try assess(attemptsOver: Environment.restarts())
        var attempt = Attempt(
            end: AttemptEnd(cause: .warning(signal: SIGUSR1)), exit: .exited(0), workDone: workDone,
            remaining: after?.remaining, scope: after?.scope ?? "the run", requeueAllowed: nil)
        attempt.quarantined = after?.quarantined ?? []
        attempt.heldByOthers = after?.heldByOthers ?? 0
        attempt.claimedElsewhere = after?.claimedElsewhere ?? 0
        return RequeueDecision.decide(facts(for: attempt, restart: Environment.restarts()))
    }

    // MARK: - One attempt

    struct Attempt {
        var end: AttemptEnd
        var exit: ChildExit
        var workDone: String?
        var remaining: Int?
        var scope: String
        var requeueAllowed: Bool?
        var slurmRelease: SlurmRelease? = nil
        var started = true
        var quarantined: [String] = []
        /// The state cannot be written (SpaceProbe): no space, over quota, read-only.
        var stateWriteFailure: String? = nil
        var heldByOthers = 0
        var claimedElsewhere = 0
        /// The attempt marked or quarantined a unit (nil: it cannot tell, a sweep that reports nothing).
        var progressed: Bool? = nil
        /// The units the command was on when it ended without giving them up.
        var diedOn: [UnitInFlight] = []
        /// Every node judged bad so far (`BadNodes`), this attempt's judgements included.
        var badNodes: [BadNodes.BadNode] = []
        /// For right-sizing the requeue: when the attempt began, what scontrol said of the job,
        /// the units it answers for, and how long before its end the warning came (if it did).
        var start = 0.0
        var job: JobInfo? = nil
        var left: Int? = nil
        var warningLead: Double? = nil
    }

    /// One attempt, as a few steps: plan its time, start the command unless there is no point,
    /// supervise it, find why it ended, count what it did, and record its end.
    private func runAttempt(restart: Int) throws -> Attempt {
        let plan = planAttempt()
        // Attempts before this one are over: a unit they began often enough is quarantined now.
        let (alreadyDone, before) = try assess(attemptsOver: restart)
        if let notStarted = attemptNotStarted(alreadyDone: alreadyDone, before: before) { return notStarted }
        let (child, stale) = try startCommand(plan, restart: restart)
        var facts = AttemptFacts(underSlurm: slurm != nil, restartAtStart: slurm?.restartCount ?? 0)
        facts.jobAtStart = plan.jobAtStart
        let exit = supervise(child, endTime: plan.endTime, attemptStart: plan.startText, facts: &facts)
        let (events, firstEnd) = whyItEnded(&facts, plan: plan, stale: stale)
        // Before the quarantine is counted: a bad node's failures are not the units'.
        let badNodes = judgeNodes(cause: firstEnd.cause, restart: restart)
        // This attempt is over too (its processes have ended): its begin records count now.
        let (workDone, after) = try assess(attemptsOver: restart + 1)
        var end = firstEnd
        if slurm != nil, end.cause == .none, workDone == nil, exit != .exited(0) || (after?.left ?? 0) > 0 {
            // Ended early with nothing said: SLURM may be a moment behind (a failed node makes srun
            // exit before slurmctld requeues the job and TERMs this script). Ask it once more.
            settle(&facts, seconds: options.settleSeconds)
            end = AttemptEnd.classify(facts)
        }
        let outcome = countWork(before: before, after: after, events: events, attemptStart: plan.startText)
        recordExit(exit, end: end, restart: restart, child: child, after: after, outcome: outcome)
        var attempt = Attempt(
            end: end, exit: exit, workDone: workDone, remaining: after?.remaining, scope: after?.scope ?? "the run",
            requeueAllowed: facts.jobAtEnd?.requeueAllowed ?? plan.jobAtStart?.requeueAllowed, quarantined: after?.quarantined ?? [])
        attempt.heldByOthers = after?.heldByOthers ?? 0
        attempt.claimedElsewhere = after?.claimedElsewhere ?? 0
        attempt.diedOn = after?.diedOn ?? []
        attempt.badNodes = badNodes
        attempt.start = plan.start
        attempt.job = facts.jobAtEnd ?? plan.jobAtStart
        attempt.left = after?.left
        attempt.warningLead = warningLead
        attempt.progressed = outcome.marked.map { $0 > 0 || !outcome.newlyQuarantined.isEmpty } ?? (outcome.newlyQuarantined.isEmpty ? nil : true)
        if workDone == nil, let failure = SpaceProbe.failure(in: directory) {
            report("the state cannot be written: \(failure.message)")
            attempt.stateWriteFailure = failure.message
        }
        if end.cause == .preempted(requeuedBySlurm: false) {
            // Releases differ in what they do with a preempted job whose script exits: ask which this is.
            do { attempt.slurmRelease = try Scontrol.version() } catch let error as GracefulStopError {
                report("warning: cannot tell the SLURM release: \(error.message)")
            }
        }
        return attempt
    }

    /// Waits up to `seconds` for a signal to gstop (SLURM's TERM), then reads scontrol again.
    func settle(_ facts: inout AttemptFacts, seconds: Double) {
        let until = Clock.monotonicNanoseconds() + Int64(seconds * 1e9)
        while case let left = until - Clock.monotonicNanoseconds(), left > 0 {
            var info = siginfo_t()
            var wait = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
            let taken = sigtimedwait(&mask, &info, &wait)
            if taken == -1 && Glibc.errno != EINTR { break }  // EAGAIN: nothing came
            if taken <= 0 || taken == SIGCHLD { continue }
            facts.toGstop.append(toGstop(taken))
            record("signal", [("signal", .string(StopSignals.name(of: taken))), ("cause", .string(AttemptEnd.classify(facts).cause.description))])
            break
        }
        if let slurm {
            do { facts.jobAtEnd = try slurm.info() } catch let error as GracefulStopError { facts.endLookupError = error.message } catch {}
        }
    }

    /// What a progress line reads, once per `--progress-every`: gstop's own share's directory
    /// (done and quarantined: exact), the run's totals from `complete/` and the shares' summaries
    /// (O(shares) small reads, no listing of other shares), and a sample of 32 markers for p50.
    /// For a sweep, events.jsonl's `work_finished` lines of this attempt. Never fails the run.
    final class ProgressReader {
        unowned let supervisor: Supervisor
        let attemptStart: String
        private var state: RunState? = nil
        private var doneAtStart: Int? = nil

        init(supervisor: Supervisor, attemptStart: String) {
            self.supervisor = supervisor
            self.attemptStart = attemptStart
            // No state yet: the command creates it, so this attempt's count starts at 0.
            doneAtStart = (try? supervisor.directory.exists(Manifest.fileName)) == false ? 0 : (try? counts()?.done)
        }

        private func counts() throws -> (done: Int, total: Int, quarantined: Int)? {
            if state == nil {
                guard try supervisor.directory.exists(Manifest.fileName) else { return nil }
                state = try RunState.open(at: supervisor.statePath, node: supervisor.node)
            }
            guard let state, let files = state.files, supervisor.node < files.manifest.partition.nodes else { return nil }
            let counts = try state.counts(node: supervisor.node)
            let quarantined = try Quarantine.places(node: supervisor.node, in: files.quarantine).count
            return (counts.done, counts.total, quarantined)
        }

        func line(secondsSinceStart: Double) -> String? {
            do {
                guard let counts = try counts(), let state else {
                    let events = try EventLog.readBack(from: supervisor.directory, until: { supervisor.isThisAttemptsStart($0, attemptStart) })
                    guard let finished = SweepProgress.finished(in: events, attemptStart: attemptStart) else { return nil }
                    var line = ProgressLine(scope: "the sweep", scopeDone: 0, scopeTotal: 0)
                    line.finished = finished
                    line.secondsSinceStart = secondsSinceStart
                    return line.text(now: Clock.unixSeconds())
                }
                var line = ProgressLine(scope: "node \(supervisor.node)", scopeDone: counts.done, scopeTotal: counts.total)
                line.quarantined = counts.quarantined
                line.secondsSinceStart = secondsSinceStart
                line.doneSinceStart = max(0, counts.done - (doneAtStart ?? counts.done))
                if state.manifest!.partition.nodes > 1 {
                    let totals = try state.totals()
                    line.runDone = totals.done
                    line.runTotal = totals.total
                }
                line.p50 = try state.unitEstimate(node: supervisor.node, limit: 32)?.p50
                // In the log too, with its time: history and reports read what the line said.
                supervisor.record(
                    "progress",
                    [
                        ("done", .number(Double(counts.done))), ("total", .number(Double(counts.total))),
                        ("quarantined", .number(Double(counts.quarantined))),
                        ("run_done", line.runDone.map { .number(Double($0)) } ?? .null),
                        ("run_total", line.runTotal.map { .number(Double($0)) } ?? .null),
                    ], durable: false)
                return line.text(now: Clock.unixSeconds())
            } catch let error as GracefulStopError {
                return "progress: cannot read the state (the run goes on): \(error.message)"
            } catch {
                return nil
            }
        }
    }

    /// `scontrol show job` for this job, nil outside SLURM or when it fails (said, with `purpose`).
    func lookUpJob(purpose: String) -> JobInfo? {
        guard let slurm else { return nil }
        do { return try slurm.info() } catch let error as GracefulStopError {
            report("warning: cannot read the job from scontrol (\(purpose)): \(error.message)")
        } catch {}
        return nil
    }

    /// Waits for the command to end, turning signals and timers into a graceful stop.
    private func supervise(_ child: ChildProcess, endTime: Double?, attemptStart: String, facts: inout AttemptFacts) -> ChildExit {
        let attemptStarted = Double(attemptStart) ?? Clock.unixSeconds()
        var cause = StopCause.none
        var stopping = false
        let start = Clock.monotonicNanoseconds()
        func at(_ seconds: Double) -> Int64 { start + Int64(seconds * 1e9) }
        var warningAt = options.timeLimit.map { at($0 - (options.warnBefore ?? 0)) }
        if options.warnBefore == nil { warningAt = nil }
        var limitAt = options.timeLimit.map { at($0) }
        var graceEnds: Int64? = nil
        var killAt: Int64? = nil
        let progress = ProgressReader(supervisor: self, attemptStart: attemptStart)
        var progressAt = options.progressEvery.map { at($0) }

        func shorten(_ seconds: Double) {
            let limit = Clock.monotonicNanoseconds() + Int64(seconds * 1e9)
            graceEnds = min(graceEnds ?? .max, limit)
        }
        /// Adds what reached gstop to the facts, and returns the cause they now give.
        func arrived(_ stop: AttemptFacts.ToGstop) -> StopCause {
            facts.toGstop.append(stop)
            cause = AttemptEnd.classify(facts).cause
            return cause
        }
        var signalled = false
        /// The signal first: it reaches the command at once, while the request's fsyncs take
        /// milliseconds and scontrol (asked why a TERM came) may wait out a slurmctld outage.
        func signalChild() {
            if !signalled && options.childSignal != 0 { child.signal(options.childSignal) }
            signalled = true
        }
        func beginStop(_ newCause: StopCause, signalName: String, grace: Double) {
            if stopping {
                shorten(grace)
                return
            }
            stopping = true
            // The request is for nodes the signal cannot reach.
            signalChild()
            do {
                try StopRequest.now(reason: "\(signalName) to gstop").write(to: directory, job: slurm?.logID)
            } catch let error as GracefulStopError {
                report("warning: could not write the stop request: \(error.message)")
            } catch {}
            shorten(grace)
            report(
                "\(signalName): \(newCause.description); asked the command to stop (\(options.childSignal == 0 ? "a stop request only: --child-signal none" : StopSignals.name(of: options.childSignal) + " and a stop request")), escalating in \(TimeSpan.format(grace))"
            )
        }

        while true {
            if let exit = child.reap() { return exit }
            let now = Clock.monotonicNanoseconds()
            let next = [warningAt, limitAt, graceEnds, killAt, stopping ? nil : progressAt].compactMap { $0 }.min()
            var info = siginfo_t()
            var taken: Int32
            if let next {
                if next <= now {
                    taken = 0
                } else {
                    var wait = timespec(tv_sec: Int((next - now) / 1_000_000_000), tv_nsec: Int((next - now) % 1_000_000_000))
                    taken = sigtimedwait(&mask, &info, &wait)
                }
            } else {
                taken = sigwaitinfo(&mask, &info)
            }
            if taken == -1 {
                if Glibc.errno == EINTR { continue }
                taken = 0  // EAGAIN: a timer is due
            }
            switch taken {
            case 0:
                let due = Clock.monotonicNanoseconds()
                if let time = progressAt, time <= due, let every = options.progressEvery {
                    progressAt = due + Int64(every * 1e9)
                    if !stopping, let line = progress.line(secondsSinceStart: Double(due - start) / 1e9) { report(line) }
                }
                if let time = killAt, time <= due {
                    killAt = nil
                    report("the command is still running: SIGKILL to its process group")
                    child.signalGroup(SIGKILL)
                }
                if let time = graceEnds, time <= due {
                    graceEnds = nil
                    report("the command did not stop in time: SIGTERM to its process group, SIGKILL in \(TimeSpan.format(options.killAfter))")
                    child.signalGroup(SIGTERM)
                    killAt = due + Int64(options.killAfter * 1e9)
                }
                if let time = limitAt, time <= due {
                    limitAt = nil
                    warningAt = nil
                    let newCause = arrived(.localTimeLimit)
                    record("signal", [("signal", .string("local time limit")), ("cause", .string(newCause.description))])
                    beginStop(newCause, signalName: "local time limit \(TimeSpan.format(options.timeLimit!))", grace: options.termGrace)
                }
                if let time = warningAt, time <= due {
                    warningAt = nil
                    let newCause = arrived(.localWarning)
                    record("signal", [("signal", .string("local warning")), ("cause", .string(newCause.description))])
                    beginStop(newCause, signalName: "local time-limit warning", grace: warningGrace(endTime: endTime))
                }
            case SIGCHLD:
                continue
            case SIGINT:
                _ = arrived(.interrupt)
                record("signal", [("signal", .string("SIGINT")), ("cause", .string(cause.description))])
                report("SIGINT: forwarded to the command's process group (an immediate stop)")
                child.signalGroup(SIGINT)
                if graceEnds == nil && killAt == nil { shorten(options.killAfter) }
            case let signal where options.gracefulSignals.contains(signal):
                if !stopping { signalChild() }
                if signal != SIGTERM, let endTime, warningLead == nil {
                    // The lead of `--signal=B:USR1@N`; a warning sent by hand long before the end is not one.
                    let lead = endTime - Clock.unixSeconds()
                    if lead >= 0, lead <= (endTime - attemptStarted) / 2 { warningLead = lead }
                }
                let newCause = arrived(toGstop(signal, reaping: child))
                record("signal", [("signal", .string(StopSignals.name(of: signal))), ("cause", .string(newCause.description))])
                beginStop(
                    newCause, signalName: StopSignals.name(of: signal),
                    grace: signal == SIGTERM ? options.termGrace : warningGrace(endTime: endTime))
            default:
                // Handled but not graceful (TERM or HUP when --signals leaves them out): passed on as they are.
                if taken == SIGTERM { _ = arrived(toGstop(taken, reaping: child)) }
                record("signal", [("signal", .string(StopSignals.name(of: taken))), ("cause", .string(cause.description))])
                report("\(StopSignals.name(of: taken)): forwarded to the command's process group")
                child.signalGroup(taken)
                if taken == SIGTERM { shorten(options.termGrace) }
            }
        }
    }

    private func warningGrace(endTime: Double?) -> Double {
        if let grace = options.grace { return grace }
        guard let endTime else { return 120 }
        return max(options.termGrace, endTime - Clock.unixSeconds() - 10)
    }

    /// A signal that reached gstop, with scontrol's view at that moment for a TERM (which is the
    /// time limit, a preemption, a node failure or a cancel: only SLURM's state tells which).
    /// The command is reaped while scontrol is asked (a slurmctld outage can make that take a
    /// minute), so that its end time is when it ended.
    private func toGstop(_ signal: Int32, reaping child: ChildProcess? = nil) -> AttemptFacts.ToGstop {
        guard signal == SIGTERM, let slurm else { return .signal(signal) }
        do {
            return .signal(signal, job: try slurm.info(whileWaiting: child.map { child in { child.reap() } }))
        } catch let error as GracefulStopError {
            report("cannot tell a time limit from a cancel: \(error.message)")
            return .signal(signal, lookupError: error.message)
        } catch {
            return .signal(signal, lookupError: "\(error)")
        }
    }

    /// Whether the decision counts every share's units. Automatically: for a job that is not an
    /// array task, when it runs on several nodes (one batch script decides for all) or balances
    /// (its workers take over every share, whatever their number: a job that came back smaller
    /// must not end with shares nobody does); an array task answers for its own (Balance).
    var scopeIsEveryNode: Bool {
        switch options.remainingScope {
        case .anyNode: return true
        case .thisNode: return false
        case .automatic:
            if slurm?.isArrayTask == true { return false }
            return (slurm?.nodeCount ?? 1) > 1 || ((try? Balance.enabled()) ?? false)
        }
    }

    /// What the state says: the marker that makes all work done, and done / remaining / total units
    /// in the decision's scope (nil while the state has no manifest). With a per-node scope only
    /// the scope's shares are read (with balancing, those this job answers for — its own, and
    /// under an array with fewer tasks than shares its part of the shares no task owns — plus the
    /// begin records of the others, for the units this job took from them), unless the scope has
    /// none left: then every node's, which also creates run.done when the run is complete, here
    /// even when the workers' own scans missed the last markers through NFS caches.
    /// Units quarantined in the scope are not left to do: no attempt would do them. Begin records
    /// of restarts below `attemptsOver` count toward quarantine (their processes are gone).
    private func assess(attemptsOver: Int) throws -> (workDone: String?, progress: Progress?) {
        let studyDone = try directory.exists(StudyCompletion.fileName) ? StudyCompletion.fileName : nil
        guard try directory.exists(Manifest.fileName) else {
            if let damaged = try Manifest.missingProblem(in: directory) { throw damaged }
            let runDone = try directory.exists(RunCompletion.fileName) ? RunCompletion.fileName : nil
            return (studyDone ?? runDone, nil)
        }
        let state = try RunState.open(at: statePath, node: node)
        let shareCount = state.manifest!.nodes
        let balance = try Balance.enabled()
        let shares: [Int]? =
            scopeIsEveryNode
            ? nil
            : balance
                ? Balance.responsibleShares(
                    worker: node, workers: slurm?.isArrayTask == true ? Environment.arrayTaskCount() : nil, shares: shareCount)
                : [node]
        let account = try state.account(shares: shares, attemptsOver: attemptsOver, job: slurm?.logID, worker: node)
        let scope: String
        switch shares {
        case nil: scope = "the run"
        case let shares? where shares == [node]: scope = "node \(node)"
        case let shares? where shares.isEmpty: scope = "node \(node) (beyond the state's \(shareCount) shares)"
        case let shares?:
            let others = shares.filter { $0 != node }.map(String.init).joined(separator: ", ")
            scope =
                (shares.contains(node) ? "node \(node) and " : "")
                + "share\(shares.count - (shares.contains(node) ? 1 : 0) == 1 ? "" : "s") \(others), which no task owns,"
        }
        var progress = Progress(
            done: account.done, remaining: account.remaining, total: account.total, scope: scope, quarantined: account.quarantined)
        progress.heldByOthers = account.heldByOthers
        progress.claimedElsewhere = account.claimedElsewhere
        progress.doneElsewhere = account.doneElsewhere
        progress.diedOn = account.diedOn
        let runDone = account.done == account.total && account.claimedElsewhere == 0 ? try state.checkRunDone() : false
        if !runDone && progress.remaining == 0 && progress.heldByOthers == 0, try state.checkRunSettled(attemptsOver: attemptsOver) != nil {
            return (RunQuarantined.fileName, progress)
        }
        return (runDone ? RunCompletion.fileName : studyDone, progress)
    }

    struct Progress {
        var done: Int
        var remaining: Int
        var total: Int
        var scope: String
        /// Names of the scope's quarantined units (not done).
        var quarantined: [String] = []
        /// Balancing: remaining units that live workers of other jobs hold.
        var heldByOthers = 0
        /// Balancing: units of other shares this job began and did not finish.
        var claimedElsewhere = 0
        /// Balancing: units of other shares this job's worker finished (its progress there).
        var doneElsewhere = 0
        var diedOn: [UnitInFlight] = []

        /// The units this job answers for.
        var left: Int { max(0, remaining - heldByOthers) + claimedElsewhere }
    }

    func currentRequest(besides stale: StaleRequests) -> StopRequest? {
        for file in [StopRequest.fileName, StopRequest.fileName(forJob: slurm?.logID)] {
            if let request = try? StopRequest.read(from: directory, fileName: file), stale.applies(request, in: file),
                !request.by.hasSuffix(":\(getpid())")
            {
                return request
            }
        }
        return nil
    }

    private func facts(for attempt: Attempt, restart: Int) -> RequeueFacts {
        var historyFailure = historyWriteFailure
        var exits: [JSONValue] = []
        do {
            // This job's lines only (a byte search skips the others unparsed), back to its first attempt.
            exits = try EventLog.readBack(
                from: directory, only: EventLog.jobNeedle(chain), until: isThisJobsFirstStart,
                keep: { $0["event"]?.string == "child_exit" && $0["job"]?.string == chain && $0["node"]?.int == node }
            )
            .filter { $0["event"]?.string == "child_exit" }
        } catch let error as GracefulStopError {
            historyFailure = historyFailure ?? "cannot read \(directory.pathOf(EventLog.fileName)): \(error.message)"
        } catch {}
        // This gstop's own attempts that the log lacks: local restarts stay counted whatever the
        // state's filesystem does.
        let logged = Set(exits.compactMap { $0["restart"]?.int })
        exits += exitsHere.filter { !logged.contains($0["restart"]?.int ?? -1) }
        let idle = AttemptHistory.idleAttempts(exits)
        let failed = AttemptHistory.failedAttempts(exits)
        let target = slurm?.requeueID(wholeArray: options.requeue == .array) ?? "a local restart"
        var facts = RequeueFacts(
            cause: attempt.end.cause, route: attempt.end.route, exit: attempt.exit, workDone: attempt.workDone, remaining: attempt.remaining,
            scope: attempt.scope,
            restartCount: restart, idleAttempts: idle, failedAttempts: failed, mode: options.requeue, limits: options.limits,
            target: target, requeueAllowed: attempt.requeueAllowed, slurmRelease: attempt.slurmRelease)
        facts.preemptions = AttemptHistory.preemptions(exits, before: restart)
        facts.started = attempt.started
        facts.quarantined = attempt.quarantined
        facts.heldByOthers = attempt.heldByOthers
        facts.claimedElsewhere = attempt.claimedElsewhere
        facts.stateWriteFailure = attempt.stateWriteFailure
        // Under SLURM each attempt is a new gstop: what the log lost, nobody remembers.
        if slurm != nil { facts.historyUnknown = historyFailure }
        facts.progressed = attempt.progressed ?? false
        facts.diedOn = attempt.diedOn
        return facts
    }

    // MARK: - Events

    /// Appends an event; a failure is said (and returned: the guard's own record must not be lost
    /// in silence).
    @discardableResult
    func record(_ event: String, _ fields: [(String, JSONValue)], durable: Bool = true) -> String? {
        let common: [(String, JSONValue)] = [
            ("event", .string(event)), ("job", .string(chain)), ("node", .number(Double(node))), ("host", .string(HostName.current)),
            ("pid", .number(Double(getpid()))),
        ]
        do { try EventLog.append(common + fields, in: directory, durable: durable) } catch let error as GracefulStopError {
            report("warning: could not write the events log: \(error.message)")
            return error.message
        } catch {
            return "\(error)"
        }
        return nil
    }

    private func record(_ event: String, _ decision: RequeueDecision, extra: [(String, JSONValue)] = []) {
        let action: String
        var fields: [(String, JSONValue)] = []
        switch decision.action {
        case .finish: action = "finish"
        case .stop: action = "stop"
        case .leaveToSlurm: action = "slurm_requeued"
        case .requeue(let target):
            action = "requeue"
            fields.append(("target", .string(target)))
        }
        record(
            event,
            [
                ("action", .string(action)), ("exit", .number(Double(decision.exitCode))),
                ("reasons", .array(decision.reasons.map { .string($0) })),
            ] + fields + extra)
    }
}
