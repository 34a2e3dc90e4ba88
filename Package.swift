// swift-tools-version:6.0
// The Swift half of gracefulstop. Only the toolchain's own modules are used (stdlib, Glibc,
// Synchronization): compute nodes get one self-contained .so when built with -static-stdlib.
import PackageDescription

let package = Package(
    name: "gracefulstop",
    products: [
        // libgracefulstop.so: the C ABI in include/gracefulstop.h, loaded by Python through ctypes.
        .library(name: "gracefulstop", type: .dynamic, targets: ["GracefulStop"]),
        // The supervisor the sbatch script execs (not "gracefulstop": SwiftPM silently skips an
        // executable product named like a library product).
        .executable(name: "gstop", targets: ["gstop"]),
    ],
    targets: [
        // The only C: async-signal-safe handlers that record a stop signal in a flag.
        .target(name: "CSignalShim"),
        // Everything else: state format, partition, markers, stop checks, the C-ABI exports.
        .target(name: "GracefulStop", dependencies: ["CSignalShim"]),
        // Parses arguments, calls the library, maps the outcome to an exit code.
        .executableTarget(name: "gstop", dependencies: ["GracefulStop"]),
        .testTarget(name: "GracefulStopTests", dependencies: ["GracefulStop"]),
    ]
)
