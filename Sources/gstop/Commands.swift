import Glibc
// The subcommands of gstop: each one's help, options and the few lines that wire its arguments
// to the library. main.swift parses and dispatches.
import GracefulStop

struct Subcommand {
    let help: String
    let valued: Set<String>
    let flags: Set<String>
    let run: (Arguments) throws -> Int32
}

@MainActor let subcommands: [String: Subcommand] = [
    "run": Subcommand(
        help: Help.run,
        valued: [
            "state", "requeue", "remaining", "signals", "child-signal", "grace", "term-grace", "kill-after", "deadline-margin",
            "max-restarts", "max-preemptions", "exclude-bad-nodes", "progress-every", "max-idle-attempts", "retry-failures", "max-unit-attempts",
            "time-limit", "warn-before", "balance", "right-size",
        ],
        flags: []
    ) { arguments in
        var options = SupervisorOptions(command: arguments.command, stateDirectory: try arguments.stateDirectory())
        if !arguments.positional.isEmpty {
            throw Arguments.UsageError(message: "put the command after --: gstop run [OPTIONS] -- \(arguments.positional.joined(separator: " "))")
        }
        options.requeue = try arguments.choice("requeue", RequeueMode.self) ?? options.requeue
        options.remainingScope = try arguments.choice("remaining", SupervisorOptions.RemainingScope.self) ?? options.remainingScope
        if let text = arguments.string("signals") { options.gracefulSignals = try StopSignals.parse(text) }
        if let text = arguments.string("child-signal"), text.lowercased() == "none" {
            options.childSignal = 0  // the stop request alone (a launcher such as torchrun dies from USR1)
        } else if let text = arguments.string("child-signal") {
            let parsed = try StopSignals.parse(text)
            guard parsed.count == 1 else { throw Arguments.UsageError(message: "--child-signal takes one signal (got '\(text)')") }
            options.childSignal = parsed[0]
        }
        options.grace = try arguments.duration("grace")
        options.termGrace = try arguments.duration("term-grace") ?? options.termGrace
        options.killAfter = try arguments.duration("kill-after") ?? options.killAfter
        if arguments.string("deadline-margin") == "off" {
            options.setsDeadline = false
        } else {
            options.deadlineMargin = try arguments.duration("deadline-margin")
        }
        options.limits.maxRestarts = try arguments.integer("max-restarts") ?? options.limits.maxRestarts
        if arguments.string("progress-every") == "off" {
            options.progressEvery = nil
        } else if let every = try arguments.duration("progress-every") {
            guard every > 0 else { throw Arguments.UsageError(message: "--progress-every takes a duration above 0, or off") }
            options.progressEvery = every
        }
        if let text = arguments.string("exclude-bad-nodes") {
            options.badNodeThreshold = text == "off" ? 0 : try arguments.integer("exclude-bad-nodes", minimum: 1) ?? BadNodes.defaultThreshold
        }
        if let text = arguments.string("max-preemptions"), text != "unlimited" {
            options.limits.maxPreemptions = try arguments.integer("max-preemptions", minimum: 0)
        }
        options.limits.maxIdleAttempts = try arguments.integer("max-idle-attempts") ?? options.limits.maxIdleAttempts
        options.limits.retryFailures = try arguments.integer("retry-failures") ?? options.limits.retryFailures
        options.limits.maxUnitAttempts = try arguments.integer("max-unit-attempts") ?? options.limits.maxUnitAttempts
        options.timeLimit = try arguments.duration("time-limit")
        options.warnBefore = try arguments.duration("warn-before")
        if let text = arguments.string("balance") {
            guard ["on", "off"].contains(text) else { throw Arguments.UsageError(message: "--balance takes on or off (got '\(text)')") }
            options.balance = text == "on"
        }
        if let text = arguments.string("right-size") {
            guard ["auto", "off"].contains(text) else { throw Arguments.UsageError(message: "--right-size takes auto or off (got '\(text)')") }
            options.rightSize = text == "auto"
        }
        return try Supervisor(options: options, report: printError).run()
    },
    "init": Subcommand(help: Help.initialize, valued: ["state", "units", "nodes", "partition", "legacy-done-dir"], flags: ["null"]) { arguments in
        guard let file = arguments.string("units") else { throw Arguments.UsageError(message: "--units FILE is required (see gstop init --help)") }
        guard let nodes = try arguments.integer("nodes", minimum: 1) else {
            throw Arguments.UsageError(message: "--nodes N is required (see gstop init --help)")
        }
        let path = try arguments.stateDirectory()
        let units = try UnitListFile.read(path: file, nulSeparated: arguments.flag("null"))
        let state = try RunState.create(
            at: path, units: units, nodes: nodes, partition: PartitionRule(parsing: arguments.string("partition") ?? "round-robin"),
            legacyDoneDirectory: arguments.string("legacy-done-dir"), node: 0)
        let done = try state.counts(node: nil).done
        print(
            "gstop: state \(path): \(units.count) units on \(nodes) node\(nodes == 1 ? "" : "s") (\(state.manifest!.partition.rule.rawValue)), \(done) done"
        )
        return 0
    },
    "status": Subcommand(help: Help.status, valued: ["state"], flags: ["json", "totals"]) { arguments in
        if arguments.flag("totals") {
            let path = try arguments.stateDirectory()
            print("state \(path): " + (try RunState.open(at: path, node: 0).totals().line()))
            return 0
        }
        let report = try StatusReport.gather(path: try arguments.stateDirectory())
        if arguments.flag("json") {
            print(report.json(), terminator: "")
        } else {
            var size = winsize()
            let terminal = isatty(1) != 0
            let width = terminal && ioctl(1, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 80
            print(report.text(terminal: terminal, width: width), terminator: "")
        }
        return 0
    },
    "history": Subcommand(help: Help.history, valued: ["state", "last"], flags: ["json"]) { arguments in
        let history = try EventLog.history(path: try arguments.stateDirectory(), last: try arguments.integer("last", minimum: 1))
        // Written a piece at a time: a history of a million attempts is never one string.
        if arguments.flag("json") {
            RunHistory.jsonText(history.rows, skippedLines: history.skipped) { bytes in
                print(String(decoding: bytes, as: UTF8.self), terminator: "")
            }
        } else if history.rows.isEmpty {
            print("no attempt yet: events.jsonl has no attempt_start or child_exit line")
        } else {
            RunHistory.table(history.rows) { print($0, terminator: "") }
        }
        if history.skipped > 0 {
            printError(
                "note: \(history.skipped) line\(history.skipped == 1 ? "" : "s") of events.jsonl did not parse (a write cut short by a kill, "
                    + "or two hosts' appends that met on NFS) and \(history.skipped == 1 ? "was" : "were") skipped")
        }
        return 0
    },
    "report": Subcommand(help: Help.report, valued: ["state", "out"], flags: []) { arguments in
        let report = try RunReport.gather(path: try arguments.stateDirectory())
        let out = arguments.string("out") ?? "report.html"
        try RunReport.write(report.html(), to: out)
        print(
            "wrote \(out): \(report.history.count) attempt\(report.history.count == 1 ? "" : "s")"
                + (report.status.unitCount > 0 ? ", \(report.status.doneCount) of \(report.status.unitCount) units done" : "")
                + " (open it in a browser; it fetches nothing)")
        return 0
    },
    "remaining": Subcommand(help: Help.remaining, valued: ["state", "node"], flags: ["null"]) { arguments in
        let state = try RunState.open(at: try arguments.stateDirectory(), node: try arguments.integer("node"))
        let terminator = arguments.flag("null") ? "\0" : "\n"
        for unit in try state.remainingUnits() { print(unit, terminator: terminator) }
        return 0
    },
    "mark-done": Subcommand(help: Help.markDone, valued: ["state"], flags: []) { arguments in
        guard !arguments.positional.isEmpty else { throw Arguments.UsageError(message: "name the units to mark: gstop mark-done UNIT...") }
        let state = try RunState.open(at: try arguments.stateDirectory(), node: 0)
        for unit in arguments.positional { try state.markDone(unit) }
        return 0
    },
    "release": Subcommand(help: Help.release, valued: ["state"], flags: []) { arguments in
        guard !arguments.positional.isEmpty else {
            throw Arguments.UsageError(message: "name the units to put back: gstop release UNIT... (gstop status lists the quarantined ones)")
        }
        let path = try arguments.stateDirectory()
        let state = try RunState.open(at: path, node: 0)
        for unit in arguments.positional {
            let was = try state.releaseUnit(unit)
            printError(
                was
                    ? "released \(unit): its quarantine and failed attempts are removed; the next attempt begins it again"
                    : "\(unit) was not quarantined (its failed attempts, if any, are forgotten)")
        }
        return 0
    },
    "should-requeue": Subcommand(
        help: Help.shouldRequeue, valued: ["state", "remaining", "node", "max-restarts", "max-idle-attempts"], flags: []
    ) { arguments in
        if let node = try arguments.integer("node") { setenv(Environment.nodeVariable, String(node), 1) }
        var options = SupervisorOptions(command: [], stateDirectory: try arguments.stateDirectory())
        options.remainingScope = try arguments.choice("remaining", SupervisorOptions.RemainingScope.self) ?? options.remainingScope
        options.limits.maxRestarts = try arguments.integer("max-restarts") ?? options.limits.maxRestarts
        if let text = arguments.string("max-preemptions"), text != "unlimited" {
            options.limits.maxPreemptions = try arguments.integer("max-preemptions", minimum: 0)
        }
        options.limits.maxIdleAttempts = try arguments.integer("max-idle-attempts") ?? options.limits.maxIdleAttempts
        let decision = try Supervisor(options: options, report: printError).decisionAfterWarning()
        printError(decision.line)
        if case .requeue = decision.action { return 0 }
        return 1
    },
    "stop": Subcommand(help: Help.stop, valued: ["state", "reason"], flags: []) { arguments in
        let path = try arguments.stateDirectory()
        try StopRequest.requestEverybody(stateDirectory: path, reason: arguments.string("reason") ?? "gstop stop")
        printError("asked every process using \(path) to stop")
        return 0
    },
    "doctor": Subcommand(help: Help.doctor, valued: ["state", "script", "signals"], flags: ["json"]) { arguments in
        let signals = try arguments.string("signals").map { try StopSignals.parse($0) }
        let facts = try PreflightFacts.gather(
            stateDirectory: arguments.string("state"), scriptPath: arguments.string("script") ?? arguments.positional.first,
            gracefulSignals: signals)
        let findings = Preflight.check(facts)
        print(arguments.flag("json") ? Preflight.json(findings) : Preflight.text(findings), terminator: "")
        return findings.contains { $0.status == .problem } ? ExitCode.badData : 0
    },
    "resume-flag": Subcommand(help: Help.resumeFlag, valued: ["flag"], flags: []) { arguments in
        if Environment.restarts() > 0 { print(arguments.string("flag") ?? "--resume") }
        return 0
    },
]
