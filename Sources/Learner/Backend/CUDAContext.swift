import CLearner
import Foundation

/// Errors from the CUDA layer, with the driver's, NVRTC's or cuBLAS's own message.
public struct CUDAError: Error, CustomStringConvertible {
    public let status: Int32
    public let message: String
    public var description: String { message }

    static func last(_ status: Int32, _ what: String) -> CUDAError {
        var buffer = [CChar](repeating: 0, count: 2048)
        tl_cuda_last_error(&buffer, buffer.count)
        let detail = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        return CUDAError(status: status, message: "\(what): \(detail.isEmpty ? "status \(status)" : detail)")
    }
}

/// The process's view of CUDA: whether it is built in and usable, and the device memory
/// that storages draw from (the C shim's caching allocator).
public enum CUDAContext {
    /// Whether the CUDA layer is compiled in: always, as it needs no toolkit header to build
    /// (kept for callers of versions where it could be missing).
    public static var isBuiltIn: Bool { tl_cuda_built_in() == 1 }

    /// Loads the CUDA libraries; throws with the reason when there is no usable GPU.
    public static func initialize() throws {
        var buffer = [CChar](repeating: 0, count: 2048)
        let status = tl_cuda_init(&buffer, buffer.count)
        if status != 0 { throw CUDAError(status: status, message: buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }) }
    }

    /// Number of CUDA devices (0 when no driver is found).
    public static var deviceCount: Int {
        guard (try? initialize()) != nil else { return 0 }
        return Int(tl_cuda_device_count())
    }

    /// Makes `index` the current device of the calling thread, checking that it exists.
    public static func use(device index: Int, memoryFraction: Float? = nil) throws {
        try initialize()
        let count = Int(tl_cuda_device_count())
        guard index >= 0 && index < count else {
            throw CUDAError(
                status: 3, message: "GPU \(index) is not available: this machine has \(count) CUDA device\(count == 1 ? "" : "s")")
        }
        if let memoryFraction {
            let status = tl_cuda_set_memory_fraction(memoryFraction)
            if status != 0 { throw CUDAError.last(status, "setting the GPU memory fraction to \(memoryFraction)") }
        }
        let status = tl_cuda_set_device(Int32(index))
        if status != 0 { throw CUDAError.last(status, "selecting GPU \(index)") }
    }

    /// The device's name, e.g. "NVIDIA H200".
    public static func deviceName(_ index: Int) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        tl_cuda_device_name(Int32(index), &buffer, buffer.count)
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    // MARK: - Failures
    //
    // Tensor ops do not throw, so a failing CUDA call (a kernel fault, out of memory) cannot
    // end the op with an error. It is recorded instead, the first one kept, and the learner
    // throws it at the next step boundary (``throwIfFailed()``) and before a checkpoint is put
    // in place, so a failed run ends with a clear error and its last good checkpoint. After a
    // failure the device's results are meaningless: the process must not train on it further.

    private static let firstFailure = Locked<CUDAError?>(nil)

    /// The first CUDA failure of this process, nil while there was none.
    public static var failure: CUDAError? { firstFailure.current }

    /// Throws the first CUDA failure of this process, if there was one, or a label the loss
    /// kernels of the calling thread's device met outside the classes
    /// (``LearnerError/labelOutOfRange(label:classes:location:)``; such a row added nothing to
    /// the loss or the gradients). The label report is seen once the kernel that made it has
    /// run: after a synchronisation, such as reading a loss, for everything queued before it.
    public static func throwIfFailed() throws {
        if let failure { throw failure }
        var row: Int64 = 0, classes: Int64 = 0
        var label: Float = 0
        if tl_cuda_take_label_fault(&row, &label, &classes) != 0 {
            throw LearnerError.labelOutOfRange(
                label: label, classes: Int(classes),
                location: "row \(row) of a batch whose labels were on cuda:\(tl_cuda_get_device()) (met by the cross-entropy kernel)")
        }
    }

    static func record(_ error: CUDAError) {
        firstFailure.withLock { first in
            if first == nil { first = error }
        }
    }

    /// Forgets a recorded failure (tests that inject one).
    static func clearFailure() {
        firstFailure.withLock { $0 = nil }
    }

    static func check(_ status: Int32, _ what: @autoclosure () -> String) {
        if status != 0 { record(CUDAError.last(status, what())) }
    }

    static func allocate(_ count: Int, device index: Int) -> UnsafeMutablePointer<Float> {
        precondition(Int(tl_cuda_get_device()) == index, "cuda:\(index) is not the current device; call CUDAContext.use(device:) first")
        var raw: UnsafeMutableRawPointer?
        check(tl_cuda_malloc(max(count, 1) * 4, &raw), "allocating \(count * 4) bytes on cuda:\(index)")
        guard let raw else {
            if failure == nil {
                record(CUDAError(status: 2, message: "cuda:\(index) returned no memory for \(count * 4) bytes"))
            }
            // An address the host never reads and the allocator does not own (freeing it is a
            // recorded no-op): work queued on it faults on the device, after the failure that
            // the learner reports at the step's end.
            return UnsafeMutablePointer<Float>(bitPattern: 0x1000)!
        }
        return raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    static func free(_ pointer: UnsafeMutablePointer<Float>) { _ = tl_cuda_free(pointer) }

    /// Waits for all queued work on the current device.
    public static func synchronize() { check(tl_cuda_synchronize(), "synchronizing") }
}

/// Copies between storages on any pair of devices.
enum DeviceCopy {
    static func copy(from src: Storage, to dst: Storage) {
        precondition(src.count == dst.count, "copy between storages of \(src.count) and \(dst.count) elements")
        let bytes = src.count * 4
        switch (src.device, dst.device) {
        case (.cpu, .cpu): dst.pointer.update(from: src.pointer, count: src.count)
        case (.cpu, .cuda): CUDAContext.check(tl_cuda_memcpy_htod(dst.pointer, src.pointer, bytes), "copying \(bytes) bytes to the GPU")
        case (.cuda, .cpu): CUDAContext.check(tl_cuda_memcpy_dtoh(dst.pointer, src.pointer, bytes), "copying \(bytes) bytes from the GPU")
        case (.cuda, .cuda): CUDAContext.check(tl_cuda_memcpy_dtod(dst.pointer, src.pointer, bytes), "copying \(bytes) bytes on the GPU")
        }
    }
}
