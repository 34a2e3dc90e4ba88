/// The line `gstop run` prints to the job's output every `--progress-every`, so that `tail -f`
/// answers "is it moving, and when will it end?": a pure function of what the supervisor read
/// (ProgressLineTests).
public struct ProgressLine: Equatable, Sendable {
    /// gstop's own share ("node 3"), its done and total units (exact: its directory, read afresh).
    public var scope: String
    public var scopeDone: Int
    public var scopeTotal: Int
    /// The run's, from `complete/` and the shares' summaries (a lower bound, seconds old); nil when
    /// the scope is the run.
    public var runDone: Int? = nil
    public var runTotal: Int? = nil
    /// Units this attempt's scope finished, and over how many seconds.
    public var doneSinceStart: Int = 0
    public var secondsSinceStart: Double = 0
    /// The median unit time of the share's sample, when known.
    public var p50: Double? = nil
    public var quarantined: Int = 0
    /// For a sweep (no units): what this attempt finished ("trial") and how many.
    public var finished: (count: Int, what: String)? = nil

    public init(scope: String, scopeDone: Int, scopeTotal: Int) {
        self.scope = scope
        self.scopeDone = scopeDone
        self.scopeTotal = scopeTotal
    }

    public static func == (a: ProgressLine, b: ProgressLine) -> Bool { a.text(now: 0) == b.text(now: 0) }

    /// Units per hour in this attempt; nil before any unit or second.
    public var unitsPerHour: Double? {
        guard doneSinceStart > 0, secondsSinceStart > 0 else { return nil }
        return Double(doneSinceStart) * 3600 / secondsSinceStart
    }

    /// Seconds until the scope's units are done at this attempt's rate.
    public var etaSeconds: Double? {
        guard let rate = unitsPerHour else { return nil }
        return Double(max(0, scopeTotal - scopeDone - quarantined)) * 3600 / rate
    }

    public func text(now: Double) -> String {
        if let finished {
            return
                "progress: \(finished.count) \(finished.what)\(finished.count == 1 ? "" : "s") finished in this attempt (\(TimeSpan.format(secondsSinceStart)))"
        }
        func percent(_ done: Int, _ total: Int) -> String { total == 0 ? "100 %" : "\(done * 100 / total) %" }
        var parts = ["\(scope): \(scopeDone) of \(scopeTotal) units done (\(percent(scopeDone, scopeTotal)))"]
        if let runDone, let runTotal { parts.append("the run: \(runDone) of \(runTotal) (\(percent(runDone, runTotal)))") }
        if let rate = unitsPerHour {
            parts.append(
                "\(rate >= 10 ? String(Int(saturating: rate, rounding: .toNearestOrAwayFromZero)) : String((rate * 10).rounded() / 10)) units/h in this attempt"
            )
        } else {
            parts.append("no unit finished yet in this attempt (\(TimeSpan.format(secondsSinceStart)))")
        }
        if let p50 { parts.append("p50 \(TimeSpan.format(p50))") }
        if scopeDone + quarantined >= scopeTotal {
            parts.append("nothing left to begin")
        } else if let eta = etaSeconds {
            parts.append("done \(StatusReport.clock(now + eta.rounded(), now: now)) at this rate")
        }
        if quarantined > 0 { parts.append("\(quarantined) quarantined") }
        return "progress: " + parts.joined(separator: "; ")
    }
}
