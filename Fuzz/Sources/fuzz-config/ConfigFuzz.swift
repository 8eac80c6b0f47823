import Foundation

/// (This module holds tefla-train's sources too, through the symlink next to this file; see
/// Fuzz/Package.swift.)
///
/// A YAML config through the whole schema: ``ConfigLimits`` (which refuses hostile files before
/// the YAML parser), Yams, every section's reader and the cross-checks, as `tefla-train --config`
/// reads a file. Lines `#override key.path=value` (YAML comments, so the file is unchanged) are
/// also given as `--override`s. Run from the repository root, the shipped configs' data folders
/// exist, so valid inputs get through to the end.
///
/// A thrown error (a ``ConfigError`` naming the problems) is a refusal; a trap is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    let marker = "#override "
    var overrides: [ConfigOverride] = []
    for line in text.split(separator: "\n") where line.hasPrefix(marker) {
        guard let override = try? ConfigOverride(String(line.dropFirst(marker.count))) else { return 0 }
        overrides.append(override)
    }
    do {
        let config = try TrainConfig.parse(yaml: text, file: "fuzz.yml", overrides: overrides)
        precondition(config.batchSize > 0 && config.epochs > 0, "a config with no batch or no epoch passed")
    } catch let error as ConfigError {
        precondition(!error.issues.isEmpty, "a ConfigError without an issue")
    } catch {
        // Any thrown error is a refusal; only the config errors are checked for content.
    }
    return 0
}
