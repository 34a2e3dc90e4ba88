/// What a requeued job should ask the scheduler for: a `TimeMin` (the least window in which an
/// attempt is still worth starting, so that backfill may start it in any gap that long) and, when
/// all that is left fits with a margin in less than its `TimeLimit`, a lower `TimeLimit`. A pure
/// function of the run's own figures, tested as a table (RightSizeTests).
///
/// A user may lower a pending job's limits but not raise them, so the estimate is generous where
/// it is wrong at a cost: a limit too short costs one more requeue (the attempt stops at its
/// deadline, at a unit boundary), never a unit.
public struct RightSize: Sendable, Equatable {
    public struct Facts: Sendable, Equatable {
        /// The job's TimeLimit and TimeMin now, seconds (nil: unlimited, or none).
        public var timeLimit: Double?
        public var timeMin: Double?
        /// How long a unit takes (p90 of the sampled durations), and how many the figure rests on.
        public var unitSeconds: Double?
        public var unitsSampled = 0
        /// From an attempt's start to its first unit begun, measured (nil: not measured yet).
        public var overhead: Double?
        /// Units the next attempt must do, and the workers doing them side by side.
        public var units: Int
        public var workers = 1
        /// How long before its end the attempt was warned (`--signal=B:USR1@N`), when seen.
        public var warningLead: Double?

        public init(
            timeLimit: Double?, timeMin: Double? = nil, unitSeconds: Double?, unitsSampled: Int = 0, overhead: Double? = nil, units: Int,
            workers: Int = 1, warningLead: Double? = nil
        ) {
            self.timeLimit = timeLimit
            self.timeMin = timeMin
            self.unitSeconds = unitSeconds
            self.unitsSampled = unitsSampled
            self.overhead = overhead
            self.units = units
            self.workers = workers
            self.warningLead = warningLead
        }
    }

    /// Minutes to set (SLURM's unit for both); nil leaves the field as it is.
    public var timeMin: Int?
    public var timeLimit: Int?
    /// One line for the decision: what is asked and why, or why nothing is.
    public var explanation: String

    public var changesJob: Bool { timeMin != nil || timeLimit != nil }

    /// Without a measured overhead: an attempt's start (a Python process, imports, a model loaded)
    /// is taken to cost a minute.
    public static let assumedOverhead = 60.0
    /// The overhead may be at most this share of the least window.
    public static let overheadShare = 0.1
    /// The whole remaining work is given this much more than its p90 estimate, and a minute.
    public static let workMargin = 0.25
    public static let extraSeconds = 60.0

    /// The time at a window's end in which no unit is begun: the warning's lead when it was seen,
    /// else the deadline gstop gives the command (a tenth of the attempt, at most 60 s).
    static func tail(window: Double, warningLead: Double?) -> Double {
        warningLead ?? min(60, window / 9)
    }

    static func minutes(_ seconds: Double) -> Int { max(1, Int(saturating: seconds / 60, rounding: .up)) }

    public static func decide(_ facts: Facts) -> RightSize {
        guard facts.units > 0 else { return RightSize(explanation: "right-size: no units left, the job is left as it is") }
        guard let unit = facts.unitSeconds, unit > 0, facts.unitsSampled > 0 else {
            return RightSize(explanation: "right-size: no unit has a recorded duration yet, the job keeps its limits")
        }
        let overhead = facts.overhead ?? assumedOverhead
        let overheadText =
            facts.overhead.map { "overhead \(TimeSpan.format($0))" } ?? "overhead \(TimeSpan.format(overhead)) (assumed: none measured)"
        let perWorker = (facts.units + max(1, facts.workers) - 1) / max(1, facts.workers)
        // Enough units that the start's overhead is at most a tenth of the window's work.
        let worthUnits = min(perWorker, max(1, Int(saturating: overhead * (1 - overheadShare) / overheadShare / unit - 1e-9, rounding: .up)))
        let least = overhead + Double(worthUnits) * unit
        let leastMinutes = minutes(least + tail(window: least, warningLead: facts.warningLead))
        let all = overhead + Double(perWorker) * unit * (1 + workMargin) + extraSeconds
        let allMinutes = minutes(all + tail(window: all, warningLead: facts.warningLead))
        let unitsLeft = "\(facts.units) unit\(facts.units == 1 ? "" : "s") left"
        let unitText = "\(TimeSpan.format(unit)) (p90 of \(facts.unitsSampled))"
        let tailText = facts.warningLead.map { "the warning's \(TimeSpan.format($0))" } ?? "the deadline margin"

        var result = RightSize(explanation: "")
        var parts: [String] = []
        let limitMinutes = facts.timeLimit.map { Int(saturating: $0 / 60, rounding: .down) }
        var newLimit = limitMinutes
        if limitMinutes.map({ allMinutes < $0 }) ?? false {
            result.timeLimit = allMinutes
            newLimit = allMinutes
            parts.append(
                "TimeLimit \(limitMinutes.map(format) ?? "?") → \(format(allMinutes)): \(unitsLeft)"
                    + (facts.workers > 1 ? " over \(facts.workers) workers" : "") + " × \(unitText) + 25 % + 1 min, \(overheadText), \(tailText)")
        } else {
            parts.append(
                "TimeLimit \(limitMinutes.map(format) ?? "unlimited") kept: \(unitsLeft)"
                    + (facts.workers > 1 ? " over \(facts.workers) workers" : "") + " need \(format(allMinutes)) with the margin")
        }
        let userMin = facts.timeMin.map { Int(saturating: $0 / 60, rounding: .down) }
        if let newLimit, leastMinutes >= newLimit {
            parts.append("no TimeMin: the least useful window (\(format(leastMinutes))) is the whole limit")
            if let userMin, userMin > newLimit { result.timeMin = newLimit }  // SLURM wants TimeMin <= TimeLimit
        } else if let userMin, userMin <= (newLimit ?? Int.max) {
            parts.append("TimeMin \(format(userMin)) kept (the job has it already)")
        } else {
            result.timeMin = leastMinutes
            parts.append(
                "TimeMin \(format(leastMinutes)): \(overheadText) + \(worthUnits) unit\(worthUnits == 1 ? "" : "s") × \(unitText) + \(tailText)")
        }
        result.explanation = "right-size: " + parts.joined(separator: "; ")
        return result
    }

    /// "5 min", "1 h 05 min": minutes as people read them.
    static func format(_ minutes: Int) -> String {
        minutes < 60 ? "\(minutes) min" : "\(minutes / 60) h" + (minutes % 60 == 0 ? "" : " \(minutes % 60 < 10 ? "0" : "")\(minutes % 60) min")
    }
}
