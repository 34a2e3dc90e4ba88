import Glibc

/// The work a sweep finished (Optuna trials), as `work_finished` lines in events.jsonl.
///
/// A run of units tells gstop its progress through its markers; a sweep has none, so without this
/// gstop cannot tell an attempt that finished trials from one that finished nothing, and
/// `--max-idle-attempts` never stopped a sweep that crash-looped through its time limits. The
/// sweep says so itself: a line with count 0 when it starts (this attempt reports its progress),
/// and one per finished trial. Written only under gstop (GRACEFULSTOP_ATTEMPT_START), which is
/// the only reader.
enum SweepProgress {
    static let event = "work_finished"

    /// Appends one line: `count` more of `what` finished by this process, on `node`; a no-op
    /// outside gstop. Not fsync'd: it runs once per trial, and a line lost to a crash of the host
    /// only makes the idle guard count that attempt as idle (never a lost trial: Optuna has those).
    static func record(count: Int, what: String, node: Int, in directory: Directory) throws {
        guard let attemptStart = Environment.value(Environment.attemptStart) else { return }
        try EventLog.append(
            [
                ("event", .string(event)), ("job", Environment.job().map { .string($0) } ?? .null), ("node", .number(Double(node))),
                ("host", .string(HostName.current)), ("pid", .number(Double(getpid()))), ("count", .number(Double(count))),
                ("what", .string(what)), ("attempt_start", .string(attemptStart)),
            ], in: directory, durable: false)
    }

    /// What the attempt that started at `attemptStart` (as gstop set it; every process it started,
    /// srun's tasks too, inherits it) finished: the sum of its counts, and what they count; nil when
    /// it reported nothing (a sweep without a reporting integration: its progress is unknown, not 0).
    static func finished(in events: [JSONValue], attemptStart: String) -> (count: Int, what: String)? {
        var total: Int? = nil
        var what = "trial"
        for line in events where line["event"]?.string == event && line["attempt_start"]?.string == attemptStart {
            total = (total ?? 0) + max(0, line["count"]?.int ?? 0)
            if let named = line["what"]?.string, !named.isEmpty { what = named }
        }
        return total.map { ($0, what) }
    }
}
