import Glibc
import Testing

@testable import GracefulStop

/// How files reach the state (docs/state-format.md, "How every file is written"), and the sweep of
/// temporaries that killed writers leave.
@Suite struct WritePathTests {
    @Test func anExclusiveWriteCreatesOnceAndKeepsTheFirstContent() throws {
        let temporary = TemporaryDirectory()
        let directory = try Directory(opening: temporary.path)
        #expect(try directory.writeAtomically("marker.done", Array("first".utf8), exclusive: true))
        #expect(try !directory.writeAtomically("marker.done", Array("second".utf8), exclusive: true))
        #expect(readFile(temporary.sub("marker.done")) == Array("first".utf8))
        // Either way (a file without a name, or a named temporary linked and removed) nothing else is left.
        #expect(listDirectory(temporary.path) == ["marker.done"])
    }

    @Test func aReplacingWriteReplacesAndLeavesNoTemporary() throws {
        let temporary = TemporaryDirectory()
        let directory = try Directory(opening: temporary.path)
        try directory.writeAtomically("stop.request", Array("old".utf8))
        try directory.writeAtomically("stop.request", Array("new".utf8))
        #expect(readFile(temporary.sub("stop.request")) == Array("new".utf8))
        #expect(listDirectory(temporary.path) == ["stop.request"])
    }

    @Test func anExclusiveWriteIntoAMissingDirectoryNamesThePath() throws {
        let temporary = TemporaryDirectory()
        let directory = try Directory(opening: temporary.path)
        run(["rmdir", temporary.path])
        #expect {
            try directory.writeAtomically("marker.done", Array("x".utf8), exclusive: true)
        } throws: { error in
            (error as? GracefulStopError)?.message.contains(temporary.sub("marker.done")) == true
        }
    }

    @Test func staleTemporariesGoAndEverythingElseStays() throws {
        let temporary = TemporaryDirectory()
        let state = try RunState.create(at: temporary.path, units: ["a", "b"], nodes: 2)
        try state.markDone("a")
        let old = [temporary.sub(".tmp.1.a.1"), temporary.sub("done/.tmp.2.b.1"), temporary.sub("done/0/.tmp.3.c.1")]
        let kept = [temporary.sub("done/0/.tmp.4.d.1"), temporary.sub("done/0/README"), temporary.sub("done/0/a.done")]
        for path in old + kept.dropLast() { writeFile(path, "x") }
        let now = Double(time(nil))
        for path in old + [kept[1]] {
            var times = [timespec(tv_sec: time_t(now - 7200), tv_nsec: 0), timespec(tv_sec: time_t(now - 7200), tv_nsec: 0)]
            #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        }
        let result = StaleTemporaries.remove(in: try Directory(opening: temporary.path), now: now)
        #expect(result.removed == 3 && result.problem == nil)
        #expect(old.allSatisfy { !fileExists($0) })
        #expect(kept.allSatisfy { fileExists($0) })
        #expect(try state.remainingUnits(node: 0).isEmpty && state.remainingUnits(node: 1) == ["b"])
    }
}
