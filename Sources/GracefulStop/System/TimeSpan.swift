/// Durations as people write them on a command line: "90" or "90s", "5m", "1h30m", "2h", "1d",
/// "1.5m", "250ms"; and SLURM's "MM:SS", "HH:MM:SS" and "D-HH:MM:SS".
public enum TimeSpan {
    private static let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]

    /// Seconds in `text`; throws `.invalidArgument` with the accepted forms.
    public static func parse(_ text: String) throws -> Double {
        let trimmed = text.trimmingSpaces
        let invalid = GracefulStopError(
            .invalidArgument, "'\(text)' is not a duration; write it like 90, 90s, 5m, 1h30m, 250ms or HH:MM:SS")
        if trimmed.isEmpty { throw invalid }
        if trimmed.contains(":") { return try parseClock(trimmed) ?? { throw invalid }() }
        var total = 0.0
        var number = ""
        var index = trimmed.startIndex
        var sawUnit = false
        while index < trimmed.endIndex {
            let character = trimmed[index]
            if character.isNumber || character == "." {
                number.append(character)
                index = trimmed.index(after: index)
                continue
            }
            guard let value = Double(number),
                let unit = units.first(where: { trimmed[index...].hasPrefix($0.0) && !($0.0 == "m" && trimmed[index...].hasPrefix("ms")) })
            else { throw invalid }
            total += value * unit.1
            number = ""
            sawUnit = true
            index = trimmed.index(index, offsetBy: unit.0.count)
        }
        if !number.isEmpty {
            guard let value = Double(number) else { throw invalid }
            total += value
        } else if !sawUnit {
            throw invalid
        }
        guard total.isFinite, total >= 0 else { throw invalid }
        return total
    }

    private static func parseClock(_ text: String) -> Double? {
        var days = 0.0
        var rest = Substring(text)
        if let dash = text.firstIndex(of: "-") {
            guard let value = Double(text[..<dash]) else { return nil }
            days = value
            rest = text[text.index(after: dash)...]
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false).map { Double($0) }
        guard parts.allSatisfy({ $0 != nil && $0! >= 0 }), (2...3).contains(parts.count) else { return nil }
        let values = parts.map { $0! }
        let seconds = values.count == 2 ? values[0] * 60 + values[1] : values[0] * 3600 + values[1] * 60 + values[2]
        return days * 86400 + seconds
    }

    /// "1h30m", "45s", "2.5s", "0s".
    public static func format(_ seconds: Double) -> String {
        if seconds < 60 {
            // To a tenth of a second, without a ".0": "1s" for 1.003, "2.5s".
            let tenths = (seconds * 10).rounded() / 10
            return tenths == tenths.rounded() ? "\(Int(saturating: tenths))s" : "\(tenths)s"
        }
        var rest = Int(saturating: seconds, rounding: .toNearestOrAwayFromZero)
        var text = ""
        for (name, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where rest >= size {
            text += "\(rest / size)\(name)"
            rest %= size
        }
        return text
    }
}

extension String {
    var trimmingSpaces: String {
        var text = Substring(self)
        while text.first?.isWhitespace == true { text.removeFirst() }
        while text.last?.isWhitespace == true { text.removeLast() }
        return String(text)
    }
}
