/// Double → Int without a trap: numbers read from files (a stop request's time, a marker's start)
/// and the arithmetic on them may be huge, infinite or NaN, and Swift's `Int(_:)` stops the
/// process on those (a Swift runtime failure, SIGILL) — in `gstop status` or inside the library.
extension Int {
    /// `value` rounded by `rule`, clamped to ±2^62 (NaN: 0).
    init(saturating value: Double, rounding rule: FloatingPointRoundingRule = .towardZero) {
        let bound = 4.611_686_018_427_387_9e18  // 2^62: far from Int.max, exactly representable
        guard !value.isNaN else {
            self = 0
            return
        }
        self = Int(Swift.max(-bound, Swift.min(bound, value.rounded(rule))))
    }
}
