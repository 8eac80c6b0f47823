import CLearner
import Foundation

/// Random access to the records of uncompressed TFRecord shards (and of plain JPEG/PNG files,
/// one record each): what lets a data-parallel replica read only its share of every batch,
/// and a data set larger than memory be read in any order from disk.
///
/// Each shard's ``RecordIndex`` is the one stored beside it, or one built by walking its record
/// headers (payloads are seeked over). Each read opens its shard, `pread`s the record and closes
/// it again: any number of threads may read at once, and a data set of thousands of shards
/// holds no descriptors open (an open costs microseconds; a decode, milliseconds). Every read
/// checks both of the record's CRCs.
public final class RecordStore: Sendable {
    /// A record's place: file number (in ``files``) and record number within it.
    public struct Reference: Sendable, Equatable {
        public var file: Int
        public var record: Int
    }

    public let files: [String]
    /// Each file's record frames; nil for an image file (one record: the whole file).
    private let indexes: [RecordIndex?]
    /// Global number of each file's first record.
    private let firsts: [Int]
    /// The image feature an image file's record carries its bytes under.
    private let imageKey: String

    /// Records in all files.
    public let count: Int

    /// Opens `files` for random access; nil when one of them cannot be: a GZIP/ZLIB shard (a
    /// record has no byte offset there) or one whose framing is damaged (its readers then scan
    /// it, and name or skip the damage where they reach it). A stale stored index is an error
    /// naming it (``RecordIndex/stored(for:)``).
    public static func open(files: [String], compression: TFRecordCompression? = nil, imageKey: String = "image/encoded") throws
        -> RecordStore?
    {
        if let compression, compression != .none { return nil }
        var indexes: [RecordIndex?] = []
        for file in files {
            if ImageFiles.isImage(file) {
                indexes.append(nil)
            } else if let stored = try RecordIndex.stored(for: file) {
                indexes.append(stored)
            } else {
                guard let built = try? RecordIndex.build(shard: file) else { return nil }
                indexes.append(built)
            }
        }
        return RecordStore(files: files, indexes: indexes, imageKey: imageKey)
    }

    private init(files: [String], indexes: [RecordIndex?], imageKey: String) {
        var firsts: [Int] = [], total = 0
        for index in indexes {
            firsts.append(total)
            total += index?.count ?? 1
        }
        self.files = files
        self.indexes = indexes
        self.firsts = firsts
        self.count = total
        self.imageKey = imageKey
    }

    /// Records in file `file`.
    public func recordCount(ofFile file: Int) -> Int { indexes[file]?.count ?? 1 }

    /// The reference of global record `n` (files in order, records in file order).
    public func reference(_ n: Int) -> Reference {
        precondition(n >= 0 && n < count, "record \(n) of \(count)")
        var lo = 0, hi = firsts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if firsts[mid] <= n { lo = mid } else { hi = mid - 1 }
        }
        // Empty files share their first number with the next file: take the last file starting at or before n that holds n.
        while recordCount(ofFile: lo) == 0 || n - firsts[lo] >= recordCount(ofFile: lo) { lo += 1 }
        return Reference(file: lo, record: n - firsts[lo])
    }

    /// Reads one record and calls `body` with its payload (valid only during the call) and
    /// location. A bad length or data CRC, or a file shorter than its index says, is a
    /// ``DataError`` naming the file, record and byte offset.
    public func withRecord<R>(_ ref: Reference, _ body: (UnsafeRawBufferPointer, RecordLocation) throws -> R) throws -> R {
        let file = files[ref.file]
        guard let index = indexes[ref.file] else {
            let record = try ImageFiles.record(file, key: imageKey)
            return try record.bytes.withUnsafeBytes { try body($0, record.location) }
        }
        let entry = index.entries[ref.record]
        let location = RecordLocation(file: file, record: ref.record, offset: entry.offset)
        let fd = Glibc.open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw DataError.io(path: file, operation: "open", message: String(cString: strerror(errno))) }
        defer { close(fd) }
        let frame = UnsafeMutableRawBufferPointer.allocate(byteCount: entry.size, alignment: 8)
        defer { frame.deallocate() }
        var done = 0
        while done < entry.size {
            let n = pread(fd, frame.baseAddress! + done, entry.size - done, off_t(entry.offset + done))
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw DataError.io(path: file, operation: "read", message: String(cString: strerror(errno))) }
            if n == 0 { throw DataError.truncatedRecord(location, needed: entry.size, available: done) }
            done += n
        }
        let header = UnsafeRawPointer(frame.baseAddress!)
        let length = Int(UInt64(littleEndian: header.loadUnaligned(as: UInt64.self)) & 0x7FFF_FFFF_FFFF)
        let lengthCRC = UInt32(littleEndian: header.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard tl_masked_crc32c(header, 8) == lengthCRC, length == entry.size - tfRecordHeaderSize - tfRecordFooterSize else {
            throw DataError.corruptLength(location)
        }
        let payload = header + tfRecordHeaderSize
        let dataCRC = UInt32(littleEndian: payload.loadUnaligned(fromByteOffset: length, as: UInt32.self))
        guard tl_masked_crc32c(payload, length) == dataCRC else { throw DataError.corruptData(location) }
        return try body(UnsafeRawBufferPointer(start: payload, count: length), location)
    }
}
