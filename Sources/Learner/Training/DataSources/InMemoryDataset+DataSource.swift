import Foundation

extension InMemoryDataset: DataSource {
    public var sampleCount: Int? { count }

    public var dataDescription: String {
        guard !sources.isEmpty else { return "the samples in memory" }
        return "feature '\(keys?.input ?? "?")' of \(InMemoryDataset.folderDescription(sources))"
    }

    /// `data/train` for shards in one folder, else the first file and how many more.
    static func folderDescription(_ files: [String]) -> String {
        let folders = Set(files.map { URL(fileURLWithPath: $0).deletingLastPathComponent().relativePath })
        if folders.count == 1, let folder = folders.first { return folder }
        return (files.first ?? "no files") + (files.count > 1 ? " and \(files.count - 1) more files" : "")
    }

    /// Where sample `index` was read from: `record 17 of data/train/part-0.tfrecord`.
    public func location(ofSample index: Int) -> String {
        var first = 0
        for (file, records) in zip(sources, recordsPerSource) {
            if index < first + records { return "record \(index - first) of \(file)" }
            first += records
        }
        return "sample \(index)"
    }

    /// Training batches follow ``SupervisedLearner/shuffledOrder(count:seed:epoch:pass:)``;
    /// other batches keep the stored order.
    public func batches(_ request: BatchRequest) throws -> any BatchStream {
        let order =
            request.training
            ? SupervisedLearner.shuffledOrder(count: count, seed: request.seed, epoch: request.epoch, pass: request.pass) : nil
        return IndexedBatchStream(request, count: count, order: order) { positions, order in
            self.collate(order.map { Array($0[positions]) } ?? Array(positions))
        }
    }

    /// The samples at `indices` as contiguous host tensors: inputs `[B, featureSize]`, labels
    /// `[B]` (or `[B, labelSize]`), and their weights when the data set has them.
    public func collate(_ indices: [Int]) -> DataBatch {
        let d = featureSize, l = labelSize
        let x = Storage(count: indices.count * d)
        let y = Storage(count: indices.count * l)
        inputs.withUnsafeBufferPointer { src in
            labels.withUnsafeBufferPointer { labelSource in
                for (row, i) in indices.enumerated() {
                    (x.pointer + row * d).update(from: src.baseAddress! + i * d, count: d)
                    (y.pointer + row * l).update(from: labelSource.baseAddress! + i * l, count: l)
                }
            }
        }
        let labelShape = l == 1 ? [indices.count] : [indices.count, l]
        let weights = sampleWeights.map { w in Tensor(shape: [indices.count], scalars: indices.map { w[$0] }) }
        return DataBatch(
            inputs: Tensor(shape: [indices.count, d], storage: x), labels: Tensor(shape: labelShape, storage: y),
            sampleWeights: weights)
    }
}
