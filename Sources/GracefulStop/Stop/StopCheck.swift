import Glibc
import Synchronization

/// `should_stop()`: true once a trapped signal reached this process, a current stop request exists
/// in the state directory, or the deadline has passed.
///
/// The call is on the user's hot path, so it costs a flag read, a vDSO clock read and a few atomic
/// loads, and never touches the shared filesystem: the stop requests are looked at by a
/// `RequestWatcher` thread (one per host for the processes of a job, through a `RequestBoard` in
/// /dev/shm), once per check interval, and `should_stop()` reads what it last saw from memory. A
/// stalled NFS server stalls the watcher, never the caller. A handle's first call looks itself (as
/// opening the state read it), and with an interval under 10 ms (0: every call) every call does, on
/// the caller's thread, as it asked.
/// Once a stop is seen it stays seen (latched): a loop never sees true, then false.
public final class StopCheck: Sendable {
    public enum Reason: Int32, Sendable {
        case none = 0
        case signal = 1
        case request = 2
        case deadline = 3
    }

    public static let defaultIntervalSeconds = 1.0

    private let directory: Directory?
    /// The request files that apply: the one for everybody, and the one for this job.
    private let requestFiles: [String]
    /// The requests that were there when this attempt started (they never apply to it).
    let stale: StaleRequests
    /// `stale`'s identities in `requestFiles`' order (0: none), for the board's words.
    private let staleIdentities: [UInt64]
    /// CLOCK_MONOTONIC when this handle was made (after `stale` was taken): the board is believed
    /// from looks begun since.
    private let created = Clock.monotonicNanoseconds()
    /// Unix seconds after which to stop, if any.
    public let deadline: Double?
    private let deadlineMonotonic: Int64
    private let intervalNanoseconds: Atomic<Int64>
    private let nextFileCheck = Atomic<Int64>(0)
    /// The state directory's modification time (ns) when its request files were last read.
    private let directoryChangeSeen = Atomic<Int64>(.min)
    private let latchedReason = Atomic<Int32>(0)
    private let latchedDetail = Locked<String>("")
    /// Writes what stopped this process, once, under gstop or SLURM (see `ProcessStop`).
    private let recorder: ProcessStopRecorder?
    /// The thread that looks at the requests for this process (and its host's others); nil
    /// without a state directory.
    private let watcher: RequestWatcher?
    /// Intervals below this are looked at by the caller itself.
    static let watchedIntervalNanoseconds: Int64 = 10_000_000
    /// The signal last recorded by any handle of this process, so that each signal is recorded
    /// once per process however many states it opened (the flag it comes from is per process too).
    private static let recordedSignal = Atomic<Int32>(0)

    /// `stale`: the requests there at the attempt's start (nil: those there now, read here).
    init(
        directory: Directory?, job: String?, stale: StaleRequests?, deadline: Double?, intervalSeconds: Double,
        recorder: ProcessStopRecorder? = nil
    ) {
        self.directory = directory
        self.recorder = recorder
        let requestFiles = [StopRequest.fileName] + (job.map { [StopRequest.fileName(forJob: $0)] } ?? [])
        self.requestFiles = requestFiles
        let stale = (stale ?? StaleRequests()).completed(for: requestFiles, in: directory)
        self.stale = stale
        staleIdentities = stale.identities(of: requestFiles)
        self.deadline = deadline
        if let deadline {
            let remaining = (deadline - Clock.unixSeconds()) * 1e9
            deadlineMonotonic = Clock.coarseMonotonicNanoseconds() &+ Int64(max(min(remaining, 1e17), -1e17))
        } else {
            deadlineMonotonic = .max
        }
        intervalNanoseconds = Atomic(Int64(intervalSeconds * 1e9))
        let files = requestFiles
        watcher = directory.map {
            RequestWatcher.shared(directory: $0, requestFiles: files, intervalNanoseconds: Int64(max(intervalSeconds, 0.01) * 1e9))
        }
    }

    /// Seconds between two looks at the stop-request file.
    public var intervalSeconds: Double {
        get { Double(intervalNanoseconds.load(ordering: .relaxed)) / 1e9 }
        set {
            intervalNanoseconds.store(Int64(max(0, newValue) * 1e9), ordering: .relaxed)
            nextFileCheck.store(0, ordering: .relaxed)
        }
    }

    @inline(__always)
    public func shouldStop() -> Bool {
        let signal = StopSignals.received
        if signal != 0 {
            if let recorder, Self.recordedSignal.load(ordering: .relaxed) != signal { record(signal: signal, with: recorder) }
            return true
        }
        if latchedReason.load(ordering: .relaxed) != 0 { return true }
        let now = Clock.coarseMonotonicNanoseconds()
        if now >= deadlineMonotonic {
            latch(.deadline, "the deadline \(deadline.map { String($0) } ?? "") (\(Environment.deadline)) has passed")
            return true
        }
        if let watcher, hasNewRequest(on: watcher.board), let found = watcher.board.request(besides: staleIdentities, lookedSince: created) {
            latch(.request, "stop requested by \(found)")
            return true
        }
        let due = nextFileCheck.load(ordering: .relaxed)
        if now < due || directory == nil { return false }
        // One thread per interval asks; the others go on.
        let interval = intervalNanoseconds.load(ordering: .relaxed)
        guard nextFileCheck.compareExchange(expected: due, desired: now &+ interval, ordering: .relaxed).exchanged else {
            return latchedReason.load(ordering: .relaxed) != 0
        }
        if let watcher, interval >= Self.watchedIntervalNanoseconds {
            watcher.ask(intervalNanoseconds: interval, at: now)
            // A handle's first call looks itself, as opening the state read it: a request that is
            // there already is seen at once, and a loop's first call costs what open() did.
            if due != 0 { return false }
        }
        return lookForRequest()
    }

    /// Two words of memory: a request on the board that was not there when the attempt started.
    @inline(__always)
    private func hasNewRequest(on board: RequestBoard) -> Bool {
        for slot in 0..<min(RequestBoard.slots, staleIdentities.count) {
            let identity = board.identity(slot: slot)
            if identity != 0 && identity != staleIdentities[slot] { return true }
        }
        return false
    }

    /// The caller's own look (intervals under 10 ms): a fresh open and fstat of the directory, the
    /// request files read only when it changed.
    private func lookForRequest() -> Bool {
        // A fresh look (Directory.refresh), not an fstat of the open descriptor: on NFS that one is
        // answered from the attribute cache, and another host's request went unseen for 30-60 s.
        guard let directory, let look = try? directory.refresh() else { return false }
        let changed = Int64(look.status.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(look.status.st_mtim.tv_nsec)
        // Unchanged since the last read: no new request. A change in the last two seconds is read
        // again each time, since filesystems with coarse timestamps could hide a second one.
        if look.namesTrusted && changed == directoryChangeSeen.load(ordering: .relaxed) && Double(changed) / 1e9 < Clock.unixSeconds() - 2 {
            return false
        }
        directoryChangeSeen.store(changed, ordering: .relaxed)
        // Errors reading the request (a flaky NFS mount) are not a reason to stop; the next
        // interval looks again.
        for (file, request) in zip(requestFiles, StopRequest.readAll(requestFiles, in: directory, namesTrusted: look.namesTrusted) ?? []) {
            guard let request, stale.applies(request, in: file) else { continue }
            latch(.request, "stop requested by \(request.by) at \(request.requestedAt): \(request.reason)")
            return true
        }
        return false
    }

    /// The first time a signal is seen: records it (the slow path, once per signal).
    private func record(signal: Int32, with recorder: ProcessStopRecorder) {
        let previous = Self.recordedSignal.load(ordering: .relaxed)
        guard Self.recordedSignal.compareExchange(expected: previous, desired: signal, ordering: .relaxed).exchanged else { return }
        recorder.record(.signal, signal: signal, detail: "received \(StopSignals.name(of: signal))")
    }

    func latch(_ reason: Reason, _ detail: String) {
        let first = latchedDetail.withLock { current -> Bool in
            guard latchedReason.load(ordering: .relaxed) == 0 else { return false }
            current = detail
            latchedReason.store(reason.rawValue, ordering: .relaxed)
            return true
        }
        if first, StopSignals.received == 0 { recorder?.record(reason, signal: 0, detail: detail) }
    }

    /// Why `shouldStop()` is true: the reason, the signal for `.signal`, and a sentence.
    public func reason() -> (reason: Reason, signal: Int32, detail: String) {
        let signal = StopSignals.received
        if signal != 0 { return (.signal, signal, "received \(StopSignals.name(of: signal))") }
        return latchedDetail.withLock { detail in
            (Reason(rawValue: latchedReason.load(ordering: .relaxed)) ?? .none, 0, detail)
        }
    }
}
