/// Parsed values of one feature: numbers as `Float` or raw byte strings.
///
/// int64 values become the nearest `Float` (exact up to 2^24), which suits labels and pixel
/// values, the features a training pipeline reads.
public enum FeatureValue: Equatable, Sendable {
    case numeric([Float])
    case bytes([[UInt8]])
}

/// A fixed-length feature to read from every Example, with the semantics of
/// `tf.io.FixedLenFeature`: the list must hold exactly ``length`` values of ``kind``; a missing key
/// takes ``defaultValue`` when one is given and is an error otherwise.
public struct FeatureSpec: Equatable, Sendable {
    public enum Kind: String, Equatable, Sendable {
        case int64, float, bytes
    }

    /// The feature key in the Example.
    public var name: String
    public var kind: Kind
    /// Logical shape of the value; `[]` is a scalar.
    ///
    /// Only its element count is checked.
    public var shape: [Int]
    /// Used when the Example lacks the key.
    ///
    /// A single value is repeated to fill ``length`` (a convenience over tf.io, which wants the
    /// full shape); otherwise it must hold ``length`` values.
    public var defaultValue: FeatureValue?

    public init(name: String, kind: Kind, shape: [Int] = [], defaultValue: FeatureValue? = nil) {
        self.name = name
        self.kind = kind
        self.shape = shape
        self.defaultValue = defaultValue
    }

    /// Number of values the feature must hold: the product of ``shape``.
    public var length: Int { shape.reduce(1, *) }

    /// This feature's value in `example`.
    ///
    /// Throws ``DataError/missingFeature(key:present:at:)``,
    /// ``DataError/wrongFeatureKind(key:expected:found:at:)`` or
    /// ``DataError/wrongLength(key:expected:found:at:)``, placed at `location` when given.
    public func parse(example: Example, at location: RecordLocation? = nil) throws -> FeatureValue {
        do {
            guard let feature = example[name] else { return try fallback(present: Array(example.features.keys)) }
            let value: FeatureValue
            switch (kind, feature) {
            case (.float, .floats(let v)): value = .numeric(v)
            case (.int64, .int64s(let v)): value = .numeric(v.map { Float($0) })
            case (.bytes, .bytes(let v)): value = .bytes(v)
            default:
                throw DataError.wrongFeatureKind(key: name, expected: kind.rawValue, found: feature.kindName, at: nil)
            }
            guard feature.count == length else {
                throw DataError.wrongLength(key: name, expected: length, found: feature.count, at: nil)
            }
            return value
        } catch let error as DataError {
            throw location.map { error.located(at: $0) } ?? error
        }
    }

    /// Every spec's value in `example`, keyed by feature name.
    public static func parse(example: Example, specs: [FeatureSpec], at location: RecordLocation? = nil) throws
        -> [String: FeatureValue]
    {
        var values: [String: FeatureValue] = [:]
        for spec in specs { values[spec.name] = try spec.parse(example: example, at: location) }
        return values
    }

    /// The default value stretched to ``length``, or the missing-key error when there is none.
    private func fallback(present: [String]) throws -> FeatureValue {
        guard let defaultValue else { throw DataError.missingFeature(key: name, present: present, at: nil) }
        switch (kind, defaultValue) {
        case (.bytes, .numeric):
            throw DataError.wrongFeatureKind(key: name, expected: "bytes", found: "numeric default", at: nil)
        case (.int64, .bytes), (.float, .bytes):
            throw DataError.wrongFeatureKind(key: name, expected: kind.rawValue, found: "bytes default", at: nil)
        default: break
        }
        switch defaultValue {
        case .numeric(let v) where v.count == 1 && length != 1: return .numeric(Array(repeating: v[0], count: length))
        case .bytes(let v) where v.count == 1 && length != 1: return .bytes(Array(repeating: v[0], count: length))
        case .numeric(let v) where v.count == length: return defaultValue
        case .bytes(let v) where v.count == length: return defaultValue
        case .numeric(let v): throw DataError.wrongLength(key: name, expected: length, found: v.count, at: nil)
        case .bytes(let v): throw DataError.wrongLength(key: name, expected: length, found: v.count, at: nil)
        }
    }
}
