import Glibc
import Testing

@testable import GracefulStop

/// NameCacheTrust.look as a table: a sequence of looks (ctime, monotonic time) and what each answers.
@Suite struct NameCacheTrustTests {
    typealias Look = (changeTime: Int64, at: Int64, trusted: Bool)
    static let second: Int64 = 1_000_000_000
    static let settle = NameCacheTrust.settleNanoseconds

    static let rows: [(name: String, looks: [Look])] = [
        ("the first look never trusts: another process of this host may have cached during the tick", [(5, 0, false)]),
        ("unchanged but young: read past the cache every time", [(5, 0, false), (5, second / 2, false), (5, settle - 1, false)]),
        ("settled: one more read past the cache, then trusted", [(5, 0, false), (5, settle, false), (5, settle + 1, true), (5, 100 * second, true)]),
        ("a change starts over", [(5, 0, false), (5, settle, false), (5, settle + 1, true), (6, settle + 2, false), (6, settle + 3, false)]),
        ("a change back to an older ctime is a change too", [(5, 0, false), (6, 1, false), (5, 2, false)]),
        (
            "settling counts from the first sighting of this ctime, not from the last look",
            [(5, 0, false), (6, settle, false), (6, 2 * settle - 1, false), (6, 2 * settle, false), (6, 2 * settle + 1, true)]
        ),
    ]

    @Test(arguments: rows.indices)
    func sequence(_ index: Int) {
        let row = Self.rows[index]
        var trust = NameCacheTrust()
        for (step, look) in row.looks.enumerated() {
            let trusted = trust.look(changeTime: look.changeTime, at: look.at)
            #expect(trusted == look.trusted, "\(row.name): look \(step + 1) (ctime \(look.changeTime) at \(look.at))")
        }
    }
}
