import Glibc

/// `gstop report`: one self-contained HTML file about a run — no script, no font, nothing fetched:
/// the pictures are inline SVG, so it opens in any browser straight from the shared filesystem.
/// Written in Swift, by the library, from the state alone: gstop is on every node and needs no
/// Python, and the numbers are the ones `gstop status` shows (the same `StatusReport`, which
/// samples markers rather than reading them all, so a run of a million units costs what a status
/// costs) plus the attempts of `gstop history`.
///
/// What it shows: the counts; a timeline with one lane per job (array task) and node and one bar
/// per attempt, coloured by how it ended, requeues as the gaps between bars; units done over time
/// (exact at each attempt's end, from events.jsonl) with the line the current rate draws to the
/// estimated end; the distribution of sampled unit times with p50 and p90 and the slowest sampled
/// units by name; the quarantined units with their attempts and the command that puts each back;
/// bad nodes; and for a sweep, what each worker finished over time.
public struct RunReport {
    public var status: StatusReport
    public var history: [RunHistory.Row]
    public var skippedLines: Int
    /// `work_finished` lines of a sweep: when, which node, how many, of what.
    public var finished: [(time: Double, worker: String, count: Int, what: String)]
    public var now: Double

    /// Reads the state at `path`.
    public static func gather(path: String) throws -> RunReport {
        let status = try StatusReport.gather(path: path)
        // One pass forward over the log, holding the attempts and a sweep's counts, not its lines.
        var builder = RunHistory.Builder()
        var skipped = 0
        var finished: [(Double, String, Int, String)] = []
        try EventLog.scan(from: Directory(opening: path)) { line in
            guard let line else {
                skipped += 1
                return
            }
            builder.add(line)
            if line["event"]?.string == SweepProgress.event, let time = line["time"]?.number, let count = line["count"]?.int, count > 0 {
                finished.append((time, "\(line["job"]?.string ?? "local") node \(line["node"]?.int ?? 0)", count, line["what"]?.string ?? "trial"))
            }
        }
        return RunReport(status: status, history: builder.rows(), skippedLines: skipped, finished: finished, now: status.gatheredAt)
    }

    /// Writes `html` to `path` whole (a temporary file renamed into place): a reader never sees half.
    public static func write(_ html: String, to path: String) throws {
        let slash = path.lastIndex(of: "/")
        let folder = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        try Directory(opening: folder.isEmpty ? "/" : folder).writeAtomically(name, Array(html.utf8))
    }

    /// The colour class of each way an attempt ends, with its legend text.
    static let outcomes: [(name: String, label: String)] = [
        ("done", "finished the work"), ("warning", "time-limit warning or deadline"), ("timelimit", "the time limit"),
        ("preempted", "preempted"), ("nodefail", "node failure"), ("cancelled", "cancelled or interrupted"),
        ("failed", "failed"), ("stopped", "stopped otherwise"), ("running", "running (or its gstop was killed)"),
    ]

    public func html() -> String {
        var page = HTMLPage(title: "gracefulstop report: \(status.path)")
        page.add("<h1>gracefulstop report</h1>")
        page.add("<p class=\"meta\">state <code>\(HTMLPage.escape(status.path))</code>, \(HTMLPage.escape(RunHistory.utc(now))) UTC")
        if skippedLines > 0 {
            page.add(
                "; \(skippedLines) line\(skippedLines == 1 ? "" : "s") of events.jsonl did not parse and \(skippedLines == 1 ? "was" : "were") skipped"
            )
        }
        page.add("</p>")
        summary(&page)
        timeline(&page)
        if status.unitCount > 0 { progress(&page) }
        unitTimes(&page)
        quarantine(&page)
        badNodes(&page)
        if !finished.isEmpty { sweep(&page) }
        return page.text()
    }

    private func summary(_ page: inout HTMLPage) {
        let status = self.status
        var cells: [(String, String, String)] = []
        if status.unitCount > 0 {
            cells = [
                ("units", "units", String(status.unitCount)), ("done", "done", String(status.doneCount)),
                ("remaining", "remaining", String(status.remainingCount)), ("quarantined", "quarantined", String(status.quarantinedCount)),
            ]
        }
        cells.append(("attempts", "attempts", String(history.count)))
        page.add("<section id=\"summary\"><div class=\"cards\">")
        for (id, label, value) in cells {
            page.add("<div class=\"card\"><div class=\"value\" id=\"\(id)\">\(value)</div><div class=\"label\">\(label)</div></div>")
        }
        page.add("</div><p>")
        var facts: [String] = []
        if status.runDone { facts.append("<b>run.done</b>: every unit is done") }
        if status.runQuarantined { facts.append("<b>run.quarantined</b>: every other unit is done") }
        if status.studyDone { facts.append("<b>study.done</b>") }
        if let estimate = status.estimate {
            facts.append(
                "units take \(TimeSpan.format(estimate.p50)) (p50) and \(TimeSpan.format(estimate.p90)) (p90), from \(estimate.sampled) sampled")
        }
        if status.remainingCount > 0, let eta = status.etaSeconds {
            facts.append(
                "done in ~\(TimeSpan.format(eta.rounded())), \(HTMLPage.escape(RunHistory.utc(now + eta))) UTC, if every share with units left is worked on"
            )
        }
        page.add(facts.joined(separator: "; ") + "</p></section>")
    }

    /// One lane per job and node, one bar per attempt.
    /// The most attempts the timeline draws: a big array after many requeues has hundreds of
    /// thousands, which no page can show as bars (`gstop history` lists them all).
    static let timelineLimit = 5000

    private func timeline(_ page: inout HTMLPage) {
        page.add("<section id=\"timeline\"><h2>Attempts</h2>")
        let history = self.history.suffix(Self.timelineLimit)  // the newest (rows are by start)
        guard let first = history.compactMap({ $0.start ?? $0.end }).min() else {
            page.add("<p>No attempt recorded yet (events.jsonl has none).</p></section>")
            return
        }
        if history.count < self.history.count {
            page.add(
                "<p>The last \(history.count) of \(self.history.count) attempts; <code>gstop history</code> lists every one.</p>")
        }
        let last = max(history.compactMap { $0.end ?? $0.start }.max() ?? first, history.contains { $0.end == nil } ? now : first)
        let span = max(1, last - first)
        var lanes: [String] = []
        var laneOf: [String: Int] = [:]
        for row in history where laneOf["\(row.job) node \(row.node)"] == nil {
            laneOf["\(row.job) node \(row.node)"] = lanes.count
            lanes.append("\(row.job) node \(row.node)")
        }
        let laneHeight = 22.0
        let left = 170.0
        let width = 900.0
        var chart = SVGChart(width: left + width + 20, height: Double(lanes.count) * laneHeight + 40, label: "attempts on a timeline")
        for (index, lane) in lanes.enumerated() {
            chart.text(x: left - 8, y: Double(index) * laneHeight + 15, lane, anchor: "end", className: "lane")
        }
        for row in history {
            let lane = laneOf["\(row.job) node \(row.node)"]!
            let start = row.start ?? row.end!
            let end = row.end ?? now
            let x = left + (start - first) / span * width
            let barWidth = max(2, (end - start) / span * width)
            let tip =
                "\(row.job) node \(row.node), restart \(row.restart): \(RunHistory.utc(start)) UTC, "
                + (row.duration.map(TimeSpan.format) ?? "running") + "; " + (row.cause ?? "no end recorded")
                + (row.decision.map { "; decision: \($0)" } ?? "") + (row.marked.map { "; \($0) units marked" } ?? "")
            chart.rect(
                x: x, y: Double(lane) * laneHeight + 3, width: barWidth, height: laneHeight - 6,
                className: "attempt \(row.outcome)", tip: tip, data: ["restart": String(row.restart), "outcome": row.outcome])
        }
        chart.timeAxis(left: left, width: width, y: Double(lanes.count) * laneHeight + 8, from: first, to: last)
        page.add(chart.text())
        page.add(
            "<ul class=\"legend\">"
                + Self.outcomes.filter { outcome in history.contains { $0.outcome == outcome.name } }.map {
                    "<li><span class=\"swatch \($0.name)\"></span>\($0.label)</li>"
                }.joined() + "</ul></section>")
    }

    /// Units done at each attempt's end (exact), and the line to the estimated end.
    private func progress(_ page: inout HTMLPage) {
        page.add("<section id=\"progress\"><h2>Units done over time</h2>")
        var points: [(Double, Int)] = []
        var total = 0
        for row in history.sorted(by: { ($0.end ?? .infinity) < ($1.end ?? .infinity) }) {
            guard let end = row.end, let marked = row.marked else { continue }
            total += marked
            points.append((end, total))
        }
        if let start = history.compactMap(\.start).min() { points.insert((start, 0), at: 0) }
        let done = status.doneCount
        points.append((now, max(done, total)))
        guard let first = points.first?.0 else {
            page.add("</section>")
            return
        }
        var projected: (Double, Int)? = nil
        if status.remainingCount > 0, let eta = status.etaSeconds { projected = (now + eta, done + status.remainingCount) }
        let last = max(projected?.0 ?? now, now)
        let left = 70.0
        let width = 900.0
        let height = 220.0
        var chart = SVGChart(width: left + width + 20, height: height + 40, label: "units done over time")
        let top = Double(status.unitCount)
        func x(_ time: Double) -> Double { left + (time - first) / max(1, last - first) * width }
        func y(_ count: Int) -> Double { 10 + height - Double(count) / max(1, top) * height }
        chart.polyline(points.map { (x($0.0), y($0.1)) }, className: "done-line")
        if let projected { chart.polyline([(x(now), y(done)), (x(projected.0), y(projected.1))], className: "estimate-line") }
        chart.line(x1: left, y1: y(status.unitCount), x2: left + width, y2: y(status.unitCount), className: "total-line")
        chart.text(x: left - 6, y: y(status.unitCount) + 4, String(status.unitCount), anchor: "end", className: "axis")
        chart.text(x: left - 6, y: y(0) + 4, "0", anchor: "end", className: "axis")
        chart.timeAxis(left: left, width: width, y: height + 18, from: first, to: last)
        page.add(chart.text())
        page.add(
            "<p class=\"note\">Solid: units done, exact at the end of each attempt (events.jsonl) and now (\(done)). "
                + (projected != nil ? "Dashed: the rest at the sampled unit time, every share with units left at work. " : "")
                + "Grey: all \(status.unitCount) units.</p></section>")
    }

    /// A histogram of the sampled unit times, p50 and p90 marked, and the slowest sampled units.
    private func unitTimes(_ page: inout HTMLPage) {
        let seconds = status.sampledUnits.map(\.seconds).sorted()
        guard !seconds.isEmpty, let estimate = status.estimate else { return }
        page.add("<section id=\"unit-times\"><h2>Unit times</h2>")
        let bins = 24
        let high = max(seconds.last! * 1.1, 0.001)  // room right of the longest
        var counts = [Int](repeating: 0, count: bins)
        for value in seconds { counts[min(bins - 1, Swift.max(0, Int(saturating: value / high * Double(bins))))] += 1 }
        let left = 50.0
        let width = 900.0
        let height = 160.0
        var chart = SVGChart(width: left + width + 20, height: height + 44, label: "distribution of unit times")
        let tallest = Double(counts.max() ?? 1)
        for (bin, count) in counts.enumerated() where count > 0 {
            let barHeight = Double(count) / tallest * height
            chart.rect(
                x: left + Double(bin) * width / Double(bins) + 1, y: 10 + height - barHeight, width: width / Double(bins) - 2,
                height: barHeight, className: "bin",
                tip:
                    "\(count) unit\(count == 1 ? "" : "s") of \(TimeSpan.format(Double(bin) * high / Double(bins)))-\(TimeSpan.format(Double(bin + 1) * high / Double(bins)))"
            )
        }
        for (index, (name, value)) in [("p50", estimate.p50), ("p90", estimate.p90)].enumerated() {
            let at = left + min(1, value / high) * width
            chart.line(x1: at, y1: 6, x2: at, y2: height + 10, className: "marker \(name)")
            chart.text(x: at - 4, y: 18 + Double(index) * 14, "\(name) \(TimeSpan.format(value))", anchor: "end", className: "axis")
        }
        chart.text(x: left, y: height + 30, "0", anchor: "start", className: "axis")
        chart.text(x: left + width, y: height + 30, TimeSpan.format(high), anchor: "end", className: "axis")
        page.add(chart.text())
        let slowest = status.sampledUnits.sorted { $0.seconds > $1.seconds }.prefix(10)
        page.add(
            "<p class=\"note\">\(seconds.count) units sampled (as <code>gstop status</code> samples them). The slowest:</p><table id=\"slowest\"><tr><th>unit</th><th>time</th><th>ended (UTC)</th></tr>"
        )
        for unit in slowest {
            page.add(
                "<tr><td><code>\(HTMLPage.escape(unit.unit))</code></td><td>\(TimeSpan.format(unit.seconds))</td><td>\(RunHistory.utc(unit.ended))</td></tr>"
            )
        }
        page.add("</table></section>")
    }

    private func quarantine(_ page: inout HTMLPage) {
        guard !status.quarantined.isEmpty else { return }
        page.add(
            "<section id=\"quarantine\"><h2>Quarantined units</h2><table><tr><th>unit</th><th>share</th><th>attempts</th><th>put it back</th></tr>")
        for unit in status.quarantined {
            var attempts: [String] = []
            if case .array(let items)? = unit.record?["attempts"] {
                attempts = items.map { item in
                    "restart \(item["restart"]?.int.map(String.init) ?? "?") on \(item["slurm_node"]?.string ?? item["host"]?.string ?? "?")"
                        + (item["job"]?.string.map { " (job \($0))" } ?? "")
                }
            }
            page.add(
                "<tr class=\"quarantined\"><td><code>\(HTMLPage.escape(unit.unit))</code></td><td>\(unit.node)</td><td>\(HTMLPage.escape(attempts.joined(separator: "; ")))</td>"
                    + "<td><code>gstop release --state \(HTMLPage.escape(HTMLPage.shellQuoted(status.path))) \(HTMLPage.escape(HTMLPage.shellQuoted(unit.unit)))</code></td></tr>"
            )
        }
        page.add("</table></section>")
    }

    private func badNodes(_ page: inout HTMLPage) {
        guard !status.badNodes.isEmpty else { return }
        page.add("<section id=\"bad-nodes\"><h2>Bad nodes</h2><ul>")
        for bad in status.badNodes {
            page.add(
                "<li><b>\(HTMLPage.escape(bad.node))</b>: \(HTMLPage.escape(bad.units.joined(separator: ", "))) failed there and were done elsewhere; requeues exclude it</li>"
            )
        }
        page.add("</ul></section>")
    }

    /// What each worker of a sweep finished, over time.
    private func sweep(_ page: inout HTMLPage) {
        page.add("<section id=\"sweep\"><h2>\(HTMLPage.escape(finished[0].what.capitalizedFirst))s finished over time</h2>")
        let first = finished.map(\.time).min()!
        let last = max(now, finished.map(\.time).max()!)
        var workers: [String] = []
        for item in finished where !workers.contains(item.worker) { workers.append(item.worker) }
        let total = finished.reduce(0) { $0 + $1.count }
        let left = 70.0
        let width = 900.0
        let height = 200.0
        var chart = SVGChart(width: left + width + 20, height: height + 40, label: "work finished per worker")
        func x(_ time: Double) -> Double { left + (time - first) / max(1, last - first) * width }
        func y(_ count: Int) -> Double { 10 + height - Double(count) / Double(max(1, total)) * height }
        var all: [(Double, Double)] = [(x(first), y(0))]
        var sum = 0
        for item in finished.sorted(by: { $0.time < $1.time }) {
            sum += item.count
            all.append((x(item.time), y(sum)))
        }
        chart.polyline(all, className: "done-line")
        for (index, worker) in workers.enumerated() {
            var count = 0
            var points: [(Double, Double)] = [(x(first), y(0))]
            for item in finished.sorted(by: { $0.time < $1.time }) where item.worker == worker {
                count += item.count
                points.append((x(item.time), y(count)))
            }
            chart.polyline(points, className: "worker-line worker\(index % 6)")
        }
        chart.text(x: left - 6, y: y(total) + 4, String(total), anchor: "end", className: "axis")
        chart.timeAxis(left: left, width: width, y: height + 18, from: first, to: last)
        page.add(chart.text())
        page.add(
            "<p class=\"note\" id=\"sweep-total\">\(total) finished in all (the top line), by \(workers.count) worker\(workers.count == 1 ? "" : "s"): "
                + HTMLPage.escape(workers.joined(separator: ", ")) + "</p></section>")
    }
}

extension String {
    fileprivate var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
