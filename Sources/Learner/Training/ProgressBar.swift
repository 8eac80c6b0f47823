import Foundation

/// Keras' `verbose=1` progress bar for one epoch: `12/47 [====>.....] - ETA: 3s - 850 samples/s - loss: 0.41`.
///
/// On a terminal the bar is redrawn in place (`\r`) at most every `redrawInterval` seconds
/// (0.1 s: ≈ 10 times a second), and the values it shows are read only then. Elsewhere (a
/// file, a pipe, a closure collecting lines) it writes a plain line at most every
/// `plainInterval` seconds, so logs stay readable. The epoch's summary line replaces the bar.
public struct ProgressBar {
    public let epoch: Int
    public let epochs: Int
    public let totalBatches: Int
    public let isTerminal: Bool
    public var width = 30
    public var redrawInterval: TimeInterval = 0.1
    public var plainInterval: TimeInterval = 10
    let write: (String) -> Void
    let started: Date
    var lastDraw: Date?
    /// How many times the bar was drawn (for tests and throttling checks).
    public private(set) var draws = 0

    /// - Parameters:
    ///   - epoch: the epoch the bar shows (1-based).
    ///   - epochs: the run's last epoch.
    ///   - totalBatches: batches in the epoch.
    ///   - isTerminal: whether `write` draws on a terminal (a live bar) or writes lines.
    ///   - started: when the epoch started.
    ///   - write: receives the text as is (no newline added) on a terminal, whole lines otherwise.
    public init(
        epoch: Int, epochs: Int, totalBatches: Int, isTerminal: Bool, started: Date = Date(),
        write: @escaping (String) -> Void
    ) {
        self.epoch = epoch
        self.epochs = epochs
        self.totalBatches = Swift.max(totalBatches, 1)
        self.isTerminal = isTerminal
        self.started = started
        self.write = write
    }

    /// Whether a redraw is due at `now` (the caller then computes the values to show).
    public func isDue(batch: Int, now: Date = Date()) -> Bool {
        let interval = isTerminal ? redrawInterval : plainInterval
        guard let lastDraw else { return isTerminal || now.timeIntervalSince(started) >= interval }
        return now.timeIntervalSince(lastDraw) >= interval
    }

    /// Draws the bar after `batch` batches (1-based) and `samples` samples, when due.
    public mutating func update(batch: Int, samples: Int, now: Date = Date(), values: () -> [(String, Float)]) {
        guard isDue(batch: batch, now: now) else { return }
        lastDraw = now
        draws += 1
        let line = render(batch: batch, samples: samples, now: now, values: values())
        write(isTerminal ? "\r" + line + "\u{1B}[K" : line)
    }

    /// Clears the live bar (terminal only) before the epoch summary line.
    public func finish() {
        if isTerminal && draws > 0 { write("\r\u{1B}[K") }
    }

    func render(batch: Int, samples: Int, now: Date, values: [(String, Float)]) -> String {
        let elapsed = now.timeIntervalSince(started)
        let done = Swift.min(Swift.max(batch, 0), totalBatches)
        let filled = width * done / totalBatches
        var bar = String(repeating: "=", count: filled)
        if filled < width { bar += ">" + String(repeating: ".", count: width - filled - 1) }
        let digits = String(totalBatches).count
        let count = String(repeating: " ", count: Swift.max(digits - String(done).count, 0)) + String(done)
        var parts = ["Epoch \(epoch)/\(epochs) \(count)/\(totalBatches) [\(bar)]"]
        if done < totalBatches, done > 0 {
            parts.append("ETA: " + ProgressBar.duration(elapsed / Double(done) * Double(totalBatches - done)))
        } else {
            parts.append(ProgressBar.duration(elapsed))
        }
        parts.append(String(format: "%.0f samples/s", Double(samples) / Swift.max(elapsed, 1e-9)))
        for (name, value) in values { parts.append(String(format: "\(name): %.4f", value)) }
        return parts.joined(separator: " - ")
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s >= 3600 { return "\(s / 3600):" + String(format: "%02d:%02d", (s % 3600) / 60, s % 60) }
        if s >= 60 { return "\(s / 60):" + String(format: "%02d", s % 60) }
        return seconds < 1 ? String(format: "%.0fms", seconds * 1000) : "\(s)s"
    }
}
