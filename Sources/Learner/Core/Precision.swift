import CLearner

/// The number format matrix products and convolutions compute in: mixed precision, as
/// PyTorch's `torch.autocast` and Keras' `mixed_float16` / `mixed_bfloat16` policies.
///
/// Under ``bf16`` or ``fp16`` the operands of every matrix product (``Tensor/matmul(_:transposeSelf:transposeOther:)``,
/// ``Tensor/batchedMatmul(_:transposeSelf:transposeOther:)``, ``Tensor/linear(weight:bias:)``)
/// and convolution (``Tensor/conv2d(weight:bias:stride:padding:dilation:groups:)``,
/// ``Tensor/convTranspose2d(weight:bias:stride:padding:outputPadding:dilation:groups:)``) and
/// their results are rounded to the 16-bit format; the products accumulate in fp32. Their
/// backward passes do the same with the incoming gradient and the gradients they produce.
/// Everything else (batch norm, softmax, losses, the optimizer) stays fp32, and so do the
/// weights and the optimizer's state: the master copies that checkpoints hold.
///
/// Storage stays fp32 on every device: a rounded value is held as the float it equals, so a
/// 16-bit run gives the numbers a 16-bit run gives (fp16's overflow above 65504 and its
/// underflow below 2⁻²⁴ included, which is why ``fp16`` needs a ``LossScaler``) on the CPU
/// and GPU alike.
public enum Precision: String, CaseIterable, Sendable, Codable {
    /// IEEE single precision throughout (the default).
    case fp32
    /// bfloat16 operands (8 exponent bits, 8 significand bits): fp32's range, so no loss scaling.
    case bf16
    /// IEEE half operands (5 exponent bits, 11 significand bits): small gradients underflow
    /// unless the loss is scaled (``TrainingOptions/lossScaling``).
    case fp16

    /// The precision of the calling thread's matrix products and convolutions: fp32 unless
    /// inside ``withComputePrecision(_:_:)``.
    public static var current: Precision {
        switch tl_compute_precision() {
        case 1: return .bf16
        case 2: return .fp16
        default: return .fp32
        }
    }

    var code: Int32 {
        switch self {
        case .fp32: return 0
        case .bf16: return 1
        case .fp16: return 2
        }
    }

    /// The op table's rounding op to this format; nil for fp32.
    var roundingOp: UnaryOp? {
        switch self {
        case .fp32: return nil
        case .bf16: return .roundBF16
        case .fp16: return .roundFP16
        }
    }

    /// `storage` rounded to this format (a new storage), or `storage` itself for fp32.
    func round(_ storage: Storage, on backend: any Backend) -> Storage {
        guard let op = roundingOp else { return storage }
        return backend.unary(op, storage)
    }

    /// The largest finite value of the format.
    public var greatestFiniteMagnitude: Float {
        switch self {
        case .fp32: return .greatestFiniteMagnitude
        case .bf16: return Float(bitPattern: 0x7F7F_0000)
        case .fp16: return 65504
        }
    }
}

/// Runs `body` with the calling thread's matrix products and convolutions computing in
/// `precision` (see ``Precision``); the previous precision is restored after it. Backward passes
/// of the ops recorded inside run in the precision they were recorded in, wherever they run.
public func withComputePrecision<T>(_ precision: Precision, _ body: () throws -> T) rethrows -> T {
    let previous = tl_compute_precision()
    tl_set_compute_precision(precision.code)
    defer { tl_set_compute_precision(previous) }
    return try body()
}

extension Tensor {
    /// The values rounded to `precision`, without gradient: what a 16-bit copy of the tensor
    /// holds (PyTorch's `x.to(torch.bfloat16).float()`); for fp32 the tensor itself, detached.
    public func rounded(to precision: Precision) -> Tensor {
        precision == .fp32 ? detached() : Tensor(shape: shape, storage: precision.round(storage, on: backend))
    }
}
