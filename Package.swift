// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "tefla-swift",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "Learner", targets: ["Learner"]),
        .executable(name: "tefla-train", targets: ["tefla-train"]),
        .executable(name: "tefla-data", targets: ["tefla-data"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        // `swift package generate-documentation --target Learner` (Scripts/docs): the DocC catalog
        // Sources/Learner/Learner.docc.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // The C shim: OpenBLAS, CRC32C, tf.Example parsing (protobuf-c as the reference), zlib, libjpeg-turbo, libpng;
        // CUDA loaded at run time.
        .target(
            name: "CLearner",
            // cuda/ holds the CUDA C kernel source, compiled by NVRTC at run time from the copy
            // embedded in cuda_kernels.inc (Scripts/embed-kernels), never by SwiftPM.
            exclude: ["proto", "cuda", "cuda_kernels.inc"],
            linkerSettings: [
                .linkedLibrary("openblas"),
                .linkedLibrary("protobuf-c"),
                .linkedLibrary("z"),
                .linkedLibrary("jpeg"),
                .linkedLibrary("png"),
                .linkedLibrary("dl"),
                .linkedLibrary("m"),
                .linkedLibrary("pthread"),
            ]
        ),
        // Library messages (notes, warnings) go through swift-log, so users route them.
        .target(name: "Learner", dependencies: ["CLearner", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "tefla-train",
            dependencies: [
                "Learner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Inspect, verify and convert TFRecord data sets; time their reading (Benchmarks/data).
        .executableTarget(
            name: "tefla-data",
            dependencies: [
                "Learner",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "tefla-bench",
            dependencies: ["Learner", "CLearner"],
            path: "Benchmarks/Sources/tefla-bench"
        ),
        // Checks the CUDA layer of the C shim against the CPU kernels and times it; needs only
        // CLearner, so it packs small for a GPU machine (Scripts/device/pack-cuda-check).
        .executableTarget(
            name: "tefla-cuda-check",
            dependencies: ["CLearner"],
            path: "Benchmarks/Sources/tefla-cuda-check"
        ),
        // What every test target shares (not a product): scratch folders, the process runner,
        // the peer Python, the mpirun launcher, the skip-or-fail rule for missing prerequisites.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(
            name: "LearnerTests",
            dependencies: ["Learner", "CLearner", "TestSupport", .product(name: "Logging", package: "swift-log")],
            exclude: ["Fixtures"]),
        .testTarget(name: "TeflaTrainTests", dependencies: ["tefla-train", "Learner", "TestSupport"]),
        .testTarget(name: "TeflaDataTests", dependencies: ["tefla-data", "Learner", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
