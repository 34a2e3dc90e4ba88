import Glibc
import Testing

@testable import GracefulStop

/// gstop doctor's judgement as tables: SignalOption parsing, and Preflight.check from facts to
/// (check, status, words of the message or fix).
@Suite struct PreflightTests {
    static let signals: [(text: String, name: String?, seconds: Int, batch: Bool)] = [
        ("B:USR1@300", "USR1", 300, true), ("USR1@90", "USR1", 90, false), ("SIGUSR2@10", "USR2", 10, false),
        ("10", "USR1", 60, false), ("b:TERM", "TERM", 60, true), ("RB:USR1@600", "USR1", 600, true),
        ("B:USR1@-5", nil, 0, false), ("X:USR1", nil, 0, false), ("B:USR1@1@2", nil, 0, false), ("", nil, 0, false),
    ]

    @Test(arguments: signals.indices)
    func signalOption(_ index: Int) {
        let row = Self.signals[index]
        let parsed = SignalOption(parsing: row.text)
        #expect(parsed?.signalName == row.name, "\(row.text)")
        if row.name != nil { #expect(parsed?.seconds == row.seconds && parsed?.toBatchShell == row.batch, "\(row.text)") }
    }

    @Test func theSubmitLineWinsOverTheScriptAndDirectivesEndAtTheFirstCommand() {
        let script = "#!/bin/bash\n#SBATCH --time=10\n#SBATCH --signal=B:USR1@120 # the warning\necho hi\n#SBATCH --signal=B:USR1@999\n"
        #expect(SignalOption.find(submitLine: nil, batchScript: script)?.seconds == 120)
        #expect(SignalOption.find(submitLine: "sbatch --signal USR1@30 job.sh", batchScript: script)?.text == "USR1@30")
        #expect(SignalOption.find(submitLine: "sbatch job.sh", batchScript: "#!/bin/sh\necho\n") == nil)
        #expect(SbatchDirectives.sets("--requeue", submitLine: nil, batchScript: "#SBATCH --time=5 --requeue\n"))
        #expect(!SbatchDirectives.sets("--requeue", submitLine: nil, batchScript: "echo --requeue\n"))
    }

    static func facts(_ change: (inout PreflightFacts) -> Void) -> PreflightFacts {
        var facts = PreflightFacts()
        facts.signal = SignalOption(parsing: "B:USR1@300")
        facts.requeueAllowed = true
        facts.stateDirectory = "/shared/state"
        facts.fileSystem = "nfs4"
        facts.stateExists = true
        facts.execsGstop = true
        change(&facts)
        return facts
    }

    static let rows: [(name: String, facts: PreflightFacts, check: String, status: Finding.Status, words: String)] = [
        ("all good", facts { _ in }, "signal", .ok, "reaches gstop (the batch shell) 300-360 s"),
        ("no --signal", facts { $0.signal = nil }, "signal", .problem, "#SBATCH --signal=B:USR1@300"),
        (
            "no --signal in the script, the command line unseen",
            facts {
                $0.signal = nil
                $0.submitLineSeen = false
            }, "signal", .warning,
            "does not show sbatch's command line"
        ),
        ("to the steps", facts { $0.signal = SignalOption(parsing: "USR1@300") }, "signal", .warning, "--signal=B:USR1@300"),
        ("a signal gstop does not trap", facts { $0.signal = SignalOption(parsing: "B:USR2@300") }, "signal", .problem, "--signals USR2,TERM"),
        ("units longer than the lead", facts { $0.longestUnitSeconds = 400 }, "warning lead", .warning, "--signal=B:USR1@530"),
        ("a lead under a minute", facts { $0.signal = SignalOption(parsing: "B:USR1@20") }, "warning lead", .warning, "little time"),
        ("Requeue=0", facts { $0.requeueAllowed = false }, "requeue", .problem, "#SBATCH --requeue"),
        (
            "--no-requeue in the script",
            facts {
                $0.requeueAllowed = nil
                $0.scriptSaysNoRequeue = true
            }, "requeue", .problem, "--no-requeue"
        ),
        ("unknown requeue", facts { $0.requeueAllowed = nil }, "requeue", .warning, "JobRequeue"),
        ("no scontrol", facts { $0.scontrolOnPath = false }, "scontrol", .problem, "PATH"),
        (
            "local disk, 3 nodes",
            facts {
                $0.fileSystem = "ext4"
                $0.nodes = 3
            }, "state directory", .problem, "only this node sees, but the job has 3 nodes"
        ),
        (
            "local disk, 1 node",
            facts {
                $0.fileSystem = "xfs"
                $0.nodes = 1
            }, "state directory", .warning, "another node"
        ),
        (
            "Lustre",
            facts {
                $0.fileSystem = "lustre"
                $0.nodes = 8
            }, "state directory", .ok, "on lustre"
        ),
        ("not writable", facts { $0.writeError = "Permission denied" }, "state directory", .problem, "Permission denied"),
        ("no state", facts { $0.stateDirectory = nil }, "state directory", .problem, "GRACEFULSTOP_STATE_DIR"),
        (
            "more tasks than shares",
            facts {
                $0.tasks = 4
                $0.stateNodes = 2
            }, "tasks", .problem, "gstop init --nodes 4"
        ),
        (
            "fewer tasks than shares",
            facts {
                $0.tasks = 2
                $0.stateNodes = 4
            }, "tasks", .problem, "nodes 2-3 are never worked on"
        ),
        (
            "tasks match",
            facts {
                $0.tasks = 4
                $0.stateNodes = 4
            }, "tasks", .ok, "4 tasks"
        ),
        ("no exec", facts { $0.execsGstop = false }, "exec", .warning, "exec gstop run"),
        ("a trap", facts { $0.scriptTraps = ["trap 'touch f' USR1"] }, "competing handler", .warning, "touch f"),
        ("its own requeue", facts { $0.scriptRequeuesItself = true }, "competing requeue", .warning, "requeued twice"),
        ("torchrun under gstop's USR1", facts { $0.torchrunGetsUSR1 = true }, "torchrun", .problem, "--child-signal none"),
        ("mpirun asked with TERM", facts { $0.mpiLauncher = ("mpirun", "TERM") }, "mpirun", .problem, "aborts the whole job"),
        ("mpirun with the default USR1", facts { $0.mpiLauncher = ("mpirun", nil) }, "mpirun", .ok, "forwards USR1"),
        ("prterun with USR1", facts { $0.mpiLauncher = ("/opt/ompi5/bin/prterun", "USR1") }, "mpirun", .warning, "--child-signal none"),
        ("prterun with none", facts { $0.mpiLauncher = ("prterun", "none") }, "mpirun", .ok, "--child-signal none"),
        ("Lightning alone", facts { $0.lightningWithoutCallback = ["train.py"] }, "competing handler", .warning, "GracefulStop"),
        ("no --time-min", facts { $0.timeMinSet = false }, "time-min", .ok, "gstop sets the job's TimeMin"),
        (
            "no --time-min, right-size off",
            facts {
                $0.timeMinSet = false
                $0.rightSizeOff = true
            }, "time-min", .ok, "--right-size off"
        ),
    ]

    @Test(arguments: rows.indices)
    func check(_ index: Int) {
        let row = Self.rows[index]
        let findings = Preflight.check(row.facts)
        let finding = findings.first { $0.check == row.check && (row.status == .ok || $0.status != .ok) }
        #expect(finding?.status == row.status, "\(row.name): \(findings)")
        let text = (finding?.message ?? "") + " " + (finding?.fix ?? "")
        #expect(JobInfo.firstRange(of: row.words, in: Substring(text)) != nil, "\(row.name): \(text)")
    }

    @Test func allGoodHasNoProblemOrWarning() {
        let findings = Preflight.check(Self.facts { _ in })
        #expect(findings.allSatisfy { $0.status == .ok }, "\(findings)")
        #expect(Preflight.text(findings).hasSuffix("all checks passed\n"))
    }
}
