import CSignalShim
import Glibc

/// The supervised command: started in its own process group (so a stop can reach all of it), with
/// signals unblocked (the supervisor blocks its own) and SIGKILL as its parent-death signal (so it
/// never outlives a supervisor that was killed).
final class ChildProcess {
    let pid: pid_t
    let started = Clock.monotonicNanoseconds()
    private(set) var exit: ChildExit? = nil

    private init(pid: pid_t) { self.pid = pid }

    /// Starts `arguments` with `environment`. The executable is found on PATH first, so that a
    /// missing command is an error here rather than an exit code from a forked child.
    static func start(_ arguments: [String], environment: [String: String]) throws -> ChildProcess {
        guard let executable = Command.find(arguments[0]) else {
            let error = Command.notStartable(arguments[0])
            throw GracefulStopError(error.errno == EACCES ? .system : .invalidArgument, error.message, errno: error.errno)
        }
        // Everything the child touches is prepared before fork: after it, only system calls.
        let path = strdup(executable)!
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let failure = strdup("gstop: exec of \(executable) failed\n")!
        let failureLength = strlen(failure)
        defer {
            free(path)
            for argument in argv { free(argument) }
            for variable in envp { free(variable) }
            free(failure)
        }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        let parent = getpid()

        let pid = fork()
        if pid == -1 { throw GracefulStopError.system("cannot fork to start", arguments[0], errno: Glibc.errno) }
        if pid == 0 {
            setpgid(0, 0)
            _ = gracefulstop_shim_set_parent_death_signal(SIGKILL)
            if getppid() != parent { _exit(1) }  // the supervisor died before the line above
            sigprocmask(SIG_SETMASK, &noSignals, nil)
            execve(path, argv, envp)
            _ = write(2, failure, failureLength)
            _exit(127)
        }
        setpgid(pid, pid)  // also in the parent: whichever runs first, the group exists before any signal
        return ChildProcess(pid: pid)
    }

    /// Signals the command itself (its process group leader).
    func signal(_ number: Int32) { if exit == nil { kill(pid, number) } }

    /// Signals the command and everything it started in its group.
    func signalGroup(_ number: Int32) { kill(-pid, number) }

    /// Collects the exit status if the command has ended (never blocks).
    @discardableResult
    func reap() -> ChildExit? {
        if let exit { return exit }
        var status: Int32 = 0
        let result = retryingOnInterrupt { waitpid(pid, &status, WNOHANG) }
        guard result.result == pid else { return nil }
        exit = (status & 0x7F) == 0 ? .exited((status >> 8) & 0xFF) : .signaled(status & 0x7F)
        ended = Clock.monotonicNanoseconds()
        return exit
    }

    /// When the command was reaped: its running time is its own, not gstop's lookups after it.
    private var ended: Int64? = nil

    var runningSeconds: Double { Double((ended ?? Clock.monotonicNanoseconds()) - started) / 1e9 }
}
