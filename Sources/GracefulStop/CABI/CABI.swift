// swift-format-ignore-file: AlwaysUseLowerCamelCase
// (the exports are named as include/gracefulstop.h names its C functions: gracefulstop_mark_done)
import CSignalShim
import Glibc
import Synchronization

// The C ABI of include/gracefulstop.h, and nothing else: each export checks its pointers,
// converts arguments, calls RunState and maps errors through `cStatus`. The header is the
// documentation; keep the two in step (python/tests/test_c_abi.py compiles a C program against it).

/// The Swift mirror of `gracefulstop_unit_list` (pointer, size_t, size_t: the same layout).
struct CUnitList {
    var names: UnsafeMutablePointer<CChar>?
    var size: Int
    var count: Int
}

// Never written after initialisation, never freed: safe to share.
nonisolated(unsafe) private let versionString: UnsafePointer<CChar> = {
    UnsafePointer(strdup(GracefulStopVersion.string)!)
}()

@inline(__always)
private func state(_ pointer: OpaquePointer?) throws -> RunState {
    guard let pointer else { throw GracefulStopError(.invalidArgument, "the state handle is NULL") }
    return Unmanaged<RunState>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
}

private func required<T>(_ pointer: T?, _ name: String) throws -> T {
    guard let pointer else { throw GracefulStopError(.invalidArgument, "\(name) is NULL") }
    return pointer
}

/// A unit name given as (pointer, length) or NUL-terminated.
private func unitBytes(_ unit: UnsafePointer<CChar>?, _ length: Int) throws -> UnsafeBufferPointer<UInt8> {
    let pointer = try required(unit, "the unit name")
    let count = length == -1 ? strlen(pointer) : length
    guard count >= 0 else { throw GracefulStopError(.invalidArgument, "the unit name's length is negative") }
    return UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self), count: count)
}

private func node(_ value: Int64) throws -> Int? {
    if value == -1 { return nil }
    guard value >= 0 else {
        throw GracefulStopError(.nodeOutOfRange, "node \(value) is out of range (use a node number or GRACEFULSTOP_NODE_DEFAULT)")
    }
    return Int(value)
}

private func string(_ pointer: UnsafePointer<CChar>?) -> String? { pointer.map { String(cString: $0) } }

@_cdecl("gracefulstop_version")
public func gracefulstop_version() -> UnsafePointer<CChar> { versionString }

@_cdecl("gracefulstop_last_error")
public func gracefulstop_last_error() -> UnsafePointer<CChar>? { LastError.current }

@_cdecl("gracefulstop_string_free")
public func gracefulstop_string_free(_ string: UnsafeMutablePointer<CChar>?) { free(string) }

@_cdecl("gracefulstop_create")
public func gracefulstop_create(
    _ path: UnsafePointer<CChar>?, _ units: UnsafeRawPointer?, _ nodes: UInt32, _ partition: UnsafePointer<CChar>?,
    _ legacyDoneDirectory: UnsafePointer<CChar>?, _ node: Int64, _ outState: UnsafeMutablePointer<OpaquePointer?>?
) -> Int32 {
    cStatus {
        let path = try required(string(path), "the state path")
        let list = try required(units, "the unit list").assumingMemoryBound(to: CUnitList.self).pointee
        let out = try required(outState, "out_state")
        var table = UnitTable()
        if list.count > 0 {
            let names = try required(list.names, "the unit list's names")
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(names).assumingMemoryBound(to: UInt8.self), count: list.size)
            var start = 0
            for index in 0..<list.size where bytes[index] == 0 {
                table.appendName { $0.append(contentsOf: bytes[start..<index]) }
                start = index + 1
            }
            guard start == list.size, table.count == list.count else {
                throw GracefulStopError(
                    .invalidArgument,
                    "the unit list holds \(table.count) NUL-terminated names in \(list.size) bytes where \(list.count) were given (a NUL byte inside a unit name?)"
                )
            }
        }
        try table.buildIndex(source: "the unit list")
        let rule = try PartitionRule(parsing: string(partition) ?? PartitionRule.roundRobin.rawValue)
        let created = try RunState.create(
            at: path, units: table, nodes: Int(nodes), partition: rule, legacyDoneDirectory: string(legacyDoneDirectory),
            node: GracefulStop.node(node))
        out.pointee = OpaquePointer(Unmanaged.passRetained(created).toOpaque())
    }
}

@_cdecl("gracefulstop_open")
public func gracefulstop_open(_ path: UnsafePointer<CChar>?, _ node: Int64, _ outState: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    cStatus {
        let out = try required(outState, "out_state")
        let opened = try RunState.open(at: string(path), node: GracefulStop.node(node))
        out.pointee = OpaquePointer(Unmanaged.passRetained(opened).toOpaque())
    }
}

@_cdecl("gracefulstop_open_sweep")
public func gracefulstop_open_sweep(_ path: UnsafePointer<CChar>?, _ outState: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    cStatus {
        let out = try required(outState, "out_state")
        let opened = try RunState.openSweep(at: try required(string(path), "the state path"))
        out.pointee = OpaquePointer(Unmanaged.passRetained(opened).toOpaque())
    }
}

@_cdecl("gracefulstop_close")
public func gracefulstop_close(_ pointer: OpaquePointer?) {
    guard let pointer else { return }
    Unmanaged<RunState>.fromOpaque(UnsafeRawPointer(pointer)).release()
}

@_cdecl("gracefulstop_info")
public func gracefulstop_info(
    _ pointer: OpaquePointer?, _ outNode: UnsafeMutablePointer<Int64>?, _ outNodes: UnsafeMutablePointer<UInt32>?,
    _ outUnits: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    cStatus {
        let run = try state(pointer)
        let manifest = try run.requireFiles().manifest
        outNode?.pointee = Int64(run.node)
        outNodes?.pointee = UInt32(manifest.nodes)
        outUnits?.pointee = UInt64(manifest.unitCount)
    }
}

@_cdecl("gracefulstop_should_stop")
public func gracefulstop_should_stop(_ pointer: OpaquePointer?) -> Bool {
    guard let pointer else { return StopSignals.received != 0 }
    return Unmanaged<RunState>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue().stopCheck.shouldStop()
}

/// The process's default state for `gracefulstop_should_stop_default`, as the bits of a retained
/// pointer. Never released once set (replacing it is rare), so a concurrent call never sees a
/// freed state.
private let defaultState = Atomic<Int>(0)

@_cdecl("gracefulstop_set_default")
public func gracefulstop_set_default(_ pointer: OpaquePointer?) {
    guard let pointer else { return defaultState.store(0, ordering: .releasing) }
    _ = Unmanaged<RunState>.fromOpaque(UnsafeRawPointer(pointer)).retain()
    defaultState.store(Int(bitPattern: UnsafeRawPointer(pointer)), ordering: .releasing)
}

@_cdecl("gracefulstop_should_stop_default")
public func gracefulstop_should_stop_default() -> Bool {
    let bits = defaultState.load(ordering: .acquiring)
    guard bits != 0 else { return StopSignals.received != 0 }
    return Unmanaged<RunState>.fromOpaque(UnsafeRawPointer(bitPattern: bits)!).takeUnretainedValue().stopCheck.shouldStop()
}

@_cdecl("gracefulstop_trapped_signals")
public func gracefulstop_trapped_signals(_ out: UnsafeMutablePointer<Int32>?, _ capacity: Int) -> Int {
    var count = 0
    for signal in Int32(1)..<65 where StopSignals.isInstalled(signal) {
        if let out, count < capacity { out[count] = signal }
        count += 1
    }
    return count
}

@_cdecl("gracefulstop_stop_reason")
public func gracefulstop_stop_reason(
    _ pointer: OpaquePointer?, _ outReason: UnsafeMutablePointer<Int32>?, _ outSignal: UnsafeMutablePointer<Int32>?,
    _ outDetail: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    cStatus {
        let (reason, signal, detail): (StopCheck.Reason, Int32, String)
        if let pointer {
            (reason, signal, detail) = try state(pointer).stopCheck.reason()
        } else {
            let received = StopSignals.received
            (reason, signal, detail) = received == 0 ? (.none, 0, "") : (.signal, received, "received \(StopSignals.name(of: received))")
        }
        outReason?.pointee = reason.rawValue
        outSignal?.pointee = signal
        outDetail?.pointee = strdup(detail)
    }
}

@_cdecl("gracefulstop_request_stop")
public func gracefulstop_request_stop(_ pointer: OpaquePointer?, _ reason: UnsafePointer<CChar>?) -> Int32 {
    cStatus { try state(pointer).requestStop(reason: string(reason) ?? "request_stop()") }
}

@_cdecl("gracefulstop_set_check_interval")
public func gracefulstop_set_check_interval(_ pointer: OpaquePointer?, _ seconds: Double) -> Int32 {
    cStatus {
        guard seconds.isFinite, seconds >= 0 else {
            throw GracefulStopError(.invalidArgument, "the check interval must be 0 or more seconds (got \(seconds))")
        }
        try state(pointer).stopCheck.intervalSeconds = seconds
    }
}

private func signalList(_ signals: UnsafePointer<Int32>?, _ count: Int) throws -> [Int32] {
    guard let signals else { return try StopSignals.configured() }
    return Array(UnsafeBufferPointer(start: signals, count: count))
}

@_cdecl("gracefulstop_install_signals")
public func gracefulstop_install_signals(_ signals: UnsafePointer<Int32>?, _ count: Int) -> Int32 {
    cStatus { try StopSignals.install(signalList(signals, count)) }
}

@_cdecl("gracefulstop_uninstall_signals")
public func gracefulstop_uninstall_signals(_ signals: UnsafePointer<Int32>?, _ count: Int) -> Int32 {
    cStatus { try StopSignals.uninstall(signalList(signals, count)) }
}

@_cdecl("gracefulstop_received_signal")
public func gracefulstop_received_signal() -> Int32 { StopSignals.received }

@_cdecl("gracefulstop_clear_signal")
public func gracefulstop_clear_signal() { StopSignals.clear() }

@_cdecl("gracefulstop_mark_done")
public func gracefulstop_mark_done(
    _ pointer: OpaquePointer?, _ unit: UnsafePointer<CChar>?, _ length: Int, _ outWasDone: UnsafeMutablePointer<Bool>?
) -> Int32 {
    cStatus {
        let wasDone = try state(pointer).markDone(unitBytes(unit, length))
        outWasDone?.pointee = wasDone
    }
}

@_cdecl("gracefulstop_is_done")
public func gracefulstop_is_done(
    _ pointer: OpaquePointer?, _ unit: UnsafePointer<CChar>?, _ length: Int, _ outDone: UnsafeMutablePointer<Bool>?
) -> Int32 {
    cStatus {
        let out = try required(outDone, "out_done")
        out.pointee = try state(pointer).isDone(unitBytes(unit, length))
    }
}

@_cdecl("gracefulstop_remaining_units")
public func gracefulstop_remaining_units(_ pointer: OpaquePointer?, _ node: Int64, _ outList: UnsafeMutableRawPointer?) -> Int32 {
    cStatus {
        let out = try required(outList, "out_list").assumingMemoryBound(to: CUnitList.self)
        let run = try state(pointer)
        let chosen = try GracefulStop.node(node)
        if (chosen ?? run.node) == run.node, run.node >= (try run.requireFiles().manifest.partition.nodes) {
            out.pointee = CUnitList(names: nil, size: 0, count: 0)  // a worker that only takes over owns no unit
            return
        }
        let (share, positions) = try run.remainingUnitNames(node: chosen)
        out.pointee = share.table.withNameStorage { bytes, range in
            var size = 0
            for index in positions { size += range(index).count + 1 }
            let buffer = malloc(max(size, 1))!.assumingMemoryBound(to: UInt8.self)
            var offset = 0
            for index in positions {
                let name = range(index)
                (buffer + offset).update(from: bytes.baseAddress! + name.lowerBound, count: name.count)
                offset += name.count
                buffer[offset] = 0
                offset += 1
            }
            return CUnitList(names: UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: CChar.self), size: size, count: positions.count)
        }
    }
}

@_cdecl("gracefulstop_unit_list_free")
public func gracefulstop_unit_list_free(_ list: UnsafeMutableRawPointer?) {
    guard let list = list?.assumingMemoryBound(to: CUnitList.self) else { return }
    free(list.pointee.names)
    list.pointee = CUnitList(names: nil, size: 0, count: 0)
}

@_cdecl("gracefulstop_counts")
public func gracefulstop_counts(
    _ pointer: OpaquePointer?, _ node: Int64, _ outDone: UnsafeMutablePointer<UInt64>?, _ outTotal: UnsafeMutablePointer<UInt64>?
) -> Int32 {
    cStatus {
        let run = try state(pointer)
        let counts = try run.counts(node: node == -2 ? nil : (GracefulStop.node(node) ?? run.node))
        outDone?.pointee = UInt64(counts.done)
        outTotal?.pointee = UInt64(counts.total)
    }
}

@_cdecl("gracefulstop_run_done")
public func gracefulstop_run_done(_ pointer: OpaquePointer?, _ outDone: UnsafeMutablePointer<Bool>?) -> Int32 {
    cStatus {
        let out = try required(outDone, "out_done")
        out.pointee = try state(pointer).checkRunDone()
    }
}

@_cdecl("gracefulstop_mark_study_done")
public func gracefulstop_mark_study_done(_ pointer: OpaquePointer?, _ detail: UnsafePointer<CChar>?) -> Int32 {
    cStatus { try state(pointer).markStudyDone(detail: string(detail) ?? "") }
}

@_cdecl("gracefulstop_study_done")
public func gracefulstop_study_done(_ pointer: OpaquePointer?, _ outDone: UnsafeMutablePointer<Bool>?) -> Int32 {
    cStatus {
        let out = try required(outDone, "out_done")
        out.pointee = try state(pointer).isStudyDone()
    }
}

@_cdecl("gracefulstop_record_finished")
public func gracefulstop_record_finished(_ pointer: OpaquePointer?, _ count: Int64, _ what: UnsafePointer<CChar>?) -> Int32 {
    cStatus { try state(pointer).recordFinished(Int(clamping: count), what: string(what) ?? "trial") }
}

@_cdecl("gracefulstop_job")
public func gracefulstop_job(_ outJob: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cStatus {
        let out = try required(outJob, "out_job")
        out.pointee = Environment.job().map { strdup($0) } ?? nil
    }
}

@_cdecl("gracefulstop_marker_path")
public func gracefulstop_marker_path(
    _ pointer: OpaquePointer?, _ unit: UnsafePointer<CChar>?, _ length: Int, _ outPath: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    cStatus {
        let out = try required(outPath, "out_path")
        out.pointee = strdup(try state(pointer).markerPath(unitBytes(unit, length)))
    }
}

@_cdecl("gracefulstop_restart_count")
public func gracefulstop_restart_count() -> Int64 { Int64(Environment.restarts()) }

@_cdecl("gracefulstop_marker_name")
public func gracefulstop_marker_name(
    _ unit: UnsafePointer<CChar>?, _ length: Int, _ outName: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> Int32 {
    cStatus {
        let out = try required(outName, "out_name")
        let bytes = try unitBytes(unit, length)
        try UnitName.validate(bytes)
        var stem: [UInt8] = []
        MarkerName.appendStem(of: bytes, to: &stem)
        out.pointee = strdup(String(decoding: stem + MarkerName.suffix, as: UTF8.self))
    }
}

@_cdecl("gracefulstop_begin_unit")
public func gracefulstop_begin_unit(
    _ pointer: OpaquePointer?, _ unit: UnsafePointer<CChar>?, _ length: Int, _ estimateSeconds: Double, _ outOutcome: UnsafeMutablePointer<Int32>?
) -> Int32 {
    cStatus {
        let out = try required(outOutcome, "out_outcome")
        // A negative estimate (or NaN) means none: the run's own p90 decides.
        let estimate: Double? = estimateSeconds.isNaN || estimateSeconds < 0 ? nil : estimateSeconds
        out.pointee = try state(pointer).beginUnit(unitBytes(unit, length), estimate: estimate).rawValue
    }
}

@_cdecl("gracefulstop_next_unit")
public func gracefulstop_next_unit(
    _ pointer: OpaquePointer?, _ balance: Int32, _ restartLoop: Bool, _ outUnit: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ outLength: UnsafeMutablePointer<Int>?
) -> Int32 {
    cStatus {
        let out = try required(outUnit, "out_unit")
        let length = try required(outLength, "out_length")
        out.pointee = nil
        length.pointee = 0
        let state = try state(pointer)
        if restartLoop { state.resetWork() }
        let balanced: Bool
        switch balance {
        case -1: balanced = try Balance.enabled()
        case 0, 1: balanced = balance == 1
        default: throw GracefulStopError(.invalidArgument, "balance is -1 (GRACEFULSTOP_BALANCE), 0 or 1 (got \(balance))")
        }
        guard let unit = try state.nextUnit(balance: balanced) else { return }
        let bytes = try state.requireFiles().manifest.catalog.nameBytes(unit)
        // malloc'd, as gracefulstop_string_free() frees it.
        guard let copy = malloc(bytes.count + 1)?.assumingMemoryBound(to: CChar.self) else {
            throw GracefulStopError(.system, "out of memory for a unit name of \(bytes.count) bytes", errno: ENOMEM)
        }
        bytes.withUnsafeBytes { if let base = $0.baseAddress { _ = memcpy(copy, base, bytes.count) } }
        copy[bytes.count] = 0
        out.pointee = copy
        length.pointee = bytes.count
    }
}

@_cdecl("gracefulstop_abandon_unit")
public func gracefulstop_abandon_unit(_ pointer: OpaquePointer?, _ unit: UnsafePointer<CChar>?, _ length: Int) -> Int32 {
    cStatus { _ = try state(pointer).abandonUnit(unitBytes(unit, length)) }
}

@_cdecl("gracefulstop_release_unit")
public func gracefulstop_release_unit(
    _ pointer: OpaquePointer?, _ unit: UnsafePointer<CChar>?, _ length: Int, _ outWasQuarantined: UnsafeMutablePointer<Bool>?
) -> Int32 {
    cStatus {
        let released = try state(pointer).releaseUnit(unitBytes(unit, length))
        outWasQuarantined?.pointee = released
    }
}

@_cdecl("gracefulstop_status_json")
public func gracefulstop_status_json(_ pointer: OpaquePointer?, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    cStatus {
        let out = try required(outJSON, "out_json")
        out.pointee = strdup(try StatusReport.gather(state: state(pointer)).json())
    }
}
