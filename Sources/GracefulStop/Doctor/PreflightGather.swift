import Glibc

/// The impure half of `gstop doctor`: reads the job (scontrol, the environment), the batch script,
/// the Python files it names and the state directory into PreflightFacts.
extension PreflightFacts {
    /// `scriptPath`: a batch script to check (before submitting); inside a job its own script is
    /// asked of scontrol. `stateDirectory`: --state, else $GRACEFULSTOP_STATE_DIR.
    public static func gather(stateDirectory: String?, scriptPath: String?, gracefulSignals: [Int32]?) throws -> PreflightFacts {
        var facts = PreflightFacts()
        if let gracefulSignals { facts.gracefulSignals = gracefulSignals }
        facts.scontrolOnPath = Command.find("scontrol") != nil
        var script: String? = nil
        var scriptDirectory = "."
        if let scriptPath {
            guard let bytes = try readWholeFile(scriptPath) else {
                throw GracefulStopError(.invalidArgument, "batch script \(scriptPath) does not exist")
            }
            script = String(decoding: bytes, as: UTF8.self)
            scriptDirectory = parentDirectory(of: scriptPath)
        }
        var submitLine: String? = nil
        if let job = Environment.value("SLURM_JOB_ID"), facts.scontrolOnPath {
            let shown = try Command.run(["scontrol", "show", "job", "-o", job])
            if shown.status == 0 {
                let info = try JobInfo.parse(shown.output, jobName: Environment.value("SLURM_JOB_NAME"))
                facts.requeueAllowed = info.requeueAllowed
                facts.nodes = info.nodeCount
                facts.tasks = field("NumTasks", in: shown.output).flatMap { Int($0) }
                submitLine = lastField("SubmitLine", in: shown.output)
                facts.submitLineSeen = submitLine != nil
                facts.timeMinSet = info.timeMin != nil
            }
            if script == nil {
                let written = try Command.run(["scontrol", "write", "batch_script", job, "-"])
                if written.status == 0 { script = written.output }
            }
        }
        facts.nodes = facts.nodes ?? Environment.value("SLURM_JOB_NUM_NODES").flatMap { Int($0) }
        facts.tasks = facts.tasks ?? Environment.value("SLURM_NTASKS").flatMap { Int($0) }
        facts.signal = SignalOption.find(submitLine: submitLine, batchScript: script)
        facts.scriptSaysNoRequeue = SbatchDirectives.sets("--no-requeue", submitLine: submitLine, batchScript: script)
        facts.scriptSaysRequeue = SbatchDirectives.sets("--requeue", submitLine: submitLine, batchScript: script)
        if facts.timeMinSet != true, script != nil || submitLine != nil {
            facts.timeMinSet = SbatchDirectives.sets("--time-min", submitLine: submitLine, batchScript: script)
        }
        if let script { facts.readScript(script, directory: scriptDirectory) }
        facts.stateDirectory = stateDirectory ?? Environment.value(Environment.stateDirectory)
        if let path = facts.stateDirectory { try facts.readState(path) }
        return facts
    }

    /// What the batch script does besides its directives, and the Python files it names.
    mutating func readScript(_ script: String, directory: String) {
        let commands = script.split(separator: "\n").map { $0.drop(while: { $0 == " " || $0 == "\t" }) }.filter { !$0.hasPrefix("#") }
        execsGstop = commands.contains { line in
            let words = line.split(separator: " ")
            return words.first == "exec" && words.contains { $0 == "gstop" || $0.hasSuffix("/gstop") } && words.contains("run")
        }
        torchrunGetsUSR1 = commands.contains { line in
            let words = line.split(separator: " ")
            guard let run = words.firstIndex(where: { $0 == "gstop" || $0.hasSuffix("/gstop") }),
                let launcher = words[run...].firstIndex(where: { $0 == "torchrun" || $0.hasSuffix("/torchrun") || $0 == "torch.distributed.run" })
            else { return false }
            // torchrun forwards TERM; none sends nothing. Anything else (USR1 by default) kills it.
            let childSignal = SignalOption.value(of: "--child-signal", in: words[run..<launcher].map(String.init))?.uppercased()
            return !["NONE", "TERM", "SIGTERM", "15"].contains(childSignal ?? "USR1")
        }
        rightSizeOff = commands.contains { line in
            let words = line.split(separator: " ").map(String.init)
            guard let run = words.firstIndex(where: { $0 == "gstop" || $0.hasSuffix("/gstop") }) else { return false }
            return SignalOption.value(of: "--right-size", in: Array(words[run...])) == "off"
        }
        for line in commands {
            let words = line.split(separator: " ").map(String.init)
            guard let run = words.firstIndex(where: { $0 == "gstop" || $0.hasSuffix("/gstop") }),
                let launcher = words[run...].firstIndex(where: { word in
                    ["mpirun", "mpiexec", "orterun", "prterun"].contains { word == $0 || word.hasSuffix("/" + $0) }
                })
            else { continue }
            mpiLauncher = (words[launcher], SignalOption.value(of: "--child-signal", in: Array(words[run..<launcher])))
        }
        let stopSignals = ["USR1", "USR2", "TERM", "SIGUSR1", "SIGUSR2", "SIGTERM", "10", "12", "15"]
        scriptTraps = commands.filter { line in
            line.hasPrefix("trap ") && line.split(separator: " ").dropFirst().contains { stopSignals.contains(String($0)) }
        }.map(String.init)
        scriptRequeuesItself = commands.contains { $0.includes("scontrol requeue") }
        var files: [(String, String)] = [("the batch script", script)]
        for word in commands.flatMap({ $0.split(separator: " ") }) where word.hasSuffix(".py") {
            let name = String(word)
            let path = name.hasPrefix("/") ? name : directory + "/" + name
            if let bytes = try? PreflightFacts.readWholeFile(path) { files.append((name, String(decoding: bytes, as: UTF8.self))) }
        }
        for (name, text) in files where PreflightFacts.usesLightning(text) && !text.includes("gracefulstop.lightning") {
            lightningWithoutCallback.append(name)
        }
    }

    static func usesLightning(_ text: String) -> Bool {
        ["import lightning", "from lightning", "import pytorch_lightning", "from pytorch_lightning"].contains { text.includes($0) }
    }

    /// The state directory (or its nearest existing parent): its filesystem, whether this user can
    /// write there, its manifest's node count and how long units have taken.
    mutating func readState(_ path: String) throws {
        var existing = path
        while access(existing, F_OK) != 0 && existing != "/" && existing != "." { existing = PreflightFacts.parentDirectory(of: existing) }
        stateExists = existing == path
        fileSystem = PreflightFacts.fileSystemType(of: existing)
        let probe = existing + "/.gstop-doctor-\(getpid())"
        let created = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if created == -1 {
            writeError = String(cString: strerror(errno))
        } else {
            close(created)
            unlink(probe)
        }
        guard stateExists, access(path + "/" + Manifest.fileName, F_OK) == 0 else { return }
        let state = try RunState.open(at: path, node: 0)
        stateNodes = state.manifest?.nodes
        // The units' own recorded times (a sample of each node's markers) where they exist; else
        // the gaps between markers, an upper bound.
        var recorded: [Double] = []
        for node in 0..<(stateNodes ?? 0) {
            recorded += try state.requireFiles().markers.timings(node: node, limit: StatusReport.sampleSize(nodes: stateNodes ?? 1)).compactMap(
                \.seconds)
        }
        longestUnitSeconds = try recorded.max() ?? PreflightFacts.longestUnit(in: path, nodes: stateNodes ?? 0)
    }

    /// The longest gap between two consecutive markers of one node within one attempt (no attempt
    /// started between them): how long a unit has taken, at most.
    static func longestUnit(in path: String, nodes: Int) throws -> Double? {
        let state = try Directory(opening: path)
        let attemptStarts = try EventLog.readBack(
            from: state, only: EventLog.eventNeedle("attempt_start"), until: { _ in false }, keep: { $0["event"]?.string == "attempt_start" }
        )
        .compactMap { $0["time"]?.number }
        .sorted()
        var longest: Double? = nil
        for node in 0..<nodes {
            guard let shard = try? Directory(opening: path + "/done/\(node)") else { continue }
            var times: [Double] = []
            try shard.forEachEntry { name in
                guard times.count < 200_000, name.last != nil else { return }
                var info = stat()
                let text = String(decoding: name, as: UTF8.self)
                if text.hasSuffix(".done"), fstatat(shard.fd, text, &info, 0) == 0 {
                    times.append(Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
                }
            }
            times.sort()
            for (earlier, later) in zip(times, times.dropFirst()) where !attemptStarts.contains(where: { $0 > earlier && $0 < later }) {
                longest = max(longest ?? 0, later - earlier)
            }
        }
        return longest
    }

    /// The type of the filesystem `path` is on, from /proc/self/mountinfo (the longest mount point
    /// that contains its real path): "nfs", "nfs4", "lustre", "ext4", "overlay", ...
    static func fileSystemType(of path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        let real = String(cString: resolved)
        free(resolved)
        guard let bytes = try? readWholeFile("/proc/self/mountinfo") else { return nil }
        var best: (length: Int, type: String)? = nil
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 6, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let mountPoint = String(fields[4]).replacingOctalEscapes()
            let inside = mountPoint == "/" || real == mountPoint || real.hasPrefix(mountPoint + "/")
            if inside && mountPoint.utf8.count >= (best?.length ?? -1) { best = (mountPoint.utf8.count, String(fields[dash + 1])) }
        }
        return best?.type
    }

    static func readWholeFile(_ path: String) throws -> [UInt8]? {
        let directory = try Directory(opening: parentDirectory(of: path))
        return try directory.readFile(String(path.split(separator: "/").last ?? Substring(path)), anyKind: true)
    }

    static func parentDirectory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `KEY=value` of scontrol's one-line output, up to the next space.
    static func field(_ key: String, in output: String) -> String? {
        for token in output.split(separator: " ") where token.hasPrefix(key + "=") { return String(token.dropFirst(key.count + 1)) }
        return nil
    }

    /// `SubmitLine=...`: free text, the rest of its line up to the next field scontrol prints after it.
    static func lastField(_ key: String, in output: String) -> String? {
        let line = output.split(separator: "\n").first.map(String.init) ?? output
        guard let range = JobInfo.firstRange(of: " \(key)=", in: Substring(line)) else { return nil }
        var value = line[range.upperBound...]
        for next in [" WorkDir=", " Power=", " TresPerNode=", " MailUser=", " MailType="] {
            if let end = JobInfo.firstRange(of: next, in: value) { value = value[..<end.lowerBound] }
        }
        return String(value)
    }
}

extension StringProtocol {
    /// Whether `text` occurs in this string. By hand, as JobInfo.firstRange: the stdlib's
    /// `contains(_: String)` would link the regex engine into the library.
    func includes(_ text: String) -> Bool { JobInfo.firstRange(of: text, in: Substring(self)) != nil }
}

extension String {
    /// mountinfo writes spaces, tabs, newlines and backslashes in paths as \040 \011 \012 \134.
    func replacingOctalEscapes() -> String {
        guard contains("\\") else { return self }
        var bytes: [UInt8] = []
        var iterator = Array(utf8)[...]
        while let byte = iterator.first {
            iterator = iterator.dropFirst()
            if byte == UInt8(ascii: "\\"), iterator.count >= 3, let value = UInt8(String(decoding: iterator.prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(value)
                iterator = iterator.dropFirst(3)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
