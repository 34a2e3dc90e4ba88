import Glibc

/// The manifest's units in order, laid out for a million names: every name in one byte buffer, and
/// an open-addressing index from a marker's stem (its file name without `.done`) to the unit's
/// position. A directory scan then finds each entry's unit without allocating anything: `withLookup`
/// hands out raw pointers for the whole scan.
struct UnitTable: Sendable {
    private var nameBytes: [UInt8] = []
    private var nameEnds: [UInt32] = []
    /// Stems of every unit; kept only when some stem differs from its name (most runs use plain
    /// names, whose stem is the name itself).
    private var stemBytes: [UInt8]? = nil
    private var stemEnds: [UInt32]? = nil
    /// The index: about 1.3 slots per unit (not a power of two: a multiply-shift maps hashes onto
    /// it). Each slot holds a unit's position plus one (0: empty) in its low half and its hash's low
    /// 32 bits in its high half, so a probe compares names only when the tags agree.
    private var slots: [UInt64] = []

    var count: Int { nameEnds.count }

    init() {}

    /// Builds a table from names; throws on an invalid or repeated name.
    init<Names: Sequence>(names: Names) throws where Names.Element: Collection<UInt8> {
        for name in names { appendName { $0.append(contentsOf: name) } }
        try buildIndex(source: "the unit list")
    }

    /// Makes room for `units` names of `bytes` bytes in all (the manifest reader knows both roughly).
    mutating func reserve(units: Int, bytes: Int) {
        nameEnds.reserveCapacity(units)
        nameBytes.reserveCapacity(bytes)
    }

    /// Appends one unit whose bytes `write` appends to the shared buffer (the manifest reader
    /// decodes JSON straight into it).
    mutating func appendName(_ write: (inout [UInt8]) throws -> Void) rethrows {
        try write(&nameBytes)
        nameEnds.append(UInt32(nameBytes.count))
    }

    @inline(__always)
    private static func range(_ ends: UnsafeBufferPointer<UInt32>, _ index: Int) -> Range<Int> {
        (index == 0 ? 0 : Int(ends[index - 1]))..<Int(ends[index])
    }

    func nameBytes(_ index: Int) -> ArraySlice<UInt8> {
        nameBytes[nameEnds.withUnsafeBufferPointer { UnitTable.range($0, index) }]
    }

    func name(_ index: Int) -> String { String(decoding: nameBytes(index), as: UTF8.self) }

    /// A unit shard's check of its names (`names_words64`): FNV-1a's offset basis and prime,
    /// applied a 64-bit word at a time — over the names' bytes laid end to end (little-endian
    /// words, the last zero-padded), then each name's length, then the total. Byte-at-a-time FNV-1a
    /// is one multiply per byte, in a chain no CPU overlaps: 15 % of `gstop should-requeue` at a
    /// million units (bench 13c). A word at a time is an eighth of that, and still no changed byte
    /// or moved boundary can go unseen (each step is a bijection of the hash).
    static func namesChecksum(bytes: UnsafeRawBufferPointer, lengths: some Sequence<Int>) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01b3
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var offset = 0
        while offset + 8 <= bytes.count {
            hash = (hash ^ UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))) &* prime
            offset += 8
        }
        if offset < bytes.count {
            var last: UInt64 = 0
            for (shift, byte) in bytes[offset...].enumerated() { last |= UInt64(byte) << (8 * UInt64(shift)) }
            hash = (hash ^ last) &* prime
        }
        for length in lengths { hash = (hash ^ UInt64(length)) &* prime }
        return (hash ^ UInt64(bytes.count)) &* prime
    }

    func namesChecksum() -> UInt64 {
        nameBytes.withUnsafeBytes { bytes in
            nameEnds.withUnsafeBufferPointer { ends in
                UnitTable.namesChecksum(bytes: bytes, lengths: ends.indices.lazy.map { UnitTable.range(ends, $0).count })
            }
        }
    }

    /// Calls `body` with the raw bytes of names, for copying many names out at once.
    func withNameStorage<R>(_ body: (UnsafeBufferPointer<UInt8>, (Int) -> Range<Int>) throws -> R) rethrows -> R {
        try nameBytes.withUnsafeBufferPointer { bytes in
            try nameEnds.withUnsafeBufferPointer { ends in try body(bytes, { UnitTable.range(ends, $0) }) }
        }
    }

    /// The stem of unit `index`'s marker.
    func stem(_ index: Int) -> ArraySlice<UInt8> {
        guard let stemBytes, let stemEnds else { return nameBytes(index) }
        return stemBytes[stemEnds.withUnsafeBufferPointer { UnitTable.range($0, index) }]
    }

    /// Raw views of stems and an index over them, valid inside `withLookup`.
    struct Lookup {
        let stems: UnsafeBufferPointer<UInt8>
        let ends: UnsafeBufferPointer<UInt32>
        let slots: UnsafeBufferPointer<UInt64>

        @inline(__always)
        func stem(_ index: Int) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: stems[UnitTable.range(ends, index)]) }

        /// The position (in `stems`) of the stem equal to `key`, or nil.
        @inline(__always)
        func index(ofStem key: UnsafeBufferPointer<UInt8>) -> Int? { index(ofStem: key, hash: UnitTable.hash(key)) }

        /// The positions of the stems `keys` (nil for a stem of no unit), into `found`. A scan of a
        /// node's markers looks up thousands of names in tables larger than the cache, and each
        /// lookup reads three places (its slot, the name's offsets, the name): done one key at a
        /// time those are three cache misses in a row. Here a batch's slots are read first, then
        /// their offsets, then their names, so that the misses of a batch overlap; the probes
        /// that follow find everything cached.
        func indices(ofStems keys: [UnsafeBufferPointer<UInt8>], hashes: inout [UInt64], into found: inout [Int?]) {
            found.removeAll(keepingCapacity: true)
            hashes.removeAll(keepingCapacity: true)
            if slots.isEmpty {
                found.append(contentsOf: repeatElement(nil, count: keys.count))
                return
            }
            var warm: UInt64 = 0
            for key in keys {
                let hash = UnitTable.hash(key)
                hashes.append(hash)
                warm &+= slots[UnitTable.slot(hash, slots.count)]
            }
            for hash in hashes {
                let entry = slots[UnitTable.slot(hash, slots.count)]
                if entry != 0 { warm &+= UInt64(ends[Int(entry & 0xFFFF_FFFF) - 1]) }
            }
            for hash in hashes {
                let entry = slots[UnitTable.slot(hash, slots.count)]
                if entry != 0 {
                    let candidate = Int(entry & 0xFFFF_FFFF) - 1
                    let start = candidate == 0 ? 0 : Int(ends[candidate - 1])
                    if start < stems.count { warm &+= UInt64(stems[start]) }
                }
            }
            for (key, hash) in zip(keys, hashes) { found.append(index(ofStem: key, hash: hash)) }
            if warm == 0x5EED_5EED { found.append(nil) }  // keeps the warming loads from being optimised away
        }

        @inline(__always)
        func index(ofStem key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int? {
            if slots.isEmpty { return nil }
            let tag = hash << 32
            var slot = UnitTable.slot(hash, slots.count)
            while true {
                let entry = slots[slot]
                if entry == 0 { return nil }
                if entry & 0xFFFF_FFFF_0000_0000 == tag {
                    let candidate = Int(entry & 0xFFFF_FFFF) - 1
                    if UnitTable.equal(stem(candidate), key) { return candidate }
                }
                slot = slot + 1 == slots.count ? 0 : slot + 1
            }
        }

        /// Builds slots for every stem; returns the first pair of equal stems, if any.
        static func fill(
            _ slots: UnsafeMutableBufferPointer<UInt64>, stems: UnsafeBufferPointer<UInt8>,
            ends: UnsafeBufferPointer<UInt32>
        ) -> (Int, Int)? {
            for index in 0..<ends.count {
                let key = UnsafeBufferPointer(rebasing: stems[UnitTable.range(ends, index)])
                let hash = UnitTable.hash(key)
                let tag = hash << 32
                var slot = UnitTable.slot(hash, slots.count)
                while slots[slot] != 0 {
                    let entry = slots[slot]
                    let other = Int(entry & 0xFFFF_FFFF) - 1
                    if entry & 0xFFFF_FFFF_0000_0000 == tag,
                        UnitTable.equal(UnsafeBufferPointer(rebasing: stems[UnitTable.range(ends, other)]), key)
                    {
                        return (other, index)
                    }
                    slot = slot + 1 == slots.count ? 0 : slot + 1
                }
                slots[slot] = tag | UInt64(index + 1)
            }
            return nil
        }
    }

    func withLookup<R>(_ body: (Lookup) throws -> R) rethrows -> R {
        try (stemBytes ?? nameBytes).withUnsafeBufferPointer { stems in
            try (stemEnds ?? nameEnds).withUnsafeBufferPointer { ends in
                try slots.withUnsafeBufferPointer { slots in try body(Lookup(stems: stems, ends: ends, slots: slots)) }
            }
        }
    }

    /// A compact index of some units (one node's), for scanning that node's directory: an
    /// open-addressing table of 32-byte records, each holding a unit's position, its stem's hash tag
    /// and length, and the stem itself when it fits in 16 bytes (names like "eq_17" or
    /// "unit-0000042"). A lookup then reads one record, where a lookup in the whole table reads a
    /// slot, offsets, bytes and a position from four arrays of a million entries, each a likely
    /// cache miss.
    struct Subset: Sendable {
        struct Record: Sendable {
            var tag: UInt32 = 0
            /// The unit's place among the subset's units; -1 for an empty record.
            var unit: Int32 = -1
            /// The stem's first 16 bytes, zero-padded.
            var head: (UInt64, UInt64) = (0, 0)
            /// Where a stem longer than 16 bytes is, in `long`.
            var offset: UInt32 = 0
            var length: UInt32 = 0
        }

        private let records: [Record]
        private let long: [UInt8]

        /// Indexes the units at `positions` of `table`; a lookup yields the offset in `positions`
        /// (the unit's place among its node's units).
        init(_ table: UnitTable, positions: [Int]) {
            var records = [Record](repeating: Record(), count: max(16, positions.count + positions.count / 3 + 1))
            var long: [UInt8] = []
            for (local, unit) in positions.enumerated() {
                let stem = Array(table.stem(unit))
                stem.withUnsafeBufferPointer { key in
                    let hash = UnitTable.hash(key)
                    var record = Record(
                        tag: UInt32(truncatingIfNeeded: hash), unit: Int32(local), head: Subset.head(key),
                        offset: UInt32(long.count), length: UInt32(key.count))
                    if key.count > 16 { long.append(contentsOf: key) } else { record.offset = 0 }
                    var slot = UnitTable.slot(hash, records.count)
                    while records[slot].unit != -1 { slot = slot + 1 == records.count ? 0 : slot + 1 }
                    records[slot] = record
                }
            }
            self.records = records
            self.long = long
        }

        /// A key's first 16 bytes as two words, zero-padded.
        @inline(__always)
        static func head(_ key: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(key).prefix(16))) }
            return words
        }

        /// The places of the units whose stems are `keys` (nil for a stem of no unit here).
        /// Keys go in batches: every key's first record is read before any is compared, so the
        /// cache misses of a batch overlap instead of following one another.
        func lookUp(_ keys: [UnsafeBufferPointer<UInt8>], into found: inout [Int?]) {
            records.withUnsafeBufferPointer { records in
                long.withUnsafeBufferPointer { long in
                    var hashes = [UInt64](repeating: 0, count: keys.count)
                    var warm: UInt32 = 0
                    for (index, key) in keys.enumerated() {
                        hashes[index] = UnitTable.hash(key)
                        warm &+= records[UnitTable.slot(hashes[index], records.count)].tag
                    }
                    found.removeAll(keepingCapacity: true)
                    for (index, key) in keys.enumerated() {
                        let hash = hashes[index]
                        let tag = UInt32(truncatingIfNeeded: hash)
                        let head = Subset.head(key)
                        var slot = UnitTable.slot(hash, records.count)
                        var unit: Int? = nil
                        while true {
                            let record = records[slot]
                            if record.unit == -1 { break }
                            if record.tag == tag && record.length == UInt32(key.count) && record.head == head
                                && (key.count <= 16
                                    || UnitTable.equal(
                                        UnsafeBufferPointer(rebasing: long[Int(record.offset)..<Int(record.offset + record.length)]), key))
                            {
                                unit = Int(record.unit)
                                break
                            }
                            slot = slot + 1 == records.count ? 0 : slot + 1
                        }
                        found.append(unit)
                    }
                    if warm == 0x5EED_5EED { found.append(nil) }  // keeps the warming loads from being optimised away
                }
            }
        }
    }

    /// Validates every name, derives stems and fills the index. `source` names the file for errors.
    mutating func buildIndex(source: String) throws {
        var allVerbatim = true
        try nameBytes.withUnsafeBufferPointer { bytes in
            try nameEnds.withUnsafeBufferPointer { ends in
                for index in 0..<ends.count {
                    let name = UnsafeBufferPointer(rebasing: bytes[UnitTable.range(ends, index)])
                    if let problem = UnitName.problem(name) {
                        throw GracefulStopError(.invalidArgument, "\(source), unit #\(index): \(problem)")
                    }
                    if allVerbatim && !MarkerName.isVerbatim(name) { allVerbatim = false }
                }
            }
        }
        if !allVerbatim {
            var bytes: [UInt8] = []
            var ends: [UInt32] = []
            ends.reserveCapacity(count)
            for index in 0..<count {
                MarkerName.appendStem(of: nameBytes(index), to: &bytes)
                ends.append(UInt32(bytes.count))
            }
            stemBytes = bytes
            stemEnds = ends
        }
        slots = UnitTable.zeroedWords(max(16, count + count / 3 + 1))
        let duplicate: (Int, Int)? = (stemBytes ?? nameBytes).withUnsafeBufferPointer { stems in
            (stemEnds ?? nameEnds).withUnsafeBufferPointer { ends in
                slots.withUnsafeMutableBufferPointer { Lookup.fill($0, stems: stems, ends: ends) }
            }
        }
        if let (first, second) = duplicate {
            throw GracefulStopError(
                .invalidArgument, "\(source): unit \(UnitName.preview(nameBytes(second))) appears twice (#\(first) and #\(second))")
        }
    }

    /// `count` zero words. A large index is asked to sit on 2 MB pages where the system leaves
    /// that to the program (transparent_hugepage=madvise, a common default): its probes land at
    /// random, and on 4 KB pages nearly each one misses the TLB as well as the cache. Asked before
    /// the memory is first touched, so that the kernel can hand out huge pages at once.
    static func zeroedWords(_ count: Int) -> [UInt64] {
        [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
            let bytes = UInt(count * MemoryLayout<UInt64>.stride)
            if bytes >= 4 << 20, let base = buffer.baseAddress {
                let hugePage: UInt = 2 << 20
                let start = (UInt(bitPattern: base) + hugePage - 1) & ~(hugePage - 1)
                let end = (UInt(bitPattern: base) + bytes) & ~(hugePage - 1)
                if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), 14) }  // 14: MADV_HUGEPAGE
            }
            buffer.initialize(repeating: 0)
            initialized = count
        }
    }

    /// The position of the unit whose marker stem is `key`, or nil.
    func index<Key: Collection<UInt8>>(ofStem key: Key) -> Int? {
        let bytes = Array(key)
        return bytes.withUnsafeBufferPointer { key in withLookup { $0.index(ofStem: key) } }
    }

    /// The position of the unit named `name`, or nil.
    func index<Name: Collection<UInt8>>(ofUnit name: Name) -> Int? {
        var stem: [UInt8] = []
        MarkerName.appendStem(of: name, to: &stem)
        return index(ofStem: stem)
    }

    /// FNV-1a, 64-bit, then the splitmix64 finalizer: FNV alone leaves the high bits of names that
    /// differ only in their last characters alike, and `slot` uses the high bits.
    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }

    /// Maps a hash onto 0..<count with one multiplication (Lemire's multiply-shift).
    @inline(__always)
    static func slot(_ hash: UInt64, _ count: Int) -> Int {
        Int(truncatingIfNeeded: hash.multipliedFullWidth(by: UInt64(count)).high)
    }

    /// Byte equality; names of 8 to 16 bytes (most units') are compared as two overlapping words
    /// rather than through a call to memcmp, which a scan of a million markers makes a million times.
    @inline(__always)
    static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = a.count
        guard count == b.count else { return false }
        if count == 0 { return true }
        let left = UnsafeRawPointer(a.baseAddress!)
        let right = UnsafeRawPointer(b.baseAddress!)
        if count >= 8 && count <= 16 {
            return left.loadUnaligned(as: UInt64.self) == right.loadUnaligned(as: UInt64.self)
                && left.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) == right.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self)
        }
        return memcmp(left, right, count) == 0
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
