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
        var json = JSONWriter()
        json.raw("{\"units\": \(unitCount), \"completed_at\": ")
        json.number(Clock.unixSeconds())
        json.raw(", \"by\": ")
        json.string("\(HostName.current):\(getpid())")
        json.raw("}\n")
        return try directory.writeAtomically(fileName, json.bytes, exclusive: true)
    }
}

/// `study.done`: a sweep's study has all its trials (written by `gracefulstop.optuna`). Like
/// run.done, its presence means that no attempt needs to run again.
public enum StudyCompletion {
    public static let fileName = "study.done"

    static func write(in directory: Directory, detail: String) throws {
        var json = JSONWriter()
        json.raw("{\"completed_at\": ")
        json.number(Clock.unixSeconds())
        json.raw(", \"by\": ")
        json.string("\(HostName.current):\(getpid())")
        json.raw(", \"detail\": ")
        json.string(detail)
        json.raw("}\n")
        try directory.writeAtomically(fileName, json.bytes)
    }
}
