import Foundation
import TestSupport
import XCTest

@testable import Learner

/// LayerNorm, GroupNorm, Embedding, Upsample and the new activations against PyTorch
/// (Scripts/fixtures/make_layer_fixtures.py: outputs and gradients with the same weights, by
/// PyTorch's state_dict names), against finite differences, and through a checkpoint.
final class LayerParityTests: XCTestCase {
    struct Values: Decodable {
        let shape: [Int]
        let values: [Float]
        var tensor: Tensor { Tensor(shape: shape, scalars: values) }
    }
    struct Case: Decodable {
        let kind: String
        let args: [String: Argument]
        let params: [String: Values]
        let input: Values
        let upstream: Values
        let output: Values
        let input_gradient: Values?
        let param_gradients: [String: Values]
    }
    enum Argument: Decodable {
        case number(Double)
        case list([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let v = try? c.decode(Double.self) { self = .number(v) } else { self = .list(try c.decode([Int].self)) }
        }
        var int: Int { if case .number(let v) = self { return Int(v) } else { return 0 } }
        var float: Float { if case .number(let v) = self { return Float(v) } else { return 0 } }
        var list: [Int] { if case .list(let v) = self { return v } else { return [] } }
    }

    static func cases() throws -> [Case] {
        struct File: Decodable { let cases: [Case] }
        let url = DataTestFiles.fixtures.appendingPathComponent("layers/torch_layers.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }

    static func layer(_ c: Case) -> Module {
        switch c.kind {
        case "layer_norm": return LayerNorm(normalizedShape: c.args["normalized_shape"]?.list ?? [])
        case "group_norm": return GroupNorm(groups: c.args["groups"]?.int ?? 1, channels: c.args["channels"]?.int ?? 1)
        case "embedding": return Embedding(count: c.args["count"]?.int ?? 1, dimension: c.args["dimension"]?.int ?? 1, seed: 1)
        case "upsample": return Upsample(scale: c.args["scale"]?.int ?? 2)
        case "leaky_relu": return LeakyReLU(negativeSlope: c.args["negative_slope"]?.float ?? 0.01)
        case "silu": return ActivationLayer(.silu)
        case "softmax": return ActivationLayer(.softmax)
        case "upsample_bilinear":
            return Upsample(scale: c.args["scale"]?.int ?? 2, mode: .bilinear(alignCorners: c.args["align_corners"]?.int == 1))
        case "multi_head_attention":
            return MultiHeadAttention(embedDimension: c.args["embed"]?.int ?? 1, heads: c.args["heads"]?.int ?? 1, seed: 1)
        case "transformer_encoder":
            return TransformerEncoderBlock(
                embedDimension: c.args["embed"]?.int ?? 1, heads: c.args["heads"]?.int ?? 1,
                feedForwardDimension: c.args["feed_forward"]?.int ?? 1, dropout: 0,
                activation: c.args["gelu"]?.int == 1 ? .gelu : .relu, normFirst: c.args["norm_first"]?.int == 1, seed: 1)
        case "global_avg_pool_1d": return GlobalAvgPool1D()
        case "positional_embedding":
            return PositionalEmbedding(length: c.args["length"]?.int ?? 1, dimension: c.args["dimension"]?.int ?? 1, seed: 1)
        default: preconditionFailure("no layer \(c.kind)")
        }
    }

    static func loaded(_ c: Case) -> Module {
        let module = layer(c)
        for (name, p) in module.namedParameters {
            guard let values = c.params[name] else { preconditionFailure("\(c.kind): no PyTorch parameter \(name)") }
            p.assign(values.tensor)
        }
        return module
    }

    private func assertClose(_ got: [Float], _ want: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, message, file: file, line: line)
        let worst = zip(got, want).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThan(worst, 1e-5, message, file: file, line: line)
    }

    func testLayersMatchPyTorch() throws {
        let cases = try Self.cases()
        XCTAssertEqual(Set(cases.map(\.kind)).count, 12)
        for c in cases {
            let module = Self.loaded(c)
            XCTAssertEqual(Set(module.namedParameters.map(\.name)), Set(c.params.keys), "\(c.kind): PyTorch's state_dict names")
            let x = c.input_gradient == nil ? c.input.tensor : c.input.tensor.trainable()
            let y = module(x)
            XCTAssertEqual(y.shape, c.output.shape, c.kind)
            XCTAssertEqual(try module.outputShape(forInput: Array(c.input.shape.dropFirst())), Array(c.output.shape.dropFirst()), c.kind)
            assertClose(y.scalars, c.output.values, "\(c.kind) \(c.args.keys.sorted()): output")
            let loss = (y * c.upstream.tensor).sum()
            let parameters = module.namedParameters
            var wrt = parameters.map(\.parameter.value)
            if c.input_gradient != nil { wrt.append(x) }
            let grads = gradients(of: loss, wrt: wrt)
            for (k, (name, _)) in parameters.enumerated() {
                assertClose(grads[k].scalars, c.param_gradients[name]?.values ?? [], "\(c.kind): gradient of \(name)")
            }
            if let want = c.input_gradient { assertClose(grads[parameters.count].scalars, want.values, "\(c.kind): input gradient") }
        }
    }

    func testLayersMatchFiniteDifferences() throws {
        for (n, c) in try Self.cases().enumerated() where c.input_gradient != nil {
            let module = Self.loaded(c)
            // Parameters flow in as checked inputs where `apply` spells the layer out; elsewhere
            // the input's gradient is checked here and the parameters' against PyTorch above.
            let parameters = module is LayerNorm || module is GroupNorm ? module.namedParameters.map(\.parameter) : []
            let check = GradientCase(
                "\(c.kind) #\(n)", inputs: { _ in [c.input.tensor] + parameters.map { $0.value.copy() } }
            ) { inputs in
                for (p, value) in zip(parameters, inputs.dropFirst()) { p.assign(value.detached()) }
                // The parameters' values flow in as the checked inputs.
                return Self.apply(module, parameters: Array(inputs.dropFirst()), to: inputs[0])
            }
            XCTAssertEqual(GradientChecker.run(check, seed: UInt64(n)).failures, [], check.name)
        }
    }

    /// The layer's output with `parameters` standing in for its own (differentiable inputs).
    static func apply(_ module: Module, parameters: [Tensor], to x: Tensor) -> Tensor {
        switch module {
        case let norm as LayerNorm:
            return x.normalized(alongAxes: Array((x.rank - norm.normalizedShape.count)..<x.rank), epsilon: norm.epsilon) * parameters[0]
                + parameters[1]
        case let norm as GroupNorm:
            var perChannel = [Int](repeating: 1, count: x.rank)
            perChannel[1] = norm.channels
            let grouped = x.reshaped(to: [x.shape[0], norm.groups, -1]).normalized(alongAxes: [2], epsilon: norm.epsilon)
            return grouped.reshaped(to: x.shape) * parameters[0].reshaped(to: perChannel) + parameters[1].reshaped(to: perChannel)
        default: return module(x)
        }
    }

    func testLayerWeightsRoundTripThroughACheckpoint() throws {
        let dir = try Scratch.directory("tefla-layers", for: self)
        for (n, c) in try Self.cases().enumerated() where !c.params.isEmpty {
            let module = Sequential([Self.loaded(c)])
            let path = dir.appendingPathComponent("\(n).safetensors").path
            try module.saveWeights(to: path)
            let fresh = Sequential([Self.layer(c)])
            _ = try fresh.loadWeights(from: path)
            XCTAssertEqual(fresh(c.input.tensor).scalars, module(c.input.tensor).scalars, c.kind)
        }
    }
}

/// The new layers in a model that trains, and bad indices named before a step.
final class TokenModelTests: XCTestCase {
    /// Sequences of 8 tokens from 10; the label says whether token 3 occurs more often than token 7.
    static func tokens(_ count: Int, seed: UInt64) -> InMemoryDataset {
        var generator = RandomGenerator(seed: seed)
        var inputs: [Float] = [], labels: [Float] = []
        for _ in 0..<count {
            let row = (0..<8).map { _ in Float(Int.random(in: 0..<10, using: &generator)) }
            inputs += row
            labels.append(row.filter { $0 == 3 }.count > row.filter { $0 == 7 }.count ? 1 : 0)
        }
        return InMemoryDataset(inputs: inputs, labels: labels, featureSize: 8)
    }

    static func model() -> Sequential {
        Sequential([
            Embedding(count: 10, dimension: 6, seed: 1), LayerNorm(features: 6), Flatten(),
            Dense(inputSize: 48, units: 32, activation: .silu, seed: 2), LeakyReLU(negativeSlope: 0.1),
            Dense(inputSize: 32, units: 2, seed: 3),
        ])
    }

    func testAnEmbeddingModelLearnsATokenTask() throws {
        let learner = SupervisedLearner(model: Self.model(), loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-2), seed: 1)
        learner.options.verbose = 0
        XCTAssertEqual(try learner.model.outputShape(forInput: [8]), [2])
        let history = try learner.fit(Self.tokens(2000, seed: 1), validation: Self.tokens(500, seed: 2), epochs: 12, batchSize: 32)
        XCTAssertGreaterThan(history.epochs.last?.validationAccuracy ?? 0, 0.9)
    }

    func testAnIndexOutsideTheEmbeddingIsNamedBeforeTraining() throws {
        var inputs = Self.tokens(100, seed: 3).inputs
        inputs[8 * 41 + 5] = 12
        let data = InMemoryDataset(inputs: inputs, labels: Self.tokens(100, seed: 3).labels, featureSize: 8)
        let learner = SupervisedLearner(model: Self.model(), loss: .softmaxCrossEntropy(), optimizer: Adam(), seed: 1)
        learner.options.verbose = 0
        XCTAssertThrowsError(try learner.fit(data, epochs: 1, batchSize: 16)) { error in
            XCTAssertTrue("\(error)".contains("sample 41: index 12.0 is not a row of Embedding(10, 6)"), "\(error)")
        }
        // From tensors, checked batch by batch.
        inputs[8 * 41 + 5] = .nan
        let tensors = TensorDataSource(inputs: Tensor(shape: [100, 8], scalars: inputs), labels: Tensor(data.labels))
        XCTAssertThrowsError(try learner.fit(tensors, epochs: 1, batchSize: 16)) { error in
            XCTAssertTrue("\(error)".contains("index nan is not a row"), "\(error)")
        }
    }
}
