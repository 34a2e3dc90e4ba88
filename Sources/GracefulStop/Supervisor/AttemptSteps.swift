import Glibc

/// The steps of `Supervisor.runAttempt`, each named for what it does.
extension Supervisor {
    /// When the attempt began, when it must end (SLURM's end time, or local mode's limit), and the
    /// deadline the command gets: the end less a margin (60 s under SLURM, at most a tenth of the
    /// attempt; locally the warning's lead).
    struct AttemptPlan {
        var start: Double
        var startText: String
        var jobAtStart: JobInfo?
        var endTime: Double?
        var deadline: Double?
    }

    /// What the attempt did: units marked (or a sweep's work finished) and units newly quarantined.
    struct WorkDone {
        var marked: Int?
        var newlyQuarantined: [String]
        var sweepFinished: (count: Int, what: String)?
    }

    func planAttempt() -> AttemptPlan {
        let start = Clock.unixSeconds()
        let jobAtStart = lookUpJob(purpose: "no deadline for the command")
        let endTime = slurm != nil ? jobAtStart?.endTime : options.timeLimit.map { start + $0 }
        attemptEndTime = endTime
        warningLead = nil
        let deadline =
            options.setsDeadline
            ? endTime.flatMap { end -> Double? in
                let margin = options.deadlineMargin ?? (slurm != nil ? min(60, (end - start) / 10) : (options.warnBefore ?? 0))
                return end - margin > start ? end - margin : nil
            } : nil
        return AttemptPlan(start: start, startText: String(start), jobAtStart: jobAtStart, endTime: endTime, deadline: deadline)
    }

    /// The attempt that does not start its command: the work is done, or the state cannot be
    /// written (every mark would fail). Nil when the command should start.
    func attemptNotStarted(alreadyDone: String?, before: Progress?) -> Attempt? {
        if let marker = alreadyDone {
            report("all work is done already (\(marker)): not starting the command")
            return Attempt(
                end: AttemptEnd(cause: .none), exit: .exited(0), workDone: marker, remaining: 0, scope: "the run",
                requeueAllowed: nil, started: false, quarantined: before?.quarantined ?? [])
        }
        guard let failure = SpaceProbe.failure(in: directory) else { return nil }
        report("the state cannot be written: \(failure.message)")
        var attempt = Attempt(
            end: AttemptEnd(cause: .none), exit: .exited(0), workDone: nil, remaining: before?.remaining,
            scope: before?.scope ?? "the run", requeueAllowed: nil, started: false, quarantined: before?.quarantined ?? [])
        attempt.stateWriteFailure = failure.message
        return attempt
    }

    /// Starts the command with the attempt's environment, after recording `attempt_start`; returns
    /// it and the stop requests that were there before it (they never apply to it).
    func startCommand(_ plan: AttemptPlan, restart: Int) throws -> (ChildProcess, StaleRequests) {
        var environment = Environment.all()
        environment[Environment.stateDirectory] = statePath
        environment[Environment.restartCount] = String(restart)
        environment[Environment.resume] = restart > 0 ? "1" : "0"
        environment[Environment.attemptStart] = plan.startText
        // The requests there now never apply to this attempt; any other does, whatever its clock.
        let requestFiles = [StopRequest.fileName, StopRequest.fileName(forJob: slurm?.logID)]
        let stale = StaleRequests.snapshot(of: requestFiles, in: directory)
        environment[Environment.staleRequests] = stale.encoded
        environment[Environment.deadline] = plan.deadline.map { String($0) }
        record(
            "attempt_start",
            [
                ("restart", .number(Double(restart))), ("command", .array(options.command.map { .string($0) })),
                ("deadline", plan.deadline.map { .number($0) } ?? .null), ("attempt_start", .string(plan.startText)),
            ])
        let child = try ChildProcess.start(options.command, environment: environment)
        report(
            "started `\(options.command.joined(separator: " "))` (pid \(child.pid), restart \(restart))"
                + (plan.deadline.map { ", deadline in \(TimeSpan.format($0 - plan.start))" } ?? ""))
        return (child, stale)
    }

    /// Gathers what only the state and SLURM know — stops that went to the command's processes (a
    /// signal to the job's steps), another's stop request, the deadline, SLURM's view now — and
    /// classifies the end; a TERM scontrol could not explain is looked up again through an outage.
    /// Returns the events read and the end.
    func whyItEnded(_ facts: inout AttemptFacts, plan: AttemptPlan, stale: StaleRequests) -> ([JSONValue], AttemptEnd) {
        facts.deadlinePassed = plan.deadline.map { Clock.unixSeconds() >= $0 } ?? false
        // This attempt's lines: the log back to its attempt_start.
        let events = (try? EventLog.readBack(from: directory, until: { isThisAttemptsStart($0, plan.startText) })) ?? []
        facts.processStops = ProcessStop.records(in: events, attemptStart: plan.startText)
        facts.request = currentRequest(besides: stale)
        if let slurm {
            do { facts.jobAtEnd = try slurm.info() } catch let error as GracefulStopError {
                facts.endLookupError = error.message
            } catch {
                facts.endLookupError = "\(error)"
            }
        }
        var end = AttemptEnd.classify(facts)
        if let slurm, case .unclassifiedTerm = end.cause {
            // Only scontrol tells a time limit (requeue) from a cancel (end): worth waiting out an outage for.
            let found = SlurmLookup.run(
                deadline: SlurmRequeue.deadline(endTime: plan.endTime, now: Clock.unixSeconds()), now: Clock.unixSeconds, pause: Clock.sleep,
                lookUp: { try slurm.info() },
                report: { [self] line in
                    report(line)
                    record("lookup_try", [("error", .string(line))])
                })
            if let job = found.answer {
                facts.jobAtEnd = job
                facts.endLookupError = nil
                if found.tries > 1 { report("scontrol show job answered after \(found.tries) tries") }
            } else {
                facts.endLookupError = found.lastError.map { "\($0), \(found.tries) tr\(found.tries == 1 ? "y" : "ies")" } ?? facts.endLookupError
            }
            end = AttemptEnd.classify(facts)
        }
        return (events, end)
    }

    /// What the attempt did, from the counts before and after it (and a sweep's own reports); says
    /// the units it got quarantined.
    func countWork(before: Progress?, after: Progress?, events: [JSONValue], attemptStart: String) -> WorkDone {
        // A run's progress is its markers; a sweep's, what it reported (nil: it reports nothing).
        let sweepFinished = after == nil ? SweepProgress.finished(in: events, attemptStart: attemptStart) : nil
        // Progress counts units the job finished in other shares too (balancing), or a job that
        // worked only for others would look idle to the crash-loop guard.
        let marked = after.map { $0.done - (before?.done ?? 0) + $0.doneElsewhere - (before?.doneElsewhere ?? 0) } ?? sweepFinished?.count
        let newlyQuarantined = (after?.quarantined ?? []).filter { !(before?.quarantined ?? []).contains($0) }
        if !newlyQuarantined.isEmpty {
            report(
                "quarantined \(newlyQuarantined.count) unit\(newlyQuarantined.count == 1 ? "" : "s") begun \(options.limits.maxUnitAttempts) times without finishing: "
                    + newlyQuarantined.prefix(10).joined(separator: ", ") + (newlyQuarantined.count > 10 ? ", ..." : "")
                    + " (gstop status lists them; gstop release puts them back)")
        }
        return WorkDone(marked: marked, newlyQuarantined: newlyQuarantined, sweepFinished: sweepFinished)
    }

    /// Says how the command ended and records `child_exit` (kept in memory too: the crash-loop
    /// guard's counts must survive a log that cannot be written).
    func recordExit(_ exit: ChildExit, end: AttemptEnd, restart: Int, child: ChildProcess, after: Progress?, outcome: WorkDone) {
        report(
            "command ended (\(exit.description)) after \(TimeSpan.format(child.runningSeconds)); \(end.cause.description)"
                + (end.route.map { " [\($0)]" } ?? "")
                + (after.map {
                    "; \($0.scope): \($0.remaining) of \($0.total) units left"
                        + ($0.quarantined.isEmpty ? "" : ", \($0.quarantined.count) quarantined")
                        + ($0.heldByOthers > 0 ? ", \($0.heldByOthers) of them held by live workers of other jobs" : "")
                        + ($0.claimedElsewhere > 0
                            ? ", and \($0.claimedElsewhere) unit\($0.claimedElsewhere == 1 ? "" : "s") this job began in other shares unfinished"
                            : "")
                } ?? "")
                + (outcome.sweepFinished.map { "; \($0.count) \($0.what)\($0.count == 1 ? "" : "s") finished" } ?? ""))
        let exitFields: [(String, JSONValue)] = [
            ("restart", .number(Double(restart))), ("exit", .number(Double(exit.status))), ("cause", .string(end.cause.description)),
            ("route", end.route.map { .string($0) } ?? .null), ("budget", .string(end.cause.budget.rawValue)),
            ("hard_stop", .bool(end.cause.explainsDeaths)),
            ("asked_to_stop", .bool(end.cause != .none)), ("marked", outcome.marked.map { .number(Double($0)) } ?? .null),
            ("remaining", after.map { .number(Double($0.remaining)) } ?? .null),
            ("quarantined", .number(Double(outcome.newlyQuarantined.count))),
            ("held_by_others", .number(Double(after?.heldByOthers ?? 0))), ("claimed_elsewhere", .number(Double(after?.claimedElsewhere ?? 0))),
        ]
        exitsHere.append(.object([("event", .string("child_exit")), ("job", .string(chain)), ("node", .number(Double(node)))] + exitFields))
        historyWriteFailure = record("child_exit", exitFields)
    }

    /// The `attempt_start` line gstop wrote for the attempt that began at `startText`.
    func isThisAttemptsStart(_ event: JSONValue, _ startText: String) -> Bool {
        event["event"]?.string == "attempt_start" && event["attempt_start"]?.string == startText && event["job"]?.string == chain
            && event["node"]?.int == node
    }

    /// The first `attempt_start` of this job's node (restart 0): the log back to it is this job's.
    func isThisJobsFirstStart(_ event: JSONValue) -> Bool {
        event["event"]?.string == "attempt_start" && event["job"]?.string == chain && event["node"]?.int == node && event["restart"]?.int == 0
    }
}
