// Data-parallel commands, run as the ranks of an MPI job (mpirun -np N tefla-bench ...):
//
//   dp-check [--steps N] [--batch B] [--overlap] [--gpu] [--timeout S] [--stall-rank R --stall-step K --pid-dir DIR]
//       N ranks train an MLP with dropout for N steps on their slices of each global batch B and
//       compare their weights and losses with one replica given the whole batch (exit 1 when
//       they differ by more than 1e-5). --gpu: each rank trains on the GPU of its local rank and
//       sums gradients through NCCL (the reference stays on the CPU; limit 1e-4). --stall-rank stops that rank with SIGSTOP before step K
//       (writing its pid to DIR/rank-R.pid), so the others must time out naming it.
//   dp-check --images DIR [--epochs E] [--batch B]
//       the same on image shards through fit: N ranks, each reading and decoding only its share
//       of every global batch of augmented images, against one replica reading them all; prints
//       the records each rank decoded (exit 1 when they differ or the shares do not add up).
//   allreduce [--max-mb M] [--steps N] [--timeout S]
//       all-reduce bus bandwidth (NCCL's definition) from 4 KB to M MB, through the communicator
//       and through bare MPI_Iallreduce; then the time per MLP training step without gradient
//       synchronisation, with it after the backward pass, and overlapped with the backward pass.
import CLearner
import Foundation
import Learner

struct ParallelOptions {
    var steps = 20
    var batch = 16
    var overlap = false
    var timeout = 300.0
    var stallRank = -1
    var stallStep = -1
    var pidDir = ""
    var maxMB = 256
    var images = ""
    var epochs = 1
    var gpu = false

    init(_ arguments: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < arguments.count else { fail("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        func number() -> Double {
            let text = value()
            guard let v = Double(text) else { fail("\(arguments[i - 1]) needs a number, got '\(text)'") }
            return v
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--steps": steps = Int(number())
            case "--batch": batch = Int(number())
            case "--overlap": overlap = true
            case "--timeout": timeout = number()
            case "--stall-rank": stallRank = Int(number())
            case "--stall-step": stallStep = Int(number())
            case "--pid-dir": pidDir = value()
            case "--max-mb": maxMB = Int(number())
            case "--images": images = value()
            case "--epochs": epochs = Int(number())
            case "--gpu": gpu = true
            default: fail("unknown option \(arguments[i]) for \(CommandLine.arguments[1])")
            }
            i += 1
        }
    }
}

/// Entry point of the data-parallel commands; never returns.
func runParallelCommand(_ command: String) -> Never {
    let options = ParallelOptions(Array(CommandLine.arguments.dropFirst(2)))
    let comm: MPICommunicator
    do {
        comm = try MPICommunicator(timeout: options.timeout)
    } catch {
        fail("\(command): \(error) (run it under mpirun)")
    }
    do {
        let status =
            command != "dp-check"
            ? try allReduceBenchmark(comm, options)
            : options.images.isEmpty ? try dataParallelCheck(comm, options) : try imageDataParallelCheck(comm, options)
        try comm.finalize()
        exit(status)
    } catch {
        // A peer may be stopped or gone: report, then end the whole job rather than finalize.
        FileHandle.standardError.write("tefla-bench: error: \(error)\n".data(using: .utf8)!)
        usleep(500_000)  // peers timing out at the same moment report too before the job is ended
        comm.abort(code: 3)
    }
}

// MARK: - dp-check

private func checkModel(seed: UInt64) -> Sequential {
    Sequential([
        Dense(inputSize: 12, units: 32, activation: .relu, seed: seed), Dropout(rate: 0.3),
        Dense(inputSize: 32, units: 4, seed: seed + 1),
    ])
}

/// One training step on rows `rows` of the global batch, the learner's sequence; returns the
/// global batch's loss (the sum over ranks of the share-weighted slice losses).
private func checkStep(
    _ model: Module, _ optimizer: Optimizer, _ x: Tensor, _ y: Tensor, step: Int, rows: Range<Int>,
    sync: DataParallel?, overlap: Bool
) throws -> Float {
    model.train()
    model.setRandomKey(seed: 42, step: UInt64(step + 1), sampleOffset: rows.lowerBound)
    let params = model.parameters
    let share = Float(rows.count) / Float(x.shape[0])
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

/// The larger of two differences, NaN when either is one (Swift's `max` passes over a NaN).
private func worse(_ a: Float, _ b: Float) -> Float { a.isNaN || b.isNaN ? .nan : Swift.max(a, b) }

private func dataParallelCheck(_ comm: MPICommunicator, _ o: ParallelOptions) throws -> Int32 {
    var generator = RandomGenerator(seed: 99)
    let data = (0..<o.steps).map { _ in
        (
            Tensor.randomNormal([o.batch, 12], generator: &generator),
            Tensor((0..<o.batch).map { _ in Float(Int.random(in: 0..<4, using: &generator)) })
        )
    }
    // Every rank also trains the single replica with whole batches, the reference.
    let reference = checkModel(seed: 11)
    let referenceOptimizer = SGD(learningRate: 0.1, momentum: 0.9)
    let referenceLosses = try data.enumerated().map { s, xy in
        try checkStep(reference, referenceOptimizer, xy.0, xy.1, step: s, rows: 0..<o.batch, sync: nil, overlap: false)
    }

    let model = checkModel(seed: comm.rank == 0 ? 11 : 100 + UInt64(comm.rank))
    var device = Device.cpu
    let sync: DataParallel
    if o.gpu {
        // One GPU per rank on its host, gradients summed on the devices by NCCL.
        let environment = ProcessInfo.processInfo.environment
        let local = Int(environment["OMPI_COMM_WORLD_LOCAL_RANK"] ?? environment["MPI_LOCALRANKID"] ?? "0") ?? 0
        try CUDAContext.use(device: local)
        device = .cuda(local)
        model.move(to: device)
        sync = DataParallel(nccl: try NCCLCommunicator(mpi: comm, device: local, timeout: o.timeout), bucketBytes: 512)
    } else {
        sync = DataParallel(comm, bucketBytes: 512)  // several buckets even for this small model
    }
    try sync.broadcastInitialState(model)
    let optimizer = SGD(learningRate: 0.1, momentum: 0.9)
    let rows = (comm.rank * o.batch / comm.size)..<((comm.rank + 1) * o.batch / comm.size)
    var lossDifference: Float = 0
    for (s, (x, y)) in data.enumerated() {
        if comm.rank == o.stallRank && s == o.stallStep {
            try "\(getpid())\n".write(toFile: "\(o.pidDir)/rank-\(comm.rank).pid", atomically: true, encoding: .utf8)
            kill(getpid(), SIGSTOP)
        }
        let loss = try checkStep(model, optimizer, x.to(device), y.to(device), step: s, rows: rows, sync: sync, overlap: o.overlap)
        lossDifference = worse(lossDifference, abs(loss - referenceLosses[s]))
    }
    var weightDifference: Float = 0
    for (p, q) in zip(model.parameters, reference.parameters) {
        for (a, b) in zip(p.value.scalars, q.value.scalars) { weightDifference = worse(weightDifference, abs(a - b)) }
    }
    // The comparison means something only if training moved the weights.
    var moved: Float = 0
    for (p, q) in zip(checkModel(seed: 11).parameters, reference.parameters) {
        for (a, b) in zip(p.value.scalars, q.value.scalars) { moved = worse(moved, abs(a - b)) }
    }
    // Every rank's two figures, gathered on every rank through one sum.
    var slots = [Double](repeating: 0, count: 2 * comm.size)
    slots[2 * comm.rank] = Double(weightDifference)
    slots[2 * comm.rank + 1] = Double(lossDifference)
    let all = try sync.allReduceSum(slots)
    let worst = all.map(Float.init).reduce(0, worse)
    let limit: Float = o.gpu ? 1e-4 : 1e-5  // the GPU's sums against the CPU reference
    let equal = worst <= limit && moved > 1e-3  // false for NaN
    if comm.rank == 0 {
        let perRank = (0..<comm.size).map { String(format: "rank %d: %.2e, %.2e", $0, all[2 * $0], all[2 * $0 + 1]) }
        print(
            "dp-check: \(comm.size) ranks through "
                + (o.gpu ? "NCCL \((try? NCCLCommunicator.version()) ?? 0) on \(device)" : MPICommunicator.library)
                + ", \(o.steps) steps of batch \(o.batch)"
                + (o.overlap ? " (overlapped buckets)" : "") + ", against one replica with the whole batch")
        print("dp-check: max |weight difference|, max |loss difference|: " + perRank.joined(separator: "; "))
        print(String(format: "dp-check: training moved the weights by up to %.2e (needed: > 1e-3)", moved))
        print("dp-check: " + (equal ? "equal" : "DIFFERENT") + String(format: " (largest difference %.2e, limit %.0e)", worst, limit))
    }
    return equal ? 0 : 1
}

// MARK: - dp-check --images

/// Augmented grey images at 16×16 from the shards of `directory` (uncompressed: read by record number).
private func checkImages(_ directory: String) throws -> ImageDataSource {
    let options = ImagePipelineOptions(
        batchSize: 1, height: 16, width: 16, channels: 1, shuffle: true, shuffleBufferSize: 512, workers: 2,
        keys: FeatureKeys(input: "image/encoded", label: "image/class/label"),
        transform: Compose([RandomResizedCrop(height: 16, width: 16, scale: 0.5...1), RandomHorizontalFlip()]))
    return try ImageDataSource(files: try Shards.list(in: directory), options: options)
}

/// A conv net without batch norm, with dropout, as a learner.
private func checkImageLearner(seed: UInt64) -> SupervisedLearner {
    let model = Sequential([
        Conv2D(inputChannels: 1, outputChannels: 6, kernelSize: 3, activation: .relu, seed: seed),
        MaxPool2D(kernelSize: 2), Dropout(rate: 0.1), Flatten(), Dense(inputSize: 6 * 7 * 7, units: 10, seed: seed + 1),
    ])
    let learner = SupervisedLearner(model: model, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 4)
    learner.options.verbose = 0
    return learner
}

private func imageDataParallelCheck(_ comm: MPICommunicator, _ o: ParallelOptions) throws -> Int32 {
    // Every rank also trains the single replica on whole batches, the reference.
    let reference = checkImageLearner(seed: 1)
    let referenceSource = try checkImages(o.images)
    let referenceLosses = try reference.fit(referenceSource, epochs: o.epochs, batchSize: o.batch).epochs.map(\.trainLoss)

    let replica = checkImageLearner(seed: comm.rank == 0 ? 1 : 100 + UInt64(comm.rank))
    let sync = DataParallel(comm)
    replica.gradientSynchronizer = sync
    let source = try checkImages(o.images)
    let losses = try replica.fit(source, epochs: o.epochs, batchSize: o.batch).epochs.map(\.trainLoss)
    var worst: Float = zip(losses, referenceLosses).map { abs($0 - $1) }.reduce(0, worse)
    for (p, q) in zip(replica.model.parameters, reference.model.parameters) {
        for (a, b) in zip(p.value.scalars, q.value.scalars) { worst = worse(worst, abs(a - b)) }
    }
    var moved: Float = 0
    for (p, q) in zip(checkImageLearner(seed: 1).model.parameters, reference.model.parameters) {
        for (a, b) in zip(p.value.scalars, q.value.scalars) { moved = worse(moved, abs(a - b)) }
    }
    // Every rank's difference and record counts, gathered on every rank through one sum.
    var slots = [Double](repeating: 0, count: 3 * comm.size)
    slots[3 * comm.rank] = Double(worst)
    slots[3 * comm.rank + 1] = Double(source.counts.read)
    slots[3 * comm.rank + 2] = Double(source.counts.decoded)
    let all = try sync.allReduceSum(slots)
    let largest = (0..<comm.size).map { Float(all[3 * $0]) }.reduce(0, worse)
    let decoded = (0..<comm.size).map { Int(all[3 * $0 + 2]) }
    let read = (0..<comm.size).map { Int(all[3 * $0 + 1]) }
    // The ranks' shares add up to what one replica decodes, each about 1/N of it.
    let whole = referenceSource.counts.decoded
    let fair = decoded.allSatisfy { abs($0 * comm.size - whole) <= comm.size * o.batch } && read == decoded
    let equal = largest <= 1e-5 && moved > 1e-3 && decoded.reduce(0, +) == whole && fair
    if comm.rank == 0 {
        print(
            "dp-check: \(comm.size) ranks through \(MPICommunicator.library), \(o.epochs) epochs of image batches of \(o.batch) "
                + "from \(o.images), against one replica with the whole batch")
        print(
            "dp-check: records decoded by rank: " + decoded.enumerated().map { "rank \($0): \($1)" }.joined(separator: ", ")
                + " (read: \(read.map(String.init).joined(separator: ", ")); one replica: \(whole))")
        print(String(format: "dp-check: training moved the weights by up to %.2e (needed: > 1e-3)", moved))
        print("dp-check: " + (equal ? "equal" : "DIFFERENT") + String(format: " (largest difference %.2e, limit 1e-5)", largest))
    }
    return equal ? 0 : 1
}

// MARK: - allreduce

private func allReduceBenchmark(_ comm: MPICommunicator, _ o: ParallelOptions) throws -> Int32 {
    let n = comm.size
    let factor = 2 * Double(n - 1) / Double(n)
    var sizes: [Int] = []
    var bytes = 4096
    while bytes <= o.maxMB << 20 {
        sizes.append(bytes)
        bytes *= 4
    }
    let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: (sizes.last ?? 4096) / 4)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 0)  // zeros stay zeros however often they are summed
    if comm.rank == 0 {
        print("allreduce: \(n) ranks through \(MPICommunicator.library); bus bandwidth = size / time × 2(n−1)/n")
        print("      size    time (µs)  algbw (GB/s)  busbw (GB/s)   bare MPI busbw  ours/bare")
    }
    for size in sizes {
        let part = UnsafeMutableBufferPointer(rebasing: buffer[0..<(size / 4)])
        let reps = min(200, max(3, (1 << 30) / size))
        let ours = try timeCollective(comm, reps: reps) { try comm.allReduceSum(part) }
        let bare = try timeCollective(comm, reps: reps) { try bareAllReduce(part) }
        if comm.rank == 0 {
            let busbw = Double(size) / ours * factor / 1e9, bareBusbw = Double(size) / bare * factor / 1e9
            let label = sizeLabel(size)
            print(
                String(repeating: " ", count: max(0, 10 - label.count)) + label
                    + String(
                        format: " %12.1f %13.3f %13.3f %16.3f %10.2f", ours * 1e6, Double(size) / ours / 1e9, busbw, bareBusbw,
                        busbw / bareBusbw))
        }
    }
    try stepTimes(comm, o)
    return 0
}

private func sizeLabel(_ bytes: Int) -> String {
    bytes >= 1 << 20 ? "\(bytes >> 20) MB" : "\(bytes >> 10) KB"
}

/// Seconds per call of `body`, rank 0's mean over `reps` calls after one warm-up call, all ranks
/// starting together.
private func timeCollective(_ comm: MPICommunicator, reps: Int, _ body: () throws -> Void) throws -> Double {
    try body()
    try comm.barrier()
    let start = now()
    for _ in 0..<reps { try body() }
    return (now() - start) / Double(reps)
}

/// MPI_Iallreduce polled to completion, without the communicator's arrival messages and
/// deadline: what the timeout protocol costs is the difference.
private func bareAllReduce(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
    var request = 0
    guard tl_mpi_iallreduce_sum(buffer.baseAddress, Int32(buffer.count), Int32(TL_MPI_FLOAT.rawValue), &request) == 0 else {
        throw MPIError(message: "MPI_Iallreduce failed")
    }
    var done: Int32 = 0
    var polls = 0
    while done == 0 {
        guard tl_mpi_test(&request, &done) == 0 else { throw MPIError(message: "MPI_Test failed") }
        polls += 1
        if polls > 200 { sched_yield() }  // as the communicator does, so that ranks sharing a core progress
    }
}

/// Median time per step of a 784-512-512-10 MLP (batch 64 per rank, Adam) without
/// synchronisation, with the buckets all-reduced after the backward pass, and overlapped.
private func stepTimes(_ comm: MPICommunicator, _ o: ParallelOptions) throws {
    let perRank = 64
    var generator = RandomGenerator(seed: UInt64(7 + comm.rank))
    let x = Tensor.randomNormal([perRank, 784], generator: &generator)
    let y = Tensor((0..<perRank).map { _ in Float(Int.random(in: 0..<10, using: &generator)) })
    let modes: [(String, Int?, Bool)] = [
        ("no synchronisation", nil, false), ("after backward, 25 MB buckets", 25, false),
        ("after backward, 1 MB buckets", 1, false), ("overlapped, 1 MB buckets", 1, true),
    ]
    if comm.rank == 0 {
        print("\nstep time, MLP 784-512-512-10, batch \(perRank) per rank × \(comm.size) ranks, Adam (median of \(o.steps) steps)")
    }
    var baseline = 0.0
    for (name, bucketMB, overlap) in modes {
        let model = Sequential([
            Dense(inputSize: 784, units: 512, activation: .relu, seed: 1),
            Dense(inputSize: 512, units: 512, activation: .relu, seed: 2),
            Dense(inputSize: 512, units: 10, seed: 3),
        ])
        let optimizer = Adam(learningRate: 1e-3)
        let sync = bucketMB.map { DataParallel(comm, bucketBytes: $0 << 20) }
        var times: [Double] = []
        for step in 0..<(o.steps + 5) {
            try comm.barrier()
            let start = now()
            let params = model.parameters
            let loss = Loss.softmaxCrossEntropy()(model(x), y) * (1 / Float(comm.size))
            if let sync {
                try sync.setGradients(of: loss, parameters: params, overlap: overlap)
            } else {
                for (p, g) in zip(params, gradients(of: loss, wrt: params.map(\.value))) { p.gradient = g }
            }
            optimizer.step(params)
            _ = loss.scalar
            if step >= 5 { times.append(now() - start) }
        }
        let median = times.sorted()[times.count / 2]
        if sync == nil { baseline = median }
        if comm.rank == 0 {
            print(
                "  " + name.padding(toLength: 32, withPad: " ", startingAt: 0)
                    + String(format: " %8.3f ms  (%.2f× the unsynchronised step)", median * 1e3, median / baseline))
        }
    }
}
