import Glibc

/// What `gstop doctor` knows about a job before it runs (or while it runs): gathered at the edges
/// (PreflightFacts.gather), judged here by a pure function, so that every verdict is a table row.
public struct PreflightFacts: Sendable {
    /// The `--signal` in force (nil: none).
    public var signal: SignalOption?
    /// Whether sbatch's command line was seen (scontrol's SubmitLine; not printed before 23.02 or
    /// so): when not, a --signal given there is unknown, not missing.
    public var submitLineSeen = true
    /// The signals gstop traps (its --signals; default USR1 and TERM).
    public var gracefulSignals: [Int32] = [SIGUSR1, SIGTERM]
    /// scontrol's Requeue= for a running job; nil outside a job.
    public var requeueAllowed: Bool?
    /// The script (or submit line) says --no-requeue / --requeue.
    public var scriptSaysNoRequeue = false
    public var scriptSaysRequeue = false
    public var scontrolOnPath = true
    public var stateDirectory: String?
    /// statfs's type of the state directory (or of its nearest existing parent): "nfs", "ext4"...
    public var fileSystem: String?
    public var stateExists = false
    /// Why a test file could not be created there, if it could not.
    public var writeError: String?
    /// Nodes and tasks of the job (nil when unknown).
    public var nodes: Int?
    public var tasks: Int?
    /// How many nodes the state's manifest shares its units among (nil: no manifest yet, or a sweep).
    public var stateNodes: Int?
    /// The longest time one unit took, from consecutive markers of a node (nil: not enough seen).
    public var longestUnitSeconds: Double?
    /// The batch script execs gstop (nil: no script to look at).
    public var execsGstop: Bool?
    /// `trap` lines of the batch script that catch a stop signal.
    public var scriptTraps: [String] = []
    public var scriptRequeuesItself = false
    /// The script's gstop runs torchrun without `--child-signal none` (torchrun dies from USR1).
    public var torchrunGetsUSR1 = false
    /// The script's gstop runs an MPI launcher (mpirun, mpiexec, orterun, prterun): its name and
    /// the --child-signal given (nil: the default, USR1).
    public var mpiLauncher: (name: String, childSignal: String?)? = nil
    /// Files of the job (the script, the Python it runs) that use Lightning without gracefulstop's callback.
    public var lightningWithoutCallback: [String] = []
    /// The job has a TimeMin (scontrol), or the script or submit line sets --time-min; nil: no job
    /// and no script to tell.
    public var timeMinSet: Bool? = nil
    /// The script's gstop runs with --right-size off.
    public var rightSizeOff = false

    public init() {}
}

public struct Finding: Sendable, Equatable {
    public enum Status: String, Sendable { case ok, warning, problem }
    public var check: String
    public var status: Status
    public var message: String
    public var fix: String?
}

public enum Preflight {
    /// SLURM checks signal times once a minute: a warning may come up to 60 s early, never late.
    static let earlyDelivery = 60

    public static func check(_ facts: PreflightFacts) -> [Finding] {
        var findings: [Finding] = []
        func add(_ check: String, _ status: Finding.Status, _ message: String, fix: String? = nil) {
            findings.append(Finding(check: check, status: status, message: message, fix: fix))
        }
        let lead = facts.signal?.seconds ?? 300
        let suggestedLead = max(lead, Int(saturating: (facts.longestUnitSeconds ?? 0) * 1.25 + 30))
        // The warning.
        if let signal = facts.signal {
            if signal.signal == nil {
                add(
                    "signal", .problem, "--signal=\(signal.text): \(signal.signalName) is not a signal gstop knows",
                    fix: "--signal=B:USR1@\(suggestedLead)")
            } else if !signal.toBatchShell {
                add(
                    "signal", .warning,
                    "--signal=\(signal.text) goes to the job's steps, not to the batch shell where gstop waits: "
                        + "processes started with srun record it in the state and gstop follows, but a command that is not a step "
                        + "(a plain `python ...`) never gets it and runs into the time limit",
                    fix: "--signal=B:\(signal.signalName)@\(signal.seconds)")
            } else if let number = signal.signal, !facts.gracefulSignals.contains(number) {
                add(
                    "signal", .problem,
                    "--signal=\(signal.text): gstop does not treat \(signal.signalName) as a warning (it traps "
                        + facts.gracefulSignals.map { StopSignals.name(of: $0) }.joined(separator: ", ") + ")",
                    fix: "--signal=B:USR1@\(signal.seconds), or gstop run --signals \(signal.signalName),TERM")
            } else {
                add(
                    "signal", .ok,
                    "--signal=\(signal.text) reaches gstop (the batch shell) \(signal.seconds)-\(signal.seconds + earlyDelivery) s before the time limit"
                )
            }
        } else if !facts.submitLineSeen {
            add(
                "signal", .warning,
                "no --signal in the batch script, and this SLURM's scontrol does not show sbatch's command line: "
                    + "without one SLURM sends no warning, only TERM at the time limit",
                fix: "#SBATCH --signal=B:USR1@\(suggestedLead) (in the script, where it is seen)")
        } else {
            add(
                "signal", .problem,
                "no --signal: SLURM sends no warning, only TERM at the time limit and KILL KillWait (30 s by default) "
                    + "later; gstop stops the command then, with little time to finish a unit", fix: "#SBATCH --signal=B:USR1@\(suggestedLead)")
        }
        if let signal = facts.signal, signal.signal != nil {
            if let longest = facts.longestUnitSeconds, Double(signal.seconds) < longest * 1.25 + 30 {
                add(
                    "warning lead", .warning,
                    "units have taken up to \(Int(saturating: longest, rounding: .toNearestOrAwayFromZero)) s, but the warning comes \(signal.seconds) s "
                        + "before the end (SLURM may send it up to \(earlyDelivery) s earlier, never later): a unit that starts just before "
                        + "it cannot finish and is done again next time", fix: "--signal=B:\(signal.signalName)@\(suggestedLead)")
            } else if signal.seconds < 60 {
                add(
                    "warning lead", .warning,
                    "a warning \(signal.seconds) s before the end leaves little time to finish a unit, write the "
                        + "decision and requeue", fix: "--signal=B:\(signal.signalName)@\(max(suggestedLead, 120))")
            } else {
                add(
                    "warning lead", .ok,
                    "\(signal.seconds) s"
                        + (facts.longestUnitSeconds.map { "; units have taken up to \(Int(saturating: $0, rounding: .toNearestOrAwayFromZero)) s" }
                            ?? ""))
            }
        }
        // The requeue.
        if facts.requeueAllowed == false {
            add(
                "requeue", .problem, "scontrol says Requeue=0 for this job: gstop cannot requeue it (--no-requeue, or the site's JobRequeue=0)",
                fix: "#SBATCH --requeue")
        } else if facts.scriptSaysNoRequeue {
            add("requeue", .problem, "the job is submitted with --no-requeue: gstop cannot requeue it", fix: "#SBATCH --requeue")
        } else if facts.requeueAllowed == true || facts.scriptSaysRequeue {
            add("requeue", .ok, "the job can be requeued")
        } else {
            add(
                "requeue", .warning,
                "neither --requeue nor a running job to ask: whether the job can be requeued depends on the site's "
                    + "JobRequeue", fix: "#SBATCH --requeue")
        }
        if !facts.scontrolOnPath {
            add(
                "scontrol", .problem, "scontrol is not on PATH: gstop cannot read the job's state or requeue it",
                fix: "load the SLURM module (or add SLURM's bin directory to PATH) before `exec gstop run`")
        } else {
            add("scontrol", .ok, "scontrol is on PATH")
        }
        // The state directory.
        if let path = facts.stateDirectory {
            let shared = facts.fileSystem.map(isShared)
            let many = (facts.nodes ?? 1) > 1
            if let error = facts.writeError {
                add(
                    "state directory", .problem, "\(path): cannot write there: \(error)",
                    fix: "choose a writable directory on a filesystem every node sees")
            } else if shared == false && many {
                add(
                    "state directory", .problem,
                    "\(path) is on \(facts.fileSystem!), which only this node sees, but the job has \(facts.nodes!) nodes",
                    fix: "put the state on the shared filesystem (NFS, Lustre, GPFS: where your home or project directory is)")
            } else if shared == false {
                add(
                    "state directory", .warning,
                    "\(path) is on \(facts.fileSystem!), which only this node sees: a requeued job may start on another node and not find it",
                    fix: "put the state on the shared filesystem (NFS, Lustre, GPFS)")
            } else {
                add(
                    "state directory", .ok,
                    "\(path)" + (facts.fileSystem.map { " on \($0)" } ?? "") + (facts.stateExists ? "" : " (gstop run creates it)"))
            }
        } else {
            add(
                "state directory", .problem, "no state directory: set GRACEFULSTOP_STATE_DIR or pass --state",
                fix: "export GRACEFULSTOP_STATE_DIR=$HOME/states/$SLURM_JOB_NAME")
        }
        // Tasks and the way the state shares its units.
        if let tasks = facts.tasks, let stateNodes = facts.stateNodes, tasks > 1, tasks != stateNodes {
            add(
                "tasks", .problem,
                "the job runs \(tasks) tasks but the state shares its units among \(stateNodes) nodes: "
                    + (tasks > stateNodes
                        ? "tasks beyond \(stateNodes - 1) have no share" : "the shares of nodes \(tasks)-\(stateNodes - 1) are never worked on"),
                fix: "gstop init --nodes \(tasks) (one share per srun task), or run \(stateNodes) tasks")
        } else if let tasks = facts.tasks, let stateNodes = facts.stateNodes {
            add("tasks", .ok, "\(tasks) task\(tasks == 1 ? "" : "s"), units shared among \(stateNodes) node\(stateNodes == 1 ? "" : "s")")
        }
        // What would compete with gstop.
        if facts.execsGstop == false {
            add(
                "exec", .warning,
                "the batch script does not `exec gstop run`: bash stays between SLURM and gstop, and a B: signal "
                    + "reaches bash, which runs traps only after its child exits", fix: "exec gstop run -- python train.py")
        }
        for trap in facts.scriptTraps {
            add(
                "competing handler", .warning, "the script traps a stop signal itself (`\(trap)`): gstop already turns the warning into a stop",
                fix: "remove the trap")
        }
        if facts.scriptRequeuesItself {
            add(
                "competing requeue", .warning, "the script runs `scontrol requeue` itself: with gstop's requeue on top, the job is requeued twice",
                fix: "remove it: gstop requeues when work remains")
        }
        if facts.torchrunGetsUSR1 {
            add(
                "torchrun", .problem,
                "gstop runs torchrun, which dies from USR1 (it forwards only INT, TERM, HUP and QUIT to its "
                    + "workers): the warning would kill the job instead of stopping it",
                fix: "exec gstop run --child-signal none -- torchrun ... "
                    + "(the ranks read gstop's stop request from the state within a second)")
        }
        if let launcher = facts.mpiLauncher {
            let signal = (launcher.childSignal ?? "USR1").uppercased()
            if ["TERM", "SIGTERM", "15", "INT", "SIGINT", "2"].contains(signal) {
                add(
                    "mpirun", .problem,
                    "gstop asks \(launcher.name) to stop with \(signal), on which mpirun aborts the whole job (its ranks "
                        + "get TERM, then KILL): units in flight are lost",
                    fix: "exec gstop run -- \(launcher.name) ... (the default USR1, which "
                        + "OpenMPI 4's mpirun forwards to every rank), or --child-signal none")
            } else if launcher.name.hasSuffix("prterun") && signal != "NONE" {
                add(
                    "mpirun", .warning,
                    "gstop runs \(launcher.name) (OpenMPI 5), which forwards USR1 to its ranks only when told to "
                        + "(--forward-signals); a signal it does not forward may end it",
                    fix: "exec gstop run --child-signal none -- \(launcher.name) ... "
                        + "(the ranks read gstop's stop request from the state within a second)")
            } else {
                add(
                    "mpirun", .ok,
                    "gstop runs \(launcher.name) with --child-signal \(signal.lowercased()): OpenMPI 4's mpirun forwards USR1 "
                        + "to every rank; each rank works on its own share (OMPI_COMM_WORLD_RANK), so create the state with one share per rank")
            }
        }
        if facts.timeMinSet == false {
            add(
                "time-min", .ok,
                facts.rightSizeOff
                    ? "no --time-min, and --right-size off: every attempt asks the scheduler for the whole --time"
                    : "no --time-min: after a requeue gstop sets the job's TimeMin and lowers its TimeLimit to what the "
                        + "remaining units need (--right-size); the first attempt asks for the whole --time unless you give one",
                fix: "#SBATCH --time-min=MINUTES (the least time worth starting for: backfill may then start the job in a gap that long)")
        }
        for file in facts.lightningWithoutCallback {
            add(
                "competing handler", .warning,
                "\(file) uses Lightning without gracefulstop.lightning.GracefulStop: under SLURM Lightning "
                    + "replaces gracefulstop's handlers and requeues the job itself",
                fix: "Trainer(callbacks=[gracefulstop.lightning.GracefulStop(\"stop.ckpt\")])")
        }
        return findings
    }

    /// Filesystems every node of a cluster can see.
    static func isShared(_ type: String) -> Bool {
        [
            "nfs", "nfs4", "lustre", "gpfs", "beegfs", "cephfs", "ceph", "panfs", "wekafs", "cifs", "smb2", "glusterfs", "fuse.glusterfs",
            "fuse.sshfs", "afs", "orangefs", "pvfs2", "fuse.cephfs", "fuse.weka",
        ].contains(type)
    }
}

extension Preflight {
    /// One line per check ("ok", "warning", "PROBLEM"), each fix on the line after it.
    public static func text(_ findings: [Finding]) -> String {
        var lines: [String] = []
        for finding in findings {
            let mark = finding.status == .ok ? "ok     " : finding.status == .warning ? "warning" : "PROBLEM"
            lines.append("\(mark)  \(finding.check): \(finding.message)")
            if let fix = finding.fix, finding.status != .ok { lines.append("         fix: \(fix)") }
        }
        let problems = findings.filter { $0.status == .problem }.count
        let warnings = findings.filter { $0.status == .warning }.count
        lines.append(
            problems + warnings == 0
                ? "all checks passed" : "\(problems) problem\(problems == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")")
        return lines.joined(separator: "\n") + "\n"
    }

    public static func json(_ findings: [Finding]) -> String {
        var writer = JSONWriter()
        writer.value(
            .object([
                ("ok", .bool(!findings.contains { $0.status == .problem })),
                (
                    "findings",
                    .array(
                        findings.map {
                            .object([
                                ("check", .string($0.check)), ("status", .string($0.status.rawValue)), ("message", .string($0.message)),
                                ("fix", $0.fix.map { .string($0) } ?? .null),
                            ])
                        })
                ),
            ]))
        return String(decoding: writer.bytes, as: UTF8.self) + "\n"
    }
}
