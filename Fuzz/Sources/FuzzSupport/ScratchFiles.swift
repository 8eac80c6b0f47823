import Foundation

/// This fuzzer's scratch space, `<temporary directory>/tefla-fuzz-<pid>`.
private let scratchRoot = NSTemporaryDirectory() + "tefla-fuzz-\(getpid())"

/// A folder `<scratch space>/<name>` for the targets that read files; the scratch space is
/// removed when the fuzzer exits.
public func scratchFolder(_ name: String) -> String {
    let path = scratchRoot + "/" + name
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: scratchRoot) }
    return path
}

/// Writes `count` bytes to `path` with plain POSIX calls (FileManager's atomic write costs more
/// than the parsing under test).
public func writeFile(_ path: String, _ bytes: UnsafePointer<UInt8>, _ count: Int) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    precondition(fd >= 0, "cannot write \(path)")
    var done = 0
    while done < count {
        let n = write(fd, bytes + done, count - done)
        precondition(n > 0, "cannot write \(path)")
        done += n
    }
    close(fd)
}
