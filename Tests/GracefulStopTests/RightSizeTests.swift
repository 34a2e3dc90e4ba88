import Testing

@testable import GracefulStop

/// The rule that chooses a requeued job's TimeMin and TimeLimit, as a table.
@Suite struct RightSizeTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var facts: RightSize.Facts
        var timeMin: Int?
        var timeLimit: Int?
        var says: [String]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // The example: 40 s to start, units of 30 s (p90), 40 left, a 4 h limit.
        Case(
            name: "hours asked, minutes left: both lowered",
            facts: .init(timeLimit: 4 * 3600, unitSeconds: 30, unitsSampled: 20, overhead: 40, units: 40),
            // least: 40 s + 12 units x 30 s = 400 s, + 44 s deadline margin -> 8 min;
            // all: 40 + 40 x 30 x 1.25 + 60 = 1600 s, + 60 s -> 28 min.
            timeMin: 8, timeLimit: 28, says: ["TimeLimit 4 h → 28 min", "TimeMin 8 min", "12 units", "overhead 40s", "p90 of 20"]),
        Case(
            name: "the tests' scenario: 20 units of 2 s left of a 60 min limit",
            facts: .init(timeLimit: 3600, unitSeconds: 2, unitsSampled: 10, overhead: 3, units: 20),
            // all: 3 + 20 x 2 x 1.25 + 60 = 113 s, + 12.6 s -> 3 min; least: 3 s + 14 units x 2 s -> 1 min
            timeMin: 1, timeLimit: 3, says: ["TimeLimit 1 h → 3 min", "TimeMin 1 min", "14 units"]),
        Case(
            name: "more work than the limit: the limit is kept, a TimeMin lets backfill start it in a gap",
            facts: .init(timeLimit: 3600, unitSeconds: 60, unitsSampled: 50, overhead: 120, units: 500),
            // least: 120 s + 18 units x 60 s = 1200 s, + 60 s -> 21 min
            timeMin: 21, timeLimit: nil, says: ["TimeLimit 1 h kept", "TimeMin 21 min", "18 units"]),
        Case(
            name: "no measured overhead: a minute is assumed, and said",
            facts: .init(timeLimit: 7200, unitSeconds: 10, unitsSampled: 5, overhead: nil, units: 1000),
            timeMin: 11, timeLimit: nil, says: ["assumed", "54 units"]),
        Case(
            name: "the warning's lead is the window's tail when it was seen",
            facts: .init(timeLimit: 7200, unitSeconds: 10, unitsSampled: 5, overhead: 60, units: 1000, warningLead: 300),
            timeMin: 15, timeLimit: nil, says: ["the warning's 5m"]),
        Case(
            name: "balancing: the run's units over its workers",
            facts: .init(timeLimit: 3600, unitSeconds: 10, unitsSampled: 30, overhead: 10, units: 100, workers: 4),
            // 25 units each: 10 + 25 x 12.5 + 60 = 382.5 s, + 42.5 s -> 8 min
            timeMin: 2, timeLimit: 8, says: ["over 4 workers", "TimeLimit 1 h → 8 min"]),
        Case(
            name: "the least useful window is longer than the limit: no TimeMin",
            facts: .init(timeLimit: 300, unitSeconds: 60, unitsSampled: 9, overhead: 120, units: 100),
            timeMin: nil, timeLimit: nil, says: ["no TimeMin", "(21 min)"]),
        Case(
            name: "the job's own TimeMin is kept when it fits",
            facts: .init(timeLimit: 4 * 3600, timeMin: 10 * 60, unitSeconds: 30, unitsSampled: 20, overhead: 40, units: 1000),
            timeMin: nil, timeLimit: nil, says: ["TimeMin 10 min kept (the job has it already)"]),
        Case(
            name: "the job's own TimeMin above the lowered limit comes down with it",
            facts: .init(timeLimit: 4 * 3600, timeMin: 3 * 3600, unitSeconds: 30, unitsSampled: 20, overhead: 40, units: 40),
            timeMin: 8, timeLimit: 28, says: ["TimeMin 8 min"]),
        Case(
            name: "an unlimited job gets a TimeMin only",
            facts: .init(timeLimit: nil, unitSeconds: 30, unitsSampled: 20, overhead: 40, units: 40),
            timeMin: 8, timeLimit: nil, says: ["TimeLimit unlimited kept"]),
        Case(
            name: "no durations yet: nothing changes",
            facts: .init(timeLimit: 3600, unitSeconds: nil, units: 40),
            timeMin: nil, timeLimit: nil, says: ["no unit has a recorded duration"]),
        Case(
            name: "nothing left: nothing changes",
            facts: .init(timeLimit: 3600, unitSeconds: 5, unitsSampled: 3, units: 0),
            timeMin: nil, timeLimit: nil, says: ["no units left"]),
    ]

    @Test(arguments: cases)
    func rule(_ c: Case) {
        let size = RightSize.decide(c.facts)
        #expect(size.timeMin == c.timeMin, "\(size.explanation)")
        #expect(size.timeLimit == c.timeLimit, "\(size.explanation)")
        for words in c.says { #expect(size.explanation.includes(words), "\(size.explanation) lacks \(words)") }
        // Never raised: a user cannot, and the rule never asks.
        if let limit = size.timeLimit, let before = c.facts.timeLimit { #expect(Double(limit * 60) < before) }
        if let least = size.timeMin, let limit = size.timeLimit ?? c.facts.timeLimit.map({ Int($0 / 60) }) {
            #expect(least < limit || least == limit)
        }
    }

    @Test func slurmDurations() {
        #expect(JobInfo.parseDuration("00:01:00") == 60)
        #expect(JobInfo.parseDuration("1-02:03:04") == 93784)
        #expect(JobInfo.parseDuration("05:30") == 330)
        #expect(JobInfo.parseDuration("15") == 900)
        #expect(JobInfo.parseDuration("2-12") == 216_000)  // days-hours, as sbatch --time takes it
        #expect(JobInfo.parseDuration("2-12:30") == 217_800)
        #expect(JobInfo.parseDuration("99999999999999999999:00") == nil)  // beyond any count: not a crash
        #expect(JobInfo.parseDuration("9223372036854775807:00:00") != nil)  // huge, in Double: not an overflow
        for text in ["UNLIMITED", "Partition_Limit", "N/A", "", "1:-2:00", "a-01:00:00"] { #expect(JobInfo.parseDuration(text) == nil, "\(text)") }
    }

    @Test func timeLimitAndTimeMinFromARealLine() throws {
        let text = String(decoding: readFile(fixturesPath + "/scontrol/timelimit-term.txt")!, as: UTF8.self)
        let info = try JobInfo.parse(text)
        #expect(info.timeLimit == 60 && info.timeMin == nil)
    }
}
