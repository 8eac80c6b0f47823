import Foundation
import TestSupport
import XCTest

@testable import Learner

/// TensorBoard event files: decoded by hand here, and by TensorBoard's own EventAccumulator
/// when a Python with `tensorboard` is at hand.
final class SummaryTests: XCTestCase {
    /// A decoded field: varint, 64-bit, length-delimited or 32-bit.
    enum Field {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
        case fixed32(UInt32)
    }

    /// A minimal protobuf reader: field number → values in order.
    static func decode(_ bytes: [UInt8]) -> [Int: [Field]] {
        var fields: [Int: [Field]] = [:]
        var i = 0
        func varint() -> UInt64 {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while i < bytes.count {
                let b = bytes[i]
                i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { break }
                shift += 7
            }
            return v
        }
        func fixed(_ n: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<n { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
            i += n
            return v
        }
        while i < bytes.count {
            let key = varint()
            let field = Int(key >> 3)
            switch key & 7 {
            case 0: fields[field, default: []].append(.varint(varint()))
            case 1: fields[field, default: []].append(.fixed64(fixed(8)))
            case 2:
                let n = Int(varint())
                fields[field, default: []].append(.bytes(Array(bytes[i..<i + n])))
                i += n
            case 5: fields[field, default: []].append(.fixed32(UInt32(fixed(4))))
            default: return fields
            }
        }
        return fields
    }

    /// (step, tag → value) of every scalar event in the file, after checking the first record.
    static func readScalars(_ path: String) throws -> [(step: Int, values: [String: Float])] {
        let records = try TFRecordReader.readAll(path: path)
        guard let first = records.first else {
            XCTFail("empty event file")
            return []
        }
        let header = decode(first)
        guard case .bytes(let version)? = header[3]?.first else {
            XCTFail("no file_version")
            return []
        }
        XCTAssertEqual(String(decoding: version, as: UTF8.self), "brain.Event:2")
        guard case .fixed64? = header[1]?.first else {
            XCTFail("no wall_time")
            return []
        }
        var result: [(Int, [String: Float])] = []
        for record in records.dropFirst() {
            let event = decode(record)
            guard case .varint(let step)? = event[2]?.first, case .bytes(let summary)? = event[5]?.first else {
                continue
            }
            var values: [String: Float] = [:]
            for case .bytes(let v) in decode(summary)[1] ?? [] {
                let value = decode(v)
                guard case .bytes(let tag)? = value[1]?.first, case .fixed32(let bits)? = value[2]?.first else {
                    continue
                }
                values[String(decoding: tag, as: UTF8.self)] = Float(bitPattern: bits)
            }
            result.append((Int(step), values))
        }
        return result
    }

    func testWriterRoundTripsScalars() throws {
        let dir = try Scratch.directory("tefla-tb", for: self).path
        let writer = try SummaryWriter(directory: dir)
        try writer.scalar("loss", 0.25, step: 1)
        try writer.scalars([("loss", 0.125), ("accuracy", 0.75)], step: 300)
        try writer.close()
        XCTAssertTrue(URL(fileURLWithPath: writer.path).lastPathComponent.hasPrefix("events.out.tfevents."))
        let scalars = try Self.readScalars(writer.path)
        XCTAssertEqual(scalars.map(\.step), [1, 300])
        XCTAssertEqual(scalars[1].values, ["loss": 0.125, "accuracy": 0.75])
    }

    func trainWithLogger(_ dir: String) throws -> History {
        let data = InMemoryDataset(
            inputs: (0..<64).map { Float($0 % 5) / 5 }, labels: (0..<32).map { Float($0 % 2) },
            featureSize: 2)
        let l = SupervisedLearner(
            model: Sequential([Dense(inputSize: 2, units: 2, seed: 3)]), loss: .softmaxCrossEntropy(),
            optimizer: SGD(learningRate: 0.1))
        l.options.verbose = 0
        l.options.schedule = StepDecayLR(base: 0.1, gamma: 0.5, stepSize: 4)
        l.callbacks = [TensorBoardLogger(directory: dir, summaryEvery: 2)]
        return try l.fit(training: data, validation: data, epochs: 3, batchSize: 8)  // 4 steps an epoch
    }

    func testLoggerWritesEpochAndStepSummaries() throws {
        let dir = try Scratch.directory("tefla-tb", for: self).path
        let history = try trainWithLogger(dir)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertEqual(files.count, 1)
        let scalars = try Self.readScalars(dir + "/" + files[0])
        let epochs = scalars.filter { $0.values["loss"] != nil }
        XCTAssertEqual(epochs.map(\.step), [4, 8, 12], "the global step at each epoch's end")
        XCTAssertEqual(epochs.map { $0.values["epoch"] }, [1, 2, 3])
        XCTAssertEqual(epochs[2].values["val_accuracy"], history.epochs[2].validationAccuracy)
        XCTAssertEqual(epochs[1].values["lr"], 0.05)
        let steps = scalars.filter { $0.values["batch/loss"] != nil }
        XCTAssertEqual(steps.map(\.step), [2, 4, 6, 8, 10, 12])
        XCTAssertEqual(steps[2].values["batch/lr"], 0.05)
    }

    func testTensorBoardReadsOurEventFile() throws {
        let python = try PeerPython.interpreter(with: ["tensorboard"])
        let dir = try Scratch.directory("tefla-tb", for: self).path
        let history = try trainWithLogger(dir)
        let script = """
            import sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1]); acc.Reload()
            for tag in sorted(acc.Tags()["scalars"]):
                for e in acc.Scalars(tag):
                    print(tag, e.step, repr(e.value))
            """
        let peer = try PeerPython.run(python, ["-c", script, dir])
        let (status, output) = (peer.status, peer.output)
        XCTAssertEqual(status, 0, output)
        let lines = Set(output.split(separator: "\n").map(String.init))
        for e in history.epochs {
            XCTAssertTrue(
                lines.contains("loss \(e.epoch * 4) \(Double(e.trainLoss))"),
                "loss \(e.epoch * 4) \(Double(e.trainLoss)) in \(output)")
            if let a = e.validationAccuracy {
                XCTAssertTrue(lines.contains("val_accuracy \(e.epoch * 4) \(Double(a))"), output)
            }
        }
        XCTAssertTrue(lines.contains("batch/lr 12 \(Double(Float(0.025)))"), output)
    }

    /// A run resumed from epoch 1's checkpoint after the first run went on to epoch 3: read by
    /// TensorBoard itself, every tag has one value per step, epoch 1's from the first run and
    /// the later ones from the resumed run (the abandoned tail purged, not shown twice).
    func testAResumedRunContinuesTheSameTensorBoardRun() throws {
        let python = try PeerPython.interpreter(with: ["tensorboard"])
        let root = try Scratch.directory("tefla-tb-resume", for: self).path
        let data = InMemoryDataset(
            inputs: (0..<64).map { Float($0 % 5) / 5 }, labels: (0..<32).map { Float($0 % 2) }, featureSize: 2)
        func learner(seed: UInt64) -> SupervisedLearner {
            let l = SupervisedLearner(
                model: Sequential([Dense(inputSize: 2, units: 2, seed: 3)]), loss: .softmaxCrossEntropy(),
                optimizer: SGD(learningRate: 0.1), seed: seed)
            l.options.verbose = 0
            l.callbacks = [TensorBoardLogger(directory: root + "/tb", summaryEvery: 1)]
            l.checkpoint = ModelCheckpoint(directory: WeightsDirectory(path: root + "/w"))
            return l
        }
        let first = try learner(seed: 1).fit(training: data, validation: data, epochs: 3, batchSize: 8)
        let resumedLearner = learner(seed: 2)  // another batch order: values to tell the runs apart
        resumedLearner.checkpoint?.discardsNewerCheckpoints = true
        let resumed = try resumedLearner.fit(training: data, validation: data, startEpoch: 2, epochs: 3, batchSize: 8)
        let script = """
            import sys
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            acc = EventAccumulator(sys.argv[1]); acc.Reload()
            for tag in sorted(acc.Tags()["scalars"]):
                for e in acc.Scalars(tag):
                    print(tag, e.step, repr(e.value))
            """
        let peer = try PeerPython.run(python, ["-c", script, root + "/tb"])
        XCTAssertEqual(peer.status, 0, peer.output)
        let lines = peer.output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        var seen: [String: [Int]] = [:]
        for line in lines where line.count == 3 { seen[line[0], default: []].append(Int(line[1]) ?? -1) }
        XCTAssertEqual(seen["loss"], [4, 8, 12], peer.output)
        XCTAssertEqual(seen["batch/loss"], Array(1...12), "one value per step, none twice")
        let expected = [first.epochs[0].trainLoss, resumed.epochs[0].trainLoss, resumed.epochs[1].trainLoss]
        XCTAssertNotEqual(first.epochs[1].trainLoss, resumed.epochs[0].trainLoss, "the resumed run must differ to tell them apart")
        for (i, loss) in expected.enumerated() {
            XCTAssertTrue(lines.contains(["loss", "\((i + 1) * 4)", "\(Double(loss))"]), "loss at step \((i + 1) * 4): \(peer.output)")
        }
    }
}
