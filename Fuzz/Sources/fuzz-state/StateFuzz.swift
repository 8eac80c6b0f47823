import Foundation
import Learner

/// A checkpoint folder's state.json, read the way a resumed run reads it
/// (``WeightsDirectory/readState(_:)``): it decodes, or throws ``CheckpointError``.
private let folder: String = {
    let path = NSTemporaryDirectory() + "tefla-fuzz-state-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + "tefla-fuzz-state-\(getpid())") }
    return path
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzState(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let file = folder + "/" + WeightsDirectory.stateFile
    writeFile(file, bytes, count)
    do {
        let state = try WeightsDirectory.readState(folder)
        // What was read writes back (when JSON can hold it: not an infinite learning rate) and
        // reads again as the same state.
        if let written = try? JSONEncoder().encode(state) {
            let again = try JSONDecoder().decode(TrainingState.self, from: written)
            precondition(again == state, "state.json does not read back as written")
        }
    } catch is CheckpointError {
    } catch {
        fatalError("an error other than CheckpointError: \(error)")
    }
    return 0
}

/// Writes `count` bytes to `path` with plain POSIX calls (FileManager's atomic write costs more
/// than the parsing under test).
private func writeFile(_ path: String, _ bytes: UnsafePointer<UInt8>, _ count: Int) {
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
