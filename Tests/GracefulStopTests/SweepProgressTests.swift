import Testing

@testable import GracefulStop

/// SweepProgress.finished as a table: events.jsonl lines in, what one attempt finished out.
@Suite struct SweepProgressTests {
    static func line(_ count: Int, attempt: String = "100.5", what: String = "trial", event: String = SweepProgress.event) -> JSONValue {
        .object([("event", .string(event)), ("count", .number(Double(count))), ("what", .string(what)), ("attempt_start", .string(attempt))])
    }

    static let rows: [(name: String, events: [JSONValue], count: Int?, what: String)] = [
        ("nothing reported: unknown, not idle", [], nil, "trial"),
        ("other events do not count", [line(3, event: "child_exit"), line(1, event: "process_stop")], nil, "trial"),
        ("reported and finished nothing: 0 (idle)", [line(0)], 0, "trial"),
        ("the start line and three trials", [line(0), line(1), line(1), line(1)], 3, "trial"),
        ("another attempt's lines are not this one's", [line(0, attempt: "99.1"), line(1, attempt: "99.1"), line(0)], 0, "trial"),
        ("what it counts comes from the lines", [line(0, what: "episode"), line(2, what: "episode")], 2, "episode"),
        ("a negative count in a hand-edited log counts as none", [line(0), line(-5)], 0, "trial"),
    ]

    @Test(arguments: rows.indices)
    func finished(_ index: Int) {
        let row = Self.rows[index]
        let result = SweepProgress.finished(in: row.events, attemptStart: "100.5")
        #expect(result?.count == row.count, "\(row.name)")
        if row.count != nil { #expect(result?.what == row.what, "\(row.name)") }
    }
}
