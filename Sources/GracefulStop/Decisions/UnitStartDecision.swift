/// Whether there is time to begin a unit before the deadline: a pure decision over the expected
/// unit time (the user's estimate, else the p90 of this run's durations) and the time left.
public enum UnitStartDecision {
    /// nil: begin it; else why not, in words `stop_reason()` shows.
    public static func refusal(expected: Double?, secondsLeft: Double?) -> String? {
        guard let expected, let secondsLeft, expected > secondsLeft else { return nil }
        return "the next unit needs ~\(TimeSpan.format(expected)), \(TimeSpan.format(max(0, secondsLeft))) left before the deadline"
            + " (\(Environment.deadline)): it is not begun, so that no work is lost"
    }
}
