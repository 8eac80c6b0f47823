import CLearner
import Foundation

/// Convolutions through cuDNN when it is installed: each geometry's fastest algorithm is
/// searched on its first call and kept (PyTorch's `cudnn.benchmark`). Geometries cuDNN cannot
/// take (asymmetric padding, a transposed convolution's output padding) and machines without
/// cuDNN use the built-in im2col kernels with cuBLAS (``ConvSchedule``), which compute the same.
extension CUDABackend {
    /// Whether convolutions may use cuDNN (default: yes, unless the environment sets
    /// `TEFLA_CUDNN=0`). The built-in kernels are used when this is off or cuDNN is absent.
    public static var usesCuDNN: Bool {
        get { useCuDNNSetting.value != 0 }
        set { useCuDNNSetting.value = newValue ? 1 : 0 }
    }
    private static let useCuDNNSetting = AtomicSetting(ProcessInfo.processInfo.environment["TEFLA_CUDNN"] == "0" ? 0 : 1)

    /// Whether cuDNN convolutions may use TF32 tensor cores for fp32 data (default: yes, as
    /// PyTorch's `torch.backends.cudnn.allow_tf32`); off, they use plain fp32 arithmetic and
    /// match the CPU to rounding.
    public static var convolutionAllowsTF32: Bool {
        get { convolutionTF32Setting.value != 0 }
        set { convolutionTF32Setting.value = newValue ? 1 : 0 }
    }
    private static let convolutionTF32Setting = AtomicSetting(1)

    /// The most device memory, in bytes, cuDNN's algorithm search may give a convolution as
    /// workspace (1 GiB by default; less when the memory cap leaves less). After the search the
    /// workspace shrinks to what the chosen algorithms use.
    public static var cuDNNWorkspaceLimit: Int {
        get { cuDNNWorkspaceSetting.value }
        set { cuDNNWorkspaceSetting.value = newValue }
    }
    private static let cuDNNWorkspaceSetting = AtomicSetting(1 << 30)

    /// cuDNN's version (e.g. 91000) and library, or why it cannot be used.
    public static func cuDNNStatus() -> Result<(version: Int, library: String), CUDAError> {
        var version: Int32 = 0
        var buffer = [CChar](repeating: 0, count: 2048)
        let status = tl_cudnn_load(&version, &buffer, buffer.count)
        if status != 0 {
            return .failure(CUDAError(status: status, message: buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }))
        }
        return .success((Int(version), String(cString: tl_cudnn_library())))
    }

    /// The convolution engine in use: "cuDNN 9.10.0 (libcudnn.so.9)" or "built-in kernels (reason)".
    public static var convolutionEngine: String {
        guard usesCuDNN else { return "built-in kernels (cuDNN turned off)" }
        switch cuDNNStatus() {
        case .success(let found):
            let v = found.version
            return "cuDNN \(v / 10000).\(v / 100 % 100).\(v % 100) (\(found.library))"
        case .failure(let error): return "built-in kernels (\(error.message))"
        }
    }

    /// Geometries (with pass) searched by cuDNN on the calling thread's device so far.
    public static var cuDNNPlanCount: Int { Int(tl_cudnn_plan_count()) }

    private static let cuDNNAvailable: Bool = {
        if case .success = cuDNNStatus() { return true }
        return false
    }()

    /// cuDNN's description of `g`, nil when cuDNN is off, absent or cannot take it.
    private func cuDNNGeometry(_ g: Conv2DGeometry) -> tl_cudnn_conv? {
        guard CUDABackend.usesCuDNN, CUDABackend.cuDNNAvailable else { return nil }
        let w = g.window
        guard w.padTop == w.padBottom, w.padLeft == w.padRight else { return nil }
        return tl_cudnn_conv(
            batch: Int32(g.batch), channels: Int32(w.channels), height: Int32(w.height), width: Int32(w.width),
            out_channels: Int32(g.outChannels), kernel_h: Int32(w.kernel.height), kernel_w: Int32(w.kernel.width),
            pad_h: Int32(w.padTop), pad_w: Int32(w.padLeft), stride_h: Int32(w.stride.height),
            stride_w: Int32(w.stride.width), dilation_h: Int32(w.dilation.height), dilation_w: Int32(w.dilation.width),
            groups: Int32(g.groups), out_h: Int32(w.outHeight), out_w: Int32(w.outWidth),
            fma_only: CUDABackend.convolutionAllowsTF32 ? 0 : 1)
    }

    /// Runs one cuDNN pass into `out`; false when cuDNN cannot take the geometry (the caller
    /// falls back). Any other failure is recorded like every CUDA failure.
    private func cuDNN(
        _ pass: Int32, _ geometry: tl_cudnn_conv, _ a: Storage, _ b: Storage, into out: Storage, _ what: String
    ) -> Bool {
        var g = geometry
        let status = tl_cudnn_convolution(pass, &g, a.pointer, b.pointer, out.pointer, Swift.max(CUDABackend.cuDNNWorkspaceLimit, 0))
        if status == Int32(TL_CUDA_ERR_UNSUPPORTED.rawValue) { return false }
        CUDAContext.check(status, "\(what) through cuDNN")
        return true
    }

    func cuDNNConv2d(_ x: Storage, weight: Storage, bias: Storage?, geometry g: Conv2DGeometry) -> Storage? {
        guard let geometry = cuDNNGeometry(g) else { return nil }
        let y = Storage(count: ShapeMath.count(g.outputShape), device: device)
        guard cuDNN(Int32(TL_CUDNN_FORWARD), geometry, x, weight, into: y, "convolution") else { return nil }
        if let bias {
            CUDAContext.check(
                tl_cuda_channel_bias_add(y.pointer, bias.pointer, g.batch, g.outChannels, g.window.outputPlane), "channel bias")
        }
        return y
    }

    func cuDNNConv2dBackwardInput(_ gradient: Storage, weight: Storage, geometry g: Conv2DGeometry) -> Storage? {
        guard let geometry = cuDNNGeometry(g) else { return nil }
        let dx = Storage(count: ShapeMath.count(g.inputShape), device: device)
        return cuDNN(Int32(TL_CUDNN_BACKWARD_DATA), geometry, gradient, weight, into: dx, "convolution input gradient")
            ? dx : nil
    }

    func cuDNNConv2dBackwardWeight(_ gradient: Storage, input x: Storage, geometry g: Conv2DGeometry) -> Storage? {
        guard let geometry = cuDNNGeometry(g) else { return nil }
        let dw = Storage(count: ShapeMath.count(g.weightShape), device: device)
        return cuDNN(Int32(TL_CUDNN_BACKWARD_FILTER), geometry, x, gradient, into: dw, "convolution weight gradient")
            ? dw : nil
    }
}
