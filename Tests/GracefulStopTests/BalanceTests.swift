import Glibc
import Testing

@testable import GracefulStop

/// Balancing as tables (which share to take from, which places, who answers for which shares,
/// when a claim's attempt is over), then claims and taking over on a real directory.
@Suite struct BalanceTests {
    typealias Load = Balance.ShareLoad

    @Test func theVictimIsTheShareWithTheMostLeft() {
        let rows: [(loads: [Load], me: Int, shares: Int, victim: Int?)] = [
            ([], 0, 4, nil),
            ([Load(share: 1, left: 0), Load(share: 2, left: 0)], 0, 3, nil),  // nothing left anywhere
            ([Load(share: 0, left: 9)], 0, 2, nil),  // only my own share: it is not taken from
            ([Load(share: 1, left: 3), Load(share: 2, left: 7), Load(share: 3, left: 5)], 0, 4, 2),
            // Equals: the first after me, wrapping, so that thieves spread over equal shares.
            ([Load(share: 0, left: 4), Load(share: 1, left: 4), Load(share: 3, left: 4)], 2, 4, 3),
            ([Load(share: 0, left: 4), Load(share: 1, left: 4)], 3, 4, 0),
            ([Load(share: 0, left: 4), Load(share: 1, left: 4)], 0, 4, 1),
            // Workers beyond the shares (more workers than shares): spread by their number modulo the shares.
            ([Load(share: 0, left: 2), Load(share: 1, left: 2)], 5, 2, 1),
            ([Load(share: 0, left: 2), Load(share: 1, left: 2)], 4, 2, 0),
        ]
        for row in rows {
            #expect(Balance.victim(row.loads, me: row.me, shares: row.shares) == row.victim, "\(row)")
        }
    }

    @Test func thievesTakeTheBackHalfLastFirst() {
        #expect(Balance.takeFromEnd([]) == [])
        #expect(Balance.takeFromEnd([4]) == [4])
        #expect(Balance.takeFromEnd([1, 2]) == [2])
        #expect(Balance.takeFromEnd([1, 2, 3, 5, 8]) == [8, 5, 3])
        #expect(Balance.takeFromEnd(Array(0..<10)) == [9, 8, 7, 6, 5])
    }

    @Test func whoAnswersForWhichShares() {
        let rows: [(worker: Int, workers: Int?, shares: Int, expected: [Int])] = [
            (0, 4, 4, [0]), (3, 4, 4, [3]),
            (0, nil, 8, [0]),  // unknown count: its own share only
            (0, 2, 5, [0, 2, 4]), (1, 2, 5, [1, 3]),  // fewer workers: the unowned shares dealt round-robin
            (0, 3, 4, [0, 3]), (2, 3, 4, [2]),
            (4, 6, 4, []), (5, 6, 4, []),  // more workers: the extra ones answer for none
            (7, nil, 4, []),
        ]
        for row in rows {
            #expect(Balance.responsibleShares(worker: row.worker, workers: row.workers, shares: row.shares) == row.expected, "\(row)")
        }
        // Every share is answered for by exactly one worker, whatever the counts.
        for shares in 1...9 {
            for workers in 1...12 {
                let all = (0..<workers).flatMap { Balance.responsibleShares(worker: $0, workers: workers, shares: shares) }
                #expect(all.sorted() == Array(0..<shares), "\(workers) workers, \(shares) shares")
            }
        }
    }

    @Test func theCoverageLine() {
        #expect(Balance.coverage(workers: 4, shares: 4) == nil)
        #expect(
            Balance.coverage(workers: 2, shares: 4)!.hasPrefix(
                "2 workers for 4 shares: each begins with its own share, then takes over shares 2-3, which no worker owns"))
        #expect(Balance.coverage(workers: 3, shares: 4)!.contains("takes over share 3, which"))
        #expect(
            Balance.coverage(workers: 6, shares: 4)!.hasPrefix("6 workers for 4 shares: workers 4-5 own no share and take over units of the others"))
        #expect(Balance.coverage(workers: 2, shares: 1)!.hasPrefix("2 workers for 1 share: worker 1 own"))
    }

    @Test func whenAClaimsAttemptIsOver() {
        let here = HostName.current
        let alive: (Int32) -> Bool = { $0 != 99 }
        func holder(
            job: String? = "7", restart: Int = 1, pid: Int32 = 42, host: String = "elsewhere", released: Bool = false,
            abandoned: Bool = false
        ) -> BeginRecords.Holder {
            BeginRecords.Holder(job: job, restart: restart, pid: pid, host: host, worker: 1, released: released, abandoned: abandoned)
        }
        let rows: [(name: String, holder: BeginRecords.Holder?, settled: Double?, attemptsOver: Int, job: String?, over: Bool)] = [
            ("another host, this job and restart: may be at work", holder(), nil, 1, "7", false),
            ("an earlier restart of this job", holder(restart: 0), nil, 1, "7", true),
            ("gstop after its attempt: this restart is over too", holder(restart: 1), nil, 2, "7", true),
            ("another job (array task): its restarts are not ours to compare", holder(job: "8", restart: 0), nil, 5, "7", false),
            ("no job (local) against a job", holder(job: nil, restart: 0), nil, 5, "7", false),
            ("no job on both sides (local runs)", holder(job: nil, restart: 0), nil, 1, nil, true),
            ("a live process of this host", holder(job: "8", pid: 42, host: here), nil, 0, "7", false),
            ("a gone process of this host", holder(job: "8", pid: 99, host: here), nil, 0, "7", true),
            ("this very process: beginning the unit again", holder(job: "8", pid: getpid(), host: here), nil, 0, "7", true),
            ("released for a stop", holder(job: "8", released: true), nil, 0, "7", true),
            ("abandoned after an error by a process that goes on", holder(job: "8", abandoned: true), nil, 0, "7", true),
            ("unreadable, just written", nil, 0.5, 0, "7", false),
            ("unreadable, unknown age", nil, nil, 0, "7", false),
            ("unreadable for a minute of the directory's time", nil, 61, 0, "7", true),
        ]
        for row in rows {
            #expect(
                BeginRecords.isOver(row.holder, settledFor: row.settled, attemptsOver: row.attemptsOver, job: row.job, pidExists: alive) == row.over,
                "\(row.name)")
        }
    }

    /// Writes a claim as another process would.
    static func writeClaim(_ directory: String, share: Int, place: Int, generation: Int, pid: Int32, restart: Int = 0, job: String? = nil) {
        mkdir("\(directory)/begun", 0o755)
        mkdir("\(directory)/begun/\(share)", 0o755)
        let jobText = job.map { "\"\($0)\"" } ?? "null"
        let text =
            "{\"unit\": \"x\", \"node\": \(share), \"worker\": 9, \"host\": \"\(HostName.current)\", \"pid\": \(pid), \"restart\": \(restart), \"job\": \(jobText), \"started\": 1}\n"
        let fd = open("\(directory)/begun/\(share)/\(place).\(generation)", O_WRONLY | O_CREAT | O_EXCL, 0o644)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }

    /// A pid that no process has (one of a child that has been reaped).
    static func gonePid() -> Int32 {
        let pid = fork()
        if pid == 0 { _exit(0) }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return pid
    }

    @Test func claimsAreExclusiveAndTakenOverOnceOver() throws {
        let directory = TemporaryDirectory()
        do {  // the test process has no SLURM job, no restart count and no GRACEFULSTOP_* settings
            let state = try RunState.create(at: directory.path, units: ["a", "b", "c", "d"], nodes: 2, node: 0)
            // b (share 1, place 0) is held by a live process of this host (pid 1): not ours.
            Self.writeClaim(directory.path, share: 1, place: 0, generation: 1, pid: 1)
            #expect(try state.beginUnit("b") == .claimed)
            // d (share 1, place 1): its first attempt's process is gone; the next generation is ours.
            Self.writeClaim(directory.path, share: 1, place: 1, generation: 1, pid: Self.gonePid())
            #expect(try state.beginUnit("d") == .begun)
            #expect(access("\(directory.path)/begun/1/1.2", F_OK) == 0)
            // Marked for another share, the claim moves to taken/ (what status counts).
            try state.markDone("d")
            #expect(access("\(directory.path)/begun/1/1.2", F_OK) != 0 && access("\(directory.path)/taken/1/1.0", F_OK) == 0)
            // Its own unit: claimed, then let go when marked.
            #expect(try state.beginUnit("a") == .begun)
            #expect(access("\(directory.path)/begun/0/0.1", F_OK) == 0)
            try state.markDone("a")
            #expect(access("\(directory.path)/begun/0/0.1", F_OK) != 0)
            // A unit done meanwhile is found after the claim, and the claim let go.
            let other = try RunState.open(at: directory.path, node: 0)
            try other.markDone("c")
            #expect(try state.beginUnit("c") == .done)
            #expect(access("\(directory.path)/begun/0/1.1", F_OK) != 0)
            // Given up for a stop, a claim is released in place: no generation becomes free again.
            do {
                let helper = try RunState.open(at: directory.path, node: 1)
                try FileManagerless.remove("\(directory.path)/begun/1/0.1")
                #expect(try helper.beginUnit("b") == .begun)
                helper.stopCheck.latch(.request, "test")
                #expect(try helper.abandonUnit("b".utf8))
                let content = try #require(helper.requireFiles().begun.content(node: 1, fileName: "0.1"))
                #expect(content["released"] == .bool(true))
                #expect(try helper.quarantined(node: 1, attemptsOver: 9) == [])  // a released attempt never counts
            }
            // Given up after an error by a process that goes on: any worker may take it over, and
            // the attempt counts toward quarantine.
            let first = try RunState.create(at: directory.path + "-abandon", units: ["p", "q"], nodes: 1, node: 0)
            #expect(try first.beginUnit("p") == .begun)
            #expect(try !first.abandonUnit("p".utf8))
            let abandoned = try #require(first.requireFiles().begun.attempts(node: 0, attemptsOver: 0, job: nil).first)
            #expect(abandoned.over && abandoned.failed && abandoned.holder?.abandoned == true)
        }
    }

    @Test func aClaimPastTheQuarantineLimitQuarantinesInsteadOfTakingAnotherGeneration() throws {
        // Two workers that both counted two failures of u (limit 3) began it one after the other:
        // the first died in generation 3, the second, not looking again, claimed generation 4.
        // The claim now stops at the limit, and the unit is quarantined where it would be begun.
        let directory = TemporaryDirectory()
        do {
            let state = try RunState.create(at: directory.path, units: ["a", "u"], nodes: 1, node: 0)
            for generation in 1...3 { Self.writeClaim(directory.path, share: 0, place: 1, generation: generation, pid: Self.gonePid()) }
            #expect(try state.beginUnit("u") == .quarantined)
            #expect(access("\(directory.path)/begun/0/1.4", F_OK) != 0)
            #expect(access("\(directory.path)/quarantine/0/1.json", F_OK) == 0)
            // Below the limit, the next generation is claimed as before.
            #expect(try state.beginUnit("a") == .begun)
            let again = try RunState.create(at: directory.path + "-two", units: ["u"], nodes: 1, node: 0)
            for generation in 1...2 { Self.writeClaim(directory.path + "-two", share: 0, place: 0, generation: generation, pid: Self.gonePid()) }
            #expect(try again.beginUnit("u") == .begun)
            #expect(access("\(directory.path)-two/begun/0/0.3", F_OK) == 0)
        }
    }

    @Test func aWorkerTakesTheEndOfTheShareWithTheMostLeftOnceItsOwnIsDone() throws {
        let directory = TemporaryDirectory()
        do {
            let units = (0..<12).map { "u\($0)" }
            let state = try RunState.create(at: directory.path, units: units, nodes: 3, partition: .block, node: 0)
            var proposed: [String] = []
            while let unit = try state.nextUnit(balance: true) {
                let name = units[unit]
                proposed.append(name)
                #expect(try state.beginUnit(name) == .begun)
                try state.markDone(name)
            }
            // Its own u0-u3, then the back half of share 1 (u4-u7) or 2 (equal: the first after
            // it, 1), then again the share with the most left, until nothing is left.
            #expect(Array(proposed.prefix(6)) == ["u0", "u1", "u2", "u3", "u7", "u6"])
            #expect(Set(proposed) == Set(units) && proposed.count == units.count)
            #expect(try state.checkRunDone())
            // Strict split: only its own share.
            let strict = try RunState.create(at: directory.path + "-strict", units: units, nodes: 3, partition: .block, node: 2)
            var own: [Int] = []
            while let unit = try strict.nextUnit(balance: false) { own.append(unit) }
            #expect(own == [8, 9, 10, 11])
        }
    }

    @Test func aWorkerBeyondTheSharesOnlyTakesOver() throws {
        let directory = TemporaryDirectory()
        do {
            _ = try RunState.create(at: directory.path, units: ["a", "b", "c"], nodes: 2, node: 0)
            let helper = try RunState.open(at: directory.path, node: 5)
            #expect(try helper.remainingUnits() == [] && helper.counts(node: 5) == (0, 0))
            var taken: [Int] = []
            while let unit = try helper.nextUnit(balance: true) {
                #expect(try helper.beginUnit(["a", "b", "c"][unit]) == .begun)
                try helper.markDone(["a", "b", "c"][unit])
                taken.append(unit)
            }
            #expect(taken.sorted() == [0, 1, 2])
            #expect(try helper.checkRunDone())
        }
    }
}

extension BalanceTests {
    /// The fixture written by the independent writer: what a job answers for, and the progress the
    /// crash-loop guard counts for a worker that did units of other shares.
    @Test func theAccountOfTheBalancedFixture() throws {
        let temporary = TemporaryDirectory()
        let path = copyOfFixture("balanced", into: temporary)
        let state = try RunState.open(at: path, node: 0)
        // Share 2: b5 held by job 77's live claim, b8 free; node 3's worker did b11 there.
        let share2 = try state.account(shares: [2], attemptsOver: 1, job: "12_2", worker: 2)
        #expect((share2.done, share2.total, share2.remaining, share2.heldByOthers, share2.doneElsewhere) == (2, 4, 2, 1, 0))
        // The same claim is this job's own when the job is 77: over once its attempt has ended.
        #expect(try state.account(shares: [2], attemptsOver: 1, job: "77", worker: 2).heldByOthers == 0)
        #expect(try state.account(shares: [0], attemptsOver: 1, job: "12_0", worker: 0).doneElsewhere == 2)
        #expect(try state.account(shares: [], attemptsOver: 1, job: "12_3", worker: 3).doneElsewhere == 1)
        // Job 77's unfinished claims in share 2 (b5, and b8 given up twice), seen from a scope that
        // leaves share 2 out: it answers for both.
        #expect(try state.account(shares: [0], attemptsOver: 1, job: "77", worker: 1).claimedElsewhere == 2)
    }
}

/// unlink(2) for the tests, without Foundation.
enum FileManagerless {
    static func remove(_ path: String) throws {
        guard unlink(path) == 0 else { throw GracefulStopError.system("cannot remove", path, errno: errno) }
    }
}

/// The page a host's processes share for stop requests, on a real /dev/shm file.
@Suite struct RequestBoardTests {
    @Test func publishedRequestsReadBackAndLeadershipPassesOn() throws {
        let key = "test-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { unlink("/dev/shm/gracefulstop-\(getuid())-\(key)") }
        let board = RequestBoard.open(key: key)
        #expect(board.shared && board.identity(slot: 0) == 0 && board.request(besides: []) == nil)
        let old = StopRequest(requestedAt: 100, by: "n1:1", reason: "an old one")
        let long = String(repeating: "é", count: 400)  // longer than a slot holds: cut, never torn
        let new = StopRequest(requestedAt: 200.5, by: "n2:2", reason: long)
        board.publish([old, new], lookStarted: 500)
        #expect(board.identity(slot: 0) == old.identity && board.identity(slot: 1) == new.identity)
        // The old one was there when the attempt started: the new one is what applies.
        let found = try #require(board.request(besides: [old.identity, 0]))
        #expect(found.hasPrefix("n2:2 at 200.5: éé") && found.utf8.count <= 504)
        #expect(board.request(besides: [])?.hasPrefix("n1:1 at 100.0: an old one") == true)  // nothing stale: the first
        #expect(board.request(besides: [old.identity, new.identity]) == nil)
        // A look begun before a process took its snapshot is not believed by it.
        #expect(board.request(besides: [old.identity, 0], lookedSince: 501) == nil)
        board.confirm(lookStarted: 700)
        #expect(board.request(besides: [old.identity, 0], lookedSince: 501)?.hasPrefix("n2:2") == true)
        // Another process's view of the same page (a second mapping of the file).
        let other = RequestBoard.open(key: key)
        #expect(other.request(besides: [old.identity, 0])?.hasPrefix("n2:2") == true)
        board.publish([nil, nil], lookStarted: 600)
        #expect(other.identity(slot: 1) == 0 && other.request(besides: []) == nil)
        // Leadership: taken from nobody, refused to a second taker that saw nobody, given back.
        #expect(board.takeLead(from: 0) && board.leader == getpid())
        #expect(!other.takeLead(from: 0))
        board.resign()
        #expect(other.leader == 0 && other.takeLead(from: 0))
    }
}

/// Which stop requests apply to an attempt: all but those there when it started, known by what they
/// say, not by comparing two hosts' clocks.
@Suite struct StaleRequestsTests {
    static let old = StopRequest(requestedAt: 1_800_000_090, by: "n1:7", reason: "SIGUSR1 to gstop")  // a clock ahead

    @Test(arguments: [
        // the request in the file now, whether it applies
        (StopRequest(requestedAt: 1_800_000_090, by: "n1:7", reason: "SIGUSR1 to gstop"), false),  // the same request: stale
        (StopRequest(requestedAt: 1_799_999_910, by: "n2:8", reason: "request_stop()"), true),  // newer, from a clock 3 minutes behind
        (StopRequest(requestedAt: 1_800_000_090, by: "n1:9", reason: "SIGUSR1 to gstop"), true),  // same second, another writer
        (StopRequest(requestedAt: 1_800_000_090, by: "n1:7", reason: "SIGUSR1 to gstop", signal: SIGUSR1), true),
    ])
    func aRequestAppliesUnlessItIsTheOneThatWasThere(now: StopRequest, applies: Bool) {
        let stale = StaleRequests(identities: ["stop.12.request": Self.old.identity])
        #expect(stale.applies(now, in: "stop.12.request") == applies)
        #expect(stale.applies(Self.old, in: "stop.request"))  // the same words in the other file: that file held nothing
    }

    @Test func theSnapshotTravelsThroughTheEnvironment() throws {
        let stale = StaleRequests(identities: ["stop.request": 0xDEAD_BEEF_0000_0001, "stop.12_3.request": 42])
        #expect(stale.encoded == "stop.12_3.request=2a,stop.request=deadbeef00000001")
        #expect(StaleRequests.decode(stale.encoded) == stale)
        #expect(StaleRequests().encoded == "none" && StaleRequests.decode("none") == StaleRequests())
        #expect(StaleRequests.decode("stop.request=xyz") == nil && StaleRequests.decode("garbage") == nil)
        #expect(stale.identities(of: ["stop.request", "stop.9.request"]) == [0xDEAD_BEEF_0000_0001, 0])
        let absent = try #require(StaleRequests.decode("stop.request=0"))
        #expect(absent.identities.isEmpty && absent.encoded == "stop.request=0")
    }

    @Test func aJobFileTheSnapshotDidNotLookAtIsTakenWhenTheStateIsOpened() throws {
        // gstop in local mode looked at stop.request only; the command sets SLURM's variables, so
        // its job's file is stop.7.request, which an earlier attempt's process left behind.
        let temporary = TemporaryDirectory()
        let directory = try Directory(opening: temporary.path)
        let left = StopRequest(requestedAt: 5, by: "vm:1", reason: "SIGUSR1 to node 0's process")
        try left.write(to: directory, job: "7")
        let handed = try #require(StaleRequests.decode("stop.request=0"))
        let stale = handed.completed(for: ["stop.request", "stop.7.request"], in: directory)
        #expect(!stale.applies(left, in: "stop.7.request"))  // there before: not for this attempt
        let newer = StopRequest(requestedAt: 6, by: "vm:2", reason: "request_stop()")
        #expect(stale.applies(newer, in: "stop.7.request") && stale.applies(left, in: "stop.request"))
        // A file the snapshot did look at is never read again: what gstop saw is what counts.
        try left.write(to: directory, job: nil)
        #expect(handed.completed(for: ["stop.request"], in: directory) == handed)
    }
}
