import Glibc

/// What `gstop status` (and Python's `State.progress()`) shows about a state: done / remaining /
/// quarantined / total per node, how long units take and when the work will be done, completion
/// markers, stop requests, and the last decision from the events log.
public struct StatusReport: Sendable {
    public struct NodeCounts: Sendable, Equatable {
        public var node: Int
        public var done: Int
        public var total: Int
        public var quarantined: Int = 0
        /// From a sample of the node's markers; nil when none records a duration.
        public var estimate: UnitEstimate? = nil
        /// Balancing: of `done`, the units that workers of other shares did, by their node.
        public var takenBy: [Int: Int] = [:]
        public var taken: Int { takenBy.values.reduce(0, +) }
        /// Units left that an attempt would do (quarantined ones are not).
        public var remaining: Int { max(0, total - done - quarantined) }
    }

    public struct QuarantinedUnit: Sendable {
        public var node: Int
        public var unit: String
        public var record: JSONValue?
        public var attempts: Int {
            if case .array(let items)? = record?["attempts"] { return items.count }
            return 0
        }
    }

    public var path: String
    public var partition: String?
    public var nodes: [NodeCounts]
    public var runDone: Bool
    /// Why a `run.done` present is not trusted (not what gracefulstop writes for this run).
    public var runDoneProblem: String? = nil
    public var runQuarantined: Bool = false
    public var studyDone: Bool
    /// Request files present, with what they say (current or not is each process's business).
    public var stopRequests: [(file: String, request: StopRequest)]
    public var lastDecision: JSONValue?
    /// Why events.jsonl could not be read (then there is no last decision to show).
    public var eventsProblem: String? = nil
    /// `requeue.failed`: a requeue gstop decided on that never reached slurmctld.
    public var requeueFailed: JSONValue? = nil
    public var quarantined: [QuarantinedUnit] = []
    /// The sampled markers that record a duration: unit name, seconds, when it ended (the report's
    /// histogram and slowest units).
    public var sampledUnits: [(unit: String, seconds: Double, ended: Double)] = []
    /// The SLURM nodes gstop judged bad, with the units that failed there and were done elsewhere.
    public var badNodes: [(node: String, units: [String], job: String?)] = []
    /// The whole run's estimate, from every node's sample.
    public var estimate: UnitEstimate? = nil
    /// When the report was gathered (unix seconds): the clock times it shows count from it.
    public var gatheredAt: Double = 0

    public var unitCount: Int { nodes.reduce(0) { $0 + $1.total } }
    public var doneCount: Int { nodes.reduce(0) { $0 + $1.done } }
    public var quarantinedCount: Int { nodes.reduce(0) { $0 + $1.quarantined } }
    public var remainingCount: Int { nodes.reduce(0) { $0 + $1.remaining } }
    public var takenCount: Int { nodes.reduce(0) { $0 + $1.taken } }
    /// Whether workers take over units of other shares (GRACEFULSTOP_BALANCE, default on).
    public var balanced = true

    /// Seconds until the run is done (nil without durations): with balancing, one worker per share
    /// sharing all that is left; without, the nodes side by side, the slowest share deciding.
    public var etaSeconds: Double? {
        let left = nodes.map { ($0.remaining, $0.estimate) }
        return balanced
            ? UnitEstimate.balancedRunSeconds(nodes: left, run: estimate, workers: nodes.count)
            : UnitEstimate.runSeconds(nodes: left, run: estimate)
    }

    /// How many markers each node's estimate reads: a few dozen, fewer per node on runs of many
    /// nodes (each read is an open on a shared filesystem).
    static func sampleSize(nodes: Int) -> Int { max(8, min(64, 4096 / max(1, nodes))) }

    public static func gather(path: String) throws -> StatusReport {
        let directory = try Directory(opening: path)
        if let damaged = try Manifest.missingProblem(in: directory) { throw damaged }
        let state = try directory.exists(Manifest.fileName) ? RunState.open(at: path, node: 0) : nil
        return try gather(path: path, directory: directory, state: state)
    }

    /// The report of an opened state (Python's `progress()`).
    public static func gather(state: RunState) throws -> StatusReport {
        guard let directory = state.directory, let path = state.path else {
            throw GracefulStopError(.invalidArgument, "no state directory: set \(Environment.stateDirectory) or open a state")
        }
        return try gather(path: path, directory: directory, state: state.files == nil ? nil : state)
    }

    static func gather(path: String, directory: Directory, state: RunState?) throws -> StatusReport {
        var report = StatusReport(path: path, partition: nil, nodes: [], runDone: false, studyDone: false, stopRequests: [], lastDecision: nil)
        report.gatheredAt = Clock.unixSeconds()
        report.balanced = (try? Balance.enabled()) ?? true
        if let state, let manifest = state.manifest {
            report.partition = manifest.partition.rule.rawValue
            report.quarantined = try state.quarantinedUnits().map { QuarantinedUnit(node: $0.node, unit: $0.unit, record: $0.record) }
            let sample = sampleSize(nodes: manifest.partition.nodes)
            var pooled: [Double] = []
            let hasTaken = try directory.contains(TakenUnits.directoryName)
            report.nodes = try state.countsByNode().enumerated().map { node, counts in
                var entry = NodeCounts(node: node, done: counts.done, total: counts.total)
                entry.quarantined = report.quarantined.filter { $0.node == node }.count
                if hasTaken { entry.takenBy = try TakenUnits.count(node: node, in: state.requireFiles().begun.taken) }
                let samples = try state.requireFiles().markers.samples(node: node, limit: sample)
                report.sampledUnits += samples.compactMap { sample in sample.timing.seconds.map { (sample.name, $0, sample.timing.ended) } }
                let durations = samples.compactMap(\.timing.seconds)
                entry.estimate = UnitEstimate(durations: durations)
                pooled += durations
                return entry
            }
            report.estimate = UnitEstimate(durations: pooled)
        }
        report.runDone = try directory.exists(RunCompletion.fileName)
        if report.runDone, let manifest = state?.manifest, let problem = RunCompletion.problem(in: directory, unitCount: manifest.unitCount) {
            // A stray or forged run.done is shown as what it is; the counts above are the markers'.
            report.runDone = false
            report.runDoneProblem = problem
        }
        report.runQuarantined = try directory.exists(RunQuarantined.fileName)
        report.studyDone = try directory.exists(StudyCompletion.fileName)
        var requestFiles: [String] = []
        try directory.forEachEntry { name in
            let text = String(decoding: name, as: UTF8.self)
            if text.hasPrefix("stop.") && text.hasSuffix(".request") { requestFiles.append(text) }
        }
        for file in requestFiles.sorted() {
            if let request = try StopRequest.read(from: directory, fileName: file) { report.stopRequests.append((file, request)) }
        }
        report.badNodes = try NodeFailures.badNodes(in: directory).map { entry in
            var units: [String] = []
            if case .array(let items)? = entry.record?["units"] { units = items.compactMap(\.string) }
            return (entry.node, units, entry.record?["job"]?.string)
        }
        // A damaged events log costs the last decision, not the report: it is said instead.
        do {
            // Read from the end: a log of a million lines costs what its tail does.
            report.lastDecision = try EventLog.readBack(from: directory, until: { $0["event"]?.string == "decision" }).first {
                $0["event"]?.string == "decision"
            }
        } catch let error as GracefulStopError {
            report.eventsProblem = error.message
        }
        report.requeueFailed = RequeueFailure.read(in: directory)
        return report
    }

    /// A table (or, on a terminal, progress bars) for people.
    public func text(terminal: Bool, width: Int = 80) -> String {
        var lines = ["state \(path)"]
        if let failed = requeueFailed { lines.append(RequeueFailure.describe(failed, now: gatheredAt)) }
        if nodes.isEmpty {
            lines.append("no manifest yet: no unit list (a sweep, or a run that has not started)")
        } else {
            lines.append(
                "\(unitCount) units on \(nodes.count) node\(nodes.count == 1 ? "" : "s") (\(partition ?? "?")): \(doneCount) done, \(remainingCount) remaining"
                    + (quarantinedCount > 0 ? ", \(quarantinedCount) quarantined" : "")
                    + (takenCount > 0 ? "; \(takenCount) of the done units taken over by workers of other shares (balancing)" : ""))
            let nodeWidth = max(4, String(nodes.count - 1).count + 5)
            if terminal {
                let barWidth = max(10, min(40, width - nodeWidth - 44))
                for counts in nodes {
                    let filled = counts.total == 0 ? barWidth : counts.done * barWidth / counts.total
                    let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: barWidth - filled)
                    lines.append(
                        pad("node \(counts.node)", nodeWidth) + " \(bar) \(counts.done)/\(counts.total) done, \(counts.remaining) left"
                            + (counts.quarantined > 0 ? ", \(counts.quarantined) quarantined" : "")
                            + Self.takenText(counts).map { ", \($0)" }.unwrapped
                            + nodeETA(counts).map { ", \($0)" }.unwrapped)
                }
            } else {
                let columns = ["done", "by others", "remaining", "quarantined", "total", "units/h", "p50", "p90", "eta"]
                lines.append(pad("node", nodeWidth) + " " + columns.map { pad($0, 11, right: true) }.joined(separator: " "))
                for counts in nodes {
                    let values = [
                        String(counts.done), String(counts.taken), String(counts.remaining), String(counts.quarantined), String(counts.total),
                        counts.estimate.map { Self.rate($0.unitsPerHour) } ?? "-", counts.estimate.map { TimeSpan.format($0.p50) } ?? "-",
                        counts.estimate.map { TimeSpan.format($0.p90) } ?? "-", nodeETA(counts) ?? "-",
                    ]
                    lines.append(pad(String(counts.node), nodeWidth) + " " + values.map { pad($0, 11, right: true) }.joined(separator: " "))
                }
                for counts in nodes where counts.taken > 0 {
                    lines.append("node \(counts.node): " + Self.takenText(counts)!)
                }
            }
            lines.append(estimateLine)
            for unit in quarantined.prefix(20) {
                lines.append(
                    "quarantined: \(unit.unit) (node \(unit.node)): begun \(unit.attempts) times without finishing"
                        + (unit.record?["quarantined_at"]?.number).map { ", set aside \(Self.clock($0, now: gatheredAt))" }.unwrapped
                        + "; put it back with: gstop release --state \(path) \(unit.unit)")
            }
            if quarantined.count > 20 { lines.append("quarantined: \(quarantined.count - 20) more (gstop status --json lists them all)") }
        }
        lines.append(
            "run.done: \(runDone ? "yes" : runDoneProblem.map { "no (a run.done is there but ignored: \($0))" } ?? "no")"
                + (runQuarantined ? "; run.quarantined: yes (every other unit is done)" : "")
                + (studyDone ? "; study.done: yes" : ""))
        for (file, request) in stopRequests {
            lines.append("\(file): requested \(Self.clock(request.requestedAt, now: gatheredAt)) by \(request.by) (\(request.reason))")
        }
        for bad in badNodes {
            lines.append(
                "bad node \(bad.node): " + bad.units.prefix(5).joined(separator: ", ")
                    + (bad.units.count > 5 ? " and \(bad.units.count - 5) more" : "")
                    + " failed there and were done elsewhere" + (bad.job.map { " (judged by job \($0))" } ?? "")
                    + "; requeues exclude it, its failures count toward no quarantine (delete \(NodeFailures.badDirectory)/\(bad.node).json to trust it again)"
            )
        }
        if let eventsProblem { lines.append("events log: cannot be read: \(eventsProblem)") }
        if let decision = lastDecision {
            let reasons: [String]
            if case .array(let items)? = decision["reasons"] { reasons = items.compactMap(\.string) } else { reasons = [] }
            lines.append(
                "last decision" + (decision["time"]?.number).map { " \(Self.clock($0, now: gatheredAt))" }.unwrapped
                    + ": \(decision["action"]?.string ?? "?") \(decision["target"]?.string ?? "")".trimmingSpaces
                    + " (job \(decision["job"]?.string ?? "?"), node \(decision["node"]?.int ?? 0)): \(reasons.joined(separator: "; "))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// "estimate: units take 3s (p50), 3.1s (p90) in 39 sampled; ..."
    private var estimateLine: String {
        guard let estimate else {
            return remainingCount == 0
                ? "estimate: nothing left to do"
                : "estimate: none yet (no done unit records its duration: units begun through work() or begin_unit() do)"
        }
        var text =
            "estimate: units take \(TimeSpan.format(estimate.p50)) (p50), \(TimeSpan.format(estimate.p90)) (p90), from \(estimate.sampled) sampled;"
            + " \(Self.rate(estimate.unitsPerHour)) units/hour per node"
        if remainingCount == 0 {
            text += "; nothing left to do"
        } else if let eta = etaSeconds {
            text +=
                "; done in ~\(TimeSpan.format(eta)) (\(Self.clock(gatheredAt + eta, now: gatheredAt))) "
                + (balanced
                    ? "if \(nodes.count) worker\(nodes.count == 1 ? "" : "s") share what is left (balancing)"
                    : "if every node with units left works on them")
        }
        return text
    }

    /// "3 done by others (node 0: 2, node 2: 1)".
    static func takenText(_ counts: NodeCounts) -> String? {
        guard counts.taken > 0 else { return nil }
        let own = counts.done - counts.taken
        return "\(own) done by its own worker, \(counts.taken) by others ("
            + counts.takenBy.sorted { $0.key < $1.key }.map { "node \($0.key): \($0.value)" }.joined(separator: ", ") + ")"
    }

    private func nodeETA(_ counts: NodeCounts) -> String? {
        guard counts.remaining > 0 else { return counts.total > 0 ? "done" : nil }
        guard let estimate = counts.estimate ?? estimate else { return nil }
        return "~" + TimeSpan.format(estimate.secondsToFinish(remaining: counts.remaining))
    }

    /// Units per hour as people read them: "1200", "3.5".
    static func rate(_ value: Double) -> String {
        guard value.isFinite else { return "-" }
        return value >= 100 ? String(Int(saturating: value, rounding: .toNearestOrAwayFromZero)) : String((value * 10).rounded() / 10)
    }

    /// A unix time as a local clock time with its age: "2026-11-27 14:03:12 UTC (5m ago)".
    public static func clock(_ unixSeconds: Double, now: Double) -> String {
        // A time read from a file may be anything: one no calendar holds is said, not converted.
        guard unixSeconds.isFinite, abs(unixSeconds) < 1e12 else { return "at an impossible time (\(unixSeconds))" }
        var seconds = time_t(Int(saturating: unixSeconds, rounding: .down))
        var parts = tm()
        guard localtime_r(&seconds, &parts) != nil else { return "at an impossible time (\(unixSeconds))" }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S %Z", &parts)
        let text = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let offset = unixSeconds - now
        if abs(offset) < 1 { return "at \(text) (now)" }
        return "at \(text) (" + (offset < 0 ? "\(TimeSpan.format(-offset.rounded())) ago" : "in \(TimeSpan.format(offset.rounded()))") + ")"
    }

    /// The same as one JSON object.
    public func json() -> String {
        func seconds(_ estimate: UnitEstimate?) -> JSONValue {
            estimate.map {
                .object([("p50", .number(Self.rounded($0.p50))), ("p90", .number(Self.rounded($0.p90))), ("sampled", .number(Double($0.sampled)))])
            } ?? .null
        }
        func perHour(_ estimate: UnitEstimate?) -> JSONValue { estimate.map { .number(Self.rounded($0.unitsPerHour)) } ?? .null }
        let eta = etaSeconds
        let nodeObjects: [JSONValue] = nodes.map { counts in
            let left: JSONValue
            if counts.remaining == 0 {
                left = .number(0)
            } else if let estimate = counts.estimate ?? estimate {
                left = .number(Self.rounded(estimate.secondsToFinish(remaining: counts.remaining)))
            } else {
                left = .null
            }
            let fields: [(String, JSONValue)] = [
                ("node", .number(Double(counts.node))), ("done", .number(Double(counts.done))),
                ("remaining", .number(Double(counts.remaining))), ("quarantined", .number(Double(counts.quarantined))),
                ("total", .number(Double(counts.total))), ("unit_seconds", seconds(counts.estimate)),
                ("units_per_hour", perHour(counts.estimate)), ("eta_seconds", left), ("taken", .number(Double(counts.taken))),
                ("taken_by", .object(counts.takenBy.sorted { $0.key < $1.key }.map { (String($0.key), .number(Double($0.value))) })),
            ]
            return .object(fields)
        }
        let quarantinedObjects: [JSONValue] = quarantined.map { unit in
            let fields: [(String, JSONValue)] = [
                ("unit", .string(unit.unit)), ("node", .number(Double(unit.node))), ("attempts", .number(Double(unit.attempts))),
                ("record", unit.record ?? .null),
            ]
            return .object(fields)
        }
        let requestObjects: [JSONValue] = stopRequests.map { entry in
            let fields: [(String, JSONValue)] = [
                ("file", .string(entry.file)), ("requested_at", .number(entry.request.requestedAt)), ("by", .string(entry.request.by)),
                ("reason", .string(entry.request.reason)),
            ]
            return .object(fields)
        }
        var fields: [(String, JSONValue)] = [
            ("state", .string(path)), ("partition", partition.map { .string($0) } ?? .null),
            ("units", .number(Double(unitCount))), ("done", .number(Double(doneCount))), ("remaining", .number(Double(remainingCount))),
            ("taken", .number(Double(takenCount))), ("balanced", .bool(balanced)),
            ("unit_seconds", seconds(estimate)), ("units_per_hour", perHour(estimate)),
        ]
        fields.append(("eta_seconds", eta.map { .number(Self.rounded($0)) } ?? .null))
        fields.append(("eta_at", eta.map { .number(Self.rounded(gatheredAt + $0)) } ?? .null))
        fields.append(("nodes", .array(nodeObjects)))
        fields.append(("quarantined", .array(quarantinedObjects)))
        fields.append(
            (
                "bad_nodes",
                .array(
                    badNodes.map { bad in
                        .object([
                            ("node", .string(bad.node)), ("units", .array(bad.units.map { .string($0) })),
                            ("job", bad.job.map { .string($0) } ?? .null),
                        ])
                    })
            ))
        if let runDoneProblem { fields.append(("run_done_ignored", .string(runDoneProblem))) }
        fields += [("run_done", .bool(runDone)), ("run_quarantined", .bool(runQuarantined)), ("study_done", .bool(studyDone))]
        fields.append(("stop_requests", .array(requestObjects)))
        fields.append(("last_decision", lastDecision ?? .null))
        if let eventsProblem { fields.append(("events_problem", .string(eventsProblem))) }
        fields.append(("requeue_failed", requeueFailed ?? .null))
        fields.append(("gathered_at", .number(Self.rounded(gatheredAt))))
        var writer = JSONWriter()
        writer.value(.object(fields))
        return String(decoding: writer.bytes, as: UTF8.self) + "\n"
    }

    private static func rounded(_ value: Double) -> Double { value.isFinite ? (value * 1000).rounded() / 1000 : 0 }

    private func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return right ? padding + text : text + padding
    }
}

extension Optional where Wrapped == String {
    fileprivate var unwrapped: String { self ?? "" }
}
