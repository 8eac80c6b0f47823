// The program of the article "A custom layer" (Sources/Learner/Learner.docc/CustomLayer.md):
// every code block of the article appears here verbatim, so the article's code compiles and runs.
// Usage: CustomLayer [DATA_ROOT]   (DATA_ROOT holds train/ and val/; default Data/digits)
import Foundation
import Learner

let dataRoot = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "Data/digits"

/// A gated linear unit: (x·Wᵀ + b) ⊙ σ(x·Vᵀ + c), one layer with four parameters.
final class GatedLinear: Module {
    let inputSize: Int
    let units: Int
    let weight: Parameter
    let bias: Parameter
    let gateWeight: Parameter
    let gateBias: Parameter

    init(inputSize: Int, units: Int, seed: UInt64) {
        var generator = RandomGenerator(seed: seed)
        let deviation = 1 / Float(inputSize).squareRoot()
        self.inputSize = inputSize
        self.units = units
        weight = Parameter(.randomNormal([units, inputSize], standardDeviation: deviation, generator: &generator))
        bias = Parameter(.zeros([units]))
        gateWeight = Parameter(.randomNormal([units, inputSize], standardDeviation: deviation, generator: &generator))
        gateBias = Parameter(.zeros([units]))
        super.init()
    }

    override func forward(_ input: Tensor) -> Tensor {
        let value = input.linear(weight: weight.value, bias: bias.value)
        let gate = input.linear(weight: gateWeight.value, bias: gateBias.value).sigmoid()
        return value * gate
    }

    override var localParameters: [(String, Parameter)] {
        [("weight", weight), ("bias", bias), ("gate_weight", gateWeight), ("gate_bias", gateBias)]
    }

    override func outputShape(forInput shape: [Int]) throws -> [Int] {
        guard shape == [inputSize] else {
            throw shapeError(
                "takes \(inputSize) values per sample, gets \(ShapeError.text(shape))",
                layer: "GatedLinear(\(inputSize)→\(units))")
        }
        return [units]
    }
}

/// A block made of other layers: a gated unit, then dropout.
final class GatedBlock: Module {
    let gated: GatedLinear
    let dropout: Dropout

    init(inputSize: Int, units: Int, rate: Float, seed: UInt64) {
        gated = GatedLinear(inputSize: inputSize, units: units, seed: seed)
        dropout = Dropout(rate: rate)
        super.init()
    }

    override func forward(_ input: Tensor) -> Tensor { dropout(gated(input)) }

    override var children: [(String, Module)] { [("gated", gated), ("dropout", dropout)] }

    override func outputShape(forInput shape: [Int]) throws -> [Int] {
        let gatedShape = try outputShape(of: gated, named: "gated", forInput: shape)
        return try outputShape(of: dropout, named: "dropout", forInput: gatedShape)
    }
}

let model = Sequential([
    GatedBlock(inputSize: 64, units: 48, rate: 0.1, seed: 1),
    Dense(inputSize: 48, units: 10, seed: 2),
])
for (name, parameter) in model.namedParameters {
    print(name, parameter.shape)
}
print("\(model.parameterCount) parameters")

do {
    _ = try model.outputShape(forInput: [8, 8])
} catch let error as ShapeError {
    print(error)
}

let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 2e-3), seed: 7)
let history = try learner.fit(
    dataDir: dataRoot + "/train",
    featureKeys: FeatureKeys(input: "image", label: "label"),
    validationDir: dataRoot + "/val",
    epochs: 8,
    batchSize: 32
)
print("validation accuracy: \(history.lastValidationAccuracy ?? 0)")

// The checks of this program (not in the article): the names, the shape error and the training.
let names = model.namedParameters.map(\.name)
let expectedNames = ["0.gated.weight", "0.gated.bias", "0.gated.gate_weight", "0.gated.gate_bias", "1.weight", "1.bias"]
var shapeMessage = ""
do {
    _ = try model.outputShape(forInput: [8, 8])
} catch {
    shapeMessage = "\(error)"
}
guard names == expectedNames, shapeMessage.contains("0.gated"), (history.lastValidationAccuracy ?? 0) >= 0.85 else {
    FileHandle.standardError.write(
        Data("CustomLayer: names \(names), shape error '\(shapeMessage)', accuracy \(history.lastValidationAccuracy ?? 0)\n".utf8))
    exit(1)
}
print("CustomLayer: ok")
