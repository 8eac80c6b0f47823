// tefla-cuda-check: checks the CUDA layer of the C shim (clearner_cuda.h) and times it.
//
//   tefla-cuda-check [--kernels-only] [--no-bench] [--seed N]
//
// 1. Says whether CUDA support is built in, and compiles every kernel with NVRTC for sm_80 and
//    sm_90 (no GPU needed).
// 2. Without a usable GPU: says so and exits 0 (1 if a compile check failed).
// 3. With one: lists the devices, loads the kernels on device 0 (NVRTC time, disk-cache hit),
//    then runs every kernel on fresh random inputs (outputs poisoned with NaN first) and compares
//    with the CPU reference in clearner.h: relative error ||gpu - cpu|| / ||cpu|| against a
//    stated tolerance (1e-5 elementwise, rows, reductions and optimizers; 1e-4 sgemm). Also the
//    caching allocator (reuse, stats, out-of-memory message, double free) and copies.
// 4. Times sgemm (1024/2048/4096, GFLOP/s), a 1 GiB device-to-device copy, an elementwise add and
//    the fused Adam update on 10M parameters (GB/s), with CUDA events: warm-up, median of reps.
// Ends with "N passed, M failed" and exits 1 on any failure. `--kernels-only` stops after
// loading the kernels (to show the disk cache hit on a second run).
import CLearner
import Glibc

// MARK: - Options and output

/// The program's arguments. CommandLine.arguments comes back empty in a --static-swift-stdlib
/// build when a C constructor has called setenv before the Swift runtime's own constructor
/// found argv (it locates argv from `environ`, which setenv moves off the stack; blas.c's
/// OpenBLAS core selection does that on CPUs its OpenBLAS does not know), so fall back to
/// /proc/self/cmdline.
func programArguments() -> [String] {
    if !CommandLine.arguments.isEmpty { return CommandLine.arguments }
    guard let f = fopen("/proc/self/cmdline", "r") else { return [] }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        bytes += chunk[0..<n]
    }
    var parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
    if parts.last?.isEmpty == true { parts.removeLast() }  // each argument ends with a NUL
    return parts.map { String(decoding: $0, as: UTF8.self) }
}

var kernelsOnly = false
var runBench = true
var seed = UInt64(UInt(bitPattern: time(nil))) &* 0x9E37_79B9_7F4A_7C15 | 1
do {
    var args = programArguments().dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--kernels-only": kernelsOnly = true
        case "--no-bench": runBench = false
        case "--seed":
            guard let v = args.popFirst().flatMap({ UInt64($0) }) else {
                print("--seed needs an unsigned integer")
                exit(2)
            }
            seed = v
        default:
            print("usage: tefla-cuda-check [--kernels-only] [--no-bench] [--seed N]")
            exit(a == "--help" || a == "-h" ? 0 : 2)
        }
    }
}

setvbuf(tl_stdout(), nil, _IOLBF, 0)
var passed = 0
var failed = 0

func cString(_ buf: [CChar]) -> String {
    buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

func lastError() -> String {
    var buf = [CChar](repeating: 0, count: 4096)
    tl_cuda_last_error(&buf, buf.count)
    return cString(buf)
}

@MainActor func check(_ name: String, _ ok: Bool, _ detail: String = "") {
    if ok { passed += 1 } else { failed += 1 }
    let pad = name.count < 48 ? String(repeating: " ", count: 48 - name.count) : " "
    print("\(ok ? "PASS" : "FAIL")  \(name)\(pad)\(detail)")
}

/// Fails the run when a shim call returns a non-zero status.
@discardableResult
@MainActor func ok(_ status: Int32, _ what: String) -> Bool {
    if status != 0 {
        check(what, false, "status \(status): \(lastError())")
        return false
    }
    return true
}

func fmt(_ v: Double, _ digits: Int = 2) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([v]) { vsnprintf(&buf, buf.count, "%.\(digits)f", $0) }
    return cString(buf)
}

func sci(_ v: Double) -> String {
    var buf = [CChar](repeating: 0, count: 64)
    _ = withVaList([v]) { vsnprintf(&buf, buf.count, "%.2e", $0) }
    return cString(buf)
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

// MARK: - Random data (SplitMix64; fresh seed each run unless --seed)

var rngState = seed
@MainActor func nextRandom() -> UInt64 {
    rngState &+= 0x9E37_79B9_7F4A_7C15
    var z = rngState
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// n floats uniform in [lo, hi), with no exact zeros.
@MainActor func randomArray(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] {
    var a = [Float](repeating: 0, count: n)
    for i in 0..<n {
        var v: Float
        repeat {
            v = lo + (hi - lo) * Float(nextRandom() >> 40) / Float(1 << 24)
        } while v == 0
        a[i] = v
    }
    return a
}

/// ||a - b|| / ||b|| in double precision (absolute norm when ||b|| = 0); NaN anywhere gives NaN.
func relError(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
        if a[i].isNaN || b[i].isNaN { return .nan }
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
}

@MainActor func compare(_ name: String, _ gpu: [Float], _ cpu: [Float], tol: Double) {
    let e = relError(gpu, cpu)
    check(name, e <= tol, "rel err \(sci(e)) (tol \(sci(tol)))")
}

// MARK: - Device buffers

/// A device allocation of `count` floats from the caching allocator, freed on deinit.
final class DeviceBuffer {
    let raw: UnsafeMutableRawPointer?
    let count: Int
    init(_ count: Int) {
        var p: UnsafeMutableRawPointer?
        if tl_cuda_malloc(count * 4, &p) != 0 {
            print("fatal: tl_cuda_malloc(\(count * 4) bytes): \(lastError())")
            exit(1)
        }
        raw = p
        self.count = count
    }
    @MainActor convenience init(_ values: [Float]) {
        self.init(values.count)
        upload(values)
    }
    /// Device pointer to element `offset` (offset 1 makes it 4-byte, not 16-byte, aligned).
    func ptr(_ offset: Int = 0) -> UnsafeMutablePointer<Float> {
        raw!.assumingMemoryBound(to: Float.self) + offset
    }
    @MainActor func upload(_ values: [Float], offset: Int = 0) {
        precondition(values.count + offset <= count)
        _ = ok(tl_cuda_memcpy_htod(UnsafeMutableRawPointer(ptr(offset)), values, values.count * 4), "memcpy htod")
    }
    /// Fills with NaN so that an element a kernel fails to write shows up as an error.
    @MainActor func poison() { upload([Float](repeating: .nan, count: count)) }
    @MainActor func download(_ n: Int? = nil, offset: Int = 0) -> [Float] {
        let n = n ?? count - offset
        var out = [Float](repeating: .nan, count: n)
        _ = ok(tl_cuda_memcpy_dtoh(&out, UnsafeRawPointer(ptr(offset)), n * 4), "memcpy dtoh")
        return out
    }
    deinit { tl_cuda_free(raw) }
}

// MARK: - 1. Build and NVRTC

print("tefla-cuda-check (seed \(seed))")
print("CUDA support built in: \(tl_cuda_built_in() == 1 ? "yes" : "no")")

var errBuf = [CChar](repeating: 0, count: 4096)
if kernelsOnly {
    // Only the device load below.
} else if tl_cuda_nvrtc_available(&errBuf, errBuf.count) == 0 {
    for arch in ["sm_80", "sm_90"] {
        var log = [CChar](repeating: 0, count: 16384)
        let status = tl_cuda_compile_check(arch, &log, log.count)
        let text = cString(log)
        let first = text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
        check("NVRTC compiles every kernel for \(arch)", status == 0, status == 0 ? first : text)
    }
} else {
    print("NVRTC not available, compile check skipped: \(cString(errBuf))")
}

// MARK: - 2. Devices

if tl_cuda_init(&errBuf, errBuf.count) != 0 {
    print("No usable CUDA GPU here, GPU checks skipped: \(cString(errBuf))")
    print("\(passed) passed, \(failed) failed")
    exit(failed == 0 ? 0 : 1)
}
var driver: Int32 = 0, nvMajor: Int32 = 0, nvMinor: Int32 = 0, cublasVersion: Int32 = 0
tl_cuda_versions(&driver, &nvMajor, &nvMinor, nil)
print(
    "driver CUDA \(driver / 1000).\(driver % 1000 / 10) (\(String(cString: tl_cuda_library(0)))), NVRTC \(nvMajor).\(nvMinor) (\(String(cString: tl_cuda_library(1))))"
)
let deviceCount = tl_cuda_device_count()
for i in 0..<deviceCount {
    var name = [CChar](repeating: 0, count: 256)
    var major: Int32 = 0, minor: Int32 = 0, sms: Int32 = 0
    var mem = 0
    tl_cuda_device_name(i, &name, name.count)
    tl_cuda_device_capability(i, &major, &minor)
    tl_cuda_device_total_memory(i, &mem)
    tl_cuda_device_multiprocessors(i, &sms)
    print("device \(i): \(cString(name)), compute capability \(major).\(minor), \(sms) SMs, \(fmt(Double(mem) / 1073741824.0)) GiB")
}
guard ok(tl_cuda_set_device(0), "set device 0") else {
    print("\(passed) passed, \(failed) failed")
    exit(1)
}

var cacheDir = [CChar](repeating: 0, count: 1024)
tl_cuda_kernel_cache_dir(&cacheDir, cacheDir.count)
var hit: Int32 = 0
var ms = 0.0
var kpath = [CChar](repeating: 0, count: 1024)
if ok(tl_cuda_prepare_kernels(&hit, &ms, &kpath, kpath.count), "load kernels on device 0") {
    let how = hit != 0 ? "loaded from the disk cache (hit)" : "compiled by NVRTC (cache miss)"
    check(
        "kernels ready on device 0", true,
        "\(how) in \(fmt(ms, 1)) ms; file \(cString(kpath).isEmpty ? "(cache off: \(cString(cacheDir)))" : cString(kpath))")
}
if kernelsOnly {
    print("\(passed) passed, \(failed) failed")
    exit(failed == 0 ? 0 : 1)
}

// MARK: - 3. Copies and allocator

do {
    let n = 1 << 20
    let x = randomArray(n)
    let a = DeviceBuffer(x), b = DeviceBuffer(n)
    b.poison()
    ok(tl_cuda_memcpy_dtod(b.raw, a.raw, n * 4), "memcpy dtod")
    check("memcpy htod -> dtod -> dtoh round trip", b.download() == x)
}

do {
    var s0 = tl_cuda_mem_stats(), s1 = tl_cuda_mem_stats()
    tl_cuda_memory_stats(&s0)
    var p1: UnsafeMutableRawPointer?, p2: UnsafeMutableRawPointer?
    ok(tl_cuda_malloc(3 << 20, &p1), "malloc 3 MiB")
    ok(tl_cuda_free(p1), "free")
    ok(tl_cuda_malloc(3 << 20, &p2), "malloc 3 MiB again")
    tl_cuda_memory_stats(&s1)
    check(
        "allocator reuses a freed block of the same class", p1 == p2 && s1.cache_hits == s0.cache_hits + 1,
        "hits \(s0.cache_hits) -> \(s1.cache_hits)")
    ok(tl_cuda_free(p2), "free")
    let dbl = tl_cuda_free(p2)
    check("double free is refused", dbl == Int32(TL_CUDA_ERR_INVALID.rawValue), lastError())
    var p3: UnsafeMutableRawPointer?
    ok(tl_cuda_malloc(1000, &p3), "malloc 1000 B")
    var s2 = tl_cuda_mem_stats()
    tl_cuda_memory_stats(&s2)
    check(
        "small sizes round to 512-byte classes", s2.in_use == s1.in_use - UInt64(3 << 20) + 1024,
        "in use \(s2.in_use) B")
    tl_cuda_free(p3)

    // Out of memory: the cap, then the driver.
    var total = 0
    tl_cuda_device_total_memory(0, &total)
    ok(tl_cuda_set_memory_fraction(0.01), "set memory fraction 0.01")
    var big: UnsafeMutableRawPointer?
    let st = tl_cuda_malloc(total / 50, &big)
    let msg = lastError()
    check(
        "allocation over the memory-fraction cap fails",
        st == Int32(TL_CUDA_ERR_OUT_OF_MEMORY.rawValue) && big == nil && msg.contains("out of memory"))
    print("      message: \(msg)")
    ok(tl_cuda_set_memory_fraction(1.0), "set memory fraction 1.0")
    let st2 = tl_cuda_malloc(1 << 50, &big)
    check("a 1 PiB allocation fails with OOM", st2 == Int32(TL_CUDA_ERR_OUT_OF_MEMORY.rawValue), lastError())
    ok(tl_cuda_empty_cache(), "empty cache")
    var s3 = tl_cuda_mem_stats()
    tl_cuda_memory_stats(&s3)
    check(
        "empty cache releases every free block", s3.cached == 0 && s3.reserved == s3.in_use,
        "reserved \(s3.reserved) B, in use \(s3.in_use) B")
}

// MARK: - 4. Kernels against the CPU reference

let tolElementwise = 1e-5
let tolGemm = 1e-4
// An odd length: exercises the float4 body and the scalar tail.
let N = 1_000_003

// fill
do {
    let v = randomArray(1)[0]
    let out = DeviceBuffer(N)
    out.poison()
    ok(tl_cuda_fill(out.ptr(), v, N), "fill")
    compare("fill", out.download(), [Float](repeating: v, count: N), tol: 0)
    out.poison()
    ok(tl_cuda_fill(out.ptr(1), v, N - 1), "fill (unaligned)")
    compare("fill (unaligned, scalar path)", out.download(N - 1, offset: 1), [Float](repeating: v, count: N - 1), tol: 0)
}

// Binary ops, contiguous and broadcast.
// Op names from the C op table (tl_ops.h), numbered as the kernels number them.
func binaryName(_ op: Int) -> String { String(cString: tl_binary_name(Int32(op))) }
func unaryName(_ op: Int) -> String { String(cString: tl_unary_name(Int32(op))) }
let opDivide = Int(tl_binary_op.divide.rawValue), opPow = Int(tl_binary_op.pow.rawValue)
let opEqual = Int(tl_binary_op.equal.rawValue)
for op in 0..<Int(TL_BINARY_COUNT) {
    var x = op == opPow ? randomArray(N, 0.1, 2) : randomArray(N, -2, 2)
    var y = op == opDivide || op == opPow ? randomArray(N, 0.5, 2) : randomArray(N, -2, 2)
    if op >= opEqual { for i in stride(from: 0, to: N, by: 7) { y[i] = x[i] } }  // some ties for the comparisons
    if op == opPow { for i in 0..<N { y[i] = y[i] - 1.25 } }  // exponents of both signs
    let shape: [Int64] = [Int64(N)], one: [Int64] = [1]
    var ref = [Float](repeating: .nan, count: N)
    tl_binary_strided(Int32(op), 1, shape, x, one, y, one, &ref)
    let a = DeviceBuffer(x), b = DeviceBuffer(y), out = DeviceBuffer(N)
    out.poison()
    ok(tl_cuda_binary(Int32(op), a.ptr(), N, b.ptr(), N, out.ptr(), N), "binary \(op)")
    compare("binary \(binaryName(op)) [\(N)]", out.download(), ref, tol: tolElementwise)
    if op == Int(tl_binary_op.add.rawValue) || op == opDivide {
        // Unaligned pointers take the scalar path.
        out.poison()
        ok(tl_cuda_binary(Int32(op), a.ptr(1), N - 1, b.ptr(1), N - 1, out.ptr(1), N - 1), "binary unaligned")
        compare("binary \(binaryName(op)) (unaligned, scalar path)", out.download(N - 1, offset: 1), Array(ref[1...]), tol: tolElementwise)
    }
    x = []
    y = []
}
do {
    // Bias add over [rows, cols] and a scalar on the left, as tl_binary_strided broadcasts them.
    let rows = 257, cols = 1000, n = rows * cols
    let x = randomArray(n, -2, 2), bias = randomArray(cols, 0.5, 2), s = randomArray(1, 0.5, 2)
    let a = DeviceBuffer(x), b = DeviceBuffer(bias), sc = DeviceBuffer(s), out = DeviceBuffer(n)
    let shape: [Int64] = [Int64(rows), Int64(cols)]
    for op in 0..<4 {
        var ref = [Float](repeating: .nan, count: n)
        tl_binary_strided(Int32(op), 2, shape, x, [Int64(cols), 1], bias, [0, 1], &ref)
        out.poison()
        ok(tl_cuda_binary(Int32(op), a.ptr(), n, b.ptr(), cols, out.ptr(), n), "binary bcast")
        compare("binary \(binaryName(op)) [\(rows),\(cols)] with [\(cols)]", out.download(), ref, tol: tolElementwise)
        tl_binary_strided(Int32(op), 2, shape, s, [0, 0], x, [Int64(cols), 1], &ref)
        out.poison()
        ok(tl_cuda_binary(Int32(op), sc.ptr(), 1, a.ptr(), n, out.ptr(), n), "binary scalar")
        compare("binary \(binaryName(op)) scalar with [\(rows),\(cols)]", out.download(), ref, tol: tolElementwise)
    }
}

// Unary forward and backward.
for op in 0..<Int(TL_UNARY_COUNT) {
    let positive = tl_unary_domain(Int32(op)) == TL_DOMAIN_POSITIVE
    let x = positive ? randomArray(N, 0.1, 3) : randomArray(N, -4, 4)
    var y = [Float](repeating: .nan, count: N)
    tl_unary(Int32(op), x, &y, N)
    let dx = DeviceBuffer(x), out = DeviceBuffer(N)
    out.poison()
    ok(tl_cuda_unary(Int32(op), dx.ptr(), out.ptr(), N), "unary \(op)")
    compare("unary \(unaryName(op)) [\(N)]", out.download(), y, tol: tolElementwise)
    if op == Int(tl_unary_op.gelu.rawValue) {
        out.poison()
        ok(tl_cuda_unary(Int32(op), dx.ptr(1), out.ptr(1), N - 1), "unary unaligned")
        compare("unary gelu (unaligned, scalar path)", out.download(N - 1, offset: 1), Array(y[1...]), tol: tolElementwise)
    }
    if op == Int(tl_unary_op.sign.rawValue) { continue }  // a zero gradient everywhere: no relative error to take
    let g = randomArray(N, -1, 1)
    var ref = [Float](repeating: .nan, count: N)
    tl_unary_backward(Int32(op), x, y, g, &ref, N)
    let dy = DeviceBuffer(y), dg = DeviceBuffer(g)
    out.poison()
    ok(tl_cuda_unary_backward(Int32(op), dx.ptr(), dy.ptr(), dg.ptr(), out.ptr(), N), "unary backward \(op)")
    compare("unary backward \(unaryName(op)) [\(N)]", out.download(), ref, tol: tolElementwise)
}

// Affine.
do {
    let x = randomArray(N, -3, 3), st = randomArray(2, -2, 2)
    var ref = [Float](repeating: .nan, count: N)
    tl_affine(x, st[0], st[1], &ref, N)
    let dx = DeviceBuffer(x), out = DeviceBuffer(N)
    out.poison()
    ok(tl_cuda_affine(dx.ptr(), st[0], st[1], out.ptr(), N), "affine")
    compare("affine x*s+t [\(N)]", out.download(), ref, tol: tolElementwise)
}

// Softmax rows, and the fused softmax cross-entropy.
for (rows, cols) in [(128, 10), (64, 1000), (7, 5000), (3, 1), (1000, 37)] {
    let n = rows * cols
    let x = randomArray(n, -6, 6)
    let dx = DeviceBuffer(x), out = DeviceBuffer(n)
    var soft = [Float](repeating: .nan, count: n), logsoft = [Float](repeating: .nan, count: n)
    tl_softmax_rows(x, &soft, rows, cols, 0)
    tl_softmax_rows(x, &logsoft, rows, cols, 1)
    for log in [0, 1] {
        out.poison()
        ok(tl_cuda_softmax_rows(dx.ptr(), out.ptr(), rows, cols, Int32(log)), "softmax")
        compare("\(log == 1 ? "log-softmax" : "softmax") [\(rows),\(cols)]", out.download(), log == 1 ? logsoft : soft, tol: tolElementwise)
    }
    // Labels as floats; row 0 ignored (-1) when there are several rows.
    var labels = (0..<rows).map { _ in Float(nextRandom() % UInt64(cols)) }
    if rows > 1 { labels[0] = -1 }
    var lossRef = [Float](repeating: 0, count: rows)
    for r in 0..<rows where labels[r] >= 0 { lossRef[r] = -logsoft[r * cols + Int(labels[r])] }
    let dl = DeviceBuffer(labels), loss = DeviceBuffer(rows)
    loss.poison()
    ok(tl_cuda_softmax_xent_forward(dx.ptr(), dl.ptr(), loss.ptr(), rows, cols), "xent forward")
    compare("softmax xent forward [\(rows),\(cols)]", loss.download(), lossRef, tol: tolElementwise)
    let gl = randomArray(rows, 0.5, 2)
    let dgl = DeviceBuffer(gl)
    for useG in [false, true] {
        let scale = 1 / Float(rows)
        var ref = [Float](repeating: 0, count: n)
        for r in 0..<rows where labels[r] >= 0 {
            let k = scale * (useG ? gl[r] : 1)
            for c in 0..<cols { ref[r * cols + c] = k * (soft[r * cols + c] - (c == Int(labels[r]) ? 1 : 0)) }
        }
        out.poison()
        ok(tl_cuda_softmax_xent_backward(dx.ptr(), dl.ptr(), useG ? dgl.ptr() : nil, scale, out.ptr(), rows, cols), "xent backward")
        compare("softmax xent backward [\(rows),\(cols)]\(useG ? " with gloss" : "")", out.download(), ref, tol: tolElementwise)
    }
}

// Sums over rows (bias gradients) and columns. The reference is summed in double: tl_reduce_mid
// adds rows in float in order, and for 10^4 terms its own rounding (~eps * sqrt(n) = 6e-6) is
// near the tolerance; its error is printed beside for comparison.
for (outer, mid, inner) in [(1, 512, 300), (1, 10000, 10), (1, 3, 70001), (300, 512, 1), (10, 100_000, 1), (4, 33, 65)] {
    let n = outer * mid * inner
    let x = randomArray(n, 0.5, 1.5)
    var cpu = [Float](repeating: .nan, count: outer * inner)
    tl_reduce_mid(0, x, outer, mid, inner, &cpu, nil)
    var exact = [Float](repeating: 0, count: outer * inner)
    for o in 0..<outer {
        for i in 0..<inner {
            var s = 0.0
            for m in 0..<mid { s += Double(x[(o * mid + m) * inner + i]) }
            exact[o * inner + i] = Float(s)
        }
    }
    let dx = DeviceBuffer(x), out = DeviceBuffer(outer * inner)
    out.poison()
    ok(tl_cuda_sum_mid(dx.ptr(), outer, mid, inner, out.ptr()), "sum_mid")
    let gpu = out.download()
    let e = relError(gpu, exact)
    check(
        "sum over mid of [\(outer),\(mid),\(inner)]", e <= tolElementwise,
        "rel err \(sci(e)) vs double (tol \(sci(tolElementwise))); tl_reduce_mid vs double \(sci(relError(cpu, exact)))")
}

// Optimizers: several steps with fresh gradients, state compared after each.
for (momentum, dampening, wd, nesterov) in [
    (Float(0.9), Float(0), Float(1e-4), Int32(0)), (0.9, 0, 5e-4, 1), (0.8, 0.1, 0, 0), (0, 0, 1e-2, 0),
] {
    let n = N
    var w = randomArray(n), buf = [Float](repeating: 0, count: n)
    let dw = DeviceBuffer(w), db = DeviceBuffer(buf), dg = DeviceBuffer(n)
    var worst = 0.0
    for step in 0..<3 {
        let g = randomArray(n)
        dg.upload(g)
        tl_sgd_update(&w, g, &buf, n, 0.05, momentum, dampening, wd, nesterov, step == 0 ? 1 : 0)
        ok(
            tl_cuda_sgd_update(
                dw.ptr(), dg.ptr(), momentum != 0 ? db.ptr() : nil, n, 0.05, momentum, dampening, wd, nesterov, step == 0 ? 1 : 0), "sgd")
        worst = max(worst, relError(dw.download(), w))
        if momentum != 0 { worst = max(worst, relError(db.download(), buf)) }
    }
    check(
        "sgd momentum \(momentum) damp \(dampening) wd \(wd) nesterov \(nesterov), 3 steps", worst <= tolElementwise,
        "rel err \(sci(worst)) (tol \(sci(tolElementwise)))")
}
for (adamw, wd) in [(Int32(0), Float(0)), (0, 1e-2), (1, 1e-2)] {
    for offset in [0, 1] {
        let n = N
        let (b1, b2, eps, lr): (Float, Float, Float, Float) = (0.9, 0.999, 1e-8, 1e-3)
        var w = randomArray(n), m = [Float](repeating: 0, count: n), v = [Float](repeating: 0, count: n)
        let dw = DeviceBuffer(n + 1), dm = DeviceBuffer(n + 1), dv = DeviceBuffer(n + 1), dg = DeviceBuffer(n + 1)
        dw.upload(w, offset: offset)
        dm.upload(m, offset: offset)
        dv.upload(v, offset: offset)
        var worst = 0.0
        for t in 1...3 {
            let g = randomArray(n)
            dg.upload(g, offset: offset)
            let bc1 = 1 - Float(pow(Double(b1), Double(t))), bc2 = 1 - Float(pow(Double(b2), Double(t)))
            tl_adam_update(&w, g, &m, &v, n, lr, b1, b2, eps, wd, adamw, bc1, bc2)
            ok(
                tl_cuda_adam_update(
                    dw.ptr(offset), dg.ptr(offset), dm.ptr(offset), dv.ptr(offset), n, lr, b1, b2, eps, wd, adamw, bc1, bc2), "adam")
            worst = max(worst, relError(dw.download(n, offset: offset), w))
            worst = max(worst, relError(dm.download(n, offset: offset), m))
            worst = max(worst, relError(dv.download(n, offset: offset), v))
        }
        check(
            "\(adamw != 0 ? "adamw" : "adam") wd \(wd)\(offset != 0 ? " (unaligned, scalar path)" : ""), 3 steps", worst <= tolElementwise,
            "rel err \(sci(worst)) (tol \(sci(tolElementwise)))")
    }
}
for (momentum, centered) in [(Float(0), Int32(0)), (0.9, 1)] {
    let n = N
    var w = randomArray(n), sq = [Float](repeating: 0, count: n), mom = [Float](repeating: 0, count: n),
        gavg = [Float](repeating: 0, count: n)
    let dw = DeviceBuffer(w), dsq = DeviceBuffer(sq), dmom = DeviceBuffer(mom), dgavg = DeviceBuffer(gavg), dg = DeviceBuffer(n)
    var worst = 0.0
    for _ in 0..<3 {
        let g = randomArray(n)
        dg.upload(g)
        tl_rmsprop_update(&w, g, &sq, &mom, &gavg, n, 1e-3, 0.99, 1e-8, 1e-4, momentum, centered)
        ok(
            tl_cuda_rmsprop_update(dw.ptr(), dg.ptr(), dsq.ptr(), dmom.ptr(), dgavg.ptr(), n, 1e-3, 0.99, 1e-8, 1e-4, momentum, centered),
            "rmsprop")
        worst = max(worst, relError(dw.download(), w))
        worst = max(worst, relError(dsq.download(), sq))
    }
    check(
        "rmsprop momentum \(momentum) centered \(centered), 3 steps", worst <= tolElementwise,
        "rel err \(sci(worst)) (tol \(sci(tolElementwise)))")
}

// sgemm: every transpose combination, padded leading dimensions, alpha and beta.
@MainActor func gemmCase(_ ta: Int32, _ tb: Int32, _ M: Int, _ N: Int, _ K: Int, pad: Int, alpha: Float, beta: Float) -> Double {
    let rowsA = ta != 0 ? K : M, colsA = ta != 0 ? M : K
    let rowsB = tb != 0 ? N : K, colsB = tb != 0 ? K : N
    let lda = colsA + pad, ldb = colsB + pad, ldc = N + pad
    let A = randomArray(rowsA * lda), B = randomArray(rowsB * ldb)
    var C = randomArray(M * ldc)
    let dA = DeviceBuffer(A), dB = DeviceBuffer(B), dC = DeviceBuffer(C)
    tl_sgemm(ta, tb, Int32(M), Int32(N), Int32(K), alpha, A, Int32(lda), B, Int32(ldb), beta, &C, Int32(ldc))
    ok(
        tl_cuda_sgemm(ta, tb, Int32(M), Int32(N), Int32(K), alpha, dA.ptr(), Int32(lda), dB.ptr(), Int32(ldb), beta, dC.ptr(), Int32(ldc)),
        "sgemm")
    return relError(dC.download(), C)
}
for (ta, tb) in [(Int32(0), Int32(0)), (0, 1), (1, 0), (1, 1)] {
    for (M, N, K, pad, alpha, beta) in [(64, 48, 32, 0, Float(1), Float(0)), (257, 129, 65, 3, 0.5, 0.25), (512, 512, 512, 0, 1, 1)] {
        let e = gemmCase(ta, tb, M, N, K, pad: pad, alpha: alpha, beta: beta)
        check(
            "sgemm \(ta != 0 ? "T" : "N")\(tb != 0 ? "T" : "N") M=\(M) N=\(N) K=\(K) ld+\(pad) a=\(alpha) b=\(beta)", e <= tolGemm,
            "rel err \(sci(e)) (tol \(sci(tolGemm)))")
    }
}
do {
    let e = gemmCase(0, 0, 1024, 1024, 4096, pad: 0, alpha: 1, beta: 0)
    check("sgemm NN 1024x1024, K=4096 (FP32, no TF32)", e <= tolGemm, "rel err \(sci(e)) (tol \(sci(tolGemm)))")
    tl_cuda_set_tf32(1)
    let e32 = gemmCase(0, 0, 1024, 1024, 4096, pad: 0, alpha: 1, beta: 0)
    tl_cuda_set_tf32(0)
    print("      for reference, the same with TF32 allowed: rel err \(sci(e32)) (so FP32 mode matters)")
}
ok(tl_cuda_synchronize(), "synchronize")

// Strided-batched sgemm (the convolutions' workhorse) against tl_sgemm per batch entry; stride 0
// on A shares one matrix across the batch, as the convolutions do with the weights.
for (ta, tb) in [(Int32(0), Int32(0)), (1, 0), (0, 1)] {
    let (M, N, K, batch) = (24, 50, 36, 5)
    let rowsA = ta != 0 ? K : M, colsA = ta != 0 ? M : K, rowsB = tb != 0 ? N : K, colsB = tb != 0 ? K : N
    for shareA in [true, false] {
        let strideA = shareA ? 0 : rowsA * colsA, strideB = rowsB * colsB + 7, strideC = M * N + 3
        let A = randomArray(shareA ? rowsA * colsA : batch * strideA), B = randomArray(batch * strideB)
        var C = randomArray(batch * strideC)
        let dA = DeviceBuffer(A), dB = DeviceBuffer(B), dC = DeviceBuffer(C)
        A.withUnsafeBufferPointer { a in
            B.withUnsafeBufferPointer { b in
                C.withUnsafeMutableBufferPointer { c in
                    for i in 0..<batch {
                        tl_sgemm(
                            ta, tb, Int32(M), Int32(N), Int32(K), 1, a.baseAddress! + i * strideA, Int32(colsA),
                            b.baseAddress! + i * strideB, Int32(colsB), 0.5, c.baseAddress! + i * strideC, Int32(N))
                    }
                }
            }
        }
        ok(
            tl_cuda_sgemm_strided_batched(
                ta, tb, Int32(M), Int32(N), Int32(K), 1, dA.ptr(), Int32(colsA), Int64(strideA),
                dB.ptr(), Int32(colsB), Int64(strideB), 0.5, dC.ptr(), Int32(N), Int64(strideC),
                Int32(batch)), "sgemm strided batched")
        let e = relError(dC.download(), C)
        check(
            "sgemm strided batched \(ta != 0 ? "T" : "N")\(tb != 0 ? "T" : "N") ×\(batch)\(shareA ? " shared A" : "")",
            e <= tolGemm, "rel err \(sci(e)) (tol \(sci(tolGemm)))")
    }
}

// Convolution, pooling and batch-norm kernels against conv.c, over windows with stride,
// dilation, asymmetric padding and non-square kernels.
func window(_ c: Int, _ h: Int, _ w: Int, k: (Int, Int), s: (Int, Int), pad: (Int, Int, Int, Int), d: (Int, Int)) -> tl_window2d {
    let oh = (h + pad.0 + pad.1 - (d.0 * (k.0 - 1) + 1)) / s.0 + 1, ow = (w + pad.2 + pad.3 - (d.1 * (k.1 - 1) + 1)) / s.1 + 1
    return tl_window2d(
        channels: Int32(c), height: Int32(h), width: Int32(w), kernel_h: Int32(k.0), kernel_w: Int32(k.1),
        stride_h: Int32(s.0), stride_w: Int32(s.1), pad_top: Int32(pad.0), pad_bottom: Int32(pad.1),
        pad_left: Int32(pad.2), pad_right: Int32(pad.3), dilation_h: Int32(d.0), dilation_w: Int32(d.1),
        out_h: Int32(oh), out_w: Int32(ow))
}
let windows = [
    window(3, 17, 15, k: (3, 3), s: (1, 1), pad: (1, 1, 1, 1), d: (1, 1)),
    window(4, 19, 19, k: (3, 3), s: (2, 2), pad: (2, 2, 2, 2), d: (2, 2)),
    window(2, 16, 13, k: (3, 2), s: (2, 3), pad: (0, 1, 1, 0), d: (1, 2)),
    window(5, 8, 8, k: (2, 2), s: (2, 2), pad: (0, 0, 0, 0), d: (1, 1)),
    window(2, 56, 56, k: (7, 7), s: (2, 2), pad: (3, 3, 3, 3), d: (1, 1)),
]
for (wi, var w) in windows.enumerated() {
    let images = 3, c = Int(w.channels), inPlane = Int(w.height * w.width), plane = Int(w.out_h * w.out_w)
    let inImage = c * inPlane, colImage = c * Int(w.kernel_h * w.kernel_w) * plane, planes = images * c
    let x = randomArray(images * inImage)
    let dx = DeviceBuffer(x)
    var col = [Float](repeating: .nan, count: images * colImage)
    x.withUnsafeBufferPointer { xp in
        col.withUnsafeMutableBufferPointer { p in
            for i in 0..<images { tl_im2col(xp.baseAddress! + i * inImage, &w, p.baseAddress! + i * colImage) }
        }
    }
    let dcol = DeviceBuffer(images * colImage)
    dcol.poison()
    ok(tl_cuda_im2col(dx.ptr(), &w, images, dcol.ptr()), "im2col")
    compare("im2col window \(wi)", dcol.download(), col, tol: 0)
    let g = randomArray(images * colImage)
    var img = [Float](repeating: 0, count: images * inImage)
    g.withUnsafeBufferPointer { gp in
        img.withUnsafeMutableBufferPointer { p in
            for i in 0..<images { tl_col2im(gp.baseAddress! + i * colImage, &w, p.baseAddress! + i * inImage) }
        }
    }
    let dg = DeviceBuffer(g), dimg = DeviceBuffer(images * inImage)
    dimg.poison()
    ok(tl_cuda_col2im(dg.ptr(), &w, images, dimg.ptr()), "col2im")
    compare("col2im window \(wi)", dimg.download(), img, tol: tolElementwise)
    // Pooling over images·channels planes.
    var mo = [Float](repeating: .nan, count: planes * plane), ma = mo
    var taps = [Int32](repeating: 0, count: tl_im2col_table_size(&w, 1))
    tl_im2col_table(&w, 1, &taps)
    tl_maxpool2d_forward(x, &w, taps, planes, &mo, &ma)
    let dmo = DeviceBuffer(planes * plane), dma = DeviceBuffer(planes * plane)
    dmo.poison(); dma.poison()
    ok(tl_cuda_maxpool2d_forward(dx.ptr(), &w, planes, dmo.ptr(), dma.ptr()), "maxpool forward")
    compare("maxpool forward window \(wi)", dmo.download(), mo, tol: 0)
    compare("maxpool argmax window \(wi)", dma.download(), ma, tol: 0)
    let gp = randomArray(planes * plane)
    let dgp = DeviceBuffer(gp), dpx = DeviceBuffer(planes * inPlane)
    var px = [Float](repeating: .nan, count: planes * inPlane)
    tl_maxpool2d_backward(gp, ma, &w, planes, &px)
    dpx.poison()
    ok(tl_cuda_maxpool2d_backward(dgp.ptr(), dma.ptr(), &w, planes, dpx.ptr()), "maxpool backward")
    compare("maxpool backward window \(wi)", dpx.download(), px, tol: tolElementwise)
    for inc in [Int32(0), 1] {
        var ao = [Float](repeating: .nan, count: planes * plane)
        tl_avgpool2d_forward(x, &w, planes, inc, &ao)
        dmo.poison()
        ok(tl_cuda_avgpool2d_forward(dx.ptr(), &w, planes, inc, dmo.ptr()), "avgpool forward")
        compare("avgpool forward window \(wi) include_pad \(inc)", dmo.download(), ao, tol: tolElementwise)
        tl_avgpool2d_backward(gp, &w, planes, inc, &px)
        dpx.poison()
        ok(tl_cuda_avgpool2d_backward(dgp.ptr(), &w, planes, inc, dpx.ptr()), "avgpool backward")
        compare("avgpool backward window \(wi) include_pad \(inc)", dpx.download(), px, tol: tolElementwise)
    }
}
for (n, c, sp) in [(8, 16, 49), (64, 8, 1), (2, 3, 3136), (32, 64, 196)] {
    let x = randomArray(n * c * sp, 1, 4), g = randomArray(n * c * sp), wt = randomArray(c, 0.5, 2), b = randomArray(c)
    var mean = [Float](repeating: .nan, count: c), variance = mean
    tl_batchnorm_stats(x, n, c, sp, 0, c, &mean, &variance)
    let dx = DeviceBuffer(x), dm = DeviceBuffer(c), dv = DeviceBuffer(c)
    dm.poison(); dv.poison()
    ok(tl_cuda_batchnorm_stats(dx.ptr(), n, c, sp, dm.ptr(), dv.ptr()), "batchnorm stats")
    compare("batchnorm mean [\(n),\(c),\(sp)]", dm.download(), mean, tol: tolElementwise)
    compare("batchnorm variance [\(n),\(c),\(sp)]", dv.download(), variance, tol: tolElementwise)
    var y = [Float](repeating: .nan, count: n * c * sp)
    tl_batchnorm_forward(x, n, c, sp, 0, c, mean, variance, 1e-5, wt, b, &y)
    let dw = DeviceBuffer(wt), db = DeviceBuffer(b), dy = DeviceBuffer(n * c * sp)
    dm.upload(mean); dv.upload(variance); dy.poison()
    ok(tl_cuda_batchnorm_forward(dx.ptr(), n, c, sp, dm.ptr(), dv.ptr(), 1e-5, dw.ptr(), db.ptr(), dy.ptr()), "batchnorm forward")
    compare("batchnorm forward [\(n),\(c),\(sp)]", dy.download(), y, tol: tolElementwise)
    let dgr = DeviceBuffer(g), ddw = DeviceBuffer(c), ddb = DeviceBuffer(c)
    for stats in [Int32(0), 1] {
        var gx = [Float](repeating: .nan, count: n * c * sp), gw = [Float](repeating: .nan, count: c), gb = gw
        tl_batchnorm_backward(g, x, n, c, sp, 0, c, mean, variance, 1e-5, wt, stats, &gx, &gw, &gb)
        dy.poison(); ddw.poison(); ddb.poison()
        ok(
            tl_cuda_batchnorm_backward(
                dgr.ptr(), dx.ptr(), n, c, sp, dm.ptr(), dv.ptr(), 1e-5, dw.ptr(), stats, dy.ptr(),
                ddw.ptr(), ddb.ptr()), "batchnorm backward")
        compare("batchnorm backward dx [\(n),\(c),\(sp)] batch stats \(stats)", dy.download(), gx, tol: 1e-4)
        compare("batchnorm backward dweight [\(n),\(c),\(sp)] batch stats \(stats)", ddw.download(), gw, tol: 1e-4)
        compare("batchnorm backward dbias [\(n),\(c),\(sp)] batch stats \(stats)", ddb.download(), gb, tol: 1e-4)
    }
}

// Max over the middle axis with arg-max, and permutes.
for (outer, mid, inner) in [(1, 1000, 1), (64, 10, 1), (3, 7, 1000), (5, 1, 9)] {
    let x = randomArray(outer * mid * inner)
    var out = [Float](repeating: .nan, count: outer * inner), idx = [Int32](repeating: -1, count: outer * inner)
    tl_reduce_mid(1, x, outer, mid, inner, &out, &idx)
    let dx = DeviceBuffer(x), dout = DeviceBuffer(outer * inner)
    dout.poison()
    var gidx = [Int32](repeating: -7, count: outer * inner)
    ok(tl_cuda_max_mid(dx.ptr(), outer, mid, inner, dout.ptr(), &gidx), "max mid")
    compare("max [\(outer),\(mid),\(inner)]", dout.download(), out, tol: 0)
    check("arg-max [\(outer),\(mid),\(inner)]", gidx == idx)
}
for (shape, perm) in [([64, 128], [1, 0]), ([2, 3, 4, 5], [3, 0, 2, 1]), ([2, 2, 3, 2, 3, 2, 2, 3], [7, 6, 5, 4, 3, 2, 1, 0])] {
    let n = shape.reduce(1, *)
    var strides = [Int](repeating: 1, count: shape.count)
    for d in stride(from: shape.count - 2, through: 0, by: -1) { strides[d] = strides[d + 1] * shape[d + 1] }
    let outShape = perm.map { Int64(shape[$0]) }, permStrides = perm.map { Int64(strides[$0]) }
    let x = randomArray(n)
    var out = [Float](repeating: .nan, count: n)
    tl_permute(Int32(shape.count), outShape, x, permStrides, &out)
    let dx = DeviceBuffer(x), dout = DeviceBuffer(n)
    dout.poison()
    ok(tl_cuda_permute(Int32(shape.count), outShape, dx.ptr(), permStrides, dout.ptr()), "permute")
    compare("permute \(shape) by \(perm)", dout.download(), out, tol: 0)
}
do {
    // A general broadcast [2, 5, 3, 4, 4] = a [2, 1, 3, 1, 4] op b [5, 3, 1, 1].
    let shape: [Int64] = [2, 5, 3, 4, 4], astr: [Int64] = [12, 0, 4, 0, 1], bstr: [Int64] = [0, 3, 1, 0, 0]
    let a = randomArray(24, 0.5, 2), b = randomArray(15, 0.5, 2)
    let da = DeviceBuffer(a), db = DeviceBuffer(b), dout = DeviceBuffer(480)
    for op in Int32(0)..<Int32(TL_BINARY_COUNT) {
        var out = [Float](repeating: .nan, count: 480)
        tl_binary_strided(op, 5, shape, a, astr, b, bstr, &out)
        dout.poison()
        ok(tl_cuda_binary_strided(op, 5, shape, da.ptr(), astr, db.ptr(), bstr, dout.ptr()), "binary strided")
        compare("binary strided \(binaryName(Int(op))) rank 5", dout.download(), out, tol: tolElementwise)
    }
}
ok(tl_cuda_synchronize(), "synchronize")

// MARK: - 5. Timings

/// Median milliseconds of `reps` runs of body, each timed with CUDA events, after `warmup` runs.
func timeMs(warmup: Int = 3, reps: Int, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    tl_cuda_synchronize()
    var times: [Double] = []
    for _ in 0..<reps {
        tl_cuda_timer_start()
        body()
        var t: Float = 0
        tl_cuda_timer_stop(&t)
        times.append(Double(t))
    }
    times.sort()
    return times[times.count / 2]
}

if runBench {
    print("")
    print("timings on device 0 (CUDA events, median)")
    print("| what | size | time (ms) | rate |")
    print("|---|---|---|---|")
    for n in [1024, 2048, 4096] {
        let a = DeviceBuffer(randomArray(n * n)), b = DeviceBuffer(randomArray(n * n)), c = DeviceBuffer(n * n)
        let t = timeMs(reps: n == 4096 ? 10 : 20) {
            tl_cuda_sgemm(0, 0, Int32(n), Int32(n), Int32(n), 1, a.ptr(), Int32(n), b.ptr(), Int32(n), 0, c.ptr(), Int32(n))
        }
        print("| sgemm FP32 | \(n)x\(n)x\(n) | \(fmt(t, 3)) | \(fmt(2 * pow(Double(n), 3) / (t * 1e-3) / 1e9, 0)) GFLOP/s |")
        if n == 4096 {
            tl_cuda_set_tf32(1)
            let t32 = timeMs(reps: 10) {
                tl_cuda_sgemm(0, 0, Int32(n), Int32(n), Int32(n), 1, a.ptr(), Int32(n), b.ptr(), Int32(n), 0, c.ptr(), Int32(n))
            }
            tl_cuda_set_tf32(0)
            print(
                "| sgemm TF32 (opt-in) | \(n)x\(n)x\(n) | \(fmt(t32, 3)) | \(fmt(2 * pow(Double(n), 3) / (t32 * 1e-3) / 1e9, 0)) GFLOP/s |")
        }
    }
    do {
        let count = 1 << 28  // 1 GiB
        let a = DeviceBuffer(count), b = DeviceBuffer(count)
        tl_cuda_fill(a.ptr(), 1.5, count)
        let t = timeMs(reps: 10) { tl_cuda_memcpy_dtod(b.raw, a.raw, count * 4) }
        print("| copy device to device | 1 GiB | \(fmt(t, 3)) | \(fmt(2 * Double(count * 4) / (t * 1e-3) / 1e9, 0)) GB/s (read + write) |")
        let n = 1 << 26
        let t2 = timeMs(reps: 10) { tl_cuda_binary(0, a.ptr(), n, a.ptr(n), n, b.ptr(), n) }
        print(
            "| add a + b | \(n / (1 << 20))M floats | \(fmt(t2, 3)) | \(fmt(3 * Double(n * 4) / (t2 * 1e-3) / 1e9, 0)) GB/s (2 reads + 1 write) |"
        )
    }
    do {
        let n = 10_000_000
        let w = DeviceBuffer(randomArray(n)), g = DeviceBuffer(randomArray(n)), m = DeviceBuffer(n), v = DeviceBuffer(n)
        tl_cuda_fill(m.ptr(), 0, n)
        tl_cuda_fill(v.ptr(), 0, n)
        let t = timeMs(reps: 20) {
            tl_cuda_adam_update(w.ptr(), g.ptr(), m.ptr(), v.ptr(), n, 1e-3, 0.9, 0.999, 1e-8, 1e-2, 1, 0.1, 0.001)
        }
        print("| AdamW update | 10M params | \(fmt(t, 3)) | \(fmt(7 * Double(n * 4) / (t * 1e-3) / 1e9, 0)) GB/s (4 reads + 3 writes) |")
    }
    let sync = tl_cuda_synchronize()
    check("timed work finished without error", sync == 0, sync == 0 ? "" : lastError())
    var st = tl_cuda_mem_stats()
    tl_cuda_memory_stats(&st)
    print(
        "allocator: \(st.alloc_count) allocations, \(st.cache_hits) from the cache, \(st.driver_allocs) cuMemAlloc calls, peak reserved \(fmt(Double(st.peak_reserved) / 1048576, 1)) MiB"
    )
}

print("\(passed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
