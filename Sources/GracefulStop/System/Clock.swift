import Glibc

/// The two clocks gracefulstop reads. Both go through the vDSO on Linux: no system call.
enum Clock {
    /// Nanoseconds on CLOCK_MONOTONIC: for rate limits and deadlines, immune to clock changes.
    @inline(__always)
    static func monotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
    }

    /// Nanoseconds on CLOCK_MONOTONIC_COARSE: a few milliseconds of resolution (the kernel's tick)
    /// for a third of the cost, which is all a once-a-second rate limit on a hot path needs.
    @inline(__always)
    static func coarseMonotonicNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &now)
        return Int64(now.tv_sec) &* 1_000_000_000 &+ Int64(now.tv_nsec)
    }

    /// Unix time in seconds: for what is written to disk and compared across hosts.
    static func unixSeconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Sleeps `seconds` (whole and fractional), going on after a signal handler ran.
    static func sleep(_ seconds: Double) {
        var wait = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var left = timespec()
        while nanosleep(&wait, &left) == -1 && errno == EINTR { wait = left }
    }
}
