import Glibc

/// `run.done`: every unit of the whole run is done. Created by the first process that observes it —
/// the one that marks the last unit, or any later scan of the run (the supervisor) — so it appears
/// whichever node finishes last. Created exclusively (a complete file linked into place), so of
/// concurrent finishers exactly one creates it and the others leave it as it is.
enum RunCompletion {
    static let fileName = "run.done"

    static func exists(in directory: Directory) throws -> Bool { try directory.exists(fileName) }

    /// Why `run.done` is not what gracefulstop writes for a run of `unitCount` units (a regular
    /// file, a JSON object whose `units` is the run's count), or nil when it is: a stray or
    /// forged file never ends the work.
    static func problem(in directory: Directory, unitCount: Int) -> String? {
        completionProblem(in: directory, name: fileName, expecting: [("units", unitCount)])
    }

    /// Creates run.done unless it exists; true when this call created it.
    @discardableResult
    static func write(in directory: Directory, unitCount: Int) throws -> Bool {
        try directory.writeAtomically(fileName, record(unitCount: unitCount), exclusive: true)
    }

    static func record(unitCount: Int) -> [UInt8] { completionRecord([("units", .number(Double(unitCount)))]) }
}

/// `complete/<node>`: every unit of one node is done. Written exclusively by a process that has
/// just seen its node's share all done; `run.done` is then decided from one listing of
/// `complete/` (O(nodes)) instead of a scan of every node's markers (O(units)). Of two nodes
/// completing at once each writes its own file before it lists, and listings read afresh, so at
/// least one sees both (docs/state-format.md).
enum NodeCompletion {
    static let directoryName = "complete"

    /// Writes `complete/<node>` unless it exists.
    static func write(node: Int, unitCount: Int, in state: Directory) throws {
        let directory = try state.subdirectory(directoryName, create: true)
        try directory.writeAtomically(
            String(node), completionRecord([("node", .number(Double(node))), ("units", .number(Double(unitCount)))]),
            exclusive: true)
    }

    /// Of `nodes` (nodes with a `complete/` file), those whose file is what gracefulstop writes
    /// (`node` and `units` as the partition gives them): the decisions that end work trust no
    /// other. One small read per node, at the end of a share or a run.
    static func trusted(_ nodes: Set<Int>, partition: Partition, in state: Directory) throws -> Set<Int> {
        guard !nodes.isEmpty else { return nodes }
        let directory = try state.subdirectory(directoryName, create: false)
        return nodes.filter { node in
            node < partition.nodes
                && completionProblem(in: directory, name: String(node), expecting: [("node", node), ("units", partition.unitCount(ofNode: node))])
                    == nil
        }
    }

    /// The nodes with a `complete/` file, read afresh (another host may have just written one).
    static func nodes(in state: Directory) throws -> Set<Int> {
        guard try state.contains(directoryName) else { return [] }
        let directory = try state.subdirectory(directoryName, create: false)
        try directory.refresh()
        var nodes: Set<Int> = []
        try directory.forEachEntry { name in
            if let node = Int(String(decoding: name, as: UTF8.self)), node >= 0, String(node).utf8.count == name.count { nodes.insert(node) }
        }
        return nodes
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

/// Why a completion record is not one gracefulstop wrote with these numbers, or nil.
private func completionProblem(in directory: Directory, name: String, expecting fields: [(String, Int)]) -> String? {
    let bytes: [UInt8]
    do {
        guard let read = try directory.readFile(name, limit: Directory.recordLimit) else { return "\(directory.pathOf(name)) is gone" }
        bytes = read
    } catch let error as GracefulStopError {
        return error.message
    } catch {
        return "\(error)"
    }
    var reader = JSONReader(bytes, source: directory.pathOf(name))
    guard let value = try? reader.readValue(), (try? reader.expectEnd()) != nil else {
        return "\(directory.pathOf(name)) is not a completion record gracefulstop writes (not one JSON object)"
    }
    for (key, expected) in fields where value[key]?.int != expected {
        return
            "\(directory.pathOf(name)) says \(key) \(value[key].map { "\($0)" } ?? "nothing"), not \(expected): not a record gracefulstop wrote for this run"
    }
    return nil
}

/// The content of a completion marker: what finished, then when and by which host and process.
private func completionRecord(_ fields: [(String, JSONValue)]) -> [UInt8] {
    var json = JSONWriter()
    json.value(.object(fields + [("completed_at", .number(Clock.unixSeconds())), ("by", .string("\(HostName.current):\(getpid())"))]))
    json.raw("\n")
    return json.bytes
}
