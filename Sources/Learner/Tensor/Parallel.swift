import Foundation

/// Splits element-wise work across the cores. Small tensors run on the calling thread:
/// waking a worker costs more than a pass over a few thousand floats.
enum CPUParallel {
    nonisolated(unsafe) static var threadCount = max(1, ProcessInfo.processInfo.activeProcessorCount)
    static let minimumChunk = 1 << 15

    /// Calls `body(start, end)` over disjoint ranges covering 0..<n, aligned to 16 elements.
    @inline(__always)
    static func forRanges(_ n: Int, minimumChunk: Int = minimumChunk, _ body: (Int, Int) -> Void) {
        let workers = min(threadCount, n / minimumChunk)
        if workers <= 1 {
            body(0, n)
            return
        }
        var chunk = (n + workers - 1) / workers
        chunk = (chunk + 15) & ~15
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = w * chunk
            let end = min(n, start + chunk)
            if start < end { body(start, end) }
        }
    }

    /// Calls `body(start, end)` over disjoint ranges covering 0..<count items (images, planes,
    /// channels) of about `itemSize` elements each: one range per core when the whole is worth
    /// waking workers for, else one range on the calling thread. No alignment.
    static func forItems(_ count: Int, itemSize: Int, minimumChunk: Int = minimumChunk, _ body: (Int, Int) -> Void) {
        let perWorker = Swift.max(1, minimumChunk / Swift.max(itemSize, 1))
        let workers = Swift.min(threadCount, count / perWorker)
        if workers <= 1 {
            body(0, count)
            return
        }
        let chunk = (count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let start = w * chunk
            let end = Swift.min(count, start + chunk)
            if start < end { body(start, end) }
        }
    }
}
