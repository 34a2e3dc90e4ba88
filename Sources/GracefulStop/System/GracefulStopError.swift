import Glibc

/// The one error type of gracefulstop: a code the C ABI returns as a status, and a message that
/// names the path and the problem. Modelled on swift-system's `Errno`: data, not a class tree.
public struct GracefulStopError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The status codes of include/gracefulstop.h (`GRACEFULSTOP_E*`); 0 is success and is not a code.
    public enum Code: Int32, Sendable {
        /// A bad argument: empty unit name, NUL in a name, NULL pointer, bad option value.
        case invalidArgument = 1
        /// A unit that is not in the state's manifest.
        case unknownUnit = 2
        /// A system call failed (missing or unwritable directory, full disk, ...): see `errno`.
        case system = 3
        /// The state on disk is not readable: truncated or corrupt manifest, unknown format version.
        case badState = 4
        /// The state exists with a different unit list, node count or partition rule.
        case mismatch = 5
        /// A node number outside 0..<nodes.
        case nodeOutOfRange = 6
        /// A bug in gracefulstop; the message says where.
        case `internal` = 7
        /// A write failed for lack of space or quota on the state's filesystem (ENOSPC, EDQUOT).
        case diskFull = 8
    }

    public var code: Code
    public var message: String
    /// The errno behind a `.system` error, 0 otherwise.
    public var errno: Int32

    public init(_ code: Code, _ message: String, errno: Int32 = 0) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// A failed system call: "<what> <path>: <strerror> (errno N)", with what it means for the
    /// state where errno says so: no space and over quota are `.diskFull`.
    public static func system(_ what: String, _ path: String, errno: Int32) -> GracefulStopError {
        let reason = String(cString: strerror(errno))
        let meaning: String
        switch errno {
        case ENOSPC: meaning = ": no space left on the state's filesystem"
        case EDQUOT: meaning = ": over quota on the state's filesystem"
        case EROFS: meaning = ": the state's filesystem is read-only"
        default: meaning = ""
        }
        return GracefulStopError(
            errno == ENOSPC || errno == EDQUOT ? .diskFull : .system,
            "\(what) \(path): \(reason) (errno \(errno))\(meaning)", errno: errno)
    }

    /// No space or quota left where the state is.
    public var isDiskFull: Bool { code == .diskFull }

    public var description: String { message }
}
