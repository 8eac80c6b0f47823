import Foundation
import TestSupport
import XCTest

/// `--verbose 1` on a real pseudo-terminal (util-linux `script`, in Debian's essential
/// `bsdutils`): the bar is redrawn in place at most ≈ 10 times a second and each epoch ends with
/// one plain line; through a pipe the same run prints lines only.
final class ProgressTerminalTests: XCTestCase {
    /// The digits CNN at batch 4: 360 steps an epoch, ≈ 1 s each on two cores, so the bar has
    /// time to move and far more batches than redraws, if it is throttled.
    static let arguments = [
        "--config", "Configs/digits-cnn.yml", "--epochs", "2", "--verbose", "1",
        "--override", "data.batch_size=4",
    ]
    static let epochs = 2
    static let batches = 360

    /// Runs the trainer under `script -qfec`, which gives it a pseudo-terminal as standard output.
    static func runOnTerminal(_ arguments: [String]) throws -> (status: Int32, output: String, seconds: Double) {
        let script = ["/usr/bin/script", "/bin/script"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let script else {
            XCTFail("util-linux `script` (Debian package bsdutils) is needed to give the trainer a terminal")
            return (-1, "", 0)
        }
        func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = ([Trainer.executable.path] + arguments).map(quoted).joined(separator: " ")
        // Input held open: `script` forwards its input, and EOF would end the session.
        let run = try Subprocess.run(
            URL(fileURLWithPath: script), ["-qfec", command, "/dev/null"],
            directory: ConfigTests.root, mergingErrors: true, holdingInputOpen: true)
        return (run.status, run.output, run.seconds)
    }

    func testBarRedrawsInPlaceOnATerminalAtMostTenTimesASecond() throws {
        let run = try Self.runOnTerminal(Self.arguments)
        XCTAssertEqual(run.status, 0, run.output)
        // The terminal turns each "\n" into "\r\n"; what remains of "\r" are the redraws.
        let text = run.output.replacingOccurrences(of: "\r\n", with: "\n")
        let redraws = text.components(separatedBy: "\rEpoch ").count - 1
        XCTAssertGreaterThan(redraws, Self.epochs, "the bar updates in place within an epoch:\n\(text.prefix(2000))")
        XCTAssertLessThanOrEqual(
            Double(redraws), 10 * run.seconds + Double(Self.epochs) + 5,
            "\(redraws) redraws in \(run.seconds) s: the bar is drawn at most ≈ 10 times a second")
        print(
            String(
                format: "terminal run: %d redraws in %.2f s over %d epochs of %d batches", redraws, run.seconds, Self.epochs,
                Self.batches))
        let bars = text.components(separatedBy: "\r").filter { $0.hasPrefix("Epoch ") && $0.contains(" [") }
        XCTAssertTrue(bars.contains { $0.contains("ETA: ") && $0.contains("samples/s - loss: ") }, "\(bars.prefix(3))")

        // Each line as the terminal shows it: what follows its last carriage return.
        var lines = text.components(separatedBy: "\n")
        XCTAssertEqual(lines.removeLast(), "", "the output ends with a newline")
        let visible = lines.map { line in
            (line.components(separatedBy: "\r").last ?? "").replacingOccurrences(of: "\u{1B}[K", with: "")
        }
        for epoch in 1...Self.epochs {
            let summaries = visible.filter { $0.hasPrefix("Epoch \(epoch)/\(Self.epochs) - ") }
            XCTAssertEqual(summaries.count, 1, "one line ends epoch \(epoch): \(visible)")
            XCTAssertTrue(summaries.first?.contains("val_accuracy: ") ?? false, "\(summaries)")
        }
        XCTAssertFalse(visible.contains { $0.contains("/\(Self.batches) [") }, "no bar is left on a line of its own: \(visible)")
    }

    func testPipedOutputStaysLineBased() throws {
        let run = try Trainer.run(Self.arguments)
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertFalse(run.output.contains("\r"), run.output)
        XCTAssertFalse(run.output.contains("\u{1B}"), run.output)
        // Epoch lines, and on a slow machine a plain progress line every 10 s: whole lines both.
        for epoch in 1...Self.epochs {
            let summaries = run.output.split(separator: "\n").filter { $0.hasPrefix("Epoch \(epoch)/\(Self.epochs) - ") }
            XCTAssertEqual(summaries.count, 1, run.output)
        }
    }
}
