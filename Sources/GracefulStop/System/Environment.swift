import Glibc

/// The environment variables gracefulstop reads: their names are part of the public contract
/// (README, docs), so they live in one place.
public enum Environment {
    public static let stateDirectory = "GRACEFULSTOP_STATE_DIR"
    public static let nodeVariable = "GRACEFULSTOP_NODE"
    public static let deadline = "GRACEFULSTOP_DEADLINE"
    public static let attemptStart = "GRACEFULSTOP_ATTEMPT_START"
    /// The stop requests there when gstop started the attempt (StaleRequests): they never apply to it.
    public static let staleRequests = "GRACEFULSTOP_STALE_REQUESTS"
    public static let checkInterval = "GRACEFULSTOP_CHECK_INTERVAL"
    public static let signals = "GRACEFULSTOP_SIGNALS"
    /// Set by gstop for the command: the restart count (SLURM_RESTART_COUNT, or local restarts).
    public static let restartCount = "GRACEFULSTOP_RESTART_COUNT"
    /// Set by gstop for the command: "1" on a restart, "0" on the first attempt.
    public static let resume = "GRACEFULSTOP_RESUME"

    /// The whole environment of this process.
    public static func all() -> [String: String] {
        var values: [String: String] = [:]
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") { values[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
            entry += 1
        }
        return values
    }

    /// The restart count a command sees: GRACEFULSTOP_RESTART_COUNT (set by gstop), else
    /// SLURM_RESTART_COUNT, else 0.
    public static func restarts() -> Int {
        for name in [restartCount, "SLURM_RESTART_COUNT"] {
            if let text = value(name), let count = Int(text) { return count }
        }
        return 0
    }

    /// The value of `name`, nil when unset or empty.
    public static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        let text = String(cString: raw)
        return text.isEmpty ? nil : text
    }

    /// Whose share of the units a process works on ("node" in the state format). Chosen by
    /// GRACEFULSTOP_SHARE inside a SLURM job step.
    public static let shareVariable = "GRACEFULSTOP_SHARE"

    /// This process's share of the units, and where the number came from:
    /// GRACEFULSTOP_NODE; else SLURM_ARRAY_TASK_ID (one share per array task); else, under
    /// OpenMPI's `mpirun`, OMPI_COMM_WORLD_RANK (its daemons are one srun task per node, so every
    /// rank of a host has the same SLURM_PROCID: the rank is what tells them apart); else, inside
    /// an `srun` step, SLURM_PROCID (one share per task, so two tasks on a node never do the same
    /// units) or, with GRACEFULSTOP_SHARE=node, SLURM_NODEID (the tasks of a node work on its
    /// units together); else SLURM_NODEID (the batch script: its node); else 0.
    /// `tasks` is the step's task count (or mpirun's rank count) when the share is per task, or
    /// the array's task count.
    public static func node() throws -> (number: Int, source: String, tasks: Int?) {
        let share = value(shareVariable) ?? "task"
        guard share == "task" || share == "node" else {
            throw GracefulStopError(
                .invalidArgument,
                "\(shareVariable)='\(share)' is not a share kind: use task (one share per srun task, the default) or node (the tasks of a node share its units)"
            )
        }
        let inStep = value("SLURM_STEP_ID").flatMap { Int($0) }.map { $0 >= 0 } ?? false
        let perTask = inStep && share == "task"
        let mpiRank = share == "task" ? ["OMPI_COMM_WORLD_RANK"] : []
        for name in [nodeVariable, "SLURM_ARRAY_TASK_ID"] + mpiRank + [perTask ? "SLURM_PROCID" : "SLURM_NODEID"] {
            guard let text = value(name) else { continue }
            guard let number = Int(text), number >= 0 else {
                throw GracefulStopError(.invalidArgument, "\(name)='\(text)' is not a node number (a whole number from 0)")
            }
            let tasks: Int?
            switch name {
            case "SLURM_PROCID": tasks = (value("SLURM_STEP_NUM_TASKS") ?? value("SLURM_NTASKS")).flatMap { Int($0) }
            case "SLURM_ARRAY_TASK_ID": tasks = arrayTaskCount()
            case "OMPI_COMM_WORLD_RANK": tasks = value("OMPI_COMM_WORLD_SIZE").flatMap { Int($0) }
            default: tasks = nil
            }
            return (number, " (from \(name))", tasks)
        }
        return (0, "", nil)
    }

    /// How many tasks the array has when they are numbered from 0 (SLURM_ARRAY_TASK_COUNT, with
    /// SLURM_ARRAY_TASK_MIN 0 and a step of 1): then task i works on share i.
    static func arrayTaskCount() -> Int? {
        guard let count = value("SLURM_ARRAY_TASK_COUNT").flatMap({ Int($0) }), value("SLURM_ARRAY_TASK_MIN") == "0",
            let maximum = value("SLURM_ARRAY_TASK_MAX").flatMap({ Int($0) }), maximum == count - 1
        else { return nil }
        return count
    }

    /// The SLURM node this process runs on (SLURMD_NODENAME), nil outside a job: where a unit
    /// failed or was done, for telling a bad node from a bad unit (`BadNodes`).
    public static func slurmNodeName() -> String? { value("SLURMD_NODENAME") }

    /// The SLURM job this process belongs to, as stop requests scope it: ARRAY_TASK for an array
    /// task, else SLURM_JOB_ID (shared by every node of a job); nil outside SLURM.
    public static func job() -> String? { SlurmJob.current()?.logID }

    /// Unix seconds from a variable, nil when unset.
    static func unixTime(_ name: String) throws -> Double? {
        guard let text = value(name) else { return nil }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
            throw GracefulStopError(.invalidArgument, "\(name)='\(text)' is not a unix time in seconds")
        }
        return seconds
    }

    /// Seconds between two looks at the stop-request file; default 1.
    static func checkIntervalSeconds() throws -> Double {
        guard let text = value(checkInterval) else { return StopCheck.defaultIntervalSeconds }
        guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else {
            throw GracefulStopError(.invalidArgument, "\(checkInterval)='\(text)' is not a number of seconds")
        }
        return seconds
    }
}
