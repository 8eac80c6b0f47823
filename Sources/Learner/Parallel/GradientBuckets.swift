/// How a list of tensors is packed into flat buckets for the all-reduce, as PyTorch's DDP does:
/// in reverse order (the backward pass finishes the last layers first, so the first bucket is
/// ready first), a new bucket whenever the next tensor would take the current one past
/// `bucketBytes`; a tensor larger than that has a bucket to itself.
struct GradientBuckets: Equatable {
    struct Entry: Equatable {
        let index: Int  // position in the tensor list
        let offset: Int  // first element within the bucket
        let count: Int
    }

    /// Each bucket's entries, in the order they were packed.
    let buckets: [[Entry]]
    /// Bucket and offset of each tensor, by its position in the list.
    let place: [(bucket: Int, offset: Int)]

    init(counts: [Int], bucketBytes: Int) {
        let limit = Swift.max(bucketBytes / MemoryLayout<Float>.size, 1)
        var buckets: [[Entry]] = []
        var current: [Entry] = []
        var filled = 0
        var place = [(bucket: Int, offset: Int)](repeating: (0, 0), count: counts.count)
        for index in counts.indices.reversed() {
            if !current.isEmpty && filled + counts[index] > limit {
                buckets.append(current)
                current = []
                filled = 0
            }
            place[index] = (buckets.count, filled)
            current.append(Entry(index: index, offset: filled, count: counts[index]))
            filled += counts[index]
        }
        if !current.isEmpty { buckets.append(current) }
        self.buckets = buckets
        self.place = place
    }

    /// Elements in each bucket.
    var sizes: [Int] { buckets.map { $0.reduce(0) { $0 + $1.count } } }

    static func == (a: GradientBuckets, b: GradientBuckets) -> Bool { a.buckets == b.buckets }
}
