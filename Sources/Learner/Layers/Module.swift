/// A trainable tensor with a name. The optimizer updates `value`'s storage in place; the
/// tensor stays a leaf of the tape across steps.
public final class Parameter {
    public private(set) var value: Tensor
    /// The gradient of the last backward pass, set by the learner.
    public var gradient: Tensor?
    /// Frozen parameters get no gradient and no update (fine-tuning).
    public var isFrozen = false

    public init(_ value: Tensor) { self.value = value.detached().trainable() }

    /// A buffer: non-trainable state (frozen, never given a gradient). See ``Module/localBuffers``.
    public static func buffer(_ value: Tensor) -> Parameter {
        let p = Parameter(value)
        p.isFrozen = true
        return p
    }

    public var shape: [Int] { value.shape }

    /// Replaces the values (same shape), keeping the identity the optimizer state is keyed by.
    public func assign(_ newValue: Tensor) {
        precondition(newValue.shape == value.shape, "assign: shape \(newValue.shape) differs from \(value.shape)")
        DeviceCopy.copy(from: newValue.storage, to: value.storage)
    }

    public var device: Device { value.device }

    /// Moves the values to `device`; optimizer state made on another device must not be reused.
    func move(to device: Device) {
        guard device != value.device else { return }
        value = value.to(device).trainable()
        gradient = nil
    }
}

/// The base of every layer: a function of its input with named parameters and sub-modules.
/// Parameter paths join the property names with dots (`0.weight`, `encoder.1.bias`), the
/// names a PyTorch `state_dict` of the same architecture uses.
open class Module {
    /// Training mode turns on dropout and batch statistics; set it with ``train()``/``eval()``.
    public private(set) var isTraining = true
    /// The key of the current step's random draws (dropout masks), set by the learner.
    /// The salt is derived from the module's path in the model, so draws do not depend on
    /// the order in which modules were constructed.
    public internal(set) var randomKey: (seed: UInt64, step: UInt64, salt: UInt64) = (0, 0, 0)
    /// The global index of the first sample of the batch this module sees: a data-parallel
    /// replica given rows r ..< r + n of a global batch draws those rows' dropout masks.
    public internal(set) var randomSampleOffset = 0

    public init() {}

    /// The computation of the layer. Subclasses override this.
    open func forward(_ input: Tensor) -> Tensor { input }

    /// For a layer that reads the data itself (an ``Embedding``'s indices): the first sample of
    /// a host batch it cannot take, and why; `fit` names it before the step. nil: all fine.
    open func firstInvalidSample(_ input: Tensor) -> (sample: Int, reason: String)? { nil }

    /// Whether ``firstInvalidSample(_:)`` checks anything (so data held in memory is checked
    /// once, before training, only when it does).
    open var checksSamples: Bool { false }

    public func callAsFunction(_ input: Tensor) -> Tensor { forward(input) }

    /// The shape of one sample's output for one sample's input of `shape` (the batch axis left
    /// out), or a ``ShapeError`` naming the layer when that input cannot flow through it.
    ///
    /// Every layer of the package states its rule. A layer without one is run once on a zero
    /// sample in evaluation mode; such a layer traps on a shape it cannot take, so a custom
    /// layer overrides this to report a wrong shape as an error before training.
    open func outputShape(forInput shape: [Int]) throws -> [Int] {
        let wasTraining = isTraining
        eval()
        defer { setTraining(wasTraining) }
        let device = (namedParameters.first ?? namedBuffers.first)?.parameter.device ?? .cpu
        return withoutGradients { Array(forward(Tensor.zeros([1] + shape, on: device)).shape.dropFirst()) }
    }

    /// Parameters owned directly by this module, with their local names.
    open var localParameters: [(String, Parameter)] { [] }

    /// Sub-modules with their local names.
    open var children: [(String, Module)] { [] }

    /// Non-trainable state owned directly by this module (BatchNorm's `running_mean`,
    /// `running_var`, `num_batches_tracked`), with its local names. Buffers are frozen
    /// ``Parameter``s: checkpoints save and load them like parameters, but they are not in
    /// ``Module/namedParameters`` (so neither the optimizer nor ``Module/parameterCount`` sees them) and the
    /// module updates them itself, in place, during its forward pass.
    open var localBuffers: [(String, Parameter)] { [] }

    /// Every buffer of this module and its descendants, by dotted path (PyTorch's `named_buffers`).
    public var namedBuffers: [(name: String, parameter: Parameter)] {
        var result = localBuffers.map { (name: $0.0, parameter: $0.1) }
        for (childName, child) in children {
            result += child.namedBuffers.map { (name: "\(childName).\($0.name)", parameter: $0.parameter) }
        }
        return result
    }

    /// Parameters and buffers by dotted path, each module's parameters then its buffers, then
    /// its children's: the entries and order of a PyTorch `state_dict`.
    public var namedParametersAndBuffers: [(name: String, parameter: Parameter)] {
        var result = localParameters.map { (name: $0.0, parameter: $0.1) } + localBuffers.map { (name: $0.0, parameter: $0.1) }
        for (childName, child) in children {
            result += child.namedParametersAndBuffers.map { (name: "\(childName).\($0.name)", parameter: $0.parameter) }
        }
        return result
    }

    /// Every parameter of this module and its descendants, by dotted path, in a stable order.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var result = localParameters.map { (name: $0.0, parameter: $0.1) }
        for (childName, child) in children {
            result += child.namedParameters.map { (name: "\(childName).\($0.name)", parameter: $0.parameter) }
        }
        return result
    }

    public var parameters: [Parameter] { namedParameters.map { $0.parameter } }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.scalarCount } }

    /// Moves every parameter to `device` (before training: optimizer state is per device).
    public func move(to device: Device) {
        for p in parameters { p.move(to: device) }
        for (_, b) in namedBuffers { b.move(to: device) }
        place(on: device)
    }

    /// The device the module's parameters live on (set by ``move(to:)``): where a layer declared
    /// by its outputs alone makes its weights once it learns its input size.
    public private(set) var placement: Device = .cpu

    private func place(on device: Device) {
        placement = device
        for (_, child) in children { child.place(on: device) }
    }

    /// Gives every layer declared by its outputs alone (``Dense/init(units:activation:useBias:initializer:seed:)``,
    /// ``Conv2D/init(outputChannels:kernelSize:stride:padding:dilation:groups:useBias:activation:initializer:seed:)``)
    /// its input size, making its weights, and returns the per-sample output shape: Keras'
    /// `build(input_shape)`. `fit` does this with its first batch; call it before anything that
    /// needs the parameters first (an optimizer's state, loading weights, `parameterCount`).
    /// A shape that cannot flow throws the ``ShapeError`` naming the layer.
    @discardableResult
    public func build(inputShape: [Int]) throws -> [Int] { try outputShape(forInput: inputShape) }

    public func train() { setTraining(true) }
    public func eval() { setTraining(false) }

    func setTraining(_ flag: Bool) {
        isTraining = flag
        for (_, child) in children { child.setTraining(flag) }
    }

    /// Keys this step's random draws; every module below gets its own salt from its path.
    /// `sampleOffset` is the global index of the batch's first sample (0 without data parallelism).
    public func setRandomKey(seed: UInt64, step: UInt64, salt: UInt64 = 0, sampleOffset: Int = 0) {
        randomKey = (seed, step, salt)
        randomSampleOffset = sampleOffset
        for (name, child) in children {
            var h = salt
            for byte in name.utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }  // FNV-1a over the path
            child.setRandomKey(seed: seed, step: step, salt: h, sampleOffset: sampleOffset)
        }
    }
}

/// What a layer offers its users: a function of its input, parameters discoverable by dotted
/// path (for checkpoints and optimizers), and training/evaluation modes. Every ``Module``
/// is a layer; custom layers subclass ``Module`` and override ``Module/forward(_:)``.
public protocol Layer: AnyObject {
    func callAsFunction(_ input: Tensor) -> Tensor
    var namedParameters: [(name: String, parameter: Parameter)] { get }
    var isTraining: Bool { get }
    func train()
    func eval()
}

extension Module: Layer {}
