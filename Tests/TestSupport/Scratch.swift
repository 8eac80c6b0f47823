import Foundation
import XCTest

/// Scratch folders for tests: each one new and empty, named `<prefix>-<UUID>` under the
/// temporary directory, and removed again when the test (or the closure) ends.
public enum Scratch {
    /// A new empty folder `<temporary directory>/<prefix>-<UUID>`, removed when `test` ends.
    public static func directory(_ prefix: String, for test: XCTestCase) throws -> URL {
        let dir = try make(prefix)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    /// Runs `body` with a new empty folder, removed when `body` returns or throws.
    public static func withDirectory<T>(_ prefix: String, _ body: (URL) throws -> T) throws -> T {
        let dir = try make(prefix)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(dir)
    }

    /// A new empty folder `<temporary directory>/<prefix>-<UUID>`; the caller removes it.
    public static func make(_ prefix: String) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
