/// The few drawing words the report needs, as inline SVG text: no library, no script.
struct SVGChart {
    let width: Double
    let height: Double
    let label: String
    private var parts: [String] = []

    init(width: Double, height: Double, label: String) {
        self.width = width
        self.height = height
        self.label = label
    }

    /// Two decimals at most: the file stays small and the same on every machine.
    static func number(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(saturating: rounded)) : String(rounded)
    }

    mutating func rect(x: Double, y: Double, width: Double, height: Double, className: String, tip: String? = nil, data: [String: String] = [:]) {
        let attributes = data.sorted { $0.key < $1.key }.map { " data-\($0.key)=\"\(HTMLPage.escape($0.value))\"" }.joined()
        let title = tip.map { "<title>\(HTMLPage.escape($0))</title>" } ?? ""
        parts.append(
            "<rect class=\"\(className)\" x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" width=\"\(Self.number(width))\" height=\"\(Self.number(height))\"\(attributes)>\(title)</rect>"
        )
    }

    mutating func line(x1: Double, y1: Double, x2: Double, y2: Double, className: String) {
        parts.append(
            "<line class=\"\(className)\" x1=\"\(Self.number(x1))\" y1=\"\(Self.number(y1))\" x2=\"\(Self.number(x2))\" y2=\"\(Self.number(y2))\"/>")
    }

    mutating func polyline(_ points: [(Double, Double)], className: String) {
        parts.append(
            "<polyline class=\"\(className)\" points=\"" + points.map { "\(Self.number($0.0)),\(Self.number($0.1))" }.joined(separator: " ") + "\"/>")
    }

    mutating func text(x: Double, y: Double, _ content: String, anchor: String, className: String) {
        parts.append(
            "<text class=\"\(className)\" x=\"\(Self.number(x))\" y=\"\(Self.number(y))\" text-anchor=\"\(anchor)\">\(HTMLPage.escape(content))</text>"
        )
    }

    /// A line with the start and end times (UTC) and a tick in between.
    mutating func timeAxis(left: Double, width: Double, y: Double, from: Double, to: Double) {
        line(x1: left, y1: y - 6, x2: left + width, y2: y - 6, className: "axis-line")
        text(x: left, y: y + 8, RunHistory.utc(from), anchor: "start", className: "axis")
        text(x: left + width, y: y + 8, RunHistory.utc(to), anchor: "end", className: "axis")
        text(x: left + width / 2, y: y + 8, "+" + TimeSpan.format(((to - from) / 2).rounded()), anchor: "middle", className: "axis")
    }

    func text() -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"\(HTMLPage.escape(label))\" viewBox=\"0 0 \(Self.number(width)) \(Self.number(height))\" "
            + "width=\"\(Self.number(width))\" height=\"\(Self.number(height))\">" + parts.joined() + "</svg>"
    }
}

/// A page of the report: its head with the style, and the body as it is added.
struct HTMLPage {
    let title: String
    private var body: [String] = []

    init(title: String) { self.title = title }

    mutating func add(_ html: String) { body.append(html) }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A word as a POSIX shell reads it back: as it is when plain, else in single quotes.
    static func shellQuoted(_ word: String) -> String {
        let plain =
            !word.isEmpty
            && word.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_./=:,+@%".unicodeScalars.contains(scalar))
            }
        return plain ? word : "'" + word.replacingSingleQuotes + "'"
    }

    static let style = """
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1120px;color:#1d2330;background:#fff}
        h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.meta,.note{color:#5b6477}
        code{font:12.5px ui-monospace,SFMono-Regular,Menlo,monospace;background:#f2f4f8;padding:1px 4px;border-radius:3px}
        .cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid #dfe3eb;border-radius:8px;padding:10px 16px;min-width:110px}
        .card .value{font-size:24px;font-weight:600}.card .label{color:#5b6477}
        svg{display:block;max-width:100%;height:auto}svg text{font-size:11px;fill:#3a4254}svg .lane{font-size:11.5px}
        .axis-line,.total-line{stroke:#b9c0cf;stroke-width:1}.total-line{stroke-dasharray:2 3}
        .done-line{fill:none;stroke:#2a6fdb;stroke-width:2.2}.estimate-line{fill:none;stroke:#2a6fdb;stroke-width:1.6;stroke-dasharray:6 4}
        .worker-line{fill:none;stroke-width:1.3;opacity:.85}.worker0{stroke:#e07b39}.worker1{stroke:#3aa37a}.worker2{stroke:#9a5fd0}
        .worker3{stroke:#d4476b}.worker4{stroke:#7f8c99}.worker5{stroke:#c4a000}
        .bin{fill:#8fb3ee}.marker{stroke:#1d2330;stroke-width:1.2;stroke-dasharray:3 2}
        rect.attempt{rx:3;stroke:#ffffff;stroke-width:.5}
        .done{fill:#3aa37a;background:#3aa37a}.warning{fill:#2a6fdb;background:#2a6fdb}.timelimit{fill:#e0a43a;background:#e0a43a}
        .preempted{fill:#9a5fd0;background:#9a5fd0}.nodefail{fill:#7a4b2a;background:#7a4b2a}.cancelled{fill:#7f8c99;background:#7f8c99}
        .failed{fill:#d4476b;background:#d4476b}.stopped{fill:#b9c0cf;background:#b9c0cf}.running{fill:#8fb3ee;background:#8fb3ee}
        .legend{list-style:none;padding:0;display:flex;gap:16px;flex-wrap:wrap}.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;vertical-align:-1px}
        table{border-collapse:collapse}td,th{border-bottom:1px solid #e6e9f0;padding:4px 10px;text-align:left}th{color:#5b6477;font-weight:500}
        """

    func text() -> String {
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(Self.escape(title))</title>"
            + "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\(Self.style)</style></head><body>\n"
            + body.joined(separator: "\n") + "\n</body></html>\n"
    }
}

extension String {
    fileprivate var replacingSingleQuotes: String {
        var out = ""
        for character in self { out += character == "'" ? "'\\''" : String(character) }
        return out
    }
}
