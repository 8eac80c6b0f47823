extension Tensor {
    /// The same values with another shape of the same element count; one dimension may be -1.
    public func reshaped(to newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            resolved[i] = known == 0 ? 0 : scalarCount / known
        }
        precondition(ShapeMath.count(resolved) == scalarCount, "cannot reshape \(shape) to \(newShape)")
        let out = Tensor(shape: resolved, storage: storage)
        let inputShape = shape
        return Tape.record(.reshape, out, inputs: [self]) { g in [g.reshaped(to: inputShape)] }
    }

    /// Axes permuted: output axis i is input axis `permutation[i]`.
    public func transposed(_ permutation: [Int]) -> Tensor {
        precondition(permutation.sorted() == Array(0..<rank), "invalid permutation \(permutation) for rank \(rank)")
        let out = Tensor(shape: permutation.map { shape[$0] }, storage: backend.permute(storage, shape: shape, permutation: permutation))
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return Tape.record(.transpose, out, inputs: [self]) { g in [g.transposed(inverse)] }
    }

    /// The last two axes swapped.
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transposed() needs rank >= 2, got \(shape)")
        var p = Array(0..<rank)
        p.swapAt(rank - 1, rank - 2)
        return transposed(p)
    }

    /// Tensors joined along an axis; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate needs at least one tensor")
        let first = tensors[0]
        let a = ShapeMath.axis(axis, rank: first.rank)
        for t in tensors {
            precondition(
                t.rank == first.rank && t.shape.enumerated().allSatisfy { $0.offset == a || $0.element == first.shape[$0.offset] },
                "concatenate: shape \(t.shape) does not match \(first.shape) outside axis \(a)")
        }
        var outShape = first.shape
        outShape[a] = tensors.map { $0.shape[a] }.reduce(0, +)
        let outer = first.shape[..<a].reduce(1, *)
        let inner = first.shape[(a + 1)...].reduce(1, *)
        let out = Storage(count: ShapeMath.count(outShape), device: first.device)
        let outRow = outShape[a] * inner
        var offset = 0
        for t in tensors {
            precondition(t.device == first.device, "concatenate: tensors on \(first.device) and \(t.device)")
            let block = t.shape[a] * inner
            first.backend.copyRows(
                from: t.storage, offset: 0, stride: block, to: out, offset: offset, stride: outRow,
                rows: outer, rowLength: block)
            offset += block
        }
        let sizes = tensors.map { $0.shape[a] }
        return Tape.record(.concat, Tensor(shape: outShape, storage: out), inputs: tensors) { g in
            var start = 0
            return sizes.map { size in
                defer { start += size }
                return g.slice(alongAxis: a, start..<start + size)
            }
        }
    }

    /// The elements with index in `range` along `axis`.
    public func slice(alongAxis axis: Int, _ range: Range<Int>) -> Tensor {
        let a = ShapeMath.axis(axis, rank: rank)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice \(range) out of bounds for axis \(a) of \(shape)")
        let outer = shape[..<a].reduce(1, *)
        let inner = shape[(a + 1)...].reduce(1, *)
        var outShape = shape
        outShape[a] = range.count
        let out = Storage(count: ShapeMath.count(outShape), device: device)
        let block = range.count * inner
        let backend = self.backend
        backend.copyRows(
            from: storage, offset: range.lowerBound * inner, stride: shape[a] * inner, to: out, offset: 0,
            stride: block, rows: outer, rowLength: block)
        let inputShape = shape
        let device = self.device
        return Tape.record(.slice, Tensor(shape: outShape, storage: out), inputs: [self]) { g in
            let grad = Storage(zeros: ShapeMath.count(inputShape), device: device)
            backend.copyRows(
                from: g.storage, offset: 0, stride: block, to: grad, offset: range.lowerBound * inner,
                stride: inputShape[a] * inner, rows: outer, rowLength: block)
            return [Tensor(shape: inputShape, storage: grad)]
        }
    }

    /// Rows (along axis 0) picked by index: embedding lookup and batch selection.
    public func gatherRows(_ indices: [Int]) -> Tensor {
        precondition(rank >= 1, "gatherRows needs rank >= 1")
        let rows = shape[0]
        for i in indices { precondition(i >= 0 && i < rows, "row index \(i) out of range 0..<\(rows)") }
        let idx = indices.map { Int32($0) }
        let rowSize = scalarCount / Swift.max(rows, 1)
        var outShape = shape
        outShape[0] = indices.count
        let out = Tensor(shape: outShape, storage: backend.gatherRows(storage, rowSize: rowSize, indices: idx))
        let backend = self.backend
        let inputShape = shape
        return Tape.record(.gatherRows, out, inputs: [self]) { g in
            [Tensor(shape: inputShape, storage: backend.scatterAddRows(g.storage, rowSize: rowSize, indices: idx, rows: rows))]
        }
    }

    /// Flattens all axes after the first.
    public func flattened() -> Tensor { reshaped(to: [shape.first ?? 1, -1]) }
}
