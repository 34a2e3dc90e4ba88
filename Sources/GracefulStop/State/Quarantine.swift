import Glibc

/// `quarantine/<node>/<place>.json`: a unit begun `maxUnitAttempts` times without ever finishing
/// (its `BeginRecords` left behind by attempts that are over) is set aside, so that one unit that
/// kills its worker every time does not hold up the rest of the run. `remaining_units()` and
/// `work()` skip it; `gstop status` lists it; `gstop release` puts it back. The file holds the
/// unit's name and the attempts that condemned it; it is written atomically and durably, by
/// whichever process first counts enough attempts (the same content from any of them).
enum Quarantine {
    static let directoryName = "quarantine"
    /// GRACEFULSTOP_MAX_UNIT_ATTEMPTS: attempts after which a unit is quarantined (0: never).
    static let attemptsVariable = "GRACEFULSTOP_MAX_UNIT_ATTEMPTS"
    static let defaultAttempts = 3

    static func maxUnitAttempts() throws -> Int {
        guard let text = Environment.value(attemptsVariable) else { return defaultAttempts }
        guard let count = Int(text), count >= 0 else {
            throw GracefulStopError(
                .invalidArgument, "\(attemptsVariable)='\(text)' is not a number of attempts (a whole number; 0 turns quarantine off)")
        }
        return count
    }

    static func fileName(place: Int) -> String { "\(place).json" }

    /// The places quarantined on `node`, with what their files say (nil content: unreadable).
    static func places(node: Int, in nodes: NodeDirectories) throws -> [Int: JSONValue?] {
        guard let directory = try nodes.directory(node, create: false) else { return [:] }
        try directory.refresh()
        var names: [String] = []
        try directory.forEachEntry { name in
            let text = String(decoding: name, as: UTF8.self)
            if text.hasSuffix(".json"), !text.hasPrefix(".") { names.append(text) }
        }
        var places: [Int: JSONValue?] = [:]
        for name in names {
            guard let place = Int(name.dropLast(5)), place >= 0 else { continue }
            let bytes = try directory.readFile(name, limit: Directory.recordLimit)
            var reader = JSONReader(bytes ?? [], source: directory.pathOf(name))
            places[place] = bytes == nil ? nil : try? reader.readValue()
        }
        return places
    }

    static func write(node: Int, place: Int, unit: String, attempts: [JSONValue], maxUnitAttempts: Int, in nodes: NodeDirectories) throws {
        let directory = try nodes.directory(node, create: true)!
        var json = JSONWriter()
        json.value(
            .object([
                ("unit", .string(unit)), ("node", .number(Double(node))), ("attempts", .array(attempts)),
                ("max_unit_attempts", .number(Double(maxUnitAttempts))), ("quarantined_at", .number((Clock.unixSeconds() * 1000).rounded() / 1000)),
                ("by", .string("\(HostName.current):\(getpid())")),
            ]))
        json.raw("\n")
        try directory.writeAtomically(fileName(place: place), json.bytes, exclusive: true)
    }

    static func remove(node: Int, place: Int, in nodes: NodeDirectories) throws {
        guard let directory = try nodes.directory(node, create: false) else { return }
        try directory.remove(fileName(place: place))
        try directory.sync()
    }
}

/// `run.quarantined`: every unit of the run is done or quarantined, and at least one is
/// quarantined: nothing is left that another attempt could do. gstop finishes without a requeue
/// (exit 65, naming the units); `gstop release` removes it with the units' quarantine. `run.done`
/// keeps its meaning: every unit done.
enum RunQuarantined {
    static let fileName = "run.quarantined"

    static func write(in directory: Directory, unitCount: Int, done: Int, units: [String]) throws {
        var json = JSONWriter()
        json.value(
            .object([
                ("units", .number(Double(unitCount))), ("done", .number(Double(done))), ("quarantined", .array(units.map { .string($0) })),
                ("completed_at", .number(Clock.unixSeconds())), ("by", .string("\(HostName.current):\(getpid())")),
            ]))
        json.raw("\n")
        try directory.writeAtomically(fileName, json.bytes)
    }
}
