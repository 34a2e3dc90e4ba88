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
        var builder = Builder()
        for line in events { builder.add(line) }
        return builder.rows()
    }

    /// Rows built one line at a time, oldest line first: a log of a million lines is never held
    /// whole, only its attempts.
    public struct Builder {
        private struct Attempt: Hashable {
            var job: String
            var node: Int
            var restart: Int
        }
        private struct Chain: Hashable {
            var job: String
            var node: Int
        }
        private var found: [Row] = []
        private var index: [Attempt: Int] = [:]
        /// Each job and node's latest restart seen: a decision line names no restart.
        private var latest: [Chain: Int] = [:]

        public init() {}

        /// The row an attempt's line belongs to: its restart's, created on first sight.
        private mutating func row(_ chain: Chain, restart: Int) -> Int {
            let id = Attempt(job: chain.job, node: chain.node, restart: restart)
            if let at = index[id] { return at }
            found.append(Row(job: chain.job, node: chain.node, restart: restart))
            index[id] = found.count - 1
            return found.count - 1
        }

        public mutating func add(_ line: JSONValue) {
            let chain = Chain(job: line["job"]?.string ?? "?", node: line["node"]?.int ?? 0)
            switch line["event"]?.string {
            case "attempt_start":
                guard let restart = line["restart"]?.int else { return }
                let at = row(chain, restart: restart)
                found[at].start = line["time"]?.number
                found[at].host = line["host"]?.string
                latest[chain] = restart
            case "child_exit":
                guard let restart = line["restart"]?.int else { return }
                let at = row(chain, restart: restart)
                found[at].end = line["time"]?.number
                found[at].host = found[at].host ?? line["host"]?.string
                found[at].cause = line["cause"]?.string
                found[at].route = line["route"]?.string
                found[at].exit = line["exit"]?.int
                found[at].marked = line["marked"]?.int
                found[at].quarantined = line["quarantined"]?.int
                found[at].budget = line["budget"]?.string
                latest[chain] = restart
            case "decision":
                guard let restart = latest[chain], let at = index[Attempt(job: chain.job, node: chain.node, restart: restart)],
                    found[at].decision == nil
                else { return }
                found[at].decision = line["action"]?.string
                found[at].decisionExit = line["exit"]?.int
            default:
                return
            }
        }

        /// The rows by start (an attempt without one by its end), then job, node and restart. The
        /// builder is spent: its rows are sorted in place, not copied.
        public mutating func rows() -> [Row] {
            index = [:]
            latest = [:]
            var rows = found
            found = []
            rows.sort { ($0.start ?? $0.end ?? 0, $0.job, $0.node, $0.restart) < ($1.start ?? $1.end ?? 0, $1.job, $1.node, $1.restart) }
            return rows
        }
    }

    /// The rows as a table for people.
    public static func table(_ rows: [Row]) -> String {
        var text = ""
        table(rows) { text += $0 }
        return text
    }

    /// The rows as a table for people, handed to `write` a piece at a time: the cells are made
    /// twice (once for the widths) rather than held for a history of a million attempts.
    public static func table(_ rows: [Row], write: (String) -> Void) {
        let header = ["job", "node", "restart", "host", "start (UTC)", "duration", "exit", "decision", "marked", "quarantined", "ended"]
        // The long "ended" column goes last: the others are aligned, it runs on.
        func cells(_ row: Row) -> [String] {
            [
                row.job, String(row.node), String(row.restart), row.host ?? "-", row.start.map(Self.utc) ?? "-",
                row.duration.map(TimeSpan.format) ?? (row.end == nil ? "running" : "-"), row.exit.map(String.init) ?? "-",
                row.decision.map { $0 + (row.decisionExit.map { " (\($0))" } ?? "") } ?? "-",
                row.marked.map(String.init) ?? "-", row.quarantined.map(String.init) ?? "-",
                row.cause.map { $0 + (row.route.map { " [\($0)]" } ?? "") } ?? "-",
            ]
        }
        var widths = header.map(\.count)
        for row in rows {
            for (column, cell) in cells(row).enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var piece = ""
        func line(_ cells: [String]) {
            for (column, cell) in cells.enumerated() {
                piece += column == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }
            piece += "\n"
            if piece.utf8.count >= 1 << 16 {
                write(piece)
                piece = ""
            }
        }
        line(header)
        for row in rows { line(cells(row)) }
        write(piece)
    }

    /// The rows as one JSON object (`gstop history --json`), with a newline.
    public static func jsonText(_ rows: [Row], skippedLines: Int) -> String {
        var text = ""
        jsonText(rows, skippedLines: skippedLines) { text += String(decoding: $0, as: UTF8.self) }
        return text
    }

    /// The same, handed to `write` a piece at a time (one row's object made at a time).
    public static func jsonText(_ rows: [Row], skippedLines: Int, write: ([UInt8]) -> Void) {
        var writer = JSONWriter()
        writer.raw("{\"attempts\": [")
        for (index, row) in rows.enumerated() {
            if index > 0 { writer.raw(", ") }
            writer.value(json(row))
            if writer.bytes.count >= 1 << 16 {
                write(writer.bytes)
                writer = JSONWriter()
            }
        }
        writer.raw("], \"skipped_lines\": ")
        writer.value(.number(Double(skippedLines)))
        writer.raw("}\n")
        write(writer.bytes)
    }

    static func json(_ rows: [Row], skippedLines: Int) -> JSONValue {
        .object([("attempts", .array(rows.map(json))), ("skipped_lines", .number(Double(skippedLines)))])
    }

    static func json(_ row: Row) -> JSONValue {
        func number(_ value: Double?) -> JSONValue { value.map { .number(($0 * 1000).rounded() / 1000) } ?? .null }
        func integer(_ value: Int?) -> JSONValue { value.map { .number(Double($0)) } ?? .null }
        func text(_ value: String?) -> JSONValue { value.map { .string($0) } ?? .null }
        return .object([
            ("job", .string(row.job)), ("node", .number(Double(row.node))), ("restart", .number(Double(row.restart))),
            ("host", text(row.host)), ("start", number(row.start)), ("end", number(row.end)), ("duration", number(row.duration)),
            ("cause", text(row.cause)), ("route", text(row.route)), ("exit", integer(row.exit)), ("outcome", .string(row.outcome)),
            ("decision", text(row.decision)), ("decision_exit", integer(row.decisionExit)), ("marked", integer(row.marked)),
            ("quarantined", integer(row.quarantined)), ("budget", text(row.budget)),
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
