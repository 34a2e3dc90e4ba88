import Glibc
import Synchronization

/// `begun/<node>/<place>.<generation>`: the claim of one attempt at a unit, created exclusively
/// before the unit starts (`begin_unit`, `work()`) and removed once the unit is done. Whoever creates
/// the name holds the unit: of two workers that want it — its share's owner and a worker that has
/// run out of its own share, on any hosts — exactly one creates it (O_CREAT|O_EXCL, atomic on NFS
/// too), so a unit is never begun by two live workers. The claim is also the attempt's record: one
/// whose attempt ended without finishing the unit (a crash, kill -9, the OOM killer) stays, and
/// such records quarantine a poison unit (`Quarantine`).
///
/// A unit's attempts take generations 1, 2, 3, ...: a new attempt tries to create generation 1, and
/// finding a name taken reads who holds it — somebody live: the unit is theirs; an attempt that is
/// over: the next generation is tried. A fresh unit costs one create. Older generations are never removed while
/// the unit is not done (a gap would let two workers with different views each create a free
/// name): an attempt given up because a stop is due is *released* (its content rewritten), which
/// keeps its name and makes it count for nothing.
///
/// Named by the unit's place among its share's units (the manifest fixes it), so names stay short
/// whatever the unit's name. Not fsynced: a claim must outlive its process, which a write to the
/// kernel (locally) or a close (NFS: close-to-open sends it to the server) ensures; a power loss of
/// a local disk may forget one, which errs towards trying a unit once more.
///
/// States written before claims existed hold records named `<place>.<restart>.<pid>.<host>.<serial>`
/// (one per attempt, not exclusive); they are read as attempts (`Entry.Kind.legacy`), and the tasks
/// of a host that work on each unit together (GRACEFULSTOP_SHARE=node) still write them.
final class BeginRecords: Sendable {
    static let directoryName = "begun"

    /// What one file name says.
    struct Entry: Sendable, Equatable {
        enum Kind: Sendable, Equatable {
            /// `<place>.<generation>`: a claim; who holds it is in its content.
            case claim(generation: Int)
            /// `<place>.<restart>.<pid>.<host>.<serial>`: a record of an attempt, not exclusive.
            case legacy(restart: Int, pid: Int32, hostTag: String)
        }

        var place: Int
        var kind: Kind
        var fileName: String

        init?(fileName: String) {
            let parts = fileName.split(separator: ".", omittingEmptySubsequences: false)
            guard let place = Int(parts[0]), place >= 0, parts[0].first != "+" else { return nil }
            switch parts.count {
            case 2:
                guard let generation = Int(parts[1]), generation >= 1, parts[1].first != "+" else { return nil }
                kind = .claim(generation: generation)
            case 5:
                guard let restart = Int(parts[1]), restart >= 0, let pid = Int32(parts[2]), pid > 0, parts[3].utf8.count == 8,
                    parts[3].utf8.allSatisfy({ BeginRecords.isHex($0) }), Int(parts[4]) != nil
                else { return nil }
                kind = .legacy(restart: restart, pid: pid, hostTag: String(parts[3]))
            default:
                return nil
            }
            self.place = place
            self.fileName = fileName
        }

        var generation: Int? { if case .claim(let generation) = kind { return generation } else { return nil } }
    }

    /// Who made an attempt, from its record's content.
    struct Holder: Sendable, Equatable {
        var job: String?
        var restart: Int
        var pid: Int32
        var host: String
        /// The worker's own node (share); nil in records written before balancing.
        var worker: Int?
        /// The SLURM node it ran on (SLURMD_NODENAME); nil outside SLURM and in older records.
        var slurmNode: String? = nil
        /// Given up because a stop was due: over, and not counted toward quarantine.
        var released = false
        /// Given up by a process that goes on (an error in the unit): over, and counted.
        var abandoned = false

        init(job: String?, restart: Int, pid: Int32, host: String, worker: Int?, released: Bool = false, abandoned: Bool = false) {
            self.job = job
            self.restart = restart
            self.pid = pid
            self.host = host
            self.worker = worker
            self.released = released
            self.abandoned = abandoned
        }

        init?(_ value: JSONValue?) {
            guard let value, let restart = value["restart"]?.int, let pid = value["pid"]?.int, let host = value["host"]?.string,
                let pid32 = Int32(exactly: pid)
            else { return nil }
            self.init(
                job: value["job"]?.string, restart: restart, pid: pid32, host: host, worker: value["worker"]?.int,
                released: value["released"] == .bool(true), abandoned: value["abandoned"] == .bool(true))
            slurmNode = value["slurm_node"]?.string
        }
    }

    /// Whether the attempt of `holder` is over, so that its unit may be claimed again and its
    /// record counts toward quarantine (unless released):
    /// - this process's own earlier attempt (it is beginning the unit again), or one of a process
    ///   of this host that no longer exists;
    /// - an attempt of this job (SLURM job, or no job outside SLURM) from a restart below
    ///   `attemptsOver` (a requeued job's processes are gone; gstop passes its restart + 1 once its
    ///   command has ended);
    /// - a record its process gave up: released for a stop, or abandoned after an error;
    /// - a record whose content cannot be read (being written, or its writer died mid-write) once
    ///   it is `settledFor` 60 s of the directory's own time: no clock of two hosts is compared.
    /// An attempt of another job (another array task) or of another host in this restart may be at
    /// work: not over. `pidExists` is injected for the tests.
    static func isOver(
        _ holder: Holder?, settledFor: Double? = nil, attemptsOver: Int, job: String?,
        pidExists: (Int32) -> Bool = BeginRecords.processExists
    ) -> Bool {
        guard let holder else { return (settledFor ?? 0) >= 60 }
        if holder.released || holder.abandoned { return true }
        if holder.host == HostName.current && (holder.pid == getpid() || !pidExists(holder.pid)) { return true }
        return holder.job == job && holder.restart < attemptsOver
    }

    static func processExists(_ pid: Int32) -> Bool { !(kill(pid, 0) == -1 && Glibc.errno == ESRCH) }

    /// The legacy records' rule: an earlier restart's, or a gone process of this host.
    static func isOver(legacy restart: Int, pid: Int32, hostTag: String, attemptsOver: Int) -> Bool {
        if restart < attemptsOver { return true }
        return hostTag == BeginRecords.hostTag && !processExists(pid)
    }

    private static func isHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    /// This host's tag in legacy file names: FNV-1a of its name, 8 hex digits.
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
    /// `taken/<node>/`: where a unit finished by a worker of another share leaves its claim.
    let taken: NodeDirectories

    init(state: Directory) {
        nodes = NodeDirectories(state: state, name: BeginRecords.directoryName)
        taken = NodeDirectories(state: state, name: TakenUnits.directoryName)
    }

    /// What a claim is made of.
    struct Claim: Sendable {
        var node: Int
        var place: Int
        var unit: ArraySlice<UInt8>
        var worker: Int
        var restart: Int
        var job: String?
        var started: Double
    }

    enum ClaimOutcome: Equatable {
        /// Created: this process holds the unit (the record's file name).
        case claimed(String)
        /// Somebody else holds it (nil: an unreadable record, being written).
        case held(Holder?)
        /// Not claimed: the unit's failed attempts reached the quarantine limit. Two workers that
        /// both counted one failure too few before claiming would otherwise each claim the next
        /// generation (4 attempts where 3 quarantine, seen under load): the caller quarantines.
        case limitReached
    }

    /// How a process gave a unit up.
    enum GivenUp: String {
        /// A stop was due: the attempt counts for nothing.
        case released
        /// An error in the unit, and the process goes on: the attempt counts toward quarantine.
        case abandoned
    }

    private static func content(_ claim: Claim, givenUp: GivenUp? = nil) -> [UInt8] {
        var json = JSONWriter()
        var fields: [(String, JSONValue)] = [
            ("unit", .string(String(decoding: claim.unit, as: UTF8.self))), ("node", .number(Double(claim.node))),
            ("worker", .number(Double(claim.worker))), ("host", .string(HostName.current)), ("pid", .number(Double(getpid()))),
            ("restart", .number(Double(claim.restart))), ("job", claim.job.map { .string($0) } ?? .null),
            ("started", .number((claim.started * 1000).rounded() / 1000)),
        ]
        if let slurmNode = Environment.slurmNodeName() { fields.append(("slurm_node", .string(slurmNode))) }
        if let givenUp { fields.append((givenUp.rawValue, .bool(true))) }
        json.value(.object(fields))
        json.raw("\n")
        return json.bytes
    }

    /// Claims the unit at `place` of `node`: creates the first free generation, unless a live
    /// attempt holds one on the way. `failedBefore` gets the holders of the earlier generations
    /// whose attempts failed (over, not released): where the unit failed before this claim. With
    /// a `failureLimit` (0: none), no generation is created once that many failed, not counting
    /// failures on the `badNodes` (a bad node's failures are the node's, not the unit's).
    func claim(
        _ claim: Claim, attemptsOver: Int, failedBefore: inout [Holder], failureLimit: Int = 0, badNodes: () -> Set<String> = { [] }
    ) throws -> ClaimOutcome {
        let directory = try nodes.directory(claim.node, create: true)!
        let bytes = BeginRecords.content(claim)
        var failures = 0
        for generation in 1...256 {
            if failureLimit > 0, failures >= failureLimit {
                let bad = badNodes()
                let counted = failures - failedBefore.filter { $0.slurmNode.map(bad.contains) ?? false }.count
                if counted >= failureLimit { return .limitReached }
            }
            let name = "\(claim.place).\(generation)"
            if try create(name, bytes, in: directory) { return .claimed(name) }
            let holder = Holder(self.content(node: claim.node, fileName: name))
            if !BeginRecords.isOver(
                holder, settledFor: holder == nil ? settledSeconds(name, in: directory) : nil,
                attemptsOver: attemptsOver, job: claim.job)
            {
                return .held(holder)
            }
            if holder?.released != true { failures += 1 }  // an unreadable record counts, as in quarantine
            if let holder, !holder.released { failedBefore.append(holder) }
        }
        return .held(nil)  // 256 attempts over in a row: quarantine (at 3 by default) stops it long before
    }

    /// How long `name` has stood unchanged by the directory's clock (its mtime against the
    /// directory's: both the server's on NFS), or nil when either is unknown.
    private func settledSeconds(_ name: String, in directory: Directory) -> Double? {
        guard let file = try? directory.status(name, display: name), let look = try? directory.refresh() else { return nil }
        func seconds(_ time: timespec) -> Double { Double(time.tv_sec) + Double(time.tv_nsec) / 1e9 }
        return seconds(look.status.st_mtim) - seconds(file.st_mtim)
    }

    /// Creates `name` with `bytes` exclusively; false when it exists. The name appears with its
    /// content (a file without a name, or a named temporary, written and closed, then linked):
    /// a claim that exists always says who holds it. Created in place, a writer killed between
    /// the create and the write left an empty claim that no worker could judge for 60 s — in the
    /// rig's kill -9 test, a unit nobody took in the next attempt. Not fsynced: a claim must
    /// outlive its process, which the close ensures (NFS sends the data then, and reports a
    /// failed write there).
    private func create(_ name: String, _ bytes: [UInt8], in directory: Directory) throws -> Bool {
        try name.withCString { cName in
            try bytes.withUnsafeBytes { raw in
                try directory.writeAtomically(cName, raw, exclusive: true, syncDirectory: false, durable: false, display: name)
            }
        }
    }

    /// Writes a legacy record (not exclusive): for the tasks of a host that each begin the same
    /// unit together (GRACEFULSTOP_SHARE=node).
    func writeLegacy(_ claim: Claim) throws -> String {
        let directory = try nodes.directory(claim.node, create: true)!
        let serial = BeginRecords.serial.add(1, ordering: .relaxed).newValue
        let name = "\(claim.place).\(claim.restart).\(getpid()).\(BeginRecords.hostTag).\(serial)"
        guard try create(name, BeginRecords.content(claim), in: directory) else {
            throw GracefulStopError.system("cannot create", directory.pathOf(name), errno: EEXIST)
        }
        return name
    }

    /// Gives up this process's claim: its content says how (released for a stop: it no longer
    /// counts; abandoned after an error: it counts), so that any worker may take the unit over. The
    /// name stays, so that no generation is ever free again while the unit is not done. A legacy
    /// record is removed when released, and left as it is when abandoned.
    func giveUp(_ claim: Claim, fileName: String, _ how: GivenUp) throws {
        guard let directory = try nodes.directory(claim.node, create: false) else { return }
        if Entry(fileName: fileName)?.generation == nil { return how == .released ? try directory.remove(fileName) : () }
        // Replaced whole (a temporary renamed over it): the name stays, and never reads empty —
        // rewritten in place, a kill between the truncation and the write left an empty claim.
        guard try directory.exists(fileName) else { return }  // gone: the unit was done meanwhile, and tidied
        try directory.writeAtomically(fileName, BeginRecords.content(claim, givenUp: how), syncDirectory: false, durable: false)
    }

    /// Removes a record (one that is already gone is fine).
    func remove(node: Int, fileName: String) throws {
        guard let directory = try nodes.directory(node, create: false) else { return }
        try directory.remove(fileName)
    }

    /// Moves the claim of a unit this process finished for another share to
    /// `taken/<node>/<place>.<worker>` (one rename, what a removal costs), so that the share's
    /// count of units done by others is a listing. A failure leaves the claim, which the next
    /// scan tidies (the unit is done).
    func moveToTaken(node: Int, place: Int, worker: Int, fileName: String) {
        guard let from = try? nodes.directory(node, create: false), let to = try? taken.directory(node, create: true) else { return }
        _ = retryingOnInterrupt { renameat(from.fd, fileName, to.fd, "\(place).\(worker)") }
    }

    /// The shares that have a directory of records (read afresh).
    func shares() throws -> [Int] {
        guard try nodes.state.contains(BeginRecords.directoryName) else { return [] }
        let parent = try nodes.state.subdirectory(BeginRecords.directoryName, create: false)
        try parent.refresh()
        var shares: [Int] = []
        try parent.forEachEntry { name in if let share = Int(String(decoding: name, as: UTF8.self)), share >= 0 { shares.append(share) } }
        return shares.sorted()
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
        guard let directory = try? nodes.directory(node, create: false), let bytes = try? directory.readFile(fileName, limit: Directory.recordLimit)
        else { return nil }
        var reader = JSONReader(bytes, source: fileName)
        return try? reader.readValue()
    }

    /// The records of `node` with what each says, and whether its attempt is over (see `isOver`).
    func attempts(node: Int, attemptsOver: Int, job: String?) throws -> [Attempt] {
        guard let directory = try nodes.directory(node, create: false) else { return [] }
        return try entries(node: node).map { entry in
            let content = self.content(node: node, fileName: entry.fileName)
            switch entry.kind {
            case .claim:
                let holder = Holder(content)
                let settled = holder == nil ? settledSeconds(entry.fileName, in: directory) : nil
                return Attempt(
                    entry: entry, content: content, holder: holder,
                    over: BeginRecords.isOver(holder, settledFor: settled, attemptsOver: attemptsOver, job: job))
            case .legacy(let restart, let pid, let hostTag):
                return Attempt(
                    entry: entry, content: content, holder: Holder(content),
                    over: BeginRecords.isOver(legacy: restart, pid: pid, hostTag: hostTag, attemptsOver: attemptsOver))
            }
        }
    }

    /// A record and what it means.
    struct Attempt {
        var entry: Entry
        var content: JSONValue?
        var holder: Holder?
        var over: Bool
        /// Counts toward the unit's quarantine: over, and not given up for a stop.
        var failed: Bool { over && holder?.released != true }
    }
}

/// `taken/<node>/<place>.<worker>`: a unit of share `node` finished by the worker of share
/// `worker` (balancing): the claim, moved there when the unit was marked.
enum TakenUnits {
    static let directoryName = "taken"

    /// How many of `node`'s units others finished, by the taker's node (nil: not known).
    static func count(node: Int, in taken: NodeDirectories) throws -> [Int: Int] {
        guard let directory = try taken.directory(node, create: false) else { return [:] }
        try directory.refresh()
        var byWorker: [Int: Int] = [:]
        try directory.forEachEntry { name in
            let parts = String(decoding: name, as: UTF8.self).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 2, Int(parts[0]) != nil, let worker = Int(parts[1]) else { return }
            byWorker[worker, default: 0] += 1
        }
        return byWorker
    }
}

/// The per-node subdirectories of one directory of the state (`begun/<node>`,
/// `quarantine/<node>`, `taken/<node>`), opened once each and created only by a writer.
final class NodeDirectories: Sendable {
    let state: Directory
    let name: String
    private let opened = Locked<[Int: Directory]>([:])

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
