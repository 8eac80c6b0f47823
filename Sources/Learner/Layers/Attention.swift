import Foundation

/// Multi-head self-attention (Vaswani et al. 2017) over `[N, L, E]` sequences: PyTorch's
/// `nn.MultiheadAttention(E, heads, batch_first=True)` called as `attention(x, x, x)`, its
/// averaged attention weights left out.
///
/// One projection makes queries, keys and values ([N·L, 3E], `in_proj_weight` [3E, E] and
/// `in_proj_bias` [3E] as PyTorch names them); head h takes features h·D ..< (h+1)·D of each
/// (D = E / heads). Each head's scores softmax(q kᵀ / √D) weigh its values, with dropout on the
/// weights in training; the heads are joined and projected by `out_proj` [E, E]. The per-head
/// products are batched sgemms over N·heads matrices.
public final class MultiHeadAttention: Module {
    public let embedDimension: Int
    public let heads: Int
    /// Dropout on the attention weights, in training.
    public let dropout: Float
    public let inProjectionWeight: Parameter
    public let inProjectionBias: Parameter?
    public let outProjection: Dense

    public init(embedDimension: Int, heads: Int, dropout: Float = 0, useBias: Bool = true, seed: UInt64? = nil) {
        precondition(
            embedDimension > 0 && heads > 0 && embedDimension % heads == 0,
            "MultiHeadAttention: \(heads) heads must divide the width \(embedDimension)")
        precondition(dropout >= 0 && dropout < 1, "MultiHeadAttention: dropout \(dropout) must be in [0, 1)")
        self.embedDimension = embedDimension
        self.heads = heads
        self.dropout = dropout
        var generator = RandomGenerator(seed: seed ?? Dense.nextSeed())
        // PyTorch's start: Xavier-uniform over the stacked [3E, E] projection, zero biases.
        inProjectionWeight = Parameter(
            Initializer.glorotUniform.make(
                [3 * embedDimension, embedDimension], fanIn: embedDimension, fanOut: 3 * embedDimension, generator: &generator))
        inProjectionBias = useBias ? Parameter(.zeros([3 * embedDimension])) : nil
        outProjection = Dense(
            inputSize: embedDimension, units: embedDimension, useBias: useBias, seed: generator.next())
        super.init()
    }

    public var headDimension: Int { embedDimension / heads }

    private var label: String { "MultiHeadAttention(\(embedDimension), heads: \(heads))" }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape.count == 2, shape[0] > 0, shape[1] == embedDimension else {
            throw shapeError(
                "takes [tokens, \(embedDimension)] sequences, gets \(ShapeError.text(shape))"
                    + (shape.count == 1 ? " (an Embedding layer first turns token indices into vectors)" : ""),
                layer: label)
        }
        return shape
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 3 && input.shape[2] == embedDimension, "\(label): input \(input.shape) should be [N, L, \(embedDimension)]")
        let (n, l, e, d) = (input.shape[0], input.shape[1], embedDimension, headDimension)
        let qkv = input.reshaped(to: [n * l, e]).linear(weight: inProjectionWeight.value, bias: inProjectionBias?.value)
        // [N, L, (q k v), H, D] → [(q k v), N, H, L, D]: each head's rows contiguous.
        let split = qkv.reshaped(to: [n, l, 3, heads, d]).transposed([2, 0, 3, 1, 4]).reshaped(to: [3, n * heads, l, d])
        let query = split.slice(alongAxis: 0, 0..<1).reshaped(to: [n * heads, l, d]) * (1 / Float(d).squareRoot())
        let key = split.slice(alongAxis: 0, 1..<2).reshaped(to: [n * heads, l, d])
        let value = split.slice(alongAxis: 0, 2..<3).reshaped(to: [n * heads, l, d])
        var weights = query.batchedMatmul(key, transposeOther: true).softmax()  // [N·H, L, L]
        if isTraining && dropout > 0 {
            weights = weights.dropout(
                rate: dropout, seed: randomKey.seed, step: randomKey.step, salt: randomKey.salt,
                elementOffset: randomSampleOffset * heads * l * l)
        }
        let context = weights.batchedMatmul(value)  // [N·H, L, D]
        let joined = context.reshaped(to: [n, heads, l, d]).transposed([0, 2, 1, 3]).reshaped(to: [n * l, e])
        return outProjection(joined).reshaped(to: [n, l, e])
    }

    public override var localParameters: [(String, Parameter)] {
        var p = [("in_proj_weight", inProjectionWeight)]
        if let inProjectionBias { p.append(("in_proj_bias", inProjectionBias)) }
        return p
    }

    public override var children: [(String, Module)] { [("out_proj", outProjection)] }
}

/// A transformer encoder layer (Vaswani et al. 2017) over `[N, L, E]`: PyTorch's
/// `nn.TransformerEncoderLayer(E, heads, feedForward, dropout, activation, batch_first=True,
/// norm_first:)`, with its parameter names (`self_attn.*`, `linear1`, `linear2`, `norm1`, `norm2`).
///
/// Post-norm (the default, as the paper): x = norm1(x + attention(x)), then
/// x = norm2(x + linear2(activation(linear1(x)))). Pre-norm (`normFirst`, more stable for deep
/// stacks): x = x + attention(norm1(x)), then x = x + feedForward(norm2(x)). Dropout after the
/// attention, inside the feed-forward and after it, in training.
public final class TransformerEncoderBlock: Module {
    public let selfAttention: MultiHeadAttention
    public let linear1: Dense
    public let linear2: Dense
    public let norm1: LayerNorm
    public let norm2: LayerNorm
    public let dropout: Dropout
    public let dropout1: Dropout
    public let dropout2: Dropout
    public let activation: Activation
    public let normFirst: Bool

    public init(
        embedDimension: Int, heads: Int, feedForwardDimension: Int = 2048, dropout: Float = 0.1, activation: Activation = .relu,
        normFirst: Bool = false, layerNormEpsilon: Float = 1e-5, seed: UInt64? = nil
    ) {
        precondition(feedForwardDimension > 0, "TransformerEncoderBlock: feed-forward width \(feedForwardDimension)")
        var generator = RandomGenerator(seed: seed ?? Dense.nextSeed())
        selfAttention = MultiHeadAttention(embedDimension: embedDimension, heads: heads, dropout: dropout, seed: generator.next())
        linear1 = Dense(inputSize: embedDimension, units: feedForwardDimension, seed: generator.next())
        linear2 = Dense(inputSize: feedForwardDimension, units: embedDimension, seed: generator.next())
        norm1 = LayerNorm(features: embedDimension, epsilon: layerNormEpsilon)
        norm2 = LayerNorm(features: embedDimension, epsilon: layerNormEpsilon)
        self.dropout = Dropout(rate: dropout)
        dropout1 = Dropout(rate: dropout)
        dropout2 = Dropout(rate: dropout)
        self.activation = activation
        self.normFirst = normFirst
        super.init()
    }

    public var embedDimension: Int { selfAttention.embedDimension }
    public var feedForwardDimension: Int { linear1.units }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        try outputShape(of: selfAttention, named: "self_attn", forInput: shape)
    }

    private func feedForward(_ x: Tensor) -> Tensor {
        let (n, l, e) = (x.shape[0], x.shape[1], x.shape[2])
        let hidden = dropout(activation(linear1(x.reshaped(to: [n * l, e]))))
        return linear2(hidden).reshaped(to: [n, l, e])
    }

    public override func forward(_ input: Tensor) -> Tensor {
        if normFirst {
            let x = input + dropout1(selfAttention(norm1(input)))
            return x + dropout2(feedForward(norm2(x)))
        }
        let x = norm1(input + dropout1(selfAttention(input)))
        return norm2(x + dropout2(feedForward(x)))
    }

    public override var children: [(String, Module)] {
        [
            ("self_attn", selfAttention), ("linear1", linear1), ("dropout", dropout), ("linear2", linear2), ("norm1", norm1),
            ("norm2", norm2), ("dropout1", dropout1), ("dropout2", dropout2),
        ]
    }
}

/// The mean over the tokens of `[N, L, E]` sequences, giving `[N, E]` (Keras'
/// `GlobalAveragePooling1D`): a sequence classifier's pooling before its head.
public final class GlobalAvgPool1D: Module {
    public override init() { super.init() }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape.count == 2 else {
            throw shapeError("takes [tokens, features] sequences, gets \(ShapeError.text(shape))", layer: "GlobalAvgPool1D")
        }
        return [shape[1]]
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(input.rank == 3, "GlobalAvgPool1D: input \(input.shape) should be [N, L, E]")
        return input.mean(alongAxes: [1])
    }
}

/// A learned position embedding (BERT's, GPT's): a `[length, dimension]` table `weight`, whose
/// first L rows are added to `[N, L, dimension]` sequences of up to `length` tokens. Starts
/// N(0, 0.02²).
public final class PositionalEmbedding: Module {
    public let weight: Parameter
    public var length: Int { weight.shape[0] }
    public var dimension: Int { weight.shape[1] }

    public init(length: Int, dimension: Int, seed: UInt64? = nil) {
        precondition(length > 0 && dimension > 0, "PositionalEmbedding(\(length), \(dimension))")
        var generator = RandomGenerator(seed: seed ?? Dense.nextSeed())
        weight = Parameter(Tensor.randomNormal([length, dimension], standardDeviation: 0.02, generator: &generator))
        super.init()
    }

    public override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape.count == 2, shape[0] <= length, shape[1] == dimension else {
            throw shapeError(
                "adds positions to [up to \(length) tokens, \(dimension)] sequences, gets \(ShapeError.text(shape))",
                layer: "PositionalEmbedding(\(length), \(dimension))")
        }
        return shape
    }

    public override func forward(_ input: Tensor) -> Tensor {
        precondition(
            input.rank == 3 && input.shape[1] <= length && input.shape[2] == dimension,
            "PositionalEmbedding(\(length), \(dimension)): input \(input.shape)")
        let l = input.shape[1]
        let positions = l == length ? weight.value : weight.value.slice(alongAxis: 0, 0..<l)
        return input + positions
    }

    public override var localParameters: [(String, Parameter)] { [("weight", weight)] }
}
