import Glibc
import Synchronization

/// The thread that looks at a state directory's stop requests, off every caller's thread, so that a
/// stalled shared filesystem never stalls `should_stop()`. One per process and state; of the
/// processes of one job on one host, one leads (its pid in the `RequestBoard`) and looks at the
/// directory once per check interval for all of them, while the others only watch that the
/// leader's beat stays fresh — a leader that exits, is killed or hangs in a stalled server's call
/// for more than three intervals is replaced by the first follower that notices. So the shared
/// filesystem sees one look per host per interval, however many processes call `should_stop()`.
///
/// Started by the first `should_stop()` that finds a look due (a process that never asks never
/// looks), again in a child after fork (threads do not survive it), and it ends after a quiet
/// spell without any asking (a handle long closed, a loop that has ended).
final class RequestWatcher: @unchecked Sendable {
    let board: RequestBoard
    private let directory: Directory
    private let requestFiles: [String]
    /// The shortest check interval any handle asked for.
    private let intervalNanoseconds: Atomic<Int64>
    /// CLOCK_MONOTONIC of the last `should_stop()` that found a look due.
    private let lastAsked = Atomic<Int64>(0)
    /// The fork epoch in which this process's thread runs (-1: none).
    private let runningEpoch = Atomic<Int>(-1)
    /// The directory's modification time (ns) when the leader last read the request files; only
    /// the watcher's thread touches it.
    private var changeSeen: Int64 = .min
    private var changeSeenAt: Double = 0

    /// A watcher ends after this long without a `should_stop()` asking.
    static let quietNanoseconds: Int64 = 30_000_000_000

    private init(board: RequestBoard, directory: Directory, requestFiles: [String], intervalNanoseconds: Int64) {
        self.board = board
        self.directory = directory
        self.requestFiles = requestFiles
        self.intervalNanoseconds = Atomic(intervalNanoseconds)
    }

    // MARK: - One per process and state

    /// Held weakly: a watcher lives while a handle (its StopCheck) or its running thread holds it,
    /// so a process that opens many states keeps no descriptor of those it closed.
    private struct Entry { weak var watcher: RequestWatcher? }
    private static let registry = Locked<[String: Entry]>([:])

    /// The watcher of `directory`'s requests `requestFiles` (the global file, and the job's).
    static func shared(directory: Directory, requestFiles: [String], intervalNanoseconds: Int64) -> RequestWatcher {
        let key = boardKey(path: directory.absolutePath, requestFiles: requestFiles)
        return registry.withLock { watchers in
            if let existing = watchers[key]?.watcher { return existing }
            watchers = watchers.filter { $0.value.watcher != nil }
            let watcher = RequestWatcher(
                board: RequestBoard(key: key), directory: directory, requestFiles: requestFiles,
                intervalNanoseconds: intervalNanoseconds)
            watchers[key] = Entry(watcher: watcher)
            return watcher
        }
    }

    /// FNV-1a (64 bits) of the state's path and its request files, in hex: the board's name.
    static func boardKey(path: String, requestFiles: [String]) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in (path + "\0" + requestFiles.joined(separator: "\0")).utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    // MARK: - Fork

    /// Counts forks in this process's children: a watcher whose thread started in another epoch
    /// has no thread here.
    nonisolated(unsafe) private static var forkEpochStorage = 0
    private static let atforkRegistered: Bool = {
        pthread_atfork(nil, nil, { RequestWatcher.forkEpochStorage &+= 1 })
        return true
    }()

    private static var forkEpoch: Int {
        _ = atforkRegistered
        return forkEpochStorage
    }

    // MARK: - Asking

    /// Called by `should_stop()` when a look is due: notes that somebody asks, and starts the
    /// thread when this process has none (the first time, after a fork, after a quiet spell).
    func ask(intervalNanoseconds interval: Int64, at now: Int64) {
        lastAsked.store(now, ordering: .relaxed)
        board.attach()
        var current = intervalNanoseconds.load(ordering: .relaxed)
        while interval < current {
            let (exchanged, original) = intervalNanoseconds.compareExchange(expected: current, desired: interval, ordering: .relaxed)
            if exchanged { break }
            current = original
        }
        let epoch = Self.forkEpoch
        let running = runningEpoch.load(ordering: .acquiring)
        guard running != epoch, runningEpoch.compareExchange(expected: running, desired: epoch, ordering: .acquiringAndReleasing).exchanged
        else { return }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        if pthread_create(
            &thread, nil,
            { context in
                let watcher = Unmanaged<RequestWatcher>.fromOpaque(context!).takeRetainedValue()
                watcher.run()
                return nil
            }, context) == 0
        {
            pthread_detach(thread)
        } else {
            Unmanaged<RequestWatcher>.fromOpaque(context).release()
            runningEpoch.store(-1, ordering: .releasing)  // the next due call tries again
        }
    }

    // MARK: - The thread

    private func run() {
        let epoch = Self.forkEpoch
        let me = getpid()
        while true {
            // A pause first: whoever started the thread has just looked itself.
            let interval = max(10_000_000, intervalNanoseconds.load(ordering: .relaxed))
            var pause = timespec(tv_sec: Int(interval / 1_000_000_000), tv_nsec: Int(interval % 1_000_000_000))
            var left = timespec()
            while nanosleep(&pause, &left) == -1 && Glibc.errno == EINTR { pause = left }
            let now = Clock.monotonicNanoseconds()
            if now &- lastAsked.load(ordering: .relaxed) > max(Self.quietNanoseconds, 10 &* interval) {
                break
            }
            var leading = board.leader == me
            if !leading {
                let leader = board.leader
                let stale = now &- board.beat > 3 &* interval &+ 1_000_000_000
                if leader == 0 || stale || kill(leader, 0) == -1 && Glibc.errno == ESRCH {
                    leading = board.takeLead(from: leader)
                }
            }
            if leading {
                look()
                board.beat(at: Clock.monotonicNanoseconds())
            }
        }
        board.resign()
        _ = runningEpoch.compareExchange(expected: epoch, desired: -1, ordering: .acquiringAndReleasing)
    }

    /// One look at the directory (a fresh open, so that NFS asks its server): the request files
    /// are read only when the directory changed (a request is renamed into it), and every time
    /// while that change is under two seconds old (coarse timestamps could hide a second one).
    private func look() {
        let started = Clock.monotonicNanoseconds()
        guard let look = try? directory.refresh() else { return }
        let changed = Int64(look.status.st_mtim.tv_sec) &* 1_000_000_000 &+ Int64(look.status.st_mtim.tv_nsec)
        if look.namesTrusted && changed == changeSeen && Double(changed) / 1e9 < Clock.unixSeconds() - 2 {
            board.confirm(lookStarted: started)
            return
        }
        guard let requests = StopRequest.readAll(requestFiles, in: directory, namesTrusted: look.namesTrusted) else { return }
        changeSeen = changed
        board.publish(requests, lookStarted: started)
    }
}
