/// Pooling over NCHW activations: each of the N·C planes is pooled on its own.
extension Tensor {
    func poolingWindow(_ op: String, kernel: Size2D, stride: Size2D?, padding: Padding2D, dilation: Size2D) -> Window2D {
        precondition(rank == 4, "\(op): input \(shape) should be [N, C, H, W]")
        guard
            let window = Window2D(
                channels: shape[1], height: shape[2], width: shape[3], kernel: kernel,
                stride: stride ?? kernel, padding: padding, dilation: dilation)
        else {
            preconditionFailure("\(op): kernel \(kernel) (stride \(stride ?? kernel), padding \(padding)) does not fit input \(shape)")
        }
        if case let .explicit(t, b, l, r) = padding {
            precondition(
                Swift.max(t, b) * 2 <= kernel.height && Swift.max(l, r) * 2 <= kernel.width,
                "\(op): padding \(padding) should be at most half the kernel \(kernel) (input \(shape))")
        }
        return window
    }

    /// Max pooling (PyTorch's `max_pool2d`): y = max over each window, padding never wins.
    /// `stride` defaults to the kernel size. The gradient flows to each window's (first) maximum.
    /// Returns [N, C, OH, OW].
    public func maxPool2d(kernel: Size2D, stride: Size2D? = nil, padding: Padding2D = 0, dilation: Size2D = 1) -> Tensor {
        let window = poolingWindow("maxPool2d", kernel: kernel, stride: stride, padding: padding, dilation: dilation)
        let planes = shape[0] * shape[1]
        let backend = self.backend
        let (values, argmax) = backend.maxPool2d(storage, window: window, planes: planes)
        let inputShape = shape
        let out = Tensor(shape: [shape[0], shape[1], window.outHeight, window.outWidth], storage: values)
        return Tape.record(.maxPool2d, out, inputs: [self]) { g in
            [Tensor(shape: inputShape, storage: backend.maxPool2dBackward(g.storage, argmax: argmax, window: window, planes: planes))]
        }
    }

    /// Average pooling (PyTorch's `avg_pool2d`): the window's sum divided by its size
    /// (`countIncludePad`, PyTorch's default) or by its number of input elements.
    /// `stride` defaults to the kernel size. Returns [N, C, OH, OW].
    public func avgPool2d(kernel: Size2D, stride: Size2D? = nil, padding: Padding2D = 0, countIncludePad: Bool = true) -> Tensor {
        let window = poolingWindow("avgPool2d", kernel: kernel, stride: stride, padding: padding, dilation: 1)
        let planes = shape[0] * shape[1]
        let backend = self.backend
        let out = Tensor(
            shape: [shape[0], shape[1], window.outHeight, window.outWidth],
            storage: backend.avgPool2d(storage, window: window, planes: planes, countIncludePad: countIncludePad))
        let inputShape = shape
        return Tape.record(.avgPool2d, out, inputs: [self]) { g in
            [
                Tensor(
                    shape: inputShape,
                    storage: backend.avgPool2dBackward(
                        g.storage, window: window, planes: planes,
                        countIncludePad: countIncludePad))
            ]
        }
    }

    /// The mean of each channel's plane: [N, C, H, W] → [N, C] (one reduction over H·W).
    public func globalAvgPool2d() -> Tensor {
        precondition(rank == 4, "globalAvgPool2d: input \(shape) should be [N, C, H, W]")
        return reshaped(to: [shape[0], shape[1], shape[2] * shape[3]]).mean(alongAxes: [2])
    }
}
