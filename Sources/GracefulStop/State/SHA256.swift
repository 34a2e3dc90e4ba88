/// SHA-256 (FIPS 180-4), for the file names of done-markers of units whose names are too long to
/// be encoded into 255 bytes, and for a version-2 manifest's `units_sha256`. Written here because the
/// package uses no cryptography library.
struct SHA256 {
    private static let roundConstants: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    private var state: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    /// Bytes not yet hashed (less than one 64-byte block).
    private var pending: [UInt8] = []
    private var length: UInt64 = 0
    private var schedule = [UInt32](repeating: 0, count: 64)

    init() { pending.reserveCapacity(64) }

    /// Hashes `bytes` after what came before: a v2 manifest's units_sha256 runs over millions of
    /// names without gathering them into one buffer.
    mutating func update<Bytes: Collection<UInt8>>(_ bytes: Bytes) {
        length &+= UInt64(bytes.count)
        for byte in bytes {
            pending.append(byte)
            if pending.count == 64 {
                compressPending()
                pending.removeAll(keepingCapacity: true)
            }
        }
    }

    /// The 32-byte digest of everything given to `update`.
    mutating func finalize() -> [UInt8] {
        let bitLength = length &* 8
        pending.append(0x80)
        if pending.count > 56 {
            while pending.count < 64 { pending.append(0) }
            compressPending()
            pending.removeAll(keepingCapacity: true)
        }
        while pending.count < 56 { pending.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { pending.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        compressPending()
        return state.flatMap { word in [UInt8(word >> 24), UInt8(truncatingIfNeeded: word >> 16), UInt8(truncatingIfNeeded: word >> 8), UInt8(truncatingIfNeeded: word)] }
    }

    private mutating func compressPending() {
        for i in 0..<16 {
            let j = 4 * i
            schedule[i] = UInt32(pending[j]) << 24 | UInt32(pending[j + 1]) << 16 | UInt32(pending[j + 2]) << 8 | UInt32(pending[j + 3])
        }
        for i in 16..<64 {
            let s0 = SHA256.rotate(schedule[i - 15], 7) ^ SHA256.rotate(schedule[i - 15], 18) ^ (schedule[i - 15] >> 3)
            let s1 = SHA256.rotate(schedule[i - 2], 17) ^ SHA256.rotate(schedule[i - 2], 19) ^ (schedule[i - 2] >> 10)
            schedule[i] = schedule[i - 16] &+ s0 &+ schedule[i - 7] &+ s1
        }
        var (a, b, c, d, e, f, g, h) = (state[0], state[1], state[2], state[3], state[4], state[5], state[6], state[7])
        for i in 0..<64 {
            let s1 = SHA256.rotate(e, 6) ^ SHA256.rotate(e, 11) ^ SHA256.rotate(e, 25)
            let choice = (e & f) ^ (~e & g)
            let t1 = h &+ s1 &+ choice &+ SHA256.roundConstants[i] &+ schedule[i]
            let s0 = SHA256.rotate(a, 2) ^ SHA256.rotate(a, 13) ^ SHA256.rotate(a, 22)
            let majority = (a & b) ^ (a & c) ^ (b & c)
            let t2 = s0 &+ majority
            (h, g, f, e, d, c, b, a) = (g, f, e, d &+ t1, c, b, a, t1 &+ t2)
        }
        state[0] &+= a; state[1] &+= b; state[2] &+= c; state[3] &+= d
        state[4] &+= e; state[5] &+= f; state[6] &+= g; state[7] &+= h
    }

    /// The 32-byte digest of `message`.
    static func digest<Bytes: Collection<UInt8>>(_ message: Bytes) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(message)
        return hasher.finalize()
    }

    /// 64 lowercase hex digits of `digest`.
    static func hex(_ digest: [UInt8]) -> [UInt8] {
        let hex = Array("0123456789abcdef".utf8)
        return digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xF)]] }
    }

    /// The digest as 64 lowercase hex digits.
    static func hexDigest<Bytes: Collection<UInt8>>(_ message: Bytes) -> [UInt8] { hex(digest(message)) }

    @inline(__always)
    private static func rotate(_ value: UInt32, _ count: UInt32) -> UInt32 { value >> count | value << (32 - count) }
}
