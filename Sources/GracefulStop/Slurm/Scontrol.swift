/// The two scontrol calls gstop makes. A missing or failing scontrol is an error that says so:
/// the decision never silently becomes "no requeue".
public enum Scontrol {
    /// `scontrol show job -o ID`; `jobName` as for `JobInfo.parse`.
    public static func showJob(_ id: String, jobName: String? = nil) throws -> JobInfo {
        let result = try Command.run(["scontrol", "show", "job", "-o", id])
        guard result.status == 0 else {
            throw GracefulStopError(.system, "scontrol show job \(id) failed (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
        return try JobInfo.parse(result.output, jobName: jobName)
    }

    /// `scontrol requeue ID`.
    public static func requeue(_ id: String) throws {
        let result = try Command.run(["scontrol", "requeue", id])
        guard result.status == 0 else {
            throw GracefulStopError(.system, "scontrol requeue \(id) failed (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
    }
}
