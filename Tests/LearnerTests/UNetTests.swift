import Foundation
import TestSupport
import XCTest

@testable import Learner

/// The zoo's U-Net against the same network in PyTorch (Scripts/fixtures/make_unet_fixtures.py):
/// PyTorch's state_dict loads by name and gives the same outputs, in evaluation and training mode.
final class UNetTests: XCTestCase {
    struct Values: Decodable {
        let shape: [Int]
        let values: [Double]
        var tensor: Tensor { Tensor(shape: shape, scalars: values.map { Float($0) }) }
    }
    struct Arguments: Decodable {
        let depth: Int, base: Int
        let batch_norm: Bool, residual: Bool
        let upsampling: String
    }
    struct Case: Decodable {
        let args: Arguments
        let state_dict: [String: Values]
        let input: Values
        let eval_output: Values
        let train_output: Values
    }

    static func cases() throws -> [Case] {
        struct File: Decodable { let cases: [Case] }
        let url = DataTestFiles.fixtures.appendingPathComponent("unet/torch_unet.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }

    static func unet(_ a: Arguments) -> UNet {
        UNet(
            inputChannels: 3, outputChannels: 2, depth: a.depth, baseFilters: a.base, batchNorm: a.batch_norm, residual: a.residual,
            upsampling: UNet.Upsampling(rawValue: a.upsampling) ?? .transposed, seed: 1)
    }

    private func assertClose(_ got: Tensor, _ want: Values, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.shape, want.shape, message, file: file, line: line)
        let worst = zip(got.scalars, want.values).map { Double(abs(Double($0) - $1)) / max(1, abs($1)) }.max() ?? .infinity
        XCTAssertLessThan(worst, 1e-5, message, file: file, line: line)
    }

    func testPyTorchsStateDictLoadsByNameWithTheSameOutputs() throws {
        let cases = try Self.cases()
        XCTAssertEqual(cases.count, 3)
        for c in cases {
            let net = Self.unet(c.args)
            let mine = net.namedParametersAndBuffers
            XCTAssertEqual(Set(mine.map(\.name)), Set(c.state_dict.keys), "\(c.args.upsampling): PyTorch's state_dict names")
            for (name, p) in mine { p.assign(try XCTUnwrap(c.state_dict[name], name).tensor) }
            net.eval()
            assertClose(net(c.input.tensor), c.eval_output, "\(c.args): evaluation output")
            net.train()
            assertClose(net(c.input.tensor), c.train_output, "\(c.args): training output (batch statistics)")
            XCTAssertEqual(try net.outputShape(forInput: [3, 16, 16]), [2, 16, 16])
        }
    }

    /// The other direction: our seeded U-Net, saved as safetensors (committed beside the fixture),
    /// loaded by PyTorch (Scripts/fixtures/make_unet_fixtures.py, `strict=True`) gives our outputs
    /// within 1e-5. The file we write today must equal the one PyTorch loaded, byte for byte.
    /// TEFLA_WRITE_UNET_FIXTURE=1 rewrites it (then rerun the fixture script).
    func testOurSafetensorsLoadInPyTorchWithTheSameOutputs() throws {
        let net = UNet(inputChannels: 3, outputChannels: 2, depth: 2, baseFilters: 4, residual: true, seed: 11)
        net.eval()
        let committed = DataTestFiles.fixtures.appendingPathComponent("unet/tefla_unet.safetensors")
        let scratch = try Scratch.directory("tefla-unet-out", for: self).appendingPathComponent("unet.safetensors")
        let path = ProcessInfo.processInfo.environment["TEFLA_WRITE_UNET_FIXTURE"] == "1" ? committed : scratch
        try net.saveWeights(to: path.path)
        XCTAssertEqual(try Data(contentsOf: path), try Data(contentsOf: committed), "the weights PyTorch loaded are ours today")
        struct Torch: Decodable { let output: Values }
        let torch = try JSONDecoder().decode(
            Torch.self, from: Data(contentsOf: DataTestFiles.fixtures.appendingPathComponent("unet/tefla_unet_in_torch.json")))
        let x = Tensor(shape: [2, 3, 16, 16], scalars: (0..<1536).map { Float(sin(0.37 * Double($0))) })
        assertClose(net(x), torch.output, "PyTorch's output on our weights")
    }

    func testTheBenchmarkSizeHasTheExpectedParameters() {
        // Depth 4, base 32, 3 → 2 channels: blocks 32…512, transposed-convolution upsampling.
        let net = UNet(inputChannels: 3, outputChannels: 2, depth: 4, baseFilters: 32)
        func block(_ i: Int, _ o: Int) -> Int { 9 * i * o + 9 * o * o + 4 * o }  // two bias-free convs, two BNs (γ, β)
        var expected = block(3, 32) + block(32, 64) + block(64, 128) + block(128, 256) + block(256, 512)
        for (wide, narrow) in [(512, 256), (256, 128), (128, 64), (64, 32)] {
            expected += 4 * wide * narrow + narrow + block(2 * narrow, narrow)
        }
        expected += 32 * 2 + 2
        XCTAssertEqual(net.parameterCount, expected)
    }

    func testASizeThatDoesNotHalveCleanlyIsNamed() {
        let net = UNet(inputChannels: 1, outputChannels: 2, depth: 3, baseFilters: 4)
        XCTAssertThrowsError(try Sequential([net]).outputShape(forInput: [1, 20, 20])) { error in
            XCTAssertEqual("\(error)", "layer '0' (UNet(depth 3)): needs a height and width that are multiples of 8 (2^depth), gets 20×20")
        }
        XCTAssertThrowsError(try net.outputShape(forInput: [3, 16, 16])) { error in
            XCTAssertTrue("\(error)".contains("takes 1 channels, gets 3"), "\(error)")
        }
    }

    /// A small U-Net learns to mark the bright squares of noisy images, pixel by pixel.
    func testAUNetLearnsAPerPixelTask() throws {
        var g = RandomGenerator(seed: 4)
        var inputs: [Float] = [], masks: [Float] = []
        let side = 16
        for _ in 0..<96 {
            var image = (0..<(side * side)).map { _ in g.nextNormal() * 0.3 }
            var mask = [Float](repeating: 0, count: side * side)
            let size = 4 + Int(g.next() % 5), top = Int(g.next() % UInt64(side - size)), left = Int(g.next() % UInt64(side - size))
            for y in top..<(top + size) { for x in left..<(left + size) { image[y * side + x] += 1; mask[y * side + x] = 1 } }
            inputs += image
            masks += mask
        }
        let data = TensorDataSource(
            inputs: Tensor(shape: [96, 1, side, side], scalars: inputs), labels: Tensor(shape: [96, side, side], scalars: masks))
        let net = UNet(inputChannels: 1, outputChannels: 2, depth: 2, baseFilters: 8, seed: 2)
        let learner = SupervisedLearner(model: net, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-2), seed: 1)
        learner.options.verbose = 0
        try learner.fit(data, epochs: 6, batchSize: 16)
        net.eval()
        let predicted = net(Tensor(shape: [96, 1, side, side], scalars: inputs)).argmax(alongAxis: 1)
        let correct = zip(predicted.scalars, masks).filter { $0.0 == $0.1 }.count
        XCTAssertGreaterThan(Double(correct) / Double(masks.count), 0.95)
    }
}
