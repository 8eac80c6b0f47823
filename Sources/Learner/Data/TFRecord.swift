import CLearner

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

// TFRecord framing, per record (GZIP/ZLIB files compress this whole stream):
//   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// with masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8, as TensorFlow's record_writer.cc writes it.

/// Size of the framing before a record's payload: 8-byte length plus its 4-byte CRC.
let tfRecordHeaderSize = 12
/// Size of the framing after a record's payload: the payload's 4-byte CRC.
let tfRecordFooterSize = 4

/// The current `errno` as text, for ``DataError/io(path:operation:message:)``.
func errnoMessage() -> String { String(cString: strerror(errno)) }

// The writer's own `write`/`close` methods shadow the C calls inside the class; these reach them.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }
private func systemClose(_ fd: Int32) -> Int32 { close(fd) }

/// Reads a TFRecord file record by record, verifying both masked CRC32Cs of every record.
///
/// The file is streamed through one reusable buffer (1 MiB by default, grown only for a larger
/// record), so memory stays flat however big the shard is and each `read(2)` brings in many
/// records. GZIP and ZLIB files are inflated on the way through a fixed 256 KiB input buffer
/// (never the whole file); their locations count bytes of the uncompressed stream.
/// ``withNextRecord(_:)`` hands out the payload in place without copying; ``next()`` copies it
/// into an array, and ``forEachRecord(_:)`` walks the rest of the file.
///
/// Not a `Sequence`: iteration can fail part-way (corrupt or truncated shard), and a throwing
/// `next()` says so where a `Sequence` would have to stop silently.
public final class TFRecordReader {
    /// The file being read, as given.
    public let path: String
    /// Index of the record the next call returns.
    public private(set) var recordIndex = 0
    /// Byte offset in the file (uncompressed stream) of the record the next call returns.
    public private(set) var offset = 0
    /// How the file is compressed, as given or detected.
    public let compression: TFRecordCompression

    private let fd: Int32
    private let source: RecordByteSource
    /// Size of the file when last asked; bounds the lengths records may claim.
    private var fileSize = 0
    private var buffer: UnsafeMutableRawPointer
    private var capacity: Int
    /// Unconsumed bytes are `buffer[start..<end]`.
    private var start = 0
    private var end = 0
    private var atEOF = false

    /// Opens `path` for reading; `compression` nil detects it (see ``TFRecordCompression/detect(head:path:)``).
    ///
    /// Throws ``DataError/io(path:operation:message:)`` when it cannot.
    public init(path: String, compression: TFRecordCompression? = nil, bufferSize: Int = 1 << 20) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DataError.io(path: path, operation: "open", message: errnoMessage()) }
        let chosen: TFRecordCompression
        if let compression {
            chosen = compression
        } else {
            var head = [UInt8](repeating: 0, count: tfRecordHeaderSize)
            let got = head.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
            if got < 0 {
                let message = errnoMessage()
                close(fd)
                throw DataError.io(path: path, operation: "read", message: message)
            }
            // An empty file is an empty shard, whatever its name says.
            chosen = got == 0 ? .none : TFRecordCompression.detect(head: Array(head.prefix(got)), path: path)
        }
        let source: RecordByteSource
        do {
            source = try RecordByteSource(path: path, fd: fd, compression: chosen)
        } catch {
            close(fd)
            throw error
        }
        self.path = path
        self.fd = fd
        self.source = source
        self.compression = chosen
        self.capacity = max(bufferSize, 64)
        self.buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        self.fileSize = try currentFileSize()  // deinit closes fd if this throws
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// Calls `body` with the next record's payload and location; nil at a clean end of file.
    ///
    /// Returns what `body` returns. The buffer is valid only during the call.
    public func withNextRecord<R>(_ body: (UnsafeRawBufferPointer, RecordLocation) throws -> R) throws -> R? {
        let location = RecordLocation(
            file: path, record: recordIndex, offset: offset, compressed: compression != .none)
        let headerBytes = try fill(tfRecordHeaderSize, at: location)
        if headerBytes == 0 { return nil }
        guard headerBytes >= tfRecordHeaderSize else {
            throw DataError.truncatedRecord(location, needed: tfRecordHeaderSize, available: headerBytes)
        }
        let header = UnsafeRawPointer(buffer + start)
        let length = UInt64(littleEndian: header.loadUnaligned(as: UInt64.self))
        let lengthCRC = UInt32(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard tl_masked_crc32c(header, 8) == lengthCRC else {
            if recordIndex == 0, compression == .none, looksCompressed(header) {
                throw DataError.compressedFile(path: path)
            }
            throw DataError.corruptLength(location)
        }
        // Check against the file size before buffering, so a bad length cannot ask for terabytes.
        // The size is re-read once on failure, in case the file grew since it was opened.
        // A compressed stream has no size to check against; there `fill` grows the buffer only
        // as fast as data actually arrives.
        let framing = tfRecordHeaderSize + tfRecordFooterSize
        func fits() -> Bool {
            let remaining = max(fileSize - offset, 0)
            return length <= UInt64(remaining) && Int(length) <= remaining - framing
        }
        if compression == .none, !fits() { fileSize = try currentFileSize() }
        guard compression != .none || fits() else {
            let needed = length > UInt64(Int.max - framing) ? Int.max : Int(length) + framing
            throw DataError.truncatedRecord(location, needed: needed, available: max(fileSize - offset, 0))
        }
        guard length <= UInt64(Int.max / 2) else {
            throw DataError.truncatedRecord(location, needed: Int.max, available: headerBytes)
        }
        let total = Int(length) + framing
        let available = try fill(total, at: location)
        guard available >= total else { throw DataError.truncatedRecord(location, needed: total, available: available) }

        let payload = UnsafeRawPointer(buffer + start + tfRecordHeaderSize)
        let dataCRC = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: Int(length), as: UInt32.self))
        // Consume before checking and calling out, so a bad payload CRC or an error thrown by `body`
        // leaves the reader on the next record (the framing was sound, so the next record can still
        // be read: `tefla-data verify --all` lists every bad record this way).
        start += total
        offset += total
        recordIndex += 1
        guard tl_masked_crc32c(payload, Int(length)) == dataCRC else { throw DataError.corruptData(location) }
        return try body(UnsafeRawBufferPointer(start: payload, count: Int(length)), location)
    }

    /// The next record's payload, or nil at a clean end of file.
    public func next() throws -> [UInt8]? {
        try withNextRecord { bytes, _ in [UInt8](bytes) }
    }

    /// Calls `body` with every remaining record's payload (valid only during the call) and location.
    public func forEachRecord(_ body: (UnsafeRawBufferPointer, RecordLocation) throws -> Void) throws {
        while try withNextRecord(body) != nil {}
    }

    /// Every record of the file at `path`, copied into arrays (for small files and tests).
    public static func readAll(path: String) throws -> [[UInt8]] {
        let reader = try TFRecordReader(path: path)
        var records: [[UInt8]] = []
        while let record = try reader.next() { records.append(record) }
        return records
    }

    /// Makes at least `count` unconsumed bytes available if the file has them; returns how many are.
    ///
    /// The buffer at most doubles per step and only once full, so its size follows the data read,
    /// not what a (possibly bogus) length asks for.
    private func fill(_ count: Int, at location: RecordLocation) throws -> Int {
        if end - start >= count || atEOF { return end - start }
        if start > 0 {
            if end > start { memmove(buffer, buffer + start, end - start) }
            end -= start
            start = 0
        }
        while end < count {
            if end == capacity {
                let newCapacity = min(count, capacity * 2)
                let grown = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
                grown.copyMemory(from: buffer, byteCount: end)
                buffer.deallocate()
                buffer = grown
                capacity = newCapacity
            }
            let got = try source.read(into: buffer + end, count: capacity - end, location: location)
            if got == 0 {
                atEOF = true
                break
            }
            end += got
        }
        return end
    }

    private func currentFileSize() throws -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw DataError.io(path: path, operation: "stat", message: errnoMessage()) }
        return Int(info.st_size)
    }

    /// Whether the first bytes are a GZIP magic number or a ZLIB header (only asked after a CRC failure).
    private func looksCompressed(_ header: UnsafeRawPointer) -> Bool {
        let b0 = header.load(as: UInt8.self)
        let b1 = header.load(fromByteOffset: 1, as: UInt8.self)
        let gzip = b0 == 0x1f && b1 == 0x8b
        let zlib = b0 & 0x0f == 8 && (UInt16(b0) << 8 | UInt16(b1)) % 31 == 0
        return gzip || zlib
    }
}

/// Writes a TFRecord file that TensorFlow's `tf.data.TFRecordDataset` reads, optionally GZIP or
/// ZLIB compressed (read it there with `compression_type="GZIP"`/`"ZLIB"`).
///
/// Records are framed into an in-memory buffer that is written out (or deflated) in large
/// blocks; call ``close()`` to flush, end the compressed stream and see write errors (deinit
/// closes too, but must swallow them).
public final class TFRecordWriter {
    /// The file being written.
    public let path: String
    /// How the file is compressed.
    public let compression: TFRecordCompression
    private var fd: Int32
    private var pending: [UInt8] = []
    private let flushThreshold: Int
    private let sink: RecordByteSink?

    /// Creates (or truncates) the file at `path`; `level` is zlib's (0...9, -1 its default, 6).
    public init(
        path: String, compression: TFRecordCompression = .none, level: Int = -1, bufferSize: Int = 1 << 20
    ) throws {
        // O_NOFOLLOW: a link in the output folder is not written through to wherever it points.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            let message = errno == ELOOP ? "a symbolic link; not written through" : errnoMessage()
            throw DataError.io(path: path, operation: "create", message: message)
        }
        do {
            sink =
                compression == .none
                ? nil : try RecordByteSink(path: path, fd: fd, compression: compression, level: level)
        } catch {
            _ = systemClose(fd)
            throw error
        }
        self.path = path
        self.fd = fd
        self.compression = compression
        self.flushThreshold = max(bufferSize, 64)
        pending.reserveCapacity(flushThreshold)
    }

    deinit { try? close() }

    /// Appends one record.
    public func write(_ record: [UInt8]) throws {
        try record.withUnsafeBytes { try write($0) }
    }

    /// Appends one record whose payload is `record`.
    public func write(_ record: UnsafeRawBufferPointer) throws {
        guard fd >= 0 else { throw DataError.io(path: path, operation: "write to", message: "writer is closed") }
        var length = UInt64(record.count).littleEndian
        withUnsafeBytes(of: &length) { lengthBytes in
            pending.append(contentsOf: lengthBytes)
            appendLE(tl_masked_crc32c(lengthBytes.baseAddress, 8))
        }
        pending.append(contentsOf: record)
        appendLE(tl_masked_crc32c(record.baseAddress, record.count))
        if pending.count >= flushThreshold { try flush() }
    }

    /// Writes buffered records to the file.
    public func flush() throws {
        guard fd >= 0 else { return }
        try pending.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            if let sink {
                try sink.write(bytes)
                return
            }
            var done = 0
            while done < bytes.count {
                let wrote = systemWrite(fd, base + done, bytes.count - done)
                if wrote < 0 {
                    if errno == EINTR { continue }
                    throw DataError.io(path: path, operation: "write to", message: errnoMessage())
                }
                done += wrote
            }
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Flushes and closes the file.
    ///
    /// Later writes throw; calling it twice is harmless.
    public func close() throws {
        guard fd >= 0 else { return }
        defer {
            _ = systemClose(fd)
            fd = -1
        }
        try flush()
        try sink?.finish()
    }

    private func appendLE(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { pending.append(contentsOf: $0) }
    }
}
