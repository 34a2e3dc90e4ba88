import Glibc

/// `run.done`: every unit of the whole run is done. Created by the first process that observes it —
/// the one that marks the last unit, or any later scan of the run (the supervisor) — so it appears
/// whichever node finishes last. Created exclusively (a complete file linked into place), so of
/// concurrent finishers exactly one creates it and the others leave it as it is.
enum RunCompletion {
    static let fileName = "run.done"

    static func exists(in directory: Directory) throws -> Bool { try directory.exists(fileName) }

    /// Creates run.done unless it exists; true when this call created it.
    @discardableResult
    static func write(in directory: Directory, unitCount: Int) throws -> Bool {
        try directory.writeAtomically(fileName, completionRecord([("units", .number(Double(unitCount)))]), exclusive: true)
    }
}

/// `study.done`: a sweep's study has all its trials (written by `gracefulstop.optuna`). Like
/// run.done, its presence means that no attempt needs to run again.
public enum StudyCompletion {
    public static let fileName = "study.done"

    static func write(in directory: Directory, detail: String) throws {
        try directory.writeAtomically(fileName, completionRecord([("detail", .string(detail))]))
    }
}

/// The content of a completion marker: what finished, then when and by which host and process.
private func completionRecord(_ fields: [(String, JSONValue)]) -> [UInt8] {
    var json = JSONWriter()
    json.value(.object(fields + [("completed_at", .number(Clock.unixSeconds())), ("by", .string("\(HostName.current):\(getpid())"))]))
    json.raw("\n")
    return json.bytes
}
