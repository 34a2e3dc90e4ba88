import Glibc

/// Why an attempt ended: a pure classification of the facts gstop gathered — the signals that
/// reached gstop itself, the stops the command's processes recorded (`ProcessStop`), a stop
/// request, the deadline, and what `scontrol show job` said at the start, at a TERM and at the
/// end. Tested as a table (AttemptEndTests), like `RequeueDecision`, which takes its answer.

/// What gstop gathered about one attempt. Plain data: the supervisor fills it in.
public struct AttemptFacts: Sendable, Equatable {
    /// A stop that reached gstop itself.
    public enum ToGstop: Sendable, Equatable {
        /// A signal; for TERM, what scontrol said at that moment (or why it could not say).
        case signal(Int32, job: JobInfo? = nil, lookupError: String? = nil)
        /// Local mode's warning and time limit (`--warn-before`, `--time-limit`).
        case localWarning
        case localTimeLimit
        /// SIGINT: a person's immediate stop.
        case interrupt
    }

    /// In order of arrival.
    public var toGstop: [ToGstop] = []
    /// What stopped the command's processes, as they recorded it.
    public var processStops: [ProcessStop] = []
    /// A stop request that applies to this attempt and was not written by gstop itself.
    public var request: StopRequest? = nil
    /// The command's deadline (GRACEFULSTOP_DEADLINE) had passed when it ended.
    public var deadlinePassed = false
    /// Whether gstop runs in a SLURM job (else local mode: a TERM is somebody ending it).
    public var underSlurm = false
    /// SLURM_RESTART_COUNT at the start of the attempt.
    public var restartAtStart = 0
    /// scontrol at the start and after the command ended (nil: not asked, or it failed).
    public var jobAtStart: JobInfo? = nil
    public var jobAtEnd: JobInfo? = nil
    public var endLookupError: String? = nil

    public init(underSlurm: Bool = false, restartAtStart: Int = 0) {
        self.underSlurm = underSlurm
        self.restartAtStart = restartAtStart
    }
}

/// The classification: the cause, and the way the stop arrived ("SIGUSR1 to gstop", "SIGUSR1 to
/// the job's steps, node 1 on n2"), which decision lines show.
public struct AttemptEnd: Sendable, Equatable {
    public var cause: StopCause
    public var route: String?

    public init(cause: StopCause, route: String? = nil) {
        self.cause = cause
        self.route = route
    }

    public static func classify(_ facts: AttemptFacts) -> AttemptEnd {
        var candidates: [AttemptEnd] = facts.toGstop.map { stop in
            switch stop {
            case .signal(let signal, let job, let error):
                // A TERM scontrol could not explain when it came (an outage) is explained by its answer at the end.
                let cause: StopCause =
                    signal == SIGTERM
                    ? term(
                        job: job ?? facts.jobAtEnd, lookupError: job == nil && facts.jobAtEnd == nil ? facts.endLookupError ?? error : error, facts)
                    : .warning(signal: signal)
                return AttemptEnd(cause: cause, route: "\(StopSignals.name(of: signal)) to gstop")
            case .localWarning: return AttemptEnd(cause: .warning(signal: SIGUSR1), route: "local mode's warning")
            case .localTimeLimit: return AttemptEnd(cause: .timeLimit, route: "local mode's time limit")
            case .interrupt: return AttemptEnd(cause: .interrupted, route: "SIGINT to gstop")
            }
        }
        for stop in facts.processStops where stop.reason == .signal {
            candidates.append(
                AttemptEnd(cause: stepSignal(stop.signal, facts), route: "\(StopSignals.name(of: stop.signal)) to the job's steps, \(stop.place)"))
        }
        if let request = facts.request {
            if let signal = request.signal {
                candidates.append(AttemptEnd(cause: stepSignal(signal, facts), route: "\(request.reason), by \(request.by)"))
            } else {
                candidates.append(AttemptEnd(cause: .requested("\(request.reason), by \(request.by)")))
            }
        }
        if let stop = facts.processStops.first(where: { $0.reason == .deadline }) {
            // The process's own words: the deadline passed, or too little time was left for a unit.
            candidates.append(AttemptEnd(cause: .deadline, route: stop.detail.isEmpty ? stop.place : "\(stop.detail), \(stop.place)"))
        } else if facts.deadlinePassed {
            candidates.append(AttemptEnd(cause: .deadline))
        }
        // The strongest cause wins; among equals, the first (gstop's own signals come first).
        var end = candidates.reduce(AttemptEnd(cause: .none)) { best, next in next.cause.rank > best.cause.rank ? next : best }
        // What scontrol says at the end refines a stop that said less than it does: the user signal
        // a preemption sends, a stop no process recorded.
        if facts.underSlurm, let job = facts.jobAtEnd, end.cause.rank <= StopCause.warning(signal: 0).rank {
            let refined =
                requeueRelated(job, facts) ?? (job.isPreempted ? .preempted(requeuedBySlurm: false) : nil)
                ?? (end.cause == .none && job.isTimeLimit ? .timeLimit : nil)
            if let refined { end = AttemptEnd(cause: refined, route: end.route ?? "seen in scontrol show job after the command ended") }
        }
        return end
    }

    /// A signal that went to the job's steps: TERM is classified from scontrol after the command
    /// ended; any other trapped signal is the user signal `--signal` sends (the warning).
    private static func stepSignal(_ signal: Int32, _ facts: AttemptFacts) -> StopCause {
        signal == SIGTERM ? term(job: facts.jobAtEnd, lookupError: facts.endLookupError, facts) : .warning(signal: signal)
    }

    /// A TERM is SLURM's time limit, a preemption, a node failure, a requeue SLURM made, or a
    /// cancel: `scontrol show job` tells which. Outside SLURM it is somebody ending the job.
    private static func term(job: JobInfo?, lookupError: String?, _ facts: AttemptFacts) -> StopCause {
        guard facts.underSlurm else { return .cancelled }
        guard let job else { return .unclassifiedTerm(lookupError ?? "scontrol was not asked") }
        if job.isTimeLimit { return .timeLimit }
        if let requeue = requeueRelated(job, facts) { return requeue }
        if job.isNodeFailure || lostNode(job, facts) { return .nodeFailure(requeuedBySlurm: false) }
        if job.isPreempted { return .preempted(requeuedBySlurm: false) }
        return .cancelled
    }

    /// SLURM has requeued the job (its restart count moved during the attempt): why, as far as
    /// scontrol tells.
    private static func requeueRelated(_ job: JobInfo, _ facts: AttemptFacts) -> StopCause? {
        guard job.restarts > facts.restartAtStart else { return nil }
        if job.isNodeFailure || lostNode(job, facts) { return .nodeFailure(requeuedBySlurm: true) }
        if job.isPreempted { return .preempted(requeuedBySlurm: true) }
        return .requeuedBySlurm(from: facts.restartAtStart, to: job.restarts)
    }

    /// The job holds fewer nodes than when the attempt started: SLURM took a failed one away.
    private static func lostNode(_ job: JobInfo, _ facts: AttemptFacts) -> Bool {
        guard let start = facts.jobAtStart else { return false }
        if let before = start.nodeCount, let now = job.nodeCount { return now < before }
        return start.nodeList != nil && job.nodeList != nil && start.nodeList != job.nodeList
    }
}

extension StopCause {
    /// A later cause replaces an earlier one when it says more about how the job ends: a cancel or
    /// an interrupt always wins, a time limit replaces its own warning, what SLURM did replaces
    /// both.
    var rank: Int {
        switch self {
        case .none: return 0
        case .warning, .deadline, .requested: return 1
        case .timeLimit: return 2
        case .preempted, .nodeFailure, .requeuedBySlurm, .unclassifiedTerm: return 3
        case .cancelled: return 4
        case .interrupted: return 5
        }
    }
}
