/// What a unit name may be: non-empty UTF-8 without NUL, at most `maximumLength` bytes. Anything
/// else a user can type (slashes, spaces, dots, newlines, emoji) is a valid name; the marker file
/// name is derived by `MarkerName`, never taken from the unit name as it is.
public enum UnitName {
    /// Long enough for any path-like name (PATH_MAX is 4096), short enough that a manifest of a
    /// million units stays a file one can read.
    public static let maximumLength = 4096

    /// Throws `.invalidArgument` naming the problem when `bytes` is not a valid unit name.
    public static func validate<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws {
        let found: String?? = bytes.withContiguousStorageIfAvailable { buffer -> String? in UnitName.problem(buffer) }
        let problem: String? = found ?? Array(bytes).withUnsafeBufferPointer { buffer -> String? in UnitName.problem(buffer) }
        if let problem { throw GracefulStopError(.invalidArgument, problem) }
    }

    /// What is wrong with `bytes` as a unit name, or nil. One pass over the bytes; a String is made
    /// only for names with non-ASCII bytes (to check their UTF-8), so a million plain names cost no
    /// allocation.
    static func problem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if bytes.isEmpty { return "a unit name must not be empty" }
        if bytes.count > maximumLength { return "unit name \(preview(bytes)) is \(bytes.count) bytes; the limit is \(maximumLength)" }
        var ascii = true
        for (offset, byte) in bytes.enumerated() {
            if byte == 0 { return "unit name \(preview(bytes)) contains a NUL byte at byte \(offset)" }
            if byte >= 0x80 { ascii = false }
        }
        if !ascii && String(validating: bytes, as: UTF8.self) == nil { return "unit name \(preview(bytes)) is not valid UTF-8" }
        return nil
    }

    /// A short, printable, quoted form of a (possibly invalid) name for error messages.
    public static func preview<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var text = "'"
        for scalar in String(decoding: bytes.prefix(80), as: UTF8.self).unicodeScalars {
            switch scalar {
            case "\0": text += "\\0"
            case "\n": text += "\\n"
            case "'": text += "\\'"
            default: text += scalar.value < 0x20 ? "\\x\(String(scalar.value, radix: 16))" : String(scalar)
            }
        }
        return text + (bytes.count > 80 ? "...'" : "'")
    }
}
