import Foundation
import XCTest

@testable import Learner

/// Data parallelism with replicas as threads of one process: the collectives, the buckets, the
/// gradient-ready hook, dropout keyed by global sample index, and the equivalence of N replicas
/// with batch B/N to one replica with batch B.
final class DataParallelTests: XCTestCase {
    // MARK: - Collectives

    func testInProcessCollectivesSumAndBroadcastIdenticallyOnEveryRank() throws {
        let group = InProcessGroup(size: 3, timeout: 10)
        let results = Results<[Float]>()
        try group.run { comm in
            let r = Float(comm.rank)
            var values: [Float] = (0..<1000).map { Float($0) * 0.001 + r }
            try values.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
            var doubles: [Double] = [Double(comm.rank), 1]
            try doubles.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
            var root: [Float] = Array(repeating: r, count: 17)
            try root.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: 2) }
            try comm.barrier()
            results.set(comm.rank, values + doubles.map(Float.init) + root)
        }
        let all = results.values
        for i in 0..<1000 { XCTAssertEqual(all[0][i], Float(i) * 0.001 * 3 + 3, accuracy: 1e-5) }
        XCTAssertEqual(Array(all[0][1000..<1002]), [3, 3])
        XCTAssertEqual(Array(all[0][1002...]), Array(repeating: 2, count: 17))
        XCTAssertEqual(all[1], all[0])
        XCTAssertEqual(all[2], all[0])
    }

    func testAStalledRankIsNamedByTheOthersWithinTheTimeout() throws {
        let group = InProcessGroup(size: 3, timeout: 0.5)
        let errors = Results<CollectiveError>()
        let started = Date()
        try group.run { comm in
            var values: [Float] = [1, 2, 3]
            try values.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
            if comm.rank == 1 {
                Thread.sleep(forTimeInterval: 1.5)  // stalls past the others' timeout
                return
            }
            do {
                try values.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
            } catch let error as CollectiveError {
                errors.set(comm.rank, error)
            }
        }
        let elapsed = Date().timeIntervalSince(started)
        for rank in [0, 2] {
            let error = try XCTUnwrap(errors[rank], "rank \(rank) did not fail")
            XCTAssertEqual(error.silentRanks, [1])
            XCTAssertTrue(error.description.contains("rank 1 never arrived"), error.description)
            XCTAssertTrue(error.description.hasPrefix("rank \(rank): all-reduce of 3 floats #2 timed out after 0.5 s"), error.description)
        }
        XCTAssertLessThan(elapsed, 3)
    }

    func testARankThatThrowsReleasesTheOthersAtOnce() {
        let group = InProcessGroup(size: 2, timeout: 30)
        let started = Date()
        XCTAssertThrowsError(
            try group.run { comm in
                if comm.rank == 0 { throw CollectiveError(rank: 0, operation: "test", message: "bad data") }
                try comm.barrier()
            }
        ) { error in
            XCTAssertEqual((error as? CollectiveError)?.message, "bad data")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    func testMismatchedBufferSizesAreReportedWithTheRank() {
        let group = InProcessGroup(size: 2, timeout: 10)
        XCTAssertThrowsError(
            try group.run { comm in
                var values = [Float](repeating: 1, count: 4 + comm.rank)
                try values.withUnsafeMutableBufferPointer { try comm.allReduceSum($0) }
            }
        ) { error in
            XCTAssertTrue("\(error)".contains("on rank"), "\(error)")
        }
    }

    func testBroadcastGivesEveryRankRankZerosParametersAndBuffers() throws {
        let group = InProcessGroup(size: 3, timeout: 10)
        let states = Results<[[Float]]>()
        try group.run { comm in
            let model = Sequential([
                Conv2D(inputChannels: 1, outputChannels: 2, kernelSize: 3, seed: 5 + UInt64(comm.rank)),
                BatchNorm2D(features: 2),
            ])
            // Each rank's running statistics differ too: the broadcast must carry buffers.
            for (_, b) in model.namedBuffers { b.assign(Tensor(repeating: Float(comm.rank + 1), shape: b.shape)) }
            // Buckets smaller than one tensor: every tensor travels in a broadcast of its own.
            try DataParallel(comm, bucketBytes: 4).broadcastInitialState(model)
            states.set(comm.rank, model.namedParametersAndBuffers.map(\.parameter.value.scalars))
        }
        let all = states.values
        XCTAssertEqual(all[1], all[0])
        XCTAssertEqual(all[2], all[0])
        let rankZero = Sequential([Conv2D(inputChannels: 1, outputChannels: 2, kernelSize: 3, seed: 5), BatchNorm2D(features: 2)])
        XCTAssertEqual(all[0][0], rankZero.parameters[0].value.scalars)
        XCTAssertEqual(all[0].last, [1])  // num_batches_tracked as rank 0 set it
    }

    func testRanksWithDifferentModelsAreNamedBeforeTraining() {
        let group = InProcessGroup(size: 3, timeout: 10)
        let errors = Results<String>()
        XCTAssertThrowsError(
            try group.run { comm in
                let model = Sequential([Dense(inputSize: 4, units: comm.rank == 2 ? 3 : 2, seed: 1)])
                do {
                    try DataParallel(comm).broadcastInitialState(model)
                } catch {
                    errors.set(comm.rank, "\(error)")
                    throw error
                }
            })
        for rank in 0..<3 {
            XCTAssertEqual(
                errors[rank],
                "rank \(rank): broadcast of the initial state failed: rank 2 has a model whose tensor sizes differ from rank 0's")
        }
    }

    // MARK: - Buckets, hook, dropout, tape

    func testBucketsFollowReverseParameterOrderAndTheSizeCap() {
        // 25 floats per bucket: [3, 20] fill the first; 5 would pass it, so [5, 10] start the second.
        let layout = GradientBuckets(counts: [10, 5, 20, 3], bucketBytes: 100)
        XCTAssertEqual(layout.buckets.map { $0.map(\.index) }, [[3, 2], [1, 0]])
        XCTAssertEqual(layout.sizes, [23, 15])
        XCTAssertEqual(layout.place[2].offset, 3)
        XCTAssertEqual(layout.place[0].bucket, 1)
        // A tensor over the cap gets a bucket of its own.
        XCTAssertEqual(GradientBuckets(counts: [4, 100, 4], bucketBytes: 40).buckets.map { $0.map(\.index) }, [[2], [1], [0]])
    }

    func testGradientReadyHookReportsEachFinalGradientOnceLastLayerFirst() {
        let model = Self.mlp(seed: 1, dropout: 0)
        let params = model.parameters
        let (x, y) = Self.batch(count: 8)
        let loss = Loss.softmaxCrossEntropy()(model(x), y)
        var order: [Int] = []
        var reported: [Int: [Float]] = [:]
        let grads = gradients(of: loss, wrt: params.map(\.value)) { i, g in
            order.append(i)
            reported[i] = g.scalars
        }
        XCTAssertEqual(order.sorted(), Array(params.indices))
        for (i, g) in grads.enumerated() { XCTAssertEqual(reported[i], g.scalars, "parameter \(i)") }
        // The output layer's weight is final before the input layer's.
        XCTAssertLessThan(order.firstIndex(of: params.count - 2)!, order.firstIndex(of: 0)!)
    }

    func testDropoutOfARowSliceDrawsThoseRowsOfTheWholeBatchMask() {
        let x = Tensor(repeating: 1, shape: [12, 7])
        let whole = x.dropout(rate: 0.4, seed: 5, step: 3, salt: 9).scalars
        let part = x.slice(alongAxis: 0, 4..<9).dropout(rate: 0.4, seed: 5, step: 3, salt: 9, elementOffset: 4 * 7).scalars
        XCTAssertEqual(part, Array(whole[28..<63]))
        XCTAssertTrue(part.contains(0) && part.contains(where: { $0 > 1 }))

        let layer = Dropout2D(rate: 0.5)
        let images = Tensor(repeating: 1, shape: [6, 3, 2, 2])
        layer.setRandomKey(seed: 2, step: 1)
        let full = layer(images).scalars
        layer.setRandomKey(seed: 2, step: 1, sampleOffset: 2)
        XCTAssertEqual(layer(images.slice(alongAxis: 0, 2..<5)).scalars, Array(full[24..<60]))
    }

    func testRecordingIsPerThread() {
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let thread = Thread {
            withoutGradients {
                inside.signal()
                release.wait()
            }
        }
        thread.start()
        inside.wait()
        XCTAssertTrue(Tape.isRecording, "another thread's withoutGradients turned this thread's recording off")
        let w = Tensor([1, 2]).trainable()
        XCTAssertEqual(gradients(of: (w * w).sum(), wrt: [w])[0].scalars, [2, 4])
        release.signal()
    }

    // MARK: - Equivalence of N × B/N and 1 × B

    func testTwoReplicasMatchOneReplicaWithTheWholeBatch() throws {
        try checkEquivalence(replicas: 2, overlap: false, conv: false)
    }

    func testFourReplicasMatchOneReplicaWithTheWholeBatch() throws {
        try checkEquivalence(replicas: 4, overlap: false, conv: false)
    }

    func testOverlappedBucketsMatchOneReplica() throws {
        try checkEquivalence(replicas: 4, overlap: true, conv: false)
    }

    func testConvNetReplicasMatchOneReplica() throws {
        try checkEquivalence(replicas: 2, overlap: false, conv: true)
    }

    /// 20 steps with dropout and SGD with momentum: every replica's weights and the global loss
    /// of each step equal the single replica's within 1e-5.
    private func checkEquivalence(replicas n: Int, overlap: Bool, conv: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
        let steps = 20, batchSize = 16
        let data = (0..<steps).map { Self.batch(count: batchSize, seed: UInt64($0), conv: conv) }
        let build: @Sendable (UInt64) -> Sequential = { seed in
            conv ? Self.convNet(seed: seed) : Self.mlp(seed: seed, dropout: 0.3)
        }

        let reference = build(11)
        let optimizer = SGD(learningRate: 0.1, momentum: 0.9)
        var referenceLosses: [Float] = []
        for (s, (x, y)) in data.enumerated() {
            referenceLosses.append(try Self.step(reference, optimizer, x, y, step: s, rows: 0..<batchSize, of: batchSize, sync: nil))
        }

        // Each replica starts from other weights: the broadcast must make them rank 0's.
        let group = InProcessGroup(size: n, timeout: 60)
        let weights = Results<[[Float]]>(), losses = Results<[Float]>()
        try group.run { comm in
            let model = build(comm.rank == 0 ? 11 : 100 + UInt64(comm.rank))
            // A small bucket cap gives several buckets, so the bucketing itself is exercised.
            let sync = DataParallel(comm, bucketBytes: 4096)
            try sync.broadcastInitialState(model)
            let optimizer = SGD(learningRate: 0.1, momentum: 0.9)
            let rows = (comm.rank * batchSize / n)..<((comm.rank + 1) * batchSize / n)
            var mine: [Float] = []
            for (s, (x, y)) in data.enumerated() {
                mine.append(try Self.step(model, optimizer, x, y, step: s, rows: rows, of: batchSize, sync: sync, overlap: overlap))
            }
            weights.set(comm.rank, model.parameters.map(\.value.scalars))
            losses.set(comm.rank, mine)
        }
        let expected = reference.parameters.map(\.value.scalars)
        for rank in 0..<n {
            XCTAssertLessThanOrEqual(
                Self.maxDifference(weights.values[rank], expected), 1e-5, "rank \(rank) weights", file: file, line: line)
            XCTAssertLessThanOrEqual(
                Self.maxDifference([losses.values[rank]], [referenceLosses]), 1e-5, "rank \(rank) losses", file: file, line: line)
        }
        // The run trained: a test of equivalence between two models that never moved proves little.
        XCTAssertGreaterThan(Self.maxDifference(expected, build(11).parameters.map(\.value.scalars)), 1e-2, file: file, line: line)
    }

    /// One optimizer step on rows `rows` of a global batch of `total`, as the learner's training
    /// step runs it on each replica; returns the global batch's loss.
    static func step(
        _ model: Module, _ optimizer: Optimizer, _ x: Tensor, _ y: Tensor, step: Int, rows: Range<Int>, of total: Int,
        sync: DataParallel?, overlap: Bool = false
    ) throws -> Float {
        model.train()
        model.setRandomKey(seed: 42, step: UInt64(step + 1), sampleOffset: rows.lowerBound)
        let params = model.parameters
        let share = Float(rows.count) / Float(total)
        let loss = Loss.softmaxCrossEntropy()(model(x.slice(alongAxis: 0, rows)), y.slice(alongAxis: 0, rows)) * share
        if let sync {
            try sync.setGradients(of: loss, parameters: params, overlap: overlap)
        } else {
            for (p, g) in zip(params, gradients(of: loss, wrt: params.map(\.value))) { p.gradient = g }
        }
        optimizer.step(params)
        for p in params { p.gradient = nil }
        return Float(try sync?.allReduceSum([Double(loss.scalar)])[0] ?? Double(loss.scalar))
    }

    static func mlp(seed: UInt64, dropout: Float) -> Sequential {
        Sequential([
            Dense(inputSize: 12, units: 32, activation: .relu, seed: seed), Dropout(rate: dropout),
            Dense(inputSize: 32, units: 16, activation: .tanh, seed: seed + 1),
            Dense(inputSize: 16, units: 4, seed: seed + 2),
        ])
    }

    static func convNet(seed: UInt64) -> Sequential {
        Sequential([
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, activation: .relu, seed: seed), Dropout2D(rate: 0.25),
            Flatten(), Dense(inputSize: 4 * 4 * 4, units: 4, seed: seed + 1),
        ])
    }

    /// Inputs [count, 12] (or images [count, 1, 6, 6]) and labels in 0..<4 drawn from `seed`.
    static func batch(count: Int, seed: UInt64 = 0, conv: Bool = false) -> (Tensor, Tensor) {
        var generator = RandomGenerator(seed: 1000 + seed)
        let x = Tensor.randomNormal(conv ? [count, 1, 6, 6] : [count, 12], generator: &generator)
        let y = Tensor((0..<count).map { _ in Float(Int.random(in: 0..<4, using: &generator)) })
        return (x, y)
    }

    static func maxDifference(_ a: [[Float]], _ b: [[Float]]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { x, y in zip(x, y).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
    }
}

/// Values set by the ranks' threads, read after they have all finished.
// @unchecked Sendable: `byRank` is only read and written with `lock` held, and its values are
// Sendable.
final class Results<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var byRank: [Int: T] = [:]

    func set(_ rank: Int, _ value: T) {
        lock.lock()
        byRank[rank] = value
        lock.unlock()
    }

    var values: [T] {
        lock.lock()
        defer { lock.unlock() }
        return byRank.keys.sorted().map { byRank[$0]! }
    }

    subscript(rank: Int) -> T? {
        lock.lock()
        defer { lock.unlock() }
        return byRank[rank]
    }
}
