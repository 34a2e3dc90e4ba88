import Glibc

/// Whether a job that just ended should run again: a pure function of facts the supervisor
/// gathered (why it stopped, how the command exited, what work is left, the restart history), so
/// the whole table of cases is tested as plain data (RequeueDecisionTests).

/// Why the supervised command stopped, as the supervisor saw it.
public enum StopCause: Equatable, Sendable {
    /// Nobody asked it to stop: the command ended on its own.
    case none
    /// The time-limit warning: SLURM's `--signal=B:USR1@N`, or local mode's `--warn-before`.
    case warning(signal: Int32)
    /// The time limit itself: TERM while `scontrol show job` says Reason=TimeLimit (or local mode's limit).
    case timeLimit
    /// The command stopped itself at GRACEFULSTOP_DEADLINE, before any signal.
    case deadline
    /// TERM without a time limit, preemption or node failure: `scancel`.
    case cancelled
    /// SLURM is preempting the job (PreemptTime): it requeues the job itself at the end of
    /// GraceTime, but not once the batch script has exited — then it is COMPLETED.
    case preempted(requeuedBySlurm: Bool)
    /// A node of the job failed (the job lost a node, NODE_FAIL); SLURM requeues such a job itself.
    case nodeFailure(requeuedBySlurm: Bool)
    /// SLURM requeued the job during the attempt (its Restarts moved) for no reason scontrol
    /// names: an administrator's `scontrol requeue`, say.
    case requeuedBySlurm(from: Int, to: Int)
    /// SIGINT: a person's immediate stop.
    case interrupted
    /// A stop request in the state (`gstop stop`, `request_stop()`), with its words.
    case requested(String)
    /// TERM, but scontrol could not say whether it was the time limit or a cancel (its error).
    case unclassifiedTerm(String)

    var description: String {
        switch self {
        case .none: return "the command ended on its own (no stop reached gstop or was recorded by the command's processes)"
        case .warning(let signal): return "stopped by \(StopSignals.name(of: signal)) (the time-limit warning)"
        case .timeLimit: return "stopped by the time limit (TERM, Reason=TimeLimit)"
        case .deadline: return "stopped itself at or before its deadline (\(Environment.deadline))"
        case .cancelled: return "cancelled (TERM without a time limit or preemption, as scancel sends)"
        case .preempted(let requeued): return "preempted (PreemptTime set" + (requeued ? ", and SLURM has requeued the job)" : ", GraceTime running)")
        case .nodeFailure(let requeued): return "a node of the job failed" + (requeued ? " (SLURM has requeued the job)" : "")
        case .requeuedBySlurm(let from, let to): return "SLURM requeued the job (Restarts \(from) -> \(to))"
        case .interrupted: return "interrupted (SIGINT)"
        case .requested(let detail): return "a stop was requested (\(detail))"
        case .unclassifiedTerm(let error): return "TERM, and scontrol could not say why (\(error))"
        }
    }

    /// The causes after which the work goes on in a new attempt that gstop requeues.
    var continuesWork: Bool {
        switch self {
        case .warning, .timeLimit, .deadline, .preempted(requeuedBySlurm: false), .nodeFailure(requeuedBySlurm: false): return true
        default: return false
        }
    }

    /// Which budget a requeue after this cause spends: preemptions and node failures are the
    /// cluster's doing, not the job's, and never use up --max-restarts.
    public var budget: RequeueBudget {
        switch self {
        case .preempted, .nodeFailure, .requeuedBySlurm: return .preemption
        default: return .restart
        }
    }

    /// The job's own end killed whatever was in flight on every node (the time limit's kill, a
    /// preemption, a node failure, a cancel, an interrupt): a unit that died then is no evidence
    /// against its node (`BadNodes`).
    public var explainsDeaths: Bool {
        switch self {
        case .timeLimit, .preempted, .nodeFailure, .requeuedBySlurm, .cancelled, .interrupted, .unclassifiedTerm: return true
        case .none, .warning, .deadline, .requested: return false
        }
    }

    /// SLURM has requeued the job itself: a second requeue would be wrong.
    var slurmRequeued: Bool {
        switch self {
        case .preempted(requeuedBySlurm: true), .nodeFailure(requeuedBySlurm: true), .requeuedBySlurm: return true
        default: return false
        }
    }
}

/// What a requeue is counted against.
public enum RequeueBudget: String, Sendable {
    /// --max-restarts: time limits, warnings, deadlines, failures.
    case restart
    /// --max-preemptions (unlimited by default): preemptions, node failures, SLURM's own requeues.
    case preemption
}

/// How the supervised command ended.
public enum ChildExit: Equatable, Sendable {
    case exited(Int32)
    case signaled(Int32)

    /// The exit status a shell would report: the code, or 128 + the signal.
    public var status: Int32 {
        switch self {
        case .exited(let code): return code
        case .signaled(let signal): return 128 + signal
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit \(code)"
        case .signaled(let signal): return "killed by \(StopSignals.name(of: signal))"
        }
    }
}

/// What to requeue.
public enum RequeueMode: String, CaseIterable, Sendable {
    /// This job; for an array task, the task alone.
    case task
    /// The whole array (the seed's sweeps behaviour: every task works on one shared study).
    case array
    /// Never requeue; only report what would have been done.
    case never
}

public struct RequeueLimits: Sendable, Equatable {
    /// Restarts (SLURM_RESTART_COUNT) after which no requeue happens, preemptions not counted.
    public var maxRestarts: Int = 20
    /// Preemptions and node failures after which gstop requeues no more (nil: no limit).
    public var maxPreemptions: Int? = nil
    /// Attempts in a row that marked no unit after which no requeue happens (crash-loop guard).
    public var maxIdleAttempts: Int = 3
    /// Failed attempts in a row (non-zero exit, no stop asked) that are retried.
    public var retryFailures: Int = 0
    /// Attempts after which a unit that never finishes is quarantined (0: never); the command gets
    /// it as GRACEFULSTOP_MAX_UNIT_ATTEMPTS.
    public var maxUnitAttempts: Int = 3

    public init(maxRestarts: Int = 20, maxIdleAttempts: Int = 3, retryFailures: Int = 0, maxUnitAttempts: Int = 3, maxPreemptions: Int? = nil) {
        self.maxRestarts = maxRestarts
        self.maxPreemptions = maxPreemptions
        self.maxIdleAttempts = maxIdleAttempts
        self.retryFailures = retryFailures
        self.maxUnitAttempts = maxUnitAttempts
    }
}

public struct RequeueFacts: Sendable, Equatable {
    public var cause: StopCause
    /// How the stop arrived ("SIGUSR1 to the job's steps, node 1 on n2"), when known.
    public var route: String?
    /// Whether SLURM lets the job be requeued (scontrol's Requeue=); nil when unknown or local.
    public var requeueAllowed: Bool?
    /// The SLURM release, when the decision depends on it (a preemption); nil when unknown.
    public var slurmRelease: SlurmRelease?
    /// False when the attempt did not start the command (its work was done already).
    public var started = true
    public var exit: ChildExit
    /// The marker that says all work is done ("run.done", "study.done"), when present.
    public var workDone: String?
    /// Units left in the decision's scope; nil when the state has no unit list (a sweep).
    public var remaining: Int?
    /// Whose units `remaining` counts: "node 3", "the run".
    public var scope: String
    /// This attempt's restart count (0 for the first attempt).
    public var restartCount: Int
    /// Of the attempts before this one, those that ended by a preemption, a node failure or
    /// SLURM's own requeue (their restarts are not counted against --max-restarts).
    public var preemptions = 0
    /// The restarts --max-restarts counts: the others.
    var chargedRestarts: Int { max(0, restartCount - preemptions) }
    /// Attempts in a row, this one included, that marked no unit (0 when unknown).
    public var idleAttempts: Int
    /// Failed attempts in a row, this one included.
    public var failedAttempts: Int
    public var mode: RequeueMode
    public var limits: RequeueLimits
    /// What a requeue names: "123_4", "123", or "a local restart".
    public var target: String
    /// Quarantined units in the scope (not counted in `remaining`): no attempt would do them.
    public var quarantined: [String] = []
    /// Why the state cannot be written now (no space, over quota, read-only), when that is so: no
    /// attempt could mark a unit, so none is requeued.
    public var stateWriteFailure: String? = nil
    /// Why the crash-loop guard cannot count this job's earlier attempts (events.jsonl could not be
    /// written or read: path and error), when that is so.
    public var historyUnknown: String? = nil
    /// This attempt marked or quarantined a unit: the guard's counts do not depend on earlier ones.
    public var progressed = false
    /// The units the command was on when it ended without giving them up (a crash inside them).
    public var diedOn: [UnitInFlight] = []
    /// Balancing: of `remaining`, the units that live workers of other jobs hold (they finish them).
    public var heldByOthers = 0
    /// Balancing: units of other shares this job began and left unfinished; it answers for them.
    public var claimedElsewhere = 0

    /// The units this job answers for: nil for a sweep.
    var left: Int? { remaining.map { max(0, $0 - heldByOthers) + claimedElsewhere } }

    /// "node 3 has 4 units left", with what balancing adds to it.
    var leftText: String { leftText() }

    func leftText(_ after: String = "") -> String {
        guard let left else { return "the work is not done" }
        var text = "\(scope) has \(left == 0 ? "no" : String(left)) unit\(left == 1 ? "" : "s") left" + after
        if claimedElsewhere > 0 { text += " (\(claimedElsewhere) of them begun by this job in other shares)" }
        if heldByOthers > 0 { text += "; \(heldByOthers) more held by live workers of other jobs, which finish them" }
        return text
    }

    public init(
        cause: StopCause, route: String? = nil, exit: ChildExit, workDone: String? = nil, remaining: Int?, scope: String, restartCount: Int = 0,
        idleAttempts: Int = 0, failedAttempts: Int = 0, mode: RequeueMode = .task, limits: RequeueLimits = RequeueLimits(),
        target: String, requeueAllowed: Bool? = nil, slurmRelease: SlurmRelease? = nil
    ) {
        self.slurmRelease = slurmRelease
        self.cause = cause
        self.route = route
        self.requeueAllowed = requeueAllowed
        self.exit = exit
        self.workDone = workDone
        self.remaining = remaining
        self.scope = scope
        self.restartCount = restartCount
        self.idleAttempts = idleAttempts
        self.failedAttempts = failedAttempts
        self.mode = mode
        self.limits = limits
        self.target = target
    }
}

public struct RequeueDecision: Sendable, Equatable {
    public enum Action: Equatable, Sendable {
        /// The work is done (or this job's part of it): end normally.
        case finish
        /// Run again: `scontrol requeue target`, or a local restart.
        case requeue(target: String)
        /// End without finishing the work, and do not requeue.
        case stop
        /// End; SLURM has requeued the job itself, and the next attempt goes on with the work.
        case leaveToSlurm
    }

    /// Exit code when work remains but the job ends without a requeue (sysexits EX_TEMPFAIL).
    public static let workRemainsExitCode: Int32 = 75
    /// Exit code when the crash-loop guard cannot record or read its counts (sysexits EX_IOERR).
    public static let historyUnknownExitCode: Int32 = 74
    /// Exit code when everything else is done but units are quarantined (sysexits EX_DATAERR: a
    /// unit's own data kills its worker), so that the job does not read as a success.
    public static let quarantinedExitCode: Int32 = 65

    public var action: Action
    public var exitCode: Int32
    public var reasons: [String]

    /// One line: the action, then its reasons.
    public var line: String {
        let verb: String
        switch action {
        case .finish: verb = "finish"
        case .requeue(let target): verb = "requeue \(target)"
        case .stop: verb = "stop without requeue"
        case .leaveToSlurm: verb = "no requeue by gstop (SLURM requeued the job)"
        }
        return "decision: \(verb) (exit \(exitCode)): " + reasons.joined(separator: "; ")
    }

    public static func decide(_ facts: RequeueFacts) -> RequeueDecision {
        let how = facts.cause.description + (facts.route.map { " [\($0)]" } ?? "") + ", \(facts.exit.description)"
        if let marker = facts.workDone {
            let started = facts.started ? how : "the command was not started"
            if marker == RunQuarantined.fileName {
                return finish(facts, [started, "every unit is done or quarantined (\(marker))"])
            }
            return RequeueDecision(action: .finish, exitCode: 0, reasons: [started, "all work is done (\(marker))"])
        }
        if let failure = facts.stateWriteFailure, facts.cause.continuesWork || facts.cause == .none {
            return RequeueDecision(
                action: .stop, exitCode: workRemainsExitCode,
                reasons: [
                    facts.started ? how : "the command was not started", facts.leftText,
                    "the state cannot be written (\(failure)): not requeued into it, where every attempt would fail at its first mark; "
                        + "free space (or raise the quota), then submit the job again: every marker written so far is intact",
                ])
        }
        switch facts.cause {
        case .interrupted:
            return RequeueDecision(action: .stop, exitCode: 130, reasons: [how, "an interrupt ends the job"])
        case .cancelled:
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: [how, "a cancel always ends the job"])
        case .preempted(requeuedBySlurm: true), .nodeFailure(requeuedBySlurm: true), .requeuedBySlurm:
            let left = facts.left != nil ? facts.leftText(" for the next attempt") : "the next attempt goes on with the work"
            return RequeueDecision(action: .leaveToSlurm, exitCode: 0, reasons: [how, left, "gstop does not requeue it a second time"])
        case .requested:
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: [how, "a requested stop ends the job"])
        case .unclassifiedTerm:
            return RequeueDecision(
                action: .stop, exitCode: workRemainsExitCode,
                reasons: [how, "without knowing whether this was the time limit or a cancel, the job is not requeued (a cancel must always end it)"])
        case .none:
            let failed = facts.exit != .exited(0)
            if failed, !facts.diedOn.isEmpty, facts.limits.maxUnitAttempts > 0 {
                return diedInsideUnits(facts, how: how)
            }
            if failed {
                if facts.failedAttempts <= facts.limits.retryFailures {
                    return requeueUnlessGuarded(
                        facts, reasons: [how, "failure \(facts.failedAttempts) of \(facts.limits.retryFailures) retried (--retry-failures)"])
                }
                return RequeueDecision(
                    action: .stop, exitCode: facts.exit.status,
                    reasons: [
                        how,
                        "the command failed on its own; not requeued"
                            + (facts.limits.retryFailures > 0
                                ? " (\(facts.failedAttempts - 1) retries used of --retry-failures \(facts.limits.retryFailures))"
                                : " (--retry-failures 0)"),
                    ])
            }
            if let left = facts.left, left > 0 {
                return RequeueDecision(
                    action: .stop, exitCode: workRemainsExitCode,
                    reasons: [how, facts.leftText + ", but nothing asked the command to stop; not requeued"])
            }
            return finish(facts, [how, facts.left == 0 ? facts.leftText : "the command finished"])
        case .warning, .timeLimit, .deadline, .preempted(requeuedBySlurm: false), .nodeFailure(requeuedBySlurm: false):
            if facts.left == 0 {
                return finish(facts, [how, facts.leftText])
            }
            var reasons = [how, facts.leftText]
            if case .preempted = facts.cause {
                if let release = facts.slurmRelease, release.requeuesPreemptedJobsThatExit, facts.requeueAllowed != false {
                    return RequeueDecision(
                        action: .leaveToSlurm, exitCode: 0,
                        reasons: reasons + [
                            "SLURM \(release.description) requeues a preempted job whose script exits during GraceTime by itself; gstop does not requeue it a second time"
                        ])
                }
                reasons.append(
                    "SLURM \(facts.slurmRelease?.description ?? "of an unknown release") completes a preempted job whose script has exited without requeuing it, so gstop requeues it"
                )
            }
            return requeueUnlessGuarded(facts, reasons: reasons)
        }
    }

    /// The command died inside units (the OOM killer's SIGKILL, a segfault, an exception out of
    /// the loop): retried whatever --retry-failures says, so that a unit which kills its worker
    /// every time is quarantined after --max-unit-attempts and the rest of the run goes on
    /// (bounded by --max-restarts and the idle guard, as every requeue).
    private static func diedInsideUnits(_ facts: RequeueFacts, how: String) -> RequeueDecision {
        let limit = facts.limits.maxUnitAttempts
        let units =
            facts.diedOn.prefix(3).map { unit in
                "\(unit.unit), attempt \(min(unit.attempts, limit)) of \(limit)" + (unit.attempts >= limit ? ", now quarantined" : "")
            }.joined(separator: "; ") + (facts.diedOn.count > 3 ? "; and \(facts.diedOn.count - 3) more" : "")
        // SIGKILL from nobody gstop knows of: the kernel's OOM killer (a cgroup memory limit, --mem) sends it.
        let what =
            "\(facts.exit.description) while on \(units)"
            + (facts.exit == .signaled(SIGKILL) ? " (SIGKILL: the OOM killer's signal when a unit exceeds the job's memory, or a kill -9)" : "")
        if facts.left == 0 { return finish(facts, [how, what, facts.leftText]) }
        return requeueUnlessGuarded(
            facts,
            reasons: [
                how, what, facts.leftText,
                "retried so that a unit which kills its worker every time is quarantined after --max-unit-attempts \(limit) and the rest of the run goes on",
            ])
    }

    /// Ends the job: exit 0, or 65 naming the quarantined units when there are any.
    private static func finish(_ facts: RequeueFacts, _ reasons: [String]) -> RequeueDecision {
        let count = facts.quarantined.count
        guard count > 0 else { return RequeueDecision(action: .finish, exitCode: 0, reasons: reasons) }
        let names = facts.quarantined.prefix(5).joined(separator: ", ") + (count > 5 ? " and \(count - 5) more" : "")
        return RequeueDecision(
            action: .finish, exitCode: quarantinedExitCode,
            reasons: reasons + [
                "\(count) unit\(count == 1 ? "" : "s") quarantined (\(names)): begun \(facts.limits.maxUnitAttempts) times without finishing, so no attempt would do \(count == 1 ? "it" : "them"); `gstop release UNIT` puts one back"
            ])
    }

    private static func requeueUnlessGuarded(_ facts: RequeueFacts, reasons: [String]) -> RequeueDecision {
        var reasons = reasons
        if facts.requeueAllowed == false {
            reasons.append(
                "the job cannot be requeued: scontrol show job says Requeue=0 (it was submitted with --no-requeue, or the site sets JobRequeue=0); add `#SBATCH --requeue` to the batch script"
            )
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: reasons)
        }
        let notCounted = facts.preemptions > 0 ? " (\(facts.preemptions) preemption\(facts.preemptions == 1 ? "" : "s") not counted)" : ""
        let budget = facts.cause.budget
        if budget == .preemption, let limit = facts.limits.maxPreemptions, facts.preemptions >= limit {
            reasons.append("preemption \(facts.preemptions + 1) exceeds --max-preemptions \(limit); not requeued")
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: reasons)
        }
        if budget == .restart && facts.chargedRestarts >= facts.limits.maxRestarts {
            reasons.append("restart \(facts.chargedRestarts) reached --max-restarts \(facts.limits.maxRestarts)\(notCounted); not requeued")
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: reasons)
        }
        if let unknown = facts.historyUnknown, !facts.progressed, facts.limits.maxIdleAttempts > 0 || facts.failedAttempts > 0 {
            // An attempt that got nowhere, and no memory of the ones before it: requeuing blindly
            // could loop through the queue up to --max-restarts times.
            reasons.append(
                "the crash-loop guard cannot count the attempts before this one, which got no unit done: \(unknown); "
                    + "not requeued blindly — make \(EventLog.fileName) in the state writable (free space, fix its permissions or owner), then submit the job again"
            )
            return RequeueDecision(action: .stop, exitCode: historyUnknownExitCode, reasons: reasons)
        }
        if facts.limits.maxIdleAttempts > 0 && facts.idleAttempts >= facts.limits.maxIdleAttempts {
            let nothing = facts.remaining == nil ? "finished no trial" : "marked no unit"
            reasons.append("\(facts.idleAttempts) attempts in a row \(nothing) (--max-idle-attempts \(facts.limits.maxIdleAttempts)); not requeued")
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: reasons)
        }
        if facts.mode == .never {
            reasons.append("--requeue never: would requeue \(facts.target)")
            return RequeueDecision(action: .stop, exitCode: workRemainsExitCode, reasons: reasons)
        }
        if budget == .preemption {
            reasons.append(
                "preemption \(facts.preemptions + 1)" + (facts.limits.maxPreemptions.map { " of at most \($0) (--max-preemptions)" } ?? "")
                    + ", not counted against --max-restarts (\(facts.chargedRestarts) of \(facts.limits.maxRestarts) used)")
        } else {
            reasons.append("restart \(facts.chargedRestarts + 1) of at most \(facts.limits.maxRestarts)\(notCounted)")
        }
        return RequeueDecision(action: .requeue(target: facts.target), exitCode: 0, reasons: reasons)
    }
}
