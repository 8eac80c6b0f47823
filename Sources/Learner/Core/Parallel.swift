import CLearner
import Foundation

/// Splits the CPU kernels' work across the cores, on the engine's worker pool (Sources/CLearner/pool.c).
/// Small tensors run on the calling thread: waking a worker costs more than a pass over a few
/// thousand floats.
public enum CPUParallel {
    /// Threads the CPU kernels and sgemms use, the calling thread included (default: the active cores).
    public static var threadCount: Int {
        get { threadCountSetting.value }
        set { threadCountSetting.value = newValue }
    }
    private static let threadCountSetting = AtomicSetting(max(1, ProcessInfo.processInfo.activeProcessorCount))
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
        perform(workers) { w in
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
        perform(workers) { w in
            let start = w * chunk
            let end = Swift.min(count, start + chunk)
            if start < end { body(start, end) }
        }
    }

    /// Calls body(0), ..., body(tasks − 1) on the pool, up to `tasks` at once, and returns when
    /// all have; on the calling thread, in order, when the pool is busy (another thread's job, or
    /// a call from inside a task).
    static func perform(_ tasks: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            var task = body
            withUnsafeMutablePointer(to: &task) { pointer in
                _ = tl_pool_run(
                    Int32(tasks), Int32(tasks),
                    { context, t in
                        context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(Int(t))
                    }, pointer)
            }
        }
    }
}
