import Glibc
import Testing

@testable import GracefulStop

/// `scontrol requeue` through a slurmctld outage, with a fake clock, scontrol and SLURM: the tries,
/// the pauses between them, the deadline, and a requeue that went through although scontrol said no.
@Suite struct SlurmRequeueTests {
    final class World {
        var now = 1000.0
        var failuresLeft: Int
        var restarts = 2
        var requeueGoesThroughSilently = false
        var pauses: [Double] = []
        var lines: [String] = []
        init(failures: Int) { failuresLeft = failures }

        func run(deadline: Double) -> SlurmRequeue.Outcome {
            SlurmRequeue.run(
                target: "12_3", restartsBefore: 2, deadline: deadline, now: { self.now },
                pause: {
                    self.pauses.append($0)
                    self.now += $0
                },
                requeue: { _ in
                    self.now += 0.5  // scontrol's own wait
                    if self.failuresLeft > 0 {
                        self.failuresLeft -= 1
                        if self.requeueGoesThroughSilently { self.restarts += 1 }
                        throw GracefulStopError(.system, "scontrol requeue 12_3 failed (exit 1): Unable to contact slurm controller")
                    }
                }, restartsNow: { self.failuresLeft > 0 && !self.requeueGoesThroughSilently ? nil : self.restarts },
                report: { self.lines.append($0) })
        }
    }

    @Test func aRequeueThatWorksAtOnce() {
        let world = World(failures: 0)
        #expect(world.run(deadline: 2000) == SlurmRequeue.Outcome(requeued: true, tries: 1, seconds: 0.5, lastError: nil))
        #expect(world.pauses.isEmpty && world.lines.isEmpty)
    }

    @Test func anOutageIsRiddenOutWithGrowingPauses() {
        let world = World(failures: 6)
        let outcome = world.run(deadline: 2000)
        #expect(outcome.requeued && outcome.tries == 7 && outcome.lastError?.contains("Unable to contact") == true)
        #expect(world.pauses == [1, 2, 4, 8, 16, 30])
        #expect(world.lines.count == 6 && world.lines[0].hasPrefix("scontrol requeue 12_3 failed (try 1): scontrol requeue 12_3 failed (exit 1)"))
    }

    @Test func anOutageLongerThanTheJobHasLeftEndsBeforeTheDeadline() {
        let world = World(failures: 1000)
        let outcome = world.run(deadline: 1100)
        // Tries at 1000, 1001.5, 1004, 1008.5, 1017, 1033.5, 1064 and 1094.5 (each takes scontrol 0.5 s);
        // the next pause (30 s) would end after the deadline: no ninth try, gstop is done by 1100.
        #expect(!outcome.requeued && outcome.tries == 8 && world.now <= 1100)
        #expect(world.pauses == [1, 2, 4, 8, 16, 30, 30])
    }

    @Test func aRequeueThatWentThroughDespiteItsAnswerIsNotMadeTwice() {
        let world = World(failures: 1)
        world.requeueGoesThroughSilently = true
        let outcome = world.run(deadline: 2000)
        #expect(outcome.requeued && outcome.seenRequeued && outcome.tries == 1 && world.pauses.isEmpty)
    }

    @Test func aScontrolThatCannotRunIsNotTriedAgain() {
        var tries = 0
        let outcome = SlurmRequeue.run(
            target: "7", restartsBefore: 0, deadline: 2000, now: { 1000 }, pause: { _ in Issue.record("paused") },
            requeue: { _ in
                tries += 1
                throw GracefulStopError(.system, "command not found: scontrol (is it installed and on PATH?)", errno: ENOENT)
            }, restartsNow: { nil }, report: { _ in })
        #expect(!outcome.requeued && outcome.cannotRun && tries == 1 && outcome.lastError?.hasPrefix("command not found") == true)
    }

    @Test func theDeadlineIsAMarginBeforeTheKillThatFollowsTheEndByKillWait() {
        #expect(SlurmRequeue.deadline(endTime: 5000, now: 100) == 5000 + 30 - 10)
        #expect(SlurmRequeue.deadline(endTime: nil, now: 100) == 160)
    }

    @Test func eachFailedTryIsReportedAsStillTryingBeforeThePause() {
        let world = World(failures: 3)
        var sofar: [SlurmRequeue.Outcome] = []
        let outcome = SlurmRequeue.run(
            target: "12_3", restartsBefore: 2, deadline: 2000, now: { world.now }, pause: { world.now += $0 },
            requeue: { _ in
                if world.failuresLeft > 0 {
                    world.failuresLeft -= 1
                    throw GracefulStopError(.system, "down")
                }
            }, restartsNow: { nil }, report: { _ in }, stillTrying: { sofar.append($0) })
        #expect(outcome.requeued && outcome.tries == 4)
        #expect(sofar.map(\.tries) == [1, 2, 3] && sofar.allSatisfy { !$0.requeued && $0.lastError == "down" })
    }

    // MARK: - scontrol show job when a decision needs it

    @Test(arguments: [
        // failures before an answer, deadline (from 1000), tries, answered, pauses
        (0, 2000.0, 1, true, [Double]()),
        (3, 2000.0, 4, true, [1, 2, 4]),
        (100, 1010.0, 4, false, [1, 2, 4]),  // the next pause (8 s) would pass the deadline at 1007
        (100, 1000.5, 1, false, []),
    ])
    func aLookupIsTriedUntilItAnswersOrTheDeadline(failures: Int, deadline: Double, tries: Int, answered: Bool, pauses: [Double]) {
        var now = 1000.0
        var left = failures
        var paused: [Double] = []
        var lines: [String] = []
        let found = SlurmLookup.run(
            deadline: deadline, now: { now },
            pause: {
                paused.append($0)
                now += $0
            },
            lookUp: { () throws -> Int in
                if left > 0 {
                    left -= 1
                    throw GracefulStopError(.system, "Unable to contact slurm controller")
                }
                return 7
            }, report: { lines.append($0) })
        #expect(found.tries == tries && (found.answer == 7) == answered && paused == pauses)
        #expect(lines.count == paused.count && (answered ? found.lastError == nil : found.lastError == "Unable to contact slurm controller"))
    }

    @Test func aLookupWhoseScontrolCannotRunIsNotTriedAgain() {
        var tries = 0
        let found = SlurmLookup.run(
            deadline: 2000, now: { 1000 }, pause: { _ in Issue.record("paused") },
            lookUp: { () throws -> Int in
                tries += 1
                throw GracefulStopError(.system, "command not found: scontrol", errno: ENOENT)
            },
            report: { _ in })
        #expect(found.answer == nil && tries == 1)
    }
}
