import Glibc

/// Attempts at units: beginning one (a begin record, and no start that cannot finish before the
/// deadline), giving one up, quarantining a unit its attempts never finish, releasing it, and the
/// durations the estimates rest on.

/// What `beginUnit` found.
public enum BeginOutcome: Int32, Sendable {
    /// Begun: work on it, then `markDone` it.
    case begun = 0
    /// Do not begin it: a stop is due (a signal, a request, the deadline, or too little time left
    /// for a unit before the deadline — `stopReason` says which). The loop ends.
    case stop = 1
    /// Done meanwhile (by another process): skip it.
    case done = 2
    /// Quarantined (see `Quarantine`): skip it.
    case quarantined = 3
    /// Another live worker holds it (balancing: its owner, or a worker that took it over): skip it.
    case claimed = 4
}

/// A unit this process began: when, what it claimed, and its begin record.
struct InFlightUnit: Sendable {
    var started: Double
    var claim: BeginRecords.Claim
    var record: String?
    /// The earlier attempts at the unit that failed (for `NodeFailures`, once this one succeeds).
    var failedBefore: [BeginRecords.Holder] = []
}

/// What a handle remembers about its own attempts.
struct AttemptBook: Sendable {
    /// By manifest position.
    var inFlight: [Int: InFlightUnit] = [:]
    /// Seconds of the units this process finished after beginning them.
    var durations: [Double] = []
    /// Seconds read from the node's markers at the first begin that needed an estimate.
    var sampled: [Double]? = nil
}

extension RunState {
    /// How many markers' timings the first estimate of a process reads.
    static let estimateSample = 32

    /// Begins `unit`: returns `.begun` after claiming it (its begin record), or says why not. With a
    /// deadline (GRACEFULSTOP_DEADLINE), a unit whose expected time — `estimate`, else the p90 of
    /// this run's durations — exceeds the time left is not begun: the stop is latched with that
    /// reason, so that no work is begun only to be lost at the time limit. The claim is exclusive
    /// (`BeginRecords.claim`): a unit another live worker holds is `.claimed`, one finished meanwhile
    /// `.done` (asked after the claim, so that a unit marked and let go just before is not begun
    /// again).
    public func beginUnit<Name: Collection<UInt8>>(_ unit: Name, estimate: Double? = nil) throws -> BeginOutcome {
        let files = try requireFiles()
        let index = try unitIndex(unit, in: files)
        if let estimate, !(estimate.isFinite && estimate >= 0) {
            throw GracefulStopError(
                .invalidArgument, "the estimate for unit \(UnitName.preview(unit)) must be a number of seconds, 0 or more (got \(estimate))")
        }
        if shouldStop() { return .stop }
        let exclusive = Balance.exclusiveClaims
        if !exclusive, try files.markers.isDone(index, in: files.manifest.catalog) { return .done }
        let partition = files.manifest.partition
        let owner = partition.node(ofUnit: index)
        let place = partition.localIndex(ofUnit: index)
        // remaining_units() left out what was quarantined when it scanned; a unit quarantined since
        // (by another process of this node) is caught here when the scan saw the node's quarantine
        // directory. No fresh look otherwise: on NFS it would be a server request or two per unit.
        if let directory = files.quarantine.opened(owner), try directory.exists(Quarantine.fileName(place: place)) {
            return .quarantined
        }
        if let deadline = stopCheck.deadline {
            let expected = try estimate ?? expectedUnitSeconds(node: owner)
            if let refusal = UnitStartDecision.refusal(expected: expected, secondsLeft: deadline - Clock.unixSeconds()) {
                stopCheck.latch(.deadline, refusal)
                return .stop
            }
        }
        let restart = Environment.restarts()
        let claim = BeginRecords.Claim(
            node: owner, place: place, unit: try files.manifest.catalog.nameBytes(index), worker: node,
            restart: restart, job: Environment.job(), started: Clock.unixSeconds())
        var record: String? = nil
        var failedBefore: [BeginRecords.Holder] = []
        if exclusive {
            var outcome = try files.begun.claim(
                claim, attemptsOver: restart, failedBefore: &failedBefore, failureLimit: try Quarantine.maxUnitAttempts(), badNodes: badNodes)
            if outcome == .limitReached {
                // Its failures earn a quarantine: written here, unless they turn out not to count
                // (the unit was done meanwhile, or a record changed): then it is claimed after all.
                let done = try refresh(node: owner, keepNames: owner == node)
                if done.contains(place) { return .done }
                if try applyQuarantine(node: owner, done: done, attemptsOver: restart).places.contains(place) { return .quarantined }
                failedBefore = []
                outcome = try files.begun.claim(claim, attemptsOver: restart, failedBefore: &failedBefore)
            }
            guard case .claimed(let name) = outcome else { return .claimed }
            if try files.markers.isDoneForClaimHolder(index, in: files.manifest.catalog) {
                try? files.begun.remove(node: owner, fileName: name)  // the unit is done: no gap can matter
                return .done
            }
            record = name
        } else if try Quarantine.maxUnitAttempts() > 0 {
            record = try files.begun.writeLegacy(claim)
        }
        // Begun again without being finished or given up: the earlier attempt's record stays.
        attempts.withLock { $0.inFlight[index] = InFlightUnit(started: claim.started, claim: claim, record: record, failedBefore: failedBefore) }
        return .begun
    }

    public func beginUnit(_ unit: String, estimate: Double? = nil) throws -> BeginOutcome { try beginUnit(unit.utf8, estimate: estimate) }

    /// Gives up `unit`, begun by this process and not finished, so that any worker may take it
    /// over. When a stop is due, its claim is released: stopping is not the unit's fault. Otherwise
    /// (an error in the unit) it is abandoned, and counts toward its quarantine. Returns whether
    /// the attempt was forgotten (released).
    @discardableResult
    public func abandonUnit<Name: Collection<UInt8>>(_ unit: Name) throws -> Bool {
        let files = try requireFiles()
        let index = try unitIndex(unit, in: files)
        guard let begun = attempts.withLock({ $0.inFlight.removeValue(forKey: index) }), let record = begun.record else { return false }
        let released = shouldStop()
        try files.begun.giveUp(begun.claim, fileName: record, released ? .released : .abandoned)
        return released
    }

    /// The time a unit of `node` is expected to take: the p90 of the durations this process
    /// measured and of a sample of the node's markers (read once); nil without any.
    func expectedUnitSeconds(node: Int) throws -> Double? {
        let files = try requireFiles()
        if attempts.withLock({ $0.sampled == nil }) {
            let sample = try files.markers.timings(node: node, limit: RunState.estimateSample).compactMap(\.seconds)
            attempts.withLock { $0.sampled = $0.sampled ?? sample }
        }
        return attempts.withLock { UnitEstimate(durations: ($0.sampled ?? []) + $0.durations)?.p90 }
    }

    /// The estimate for `node` from a sample of up to `limit` of its markers.
    public func unitEstimate(node: Int, limit: Int) throws -> UnitEstimate? {
        UnitEstimate(durations: try requireFiles().markers.timings(node: node, limit: limit).compactMap(\.seconds))
    }

    /// The name of the unit at `place` among `node`'s units.
    func unitName(node: Int, place: Int) throws -> String {
        let files = try requireFiles()
        return String(decoding: try files.manifest.catalog.nameBytes(files.manifest.partition.unit(ofNode: node, local: place)), as: UTF8.self)
    }

    /// Quarantines the units of `node` that attempts which are over (`BeginRecords.isOver`) began
    /// `GRACEFULSTOP_MAX_UNIT_ATTEMPTS` times without finishing. Returns the node's quarantined
    /// places, old and new, and the names of the new ones (each also an events.jsonl line).
    /// `held`: the places (not done) that a live attempt holds, this process's own included.
    @discardableResult
    /// `job`: whose restarts `attemptsOver` counts (default: this process's SLURM job).
    func applyQuarantine(node: Int, done: DoneSet, attemptsOver: Int, job: String?? = nil) throws -> (places: Set<Int>, new: [String], held: Set<Int>)
    {
        let found = try applyQuarantineFindingLastAttempt(node: node, done: done, attemptsOver: attemptsOver, job: job)
        return (found.places, found.new, found.held)
    }

    /// The nodes gstop has judged bad (`NodeFailures`): read at most every 30 s per handle (gstop
    /// judges between attempts; a worker need not see it sooner).
    func badNodes() -> Set<String> {
        let now = Clock.monotonicNanoseconds()
        if let cached = badNodeCache.withLock({ $0 }), now &- cached.readAt < 30_000_000_000 { return cached.nodes }
        guard let directory = files?.directory else { return [] }
        let nodes = Set(((try? NodeFailures.badNodes(in: directory)) ?? []).map(\.node))
        badNodeCache.withLock { $0 = (nodes, now) }
        return nodes
    }

    /// Forgets the bad nodes read (gstop, right after it judged one).
    func forgetBadNodes() { badNodeCache.withLock { $0 = nil } }

    /// The places of `node` (not done, not quarantined) with the SLURM nodes their failed attempts
    /// ran on: a worker leaves a unit that failed on its own node for last, and takes one that
    /// failed on another node first (a second opinion tells a bad node from a bad unit).
    func failedOn(node: Int, attemptsOver: Int) throws -> [Int: Set<String>] {
        let files = try requireFiles()
        var found: [Int: Set<String>] = [:]
        for record in try files.begun.attempts(node: node, attemptsOver: attemptsOver, job: Environment.job()) where record.failed {
            if let slurmNode = record.holder?.slurmNode { found[record.entry.place, default: []].insert(slurmNode) }
        }
        return found
    }

    /// `applyQuarantine`, and the units (not done) that the last attempt which is over (restart
    /// `attemptsOver - 1` of `job`) left in flight without giving them up: the units its command
    /// died on. Each with its failed attempts so far.
    func applyQuarantineFindingLastAttempt(node: Int, done: DoneSet, attemptsOver: Int, job: String?? = nil) throws
        -> (places: Set<Int>, new: [String], held: Set<Int>, diedOn: [UnitInFlight])
    {
        let files = try requireFiles()
        var places = Set(try Quarantine.places(node: node, in: files.quarantine).keys)
        let limit = try Quarantine.maxUnitAttempts()
        let whose = job ?? Environment.job()
        let records = try files.begun.attempts(node: node, attemptsOver: attemptsOver, job: whose)
        guard !records.isEmpty else { return (places, [], [], []) }
        let count = files.manifest.partition.unitCount(ofNode: node)
        let own = attempts.withLock { Set($0.inFlight.values.compactMap(\.record)) }
        var failed: [Int: [BeginRecords.Attempt]] = [:]
        var held = Set<Int>()
        // A bad node's failures are the node's, not the unit's: they count toward no quarantine.
        let bad = records.contains { $0.holder?.slurmNode != nil } ? badNodes() : []
        for record in records
        where record.entry.place < count && !done.contains(record.entry.place)
            && (own.contains(record.entry.fileName) || !record.over)
        {
            held.insert(record.entry.place)
        }
        for record in records where record.entry.place < count && !own.contains(record.entry.fileName) && record.over {
            if done.contains(record.entry.place) {
                try? files.begun.remove(node: node, fileName: record.entry.fileName)  // done after all: tidied
            } else if !places.contains(record.entry.place) && record.failed && !(record.holder?.slurmNode.map(bad.contains) ?? false) {
                failed[record.entry.place, default: []].append(record)
            }
        }
        var diedOn: [UnitInFlight] = []
        for record in records
        where record.entry.place < count && !done.contains(record.entry.place) && record.failed
            && record.holder.map({ $0.job == whose && $0.restart == attemptsOver - 1 }) == true
        {
            diedOn.append(UnitInFlight(unit: try unitName(node: node, place: record.entry.place), attempts: failed[record.entry.place]?.count ?? 1))
        }
        guard limit > 0 else { return (places, [], held, diedOn) }
        var new: [String] = []
        for (place, entries) in failed.sorted(by: { $0.key < $1.key }) where entries.count >= limit {
            let name = try unitName(node: node, place: place)
            let records = entries.sorted { $0.entry.fileName < $1.entry.fileName }.map {
                $0.content ?? .object([("file", .string($0.entry.fileName))])
            }
            try Quarantine.write(node: node, place: place, unit: name, attempts: records, maxUnitAttempts: limit, in: files.quarantine)
            places.insert(place)
            new.append(name)
            try? EventLog.append(
                [
                    ("event", .string("quarantine")), ("job", Environment.job().map { .string($0) } ?? .null), ("node", .number(Double(node))),
                    ("host", .string(HostName.current)), ("pid", .number(Double(getpid()))), ("unit", .string(name)),
                    ("attempts", .number(Double(entries.count))), ("records", .array(records)),
                ], in: files.directory)
        }
        return (places, new, held, diedOn)
    }

    /// The names of the quarantined units (not done) of `node`, or of every node when nil, after
    /// quarantining those whose attempts earn it (`applyQuarantine`). One node's names at a time.
    func quarantined(node: Int?, attemptsOver: Int) throws -> [String] {
        let files = try requireFiles()
        var names: [String] = []
        for node in node.map({ [$0] }) ?? Array(0..<files.manifest.partition.nodes) {
            let done = try refresh(node: node, keepNames: node == self.node)
            let places = try applyQuarantine(node: node, done: done, attemptsOver: attemptsOver).places.filter { !done.contains($0) }
            names += try places.sorted().map { try unitName(node: node, place: $0) }
        }
        return names
    }

    /// Every quarantined unit: node, name and what its file says.
    public func quarantinedUnits() throws -> [(node: Int, unit: String, record: JSONValue?)] {
        let files = try requireFiles()
        var units: [(node: Int, unit: String, record: JSONValue?)] = []
        guard try files.directory.contains(Quarantine.directoryName) else { return [] }
        for node in 0..<files.manifest.partition.nodes {
            for (place, record) in try Quarantine.places(node: node, in: files.quarantine).sorted(by: { $0.key < $1.key })
            where place < files.manifest.partition.unitCount(ofNode: node) {
                units.append((node, try unitName(node: node, place: place), record))
            }
        }
        return units
    }

    /// Whether nothing is left that an attempt could do: every unit done or quarantined, with at
    /// least one quarantined; then `run.quarantined` is written and the quarantined names returned.
    /// nil while units remain, or when every unit is done (run.done). `attemptsOver` as for
    /// `applyQuarantine`. Scans the nodes without a `complete/` file, one at a time.
    public func checkRunSettled(attemptsOver: Int) throws -> [String]? {
        let files = try requireFiles()
        if try checkRunDone() { return nil }
        let partition = files.manifest.partition
        let complete = try NodeCompletion.trusted(NodeCompletion.nodes(in: files.directory), partition: partition, in: files.directory)
        var names: [String] = []
        var done = 0
        for node in 0..<partition.nodes where partition.unitCount(ofNode: node) > 0 {
            let total = partition.unitCount(ofNode: node)
            if complete.contains(node) {
                done += total
                continue
            }
            let doneSet = try refresh(node: node, keepNames: node == self.node)
            let quarantined = try applyQuarantine(node: node, done: doneSet, attemptsOver: attemptsOver).places.filter { !doneSet.contains($0) }
            guard doneSet.count + quarantined.count == total else { return nil }
            done += doneSet.count
            names += try quarantined.sorted().map { try unitName(node: node, place: $0) }
        }
        try RunQuarantined.write(in: files.directory, unitCount: partition.unitCount, done: done, units: names)
        return names
    }

    /// Puts a quarantined unit back: removes its quarantine file, every begin record it has (its
    /// count of failed attempts starts again) and `run.quarantined`. Returns whether it was
    /// quarantined. Safe for a unit that was not.
    @discardableResult
    public func releaseUnit<Name: Collection<UInt8>>(_ unit: Name) throws -> Bool {
        let files = try requireFiles()
        let index = try unitIndex(unit, in: files)
        let partition = files.manifest.partition
        let owner = partition.node(ofUnit: index)
        let place = partition.localIndex(ofUnit: index)
        let wasQuarantined = try Quarantine.places(node: owner, in: files.quarantine)[place] != nil
        for entry in try files.begun.entries(node: owner) where entry.place == place {
            try files.begun.remove(node: owner, fileName: entry.fileName)
        }
        try Quarantine.remove(node: owner, place: place, in: files.quarantine)
        try files.directory.remove(RunQuarantined.fileName)
        try files.directory.sync()
        if wasQuarantined {
            try? EventLog.append(
                [
                    ("event", .string("release")), ("node", .number(Double(owner))), ("host", .string(HostName.current)),
                    ("pid", .number(Double(getpid()))), ("unit", .string(try unitName(node: owner, place: place))),
                ], in: files.directory)
        }
        return wasQuarantined
    }

    public func releaseUnit(_ unit: String) throws -> Bool { try releaseUnit(unit.utf8) }
}
