import Glibc
import Synchronization

/// `should_stop()`: true once a trapped signal reached this process, a current stop request exists
/// in the state directory, or the deadline has passed.
///
/// The call is on the user's hot path, so it costs a flag read, a vDSO clock read and two atomic
/// loads. The stop requests are looked at only when the check interval has elapsed, and then with
/// one fresh open and fstat of the state directory (fresh, so that NFS asks its server): a request
/// is written by a rename into it, which changes its modification time, so the request files are
/// read only after such a change. A million calls in a second make two system calls (and a close),
/// not a million.
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
    /// Unix seconds when this attempt started: requests older than this are stale.
    public let attemptStart: Double
    /// Unix seconds after which to stop, if any.
    public let deadline: Double?
    private let deadlineMonotonic: Int64
    private let intervalNanoseconds: Atomic<Int64>
    private let nextFileCheck = Atomic<Int64>(0)
    /// The state directory's modification time (ns) when its request files were last read.
    private let directoryChangeSeen = Atomic<Int64>(.min)
    private let latchedReason = Atomic<Int32>(0)
    private let latchedDetail = Mutex<String>("")
    /// Writes what stopped this process, once, under gstop or SLURM (see `ProcessStop`).
    private let recorder: ProcessStopRecorder?
    /// The signal last recorded by any handle of this process, so that each signal is recorded
    /// once per process however many states it opened (the flag it comes from is per process too).
    private static let recordedSignal = Atomic<Int32>(0)

    init(directory: Directory?, job: String?, attemptStart: Double, deadline: Double?, intervalSeconds: Double,
         recorder: ProcessStopRecorder? = nil) {
        self.directory = directory
        self.recorder = recorder
        self.requestFiles = [StopRequest.fileName] + (job.map { [StopRequest.fileName(forJob: $0)] } ?? [])
        self.attemptStart = attemptStart
        self.deadline = deadline
        if let deadline {
            let remaining = (deadline - Clock.unixSeconds()) * 1e9
            deadlineMonotonic = Clock.coarseMonotonicNanoseconds() &+ Int64(max(min(remaining, 1e17), -1e17))
        } else {
            deadlineMonotonic = .max
        }
        intervalNanoseconds = Atomic(Int64(intervalSeconds * 1e9))
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
        let due = nextFileCheck.load(ordering: .relaxed)
        if now < due || directory == nil { return false }
        // One thread per interval looks at the file; the others go on.
        let next = now &+ intervalNanoseconds.load(ordering: .relaxed)
        guard nextFileCheck.compareExchange(expected: due, desired: next, ordering: .relaxed).exchanged else {
            return latchedReason.load(ordering: .relaxed) != 0
        }
        return lookForRequest()
    }

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
        // Where a cached "no such name" may be stale (NFS v3, see NameCacheTrust), only the
        // request files a fresh listing shows are opened: a lookup of an absent one would cache
        // its absence again.
        var files = requestFiles
        if !look.namesTrusted {
            var listed: [String] = []
            guard (try? directory.forEachEntry { name in
                if let file = requestFiles.first(where: { $0.utf8.elementsEqual(name) }) { listed.append(file) }
            }) != nil else { return false }
            files = listed
        }
        // Errors reading the request (a flaky NFS mount) are not a reason to stop; the next
        // interval looks again.
        for file in files {
            guard let request = try? StopRequest.read(from: directory, fileName: file), request.applies(toAttemptStartedAt: attemptStart)
            else { continue }
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
