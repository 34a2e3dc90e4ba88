// libFuzzer entry points for the parsers that read what users and other hosts write: the
// unit-name ↔ marker-file-name codec, the manifest reader and the unit-shard reader. Built by scripts/fuzz with
// `swiftc -sanitize=fuzzer,address` together with the library's sources (so internal functions
// are reachable); GRACEFULSTOP_FUZZ_TARGET picks the target. A broken property is a trap, which
// libFuzzer reports with the input that caused it.
import Glibc

/// The unit-name codec: for any bytes, (1) as a unit name: when valid, its marker file name is a
/// safe single path component of at most 255 bytes that decodes back to the name (or, hashed, says
/// so); (2) as a file name found in a marker directory: decoding never crashes, and a name it
/// accepts is the canonical encoding of the unit it yields.
func fuzzMarkerName(_ bytes: [UInt8]) {
    if (try? UnitName.validate(bytes)) != nil {
        let unit = String(decoding: bytes, as: UTF8.self)
        let file = MarkerName.fileName(of: unit)
        let fileBytes = Array(file.utf8)
        precondition(fileBytes.count <= MarkerName.maximumFileNameLength, "marker name over 255 bytes")
        precondition(!fileBytes.contains(UInt8(ascii: "/")) && !fileBytes.contains(0), "marker name with / or NUL")
        precondition(fileBytes.first != UInt8(ascii: "."), "marker name is hidden, . or ..")
        switch MarkerName.decode(fileName: file) {
        case .unit(let decoded): precondition(decoded == unit, "marker name does not decode to its unit")
        case .hashed: precondition(fileBytes.contains(MarkerName.hashSeparator), "hashed without a separator")
        case .notAMarker: preconditionFailure("the marker name of a valid unit is not a marker")
        }
    }
    if let asFileName = String(validating: bytes, as: UTF8.self) {
        if case .unit(let unit) = MarkerName.decode(fileName: asFileName) {
            precondition(MarkerName.fileName(of: unit) == asFileName, "a non-canonical file name was accepted")
        }
    }
}

/// The manifest reader: any bytes either fail with a GracefulStopError (never a crash, never
/// another error) or give a manifest that writes back to a file reading as the same run.
func fuzzManifest(_ bytes: [UInt8]) {
    let manifest: Manifest
    do {
        manifest = try Manifest.decode(bytes, source: "fuzz/manifest.json")
    } catch is GracefulStopError {
        return
    } catch {
        preconditionFailure("the manifest reader threw something other than GracefulStopError: \(error)")
    }
    precondition(manifest.unitCount > 0 && manifest.nodes > 0, "a manifest without units or nodes was accepted")
    let again: Manifest
    do {
        again = try Manifest.decode(manifest.encoded(), source: "fuzz/again.json")
    } catch {
        preconditionFailure("a manifest that was read does not read back after writing: \(error)")
    }
    precondition((try? again.difference(from: manifest)) == .some(nil), "a manifest changed when written and read back")
}

/// The shard reader (version 2's `units/<units_sha256>/<node>.json`, which other hosts write): any
/// bytes either fail with a GracefulStopError or give names that write back to a shard reading as
/// the same node, hash and names, in order.
func fuzzUnitShard(_ bytes: [UInt8]) {
    let shard: (node: Int, unitsSHA256: String, units: UnitTable)
    do {
        shard = try UnitShards.parse(bytes, source: "fuzz/0.json")
    } catch is GracefulStopError {
        return
    } catch {
        preconditionFailure("the shard reader threw something other than GracefulStopError: \(error)")
    }
    let written = UnitShards.encode(
        node: shard.node, table: shard.units, positions: stride(from: 0, to: shard.units.count, by: 1),
        count: shard.units.count, unitsSHA256: shard.unitsSHA256)
    let again: (node: Int, unitsSHA256: String, units: UnitTable)
    do {
        again = try UnitShards.parse(written, source: "fuzz/again.json")
    } catch {
        preconditionFailure("a shard that was read does not read back after writing: \(error)")
    }
    precondition(
        again.node == shard.node && again.unitsSHA256 == shard.unitsSHA256 && again.units.count == shard.units.count,
        "a shard's fields changed when written and read back")
    for index in 0..<shard.units.count {
        precondition(again.units.nameBytes(index).elementsEqual(shard.units.nameBytes(index)), "a name changed when written and read back")
    }
}

private let target: ([UInt8]) -> Void = {
    switch getenv("GRACEFULSTOP_FUZZ_TARGET").map({ String(cString: $0) }) {
    case "manifest": return fuzzManifest
    case "unit-shard": return fuzzUnitShard
    case "marker-name": return fuzzMarkerName
    default:
        fputs("GRACEFULSTOP_FUZZ_TARGET must be marker-name, manifest or unit-shard\n", stderr)
        exit(64)
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target(size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
