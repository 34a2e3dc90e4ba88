import CSignalShim
import Glibc
import Testing

@testable import GracefulStop

private func isIgnored(_ action: sigaction) -> Bool {
    unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
}

/// Sends `signal` to this process and waits (at most 5 s) until a thread has taken it: test threads
/// (Dispatch workers) block signals, so delivery happens on another thread, a moment later.
private func sendToThisProcess(_ signal: Int32) throws {
    kill(getpid(), signal)
    for _ in 0..<5000 where StopSignals.received != signal { usleep(1000) }
}

/// Tests of what is shared by the whole process — signal handlers, the stop flag, environment
/// variables — run one at a time so they never see each other's signals.
@Suite(.serialized) struct ProcessWideTests {
    init() { StopSignals.clear() }

    @Suite(.serialized) struct Signals {
        init() { StopSignals.clear() }

        @Test func aTrappedSignalStopsAndIsNamed() throws {
            try StopSignals.install([SIGUSR2])
            defer {
                try? StopSignals.uninstall([SIGUSR2])
                StopSignals.clear()
            }
            let state = try RunState.open(at: nil, node: 0)
            #expect(!state.shouldStop())
            try sendToThisProcess(SIGUSR2)
            #expect(StopSignals.received == SIGUSR2)
            #expect(state.shouldStop())
            #expect(gracefulstop_should_stop(nil))
            let reason = state.stopCheck.reason()
            #expect(reason.reason == .signal && reason.signal == SIGUSR2 && reason.detail == "received SIGUSR2")
        }

        @Test func installKeepsThePreviousActionAndUninstallRestoresIt() throws {
            var ignore = sigaction()
            ignore.__sigaction_handler.sa_handler = SIG_IGN
            var before = sigaction()
            sigaction(SIGUSR2, &ignore, &before)
            defer {
                sigaction(SIGUSR2, &before, nil)
                StopSignals.clear()
            }

            try StopSignals.install([SIGUSR2])
            try StopSignals.install([SIGUSR2])  // twice is harmless: still chains to SIG_IGN, not to itself
            #expect(StopSignals.isInstalled(SIGUSR2))
            var current = sigaction()
            sigaction(SIGUSR2, nil, &current)
            #expect(current.sa_flags & SA_RESTART != 0, "SA_RESTART keeps blocking calls from failing with EINTR")
            try sendToThisProcess(SIGUSR2)  // chained to SIG_IGN: the process lives on
            #expect(StopSignals.received == SIGUSR2)

            try StopSignals.uninstall([SIGUSR2])
            sigaction(SIGUSR2, nil, &current)
            #expect(isIgnored(current))
            #expect(!StopSignals.isInstalled(SIGUSR2))
        }

        @Test func aHandlerInstalledAfterOursIsNotRemovedByUninstall() throws {
            var before = sigaction()
            sigaction(SIGUSR2, nil, &before)
            defer { sigaction(SIGUSR2, &before, nil) }
            try StopSignals.install([SIGUSR2])
            var ignore = sigaction()
            ignore.__sigaction_handler.sa_handler = SIG_IGN
            sigaction(SIGUSR2, &ignore, nil)
            #expect(gracefulstop_shim_uninstall(SIGUSR2) == EBUSY)
            var current = sigaction()
            sigaction(SIGUSR2, nil, &current)
            #expect(isIgnored(current))
        }

        @Test func untrappableAndUnknownSignals() throws {
            #expect(throws: GracefulStopError.self) { try StopSignals.install([SIGKILL]) }
            #expect(throws: GracefulStopError.self) { try StopSignals.install([SIGSTOP]) }
            #expect(throws: GracefulStopError.self) { try StopSignals.parse("USR9") }
            #expect(try StopSignals.parse("USR1,SIGTERM 2") == [SIGUSR1, SIGTERM, SIGINT])
            #expect(try StopSignals.parse("none") == [])
        }

        @Test func defaultsAreUsr1AndTermButNotInt() throws {
            try withEnvironment([Environment.signals: nil]) { () throws in
                #expect(try StopSignals.configured() == [SIGUSR1, SIGTERM])
            }
            try withEnvironment([Environment.signals: "USR2"]) { () throws in #expect(try StopSignals.configured() == [SIGUSR2]) }
        }
    }

    @Suite(.serialized) struct Requests {
        init() { StopSignals.clear() }

        @Test func aStaleRequestInAFixtureDoesNotStopAndANewOneDoes() throws {
            let temporary = TemporaryDirectory()
            let path = copyOfFixture("round-robin-3", into: temporary)
            try withEnvironment([Environment.attemptStart: nil, Environment.deadline: nil]) { () throws in
                let worker = try RunState.open(at: path, node: 0)
                worker.stopCheck.intervalSeconds = 0
                #expect(fileExists(path + "/stop.request"))
                #expect(!worker.shouldStop(), "a request from 2001 must not stop an attempt started now")
                let other = try RunState.open(at: path, node: 2)
                try other.requestStop(reason: "node 2 saw the warning")
                #expect(other.shouldStop())
                #expect(worker.shouldStop())
                let reason = worker.stopCheck.reason()
                #expect(reason.reason == .request && reason.detail.contains("node 2 saw the warning"), "\(reason.detail)")
            }
        }

        @Test func theRequestFileIsReadOncePerInterval() throws {
            let temporary = TemporaryDirectory()
            _ = try RunState.create(at: temporary.path, units: ["a"], nodes: 1, node: 0)
            try withEnvironment([Environment.attemptStart: nil, Environment.checkInterval: "3600"]) { () throws in
                let worker = try RunState.open(at: temporary.path, node: 0)
                #expect(!worker.shouldStop())  // the first call looks, and finds nothing
                try RunState.open(at: temporary.path, node: 0).requestStop(reason: "test")
                for _ in 0..<100_000 { #expect(!worker.shouldStop()) }  // within the hour: no second look
                worker.stopCheck.intervalSeconds = 0
                #expect(worker.shouldStop())
            }
        }

        @Test func aTouchedStopFileCountsByItsModificationTime() throws {
            let temporary = TemporaryDirectory()
            _ = try RunState.create(at: temporary.path, units: ["a"], nodes: 1, node: 0)
            writeFile(temporary.sub("stop.request"), "")
            try withEnvironment([Environment.staleRequests: nil]) { () throws in
                let state = try RunState.open(at: temporary.path, node: 0)
                state.stopCheck.intervalSeconds = 0
                #expect(!state.shouldStop(), "there before the process opened the state: not for it")
                usleep(20_000)
                writeFile(temporary.sub("stop.request"), "")  // touched again: another time, another request
                #expect(state.shouldStop())
                #expect(state.stopCheck.reason().detail.contains("modification time"))
            }
            try withEnvironment([Environment.staleRequests: "stop.request=0"]) { () throws in
                // gstop found no request when it started the attempt: the touched file is new to it.
                #expect(try RunState.open(at: temporary.path, node: 0).shouldStop())
            }
        }

        @Test func aPassedDeadlineStops() throws {
            try withEnvironment([Environment.deadline: String(Clock.unixSeconds() - 1)]) { () throws in
                let state = try RunState.open(at: nil, node: 0)
                #expect(state.shouldStop())
                #expect(state.stopCheck.reason().reason == .deadline)
            }
            try withEnvironment([Environment.deadline: String(Clock.unixSeconds() + 3600)]) { () throws in
                #expect(!(try RunState.open(at: nil, node: 0).shouldStop()))
            }
            try withEnvironment([Environment.deadline: "soon"]) { () throws -> Void in
                #expect(throws: GracefulStopError.self) { _ = try RunState.open(at: nil, node: 0) }
            }
        }

        @Test func theNodeComesFromTheEnvironmentInOrder() throws {
            try withEnvironment([Environment.nodeVariable: nil, "SLURM_ARRAY_TASK_ID": nil, "SLURM_NODEID": "2"]) { () throws in
                #expect(try Environment.node().number == 2)
            }
            try withEnvironment([Environment.nodeVariable: nil, "SLURM_ARRAY_TASK_ID": "3", "SLURM_NODEID": "2"]) { () throws in
                #expect(try Environment.node().number == 3)
            }
            try withEnvironment([Environment.nodeVariable: "1", "SLURM_ARRAY_TASK_ID": "3", "SLURM_NODEID": "2"]) { () throws in
                #expect(try Environment.node().number == 1)
            }
            try withEnvironment([Environment.nodeVariable: nil, "SLURM_ARRAY_TASK_ID": nil, "SLURM_NODEID": nil]) { () throws in
                #expect(try Environment.node().number == 0)
            }
            let temporary = TemporaryDirectory()
            _ = try RunState.create(at: temporary.path, units: ["a", "b"], nodes: 2, node: 0)
            try withEnvironment([Environment.nodeVariable: nil, "SLURM_ARRAY_TASK_ID": "7"]) { () throws in
                #expect(try RunState.open(at: temporary.path).node == 7)  // balancing: a worker that only takes over
            }
            try withEnvironment([Balance.variable: "maybe"]) { () throws in
                #expect(throws: GracefulStopError(.invalidArgument, "GRACEFULSTOP_BALANCE='maybe' is not on (1) or off (0)")) {
                    _ = try RunState.open(at: temporary.path, node: 0)
                }
            }
            try withEnvironment([Environment.nodeVariable: nil, "SLURM_ARRAY_TASK_ID": "7", Balance.variable: "0"]) { () throws in
                do {
                    _ = try RunState.open(at: temporary.path)
                    Issue.record("node 7 accepted")
                } catch let error as GracefulStopError {
                    #expect(error.code == .nodeOutOfRange && error.message.contains("SLURM_ARRAY_TASK_ID"), "\(error.message)")
                }
            }
        }
    }

    @Suite(.serialized) struct CABI {
        init() { StopSignals.clear() }

        @Test func theUnitListStructHasTheHeadersLayout() {
            #expect(MemoryLayout<CUnitList>.size == 24)
            #expect(MemoryLayout<CUnitList>.offset(of: \CUnitList.size) == 8)
            #expect(MemoryLayout<CUnitList>.offset(of: \CUnitList.count) == 16)
        }

        @Test func createMarkListAndFreeThroughTheCFunctions() throws {
            let temporary = TemporaryDirectory()
            let names = Array("a\0b/c\0d\0".utf8CString.dropLast())
            var handle: OpaquePointer? = nil
            let status = names.withUnsafeBufferPointer { buffer -> Int32 in
                var list = CUnitList(names: UnsafeMutablePointer(mutating: buffer.baseAddress), size: buffer.count, count: 3)
                return gracefulstop_create(temporary.path, &list, 1, "block", nil, 0, &handle)
            }
            #expect(status == 0, "\(String(cString: gracefulstop_last_error()!))")
            defer { gracefulstop_close(handle) }
            var wasDone = true
            #expect(gracefulstop_mark_done(handle, "b/c", -1, &wasDone) == 0 && !wasDone)
            var list = CUnitList(names: nil, size: 0, count: 0)
            #expect(gracefulstop_remaining_units(handle, -1, &list) == 0)
            #expect(list.count == 2 && list.size == 4)
            #expect(String(cString: list.names!) == "a" && String(cString: list.names! + 2) == "d")
            gracefulstop_unit_list_free(&list)
            #expect(list.names == nil && list.count == 0)
            var done: UInt64 = 0
            var total: UInt64 = 0
            #expect(gracefulstop_counts(handle, -2, &done, &total) == 0 && done == 1 && total == 3)
        }

        @Test func errorsBecomeStatusCodesAndAThreadLocalMessage() throws {
            #expect(gracefulstop_mark_done(nil, "a", -1, nil) == GracefulStopError.Code.invalidArgument.rawValue)
            #expect(String(cString: gracefulstop_last_error()!) == "the state handle is NULL")
            var handle: OpaquePointer? = nil
            #expect(gracefulstop_open("/nonexistent/state", 0, &handle) == GracefulStopError.Code.system.rawValue)
            #expect(handle == nil)
            #expect(String(cString: gracefulstop_last_error()!).contains("/nonexistent/state"))
            // Another thread's failure does not overwrite this thread's message.
            var thread = pthread_t()
            pthread_create(
                &thread, nil,
                { _ in
                    _ = gracefulstop_open("/elsewhere", 0, nil)
                    return nil
                }, nil)
            pthread_join(thread, nil)
            #expect(String(cString: gracefulstop_last_error()!).contains("/nonexistent/state"))
            var name: UnsafeMutablePointer<CChar>? = nil
            #expect(gracefulstop_marker_name("a/b", -1, &name) == 0)
            #expect(String(cString: name!) == "a%2Fb.done")
            gracefulstop_string_free(name)
            #expect(String(cString: gracefulstop_version()) == GracefulStopVersion.string)
        }
    }
}
