import Glibc
import Synchronization

/// Balancing: a worker whose own share has nothing left to begin takes units from other shares —
/// the shares nobody owns (fewer workers than shares), and the end of the share with the most
/// left (a slower or later worker's). The choice is a pure function of what a scan found
/// (`ShareLoad`), tested as a table; the claims that make it safe are `BeginRecords`.
public enum Balance {
    /// GRACEFULSTOP_BALANCE: `1` (the default) or `0`, which keeps the strict split.
    public static let variable = "GRACEFULSTOP_BALANCE"

    /// Whether a worker takes over units of other shares: GRACEFULSTOP_BALANCE, default on; off
    /// for the tasks of a host that work on each unit together (GRACEFULSTOP_SHARE=node), whose
    /// ranks must agree on every unit.
    public static func enabled() throws -> Bool {
        if !exclusiveClaims { return false }
        guard let text = Environment.value(variable) else { return true }
        switch text.lowercased() {
        case "1", "on", "yes", "true": return true
        case "0", "off", "no", "false": return false
        default: throw GracefulStopError(.invalidArgument, "\(variable)='\(text)' is not on (1) or off (0)")
        }
    }

    /// Whether a unit's begin record is an exclusive claim: always, except where the tasks of a
    /// host each begin the same unit on purpose (GRACEFULSTOP_SHARE=node).
    static var exclusiveClaims: Bool { Environment.value(Environment.shareVariable) != "node" }

    /// How `workers` workers (srun tasks, array tasks) cover `shares` shares, in a sentence for
    /// the job's log; nil when each worker has its own share.
    public static func coverage(workers: Int, shares: Int) -> String? {
        guard workers != shares, workers > 0 else { return nil }
        func range(_ from: Int, _ to: Int, _ noun: String) -> String { from == to ? "\(noun) \(from)" : "\(noun)s \(from)-\(to)" }
        if workers < shares {
            return "\(workers) worker\(workers == 1 ? "" : "s") for \(shares) shares: each begins with its own share, then takes over "
                + range(workers, shares - 1, "share")
                + ", which no worker owns, and the end of any slower share (\(variable)=0 keeps the strict split)"
        }
        return "\(workers) workers for \(shares) share\(shares == 1 ? "" : "s"): " + range(shares, workers - 1, "worker")
            + " own no share and take over units of the others, from the end of the share with the most left (\(variable)=0 keeps the strict split)"
    }

    private static let announced = Atomic<Bool>(false)

    /// Writes `line` to standard error, once per process (a state may be opened several times).
    static func announce(_ line: String) {
        guard !announced.exchange(true, ordering: .relaxed) else { return }
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// What a scan found of one share.
    public struct ShareLoad: Equatable, Sendable {
        public var share: Int
        /// Units neither done, quarantined, nor held by a live claim.
        public var left: Int

        public init(share: Int, left: Int) {
            self.share = share
            self.left = left
        }
    }

    /// The share to take units from: the one with the most left, other than `me`'s; of equals, the
    /// first after `me` (wrapping around `shares`), so that many thieves spread over equal shares.
    /// nil when no other share has anything left.
    public static func victim(_ loads: [ShareLoad], me: Int, shares: Int) -> Int? {
        let candidates = loads.filter { $0.share != me && $0.left > 0 }
        func distance(_ share: Int) -> Int { ((share - me) % shares + shares) % shares }
        return candidates.max { ($0.left, -distance($0.share)) < ($1.left, -distance($1.share)) }?.share
    }

    /// The places a thief takes from a victim whose free places (ascending) are `free`: the back
    /// half (at least one), last first — its owner works from the front, so the two meet only in
    /// the middle, where the claims decide.
    public static func takeFromEnd(_ free: [Int]) -> [Int] {
        guard !free.isEmpty else { return [] }
        return Array(free.suffix((free.count + 1) / 2).reversed())
    }
}

extension Balance {
    /// The shares whose units worker `worker` of `workers` answers for when its job decides on a
    /// requeue: its own share, and — when there are fewer workers than shares — the shares no
    /// worker owns, dealt round-robin (share s to worker s mod workers). A worker beyond the
    /// shares answers for none. `workers` nil (not known): its own share only.
    public static func responsibleShares(worker: Int, workers: Int?, shares: Int) -> [Int] {
        let own = worker < shares ? [worker] : []
        guard let workers, workers > 0, workers < shares, worker < workers else { return own }
        return own + stride(from: workers, to: shares, by: 1).filter { $0 % workers == worker }
    }
}
