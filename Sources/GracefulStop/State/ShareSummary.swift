import Glibc

/// `progress/<share>`: how many of a share's units are done, as the last process that marked one of
/// them knew it — written by `mark_done` at most every ten seconds per process and share. A line of
/// progress for a whole run reads these and `complete/` (O(shares) small files), never every marker
/// of every share: a 1,000-task array asking every interval would otherwise list the whole run each
/// time. The figures are a lower bound, a few seconds old; `gstop status` counts markers exactly.
enum ShareSummary {
    static let directoryName = "progress"
    /// A process writes a share's summary at most this often.
    static let intervalNanoseconds: Int64 = 10_000_000_000

    /// "{"done": 12, "total": 100, "at": 1796…, "host": "n3"}".
    static func write(share: Int, done: Int, total: Int, in state: Directory) throws {
        let directory = try state.subdirectory(directoryName, create: true)
        var json = JSONWriter()
        json.value(
            .object([
                ("done", .number(Double(done))), ("total", .number(Double(total))),
                ("at", .number((Clock.unixSeconds() * 1000).rounded() / 1000)), ("host", .string(HostName.current)),
            ]))
        json.raw("\n")
        try directory.writeAtomically(String(share), json.bytes, syncDirectory: false)
    }

    /// What each share's summary says (done, unix time written); a summary that does not parse is left out.
    static func readAll(in state: Directory) throws -> [Int: (done: Int, at: Double)] {
        guard try state.contains(directoryName) else { return [:] }
        let directory = try state.subdirectory(directoryName, create: false)
        try directory.refresh()
        var shares: [Int] = []
        try directory.forEachEntry { name in
            if let share = Int(String(decoding: name, as: UTF8.self)), share >= 0, String(share).utf8.count == name.count { shares.append(share) }
        }
        var found: [Int: (done: Int, at: Double)] = [:]
        for share in shares {
            guard let bytes = try? directory.readFile(String(share), limit: Directory.recordLimit) else { continue }
            var reader = JSONReader(bytes, source: directory.pathOf(String(share)))
            guard let value = try? reader.readValue(), let done = value["done"]?.int, let at = value["at"]?.number else { continue }
            found[share] = (done, at)
        }
        return found
    }
}

/// A run's totals from `complete/` and the share summaries: what one progress line costs.
public struct RunTotals: Sendable, Equatable {
    public var done = 0
    public var total = 0
    public var shares = 0
    public var sharesComplete = 0
    /// Incomplete shares with a summary, and when the oldest of those was written.
    public var sharesReported = 0
    public var oldestReport: Double? = nil

    /// "512,345 of 1,000,000 units done (51 %): 500 of 1,000 shares complete, 480 more reported
    /// (the oldest 12s ago), 20 not yet".
    public func line(now: Double? = nil) -> String {
        let now = now ?? Clock.unixSeconds()
        let percent = total == 0 ? 100 : done * 100 / total
        var text = "\(done) of \(total) units done (\(percent) %): \(sharesComplete) of \(shares) share\(shares == 1 ? "" : "s") complete"
        let unreported = shares - sharesComplete - sharesReported
        if sharesReported > 0 {
            text += ", \(sharesReported) more reported" + (oldestReport.map { " (the oldest \(TimeSpan.format(max(0, now - $0))) ago)" } ?? "")
        }
        if unreported > 0 { text += ", \(unreported) not reported yet (counted as 0 done)" }
        return text
    }
}

extension RunState {
    /// The run's totals from `complete/` and `progress/`: O(shares) small reads; this process's own
    /// share as it knows it (exact once it has listed it).
    public func totals() throws -> RunTotals {
        let files = try requireFiles()
        let partition = files.manifest.partition
        let complete = try NodeCompletion.nodes(in: files.directory)
        let summaries = try ShareSummary.readAll(in: files.directory)
        let own = knowledge.withLock { $0.done[node]?.count }
        var totals = RunTotals(shares: partition.nodes)
        for share in 0..<partition.nodes {
            let count = partition.unitCount(ofNode: share)
            totals.total += count
            if count == 0 || complete.contains(share) {
                totals.done += count
                totals.sharesComplete += 1
            } else if share == node, let own {
                totals.done += min(own, count)
                totals.sharesReported += 1
            } else if let summary = summaries[share] {
                totals.done += min(summary.done, count)
                totals.sharesReported += 1
                totals.oldestReport = min(totals.oldestReport ?? summary.at, summary.at)
            }
        }
        return totals
    }
}
