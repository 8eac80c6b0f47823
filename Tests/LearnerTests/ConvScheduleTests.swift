// The GPU's convolution schedule (ConvSchedule: im2col/col2im + strided-batched sgemm in
// chunks, per group) run with CPU primitives and compared with CPUBackend's convolutions, so
// that its strides, chunking and group offsets are checked on machines without a GPU. The
// CUDA kernels themselves are checked against the CPU by `tefla-bench gpu-check`.
import CLearner
import XCTest

@testable import Learner

final class ConvScheduleTests: XCTestCase {
    private func storage(_ count: Int, seed: Int) -> Storage {
        let s = Storage(count: count)
        var state = UInt64(seed) &* 0x9E3779B97F4A7C15 &+ 1
        for i in 0..<count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            s.pointer[i] = Float(Int((state >> 40) % 2001) - 1000) / 500
        }
        return s
    }

    private func assertClose(_ a: Storage, _ b: Storage, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        var num = 0.0, den = 0.0
        for i in 0..<a.count {
            let d = Double(a.pointer[i]) - Double(b.pointer[i])
            num += a.pointer[i].isNaN ? .infinity : d * d
            den += Double(b.pointer[i]) * Double(b.pointer[i])
        }
        let rel = (num / max(den, 1e-30)).squareRoot()
        XCTAssertLessThanOrEqual(rel, 1e-5, "\(what): relative error \(rel)", file: file, line: line)
    }

    func testScheduleMatchesCPUConvolutions() {
        // (batch, C, H, W, outC, kH, kW, stride, padding, dilation, groups)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Size2D, Padding2D, Size2D, Int)] = [
            (5, 4, 9, 9, 6, 3, 3, 1, 1, 1, 1),
            (5, 4, 9, 9, 6, 3, 3, 2, 2, 2, 1),
            (3, 4, 8, 7, 6, 3, 2, Size2D(2, 1), .explicit(top: 0, bottom: 1, left: 2, right: 0), Size2D(1, 2), 2),
            (4, 6, 7, 7, 6, 3, 3, 1, .same, 1, 6),  // depthwise
            (5, 4, 6, 5, 8, 1, 1, 1, 0, 1, 1),  // pointwise
            (3, 4, 6, 5, 6, 1, 1, 1, 0, 1, 2),  // pointwise, grouped
            (3, 4, 6, 6, 4, 1, 1, 2, 0, 1, 1),  // 1×1 stride 2 (not pointwise)
            (5, 3, 8, 8, 6, 3, 3, 1, 1, 1, 1),  // 64-float planes: the CPU's padded row strides
            (3, 2, 16, 16, 4, 3, 3, 1, 1, 1, 2),  // 256-float planes, grouped
        ]
        for (ci, c) in cases.enumerated() {
            let (n, ch, h, w, oc, kh, kw, stride, padding, dilation, groups) = c
            let window = Window2D(
                channels: ch, height: h, width: w, kernel: Size2D(kh, kw), stride: stride, padding: padding,
                dilation: dilation)!
            let g = Conv2DGeometry(batch: n, window: window, outChannels: oc, groups: groups)
            let x = storage(ShapeMath.count(g.inputShape), seed: 1 + ci)
            let wt = storage(ShapeMath.count(g.weightShape), seed: 100 + ci)
            let b = storage(oc, seed: 200 + ci)
            let gy = storage(ShapeMath.count(g.outputShape), seed: 300 + ci)
            let cpu = CPUBackend.shared
            let y = cpu.conv2d(x, weight: wt, bias: b, geometry: g)
            let y0 = cpu.conv2d(x, weight: wt, bias: nil, geometry: g)
            let dx = cpu.conv2dBackwardInput(gy, weight: wt, geometry: g)
            let dw = cpu.conv2dBackwardWeight(gy, input: x, geometry: g)
            let colImage = window.columnRows * window.outputPlane, wc = ShapeMath.count(g.weightShape)
            // The CPU's own chunking: two images per sgemm (the last chunk short), then one.
            for budget in [2 * colImage, 1] {
                let saved = CPUBackend.columnBudget
                CPUBackend.columnBudget = budget
                defer { CPUBackend.columnBudget = saved }
                let what = "case \(ci) CPU column budget \(budget)"
                assertClose(cpu.conv2d(x, weight: wt, bias: b, geometry: g), y, "\(what) conv2d")
                assertClose(cpu.conv2dBackwardInput(gy, weight: wt, geometry: g), dx, "\(what) input gradient")
                assertClose(cpu.conv2dBackwardWeight(gy, input: x, geometry: g), dw, "\(what) weight gradient")
            }
            // One chunk, chunks of two images (the last one short), one image per chunk.
            for budget in [1 << 26, 2 * (colImage + wc), 1] {
                let s = ConvSchedule(p: HostConvPrimitives(), scratchBudget: budget)
                let what = "case \(ci) budget \(budget)"
                assertClose(s.conv2d(x, weight: wt, bias: b, geometry: g), y, "\(what) conv2d")
                assertClose(s.conv2d(x, weight: wt, bias: nil, geometry: g), y0, "\(what) conv2d no bias")
                assertClose(s.conv2dBackwardInput(gy, weight: wt, geometry: g), dx, "\(what) input gradient")
                assertClose(s.conv2dBackwardWeight(gy, input: x, geometry: g), dw, "\(what) weight gradient")
            }
        }
    }
}
