/// The crash-loop guard's counts, from the `child_exit` lines of one job's node in events.jsonl
/// (oldest first): a pure function, tested as a table (AttemptHistoryTests).
///
/// Progress is a marked unit or a newly quarantined one: an attempt that crashed on a poison unit
/// after finishing others, or whose crash got the unit quarantined, moved the run forward, so the
/// guard never ends a run that is still getting through its units.
public enum AttemptHistory {
    /// Attempts in a row, the last one included, that made no progress (marked no unit and
    /// quarantined none; a sweep's: finished no trial). An attempt that did not say ends the
    /// streak: unknown is not idle.
    public static func idleAttempts(_ exits: [JSONValue]) -> Int {
        exits.reversed().prefix { $0["marked"]?.int == 0 && ($0["quarantined"]?.int ?? 0) == 0 }.count
    }

    /// The attempts before restart `restart` whose requeue was a preemption's, a node failure's or
    /// SLURM's own (`"budget": "preemption"`); lines from before budgets existed count as restarts,
    /// and so does an attempt that left no line (the safe side for --max-restarts).
    public static func preemptions(_ exits: [JSONValue], before restart: Int) -> Int {
        Set(
            exits.filter { ($0["restart"]?.int ?? .max) < restart && $0["budget"]?.string == RequeueBudget.preemption.rawValue }
                .compactMap { $0["restart"]?.int }
        ).count
    }

    /// Failed attempts in a row (non-zero exit, no stop asked), the last one included, counted back
    /// to the most recent failed attempt that made progress (counted too, but not those before it).
    public static func failedAttempts(_ exits: [JSONValue]) -> Int {
        var failed = 0
        for exit in exits.reversed() {
            guard exit["asked_to_stop"] == .bool(false), exit["exit"]?.int != 0 else { break }
            failed += 1
            if (exit["marked"]?.int ?? 0) > 0 || (exit["quarantined"]?.int ?? 0) > 0 { break }
        }
        return failed
    }
}
