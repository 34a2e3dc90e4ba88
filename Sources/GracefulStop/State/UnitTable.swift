/// The manifest's units in order, laid out for a million names: every name in one byte buffer, and
/// an open-addressing index from a marker's stem (its file name without `.done`) to the unit's
/// position. A directory scan then finds each entry's unit without allocating anything.
struct UnitTable: Sendable {
    private var nameBytes: [UInt8] = []
    private var nameEnds: [UInt32] = []
    /// Stems of every unit; kept only when some stem differs from its name (most runs use plain
    /// names, whose stem is the name itself).
    private var stemBytes: [UInt8]? = nil
    private var stemEnds: [UInt32]? = nil
    /// Unit positions by stem hash; -1 is empty. Capacity is a power of two, at least twice `count`.
    private var slots: [Int32] = []

    var count: Int { nameEnds.count }

    init() {}

    /// Builds a table from names; throws on an invalid or repeated name.
    init<Names: Sequence>(names: Names) throws where Names.Element: Collection<UInt8> {
        for name in names { appendName { $0.append(contentsOf: name) } }
        try buildIndex(source: "the unit list")
    }

    /// Appends one unit whose bytes `write` appends to the shared buffer (the manifest reader
    /// decodes JSON straight into it).
    mutating func appendName(_ write: (inout [UInt8]) throws -> Void) rethrows {
        try write(&nameBytes)
        nameEnds.append(UInt32(nameBytes.count))
    }

    @inline(__always)
    private func nameRange(_ index: Int) -> Range<Int> {
        (index == 0 ? 0 : Int(nameEnds[index - 1]))..<Int(nameEnds[index])
    }

    func nameBytes(_ index: Int) -> ArraySlice<UInt8> { nameBytes[nameRange(index)] }

    func name(_ index: Int) -> String { String(decoding: nameBytes[nameRange(index)], as: UTF8.self) }

    /// Calls `body` with the raw bytes of names, for copying many names out at once.
    func withNameStorage<R>(_ body: (UnsafeBufferPointer<UInt8>, (Int) -> Range<Int>) throws -> R) rethrows -> R {
        try nameBytes.withUnsafeBufferPointer { try body($0, nameRange) }
    }

    /// The stem of unit `index`'s marker.
    func stem(_ index: Int) -> ArraySlice<UInt8> {
        guard let stemBytes, let stemEnds else { return nameBytes[nameRange(index)] }
        let start = index == 0 ? 0 : Int(stemEnds[index - 1])
        return stemBytes[start..<Int(stemEnds[index])]
    }

    /// Validates every name, derives stems and fills the index. `source` names the file for errors.
    mutating func buildIndex(source: String) throws {
        var allVerbatim = true
        for index in 0..<count {
            let name = nameBytes[nameRange(index)]
            do { try UnitName.validate(name) } catch let error as GracefulStopError {
                throw GracefulStopError(.invalidArgument, "\(source), unit #\(index): \(error.message)")
            }
            if allVerbatim && !MarkerName.isVerbatim(name) { allVerbatim = false }
        }
        if !allVerbatim {
            var bytes: [UInt8] = []
            var ends: [UInt32] = []
            ends.reserveCapacity(count)
            for index in 0..<count {
                MarkerName.appendStem(of: nameBytes[nameRange(index)], to: &bytes)
                ends.append(UInt32(bytes.count))
            }
            stemBytes = bytes
            stemEnds = ends
        }
        var capacity = 16
        while capacity < 2 * count { capacity <<= 1 }
        slots = [Int32](repeating: -1, count: capacity)
        let mask = capacity - 1
        for index in 0..<count {
            let key = stem(index)
            var slot = Int(truncatingIfNeeded: UnitTable.hash(key)) & mask
            while slots[slot] != -1 {
                let other = Int(slots[slot])
                if stem(other).elementsEqual(key) {
                    throw GracefulStopError(
                        .invalidArgument,
                        "\(source): unit \(UnitName.preview(nameBytes(index))) appears twice (#\(other) and #\(index))")
                }
                slot = (slot + 1) & mask
            }
            slots[slot] = Int32(index)
        }
    }

    /// The position of the unit whose marker stem is `key`, or nil.
    func index<Key: Collection<UInt8>>(ofStem key: Key) -> Int? {
        if slots.isEmpty { return nil }
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: UnitTable.hash(key)) & mask
        while true {
            let candidate = Int(slots[slot])
            if candidate == -1 { return nil }
            if stem(candidate).elementsEqual(key) { return candidate }
            slot = (slot + 1) & mask
        }
    }

    /// The position of the unit named `name`, or nil.
    func index<Name: Collection<UInt8>>(ofUnit name: Name) -> Int? {
        if MarkerName.isVerbatim(name) { return index(ofStem: name) }
        var stem: [UInt8] = []
        MarkerName.appendStem(of: name, to: &stem)
        return index(ofStem: stem)
    }

    /// FNV-1a, 64-bit: simple, and good enough to spread file names over the slots.
    @inline(__always)
    static func hash<Key: Collection<UInt8>>(_ key: Key) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash ^ (hash >> 29)
    }
}

/// Which units are done, as one bit per manifest position.
struct DoneSet: Sendable {
    private var words: [UInt64]
    private(set) var count = 0

    init(unitCount: Int) { words = [UInt64](repeating: 0, count: (unitCount + 63) / 64) }

    @inline(__always)
    func contains(_ index: Int) -> Bool { words[index >> 6] & (1 << UInt64(index & 63)) != 0 }

    /// Adds `index`; true when it was not there before.
    @inline(__always)
    @discardableResult
    mutating func insert(_ index: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(index & 63)
        if words[index >> 6] & bit != 0 { return false }
        words[index >> 6] |= bit
        count += 1
        return true
    }

    /// Removes `index` (a marker deleted by hand since the last scan).
    @inline(__always)
    mutating func remove(_ index: Int) {
        let bit: UInt64 = 1 << UInt64(index & 63)
        if words[index >> 6] & bit == 0 { return }
        words[index >> 6] &= ~bit
        count -= 1
    }
}
