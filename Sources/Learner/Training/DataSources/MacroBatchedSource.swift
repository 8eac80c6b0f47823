/// Feeds any source in macrobatches (PuzzleLib's macrobatch trainer): it asks `source` for
/// batches of k × the requested size, copies each to `device` in one transfer, and hands out
/// its k slices from there, so a GPU gets one large upload instead of k small ones.
///
/// The batches are those of `source` at the requested size: sources order their samples by
/// (seed, epoch, pass) whatever the batch size, so slicing a k-times larger batch gives the same
/// samples in the same order (the last slice of a pass may be short; it is dropped when the
/// request says so).
public final class MacroBatchedSource: DataSource {
    public let source: any DataSource
    /// Batches per macrobatch (k).
    public let batchesPerMacroBatch: Int
    public let device: Device

    public init(_ source: any DataSource, batchesPerMacroBatch: Int, device: Device) {
        precondition(batchesPerMacroBatch >= 1, "batchesPerMacroBatch must be >= 1, got \(batchesPerMacroBatch)")
        self.source = source
        self.batchesPerMacroBatch = batchesPerMacroBatch
        self.device = device
    }

    public var sampleCount: Int? { source.sampleCount }
    public var dataDescription: String { source.dataDescription }

    public func batches(_ request: BatchRequest) throws -> any BatchStream {
        var macro = request
        macro.batchSize = request.batchSize * batchesPerMacroBatch
        macro.startBatch = request.startBatch / batchesPerMacroBatch
        macro.dropLastBatch = false  // short slices are dropped below, one batch at a time
        let stream = MacroBatchStream(
            try source.batches(macro), batchSize: request.batchSize, device: device,
            dropShort: request.dropLastBatch)
        for _ in 0..<(request.startBatch % batchesPerMacroBatch) where try stream.next() != nil {}
        return stream
    }
}

/// Slices of device-resident macrobatches.
final class MacroBatchStream: BatchStream {
    private let inner: any BatchStream
    private let batchSize: Int
    private let device: Device
    private let dropShort: Bool
    private var current: DataBatch?
    private var offset = 0

    init(_ inner: any BatchStream, batchSize: Int, device: Device, dropShort: Bool) {
        self.inner = inner
        self.batchSize = batchSize
        self.device = device
        self.dropShort = dropShort
    }

    /// Uploads macrobatches to `device` the first time one is needed.
    func next() throws -> DataBatch? {
        if current == nil || offset >= current!.count {
            guard let macro = try inner.next() else { return nil }
            current = macro.to(device)
            offset = 0
        }
        guard let macro = current else { return nil }
        let end = Swift.min(offset + batchSize, macro.count)
        if end - offset < batchSize && dropShort { return nil }
        defer { offset = end }
        return withoutGradients { macro.slice(offset..<end) }
    }
}
