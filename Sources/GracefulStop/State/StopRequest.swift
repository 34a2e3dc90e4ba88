import Glibc

/// A request that processes of the run stop, wherever they run, read by every `should_stop()`
/// through the shared filesystem. `stop.request` asks every process (`gstop stop`);
/// `stop.<job>.request` asks the processes of one SLURM job — every node of it, or one array task —
/// and is what the supervisor (on a stop signal) and `request_stop()` write, so that one array
/// task's time-limit warning does not stop the other tasks sharing the state.
///
/// A request counts for every attempt except those that started while it was already there: the
/// attempt knows which requests those were (`StaleRequests`, handed down by the supervisor, else
/// taken when the process opened the state), so a request left over from an earlier attempt never
/// stops a restarted job, and no clock is compared with another host's. No file has to be removed
/// by hand, and no node can remove another node's current request.
public struct StopRequest: Sendable, Equatable {
    /// The request to every process of every job using the state.
    public static let fileName = "stop.request"

    /// The request file for `job` (a SLURM job id, or ARRAY_TASK for an array task); the one for
    /// everybody when `job` is nil.
    public static func fileName(forJob job: String?) -> String {
        guard let job else { return fileName }
        let safe = String(job.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") ? $0 : "-" })
        return "stop.\(safe).request"
    }

    /// Unix seconds when the request was made (the requester's clock).
    public var requestedAt: Double
    /// host:pid of the requester.
    public var by: String
    /// Why, in words ("signal SIGUSR1 to gstop", "request_stop()").
    public var reason: String
    /// The signal a process of the job received, when that is why it asks the others to stop
    /// (the signal went to the job's steps; see `ProcessStop`).
    public var signal: Int32?

    /// The most of a reason kept: a stop request is one small record (a reason of megabytes would
    /// be copied into every process's stop and three times into the log).
    static let reasonLimit = 4096

    public init(requestedAt: Double, by: String, reason: String, signal: Int32? = nil) {
        self.requestedAt = requestedAt
        self.by = by
        self.reason = reason
        self.signal = signal
    }

    /// A request made now by this process.
    public static func now(reason: String) -> StopRequest {
        StopRequest(requestedAt: Clock.unixSeconds(), by: "\(HostName.current):\(getpid())", reason: reason)
    }

    /// What the request says, as one number (FNV-1a, 64 bits; never 0): a request rewritten by
    /// anyone at any time is another request. Which requests apply is decided by it (StaleRequests).
    var identity: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix<Bytes: Sequence<UInt8>>(_ bytes: Bytes) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01B3
            }
            hash ^= 0xFF
            hash = hash &* 0x0000_0100_0000_01B3
        }
        withUnsafeBytes(of: requestedAt.bitPattern.littleEndian) { mix($0) }
        mix(by.utf8)
        mix(reason.utf8)
        withUnsafeBytes(of: (signal ?? 0).littleEndian) { mix($0) }
        return hash == 0 ? 1 : hash
    }

    func encoded() -> [UInt8] {
        var json = JSONWriter()
        json.raw("{\"requested_at\": ")
        json.number(requestedAt)
        json.raw(", \"by\": ")
        json.string(by)
        json.raw(", \"reason\": ")
        json.string(EventLog.cut(reason, to: StopRequest.reasonLimit))
        if let signal {
            json.raw(", \"signal\": ")
            json.string(StopSignals.name(of: signal))
        }
        json.raw("}\n")
        return json.bytes
    }

    /// Asks every process of every job using the state at `path` to stop (`gstop stop`); the state
    /// needs no manifest (a sweep has none).
    public static func requestEverybody(stateDirectory path: String, reason: String) throws {
        try StopRequest.now(reason: reason).write(to: Directory(opening: path), job: nil)
    }

    /// Writes the request for `job`'s processes (every process when nil).
    func write(to directory: Directory, job: String?) throws {
        try directory.writeAtomically(StopRequest.fileName(forJob: job), encoded())
    }

    /// The request in `fileName`, or nil. A file that is not our JSON (say, one made with `touch`)
    /// is still a request: its modification time says when it was made.
    static func read(from directory: Directory, fileName: String = fileName) throws -> StopRequest? {
        guard let bytes = try directory.readFile(fileName, limit: Directory.recordLimit) else { return nil }
        let source = directory.pathOf(fileName)
        if let parsed = try? decode(bytes, source: source) { return parsed }
        guard let info = try fileName.withCString({ try directory.status($0, display: fileName) }) else { return nil }
        let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        return StopRequest(requestedAt: modified, by: "unknown", reason: "\(source) exists (not gracefulstop's format; its modification time counts)")
    }

    /// The request in each of `fileNames` (nil where there is none), or nil when the directory
    /// cannot be read now (a flaky mount: not a reason to stop; the next look tries again). Where a
    /// cached "no such name" may be stale (NFS v3, see NameCacheTrust), only the files a fresh
    /// listing shows are opened: a lookup of an absent one would cache its absence again.
    static func readAll(_ fileNames: [String], in directory: Directory, namesTrusted: Bool) -> [StopRequest?]? {
        var present = Set(fileNames)
        if !namesTrusted {
            var listed = Set<String>()
            guard
                (try? directory.forEachEntry { name in
                    if let file = fileNames.first(where: { $0.utf8.elementsEqual(name) }) { listed.insert(file) }
                }) != nil
            else { return nil }
            present = listed
        }
        return fileNames.map { present.contains($0) ? (try? read(from: directory, fileName: $0)) ?? nil : nil }
    }

    static func decode(_ bytes: [UInt8], source: String) throws -> StopRequest {
        var reader = JSONReader(bytes, source: source)
        var request = StopRequest(requestedAt: .nan, by: "unknown", reason: "")
        try reader.readObject { reader, key in
            switch key {
            case "requested_at": request.requestedAt = try reader.readDouble()
            case "by": request.by = try reader.readString()
            case "reason": request.reason = try reader.readString()
            case "signal":
                let name = try reader.readString()
                request.signal = try? StopSignals.parse(name).first
            default: try reader.skipValue()
            }
        }
        try reader.expectEnd()
        if request.requestedAt.isNaN { throw GracefulStopError(.badState, "\(source) has no requested_at") }
        return request
    }
}

/// This host's name, read once.
enum HostName {
    static let current: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown-host" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()
}
