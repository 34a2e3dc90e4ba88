/// The SLURM job this process runs in, as its environment describes it.
public struct SlurmJob: Sendable, Equatable {
    /// SLURM_JOB_ID: for an array task, the task's own id (for the last task, equal to the array's).
    public var jobID: String
    /// SLURM_ARRAY_JOB_ID and SLURM_ARRAY_TASK_ID, for array tasks.
    public var arrayJobID: String?
    public var arrayTaskID: String?
    /// SLURM_RESTART_COUNT: how many times the job was requeued (unset on a first run: 0).
    public var restartCount: Int
    /// SLURM_JOB_NUM_NODES (or SLURM_NNODES): how many nodes the job has.
    public var nodeCount: Int
    /// SLURM_JOB_NAME: lets `scontrol show job` be read whatever the name holds.
    public var jobName: String?

    public init(
        jobID: String, arrayJobID: String? = nil, arrayTaskID: String? = nil, restartCount: Int = 0, nodeCount: Int = 1,
        jobName: String? = nil
    ) {
        self.jobID = jobID
        self.arrayJobID = arrayJobID
        self.arrayTaskID = arrayTaskID
        self.restartCount = restartCount
        self.nodeCount = nodeCount
        self.jobName = jobName
    }

    /// The job of this process, or nil outside SLURM (no SLURM_JOB_ID).
    public static func current() -> SlurmJob? {
        guard let jobID = Environment.value("SLURM_JOB_ID") else { return nil }
        let nodes = Environment.value("SLURM_JOB_NUM_NODES") ?? Environment.value("SLURM_NNODES")
        return SlurmJob(
            jobID: jobID, arrayJobID: Environment.value("SLURM_ARRAY_JOB_ID"), arrayTaskID: Environment.value("SLURM_ARRAY_TASK_ID"),
            restartCount: Environment.value("SLURM_RESTART_COUNT").flatMap { Int($0) } ?? 0,
            nodeCount: nodes.flatMap { Int($0) } ?? 1, jobName: Environment.value("SLURM_JOB_NAME"))
    }

    public var isArrayTask: Bool { arrayJobID != nil && arrayTaskID != nil }

    /// What `scontrol requeue` must name: an array task is `ARRAYID_TASKID` (never SLURM_JOB_ID,
    /// which for the last task equals the array's id and would requeue every task); the whole
    /// array only when asked; the job itself otherwise.
    public func requeueID(wholeArray: Bool) -> String {
        guard let arrayJobID, let arrayTaskID else { return jobID }
        return wholeArray ? arrayJobID : "\(arrayJobID)_\(arrayTaskID)"
    }

    /// What SLURM knows of the job now (`scontrol show job`).
    public func info(whileWaiting: (() -> Void)? = nil) throws -> JobInfo {
        try Scontrol.showJob(jobID, jobName: jobName, whileWaiting: whileWaiting)
    }

    /// The id that names every attempt of this job (requeues keep it): for the events log.
    public var logID: String { isArrayTask ? "\(arrayJobID!)_\(arrayTaskID!)" : jobID }
}
