// swift-tools-version:6.1
// An example of using Tefla for Swift as a dependency, as a user of the library would.
// Scripts/check-consumer builds and runs it against a clone of this repository by setting
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
)
