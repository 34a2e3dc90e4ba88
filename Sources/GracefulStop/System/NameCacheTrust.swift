/// Whether the names and listing of an NFS directory that this host has cached may be trusted
/// after a fresh look at the directory, or may hide a change another host made.
///
/// An NFS client drops what it cached of a directory when the directory's change attribute moves.
/// NFS v3 has none: the client uses the ctime, which the server keeps at its clock tick (10 ms in
/// the rig, 1 s on some filesystems). A host that looks during a tick and then a second change in
/// that same tick leave the ctime where it was, so the second change stays hidden from that host
/// for as long as nothing else changes (seen in the rig in 151 of 200 trials; v4.2 in 0). No one
/// can tell from one look whether a tick has ended, but every tick ends: a ctime first seen more
/// than `settleNanoseconds` ago can hide nothing that a read made now will not see. So a
/// directory's cache is read past (its listing dropped, names answered from a fresh listing
/// rather than a lookup) until this process has read it past once after its ctime settled.
/// Pure: the caller supplies the ctime and its monotonic clock.
struct NameCacheTrust: Sendable, Equatable {
    /// Longer than any server's timestamp tick (1 s on ext3 and some appliances).
    static let settleNanoseconds: Int64 = 2_000_000_000

    /// The ctime (ns) of the last look, when this process first saw it, and whether a read past
    /// the cache was made after it settled.
    private(set) var changeTime: Int64 = .min
    private(set) var firstSeen: Int64 = 0
    private(set) var settled = false

    /// One fresh look at the directory found `changeTime` at monotonic time `now`: true when the
    /// cached names may be trusted; false when this read must go past them (and counts as such).
    mutating func look(changeTime: Int64, at now: Int64) -> Bool {
        if changeTime != self.changeTime {
            self = NameCacheTrust(changeTime: changeTime, firstSeen: now, settled: false)
            return false
        }
        if settled { return true }
        // The tick of `changeTime` has surely ended: this read past the cache sees all it held.
        if now &- firstSeen >= Self.settleNanoseconds { settled = true }
        return false
    }
}
