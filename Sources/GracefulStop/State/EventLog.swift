import Glibc

/// `events.jsonl`: what happened to the run, one JSON object per line, appended by `gstop` at each
/// step of an attempt (`attempt_start`, `signal`, `child_exit`, `decision`). `gstop status` shows
/// it, and the crash-loop guard counts attempts that marked no unit from it.
///
/// Each line is one `write` to a file opened with O_APPEND, so lines from concurrent writers never
/// interleave on a local filesystem. NFS does not make O_APPEND atomic across hosts: there two
/// lines may rarely collide, and readers skip a line that does not parse.
public enum EventLog {
    public static let fileName = "events.jsonl"

    /// The most of one text field a line keeps: a stop reason of megabytes is cut, with a note.
    static let textLimit = 4096

    /// `text` cut to at most `limit` bytes of UTF-8 (at a character's edge), with a note of how
    /// much was cut.
    static func cut(_ text: String, to limit: Int) -> String {
        let bytes = text.utf8.count
        guard bytes > limit else { return text }
        var kept = Substring(text).utf8.prefix(limit)
        while let last = kept.last, last & 0xC0 == 0x80 { kept = kept.dropLast() }  // not inside a character
        if let last = kept.last, last >= 0xC0 { kept = kept.dropLast() }
        return String(decoding: kept, as: UTF8.self) + " … (\(bytes - kept.count) more bytes cut)"
    }

    private static func bounded(_ value: JSONValue) -> JSONValue {
        switch value {
        case .string(let text): return .string(cut(text, to: textLimit))
        case .array(let items): return .array(items.map(bounded))
        case .object(let fields): return .object(fields.map { ($0.0, bounded($0.1)) })
        default: return value
        }
    }

    /// Appends `fields` (with `time` first) as one line; `durable`: fsync'd before returning.
    static func append(_ fields: [(String, JSONValue)], in directory: Directory, durable: Bool = true) throws {
        var json = JSONWriter()
        json.value(bounded(.object([("time", .number((Clock.unixSeconds() * 1000).rounded() / 1000))] + fields)))
        json.raw("\n")
        // Not through a symbolic link, and never blocking on a FIFO put in its place (with
        // O_NONBLOCK its open fails, ENXIO, instead of waiting for a reader for ever).
        let opened = retryingOnInterrupt {
            openat(directory.fd, fileName, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        }
        if opened.result == -1 {
            if opened.errno == ELOOP || opened.errno == ENXIO {
                throw GracefulStopError(
                    .badState,
                    "\(directory.pathOf(fileName)) is \(opened.errno == ELOOP ? "a symbolic link" : "a FIFO"), not the events log gracefulstop writes: the state is damaged"
                )
            }
            throw GracefulStopError.system("cannot open", directory.pathOf(fileName), errno: opened.errno)
        }
        var info = stat()
        if fstat(opened.result, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            close(opened.result)
            throw GracefulStopError(
                .badState,
                "\(directory.pathOf(fileName)) is \(Directory.kind(of: info.st_mode)), not the events log gracefulstop writes: the state is damaged")
        }
        let bytes = json.bytes
        // NFS reports a write that found no space or quota only at fsync or close: each is checked,
        // or a line would be lost without a word (a 0-byte log on a full export).
        var failure: GracefulStopError? = nil
        let written = retryingOnInterrupt { bytes.withUnsafeBytes { write(opened.result, $0.baseAddress, $0.count) } }
        if written.result != bytes.count {
            failure = .system("cannot append to", directory.pathOf(fileName), errno: written.result == -1 ? written.errno : EIO)
        }
        if failure == nil, durable, fsync(opened.result) == -1 {
            failure = .system("cannot append to", directory.pathOf(fileName), errno: Glibc.errno)
        }
        if close(opened.result) == -1, failure == nil {
            failure = .system("cannot append to", directory.pathOf(fileName), errno: Glibc.errno)
        }
        if let failure { throw failure }
    }

    /// The events from the log's end back to the first one, going back, for which `stop` is true
    /// (it included), oldest first; every event when none is. The file is read backward a block at
    /// a time, so what an attempt's end needs — its own lines, the last decision — costs the length
    /// of that tail, not of the log (a big array's log after many requeues holds millions of
    /// lines). `keep` chooses the events returned (all by default); `stop` sees every event.
    ///
    /// With `only`, lines that do not contain those bytes are skipped unparsed (the `"job": "J"` of
    /// one job's lines): scanning a long log then costs a byte search per line, not a JSON parse.
    static func readBack(
        from directory: Directory, only needle: [UInt8]? = nil, until stop: (JSONValue) -> Bool, keep: (JSONValue) -> Bool = { _ in true }
    ) throws -> [JSONValue] {
        var found: [JSONValue] = []
        try scanBack(from: directory, only: needle) { value in
            guard let value else { return false }
            let stopping = stop(value)
            if stopping || keep(value) { found.append(value) }
            return stopping
        }
        return found.reversed()
    }

    /// Calls `visit` with each line from the last to the first — the event, or nil for a line that
    /// does not parse — until it returns true. Memory: one block and the line across its edge.
    static func scanBack(from directory: Directory, only needle: [UInt8]? = nil, _ visit: (JSONValue?) -> Bool) throws {
        guard let (descriptor, info) = try directory.openRegularFile(fileName) else { return }
        defer { close(descriptor) }
        let block = 1 << 20
        var end = Int(info.st_size)
        var carry: [UInt8] = []  // the start of a line whose beginning is in an earlier block
        var discarding = false  // inside an overlong line already counted: its rest is not a line
        func take(_ line: ArraySlice<UInt8>) -> Bool {
            if discarding {
                discarding = false
                return false
            }
            switch parse(line, only: needle) {
            case .skip: return false
            case .event(let value): return visit(value)
            }
        }
        while end > 0 {
            let start = max(0, end - block)
            var chunk = [UInt8](repeating: 0, count: end - start)
            var filled = 0
            while filled < chunk.count {
                let count = try systemCall("cannot read", directory.pathOf(fileName)) {
                    chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + filled, $0.count - filled, off_t(start + filled)) }
                }
                if count == 0 { break }
                filled += count
            }
            chunk.removeLast(chunk.count - filled)
            chunk += carry
            // Lines wholly inside: from the last back to the first newline; what precedes the
            // first newline may continue in the block before.
            var lineEnd = chunk.endIndex
            var index = chunk.endIndex
            while index > chunk.startIndex {
                index -= 1
                if chunk[index] == UInt8(ascii: "\n") {
                    if take(chunk[(index + 1)..<lineEnd]) { return }
                    lineEnd = index
                }
            }
            carry = Array(chunk[..<lineEnd])
            end = start
            // A line longer than 16 blocks is not an event gracefulstop writes: skipped whole.
            if carry.count > 16 * block {
                if !discarding, visit(nil) { return }
                carry = []
                discarding = true
            }
        }
        _ = take(carry[...])
    }

    /// What one line of the log is to a reader.
    private enum Line {
        /// Empty, or without the bytes looked for: not visited.
        case skip
        /// The event, or nil for a line that does not parse.
        case event(JSONValue?)
    }

    private static func parse(_ line: ArraySlice<UInt8>, only needle: [UInt8]?) -> Line {
        guard !line.isEmpty else { return .skip }
        if let needle, !EventLog.contains(line, needle) { return .skip }
        var reader = JSONReader(Array(line), source: fileName)
        guard let value = try? reader.readValue(), (try? reader.expectEnd()) != nil, value["event"] != nil else { return .event(nil) }
        return .event(value)
    }

    /// Calls `visit` with each line from the first to the last: the event, or nil for a line that
    /// does not parse. Memory: one block and the line across its edge, however long the log.
    static func scan(from directory: Directory, _ visit: (JSONValue?) -> Void) throws {
        guard let (descriptor, _) = try directory.openRegularFile(fileName) else { return }
        defer { close(descriptor) }
        let block = 1 << 20
        var chunk = [UInt8](repeating: 0, count: block)
        var offset = 0
        var carry: [UInt8] = []  // a line begun in an earlier block
        var discarding = false  // inside an overlong line already counted: its rest is not a line
        func take(_ line: ArraySlice<UInt8>) {
            if case .event(let value) = parse(line, only: nil) { visit(value) }
        }
        while true {
            let count = try systemCall("cannot read", directory.pathOf(fileName)) {
                chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress!, block, off_t(offset)) }
            }
            if count == 0 { break }
            offset += count
            var lineStart = 0
            for index in 0..<count where chunk[index] == UInt8(ascii: "\n") {
                if discarding {
                    discarding = false
                } else if carry.isEmpty {
                    take(chunk[lineStart..<index])
                } else {
                    carry += chunk[lineStart..<index]
                    take(carry[...])
                    carry = []
                }
                lineStart = index + 1
            }
            if !discarding { carry += chunk[lineStart..<count] }
            // A line longer than 16 blocks is not an event gracefulstop writes: skipped whole.
            if carry.count > 16 * block {
                visit(nil)
                carry = []
                discarding = true
            }
        }
        if !discarding { take(carry[...]) }  // a last line without its newline (being written, or cut short)
    }

    /// The bytes `"job": "J"` as the log writes them: the needle of job J's lines.
    static func jobNeedle(_ job: String) -> [UInt8] {
        var json = JSONWriter()
        json.raw("\"job\": ")
        json.string(job)
        return json.bytes
    }

    private static let rareBytes = Array("jkqvxzwy".utf8)

    /// Whether `line` holds `needle`: memchr to each place a rare byte of the needle could stand
    /// (the `j` of `"job"`, the `v` of `"event"`: once a line, where `"` is everywhere), then
    /// memcmp: glibc's vector code, many times faster than a byte loop on the megabytes of other
    /// jobs' lines a guard skips. (memmem is not in the Glibc module without _GNU_SOURCE.)
    static func contains(_ line: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard line.count >= needle.count else { return false }
        let pivot = needle.firstIndex { rareBytes.contains($0) } ?? 0
        return line.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { wanted in
                guard let base = haystack.baseAddress else { return false }
                let last = haystack.count - wanted.count  // the last offset a match may start at
                var start = 0
                while start <= last {
                    // The pivot byte of a match starting at `start`...`last`.
                    guard let found = memchr(base + start + pivot, Int32(needle[pivot]), last - start + 1) else { return false }
                    start = base.distance(to: UnsafeRawPointer(found)) - pivot
                    if memcmp(base + start, wanted.baseAddress!, wanted.count) == 0 { return true }
                    start += 1
                }
                return false
            }
        }
    }

    /// The bytes `"event": "E"` as the log writes them: the needle of one kind of line.
    static func eventNeedle(_ event: String) -> [UInt8] {
        var json = JSONWriter()
        json.raw("\"event\": ")
        json.string(event)
        return json.bytes
    }

    /// Every event that parses, oldest first, and how many lines did not (a write cut short by a
    /// kill, two hosts' appends that collided on NFS): skipped, never fatal. The whole log in
    /// memory: for tests and small logs; readers of a long one use `scan` or `scanBack`.
    static func readCounting(from directory: Directory) throws -> (events: [JSONValue], skipped: Int) {
        var skipped = 0
        var events: [JSONValue] = []
        try scan(from: directory) { value in
            if let value { events.append(value) } else { skipped += 1 }
        }
        return (events, skipped)
    }

    /// The events a run's history and report read (RunHistory, a sweep's finished work): of a
    /// million lines, the few per attempt.
    static func isHistory(_ event: JSONValue) -> Bool {
        switch event["event"]?.string {
        case "attempt_start", "child_exit", "decision", SweepProgress.event: return true
        default: return false
        }
    }

    /// The run's attempts (RunHistory) from the log of the state at `path`, and the lines skipped.
    /// The log is read forward a block at a time into the rows: memory grows with the attempts,
    /// not with the log. `last`: only the attempts of the last `last` attempt_start lines, read
    /// from the log's end (what an attempt needs of the lines before its start: nothing).
    public static func history(path: String, last: Int? = nil) throws -> (rows: [RunHistory.Row], skipped: Int) {
        let directory = try Directory(opening: path)
        var builder = RunHistory.Builder()
        var skipped = 0
        if let last {
            var starts = 0
            var lines: [JSONValue] = []
            guard last > 0 else { return ([], 0) }
            try scanBack(from: directory) { value in
                guard let value else {
                    skipped += 1
                    return false
                }
                guard isHistory(value) else { return false }
                lines.append(value)
                if value["event"]?.string == "attempt_start" { starts += 1 }
                return starts >= last
            }
            for line in lines.reversed() { builder.add(line) }
            // Lines of attempts that started before the last `last` (their ends, decisions) are
            // not rows of this view.
            return (builder.rows().filter { $0.start != nil }, skipped)
        }
        try scan(from: directory) { value in
            guard let value else {
                skipped += 1
                return
            }
            if isHistory(value) { builder.add(value) }
        }
        return (builder.rows(), skipped)
    }
}
