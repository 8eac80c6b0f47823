import XCTest

@testable import Learner

/// Shape inference states what the forward pass does, and the learner's data checks turn a
/// model that does not fit its data into thrown errors naming the layer or the sample.
final class ShapeInferenceTests: XCTestCase {
    /// Every package layer's rule against its own forward pass, on models that use them all.
    func testInferredShapesEqualTheForwardPass() throws {
        let models: [(Module, [Int])] = [
            (Zoo.mlp(inputSize: 12, hiddenSizes: [8], classes: 3, dropout: 0.1, seed: 1), [12]),
            (Zoo.smallCNN(inputChannels: 2, classes: 4), [2, 12, 10]),
            (Zoo.cifarResNet(depth: 20, classes: 5), [3, 16, 16]),
            (Zoo.resnet18(classes: 6, inputChannels: 1), [1, 40, 33]),
            (Zoo.resnet50(classes: 2), [3, 32, 32]),
            (
                Sequential([
                    Reshape([2, 6, 6]),
                    Conv2D(inputChannels: 2, outputChannels: 4, kernelSize: 3, stride: 2, padding: .same),
                    ConvTranspose2D(inputChannels: 4, outputChannels: 3, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1),
                    Dropout2D(rate: 0.2), BatchNorm2D(features: 3),
                    Concat([Identity(), AvgPool2D(kernelSize: 1), MaxPool2D(kernelSize: 1)]),
                    Residual(Sequential([ActivationLayer(.relu), Conv2D(inputChannels: 9, outputChannels: 9, kernelSize: 1)])),
                    Add([Identity(), Lambda("double") { $0 * 2 }]),
                    MaxPool2D(kernelSize: 2, stride: 2, padding: 1),
                    Flatten(), Dense(inputSize: 9 * 4 * 4, units: 7),
                ]),
                [72]
            ),
        ]
        for (model, shape) in models {
            model.eval()
            let forward = withoutGradients { Array(model(Tensor.zeros([2] + shape)).shape.dropFirst()) }
            XCTAssertEqual(try model.outputShape(forInput: shape), forward, "\(type(of: model)) on \(shape)")
        }
    }

    func testAShapeThatCannotFlowNamesTheLayerByItsPath() throws {
        let model = Sequential([
            Dense(inputSize: 4, units: 3), Sequential([ActivationLayer(.relu), Dense(inputSize: 5, units: 2)]),
        ])
        XCTAssertThrowsError(try model.outputShape(forInput: [4])) { error in
            XCTAssertEqual(
                error as? ShapeError, ShapeError(path: "1.1", layer: "Dense(5→2)", message: "takes 5 values per sample, gets [3]"))
        }
        let resnet = Zoo.resnet18(classes: 10)
        XCTAssertThrowsError(try resnet.outputShape(forInput: [1, 64, 64])) { error in
            XCTAssertTrue("\(error)".hasPrefix("layer 'conv1' (Conv2D(3→64"), "\(error)")
            XCTAssertTrue("\(error)".contains("takes 3 channels, gets 1"), "\(error)")
        }
        XCTAssertThrowsError(try Zoo.smallCNN(inputChannels: 1, classes: 2).outputShape(forInput: [1, 2, 2])) { error in
            XCTAssertTrue("\(error)".contains("does not fit a 1×1 input"), "\(error)")
        }
    }

    func data(labels: [Float], features: Int = 4) -> InMemoryDataset {
        InMemoryDataset(
            inputs: (0..<(labels.count * features)).map { Float($0 % 7) / 7 }, labels: labels, featureSize: features)
    }

    func learner(classes: Int = 3, features: Int = 4) -> SupervisedLearner {
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: features, units: classes, seed: 1)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: 0.1))
        l.options.verbose = 0
        return l
    }

    func testFitRefusesAModelNarrowerThanTheClassesBeforeAnyStep() throws {
        let l = learner(classes: 3)
        let before = l.model.parameters.map(\.value.scalars)
        XCTAssertThrowsError(try l.fit(training: data(labels: [0, 1, 2, 1, 5, 0]), epochs: 1, batchSize: 2)) { error in
            guard case LearnerError.labelOutOfRange(let label, let classes, let location)? = error as? LearnerError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(label, 5)
            XCTAssertEqual(classes, 3)
            XCTAssertEqual(location, "sample 4")
        }
        XCTAssertEqual(l.model.parameters.map(\.value.scalars), before, "no step was taken")
        XCTAssertEqual(l.globalStep, 0)
    }

    func testFitRefusesSamplesOfAnotherSizeNamingTheLayer() throws {
        XCTAssertThrowsError(try learner(features: 4).fit(training: data(labels: [0, 1], features: 6), epochs: 1)) { error in
            guard case LearnerError.shapeMismatch(_, let shape, let shapeError)? = error as? LearnerError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(shape, [6])
            XCTAssertEqual(shapeError.path, "0")
        }
    }

    /// A user's own source is not read ahead: its bad batch is found as it arrives, before its step.
    func testEveryPathChecksItsBatchBeforeTheStep() throws {
        let l = learner(classes: 2)
        let inputs = Tensor(shape: [2, 4], scalars: Array(repeating: 0.5, count: 8))
        XCTAssertThrowsError(try l.trainStep(inputs: inputs, labels: Tensor(shape: [2], scalars: [0, 2])))
        XCTAssertThrowsError(try l.trainOnBatch(inputs: inputs, labels: Tensor(shape: [2], scalars: [-1, 0])))
        XCTAssertThrowsError(try l.trainFromHost(data: inputs, target: Tensor(shape: [2], scalars: [0, 9])))
        XCTAssertThrowsError(try l.evaluate(data(labels: [0, 3])))
        XCTAssertEqual(l.globalStep, 0)
        l.options.checksInputsAreFinite = true
        let nan = Tensor(shape: [2, 4], scalars: [0, 0, 0, 0, 0, .nan, 0, 0])
        XCTAssertThrowsError(try l.trainStep(inputs: nan, labels: Tensor(shape: [2], scalars: [0, 1]))) { error in
            XCTAssertEqual("\(error)", "sample 1 of the batch given to trainStep (value 1) is nan among the inputs")
        }
        XCTAssertNoThrow(try l.trainStep(inputs: inputs, labels: Tensor(shape: [2], scalars: [0, 1])))
    }
}
