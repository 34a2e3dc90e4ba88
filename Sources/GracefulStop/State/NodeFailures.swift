import Glibc

/// What the state remembers about SLURM nodes on which units failed, for telling a bad node from a
/// bad unit (`BadNodes`):
/// - `node-failures/<node>/<share>.<place>`: unit `<share>.<place>` failed on `<node>` and was then
///   done on another node — written by the worker that did it (it saw the failed claims when it
///   claimed the unit), so the evidence outlives the claims, which go once the unit is done;
/// - `bad-nodes/<node>.json`: gstop judged `<node>` bad (the evidence it went by, when): its
///   failures no longer count toward any unit's quarantine, and requeues exclude it. Delete the
///   file to trust the node again.
/// Both are small (one file per unit that failed somewhere and succeeded elsewhere) and written
/// exclusively: any number of workers and jobs may write them at once.
public enum NodeFailures {
    static let evidenceDirectory = "node-failures"
    static let badDirectory = "bad-nodes"

    /// One attempt, as begin records and events.jsonl name it.
    public struct AttemptID: Hashable, Sendable {
        public var job: String?
        public var restart: Int

        public init(job: String?, restart: Int) {
            self.job = job
            self.restart = restart
        }
    }

    /// A unit that failed on `node` (in the attempts `failed`) and was done on `doneOn`.
    public struct Evidence: Equatable, Sendable {
        public var node: String
        public var share: Int
        public var place: Int
        public var unit: String
        public var failed: [AttemptID]
        public var doneOn: String

        public init(node: String, share: Int, place: Int, unit: String, failed: [AttemptID], doneOn: String) {
            self.node = node
            self.share = share
            self.place = place
            self.unit = unit
            self.failed = failed
            self.doneOn = doneOn
        }
    }

    /// A SLURM node name that can name a file: letters, digits, `.`, `_`, `-`, not led by a dot.
    static func isFileSafe(_ node: String) -> Bool {
        !node.isEmpty && node.utf8.count <= 200 && node.first != "."
            && node.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-")].contains(byte)
            }
    }

    static func record(_ evidence: Evidence, in state: Directory) throws {
        guard isFileSafe(evidence.node) else { return }
        let directory = try state.subdirectory(evidenceDirectory, create: true).subdirectory(evidence.node, create: true)
        var json = JSONWriter()
        json.value(
            .object([
                ("unit", .string(evidence.unit)), ("share", .number(Double(evidence.share))), ("place", .number(Double(evidence.place))),
                (
                    "failed",
                    .array(evidence.failed.map { .object([("job", $0.job.map { .string($0) } ?? .null), ("restart", .number(Double($0.restart)))]) })
                ),
                ("done_on", .string(evidence.doneOn)), ("at", .number((Clock.unixSeconds() * 1000).rounded() / 1000)),
            ]))
        json.raw("\n")
        try directory.writeAtomically("\(evidence.share).\(evidence.place)", json.bytes, exclusive: true)
    }

    /// Every piece of evidence in the state (read afresh). Unreadable files are left out.
    static func evidence(in state: Directory) throws -> [Evidence] {
        guard try state.contains(evidenceDirectory) else { return [] }
        let parent = try state.subdirectory(evidenceDirectory, create: false)
        try parent.refresh()
        var found: [Evidence] = []
        for node in try names(in: parent) where isFileSafe(node) {
            guard let directory = try? parent.subdirectory(node, create: false) else { continue }
            for name in try names(in: directory) where !name.hasPrefix(".") {
                guard let bytes = try? directory.readFile(name, limit: Directory.recordLimit) else { continue }
                var reader = JSONReader(bytes, source: name)
                guard let value = try? reader.readValue(), let unit = value["unit"]?.string, let share = value["share"]?.int,
                    let place = value["place"]?.int, case .array(let failed)? = value["failed"]
                else { continue }
                found.append(
                    Evidence(
                        node: node, share: share, place: place, unit: unit,
                        failed: failed.compactMap { item in item["restart"]?.int.map { AttemptID(job: item["job"]?.string, restart: $0) } },
                        doneOn: value["done_on"]?.string ?? "?"))
            }
        }
        return found
    }

    /// The nodes gstop has judged bad, with what it said of each (read afresh).
    static func badNodes(in state: Directory) throws -> [(node: String, record: JSONValue?)] {
        guard try state.contains(badDirectory) else { return [] }
        let directory = try state.subdirectory(badDirectory, create: false)
        try directory.refresh()
        return try names(in: directory).filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.sorted().map { name in
            let bytes = try? directory.readFile(name, limit: Directory.recordLimit)
            var reader = JSONReader(bytes ?? [], source: name)
            return (String(name.dropLast(5)), bytes == nil ? nil : try? reader.readValue())
        }
    }

    /// Records that gstop judged `bad.node` bad; false when it was already.
    static func recordBad(_ bad: BadNodes.BadNode, job: String?, in state: Directory) throws -> Bool {
        guard isFileSafe(bad.node) else { return false }
        let directory = try state.subdirectory(badDirectory, create: true)
        var json = JSONWriter()
        json.value(
            .object([
                ("node", .string(bad.node)), ("units", .array(bad.units.map { .string($0) })), ("job", job.map { .string($0) } ?? .null),
                ("judged_at", .number((Clock.unixSeconds() * 1000).rounded() / 1000)),
            ]))
        json.raw("\n")
        return try directory.writeAtomically("\(bad.node).json", json.bytes, exclusive: true)
    }

    private static func names(in directory: Directory) throws -> [String] {
        var names: [String] = []
        try directory.forEachEntry { names.append(String(decoding: $0, as: UTF8.self)) }
        return names
    }
}
