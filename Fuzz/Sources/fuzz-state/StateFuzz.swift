import Foundation
import FuzzSupport
import Learner

/// A checkpoint folder's state.json, read the way a resumed run reads it
/// (``WeightsDirectory/readState(_:)``): it decodes, or throws ``CheckpointError``.
private let folder = scratchFolder("state")

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
