import Glibc

/// What stopped one process of a job: written once, by the library, when `should_stop()` first
/// turns true in a process that runs under gstop or SLURM; read by gstop after its command ends.
///
/// It is how gstop learns of a stop that never reached it: `--signal=USR1@N` without `B:`,
/// `scancel --signal=USR1` without `-b`, and a preemption's TERM all signal the job's steps, not
/// the batch shell where gstop waits. The record is a `process_stop` line in events.jsonl (which
/// signal, request or deadline; which node, host and pid; which attempt). For a signal the process
/// also writes the job's stop request, carrying the signal, so that the job's other nodes stop
/// too and gstop still knows the signal if the events line is lost.
public struct ProcessStop: Sendable, Equatable {
    public static let event = "process_stop"

    public var reason: StopCheck.Reason
    /// The signal, for reason `.signal`; 0 otherwise.
    public var signal: Int32
    public var node: Int
    public var host: String
    public var detail: String

    public init(reason: StopCheck.Reason, signal: Int32 = 0, node: Int = 0, host: String = "", detail: String = "") {
        self.reason = reason
        self.signal = signal
        self.node = node
        self.host = host
        self.detail = detail
    }

    /// Where it happened, for decision lines: "node 1 on n2".
    public var place: String { "node \(node)" + (host.isEmpty ? "" : " on \(host)") }

    /// The records of the attempt that started at `attemptStart` (GRACEFULSTOP_ATTEMPT_START as
    /// gstop set it, compared as text), from the events log.
    static func records(in events: [JSONValue], attemptStart: String) -> [ProcessStop] {
        events.compactMap { event in
            guard event["event"]?.string == ProcessStop.event, event["attempt_start"]?.string == attemptStart,
                let reasonName = event["reason"]?.string, let reason = StopCheck.Reason(name: reasonName)
            else { return nil }
            return ProcessStop(
                reason: reason, signal: event["signal"]?.string.flatMap { try? StopSignals.parse($0).first } ?? 0,
                node: event["node"]?.int ?? 0, host: event["host"]?.string ?? "", detail: event["detail"]?.string ?? "")
        }
    }
}

/// Writes a process's `ProcessStop`: present only under gstop (GRACEFULSTOP_ATTEMPT_START) or
/// SLURM (SLURM_JOB_ID), with a state directory. Best effort: a stop must never fail because its
/// record could not be written (gstop then falls back on what scontrol says).
struct ProcessStopRecorder: Sendable {
    let directory: Directory
    let node: Int
    /// The SLURM job as stop requests scope it; nil outside SLURM (then no request is written:
    /// gstop, which started the process, writes its own).
    let job: String?
    let attemptStart: String?

    static func make(directory: Directory?, node: Int) -> ProcessStopRecorder? {
        guard let directory else { return nil }
        let attemptStart = Environment.value(Environment.attemptStart)
        let job = Environment.job()
        guard attemptStart != nil || job != nil else { return nil }
        return ProcessStopRecorder(directory: directory, node: node, job: job, attemptStart: attemptStart)
    }

    func record(_ reason: StopCheck.Reason, signal: Int32, detail: String) {
        if reason == .signal, job != nil {
            // The request first: the other nodes are waiting for it, the log line is for later.
            let request = StopRequest(
                requestedAt: Clock.unixSeconds(), by: "\(HostName.current):\(getpid())",
                reason: "\(StopSignals.name(of: signal)) to node \(node)'s process", signal: signal)
            try? request.write(to: directory, job: job)
        }
        var fields: [(String, JSONValue)] = [
            ("event", .string(ProcessStop.event)), ("job", job.map { .string($0) } ?? .null), ("node", .number(Double(node))),
            ("host", .string(HostName.current)), ("pid", .number(Double(getpid()))), ("reason", .string(reason.name)),
        ]
        if reason == .signal { fields.append(("signal", .string(StopSignals.name(of: signal)))) }
        fields += [
            ("detail", .string(detail)), ("attempt_start", attemptStart.map { .string($0) } ?? .null),
            ("restart", .number(Double(Environment.restarts()))),
        ]
        // Not fsync'd: this runs inside the first should_stop() that sees the stop, whose answer
        // should not wait for a disk; gstop reads the line seconds later from the page cache (or,
        // on NFS, after the close that flushed it).
        try? EventLog.append(fields, in: directory, durable: false)
    }
}

extension StopCheck.Reason {
    var name: String {
        switch self {
        case .none: return "none"
        case .signal: return "signal"
        case .request: return "request"
        case .deadline: return "deadline"
        }
    }

    init?(name: String) {
        switch name {
        case "signal": self = .signal
        case "request": self = .request
        case "deadline": self = .deadline
        default: return nil
        }
    }
}
