/// Where a tensor's storage lives. Ops run on the device of their inputs and never copy
/// silently between devices.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let index): return "cuda:\(index)"
        }
    }
}

/// Element type of a tensor. Float32 is the only one the engine computes in today; the type
/// exists so that checkpoints and later dtypes (int64 counters, half precision) have a home.
public enum DType: String, Sendable {
    case float32 = "F32"

    public var byteSize: Int { 4 }
}
