import CLearner

/// Binary element-wise operations: the enum of the C op table (Sources/CLearner/include/tl_ops.h),
/// whose cases and numbers the C and CUDA kernels share.
public typealias BinaryOp = tl_binary_op

/// Unary element-wise operations: the enum of the C op table, as ``BinaryOp``.
public typealias UnaryOp = tl_unary_op

extension UnaryOp {
    /// The op table's name of the op (its Swift case name), for messages.
    var name: String { String(cString: tl_unary_name(rawValue)) }
}

extension BinaryOp {
    var name: String { String(cString: tl_binary_name(rawValue)) }
}

/// The kernels a device provides. A backend knows nothing of layers or training: it maps
/// storages to storages. Ops on ``Tensor`` check shapes, pick the backend of their inputs'
/// device, and record the tape; backends only compute.
public protocol Backend: Sendable {
    var device: Device { get }
    func binary(_ op: BinaryOp, _ a: Storage, shape aShape: [Int], _ b: Storage, shape bShape: [Int], outShape: [Int]) -> Storage
    func unary(_ op: UnaryOp, _ x: Storage) -> Storage
    /// Gradient of a unary activation from its input, its output and the upstream gradient; x or
    /// y may be nil when the op's backward formula does not read it (`tl_unary_backward_reads`).
    func unaryBackward(_ op: UnaryOp, x: Storage?, y: Storage?, gradient: Storage) -> Storage
    /// x * scale + shift
    func affine(_ x: Storage, scale: Float, shift: Float) -> Storage
    func pow(_ x: Storage, _ exponent: Float) -> Storage
    /// Row-major C[M,N] = op(A) op(B) (+ C when accumulate).
    func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, a: Storage, b: Storage, into c: Storage, accumulate: Bool)
    /// Row-major C_i[M,N] = op(A_i) op(B_i) (+ C_i when accumulate) for i < batch, each operand
    /// holding its matrices one after another (attention's per-head products).
    func gemmBatched(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, batch: Int, a: Storage, b: Storage, into c: Storage,
        accumulate: Bool)
    /// Sum or max over the middle axis of an [outer, mid, inner] view; max also returns the argmax.
    func reduce(sum: Bool, _ x: Storage, outer: Int, mid: Int, inner: Int) -> (Storage, [Int32]?)
    func softmax(_ x: Storage, rows: Int, columns: Int, log: Bool) -> Storage
    func permute(_ x: Storage, shape: [Int], permutation: [Int]) -> Storage
    func sumAll(_ x: Storage) -> Float
    /// out[i, :] = x[indices[i], :]
    func gatherRows(_ x: Storage, rowSize: Int, indices: [Int32]) -> Storage
    /// out[indices[i], :] += g[i, :] over a zero tensor of `rows` rows.
    func scatterAddRows(_ g: Storage, rowSize: Int, indices: [Int32], rows: Int) -> Storage

    func fill(_ s: Storage, value: Float)
    /// y = x Wᵀ + b for x [m, k], W [n, k], b [n] (PyTorch's `nn.Linear`).
    func linear(_ x: Storage, _ w: Storage, _ b: Storage?, m: Int, n: Int, k: Int) -> Storage
    /// Copies `rows` rows of `rowLength` floats between strided positions (concat, slice).
    func copyRows(
        from src: Storage, offset srcOffset: Int, stride srcStride: Int,
        to dst: Storage, offset dstOffset: Int, stride dstStride: Int, rows: Int, rowLength: Int)
    /// Arg-max over the middle axis of an [outer, mid, inner] view, on the host.
    func argmax(_ x: Storage, outer: Int, mid: Int, inner: Int) -> [Int32]
    /// Σᵢ wᵢ·CEᵢ / rows as a one-element storage; labels are class indices stored as floats.
    func softmaxCrossEntropy(
        _ logits: Storage, labels: Storage, weights: Storage?, smoothing: Float,
        rows: Int, columns: Int
    ) -> Storage
    /// d loss / d logits = (softmax − target)·wᵢ·scale.
    func softmaxCrossEntropyBackward(
        _ logits: Storage, labels: Storage, weights: Storage?, smoothing: Float,
        scale: Float, rows: Int, columns: Int
    ) -> Storage
    /// Mean stable sigmoid binary cross-entropy; weights are per row of `perRow` elements.
    func sigmoidCrossEntropy(_ logits: Storage, targets: Storage, weights: Storage?, perRow: Int) -> Storage
    func sigmoidCrossEntropyBackward(_ logits: Storage, targets: Storage, weights: Storage?, perRow: Int, scale: Float) -> Storage
    /// Inverted-dropout mask: 1/(1−rate) or 0 per element, a pure function of (key, step, index).
    func dropoutMask(count: Int, rate: Float, key: UInt64, step: UInt64) -> Storage

    // Convolution, pooling and batch normalisation over NCHW activations (see Window2D.swift
    // for the geometry and CPUBackend+Conv.swift for the CPU kernels).
    /// y [N, outC, OH, OW] = conv(x [N, C, H, W], w [outC, C/groups, kH, kW]) + b [outC].
    func conv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry: Conv2DGeometry) -> Storage
    /// dL/dx [N, C, H, W] from dL/dy (the adjoint of conv2d in x: col2im(Wᵀ·g)).
    func conv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry: Conv2DGeometry) -> Storage
    /// dL/dw [outC, C/groups, kH, kW] = Σₙ gₙ · im2col(xₙ)ᵀ per group.
    func conv2dBackwardWeight(_ gradient: Storage, input: Storage, geometry: Conv2DGeometry) -> Storage
    /// The gradients conv2d's backward pass needs: dL/dx when the weight is given, dL/dw when the
    /// input is. A backend whose two passes share work (the CPU swaps the gradient into its GEMM
    /// layout once) does both in one walk over the batch.
    func conv2dBackward(_ gradient: Storage, input: Storage?, weight: Storage?, geometry: Conv2DGeometry)
        -> (input: Storage?, weight: Storage?)
    /// Max pooling of `planes` planes; argmax holds each maximum's flat index in its plane, as floats.
    func maxPool2d(_ x: Storage, window: Window2D, planes: Int) -> (output: Storage, argmax: Storage)
    func maxPool2dBackward(_ gradient: Storage, argmax: Storage, window: Window2D, planes: Int) -> Storage
    func avgPool2d(_ x: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage
    func avgPool2dBackward(_ gradient: Storage, window: Window2D, planes: Int, countIncludePad: Bool) -> Storage
    /// Per-channel mean and biased variance of x viewed as [batch, channels, spatial].
    func batchNormStatistics(_ x: Storage, batch: Int, channels: Int, spatial: Int) -> (mean: Storage, variance: Storage)
    /// y = (x − mean)/√(variance + ε)·weight + bias per channel of x [batch, channels, spatial].
    func batchNorm(
        _ x: Storage, mean: Storage, variance: Storage, weight: Storage, bias: Storage, epsilon: Float,
        batch: Int, channels: Int, spatial: Int
    ) -> Storage
    /// Gradients of ``batchNorm(_:mean:variance:weight:bias:epsilon:batch:channels:spatial:)``;
    /// `batchStatistics`: mean and variance are x's own and are differentiated through.
    func batchNormBackward(
        _ gradient: Storage, input: Storage, mean: Storage, variance: Storage, weight: Storage,
        epsilon: Float, batchStatistics: Bool, batch: Int, channels: Int, spatial: Int
    )
        -> (input: Storage, weight: Storage, bias: Storage)

    // Fused optimizer updates, in place (PyTorch semantics; see the C kernels).
    func sgdUpdate(
        _ w: Storage, _ g: Storage, momentum buffer: Storage?, learningRate: Float, momentum: Float,
        dampening: Float, weightDecay: Float, nesterov: Bool, firstStep: Bool)
    func adamUpdate(
        _ w: Storage, _ g: Storage, _ m: Storage, _ v: Storage, learningRate: Float, beta1: Float,
        beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool, biasCorrection1: Float,
        biasCorrection2: Float)
    func rmspropUpdate(
        _ w: Storage, _ g: Storage, square: Storage, momentum buffer: Storage, average: Storage,
        learningRate: Float, alpha: Float, epsilon: Float, weightDecay: Float, momentum: Float,
        centered: Bool)
}

extension Backend {
    public func conv2dBackward(_ gradient: Storage, input: Storage?, weight: Storage?, geometry: Conv2DGeometry)
        -> (input: Storage?, weight: Storage?)
    {
        (
            weight.map { conv2dBackwardInput(gradient, weight: $0, geometry: geometry) },
            input.map { conv2dBackwardWeight(gradient, input: $0, geometry: geometry) }
        )
    }
}

/// The backend that computes on `device`.
func backendFor(_ device: Device) -> any Backend {
    switch device {
    case .cpu: return CPUBackend.shared
    case .cuda(let index): return CUDABackend.forDevice(index)
    }
}
