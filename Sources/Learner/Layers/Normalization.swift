/// Batch normalisation (Ioffe & Szegedy 2015) of [N, C, H, W] (or [N, C]) activations.
///
/// Training: y = (x − μ_B) / √(σ²_B + ε) · γ + β with the batch's per-channel mean μ_B and
/// biased variance σ²_B over N·H·W values; then, as PyTorch,
/// running_mean ← (1 − m)·running_mean + m·μ_B and running_var ← (1 − m)·running_var + m·σ²_B·M/(M − 1)
/// (the unbiased variance, M = N·H·W), and num_batches_tracked += 1. With `momentum` nil the
/// running statistics are the cumulative average (m = 1 / num_batches_tracked).
/// Evaluation: normalises with the running statistics.
///
/// Names as PyTorch's `nn.BatchNorm2d`: parameters `weight` (γ, starts at 1) and `bias`
/// (β, starts at 0); buffers `running_mean` (0), `running_var` (1) and `num_batches_tracked`
/// (stored as a float: the engine computes in Float32).
public final class BatchNorm2D: Module {
    public let weight: Parameter
    public let bias: Parameter
    public let runningMean: Parameter
    public let runningVariance: Parameter
    public let batchesTracked: Parameter
    public let momentum: Float?
    public let epsilon: Float
    /// Batch statistics over the global batch of every data-parallel replica (PyTorch's
    /// `SyncBatchNorm`), so that N replicas with B/N samples each train as one with B; off, each
    /// replica normalises its own share. One all-reduce of 2C + 1 values in the forward pass and
    /// one of 2C in the backward pass per layer and step. Without replicas it changes nothing.
    public var synchronized: Bool

    public init(features: Int, momentum: Float? = 0.1, epsilon: Float = 1e-5, synchronized: Bool = false) {
        weight = Parameter(.ones([features]))
        bias = Parameter(.zeros([features]))
        runningMean = .buffer(.zeros([features]))
        runningVariance = .buffer(.ones([features]))
        batchesTracked = .buffer(.zeros([]))
        self.momentum = momentum
        self.epsilon = epsilon
        self.synchronized = synchronized
        super.init()
    }

    public var features: Int { weight.shape[0] }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard (shape.count == 3 || shape.count == 1) && shape[0] == features else {
            throw shapeError(
                "normalises \(features) channels of [channels, height, width] or [features] samples, gets \(ShapeError.text(shape))",
                layer: "BatchNorm2D(\(features))")
        }
        return shape
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            (input.rank == 4 || input.rank == 2) && input.shape[1] == features,
            "BatchNorm2D(\(features)): input shape \(input.shape) should be [N, \(features), H, W] (weight \(weight.shape))")
        guard isTraining else {
            return input.batchNorm(
                weight: weight.value, bias: bias.value, mean: runningMean.value,
                variance: runningVariance.value, epsilon: epsilon)
        }
        let output: Tensor, mean: Tensor, variance: Tensor, count: Int
        if synchronized, ReplicaContext.current != nil {
            (output, mean, variance, count) = input.synchronizedBatchNorm(
                weight: weight.value, bias: bias.value, epsilon: epsilon, allReduceSum: ReplicaContext.allReduceSum)
        } else {
            count = input.scalarCount / features
            (output, mean, variance) = input.batchNorm(weight: weight.value, bias: bias.value, epsilon: epsilon)
        }
        precondition(count > 1, "BatchNorm2D(\(features)): training needs more than one value per channel, input shape \(input.shape)")
        withoutGradients {
            let tracked = batchesTracked.value + 1
            batchesTracked.assign(tracked)
            // The cumulative average needs the count on the host; the default momentum does not.
            let m = momentum ?? 1 / tracked.scalar
            runningMean.assign(runningMean.value * (1 - m) + mean * m)
            runningVariance.assign(runningVariance.value * (1 - m) + variance * (m * Float(count) / Float(count - 1)))
        }
        return output
    }

    public override var localParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }

    public override var localBuffers: [(String, Parameter)] {
        [("running_mean", runningMean), ("running_var", runningVariance), ("num_batches_tracked", batchesTracked)]
    }
}
