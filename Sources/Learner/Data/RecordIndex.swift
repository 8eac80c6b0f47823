import CLearner
import Foundation

/// Where each record of an uncompressed TFRecord shard starts and how many bytes its frame
/// takes (length, its CRC, the data, the data's CRC): counts without a scan, random access.
///
/// Stored beside the shard as `SHARD.idx` in the text format of NVIDIA DALI's `tfrecord2idx`
/// and the `tfrecord` Python package: one `offset size` line per record, in decimal, each line
/// ending in a newline. ``Shards`` leaves `.idx` files out of a directory's shards.
///
/// GZIP and ZLIB shards have no byte offset to point at (a record starts inside the
/// compressed stream), so they get no index: ``build(shard:)`` says so, and their readers scan.
public struct RecordIndex: Sendable, Equatable {
    /// One record's frame.
    public struct Entry: Sendable, Equatable {
        public var offset: Int
        public var size: Int

        public init(offset: Int, size: Int) {
            self.offset = offset
            self.size = size
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Records in the shard.
    public var count: Int { entries.count }

    /// The index file of `shard`: its path with `.idx` appended.
    public static func path(for shard: String) -> String { shard + ".idx" }

    /// Walks the shard's framing (headers only: the payloads are seeked over), checking each
    /// length's CRC. A compressed shard, a damaged header or a file that ends inside a record is
    /// a ``DataError`` naming the file and record.
    public static func build(shard path: String) throws -> RecordIndex {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DataError.io(path: path, operation: "open", message: String(cString: strerror(errno)))
        }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        var entries: [Entry] = []
        var offset = 0
        while offset < size {
            let location = RecordLocation(file: path, record: entries.count, offset: offset)
            try handle.seek(toOffset: UInt64(offset))
            let header = [UInt8](try handle.read(upToCount: tfRecordHeaderSize) ?? Data())
            if offset == 0, TFRecordCompression.detect(head: header, path: path) != TFRecordCompression.none {
                throw DataError.io(
                    path: path, operation: "index",
                    message:
                        "the shard is GZIP/ZLIB-compressed, so its records have no byte offsets to index; "
                        + "it is read by a scan (write it uncompressed to index it)")
            }
            guard header.count == tfRecordHeaderSize else {
                throw DataError.truncatedRecord(location, needed: tfRecordHeaderSize, available: header.count)
            }
            let length = header.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) & 0x7FFF_FFFF_FFFF) }
            let stored = header.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
            guard header.withUnsafeBytes({ tl_masked_crc32c($0.baseAddress, 8) }) == stored else {
                throw DataError.corruptLength(location)
            }
            let frame = tfRecordHeaderSize + length + tfRecordFooterSize
            guard frame <= size - offset else {
                throw DataError.truncatedRecord(location, needed: frame, available: size - offset)
            }
            entries.append(Entry(offset: offset, size: frame))
            offset += frame
        }
        return RecordIndex(entries: entries)
    }

    /// The index as DALI's `tfrecord2idx` writes it.
    public var text: String {
        var out = ""
        out.reserveCapacity(entries.count * 16)
        for entry in entries { out += "\(entry.offset) \(entry.size)\n" }
        return out
    }

    /// Writes `SHARD.idx` beside the shard (atomically: a reader never sees half an index).
    public func write(beside shard: String) throws {
        try AtomicFile.write(Data(text.utf8), to: RecordIndex.path(for: shard))
    }

    /// The index stored beside `shard`, nil when it has none. An index that does not describe
    /// the shard as it is now (unparsable, not contiguous from 0, or not ending where the file
    /// ends: the shard was rewritten) is an error naming both files, never trusted.
    public static func stored(for shard: String) throws -> RecordIndex? {
        let indexPath = path(for: shard)
        guard FileManager.default.fileExists(atPath: indexPath) else { return nil }
        let text: String
        do {
            text = try String(contentsOfFile: indexPath, encoding: .utf8)
        } catch {
            throw DataError.io(path: indexPath, operation: "read", message: "\(error)")
        }
        let shardSize = (try? FileManager.default.attributesOfItem(atPath: shard)[.size] as? Int) ?? -1
        func stale(_ why: String) -> DataError {
            .io(
                path: indexPath, operation: "use the index",
                message: "\(why), so it does not describe '\(shard)' as it is now; rebuild it with `tefla-data index`")
        }
        var entries: [Entry] = []
        var expected = 0
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let offset = Int(fields[0]), let size = Int(fields[1]), size >= 16 else {
                throw stale("line \(n + 1) is not 'offset size'")
            }
            guard offset == expected else { throw stale("line \(n + 1) starts at byte \(offset), not at \(expected)") }
            entries.append(Entry(offset: offset, size: size))
            expected = offset + size
        }
        guard expected == shardSize else { throw stale("its records end at byte \(expected) but the shard has \(shardSize) bytes") }
        return RecordIndex(entries: entries)
    }
}
