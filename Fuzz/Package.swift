// swift-tools-version:5.4
// libFuzzer targets for the library's parsers; Scripts/fuzz builds and runs them.
//
// A package of its own, depending on the root package by path, so the root package and its
// products stay as they are. Tools version 5.4 on purpose: from 5.5 on, SwiftPM renames each
// executable's entry point and links it with `--defsym main=<module>_main`, which would stand in
// for libFuzzer's `main`; at 5.4 the executables below have no entry point of their own and
// libFuzzer's is the one.
//
// Scripts/fuzz compiles every module with AddressSanitizer and libFuzzer's coverage
// instrumentation (Swift: -sanitize=address -sanitize-coverage=...; C: -fsanitize=fuzzer-no-link,
// address) and links libFuzzer into these executables only (the linker settings below).
//
// The config target reaches tefla-train's config reader, which lives in an executable target:
// another package can build an executable product but not link its code, so fuzz-config compiles
// tefla-train's sources itself, through the symlink Sources/fuzz-config/tefla-train, with
// tefla-train's `@main` entry point renamed so that libFuzzer's `main` is the program's.
import PackageDescription

let fuzzer: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

/// A fuzz target over the library alone.
func target(_ name: String) -> Target {
    .executableTarget(
        name: name, dependencies: [.product(name: "Learner", package: "tefla-swift"), "FuzzSupport"], linkerSettings: fuzzer)
}

let package = Package(
    name: "tefla-fuzz",
    dependencies: [
        .package(name: "tefla-swift", path: ".."),
        // What tefla-train's sources import (the root package's requirements).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
    ],
    targets: [
        // What the targets that read files share: a scratch folder, a plain write.
        .target(name: "FuzzSupport"),
        target("fuzz-tfrecord"), target("fuzz-example"), target("fuzz-safetensors"), target("fuzz-image"),
        target("fuzz-state"),
        .executableTarget(
            name: "fuzz-config",
            dependencies: [
                .product(name: "Learner", package: "tefla-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.unsafeFlags(["-Xfrontend", "-entry-point-function-name", "-Xfrontend", "tefla_train_main"])],
            linkerSettings: fuzzer),
    ]
)
