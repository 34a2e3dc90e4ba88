import Glibc

@testable import GracefulStop

/// Tests/Fixtures, found from this file's path (no Foundation).
let fixturesPath: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    return parts.joined(separator: "/") + "/Fixtures"
}()

/// Runs a command and returns its exit status (for cp, rm, chmod in test setup).
@discardableResult
func run(_ arguments: [String]) -> Int32 {
    var pid = pid_t()
    let argv = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    guard posix_spawnp(&pid, arguments[0], nil, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
    return (status >> 8) & 0xFF
}

/// A fresh temporary directory, removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String
    init() {
        var template = Array("/tmp/gracefulstop-test.XXXXXX".utf8CString)
        path = String(cString: mkdtemp(&template)!)
    }
    deinit { run(["rm", "-rf", path]) }
    func sub(_ name: String) -> String { path + "/" + name }
}

/// The committed fixture states (Tests/Fixtures/states): each written by version 2 and, as
/// `v1-<name>`, by version 1.
func fixtureStateNames() -> [String] { directoryEntries(fixturesPath + "/states") }

/// The names in a directory, sorted, without hidden ones.
func directoryEntries(_ path: String) -> [String] {
    guard let stream = opendir(path) else { return [] }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted()
}

/// A copy of a fixture state, so tests never change the committed files.
func copyOfFixture(_ name: String, into directory: TemporaryDirectory) -> String {
    let target = directory.sub(name)
    run(["cp", "-a", fixturesPath + "/states/" + name, target])
    return target
}

func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<count])
    }
}

func writeFile(_ path: String, _ text: String) {
    let file = fopen(path, "wb")!
    _ = text.utf8CString.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count - 1, file) }
    fclose(file)
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

func listDirectory(_ path: String) -> [String] {
    guard let stream = opendir(path) else { return [] }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafePointer(to: &entry.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}

/// Every file in a state's node directories (done/<node>/...), as "node/name", sorted.
func markerFiles(_ statePath: String) -> [String] {
    listDirectory(statePath + "/done").flatMap { node in listDirectory(statePath + "/done/" + node).map { node + "/" + $0 } }.sorted()
}

/// A parsed expected.json / marker_names.json, through the library's own JSON reader.
enum Expected {
    static func markerNames() throws -> [(String, String)] {
        var reader = JSONReader(readFile(fixturesPath + "/marker_names.json")!, source: "marker_names.json")
        var pairs: [(String, String)] = []
        try reader.readObject { reader, key in pairs.append((key, try reader.readString())) }
        return pairs
    }

    struct State {
        var nodes = 0, unitCount = 0, doneCount = 0
        var remaining: [Int: [String]] = [:]
        var totals: [Int: Int] = [:]
        var runDone = false
        var quarantined: [Int: [String]] = [:]
        /// p50, p90 and mean of the recorded durations, for the run and per node (timed states).
        var unitSeconds: [Double]? = nil
        var nodeUnitSeconds: [Int: [Double]] = [:]
        var etaSeconds: Double? = nil
        /// Balancing: per share, how many units each other share's worker did; units held by live claims.
        var takenBy: [Int: [Int: Int]]? = nil
        var held: [Int: [String]] = [:]
        /// The attempts gstop history must list (states with an events.jsonl), and the lines it skips.
        var history: JSONValue? = nil
        var historySkippedLines = 0
    }

    static func state(_ name: String) throws -> State {
        var reader = JSONReader(readFile(fixturesPath + "/states/\(name)/expected.json")!, source: name)
        var state = State()
        try reader.readObject { reader, key in
            switch key {
            case "nodes": state.nodes = try reader.readInteger()
            case "unit_count": state.unitCount = try reader.readInteger()
            case "done_count": state.doneCount = try reader.readInteger()
            case "run_done": state.runDone = try reader.readBool()
            case "remaining":
                try reader.readObject { reader, node in
                    var units: [String] = []
                    try reader.readArray { units.append(try $0.readString()) }
                    state.remaining[Int(node)!] = units
                }
            case "totals":
                try reader.readObject { reader, node in state.totals[Int(node)!] = try reader.readInteger() }
            case "quarantined":
                try reader.readObject { reader, node in
                    var units: [String] = []
                    try reader.readArray { units.append(try $0.readString()) }
                    state.quarantined[Int(node)!] = units
                }
            case "unit_seconds": state.unitSeconds = try figures(&reader)
            case "node_unit_seconds":
                try reader.readObject { reader, node in state.nodeUnitSeconds[Int(node)!] = try figures(&reader) }
            case "eta_seconds": state.etaSeconds = try reader.readDouble()
            case "taken_by":
                var takenBy: [Int: [Int: Int]] = [:]
                try reader.readObject { reader, node in
                    var byWorker: [Int: Int] = [:]
                    try reader.readObject { reader, worker in byWorker[Int(worker)!] = try reader.readInteger() }
                    takenBy[Int(node)!] = byWorker
                }
                state.takenBy = takenBy
            case "held":
                try reader.readObject { reader, node in
                    var units: [String] = []
                    try reader.readArray { units.append(try $0.readString()) }
                    state.held[Int(node)!] = units
                }
            case "history": state.history = try reader.readValue()
            case "history_skipped_lines": state.historySkippedLines = try reader.readInteger()
            default: try reader.skipValue()
            }
        }
        return state
    }

    /// {"p50", "p90", "mean"} as [p50, p90, mean].
    private static func figures(_ reader: inout JSONReader) throws -> [Double] {
        var values: [String: Double] = [:]
        try reader.readObject { reader, key in values[key] = try reader.readDouble() }
        return [values["p50"] ?? .nan, values["p90"] ?? .nan, values["mean"] ?? .nan]
    }

    /// Tests/Fixtures/bad-shards/expected.json: each case's status, message and broken file.
    static func badShards() throws -> [(name: String, status: Int32, message: String, file: String)] {
        var reader = JSONReader(readFile(fixturesPath + "/bad-shards/expected.json")!, source: "expected.json")
        var cases: [(String, Int32, String, String)] = []
        try reader.readObject { reader, name in
            var status: Int32 = 0
            var message = ""
            var file = ""
            try reader.readObject { reader, key in
                switch key {
                case "status": status = Int32(try reader.readInteger())
                case "file": file = try reader.readString()
                default: message = try reader.readString()
                }
            }
            cases.append((name, status, message, file))
        }
        return cases
    }

    static func badManifests() throws -> [(name: String, status: Int32, message: String)] {
        var reader = JSONReader(readFile(fixturesPath + "/bad-manifests/expected.json")!, source: "expected.json")
        var cases: [(String, Int32, String)] = []
        try reader.readObject { reader, name in
            var status: Int32 = 0
            var message = ""
            try reader.readObject { reader, key in
                if key == "status" { status = Int32(try reader.readInteger()) } else { message = try reader.readString() }
            }
            cases.append((name, status, message))
        }
        return cases
    }
}

/// Sets an environment variable for the duration of `body`.
func withEnvironment<T>(_ values: [String: String?], _ body: () throws -> T) rethrows -> T {
    var saved: [String: String?] = [:]
    for (name, value) in values {
        // updateValue: a subscript assignment of nil would drop the name, and its unset state with it.
        saved.updateValue(getenv(name).map { String(cString: $0) }, forKey: name)
        if let value { setenv(name, value, 1) } else { unsetenv(name) }
    }
    defer {
        for (name, value) in saved { if let value { setenv(name, value, 1) } else { unsetenv(name) } }
    }
    return try body()
}
