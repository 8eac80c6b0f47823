/// Convolutions over NCHW activations.
///
/// Layout decision: activations are NCHW and weights [out, in/groups, kH, kW], PyTorch's
/// layout, so that weights, checkpoints and test fixtures move between the two 1:1 with no
/// transposition, and so that im2col on one NCHW image yields the [C·kH·kW, OH·OW] column
/// matrix that a row-major sgemm multiplies by the weight matrix [out, C·kH·kW] directly into
/// that image's NCHW output (cuDNN takes NCHW as well). NHWC would favour depthwise and
/// channel-last GPU kernels; a layout flag can come later at the layer level.
extension Tensor {
    /// Resolves the geometry of a convolution of `self` [N, C, H, W] by `weight`
    /// [outC, C/groups, kH, kW], failing with a message naming `op` and both shapes.
    func convolutionGeometry(
        _ op: String, weight: Tensor, stride: Size2D, padding: Padding2D, dilation: Size2D,
        groups: Int
    ) -> Conv2DGeometry {
        precondition(rank == 4, "\(op): input \(shape) should be [N, C, H, W]")
        precondition(weight.rank == 4, "\(op): weight \(weight.shape) should be [out, in/groups, kH, kW]")
        precondition(
            groups > 0 && shape[1] % groups == 0 && weight.shape[0] % groups == 0,
            "\(op): groups \(groups) must divide the input channels of \(shape) and the output channels of weight \(weight.shape)")
        precondition(
            weight.shape[1] * groups == shape[1],
            "\(op): input \(shape) has \(shape[1]) channels, weight \(weight.shape) expects \(weight.shape[1] * groups) (groups \(groups))")
        precondition(device == weight.device, "\(op): input on \(device), weight on \(weight.device)")
        guard
            let window = Window2D(
                channels: shape[1], height: shape[2], width: shape[3],
                kernel: Size2D(weight.shape[2], weight.shape[3]), stride: stride, padding: padding,
                dilation: dilation)
        else {
            preconditionFailure(
                "\(op): kernel \(weight.shape[2])×\(weight.shape[3]) (stride \(stride), padding \(padding), "
                    + "dilation \(dilation)) does not fit input \(shape)")
        }
        return Conv2DGeometry(batch: shape[0], window: window, outChannels: weight.shape[0], groups: groups)
    }

    /// 2-D cross-correlation (PyTorch's `conv2d`): y[n, o] = b[o] + Σ_{c ∈ group(o), i, j}
    /// w[o, c, i, j] · x[n, c, oy·s − pad + i·d, ox·s − pad + j·d].
    ///
    /// - Parameters:
    ///   - weight: [outC, C/groups, kH, kW]; `groups` = C with outC = k·C is a depthwise convolution.
    ///   - bias: [outC] or nil.
    ///   - stride: s, the step of the window along each axis.
    ///   - padding: zeros around the input: ``Padding2D/valid``, ``Padding2D/same`` or explicit rows and columns.
    ///   - dilation: d, the spacing of the kernel's taps.
    ///   - groups: channel groups; each output channel sees the C/groups input channels of its group.
    /// - Returns: [N, outC, OH, OW], OH = ⌊(H + padTop + padBottom − d·(kH − 1) − 1) / s⌋ + 1.
    public func conv2d(
        weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1, padding: Padding2D = .valid,
        dilation: Size2D = 1, groups: Int = 1
    ) -> Tensor {
        let g = convolutionGeometry("conv2d", weight: weight, stride: stride, padding: padding, dilation: dilation, groups: groups)
        if let bias { precondition(bias.shape == [g.outChannels], "conv2d: bias \(bias.shape) should be [\(g.outChannels)]") }
        let backend = self.backend
        let precision = Precision.current
        let x = rounded(to: precision), w = weight.rounded(to: precision)
        let out = Tensor(
            shape: g.outputShape,
            storage: precision.round(backend.conv2d(x.storage, weight: w.storage, bias: bias?.storage, geometry: g), on: backend))
        let needX = requiresGradient, needW = weight.requiresGradient, needB = bias?.requiresGradient ?? false
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return Tape.record(.conv2d, out, inputs: inputs) { grad in
            let (dx, dw) = backend.conv2dBackward(
                precision.round(grad.storage, on: backend), input: needW ? x.storage : nil, weight: needX ? w.storage : nil,
                geometry: g)
            var grads: [Tensor?] = [
                dx.map { Tensor(shape: g.inputShape, storage: precision.round($0, on: backend)) },
                dw.map { Tensor(shape: g.weightShape, storage: precision.round($0, on: backend)) },
            ]
            if bias != nil { grads.append(needB ? grad.sum(alongAxes: [0, 2, 3]) : nil) }
            return grads
        }
    }

    /// Transposed convolution (PyTorch's `conv_transpose2d`), the adjoint of ``conv2d(weight:bias:stride:padding:dilation:groups:)``
    /// in its input: a convolution's input gradient applied as a forward pass.
    ///
    /// - Parameters:
    ///   - weight: [C, outC/groups, kH, kW] (PyTorch's `ConvTranspose2d` layout).
    ///   - bias: [outC] or nil.
    ///   - stride: s, the step of the transposed convolution's window along each axis.
    ///   - padding: explicit padding only (the padding of the convolution this one transposes).
    ///   - outputPadding: extra rows/columns at the bottom/right, each < stride (or < dilation).
    ///   - dilation: d, the spacing of the kernel's taps.
    ///   - groups: channel groups, as in the convolution this one transposes.
    /// - Returns: [N, outC, OH, OW], OH = (H − 1)·s − padTop − padBottom + d·(kH − 1) + 1 + outputPadding.
    public func convTranspose2d(
        weight: Tensor, bias: Tensor? = nil, stride: Size2D = 1, padding: Padding2D = 0,
        outputPadding: Size2D = 0, dilation: Size2D = 1, groups: Int = 1
    ) -> Tensor {
        precondition(
            rank == 4 && weight.rank == 4,
            "convTranspose2d: input \(shape) should be [N, C, H, W], weight \(weight.shape) [C, out/groups, kH, kW]")
        precondition(
            groups > 0 && shape[1] % groups == 0 && weight.shape[0] == shape[1],
            "convTranspose2d: input \(shape) has \(shape[1]) channels, weight \(weight.shape) expects \(weight.shape[0]) (groups \(groups))"
        )
        guard case let .explicit(top, bottom, left, right) = padding else {
            preconditionFailure("convTranspose2d: padding must be explicit, got \(padding)")
        }
        precondition(
            outputPadding.height >= 0 && outputPadding.width >= 0
                && (outputPadding.height < stride.height || outputPadding.height < dilation.height)
                && (outputPadding.width < stride.width || outputPadding.width < dilation.width),
            "convTranspose2d: output padding \(outputPadding) must be smaller than stride \(stride) or dilation \(dilation)")
        let outC = weight.shape[1] * groups
        let oh = (shape[2] - 1) * stride.height - top - bottom + dilation.height * (weight.shape[2] - 1) + 1 + outputPadding.height
        let ow = (shape[3] - 1) * stride.width - left - right + dilation.width * (weight.shape[3] - 1) + 1 + outputPadding.width
        // The convolution from the output [N, outC, OH, OW] back to the input's shape.
        guard oh > 0, ow > 0,
            let window = Window2D(
                channels: outC, height: oh, width: ow, kernel: Size2D(weight.shape[2], weight.shape[3]),
                stride: stride, padding: padding, dilation: dilation),
            window.outHeight == shape[2], window.outWidth == shape[3]
        else {
            preconditionFailure(
                "convTranspose2d: weight \(weight.shape) with stride \(stride), padding \(padding), "
                    + "dilation \(dilation) does not fit input \(shape)")
        }
        if let bias { precondition(bias.shape == [outC], "convTranspose2d: bias \(bias.shape) should be [\(outC)]") }
        let g = Conv2DGeometry(batch: shape[0], window: window, outChannels: shape[1], groups: groups)
        let backend = self.backend
        let precision = Precision.current
        let x = rounded(to: precision), w = weight.rounded(to: precision)
        var out = Tensor(
            shape: g.inputShape,
            storage: precision.round(backend.conv2dBackwardInput(x.storage, weight: w.storage, geometry: g), on: backend))
        let needX = requiresGradient, needW = weight.requiresGradient
        out = Tape.record(.convTranspose2d, out, inputs: [self, weight]) { grad in
            let gr = precision.round(grad.storage, on: backend)
            let dx = needX ? backend.conv2d(gr, weight: w.storage, bias: nil, geometry: g) : nil
            let dw = needW ? backend.conv2dBackwardWeight(x.storage, input: gr, geometry: g) : nil
            return [
                dx.map { Tensor(shape: g.outputShape, storage: precision.round($0, on: backend)) },
                dw.map { Tensor(shape: g.weightShape, storage: precision.round($0, on: backend)) },
            ]
        }
        if let bias { out = out + bias.reshaped(to: [1, outC, 1, 1]) }
        return out
    }
}
