// The table-driven im2col and col2im (conv_gather.c) against the one-image reference kernels
// (tl_im2col, tl_col2im), at every gather level the CPU has (scalar, AVX2, AVX-512), over
// geometries with stride, dilation, asymmetric padding, planes smaller than a vector and chunks
// of several images. Both sides copy or add the same floats in the same order: equality is exact.
import CLearner
import XCTest

@testable import Learner

final class ConvGatherTests: XCTestCase {
    private func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed &* 0x9E3779B97F4A7C15 &+ 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int((state >> 40) % 2001) - 1000) / 300
        }
    }

    private let windows: [Window2D] = [
        Window2D(channels: 3, height: 9, width: 9, kernel: 3, stride: 1, padding: 1, dilation: 1)!,
        Window2D(channels: 2, height: 2, width: 2, kernel: 3, stride: 1, padding: 1, dilation: 1)!,  // 2×2 plane: one partial vector
        Window2D(channels: 2, height: 11, width: 10, kernel: 7, stride: 2, padding: 3, dilation: 1)!,
        Window2D(
            channels: 3, height: 8, width: 7, kernel: Size2D(3, 2), stride: Size2D(2, 1),
            padding: .explicit(top: 0, bottom: 1, left: 2, right: 0), dilation: Size2D(1, 2))!,
        Window2D(channels: 4, height: 6, width: 6, kernel: 1, stride: 2, padding: 0, dilation: 1)!,
        Window2D(channels: 2, height: 5, width: 9, kernel: 3, stride: 3, padding: .same, dilation: 2)!,
        Window2D(channels: 1, height: 20, width: 20, kernel: 3, stride: 1, padding: 0, dilation: 1)!,
        Window2D(channels: 2, height: 16, width: 16, kernel: 3, stride: 1, padding: 1, dilation: 1)!,  // rows of 16: runs
        Window2D(channels: 2, height: 13, width: 21, kernel: 5, stride: 1, padding: 2, dilation: 1)!,  // runs across rows
        Window2D(channels: 3, height: 64, width: 64, kernel: 7, stride: 2, padding: 3, dilation: 1)!,  // stride-2 runs (ResNet's stem)
    ]

    /// Runs `body` at each gather level the CPU has, then restores the best.
    private func atEveryLevel(_ body: (Int32) -> Void) {
        let best = tl_gather_level()
        defer { tl_set_gather_level(-1) }
        for level in 0...best {
            tl_set_gather_level(level)
            XCTAssertEqual(tl_gather_level(), level)
            body(level)
        }
    }

    /// Calls `body(index, window, images)` for every window and chunk size.
    private func forEveryCase(images counts: [Int], _ body: (Int, Window2D, Int) -> Void) {
        for (wi, window) in windows.enumerated() {
            for images in counts { body(wi, window, images) }
        }
    }

    func testIm2colGatherEqualsReferenceForEveryImageAndChannel() {
        forEveryCase(images: [1, 3]) { wi, window, images in
            var w = window.c
            let (plane, rowsPerImage, inImage, colImage) = window.chunkSizes
            let x = values(images * inImage, seed: UInt64(10 * wi + images))
            // Reference: each image's column matrix on its own.
            var reference = [Float](repeating: .nan, count: images * colImage)
            x.withUnsafeBufferPointer { xs in
                reference.withUnsafeMutableBufferPointer { ref in
                    for n in 0..<images { tl_im2col(xs.baseAddress! + n * inImage, &w, ref.baseAddress! + n * colImage) }
                }
            }
            var taps = [Int32](repeating: 0, count: tl_im2col_table_size(&w, images))
            tl_im2col_table(&w, images, &taps)
            atEveryLevel { level in
                var col = [Float](repeating: .nan, count: images * colImage)
                // Two row ranges, as the cores split them (the split inside a channel's taps).
                let split = rowsPerImage / 2 + 1
                tl_im2col_gather(x, &w, taps, images, 0, split, images * plane, &col)
                tl_im2col_gather(x, &w, taps, images, split, rowsPerImage, images * plane, &col)
                for r in 0..<rowsPerImage {
                    for n in 0..<images {
                        for p in 0..<plane where col[r * images * plane + n * plane + p] != reference[n * colImage + r * plane + p] {
                            XCTFail("window \(wi), \(images) images, level \(level): row \(r) image \(n) position \(p)")
                            return
                        }
                    }
                }
            }
        }
    }

    func testCol2imGatherEqualsReferenceAccumulation() {
        forEveryCase(images: [1, 4]) { wi, window, images in
            var w = window.c
            let (plane, rowsPerImage, inImage, colImage) = window.chunkSizes
            let col = values(images * colImage, seed: UInt64(100 + 10 * wi + images))
            var sources = [Int32](repeating: 0, count: tl_col2im_table_size(&w, images))
            tl_col2im_table(&w, images, &sources)
            // Reference: image n's own column matrix [rows, plane] accumulated into zeros.
            var reference = [Float](repeating: 0, count: images * inImage)
            for n in 0..<images {
                var own = [Float](repeating: 0, count: colImage)
                for r in 0..<rowsPerImage {
                    for p in 0..<plane { own[r * plane + p] = col[r * images * plane + n * plane + p] }
                }
                reference.withUnsafeMutableBufferPointer { tl_col2im(own, &w, $0.baseAddress! + n * inImage) }
            }
            atEveryLevel { level in
                var dx = [Float](repeating: .nan, count: images * inImage)
                tl_col2im_gather(col, &w, sources, images, 0, 1, images * plane, &dx)
                tl_col2im_gather(col, &w, sources, images, 1, window.channels, images * plane, &dx)
                XCTAssertEqual(dx, reference, "window \(wi), \(images) images, level \(level)")
            }
        }
    }

    func testMaxPoolingScansEachWindowRowByRowAtEveryLevel() {
        let pools: [Window2D] = [
            Window2D(channels: 1, height: 9, width: 11, kernel: 3, stride: 2, padding: 1, dilation: 1)!,
            Window2D(channels: 1, height: 8, width: 8, kernel: 2, stride: 2, padding: 0, dilation: 1)!,
            Window2D(channels: 1, height: 5, width: 6, kernel: Size2D(2, 3), stride: 1, padding: 0, dilation: 2)!,
            Window2D(channels: 1, height: 3, width: 3, kernel: 3, stride: 1, padding: 1, dilation: 1)!,
        ]
        for (pi, window) in pools.enumerated() {
            let planes = 5, inPlane = window.inputPlane, plane = window.outputPlane
            // Few distinct values (ties everywhere), a NaN in plane 1, −∞ in plane 2.
            var x = values(planes * inPlane, seed: UInt64(50 + pi)).map { ($0 * 2).rounded() }
            x[inPlane + inPlane / 2] = .nan
            for i in 0..<inPlane { x[2 * inPlane + i] = -.infinity }
            var expected = [Float](repeating: 0, count: planes * plane), expectedAt = expected
            for p in 0..<planes {
                for oy in 0..<window.outHeight {
                    for ox in 0..<window.outWidth {
                        var best = -Float.infinity, at = -1
                        for i in 0..<window.kernel.height {
                            for j in 0..<window.kernel.width {
                                let iy = oy * window.stride.height - window.padTop + i * window.dilation.height
                                let ix = ox * window.stride.width - window.padLeft + j * window.dilation.width
                                guard iy >= 0, iy < window.height, ix >= 0, ix < window.width else { continue }
                                let v = x[p * inPlane + iy * window.width + ix]
                                if at < 0 || (v > best || v.isNaN) && !best.isNaN { (best, at) = (v, iy * window.width + ix) }
                            }
                        }
                        expected[p * plane + oy * window.outWidth + ox] = best
                        expectedAt[p * plane + oy * window.outWidth + ox] = Float(at)
                    }
                }
            }
            var w = window.c
            let taps = window.gatherTable()
            atEveryLevel { level in
                var out = [Float](repeating: 7, count: planes * plane), at = out
                tl_maxpool2d_forward(x, &w, taps, planes, &out, &at)
                XCTAssertEqual(at, expectedAt, "pool \(pi), level \(level): argmax")
                XCTAssertTrue(zip(out, expected).allSatisfy { $0 == $1 || $0.isNaN && $1.isNaN }, "pool \(pi), level \(level): maxima")
            }
        }
    }

    func testCPUConvolutionIsTheSameAtEveryGatherLevel() {
        let window = Window2D(channels: 5, height: 6, width: 6, kernel: 3, stride: 1, padding: 1, dilation: 1)!
        let g = Conv2DGeometry(batch: 7, window: window, outChannels: 4, groups: 1)
        func storage(_ v: [Float]) -> Storage {
            let s = Storage(count: v.count)
            for i in v.indices { s.pointer[i] = v[i] }
            return s
        }
        let x = storage(values(ShapeMath.count(g.inputShape), seed: 7))
        let wt = storage(values(ShapeMath.count(g.weightShape), seed: 8))
        let gy = storage(values(ShapeMath.count(g.outputShape), seed: 9))
        func run() -> [[Float]] {
            let cpu = CPUBackend.shared
            return [
                cpu.conv2d(x, weight: wt, bias: nil, geometry: g), cpu.conv2dBackwardInput(gy, weight: wt, geometry: g),
                cpu.conv2dBackwardWeight(gy, input: x, geometry: g),
            ].map { s in (0..<s.count).map { s.pointer[$0] } }
        }
        var results: [[[Float]]] = []
        atEveryLevel { _ in results.append(run()) }
        for r in results.dropFirst() { XCTAssertEqual(r, results[0]) }
    }
}

extension Window2D {
    /// Output plane, column-matrix rows, floats per input image and per image's column matrix.
    fileprivate var chunkSizes: (plane: Int, rows: Int, inImage: Int, colImage: Int) {
        (outputPlane, columnRows, channels * inputPlane, columnRows * outputPlane)
    }
}
