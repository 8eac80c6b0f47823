import Foundation

/// A bounded first-in first-out queue between one producer thread and its consumer.
///
/// The producer blocks while it holds `capacity` items (Keras' `max_queue_size`), the consumer
/// while it is empty. ``close()`` wakes both for good: the producer's pushes then fail, so a
/// pipeline whose consumer went away stops instead of decoding into the void.
// @unchecked Sendable: every stored property is read and written with `condition` locked, and
// the elements that cross from one thread to the other are Sendable.
final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private let capacity: Int
    private var closed = false
    private var finished = false

    init(capacity: Int) { self.capacity = max(capacity, 1) }

    /// Appends `item`, waiting for room; false when the queue was closed.
    func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !closed && items.count - head >= capacity { condition.wait() }
        guard !closed else { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Marks the end of the stream: ``pop()`` returns nil once the queue is drained.
    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The oldest item, waiting for one; nil when finished and drained, or closed.
    func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while !closed && !finished && items.count == head { condition.wait() }
        guard !closed, head < items.count else { return nil }
        let item = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        condition.broadcast()
        return item
    }

    /// Drops everything and refuses further pushes.
    func close() {
        condition.lock()
        closed = true
        items.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }

    /// Whether ``close()`` was called (for the producer to stop early).
    var isClosed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return closed
    }
}
