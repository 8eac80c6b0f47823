import Foundation

/// Fault injection for the crash tests: when the environment variable `TEFLA_CRASH_AT` names a
/// point (`after-fsync`, or `after-fsync#3` for its third passage), the process kills itself
/// with SIGKILL there, as a power cut or `kill -9` would. Unset, a check costs one comparison.
///
/// Points: `after-temp-write`, `after-fsync`, `after-rename` (every atomic file write),
/// `checkpoint-folder-written` (a checkpoint complete in its temporary folder) and
/// `before-latest` (the folder in place, `latest` not yet moved).
public enum CrashPoint {
    private static let target: (name: String, count: Int)? = {
        guard let spec = ProcessInfo.processInfo.environment["TEFLA_CRASH_AT"], !spec.isEmpty else { return nil }
        let parts = spec.split(separator: "#", maxSplits: 1)
        return (String(parts[0]), parts.count > 1 ? Int(parts[1]) ?? 1 : 1)
    }()
    nonisolated(unsafe) private static var passages = 0

    @inline(__always)
    static func reach(_ name: String) {
        guard let target, target.name == name else { return }
        passages += 1
        if passages == target.count { kill(getpid(), SIGKILL) }
    }
}
