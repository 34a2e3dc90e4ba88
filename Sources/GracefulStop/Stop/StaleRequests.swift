/// The stop requests that were there when an attempt started, by request file: they never apply
/// to it, and every other request does. A request is known by its identity (a hash of what it
/// says), never by comparing its time with the attempt's, since those are two hosts' clocks — a
/// node whose clock is behind would be ignored, one ahead would stop the attempts after it.
///
/// gstop takes the snapshot when it starts an attempt and hands it to the command's processes as
/// `GRACEFULSTOP_STALE_REQUESTS`; a process that gstop did not start takes its own when it opens the
/// state (what was there before it opened is not for it, as before).
struct StaleRequests: Sendable, Equatable {
    /// Request file name → identity of the request it held at the attempt's start.
    private(set) var identities: [String: UInt64] = [:]

    init(identities: [String: UInt64] = [:]) { self.identities = identities }

    /// What the files hold now (a file that cannot be read holds nothing stale: a request that
    /// appears in it later applies).
    static func snapshot(of fileNames: [String], in directory: Directory) -> StaleRequests {
        var found = StaleRequests()
        for name in fileNames {
            if let request = try? StopRequest.read(from: directory, fileName: name) { found.identities[name] = request.identity }
        }
        return found
    }

    /// Whether `request`, read from `fileName`, applies to the attempt.
    func applies(_ request: StopRequest, in fileName: String) -> Bool { identities[fileName] != request.identity }

    /// The identity each of `fileNames` held (0: none), in that order: what `should_stop()`
    /// compares the board's words with.
    func identities(of fileNames: [String]) -> [UInt64] { fileNames.map { identities[$0] ?? 0 } }

    /// "stop.request=1f2e…,stop.12.request=…"; "none" when nothing was there (an empty variable
    /// reads as unset).
    var encoded: String {
        identities.isEmpty ? "none"
            : identities.sorted { $0.key < $1.key }.map { "\($0.key)=\(String($0.value, radix: 16))" }.joined(separator: ",")
    }

    /// The environment's form; nil when it does not parse (then the process takes its own).
    static func decode(_ text: String) -> StaleRequests? {
        var found = StaleRequests()
        if text == "none" { return found }
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let identity = UInt64(parts[1], radix: 16) else { return nil }
            found.identities[String(parts[0])] = identity
        }
        return found
    }
}
