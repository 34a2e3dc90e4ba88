import Dispatch
import Glibc
import Testing

@testable import GracefulStop

@Suite struct RunStateTests {
    @Test func theRunsTotalsComeFromCompleteAndTheShareSummariesNotTheMarkers() throws {
        let temporary = TemporaryDirectory()
        let units = (0..<40).map { "u\($0)" }
        _ = try RunState.create(at: temporary.path, units: units, nodes: 4, node: 0)
        #expect(try RunState.open(at: temporary.path, node: 0).totals() == RunTotals(done: 0, total: 40, shares: 4))
        do {  // node 1 finishes its share; node 2 marks three units and closes
            let one = try RunState.open(at: temporary.path, node: 1)
            for unit in try one.remainingUnits() { _ = try one.markDone(unit) }
            let two = try RunState.open(at: temporary.path, node: 2)
            for unit in try two.remainingUnits().prefix(3) { _ = try two.markDone(unit) }
        }
        // Each handle summarizes its first mark at once and the rest when it goes (node 1, too:
        // its complete/ file is what readers use).
        #expect(try ShareSummary.readAll(in: Directory(opening: temporary.path)).mapValues(\.done) == [1: 10, 2: 3])
        // Markers written behind the summaries' back are not counted: the line reads no marker.
        mkdir(temporary.sub("done/3"), 0o755)
        writeFile(temporary.sub("done/3/u3.done"), "u3 {}\n")
        let totals = try RunState.open(at: temporary.path, node: 0).totals()
        #expect(totals.done == 13 && totals.total == 40 && totals.sharesComplete == 1 && totals.sharesReported == 1)
        #expect(
            totals.line(now: totals.oldestReport! + 12).hasPrefix(
                "13 of 40 units done (32 %): 1 of 4 shares complete, 1 more reported (the oldest 12s ago), 2 not reported yet"))
        // A summary that does not parse is left out, never an error.
        writeFile(temporary.sub("progress/3"), "{not json")
        #expect(try RunState.open(at: temporary.path, node: 0).totals().done == 13)
    }

    @Test(arguments: fixtureStateNames())
    func fixtureStatesReadAsExpected(name: String) throws {
        let temporary = TemporaryDirectory()
        let path = copyOfFixture(name, into: temporary)
        let expected = try Expected.state(name)
        for node in 0..<expected.nodes {
            let state = try RunState.open(at: path, node: node)
            #expect(state.manifest?.unitCount == expected.unitCount)
            #expect(try state.remainingUnits() == expected.remaining[node], "\(name) node \(node)")
            let counts = try state.counts(node: node)
            #expect(counts.total == expected.totals[node])
            #expect(counts.total - counts.done - (expected.quarantined[node]?.count ?? 0) == expected.remaining[node]?.count)
        }
        if let unitSeconds = expected.unitSeconds {
            // A state whose markers record their units' times: the estimate gstop status shows.
            let report = try StatusReport.gather(path: path)
            let run = try #require(report.estimate)
            #expect([run.p50, run.p90, run.mean] == unitSeconds)
            for counts in report.nodes {
                let estimate = try #require(counts.estimate)
                #expect([estimate.p50, estimate.p90, estimate.mean] == expected.nodeUnitSeconds[counts.node])
                #expect(counts.quarantined == expected.quarantined[counts.node]?.count)
            }
            #expect(report.etaSeconds == expected.etaSeconds)
            #expect(report.quarantined.map(\.unit) == expected.quarantined.sorted { $0.key < $1.key }.flatMap(\.value))
        }
        if let takenBy = expected.takenBy {
            // Balancing: who did each share's units, and what a live claim of another job holds.
            let report = try StatusReport.gather(path: path)
            #expect(report.nodes.map { $0.takenBy } == (0..<expected.nodes).map { takenBy[$0] ?? [:] })
            let state = try RunState.open(at: path, node: 0)
            for node in 0..<expected.nodes {
                let account = try state.account(shares: [node], attemptsOver: 1, job: nil)
                #expect(account.heldByOthers == expected.held[node]?.count, "\(name) node \(node)")
            }
        }
        if case .array(let attempts)? = expected.history {
            // events.jsonl written from the documented format: one row per attempt, the torn line skipped.
            let history = try EventLog.history(path: path)
            #expect(history.skipped == expected.historySkippedLines)
            #expect(history.rows.count == attempts.count)
            for (row, want) in zip(history.rows, attempts) {
                #expect(row.job == want["job"]?.string && row.node == want["node"]?.int && row.restart == want["restart"]?.int, "\(row)")
                #expect(row.start == want["start"]?.number && row.end == want["end"]?.number && row.exit == want["exit"]?.int, "\(row)")
                #expect(row.marked == want["marked"]?.int && row.quarantined == want["quarantined"]?.int, "\(row)")
                #expect(row.decision == want["decision"]?.string && row.outcome == want["outcome"]?.string, "\(row)")
            }
        }
        let state = try RunState.open(at: path, node: 0)
        #expect(try state.counts(node: nil) == (expected.doneCount, expected.unitCount))
        #expect(try state.checkRunDone() == expected.runDone)
        #expect(fileExists(path + "/run.done") == expected.runDone)
    }

    @Test func createThenOpenAndMismatch() throws {
        let temporary = TemporaryDirectory()
        let path = temporary.sub("nested/state")
        let units = (0..<10).map { "u\($0)" }
        let created = try RunState.create(at: path, units: units, nodes: 2, partition: .block, node: 1)
        #expect(try created.remainingUnits() == ["u5", "u6", "u7", "u8", "u9"])
        // The same run again is fine (every array task calls create at start).
        _ = try RunState.create(at: path, units: units, nodes: 2, partition: .block, node: 0)
        for (changedUnits, nodes, rule, what) in [
            (units + ["u10"], 2, PartitionRule.block, "11 asked"), (Array(units.reversed()), 2, .block, "unit #0"),
            (units, 3, .block, "node count"), (units, 2, .roundRobin, "partition"),
        ] {
            do {
                _ = try RunState.create(at: path, units: changedUnits, nodes: nodes, partition: rule, node: 0)
                Issue.record("mismatch not detected: \(what)")
            } catch let error as GracefulStopError {
                #expect(error.code == .mismatch)
                #expect(error.message.contains(path) && error.message.contains(what), "\(error.message)")
            }
        }
    }

    @Test func markDoneIsDurableIdempotentAndChecked() throws {
        let temporary = TemporaryDirectory()
        let units = ["plain", "a/b c", "..", String(repeating: "L", count: 1000), "ünï"]
        let state = try RunState.create(at: temporary.path, units: units, nodes: 1, node: 0)
        for unit in units {
            #expect(try !state.isDone(unit))
            #expect(try state.markDone(unit) == false)
            #expect(try state.markDone(unit) == true)
            #expect(try state.isDone(unit))
            // The marker holds the unit's name (the reverse of a hashed file name), then a NUL and
            // its timing record.
            #expect(try state.markerPath(unit.utf8) == "done/0/" + MarkerName.fileName(of: unit))
            let content = readFile(temporary.path + "/done/0/" + MarkerName.fileName(of: unit)) ?? []
            #expect(Array(content.prefix { $0 != 0 }) == Array(unit.utf8))
            #expect(UnitTiming.decode(markerContent: content)?.node == 0)
        }
        #expect(try state.remainingUnits().isEmpty)
        #expect(fileExists(temporary.path + "/run.done"))
        // No temporary file is left behind.
        #expect(markerFiles(temporary.path).count == units.count)
    }

    @Test func badUnitsAndNodes() throws {
        let temporary = TemporaryDirectory()
        let state = try RunState.create(at: temporary.path, units: ["a", "b"], nodes: 2, node: 0)
        let cases: [([UInt8], GracefulStopError.Code, String)] = [
            (Array("zzz".utf8), .unknownUnit, "not in the manifest"), ([], .invalidArgument, "empty"),
            (Array("a\0".utf8), .invalidArgument, "NUL"), ([0xC3], .invalidArgument, "UTF-8"),
        ]
        for (unit, code, text) in cases {
            do {
                try state.markDone(unit)
                Issue.record("accepted \(unit)")
            } catch let error as GracefulStopError {
                #expect(error.code == code && error.message.contains(text), "\(error.message)")
            }
        }
        #expect(markerFiles(temporary.path).isEmpty)
        #expect(throws: GracefulStopError(.nodeOutOfRange, "node 2 is out of range: this state has 2 nodes, numbered 0 to 1")) {
            _ = try state.remainingUnits(node: 2)
        }
        // Node 5 of a 2-share state is a worker that only takes over (balancing); with the strict
        // split it is out of range (ProcessWideTests.Requests).
        #expect(try RunState.open(at: temporary.path, node: 5).remainingUnits() == [])
    }

    @Test func missingAndUnusableStateDirectories() throws {
        let temporary = TemporaryDirectory()
        for (path, text) in [(temporary.sub("absent"), "does not exist"), (temporary.path, "manifest.json does not exist")] {
            do {
                _ = try RunState.open(at: path, node: 0)
                Issue.record("opened \(path)")
            } catch let error as GracefulStopError {
                #expect(error.message.contains(path) && error.message.contains(text), "\(error.message)")
            }
        }
        writeFile(temporary.sub("file"), "x")
        #expect(throws: GracefulStopError.self) { _ = try RunState.create(at: temporary.sub("file"), units: ["a"], nodes: 1) }
        #expect(throws: GracefulStopError.self) { _ = try RunState.create(at: temporary.sub("file/below"), units: ["a"], nodes: 1) }
        #expect(throws: GracefulStopError.self) { _ = try RunState.create(at: "", units: ["a"], nodes: 1) }
        #expect(throws: GracefulStopError.self) { _ = try RunState.create(at: temporary.sub("e"), units: [], nodes: 1) }
        #expect(throws: GracefulStopError.self) { _ = try RunState.create(at: temporary.sub("d"), units: ["a", "a"], nodes: 1) }
    }

    @Test func aMarkerRemovedByHandMakesItsUnitRemainingAgain() throws {
        let temporary = TemporaryDirectory()
        let state = try RunState.create(at: temporary.path, units: ["a", "b"], nodes: 1, node: 0)
        try state.markDone("a")
        #expect(try state.remainingUnits() == ["b"])
        unlink(temporary.path + "/done/0/a.done")
        #expect(try state.remainingUnits() == ["a", "b"])
    }

    @Test func threadsMarkingConcurrentlyFinishTheRunOnce() throws {
        let temporary = TemporaryDirectory()
        let units = (0..<4000).map { "unit-\($0)" }
        _ = try RunState.create(at: temporary.path, units: units, nodes: 4, partition: .roundRobin, node: 0)
        let failures = Locked<[String]>([])
        // Eight workers, two per node, each with its own handle, interleaving over the node's units.
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            do {
                let state = try RunState.open(at: temporary.path, node: worker % 4)
                // Split each node's units between its two workers by the unit's number, which (unlike
                // a position in the remaining list) does not shift while the other worker marks.
                for unit in try state.remainingUnits() where Int(unit.dropFirst(5))! / 4 % 2 == worker / 4 {
                    try state.markDone(unit)
                }
                _ = try state.checkRunDone()
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let state = try RunState.open(at: temporary.path, node: 0)
        for node in 0..<4 { #expect(try state.remainingUnits(node: node).isEmpty) }
        #expect(fileExists(temporary.path + "/run.done"))
        #expect(markerFiles(temporary.path).count == units.count)
        // Each marker sits in the directory of the node that owns its unit (round-robin over 4 nodes).
        #expect(
            markerFiles(temporary.path).allSatisfy { path in
                let parts = path.split(separator: "/")
                return Int(parts[1].dropFirst(5).dropLast(5))! % 4 == Int(parts[0])!
            })
    }

    @Test func theLastMarkOfTheRunCreatesRunDoneWithoutAScanByTheCaller() throws {
        let temporary = TemporaryDirectory()
        let units = (0..<30).map { "u\($0)" }
        let nodeStates = try (0..<3).map { node in try RunState.create(at: temporary.path, units: units, nodes: 3, partition: .block, node: node) }
        for (node, state) in nodeStates.enumerated() {
            for unit in units[(node * 10)..<(node * 10 + 10)] {
                #expect(!fileExists(temporary.path + "/run.done"))
                try state.markDone(unit)
            }
        }
        #expect(fileExists(temporary.path + "/run.done"))
    }
}

/// Version 2 (docs/state-format.md): a node reads only its own shard; version-1 states continue.
@Suite struct StateVersionTests {
    @Test func aBrokenShardOfAnotherNodeLeavesThisNodeWorkingAndIsNamedWhenNeeded() throws {
        let cases = try Expected.badShards()
        #expect(cases.count >= 8)
        for (name, status, message, file) in cases {
            let temporary = TemporaryDirectory()
            run(["cp", "-a", fixturesPath + "/bad-shards/" + name, temporary.sub("state")])
            let path = temporary.sub("state")
            let shardBefore = readFile(path + "/" + file)
            // Node 0 reads its own shard only: it opens, lists, marks and checks as if nothing were wrong.
            let state = try RunState.open(at: path, node: 0)
            #expect(try state.remainingUnits() == ["u2", "u4"], "\(name)")
            try state.markDone("u2")
            #expect(try state.isDone("u2") && state.isDone("u0"), "\(name)")
            // Whatever needs node 1's names fails, naming the file and what is wrong with it.
            for attempt in [
                { _ = try RunState.open(at: path, node: 1).remainingUnits() }, { _ = try state.counts(node: nil) },
                { _ = try state.isDone("u3") },
            ] {
                do {
                    try attempt()
                    Issue.record("\(name): a broken shard was read")
                } catch let error as GracefulStopError {
                    #expect(error.code.rawValue == status, "\(name): \(error.message)")
                    #expect(error.message.contains(message), "\(name): \(error.message)")
                    #expect(
                        error.message.contains(path + "/" + file.split(separator: "/").dropLast().joined(separator: "/")), "\(name): \(error.message)"
                    )
                }
            }
            #expect(readFile(path + "/" + file) == shardBefore, "\(name): the broken shard was changed")
        }
    }

    @Test(arguments: fixtureStateNames().filter { $0.hasPrefix("v1-") })
    func aVersion1StateContinuesAndIsNeverRewritten(name: String) throws {
        let temporary = TemporaryDirectory()
        let path = copyOfFixture(name, into: temporary)
        let manifestBefore = readFile(path + "/manifest.json")!
        let expected = try Expected.state(name)
        #expect(String(decoding: manifestBefore, as: UTF8.self).contains("\"version\": 1"))
        for node in 0..<expected.nodes {
            let state = try RunState.open(at: path, node: node)
            #expect(state.manifest?.formatVersion == 1)
            for unit in try state.remainingUnits() { try state.markDone(unit) }
            #expect(try state.remainingUnits().isEmpty)
        }
        #expect(try RunState.open(at: path, node: 0).checkRunDone())
        #expect(fileExists(path + "/run.done"))
        #expect(readFile(path + "/manifest.json") == manifestBefore)
        #expect(!fileExists(path + "/units"), "a version-1 state got shards")
        // Its creator's list still matches it: create() on a version-1 state opens it as it is.
        let opened = try RunState.open(at: path, node: 0)
        let manifest = try #require(opened.manifest)
        _ = try RunState.create(
            at: path, units: opened.allUnitNames(), nodes: manifest.nodes, partition: manifest.partition.rule,
            legacyDoneDirectory: manifest.legacyDoneDirectory, node: 0)
        #expect(readFile(path + "/manifest.json") == manifestBefore)
    }

    @Test func aNewStateIsVersion2WithOneShardPerOwningNode() throws {
        let temporary = TemporaryDirectory()
        let units = (0..<10).map { "unit \($0)/x" }
        let state = try RunState.create(at: temporary.path, units: units, nodes: 4, partition: .block, node: 2)
        #expect(state.manifest?.formatVersion == 2)
        let manifest = String(decoding: readFile(temporary.path + "/manifest.json")!, as: UTF8.self)
        #expect(manifest.contains("\"version\": 2") && !manifest.contains("unit 0"))
        let hash = try #require(state.manifest?.unitsSHA256())
        #expect(directoryEntries(temporary.path + "/units/" + hash) == ["0.json", "1.json", "2.json", "3.json"])
        // A fresh handle of node 2 reads node 2's shard and no other: with nodes 0's and 1's gone
        // it lists, marks and reads node 3's as before.
        run(["rm", "-f", temporary.path + "/units/\(hash)/0.json", temporary.path + "/units/\(hash)/1.json"])
        let fresh = try RunState.open(at: temporary.path, node: 2)
        #expect(try fresh.remainingUnits() == ["unit 6/x", "unit 7/x"])
        try fresh.markDone("unit 7/x")
        #expect(try fresh.remainingUnits(node: 3) == ["unit 8/x", "unit 9/x"])
        #expect(try fresh.remainingUnits() == ["unit 6/x"])
    }

    @Test func concurrentCreatorsOfOneRunShareTheWorkAndCreatorsOfAnotherAreRefused() throws {
        let temporary = TemporaryDirectory()
        let units = (0..<2000).map { "u\($0)" }
        let other = units.reversed().map { $0 }
        let outcomes = Locked<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 16) { creator in
            do {
                let state = try RunState.create(at: temporary.path, units: creator == 7 ? other : units, nodes: 50, node: creator % 50)
                outcomes.withLock { $0.append(creator == 7 ? "other created" : "same") }
                _ = state
            } catch let error as GracefulStopError {
                outcomes.withLock {
                    $0.append(error.code == .mismatch ? (creator == 7 ? "other refused" : "same refused") : "error \(error.message)")
                }
            } catch { outcomes.withLock { $0.append("error \(error)") } }
        }
        let seen = outcomes.withLock { $0 }
        // Either the other list lost the race (refused; every same-run creator opened), or it won
        // (every same-run creator refused); never an error of another kind, never a mixed state.
        #expect(!seen.contains { $0.hasPrefix("error") }, "\(seen)")
        let state = try RunState.open(at: temporary.path, node: 0)
        let winner = seen.contains("other created") ? other : units
        #expect(try state.allUnitNames() == winner)
        #expect(seen.filter { $0 == (winner == units ? "same" : "other created") }.count == (winner == units ? 15 : 1))
    }
}
