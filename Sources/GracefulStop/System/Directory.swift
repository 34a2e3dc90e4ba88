import Glibc
import Synchronization

/// An open directory: the descriptor that every file operation of the state works relative to, and
/// its path for error messages. Working through one descriptor (openat, fstatat, renameat) saves a
/// path walk per call and keeps every operation inside this directory.
final class Directory: Sendable {
    let path: String
    let fd: Int32
    /// `path` made absolute when it was opened, for `refresh()` (the working directory may change).
    let absolutePath: String
    /// Set once O_TMPFILE has failed here: every later exclusive write goes straight to the
    /// named temporary instead of failing the same way again.
    private let anonymousFilesUnsupported = Atomic<Bool>(false)
    /// Whether this directory is on NFS, and there whether this host's cached names of it may
    /// hide another host's change (see NameCacheTrust). Local filesystems are coherent.
    private let onNFS: Bool
    private let nameCache = Locked(NameCacheTrust())

    /// Opens `path`, creating it (and missing parents) first when `create` is true. Without
    /// `followingSymlink` a symbolic link at `path` is refused: a state's own directories are
    /// never links (the state directory itself may be one).
    init(opening path: String, create: Bool = false, followingSymlink: Bool = true) throws {
        let flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (followingSymlink ? 0 : O_NOFOLLOW)
        var fd = retryingOnInterrupt { open(path, flags) }
        // Created only when missing: an existing state under a parent this user may pass but not
        // list or write (another user's scratch) opens, and an error names the directory itself.
        if create && fd.result == -1 && fd.errno == ENOENT {
            try Directory.makeDirectories(path)
            fd = retryingOnInterrupt { open(path, flags) }
        }
        if fd.result == -1 {
            switch fd.errno {
            case ENOENT: throw GracefulStopError(.system, "directory \(path) does not exist", errno: ENOENT)
            case ELOOP where !followingSymlink, ENOTDIR where !followingSymlink && Directory.isSymbolicLink(path):
                throw GracefulStopError(
                    .badState, "\(path) is a symbolic link: gracefulstop follows none inside a state (docs/state-format.md)", errno: ELOOP)
            case ENOTDIR: throw GracefulStopError(.system, "\(path) is not a directory", errno: ENOTDIR)
            default: throw GracefulStopError.system("cannot open directory", path, errno: fd.errno)
            }
        }
        self.path = path
        self.fd = fd.result
        self.absolutePath = path.hasPrefix("/") ? path : Directory.workingDirectory() + "/" + path
        self.onNFS = Directory.isOnNFS(fd.result)
    }

    static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
    }

    /// NFS_SUPER_MAGIC: `statfs.f_type` of an NFS mount.
    private static let nfsMagic = 0x6969

    /// fstatfs(2), which Swift's Glibc module does not import (sys/vfs.h is outside it): found
    /// once in libc by name. `f_type` is the first field of struct statfs (a long, on Linux).
    private static let fileSystemStatus: (@convention(c) (Int32, UnsafeMutableRawPointer) -> Int32)? = {
        guard let symbol = dlsym(nil, "fstatfs") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, UnsafeMutableRawPointer) -> Int32).self)
    }()

    private static func isOnNFS(_ descriptor: Int32) -> Bool {
        guard let fileSystemStatus else { return false }
        var buffer = [Int](repeating: 0, count: 32)  // struct statfs is 120 bytes on x86_64 and arm64
        return buffer.withUnsafeMutableBytes { fileSystemStatus(descriptor, $0.baseAddress!) } == 0 && buffer[0] == nfsMagic
    }

    deinit { close(fd) }

    private static func workingDirectory() -> String {
        guard let buffer = getcwd(nil, 0) else { return "." }
        defer { free(buffer) }
        return String(cString: buffer)
    }

    /// What a fresh look at the directory found: its metadata, and whether the names and listing
    /// this host has cached of it may be trusted (always, off NFS).
    struct Look {
        let status: stat
        let namesTrusted: Bool
    }

    /// This directory's metadata as its filesystem knows it now, and every name and listing of it
    /// cached by this host brought up to date. On NFS an fstat of the descriptor held open is answered
    /// from the client's attribute cache (up to acdirmax, 60 s by default), and names looked up in it
    /// or listed from it stay cached as long; opening the directory afresh by its path makes the
    /// client ask the server (close-to-open consistency) and, when the directory changed, drop its
    /// cached listing and the names it had found absent. One open, fstat and close; on a local disk
    /// a few microseconds. Call it before reading what another host may have written.
    /// When the change may hide another in the same timestamp tick (NFS v3, see NameCacheTrust),
    /// the cached listing is dropped too (fadvise) and `namesTrusted` is false: then ask
    /// `contains`, never a lookup, for a name that may be missing.
    @discardableResult
    func refresh() throws -> Look {
        let opened = retryingOnInterrupt { open(absolutePath, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        if opened.result == -1 { throw GracefulStopError.system("cannot open directory", path, errno: opened.errno) }
        defer { close(opened.result) }
        var info = stat()
        try systemCall("cannot stat directory", path) { fstat(opened.result, &info) }
        guard onNFS else { return Look(status: info, namesTrusted: true) }
        let changeTime = Int64(info.st_ctim.tv_sec) &* 1_000_000_000 &+ Int64(info.st_ctim.tv_nsec)
        let trusted = nameCache.withLock { $0.look(changeTime: changeTime, at: Clock.monotonicNanoseconds()) }
        // The listing lives in the directory's page cache: dropping it makes the next readdir ask
        // the server, and its READDIRPLUS replaces the names cached as absent that it lists.
        if !trusted { _ = posix_fadvise(opened.result, 0, 0, POSIX_FADV_DONTNEED) }
        return Look(status: info, namesTrusted: trusted)
    }

    /// Whether `name` exists now, another host's recent change included: a refresh, then a lookup
    /// where cached names may be trusted, else a fresh listing (a lookup could answer from a
    /// stale "no such name" that nothing would ever correct; see NameCacheTrust).
    func contains(_ name: UnsafePointer<CChar>, display: @autoclosure () -> String) throws -> Bool {
        if try refresh().namesTrusted { return try exists(name, display: display()) }
        let wanted = UnsafeBufferPointer(start: UnsafeRawPointer(name).assumingMemoryBound(to: UInt8.self), count: strlen(name))
        var found = false
        try forEntries(until: { entry in
            found = entry.elementsEqual(wanted)
            return !found
        })
        return found
    }

    func contains(_ name: String) throws -> Bool {
        try name.withCString { (cName) throws -> Bool in try contains(cName, display: name) }
    }

    /// The path of `name` inside this directory, for messages.
    func pathOf(_ name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }

    /// `mkdir -p`: creates `path` and its missing parents; an existing directory is fine.
    static func makeDirectories(_ path: String) throws {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") where component != "." {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            let made = retryingOnInterrupt { mkdir(prefix, 0o755) }
            if made.result == -1 && made.errno != EEXIST {
                throw GracefulStopError.system("cannot create directory", prefix, errno: made.errno)
            }
        }
    }

    /// Opens (creating if asked) the subdirectory `name`.
    func subdirectory(_ name: String, create: Bool) throws -> Directory {
        if create {
            let made = retryingOnInterrupt { mkdirat(fd, name, 0o755) }
            if made.result == -1 && made.errno != EEXIST {
                throw GracefulStopError.system("cannot create directory", pathOf(name), errno: made.errno)
            }
        }
        return try Directory(opening: pathOf(name), followingSymlink: false)
    }

    /// Metadata of the entry `name`, or nil when it does not exist.
    func status(_ name: UnsafePointer<CChar>, display: @autoclosure () -> String) throws -> stat? {
        var info = stat()
        let result = retryingOnInterrupt { fstatat(fd, name, &info, 0) }
        if result.result == 0 { return info }
        if result.errno == ENOENT { return nil }
        throw GracefulStopError.system("cannot stat", pathOf(display()), errno: result.errno)
    }

    func exists(_ name: UnsafePointer<CChar>, display: @autoclosure () -> String) throws -> Bool {
        try status(name, display: display()) != nil
    }

    func exists(_ name: String) throws -> Bool {
        try name.withCString { (cName) throws -> Bool in try exists(cName, display: name) }
    }

    /// The most any file of a state is read to (a shard of millions of names fits); callers that
    /// read small records give their own, smaller bound.
    static let readLimit = 1 << 31
    /// The bound for one small record: a marker, a stop request, a claim, a quarantine record.
    static let recordLimit = 1 << 20

    /// The whole content of `name`, or nil when it does not exist. Only a regular file is read,
    /// and at most `limit` bytes of it: a FIFO, a device or a symlink to one (`/dev/zero`) in the
    /// state is an error that names it, never a hang or gigabytes of memory. (O_NONBLOCK: opening
    /// a FIFO would otherwise wait for a writer for ever; on a regular file it changes nothing.)
    ///
    /// `anyKind` is for files a user names that are not the state's (`gstop init --units <(...)`,
    /// `/dev/null`): a pipe or a device is read, blocking, to its end.
    func readFile(_ name: String, limit: Int = Directory.readLimit, anyKind: Bool = false) throws -> [UInt8]? {
        guard let (descriptor, info) = try openRegularFile(name, anyKind: anyKind) else { return nil }
        defer { close(descriptor) }
        let opened = (result: descriptor, errno: Int32(0))
        // Read straight into the result, sized by fstat (a shard of a million names is read with
        // no second copy); a file that grows meanwhile is read to its end all the same.
        guard Int(info.st_size) <= limit else {
            throw GracefulStopError(
                .badState, "\(pathOf(name)) is \(info.st_size) bytes, more than such a file may be (\(limit)): the state is damaged")
        }
        var content = [UInt8](repeating: 0, count: max(0, Int(info.st_size)) + 1)
        var filled = 0
        while true {
            if filled == content.count {
                guard filled <= limit else {
                    throw GracefulStopError(.badState, "\(pathOf(name)) grew past \(limit) bytes while read: the state is damaged")
                }
                content.append(contentsOf: repeatElement(0, count: max(4096, content.count)))
            }
            let count = try systemCall("cannot read", pathOf(name)) {
                content.withUnsafeMutableBytes { read(opened.result, $0.baseAddress! + filled, $0.count - filled) }
            }
            if count == 0 { break }
            filled += count
        }
        content.removeLast(content.count - filled)
        return content
    }

    /// Opens `name` for reading when it is a regular file (its descriptor and status; the caller
    /// closes it); nil when it does not exist. Anything else is an error naming it (see readFile).
    func openRegularFile(_ name: String, anyKind: Bool = false) throws -> (Int32, stat)? {
        let opened = retryingOnInterrupt { openat(fd, name, O_RDONLY | (anyKind ? 0 : O_NONBLOCK) | O_NOCTTY | O_CLOEXEC) }
        if opened.result == -1 {
            if opened.errno == ENOENT { return nil }
            throw GracefulStopError.system("cannot open", pathOf(name), errno: opened.errno)
        }
        var info = stat()
        guard fstat(opened.result, &info) == 0 else {
            let error = Glibc.errno
            close(opened.result)
            throw GracefulStopError.system("cannot stat", pathOf(name), errno: error)
        }
        if anyKind && info.st_mode & S_IFMT != S_IFDIR { return (opened.result, info) }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(opened.result)
            throw GracefulStopError(.badState, "\(pathOf(name)) is \(Directory.kind(of: info.st_mode)), not a regular file: the state is damaged")
        }
        return (opened.result, info)
    }

    /// What a file that is not a regular one is, for messages.
    static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// Everything on standard input.
    static func readStandardInput() throws -> [UInt8] {
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = try systemCall("cannot read", "standard input") { chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) } }
            if count == 0 { return content }
            content.append(contentsOf: chunk[0..<count])
        }
    }

    /// Writes `bytes` as `name` atomically and durably: a uniquely named temporary file is written,
    /// fsynced and renamed over `name`, then this directory is fsynced. A reader sees the old
    /// content or the whole new one, never a part; once this returns, the file survives kill -9 and
    /// power loss. rename(2) is atomic on local filesystems, NFS and Lustre alike, and needs no lock.
    ///
    /// With `exclusive`, an existing `name` is kept, and the result says whether this call created
    /// it. The file is then written with no name at all where the filesystem allows (O_TMPFILE) and
    /// linked into place: one directory change instead of a create and a rename, which is what
    /// several processes marking at once pay for, and a writer killed half-way leaves nothing
    /// behind. Elsewhere (NFS) the named temporary is linked (link(2) fails when the name exists,
    /// atomically on NFS too) and removed.
    ///
    /// Without `syncDirectory` the caller fsyncs this directory itself, once after many writes
    /// (a version-2 state's shards). Without `durable` nothing is fsynced: the file must only
    /// outlive its writer's process (a claim), which a close ensures, on NFS too.
    @discardableResult
    func writeAtomically(
        _ name: UnsafePointer<CChar>, _ bytes: UnsafeRawBufferPointer, exclusive: Bool = false,
        syncDirectory: Bool = true, durable: Bool = true, display: @autoclosure () -> String
    ) throws -> Bool {
        if exclusive && AnonymousFiles.enabled && !anonymousFilesUnsupported.load(ordering: .relaxed),
            let created = try linkAnonymousFile(name, bytes, durable: durable, display: display())
        {
            if syncDirectory { try sync() }
            return created
        }
        var linkedHere = true
        let temporary = TemporaryName.next()
        try temporary.withUnsafeBufferPointer { (tmp) in
            let tmpName = tmp.baseAddress!
            let created = retryingOnInterrupt { openat(fd, tmpName, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
            if created.result == -1 { throw GracefulStopError.system("cannot create", pathOf(display()), errno: created.errno) }
            var failure = Directory.writeSyncAndClose(created.result, bytes, durable: durable, path: pathOf(display()))
            if failure == nil && exclusive {
                var linked = retryingOnInterrupt { linkat(fd, tmpName, fd, name, 0) }
                // NFS: a name another host has just removed can answer ESTALE from this host's
                // cached handle; the kernel looks it up afresh on the next try.
                for _ in 0..<3 where linked.result == -1 && linked.errno == ESTALE {
                    linked = retryingOnInterrupt { linkat(fd, tmpName, fd, name, 0) }
                }
                if linked.result == -1 && linked.errno != EEXIST {
                    failure = .system("cannot link a temporary file to", pathOf(display()), errno: linked.errno)
                }
                linkedHere = linked.result == 0
                _ = unlinkat(fd, tmpName, 0)
            } else if failure == nil {
                let renamed = retryingOnInterrupt { renameat(fd, tmpName, fd, name) }
                if renamed.result == -1 { failure = .system("cannot rename a temporary file to", pathOf(display()), errno: renamed.errno) }
            }
            if let failure {
                _ = unlinkat(fd, tmpName, 0)
                throw failure
            }
        }
        if syncDirectory { try sync() }
        return linkedHere
    }

    /// The exclusive write through a file without a name (O_TMPFILE): written, fsynced, then
    /// linked as `name` through /proc/self/fd. Returns whether it created `name`, or nil when this
    /// filesystem has no such files or /proc is missing; the directory then remembers to use the
    /// named temporary from now on.
    private func linkAnonymousFile(
        _ name: UnsafePointer<CChar>, _ bytes: UnsafeRawBufferPointer, durable: Bool = true,
        display: @autoclosure () -> String
    ) throws -> Bool? {
        let opened = retryingOnInterrupt { openat(fd, ".", AnonymousFiles.openFlags | O_WRONLY | O_CLOEXEC, 0o644) }
        if opened.result == -1 {
            // EOPNOTSUPP: NFS, FUSE and others; EISDIR: kernels older than 3.11; EINVAL: some filesystems.
            if [EOPNOTSUPP, EISDIR, EINVAL].contains(opened.errno) {
                anonymousFilesUnsupported.store(true, ordering: .relaxed)
                return nil
            }
            throw GracefulStopError.system("cannot create", pathOf(display()), errno: opened.errno)
        }
        // Closed after the link: the file needs its descriptor until then, and once fsync has
        // succeeded on a filesystem with O_TMPFILE a close has nothing left to report.
        defer { close(opened.result) }
        try Directory.writeAndSync(opened.result, bytes, durable: durable, path: pathOf(display()))
        let linked = "/proc/self/fd/\(opened.result)".withCString { source in
            retryingOnInterrupt { linkat(AT_FDCWD, source, fd, name, AT_SYMLINK_FOLLOW) }
        }
        if linked.result == 0 { return true }
        if linked.errno == EEXIST { return false }
        if linked.errno == ENOENT && access("/proc/self/fd", F_OK) != 0 {
            anonymousFilesUnsupported.store(true, ordering: .relaxed)
            return nil
        }
        throw GracefulStopError.system("cannot link a new file to", pathOf(display()), errno: linked.errno)
    }

    /// Whether `createExclusively` creates files in place here: O_TMPFILE is off, or failed here.
    var createsInPlace: Bool { !AnonymousFiles.enabled || anonymousFilesUnsupported.load(ordering: .relaxed) }

    /// An exclusive, durable write of a file whose name alone carries its meaning (a done-marker:
    /// readers never look inside). Where files without a name work (local disks), the same as
    /// `writeAtomically(exclusive: true)`. Where they do not (NFS), the file is created in place
    /// (O_CREAT|O_EXCL), written, fsynced and closed, then the directory fsynced: about half the
    /// server requests of a named temporary linked into place, and just as safe for such a file.
    /// A crash mid-write leaves the name with short content, which still means what it says; a
    /// failed write removes the name again. Returns whether it created `name`.
    func createExclusively(
        _ name: UnsafePointer<CChar>, _ bytes: UnsafeRawBufferPointer,
        display: @autoclosure () -> String
    ) throws -> Bool {
        if AnonymousFiles.enabled && !anonymousFilesUnsupported.load(ordering: .relaxed),
            let created = try linkAnonymousFile(name, bytes, display: display())
        {
            try sync()
            return created
        }
        // In place from the first marker on (not through a named temporary once): one change to the
        // directory per marker, and no temporary name left behind by a kill.
        let created = retryingOnInterrupt { openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        if created.result == -1 {
            if created.errno == EEXIST {
                try sync()  // somebody else's: make sure their entry is durable before saying so
                return false
            }
            throw GracefulStopError.system("cannot create", pathOf(display()), errno: created.errno)
        }
        if let failure = Directory.writeSyncAndClose(created.result, bytes, path: pathOf(display())) {
            _ = unlinkat(fd, name, 0)
            throw failure
        }
        try sync()
        return true
    }

    /// Writes, fsyncs and closes a new file; the error, if any (the caller removes the file).
    /// NFS reports deferred write errors at close: a failed close is a failed write.
    private static func writeSyncAndClose(
        _ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, durable: Bool = true,
        path: @autoclosure () -> String
    ) -> GracefulStopError? {
        var failure: GracefulStopError? = nil
        do { try writeAndSync(descriptor, bytes, durable: durable, path: path()) } catch let error as GracefulStopError { failure = error } catch {
            failure = .system("cannot write", path(), errno: EIO)  // not thrown by writeAndSync; never dropped
        }
        if close(descriptor) == -1 && failure == nil { failure = .system("cannot write", path(), errno: Glibc.errno) }
        return failure
    }

    /// Writes all of `bytes` to `descriptor` and fsyncs it; errors name `path`.
    private static func writeAndSync(
        _ descriptor: Int32, _ bytes: UnsafeRawBufferPointer, durable: Bool = true, path: @autoclosure () -> String
    ) throws {
        var written = 0
        while written < bytes.count {
            written += try systemCall("cannot write", path()) { write(descriptor, bytes.baseAddress! + written, bytes.count - written) }
        }
        if durable { try systemCall("cannot fsync", path()) { fsync(descriptor) } }
    }

    @discardableResult
    func writeAtomically(_ name: String, _ bytes: [UInt8], exclusive: Bool = false, syncDirectory: Bool = true, durable: Bool = true) throws -> Bool {
        try name.withCString { (cName) in
            try bytes.withUnsafeBytes { (raw) in
                try writeAtomically(cName, raw, exclusive: exclusive, syncDirectory: syncDirectory, durable: durable, display: name)
            }
        }
    }

    /// fsync of the directory itself: makes the entries created or renamed in it durable.
    func sync() throws {
        try systemCall("cannot fsync directory", path) { fsync(fd) }
    }

    func remove(_ name: String) throws {
        let removed = retryingOnInterrupt { unlinkat(fd, name, 0) }
        if removed.result == -1 && removed.errno != ENOENT { throw GracefulStopError.system("cannot remove", pathOf(name), errno: removed.errno) }
    }

    /// Calls `body` with the name of every entry (without "." and ".."): one pass of readdir over a
    /// fresh descriptor, so concurrent scans never share a directory offset.
    func forEachEntry(_ body: (UnsafeBufferPointer<UInt8>) -> Void) throws {
        try forEntries(until: { name in
            body(name)
            return true
        })
    }

    /// `forEachEntry` until `body` returns false: a sample of a big directory reads
    /// its first pages (on NFS, a READDIR or two), not all of it.
    func forEntries(until body: (UnsafeBufferPointer<UInt8>) -> Bool) throws {
        let opened = retryingOnInterrupt { openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        if opened.result == -1 { throw GracefulStopError.system("cannot open directory", path, errno: opened.errno) }
        guard let stream = fdopendir(opened.result) else {
            let error = Glibc.errno
            close(opened.result)
            throw GracefulStopError.system("cannot read directory", path, errno: error)
        }
        defer { closedir(stream) }
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while true {
            Glibc.errno = 0
            guard let entry = readdir(stream) else {
                if Glibc.errno != 0 { throw GracefulStopError.system("cannot read directory", path, errno: Glibc.errno) }
                return
            }
            let name = UnsafeRawPointer(entry).advanced(by: nameOffset).assumingMemoryBound(to: UInt8.self)
            let length = strlen(name)
            if name[0] == UInt8(ascii: ".") && (length == 1 || (length == 2 && name[1] == UInt8(ascii: "."))) { continue }
            if !body(UnsafeBufferPointer(start: name, count: length)) { return }
        }
    }
}

/// Files created without a name (O_TMPFILE) for exclusive writes; see `Directory.writeAtomically`.
enum AnonymousFiles {
    /// O_TMPFILE, which Glibc defines as a macro Swift does not import: __O_TMPFILE (the same
    /// value on x86_64 and aarch64) with O_DIRECTORY.
    static let openFlags: Int32 = 0o20_000_000 | O_DIRECTORY
    /// GRACEFULSTOP_ANONYMOUS_FILES=0 makes every write use a named temporary, as on NFS (for tests
    /// of that path, and for a filesystem that claims O_TMPFILE but mishandles it). Read once.
    static let enabled: Bool = {
        guard let value = getenv("GRACEFULSTOP_ANONYMOUS_FILES") else { return true }
        return String(cString: value) != "0"
    }()
}

/// Names for temporary files that are unique across threads, processes and hosts without any
/// coordination: pid, a random number drawn once per process image, and a per-process counter.
/// They start with "." so that scans of marker directories skip them.
enum TemporaryName {
    private static let processRandom = UInt64.random(in: .min ... .max)
    private static let counter = Atomic<UInt64>(0)

    /// A NUL-terminated name.
    static func next() -> [CChar] {
        let serial = counter.add(1, ordering: .relaxed).newValue
        let name = ".tmp.\(getpid()).\(String(processRandom, radix: 16)).\(serial)"
        return Array(name.utf8CString)
    }
}
