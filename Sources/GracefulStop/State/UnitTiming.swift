import Glibc

/// When, where and in which attempt a unit was done: written into its done-marker after the name
/// (`<name> NUL <JSON object>`, docs/state-format.md). Readers decide "done" by the marker's name
/// alone, so the record costs nothing on the hot path, and a marker that a kill cut short still
/// means done; only the estimates (`UnitEstimate`) read it.
public struct UnitTiming: Sendable, Equatable {
    /// Unix seconds when the unit was begun (`begin_unit`/`work()`); nil when it was marked
    /// without being begun through the library.
    public var started: Double?
    public var ended: Double
    public var host: String
    public var node: Int
    /// The attempt's restart count (0 for the first).
    public var restart: Int

    public init(started: Double?, ended: Double, host: String, node: Int, restart: Int) {
        self.started = started
        self.ended = ended
        self.host = host
        self.node = node
        self.restart = restart
    }

    /// How long the unit took, when it was begun through the library.
    public var seconds: Double? { started.map { max(0, ended - $0) } }

    /// The marker's content: the unit's name, a NUL, then this record as one JSON object.
    func markerContent<Name: Collection<UInt8>>(name: Name) -> [UInt8] {
        var json = JSONWriter()
        var fields: [(String, JSONValue)] = []
        if let started { fields.append(("started", .number(UnitTiming.milliseconds(started)))) }
        fields += [
            ("ended", .number(UnitTiming.milliseconds(ended))), ("host", .string(host)), ("node", .number(Double(node))),
            ("restart", .number(Double(restart))),
        ]
        json.value(.object(fields))
        return Array(name) + [0] + json.bytes
    }

    /// Unix seconds to the millisecond: what a person or an estimate can use, in fewer bytes.
    private static func milliseconds(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }

    /// The record in a marker's content; nil for a marker without one (written by an older
    /// release, by the seed's scripts, or cut short by a kill) or one that does not parse.
    static func decode(markerContent content: [UInt8]) -> UnitTiming? {
        guard let separator = content.firstIndex(of: 0) else { return nil }
        var reader = JSONReader(Array(content[(separator + 1)...]), source: "marker")
        guard let value = try? reader.readValue(), (try? reader.expectEnd()) != nil,
            let ended = value["ended"]?.number, ended.isFinite
        else { return nil }
        let started = value["started"]?.number
        return UnitTiming(
            started: started.flatMap { $0.isFinite ? $0 : nil }, ended: ended, host: value["host"]?.string ?? "",
            node: value["node"]?.int ?? 0, restart: value["restart"]?.int ?? 0)
    }
}
