import Glibc
import Synchronization

/// One process's view of a run: its state directory (manifest, done-markers, stop request), its
/// node, and its stop check. Every operation of the C ABI, the Python package and `gstop` goes
/// through this type. Thread-safe: the filesystem is the shared state, and the little kept in
/// memory (which units are known done) sits behind a mutex.
public final class RunState: Sendable {
    /// The files of a state directory; absent for a handle that only checks signals and a deadline.
    struct Files: Sendable {
        let directory: Directory
        let manifest: Manifest
        let markers: DoneMarkers
        let begun: BeginRecords
        let quarantine: NodeDirectories
    }

    /// What this handle knows to be done, node by node (by each unit's place among its node's
    /// units): refreshed by scans, updated by its own marks. It lets `markDone` notice, without a
    /// scan per call, when a node may have finished. A node is here once a scan has read it.
    struct Knowledge: Sendable {
        var done: [Int: DoneSet] = [:]
        /// CLOCK_MONOTONIC when this handle last wrote each share's summary (ShareSummary).
        var summarized: [Int: Int64] = [:]
        /// Shares marked since their summary was written: written when the handle goes.
        var unsummarized: Set<Int> = []
    }

    let files: Files?
    /// The state directory: present for unit states and for sweep states (which have no unit list).
    let directory: Directory?
    /// The state directory as given, nil for a handle without one.
    public let path: String?
    /// This process's node (from the caller, else the environment: see `Environment.node()`).
    public let node: Int
    public let stopCheck: StopCheck
    let knowledge = Locked(Knowledge())
    /// Units begun and not yet done or given up, and the durations this process knows (see
    /// RunState+Attempts.swift).
    let attempts = Locked(AttemptBook())
    /// Where this handle's loop is (Balance/WorkQueue.swift).
    let workQueue = Locked(WorkQueue())
    /// The nodes gstop judged bad (`NodeFailures`), and when they were read (monotonic ns).
    let badNodeCache = Locked<(nodes: Set<String>, readAt: Int64)?>(nil)

    private init(path: String?, files: Files?, directory: Directory? = nil, node: Int, stopCheck: StopCheck) {
        self.path = path
        self.files = files
        self.directory = files?.directory ?? directory
        self.node = node
        self.stopCheck = stopCheck
    }

    // MARK: - Opening

    /// Creates the state at `path` for `units`, or opens it when it exists for the same run.
    /// Throws `.mismatch` when it exists for another unit list, node count or partition rule.
    public static func create(
        at path: String, units: [String], nodes: Int, partition: PartitionRule = .roundRobin,
        legacyDoneDirectory: String? = nil, node: Int? = nil
    ) throws -> RunState {
        let table = try UnitTable(names: units.map { $0.utf8 })
        return try create(at: path, units: table, nodes: nodes, partition: partition, legacyDoneDirectory: legacyDoneDirectory, node: node)
    }

    static func create(
        at path: String, units: UnitTable, nodes: Int, partition: PartitionRule, legacyDoneDirectory: String?, node: Int?
    ) throws -> RunState {
        try validate(path: path)
        let wanted = try Manifest(units: units, nodes: nodes, rule: partition, legacyDoneDirectory: legacyDoneDirectory)
        let directory = try Directory(opening: path, create: true)
        if try !directory.exists(Manifest.fileName) {
            // Concurrent creators (every array task at start) write the same shards and the same
            // manifest; the manifest is linked exclusively, so the first one's stays. Each starts
            // with its own node's shard, so that many at once share the work.
            try wanted.write(in: directory, startingAt: (node ?? (try? Environment.node().number) ?? 0) % nodes)
        }
        return try open(directory: directory, path: path, node: node, wanted: wanted)
    }

    /// Opens the state at `path`; nil means `GRACEFULSTOP_STATE_DIR`, and when that is unset too,
    /// a handle without a state directory (it checks signals and the deadline; marking fails).
    public static func open(at path: String?, node: Int? = nil) throws -> RunState {
        guard let path = path ?? Environment.value(Environment.stateDirectory) else {
            return RunState(path: nil, files: nil, node: try node ?? Environment.node().number, stopCheck: try makeStopCheck(directory: nil, node: 0))
        }
        try validate(path: path)
        return try open(directory: Directory(opening: path), path: path, node: node)
    }

    /// Opens (creating it if missing) a state directory that need not hold a unit list: a sweep's,
    /// whose work is a shared study rather than units. `should_stop()` sees its stop requests, and
    /// `markStudyDone()` declares the work complete. If the directory has a manifest, the handle is
    /// a full unit state as from `open`.
    public static func openSweep(at path: String) throws -> RunState {
        try validate(path: path)
        let directory = try Directory(opening: path, create: true)
        if try directory.exists(Manifest.fileName) { return try open(directory: directory, path: path, node: nil) }
        let node = try Environment.node().number
        return RunState(path: path, files: nil, directory: directory, node: node, stopCheck: try makeStopCheck(directory: directory, node: node))
    }

    private static func validate(path: String) throws {
        if path.isEmpty { throw GracefulStopError(.invalidArgument, "the state directory path is empty") }
        if path.utf8.contains(0) { throw GracefulStopError(.invalidArgument, "the state directory path contains a NUL byte") }
    }

    /// Opens the state in `directory`. With `wanted` (a creator's run), the state must be that run,
    /// and the creator's names are used rather than read again.
    private static func open(directory: Directory, path: String, node: Int?, wanted: Manifest? = nil) throws -> RunState {
        guard let bytes = try directory.readFile(Manifest.fileName) else {
            throw GracefulStopError(
                .badState,
                "\(directory.pathOf(Manifest.fileName)) does not exist: \(path) is not a gracefulstop state (create one with gracefulstop.create() or `gstop init`)"
            )
        }
        var manifest = try Manifest.decode(bytes, source: directory.pathOf(Manifest.fileName), state: directory)
        if let wanted {
            if let difference = try manifest.difference(from: wanted) {
                throw GracefulStopError(
                    .mismatch,
                    "the state at \(path) belongs to a different run (\(difference)); use a new state directory, or open this one without a unit list"
                )
            }
            manifest = manifest.sharingNames(of: wanted)
        }
        let markers = try DoneMarkers(
            directory: directory.subdirectory(DoneMarkers.directoryName, create: true),
            legacy: openLegacyDirectory(manifest.legacyDoneDirectory, in: directory))
        let chosen: (number: Int, source: String, tasks: Int?) = try node.map { ($0, "", nil) } ?? Environment.node()
        let balance = try Balance.enabled()
        if let tasks = chosen.tasks, tasks != manifest.nodes {
            guard balance else {
                // The strict split: fewer shares than tasks makes tasks double up, more leaves
                // shares nobody works on.
                throw GracefulStopError(
                    .mismatch,
                    "this job has \(tasks) tasks\(chosen.source), but the state at \(path) shares its units among \(manifest.nodes) node\(manifest.nodes == 1 ? "" : "s") and \(Balance.variable)=0 keeps each task to its own share: create the state with nodes=\(tasks), or let the tasks balance (unset \(Balance.variable))"
                )
            }
            if chosen.number == 0 || Environment.value("SLURM_ARRAY_TASK_ID") != nil,
                let line = Balance.coverage(workers: tasks, shares: manifest.nodes)
            {
                Balance.announce("gracefulstop: \(line)")
            }
        }
        if !(balance && chosen.number >= manifest.nodes) {
            try manifest.partition.validate(node: chosen.number, source: chosen.source)
        }
        return RunState(
            path: path,
            files: Files(
                directory: directory, manifest: manifest, markers: markers, begun: BeginRecords(state: directory),
                quarantine: NodeDirectories(state: directory, name: Quarantine.directoryName)),
            node: chosen.number, stopCheck: try makeStopCheck(directory: directory, node: chosen.number))
    }

    /// The seed's `completed/` directory; one that does not exist yet simply holds no markers.
    private static func openLegacyDirectory(_ legacy: String?, in directory: Directory) throws -> Directory? {
        guard let legacy else { return nil }
        let resolved = legacy.hasPrefix("/") ? legacy : directory.pathOf(legacy)
        do { return try Directory(opening: resolved) } catch let error as GracefulStopError where error.errno == ENOENT { return nil }
    }

    private static func makeStopCheck(directory: Directory?, node: Int) throws -> StopCheck {
        StopCheck(
            directory: directory, job: Environment.job(),
            stale: Environment.value(Environment.staleRequests).flatMap(StaleRequests.decode),
            deadline: try Environment.unixTime(Environment.deadline),
            intervalSeconds: try Environment.checkIntervalSeconds(),
            recorder: ProcessStopRecorder.make(directory: directory, node: node))
    }

    // MARK: - The run

    func requireFiles() throws -> Files {
        if files == nil, let directory {
            throw GracefulStopError(
                .invalidArgument,
                "the state at \(directory.path) has no unit list (a sweep state); create it with a unit list (gracefulstop.create() or `gstop init`) to mark units"
            )
        }
        guard let files else {
            throw GracefulStopError(
                .invalidArgument,
                "no state directory: set \(Environment.stateDirectory) or open a state (gracefulstop.open(path) / gracefulstop_open)")
        }
        return files
    }

    public var manifest: Manifest? { files?.manifest }

    /// The position of `unit` in the manifest; throws for invalid or unknown names.
    func unitIndex<Name: Collection<UInt8>>(_ unit: Name, in files: Files) throws -> Int {
        try UnitName.validate(unit)
        guard let index = try files.manifest.catalog.position(ofUnit: unit, preferring: node) else {
            throw GracefulStopError(
                .unknownUnit,
                "unit \(UnitName.preview(unit)) is not in the manifest of \(files.directory.path) (\(files.manifest.unitCount) units)")
        }
        return index
    }

    /// Every unit's name in manifest order (a version-2 state reads every shard for it).
    func allUnitNames() throws -> [String] {
        let catalog = try requireFiles().manifest.catalog
        return try (0..<catalog.partition.unitCount).map { String(decoding: try catalog.nameBytes($0), as: UTF8.self) }
    }

    /// Marks `unit` done (see `DoneMarkers.mark`). Returns true when it was already done. When this
    /// finishes the unit's node, `complete/<node>` is written and `run.done` decided from the
    /// `complete/` files (see `checkRunDone`).
    @discardableResult
    public func markDone<Name: Collection<UInt8>>(_ unit: Name) throws -> Bool {
        let files = try requireFiles()
        let index = try unitIndex(unit, in: files)
        let partition = files.manifest.partition
        let begun = attempts.withLock { $0.inFlight.removeValue(forKey: index) }
        let timing = UnitTiming(
            started: begun?.started, ended: Clock.unixSeconds(), host: HostName.current, node: node,
            restart: Environment.restarts())
        let alreadyDone = try files.markers.mark(index, in: files.manifest.catalog, timing: timing)
        if let begun, !alreadyDone, let here = Environment.slurmNodeName() {
            // Done here after failing on other nodes: evidence against those nodes, not the unit.
            let elsewhere = Dictionary(grouping: begun.failedBefore.filter { $0.slurmNode != nil && $0.slurmNode != here }, by: { $0.slurmNode! })
            for (failedOn, holders) in elsewhere {
                try? NodeFailures.record(
                    NodeFailures.Evidence(
                        node: failedOn, share: begun.claim.node, place: begun.claim.place,
                        unit: String(decoding: begun.claim.unit, as: UTF8.self),
                        failed: holders.map { NodeFailures.AttemptID(job: $0.job, restart: $0.restart) },
                        doneOn: here), in: files.directory)
            }
        }
        if let begun {
            if let seconds = timing.seconds { attempts.withLock { $0.durations.append(seconds) } }
            // The unit is done: its attempt no longer counts toward quarantine. A record left by a
            // failed removal is harmless (a done unit is never quarantined) and tidied later. A unit
            // of another share leaves its claim in taken/, which counts what others did for it.
            if let record = begun.record {
                if begun.claim.node != node {
                    files.begun.moveToTaken(node: begun.claim.node, place: begun.claim.place, worker: node, fileName: record)
                } else {
                    try? files.begun.remove(node: begun.claim.node, fileName: record)
                }
            }
        }
        let owner = partition.node(ofUnit: index)
        let scanned = knowledge.withLock { $0.done[owner] != nil }
        if !scanned { try refresh(node: owner) }
        let nodeFinished = knowledge.withLock { known -> Bool in
            guard known.done[owner] != nil else { return false }
            let added = known.done[owner]!.insert(partition.localIndex(ofUnit: index))
            return (added || !scanned) && known.done[owner]!.count == partition.unitCount(ofNode: owner)
        }
        if nodeFinished {
            try NodeCompletion.write(node: owner, unitCount: partition.unitCount(ofNode: owner), in: files.directory)
            _ = try checkRunDone()
        } else {
            summarize(share: owner, in: files)
        }
        return alreadyDone
    }

    @discardableResult
    public func markDone(_ unit: String) throws -> Bool { try markDone(unit.utf8) }

    /// Writes the share's summary for progress lines (ShareSummary) when this handle has not for
    /// ten seconds: the first mark writes one, then at most one per interval. Best effort: a
    /// summary is a convenience, and the mark has been made.
    private func summarize(share: Int, in files: Files) {
        let now = Clock.monotonicNanoseconds()
        let done: Int? = knowledge.withLock { known in
            if let last = known.summarized[share], now &- last < ShareSummary.intervalNanoseconds {
                known.unsummarized.insert(share)
                return nil
            }
            known.summarized[share] = now
            known.unsummarized.remove(share)
            return known.done[share]?.count
        }
        guard let done else { return }
        try? ShareSummary.write(share: share, done: done, total: files.manifest.partition.unitCount(ofNode: share), in: files.directory)
    }

    deinit {
        // The last marks of a handle that closes within ten seconds of a summary are not lost to it.
        guard let files else { return }
        let pending = knowledge.withLock { known in known.unsummarized.compactMap { share in known.done[share].map { (share, $0.count) } } }
        for (share, done) in pending {
            try? ShareSummary.write(share: share, done: done, total: files.manifest.partition.unitCount(ofNode: share), in: files.directory)
        }
    }

    /// Where `unit`'s marker is, relative to the state directory (`done/<node>/<marker>`).
    public func markerPath<Name: Collection<UInt8>>(_ unit: Name) throws -> String {
        let files = try requireFiles()
        return try files.markers.relativePath(of: unitIndex(unit, in: files), in: files.manifest.catalog)
    }

    /// Whether `unit` is done: a stat, no scan.
    public func isDone<Name: Collection<UInt8>>(_ unit: Name) throws -> Bool {
        let files = try requireFiles()
        return try files.markers.isDone(unitIndex(unit, in: files), in: files.manifest.catalog)
    }

    public func isDone(_ unit: String) throws -> Bool { try isDone(unit.utf8) }

    /// Scans the markers of `node` and updates what this handle knows; the result holds each done
    /// unit's place among the node's units. `keepNames`: keep the node's names (and index) for
    /// later calls — false for the passes over every node, which need one node at a time.
    @discardableResult
    func refresh(node: Int, keepNames: Bool = true) throws -> DoneSet {
        let files = try requireFiles()
        let share = try files.manifest.catalog.share(ofNode: node, keep: keepNames)
        let done = try files.markers.scan(share, cacheIndex: keepNames)
        knowledge.withLock { $0.done[node] = done }
        return done
    }

    /// `node`, or this handle's; a node beyond the shares is refused unless it is this handle's own
    /// (a worker that only takes over, which owns no unit).
    private func checkedNode(_ node: Int?, _ files: Files) throws -> Int {
        let chosen = node ?? self.node
        if chosen != self.node || chosen < files.manifest.partition.nodes { try files.manifest.partition.validate(node: chosen) }
        return chosen
    }

    /// The places (among `node`'s units) of its units that are neither done nor quarantined, in
    /// manifest order. Units whose attempts earn them a quarantine are quarantined first.
    private func remainingPlaces(node: Int) throws -> [Int] {
        guard node < (try requireFiles().manifest.partition.nodes) else { return [] }
        let done = try refresh(node: node)
        let quarantined = try applyQuarantine(node: node, done: done, attemptsOver: Environment.restarts()).places
        let count = try requireFiles().manifest.partition.unitCount(ofNode: node)
        return (0..<count).filter { !done.contains($0) && !quarantined.contains($0) }
    }

    /// The manifest positions of `node`'s units that are not done, in manifest order (default:
    /// this handle's node). One directory read, however many units.
    public func remainingUnitIndices(node: Int? = nil) throws -> [Int] {
        let files = try requireFiles()
        let chosen = try checkedNode(node, files)
        let partition = files.manifest.partition
        return try remainingPlaces(node: chosen).map { partition.unit(ofNode: chosen, local: $0) }
    }

    /// `node`'s remaining units as a share (its names) and their positions in the share's table.
    func remainingUnitNames(node: Int? = nil) throws -> (share: UnitCatalog.Share, positions: [Int]) {
        let files = try requireFiles()
        let chosen = try checkedNode(node, files)
        let places = try remainingPlaces(node: chosen)
        let share = try files.manifest.catalog.share(ofNode: chosen)
        let positions = share.isWhole ? places.map { files.manifest.partition.unit(ofNode: chosen, local: $0) } : places
        return (share, positions)
    }

    public func remainingUnits(node: Int? = nil) throws -> [String] {
        let files = try requireFiles()
        if try checkedNode(node, files) >= files.manifest.partition.nodes { return [] }  // a worker that only takes over
        let (share, positions) = try remainingUnitNames(node: node)
        return positions.map { share.table.name($0) }
    }

    /// Done and total units of `node`, or of the whole run when `node` is nil.
    public func counts(node: Int?) throws -> (done: Int, total: Int) {
        let files = try requireFiles()
        guard let node else {
            return try countsByNode().reduce((0, 0)) { ($0.0 + $1.done, $0.1 + $1.total) }
        }
        let chosen = try checkedNode(node, files)
        guard chosen < files.manifest.partition.nodes else { return (0, 0) }
        return (try refresh(node: chosen).count, files.manifest.partition.unitCount(ofNode: chosen))
    }

    /// Done and total units of every node: a node with a `complete/` file counts as done without a
    /// scan; the others are scanned one at a time (only one node's names in memory at once). When
    /// every unit is done, `run.done` is created.
    public func countsByNode() throws -> [(done: Int, total: Int)] {
        let files = try requireFiles()
        let partition = files.manifest.partition
        let complete = try NodeCompletion.trusted(NodeCompletion.nodes(in: files.directory), partition: partition, in: files.directory)
        var counts: [(done: Int, total: Int)] = []
        counts.reserveCapacity(partition.nodes)
        for node in 0..<partition.nodes {
            let total = partition.unitCount(ofNode: node)
            if total == 0 || complete.contains(node) {
                counts.append((total, total))
                continue
            }
            let done = try refresh(node: node, keepNames: node == self.node).count
            if done == total { try NodeCompletion.write(node: node, unitCount: total, in: files.directory) }
            counts.append((done, total))
        }
        if counts.allSatisfy({ $0.done == $0.total }) { _ = try checkRunDone() }
        return counts
    }

    /// Whether every unit of the run is done, creating `run.done` if so: from one listing of
    /// `complete/`, scanning only the nodes that have no `complete/` file yet (writing theirs when
    /// they turn out finished: a state begun by an older release, or a process killed between its
    /// last marker and its node's file). O(nodes) at the end of a run, not O(units).
    public func checkRunDone() throws -> Bool {
        let files = try requireFiles()
        // Asked afresh (Directory.contains): on NFS a lookup could cache "no such name" just
        // before another host's finisher creates it.
        let partition = files.manifest.partition
        let stray = try files.directory.contains(RunCompletion.fileName)
        if stray, RunCompletion.problem(in: files.directory, unitCount: partition.unitCount) == nil { return true }
        // No run.done, or one gracefulstop did not write: the run is done only if every share is,
        // by a record it wrote or by its markers.
        let complete = try NodeCompletion.trusted(NodeCompletion.nodes(in: files.directory), partition: partition, in: files.directory)
        for node in 0..<partition.nodes where partition.unitCount(ofNode: node) > 0 && !complete.contains(node) {
            let count = try refresh(node: node, keepNames: node == self.node).count
            guard count == partition.unitCount(ofNode: node) else { return false }
            try NodeCompletion.write(node: node, unitCount: count, in: files.directory)
        }
        if stray {
            // The work is all done after all: the damaged file is replaced by a whole one.
            try files.directory.writeAtomically(RunCompletion.fileName, RunCompletion.record(unitCount: partition.unitCount))
        } else {
            try RunCompletion.write(in: files.directory, unitCount: partition.unitCount)
        }
        return true
    }

    /// Asks the processes of this job (every node of it; everybody outside SLURM, or when
    /// `everyJob`) to stop: writes the stop request, and stops this process at once. Without a
    /// state directory, only this process is asked.
    public func requestStop(reason: String, everyJob: Bool = false) throws {
        if let files { try StopRequest.now(reason: reason).write(to: files.directory, job: everyJob ? nil : Environment.job()) }
        stopCheck.latch(.request, "stop requested by this process: \(reason)")
    }

    @inline(__always)
    public func shouldStop() -> Bool { stopCheck.shouldStop() }

    /// Declares a sweep's work complete (`study.done`), with a few words on what was completed.
    public func markStudyDone(detail: String) throws {
        guard let directory else {
            throw GracefulStopError(.invalidArgument, "no state directory: set \(Environment.stateDirectory) or open a state")
        }
        try StudyCompletion.write(in: directory, detail: detail)
    }

    /// Records that this process finished `count` more of `what` (a sweep's trials; 0 when it
    /// starts, to say that it reports), for gstop's --max-idle-attempts (see SweepProgress).
    /// A no-op outside gstop or without a state directory.
    public func recordFinished(_ count: Int, what: String) throws {
        guard count >= 0 else { throw GracefulStopError(.invalidArgument, "count must be 0 or more (got \(count))") }
        guard let directory else { return }
        try SweepProgress.record(count: count, what: what.isEmpty ? "trial" : what, node: node, in: directory)
    }

    /// Whether `study.done` exists.
    public func isStudyDone() throws -> Bool {
        guard let directory else { return false }
        return try directory.exists(StudyCompletion.fileName)
    }
}
