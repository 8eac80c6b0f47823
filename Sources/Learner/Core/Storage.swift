import Foundation

/// One contiguous buffer of floats owned by a device. A final class, so that tensors share it
/// by reference and the optimizer can update parameters in place without copy-on-write.
///
/// On the CPU `pointer` is a host address. On a CUDA device it is a device address that the
/// host never dereferences: only the device's backend passes it to kernels.
// @unchecked Sendable: the stored properties are constants, and the allocators behind `init`
// and `deinit` lock. The floats behind `pointer` are not guarded by the class: an op writes
// only the storage it creates, before handing it out, and the optimizer updates a parameter's
// storage in place only on the thread of the replica that owns the model, between steps.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    public let device: Device

    /// Uninitialised storage of `count` floats from the device's caching allocator.
    init(count: Int, device: Device = .cpu) {
        self.count = count
        self.device = device
        switch device {
        case .cpu: self.pointer = CPUAllocator.shared.allocate(count)
        case .cuda(let index): self.pointer = CUDAContext.allocate(count, device: index)
        }
    }

    /// Zero-filled storage.
    convenience init(zeros count: Int, device: Device = .cpu) {
        self.init(count: count, device: device)
        if device == .cpu {
            pointer.initialize(repeating: 0, count: count)
        } else {
            backendFor(device).fill(self, value: 0)
        }
    }

    deinit {
        switch device {
        case .cpu: CPUAllocator.shared.release(pointer, count: count)
        case .cuda: CUDAContext.free(pointer)
        }
    }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A caching allocator for host buffers. Training allocates the same sizes every step;
/// handing back freed blocks of the exact size avoids the page faults that `malloc` pays
/// when it maps and unmaps large blocks. The cache is capped so that evaluation with a
/// different batch size cannot grow it without bound.
// @unchecked Sendable: `free` and `cachedBytes` are only read and written with `lock` held.
final class CPUAllocator: @unchecked Sendable {
    static let shared = CPUAllocator()

    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var cachedBytes = 0
    private let capBytes = 1 << 30
    private let lock = NSLock()

    func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        lock.lock()
        if var list = free[n], let p = list.popLast() {
            free[n] = list
            cachedBytes -= n * 4
            lock.unlock()
            return p
        }
        lock.unlock()
        var raw: UnsafeMutableRawPointer?
        // 64-byte alignment: a cache line and an AVX-512 register.
        guard posix_memalign(&raw, 64, n * 4) == 0, let raw else {
            fatalError("out of host memory allocating \(n * 4) bytes")
        }
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    func release(_ p: UnsafeMutablePointer<Float>, count: Int) {
        let n = max(count, 1)
        lock.lock()
        if cachedBytes + n * 4 <= capBytes {
            free[n, default: []].append(p)
            cachedBytes += n * 4
            lock.unlock()
            return
        }
        lock.unlock()
        Foundation.free(p)
    }

    /// Returns every cached block to the system.
    func emptyCache() {
        lock.lock()
        defer { lock.unlock() }
        for (_, list) in free { for p in list { Foundation.free(p) } }
        free.removeAll()
        cachedBytes = 0
    }
}
