import Glibc

/// Runs a short command (scontrol, squeue) and captures what it prints. stdout and stderr share
/// one pipe, so a large error output can never block the command, and a failure's message is
/// whatever it printed.
enum Command {
    struct Result: Sendable {
        let status: Int32
        let output: String
    }

    /// The full path of `name` on PATH, or nil.
    static func find(_ name: String) -> String? {
        if case .found(let path) = locate(name) { return path }
        return nil
    }

    enum Location: Equatable {
        case found(String)
        case missing
        /// It exists, but this user may not run it (or may not enter a directory on its way).
        case notPermitted(String)
    }

    /// Where `name` is, telling a missing program from one this user cannot reach: a venv under a
    /// directory the job's user cannot enter is "permission denied", not "not found".
    static func locate(_ name: String) -> Location {
        func check(_ candidate: String) -> Location {
            var info = stat()
            if stat(candidate, &info) != 0 { return Glibc.errno == EACCES ? .notPermitted(candidate) : .missing }
            guard info.st_mode & S_IFMT == S_IFREG else { return .missing }
            return access(candidate, X_OK) == 0 ? .found(candidate) : .notPermitted(candidate)
        }
        if name.contains("/") { return check(name) }
        let path = Environment.value("PATH") ?? "/usr/local/bin:/usr/bin:/bin"
        var denied: Location = .missing
        for directory in path.split(separator: ":") {
            let location = check("\(directory)/\(name)")
            if case .found = location { return location }
            if case .notPermitted = location, denied == .missing { denied = location }
        }
        return denied
    }

    /// The error for a command that cannot be started, saying which of the two it is.
    static func notStartable(_ name: String) -> GracefulStopError {
        if case .notPermitted(let path) = locate(name) {
            return GracefulStopError(
                .system, "cannot run \(name): permission denied for \(path) (user \(getuid()) cannot execute it or enter a directory on its path)",
                errno: EACCES)
        }
        return GracefulStopError(.system, "command not found: \(name) (is it installed and on PATH?)", errno: ENOENT)
    }

    /// Runs `arguments` with signals unblocked in the child (the supervisor blocks its own).
    /// `whileWaiting` is called every 100 ms until it ends (the supervisor reaps its command
    /// meanwhile, so that the command's time is its own however long this takes).
    /// `shielded`: TERM stays blocked in the child, for scontrol calls made after a requeue, whose
    /// TERM reaches every process of the batch step (KillWait's KILL still ends it).
    static func run(_ arguments: [String], whileWaiting: (() -> Void)? = nil, shielded: Bool = false) throws -> Result {
        guard let executable = find(arguments[0]) else { throw notStartable(arguments[0]) }
        var pipeEnds: [Int32] = [0, 0]
        try systemCall("cannot create a pipe for", arguments[0]) { pipe(&pipeEnds) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        posix_spawn_file_actions_addclose(&actions, pipeEnds[1])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        if shielded { sigaddset(&noSignals, SIGTERM) }
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        if spawned != 0 { throw GracefulStopError.system("cannot run", executable, errno: spawned) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let whileWaiting {
                var ready = pollfd(fd: pipeEnds[0], events: Int16(POLLIN), revents: 0)
                if poll(&ready, 1, 100) == 0 {
                    whileWaiting()
                    continue
                }
            }
            let count = retryingOnInterrupt { chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) } }
            if count.result <= 0 { break }
            output.append(contentsOf: chunk[0..<count.result])
        }
        var status: Int32 = 0
        _ = retryingOnInterrupt { waitpid(pid, &status, 0) }
        let exitStatus = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(status: exitStatus, output: String(decoding: output, as: UTF8.self))
    }
}
