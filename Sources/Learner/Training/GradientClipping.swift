import Foundation

/// Gradient clipping applied between the backward pass and the optimizer step.
public enum GradientClipping {
    /// Scales the gradients so that their global L2 norm is at most `maxNorm`.
    ///
    /// Each is multiplied by `maxNorm / max(‖g‖, maxNorm)`, `‖g‖` the norm of all gradients concatenated (Pascanu et al. 2013; PyTorch's `clip_grad_norm_`, which adds 1e-6
    /// to the norm). Returns the norm before clipping.
    @discardableResult
    public static func clipGlobalNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
        // One sum on the device and a single read back, not one per parameter.
        let norm = withoutGradients { () -> Float in
            var total: Tensor?
            for p in parameters {
                guard let g = p.gradient else { continue }
                let s = (g * g).sum()
                total = total.map { $0 + s } ?? s
            }
            return total.map { $0.scalar.squareRoot() } ?? 0
        }
        let scale = maxNorm / (norm + 1e-6)
        if scale < 1 {
            withoutGradients {
                for p in parameters { if let g = p.gradient { p.gradient = g * scale } }
            }
        }
        return norm
    }

    /// Clamps every gradient element to `[−limit, limit]` (PyTorch's `clip_grad_value_`, Keras' `clipvalue`).
    public static func clipValue(_ parameters: [Parameter], limit: Float) {
        withoutGradients {
            for p in parameters {
                guard let g = p.gradient else { continue }
                let low = Tensor(repeating: -limit, shape: [], on: g.device)
                let high = Tensor(repeating: limit, shape: [], on: g.device)
                p.gradient = g.maximum(low).minimum(high)
            }
        }
    }
}
