/// A unit an attempt was on when its command died, and how many attempts have failed on it.
public struct UnitInFlight: Sendable, Equatable {
    public var unit: String
    public var attempts: Int
    public init(unit: String, attempts: Int) {
        self.unit = unit
        self.attempts = attempts
    }
}

/// What a job answers for when it decides on a requeue, with balancing: the units of its shares
/// that are left — less those that live workers of other jobs hold (they finish them) — plus the
/// units it began in other shares and left unfinished (nobody else may be left to do them).
public struct ShareAccount: Sendable, Equatable {
    public var done = 0
    public var total = 0
    /// Names of the quarantined units (not done) of the shares.
    public var quarantined: [String] = []
    /// Units left in the shares that a live attempt of another job holds.
    public var heldByOthers = 0
    /// Units of other shares that attempts of this job claimed and did not finish.
    public var claimedElsewhere = 0
    /// Units of other shares that the worker of this job's node finished (taken/): its progress
    /// there, for the crash-loop guard.
    public var doneElsewhere = 0

    /// The units the attempt just over left in flight without giving them up — what its command
    /// was doing when it died — with their failed attempts so far (this one included).
    public var diedOn: [UnitInFlight] = []

    /// Units of the shares neither done nor quarantined.
    public var remaining: Int { total - done - quarantined.count }
}

extension RunState {
    /// The account of `shares` (nil: every share) after an attempt whose restarts below
    /// `attemptsOver` are over, for `job` (this job's claims are over then, since its command has
    /// ended). Scans each share without a `complete/` file once; with `shares` given, also lists
    /// the other shares' begin records to find this job's unfinished claims, and their taken/
    /// records to count what the worker of node `worker` did there.
    public func account(shares: [Int]?, attemptsOver: Int, job: String?, worker: Int? = nil) throws -> ShareAccount {
        let files = try requireFiles()
        let partition = files.manifest.partition
        let scope = shares ?? Array(0..<partition.nodes)
        // Only records gracefulstop wrote count a share done: a stray one must not end its work.
        let complete = try NodeCompletion.trusted(
            NodeCompletion.nodes(in: files.directory).intersection(scope), partition: partition, in: files.directory)
        var account = ShareAccount()
        for share in scope where share < partition.nodes {
            let total = partition.unitCount(ofNode: share)
            account.total += total
            if total == 0 || complete.contains(share) {
                account.done += total
                continue
            }
            let done = try refresh(node: share, keepNames: share == node)
            if done.count == total { try NodeCompletion.write(node: share, unitCount: total, in: files.directory) }
            account.done += done.count
            let found = try applyQuarantineFindingLastAttempt(node: share, done: done, attemptsOver: attemptsOver, job: .some(job))
            account.diedOn += found.diedOn
            let quarantined = found.places.filter { !done.contains($0) && $0 < total }
            account.quarantined += try quarantined.sorted().map { try unitName(node: share, place: $0) }
            account.heldByOthers += found.held.subtracting(quarantined).count
        }
        guard let shares else { return account }
        let inScope = Set(shares)
        if let worker, try files.directory.contains(TakenUnits.directoryName) {
            for share in 0..<partition.nodes where !inScope.contains(share) {
                account.doneElsewhere += try TakenUnits.count(node: share, in: files.begun.taken)[worker] ?? 0
            }
        }
        for share in try files.begun.shares() where !inScope.contains(share) && share < partition.nodes {
            let mine = try files.begun.attempts(node: share, attemptsOver: attemptsOver, job: job).filter {
                $0.holder.map { $0.job == job } ?? false
            }
            guard !mine.isEmpty else { continue }
            let done = try refresh(node: share, keepNames: false)
            account.claimedElsewhere += Set(mine.map(\.entry.place).filter { !done.contains($0) }).count
            for record in mine where record.failed && record.holder?.restart == attemptsOver - 1 && !done.contains(record.entry.place) {
                let attempts = try files.begun.attempts(node: share, attemptsOver: attemptsOver, job: job)
                    .filter { $0.entry.place == record.entry.place && $0.failed }.count
                account.diedOn.append(UnitInFlight(unit: try unitName(node: share, place: record.entry.place), attempts: max(1, attempts)))
            }
        }
        return account
    }
}
