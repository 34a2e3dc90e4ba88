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

    /// Appends `fields` (with `time` first) as one line; `durable`: fsync'd before returning.
    static func append(_ fields: [(String, JSONValue)], in directory: Directory, durable: Bool = true) throws {
        var json = JSONWriter()
        json.value(.object([("time", .number((Clock.unixSeconds() * 1000).rounded() / 1000))] + fields))
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

    /// Every event that parses, oldest first.
    static func read(from directory: Directory) throws -> [JSONValue] { try readCounting(from: directory).events }

    /// Every event that parses, and how many lines did not (a write cut short by a kill, two
    /// hosts' appends that collided on NFS): skipped, never fatal.
    static func readCounting(from directory: Directory) throws -> (events: [JSONValue], skipped: Int) {
        guard let bytes = try directory.readFile(fileName) else { return ([], 0) }
        var skipped = 0
        let events: [JSONValue] = bytes.split(separator: UInt8(ascii: "\n")).compactMap { line in
            var reader = JSONReader(Array(line), source: fileName)
            guard let value = try? reader.readValue(), (try? reader.expectEnd()) != nil, value["event"] != nil else {
                skipped += 1
                return nil
            }
            return value
        }
        return (events, skipped)
    }

    /// The run's attempts (RunHistory) from the log of the state at `path`, and the lines skipped.
    public static func history(path: String) throws -> (rows: [RunHistory.Row], skipped: Int) {
        let read = try readCounting(from: Directory(opening: path))
        return (RunHistory.rows(read.events), read.skipped)
    }
}
