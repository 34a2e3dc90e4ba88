/// A file listing units, for `gstop init`: one per line (blank lines and a trailing "\r" are
/// dropped), or separated by NUL bytes for names that contain newlines. "-" is standard input.
public enum UnitListFile {
    public static func read(path: String, nulSeparated: Bool) throws -> [String] {
        let bytes: [UInt8]
        if path == "-" {
            bytes = try Directory.readStandardInput()
        } else {
            let slash = path.lastIndex(of: "/")
            let directory = try Directory(opening: slash.map { path[..<$0].isEmpty ? "/" : String(path[..<$0]) } ?? ".")
            guard let content = try directory.readFile(slash.map { String(path[path.index(after: $0)...]) } ?? path, anyKind: true) else {
                throw GracefulStopError(.system, "unit list \(path) does not exist", errno: 2)
            }
            bytes = content
        }
        var units: [String] = []
        for (number, piece) in bytes.split(separator: nulSeparated ? 0 : UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            var name = Array(piece)
            if !nulSeparated && name.last == UInt8(ascii: "\r") { name.removeLast() }
            if name.isEmpty || (!nulSeparated && name.allSatisfy { $0 == 0x20 || $0 == 0x09 }) { continue }
            guard let text = String(validating: name, as: UTF8.self) else {
                throw GracefulStopError(.invalidArgument, "\(path), \(nulSeparated ? "entry" : "line") \(number + 1): not valid UTF-8")
            }
            units.append(text)
        }
        return units
    }
}
