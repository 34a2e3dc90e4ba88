/// The units a worker's loop (`work()`, `gracefulstop_next_unit`) goes through: its own share's
/// remaining units front to back, then — balancing — units taken from other shares, chosen by
/// `Balance`. It only proposes: `beginUnit` claims, and skips what others hold or finished.
struct WorkQueue: Sendable {
    /// Manifest positions still to propose from this worker's own share (nil: not read yet).
    var own: [Int]? = nil
    var ownNext = 0
    /// Positions taken from the current victim, in the order to propose them.
    var taken: [Int] = []
    var takenNext = 0
    /// The share the current positions come from.
    var victim: Int? = nil
}

extension RunState {
    /// Starts the loop again from a fresh look at the state.
    public func resetWork() {
        workQueue.withLock { $0 = WorkQueue() }
    }

    /// The next unit for this worker's loop: its manifest position, or nil when nothing is left
    /// that it could begin (with `balance`, in any share). Call `beginUnit` on it.
    public func nextUnit(balance: Bool) throws -> Int? {
        let files = try requireFiles()
        let partition = files.manifest.partition
        if workQueue.withLock({ $0.own == nil }) {
            var own = node < partition.nodes ? try remainingUnitIndices(node: node) : []
            // A unit that failed on this very node goes last: another node may prove it fine (or
            // this node bad) first. Only under SLURM, where the records name their node.
            if let here = Environment.slurmNodeName(), !own.isEmpty {
                let failed = try failedOn(node: node, attemptsOver: Environment.restarts())
                let last = Set(failed.filter { $0.value.contains(here) }.keys.map { partition.unit(ofNode: node, local: $0) })
                own = own.filter { !last.contains($0) } + own.filter { last.contains($0) }
            }
            workQueue.withLock { $0.own = own }
        }
        if let unit = workQueue.withLock({ queue -> Int? in
            guard let own = queue.own, queue.ownNext < own.count else { return nil }
            queue.ownNext += 1
            return own[queue.ownNext - 1]
        }) {
            return unit
        }
        guard balance else { return nil }
        for _ in 0..<2 {
            if let unit = workQueue.withLock({ queue -> Int? in
                guard queue.takenNext < queue.taken.count else { return nil }
                queue.takenNext += 1
                return queue.taken[queue.takenNext - 1]
            }) {
                return unit
            }
            // The victim's half is used up: look again (another share may now have the most left).
            guard try chooseVictim() else { return nil }
        }
        return nil
    }

    /// Scans the other shares and takes the end of the one with the most left; false when none has
    /// anything left that a worker could begin.
    private func chooseVictim() throws -> Bool {
        let files = try requireFiles()
        let partition = files.manifest.partition
        let restart = Environment.restarts()
        let complete = try NodeCompletion.nodes(in: files.directory)
        var loads: [Balance.ShareLoad] = []
        for share in 0..<partition.nodes where share != node && !complete.contains(share) && partition.unitCount(ofNode: share) > 0 {
            let free = try freePlaces(share: share, attemptsOver: restart, keepNames: false)
            if !free.isEmpty { loads.append(Balance.ShareLoad(share: share, left: free.count)) }
        }
        guard let victim = Balance.victim(loads, me: node, shares: partition.nodes) else { return false }
        let free = try freePlaces(share: victim, attemptsOver: restart, keepNames: true)
        var places = Balance.takeFromEnd(free)
        // Units that failed on another node first: done here, they tell that node bad (BadNodes).
        if let here = Environment.slurmNodeName() {
            let failed = try failedOn(node: victim, attemptsOver: restart)
            let second = Set(free.filter { failed[$0].map { !$0.contains(here) } ?? false })
            places = free.filter { second.contains($0) } + places.filter { !second.contains($0) }
        }
        workQueue.withLock {
            $0.victim = victim
            $0.taken = places.map { partition.unit(ofNode: victim, local: $0) }
            $0.takenNext = 0
        }
        return !places.isEmpty
    }

    /// The places of `share` that nobody has done, quarantined or claimed (live), ascending.
    func freePlaces(share: Int, attemptsOver: Int, keepNames: Bool) throws -> [Int] {
        let files = try requireFiles()
        let done = try refresh(node: share, keepNames: keepNames)
        let found = try applyQuarantine(node: share, done: done, attemptsOver: attemptsOver)
        return (0..<files.manifest.partition.unitCount(ofNode: share)).filter {
            !done.contains($0) && !found.places.contains($0) && !found.held.contains($0)
        }
    }
}
