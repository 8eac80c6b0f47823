import CLearner

/// One feature of a `tf.train.Example`: a list of byte strings, floats or 64-bit integers.
public enum Feature: Equatable, Sendable {
    case bytes([[UInt8]])
    case floats([Float])
    case int64s([Int64])

    /// The list kind's name as TensorFlow spells it, for messages.
    public var kindName: String {
        switch self {
        case .bytes: return "bytes"
        case .floats: return "float"
        case .int64s: return "int64"
        }
    }

    /// Number of values in the list.
    public var count: Int {
        switch self {
        case .bytes(let v): return v.count
        case .floats(let v): return v.count
        case .int64s(let v): return v.count
        }
    }
}

/// A `tf.train.Example` as a Swift value: named feature lists.
///
/// Parsing goes through the wire-format scan in CLearner (packed and unpacked repeated fields
/// both accepted); serializing uses a small encoder here, writing keys in sorted order so
/// the same Example always gives the same bytes.
public struct Example: Equatable, Sendable {
    public var features: [String: Feature]

    public init(_ features: [String: Feature] = [:]) {
        self.features = features
    }

    /// Parses a serialized `tf.train.Example`.
    ///
    /// Throws ``DataError/unparsableExample(_:)`` without a location (see ``DataError/located(at:)``).
    public init(serialized: [UInt8]) throws {
        self = try serialized.withUnsafeBytes { try Example(serialized: $0) }
    }

    /// Parses a serialized `tf.train.Example` held in `bytes`.
    public init(serialized bytes: UnsafeRawBufferPointer) throws {
        self.init(handle: try ExampleHandle(parsing: bytes))
    }

    /// Copies every feature out of `handle` (whose bytes must still be alive).
    init(handle: ExampleHandle) {
        let count = handle.entryCount
        var features: [String: Feature] = Dictionary(minimumCapacity: count)
        // Wire order, so a repeated key keeps its last entry (nil for one without a list removes it).
        for i in 0..<count { features[handle.key(at: i)] = handle.feature(at: i) }
        self.features = features
    }

    public subscript(key: String) -> Feature? {
        get { features[key] }
        set { features[key] = newValue }
    }

    /// The Example in protobuf wire format, floats and int64s packed as TensorFlow writes them.
    public func serialized() -> [UInt8] {
        var featuresMessage = ProtoEncoder()
        for key in features.keys.sorted() {
            guard let feature = features[key] else { continue }
            var entry = ProtoEncoder()
            entry.bytesField(1, Array(key.utf8))
            entry.bytesField(2, Self.encode(feature))
            featuresMessage.bytesField(1, entry.bytes)
        }
        var example = ProtoEncoder()
        example.bytesField(1, featuresMessage.bytes)
        return example.bytes
    }

    /// `Feature{oneof kind: bytes_list = 1, float_list = 2, int64_list = 3}`, each list `value = 1`.
    private static func encode(_ feature: Feature) -> [UInt8] {
        var list = ProtoEncoder()
        var message = ProtoEncoder()
        switch feature {
        case .bytes(let values):
            for value in values { list.bytesField(1, value) }
            message.bytesField(1, list.bytes)
        case .floats(let values):
            if !values.isEmpty {
                var packed = ProtoEncoder()
                for value in values { packed.fixed32(value.bitPattern) }
                list.bytesField(1, packed.bytes)
            }
            message.bytesField(2, list.bytes)
        case .int64s(let values):
            if !values.isEmpty {
                var packed = ProtoEncoder()
                for value in values { packed.varint(UInt64(bitPattern: value)) }
                list.bytesField(1, packed.bytes)
            }
            message.bytesField(3, list.bytes)
        }
        return message.bytes
    }
}

/// Just enough of the protobuf wire format to write Examples: varints, fixed32 and
/// length-delimited fields.
struct ProtoEncoder {
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func fixed32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Field `number` with wire type 2 (length-delimited).
    mutating func bytesField(_ number: Int, _ payload: [UInt8]) {
        varint(UInt64(number) << 3 | 2)
        varint(UInt64(payload.count))
        bytes.append(contentsOf: payload)
    }
}

/// Owner of a parsed C `tl_example`, freed on deinit.
///
/// Gives the data loaders typed access to one record's features without building a Swift
/// dictionary of arrays per record. It borrows the bytes it parsed (keys and bytes values point
/// into them): use it only while they are alive, as inside `TFRecordReader.withNextRecord`.
final class ExampleHandle {
    private let raw: OpaquePointer

    init(parsing bytes: UnsafeRawBufferPointer) throws {
        var out: OpaquePointer?
        let status = tl_example_parse(bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, &out)
        guard status == 0, let parsed = out else { throw DataError.unparsableExample(nil) }
        raw = parsed
    }

    deinit { tl_example_free(raw) }

    /// Number of map entries on the wire (a repeated key counts once per entry).
    var entryCount: Int { tl_example_feature_count(raw) }

    /// Key of entry `i`.
    func key(at i: Int) -> String {
        var length = 0
        let start = tl_example_feature_key(raw, i, &length)
        return String(decoding: UnsafeRawBufferPointer(start: start, count: length), as: UTF8.self)
    }

    /// The feature keys in wire order.
    var keys: [String] { (0..<entryCount).map(key(at:)) }

    /// Kind and value count of `key`; nil when absent.
    func find(_ key: String) -> (kind: tl_feature_kind, count: Int)? {
        var count = 0
        let kind = tl_example_find(raw, key, &count)
        return kind == Int32(TL_FEATURE_NONE.rawValue) ? nil : (tl_feature_kind(UInt32(kind)), count)
    }

    /// Copies the float list `key` into `out` (which must hold its count); returns the count copied.
    func copyFloats(_ key: String, into out: UnsafeMutableBufferPointer<Float>) -> Int {
        max(tl_example_copy_floats(raw, key, out.baseAddress, out.count), 0)
    }

    /// Copies the int64 list `key` into `out`; returns the count copied.
    func copyInt64s(_ key: String, into out: UnsafeMutableBufferPointer<Int64>) -> Int {
        max(tl_example_copy_int64s(raw, key, out.baseAddress, out.count), 0)
    }

    /// Bytes value `index` of list `key`, valid while the parsed bytes are.
    func bytes(_ key: String, at index: Int) -> UnsafeRawBufferPointer? {
        var data: UnsafePointer<UInt8>?
        var length = 0
        guard tl_example_bytes(raw, key, index, &data, &length) == 0 else { return nil }
        return UnsafeRawBufferPointer(start: data, count: length)
    }

    /// The whole feature `key` as a Swift value; nil when absent.
    func feature(_ key: String) -> Feature? {
        let i = tl_example_lookup(raw, key)
        return i < 0 ? nil : feature(at: i)
    }

    /// Entry `i`'s feature as a Swift value; nil when it holds no list.
    func feature(at i: Int) -> Feature? {
        var count = 0
        switch tl_feature_kind(UInt32(tl_example_entry(raw, i, &count))) {
        case TL_FEATURE_FLOAT:
            return .floats(
                [Float](unsafeUninitializedCapacity: count) { buf, n in
                    n = max(tl_example_entry_floats(raw, i, buf.baseAddress, count), 0)
                })
        case TL_FEATURE_INT64:
            return .int64s(
                [Int64](unsafeUninitializedCapacity: count) { buf, n in
                    n = max(tl_example_entry_int64s(raw, i, buf.baseAddress, count), 0)
                })
        case TL_FEATURE_BYTES:
            return .bytes(bytesValues(at: i, count: count))
        default:
            return nil
        }
    }

    /// Every bytes value of entry `i`, copied, fetched a chunk of views at a time.
    private func bytesValues(at i: Int, count: Int) -> [[UInt8]] {
        var values: [[UInt8]] = []
        values.reserveCapacity(count)
        withUnsafeTemporaryAllocation(of: tl_bytes_view.self, capacity: min(count, 64)) { views in
            while values.count < count {
                let got = tl_example_entry_bytes(raw, i, values.count, views.baseAddress, views.count)
                guard got > 0 else { break }
                for view in views.prefix(got) {
                    // Through the inlinable initialiser: `[UInt8](buffer)` calls into the runtime's
                    // unspecialised array allocation, which looks up type metadata per value.
                    values.append(
                        [UInt8](unsafeUninitializedCapacity: view.len) { out, n in
                            if view.len > 0 { out.baseAddress!.update(from: view.data, count: view.len) }
                            n = view.len
                        })
                }
            }
        }
        return values
    }
}
