import Glibc
import Testing

@testable import GracefulStop

/// The table of cases of AttemptEnd.classify: what reached gstop, what the command's processes
/// recorded, and what scontrol said, in; the cause and its route out. The scontrol states are
/// the ones the real cluster shows (Tests/Fixtures/scontrol): a time limit is COMPLETING
/// Reason=TimeLimit; a preemption is RUNNING with PreemptTime during GraceTime and COMPLETING with
/// Restarts moved after it; a node failure is COMPLETING with Restarts moved and fewer nodes.
@Suite struct AttemptEndTests {
    typealias Row = (name: String, facts: AttemptFacts, cause: StopCause, route: String?)

    static let running = JobInfo(state: "RUNNING", restarts: 0, requeueAllowed: true, nodeList: "n[1-2]", nodeCount: 2)
    static let timeLimit = JobInfo(state: "COMPLETING", reason: "TimeLimit", restarts: 0, nodeList: "n[1-2]", nodeCount: 2)
    static let cancelling = JobInfo(state: "COMPLETING", restarts: 0, nodeList: "n[1-2]", nodeCount: 2)
    static let inGrace = JobInfo(state: "RUNNING", restarts: 0, preemptTime: 1_800_000_000, nodeList: "n[1-2]", nodeCount: 2)
    static let afterGrace = JobInfo(state: "COMPLETING", restarts: 1, nodeList: "n[1-2]", nodeCount: 2)
    static let lostNode = JobInfo(state: "COMPLETING", restarts: 1, nodeList: "n1", nodeCount: 1)

    static func facts(
        _ toGstop: [AttemptFacts.ToGstop] = [], steps: [ProcessStop] = [], request: StopRequest? = nil, deadline: Bool = false,
        slurm: Bool = true, end: JobInfo? = running, endError: String? = nil
    ) -> AttemptFacts {
        var facts = AttemptFacts(underSlurm: slurm, restartAtStart: 0)
        facts.toGstop = toGstop
        facts.processStops = steps
        facts.request = request
        facts.deadlinePassed = deadline
        facts.jobAtStart = slurm ? running : nil
        facts.jobAtEnd = slurm ? end : nil
        facts.endLookupError = endError
        return facts
    }

    static func step(_ signal: Int32, node: Int = 1) -> ProcessStop {
        ProcessStop(reason: .signal, signal: signal, node: node, host: "n2")
    }

    static let rows: [Row] = [
        ("nothing: ended on its own", facts(), .none, nil),
        ("USR1 to gstop (B:)", facts([.signal(SIGUSR1)]), .warning(signal: SIGUSR1), "SIGUSR1 to gstop"),
        ("TERM to gstop at the time limit", facts([.signal(SIGTERM, job: timeLimit)]), .timeLimit, "SIGTERM to gstop"),
        ("TERM to gstop from scancel", facts([.signal(SIGTERM, job: cancelling)]), .cancelled, "SIGTERM to gstop"),
        ("warning, then scancel: the cancel wins", facts([.signal(SIGUSR1), .signal(SIGTERM, job: cancelling)]), .cancelled, "SIGTERM to gstop"),
        ("warning, then the limit's TERM", facts([.signal(SIGUSR1), .signal(SIGTERM, job: timeLimit)]), .timeLimit, "SIGTERM to gstop"),
        (
            "TERM, scontrol failed then and at the end", facts([.signal(SIGTERM, lookupError: "scontrol: not found")], end: nil),
            .unclassifiedTerm("scontrol: not found"), "SIGTERM to gstop"
        ),
        (
            "TERM in a slurmctld outage, the time limit seen at the end",
            facts([.signal(SIGTERM, lookupError: "Unable to contact slurm controller")], end: timeLimit),
            .timeLimit, "SIGTERM to gstop"
        ),
        (
            "TERM in a slurmctld outage, a cancel seen at the end",
            facts([.signal(SIGTERM, lookupError: "Unable to contact slurm controller")], end: cancelling),
            .cancelled, "SIGTERM to gstop"
        ),
        ("USR1 to the steps (no B:)", facts(steps: [step(SIGUSR1)]), .warning(signal: SIGUSR1), "SIGUSR1 to the job's steps, node 1 on n2"),
        (
            "TERM to the steps at a preemption", facts(steps: [step(SIGTERM)], end: inGrace), .preempted(requeuedBySlurm: false),
            "SIGTERM to the job's steps, node 1 on n2"
        ),
        (
            "TERM to the steps, no preemption: scancel --signal=TERM", facts(steps: [step(SIGTERM)]), .cancelled,
            "SIGTERM to the job's steps, node 1 on n2"
        ),
        (
            "TERM to the steps, scontrol failed", facts(steps: [step(SIGTERM)], end: nil, endError: "timeout"), .unclassifiedTerm("timeout"),
            "SIGTERM to the job's steps, node 1 on n2"
        ),
        (
            "TERM to gstop when GraceTime ends: SLURM requeued", facts([.signal(SIGTERM, job: afterGrace)]), .requeuedBySlurm(from: 0, to: 1),
            "SIGTERM to gstop"
        ),
        (
            "preempted, seen only in scontrol at the end", facts(end: inGrace), .preempted(requeuedBySlurm: false),
            "seen in scontrol show job after the command ended"
        ),
        ("the user signal a preemption sends", facts([.signal(SIGUSR1)], end: inGrace), .preempted(requeuedBySlurm: false), "SIGUSR1 to gstop"),
        (
            "preempted, and SLURM requeued already",
            facts(
                [.signal(SIGTERM, job: afterGrace)], end: JobInfo(state: "COMPLETING", restarts: 1, preemptTime: 1, nodeList: "n[1-2]", nodeCount: 2)),
            .requeuedBySlurm(from: 0, to: 1), "SIGTERM to gstop"
        ),
        (
            "node failure: TERM to gstop, a node gone, Restarts moved", facts([.signal(SIGTERM, job: lostNode)]), .nodeFailure(requeuedBySlurm: true),
            "SIGTERM to gstop"
        ),
        (
            "node failure seen after the command failed", facts(end: lostNode), .nodeFailure(requeuedBySlurm: true),
            "seen in scontrol show job after the command ended"
        ),
        (
            "another node's step signal, through its request",
            facts(request: StopRequest(requestedAt: 1, by: "n3:77", reason: "SIGUSR1 to node 2's process", signal: SIGUSR1)),
            .warning(signal: SIGUSR1), "SIGUSR1 to node 2's process, by n3:77"
        ),
        (
            "a person's request", facts(request: StopRequest(requestedAt: 1, by: "login:5", reason: "gstop stop")),
            .requested("gstop stop, by login:5"), nil
        ),
        ("the deadline", facts(deadline: true), .deadline, nil),
        ("a process stopped at its deadline", facts(steps: [ProcessStop(reason: .deadline, node: 0)]), .deadline, "node 0"),
        (
            "a process did not begin a unit it had no time for",
            facts(steps: [ProcessStop(reason: .deadline, node: 2, host: "n3", detail: "the next unit needs ~3s, 1s left")]),
            .deadline, "the next unit needs ~3s, 1s left, node 2 on n3"
        ),
        (
            "a step signal beats the deadline that passed while stopping", facts(steps: [step(SIGUSR1)], deadline: true), .warning(signal: SIGUSR1),
            "SIGUSR1 to the job's steps, node 1 on n2"
        ),
        ("local mode: warning", facts([.localWarning], slurm: false), .warning(signal: SIGUSR1), "local mode's warning"),
        ("local mode: TERM is somebody ending it", facts([.signal(SIGTERM)], slurm: false), .cancelled, "SIGTERM to gstop"),
        (
            "local mode: a signal to the command itself", facts(steps: [step(SIGUSR1, node: 0)], slurm: false), .warning(signal: SIGUSR1),
            "SIGUSR1 to the job's steps, node 0 on n2"
        ),
        ("interrupt wins", facts([.signal(SIGUSR1), .interrupt]), .interrupted, "SIGINT to gstop"),
    ]

    @Test(arguments: rows.indices)
    func classify(row: Int) {
        let (name, facts, cause, route) = Self.rows[row]
        let end = AttemptEnd.classify(facts)
        #expect(end.cause == cause, "\(name): \(end.cause.description)")
        #expect(end.route == route, "\(name): \(end.route ?? "nil")")
    }
}
