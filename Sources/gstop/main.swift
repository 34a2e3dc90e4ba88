import Glibc
// gstop: the supervisor a SLURM batch script execs, and a few commands on a gracefulstop state.
// This file only parses arguments, calls the library and maps the outcome to an exit code
// (sysexits: 64 usage, 65 bad data, 70 internal, 74 I/O, 75 work remains); the work is in
// Sources/GracefulStop.
import GracefulStop

enum ExitCode {
    static let usage: Int32 = 64
    static let badData: Int32 = 65
    static let `internal`: Int32 = 70
    static let io: Int32 = 74
}

/// One line on standard error (a single write, so concurrent writers never split it).
func printError(_ line: String) {
    let text = Array("gstop: \(line)\n".utf8)
    _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func exitCode(for error: GracefulStopError) -> Int32 {
    switch error.code {
    case .invalidArgument: return ExitCode.usage
    case .unknownUnit, .badState, .mismatch, .nodeOutOfRange: return ExitCode.badData
    case .system, .diskFull: return ExitCode.io
    case .internal: return ExitCode.internal
    }
}

@MainActor func main(_ arguments: [String]) -> Int32 {
    guard let name = arguments.dropFirst().first else {
        print(Help.overview)
        return ExitCode.usage
    }
    switch name {
    case "--help", "-h", "help":
        if let topic = arguments.dropFirst(2).first, let subcommand = subcommands[topic] {
            print(subcommand.help)
        } else {
            print(Help.overview)
        }
        return 0
    case "--version", "version":
        print("gstop \(GracefulStopVersion.string)")
        return 0
    default:
        break
    }
    guard let subcommand = subcommands[name] else {
        printError("unknown command '\(name)'; commands: \(subcommands.keys.sorted().joined(separator: ", ")) (see gstop --help)")
        return ExitCode.usage
    }
    let rest = arguments.dropFirst(2)
    let separator = rest.firstIndex(of: "--") ?? rest.endIndex
    if rest[..<separator].contains(where: { $0 == "--help" || $0 == "-h" }) {
        print(subcommand.help)
        return 0
    }
    do {
        let parsed = try Arguments(rest, valued: subcommand.valued, flags: subcommand.flags, subcommand: name)
        return try subcommand.run(parsed)
    } catch let error as Arguments.UsageError {
        printError(error.message)
        return ExitCode.usage
    } catch let error as GracefulStopError {
        printError(error.message)
        return exitCode(for: error)
    } catch {
        printError("internal error: \(error)")
        return ExitCode.internal
    }
}

exit(main(CommandLine.arguments))
