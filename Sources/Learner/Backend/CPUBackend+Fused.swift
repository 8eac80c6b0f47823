import CLearner
import Foundation

/// The CPU's fused kernels: layers, losses, dropout masks and optimizer updates.
extension CPUBackend {
    public func fill(_ s: Storage, value: Float) { s.pointer.update(repeating: value, count: s.count) }

    public func linear(_ x: Storage, _ w: Storage, _ b: Storage?, m: Int, n: Int, k: Int) -> Storage {
        // The bias is written into the output first and sgemm accumulates onto it: one BLAS
        // call plus a row copy for the whole layer.
        let out = Storage(count: m * n)
        if let b { KernelProfile.measure(.copy) { for r in 0..<m { (out.pointer + r * n).update(from: b.pointer, count: n) } } }
        gemm(transA: false, transB: true, m: m, n: n, k: k, a: x, b: w, into: out, accumulate: b != nil)
        return out
    }

    public func copyRows(
        from src: Storage, offset srcOffset: Int, stride srcStride: Int,
        to dst: Storage, offset dstOffset: Int, stride dstStride: Int, rows: Int, rowLength: Int
    ) {
        KernelProfile.measure(.copy) {
            for r in 0..<rows {
                (dst.pointer + dstOffset + r * dstStride).update(from: src.pointer + srcOffset + r * srcStride, count: rowLength)
            }
        }
    }

    public func argmax(_ x: Storage, outer: Int, mid: Int, inner: Int) -> [Int32] {
        reduce(sum: false, x, outer: outer, mid: mid, inner: inner).1 ?? []
    }

    public func softmaxCrossEntropy(
        _ logits: Storage, labels: Storage, weights: Storage?, smoothing eps: Float,
        rows n: Int, columns c: Int
    ) -> Storage {
        let logp = softmax(logits, rows: n, columns: c, log: true)
        let lp = labels.pointer, wp = weights?.pointer
        var total = 0.0
        for i in 0..<n {
            let y = Int(lp[i])
            precondition(y >= 0 && y < c, "label \(lp[i]) at row \(i) is outside 0..<\(c)")
            let row = logp.pointer + i * c
            var loss = -Double(row[y]) * Double(1 - eps)
            if eps > 0 {
                var s = 0.0
                for j in 0..<c { s += Double(row[j]) }
                loss -= Double(eps) * s / Double(c)
            }
            total += loss * Double(wp?[i] ?? 1)
        }
        let out = Storage(count: 1)
        out.pointer[0] = Float(total / Double(n))
        return out
    }

    public func softmaxCrossEntropyBackward(
        _ logits: Storage, labels: Storage, weights: Storage?, smoothing eps: Float,
        scale: Float, rows n: Int, columns c: Int
    ) -> Storage {
        let grad = softmax(logits, rows: n, columns: c, log: false)
        let lp = labels.pointer, wp = weights?.pointer
        let offTarget = eps / Float(c)
        for i in 0..<n {
            let y = Int(lp[i])
            let w = (wp?[i] ?? 1) * scale
            let row = grad.pointer + i * c
            for j in 0..<c { row[j] = (row[j] - offTarget) * w }
            row[y] -= (1 - eps) * w
        }
        return grad
    }

    public func sigmoidCrossEntropy(_ logits: Storage, targets: Storage, weights: Storage?, perRow: Int) -> Storage {
        let xp = logits.pointer, tp = targets.pointer, wp = weights?.pointer
        var total = 0.0
        for i in 0..<logits.count {
            let x = xp[i], t = tp[i]
            let l = Swift.max(x, 0) - x * t + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
            total += Double(l) * Double(wp?[i / perRow] ?? 1)
        }
        let out = Storage(count: 1)
        out.pointer[0] = Float(total / Double(logits.count))
        return out
    }

    public func sigmoidCrossEntropyBackward(
        _ logits: Storage, targets: Storage, weights: Storage?, perRow: Int,
        scale: Float
    ) -> Storage {
        let grad = Storage(count: logits.count)
        let xp = logits.pointer, tp = targets.pointer, wp = weights?.pointer
        for i in 0..<logits.count {
            let s = 1 / (1 + Foundation.exp(-xp[i]))
            grad.pointer[i] = (s - tp[i]) * scale * (wp?[i / perRow] ?? 1)
        }
        return grad
    }

    public func dropoutMask(count: Int, rate: Float, key: UInt64, step: UInt64) -> Storage {
        let mask = Storage(count: count)
        let scale = 1 / (1 - rate)
        let mp = mask.pointer
        CPUParallel.forRanges(count) { s, e in
            for i in s..<e { mp[i] = hashedUniform(key, step, UInt64(i)) >= rate ? scale : 0 }
        }
        return mask
    }

    private func forRanges(_ n: Int, _ body: (Int, Int) -> Void) { CPUParallel.forRanges(n, minimumChunk: 1 << 14, body) }

    public func sgdUpdate(
        _ w: Storage, _ g: Storage, momentum buffer: Storage?, learningRate: Float, momentum: Float,
        dampening: Float, weightDecay: Float, nesterov: Bool, firstStep: Bool
    ) {
        let buf = buffer?.pointer
        KernelProfile.measure(.optimizer) {
            forRanges(w.count) { s, e in
                tl_sgd_update(
                    w.pointer + s, g.pointer + s, buf.map { $0 + s }, e - s, learningRate, momentum, dampening,
                    weightDecay, nesterov ? 1 : 0, firstStep ? 1 : 0)
            }
        }
    }

    public func adamUpdate(
        _ w: Storage, _ g: Storage, _ m: Storage, _ v: Storage, learningRate: Float, beta1: Float,
        beta2: Float, epsilon: Float, weightDecay: Float, decoupled: Bool, biasCorrection1: Float,
        biasCorrection2: Float
    ) {
        KernelProfile.measure(.optimizer) {
            forRanges(w.count) { s, e in
                tl_adam_update(
                    w.pointer + s, g.pointer + s, m.pointer + s, v.pointer + s, e - s, learningRate, beta1, beta2,
                    epsilon, weightDecay, decoupled ? 1 : 0, biasCorrection1, biasCorrection2)
            }
        }
    }

    public func rmspropUpdate(
        _ w: Storage, _ g: Storage, square: Storage, momentum buffer: Storage, average: Storage,
        learningRate: Float, alpha: Float, epsilon: Float, weightDecay: Float, momentum: Float,
        centered: Bool
    ) {
        forRanges(w.count) { s, e in
            tl_rmsprop_update(
                w.pointer + s, g.pointer + s, square.pointer + s, buffer.pointer + s, average.pointer + s,
                e - s, learningRate, alpha, epsilon, weightDecay, momentum, centered ? 1 : 0)
        }
    }
}
