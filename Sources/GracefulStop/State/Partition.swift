/// Which node owns which unit: a pure function of the manifest (rule, node count, unit count), so
/// every node, every restart and the supervisor agree without talking to each other.
public enum PartitionRule: String, CaseIterable, Sendable {
    /// Unit i goes to node i mod nodes: each node gets a spread of the list (good when early and
    /// late units differ in cost).
    case roundRobin = "round-robin"
    /// Node k gets the k-th contiguous slice; slice sizes differ by at most one, larger slices
    /// first (the seed's `get_node_equations` style).
    case block = "block"

    /// Parses a rule name, with an error that lists the valid ones.
    public init(parsing name: String) throws {
        guard let rule = PartitionRule(rawValue: name) else {
            let valid = PartitionRule.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw GracefulStopError(.invalidArgument, "unknown partition rule '\(name)'; valid rules: \(valid)")
        }
        self = rule
    }
}

public struct Partition: Sendable, Equatable {
    public let rule: PartitionRule
    public let nodes: Int
    public let unitCount: Int

    /// The most nodes a state may have: far above any SLURM array or node count in use, low
    /// enough that per-node bookkeeping stays small.
    public static let maximumNodes = 1_000_000

    public init(rule: PartitionRule, nodes: Int, unitCount: Int) throws {
        guard nodes >= 1 else { throw GracefulStopError(.invalidArgument, "the node count must be at least 1 (got \(nodes))") }
        guard nodes <= Partition.maximumNodes else {
            throw GracefulStopError(.invalidArgument, "the node count \(nodes) is above the limit of \(Partition.maximumNodes)")
        }
        self.rule = rule
        self.nodes = nodes
        self.unitCount = unitCount
    }

    /// Throws `.nodeOutOfRange` unless `node` is in 0..<nodes.
    public func validate(node: Int, source: String = "") throws {
        guard (0..<nodes).contains(node) else {
            throw GracefulStopError(
                .nodeOutOfRange,
                "node \(node)\(source) is out of range: this state has \(nodes) node\(nodes == 1 ? "" : "s"), numbered 0 to \(nodes - 1)")
        }
    }

    private var blockSize: Int { unitCount / nodes }
    private var largerBlocks: Int { unitCount % nodes }

    /// The node that owns the unit at manifest position `unit`.
    public func node(ofUnit unit: Int) -> Int {
        switch rule {
        case .roundRobin:
            return unit % nodes
        case .block:
            let large = largerBlocks * (blockSize + 1)
            return unit < large ? unit / (blockSize + 1) : largerBlocks + (unit - large) / blockSize
        }
    }

    /// Where the unit at manifest position `unit` stands among its node's units (0 for the first):
    /// its place in the node's `units/` shard (version 2).
    public func localIndex(ofUnit unit: Int) -> Int {
        switch rule {
        case .roundRobin: return unit / nodes
        case .block: return unit - firstUnit(ofNode: node(ofUnit: unit))
        }
    }

    /// The manifest position of the `local`-th unit of `node` (the inverse of `localIndex`).
    public func unit(ofNode node: Int, local: Int) -> Int {
        switch rule {
        case .roundRobin: return node + local * nodes
        case .block: return firstUnit(ofNode: node) + local
        }
    }

    private func firstUnit(ofNode node: Int) -> Int { node * blockSize + min(node, largerBlocks) }

    /// The manifest positions of `node`'s units, in manifest order.
    public func units(ofNode node: Int) -> StrideTo<Int> {
        switch rule {
        case .roundRobin:
            return stride(from: node, to: unitCount, by: nodes)
        case .block:
            let start = firstUnit(ofNode: node)
            let count = blockSize + (node < largerBlocks ? 1 : 0)
            return stride(from: start, to: start + count, by: 1)
        }
    }

    /// How many units `node` owns.
    public func unitCount(ofNode node: Int) -> Int {
        switch rule {
        case .roundRobin: return unitCount / nodes + (node < unitCount % nodes ? 1 : 0)
        case .block: return blockSize + (node < largerBlocks ? 1 : 0)
        }
    }
}
