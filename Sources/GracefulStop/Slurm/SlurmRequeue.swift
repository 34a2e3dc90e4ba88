import Glibc

/// `scontrol requeue` through a slurmctld outage (a restart, a failover): tried again with a
/// growing pause for as long as the job has time left — until a margin before SLURM's KILL, which
/// comes KillWait after the job's end (and, while slurmctld is down, not at all: it is slurmctld
/// that enforces the limit) — and each try said in the job's log. Between tries SLURM
/// is asked whether the job was requeued anyway (a try that went through but whose answer was
/// lost), so a requeue is never made twice. The loop is pure but for the three functions it is
/// given, and tested with them (SlurmRequeueTests).
public struct SlurmRequeue {
    public struct Outcome: Sendable, Equatable {
        public var requeued: Bool
        public var tries: Int
        public var seconds: Double
        /// The last failure's words, when a try failed.
        public var lastError: String?
        /// SLURM showed the job requeued although scontrol requeue reported a failure.
        public var seenRequeued = false
        /// scontrol itself could not be run (missing, not permitted): not an outage, not tried again.
        public var cannotRun = false
    }

    /// KillWait of SLURM's default configuration (and of the tests' cluster): the time between the
    /// time limit's TERM and its KILL. gstop stops trying a margin before that KILL.
    public static let killWaitSeconds = 30.0
    public static let marginSeconds = 10.0
    /// Without a known end: how long to keep trying.
    public static let unknownEndSeconds = 60.0
    public static let firstPause = 1.0
    public static let longestPause = 30.0

    /// The unix time after which no try is begun: a margin before the KILL that follows the job's
    /// end by KillWait. (A time limit's TERM, with no warning before it, leaves KillWait less the
    /// margin to stop the command and reach slurmctld.)
    public static func deadline(endTime: Double?, now: Double) -> Double {
        endTime.map { $0 + killWaitSeconds - marginSeconds } ?? now + unknownEndSeconds
    }

    public static func run(
        target: String, restartsBefore: Int, deadline: Double, now: () -> Double, pause: (Double) -> Void,
        requeue: (String) throws -> Void, restartsNow: () -> Int?, report: (String) -> Void,
        stillTrying: (Outcome) -> Void = { _ in }
    ) -> Outcome {
        let started = now()
        var tries = 0
        var wait = firstPause
        var lastError: String? = nil
        while true {
            tries += 1
            // A try in an outage takes scontrol's own timeouts (~20 s here): none is begun that the
            // last one's length says would end after the deadline.
            let tryStarted = now()
            do {
                try requeue(target)
                return Outcome(requeued: true, tries: tries, seconds: now() - started, lastError: lastError)
            } catch let error as GracefulStopError where error.errno != 0 {
                // scontrol could not be started (Command.notStartable): no outage to wait out.
                return Outcome(requeued: false, tries: tries, seconds: now() - started, lastError: error.message, cannotRun: true)
            } catch let error as GracefulStopError {
                lastError = error.message
            } catch {
                lastError = "\(error)"
            }
            if let restarts = restartsNow(), restarts > restartsBefore {
                report("scontrol requeue \(target) reported a failure (\(lastError ?? "?")), but SLURM shows the job requeued (Restarts \(restarts))")
                return Outcome(requeued: true, tries: tries, seconds: now() - started, lastError: lastError, seenRequeued: true)
            }
            let left = deadline - now()
            guard left > wait + (now() - tryStarted) else {
                return Outcome(requeued: false, tries: tries, seconds: now() - started, lastError: lastError)
            }
            report(
                "scontrol requeue \(target) failed (try \(tries)): \(lastError ?? "?"); trying again in \(TimeSpan.format(wait)) "
                    + "(for up to \(TimeSpan.format(left)), a margin before SLURM's KILL)")
            stillTrying(Outcome(requeued: false, tries: tries, seconds: now() - started, lastError: lastError))
            pause(wait)
            wait = min(wait * 2, longestPause)
        }
    }
}

/// `scontrol show job` when a decision cannot be made without it — a TERM that scontrol could not
/// explain at the time (a cancel must end the job, a time limit requeues it) — tried with the same
/// growing pauses until the same deadline, each failure said.
public enum SlurmLookup {
    public static func run<Answer>(
        deadline: Double, now: () -> Double, pause: (Double) -> Void, lookUp: () throws -> Answer, report: (String) -> Void
    ) -> (answer: Answer?, tries: Int, lastError: String?) {
        var tries = 0
        var wait = SlurmRequeue.firstPause
        while true {
            tries += 1
            let tryStarted = now()
            let lastError: String
            do {
                return (try lookUp(), tries, nil)
            } catch let error as GracefulStopError {
                lastError = error.message
                if error.errno != 0 { return (nil, tries, lastError) }  // scontrol cannot run: no outage to wait out
            } catch {
                lastError = "\(error)"
            }
            let left = deadline - now()
            guard left > wait + (now() - tryStarted) else { return (nil, tries, lastError) }
            report(
                "scontrol show job failed (try \(tries)): \(lastError); trying again in \(TimeSpan.format(wait)) (for up to \(TimeSpan.format(left)))"
            )
            pause(wait)
            wait = min(wait * 2, SlurmRequeue.longestPause)
        }
    }
}

/// `requeue.failed`: written when gstop decided to requeue but could not reach slurmctld before
/// the job's end, so that the campaign does not end silently: `gstop status` shows it, and the next
/// `gstop run` of the state reports it (and removes it: that run goes on with the work). Written
/// already at the first failed try (`still_trying`) and removed when a try goes through, so that a
/// gstop killed while it tries leaves the same trace.
public enum RequeueFailure {
    public static let fileName = "requeue.failed"

    static func write(
        in directory: Directory, job: String, target: String, outcome: SlurmRequeue.Outcome, left: String,
        stillTrying: Bool = false
    ) throws {
        var json = JSONWriter()
        json.value(
            .object([
                ("still_trying", .bool(stillTrying)),
                ("job", .string(job)), ("target", .string(target)), ("tries", .number(Double(outcome.tries))),
                ("seconds", .number((outcome.seconds * 10).rounded() / 10)), ("last_error", outcome.lastError.map { .string($0) } ?? .null),
                ("left", .string(left)), ("decided_at", .number((Clock.unixSeconds() * 1000).rounded() / 1000)),
                ("what_to_do", .string(whatToDo(target: target))),
            ]))
        json.raw("\n")
        try directory.writeAtomically(fileName, json.bytes)
    }

    static func whatToDo(target: String) -> String {
        "run `scontrol requeue \(target)` once slurmctld answers, if SLURM still has the job; else submit the batch script again"
    }

    /// What the file says, or nil when there is none.
    static func read(in directory: Directory) -> JSONValue? {
        guard let bytes = try? directory.readFile(fileName, limit: Directory.recordLimit) else { return nil }
        var reader = JSONReader(bytes, source: fileName)
        return (try? reader.readValue()) ?? .object([("unreadable", .bool(true))])
    }

    /// One line for people.
    public static func describe(_ record: JSONValue, now: Double) -> String {
        let when = record["decided_at"]?.number.map { StatusReport.clock($0, now: now) } ?? "at an unknown time"
        let trying = record["still_trying"]?.bool == true ? "; gstop was still trying when this was written (it may have been killed)" : ""
        return "REQUEUE FAILED: job \(record["job"]?.string ?? "?") decided to requeue \(when) but never reached slurmctld "
            + "(\(record["tries"]?.int ?? 0) tries over \(TimeSpan.format(record["seconds"]?.number ?? 0)); last: \(record["last_error"]?.string ?? "?")\(trying)); "
            + "\(record["left"]?.string ?? "work was left"): \(record["what_to_do"]?.string ?? whatToDo(target: record["target"]?.string ?? "JOB"))"
    }
}
