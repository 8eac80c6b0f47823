/// Where in a data set something happened: which shard, which record, where that record starts.
///
/// Carried by every ``DataError`` that concerns a record, so a message always leads back to the
/// bytes at fault (`dd if=FILE bs=1 skip=OFFSET` finds them).
public struct RecordLocation: Sendable, Equatable, CustomStringConvertible {
    /// Path of the shard file, as given to the reader.
    public var file: String
    /// Zero-based index of the record within the file.
    public var record: Int
    /// Byte offset of the record's first (length) byte within the file, or within the
    /// uncompressed stream when ``compressed`` (a compressed file has no byte to point at).
    public var offset: Int
    /// Whether the file is GZIP/ZLIB compressed, so ``offset`` counts uncompressed bytes.
    public var compressed: Bool

    public init(file: String, record: Int, offset: Int, compressed: Bool = false) {
        self.file = file
        self.record = record
        self.offset = offset
        self.compressed = compressed
    }

    public var description: String {
        compressed
            ? "record \(record) at byte offset \(offset) of the uncompressed stream of \(file)"
            : "record \(record) at byte offset \(offset) of \(file)"
    }
}

/// Every failure of the data layer, as a value that names the file, record, byte offset and
/// feature key involved, so a bad shard can be found without a debugger.
public enum DataError: Error, Equatable, CustomStringConvertible {
    /// The data directory does not exist (or is not a directory).
    case missingDirectory(path: String)
    /// The data directory holds no shard files.
    case emptyDirectory(path: String)
    /// The operating system refused to open, read or write a file.
    case io(path: String, operation: String, message: String)
    /// The file ends inside a record: `needed` bytes were required from the record's start, only
    /// `available` remained.
    case truncatedRecord(RecordLocation, needed: Int, available: Int)
    /// The masked CRC32C of a record's 8-byte length field does not match.
    case corruptLength(RecordLocation)
    /// The masked CRC32C of a record's payload does not match.
    case corruptData(RecordLocation)
    /// The file starts with a GZIP/ZLIB header but was opened with `compression: .none`.
    case compressedFile(path: String)
    /// zlib could not inflate a compressed file (corrupt or cut short) while reading the record at
    /// the location (an offset in the uncompressed stream).
    case decompression(RecordLocation, message: String)
    /// A bytes feature is not a decodable JPEG or PNG image.
    case undecodableImage(key: String, message: String, at: RecordLocation?)
    /// A record's payload is not a valid serialized `tf.train.Example`.
    case unparsableExample(RecordLocation?)
    /// A required feature is absent; `present` lists the keys the record does have.
    case missingFeature(key: String, present: [String], at: RecordLocation?)
    /// A feature holds another list kind than the one asked for.
    case wrongFeatureKind(key: String, expected: String, found: String, at: RecordLocation?)
    /// A feature holds another number of values than the one asked for.
    case wrongLength(key: String, expected: Int, found: Int, at: RecordLocation?)
    /// A shard of a training data set holds no records at all (a failed or unfinished write).
    case emptyFile(path: String)

    /// The same error, placed at `location` when it carries none yet.
    ///
    /// Parsers that see a single Example throw unplaced errors; the loop that read the record
    /// places them.
    public func located(at location: RecordLocation) -> DataError {
        switch self {
        case .unparsableExample(nil): return .unparsableExample(location)
        case .undecodableImage(let key, let message, nil):
            return .undecodableImage(key: key, message: message, at: location)
        case .missingFeature(let key, let present, nil):
            return .missingFeature(key: key, present: present, at: location)
        case .wrongFeatureKind(let key, let expected, let found, nil):
            return .wrongFeatureKind(key: key, expected: expected, found: found, at: location)
        case .wrongLength(let key, let expected, let found, nil):
            return .wrongLength(key: key, expected: expected, found: found, at: location)
        default: return self
        }
    }

    /// The record the error concerns, when there is one.
    public var location: RecordLocation? {
        switch self {
        case .truncatedRecord(let at, _, _), .corruptLength(let at), .corruptData(let at): return at
        case .decompression(let at, _): return at
        case .unparsableExample(let at), .undecodableImage(_, _, let at): return at
        case .missingFeature(_, _, let at), .wrongFeatureKind(_, _, _, let at), .wrongLength(_, _, _, let at): return at
        default: return nil
        }
    }

    public var description: String {
        func place(_ at: RecordLocation?) -> String { at.map { " in \($0)" } ?? "" }
        switch self {
        case .missingDirectory(let path):
            return "data directory '\(path)' does not exist or is not a directory"
        case .emptyDirectory(let path):
            return "data directory '\(path)' contains no shard files"
        case .io(let path, let operation, let message):
            return "cannot \(operation) '\(path)': \(message)"
        case .truncatedRecord(let at, let needed, let available):
            return "truncated TFRecord: \(at) needs \(needed) bytes but the file ends after \(available)"
        case .corruptLength(let at):
            // A bad first header is almost always a file that is no TFRecord at all.
            let hint = at.record == 0 && at.offset == 0 ? " (is it a TFRecord file?)" : ""
            return "corrupt TFRecord: length CRC mismatch at \(at)\(hint)"
        case .corruptData(let at):
            return "corrupt TFRecord: data CRC mismatch at \(at)"
        case .compressedFile(let path):
            return
                "'\(path)' looks GZIP/ZLIB-compressed but was opened as uncompressed; "
                + "pass compression: .gzip/.zlib or leave it to detection"
        case .decompression(let at, let message):
            return "cannot decompress \(at): \(message)"
        case .undecodableImage(let key, let message, let at):
            return "feature '\(key)' is not a decodable JPEG/PNG image\(place(at)): \(message)"
        case .unparsableExample(let at):
            return "record is not a valid tf.train.Example\(place(at))"
        case .missingFeature(let key, let present, let at):
            let keys = present.isEmpty ? "none" : present.sorted().joined(separator: ", ")
            return "feature '\(key)' is missing\(place(at)); keys present: \(keys)"
        case .wrongFeatureKind(let key, let expected, let found, let at):
            return "feature '\(key)' holds a \(found) list, expected \(expected)\(place(at))"
        case .wrongLength(let key, let expected, let found, let at):
            return "feature '\(key)' has \(found) values, expected \(expected)\(place(at))"
        case .emptyFile(let path):
            return "shard '\(path)' holds no records (an empty or unfinished file)"
        }
    }

    /// Whether the error is damage to one record or shard (a bad CRC, a cut-short or empty file,
    /// an Example that does not parse or lacks its features, an image that does not decode),
    /// which ``ImagePipelineOptions/skipCorrupt`` may skip; false for I/O and configuration errors.
    public var isCorruptRecord: Bool {
        switch self {
        case .truncatedRecord, .corruptLength, .corruptData, .decompression, .emptyFile, .undecodableImage,
            .unparsableExample, .missingFeature, .wrongFeatureKind, .wrongLength:
            return true
        case .missingDirectory, .emptyDirectory, .io, .compressedFile:
            return false
        }
    }

    /// A short name of what went wrong, for counting skips by reason.
    public var reason: String {
        switch self {
        case .missingDirectory: return "missing directory"
        case .emptyDirectory: return "empty directory"
        case .io: return "I/O error"
        case .truncatedRecord: return "truncated record"
        case .corruptLength: return "corrupt length"
        case .corruptData: return "corrupt data"
        case .compressedFile: return "compressed file read as uncompressed"
        case .decompression: return "decompression error"
        case .undecodableImage(let key, _, _): return "undecodable image '\(key)'"
        case .unparsableExample: return "unparsable Example"
        case .missingFeature(let key, _, _): return "missing feature '\(key)'"
        case .wrongFeatureKind(let key, _, _, _): return "wrong kind of feature '\(key)'"
        case .wrongLength(let key, _, _, _): return "wrong length of feature '\(key)'"
        case .emptyFile: return "empty file"
        }
    }

    /// The file the error concerns, when there is one.
    public var file: String? {
        switch self {
        case .io(let path, _, _), .compressedFile(let path), .emptyFile(let path): return path
        case .missingDirectory(let path), .emptyDirectory(let path): return path
        default: return location?.file
        }
    }
}
