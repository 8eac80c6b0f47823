import CLearner
import Foundation

/// What a data set's records hold under the input key, read from the records themselves, so one
/// ``SupervisedLearner/fit(dataDir:featureKeys:startEpoch:validationDir:epochs:batchSize:dropLastBatch:imageSize:)``
/// trains on feature vectors and on encoded images alike.
public enum RecordContent: Sendable, Equatable {
    /// float or int64 values, or the bytes of a single raw bytes value: `count` per record
    /// (the first record's).
    case featureVector(count: Int)
    /// One JPEG or PNG per record, recognised from its bytes.
    case encodedImage(ImageDecoder.Format)

    /// The content of the first record of the first shard that has one.
    ///
    /// An `image/format` feature, when the records carry one (TensorFlow's image data sets and
    /// DeepLab's do), must name JPEG or PNG; the bytes decide between the two, as
    /// `tf.io.decode_image` does. Other bytes are a vector of byte values, as
    /// ``InMemoryDataset`` reads them.
    public static func probe(files: [String], keys: FeatureKeys, compression: TFRecordCompression? = nil) throws
        -> RecordContent
    {
        for file in files {
            if ImageFiles.isImage(file) {
                let bytes = try ImageFiles.contents(file)
                guard let format = ImageDecoder.format(of: bytes) else {
                    throw DataError.undecodableImage(
                        key: keys.input, message: "the file is neither JPEG nor PNG (unknown magic bytes)",
                        at: RecordLocation(file: file, record: 0, offset: 0))
                }
                return .encodedImage(format)
            }
            let reader = try TFRecordReader(path: file, compression: compression)
            let found = try reader.withNextRecord { bytes, location in
                try content(of: bytes, key: keys.input).mapError { $0.located(at: location) }.get()
            }
            if let found { return found }
        }
        throw DataError.emptyFile(path: files.first ?? "")
    }

    private static func content(of record: UnsafeRawBufferPointer, key: String) -> Result<RecordContent, DataError> {
        guard let example = try? ExampleHandle(parsing: record) else { return .failure(.unparsableExample(nil)) }
        guard let (kind, count) = example.find(key) else {
            return .failure(.missingFeature(key: key, present: example.keys, at: nil))
        }
        guard kind == TL_FEATURE_BYTES else { return .success(.featureVector(count: count)) }
        guard count == 1, let blob = example.bytes(key, at: 0) else {
            return .failure(.wrongLength(key: key, expected: 1, found: count, at: nil))
        }
        let format = ImageDecoder.format(of: blob)
        if let named = example.bytes("image/format", at: 0) {
            let name = String(decoding: named, as: UTF8.self).lowercased()
            guard ["jpeg", "jpg", "png"].contains(name) else {
                return .failure(
                    .undecodableImage(key: key, message: "image/format is '\(name)'; JPEG and PNG images decode", at: nil))
            }
            guard format != nil else {
                return .failure(
                    .undecodableImage(
                        key: key, message: "image/format says \(name), but the \(blob.count) bytes are neither JPEG nor PNG",
                        at: nil))
            }
        }
        // Bytes that are no image are a vector of byte values (uint8 pixels stored raw).
        guard let format else { return .success(.featureVector(count: blob.count)) }
        return .success(.encodedImage(format))
    }
}

/// The size the images of a data set are stored at, when all share it.
public struct StoredImageSize: Sendable, Equatable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    /// 3 when any image is in colour, else 1 (grey images are converted to RGB in a colour set).
    public var channels: Int
    /// Images read.
    public var count: Int

    public init(height: Int, width: Int, channels: Int, count: Int) {
        self.height = height
        self.width = width
        self.channels = channels
        self.count = count
    }

    public var description: String { "\(height)×\(width)×\(channels)" }

    /// Reads the header of every image (no pixel is decoded): the size they share, or an error
    /// naming two records whose sizes differ. `skipCorrupt` leaves undecodable headers and
    /// damaged records to the pipeline that skips them; `limit` stops after that many images.
    public static func scan(
        files: [String], key: String, compression: TFRecordCompression? = nil, skipCorrupt: Bool = false,
        limit: Int = .max
    ) throws -> StoredImageSize {
        var first: (height: Int, width: Int, location: RecordLocation)?
        var colour = false
        var count = 0
        func note(_ bytes: UnsafeRawBufferPointer, _ location: RecordLocation) throws {
            let example = try ExampleHandle(parsing: bytes)
            guard let blob = example.bytes(key, at: 0) else {
                throw DataError.missingFeature(key: key, present: example.keys, at: nil)
            }
            let info = try ImageDecoder.info(blob, key: key)
            count += 1
            colour = colour || info.channels == 3
            guard let known = first else {
                first = (info.height, info.width, location)
                return
            }
            guard known.height == info.height && known.width == info.width else {
                throw LearnerError.invalidArgument(
                    "the images differ in size and no image size is given: \(known.location) is "
                        + "\(known.height)×\(known.width), \(location) is \(info.height)×\(info.width); "
                        + "give the size to decode them to (imageSize, or data.image_size in a config)")
            }
        }
        for file in files where count < limit {
            if ImageFiles.isImage(file) {
                let location = RecordLocation(file: file, record: 0, offset: 0)
                do {
                    let record = try ImageFiles.record(file, key: key)
                    try record.bytes.withUnsafeBytes { try note($0, location) }
                } catch let error as DataError {
                    guard skipCorrupt, error.isCorruptRecord else { throw error.located(at: location) }
                }
                continue
            }
            let reader = try TFRecordReader(path: file, compression: compression)
            while count < limit {
                do {
                    let more: Void? = try reader.withNextRecord { bytes, location in
                        do {
                            try note(bytes, location)
                        } catch let error as DataError {
                            throw error.located(at: location)
                        }
                    }
                    if more == nil { break }
                } catch let error as DataError {
                    guard skipCorrupt, error.isCorruptRecord else { throw error }
                    if case .corruptLength = error { break }  // the framing is lost: the rest of the file too
                    if case .truncatedRecord = error { break }
                    continue
                }
            }
        }
        guard let found = first else { throw DataError.emptyFile(path: files.first ?? "") }
        return StoredImageSize(height: found.height, width: found.width, channels: colour ? 3 : 1, count: count)

    }
}
