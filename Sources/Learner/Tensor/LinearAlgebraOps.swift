extension Tensor {
    /// Matrix product of two rank-2 tensors (optionally transposed without a copy: the flags
    /// go to sgemm).
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(rank == 2 && other.rank == 2, "matmul needs rank-2 tensors, got \(shape) and \(other.shape)")
        let m = transposeSelf ? shape[1] : shape[0]
        let k = transposeSelf ? shape[0] : shape[1]
        let k2 = transposeOther ? other.shape[1] : other.shape[0]
        let n = transposeOther ? other.shape[0] : other.shape[1]
        precondition(
            k == k2, "matmul: inner dimensions differ: \(shape)\(transposeSelf ? "ᵀ" : "") × \(other.shape)\(transposeOther ? "ᵀ" : "")")
        let precision = Precision.current
        let a = rounded(to: precision), b = other.rounded(to: precision)
        let out = Storage(count: m * n, device: device)
        backend.gemm(
            transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k, a: a.storage, b: b.storage, into: out,
            accumulate: false)
        let needA = requiresGradient, needB = other.requiresGradient
        let result = Tensor(shape: [m, n], storage: precision.round(out, on: backend))
        return Tape.record(.matmul, result, inputs: [self, other]) { g in
            Tensor.productGradients(
                a, b, g, transposeA: transposeSelf, transposeB: transposeOther, needA: needA, needB: needB, precision: precision
            ) { $0.matmul($1, transposeSelf: $2, transposeOther: $3) }
        }
    }

    /// The gradients of C = op(A)·op(B) for matmul and batchedMatmul alike (`product` is the op
    /// itself, matrix by matrix): dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G, transposed back where op
    /// was a transpose; computed in the forward product's precision.
    private static func productGradients(
        _ a: Tensor, _ b: Tensor, _ g: Tensor, transposeA: Bool, transposeB: Bool, needA: Bool, needB: Bool,
        precision: Precision, product: (Tensor, Tensor, Bool, Bool) -> Tensor
    ) -> [Tensor?] {
        withComputePrecision(precision) {
            let ga = needA ? (transposeA ? product(b, g, transposeB, true) : product(g, b, false, !transposeB)) : nil
            let gb = needB ? (transposeB ? product(g, a, true, transposeA) : product(a, g, !transposeA, false)) : nil
            return [ga, gb]
        }
    }

    /// Batched matrix product of rank-3 tensors: C[i] = op(A[i])·op(B[i]) for each i of the
    /// leading axis ([B, m, k] × [B, k, n] → [B, m, n]; PyTorch's `torch.bmm`), the transposes
    /// going to the backend's sgemm without a copy.
    public func batchedMatmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        precondition(
            rank == 3 && other.rank == 3 && shape[0] == other.shape[0],
            "batchedMatmul needs rank-3 tensors with one batch size, got \(shape) and \(other.shape)")
        let batch = shape[0]
        let m = transposeSelf ? shape[2] : shape[1]
        let k = transposeSelf ? shape[1] : shape[2]
        let k2 = transposeOther ? other.shape[2] : other.shape[1]
        let n = transposeOther ? other.shape[1] : other.shape[2]
        precondition(
            k == k2,
            "batchedMatmul: inner dimensions differ: \(shape)\(transposeSelf ? "ᵀ" : "") × \(other.shape)\(transposeOther ? "ᵀ" : "")")
        precondition(device == other.device, "batchedMatmul: tensors on \(device) and \(other.device)")
        let precision = Precision.current
        let a = rounded(to: precision), b = other.rounded(to: precision)
        let out = Storage(count: batch * m * n, device: device)
        backend.gemmBatched(
            transA: transposeSelf, transB: transposeOther, m: m, n: n, k: k, batch: batch, a: a.storage, b: b.storage,
            into: out, accumulate: false)
        let needA = requiresGradient, needB = other.requiresGradient
        let result = Tensor(shape: [batch, m, n], storage: precision.round(out, on: backend))
        return Tape.record(.batchedMatmul, result, inputs: [self, other]) { g in
            Tensor.productGradients(
                a, b, g, transposeA: transposeSelf, transposeB: transposeOther, needA: needA, needB: needB, precision: precision
            ) { $0.batchedMatmul($1, transposeSelf: $2, transposeOther: $3) }
        }
    }

    /// y = x Wᵀ + b, with W of shape [out, in] (PyTorch's `nn.Linear` layout), fused by the
    /// backend (on the CPU: one sgemm accumulating onto the bias rows).
    public func linear(weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(
            rank == 2 && weight.rank == 2 && weight.shape[1] == shape[1],
            "linear: input \(shape) does not match weight \(weight.shape) ([out, in])")
        let m = shape[0], k = shape[1], n = weight.shape[0]
        if let bias { precondition(bias.shape == [n], "linear: bias \(bias.shape) does not match \(n) outputs") }
        let precision = Precision.current
        let x = rounded(to: precision), w = weight.rounded(to: precision)
        let out = precision.round(backend.linear(x.storage, w.storage, bias?.storage, m: m, n: n, k: k), on: backend)
        let needX = requiresGradient
        var inputs = [self, weight]
        if let bias { inputs.append(bias) }
        return Tape.record(.linear, Tensor(shape: [m, n], storage: out), inputs: inputs) { g in
            withComputePrecision(precision) {
                let gx: Tensor? = needX ? g.matmul(w) : nil  // [m,n]·[n,k]
                let gw = g.matmul(x, transposeSelf: true)  // [n,m]·[m,k]
                var grads: [Tensor?] = [gx, gw]
                if bias != nil { grads.append(g.sum(alongAxis: 0)) }
                return grads
            }
        }
    }

    /// Softmax along the last axis (numerically stable: the row maximum is subtracted).
    public func softmax() -> Tensor {
        let cols = shape.last ?? 1
        let out = Tensor(shape: shape, storage: backend.softmax(storage, rows: scalarCount / Swift.max(cols, 1), columns: cols, log: false))
        return Tape.record(.softmax, out, inputs: [self]) { g in
            let y = out.detached()
            // dx = y ⊙ (g − Σ g⊙y)
            return [y * (g - (g * y).sum(alongAxis: -1, keepingDimensions: true))]
        }
    }

    /// Log-softmax along the last axis (computed as x − logsumexp(x), stable).
    public func logSoftmax() -> Tensor {
        let cols = shape.last ?? 1
        let out = Tensor(shape: shape, storage: backend.softmax(storage, rows: scalarCount / Swift.max(cols, 1), columns: cols, log: true))
        return Tape.record(.logSoftmax, out, inputs: [self]) { g in
            let p = out.detached().exp()
            return [g - p * g.sum(alongAxis: -1, keepingDimensions: true)]
        }
    }
}
