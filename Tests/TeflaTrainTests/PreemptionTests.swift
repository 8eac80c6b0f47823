import Foundation
import TestSupport
import XCTest

/// SIGTERM at pseudo-random moments of a run, then `--resume`: the stopped run exits with
/// status 143 after saving the step it was on, and the resumed run ends with the weights of an
/// uninterrupted run, byte for byte. A second signal ends the run at once, never leaving a
/// checkpoint that fails to load.
final class PreemptionTests: XCTestCase {
    var scratch = ""

    override func setUpWithError() throws {
        scratch = try Scratch.directory("tefla-preempt", for: self).path
    }

    func config(weights: String) -> String {
        DigitsRunConfig.text(
            layers: ["type: dense, units: 256, activation: relu", "type: dropout, rate: 0.2", "type: dense, units: 10"],
            batchSize: 8, training: "epochs: 30, seed: 5, ema_decay: 0.9, verbose: 0, csv_log: \(weights).csv", weights: weights,
            extra: "schedule: {name: one_cycle, max_lr: 0.01}")
    }

    struct Outcome {
        var status: Int32
        var signaled: Bool
        var output: String
    }

    /// Runs `tefla-train arguments`, sending `signals` (`gap` seconds apart) after `delay` seconds.
    func run(_ arguments: [String], delay: TimeInterval, signals: [Int32], gap: TimeInterval = 0) throws -> Outcome {
        let process = Process()
        process.executableURL = Trainer.executable
        process.arguments = arguments
        process.currentDirectoryURL = ConfigTests.root
        let log = URL(fileURLWithPath: scratch).appendingPathComponent("out-\(UUID().uuidString).txt")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        for (i, signal) in signals.enumerated() {
            if i > 0 { Thread.sleep(forTimeInterval: gap) }
            if process.isRunning { kill(process.processIdentifier, signal) }
        }
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, signaled: process.terminationReason == .uncaughtSignal,
            output: (try? String(contentsOf: log, encoding: .utf8)) ?? "")
    }

    func finalWeights(_ dir: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: dir + "/epoch-0030/model.safetensors"))
    }

    /// Resumes `file`'s run to its end and checks its final weights against `expected`.
    func resumeToTheEnd(_ file: String, _ dir: String, expected: Data, _ what: String) throws {
        let resumed = try Trainer.run(["--config", file, "--resume"], mergingErrors: true)
        XCTAssertEqual(resumed.status, 0, "\(what): \(resumed.output)")
        XCTAssertEqual(try finalWeights(dir), expected, "\(what): resumed weights differ from the uninterrupted run")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "\(what): temporary files left behind")
    }

    /// Trial `n`'s config (its own weights folder) and a delay in `range` of `duration`, drawn
    /// from `lcg` (a fixed sequence, so a failure repeats).
    func trial(_ name: String, _ lcg: inout UInt64, duration: Double, range: ClosedRange<Double>) throws -> (
        dir: String, file: String, delay: Double
    ) {
        lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
        let delay = duration * (range.lowerBound + (range.upperBound - range.lowerBound) * Double(lcg >> 11) / Double(1 << 53))
        let dir = scratch + "/" + name
        try config(weights: dir).write(toFile: dir + ".yml", atomically: true, encoding: .utf8)
        return (dir, dir + ".yml", delay)
    }

    func testSIGTERMAtRandomMomentsThenResumeGivesTheUninterruptedWeights() throws {
        let reference = scratch + "/reference"
        try config(weights: reference).write(toFile: reference + ".yml", atomically: true, encoding: .utf8)
        let started = Date()
        let clean = try Trainer.run(["--config", reference + ".yml"], mergingErrors: true)
        let duration = Date().timeIntervalSince(started)
        XCTAssertEqual(clean.status, 0, clean.output)
        let expected = try finalWeights(reference)
        let referenceCSV = try String(contentsOfFile: reference + ".csv", encoding: .utf8)

        var lcg: UInt64 = 2024
        var graceful = 0
        for trial in 0..<20 {
            let (dir, file, delay) = try self.trial("\(trial)", &lcg, duration: duration, range: 0.1...0.95)
            let stopped = try run(["--config", file], delay: delay, signals: [SIGTERM])
            let what = String(format: "trial %d (SIGTERM after %.2f s of %.2f s)", trial, delay, duration)
            print("preemption: \(what): status \(stopped.status)\(stopped.signaled ? " (signal)" : "")")
            if stopped.status == 143 && !stopped.signaled {
                graceful += 1
                XCTAssertTrue(stopped.output.contains("stopped by SIGTERM after step"), "\(what): \(stopped.output)")
            } else {
                // Before the handlers are installed (the process starting) the signal ends it,
                // with nothing to save yet; after the last step the run is complete.
                XCTAssertTrue(
                    (stopped.signaled && stopped.status == SIGTERM) || (!stopped.signaled && stopped.status == 0),
                    "\(what): status \(stopped.status), signaled \(stopped.signaled): \(stopped.output)")
            }
            try resumeToTheEnd(file, dir, expected: expected, what)
            XCTAssertEqual(
                try String(contentsOfFile: dir + ".csv", encoding: .utf8), referenceCSV,
                "\(what): the CSV log continues the same run, each epoch's row once")
        }
        print("preemption: \(graceful) of 20 runs stopped gracefully by SIGTERM and resumed to the uninterrupted weights")
        XCTAssertGreaterThanOrEqual(graceful, 15, "most signals must land while the run trains")
    }

    func testASecondSignalEndsAtOnceAndLeavesNoBrokenCheckpoint() throws {
        let reference = scratch + "/reference"
        try config(weights: reference).write(toFile: reference + ".yml", atomically: true, encoding: .utf8)
        let started = Date()
        XCTAssertEqual(try Trainer.run(["--config", reference + ".yml"]).status, 0)
        let duration = Date().timeIntervalSince(started)
        let expected = try finalWeights(reference)
        var lcg: UInt64 = 77
        for trial in 0..<5 {
            let (dir, file, delay) = try self.trial("twice-\(trial)", &lcg, duration: duration, range: 0.3...0.9)
            let stopped = try run(["--config", file], delay: delay, signals: [SIGINT, SIGINT], gap: 0.002)
            let what = String(format: "trial %d (two SIGINTs after %.2f s)", trial, delay)
            XCTAssertTrue(
                (!stopped.signaled && [130, 0].contains(stopped.status)) || (stopped.signaled && stopped.status == SIGINT),
                "\(what): status \(stopped.status): \(stopped.output)")
            // Every checkpoint folder in place loads: --resume takes the newest.
            try resumeToTheEnd(file, dir, expected: expected, what)
        }
    }
}
