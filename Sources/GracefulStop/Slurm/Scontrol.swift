/// The scontrol calls gstop makes. A missing or failing scontrol is an error that says so:
/// the decision never silently becomes "no requeue".
public enum Scontrol {
    /// `scontrol show job -o ID`; `jobName` as for `JobInfo.parse`.
    public static func showJob(_ id: String, jobName: String? = nil, whileWaiting: (() -> Void)? = nil, shielded: Bool = false) throws -> JobInfo {
        let result = try Command.run(["scontrol", "show", "job", "-o", id], whileWaiting: whileWaiting, shielded: shielded)
        guard result.status == 0 else {
            throw GracefulStopError(.system, "scontrol show job \(id) failed (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
        return try JobInfo.parse(result.output, jobName: jobName)
    }

    /// `scontrol --version`: the release as (major, minor), e.g. (24, 11) from "slurm-wlm 24.11.5".
    public static func version() throws -> SlurmRelease {
        let result = try Command.run(["scontrol", "--version"])
        guard result.status == 0, let release = SlurmRelease(parsing: result.output) else {
            throw GracefulStopError(.system, "scontrol --version printed no release (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
        return release
    }

    /// The node names of a hostlist expression ("n[1-3],gpu7"): `scontrol show hostnames`.
    public static func hostnames(_ list: String) throws -> [String] {
        let result = try Command.run(["scontrol", "show", "hostnames", list], shielded: true)
        guard result.status == 0 else {
            throw GracefulStopError(.system, "scontrol show hostnames \(list) failed (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
        return result.output.split(separator: "\n").map { String($0).trimmingSpaces }.filter { !$0.isEmpty }
    }

    /// How many nodes partition `name` has (TotalNodes=).
    public static func partitionNodeCount(_ name: String) throws -> Int {
        let result = try Command.run(["scontrol", "show", "partition", "-o", name], shielded: true)
        guard result.status == 0, let field = result.output.split(separator: " ").first(where: { $0.hasPrefix("TotalNodes=") }),
            let count = Int(field.dropFirst("TotalNodes=".count).prefix { $0.isNumber })
        else {
            throw GracefulStopError(
                .system, "scontrol show partition \(name) gave no TotalNodes (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
        return count
    }

    /// `scontrol update JobId=ID ExcNodeList=...`: SLURM takes it once the job is pending again
    /// (right after its requeue), not while it runs.
    public static func excludeNodes(_ id: String, _ nodes: [String]) throws {
        let result = try Command.run(["scontrol", "update", "JobId=\(id)", "ExcNodeList=\(nodes.joined(separator: ","))"], shielded: true)
        guard result.status == 0 else {
            throw GracefulStopError(
                .system,
                "scontrol update JobId=\(id) ExcNodeList=\(nodes.joined(separator: ",")) failed (exit \(result.status)): \(result.output.trimmingSpaces)"
            )
        }
    }

    /// `scontrol update JobId=ID TimeMin=M TimeLimit=L` (minutes; a nil field is left out): a job's
    /// owner may lower both on a pending job, not raise them.
    public static func updateLimits(_ id: String, timeMin: Int?, timeLimit: Int?) throws {
        let fields = [timeLimit.map { "TimeLimit=\($0)" }, timeMin.map { "TimeMin=\($0)" }].compactMap { $0 }
        guard !fields.isEmpty else { return }
        let arguments = ["scontrol", "update", "JobId=\(id)"] + fields
        let result = try Command.run(arguments, shielded: true)
        guard result.status == 0 else {
            throw GracefulStopError(
                .system, "\(arguments.joined(separator: " ")) failed (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
    }

    /// `scontrol requeue ID`.
    public static func requeue(_ id: String) throws {
        let result = try Command.run(["scontrol", "requeue", id])
        guard result.status == 0 else {
            throw GracefulStopError(.system, "scontrol requeue \(id) failed (exit \(result.status)): \(result.output.trimmingSpaces)")
        }
    }
}

/// A SLURM release, for the few places where releases behave differently.
public struct SlurmRelease: Sendable, Equatable, Comparable {
    public var major: Int
    public var minor: Int

    public init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// The first "MAJOR.MINOR" in text such as "slurm 23.02.7" or "slurm-wlm 24.11.5".
    public init?(parsing text: String) {
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            let parts = word.split(separator: ".")
            if parts.count >= 2, let major = Int(parts[0]), let minor = Int(parts[1]) {
                self.init(major, minor)
                return
            }
        }
        return nil
    }

    /// From 24.11 (seen here: 24.11 and 26.05 do, 22.05 does not), SLURM requeues a preempted job
    /// whose batch script exits during GraceTime by itself; a requeue of gstop's on top is carried
    /// over and requeues the next attempt again. Releases in between are not known here, so they
    /// get gstop's requeue: at worst one extra attempt, which finds the work done or goes on with it.
    public var requeuesPreemptedJobsThatExit: Bool { self >= SlurmRelease(24, 11) }

    public static func < (a: SlurmRelease, b: SlurmRelease) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    public var description: String { "\(major).\(minor < 10 ? "0" : "")\(minor)" }
}
