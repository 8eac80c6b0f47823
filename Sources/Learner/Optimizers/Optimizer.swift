import Foundation

/// One mechanism for every optimizer: per-parameter state buffers allocated at the first
/// step and updated in place by a fused kernel; each optimizer supplies only its rule.
open class Optimizer {
    /// The learning rate of the next step (schedules set it before each step).
    public var learningRate: Float
    /// Steps taken so far.
    public internal(set) var stepCount = 0
    var state: [ObjectIdentifier: [Storage]] = [:]
    /// Updates applied to each parameter: a parameter that first gets a gradient late (frozen,
    /// then unfrozen) starts its own count, as PyTorch's per-parameter `step` does.
    var parameterSteps: [ObjectIdentifier: Int] = [:]

    public init(learningRate: Float) {
        precondition(learningRate >= 0, "learning rate \(learningRate) must be >= 0")
        self.learningRate = learningRate
    }

    /// Number of state buffers the rule keeps per parameter.
    open var stateBufferCount: Int { 0 }

    /// Names of the state buffers in checkpoints (PyTorch's names where it has them).
    open var stateBufferNames: [String] { (0..<stateBufferCount).map { "state\($0)" } }

    /// The momentum term a schedule cycles (PyTorch's OneCycleLR/CyclicLR `cycle_momentum`):
    /// SGD's and RMSProp's `momentum`, Adam's `beta1`. nil for a rule without one, where
    /// setting it does nothing.
    open var scheduledMomentum: Float? {
        get { nil }
        set {}
    }

    /// The update of one parameter; `state` holds `stateBufferCount` zero-initialised buffers
    /// and `step` counts this parameter's updates, this one included (1 on its first).
    open func update(_ weight: Storage, gradient: Storage, state: [Storage], step: Int) {}

    /// Applies one step to every parameter that has a gradient and is not frozen.
    public func step(_ parameters: [Parameter]) {
        stepCount += 1
        for p in parameters where !p.isFrozen {
            guard let g = p.gradient else { continue }
            precondition(g.shape == p.shape, "gradient \(g.shape) does not match parameter \(p.shape)")
            let key = ObjectIdentifier(p)
            let buffers: [Storage]
            if let existing = state[key] {
                buffers = existing
            } else {
                buffers = (0..<stateBufferCount).map { _ in Storage(zeros: p.value.scalarCount, device: p.device) }
                state[key] = buffers
            }
            let step = (parameterSteps[key] ?? 0) + 1
            parameterSteps[key] = step
            update(p.value.storage, gradient: g.storage, state: buffers, step: step)
        }
    }

}

/// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay
/// (Sutskever et al. 2013; PyTorch's `torch.optim.SGD` semantics).
public final class SGD: Optimizer {
    public var momentum: Float
    public var dampening: Float
    public var weightDecay: Float
    public var nesterov: Bool

    public init(learningRate: Float, momentum: Float = 0, dampening: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov momentum needs momentum > 0 and no dampening")
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        super.init(learningRate: learningRate)
    }

    public override var stateBufferCount: Int { momentum != 0 ? 1 : 0 }
    public override var scheduledMomentum: Float? {
        get { momentum }
        set { if let newValue { momentum = newValue } }
    }
    public override var stateBufferNames: [String] { ["momentum_buffer"] }

    public override func update(_ w: Storage, gradient g: Storage, state: [Storage], step: Int) {
        backendFor(w.device).sgdUpdate(
            w, g, momentum: state.first, learningRate: learningRate, momentum: momentum,
            dampening: dampening, weightDecay: weightDecay, nesterov: nesterov,
            firstStep: step == 1)
    }
}

/// Adam (Kingma & Ba 2015) with L2 weight decay, or AdamW's decoupled decay
/// (Loshchilov & Hutter 2019) when `decoupledWeightDecay` is set.
public class Adam: Optimizer {
    public var beta1: Float
    public var beta2: Float
    public var epsilon: Float
    public var weightDecay: Float
    public let decoupledWeightDecay: Bool

    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0, decoupledWeightDecay: Bool = false
    ) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        super.init(learningRate: learningRate)
    }

    public override var stateBufferCount: Int { 2 }
    public override var scheduledMomentum: Float? {
        get { beta1 }
        set { if let newValue { beta1 = newValue } }
    }
    public override var stateBufferNames: [String] { ["exp_avg", "exp_avg_sq"] }

    public override func update(_ w: Storage, gradient g: Storage, state: [Storage], step: Int) {
        let bc1 = 1 - Float(Foundation.pow(Double(beta1), Double(step)))
        let bc2 = 1 - Float(Foundation.pow(Double(beta2), Double(step)))
        backendFor(w.device).adamUpdate(
            w, g, state[0], state[1], learningRate: learningRate, beta1: beta1, beta2: beta2,
            epsilon: epsilon, weightDecay: weightDecay, decoupled: decoupledWeightDecay,
            biasCorrection1: bc1, biasCorrection2: bc2)
    }
}

/// AdamW: Adam with decoupled weight decay (default 0.01, as PyTorch).
public final class AdamW: Adam {
    public init(
        learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
        weightDecay: Float = 0.01
    ) {
        super.init(
            learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
            weightDecay: weightDecay, decoupledWeightDecay: true)
    }
}

/// RMSProp (Hinton's lecture 6e; PyTorch's `torch.optim.RMSprop` semantics, with optional
/// momentum and the centered variant).
public final class RMSProp: Optimizer {
    public var alpha: Float
    public var epsilon: Float
    public var weightDecay: Float
    public var momentum: Float
    public var centered: Bool

    public init(
        learningRate: Float = 1e-2, alpha: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0,
        momentum: Float = 0, centered: Bool = false
    ) {
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        super.init(learningRate: learningRate)
    }

    public override var stateBufferCount: Int { 3 }
    public override var scheduledMomentum: Float? {
        get { momentum }
        set { if let newValue { momentum = newValue } }
    }
    public override var stateBufferNames: [String] { ["square_avg", "momentum_buffer", "grad_avg"] }

    public override func update(_ w: Storage, gradient g: Storage, state: [Storage], step: Int) {
        backendFor(w.device).rmspropUpdate(
            w, g, square: state[0], momentum: state[1], average: state[2],
            learningRate: learningRate, alpha: alpha, epsilon: epsilon,
            weightDecay: weightDecay, momentum: momentum, centered: centered)
    }
}
