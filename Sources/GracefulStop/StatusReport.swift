/// What `gstop status` shows about a state: done / remaining / total per node, completion markers,
/// stop requests, and the last decision from the events log.
public struct StatusReport: Sendable {
    public struct NodeCounts: Sendable, Equatable {
        public var node: Int
        public var done: Int
        public var total: Int
        public var remaining: Int { total - done }
    }

    public var path: String
    public var partition: String?
    public var nodes: [NodeCounts]
    public var runDone: Bool
    public var studyDone: Bool
    /// Request files present, with what they say (current or not is each process's business).
    public var stopRequests: [(file: String, request: StopRequest)]
    public var lastDecision: JSONValue?

    public var unitCount: Int { nodes.reduce(0) { $0 + $1.total } }
    public var doneCount: Int { nodes.reduce(0) { $0 + $1.done } }

    public static func gather(path: String) throws -> StatusReport {
        let directory = try Directory(opening: path)
        var report = StatusReport(path: path, partition: nil, nodes: [], runDone: false, studyDone: false, stopRequests: [], lastDecision: nil)
        if try directory.exists(Manifest.fileName) {
            let state = try RunState.open(at: path, node: 0)
            report.partition = state.manifest?.partition.rule.rawValue
            report.nodes = try state.countsByNode().enumerated().map { NodeCounts(node: $0.offset, done: $0.element.done, total: $0.element.total) }
        }
        report.runDone = try directory.exists(RunCompletion.fileName)
        report.studyDone = try directory.exists(StudyCompletion.fileName)
        var requestFiles: [String] = []
        try directory.forEachEntry { name in
            let text = String(decoding: name, as: UTF8.self)
            if text.hasPrefix("stop.") && text.hasSuffix(".request") { requestFiles.append(text) }
        }
        for file in requestFiles.sorted() {
            if let request = try StopRequest.read(from: directory, fileName: file) { report.stopRequests.append((file, request)) }
        }
        report.lastDecision = try EventLog.read(from: directory).last { $0["event"]?.string == "decision" }
        return report
    }

    /// A table (or, on a terminal, progress bars) for people.
    public func text(terminal: Bool, width: Int = 80) -> String {
        var lines = ["state \(path)"]
        if nodes.isEmpty {
            lines.append("no manifest yet: no unit list (a sweep, or a run that has not started)")
        } else {
            lines.append("\(unitCount) units on \(nodes.count) node\(nodes.count == 1 ? "" : "s") (\(partition ?? "?")): \(doneCount) done, \(unitCount - doneCount) remaining")
            let nodeWidth = max(4, String(nodes.count - 1).count + 5)
            if terminal {
                let barWidth = max(10, min(40, width - nodeWidth - 30))
                for counts in nodes {
                    let filled = counts.total == 0 ? barWidth : counts.done * barWidth / counts.total
                    let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: barWidth - filled)
                    lines.append(pad("node \(counts.node)", nodeWidth) + " \(bar) \(counts.done)/\(counts.total) done, \(counts.remaining) left")
                }
            } else {
                lines.append(pad("node", nodeWidth) + " " + ["done", "remaining", "total"].map { pad($0, 10, right: true) }.joined(separator: " "))
                for counts in nodes {
                    lines.append(pad(String(counts.node), nodeWidth) + " "
                        + [counts.done, counts.remaining, counts.total].map { pad(String($0), 10, right: true) }.joined(separator: " "))
                }
            }
        }
        lines.append("run.done: \(runDone ? "yes" : "no")" + (studyDone ? "; study.done: yes" : ""))
        for (file, request) in stopRequests {
            lines.append("\(file): requested at \(request.requestedAt) by \(request.by) (\(request.reason))")
        }
        if let decision = lastDecision {
            let reasons: [String]
            if case .array(let items)? = decision["reasons"] { reasons = items.compactMap(\.string) } else { reasons = [] }
            lines.append("last decision: \(decision["action"]?.string ?? "?") \(decision["target"]?.string ?? "")".trimmingSpaces
                + " (job \(decision["job"]?.string ?? "?"), node \(decision["node"]?.int ?? 0)): \(reasons.joined(separator: "; "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The same as one JSON object.
    public func json() -> String {
        var writer = JSONWriter()
        writer.value(.object([
            ("state", .string(path)), ("partition", partition.map { .string($0) } ?? .null),
            ("units", .number(Double(unitCount))), ("done", .number(Double(doneCount))),
            ("nodes", .array(nodes.map { .object([
                ("node", .number(Double($0.node))), ("done", .number(Double($0.done))),
                ("remaining", .number(Double($0.remaining))), ("total", .number(Double($0.total))),
            ]) })),
            ("run_done", .bool(runDone)), ("study_done", .bool(studyDone)),
            ("stop_requests", .array(stopRequests.map { .object([
                ("file", .string($0.file)), ("requested_at", .number($0.request.requestedAt)), ("by", .string($0.request.by)),
                ("reason", .string($0.request.reason)),
            ]) })),
            ("last_decision", lastDecision ?? .null),
        ]))
        return String(decoding: writer.bytes, as: UTF8.self) + "\n"
    }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}
