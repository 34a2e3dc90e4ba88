/// `manifest.json`: what a run is made of — the ordered units, the node count, the partition rule,
/// an optional directory of the seed's `<unit>.done` files, and the format version. Written once
/// when the state is created; every process and the supervisor read it (docs/state-format.md).
public struct Manifest: Sendable {
    public static let fileName = "manifest.json"
    /// The `format` field: tells a gracefulstop manifest from any other JSON file.
    public static let formatName = "gracefulstop-state"
    /// The format version this build reads and writes.
    public static let version = 1

    public let partition: Partition
    /// The seed's `completed/` directory, read as done-markers too (absolute, or relative to the state).
    public let legacyDoneDirectory: String?
    let units: UnitTable

    public var unitCount: Int { units.count }
    public var nodes: Int { partition.nodes }

    init(units: UnitTable, nodes: Int, rule: PartitionRule, legacyDoneDirectory: String?) throws {
        guard units.count > 0 else { throw GracefulStopError(.invalidArgument, "a state needs at least one unit (the unit list is empty)") }
        self.units = units
        self.partition = try Partition(rule: rule, nodes: nodes, unitCount: units.count)
        if let legacyDoneDirectory, legacyDoneDirectory.isEmpty || legacyDoneDirectory.utf8.contains(0) {
            throw GracefulStopError(.invalidArgument, "the legacy done directory must be a non-empty path without NUL")
        }
        self.legacyDoneDirectory = legacyDoneDirectory
    }

    /// The manifest as JSON: one unit per line, so that a diff of two manifests reads well.
    func encoded() -> [UInt8] {
        var json = JSONWriter()
        json.raw("{\n  \"format\": ")
        json.string(Manifest.formatName)
        json.raw(",\n  \"version\": \(Manifest.version),\n  \"nodes\": \(partition.nodes),\n  \"partition\": ")
        json.string(partition.rule.rawValue)
        json.raw(",\n  \"legacy_done_dir\": ")
        if let legacyDoneDirectory { json.string(legacyDoneDirectory) } else { json.raw("null") }
        json.raw(",\n  \"unit_count\": \(units.count),\n  \"units\": [")
        for index in 0..<units.count {
            json.raw(index == 0 ? "\n    " : ",\n    ")
            json.string(units.nameBytes(index))
        }
        json.raw("\n  ]\n}\n")
        return json.bytes
    }

    /// Parses a manifest; `source` is its path, for messages.
    static func decode(_ bytes: [UInt8], source: String) throws -> Manifest {
        if bytes.isEmpty { throw GracefulStopError(.badState, "\(source) is empty (truncated?)") }
        var reader = JSONReader(bytes, source: source)
        var format: String? = nil, version: Int? = nil, nodes: Int? = nil, rule: String? = nil
        var legacy: String? = nil, declaredCount: Int? = nil
        var units = UnitTable()
        var sawUnits = false
        try reader.readObject { reader, key in
            switch key {
            case "format":
                format = try reader.readString()
                if format != formatName { throw GracefulStopError(.badState, "\(source) is not a gracefulstop manifest (format is '\(format!)', expected '\(formatName)')") }
            case "version":
                version = try reader.readInteger()
                if version != Manifest.version {
                    throw GracefulStopError(.badState, "\(source) has format version \(version!); this gracefulstop (\(GracefulStopVersion.string)) reads version \(Manifest.version) only")
                }
            case "nodes": nodes = try reader.readInteger()
            case "partition": rule = try reader.readString()
            case "legacy_done_dir": legacy = try reader.readNull() ? nil : try reader.readString()
            case "unit_count":
                declaredCount = try reader.readInteger()
                // The names are at most the file's size: reserve once instead of growing a million times.
                if let declaredCount, declaredCount > 0, declaredCount < bytes.count { units.reserve(units: declaredCount, bytes: bytes.count) }
            case "units":
                sawUnits = true
                try reader.readArray { reader in try units.appendName { try reader.readString(appendingTo: &$0) } }
            default:
                try reader.skipValue()  // a field from a newer minor revision: ignored
            }
        }
        try reader.expectEnd()
        guard format != nil else { throw GracefulStopError(.badState, "\(source) has no \"format\" field: not a gracefulstop manifest") }
        guard version != nil else { throw GracefulStopError(.badState, "\(source) has no \"version\" field") }
        guard let nodes else { throw GracefulStopError(.badState, "\(source) has no \"nodes\" field") }
        guard let rule else { throw GracefulStopError(.badState, "\(source) has no \"partition\" field") }
        guard sawUnits else { throw GracefulStopError(.badState, "\(source) has no \"units\" field") }
        if let declaredCount, declaredCount != units.count {
            throw GracefulStopError(.badState, "\(source) declares \(declaredCount) units but lists \(units.count)")
        }
        do {
            try units.buildIndex(source: source)
            return try Manifest(units: units, nodes: nodes, rule: PartitionRule(parsing: rule), legacyDoneDirectory: legacy)
        } catch let error as GracefulStopError {
            let message = error.message.hasPrefix(source) ? error.message : "\(source): \(error.message)"
            throw GracefulStopError(.badState, message)
        }
    }

    /// Why `other` describes a different run, or nil when it is the same one.
    func difference(from other: Manifest) -> String? {
        if partition.nodes != other.partition.nodes { return "node count \(partition.nodes) here, \(other.partition.nodes) asked" }
        if partition.rule != other.partition.rule { return "partition '\(partition.rule.rawValue)' here, '\(other.partition.rule.rawValue)' asked" }
        if legacyDoneDirectory != other.legacyDoneDirectory {
            return "legacy done directory \(legacyDoneDirectory ?? "none") here, \(other.legacyDoneDirectory ?? "none") asked"
        }
        for index in 0..<min(units.count, other.units.count) where !units.nameBytes(index).elementsEqual(other.units.nameBytes(index)) {
            return "unit #\(index) is \(UnitName.preview(units.nameBytes(index))) here, \(UnitName.preview(other.units.nameBytes(index))) asked"
        }
        if units.count != other.units.count { return "\(units.count) units here, \(other.units.count) asked" }
        return nil
    }
}
