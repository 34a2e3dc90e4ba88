/// The library's version: the Python package refuses to load a library whose version differs
/// from its own, so the two halves are always released together.
public enum GracefulStopVersion {
    public static let string = "0.1.0"
}
