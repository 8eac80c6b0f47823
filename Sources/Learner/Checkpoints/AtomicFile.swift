import Foundation

/// Crash-safe file replacement: the new content goes to a temporary file in the same folder,
/// is flushed to the disk, and is renamed over the target; then the folder itself is flushed so
/// that the rename survives a power cut. A crash at any moment leaves either the old file or
/// the new one, never a torn mix.
public enum AtomicFile {
    public struct WriteError: Error, CustomStringConvertible {
        /// The file being written (the target, not the temporary file beside it).
        public let path: String
        public let operation: String
        public let code: Int32
        public var description: String { "\(path): \(operation) failed: \(String(cString: strerror(code)))" }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw WriteError(path: path, operation: "create", code: errno) }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        do {
            try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                var offset = 0
                while offset < raw.count {
                    let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw WriteError(path: path, operation: "write", code: errno)
                    }
                    offset += n
                }
            }
            CrashPoint.reach("after-temp-write")
            guard fsync(fd) == 0 else { throw WriteError(path: path, operation: "fsync", code: errno) }
            CrashPoint.reach("after-fsync")
            closed = true
            guard close(fd) == 0 else { throw WriteError(path: path, operation: "close", code: errno) }
            guard rename(temporary, path) == 0 else { throw WriteError(path: path, operation: "rename", code: errno) }
            CrashPoint.reach("after-rename")
        } catch {
            unlink(temporary)
            throw error
        }
        syncDirectory(directory)
    }

    /// Flushes a folder's entries (renames, new files) to the disk.
    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}
