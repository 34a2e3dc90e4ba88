import Glibc

/// What `scontrol show job -o ID` says about a job, the fields gstop needs. Text, not `--json`:
/// the text is the same from SLURM 20.11 to 26.05, while `--json` is missing before 23.02 and
/// changes shape with each release.
public struct JobInfo: Sendable, Equatable {
    /// RUNNING, COMPLETING, CANCELLED, PREEMPTED, PENDING, ...
    public var state: String
    /// Why the job is in that state: TimeLimit at the time limit, None after scancel, ...
    public var reason: String
    /// When the job must end, unix seconds; nil when unlimited or unknown.
    public var endTime: Double?
    /// How many times the job was requeued (Restarts=).
    public var restarts: Int
    /// Whether SLURM allows requeuing it (sbatch --requeue / JobRequeue=1).
    public var requeueAllowed: Bool?
    /// When preemption began (PreemptTime=, present only during GraceTime), unix seconds.
    public var preemptTime: Double?
    /// The nodes the job holds now (NodeList=): shrinks when a node fails.
    public var nodeList: String?
    /// How many nodes the job holds (NumNodes=).
    public var nodeCount: Int?
    /// Its partition (Partition=), and the nodes it must not run on (ExcNodeList=, a hostlist).
    public var partition: String? = nil
    public var excludedNodes: String? = nil
    /// TimeLimit= and TimeMin=, seconds; nil when unlimited, the partition's, or none.
    public var timeLimit: Double? = nil
    public var timeMin: Double? = nil

    public init(
        state: String, reason: String = "None", endTime: Double? = nil, restarts: Int = 0, requeueAllowed: Bool? = nil,
        preemptTime: Double? = nil, nodeList: String? = nil, nodeCount: Int? = nil
    ) {
        self.state = state
        self.reason = reason
        self.endTime = endTime
        self.restarts = restarts
        self.requeueAllowed = requeueAllowed
        self.preemptTime = preemptTime
        self.nodeList = nodeList
        self.nodeCount = nodeCount
    }

    /// Fields whose values users write (names, comments, paths, the submit command): they may hold
    /// spaces and text such as `JobState=COMPLETED` of their own. Every field gstop reads comes
    /// before the first of these, so reading stops there.
    static let freeTextKeys: Set<Substring> = [
        "Command", "WorkDir", "Comment", "AdminComment", "SystemComment", "StdErr", "StdIn", "StdOut", "SubmitLine",
        "MailUser", "Container", "ContainerID",
    ]

    /// Parses one line of `scontrol show job -o`. `jobName` is the job's own name
    /// (SLURM_JOB_NAME): the only user text before the fields gstop reads is the name, and knowing
    /// it lets the parser step over it exactly, whatever it contains. Without it, the name is taken
    /// to end at the first ` UserId=`.
    public static func parse(_ text: String, jobName: String? = nil) throws -> JobInfo {
        let line = Substring(text.split(separator: "\n", omittingEmptySubsequences: true).first ?? "")
        var rest = line[...]
        if let nameStart = firstRange(of: "JobName=", in: line) {
            let afterKey = line[nameStart.upperBound...]
            if let jobName, afterKey.hasPrefix(jobName + " ") {
                rest = afterKey.dropFirst(jobName.count)
            } else if let userID = firstRange(of: " UserId=", in: afterKey) {
                rest = afterKey[userID.lowerBound...]
            } else {
                rest = afterKey
            }
        }
        var fields: [Substring: Substring] = [:]
        for token in rest.split(separator: " ") {
            guard let equals = token.firstIndex(of: "=") else { continue }
            let key = token[..<equals]
            if freeTextKeys.contains(key) { break }
            if fields[key] == nil { fields[key] = token[token.index(after: equals)...] }
        }
        guard let state = fields["JobState"], !state.isEmpty else {
            throw GracefulStopError(.badState, "scontrol printed no JobState: \(text.prefix(200))")
        }
        var info = JobInfo(
            state: String(state), reason: String(fields["Reason"] ?? "None"),
            endTime: fields["EndTime"].flatMap { parseTime(String($0)) },
            restarts: fields["Restarts"].flatMap { Int($0) } ?? 0,
            requeueAllowed: fields["Requeue"].map { $0 == "1" },
            preemptTime: fields["PreemptTime"].flatMap { parseTime(String($0)) },
            nodeList: fields["NodeList"].map(String.init).flatMap { $0 == "(null)" ? nil : $0 },
            nodeCount: fields["NumNodes"].flatMap { Int($0.prefix { $0.isNumber }) })
        info.partition = fields["Partition"].map(String.init)
        info.excludedNodes = fields["ExcNodeList"].map(String.init).flatMap { $0 == "(null)" || $0.isEmpty ? nil : $0 }
        info.timeLimit = fields["TimeLimit"].flatMap { parseDuration(String($0)) }
        info.timeMin = fields["TimeMin"].flatMap { parseDuration(String($0)) }
        return info
    }

    /// Where `needle` first occurs in `text`. By hand: the stdlib's `firstRange(of:)` would link
    /// the regex engine (_StringProcessing) into the library, 2.5 MB for two searches.
    static func firstRange(of needle: String, in text: Substring) -> Range<String.Index>? {
        let pattern = Array(needle.utf8)
        let bytes = text.utf8
        var start = bytes.startIndex
        while start != bytes.endIndex {
            if bytes[start...].starts(with: pattern) { return start..<bytes.index(start, offsetBy: pattern.count) }
            bytes.formIndex(after: &start)
        }
        return nil
    }

    /// A SLURM duration to seconds, in the forms sbatch's --time takes and scontrol prints:
    /// "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
    /// "days-hours:minutes", "days-hours:minutes:seconds"; nil for UNLIMITED, Partition_Limit,
    /// N/A and anything else. In Double: no number from outside can overflow an Int here.
    static func parseDuration(_ text: String) -> Double? {
        var days: Double? = nil
        var clock = Substring(text)
        if let dash = clock.firstIndex(of: "-") {
            guard let d = UInt(clock[..<dash]) else { return nil }
            days = Double(d)
            clock = clock[clock.index(after: dash)...]
        }
        let parts = clock.split(separator: ":", omittingEmptySubsequences: false).map { UInt($0).map(Double.init) }
        guard !parts.isEmpty, parts.count <= 3, parts.allSatisfy({ $0 != nil }) else { return nil }
        let n = parts.map { $0! }
        if let days {  // after a day count: hours first
            let hours = n[0] * 3600 + (n.count > 1 ? n[1] * 60 : 0) + (n.count > 2 ? n[2] : 0)
            return days * 86400 + hours
        }
        switch n.count {
        case 3: return n[0] * 3600 + n[1] * 60 + n[2]
        case 2: return n[0] * 60 + n[1]
        default: return n[0] * 60
        }
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
    /// Being preempted (PreemptTime is set during GraceTime), or preempted.
    public var isPreempted: Bool { preemptTime != nil || state == "PREEMPTED" || reason.hasPrefix("Preempt") }
    /// A node of the job failed.
    public var isNodeFailure: Bool { state == "NODE_FAIL" || reason == "NodeDown" }
}
