// Tests of the CUDA layer of the C shim (clearner_cuda.h) that run anywhere: whether it was
// built in, NVRTC compilation of every kernel (no GPU needed), the embedded kernel source, and
// the allocator and launch paths when a GPU is present (skipped with the reason otherwise).
// The full GPU comparison against the CPU kernels is `tefla-cuda-check`.
import CLearner
import Foundation
import Learner
import TestSupport
import XCTest

final class CUDAShimTests: XCTestCase {
    private func lastError() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        tl_cuda_last_error(&buf, buf.count)
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Whether the CUDA toolkit's headers are in the default include path (Scripts/cuda-abi-check
    /// compares the shim's declarations with them).
    private var headersInstalled: Bool {
        let dirs = ["/usr/include", "/usr/local/include"]
        return ["cuda.h", "nvrtc.h", "cublas_v2.h"].allSatisfy { header in
            dirs.contains { FileManager.default.fileExists(atPath: "\($0)/\(header)") }
        }
    }

    private var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The CUDA layer needs no toolkit header, so every build has it.
    func testCUDALayerIsAlwaysBuiltIn() throws {
        XCTAssertTrue(tl_cuda_built_in() == 1, "the CUDA layer was not compiled in")
        XCTAssertTrue(CUDAContext.isBuiltIn)
    }

    /// cuda_api.h, the declarations the layer is built with, equals the toolkit's headers in
    /// every type, constant, renaming and prototype (Scripts/cuda-abi-check). CI installs the
    /// headers (Scripts/setup), so there the check must run.
    func testDeclarationsMatchTheToolkitHeaders() throws {
        guard headersInstalled else {
            if ProcessInfo.processInfo.environment["CI"] != nil { return XCTFail("CI has no CUDA headers to check cuda_api.h against") }
            throw XCTSkip("no CUDA toolkit headers in /usr/include to check cuda_api.h against")
        }
        let run = try runScript("Scripts/cuda-abi-check", [])
        XCTAssertEqual(run.status, 0, run.output + run.error)
        XCTAssertTrue(run.output.contains("agrees with the toolkit's headers"), run.output)
    }

    /// The source compiled in is kernels.cu with the headers it includes (the op table) inlined,
    /// as `Scripts/embed-kernels --source` prints it from the files on disk.
    func testEmbeddedKernelSourceIsUpToDate() throws {
        let run = try runScript("Scripts/embed-kernels", ["--source"])
        let onDisk = run.output
        XCTAssertEqual(run.status, 0, run.error)
        XCTAssertTrue(onDisk.contains("tl_k_unary") && onDisk.contains("TL_UNARY_OPS("), "the kernels and the op table")
        let embedded = String(cString: tl_cuda_kernel_source())
        XCTAssertEqual(embedded, onDisk, "cuda_kernels.inc is stale: run Scripts/embed-kernels")
    }

    /// Runs a script of the repository under bash.
    private func runScript(_ path: String, _ arguments: [String], mergingErrors: Bool = false) throws -> ProcessResult {
        try Subprocess.run(
            URL(fileURLWithPath: "/bin/bash"), [packageRoot.appendingPathComponent(path).path] + arguments,
            mergingErrors: mergingErrors)
    }

    func testEveryKernelCompilesWithNVRTC() throws {
        var err = [CChar](repeating: 0, count: 4096)
        if tl_cuda_nvrtc_available(&err, err.count) != 0 {
            let why = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            // CI installs the toolkit (Scripts/install-cuda-toolkit), so there it must be found.
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                XCTFail("libnvrtc not loadable on CI: \(why)")
                return
            }
            throw XCTSkip("libnvrtc not loadable: \(why)")
        }
        for arch in ["sm_80", "sm_90"] {
            var log = [CChar](repeating: 0, count: 16384)
            let status = tl_cuda_compile_check(arch, &log, log.count)
            let text = log.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            XCTAssertEqual(status, 0, "\(arch): \(text)")
            print(text)
        }
        // An unknown architecture is an NVRTC error, not a crash.
        var log = [CChar](repeating: 0, count: 4096)
        XCTAssertEqual(tl_cuda_compile_check("sm_1", &log, log.count), Int32(TL_CUDA_ERR_NVRTC.rawValue))
    }

    /// Runs every kernel on the CPU under Scripts/cuda-emulate (a std::thread emulation of the CUDA
    /// built-ins) against conv.c / kernels.c: their indexing, bounds and block reductions are
    /// checked without a GPU. Skipped when clang++ is not on the PATH.
    func testKernelsMatchCPUUnderEmulation() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        guard path.split(separator: ":").contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/clang++") }) else {
            throw XCTSkip("clang++ not found: the kernel emulation needs it")
        }
        let run = try runScript("Scripts/cuda-emulate/run", [], mergingErrors: true)
        let output = run.output
        let failures = output.split(separator: "\n").filter { !$0.hasPrefix("PASS") }
        XCTAssertEqual(run.status, 0, failures.joined(separator: "\n"))
        XCTAssertTrue(output.contains("0 failures"), failures.joined(separator: "\n"))
    }

    /// Skips unless a CUDA GPU is usable here.
    private func requireGPU() throws {
        var err = [CChar](repeating: 0, count: 4096)
        if tl_cuda_init(&err, err.count) != 0 || tl_cuda_device_count() == 0 {
            let why = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw XCTSkip("no CUDA GPU: \(why)")
        }
        XCTAssertEqual(tl_cuda_set_device(0), 0, lastError())
    }

    func testAllocatorReusesBlocks() throws {
        try requireGPU()
        var before = tl_cuda_mem_stats(), after = tl_cuda_mem_stats()
        XCTAssertEqual(tl_cuda_memory_stats(&before), 0)
        var p1: UnsafeMutableRawPointer?, p2: UnsafeMutableRawPointer?
        XCTAssertEqual(tl_cuda_malloc(1 << 20, &p1), 0, lastError())
        XCTAssertEqual(tl_cuda_free(p1), 0)
        XCTAssertEqual(tl_cuda_malloc(1 << 20, &p2), 0, lastError())
        XCTAssertEqual(p1, p2, "a freed block of the same size class is reused")
        XCTAssertEqual(tl_cuda_memory_stats(&after), 0)
        XCTAssertEqual(after.cache_hits, before.cache_hits + 1)
        XCTAssertEqual(tl_cuda_free(p2), 0)
        XCTAssertEqual(tl_cuda_free(p2), Int32(TL_CUDA_ERR_INVALID.rawValue), "double free is refused")
        var huge: UnsafeMutableRawPointer?
        XCTAssertEqual(tl_cuda_malloc(1 << 50, &huge), Int32(TL_CUDA_ERR_OUT_OF_MEMORY.rawValue))
        XCTAssertTrue(lastError().contains("out of memory"), lastError())
    }

    func testReluAndSgemmMatchCPU() throws {
        try requireGPU()
        let n = 1000
        let x = (0..<n).map { Float($0 % 17) - 8.5 }
        var cpu = [Float](repeating: 0, count: n), gpu = [Float](repeating: .nan, count: n)
        tl_unary(tl_unary_op.relu.rawValue, x, &cpu, n)
        var dx: UnsafeMutableRawPointer?, dy: UnsafeMutableRawPointer?
        XCTAssertEqual(tl_cuda_malloc(n * 4, &dx), 0)
        XCTAssertEqual(tl_cuda_malloc(n * 4, &dy), 0)
        defer {
            tl_cuda_free(dx)
            tl_cuda_free(dy)
        }
        XCTAssertEqual(tl_cuda_memcpy_htod(dx, x, n * 4), 0, lastError())
        XCTAssertEqual(
            tl_cuda_unary(tl_unary_op.relu.rawValue, dx!.assumingMemoryBound(to: Float.self), dy!.assumingMemoryBound(to: Float.self), n),
            0,
            lastError())
        XCTAssertEqual(tl_cuda_memcpy_dtoh(&gpu, dy, n * 4), 0, lastError())
        XCTAssertEqual(gpu, cpu)

        // 3x2 = [3x4] * [4x2], row-major, as tl_sgemm.
        let a = (0..<12).map { Float($0) * 0.5 - 2 }, b = (0..<8).map { Float($0) * 0.25 - 1 }
        var c = [Float](repeating: 0, count: 6), g = [Float](repeating: .nan, count: 6)
        tl_sgemm(0, 0, 3, 2, 4, 1, a, 4, b, 2, 0, &c, 2)
        var da: UnsafeMutableRawPointer?, db: UnsafeMutableRawPointer?, dc: UnsafeMutableRawPointer?
        XCTAssertEqual(tl_cuda_malloc(48, &da), 0)
        XCTAssertEqual(tl_cuda_malloc(32, &db), 0)
        XCTAssertEqual(tl_cuda_malloc(24, &dc), 0)
        defer {
            tl_cuda_free(da)
            tl_cuda_free(db)
            tl_cuda_free(dc)
        }
        tl_cuda_memcpy_htod(da, a, 48)
        tl_cuda_memcpy_htod(db, b, 32)
        XCTAssertEqual(
            tl_cuda_sgemm(
                0, 0, 3, 2, 4, 1, da!.assumingMemoryBound(to: Float.self), 4, db!.assumingMemoryBound(to: Float.self), 2,
                0, dc!.assumingMemoryBound(to: Float.self), 2), 0, lastError())
        XCTAssertEqual(tl_cuda_memcpy_dtoh(&g, dc, 24), 0, lastError())
        for i in 0..<6 { XCTAssertEqual(g[i], c[i], accuracy: 1e-5) }
    }

    /// cuDNN is loaded at run time and needs no GPU to be found: where it is absent the reason
    /// names the libraries tried, convolutions fall back to the built-in kernels and
    /// `CUDABackend.convolutionEngine` says so.
    func testCuDNNLoaderSaysWhyItIsAbsent() throws {
        switch CUDABackend.cuDNNStatus() {
        case .success(let found):
            XCTAssertGreaterThanOrEqual(found.version, 8000)
            XCTAssertTrue(found.library.contains("cudnn"), found.library)
            XCTAssertTrue(CUDABackend.convolutionEngine.hasPrefix("cuDNN"), CUDABackend.convolutionEngine)
        case .failure(let error):
            XCTAssertEqual(error.status, Int32(TL_CUDA_ERR_LIBRARY.rawValue))
            XCTAssertTrue(error.message.contains("cuDNN not found"), error.message)
            XCTAssertTrue(error.message.contains("libcudnn.so.9") || error.message.contains("TEFLA_LIBCUDNN"), error.message)
            XCTAssertTrue(CUDABackend.convolutionEngine.hasPrefix("built-in kernels (cuDNN not found"), CUDABackend.convolutionEngine)
        }
        // A convolution cuDNN is asked for without a GPU fails cleanly, with a status, no trap.
        var g = tl_cudnn_conv(
            batch: 1, channels: 1, height: 4, width: 4, out_channels: 1, kernel_h: 3, kernel_w: 3, pad_h: 1, pad_w: 1,
            stride_h: 1, stride_w: 1, dilation_h: 1, dilation_w: 1, groups: 1, out_h: 4, out_w: 4, fma_only: 1)
        var a: Float = 0, b: Float = 0, out: Float = 0
        if CUDAContext.deviceCount == 0 {
            XCTAssertNotEqual(tl_cudnn_convolution(Int32(TL_CUDNN_FORWARD), &g, &a, &b, &out, 0), 0)
            XCTAssertEqual(tl_cudnn_plan_count(), 0)
        }
        g.groups = 0
        XCTAssertEqual(tl_cudnn_convolution(Int32(TL_CUDNN_FORWARD), &g, &a, &b, &out, 0), Int32(TL_CUDA_ERR_INVALID.rawValue))
    }

    /// The loss kernels' label reports are read without setting CUDA up: on a thread that never
    /// ran a kernel there is nothing to report, and the check costs no device.
    func testLabelReportNeedsNoDevice() throws {
        var row: Int64 = 7, classes: Int64 = 7
        var label: Float = 7
        XCTAssertEqual(tl_cuda_take_label_fault(&row, &label, &classes), 0)
        XCTAssertEqual(row, -1)
        XCTAssertEqual(classes, 0)
        XCTAssertNoThrow(try CUDAContext.throwIfFailed())
    }
}
