import Foundation
import TestSupport
import XCTest

@testable import Learner

final class CheckpointTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/checkpoint").path
    var scratch: String = ""

    override func setUpWithError() throws {
        scratch = try Scratch.directory("tefla-ckpt", for: self).path
    }

    func makeMLP() -> Sequential {
        Sequential([
            Dense(inputSize: 6, units: 8, activation: .relu, seed: 1),
            Dense(inputSize: 8, units: 8, activation: .tanh, seed: 2),
            Dense(inputSize: 8, units: 3, seed: 3),
        ])
    }

    func testSafeTensorsRoundTripKeepsNamesShapesDTypesAndMetadata() throws {
        let entries: [String: SafeTensors.Entry] = [
            "a.weight": .init(shape: [2, 3], values: [1, -2, 3.5, .infinity, -0.0, 1e-30]),
            "counter": .init(dtype: "I64", shape: [], values: [12345]),
            "empty": .init(shape: [0, 4], values: []),
        ]
        let file = scratch + "/t.safetensors"
        try SafeTensors.write(entries, metadata: ["format": "pt", "note": "x"], to: file)
        let (back, metadata) = try SafeTensors.read(file)
        XCTAssertEqual(back, entries)
        XCTAssertEqual(metadata, ["format": "pt", "note": "x"])
        // The data section starts 8-byte aligned.
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let headerLength = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(data.count, 8 + Int(headerLength) + 6 * 4 + 8)
    }

    func testCorruptFilesAreRefusedNamingFileAndTensor() throws {
        let file = scratch + "/c.safetensors"
        try SafeTensors.write(["w": .init(shape: [4], values: [1, 2, 3, 4])], to: file)
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        data.removeLast(4)
        try data.write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try SafeTensors.read(file)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(file) && text.contains("'w'"), text)
        }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try SafeTensors.read(file)) { XCTAssertTrue("\($0)".contains("header length"), "\($0)") }
        XCTAssertThrowsError(try SafeTensors.read(scratch + "/none.safetensors")) {
            XCTAssertTrue("\($0)".contains("none.safetensors"), "\($0)")
        }
    }

    /// A file with a hand-made header (valid length prefix) and `dataBytes` bytes of data.
    func handMade(_ header: String, dataBytes: Int) throws -> String {
        var data = Data()
        let json = Data(header.utf8)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(json)
        data.append(Data(count: dataBytes))
        let file = scratch + "/hand-\(UUID().uuidString).safetensors"
        try data.write(to: URL(fileURLWithPath: file))
        return file
    }

    func testHostileHeadersAreRefusedWithoutHugeAllocations() throws {
        let cases: [(String, Int, String)] = [
            (
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#, 12,
                "overlap"
            ),
            (#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 8, "do not match"),
            (#"{"a":{"dtype":"F32","shape":[1000000000000],"data_offsets":[0,4]}}"#, 4, "do not match"),
            (#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4, "do not match"),
            // Element counts and byte sizes that overflow Int: refused, not a trap.
            (#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#, 0, "do not match"),
            (#"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#, 0, "do not match"),
            (#"{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,4]}}"#, 4, "dtype Q4"),
            (#"{"a":{"dtype":"F32","shape":"x","data_offsets":[0,4]}}"#, 4, "no dtype, shape or data_offsets"),
            (#"[1, 2]"#, 0, "not a JSON object"),
        ]
        for (header, bytes, expected) in cases {
            let file = try handMade(header, dataBytes: bytes)
            XCTAssertThrowsError(try SafeTensors.read(file), header) { error in
                XCTAssertTrue("\(error)".contains(expected) && "\(error)".contains(file), "\(header): \(error)")
            }
        }
        // A header length beyond the file.
        var data = Data()
        withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data("{}".utf8))
        let file = scratch + "/long.safetensors"
        try data.write(to: URL(fileURLWithPath: file))
        XCTAssertThrowsError(try SafeTensors.read(file)) { XCTAssertTrue("\($0)".contains("does not fit"), "\($0)") }
    }

    func testBadStateFilesAndPointersAreRefused() throws {
        let dir = WeightsDirectory(path: scratch + "/weights")
        try dir.save(
            model: makeMLP(), optimizer: Adam(),
            state: TrainingState(epoch: 1, globalStep: 5, seed: 1, learningRate: 1e-3, optimizer: "Adam"))
        let stateFile = dir.folder(epoch: 1) + "/state.json"
        var text = try String(contentsOfFile: stateFile, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"globalStep\" : 5", with: "\"globalStep\" : \"five\"")
        try text.write(toFile: stateFile, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try WeightsDirectory.readState(dir.folder(epoch: 1))) { error in
            XCTAssertTrue("\(error)".contains("state.json") && "\(error)".contains("globalStep"), "\(error)")
        }
        try "../../etc\n".write(toFile: dir.path + "/latest", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try dir.latest()) { XCTAssertTrue("\($0)".contains("not a checkpoint folder name"), "\($0)") }
    }

    func testPyTorchWeightsGiveTheSameOutputs() throws {
        let io =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/torch_mlp_io.json")))
            as! [String: Any]
        let x = Tensor(shape: (io["input_shape"] as! [Int]), scalars: (io["input"] as! [Double]).map(Float.init))
        let expected = (io["output"] as! [Double]).map(Float.init)

        let model = makeMLP()
        let report = try model.loadWeights(from: Self.fixtures + "/torch_mlp.safetensors")
        XCTAssertEqual(report.loaded.sorted(), ["0.bias", "0.weight", "1.bias", "1.weight", "2.bias", "2.weight"])
        let y = withoutGradients { model(x) }.scalars
        for (a, b) in zip(y, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }

        // torch.nn.Sequential's own names (activations are modules there) through a name map.
        let other = makeMLP()
        try other.loadWeights(
            from: Self.fixtures + "/torch_mlp_torchnames.safetensors",
            nameMap: [
                "0.weight": "0.weight", "0.bias": "0.bias", "2.weight": "1.weight", "2.bias": "1.bias",
                "4.weight": "2.weight", "4.bias": "2.bias",
            ])
        XCTAssertEqual(withoutGradients { other(x) }.scalars, y)
    }

    func testOurWeightsLoadInThePythonReferenceAndGiveOurOutputs() throws {
        let python = try PeerPython.interpreter(with: ["safetensors", "numpy"])
        let model = makeMLP()
        let file = scratch + "/ours.safetensors"
        try model.saveWeights(to: file)
        var g = RandomGenerator(seed: 9)
        let x = Tensor.randomNormal([5, 6], generator: &g)
        let ours = withoutGradients { model(x) }.scalars
        // PyTorch's Linear through numpy: x @ W.T + b, with the same activations.
        let script = """
            import sys, numpy as np
            from safetensors.numpy import load_file
            t = load_file(sys.argv[1])
            assert all(v.dtype == np.float32 for v in t.values()), {k: str(v.dtype) for k, v in t.items()}
            x = np.array([float(v) for v in sys.argv[2].split(",")], dtype=np.float32).reshape(5, 6)
            h = np.maximum(x @ t["0.weight"].T + t["0.bias"], 0)
            h = np.tanh(h @ t["1.weight"].T + t["1.bias"])
            y = h @ t["2.weight"].T + t["2.bias"]
            print(",".join(repr(float(v)) for v in y.reshape(-1)))
            """
        let result = try PeerPython.run(python, ["-c", script, file, x.scalars.map { "\($0)" }.joined(separator: ",")])
        XCTAssertEqual(result.status, 0, result.output)
        let theirs = result.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Float(String($0)) }
        XCTAssertEqual(theirs.count, ours.count, result.output)
        for (a, b) in zip(ours, theirs) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func makeCNN() -> Sequential {
        Sequential([
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: 1, seed: 1),
            BatchNorm2D(features: 4),
            ActivationLayer(.relu),
            GlobalAvgPool2D(),
            Flatten(),
            Dense(inputSize: 4, units: 3, seed: 2),
        ])
    }

    func testPyTorchCNNWithBatchNormBuffersLoadsAndMatches() throws {
        let io =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixtures + "/torch_cnn_bn_io.json")))
            as! [String: Any]
        let x = Tensor(shape: (io["input_shape"] as! [Int]), scalars: (io["input"] as! [Double]).map(Float.init))
        let expected = (io["output"] as! [Double]).map(Float.init)
        let model = makeCNN()
        let report = try model.loadWeights(from: Self.fixtures + "/torch_cnn_bn.safetensors")
        XCTAssertTrue(report.loaded.contains("1.running_var") && report.loaded.contains("1.num_batches_tracked"), "\(report)")
        XCTAssertEqual(model.namedBuffers.first { $0.name == "1.num_batches_tracked" }?.parameter.value.scalars, [1])
        model.eval()
        let y = withoutGradients { model(x) }.scalars
        for (a, b) in zip(y, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }

        // Saved again, the counter is int64 on disk as in PyTorch, and the file round-trips.
        let file = scratch + "/cnn.safetensors"
        try model.saveWeights(to: file)
        let (entries, _) = try SafeTensors.read(file)
        XCTAssertEqual(entries["1.num_batches_tracked"]?.dtype, "I64")
        XCTAssertEqual(entries["1.running_mean"]?.dtype, "F32")
        let again = makeCNN()
        try again.loadWeights(from: file)
        again.eval()
        XCTAssertEqual(withoutGradients { again(x) }.scalars, y)
    }

    func testStrictLoadingNamesTheParameterAndBothShapes() throws {
        let file = scratch + "/w.safetensors"
        try makeMLP().saveWeights(to: file)
        let wider = Sequential([
            Dense(inputSize: 6, units: 9, activation: .relu), Dense(inputSize: 9, units: 8), Dense(inputSize: 8, units: 3),
        ])
        let before = wider.namedParameters.map { $0.parameter.value.scalars }
        XCTAssertThrowsError(try wider.loadWeights(from: file)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("0.weight") && text.contains("[8, 6]") && text.contains("[9, 6]"), text)
        }
        XCTAssertEqual(wider.namedParameters.map { $0.parameter.value.scalars }, before, "a refused load changes nothing")
        let report = try wider.loadWeights(from: file, strict: false)
        XCTAssertEqual(report.loaded, ["1.bias", "2.weight", "2.bias"])
        XCTAssertEqual(report.shapeMismatched.map(\.name), ["0.weight", "0.bias", "1.weight"])
        XCTAssertTrue(report.missing.isEmpty && report.unexpected.isEmpty)

        let smaller = Sequential([Dense(inputSize: 6, units: 8, activation: .relu)])
        XCTAssertThrowsError(try smaller.loadWeights(from: file)) { XCTAssertTrue("\($0)".contains("does not have: 1.bias"), "\($0)") }
        let bigger = Sequential([
            Dense(inputSize: 6, units: 8), Dense(inputSize: 8, units: 8), Dense(inputSize: 8, units: 3),
            Dense(inputSize: 3, units: 2),
        ])
        XCTAssertThrowsError(try bigger.loadWeights(from: file)) {
            XCTAssertTrue("\($0)".contains("missing 2 tensors the model needs: 3.weight, 3.bias"), "\($0)")
        }
    }

    func testFreezeAndUnfreezeByPrefix() {
        let model = makeMLP()
        model.freeze(["0", "1.weight"])
        XCTAssertEqual(model.namedParameters.filter { $0.parameter.isFrozen }.map(\.name), ["0.weight", "0.bias", "1.weight"])
        model.unfreeze()
        XCTAssertTrue(model.parameters.allSatisfy { !$0.isFrozen })
    }

    func testOptimizerStateRoundTripContinuesIdentically() throws {
        for make in [
            { Adam(learningRate: 1e-2) as Optimizer }, { SGD(learningRate: 0.1, momentum: 0.9, nesterov: true) },
            { RMSProp(learningRate: 1e-2, momentum: 0.5, centered: true) },
        ] {
            var g = RandomGenerator(seed: 4)
            let grads = (0..<5).map { _ in Tensor.randomNormal([3, 4], generator: &g) }
            let a = Parameter(Tensor.randomNormal([3, 4], generator: &g)), optA = make()
            for grad in grads[0..<3] { a.gradient = grad; optA.step([a]) }
            let saved = optA.exportState([("p", a)])
            let b = Parameter(a.value.copy()), optB = make()
            try optB.importState(saved, into: [("p", b)], path: "test")
            for grad in grads[3...] {
                a.gradient = grad; optA.step([a])
                b.gradient = grad; optB.step([b])
            }
            XCTAssertEqual(a.value.scalars, b.value.scalars, "\(type(of: optA))")
            XCTAssertEqual(optB.stepCount, 5)
        }
    }

    func testWeightsDirectoryKeepsLatestCompleteAndPrunes() throws {
        let dir = WeightsDirectory(path: scratch + "/weights", maxToKeep: 2)
        let model = makeMLP(), optimizer = Adam()
        XCTAssertNil(try dir.latest())
        for epoch in 1...4 {
            try dir.save(
                model: model, optimizer: optimizer,
                state: TrainingState(
                    epoch: epoch, globalStep: UInt64(epoch * 10), seed: 1,
                    learningRate: 1e-3, optimizer: "Adam"))
        }
        XCTAssertEqual(dir.savedEpochs(), [3, 4])
        XCTAssertEqual(try dir.latest(), dir.folder(epoch: 4))
        let state = try WeightsDirectory.readState(dir.folder(epoch: 4))
        XCTAssertEqual(state.globalStep, 40)
        XCTAssertEqual(state.libraryVersion, LearnerVersion.string)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files remain")
        // A folder named by `latest` but incomplete (a crash while copying by hand) is reported.
        try FileManager.default.removeItem(atPath: dir.folder(epoch: 4) + "/state.json")
        XCTAssertThrowsError(try dir.latest()) { XCTAssertTrue("\($0)".contains("epoch-0004"), "\($0)") }
        XCTAssertThrowsError(try WeightsDirectory.restore(dir.folder(epoch: 7), model: model, optimizer: optimizer)) { error in
            XCTAssertTrue("\(error)".contains("epoch-0007/state.json"), "\(error)")
        }
    }

    func testAtomicWriteReplacesWholeOrNothing() throws {
        let file = scratch + "/f.bin"
        try AtomicFile.write(Data("old".utf8), to: file)
        try AtomicFile.write(Data("new content".utf8), to: file)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "new content")
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: scratch + "/missing-dir/f.bin"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: scratch), ["f.bin"])
    }
}
