import Glibc

/// Which NFS a directory is on, from /proc/self/mountinfo (read once per device, then cached).
/// It matters for what the client's cache of names can be trusted with: NFS v4 has a change
/// attribute that moves with every change to a directory, so a fresh open of the directory
/// revalidates every cached name exactly; v3 has only the ctime, whose tick can hide a second
/// change (NameCacheTrust).
enum NFSMount {
    private static let known = Locked<[UInt64: Bool]>([:])

    /// Whether the filesystem of device `device` (st_dev) is NFS v4 ("nfs4" in mountinfo). False
    /// when it cannot be told: the careful answer.
    static func hasChangeAttribute(device: UInt64) -> Bool {
        if let cached = known.withLock({ $0[device] }) { return cached }
        let found = fileSystemType(device: device) == "nfs4"
        known.withLock { $0[device] = found }
        return found
    }

    /// The mountinfo type of device `device`, or nil.
    static func fileSystemType(device: UInt64) -> String? {
        guard let content = (try? Directory(opening: "/proc/self").readFile("mountinfo")) ?? nil else { return nil }
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~0xFFF)
        let minor = (device & 0xFF) | ((device >> 12) & ~0xFF)
        let wanted = "\(major):\(minor)"
        for line in String(decoding: content, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 3, fields[2] == wanted, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            return String(fields[dash + 1])
        }
        return nil
    }
}
