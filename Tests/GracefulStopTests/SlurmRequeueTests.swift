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
                target: "12_3", restartsBefore: 2, deadline: deadline, now: { self.now }, pause: { self.pauses.append($0); self.now += $0 },
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

    @Test func theDeadlineLeavesKillWaitAndAMargin() {
        #expect(SlurmRequeue.deadline(endTime: 5000, now: 100) == 5000 - 30 - 10)
        #expect(SlurmRequeue.deadline(endTime: nil, now: 100) == 160)
    }
}
