import Testing

@testable import GracefulStop

/// BadNodes as a table: evidence in, bad nodes out; and what a requeue may exclude.
@Suite struct BadNodesTests {
    typealias Attempt = NodeFailures.AttemptID

    static func evidence(_ node: String, _ unit: String, failed: [Attempt] = [Attempt(job: "7", restart: 0)], doneOn: String = "n1")
        -> NodeFailures.Evidence
    {
        NodeFailures.Evidence(node: node, share: 0, place: Int(unit.dropFirst()) ?? 0, unit: unit, failed: failed, doneOn: doneOn)
    }

    static let rows: [(name: String, evidence: [NodeFailures.Evidence], hard: Set<Attempt>, threshold: Int, bad: [String])] = [
        ("nothing failed", [], [], 2, []),
        ("one unit failed on n2 and was done elsewhere: not yet", [evidence("n2", "u1")], [], 2, []),
        ("two units: n2 is bad", [evidence("n2", "u1"), evidence("n2", "u2")], [], 2, ["n2"]),
        ("threshold 1", [evidence("n2", "u1")], [], 1, ["n2"]),
        ("off", [evidence("n2", "u1"), evidence("n2", "u2")], [], 0, []),
        ("one unit twice is one unit", [evidence("n2", "u1"), evidence("n2", "u1", failed: [Attempt(job: "7", restart: 1)])], [], 2, []),
        ("failures spread over nodes: none bad", [evidence("n2", "u1"), evidence("n3", "u2")], [], 2, []),
        ("the time limit killed them: no evidence", [evidence("n2", "u1"), evidence("n2", "u2")], [Attempt(job: "7", restart: 0)], 2, []),
        (
            "one killed by the limit, one crash of its own", [evidence("n2", "u1"), evidence("n2", "u2", failed: [Attempt(job: "7", restart: 1)])],
            [Attempt(job: "7", restart: 0)], 2, []
        ),
        ("another job's hard stop is not this one's", [evidence("n2", "u1"), evidence("n2", "u2")], [Attempt(job: "8", restart: 0)], 2, ["n2"]),
        ("done on the node itself: no evidence", [evidence("n2", "u1", doneOn: "n2"), evidence("n2", "u2")], [], 2, []),
        ("two bad nodes, sorted", [evidence("n3", "u1"), evidence("n3", "u2"), evidence("n2", "u3"), evidence("n2", "u4")], [], 2, ["n2", "n3"]),
    ]

    @Test(arguments: rows.indices)
    func find(_ index: Int) {
        let row = Self.rows[index]
        #expect(BadNodes.find(row.evidence, hardStopped: row.hard, threshold: row.threshold).map(\.node) == row.bad, "\(row.name)")
    }

    @Test func unitsAreNamed() {
        let bad = BadNodes.find([Self.evidence("n2", "u2"), Self.evidence("n2", "u1")], hardStopped: [], threshold: 2)
        #expect(bad == [BadNodes.BadNode(node: "n2", units: ["u1", "u2"])])
        #expect(bad[0].description == "n2 (u1, u2 failed there and were done elsewhere)")
    }

    @Test func exclusion() {
        #expect(BadNodes.exclusion(bad: ["n2"], alreadyExcluded: [], partitionNodes: 3, jobNodes: 2) == (["n2"], nil))
        #expect(BadNodes.exclusion(bad: ["n2"], alreadyExcluded: ["n4"], partitionNodes: 4, jobNodes: 2) == (["n4", "n2"], nil))
        #expect(BadNodes.exclusion(bad: ["n2"], alreadyExcluded: ["n2"], partitionNodes: 3, jobNodes: 2) == ([], nil))
        let tooFew = BadNodes.exclusion(bad: ["n2", "n3"], alreadyExcluded: [], partitionNodes: 3, jobNodes: 2)
        #expect(tooFew.exclude == [] && tooFew.note == "not excluded: the partition's 3 nodes less 2 excluded would leave fewer than the job's 2")
        #expect(BadNodes.exclusion(bad: ["n2"], alreadyExcluded: [], partitionNodes: nil, jobNodes: 2).exclude == [])
    }

    @Test func nodeNamesThatCanNameFiles() {
        #expect(NodeFailures.isFileSafe("gpu-a100.07_x"))
        #expect(
            !NodeFailures.isFileSafe("../etc") && !NodeFailures.isFileSafe(".hidden") && !NodeFailures.isFileSafe("")
                && !NodeFailures.isFileSafe("a b"))
    }
}
