import Glibc

/// The attempts of a run, one row each, from the lines of events.jsonl: a pure function (tested
/// as a table, RunHistoryTests), read by `gstop history` and `gstop report`.
///
/// An attempt is one `gstop run`'s command of one job (or local run) at one restart: its
/// `attempt_start` line, its `child_exit` line and the `decision` that followed. Lines of an
/// attempt that never ended (gstop killed, or still running) make a row without an end.
public enum RunHistory {
    public struct Row: Equatable, Sendable {
        /// The job (SLURM job id, ARRAY_TASK, or a local run's name) and gstop's node.
        public var job: String
        public var node: Int
        public var restart: Int
        public var host: String?
        public var start: Double?
        public var end: Double?
        /// Why it ended ("stopped by SIGUSR1 (the time-limit warning)"), with its route, and how.
        public var cause: String?
        public var route: String?
        public var exit: Int?
        /// What gstop decided: finish, requeue, stop, slurm_requeued; and its exit code.
        public var decision: String?
        public var decisionExit: Int?
        public var marked: Int?
        public var quarantined: Int?
        /// preemption or restart: what a requeue after it was counted against.
        public var budget: String?

        public var duration: Double? {
            guard let start, let end else { return nil }
            return max(0, end - start)
        }

        /// A class for how the attempt ended: done, warning (time-limit warning, deadline),
        /// timelimit, preempted, nodefail, cancelled, failed, stopped, running.
        public var outcome: String {
            if end == nil { return "running" }
            if decision == "finish" { return "done" }
            let text = cause ?? ""
            if text.hasPrefix("preempted") || text.hasPrefix("SLURM requeued") { return "preempted" }
            if text.hasPrefix("a node of the job failed") { return "nodefail" }
            if text.hasPrefix("stopped by the time limit") { return "timelimit" }
            if text.includes("time-limit warning") || text.includes("deadline") { return "warning" }
            if text.hasPrefix("cancelled") || text.hasPrefix("interrupted") { return "cancelled" }
            if text.hasPrefix("the command ended on its own"), (exit ?? 0) != 0 { return "failed" }
            return "stopped"
        }
    }

    public static func rows(_ events: [JSONValue]) -> [Row] {
        var rows: [Row] = []
        var index: [String: Int] = [:]
        func key(_ line: JSONValue, restart: Int) -> String { "\(line["job"]?.string ?? "?")\u{0}\(line["node"]?.int ?? 0)\u{0}\(restart)" }
        /// The row an attempt's line belongs to: its restart's, created on first sight.
        func row(for line: JSONValue, restart: Int) -> Int {
            let id = key(line, restart: restart)
            if let found = index[id] { return found }
            rows.append(Row(job: line["job"]?.string ?? "?", node: line["node"]?.int ?? 0, restart: restart))
            index[id] = rows.count - 1
            return rows.count - 1
        }
        /// Each job and node's latest restart seen: a decision line names no restart.
        var latest: [String: Int] = [:]
        for line in events {
            let chain = "\(line["job"]?.string ?? "?")\u{0}\(line["node"]?.int ?? 0)"
            switch line["event"]?.string {
            case "attempt_start":
                guard let restart = line["restart"]?.int else { continue }
                let at = row(for: line, restart: restart)
                rows[at].start = line["time"]?.number
                rows[at].host = line["host"]?.string
                latest[chain] = restart
            case "child_exit":
                guard let restart = line["restart"]?.int else { continue }
                let at = row(for: line, restart: restart)
                rows[at].end = line["time"]?.number
                rows[at].host = rows[at].host ?? line["host"]?.string
                rows[at].cause = line["cause"]?.string
                rows[at].route = line["route"]?.string
                rows[at].exit = line["exit"]?.int
                rows[at].marked = line["marked"]?.int
                rows[at].quarantined = line["quarantined"]?.int
                rows[at].budget = line["budget"]?.string
                latest[chain] = restart
            case "decision":
                guard let restart = latest[chain], let at = index[key(line, restart: restart)], rows[at].decision == nil else { continue }
                rows[at].decision = line["action"]?.string
                rows[at].decisionExit = line["exit"]?.int
            default:
                continue
            }
        }
        return rows.sorted { ($0.start ?? $0.end ?? 0, $0.job, $0.node, $0.restart) < ($1.start ?? $1.end ?? 0, $1.job, $1.node, $1.restart) }
    }

    /// The rows as a table for people.
    public static func table(_ rows: [Row]) -> String {
        let header = ["job", "node", "restart", "host", "start (UTC)", "duration", "ended", "exit", "decision", "marked", "quarantined"]
        let body: [[String]] = rows.map { row in
            [
                row.job, String(row.node), String(row.restart), row.host ?? "-", row.start.map(Self.utc) ?? "-",
                row.duration.map(TimeSpan.format) ?? (row.end == nil ? "running" : "-"),
                row.cause.map { $0 + (row.route.map { " [\($0)]" } ?? "") } ?? "-", row.exit.map(String.init) ?? "-",
                row.decision.map { $0 + (row.decisionExit.map { " (\($0))" } ?? "") } ?? "-",
                row.marked.map(String.init) ?? "-", row.quarantined.map(String.init) ?? "-",
            ]
        }
        // The long "ended" column goes last: the others are aligned, it runs on.
        let order = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 6]
        let lines = ([header] + body).map { cells in order.map { cells[$0] } }
        let widths = order.indices.map { column in lines.map { $0[column].count }.max() ?? 0 }
        return lines.map { cells in
            cells.indices.map { column in
                column == cells.count - 1 ? cells[column] : cells[column] + String(repeating: " ", count: widths[column] - cells[column].count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// The rows as one JSON object (`gstop history --json`), with a newline.
    public static func jsonText(_ rows: [Row], skippedLines: Int) -> String {
        var writer = JSONWriter()
        writer.value(json(rows, skippedLines: skippedLines))
        writer.raw("\n")
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    static func json(_ rows: [Row], skippedLines: Int) -> JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map { .number(($0 * 1000).rounded() / 1000) } ?? .null }
        func integer(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        return .object([
            (
                "attempts",
                .array(
                    rows.map { row in
                        .object([
                            ("job", .string(row.job)), ("node", .number(Double(row.node))), ("restart", .number(Double(row.restart))),
                            ("host", text(row.host)), ("start", number(row.start)), ("end", number(row.end)), ("duration", number(row.duration)),
                            ("cause", text(row.cause)), ("route", text(row.route)), ("exit", integer(row.exit)), ("outcome", .string(row.outcome)),
                            ("decision", text(row.decision)), ("decision_exit", integer(row.decisionExit)), ("marked", integer(row.marked)),
                            ("quarantined", integer(row.quarantined)), ("budget", text(row.budget)),
                        ])
                    })
            ),
            ("skipped_lines", .number(Double(skippedLines))),
        ])
    }

    /// "2026-12-05 13:58:02"
    static func utc(_ seconds: Double) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return
            "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }
}
