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
    }

    /// What this handle knows to be done, node by node: refreshed by scans, updated by its own marks.
    /// It lets `markDone` notice, without a scan per call, when a node may have finished.
    private struct Knowledge: Sendable {
        var done: DoneSet
        var doneByNode: [Int]
        /// Nodes whose count reflects a scan of their markers.
        var scanned: Set<Int> = []
    }

    let files: Files?
    /// The state directory: present for unit states and for sweep states (which have no unit list).
    let directory: Directory?
    /// The state directory as given, nil for a handle without one.
    public let path: String?
    /// This process's node (from the caller, else the environment: see `Environment.node()`).
    public let node: Int
    public let stopCheck: StopCheck
    private let knowledge = Mutex<Knowledge?>(nil)

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
            // Concurrent creators (every array task at start) each rename a complete, identical file.
            try directory.writeAtomically(Manifest.fileName, wanted.encoded())
        }
        let state = try open(directory: directory, path: path, node: node)
        if let difference = state.files!.manifest.difference(from: wanted) {
            throw GracefulStopError(
                .mismatch,
                "the state at \(path) belongs to a different run (\(difference)); use a new state directory, or open this one without a unit list")
        }
        return state
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

    private static func open(directory: Directory, path: String, node: Int?) throws -> RunState {
        guard let bytes = try directory.readFile(Manifest.fileName) else {
            throw GracefulStopError(
                .badState,
                "\(directory.pathOf(Manifest.fileName)) does not exist: \(path) is not a gracefulstop state (create one with gracefulstop.create() or `gstop init`)")
        }
        let manifest = try Manifest.decode(bytes, source: directory.pathOf(Manifest.fileName))
        let markers = try DoneMarkers(
            directory: directory.subdirectory(DoneMarkers.directoryName, create: true),
            legacy: openLegacyDirectory(manifest.legacyDoneDirectory, in: directory))
        let chosen: (number: Int, source: String, tasks: Int?) = try node.map { ($0, "", nil) } ?? Environment.node()
        if let tasks = chosen.tasks, tasks != manifest.nodes {
            // Refused rather than run: fewer shares than tasks makes tasks fail or double up, more
            // leaves shares nobody works on.
            throw GracefulStopError(
                .mismatch,
                "this srun step has \(tasks) tasks (SLURM_STEP_NUM_TASKS), but the state at \(path) shares its units among \(manifest.nodes) node\(manifest.nodes == 1 ? "" : "s"): each task works on its own share (SLURM_PROCID), so create the state with nodes=\(tasks) (nodes=int(os.environ[\"SLURM_NTASKS\"])), or set \(Environment.shareVariable)=node for the tasks of a node to work on its units together")
        }
        try manifest.partition.validate(node: chosen.number, source: chosen.source)
        return RunState(
            path: path, files: Files(directory: directory, manifest: manifest, markers: markers),
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
            attemptStart: try Environment.unixTime(Environment.attemptStart) ?? Clock.unixSeconds(),
            deadline: try Environment.unixTime(Environment.deadline),
            intervalSeconds: try Environment.checkIntervalSeconds(),
            recorder: ProcessStopRecorder.make(directory: directory, node: node))
    }

    // MARK: - The run

    func requireFiles() throws -> Files {
        if files == nil, let directory {
            throw GracefulStopError(
                .invalidArgument,
                "the state at \(directory.path) has no unit list (a sweep state); create it with a unit list (gracefulstop.create() or `gstop init`) to mark units")
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
        guard let index = files.manifest.units.index(ofUnit: unit) else {
            throw GracefulStopError(
                .unknownUnit,
                "unit \(UnitName.preview(unit)) is not in the manifest of \(files.directory.path) (\(files.manifest.unitCount) units)")
        }
        return index
    }

    /// Marks `unit` done (see `DoneMarkers.mark`). Returns true when it was already done. When this
    /// finishes the unit's node, `complete/<node>` is written and `run.done` decided from the
    /// `complete/` files (see `checkRunDone`).
    @discardableResult
    public func markDone<Name: Collection<UInt8>>(_ unit: Name) throws -> Bool {
        let files = try requireFiles()
        let index = try unitIndex(unit, in: files)
        let partition = files.manifest.partition
        let alreadyDone = try files.markers.mark(index, in: files.manifest.units, partition: partition)
        let owner = partition.node(ofUnit: index)
        let scanned = knowledge.withLock { $0?.scanned.contains(owner) ?? false }
        if !scanned { try refresh(node: owner) }
        let nodeFinished = knowledge.withLock { known -> Bool in
            guard known != nil else { return false }
            let added = known!.done.insert(index)
            if added { known!.doneByNode[owner] += 1 }
            return (added || !scanned) && known!.doneByNode[owner] == partition.unitCount(ofNode: owner)
        }
        if nodeFinished {
            try NodeCompletion.write(node: owner, unitCount: partition.unitCount(ofNode: owner), in: files.directory)
            _ = try checkRunDone()
        }
        return alreadyDone
    }

    @discardableResult
    public func markDone(_ unit: String) throws -> Bool { try markDone(unit.utf8) }

    /// Where `unit`'s marker is, relative to the state directory (`done/<node>/<marker>`).
    public func markerPath<Name: Collection<UInt8>>(_ unit: Name) throws -> String {
        let files = try requireFiles()
        return files.markers.relativePath(of: try unitIndex(unit, in: files), in: files.manifest.units, partition: files.manifest.partition)
    }

    /// Whether `unit` is done: a stat, no scan.
    public func isDone<Name: Collection<UInt8>>(_ unit: Name) throws -> Bool {
        let files = try requireFiles()
        return try files.markers.isDone(unitIndex(unit, in: files), in: files.manifest.units, partition: files.manifest.partition)
    }

    public func isDone(_ unit: String) throws -> Bool { try isDone(unit.utf8) }

    /// Scans the markers of `node` (of every node when nil: then `run.done` is created when every
    /// unit is done) and updates what this handle knows.
    @discardableResult
    func refresh(node: Int?) throws -> DoneSet {
        let files = try requireFiles()
        let manifest = files.manifest
        let partition = manifest.partition
        let done = try files.markers.scan(manifest.units, partition: partition, node: node)
        knowledge.withLock { known in
            if known == nil { known = Knowledge(done: DoneSet(unitCount: manifest.unitCount), doneByNode: [Int](repeating: 0, count: manifest.nodes)) }
            let nodes = node.map { [$0] } ?? Array(0..<manifest.nodes)
            for scannedNode in nodes {
                var count = 0
                for unit in partition.units(ofNode: scannedNode) {
                    if done.contains(unit) {
                        known!.done.insert(unit)
                        count += 1
                    } else {
                        known!.done.remove(unit)
                    }
                }
                known!.doneByNode[scannedNode] = count
                known!.scanned.insert(scannedNode)
            }
        }
        if node == nil, done.count == manifest.unitCount, try !RunCompletion.exists(in: files.directory) {
            try RunCompletion.write(in: files.directory, unitCount: manifest.unitCount)
        }
        return done
    }

    private func checkedNode(_ node: Int?, _ files: Files) throws -> Int {
        let chosen = node ?? self.node
        try files.manifest.partition.validate(node: chosen)
        return chosen
    }

    /// The manifest positions of `node`'s units that are not done, in manifest order (default:
    /// this handle's node). One directory read, however many units.
    public func remainingUnitIndices(node: Int? = nil) throws -> [Int] {
        let files = try requireFiles()
        let chosen = try checkedNode(node, files)
        let done = try refresh(node: chosen)
        return files.manifest.partition.units(ofNode: chosen).filter { !done.contains($0) }
    }

    public func remainingUnits(node: Int? = nil) throws -> [String] {
        let table = try requireFiles().manifest.units
        return try remainingUnitIndices(node: node).map { table.name($0) }
    }

    /// Done and total units of `node`, or of the whole run when `node` is nil.
    public func counts(node: Int?) throws -> (done: Int, total: Int) {
        let files = try requireFiles()
        if let node { try files.manifest.partition.validate(node: node) }
        let done = try refresh(node: node)
        guard let node else { return (done.count, files.manifest.unitCount) }
        let units = files.manifest.partition.units(ofNode: node)
        return (units.reduce(0) { $0 + (done.contains($1) ? 1 : 0) }, files.manifest.partition.unitCount(ofNode: node))
    }

    /// Done and total units of every node, from one scan.
    public func countsByNode() throws -> [(done: Int, total: Int)] {
        let files = try requireFiles()
        let done = try refresh(node: nil)
        let partition = files.manifest.partition
        return (0..<partition.nodes).map { node in
            (partition.units(ofNode: node).reduce(0) { $0 + (done.contains($1) ? 1 : 0) }, partition.unitCount(ofNode: node))
        }
    }

    /// Scans, and says whether every unit is done (creating `run.done` if so).
    /// Whether every unit of the run is done, creating `run.done` if so: from one listing of
    /// `complete/`, scanning only the nodes that have no `complete/` file yet (writing theirs when
    /// they turn out finished: a state begun by an older release, or a process killed between its
    /// last marker and its node's file). O(nodes) at the end of a run, not O(units).
    public func checkRunDone() throws -> Bool {
        let files = try requireFiles()
        // Asked afresh (Directory.contains): on NFS a lookup could cache "no such name" just
        // before another host's finisher creates it.
        if try files.directory.contains(RunCompletion.fileName) { return true }
        let manifest = files.manifest
        let owning = (0..<manifest.nodes).filter { manifest.partition.unitCount(ofNode: $0) > 0 }
        let complete = try NodeCompletion.nodes(in: files.directory)
        for node in owning where !complete.contains(node) {
            let done = try refresh(node: node)
            let count = manifest.partition.units(ofNode: node).reduce(0) { $0 + (done.contains($1) ? 1 : 0) }
            guard count == manifest.partition.unitCount(ofNode: node) else { return false }
            try NodeCompletion.write(node: node, unitCount: count, in: files.directory)
        }
        try RunCompletion.write(in: files.directory, unitCount: manifest.unitCount)
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
        guard let directory else { throw GracefulStopError(.invalidArgument, "no state directory: set \(Environment.stateDirectory) or open a state") }
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
