import Glibc
import Synchronization

/// The run's unit names by manifest position. A version-1 manifest holds every name (one table); a
/// version-2 state keeps each node's names in a shard of their own (`units/<units_sha256>/<node>.json`),
/// read the first time a name of that node is needed. So a process reads only the shares it
/// touches — its own, usually — and its cost follows its share, not the run (docs/state-format.md).
final class UnitCatalog: Sendable {
    let partition: Partition
    /// Every name, position = manifest position (a version-1 manifest, or a creator's own list).
    private let whole: UnitTable?
    /// Version 2: where the shards are; nil for a version-1 state.
    private let shards: UnitShards?
    /// Shards read so far, by node.
    private let loaded = Locked<[Int: UnitTable]>([:])

    /// One node's names, and how their positions in `table` map to manifest positions.
    struct Share {
        let table: UnitTable
        let node: Int
        /// True when `table` holds the whole run (positions are manifest positions).
        let isWhole: Bool
        let partition: Partition

        @inline(__always)
        func position(ofUnit unit: Int) -> Int { isWhole ? unit : partition.localIndex(ofUnit: unit) }

        /// The table positions of this node's units, in manifest order (a whole-run table's).
        var wholeTablePositions: [Int] { Array(partition.units(ofNode: node)) }

        @inline(__always)
        func unit(atPosition position: Int) -> Int { isWhole ? position : partition.unit(ofNode: node, local: position) }
    }

    init(whole: UnitTable, partition: Partition) {
        self.whole = whole
        self.shards = nil
        self.partition = partition
    }

    init(shards: UnitShards, partition: Partition) {
        self.whole = nil
        self.shards = shards
        self.partition = partition
    }

    /// Every name at once: a version-1 manifest's, or a creator's own list; nil for shards.
    var wholeTable: UnitTable? { whole }

    /// The names of `node`, read from its shard on first use (kept for later calls when `keep`).
    func share(ofNode node: Int, keep: Bool = true) throws -> Share {
        if let whole { return Share(table: whole, node: node, isWhole: true, partition: partition) }
        if let table = loaded.withLock({ $0[node] }) { return Share(table: table, node: node, isWhole: false, partition: partition) }
        // A node that owns no unit has no shard.
        if partition.unitCount(ofNode: node) == 0 { return Share(table: UnitTable(), node: node, isWhole: false, partition: partition) }
        let table = try shards!.read(node: node, expectedCount: partition.unitCount(ofNode: node))
        if keep { loaded.withLock { $0[node] = $0[node] ?? table } }
        return Share(table: table, node: node, isWhole: false, partition: partition)
    }

    /// The name of the unit at manifest position `unit`.
    func nameBytes(_ unit: Int) throws -> ArraySlice<UInt8> {
        let share = try share(ofNode: partition.node(ofUnit: unit))
        return share.table.nameBytes(share.position(ofUnit: unit))
    }

    /// The marker stem of the unit at manifest position `unit`.
    func stem(_ unit: Int) throws -> ArraySlice<UInt8> {
        let share = try share(ofNode: partition.node(ofUnit: unit))
        return share.table.stem(share.position(ofUnit: unit))
    }

    /// The manifest position of the unit named `name`, or nil. In a version-2 state `node`'s
    /// shard is looked at first (a process marks its own units), then every other node's.
    func position<Name: Collection<UInt8>>(ofUnit name: Name, preferring node: Int) throws -> Int? {
        if let whole { return whole.index(ofUnit: name) }
        var stem: [UInt8] = []
        MarkerName.appendStem(of: name, to: &stem)
        let nodes = partition.nodes
        for offset in 0..<nodes {
            let candidate = (node + offset) % nodes
            if partition.unitCount(ofNode: candidate) == 0 { continue }
            let share = try share(ofNode: candidate)
            if let position = share.table.index(ofStem: stem) { return share.unit(atPosition: position) }
        }
        return nil
    }
}

/// The shards of a version-2 state: `units/<units_sha256>/<node>.json`, each node's names in
/// manifest order. The directory is named after the run's list, so creators of different runs
/// never write over each other's shards, and creators of the same run write the same bytes.
struct UnitShards: Sendable {
    static let directoryName = "units"
    static let formatName = "gracefulstop-units"

    /// The state directory; nil for a manifest read without one (the fuzzer's), whose names cannot be read.
    let state: Directory?
    let unitsSHA256: String
    /// The manifest says every shard carries `names_words64` (states this release creates): a
    /// shard without it is damaged. Older states' shards are read without.
    var checksumsRequired = false

    /// The field that holds a shard's checksum of its names, and the manifest's name for its kind
    /// (`UnitTable.namesChecksum`).
    static let checksumField = "names_words64"
    static let checksumKind = "words64"

    var relativePath: String { "\(UnitShards.directoryName)/\(unitsSHA256)" }

    static func fileName(node: Int) -> String { "\(node).json" }

    /// Reads and checks node `node`'s shard.
    func read(node: Int, expectedCount: Int) throws -> UnitTable {
        guard let state else { throw GracefulStopError(.badState, "the unit names of node \(node) are in a state directory, and none was opened") }
        let source = state.pathOf("\(relativePath)/\(UnitShards.fileName(node: node))")
        let directory: Directory
        do {
            directory = try state.subdirectory(relativePath, create: false)
        } catch let error as GracefulStopError where error.errno == ENOENT {
            throw GracefulStopError(
                .badState,
                "\(state.pathOf(relativePath)) does not exist: the manifest's unit shards are missing (was the state copied without its units/ directory?)"
            )
        }
        // The file's bytes are let go before the names are indexed, so that the two never add up.
        var units = try UnitShards.decodeUnindexed(
            directory: directory, source: source, node: node, expectedCount: expectedCount,
            unitsSHA256: unitsSHA256, checksumRequired: checksumsRequired)
        try UnitShards.index(&units, source: source)
        return units
    }

    private static func decodeUnindexed(
        directory: Directory, source: String, node: Int, expectedCount: Int, unitsSHA256: String, checksumRequired: Bool
    ) throws -> UnitTable {
        guard let bytes = try directory.readFile(UnitShards.fileName(node: node)) else {
            throw GracefulStopError(.badState, "\(source) does not exist: node \(node)'s unit names are missing (was the state copied in part?)")
        }
        return try decode(
            bytes, source: source, node: node, expectedCount: expectedCount, unitsSHA256: unitsSHA256, indexed: false,
            checksumRequired: checksumRequired)
    }

    /// Parses a shard and checks it against what the manifest says node `node` owns.
    static func decode(
        _ bytes: [UInt8], source: String, node: Int, expectedCount: Int, unitsSHA256: String, indexed: Bool = true, checksumRequired: Bool = false
    ) throws -> UnitTable {
        let shard = try parse(bytes, source: source, indexed: indexed, checksumRequired: checksumRequired)
        guard shard.node == node else {
            throw GracefulStopError(.badState, "\(source) holds the units of node \(shard.node), not of node \(node)")
        }
        guard shard.unitsSHA256 == unitsSHA256 else {
            throw GracefulStopError(
                .badState, "\(source) belongs to another unit list (units_sha256 \(shard.unitsSHA256), the manifest's is \(unitsSHA256))")
        }
        guard shard.units.count == expectedCount else {
            throw GracefulStopError(
                .badState, "\(source) lists \(shard.units.count) units, but the manifest's partition gives node \(node) \(expectedCount)")
        }
        return shard.units
    }

    /// A shard's fields, each checked on its own (the count right; names valid and distinct, when
    /// `indexed`: else `index` does that).
    static func parse(
        _ bytes: [UInt8], source: String, indexed: Bool = true, checksumRequired: Bool = false
    ) throws -> (node: Int, unitsSHA256: String, units: UnitTable) {
        if bytes.isEmpty { throw GracefulStopError(.badState, "\(source) is empty (truncated?)") }
        var reader = JSONReader(bytes, source: source)
        var format: String? = nil
        var node: Int? = nil
        var declaredCount: Int? = nil
        var run: String? = nil
        var checksum: String? = nil
        var units = UnitTable()
        var sawUnits = false
        try reader.readObject { reader, key in
            switch key {
            case "format": format = try reader.readString()
            case "node": node = try reader.readInteger()
            case checksumField: checksum = try reader.readString()
            case "unit_count":
                declaredCount = try reader.readInteger()
                // Each name takes its bytes plus at least two quotes and a separator in the file.
                if let declaredCount, declaredCount > 0, declaredCount < bytes.count / 3 {
                    units.reserve(units: declaredCount, bytes: bytes.count - 3 * declaredCount)
                }
            case "units_sha256": run = try reader.readString()
            case "units":
                sawUnits = true
                try reader.readArray { reader in try units.appendName { try reader.readString(appendingTo: &$0) } }
            default: try reader.skipValue()
            }
        }
        try reader.expectEnd()
        guard format == formatName else {
            throw GracefulStopError(
                .badState, "\(source) is not a gracefulstop unit shard (format is \(format.map { "'\($0)'" } ?? "missing"), expected '\(formatName)')"
            )
        }
        guard let node else { throw GracefulStopError(.badState, "\(source) has no \"node\" field") }
        guard let run else { throw GracefulStopError(.badState, "\(source) has no \"units_sha256\" field") }
        guard sawUnits else { throw GracefulStopError(.badState, "\(source) has no \"units\" field") }
        if let declaredCount, declaredCount != units.count {
            throw GracefulStopError(.badState, "\(source) declares \(declaredCount) units but lists \(units.count)")
        }
        // One changed byte in a name would otherwise make another, valid-looking unit.
        if let checksum {
            let computed = checksumText(units.namesChecksum())
            guard checksum == computed else {
                throw GracefulStopError(
                    .badState,
                    "\(source): its names do not match their checksum (\(checksumField) \(checksum), computed \(computed)): the shard is damaged")
            }
        } else if checksumRequired {
            throw GracefulStopError(
                .badState, "\(source) has no \"\(checksumField)\" field, which the manifest says every shard has: the shard is damaged")
        }
        if indexed { try index(&units, source: source) }
        return (node, run, units)
    }

    /// Checks every name and builds the table's index.
    static func index(_ units: inout UnitTable, source: String) throws {
        do {
            try units.buildIndex(source: source)
        } catch let error as GracefulStopError {
            throw GracefulStopError(.badState, error.message.hasPrefix(source) ? error.message : "\(source): \(error.message)")
        }
    }

    /// A shard's bytes: node `node`'s names (`positions` of `table`), one per line.
    static func encode(node: Int, table: UnitTable, positions: StrideTo<Int>, count: Int, unitsSHA256: String) -> [UInt8] {
        var json = JSONWriter()
        json.raw("{\"format\": ")
        json.string(formatName)
        json.raw(", \"node\": \(node), \"unit_count\": \(count), \"units_sha256\": ")
        json.string(unitsSHA256)
        var names: [UInt8] = []
        var lengths: [Int] = []
        for position in positions {
            let name = table.nameBytes(position)
            names += name
            lengths.append(name.count)
        }
        json.raw(", \"\(checksumField)\": ")
        json.string(checksumText(names.withUnsafeBytes { UnitTable.namesChecksum(bytes: $0, lengths: lengths) }))
        json.raw(",\n\"units\": [")
        var first = true
        for position in positions {
            json.raw(first ? "\n" : ",\n")
            first = false
            json.string(table.nameBytes(position))
        }
        json.raw("\n]}\n")
        return json.bytes
    }

    /// 16 lowercase hex digits.
    static func checksumText(_ value: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: (0..<16).reversed().map { digits[Int((value >> (UInt64($0) * 4)) & 0xF)] }, as: UTF8.self)
    }

    /// Writes every shard of `table` that is not there yet, then makes the directory durable.
    /// Creators of one run write the same bytes, so a shard that exists is left as it is; each
    /// creator starts at its own node, so that many creating at once share the work.
    static func writeAll(_ table: UnitTable, partition: Partition, unitsSHA256: String, in state: Directory, startingAt start: Int) throws {
        let parent = try state.subdirectory(directoryName, create: true)
        let directory = try parent.subdirectory(unitsSHA256, create: true)
        for offset in 0..<partition.nodes {
            let node = (start + offset) % partition.nodes
            let count = partition.unitCount(ofNode: node)
            if try count == 0 || directory.exists(fileName(node: node)) { continue }
            let bytes = encode(node: node, table: table, positions: partition.units(ofNode: node), count: count, unitsSHA256: unitsSHA256)
            try directory.writeAtomically(fileName(node: node), bytes, exclusive: true, syncDirectory: false)
        }
        try directory.sync()
        try parent.sync()
    }
}
