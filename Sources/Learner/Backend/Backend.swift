/// Binary element-wise operations, numbered as the C kernels number them.
public enum BinaryOp: Int32, Sendable {
    case add = 0, subtract, multiply, divide, maximum, minimum, pow, equal, greater, less, greaterEqual, lessEqual
}

/// Unary element-wise operations, numbered as the C kernels number them.
public enum UnaryOp: Int32, Sendable {
    case negate = 0, exp, log, sqrt, relu, sigmoid, tanh, gelu, abs, sign, square, reciprocal
}

/// The kernels a device provides. A backend knows nothing of layers or training: it maps
/// storages to storages. Ops on ``Tensor`` check shapes, pick the backend of their inputs'
/// device, and record the tape; backends only compute.
public protocol Backend: Sendable {
    var device: Device { get }
    func binary(_ op: BinaryOp, _ a: Tensor, _ b: Tensor, outShape: [Int]) -> Storage
    func unary(_ op: UnaryOp, _ x: Storage) -> Storage
    /// Gradient of a unary activation from its input, its output and the upstream gradient.
    func unaryBackward(_ op: UnaryOp, x: Storage, y: Storage, gradient: Storage) -> Storage
    /// x * scale + shift
    func affine(_ x: Storage, scale: Float, shift: Float) -> Storage
    func pow(_ x: Storage, _ exponent: Float) -> Storage
    /// Row-major C[M,N] = op(A) op(B) (+ C when accumulate).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: Storage, b: Storage, into c: Storage, accumulate: Bool)
    /// Sum or max over the middle axis of an [outer, mid, inner] view; max also returns the argmax.
    func reduce(sum: Bool, _ x: Storage, outer: Int, mid: Int, inner: Int) -> (Storage, [Int32]?)
    func softmax(_ x: Storage, rows: Int, columns: Int, log: Bool) -> Storage
    func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage
    func sumAll(_ x: Storage) -> Float
    /// out[i, :] = x[indices[i], :]
    func gatherRows(_ x: Storage, rowSize: Int, indices: [Int32]) -> Storage
    /// out[indices[i], :] += g[i, :] over a zero tensor of `rows` rows.
    func scatterAddRows(_ g: Storage, rowSize: Int, indices: [Int32], rows: Int) -> Storage
}

extension Tensor {
    /// The backend of this tensor's device.
    var backend: any Backend {
        switch device {
        case .cpu: return CPUBackend.shared
        case .cuda: fatalError("no CUDA backend is registered for \(device)")
        }
    }
}
