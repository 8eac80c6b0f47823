import CLearner
import Foundation
import XCTest

@testable import Learner

/// The engine's worker pool (pool.c) and the sgemm sliced across it (CPUGemm).
final class WorkerPoolTests: XCTestCase {
    /// Runs `jobs` jobs of `tasks` tasks; returns how often each task index ran.
    private func counts(jobs: Int, tasks: Int, between: () -> Void = {}) -> [Int] {
        var counts = [Int](repeating: 0, count: tasks)
        counts.withUnsafeMutableBufferPointer { c in
            let base = c.baseAddress!
            for _ in 0..<jobs {
                // Each index is written by the one thread that ran it: a task run twice or
                // skipped shows in the counts.
                CPUParallel.perform(tasks) { t in base[t] += 1 }
                between()
            }
        }
        return counts
    }

    func testEveryTaskOfEveryJobRunsExactlyOnce() {
        let saved = CPUParallel.threadCount
        defer { CPUParallel.threadCount = saved }
        CPUParallel.threadCount = 4
        for tasks in [2, 3, 7, 64] {
            XCTAssertEqual(counts(jobs: 3000, tasks: tasks), [Int](repeating: 3000, count: tasks), "\(tasks) tasks a job")
        }
    }

    func testSleepingWorkersAreWoken() {
        // No spinning: every job finds the workers asleep on the condition variable.
        tl_pool_set_spin_ns(0)
        defer { tl_pool_set_spin_ns(200_000) }
        XCTAssertEqual(counts(jobs: 300, tasks: 2, between: { usleep(200) }), [300, 300])
        XCTAssertEqual(counts(jobs: 300, tasks: 5), [Int](repeating: 300, count: 5))
    }

    func testConcurrentAndNestedCallersAllFinish() {
        // Several threads submit at once (one gets the pool, the others run their tasks
        // themselves) and tasks submit jobs of their own.
        let totals = Locked([Int](repeating: 0, count: 4))
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            var total = 0
            for _ in 0..<200 {
                var partial = [Int](repeating: 0, count: 3)
                partial.withUnsafeMutableBufferPointer { p in
                    let base = p.baseAddress!
                    CPUParallel.perform(3) { t in
                        var inner = [0, 0]
                        inner.withUnsafeMutableBufferPointer { q in
                            let qb = q.baseAddress!
                            CPUParallel.perform(2) { u in qb[u] = u + 1 }
                        }
                        base[t] = inner[0] + inner[1] + t
                    }
                }
                total += partial.reduce(0, +)
            }
            totals.withLock { $0[caller] = total }
        }
        // Each job: tasks 0, 1, 2 give 3 + t; 200 jobs: 200 · 12.
        XCTAssertEqual(totals.current, [Int](repeating: 2400, count: 4))
    }

    func testAJobSubmittedFromATaskRunsOnThatTasksThread() {
        // The outer job has the pool (nothing else runs); the job one of its tasks submits must
        // not wait for the pool it is part of.
        var inner: Int32 = -1
        let outer = withUnsafeMutablePointer(to: &inner) { inner in
            tl_pool_run(
                2, 2,
                { context, t in
                    if t == 0 { context!.assumingMemoryBound(to: Int32.self).pointee = tl_pool_run(2, 2, { _, _ in }, nil) }
                }, inner)
        }
        XCTAssertEqual(outer, 1, "the outer job ran on the pool")
        XCTAssertEqual(inner, 0, "the nested job ran on its caller's thread")
    }

    func testSlicedSgemmEqualsOneCall() {
        let saved = CPUParallel.threadCount
        defer { CPUParallel.threadCount = saved }
        var g = RandomGenerator(seed: 11)
        // Sliced by rows (m > n), by columns, square; leading dimensions wider than the operands.
        for (m, n, k) in [(300, 70, 90), (70, 300, 90), (129, 129, 65), (1000, 33, 40)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                for beta: Float in [0, 1] {
                    let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 7
                    let a = (0..<((transA ? k : m) * lda)).map { _ in g.nextUniform() - 0.5 }
                    let b = (0..<((transB ? n : k) * ldb)).map { _ in g.nextUniform() - 0.5 }
                    let c0 = (0..<(m * ldc)).map { _ in g.nextUniform() - 0.5 }
                    var whole = c0, sliced = c0
                    tl_sgemm(
                        transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta,
                        &whole, Int32(ldc))
                    CPUParallel.threadCount = 3
                    XCTAssertGreaterThanOrEqual(m * n * k, CPUGemm.parallelThreshold)
                    CPUGemm.sgemm(transA, transB, m: m, n: n, k: k, a, lda: lda, b, ldb: ldb, beta: beta, &sliced, ldc: ldc)
                    var worst: Float = 0
                    for i in 0..<(m * ldc) { worst = Swift.max(worst, abs(whole[i] - sliced[i])) }
                    // Padding between rows of C is never written.
                    for r in 0..<m { for j in n..<ldc { XCTAssertEqual(sliced[r * ldc + j], c0[r * ldc + j]) } }
                    XCTAssertLessThan(worst, 1e-5, "\(m)×\(n)×\(k) transA \(transA) transB \(transB) beta \(beta)")
                }
            }
        }
    }
}
