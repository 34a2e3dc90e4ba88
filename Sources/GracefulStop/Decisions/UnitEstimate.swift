/// How long units take and when the work will be done: a pure function of unit durations (read
/// from done-markers, see `UnitTiming`) and the units left, tested as a table (UnitEstimateTests).
public struct UnitEstimate: Sendable, Equatable {
    /// How many durations the figures rest on.
    public var sampled: Int
    public var p50: Double
    public var p90: Double
    public var mean: Double

    /// nil without any duration to go on.
    public init?(durations: [Double]) {
        let sorted = durations.filter { $0.isFinite && $0 >= 0 }.sorted()
        guard !sorted.isEmpty else { return nil }
        sampled = sorted.count
        p50 = UnitEstimate.percentile(sorted, 0.5)
        p90 = UnitEstimate.percentile(sorted, 0.9)
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }

    /// The nearest-rank percentile of sorted values: a duration that was measured, never one
    /// interpolated between two.
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        // ceil(fraction × count), less a hair: 0.9 × 10 is 9.000000000000002 in binary.
        let rank = Int(saturating: fraction * Double(sorted.count) - 1e-9, rounding: .up)
        return sorted[max(0, min(sorted.count - 1, rank - 1))]
    }

    /// Units one worker finishes in an hour at the mean unit time.
    public var unitsPerHour: Double { mean > 0 ? 3600 / mean : .infinity }

    /// Seconds until `remaining` units are done by one worker going through them one after another.
    public func secondsToFinish(remaining: Int) -> Double { Double(remaining) * mean }

    /// The run's time to finish with balancing: `workers` workers share what is left, whichever share
    /// it is in, so the time is the work left (each node's units at its own mean, or the run's)
    /// over the workers — never less than one unit at the longest mean, which one worker must do.
    public static func balancedRunSeconds(nodes: [(remaining: Int, estimate: UnitEstimate?)], run: UnitEstimate?, workers: Int) -> Double? {
        var work = 0.0
        var longestUnit = 0.0
        for node in nodes where node.remaining > 0 {
            guard let estimate = node.estimate ?? run else { return nil }
            work += estimate.secondsToFinish(remaining: node.remaining)
            longestUnit = max(longestUnit, estimate.mean)
        }
        return max(work / Double(max(1, workers)), longestUnit)
    }

    /// The run's time to finish: its nodes work side by side, so the slowest node's share decides
    /// (a node without durations of its own is estimated with the run's).
    public static func runSeconds(nodes: [(remaining: Int, estimate: UnitEstimate?)], run: UnitEstimate?) -> Double? {
        var longest = 0.0
        for node in nodes where node.remaining > 0 {
            guard let estimate = node.estimate ?? run else { return nil }
            longest = max(longest, estimate.secondsToFinish(remaining: node.remaining))
        }
        return longest
    }
}
