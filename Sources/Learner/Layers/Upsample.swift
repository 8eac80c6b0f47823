/// Nearest-neighbour upsampling of `[N, C, H, W]` by an integer factor (PyTorch's
/// `nn.Upsample(scale_factor=s, mode='nearest')`): each pixel becomes an s×s block. The
/// gradient sums each block back into its pixel.
public final class Upsample: Module {
    public let scale: Int

    public init(scale: Int = 2) {
        precondition(scale >= 1, "Upsample: scale \(scale)")
        self.scale = scale
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
        let (n, c, h, w) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        // Columns: each value repeated `scale` times; then rows: each row repeated.
        let values = input.reshaped(to: [n * c * h * w, 1])
        let wide = values.gatherRows((0..<(n * c * h * w * scale)).map { $0 / scale }).reshaped(to: [n * c * h, w * scale])
        let tall = wide.gatherRows((0..<(n * c * h * scale)).map { $0 / scale })
        return tall.reshaped(to: [n, c, h * scale, w * scale])
    }
}
