import CLearner

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// How a TFRecord file is wrapped, as `tf.io.TFRecordOptions(compression_type=...)` names it:
/// GZIP and ZLIB compress the whole stream of framed records, not each record.
public enum TFRecordCompression: String, Sendable, Equatable, CaseIterable {
    case none, gzip, zlib

    /// The C shim's mode number.
    var mode: Int32 {
        switch self {
        case .none: return Int32(TL_COMPRESSION_NONE.rawValue)
        case .gzip: return Int32(TL_COMPRESSION_GZIP.rawValue)
        case .zlib: return Int32(TL_COMPRESSION_ZLIB.rawValue)
        }
    }

    /// The compression TensorFlow's naming habits suggest for `path` (`.gz`, `.zlib`/`.zz`), if any.
    public static func fromExtension(_ path: String) -> TFRecordCompression? {
        let lower = path.lowercased()
        if lower.hasSuffix(".gz") || lower.hasSuffix(".gzip") { return .gzip }
        if lower.hasSuffix(".zlib") || lower.hasSuffix(".zz") { return .zlib }
        return nil
    }

    /// The compression of a file whose first bytes are `head`.
    ///
    /// An uncompressed file is recognised first, by a valid masked CRC of its first length field,
    /// so that a length whose bytes happen to look like a ZLIB header is not misread; then the
    /// GZIP magic number, then a ZLIB header (deflate method, FCHECK multiple of 31). Anything
    /// else (an empty or damaged file) falls back to the extension, then to `.none`, where the
    /// reader reports the damage.
    public static func detect(head: [UInt8], path: String) -> TFRecordCompression {
        if head.count >= tfRecordHeaderSize {
            let stored = head.withUnsafeBytes {
                UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            }
            if head.withUnsafeBytes({ tl_masked_crc32c($0.baseAddress, 8) }) == stored { return .none }
        }
        if head.count >= 2 {
            if head[0] == 0x1f && head[1] == 0x8b { return .gzip }
            if head[0] & 0x0f == 8, head[0] >> 4 <= 7, (UInt16(head[0]) << 8 | UInt16(head[1])) % 31 == 0 {
                return .zlib
            }
        }
        return fromExtension(path) ?? .none
    }
}

/// Where a reader's bytes come from: the file itself, or zlib inflating it.
///
/// One `read`-like call, so the record parser above it is the same for every compression.
final class RecordByteSource {
    let path: String
    let fd: Int32
    private let inflater: OpaquePointer?

    init(path: String, fd: Int32, compression: TFRecordCompression) throws {
        self.path = path
        self.fd = fd
        if compression == .none {
            inflater = nil
        } else {
            var out: OpaquePointer?
            guard tl_zreader_open(fd, compression.mode, &out) == 0, let reader = out else {
                throw DataError.io(path: path, operation: "start decompressing", message: "zlib could not start")
            }
            inflater = reader
        }
    }

    deinit { if let inflater { tl_zreader_free(inflater) } }

    /// Reads up to `count` bytes into `into`; 0 at the end.
    ///
    /// Decompression failures are thrown as ``DataError/decompression(_:message:)`` at `location`.
    func read(into: UnsafeMutableRawPointer, count: Int, location: RecordLocation) throws -> Int {
        if let inflater {
            var message = [CChar](repeating: 0, count: 256)
            let got = tl_zreader_read(inflater, into, count, &message, message.count)
            guard got >= 0 else {
                throw DataError.decompression(location, message: cMessage(message))
            }
            return got
        }
        while true {
            let got = systemRead(fd, into, count)
            if got >= 0 { return got }
            if errno != EINTR { throw DataError.io(path: path, operation: "read", message: errnoMessage()) }
        }
    }
}

private func systemRead(_ fd: Int32, _ into: UnsafeMutableRawPointer, _ count: Int) -> Int { read(fd, into, count) }

/// Deflates a writer's framed bytes into its file.
final class RecordByteSink {
    private let deflater: OpaquePointer
    let path: String

    init(path: String, fd: Int32, compression: TFRecordCompression, level: Int) throws {
        var out: OpaquePointer?
        guard tl_zwriter_open(fd, compression.mode, Int32(clamping: level), &out) == 0, let writer = out else {
            throw DataError.io(path: path, operation: "start compressing", message: "zlib could not start")
        }
        self.deflater = writer
        self.path = path
    }

    deinit { tl_zwriter_free(deflater) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var message = [CChar](repeating: 0, count: 256)
        guard tl_zwriter_write(deflater, bytes.baseAddress, bytes.count, &message, message.count) == 0 else {
            throw DataError.io(path: path, operation: "write to", message: cMessage(message))
        }
    }

    func finish() throws {
        var message = [CChar](repeating: 0, count: 256)
        guard tl_zwriter_finish(deflater, &message, message.count) == 0 else {
            throw DataError.io(path: path, operation: "finish", message: cMessage(message))
        }
    }
}

/// The NUL-terminated text a C call wrote into `buffer`.
func cMessage(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
