import Foundation

@testable import Learner

/// A safetensors file: an 8-byte header length, a JSON header, the tensors' bytes. Any input
/// either decodes or throws ``CheckpointError``; nothing else may happen.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: bytes, count: count)
    do {
        let (entries, _) = try SafeTensors.decode(data, path: "fuzz.safetensors")
        for (name, entry) in entries {
            precondition(entry.values.count == entry.shape.reduce(1, *), "tensor '\(name)': values do not fill its shape")
        }
    } catch is CheckpointError {
    } catch {
        fatalError("an error other than CheckpointError: \(error)")
    }
    return 0
}
