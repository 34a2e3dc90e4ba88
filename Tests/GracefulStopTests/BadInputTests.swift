import Testing

@testable import GracefulStop

/// The bad-input corpus (Tests/Fixtures/bad-input/unit-names.json), read by both test suites.
@Suite struct BadInputTests {
    struct Case {
        var bytes: [UInt8]
        var why: String
        var expect: String
    }

    static func corpus() throws -> [Case] {
        var reader = JSONReader(readFile(fixturesPath + "/bad-input/unit-names.json")!, source: "unit-names.json")
        var cases: [Case] = []
        try reader.readArray { reader in
            var entry = Case(bytes: [], why: "", expect: "")
            try reader.readObject { reader, key in
                let value = try reader.readString()
                switch key {
                case "hex":
                    var bytes: [UInt8] = []
                    var index = value.startIndex
                    while index < value.endIndex {
                        let next = value.index(index, offsetBy: 2)
                        bytes.append(UInt8(value[index..<next], radix: 16)!)
                        index = next
                    }
                    entry.bytes = bytes
                case "why": entry.why = value
                default: entry.expect = value
                }
            }
            cases.append(entry)
        }
        return cases
    }

    @Test func everyUnitNameInTheCorpusGetsItsExpectedOutcome() throws {
        let cases = try Self.corpus()
        #expect(cases.count >= 20)
        let temporary = TemporaryDirectory()
        for (number, entry) in cases.enumerated() {
            do {
                try UnitName.validate(entry.bytes)
                #expect(entry.expect == "ok", "\(entry.why): accepted")
                // Accepted names work end to end: a marker file name that is safe, and a real mark.
                var stem: [UInt8] = []
                MarkerName.appendStem(of: entry.bytes, to: &stem)
                #expect(stem.count + 5 <= 255 && !stem.contains(UInt8(ascii: "/")) && stem.first != UInt8(ascii: "."), "\(entry.why)")
                let table = try UnitTable(names: [entry.bytes])
                let state = try RunState.create(
                    at: temporary.sub("\(number)"), units: table, nodes: 1, partition: .block,
                    legacyDoneDirectory: nil, node: 0)
                try state.markDone(entry.bytes)
                #expect(try state.remainingUnits().isEmpty, "\(entry.why)")
            } catch let error as GracefulStopError {
                #expect(entry.expect != "ok" && error.message.contains(entry.expect), "\(entry.why): \(error.message)")
                #expect(error.code == .invalidArgument)
            }
        }
    }
}
