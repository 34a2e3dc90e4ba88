import Glibc
import Testing

@testable import GracefulStop

/// The events log read from its end: what an attempt's end and `gstop status` read costs the
/// tail they need, whatever the log's length; torn and overlong lines are skipped.
@Suite struct EventLogTests {
    /// A log of `count` lines (about 3 MB for 20,000: several of the reader's 1 MiB blocks), a torn
    /// line in the middle and an overlong one near the start.
    static func writeLog(_ directory: TemporaryDirectory, count: Int) throws -> Directory {
        let state = try Directory(opening: directory.path)
        var text = ""
        for index in 0..<count {
            if index == 10 { text += "{\"event\": \"huge\", \"x\": \"" + String(repeating: "y", count: 17 << 20) + "\"}\n" }
            if index == count / 2 { text += "{\"time\": 1, \"event\": \"torn\n" }
            text +=
                "{\"time\": \(index), \"event\": \"\(index % 100 == 0 ? "decision" : "tick")\", \"job\": \"j\(index % 7)\", \"n\": \(index), \"pad\": \"\(String(repeating: "p", count: 100))\"}\n"
        }
        try state.writeAtomically(EventLog.fileName, Array(text.utf8))
        return state
    }

    @Test func readBackStopsAtTheLineAskedForAndReturnsTheTailOldestFirst() throws {
        let directory = TemporaryDirectory()
        let state = try Self.writeLog(directory, count: 20_000)
        var seen = 0
        let tail = try EventLog.readBack(
            from: state,
            until: { event in
                seen += 1
                return event["n"]?.int == 12_345
            })
        #expect(tail.map { $0["n"]?.int } == (12_345..<20_000).map { $0 })
        #expect(seen == 20_000 - 12_345)  // nothing before the stop was parsed
        let last = try EventLog.readBack(from: state, until: { $0["event"]?.string == "decision" })
        #expect(last.first?["n"]?.int == 19_900 && last.count == 100)
        // Only one job's lines, by a byte search: the others are never parsed.
        var parsed = 0
        let job = try EventLog.readBack(
            from: state, only: EventLog.jobNeedle("j3"),
            until: { _ in
                parsed += 1
                return false
            })
        #expect(job.count == (0..<20_000).filter { $0 % 7 == 3 }.count && parsed == job.count)
    }

    @Test func everyLineIsCountedAndTornOrOverlongOnesAreSkipped() throws {
        let directory = TemporaryDirectory()
        let state = try Self.writeLog(directory, count: 20_000)
        let read = try EventLog.readCounting(from: state)
        #expect(read.events.count == 20_000 && read.skipped == 2)  // the torn line, the 17 MB one
        #expect(read.events.map { $0["n"]?.int } == (0..<20_000).map { $0 })
        #expect(try EventLog.readBack(from: state, until: { _ in false }).count == 20_000)
        // A last line without its newline (being written) is read, forward as backward.
        let fd = open(directory.path + "/" + EventLog.fileName, O_WRONLY | O_APPEND)
        _ = "{\"event\": \"tail\", \"n\": 20000}".withCString { write(fd, $0, strlen($0)) }
        close(fd)
        #expect(try EventLog.readCounting(from: state).events.last?["n"]?.int == 20_000)
        #expect(try EventLog.readBack(from: state, until: { _ in true }).first?["n"]?.int == 20_000)
    }

    @Test func historyHoldsAttemptsNotLinesAndLastReadsOnlyTheEnd() throws {
        let directory = TemporaryDirectory()
        let state = try Directory(opening: directory.path)
        var text = "{\"time\": 0, \"event\": \"torn\n"
        for index in 0..<5000 {  // two chains of attempts, each start, exit and decision
            let job = "7_\(index % 2)"
            text +=
                "{\"time\": \(index * 10), \"event\": \"attempt_start\", \"job\": \"\(job)\", \"node\": 0, \"restart\": \(index / 2), \"host\": \"h\"}\n"
            text +=
                "{\"time\": \(index * 10 + 5), \"event\": \"child_exit\", \"job\": \"\(job)\", \"node\": 0, \"restart\": \(index / 2), \"exit\": 0, \"marked\": 1}\n"
            text += "{\"time\": \(index * 10 + 6), \"event\": \"decision\", \"job\": \"\(job)\", \"node\": 0, \"action\": \"requeue\", \"exit\": 0}\n"
        }
        try state.writeAtomically(EventLog.fileName, Array(text.utf8))
        let all = try EventLog.history(path: directory.path)
        #expect(all.rows.count == 5000 && all.skipped == 1)
        #expect(all.rows.allSatisfy { $0.decision == "requeue" && $0.duration == 5 && $0.marked == 1 })
        #expect(all.rows.last?.job == "7_1" && all.rows.last?.restart == 2499)
        let last = try EventLog.history(path: directory.path, last: 3)
        #expect(last.rows == Array(all.rows.suffix(3)) && last.skipped == 0)  // the torn line is before them: never read
    }

    @Test(arguments: [
        ("{\"job\": \"7_1\"}", "\"job\": \"7_1\"", true),  // the whole line
        ("{\"time\": 1, \"job\": \"7_12\", \"job\": \"7_1\"}", "\"job\": \"7_1\"", true),  // at the end, after a near miss
        ("{\"job\": \"7_12\"}", "\"job\": \"7_1\"\"", false),
        ("{\"job\": \"7_", "\"job\": \"7_1\"", false),  // cut short
        ("jjjjjob", "job", true),  // the pivot byte again and again
        ("\"event\": \"attempt_start\"", "\"event\": \"attempt_start\"", true),
        ("{\"event\": \"attempt_end\"}", "\"event\": \"attempt_start\"", false),
        ("ab", "abc", false), ("", "a", false), ("abc", "", true), ("xxabc", "abc", true),
    ])
    func aByteSearchFindsTheNeedleWhereverItStands(line: String, needle: String, found: Bool) {
        let bytes = Array(("padding" + line).utf8)
        #expect(EventLog.contains(bytes[7...], Array(needle.utf8)) == found)  // a slice that does not start at 0
    }

    @Test func longTextIsCutAtACharactersEdgeWithANote() throws {
        let long = String(repeating: "é", count: 5000)  // 2 bytes each
        let cut = EventLog.cut(long, to: 4095)
        #expect(cut.hasPrefix(String(repeating: "é", count: 2047)) && cut.includes("(5906 more bytes cut)"))
        #expect(EventLog.cut("short", to: 4096) == "short")
        let directory = TemporaryDirectory()
        let state = try Directory(opening: directory.path)
        try EventLog.append([("event", .string("decision")), ("reasons", .array([.string(String(repeating: "r", count: 10 << 20))]))], in: state)
        let line = try #require(try state.readFile(EventLog.fileName))
        #expect(line.count < 5000)
        let request = StopRequest(requestedAt: 1, by: "h:1", reason: String(repeating: "z", count: 10 << 20))
        try request.write(to: state, job: nil)
        #expect(try StopRequest.read(from: state, fileName: StopRequest.fileName)?.reason.utf8.count ?? .max < 5000)
    }
}
