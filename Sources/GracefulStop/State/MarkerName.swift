/// How a unit name becomes the file name of its done-marker, and back (docs/state-format.md).
///
/// Bytes in `A-Z a-z 0-9 - _ .` are kept, except a leading `.`; every other byte becomes `%XX`
/// (uppercase hex). The result can never be `.`, `..`, a hidden file or contain `/`, and it
/// decodes back to the exact name. When the encoded name plus `.done` would pass the 255-byte limit
/// of file names, the file is named by the first 128 bytes of the encoding, `+`, and the SHA-256 of
/// the name; `+` never appears in a plain encoding, so the two forms cannot be confused, and the
/// marker's content (the unit name itself) makes it reversible.
public enum MarkerName {
    public static let suffix: [UInt8] = Array(".done".utf8)
    public static let maximumFileNameLength = 255
    static let hashedPrefixLength = 128
    static let hashSeparator = UInt8(ascii: "+")
    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    @inline(__always)
    static func isKept(_ byte: UInt8, atStart: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        case UInt8(ascii: "."):
            return !atStart
        default:
            return false
        }
    }

    /// True when the stem is the name itself (the common case, which needs no extra storage).
    static func isVerbatim<Bytes: Collection<UInt8>>(_ unit: Bytes) -> Bool {
        if unit.count + suffix.count > maximumFileNameLength { return false }
        var atStart = true
        for byte in unit {
            if !isKept(byte, atStart: atStart) { return false }
            atStart = false
        }
        return true
    }

    /// Appends the stem (the file name without `.done`) of `unit`'s marker to `output`.
    static func appendStem<Bytes: Collection<UInt8>>(of unit: Bytes, to output: inout [UInt8]) {
        let start = output.count
        var atStart = true
        for byte in unit {
            if isKept(byte, atStart: atStart) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0xF)])
            }
            atStart = false
        }
        if output.count - start + suffix.count <= maximumFileNameLength { return }
        // Too long: keep a readable prefix, cut before any escape it would split, then the hash.
        var cut = start + hashedPrefixLength
        if output[cut - 1] == UInt8(ascii: "%") { cut -= 1 } else if output[cut - 2] == UInt8(ascii: "%") { cut -= 2 }
        output.removeSubrange(cut...)
        output.append(hashSeparator)
        output.append(contentsOf: SHA256.hexDigest(unit))
    }

    /// The marker's file name for `unit`.
    public static func fileName(of unit: String) -> String {
        var stem: [UInt8] = []
        appendStem(of: unit.utf8, to: &stem)
        return String(decoding: stem + suffix, as: UTF8.self)
    }

    /// What a file name in a marker directory says.
    public enum Decoded: Equatable, Sendable {
        /// A plain marker: the unit's name.
        case unit(String)
        /// A hashed marker: the unit's name is the file's content.
        case hashed
        /// Not a marker file (temporary files, stray files).
        case notAMarker
    }

    /// Decodes a file name found in a marker directory.
    public static func decode(fileName: String) -> Decoded {
        let bytes = Array(fileName.utf8)
        guard bytes.count > suffix.count, bytes.suffix(suffix.count).elementsEqual(suffix), bytes[0] != UInt8(ascii: ".")
        else { return .notAMarker }
        let stem = bytes.dropLast(suffix.count)
        if stem.contains(hashSeparator) { return .hashed }
        var unit: [UInt8] = []
        var index = stem.startIndex
        while index < stem.endIndex {
            let byte = stem[index]
            if byte == UInt8(ascii: "%") {
                guard index + 3 <= stem.endIndex,
                    let high = hexDigits.firstIndex(of: stem[index + 1]), let low = hexDigits.firstIndex(of: stem[index + 2])
                else { return .notAMarker }
                unit.append(UInt8(high << 4 | low))
                index += 3
            } else {
                guard isKept(byte, atStart: index == stem.startIndex) else { return .notAMarker }
                unit.append(byte)
                index += 1
            }
        }
        // Only the canonical encoding is a marker: re-encoding must give the same stem.
        var again: [UInt8] = []
        appendStem(of: unit, to: &again)
        guard again.elementsEqual(stem), let name = String(validating: unit, as: UTF8.self), (try? UnitName.validate(unit)) != nil
        else { return .notAMarker }
        return .unit(name)
    }
}
