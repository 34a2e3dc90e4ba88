import Glibc
import Synchronization

/// `begun/<node>/<place>.<restart>.<pid>.<host>.<serial>`: one file per attempt at a unit, written
/// before the unit starts (`begin_unit`, `work()`) and removed once it is done or given up because
/// of a stop. What is left are attempts that ended otherwise — the process crashed, was killed, or
/// went on without finishing the unit — which is what quarantines a poison unit (`Quarantine`).
///
/// Named by the unit's place among its node's units (the manifest fixes it), not its marker stem:
/// the name stays short whatever the unit's name, and parses without reading the file. Each
/// attempt's file is its own (exclusive create), so attempts on many hosts never share a file and
/// NFS needs no append. Not fsynced: it must outlive the process (a crash, kill -9, the OOM
/// killer), which a write to the kernel (locally) or a close (NFS: close-to-open sends it to the
/// server) already ensures; a power loss of a local disk may forget one, which errs towards
/// trying a unit once more.
final class BeginRecords: Sendable {
    static let directoryName = "begun"

    /// What one file name says.
    struct Entry: Sendable, Equatable {
        var place: Int
        var restart: Int
        var pid: Int32
        var hostTag: String
        var fileName: String

        init?(fileName: String) {
            let parts = fileName.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 5, let place = Int(parts[0]), place >= 0, let restart = Int(parts[1]), restart >= 0,
                  let pid = Int32(parts[2]), pid > 0, parts[3].utf8.count == 8, parts[3].utf8.allSatisfy({ BeginRecords.isHex($0) }),
                  Int(parts[4]) != nil
            else { return nil }
            self.place = place
            self.restart = restart
            self.pid = pid
            self.hostTag = String(parts[3])
            self.fileName = fileName
        }
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    /// This host's tag in file names: FNV-1a of its name, 8 hex digits (a host name may hold dots).
    static let hostTag: String = {
        var hash: UInt32 = 0x811C_9DC5
        for byte in HostName.current.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }()

    private static let serial = Atomic<Int>(0)

    let nodes: NodeDirectories

    init(state: Directory) {
        nodes = NodeDirectories(state: state, name: BeginRecords.directoryName)
    }

    /// Writes this process's record of an attempt at the unit at `place` of `node`; its file name.
    func write(node: Int, place: Int, unit: ArraySlice<UInt8>, restart: Int, job: String?, started: Double) throws -> String {
        let directory = try nodes.directory(node, create: true)!
        let serial = BeginRecords.serial.add(1, ordering: .relaxed).newValue
        let name = "\(place).\(restart).\(getpid()).\(BeginRecords.hostTag).\(serial)"
        var json = JSONWriter()
        json.value(.object([
            ("unit", .string(String(decoding: unit, as: UTF8.self))), ("node", .number(Double(node))), ("host", .string(HostName.current)),
            ("pid", .number(Double(getpid()))), ("restart", .number(Double(restart))), ("job", job.map { .string($0) } ?? .null),
            ("started", .number((started * 1000).rounded() / 1000)),
        ]))
        json.raw("\n")
        let bytes = json.bytes
        let created = retryingOnInterrupt { openat(directory.fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        if created.result == -1 { throw GracefulStopError.system("cannot create", directory.pathOf(name), errno: created.errno) }
        var failure: GracefulStopError? = nil
        let written = retryingOnInterrupt { bytes.withUnsafeBytes { Glibc.write(created.result, $0.baseAddress, $0.count) } }
        if written.result != bytes.count {
            failure = .system("cannot write", directory.pathOf(name), errno: written.result == -1 ? written.errno : EIO)
        }
        // NFS reports a failed write at close: a record that did not reach the server is no record.
        if close(created.result) == -1 && failure == nil { failure = .system("cannot write", directory.pathOf(name), errno: Glibc.errno) }
        if let failure {
            _ = unlinkat(directory.fd, name, 0)
            throw failure
        }
        return name
    }

    /// Removes a record (one that is already gone is fine).
    func remove(node: Int, fileName: String) throws {
        guard let directory = try nodes.directory(node, create: false) else { return }
        try directory.remove(fileName)
    }

    /// Every record of `node`, read afresh (another host may have just written one).
    func entries(node: Int) throws -> [Entry] {
        guard let directory = try nodes.directory(node, create: false) else { return [] }
        try directory.refresh()
        var entries: [Entry] = []
        try directory.forEachEntry { name in
            if let entry = Entry(fileName: String(decoding: name, as: UTF8.self)) { entries.append(entry) }
        }
        return entries
    }

    /// What a record says (nil: gone meanwhile, or unreadable).
    func content(node: Int, fileName: String) -> JSONValue? {
        guard let directory = try? nodes.directory(node, create: false), let bytes = try? directory.readFile(fileName) else { return nil }
        var reader = JSONReader(bytes, source: fileName)
        return try? reader.readValue()
    }

    /// Whether the attempt that wrote `entry` is over: an earlier restart's (a requeued job's
    /// processes are gone), or a process of this host that no longer exists. A record of this
    /// restart from another host may belong to a process still at work: not over.
    static func isOver(_ entry: Entry, attemptsOver: Int) -> Bool {
        if entry.restart < attemptsOver { return true }
        guard entry.hostTag == hostTag else { return false }
        return kill(entry.pid, 0) == -1 && Glibc.errno == ESRCH
    }
}

/// The per-node subdirectories of one directory of the state (`begun/<node>`,
/// `quarantine/<node>`), opened once each and created only by a writer.
final class NodeDirectories: Sendable {
    let state: Directory
    let name: String
    private let opened = Mutex<[Int: Directory]>([:])

    init(state: Directory, name: String) {
        self.state = state
        self.name = name
    }

    /// `<name>/<node>` if it has been opened already (no filesystem request: for hot paths that
    /// may rely on the last scan having looked).
    func opened(_ node: Int) -> Directory? { opened.withLock { $0[node] } }

    /// `<name>/<node>`; nil when it does not exist and not `create`.
    func directory(_ node: Int, create: Bool) throws -> Directory? {
        if let open = opened.withLock({ $0[node] }) { return open }
        // Asked afresh (another host may have made it since): Directory.contains.
        if !create, try !state.contains(name) { return nil }
        let parent = try state.subdirectory(name, create: create)
        if !create, try !parent.contains(String(node)) { return nil }
        let directory = try parent.subdirectory(String(node), create: create)
        return opened.withLock { cache in
            if let raced = cache[node] { return raced }
            cache[node] = directory
            return directory
        }
    }
}
