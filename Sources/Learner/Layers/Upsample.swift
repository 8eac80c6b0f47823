/// Upsampling of `[N, C, H, W]` by an integer factor (PyTorch's `nn.Upsample(scale_factor=s,
/// mode=...)`).
///
/// Nearest (the default): each pixel becomes an s×s block; the gradient sums each block back
/// into its pixel. Bilinear: each output pixel mixes the four nearest inputs, with PyTorch's
/// `align_corners` rule: false (its default) samples output pixel o at input position
/// (o + ½)/s − ½ clamped to the edge; true maps the corner pixels onto each other,
/// o·(in − 1)/(out − 1). Bilinear is separable: a product by an [out, in] interpolation matrix
/// along the width, then along the height, so its gradient is the transposed products.
public final class Upsample: Module {
    public enum Mode: Equatable, Sendable {
        case nearest
        case bilinear(alignCorners: Bool)
    }

    public let scale: Int
    public let mode: Mode

    public init(scale: Int = 2, mode: Mode = .nearest) {
        precondition(scale >= 1, "Upsample: scale \(scale)")
        self.scale = scale
        self.mode = mode
        super.init()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape.count == 3 else {
            throw shapeError("needs [channels, height, width] samples, gets \(ShapeError.text(shape))", layer: "Upsample(\(scale))")
        }
        return [shape[0], shape[1] * scale, shape[2] * scale]
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 4, "Upsample(\(scale)): input \(input.shape) should be [N, C, H, W]")
        guard scale > 1 else { return input }
        if case .bilinear(let alignCorners) = mode { return bilinear(input, alignCorners: alignCorners) }
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        // Columns: each value repeated `scale` times; then rows: each row repeated.
        let values = input.reshaped(to: [n * c * h * w, 1])
        let wide = values.gatherRows((0..<(n * c * h * w * scale)).map { $0 / scale }).reshaped(to: [n * c * h, w * scale])
        let tall = wide.gatherRows((0..<(n * c * h * scale)).map { $0 / scale })
        return tall.reshaped(to: [n, c, h * scale, w * scale])
    }

    private func bilinear(_ input: Tensor, alignCorners: Bool) -> Tensor {
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (oh, ow) = (h * scale, w * scale)
        let across = Upsample.interpolation(from: w, to: ow, scale: scale, alignCorners: alignCorners).to(input.device)
        let down = Upsample.interpolation(from: h, to: oh, scale: scale, alignCorners: alignCorners).to(input.device)
        // [N·C·H, W]·Aᵀ → [N·C, OW, H] → ·Aᵀ → [N·C, OW, OH] → [N, C, OH, OW]
        let wide = input.reshaped(to: [n * c * h, w]).matmul(across, transposeOther: true)
        let turned = wide.reshaped(to: [n * c, h, ow]).transposed().reshaped(to: [n * c * ow, h])
        let tall = turned.matmul(down, transposeOther: true)
        return tall.reshaped(to: [n * c, ow, oh]).transposed().reshaped(to: [n, c, oh, ow])
    }

    /// The [out, in] matrix of 1-D linear interpolation, PyTorch's source-index rule.
    static func interpolation(from inSize: Int, to outSize: Int, scale: Int, alignCorners: Bool) -> Tensor {
        var m = [Float](repeating: 0, count: outSize * inSize)
        for o in 0..<outSize {
            let source: Double
            if alignCorners {
                source = outSize > 1 ? Double(o) * Double(inSize - 1) / Double(outSize - 1) : 0
            } else {
                source = Swift.max((Double(o) + 0.5) / Double(scale) - 0.5, 0)
            }
            let i0 = Swift.min(Int(source.rounded(.down)), inSize - 1)
            let i1 = Swift.min(i0 + 1, inSize - 1)
            let lambda = Float(source - Double(i0))
            m[o * inSize + i0] += 1 - lambda
            m[o * inSize + i1] += lambda
        }
        return Tensor(shape: [outSize, inSize], scalars: m)
    }
}
