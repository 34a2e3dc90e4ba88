/// sbatch's `--signal=[{R|B}:]SIG[@TIME]`: which signal SLURM sends before the time limit, how
/// long before, and to whom (`B:` the batch shell only, where gstop waits; without it every job
/// step, and not the batch shell).
public struct SignalOption: Sendable, Equatable {
    public var signalName: String
    public var signal: Int32?
    /// Seconds before the end (default 60). SLURM may send it up to 60 s earlier than that.
    public var seconds: Int
    public var toBatchShell: Bool
    public var reservation: Bool
    /// The text as written, for messages.
    public var text: String

    /// Parses the option's value ("B:USR1@300", "SIGUSR1@90", "10"); nil when it is not one.
    public init?(parsing value: String) {
        var rest = Substring(value)
        var batch = false
        var reservation = false
        while let colon = rest.firstIndex(of: ":"), rest[..<colon].count <= 2 {
            let flags = rest[..<colon].uppercased()
            guard !flags.isEmpty, flags.allSatisfy({ $0 == "B" || $0 == "R" }) else { return nil }
            batch = batch || flags.contains("B")
            reservation = reservation || flags.contains("R")
            rest = rest[rest.index(after: colon)...]
        }
        let parts = rest.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count <= 2, let name = parts.first, !name.isEmpty else { return nil }
        var seconds = 60
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), parsed >= 0, parsed <= 65535 else { return nil }
            seconds = parsed
        }
        let number: Int32? = Int32(name) ?? (try? StopSignals.parse(String(name)))?.first
        guard number != nil || name.allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
        // As sbatch takes it ("USR1"), whichever way it was written.
        self.signalName =
            number.map {
                let full = StopSignals.name(of: $0)
                return full.hasPrefix("SIG") ? String(full.dropFirst(3)) : full
            } ?? String(name)
        self.signal = number
        self.seconds = seconds
        self.toBatchShell = batch
        self.reservation = reservation
        self.text = value
    }

    /// The `--signal` in force: the submit command line's (it wins), else the last `#SBATCH`
    /// line's of the batch script; nil when neither sets one.
    public static func find(submitLine: String?, batchScript: String?) -> SignalOption? {
        if let submitLine, let value = value(in: submitLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)) {
            return SignalOption(parsing: value)
        }
        var found: String? = nil
        for line in SbatchDirectives.lines(of: batchScript ?? "") {
            if let value = value(in: line) { found = value }
        }
        return found.flatMap(SignalOption.init(parsing:))
    }

    /// The value of `OPTION=X` / `OPTION X` among `words` (the last one).
    static func value(of option: String = "--signal", in words: [String]) -> String? {
        var found: String? = nil
        for (index, word) in words.enumerated() {
            if word.hasPrefix(option + "=") {
                found = String(word.dropFirst(option.count + 1))
            } else if word == option, index + 1 < words.count {
                found = words[index + 1]
            }
        }
        return found
    }
}

/// The `#SBATCH` lines of a batch script: those before its first command, each split into words.
public enum SbatchDirectives {
    public static func lines(of script: String) -> [[String]] {
        var result: [[String]] = []
        for raw in script.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.isEmpty || line.hasPrefix("#!") { continue }
            if line.hasPrefix("#SBATCH") {
                let words = line.dropFirst("#SBATCH".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                result.append(Array(words.prefix { !$0.hasPrefix("#") }))  // a trailing comment ends it
                continue
            }
            if line.hasPrefix("#") { continue }
            break  // sbatch stops reading directives at the first command
        }
        return result
    }

    /// Whether a directive or the submit line sets `option` (e.g. "--requeue").
    public static func sets(_ option: String, submitLine: String?, batchScript: String?) -> Bool {
        let words = (submitLine?.split(separator: " ").map(String.init) ?? []) + lines(of: batchScript ?? "").flatMap { $0 }
        return words.contains { $0 == option || $0.hasPrefix(option + "=") }
    }
}
