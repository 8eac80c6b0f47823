import CLearner
import Foundation

/// A ``GradientSynchronizer`` that can also run the backward pass itself, starting each
/// gradient bucket's all-reduce as soon as the bucket's gradients are final, so that the
/// communication of the last layers overlaps the backward pass of the first.
public protocol OverlappedGradientSynchronizer: GradientSynchronizer {
    /// The backward pass of `loss` (the rank's share-scaled loss): leaves in every parameter's
    /// `gradient` the sum over ranks, as ``GradientSynchronizer/allReduceGradients(_:)`` would
    /// after `gradients(of:wrt:)`.
    func backward(_ loss: Tensor, parameters: [Parameter]) throws
}

/// A data-parallel replica group over a ``Communicator``: gradients packed into ~25 MB buckets
/// in reverse parameter order (PyTorch DDP's layout), one all-reduce per bucket.
public final class DataParallel: OverlappedGradientSynchronizer {
    public let communicator: Communicator
    /// The bucket size limit in bytes (PyTorch's `bucket_cap_mb`, 25 MB by default).
    public let bucketBytes: Int

    /// GPU ranks: gradients on its device are bucketed on the device and reduced by NCCL.
    public let nccl: NCCLCommunicator?

    private var layout: GradientBuckets?
    private var buffers: [UnsafeMutableBufferPointer<Float>] = []
    private var deviceBuckets: [Storage] = []

    public init(_ communicator: Communicator, bucketBytes: Int = 25 << 20) {
        precondition(bucketBytes > 0, "bucketBytes must be positive, got \(bucketBytes)")
        self.communicator = communicator
        self.bucketBytes = bucketBytes
        nccl = nil
    }

    /// GPU ranks: gradients reduced on the device through NCCL; host values (losses, metric
    /// statistics) and the initial broadcast through NCCL's MPI communicator.
    public init(nccl: NCCLCommunicator, bucketBytes: Int = 25 << 20) {
        precondition(bucketBytes > 0, "bucketBytes must be positive, got \(bucketBytes)")
        communicator = nccl.mpi
        self.bucketBytes = bucketBytes
        self.nccl = nccl
    }

    deinit { for b in buffers { b.deallocate() } }

    public var rank: Int { communicator.rank }
    public var worldSize: Int { communicator.size }

    public func broadcastInitialState(_ model: Module) throws {
        let entries = model.namedParametersAndBuffers
        let counts = entries.map { $0.parameter.value.scalarCount }
        try checkSameModel(counts)
        let layout = GradientBuckets(counts: counts, bucketBytes: bucketBytes)
        let buffers = self.buffers(for: layout)
        for (b, bucket) in layout.buckets.enumerated() {
            for e in bucket { Self.pack(entries[e.index].parameter.value, into: buffers[b], at: e.offset) }
            try communicator.broadcast(buffers[b], root: 0)
            for e in bucket {
                let p = entries[e.index].parameter
                p.assign(Self.unpack(buffers[b], at: e.offset, shape: p.shape, on: p.device))
            }
        }
    }

    /// Fails on every rank, naming the ranks, unless every rank's model has rank 0's tensor sizes.
    private func checkSameModel(_ counts: [Int]) throws {
        // Each rank's slot of a vector holds its digest, so every rank sees every digest.
        var digest: UInt64 = 0xCBF2_9CE4_8422_2325
        for c in counts { digest = (digest ^ UInt64(c)) &* 0x100_0000_01B3 }
        var slots = [Double](repeating: 0, count: 2 * worldSize)
        slots[2 * rank] = Double(digest >> 32)
        slots[2 * rank + 1] = Double(digest & 0xFFFF_FFFF)
        let all = try allReduceSum(slots)
        let differing = (1..<worldSize).filter { all[2 * $0] != all[0] || all[2 * $0 + 1] != all[1] }
        guard differing.isEmpty else {
            let who = differing.count == 1 ? "rank \(differing[0]) has" : "ranks \(CollectiveError.list(differing)) have"
            throw CollectiveError(
                rank: rank, operation: "broadcast of the initial state",
                message: "failed: \(who) a model whose tensor sizes differ from rank 0's")
        }
    }

    public func allReduceGradients(_ parameters: [Parameter]) throws {
        if let nccl, parameters.allSatisfy({ $0.device == .cuda(nccl.device) }) {
            return try allReduceOnDevice(parameters, nccl)
        }
        let layout = self.layout(for: parameters)
        for (b, bucket) in layout.buckets.enumerated() {
            for e in bucket { pack(parameters[e.index], into: buffers[b], at: e.offset) }
            try communicator.allReduceSum(buffers[b])
            unpack(bucket: b, of: layout, into: parameters)
        }
    }

    public func backward(_ loss: Tensor, parameters: [Parameter]) throws {
        if nccl != nil {
            // NCCL's stream waits for the engine's whole stream, so buckets go after the backward pass.
            for (p, g) in zip(parameters, gradients(of: loss, wrt: parameters.map(\.value))) { p.gradient = g }
            return try allReduceGradients(parameters)
        }
        let layout = self.layout(for: parameters)
        var remaining = layout.buckets.map(\.count)
        var pending: [PendingCollective] = []
        var failure: Error?
        let buffers = self.buffers
        func launchReady() throws {
            // Buckets start in order, so every rank issues its collectives in the same order.
            while pending.count < remaining.count, remaining[pending.count] == 0 {
                pending.append(try communicator.startAllReduceSum(buffers[pending.count]))
            }
        }
        _ = gradients(of: loss, wrt: parameters.map(\.value)) { i, g in
            guard failure == nil else { return }
            do {
                let (b, offset) = layout.place[i]
                Self.pack(g, into: buffers[b], at: offset)
                remaining[b] -= 1
                try launchReady()
                for op in pending { _ = try op.poll() }  // MPI moves a nonblocking collective on only inside its calls
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        try launchReady()
        for (b, op) in pending.enumerated() {
            try op.wait()
            unpack(bucket: b, of: layout, into: parameters)
        }
    }

    /// The gradients of `loss` (this rank's share-scaled loss) summed over ranks into every
    /// parameter's `gradient`: overlapped with the backward pass, or after it.
    public func setGradients(of loss: Tensor, parameters: [Parameter], overlap: Bool) throws {
        if overlap { return try backward(loss, parameters: parameters) }
        for (p, g) in zip(parameters, gradients(of: loss, wrt: parameters.map(\.value))) { p.gradient = g }
        try allReduceGradients(parameters)
    }

    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        var values = values
        try values.withUnsafeMutableBufferPointer { try communicator.allReduceSum($0) }
        return values
    }

    // MARK: - Packing

    private func layout(for parameters: [Parameter]) -> GradientBuckets {
        let layout = GradientBuckets(counts: parameters.map { $0.value.scalarCount }, bucketBytes: bucketBytes)
        _ = buffers(for: layout)
        return layout
    }

    /// The bucket buffers of `layout`, kept from step to step while the layout stays the same.
    private func buffers(for layout: GradientBuckets) -> [UnsafeMutableBufferPointer<Float>] {
        if layout != self.layout {
            for b in buffers { b.deallocate() }
            buffers = layout.sizes.map {
                let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: $0)
                b.initialize(repeating: 0)
                return b
            }
            self.layout = layout
        }
        return buffers
    }

    private func pack(_ parameter: Parameter, into buffer: UnsafeMutableBufferPointer<Float>, at offset: Int) {
        if let g = parameter.gradient {
            precondition(g.shape == parameter.shape, "gradient shape \(g.shape) differs from its parameter's \(parameter.shape)")
            Self.pack(g, into: buffer, at: offset)
        } else {
            // A parameter this rank's slice did not reach still takes part, with zeros.
            buffer.baseAddress!.advanced(by: offset).update(repeating: 0, count: parameter.value.scalarCount)
        }
    }

    static func pack(_ tensor: Tensor, into buffer: UnsafeMutableBufferPointer<Float>, at offset: Int) {
        let host = tensor.to(.cpu)
        withExtendedLifetime(host) {
            buffer.baseAddress!.advanced(by: offset).update(from: host.storage.pointer, count: host.scalarCount)
        }
    }

    /// A new tensor with the bucket's elements (gradients may share storage with one another:
    /// an addition hands the same gradient to both inputs, so they are never written in place).
    static func unpack(_ buffer: UnsafeMutableBufferPointer<Float>, at offset: Int, shape: [Int], on device: Device) -> Tensor {
        let count = ShapeMath.count(shape)
        let storage = Storage(count: count)
        storage.pointer.update(from: buffer.baseAddress!.advanced(by: offset), count: count)
        return Tensor(shape: shape, storage: storage).to(device)
    }

    /// The buckets packed, reduced and unpacked on the GPU: no copy through the host.
    private func allReduceOnDevice(_ parameters: [Parameter], _ nccl: NCCLCommunicator) throws {
        let layout = GradientBuckets(counts: parameters.map { $0.value.scalarCount }, bucketBytes: bucketBytes)
        let device = Device.cuda(nccl.device)
        if deviceBuckets.map(\.count) != layout.sizes { deviceBuckets = layout.sizes.map { Storage(count: $0, device: device) } }
        for (b, bucket) in layout.buckets.enumerated() {
            let buffer = deviceBuckets[b]
            for e in bucket {
                let target = buffer.pointer + e.offset
                if let g = parameters[e.index].gradient {
                    precondition(g.scalarCount == e.count, "gradient of \(g.scalarCount) elements for a parameter of \(e.count)")
                    CUDAContext.check(tl_cuda_memcpy_dtod(target, g.storage.pointer, e.count * 4), "packing a gradient bucket")
                } else {
                    CUDAContext.check(tl_cuda_fill(target, 0, e.count), "zeroing a gradient bucket")
                }
            }
            try nccl.allReduceSum(buffer)
            for e in bucket {
                let p = parameters[e.index]
                let storage = Storage(count: e.count, device: device)
                CUDAContext.check(
                    tl_cuda_memcpy_dtod(storage.pointer, buffer.pointer + e.offset, e.count * 4), "unpacking a gradient bucket")
                p.gradient = Tensor(shape: p.shape, storage: storage)
            }
        }
    }

    private func unpack(bucket b: Int, of layout: GradientBuckets, into parameters: [Parameter]) {
        for e in layout.buckets[b] {
            let p = parameters[e.index]
            p.gradient = Self.unpack(buffers[b], at: e.offset, shape: p.shape, on: p.device)
        }
    }
}
