// libFuzzer entry points for the two parsers that read what users and other hosts write: the
// unit-name ↔ marker-file-name codec and the manifest reader. Built by scripts/fuzz with
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

private let target: ([UInt8]) -> Void = {
    switch getenv("GRACEFULSTOP_FUZZ_TARGET").map({ String(cString: $0) }) {
    case "manifest": return fuzzManifest
    case "marker-name": return fuzzMarkerName
    default:
        fputs("GRACEFULSTOP_FUZZ_TARGET must be marker-name or manifest\n", stderr)
        exit(64)
    }
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target(size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
