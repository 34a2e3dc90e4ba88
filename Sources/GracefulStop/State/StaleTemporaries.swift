import Glibc

/// Temporary files (`.tmp.*`, docs/state-format.md) that writers killed between creating and
/// renaming them left behind. Every reader ignores them, so they cost nothing but clutter; gstop
/// removes them when a job starts so that a campaign of many killed attempts leaves a clean state.
///
/// Only files older than `minimumAge` go: a live writer on another host fills its temporary within
/// milliseconds, so an hour leaves room for any clock skew between hosts of a shared filesystem.
public enum StaleTemporaries {
    public static let minimumAge: Double = 3600
    static let prefix: [UInt8] = Array(".tmp.".utf8)

    /// Removes stale temporaries from the state directory, and from `done/`, `begun/` and each of
    /// their node directories (claims are linked into place from a temporary on NFS).
    /// Returns how many were removed and the first problem met (tidying never fails a job).
    static func remove(in state: Directory, now: Double, minimumAge: Double = minimumAge) -> (removed: Int, problem: String?) {
        var removed = 0
        var problem: String? = nil
        func sweep(_ directory: Directory) {
            do {
                var names: [String] = []
                try directory.forEachEntry { name in
                    if name.starts(with: prefix) { names.append(String(decoding: name, as: UTF8.self)) }
                }
                for name in names {
                    guard let info = try name.withCString({ try directory.status($0, display: name) }),
                        info.st_mode & S_IFMT == S_IFREG,
                        now - Double(info.st_mtim.tv_sec) >= minimumAge
                    else { continue }
                    try directory.remove(name)
                    removed += 1
                }
            } catch let error as GracefulStopError {
                problem = problem ?? error.message
            } catch {
                problem = problem ?? "\(error)"
            }
        }
        sweep(state)
        for parentName in [DoneMarkers.directoryName, BeginRecords.directoryName] {
            guard let parent = try? state.subdirectory(parentName, create: false) else { continue }
            sweep(parent)
            var shards: [String] = []
            try? parent.forEachEntry { name in
                if !name.isEmpty, name.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) {
                    shards.append(String(decoding: name, as: UTF8.self))
                }
            }
            for shard in shards {
                if let directory = try? parent.subdirectory(shard, create: false) { sweep(directory) }
            }
        }
        return (removed, problem)
    }
}
