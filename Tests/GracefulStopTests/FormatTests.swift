import Testing

@testable import GracefulStop

@Suite struct MarkerNameTests {
    @Test func matchesTheDocumentedEncodingInTheFixtures() throws {
        let pairs = try Expected.markerNames()
        #expect(pairs.count >= 15)
        for (unit, fileName) in pairs {
            #expect(MarkerName.fileName(of: unit) == fileName, "unit \(UnitName.preview(unit.utf8))")
        }
    }

    @Test func fileNamesAreSafeAndDecodeBack() throws {
        let units = try Expected.markerNames().map(\.0) + ["a", ".", "...", "/", "../../etc/passwd", "%", "+", "\u{1F600}"]
        for unit in units {
            let fileName = MarkerName.fileName(of: unit)
            #expect(!fileName.contains("/"))
            #expect(!fileName.hasPrefix("."))
            #expect(fileName.utf8.count <= 255)
            switch MarkerName.decode(fileName: fileName) {
            case .unit(let decoded): #expect(decoded == unit)
            case .hashed: #expect(unit.utf8.count + 5 > 255 || fileName.utf8.count > unit.utf8.count)
            case .notAMarker: Issue.record("\(fileName) did not decode")
            }
        }
    }

    @Test func longNamesAreHashedAndDistinct() {
        let a = MarkerName.fileName(of: String(repeating: "x", count: 1000))
        let b = MarkerName.fileName(of: String(repeating: "x", count: 999) + "y")
        #expect(a != b)
        #expect(a.contains("+") && b.contains("+"))
        #expect(MarkerName.decode(fileName: a) == .hashed)
        // The longest plain name: 250 bytes + ".done" is exactly 255.
        #expect(!MarkerName.fileName(of: String(repeating: "y", count: 250)).contains("+"))
        #expect(MarkerName.fileName(of: String(repeating: "y", count: 251)).contains("+"))
    }

    @Test func foreignFilesAreNotMarkers() {
        for name in [".tmp.1.2.3", "README", "eq.done.partial", "eq.DONE", "%zz.done", "%41.done", ".done", "a%2fb.done"] {
            #expect(MarkerName.decode(fileName: name) == .notAMarker, "\(name)")
        }
    }

    @Test func unitNameRules() {
        #expect(throws: GracefulStopError.self) { try UnitName.validate([UInt8]()) }
        #expect(throws: GracefulStopError.self) { try UnitName.validate(Array("a\0b".utf8)) }
        #expect(throws: GracefulStopError.self) { try UnitName.validate([0xFF, 0xFE]) }
        #expect(throws: GracefulStopError.self) { try UnitName.validate([UInt8](repeating: 0x61, count: 4097)) }
        #expect(throws: Never.self) { try UnitName.validate([UInt8](repeating: 0x61, count: 4096)) }
        #expect(throws: Never.self) { try UnitName.validate(Array("a/b c\n..".utf8)) }
    }
}

@Suite struct SHA256Tests {
    // Test vectors from FIPS 180-4's examples (NIST CSRC).
    @Test func knownDigests() {
        func hex(_ text: String) -> String { String(decoding: SHA256.hexDigest(Array(text.utf8)), as: UTF8.self) }
        #expect(hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}

@Suite struct JSONTests {
    @Test func stringsRoundTrip() throws {
        for text in ["plain", "quote\"back\\slash", "new\nline\ttab\r", "\u{1}\u{1F}", "ünï ✓ 日本 \u{1F600}", ""] {
            var writer = JSONWriter()
            writer.string(text)
            var reader = JSONReader(writer.bytes, source: "test")
            #expect(try reader.readString() == text)
            try reader.expectEnd()
        }
    }

    @Test func escapesAndSurrogates() throws {
        var reader = JSONReader(Array(#""\u00e9\ud83d\ude00\/""#.utf8), source: "test")
        #expect(try reader.readString() == "é\u{1F600}/")
        var lone = JSONReader(Array(#""\ud83d""#.utf8), source: "test")
        #expect(throws: GracefulStopError.self) { try lone.readString() }
    }

    @Test func errorsNameTheSourceAndOffset() {
        var reader = JSONReader(Array("{\"a\": [1, 2".utf8), source: "/x/manifest.json")
        do {
            try reader.skipValue()
            Issue.record("no error")
        } catch let error as GracefulStopError {
            #expect(error.code == .badState)
            #expect(error.message.contains("/x/manifest.json"))
            #expect(error.message.contains("truncated"))
        } catch { Issue.record("\(error)") }
    }
}

@Suite struct PartitionTests {
    @Test(arguments: PartitionRule.allCases)
    func everyUnitHasExactlyOneNodeInManifestOrder(rule: PartitionRule) throws {
        for unitCount in [1, 2, 7, 10, 64, 101] {
            for nodes in [1, 2, 3, 4, 7, 16, 200] {
                let partition = try Partition(rule: rule, nodes: nodes, unitCount: unitCount)
                var seen = [Int](repeating: 0, count: unitCount)
                var sizes: [Int] = []
                for node in 0..<nodes {
                    let units = Array(partition.units(ofNode: node))
                    #expect(units == units.sorted())
                    #expect(units.count == partition.unitCount(ofNode: node))
                    for unit in units {
                        seen[unit] += 1
                        #expect(partition.node(ofUnit: unit) == node)
                    }
                    if rule == .block, let first = units.first { #expect(units == Array(first..<(first + units.count))) }
                    sizes.append(units.count)
                }
                #expect(seen.allSatisfy { $0 == 1 }, "\(rule) \(unitCount) units \(nodes) nodes")
                #expect(sizes.max()! - sizes.min()! <= 1)
            }
        }
    }

    @Test func knownAssignments() throws {
        let roundRobin = try Partition(rule: .roundRobin, nodes: 3, unitCount: 10)
        #expect(Array(roundRobin.units(ofNode: 0)) == [0, 3, 6, 9])
        let block = try Partition(rule: .block, nodes: 3, unitCount: 10)
        #expect(Array(block.units(ofNode: 0)) == [0, 1, 2, 3])
        #expect(Array(block.units(ofNode: 2)) == [7, 8, 9])
    }

    @Test func badNodeCounts() {
        #expect(throws: GracefulStopError.self) { try Partition(rule: .block, nodes: 0, unitCount: 3) }
        #expect(throws: GracefulStopError.self) { try Partition(rule: .block, nodes: 1_000_001, unitCount: 3) }
        #expect(throws: GracefulStopError.self) { try PartitionRule(parsing: "random") }
    }
}

@Suite struct ManifestTests {
    @Test func badManifestsGiveClearErrors() throws {
        let cases = try Expected.badManifests()
        #expect(cases.count >= 10)
        for (name, status, message) in cases {
            let path = fixturesPath + "/bad-manifests/" + name
            do {
                _ = try RunState.open(at: path, node: 0)
                Issue.record("\(name): opened")
            } catch let error as GracefulStopError {
                #expect(error.code.rawValue == status, "\(name): \(error.message)")
                #expect(error.message.contains(message), "\(name): \(error.message)")
                #expect(error.message.contains(path), "\(name) does not name the path: \(error.message)")
            }
        }
    }

    @Test func writtenManifestReadsBack() throws {
        let units = try UnitTable(names: ["a", "b/c", "ü", String(repeating: "z", count: 300)].map(\.utf8))
        let manifest = try Manifest(units: units, nodes: 3, rule: .block, legacyDoneDirectory: "logs/completed")
        let again = try Manifest.decode(manifest.encoded(), source: "test")
        #expect(try manifest.difference(from: again) == nil)
        #expect(again.partition.rule == .block && again.nodes == 3 && again.legacyDoneDirectory == "logs/completed")
    }
}
