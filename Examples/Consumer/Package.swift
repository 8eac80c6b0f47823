// swift-tools-version:6.1
// Examples of using Tefla for Swift as a dependency, as a user of the library would.
// Scripts/check-consumer builds and runs them against a clone of this repository by setting
// TEFLA_PACKAGE_URL; without it, it depends on the published repository.
import Foundation
import PackageDescription

let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(
            url: ProcessInfo.processInfo.environment["TEFLA_PACKAGE_URL"]
                ?? "https://github.com/tefla-swift/tefla-swift.git",
            from: "0.1.0"
        )
    ],
    targets: [
        .executableTarget(
            name: "Consumer",
            dependencies: [.product(name: "Learner", package: "tefla-swift")]
        )
    ]
        // The code of the articles of the documentation catalog (Sources/Learner/Learner.docc),
        // one program per article: each article's code blocks appear verbatim in its program
        // (DocumentationTests checks it), and Scripts/check-consumer builds and runs them.
        + ["FirstModel", "CustomLayer", "CustomLoss", "CustomMetric", "CustomDataSource", "Checkpoints", "ConfigMap", "MixedPrecision"].map
    {
        .executableTarget(name: $0, dependencies: [.product(name: "Learner", package: "tefla-swift")])
    }
)
