import GracefulStop

/// Command-line arguments of one subcommand: `--name value`, `--name=value`, flags, positional
/// arguments, and everything after `--`.
struct Arguments {
    struct UsageError: Error {
        let message: String
    }

    private(set) var values: [String: String] = [:]
    private(set) var flags: Set<String> = []
    private(set) var positional: [String] = []
    private(set) var command: [String] = []

    /// Parses `arguments` for a subcommand that takes the options `valued` (with a value) and
    /// `flagNames` (without).
    init(_ arguments: ArraySlice<String>, valued: Set<String>, flags flagNames: Set<String>, subcommand: String) throws {
        var rest = arguments
        while let argument = rest.popFirst() {
            if argument == "--" {
                command = Array(rest)
                return
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                if argument.hasPrefix("-") && argument != "-" && argument.count > 1 {
                    throw UsageError(message: "unknown option \(argument) for `gstop \(subcommand)` (see gstop \(subcommand) --help)")
                }
                positional.append(argument)
                continue
            }
            var name = String(argument.dropFirst(2))
            var value: String? = nil
            if let equals = name.firstIndex(of: "=") {
                value = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            if flagNames.contains(name) {
                if value != nil { throw UsageError(message: "--\(name) takes no value") }
                flags.insert(name)
            } else if valued.contains(name) {
                if value == nil {
                    guard let next = rest.popFirst(), !(next.hasPrefix("--") && next.count > 2) else {
                        throw UsageError(message: "--\(name) needs a value (see gstop \(subcommand) --help)")
                    }
                    value = next
                }
                values[name] = value
            } else {
                throw UsageError(message: "unknown option --\(name) for `gstop \(subcommand)` (see gstop \(subcommand) --help)")
            }
        }
    }

    func string(_ name: String) -> String? { values[name] }

    func flag(_ name: String) -> Bool { flags.contains(name) }

    func integer(_ name: String, minimum: Int = 0) throws -> Int? {
        guard let text = values[name] else { return nil }
        guard let number = Int(text), number >= minimum else {
            throw UsageError(message: "--\(name) takes a whole number from \(minimum) (got '\(text)')")
        }
        return number
    }

    func duration(_ name: String) throws -> Double? {
        guard let text = values[name] else { return nil }
        do { return try TimeSpan.parse(text) } catch let error as GracefulStopError {
            throw UsageError(message: "--\(name): \(error.message)")
        }
    }

    func choice<T: RawRepresentable & CaseIterable>(_ name: String, _: T.Type) throws -> T? where T.RawValue == String {
        guard let text = values[name] else { return nil }
        guard let value = T(rawValue: text) else {
            throw UsageError(message: "--\(name) takes one of \(T.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(text)')")
        }
        return value
    }

    /// The state directory: --state, else $GRACEFULSTOP_STATE_DIR.
    func stateDirectory() throws -> String {
        if let path = values["state"] {
            guard !path.isEmpty else { throw UsageError(message: "--state needs a directory (the path is empty)") }
            return path
        }
        if let path = Environment.value(Environment.stateDirectory) { return path }
        throw UsageError(message: "no state directory: pass --state DIR or set \(Environment.stateDirectory)")
    }
}
