import Glibc

/// Runs a system call, retrying it while it fails with EINTR. The one place where EINTR is handled:
/// gracefulstop installs its handlers with SA_RESTART, but a handler installed by somebody else may
/// not have it, and a stop signal must never turn into a failed `mark_done`.
/// Not for close(2): on Linux the descriptor is gone even when close reports EINTR.
@inline(__always)
func retryingOnInterrupt<Result: BinaryInteger>(_ call: () -> Result) -> (result: Result, errno: Int32) {
    while true {
        let result = call()
        if result != -1 { return (result, 0) }
        let error = Glibc.errno
        if error != EINTR { return (result, error) }
    }
}

/// Runs a system call (retrying EINTR) and throws a `.system` error naming `what` and `path` when
/// it fails.
@inline(__always)
@discardableResult
func systemCall<Result: BinaryInteger>(
    _ what: @autoclosure () -> String, _ path: @autoclosure () -> String, _ call: () -> Result
) throws -> Result {
    let (result, error) = retryingOnInterrupt(call)
    if result == -1 { throw GracefulStopError.system(what(), path(), errno: error) }
    return result
}
