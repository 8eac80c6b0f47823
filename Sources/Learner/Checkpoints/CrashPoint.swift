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
    /// Passages of the target point so far (checkpoints may be written off the training thread).
    private static let passages = Locked(0)

    @inline(__always)
    static func reach(_ name: String) {
        guard let target, target.name == name else { return }
        let passage = passages.withLock { count in
            count += 1
            return count
        }
        if passage == target.count { kill(getpid(), SIGKILL) }
    }

    private static let stallTarget: (rank: Int, step: UInt64, pidFile: String?)? = {
        let environment = ProcessInfo.processInfo.environment
        guard let spec = environment["TEFLA_STALL_AT"], !spec.isEmpty else { return nil }
        let parts = spec.split(separator: ":")
        guard parts.count == 2, let rank = Int(parts[0]), let step = UInt64(parts[1]) else { return nil }
        return (rank, step, environment["TEFLA_STALL_PID_FILE"])
    }()

    /// Fault injection for the hang tests: with `TEFLA_STALL_AT=rank:step` the data-parallel rank
    /// `rank` stops itself with SIGSTOP after optimizer step `step`, as a hung process would
    /// (writing its pid to `TEFLA_STALL_PID_FILE` first, so the test can end it).
    @inline(__always)
    static func stall(rank: Int, step: UInt64) {
        guard let target = stallTarget, target.rank == rank, target.step == step else { return }
        if let file = target.pidFile { try? "\(getpid())\n".write(toFile: file, atomically: true, encoding: .utf8) }
        kill(getpid(), SIGSTOP)
    }
}
