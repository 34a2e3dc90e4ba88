import Glibc
import Synchronization

/// One page of memory where a host's watcher leaves what it last saw of a state's stop requests,
/// so that `should_stop()` reads memory and never the shared filesystem. The processes of one job
/// on one host share the page through `/dev/shm` (a file named after the state, the job and the
/// user; SLURM's job_container/tmpfs gives each job its own `/dev/shm`, which is all it needs), so
/// one of them looks at the state directory for all (`RequestWatcher`): the filesystem's load is
/// per host, not per process. Where `/dev/shm` cannot be used, the page is the process's own.
///
/// Every field is an atomic 64-bit word (the page is read and written by several processes and
/// threads at once); the texts are written under a sequence lock and read again when it moved.
final class RequestBoard: @unchecked Sendable {
    /// The two request files a job hears: `stop.request` and `stop.<job>.request`.
    static let slots = 2
    /// "GSTOPBR2": slots hold a request's identity (a board of the earlier layout, with times, is
    /// taken over and rewritten).
    private static let magic: Int64 = 0x4753_544F_5042_5232
    private static let pageSize = 4096
    /// Words of text per slot: 63 × 8 = 504 bytes of the request's sentence.
    private static let textWords = 63

    private enum Word: Int {
        case magic = 0
        /// The pid of the process whose watcher looks at the directory for this host (0: none).
        case leader = 1
        /// CLOCK_MONOTONIC (one clock for the host) when the leader last finished a look.
        case beat = 2
        /// Even when the texts are whole; odd while the leader writes them.
        case sequence = 3
        /// CLOCK_MONOTONIC when the look that the slots are current as of began: a process trusts
        /// them only from a look begun after it took its snapshot of the stale requests.
        case lookStarted = 4
        case slotsStart = 8
    }

    private static var slotWords: Int { 2 + textWords }  // identity, length, text

    /// The page's address: an empty page of nobody's until `attach()` maps the board, so that a
    /// process that opens a state but never asks `should_stop()` leaves nothing in /dev/shm.
    private let address: Atomic<Int>
    private var words: UnsafeMutablePointer<Atomic<Int64>> {
        UnsafeMutablePointer(bitPattern: address.load(ordering: .acquiring))!
    }
    private let key: String
    /// The file in /dev/shm once attached (nil: not attached, or the page is this process's own).
    private let attached = Locked<(done: Bool, file: String?)>((false, nil))
    var file: String? { attached.withLock { $0.file } }
    var shared: Bool { file != nil }

    /// A read-only page of zeros (an empty board) that every unattached board shows.
    private static let emptyPage: Int = {
        let memory = mmap(nil, pageSize, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(memory != MAP_FAILED && memory != nil, "cannot map one page of memory")
        return Int(bitPattern: memory!)
    }()

    /// The board of `key`, not yet attached: it reads as empty until `attach()`.
    init(key: String) {
        self.key = key
        address = Atomic(Self.emptyPage)
    }

    /// The board of `key`, attached.
    static func open(key: String) -> RequestBoard {
        let board = RequestBoard(key: key)
        board.attach()
        return board
    }

    /// GRACEFULSTOP_HOST_BOARD=0 keeps each process's board to itself (each process looks at the
    /// state directory on its own, as before boards were shared).
    static let sharingVariable = "GRACEFULSTOP_HOST_BOARD"

    /// Maps the board of the key in /dev/shm, created if missing; this process's own page when
    /// /dev/shm cannot be used (missing, read-only, full) or sharing is off. Once; what a watcher
    /// does before it writes the board.
    func attach() {
        attached.withLock { state in
            guard !state.done else { return }
            let (memory, file) = Self.map(key: key)
            state = (true, file)
            address.store(Int(bitPattern: memory), ordering: .releasing)
        }
    }

    private static func map(key: String) -> (UnsafeMutablePointer<Atomic<Int64>>, String?) {
        let name = "/dev/shm/gracefulstop-\(getuid())-\(key)"
        let descriptor =
            Environment.value(sharingVariable) == "0"
            ? -1
            : retryingOnInterrupt { Glibc.open(name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) }.result
        if descriptor >= 0 {
            defer { close(descriptor) }
            var info = stat()
            // A regular file of ours, grown to a page (ftruncate of a page that is already one
            // page long changes nothing; two creators race harmlessly).
            if fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == getuid(),
                info.st_size == pageSize || ftruncate(descriptor, off_t(pageSize)) == 0,
                let memory = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0), memory != MAP_FAILED
            {
                return (prepare(memory), name)
            }
        }
        // Private: a forked child gets its own copy, whose leader's beat then goes stale, and leads.
        let memory = mmap(nil, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(memory != MAP_FAILED && memory != nil, "cannot map one page of memory")
        return (prepare(memory!), nil)
    }

    /// Binds the page to atomic words. A new page is all zeros, which is a valid empty board; the
    /// magic word only marks it (a page of another layout would have another magic).
    private static func prepare(_ memory: UnsafeMutableRawPointer) -> UnsafeMutablePointer<Atomic<Int64>> {
        let words = memory.bindMemory(to: Atomic<Int64>.self, capacity: pageSize / 8)
        if words[Word.magic.rawValue].load(ordering: .acquiring) != magic {
            words[Word.magic.rawValue].store(magic, ordering: .releasing)
        }
        return words
    }

    private func word(_ index: Int) -> Int64 { words[index].load(ordering: .acquiring) }
    private func set(_ index: Int, _ value: Int64) { words[index].store(value, ordering: .releasing) }

    // MARK: - Leadership

    var leader: Int32 { Int32(truncatingIfNeeded: word(Word.leader.rawValue)) }
    var beat: Int64 { word(Word.beat.rawValue) }

    /// Becomes the leader in place of `previous` (the leader seen, or 0); false when another
    /// process took it first.
    func takeLead(from previous: Int32) -> Bool {
        words[Word.leader.rawValue].compareExchange(expected: Int64(previous), desired: Int64(getpid()), ordering: .acquiringAndReleasing).exchanged
    }

    func beat(at now: Int64) { set(Word.beat.rawValue, now) }

    /// Gives the lead up (a watcher that stops), so that another takes it at once. A leader that
    /// stops because nobody of its process asks any more also removes the file's name, so that
    /// /dev/shm keeps no board of a run long over: processes that map it go on sharing it, and one
    /// that starts later makes a new one.
    func resign() {
        guard words[Word.leader.rawValue].compareExchange(expected: Int64(getpid()), desired: 0, ordering: .acquiringAndReleasing).exchanged
        else { return }
        if let file { unlink(file) }
    }

    // MARK: - Requests

    /// The identity of the request in `slot`'s file (0: none): the word `should_stop()` reads.
    func identity(slot: Int) -> UInt64 { UInt64(bitPattern: word(Word.slotsStart.rawValue + slot * Self.slotWords)) }

    /// Says that the slots are still current as of a look begun at `lookStarted` (the directory
    /// did not change).
    func confirm(lookStarted: Int64) {
        let sequence = Word.sequence.rawValue
        words[sequence].add(1, ordering: .acquiringAndReleasing)
        set(Word.lookStarted.rawValue, lookStarted)
        words[sequence].add(1, ordering: .acquiringAndReleasing)
    }

    /// Writes what the leader found of each slot's file (nil: no request there) in a look begun at
    /// `lookStarted`.
    func publish(_ requests: [StopRequest?], lookStarted: Int64) {
        let sequence = Word.sequence.rawValue
        words[sequence].add(1, ordering: .acquiringAndReleasing)
        set(Word.lookStarted.rawValue, lookStarted)
        for (slot, request) in requests.prefix(Self.slots).enumerated() {
            let base = Word.slotsStart.rawValue + slot * Self.slotWords
            guard let request else {
                set(base, 0)
                continue
            }
            set(base, Int64(bitPattern: request.identity))
            let text = Self.cut(Array("\(request.by) at \(request.requestedAt): \(request.reason)".utf8), to: Self.textWords * 8)
            set(base + 1, Int64(text.count))
            for index in 0..<Self.textWords {
                var packed: UInt64 = 0
                for byte in 0..<8 where index * 8 + byte < text.count { packed |= UInt64(text[index * 8 + byte]) << (8 * byte) }
                set(base + 2 + index, Int64(bitPattern: packed))
            }
        }
        words[sequence].add(1, ordering: .acquiringAndReleasing)
    }

    /// The first `limit` bytes of UTF-8 `bytes`, not splitting a character.
    static func cut(_ bytes: [UInt8], to limit: Int) -> [UInt8] {
        guard bytes.count > limit else { return bytes }
        var end = limit
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }  // bytes[end] starts the first character left out
        return Array(bytes[..<end])
    }

    /// The first request on the board that is not the stale one of its slot (`stale[slot]`; 0:
    /// none was stale), from a look begun at or after `lookedSince` (CLOCK_MONOTONIC; an older
    /// look may show a request that the snapshot of stale ones had already seen replaced): "by at
    /// time: reason".
    func request(besides stale: [UInt64], lookedSince: Int64 = .min) -> String? {
        for _ in 0..<1000 {
            let before = word(Word.sequence.rawValue)
            if before & 1 == 1 { continue }
            var found: String? = nil
            for slot in 0..<Self.slots where word(Word.lookStarted.rawValue) >= lookedSince {
                let base = Word.slotsStart.rawValue + slot * Self.slotWords
                let identity = UInt64(bitPattern: word(base))
                guard identity != 0, identity != (slot < stale.count ? stale[slot] : 0) else { continue }
                let length = max(0, min(Int(word(base + 1)), Self.textWords * 8))
                var bytes: [UInt8] = []
                bytes.reserveCapacity(length)
                for index in 0..<length {
                    bytes.append(UInt8(truncatingIfNeeded: UInt64(bitPattern: word(base + 2 + index / 8)) >> (8 * (index % 8))))
                }
                found = String(decoding: bytes, as: UTF8.self)
                break
            }
            if word(Word.sequence.rawValue) == before { return found }
        }
        return nil
    }
}
