import Glibc

/// What `scontrol show job -o ID` says about a job, the fields gstop needs.
public struct JobInfo: Sendable, Equatable {
    /// RUNNING, COMPLETING, CANCELLED, PREEMPTED, PENDING, ...
    public var state: String
    /// Why the job is in that state: TimeLimit at the time limit, None after scancel, ...
    public var reason: String
    /// When the job must end, unix seconds; nil when unlimited or unknown.
    public var endTime: Double?
    public var restarts: Int
    /// Whether SLURM allows requeuing it (sbatch --requeue / JobRequeue=1).
    public var requeueAllowed: Bool?

    /// Parses one line of `Key=Value` pairs. Values gstop reads contain no spaces.
    public static func parse(_ text: String) throws -> JobInfo {
        var fields: [Substring: Substring] = [:]
        for token in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = token.firstIndex(of: "=") else { continue }
            let key = token[..<equals]
            if fields[key] == nil { fields[key] = token[token.index(after: equals)...] }
        }
        guard let state = fields["JobState"] else {
            throw GracefulStopError(.badState, "scontrol printed no JobState: \(text.prefix(200))")
        }
        return JobInfo(
            state: String(state), reason: String(fields["Reason"] ?? "None"),
            endTime: fields["EndTime"].flatMap { parseTime(String($0)) },
            restarts: fields["Restarts"].flatMap { Int($0) } ?? 0,
            requeueAllowed: fields["Requeue"].map { $0 == "1" })
    }

    /// "2026-11-25T16:40:51" in this host's local time (as scontrol prints it) to unix seconds.
    static func parseTime(_ text: String) -> Double? {
        let numbers = text.split(whereSeparator: { $0 == "-" || $0 == "T" || $0 == ":" }).map { Int32($0) }
        guard text.count == 19, numbers.count == 6, numbers.allSatisfy({ $0 != nil }) else { return nil }
        var parts = tm()
        parts.tm_year = numbers[0]! - 1900
        parts.tm_mon = numbers[1]! - 1
        parts.tm_mday = numbers[2]!
        parts.tm_hour = numbers[3]!
        parts.tm_min = numbers[4]!
        parts.tm_sec = numbers[5]!
        parts.tm_isdst = -1
        let seconds = mktime(&parts)
        return seconds == -1 ? nil : Double(seconds)
    }

    /// Stopped by SLURM's time limit (the TERM that precedes the KILL by KillWait seconds).
    public var isTimeLimit: Bool { reason == "TimeLimit" || state == "TIMEOUT" }
    /// Preempted: SLURM requeues (or cancels) the job by itself.
    public var isPreempted: Bool { state == "PREEMPTED" || reason.hasPrefix("Preempt") }
}
