import Glibc

/// The done-markers of a state: `done/<stem>.done`, one per finished unit, whose content is the
/// unit's name. Also reads the seed's layout (`<legacy dir>/<unit>.done`) so a run begun with the
/// old scripts resumes without redoing work; that directory is only read, never written.
final class DoneMarkers: Sendable {
    static let directoryName = "done"

    let directory: Directory
    let legacy: Directory?

    init(directory: Directory, legacy: Directory?) {
        self.directory = directory
        self.legacy = legacy
    }

    /// `<stem>.done` plus a NUL, ready for the *at() calls.
    private func fileName(of unit: Int, in table: UnitTable) -> [CChar] {
        var name = Array(table.stem(unit))
        name.append(contentsOf: MarkerName.suffix)
        name.append(0)
        return name.map { CChar(bitPattern: $0) }
    }

    private func display(_ name: [CChar]) -> String {
        DoneMarkers.directoryName + "/" + String(decoding: name.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Marks unit `unit` done, atomically and durably (see `Directory.writeAtomically`): once this
    /// returns, the marker survives kill -9 and power loss. Idempotent, and safe from any number of
    /// processes on any number of hosts: a second writer's rename replaces a complete marker with
    /// an identical one. Returns true when the unit was already done.
    func mark(_ unit: Int, in table: UnitTable) throws -> Bool {
        let name = fileName(of: unit, in: table)
        return try name.withUnsafeBufferPointer { buffer in
            let cName = buffer.baseAddress!
            if try directory.exists(cName, display: display(name)) || legacyHas(unit, in: table) {
                // Somebody marked it; make sure their entry is durable before saying so.
                try directory.sync()
                return true
            }
            try table.nameBytes(unit).withUnsafeBytes { content in
                try directory.writeAtomically(cName, content, display: display(name))
            }
            return false
        }
    }

    /// Whether unit `unit` is done: one fstatat (two with a legacy directory).
    func isDone(_ unit: Int, in table: UnitTable) throws -> Bool {
        let name = fileName(of: unit, in: table)
        return try name.withUnsafeBufferPointer { try directory.exists($0.baseAddress!, display: display(name)) }
            || legacyHas(unit, in: table)
    }

    /// The seed names markers `<unit>.done` verbatim, so only names that are one plain path
    /// component can have one.
    private func legacyHas(_ unit: Int, in table: UnitTable) throws -> Bool {
        guard let legacy else { return false }
        var name = Array(table.nameBytes(unit))
        if name.contains(UInt8(ascii: "/")) || name.count + MarkerName.suffix.count > MarkerName.maximumFileNameLength { return false }
        name.append(contentsOf: MarkerName.suffix)
        let text = String(decoding: name, as: UTF8.self)
        return try legacy.exists(text)
    }

    /// Every done unit: one readdir of `done/` (and of the legacy directory), never a stat per unit.
    func scan(_ table: UnitTable) throws -> DoneSet {
        var done = DoneSet(unitCount: table.count)
        let suffixLength = MarkerName.suffix.count
        try directory.forEachEntry { name in
            guard name.count > suffixLength, name[0] != UInt8(ascii: "."),
                  name[(name.count - suffixLength)...].elementsEqual(MarkerName.suffix),
                  let unit = table.index(ofStem: name[..<(name.count - suffixLength)])
            else { return }
            done.insert(unit)
        }
        try legacy?.forEachEntry { name in
            guard name.count > suffixLength, name[(name.count - suffixLength)...].elementsEqual(MarkerName.suffix),
                  let unit = table.index(ofUnit: name[..<(name.count - suffixLength)])
            else { return }
            done.insert(unit)
        }
        return done
    }
}
