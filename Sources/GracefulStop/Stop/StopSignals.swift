import CSignalShim
import Glibc

/// Which signals mean "stop gracefully", and the Swift side of installing their handlers (the
/// handlers themselves are C: Sources/CSignalShim).
///
/// Forked children (a multiprocessing.Pool's or a DataLoader's workers) get the handlers that were
/// there before ours (CSignalShim restores them in the child), so TERM kills a worker as it would
/// without gracefulstop, and `Pool.terminate()` works; the flag is inherited as it was at fork.
/// A child that wants to stop gracefully itself calls `install_signals()` again. exec(2) resets
/// handled signals to their default action, so programs the job starts are unaffected.
public enum StopSignals {
    /// SIGUSR1 (SLURM's `--signal=B:USR1@N` warning) and SIGTERM (the time limit, scancel).
    /// SIGINT is left alone so that Ctrl+C stays an immediate stop.
    public static let defaults: [Int32] = [SIGUSR1, SIGTERM]

    private static let names: [(String, Int32)] = [
        ("HUP", SIGHUP), ("INT", SIGINT), ("QUIT", SIGQUIT), ("USR1", SIGUSR1), ("USR2", SIGUSR2),
        ("TERM", SIGTERM), ("ALRM", SIGALRM), ("CONT", SIGCONT), ("XCPU", SIGXCPU), ("PWR", SIGPWR),
        // Named for messages about how a process ended; they cannot (or should not) be trapped.
        ("KILL", SIGKILL), ("SEGV", SIGSEGV), ("ABRT", SIGABRT), ("BUS", SIGBUS), ("FPE", SIGFPE), ("ILL", SIGILL),
        ("PIPE", SIGPIPE), ("STOP", SIGSTOP), ("CHLD", SIGCHLD),
    ]

    /// "SIGUSR1" for 10.
    public static func name(of signal: Int32) -> String {
        names.first { $0.1 == signal }.map { "SIG" + $0.0 } ?? "signal \(signal)"
    }

    /// Parses "USR1,TERM", "SIGUSR1 SIGTERM", "10,15" or "none" (an empty list).
    public static func parse(_ text: String) throws -> [Int32] {
        let words = text.split { $0 == "," || $0 == " " }.map(String.init)
        if words.count == 1 && words[0].lowercased() == "none" { return [] }
        return try words.map { word in
            let bare = word.uppercased().hasPrefix("SIG") ? String(word.uppercased().dropFirst(3)) : word.uppercased()
            if let match = names.first(where: { $0.0 == bare }) { return match.1 }
            if let number = Int32(word), number > 0, number < 65 { return number }
            throw GracefulStopError(.invalidArgument, "unknown signal '\(word)'; use names such as USR1, TERM, INT or numbers")
        }
    }

    /// The signals to trap when the caller names none: GRACEFULSTOP_SIGNALS, else `defaults`.
    public static func configured() throws -> [Int32] {
        guard let text = Environment.value(Environment.signals) else { return defaults }
        do { return try parse(text) } catch let error as GracefulStopError {
            throw GracefulStopError(.invalidArgument, "\(Environment.signals): \(error.message)")
        }
    }

    public static func install(_ signals: [Int32]) throws {
        for signal in signals {
            let result = gracefulstop_shim_install(signal)
            if result != 0 {
                throw GracefulStopError(.invalidArgument, "cannot trap \(name(of: signal)): \(String(cString: strerror(result)))", errno: result)
            }
        }
    }

    /// Restores the handlers that were there before; a handler installed after ours is left in place.
    public static func uninstall(_ signals: [Int32]) throws {
        for signal in signals {
            let result = gracefulstop_shim_uninstall(signal)
            if result == EINVAL { throw GracefulStopError(.invalidArgument, "\(name(of: signal)) cannot be trapped") }
        }
    }

    public static func isInstalled(_ signal: Int32) -> Bool { gracefulstop_shim_is_installed(signal) != 0 }

    /// The last trapped signal that reached this process, 0 when none.
    @inline(__always)
    public static var received: Int32 { gracefulstop_shim_last_signal() }

    /// Forgets a received signal (tests; a new attempt in the same process).
    public static func clear() { gracefulstop_shim_clear() }
}
