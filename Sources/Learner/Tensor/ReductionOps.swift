extension Tensor {
    /// Sum over the given axes (all axes when empty is not what you want: use ``sum()``).
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let resolved = Set(axes.map { ShapeMath.axis($0, rank: rank) }).sorted(by: >)
        var result = self.detached()
        // Adjacent axes are summed as one (a conv bias gradient's H and W: one pass over rows of
        // H·W floats rather than a pass per axis over rows of W).
        var runs: [ClosedRange<Int>] = []
        for axis in resolved {
            if let last = runs.last, last.lowerBound == axis + 1 {
                runs[runs.count - 1] = axis...last.upperBound
            } else {
                runs.append(axis...axis)
            }
        }
        for run in runs {
            let outer = result.shape[..<run.lowerBound].reduce(1, *)
            let mid = result.shape[run].reduce(1, *)
            let inner = result.shape[(run.upperBound + 1)...].reduce(1, *)
            let (storage, _) = backend.reduce(sum: true, result.storage, outer: outer, mid: mid, inner: inner)
            var newShape = result.shape
            for axis in run { newShape[axis] = 1 }
            result = Tensor(shape: newShape, storage: storage)
        }
        let keptShape = result.shape
        let finalShape = keepingDimensions ? keptShape : shape.enumerated().filter { !resolved.contains($0.offset) }.map { $0.element }
        let out = Tensor(shape: finalShape, storage: result.storage)
        let inputShape = shape
        return Tape.record(.sum, out, inputs: [self]) { g in
            [g.reshaped(to: keptShape) + Tensor.zeros(inputShape, on: g.device)]
        }
    }

    public func sum(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        sum(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// Sum of all elements, as a rank-0 tensor.
    public func sum() -> Tensor {
        let out = Tensor(repeating: backend.sumAll(storage), shape: [], on: device)
        let inputShape = shape
        return Tape.record(.sum, out, inputs: [self]) { g in [Tensor(repeating: g.scalar, shape: inputShape, on: g.device)] }
    }

    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        // Each axis once, as `sum` counts it (`[1, -1]` on a matrix is one axis).
        let n = Set(axes.map { ShapeMath.axis($0, rank: rank) }).map { shape[$0] }.reduce(1, *)
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) * (1 / Float(n))
    }

    /// Mean of all elements, as a rank-0 tensor.
    public func mean() -> Tensor {
        let n = Float(scalarCount)
        let out = Tensor(repeating: backend.sumAll(storage) / n, shape: [], on: device)
        let inputShape = shape
        return Tape.record(.mean, out, inputs: [self]) { g in [Tensor(repeating: g.scalar / n, shape: inputShape, on: g.device)] }
    }

    /// Maximum along one axis; the gradient flows to the (first) arg-max.
    public func max(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank)
        let outer = shape[..<a].reduce(1, *), mid = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        let (storage, idx) = backend.reduce(sum: false, self.storage, outer: outer, mid: mid, inner: inner)
        var keptShape = shape
        keptShape[a] = 1
        var outShape = shape
        if keepingDimensions { outShape[a] = 1 } else { outShape.remove(at: a) }
        let out = Tensor(shape: outShape, storage: storage)
        let inputShape = shape
        let device = self.device
        return Tape.record(.max, out, inputs: [self]) { g in
            // The gradient goes to the arg-max recorded by the forward pass: a one-hot mask of
            // the arg-max positions, built from the host indices and copied to the input's
            // device (no read back), times g broadcast along the reduced axis.
            var mask = [Float](repeating: 0, count: outer * mid * inner)
            for o in 0..<outer {
                for i in 0..<inner { mask[(o * mid + Int(idx![o * inner + i])) * inner + i] = 1 }
            }
            let hot = Tensor(shape: [outer, mid, inner], scalars: mask).to(device)
            return [(hot * g.reshaped(to: [outer, 1, inner])).reshaped(to: inputShape)]
        }
    }

    /// Index of the maximum along an axis, as Float values, on the host.
    public func argmax(alongAxis axis: Int) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank)
        let outer = shape[..<a].reduce(1, *), mid = shape[a], inner = shape[(a + 1)...].reduce(1, *)
        let idx = backend.argmax(storage, outer: outer, mid: mid, inner: inner)
        var outShape = shape
        outShape.remove(at: a)
        return Tensor(shape: outShape, scalars: idx.map { Float($0) })
    }
}
