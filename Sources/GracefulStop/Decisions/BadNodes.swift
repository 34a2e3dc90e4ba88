/// A bad node, told from a bad unit: a pure function of the evidence (`NodeFailures`), tested as a
/// table (BadNodesTests).
///
/// A flaky node (a GPU with ECC errors, a full local disk, a bad driver) kills every unit it is
/// given, units that succeed elsewhere; a poison unit fails wherever it runs and is never done.
/// So the evidence against a node is a unit that failed on it and was then done on another node,
/// and `threshold` such units (default 2) make it bad. Failures in attempts that the job's own end
/// explains — the time limit's kill, a preemption, a node failure, a cancel: every unit in flight
/// on every node dies then — are no evidence.
public enum BadNodes {
    public struct BadNode: Equatable, Sendable {
        public var node: String
        /// The units that failed there and were done elsewhere, by name.
        public var units: [String]

        public init(node: String, units: [String]) {
            self.node = node
            self.units = units
        }

        /// "n2 (u012, u013 failed there and were done on n1)"
        var description: String {
            "\(node) (" + units.prefix(5).joined(separator: ", ") + (units.count > 5 ? " and \(units.count - 5) more" : "")
                + " failed there and were done elsewhere)"
        }
    }

    /// The default of `--exclude-bad-nodes`.
    public static let defaultThreshold = 2

    /// The nodes with at least `threshold` distinct units of evidence, by name.
    public static func find(_ evidence: [NodeFailures.Evidence], hardStopped: Set<NodeFailures.AttemptID>, threshold: Int) -> [BadNode] {
        guard threshold > 0 else { return [] }
        var units: [String: Set<String>] = [:]
        for item in evidence where item.doneOn != item.node && item.failed.contains(where: { !hardStopped.contains($0) }) {
            units[item.node, default: []].insert(item.unit)
        }
        return units.filter { $0.value.count >= threshold }.map { BadNode(node: $0.key, units: $0.value.sorted()) }.sorted { $0.node < $1.node }
    }

    /// What a requeue can exclude: the bad nodes not excluded already, unless that would leave
    /// the job's partition fewer nodes than the job needs (then none, and why).
    public static func exclusion(bad: [String], alreadyExcluded: [String], partitionNodes: Int?, jobNodes: Int?) -> (exclude: [String], note: String?)
    {
        let new = bad.filter { !alreadyExcluded.contains($0) }
        guard !new.isEmpty else { return ([], nil) }
        let all = alreadyExcluded + new
        guard let partitionNodes, let jobNodes else {
            return ([], "not excluded: SLURM did not say how many nodes the partition has and the job needs")
        }
        if partitionNodes - all.count < jobNodes {
            return (
                [], "not excluded: the partition's \(partitionNodes) nodes less \(all.count) excluded would leave fewer than the job's \(jobNodes)"
            )
        }
        return (all, nil)
    }
}
