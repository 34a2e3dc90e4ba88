import Glibc
import Testing

@testable import GracefulStop

/// The pure parts of per-unit intelligence, as tables: the estimate, the decision not to begin a
/// unit, the crash-loop guard's counts, the decision with quarantined units, and the timing
/// record; then a state's begin records, quarantine and release on a real directory.
@Suite struct UnitAttemptsTests {
    @Test func estimates() throws {
        let rows: [(durations: [Double], p50: Double, p90: Double, mean: Double)] = [
            ([3], 3, 3, 3),
            ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5, 9, 5.5),  // nearest rank: measured values only
            ([10, 1, 1, 1], 1, 10, 3.25),
            ([2, -1, .nan, .infinity, 4], 2, 4, 3),  // what cannot be a duration is left out
        ]
        for row in rows {
            let estimate = try #require(UnitEstimate(durations: row.durations))
            #expect((estimate.p50, estimate.p90, estimate.mean) == (row.p50, row.p90, row.mean), "\(row.durations)")
        }
        #expect(UnitEstimate(durations: []) == nil && UnitEstimate(durations: [-1]) == nil)
        let three = UnitEstimate(durations: [3])!
        #expect(three.unitsPerHour == 1200 && three.secondsToFinish(remaining: 10) == 30)
        // The run: the slowest node decides; a node without its own figures takes the run's; one
        // without any makes the answer unknown.
        let one = UnitEstimate(durations: [1])!
        #expect(UnitEstimate.runSeconds(nodes: [(10, one), (4, three)], run: one) == 12)
        #expect(UnitEstimate.runSeconds(nodes: [(10, one), (5, nil)], run: three) == 15)
        #expect(UnitEstimate.runSeconds(nodes: [(0, nil), (5, nil)], run: nil) == nil)
        #expect(UnitEstimate.runSeconds(nodes: [(0, nil)], run: nil) == 0)
    }

    @Test func startDecisions() {
        let rows: [(expected: Double?, left: Double?, refused: Bool)] = [
            (3, 1, true), (3, 3, false), (3, 10, false), (nil, 1, false), (3, nil, false), (0.5, -2, true),
        ]
        for row in rows {
            let refusal = UnitStartDecision.refusal(expected: row.expected, secondsLeft: row.left)
            #expect((refusal != nil) == row.refused, "\(row)")
        }
        #expect(UnitStartDecision.refusal(expected: 3, secondsLeft: 1)!.hasPrefix("the next unit needs ~3s, 1s left before the deadline"))
    }

    static func childExit(_ code: Int, marked: Int, quarantined: Int? = nil, asked: Bool = false) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("event", .string("child_exit")), ("exit", .number(Double(code))), ("asked_to_stop", .bool(asked)),
            ("marked", .number(Double(marked))),
        ]
        if let quarantined { fields.append(("quarantined", .number(Double(quarantined)))) }
        return .object(fields)
    }

    @Test func crashLoopGuardCounts() {
        let rows: [(name: String, exits: [JSONValue], idle: Int, failed: Int)] = [
            ("no attempt yet", [], 0, 0),
            (
                "the poison scenario, before quarantine",
                [Self.childExit(139, marked: 3), Self.childExit(139, marked: 0), Self.childExit(139, marked: 0)], 2, 3
            ),
            (
                "the attempt whose crash quarantined the unit is progress",
                [Self.childExit(139, marked: 3), Self.childExit(139, marked: 0), Self.childExit(139, marked: 0, quarantined: 1)], 0, 1
            ),
            ("a failure after a success", [Self.childExit(0, marked: 5), Self.childExit(3, marked: 0)], 1, 1),
            ("a stop is not a failure", [Self.childExit(3, marked: 0), Self.childExit(0, marked: 0, asked: true)], 2, 0),
            (
                "failures that each marked units stay at one",
                [Self.childExit(3, marked: 1), Self.childExit(3, marked: 1), Self.childExit(3, marked: 2)], 0, 1
            ),
            (
                "a sweep that does not report ends the idle streak",
                [Self.childExit(0, marked: 0), .object([("event", .string("child_exit")), ("exit", .number(0))])], 0, 0
            ),
        ]
        for row in rows {
            #expect(AttemptHistory.idleAttempts(row.exits) == row.idle, "\(row.name)")
            #expect(AttemptHistory.failedAttempts(row.exits) == row.failed, "\(row.name)")
        }
    }

    @Test func preemptionsCountedApartFromRestarts() {
        func exit(_ restart: Int, _ budget: String?) -> JSONValue {
            .object([("event", .string("child_exit")), ("restart", .number(Double(restart)))] + (budget.map { [("budget", .string($0))] } ?? []))
        }
        let rows: [(name: String, exits: [JSONValue], restart: Int, preemptions: Int)] = [
            ("none yet", [], 0, 0),
            ("two preemptions, one time limit", [exit(0, "preemption"), exit(1, "restart"), exit(2, "preemption")], 3, 2),
            ("this attempt's own line is not an earlier preemption", [exit(0, "preemption"), exit(1, "preemption")], 1, 1),
            ("a line from before budgets counts as a restart", [exit(0, nil), exit(1, "preemption")], 2, 1),
            ("two nodes' lines of one preempted attempt are one preemption", [exit(0, "preemption"), exit(0, "preemption")], 1, 1),
        ]
        for row in rows {
            #expect(AttemptHistory.preemptions(row.exits, before: row.restart) == row.preemptions, "\(row.name)")
        }
    }

    @Test func decisionsWithQuarantinedUnits() {
        var facts = RequeueDecisionTests.facts(.none, done: "run.quarantined", remaining: 0)
        facts.quarantined = ["u003"]
        var decision = RequeueDecision.decide(facts)
        #expect(decision.action == .finish && decision.exitCode == 65)
        #expect(decision.line.contains("1 unit quarantined (u003): begun 3 times without finishing"))
        // A node that has only quarantined units left finishes too, saying so.
        facts = RequeueDecisionTests.facts(.none, remaining: 0)
        facts.quarantined = (1...7).map { "q\($0)" }
        decision = RequeueDecision.decide(facts)
        #expect(decision.exitCode == 65 && decision.line.contains("7 units quarantined (q1, q2, q3, q4, q5 and 2 more)"))
        facts = RequeueDecisionTests.facts(.warning(signal: SIGUSR1), remaining: 0)
        facts.quarantined = ["a"]
        #expect(RequeueDecision.decide(facts).exitCode == 65)
        // Units left besides the quarantined ones: the warning still requeues.
        facts = RequeueDecisionTests.facts(.warning(signal: SIGUSR1), remaining: 4)
        facts.quarantined = ["a"]
        #expect(RequeueDecision.decide(facts).action == .requeue(target: "12_3"))
    }

    @Test func timingRecords() throws {
        let timing = UnitTiming(started: 100.25, ended: 103.5, host: "n1", node: 2, restart: 1)
        let content = timing.markerContent(name: Array("eq_1".utf8))
        #expect(Array(content.prefix(5)) == Array("eq_1".utf8) + [0])
        #expect(UnitTiming.decode(markerContent: content) == timing && timing.seconds == 3.25)
        // Markers without a record, or with a broken one, are done all the same: no duration.
        for bad in ["eq_1", "eq_1\u{0}", "eq_1\u{0}{", "eq_1\u{0}{\"started\": 1}", "eq_1\u{0}[]"] {
            #expect(UnitTiming.decode(markerContent: Array(bad.utf8)) == nil, "\(bad)")
        }
        let unbegun = UnitTiming(started: nil, ended: 5, host: "h", node: 0, restart: 0)
        #expect(UnitTiming.decode(markerContent: unbegun.markerContent(name: Array("x".utf8)))?.seconds == nil)
    }

    @Test func beginRecordNames() {
        let claim = BeginRecords.Entry(fileName: "17.2")
        #expect(claim?.place == 17 && claim?.generation == 2)
        let legacy = BeginRecords.Entry(fileName: "17.2.4242.0a1b2c3d.9")
        #expect(legacy?.place == 17 && legacy?.kind == .legacy(restart: 2, pid: 4242, hostTag: "0a1b2c3d") && legacy?.generation == nil)
        for bad in [
            "17.2.4242.0a1b2c3d", "x.2.4242.0a1b2c3d.1", "17.2.0.0a1b2c3d.1", "17.2.4242.0A1B2C3D.1", "-1.2.3.0a1b2c3d.1", ".tmp.1.2.3",
            "17", "17.0", "17.-1", "17.x", "+1.2", "1.+2", "17.2.3",
        ] {
            #expect(BeginRecords.Entry(fileName: bad) == nil, "\(bad)")
        }
        #expect(BeginRecords.hostTag.utf8.count == 8)
    }

    /// A crash-looping unit on a real directory: records of attempts that are over quarantine it
    /// at the limit; records of live attempts never do; release puts it back.
    @Test func quarantineAndRelease() throws {
        let directory = TemporaryDirectory()
        let state = try RunState.create(at: directory.path, units: ["a", "b", "c"], nodes: 1, node: 0)
        #expect(try state.beginUnit("b") == .begun)
        // Three attempts of restarts 0, 1 and 2 on this host, by a process that is gone (pid 1 is
        // never ours, but is alive: so those records are over only through their restart count).
        let begun = "\(directory.path)/begun/0"
        for restart in 0..<3 {
            let fd = open("\(begun)/1.\(restart).1.\(BeginRecords.hostTag).\(restart)", O_WRONLY | O_CREAT | O_EXCL, 0o644)
            close(fd)
        }
        // This process's own attempt at b is running: b is not quarantined by its own record,
        // and restart 2's record is not over while restart 2 may still run.
        #expect(try state.quarantined(node: 0, attemptsOver: 2) == [])
        #expect(try state.quarantined(node: 0, attemptsOver: 3) == ["b"])
        #expect(try state.remainingUnits() == ["a", "c"])
        #expect(try state.beginUnit("b") == .quarantined)
        try state.markDone("a")
        try state.markDone("c")
        #expect(try state.checkRunSettled(attemptsOver: 3) == ["b"] && access("\(directory.path)/run.quarantined", F_OK) == 0)
        #expect(try state.quarantinedUnits().map(\.unit) == ["b"])
        #expect(try state.releaseUnit("b"))
        #expect(try !state.releaseUnit("b"))
        #expect(access("\(directory.path)/run.quarantined", F_OK) != 0 && access("\(directory.path)/quarantine/0/1.json", F_OK) != 0)
        #expect(try state.remainingUnits() == ["b"] && state.quarantinedUnits().isEmpty)
        #expect(try state.beginUnit("b") == .begun)
        try state.markDone("b")
        #expect(try state.checkRunDone() && state.checkRunSettled(attemptsOver: 9) == nil)
    }
}
