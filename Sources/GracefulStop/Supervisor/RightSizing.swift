import Glibc

/// After a requeue: asks the scheduler for what the remaining work needs (`RightSize`), on the
/// pending job, with one `scontrol update`. The facts come from the attempt and a sample of the
/// share's done-markers; a refusal (a QOS, a job_submit plugin) is one line, and the requeue
/// stands.
extension Supervisor {
    /// The facts `RightSize` decides from; nil when the job's limits are not known.
    func rightSizeFacts(_ attempt: Attempt, restart: Int, events: [JSONValue]) -> RightSize.Facts? {
        guard let job = attempt.job, let units = attempt.left else { return nil }
        var samples: [UnitTiming] = []
        var shares: Int? = nil
        do {
            let state = try RunState.open(at: statePath, node: node)
            shares = state.manifest?.nodes
            // The job's own share: its units' times are the best guess for what is left of it.
            samples = try state.requireFiles().markers.timings(node: node, limit: StatusReport.sampleSize(nodes: 1))
        } catch let error as GracefulStopError {
            report("right-size: could not read the share's unit times: \(error.message)")
        } catch {}
        let estimate = UnitEstimate(durations: samples.compactMap(\.seconds))
        // From the attempt's start to its first unit begun: this attempt's (the earliest sampled
        // unit it began), else the last one measured (right_size events).
        let measured = samples.compactMap { timing -> Double? in
            guard timing.node == node, timing.restart == restart, let started = timing.started, started >= attempt.start else { return nil }
            return started - attempt.start
        }.min()
        let earlier = events.last { $0["event"]?.string == "right_size" && $0["job"]?.string == chain && $0["node"]?.int == node }?["overhead"]?
            .number
        var facts = RightSize.Facts(
            timeLimit: job.timeLimit, timeMin: job.timeMin, unitSeconds: estimate?.p90, unitsSampled: estimate?.sampled ?? 0,
            overhead: measured ?? earlier, units: units, warningLead: attempt.warningLead)
        // A job that answers for the whole run (one batch script for all its nodes) has its
        // shares worked side by side; with balancing, its workers share all that is left.
        if scopeIsEveryNode, (try? Balance.enabled()) ?? true, let shares {
            facts.workers = max(1, shares)
        }
        return facts
    }

    /// Decides, updates the pending job, records `right_size`; returns the decision line's words.
    func rightSize(_ attempt: Attempt, restart: Int, target: String) -> String? {
        guard options.rightSize else { return nil }
        // The last right_size of this job's node, back at most to its first attempt.
        let events =
            (try? EventLog.readBack(
                from: directory, only: EventLog.jobNeedle(chain),
                until: { [self] in ($0["event"]?.string == "right_size" && $0["node"]?.int == node) || isThisJobsFirstStart($0) })) ?? []
        guard let facts = rightSizeFacts(attempt, restart: restart, events: events) else {
            return "right-size: the job's limits are not known (scontrol did not answer), the job is left as submitted"
        }
        let size = RightSize.decide(facts)
        var fields: [(String, JSONValue)] = [
            ("target", .string(target)), ("units", .number(Double(facts.units))), ("workers", .number(Double(facts.workers))),
            ("unit_p90", facts.unitSeconds.map { .number($0) } ?? .null),
            ("overhead", facts.overhead.map { .number(($0 * 10).rounded() / 10) } ?? .null),
            ("time_limit_before", facts.timeLimit.map { .number($0 / 60) } ?? .null),
            ("time_min", size.timeMin.map { .number(Double($0)) } ?? .null), ("time_limit", size.timeLimit.map { .number(Double($0)) } ?? .null),
        ]
        var line = size.explanation
        if size.changesJob {
            do {
                try Scontrol.updateLimits(target, timeMin: size.timeMin, timeLimit: size.timeLimit)
            } catch let error as GracefulStopError {
                line += " — not applied, the requeue stands: \(error.message)"
                fields.append(("error", .string(error.message)))
            } catch {}
        }
        record("right_size", fields)
        return line
    }
}
