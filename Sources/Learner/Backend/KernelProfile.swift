import Foundation

/// Wall time the CPU backend spends per kind of kernel, to see where a training step goes
/// from inside (`tefla-bench cnn --profile`). Off by default, when a kernel pays one branch
/// (an atomic load, no lock).
///
/// Kernels are issued from the one thread that drives the tape (their parallel parts run
/// inside the timed call), so the totals measure one thread's step; enable it only in such a
/// program. While it is on, each kernel takes the totals' lock once to add its time.
public enum KernelProfile {
    public enum Kind: Int, CaseIterable, Sendable {
        case im2col, col2im, convGemm, denseGemm, batchNorm, pooling, elementwise, reduction, loss, optimizer, copy

        public var name: String {
            switch self {
            case .im2col: "im2col"
            case .col2im: "col2im"
            case .convGemm: "sgemm (conv)"
            case .denseGemm: "sgemm (dense)"
            case .batchNorm: "batch norm"
            case .pooling: "pooling"
            case .elementwise: "elementwise"
            case .reduction: "reductions"
            case .loss: "loss"
            case .optimizer: "optimizer"
            case .copy: "copies, permutes"
            }
        }
    }

    public struct Entry: Sendable {
        public var seconds = 0.0
        public var calls = 0
        /// 2·M·N·K summed over the sgemm calls of this kind (0 for other kinds).
        public var flops = 0.0
    }

    public static var isEnabled: Bool {
        get { enabled.value != 0 }
        set { enabled.value = newValue ? 1 : 0 }
    }
    private static let enabled = AtomicSetting(0)

    public static var entries: [Entry] { totals.current }
    private static let totals = Locked([Entry](repeating: Entry(), count: Kind.allCases.count))

    public static func reset() { totals.withLock { $0 = [Entry](repeating: Entry(), count: Kind.allCases.count) } }

    @inline(__always)
    static func measure<T>(_ kind: Kind, flops: Double = 0, _ body: () -> T) -> T {
        guard isEnabled else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let result = body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        totals.withLock { entries in
            entries[kind.rawValue].seconds += dt
            entries[kind.rawValue].calls += 1
            entries[kind.rawValue].flops += flops
        }
        return result
    }

    /// Times one row-major sgemm C[m, n] (+)= op(A)[m, k]·op(B)[k, n].
    @inline(__always)
    static func gemm(_ kind: Kind, m: Int, n: Int, k: Int, _ body: () -> Void) {
        measure(kind, flops: 2 * Double(m) * Double(n) * Double(k), body)
    }
}
