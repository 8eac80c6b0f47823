import CLearner
import Foundation
import XCTest

/// The shim's OpenBLAS core selection (blas.c): an OpenBLAS older than the CPU falls back to its
/// SSE3 "Prescott" kernels, five times slower at sgemm; the shim must have moved it to the
/// newest family the CPU supports, and sgemm must still be right afterwards.
final class BLASCoreTests: XCTestCase {
    private func cpuFlags() -> Set<Substring> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        return Set(line.split(separator: " "))
    }

    func testNoPrescottFallbackOnAVXMachines() throws {
        #if !os(Linux) || !arch(x86_64)
            throw XCTSkip("core selection applies to x86-64 Linux OpenBLAS builds")
        #else
            if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != nil {
                throw XCTSkip("OPENBLAS_CORETYPE is set: the user's choice stands")
            }
            let flags = cpuFlags()
            guard flags.contains("avx2") && flags.contains("fma") else { throw XCTSkip("CPU without AVX2/FMA") }
            let core = String(cString: tl_blas_core_name())
            XCTAssertNotEqual(core.lowercased(), "prescott", "OpenBLAS runs its SSE3 fallback kernels on an AVX2 CPU")
            if ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) {
                // Any AVX-512 family OpenBLAS knows is fine (a newer OpenBLAS may name the CPU itself).
                XCTAssertFalse(["haswell", "sandybridge"].contains(core.lowercased()), "AVX-512 CPU runs \(core) kernels")
            }
        #endif
    }

    func testSgemmMatchesNaiveProductAfterCoreSelection() {
        _ = tl_blas_core_name()
        let m = 67, n = 45, k = 129
        var a = [Float](repeating: 0, count: m * k), b = [Float](repeating: 0, count: k * n)
        for i in a.indices { a[i] = Float((i * 37) % 17) / 8 - 1 }
        for i in b.indices { b[i] = Float((i * 11) % 13) / 6 - 1 }
        var c = [Float](repeating: 1, count: m * n)
        tl_sgemm(0, 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k { s += Double(a[i * k + p]) * Double(b[p * n + j]) }
                XCTAssertEqual(Double(c[i * n + j]), s, accuracy: 1e-3, "C[\(i), \(j)]")
            }
        }
    }
}
