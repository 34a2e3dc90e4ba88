import Glibc
import Testing

@testable import GracefulStop

/// The table of cases of RequeueDecision.decide: facts in, action and exit code out.
@Suite struct RequeueDecisionTests {
    typealias Row = (name: String, facts: RequeueFacts, action: RequeueDecision.Action, exitCode: Int32, reason: String)

    static func facts(
        _ cause: StopCause, _ exit: ChildExit = .exited(0), done: String? = nil, remaining: Int? = 5, restart: Int = 0, idle: Int = 0,
        failed: Int = 0, mode: RequeueMode = .task, limits: RequeueLimits = RequeueLimits(), target: String = "12_3",
        requeueAllowed: Bool? = true, route: String? = nil, release: SlurmRelease? = SlurmRelease(22, 5), held: Int = 0, elsewhere: Int = 0,
        unwritable: String? = nil, started: Bool = true, historyUnknown: String? = nil, progressed: Bool = false, diedOn: [UnitInFlight] = [],
        preemptions: Int = 0
    ) -> RequeueFacts {
        var facts = RequeueFacts(
            cause: cause, route: route, exit: exit, workDone: done, remaining: remaining, scope: "node 3", restartCount: restart, idleAttempts: idle,
            failedAttempts: failed, mode: mode, limits: limits, target: target, requeueAllowed: requeueAllowed, slurmRelease: release)
        facts.heldByOthers = held
        facts.claimedElsewhere = elsewhere
        facts.stateWriteFailure = unwritable
        facts.started = started
        facts.historyUnknown = historyUnknown
        facts.progressed = progressed
        facts.diedOn = diedOn
        facts.preemptions = preemptions
        return facts
    }

    static let logLost = "cannot append to /s/events.jsonl: no space left on the state's filesystem"

    static let notStarted: RequeueFacts = {
        var notStarted = Self.facts(.none, done: "run.done", remaining: 0)
        notStarted.started = false
        return notStarted
    }()

    static let rows: [Row] = [
        // The crash-loop guard without its memory (events.jsonl unwritable or unreadable).
        (
            "guard blind, attempt idle: not requeued blindly", facts(.warning(signal: SIGUSR1), historyUnknown: logLost), .stop, 74,
            "the crash-loop guard cannot count the attempts before this one, which got no unit done: \(logLost)"
        ),
        (
            "guard blind, but this attempt got units done: its own counts suffice",
            facts(.warning(signal: SIGUSR1), historyUnknown: logLost, progressed: true),
            .requeue(target: "12_3"), 0, "restart 1 of at most 20"
        ),
        (
            "guard blind, a failure to retry", facts(.none, .exited(1), failed: 1, limits: RequeueLimits(retryFailures: 2), historyUnknown: logLost),
            .stop, 74, "make events.jsonl in the state writable"
        ),
        (
            "guard blind, guards off", facts(.warning(signal: SIGUSR1), limits: RequeueLimits(maxIdleAttempts: 0), historyUnknown: logLost),
            .requeue(target: "12_3"), 0, "restart 1 of at most 20"
        ),
        ("guard blind, cancelled: the cancel decides", facts(.cancelled, historyUnknown: logLost), .stop, 75, "a cancel always ends the job"),
        // A unit that kills its worker, with default options.
        (
            "killed inside a unit: retried whatever --retry-failures says",
            facts(.none, .signaled(SIGKILL), failed: 1, diedOn: [UnitInFlight(unit: "u3", attempts: 1)]),
            .requeue(target: "12_3"), 0, "killed by SIGKILL while on u3, attempt 1 of 3"
        ),
        (
            "killed inside a unit: SIGKILL named as the OOM killer's",
            facts(.none, .signaled(SIGKILL), failed: 1, diedOn: [UnitInFlight(unit: "u3", attempts: 1)]),
            .requeue(target: "12_3"), 0, "(SIGKILL: the OOM killer's signal when a unit exceeds the job's memory, or a kill -9)"
        ),
        (
            "killed inside a unit the third time: quarantined, the rest goes on",
            facts(.none, .signaled(SIGKILL), failed: 3, diedOn: [UnitInFlight(unit: "u3", attempts: 3)]),
            .requeue(target: "12_3"), 0, "killed by SIGKILL while on u3, attempt 3 of 3, now quarantined"
        ),
        (
            "killed inside the last unit, now quarantined: finished with exit 65",
            {
                var f = facts(.none, .signaled(SIGKILL), remaining: 0, failed: 3, diedOn: [UnitInFlight(unit: "u9", attempts: 3)])
                f.quarantined = ["u9"]
                return f
            }(),
            .finish, 65, "1 unit quarantined (u9)"
        ),
        (
            "an exception out of the loop inside two units",
            facts(.none, .exited(1), diedOn: [UnitInFlight(unit: "a", attempts: 2), UnitInFlight(unit: "b", attempts: 1)]),
            .requeue(target: "12_3"), 0, "exit 1 while on a, attempt 2 of 3; b, attempt 1 of 3"
        ),
        (
            "killed inside a unit, quarantine off: today's rule",
            facts(
                .none, .signaled(SIGKILL), failed: 1, limits: RequeueLimits(maxUnitAttempts: 0),
                diedOn: [UnitInFlight(unit: "u3", attempts: 1)]), .stop, 137, "--retry-failures 0"
        ),
        (
            "killed inside a unit at --max-restarts", facts(.none, .signaled(SIGKILL), restart: 20, diedOn: [UnitInFlight(unit: "u3", attempts: 1)]),
            .stop, 75, "reached --max-restarts 20"
        ),
        ("all work done", facts(.warning(signal: SIGUSR1), done: "run.done"), .finish, 0, "all work is done (run.done)"),
        ("study done even when cancelled", facts(.cancelled, done: "study.done"), .finish, 0, "study.done"),
        (
            "done before it started: the line does not say the command ran", notStarted, .finish, 0,
            "the command was not started; all work is done (run.done)"
        ),
        ("warning with work left", facts(.warning(signal: SIGUSR1)), .requeue(target: "12_3"), 0, "node 3 has 5 units left"),
        ("time-limit TERM with work left", facts(.timeLimit), .requeue(target: "12_3"), 0, "restart 1 of at most 20"),
        ("deadline with work left", facts(.deadline), .requeue(target: "12_3"), 0, "deadline"),
        (
            "killed after the warning still requeues", facts(.warning(signal: SIGUSR1), .signaled(SIGKILL)), .requeue(target: "12_3"), 0,
            "killed by SIGKILL"
        ),
        ("warning, this node done", facts(.warning(signal: SIGUSR1), remaining: 0), .finish, 0, "node 3 has no units left"),
        ("warning on a sweep without units", facts(.warning(signal: SIGUSR1), remaining: nil), .requeue(target: "12_3"), 0, "the work is not done"),
        ("cancel never requeues", facts(.cancelled), .stop, 75, "a cancel always ends the job"),
        ("cancel after a warning never requeues", facts(.cancelled, .signaled(SIGTERM)), .stop, 75, "cancel"),
        (
            "preempted during GraceTime: gstop requeues, or SLURM would complete the job", facts(.preempted(requeuedBySlurm: false)),
            .requeue(target: "12_3"), 0, "SLURM 22.05 completes a preempted job whose script has exited"
        ),
        (
            "preempted during GraceTime on 24.11: SLURM requeues it when the script exits",
            facts(.preempted(requeuedBySlurm: false), release: SlurmRelease(24, 11)),
            .leaveToSlurm, 0, "SLURM 24.11 requeues a preempted job whose script exits during GraceTime by itself"
        ),
        (
            "preempted during GraceTime on 26.05", facts(.preempted(requeuedBySlurm: false), release: SlurmRelease(26, 5)), .leaveToSlurm, 0,
            "SLURM 26.05 requeues"
        ),
        (
            "preempted on 24.11 but not requeueable: said, not left to SLURM",
            facts(
                .preempted(requeuedBySlurm: false), requeueAllowed: false,
                release: SlurmRelease(24, 11)), .stop, 75, "Requeue=0"
        ),
        (
            "preempted, release unknown: gstop requeues", facts(.preempted(requeuedBySlurm: false), release: nil), .requeue(target: "12_3"), 0,
            "of an unknown release completes a preempted job"
        ),
        (
            "preempted on 23.11 (not known here): gstop requeues", facts(.preempted(requeuedBySlurm: false), release: SlurmRelease(23, 11)),
            .requeue(target: "12_3"), 0, "SLURM 23.11 completes"
        ),
        (
            "preempted and requeued by SLURM: not again", facts(.preempted(requeuedBySlurm: true)), .leaveToSlurm, 0,
            "does not requeue it a second time"
        ),
        ("node failure, SLURM requeued", facts(.nodeFailure(requeuedBySlurm: true)), .leaveToSlurm, 0, "a node of the job failed"),
        ("node failure, SLURM did not requeue", facts(.nodeFailure(requeuedBySlurm: false)), .requeue(target: "12_3"), 0, "node 3 has 5 units left"),
        ("an administrator's requeue", facts(.requeuedBySlurm(from: 0, to: 1)), .leaveToSlurm, 0, "Restarts 0 -> 1"),
        (
            "SLURM requeued, nothing left", facts(.preempted(requeuedBySlurm: true), remaining: 0), .leaveToSlurm, 0,
            "no units left for the next attempt"
        ),
        ("warning, but the job cannot be requeued", facts(.warning(signal: SIGUSR1), requeueAllowed: false), .stop, 75, "Requeue=0"),
        ("preempted, cannot be requeued", facts(.preempted(requeuedBySlurm: false), requeueAllowed: false), .stop, 75, "#SBATCH --requeue"),
        (
            "the route is in the line", facts(.warning(signal: SIGUSR1), route: "SIGUSR1 to the job's steps, node 1 on n2"), .requeue(target: "12_3"),
            0,
            "[SIGUSR1 to the job's steps, node 1 on n2]"
        ),
        ("interrupt", facts(.interrupted, .signaled(SIGINT)), .stop, 130, "an interrupt ends the job"),
        ("requested stop", facts(.requested("gstop stop")), .stop, 75, "a requested stop ends the job"),
        ("unclassified TERM", facts(.unclassifiedTerm("scontrol: not found")), .stop, 75, "a cancel must always end it"),
        ("failed on its own", facts(.none, .exited(3), failed: 1), .stop, 3, "failed on its own"),
        ("crashed by a signal", facts(.none, .signaled(SIGSEGV), failed: 1), .stop, 128 + SIGSEGV, "not requeued"),
        (
            "failure retried", facts(.none, .exited(3), failed: 2, limits: RequeueLimits(retryFailures: 2)), .requeue(target: "12_3"), 0,
            "failure 2 of 2 retried"
        ),
        ("failure retries used up", facts(.none, .exited(3), failed: 3, limits: RequeueLimits(retryFailures: 2)), .stop, 3, "2 retries used"),
        ("finished on its own", facts(.none, remaining: 0), .finish, 0, "no units left"),
        ("sweep finished on its own", facts(.none, remaining: nil), .finish, 0, "the command finished"),
        ("exited early without a stop", facts(.none, remaining: 4), .stop, 75, "nothing asked the command to stop"),
        ("restart limit", facts(.warning(signal: SIGUSR1), restart: 20), .stop, 75, "--max-restarts 20"),
        ("below the restart limit", facts(.warning(signal: SIGUSR1), restart: 19), .requeue(target: "12_3"), 0, "restart 20 of at most 20"),
        // Budgets: preemptions and node failures never use up --max-restarts.
        (
            "preempted past --max-restarts: its own budget",
            facts(.preempted(requeuedBySlurm: false), restart: 20, limits: RequeueLimits(maxRestarts: 2), preemptions: 20),
            .requeue(target: "12_3"), 0, "preemption 21, not counted against --max-restarts (0 of 2 used)"
        ),
        (
            "node failure past --max-restarts",
            facts(.nodeFailure(requeuedBySlurm: false), restart: 5, limits: RequeueLimits(maxRestarts: 1), preemptions: 4),
            .requeue(target: "12_3"), 0, "preemption 5, not counted against --max-restarts (1 of 1 used)"
        ),
        (
            "time limit after preemptions: only the others count",
            facts(.timeLimit, restart: 5, limits: RequeueLimits(maxRestarts: 2), preemptions: 4),
            .requeue(target: "12_3"), 0, "restart 2 of at most 2 (4 preemptions not counted)"
        ),
        (
            "time limit at --max-restarts besides preemptions", facts(.timeLimit, restart: 6, limits: RequeueLimits(maxRestarts: 2), preemptions: 4),
            .stop, 75, "restart 2 reached --max-restarts 2 (4 preemptions not counted); not requeued"
        ),
        (
            "failure retried at --max-restarts besides a preemption",
            facts(.none, .exited(3), restart: 3, failed: 1, limits: RequeueLimits(maxRestarts: 2, retryFailures: 3), preemptions: 1),
            .stop, 75, "restart 2 reached --max-restarts 2 (1 preemption not counted)"
        ),
        (
            "--max-preemptions reached",
            facts(.preempted(requeuedBySlurm: false), restart: 3, limits: RequeueLimits(maxPreemptions: 3), preemptions: 3),
            .stop, 75, "preemption 4 exceeds --max-preemptions 3; not requeued"
        ),
        (
            "below --max-preemptions",
            facts(.preempted(requeuedBySlurm: false), restart: 2, limits: RequeueLimits(maxPreemptions: 3), preemptions: 2),
            .requeue(target: "12_3"), 0, "preemption 3 of at most 3 (--max-preemptions)"
        ),
        ("no progress guard", facts(.timeLimit, idle: 3), .stop, 75, "3 attempts in a row marked no unit"),
        (
            "no progress guard, a sweep: attempts that finished no trial",
            facts(.timeLimit, remaining: nil, idle: 2, limits: RequeueLimits(maxIdleAttempts: 2)),
            .stop, 75, "2 attempts in a row finished no trial (--max-idle-attempts 2)"
        ),
        ("no progress guard off", facts(.timeLimit, idle: 9, limits: RequeueLimits(maxIdleAttempts: 0)), .requeue(target: "12_3"), 0, "restart"),
        ("requeue never reports only", facts(.warning(signal: SIGUSR1), mode: .never), .stop, 75, "would requeue 12_3"),
        ("whole array", facts(.warning(signal: SIGUSR1), mode: .array, target: "12"), .requeue(target: "12"), 0, "restart"),
        // Balancing (any number of workers over the shares): what a job answers for.
        (
            "balancing: the run is done, whoever did the units", facts(.warning(signal: SIGUSR1), done: "run.done", remaining: 0),
            .finish, 0, "all work is done (run.done)"
        ),
        (
            "balancing: this task's share was finished by others before its warning", facts(.warning(signal: SIGUSR1), remaining: 0),
            .finish, 0, "node 3 has no units left"
        ),
        (
            "balancing: a warned task whose last units live workers of other tasks hold", facts(.warning(signal: SIGUSR1), remaining: 2, held: 2),
            .finish, 0, "node 3 has no units left; 2 more held by live workers of other jobs, which finish them"
        ),
        (
            "balancing: a warned task with units left besides those others hold", facts(.timeLimit, remaining: 5, held: 2),
            .requeue(target: "12_3"), 0, "node 3 has 3 units left; 2 more held by live workers of other jobs"
        ),
        (
            "balancing: a task that finished early while others still work on its share", facts(.none, remaining: 1, held: 1),
            .finish, 0, "node 3 has no units left; 1 more held"
        ),
        (
            "balancing: a helper warned with a unit it took from another share unfinished",
            facts(.warning(signal: SIGUSR1), remaining: 0, elsewhere: 1),
            .requeue(target: "12_3"), 0, "node 3 has 1 unit left (1 of them begun by this job in other shares)"
        ),
        (
            "balancing: a helper that ends on its own with another share's unit unfinished", facts(.none, remaining: 0, elsewhere: 1),
            .stop, 75, "nothing asked the command to stop"
        ),
        // A state that cannot be written (no space, over quota, read-only): never requeued into it.
        (
            "a warning, and the state's filesystem is full", facts(.warning(signal: SIGUSR1), unwritable: "cannot write /s/x: no space left"),
            .stop, 75, "node 3 has 5 units left; the state cannot be written (cannot write /s/x: no space left): not requeued into it"
        ),
        (
            "a full state found before the command started", facts(.none, unwritable: "over quota", started: false),
            .stop, 75, "the command was not started; node 3 has 5 units left; the state cannot be written (over quota)"
        ),
        (
            "a command that failed on a full state",
            facts(.none, .exited(1), failed: 1, limits: RequeueLimits(retryFailures: 3), unwritable: "no space"),
            .stop, 75, "free space (or raise the quota), then submit the job again"
        ),
        (
            "a full state, but all work is done", facts(.warning(signal: SIGUSR1), done: "run.done", unwritable: "no space"),
            .finish, 0, "all work is done (run.done)"
        ),
        (
            "a full state does not keep a cancel from ending the job", facts(.cancelled, unwritable: "no space"), .stop, 75,
            "a cancel always ends the job"
        ),
        (
            "balancing: SLURM requeued a job with others' units held", facts(.preempted(requeuedBySlurm: true), remaining: 3, held: 1),
            .leaveToSlurm, 0, "node 3 has 2 units left for the next attempt; 1 more held by live workers of other jobs, which finish them"
        ),
    ]

    @Test(arguments: rows.indices)
    func decide(row: Int) {
        let (name, facts, action, exitCode, reason) = Self.rows[row]
        let decision = RequeueDecision.decide(facts)
        #expect(decision.action == action, "\(name): \(decision.line)")
        #expect(decision.exitCode == exitCode, "\(name): \(decision.line)")
        #expect(decision.line.contains(reason), "\(name): \(decision.line)")
    }
}

@Suite struct SlurmFactsTests {
    @Test func requeueIDsOfArrayTasksNeverUseTheJobID() {
        // For the last task of an array, SLURM_JOB_ID equals the array's id: requeueing it would requeue every task.
        let lastTask = SlurmJob(jobID: "40", arrayJobID: "40", arrayTaskID: "3")
        #expect(lastTask.requeueID(wholeArray: false) == "40_3")
        #expect(lastTask.requeueID(wholeArray: true) == "40")
        let otherTask = SlurmJob(jobID: "41", arrayJobID: "40", arrayTaskID: "0")
        #expect(otherTask.requeueID(wholeArray: false) == "40_0")
        #expect(SlurmJob(jobID: "7").requeueID(wholeArray: false) == "7")
        #expect(SlurmJob(jobID: "7").requeueID(wholeArray: true) == "7")
    }

    @Test(arguments: [
        ("cancel-term", "COMPLETING", "None", false),
        ("timelimit-term", "COMPLETING", "TimeLimit", true),
        ("cancel-running", "RUNNING", "None", false),
    ])
    func scontrolOutputCapturedOnARealCluster(file: String, state: String, reason: String, timeLimit: Bool) throws {
        let text = String(decoding: readFile(fixturesPath + "/scontrol/\(file).txt")!, as: UTF8.self)
        let info = try JobInfo.parse(text)
        #expect(info.state == state && info.reason == reason && info.isTimeLimit == timeLimit)
        #expect(!info.isPreempted)
        #expect(info.requeueAllowed == true)
    }

    /// Lines captured from the real cluster (scripts/slurm-cluster, SLURM 22.05).
    @Test func preemptionNodeFailureAndNoRequeueCapturedOnARealCluster() throws {
        func info(_ file: String) throws -> JobInfo {
            try JobInfo.parse(String(decoding: readFile(fixturesPath + "/scontrol/\(file).txt")!, as: UTF8.self), jobName: nil)
        }
        let grace = try info("preempt-step-term")
        #expect(grace.state == "RUNNING" && grace.preemptTime != nil && grace.isPreempted && grace.restarts == 0 && !grace.isTimeLimit)
        let graceEnd = try info("preempt-grace-end-term")
        #expect(graceEnd.state == "COMPLETING" && graceEnd.restarts == 1 && graceEnd.preemptTime == nil)
        let failed = try info("node-fail-term")
        #expect(failed.restarts == 1 && failed.nodeCount == 1 && failed.nodeList == "n1")
        #expect(try info("no-requeue-running").requeueAllowed == false)
    }

    /// Whatever a user writes into the job's name, comment, command or submit line never changes
    /// the state, reason, restarts or times gstop reads (a cancel must always end the job).
    @Test func userTextInFreeTextFieldsIsNeverReadAsTheJobsState() throws {
        let name = "evil JobState=COMPLETED Reason=TimeLimit UserId=root(0) Restarts=7"
        let line = String(decoding: readFile(fixturesPath + "/scontrol/free-text.txt")!, as: UTF8.self)
        let info = try JobInfo.parse(line, jobName: name)
        #expect(info.state == "RUNNING" && info.reason == "None" && info.restarts == 0 && info.requeueAllowed == true)
        #expect(info.endTime == nil && info.nodeList == "n1" && !info.isTimeLimit)
        // Without the name, a name that only adds Key=Value text ends at its first " UserId=".
        let plain = try JobInfo.parse(line.replacingFirst(name, with: "evil JobState=COMPLETED Reason=TimeLimit"), jobName: nil)
        #expect(plain.state == "RUNNING" && plain.reason == "None" && plain.restarts == 0)
    }

    @Test func releasesAsScontrolPrintsThem() {
        #expect(SlurmRelease(parsing: "slurm-wlm 22.05.8\n") == SlurmRelease(22, 5))
        #expect(SlurmRelease(parsing: "slurm 24.11.5") == SlurmRelease(24, 11))
        #expect(SlurmRelease(parsing: "slurm 26.05.0-rc1")?.requeuesPreemptedJobsThatExit == true)
        #expect(SlurmRelease(parsing: "slurm 23.02.7")?.requeuesPreemptedJobsThatExit == false)
        #expect(SlurmRelease(parsing: "scontrol: error") == nil)
    }

    @Test func endTimesAndPreemption() throws {
        let info = try JobInfo.parse("JobId=5 JobState=PREEMPTED Reason=None EndTime=2026-11-25T16:40:51 Restarts=2 Requeue=1")
        #expect(info.isPreempted && info.restarts == 2)
        var parts = tm()
        parts.tm_year = 126
        parts.tm_mon = 10
        parts.tm_mday = 25
        parts.tm_hour = 16
        parts.tm_min = 40
        parts.tm_sec = 51
        parts.tm_isdst = -1
        #expect(info.endTime == Double(mktime(&parts)))
        #expect(try JobInfo.parse("JobState=RUNNING EndTime=Unknown").endTime == nil)
        #expect(try JobInfo.parse("JobId=5 JobName=x JobState=RUNNING Reason=None PreemptTime=2026-11-25T16:40:51").isPreempted)
        #expect(throws: GracefulStopError.self) { try JobInfo.parse("slurm_load_jobs error: Invalid job id specified") }
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = firstRange(of: target) else { return self }
        return String(self[..<range.lowerBound]) + replacement + String(self[range.upperBound...])
    }
}

@Suite struct TimeSpanTests {
    @Test func formsPeopleWrite() throws {
        let cases: [(String, Double)] = [
            ("90", 90), ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2h", 7200), ("1d", 86400),
            ("1.5m", 90), ("250ms", 0.25), ("01:30", 90), ("1:00:00", 3600), ("1-00:00:10", 86410),
        ]
        for (text, seconds) in cases { #expect(try TimeSpan.parse(text) == seconds, "\(text)") }
        for bad in ["", "soon", "5x", "m", "-5s", "1:2:3:4", "1h-"] {
            #expect(throws: GracefulStopError.self, "\(bad)") { try TimeSpan.parse(bad) }
        }
        #expect(TimeSpan.format(5400) == "1h30m" && TimeSpan.format(45) == "45s" && TimeSpan.format(2.5) == "2.5s")
    }
}
