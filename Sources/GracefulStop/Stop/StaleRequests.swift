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
    /// The files looked at (those without a request among them): a process whose job has a file
    /// the snapshot did not look at (gstop in local mode, a command that sets SLURM's variables
    /// itself) takes that file's snapshot when it opens the state.
    private(set) var looked: Set<String> = []

    init(identities: [String: UInt64] = [:], looked: Set<String> = []) {
        self.identities = identities
        self.looked = looked.union(identities.keys)
    }

    /// What the files hold now (a file that cannot be read holds nothing stale: a request that
    /// appears in it later applies).
    static func snapshot(of fileNames: [String], in directory: Directory) -> StaleRequests {
        var found = StaleRequests(looked: Set(fileNames))
        for name in fileNames {
            if let request = try? StopRequest.read(from: directory, fileName: name) { found.identities[name] = request.identity }
        }
        return found
    }

    /// This snapshot, with a snapshot taken now of those of `fileNames` it did not look at.
    func completed(for fileNames: [String], in directory: Directory?) -> StaleRequests {
        let missing = fileNames.filter { !looked.contains($0) }
        guard !missing.isEmpty, let directory else { return self }
        let now = StaleRequests.snapshot(of: missing, in: directory)
        return StaleRequests(identities: identities.merging(now.identities) { old, _ in old }, looked: looked.union(now.looked))
    }

    /// Whether `request`, read from `fileName`, applies to the attempt.
    func applies(_ request: StopRequest, in fileName: String) -> Bool { identities[fileName] != request.identity }

    /// The identity each of `fileNames` held (0: none), in that order: what `should_stop()`
    /// compares the board's words with.
    func identities(of fileNames: [String]) -> [UInt64] { fileNames.map { identities[$0] ?? 0 } }

    /// "stop.request=1f2e…,stop.12.request=0" (0: looked at, no request there); "none" when
    /// nothing was looked at (an empty variable reads as unset).
    var encoded: String {
        looked.isEmpty
            ? "none"
            : looked.sorted().map { "\($0)=\(String(identities[$0] ?? 0, radix: 16))" }.joined(separator: ",")
    }

    /// The environment's form; nil when it does not parse (then the process takes its own).
    static func decode(_ text: String) -> StaleRequests? {
        var found = StaleRequests()
        if text == "none" { return found }
        for item in text.split(separator: ",") {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let identity = UInt64(parts[1], radix: 16) else { return nil }
            found.looked.insert(String(parts[0]))
            if identity != 0 { found.identities[String(parts[0])] = identity }
        }
        return found
    }
}
