import Foundation
import TestSupport
import XCTest

@testable import Learner

/// Convolutional layers, graph modules and the model zoo: shapes, PyTorch names, buffers,
/// parameter counts and a few training steps.
final class ConvLayerTests: XCTestCase {
    // MARK: Layers

    func testConv2DShapesNamesAndHeInitialisation() {
        let conv = Conv2D(inputChannels: 16, outputChannels: 64, kernelSize: 3, stride: 2, padding: 1, seed: 3)
        XCTAssertEqual(conv.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertEqual(conv.weight.shape, [64, 16, 3, 3])
        XCTAssertEqual(conv(Tensor.zeros([2, 16, 9, 8])).shape, [2, 64, 5, 4])
        let (mean, std) = LayerTests.statistics(conv.weight.value.scalars)
        let expected = (2.0 / Double(16 * 9)).squareRoot()
        XCTAssertEqual(std, expected, accuracy: 0.1 * expected, "He std √(2 / fanIn), fanIn = 16·3·3")
        XCTAssertEqual(mean, 0, accuracy: 0.1 * expected)
        XCTAssertEqual(conv.bias?.value.scalars, [Float](repeating: 0, count: 64))
        // Grouped and depthwise weights are [out, in/groups, kH, kW]; "same" keeps the size at stride 1.
        let depthwise = Conv2D(inputChannels: 8, outputChannels: 8, kernelSize: 5, padding: .same, groups: 8, useBias: false)
        XCTAssertEqual(depthwise.namedParameters.map(\.name), ["weight"])
        XCTAssertEqual(depthwise.weight.shape, [8, 1, 5, 5])
        XCTAssertEqual(depthwise(Tensor.zeros([1, 8, 7, 6])).shape, [1, 8, 7, 6])
        // "same" at stride 2 gives ⌈in / 2⌉ (TensorFlow's rule).
        XCTAssertEqual(
            Conv2D(inputChannels: 1, outputChannels: 1, kernelSize: 3, stride: 2, padding: .same)(Tensor.zeros([1, 1, 7, 8])).shape,
            [1, 1, 4, 4])
        XCTAssertEqual(
            ConvTranspose2D(inputChannels: 4, outputChannels: 2, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1)(
                Tensor.zeros([1, 4, 5, 5])
            ).shape, [1, 2, 10, 10])
    }

    func testConvolutionIsACrossCorrelation() {
        // A 2×2 kernel [[1, 2], [3, 4]] over [[1, 2, 3], [4, 5, 6], [7, 8, 9]], bias 10.
        let x = Tensor(shape: [1, 1, 3, 3], scalars: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        let w = Tensor(shape: [1, 1, 2, 2], scalars: [1, 2, 3, 4])
        // 1 + 4 + 12 + 20 = 37, 2 + 6 + 15 + 24 = 47, 4 + 10 + 21 + 32 = 67, 5 + 12 + 24 + 36 = 77.
        XCTAssertEqual(x.conv2d(weight: w, bias: Tensor([10])).scalars, [47, 57, 77, 87])
        // Padding 1 reads zeros outside: the corner output is w[1,1]·x[0,0] = 4.
        XCTAssertEqual(x.conv2d(weight: w, padding: 1).scalars.first, 4)
        XCTAssertEqual(x.conv2d(weight: w, padding: 1).shape, [1, 1, 4, 4])
        // Max and average pooling by hand.
        XCTAssertEqual(x.maxPool2d(kernel: 2, stride: 1).scalars, [5, 6, 8, 9])
        XCTAssertEqual(x.avgPool2d(kernel: 2, stride: 1).scalars, [3, 4, 6, 7])
        XCTAssertEqual(x.globalAvgPool2d().scalars, [5])
    }

    func testBatchNormBuffersAreCheckpointedButNotTrained() {
        let bn = BatchNorm2D(features: 3)
        XCTAssertEqual(bn.namedParameters.map(\.name), ["weight", "bias"])
        XCTAssertEqual(bn.namedBuffers.map(\.name), ["running_mean", "running_var", "num_batches_tracked"])
        XCTAssertEqual(bn.namedParametersAndBuffers.map(\.name), ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
        XCTAssertEqual(bn.parameterCount, 6, "buffers are not parameters")
        XCTAssertTrue(bn.namedBuffers.allSatisfy { $0.parameter.isFrozen })
        var g = RandomGenerator(seed: 4)
        let x = Tensor.randomNormal([4, 3, 2, 2], generator: &g) * 3 + 2
        // Training: the output has per-channel mean 0 and (biased) variance 1.
        let y = bn(x).scalars
        for c in 0..<3 {
            let values = (0..<4).flatMap { n in (0..<4).map { y[(n * 3 + c) * 4 + $0] } }
            let (mean, std) = LayerTests.statistics(values)
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(std, 1, accuracy: 1e-3)
        }
        XCTAssertEqual(bn.batchesTracked.value.scalar, 1)
        XCTAssertNotEqual(bn.runningMean.value.scalars, [0, 0, 0])
        // An optimizer step over the model's parameters leaves the buffers alone.
        let before = bn.runningVariance.value.scalars
        let loss = (bn(x) * x).sum()
        let params = bn.parameters
        for (p, grad) in zip(params, gradients(of: loss, wrt: params.map(\.value))) { p.gradient = grad }
        SGD(learningRate: 0.1).step(params + bn.namedBuffers.map(\.parameter))
        XCTAssertNotEqual(bn.weight.value.scalars, [1, 1, 1], "the weight trains")
        XCTAssertNotEqual(bn.runningVariance.value.scalars, before, "the second forward pass updated the statistics")
        let afterTwo = bn.runningVariance.value.scalars
        bn.eval()
        _ = bn(x)
        XCTAssertEqual(bn.runningVariance.value.scalars, afterTwo, "evaluation does not update the statistics")
        XCTAssertEqual(bn.batchesTracked.value.scalar, 2)
        // momentum nil: the running mean is the cumulative average of the batch means.
        let cumulative = BatchNorm2D(features: 1, momentum: nil)
        _ = cumulative(Tensor(shape: [2, 1, 1, 1], scalars: [1, 3]))
        _ = cumulative(Tensor(shape: [2, 1, 1, 1], scalars: [5, 7]))
        XCTAssertEqual(cumulative.runningMean.value.scalars[0], 4, accuracy: 1e-6)
    }

    func testBatchNormStatisticsTravelThroughCheckpoints() throws {
        func make() -> Sequential {
            Sequential([Conv2D(inputChannels: 2, outputChannels: 3, kernelSize: 3, padding: 1, seed: 5), BatchNorm2D(features: 3)])
        }
        let model = make()
        var g = RandomGenerator(seed: 6)
        let x = Tensor.randomNormal([2, 2, 4, 4], generator: &g) * 2 + 1
        _ = model(x)
        XCTAssertEqual(
            model.stateTensors.map(\.name),
            ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked"])
        let path = try Scratch.directory("tefla-bn", for: self).appendingPathComponent("bn.safetensors").path
        try model.saveWeights(to: path)
        let restored = make()
        try restored.loadWeights(from: path)
        let bn = try XCTUnwrap(restored.layers[1] as? BatchNorm2D)
        XCTAssertEqual(bn.runningMean.value.scalars, (model.layers[1] as? BatchNorm2D)?.runningMean.value.scalars)
        XCTAssertEqual(bn.batchesTracked.value.scalar, 1)
        model.eval()
        restored.eval()
        XCTAssertEqual(restored(x).scalars, model(x).scalars)
    }

    func testPoolingAndDropout2DLayers() {
        XCTAssertEqual(MaxPool2D(kernelSize: 3, stride: 2, padding: 1)(Tensor.zeros([2, 4, 9, 9])).shape, [2, 4, 5, 5])
        XCTAssertEqual(AvgPool2D(kernelSize: 2)(Tensor.zeros([2, 4, 9, 9])).shape, [2, 4, 4, 4])
        XCTAssertEqual(GlobalAvgPool2D()(Tensor.zeros([2, 4, 9, 9])).shape, [2, 4])
        let dropout = Dropout2D(rate: 0.5)
        dropout.setRandomKey(seed: 1, step: 2)
        let y = dropout(Tensor.ones([8, 16, 3, 3])).scalars
        var zeroed = 0
        for plane in 0..<(8 * 16) {
            let values = Set(y[(plane * 9)..<(plane * 9 + 9)])
            XCTAssertEqual(values.count, 1, "a channel is dropped or kept whole")
            if values.first == 0 { zeroed += 1 } else { XCTAssertEqual(values.first, 2) }
        }
        XCTAssertGreaterThan(zeroed, 30)
        XCTAssertLessThan(zeroed, 98)
        dropout.eval()
        XCTAssertEqual(dropout(Tensor.ones([1, 2, 2, 2])).scalars, [Float](repeating: 1, count: 8))
    }

    // MARK: Graphs

    func testResidualAddConcatAndLambda() {
        let body = Sequential([Conv2D(inputChannels: 2, outputChannels: 2, kernelSize: 3, padding: 1, seed: 1), ActivationLayer(.relu)])
        let residual = Residual(body, activation: .relu)
        XCTAssertEqual(residual.namedParameters.map(\.name), ["body.0.weight", "body.0.bias"])
        var g = RandomGenerator(seed: 2)
        let x = Tensor.randomNormal([1, 2, 4, 4], generator: &g)
        XCTAssertEqual(residual(x).scalars, (body(x) + x).relu().scalars)
        let add = Add([Identity(), Lambda("double") { $0 * 2 }])
        XCTAssertEqual(add(x).scalars, (x * 3).scalars)
        // A DenseNet-like stack: each layer concatenates its input with 3 new channels.
        func denseLayer(_ c: Int) -> Module {
            Concat([
                Identity(),
                Sequential([
                    BatchNorm2D(features: c), ActivationLayer(.relu),
                    Conv2D(inputChannels: c, outputChannels: 3, kernelSize: 3, padding: 1, useBias: false),
                ]),
            ])
        }
        let dense = Sequential([denseLayer(2), denseLayer(5), denseLayer(8)])
        XCTAssertEqual(dense(x).shape, [1, 11, 4, 4])
        XCTAssertEqual(Array(dense(x).scalars.prefix(32)), x.scalars, "the input passes through the concatenation")
        XCTAssertEqual(dense.namedParameters.map(\.name).prefix(3), ["0.1.0.weight", "0.1.0.bias", "0.1.2.weight"])
    }

    func testGradientsFlowThroughABasicBlock() {
        // Finite differences through conv → BN → relu → conv → BN → + shortcut → relu, with a
        // projection shortcut; inputs scaled so few pre-activations sit near relu's kink.
        let block = BasicBlock(inputChannels: 2, outputChannels: 3, stride: 2)
        block.bn2.bias.assign(Tensor([2, 2.5, 3]))
        let c = GradientCase(
            "BasicBlock(2→3, stride 2)", relativeTolerance: 1e-2, absoluteTolerance: 1e-3,
            inputs: { g in [Inputs.normal([2, 2, 4, 4], &g)] }
        ) { x in block(x[0]) }
        let result = GradientChecker.run(c, seed: 9)
        for failure in result.failures { XCTFail(failure) }
        XCTAssertTrue(result.recordedOps.isSuperset(of: [.conv2d, .batchNorm, .relu, .add]))
        // Option A's shortcut: strided subsampling and zero channels around it.
        let pad = ZeroPadShortcut(outputChannels: 4, stride: 2)
        let x = Tensor(shape: [1, 2, 2, 2], scalars: [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(pad(x).scalars, [0, 1, 5, 0])
    }

    // MARK: Zoo

    func testResNetParameterCountsAndTorchvisionNames() {
        XCTAssertEqual(Zoo.resnet18().parameterCount, 11_689_512)
        XCTAssertEqual(Zoo.resnet34().parameterCount, 21_797_672)
        XCTAssertEqual(Zoo.resnet50().parameterCount, 25_557_032)
        let r18 = Zoo.resnet18(classes: 10)
        let names = r18.namedParameters.map(\.name)
        XCTAssertEqual(
            Array(names.prefix(6)),
            [
                "conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv1.weight",
                "layer1.0.bn1.weight", "layer1.0.bn1.bias",
            ])
        XCTAssertEqual(Array(names.suffix(2)), ["fc.weight", "fc.bias"])
        XCTAssertTrue(names.contains("layer2.0.downsample.0.weight"))
        XCTAssertTrue(names.contains("layer4.1.bn2.bias"))
        XCTAssertEqual(names.count, 62, "torchvision's resnet18 has 62 parameters")
        let state = r18.namedParametersAndBuffers.map(\.name)
        XCTAssertEqual(
            Array(state.prefix(6)),
            [
                "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                "bn1.num_batches_tracked",
            ])
        XCTAssertEqual(state.count, 122, "torchvision's resnet18 state_dict has 122 entries")
        XCTAssertEqual(r18.namedParameters.first { $0.name == "layer2.0.downsample.0.weight" }?.parameter.shape, [128, 64, 1, 1])
        r18.eval()
        XCTAssertEqual(r18(Tensor.zeros([1, 3, 64, 64])).shape, [1, 10])
    }

    func testCIFARResNetParameterCounts() {
        // Option A (zero-padding shortcuts), the paper's CIFAR models.
        XCTAssertEqual(Zoo.cifarResNet(depth: 20).parameterCount, 269_722)
        XCTAssertEqual(Zoo.cifarResNet(depth: 56).parameterCount, 853_018)
        // Option B (projections): the usually quoted 0.27M and 0.85M.
        XCTAssertEqual(Zoo.cifarResNet(depth: 20, shortcut: .projection).parameterCount, 272_474)
        XCTAssertEqual(Zoo.cifarResNet(depth: 56, shortcut: .projection).parameterCount, 855_770)
        let model = Zoo.cifarResNet(depth: 20)
        XCTAssertEqual(model(Tensor.zeros([2, 3, 32, 32])).shape, [2, 10])
        XCTAssertEqual(model.namedParameters.filter { $0.name.contains("downsample") }.count, 0)
    }

    func testSmallCNNAndMLPLearnASeparableProblem() {
        // Two classes: a bright square top-left or bottom-right on 8×8 noise.
        var g = RandomGenerator(seed: 11)
        let n = 16
        var pixels = Tensor.randomNormal([n, 1, 8, 8], standardDeviation: 0.3, generator: &g).scalars
        var labels: [Float] = []
        for i in 0..<n {
            let c = i % 2
            labels.append(Float(c))
            for y in 0..<3 { for x in 0..<3 { pixels[i * 64 + (y + 5 * c) * 8 + x + 5 * c] += 2 } }
        }
        let images = Tensor(shape: [n, 1, 8, 8], scalars: pixels), targets = Tensor(labels)
        let model = Zoo.smallCNN(inputChannels: 1, classes: 2)
        let optimizer = SGD(learningRate: 0.05, momentum: 0.9)
        var losses: [Float] = []
        for _ in 0..<15 {
            let params = model.parameters
            let (loss, grads) = valueAndGradient(at: params.map(\.value)) { _ in model(images).softmaxCrossEntropy(labels: targets) }
            for (p, grad) in zip(params, grads) { p.gradient = grad }
            optimizer.step(params)
            losses.append(loss.scalar)
        }
        XCTAssertLessThan(losses.last ?? .infinity, 0.5 * losses[0], "losses \(losses)")
        model.eval()
        let predicted = model(images).argmax(alongAxis: 1).scalars
        XCTAssertEqual(predicted, labels)
        let mlp = Zoo.mlp(inputSize: 4, hiddenSizes: [8, 8], classes: 3, dropout: 0.1)
        XCTAssertEqual(mlp.namedParameters.map(\.name), ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"])
        XCTAssertEqual(mlp(Tensor.zeros([2, 4])).shape, [2, 3])
    }
}
