import Glibc

/// Whether the state's filesystem takes a write now: what gstop asks before it starts a command and
/// after the command ended, so that it never requeues a job into a full disk or an exhausted quota
/// (every attempt would fail at its first mark). One small file, written, fsynced, closed and
/// removed — where NFS reports a lack of space or quota: at the fsync or the close.
enum SpaceProbe {
    static let size = 4096

    /// The failure when the state cannot be written for lack of space or quota, or because its
    /// filesystem is read-only; nil when it can (or fails otherwise: that is not this probe's news).
    static func failure(in directory: Directory) -> GracefulStopError? {
        // A temporary's name: readers skip it, and gstop tidies one a kill left behind.
        let name = ".tmp.space-probe.\(getpid())"
        let opened = retryingOnInterrupt { openat(directory.fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644) }
        let what = "cannot write a file in"
        if opened.result == -1 { return relevant(.system(what, directory.path, errno: opened.errno)) }
        defer { _ = unlinkat(directory.fd, name, 0) }
        let bytes = [UInt8](repeating: 0, count: size)
        let written = retryingOnInterrupt { bytes.withUnsafeBytes { write(opened.result, $0.baseAddress, $0.count) } }
        var failure: GracefulStopError? = nil
        if written.result != size { failure = .system(what, directory.path, errno: written.result == -1 ? written.errno : ENOSPC) }
        if failure == nil, fsync(opened.result) == -1 { failure = .system(what, directory.path, errno: Glibc.errno) }
        if close(opened.result) == -1 && failure == nil { failure = .system(what, directory.path, errno: Glibc.errno) }
        return failure.flatMap(relevant)
    }

    private static func relevant(_ error: GracefulStopError) -> GracefulStopError? {
        error.isDiskFull || error.errno == EROFS ? error : nil
    }
}
