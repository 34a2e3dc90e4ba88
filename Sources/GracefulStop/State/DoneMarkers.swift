import Glibc
import Synchronization

/// The done-markers of a state: `done/<node>/<stem>.done`, one per finished unit, in the directory
/// of the node that owns the unit (the manifest fixes the owner), whose content is the unit's name.
/// Sharding by node is what makes `remaining_units(node)` read only that node's markers: on a
/// million-unit run it reads an eighth of the entries a flat directory would make it read.
/// Also reads the seed's layout (`<legacy dir>/<unit>.done`) so a run begun with the old scripts
/// resumes without redoing work; that directory is only read, never written.
final class DoneMarkers: Sendable {
    static let directoryName = "done"

    let directory: Directory
    let legacy: Directory?
    /// Node directories opened so far (a process usually marks for one node: one descriptor).
    private let nodeDirectories = Locked<[Int: Directory]>([:])
    /// Compact indexes of the nodes scanned so far (see UnitTable.Subset).
    private let nodeIndexes = Locked<[Int: UnitTable.Subset]>([:])

    init(directory: Directory, legacy: Directory?) {
        self.directory = directory
        self.legacy = legacy
    }

    /// `done/<node>`, created on first use when `create`; nil when it does not exist and not `create`.
    private func nodeDirectory(_ node: Int, create: Bool) throws -> Directory? {
        if let open = nodeDirectories.withLock({ $0[node] }) { return open }
        let name = String(node)
        // Another host may have made it since this one looked (NFS): asked afresh.
        if !create, try !directory.contains(name) { return nil }
        let opened = try directory.subdirectory(name, create: create)
        return nodeDirectories.withLock { cache in
            if let raced = cache[node] { return raced }
            cache[node] = opened
            return opened
        }
    }

    /// `<stem>.done` plus a NUL, ready for the *at() calls.
    private func fileName(of unit: Int, in catalog: UnitCatalog) throws -> [CChar] {
        var name = Array(try catalog.stem(unit))
        name.append(contentsOf: MarkerName.suffix)
        name.append(0)
        return name.map { CChar(bitPattern: $0) }
    }

    /// The marker's file name as text, for messages (the node directory adds its own path).
    private func display(_ name: [CChar]) -> String {
        String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The path of unit `unit`'s marker, relative to the state directory.
    func relativePath(of unit: Int, in catalog: UnitCatalog) throws -> String {
        "\(DoneMarkers.directoryName)/\(catalog.partition.node(ofUnit: unit))/" + display(try fileName(of: unit, in: catalog))
    }

    /// Marks unit `unit` done, durably (see `Directory.createExclusively`): once this returns, the
    /// marker survives kill -9 and power loss. Idempotent, and safe from any number of processes on
    /// any number of hosts: the create is exclusive, so of two writers racing for one marker the
    /// second finds it in place and keeps it. Only the marker's name is ever read.
    /// Returns true when the unit was already done. The content is the unit's name, then a NUL and
    /// `timing` (UnitTiming) when given.
    func mark(_ unit: Int, in catalog: UnitCatalog, timing: UnitTiming? = nil) throws -> Bool {
        let node = catalog.partition.node(ofUnit: unit)
        let shard = try nodeDirectory(node, create: true)!
        let name = try fileName(of: unit, in: catalog)
        let unitName = try catalog.nameBytes(unit)
        let content = timing.map { ArraySlice($0.markerContent(name: unitName)) } ?? unitName
        return try name.withUnsafeBufferPointer { buffer in
            let cName = buffer.baseAddress!
            // Already marked? Where markers are created in place (NFS) the exclusive create itself
            // answers that, and a lookup first would be one more server request per mark.
            if try legacyHas(unitName) || (!shard.createsInPlace && shard.exists(cName, display: display(name))) {
                // Somebody marked it; make sure their entry is durable before saying so.
                try shard.sync()
                return true
            }
            let created = try content.withUnsafeBytes { content in
                try shard.createExclusively(cName, content, display: display(name))
            }
            return !created
        }
    }

    /// Whether unit `unit` is done: a refresh of the node's directory and one fstatat (two with a
    /// legacy directory); on NFS, a listing instead of the fstatat while the directory's last
    /// change is too recent to trust a cached "no such name" (Directory.contains).
    func isDone(_ unit: Int, in catalog: UnitCatalog) throws -> Bool {
        let node = catalog.partition.node(ofUnit: unit)
        let name = try fileName(of: unit, in: catalog)
        if let shard = try nodeDirectory(node, create: false) {
            if try name.withUnsafeBufferPointer({ try shard.contains($0.baseAddress!, display: display(name)) }) { return true }
        }
        return try legacyHas(catalog.nameBytes(unit))
    }

    /// `isDone` for a unit this process has just claimed (BeginRecords.claim): a refresh of the
    /// node's directory and one lookup, whatever the directory holds — never its listing, whose
    /// cost grows with the share. Exact on NFS too: a marker is written only by the holder of a
    /// claim, before that claim is removed, so it reached the server before this process's
    /// exclusive create did; the fresh open makes this host drop every name it cached as absent
    /// when the directory changed since. What `NameCacheTrust` guards against — a change hidden in
    /// the same ctime tick as one this host saw — would need a name this host looked up within a
    /// tick of another host creating it, and this host looks a marker up only while holding its
    /// unit, which no other host's worker takes over before a restart.
    func isDoneForClaimHolder(_ unit: Int, in catalog: UnitCatalog) throws -> Bool {
        let node = catalog.partition.node(ofUnit: unit)
        let name = try fileName(of: unit, in: catalog)
        if let shard = try nodeDirectory(node, create: false) {
            try shard.refresh()
            if try name.withUnsafeBufferPointer({ try shard.exists($0.baseAddress!, display: display(name)) }) { return true }
        }
        return try legacyHas(catalog.nameBytes(unit))
    }

    /// The timing records of up to `limit` of `node`'s markers: the first ones its directory lists,
    /// which on ext4, XFS and NFS is hash order, so a sample spread over the run rather than its
    /// first or last units. One open and read per marker read.
    func timings(node: Int, limit: Int) throws -> [UnitTiming] {
        try samples(node: node, limit: limit).map(\.timing)
    }

    /// `timings`, with each unit's name (the marker's content before its record).
    func samples(node: Int, limit: Int) throws -> [(name: String, timing: UnitTiming)] {
        guard limit > 0, let shard = try nodeDirectory(node, create: false) else { return [] }
        try shard.refresh()
        var names: [String] = []
        let suffixLength = MarkerName.suffix.count
        // The first `limit` markers listed: the listing stops there (the node's count, listed in
        // full, comes from `scan`; a status reads each directory once, not twice).
        try shard.forEntries(until: { name in
            if name.count > suffixLength, name[0] != UInt8(ascii: "."), name[(name.count - suffixLength)...].elementsEqual(MarkerName.suffix) {
                names.append(String(decoding: name, as: UTF8.self))
            }
            return names.count < limit
        })
        // A marker removed meanwhile, or unreadable, is left out: the sample is a sample.
        return names.compactMap { name in
            guard let content = try? shard.readFile(name, limit: Directory.recordLimit), let timing = UnitTiming.decode(markerContent: content) else {
                return nil
            }
            return (String(decoding: content.prefix { $0 != 0 }, as: UTF8.self), timing)
        }
    }

    /// The seed names markers `<unit>.done` verbatim, so only names that are one plain path
    /// component can have one.
    private func legacyHas(_ unit: ArraySlice<UInt8>) throws -> Bool {
        guard let legacy else { return false }
        var name = Array(unit)
        if name.contains(UInt8(ascii: "/")) || name.count + MarkerName.suffix.count > MarkerName.maximumFileNameLength { return false }
        name.append(contentsOf: MarkerName.suffix)
        return try legacy.exists(String(decoding: name, as: UTF8.self))
    }

    /// The done units of `node`, by their place among its units (`share` holds its names): one
    /// readdir of the node's directory, never a stat per unit; plus one of the legacy directory.
    /// A whole-run question scans node by node, so only one node's names need be in memory.
    func scan(_ share: UnitCatalog.Share, cacheIndex: Bool = true) throws -> DoneSet {
        let node = share.node
        var done = DoneSet(unitCount: share.isWhole ? share.partition.unitCount(ofNode: node) : share.table.count)
        let suffixLength = MarkerName.suffix.count
        // A version-2 share is a table of the node's names alone: its own index answers. A
        // version-1 table holds the whole run; a compact index of the node's units is built (and
        // kept for the next scan of the same node, this process's own).
        var subset: UnitTable.Subset? = nil
        if share.isWhole {
            let built = nodeIndexes.withLock { $0[node] } ?? UnitTable.Subset(share.table, positions: share.wholeTablePositions)
            if cacheIndex { nodeIndexes.withLock { $0[node] = $0[node] ?? built } }
            subset = built
        }
        var hashes: [UInt64] = []
        func lookUp(_ keys: [UnsafeBufferPointer<UInt8>], into found: inout [Int?]) {
            if let subset { return subset.lookUp(keys, into: &found) }
            share.table.withLookup { $0.indices(ofStems: keys, hashes: &hashes, into: &found) }
        }
        // Every directory is refreshed before it is read (Directory.refresh): on NFS a listing
        // would otherwise miss markers other hosts wrote in the last minute.
        if let shard = try nodeDirectory(node, create: false) {
            try shard.refresh()
            // Entry names are copied into a batch buffer (readdir's buffer is reused under us).
            let batchSize = 32
            var names = [UInt8](repeating: 0, count: batchSize * 256)
            var lengths: [Int] = []
            var found: [Int?] = []
            func flush() {
                names.withUnsafeBufferPointer { names in
                    let keys = lengths.indices.map { UnsafeBufferPointer(rebasing: names[($0 * 256)..<($0 * 256 + lengths[$0])]) }
                    lookUp(keys, into: &found)
                }
                for case let local? in found.prefix(lengths.count) { done.insert(local) }
                lengths.removeAll(keepingCapacity: true)
            }
            try shard.forEachEntry { name in
                guard name.count > suffixLength, name.count <= 255, name[0] != UInt8(ascii: "."),
                    name[(name.count - suffixLength)...].elementsEqual(MarkerName.suffix)
                else { return }
                let stemLength = name.count - suffixLength
                names.withUnsafeMutableBufferPointer { buffer in
                    _ = UnsafeMutableBufferPointer(rebasing: buffer[(lengths.count * 256)...]).initialize(from: name[..<stemLength])
                }
                lengths.append(stemLength)
                if lengths.count == batchSize { flush() }
            }
            if !lengths.isEmpty { flush() }
        }
        if let legacy {
            try legacy.refresh()
            var stem: [UInt8] = []
            var found: [Int?] = []
            try legacy.forEachEntry { name in
                guard name.count > suffixLength, name[(name.count - suffixLength)...].elementsEqual(MarkerName.suffix) else { return }
                stem.removeAll(keepingCapacity: true)
                MarkerName.appendStem(of: name[..<(name.count - suffixLength)], to: &stem)
                stem.withUnsafeBufferPointer { lookUp([$0], into: &found) }
                if let local = found.first ?? nil { done.insert(local) }
            }
        }
        return done
    }
}
