/// `manifest.json`: what a run is made of — the units, the node count, the partition rule, an
/// optional directory of the seed's `<unit>.done` files, and the format version. Written once when
/// the state is created; every process and the supervisor read it (docs/state-format.md).
/// Version 2 (what this release writes) holds no names, only their count and hash: each node's
/// names are in a shard of their own (UnitCatalog). Version 1 lists every name, and is read as is.
public struct Manifest: Sendable {
    public static let fileName = "manifest.json"
    /// The `format` field: tells a gracefulstop manifest from any other JSON file.
    public static let formatName = "gracefulstop-state"
    /// The format version this build writes.
    public static let version = 2
    /// The versions it reads: version-1 states are opened and continued as they are, never rewritten.
    static let readableVersions = 1...2
    /// The most units a state may have: positions are kept in 32 bits.
    static let maximumUnits = Int(Int32.max) - 1

    /// The version of this manifest's file (1 or 2).
    public let formatVersion: Int
    public let partition: Partition
    /// The seed's `completed/` directory, read as done-markers too (absolute, or relative to the state).
    public let legacyDoneDirectory: String?
    /// The units' names by position.
    private(set) var catalog: UnitCatalog
    /// Version 2's `units_sha256`: the hash of every name followed by a NUL, as 64 hex digits.
    private let storedSHA256: String?

    public var unitCount: Int { partition.unitCount }
    public var nodes: Int { partition.nodes }

    /// The manifest of a new run, as this release writes it (version 2).
    init(units: UnitTable, nodes: Int, rule: PartitionRule, legacyDoneDirectory: String?) throws {
        guard units.count > 0 else { throw GracefulStopError(.invalidArgument, "a state needs at least one unit (the unit list is empty)") }
        try self.init(
            version: Manifest.version, unitCount: units.count, nodes: nodes, rule: rule, legacyDoneDirectory: legacyDoneDirectory,
            unitsSHA256: Manifest.hash(units)
        ) { UnitCatalog(whole: units, partition: $0) }
    }

    private init(
        version: Int, unitCount: Int, nodes: Int, rule: PartitionRule, legacyDoneDirectory: String?, unitsSHA256: String?,
        catalog: (Partition) -> UnitCatalog
    ) throws {
        guard unitCount > 0 else { throw GracefulStopError(.invalidArgument, "a state needs at least one unit (unit_count is \(unitCount))") }
        guard unitCount <= Manifest.maximumUnits else {
            throw GracefulStopError(.invalidArgument, "the unit count \(unitCount) is above the limit of \(Manifest.maximumUnits)")
        }
        self.formatVersion = version
        self.partition = try Partition(rule: rule, nodes: nodes, unitCount: unitCount)
        if let legacyDoneDirectory, legacyDoneDirectory.isEmpty || legacyDoneDirectory.utf8.contains(0) {
            throw GracefulStopError(.invalidArgument, "the legacy done directory must be a non-empty path without NUL")
        }
        self.legacyDoneDirectory = legacyDoneDirectory
        self.storedSHA256 = unitsSHA256
        self.catalog = catalog(partition)
    }

    /// This manifest with the names of `wanted` (a creator's list, already in memory, checked to be
    /// the same run), so that the creator does not read them back from the shards.
    func sharingNames(of wanted: Manifest) -> Manifest {
        var copy = self
        copy.catalog = wanted.catalog
        return copy
    }

    /// `units_sha256` of a list: SHA-256 over every name followed by one NUL byte, in order.
    static func hash(_ units: UnitTable) -> String {
        var hasher = SHA256()
        units.withNameStorage { bytes, range in
            for index in 0..<units.count {
                hasher.update(UnsafeBufferPointer(rebasing: bytes[range(index)]))
                hasher.update(CollectionOfOne(UInt8(0)))
            }
        }
        return String(decoding: SHA256.hex(hasher.finalize()), as: UTF8.self)
    }

    /// The list's hash: stored in version 2, computed from the names in version 1.
    func unitsSHA256() -> String {
        storedSHA256 ?? Manifest.hash(catalog.wholeTable!)
    }

    /// The manifest as this release writes it: version 2, no names (they go to the shards).
    func encoded() -> [UInt8] {
        var json = JSONWriter()
        json.raw("{\n  \"format\": ")
        json.string(Manifest.formatName)
        json.raw(",\n  \"version\": \(Manifest.version),\n  \"nodes\": \(partition.nodes),\n  \"partition\": ")
        json.string(partition.rule.rawValue)
        json.raw(",\n  \"legacy_done_dir\": ")
        if let legacyDoneDirectory { json.string(legacyDoneDirectory) } else { json.raw("null") }
        json.raw(",\n  \"unit_count\": \(partition.unitCount),\n  \"units_sha256\": ")
        json.string(unitsSHA256())
        json.raw(",\n  \"shard_checksums\": \"\(UnitShards.checksumKind)\"\n}\n")
        return json.bytes
    }

    /// Writes a new state's shards, then its manifest (exclusively: of concurrent creators the
    /// first one's stays). The manifest's presence says the state is whole.
    func write(in state: Directory, startingAt node: Int) throws {
        guard let names = catalog.wholeTable else { preconditionFailure("only a manifest made from a unit list is written") }
        try UnitShards.writeAll(names, partition: partition, unitsSHA256: unitsSHA256(), in: state, startingAt: node)
        try state.writeAtomically(Manifest.fileName, encoded(), exclusive: true)
    }

    /// Parses a manifest; `source` is its path, for messages. A version-2 manifest's names are
    /// read from the shards in `state` when they are needed (without it, they cannot be).
    static func decode(_ bytes: [UInt8], source: String, state: Directory? = nil) throws -> Manifest {
        if bytes.isEmpty { throw GracefulStopError(.badState, "\(source) is empty (truncated?)") }
        var reader = JSONReader(bytes, source: source)
        var format: String? = nil
        var version: Int? = nil
        var nodes: Int? = nil
        var rule: String? = nil
        var legacy: String? = nil
        var declaredCount: Int? = nil
        var listHash: String? = nil
        var shardChecksums: String? = nil
        var units = UnitTable()
        var sawUnits = false
        try reader.readObject { reader, key in
            switch key {
            case "format":
                format = try reader.readString()
                if format != formatName {
                    throw GracefulStopError(.badState, "\(source) is not a gracefulstop manifest (format is '\(format!)', expected '\(formatName)')")
                }
            case "version":
                version = try reader.readInteger()
                if !readableVersions.contains(version!) {
                    throw GracefulStopError(
                        .badState,
                        "\(source) has format version \(version!); this gracefulstop (\(GracefulStopVersion.string)) reads versions \(readableVersions.lowerBound) to \(readableVersions.upperBound)"
                    )
                }
            case "nodes": nodes = try reader.readInteger()
            case "partition": rule = try reader.readString()
            case "legacy_done_dir": legacy = try reader.readNull() ? nil : try reader.readString()
            case "unit_count":
                declaredCount = try reader.readInteger()
                // The names are at most the file's size: reserve once instead of growing a million times.
                if let declaredCount, declaredCount > 0, declaredCount < bytes.count { units.reserve(units: declaredCount, bytes: bytes.count) }
            case "units_sha256": listHash = try reader.readString()
            case "shard_checksums": shardChecksums = try reader.readString()
            case "units" where version == nil || version == 1:
                sawUnits = true
                try reader.readArray { reader in try units.appendName { try reader.readString(appendingTo: &$0) } }
            default:
                try reader.skipValue()  // a field from a newer minor revision: ignored
            }
        }
        try reader.expectEnd()
        guard format != nil else { throw GracefulStopError(.badState, "\(source) has no \"format\" field: not a gracefulstop manifest") }
        guard let version else { throw GracefulStopError(.badState, "\(source) has no \"version\" field") }
        guard let nodes else { throw GracefulStopError(.badState, "\(source) has no \"nodes\" field") }
        guard let rule else { throw GracefulStopError(.badState, "\(source) has no \"partition\" field") }
        do {
            if version == 1 {
                guard sawUnits else { throw GracefulStopError(.badState, "\(source) has no \"units\" field") }
                if let declaredCount, declaredCount != units.count {
                    throw GracefulStopError(.badState, "\(source) declares \(declaredCount) units but lists \(units.count)")
                }
                try units.buildIndex(source: source)
                return try Manifest(
                    version: 1, unitCount: units.count, nodes: nodes, rule: PartitionRule(parsing: rule),
                    legacyDoneDirectory: legacy, unitsSHA256: nil
                ) { UnitCatalog(whole: units, partition: $0) }
            }
            guard let declaredCount else { throw GracefulStopError(.badState, "\(source) has no \"unit_count\" field") }
            guard let listHash else { throw GracefulStopError(.badState, "\(source) has no \"units_sha256\" field") }
            if let shardChecksums, shardChecksums != UnitShards.checksumKind {
                throw GracefulStopError(
                    .badState, "\(source): shard_checksums '\(shardChecksums)' is not one this release knows (\(UnitShards.checksumKind))")
            }
            // It names a directory: only the 64 hex digits a hash has, never a path.
            guard listHash.utf8.count == 64, listHash.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                throw GracefulStopError(
                    .badState, "\(source): units_sha256 must be 64 lowercase hex digits (got \(UnitName.preview(Array(listHash.utf8))))")
            }
            return try Manifest(
                version: 2, unitCount: declaredCount, nodes: nodes, rule: PartitionRule(parsing: rule),
                legacyDoneDirectory: legacy, unitsSHA256: listHash
            ) {
                UnitCatalog(shards: UnitShards(state: state, unitsSHA256: listHash, checksumsRequired: shardChecksums != nil), partition: $0)
            }
        } catch let error as GracefulStopError {
            let message = error.message.hasPrefix(source) ? error.message : "\(source): \(error.message)"
            throw GracefulStopError(.badState, message)
        }
    }

    /// A state without `manifest.json` whose unit shards, markers or completion records are there
    /// is damaged, not empty: without the manifest nobody can tell what remains. The error names
    /// what is there; nil when the directory holds no run (a sweep's, or a new one).
    static func missingProblem(in directory: Directory) throws -> GracefulStopError? {
        if try directory.exists(fileName) { return nil }
        let parts = try [UnitShards.directoryName, DoneMarkers.directoryName, NodeCompletion.directoryName, RunCompletion.fileName].filter {
            try directory.exists($0)
        }
        guard !parts.isEmpty else { return nil }
        return GracefulStopError(
            .badState,
            "\(directory.pathOf(fileName)) is missing, but \(parts.joined(separator: ", ")) \(parts.count == 1 ? "is" : "are") there: the state is damaged "
                + "(without its manifest nobody can tell which units remain; restore manifest.json, or create the state again "
                + "with the same unit list, nodes and partition — its markers are kept)")
    }

    /// Why `other` describes a different run, or nil when it is the same one. Names are compared
    /// by their hash; the first differing unit is named when both lists can be read.
    func difference(from other: Manifest) throws -> String? {
        if partition.nodes != other.partition.nodes { return "node count \(partition.nodes) here, \(other.partition.nodes) asked" }
        if partition.rule != other.partition.rule { return "partition '\(partition.rule.rawValue)' here, '\(other.partition.rule.rawValue)' asked" }
        if legacyDoneDirectory != other.legacyDoneDirectory {
            return "legacy done directory \(legacyDoneDirectory ?? "none") here, \(other.legacyDoneDirectory ?? "none") asked"
        }
        if unitCount == other.unitCount, unitsSHA256() == other.unitsSHA256() { return nil }
        if let (here, asked, index) = try? firstDifference(from: other) {
            return "unit #\(index) is \(UnitName.preview(here)) here, \(UnitName.preview(asked)) asked"
        }
        if unitCount != other.unitCount { return "\(unitCount) units here, \(other.unitCount) asked" }
        return "the unit lists differ (units_sha256 \(unitsSHA256()) here, \(other.unitsSHA256()) asked)"
    }

    private func firstDifference(from other: Manifest) throws -> (ArraySlice<UInt8>, ArraySlice<UInt8>, Int)? {
        for index in 0..<min(unitCount, other.unitCount) {
            let here = try catalog.nameBytes(index)
            let asked = try other.catalog.nameBytes(index)
            if !here.elementsEqual(asked) { return (here, asked, index) }
        }
        return nil
    }
}
