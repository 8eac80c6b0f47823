/// What one epoch measured.
public struct EpochLog: Sendable, Equatable {
    /// 1-based epoch number (as tefla counts).
    public var epoch: Int
    public var trainLoss: Float
    /// Arg-max accuracy on the training batches (classification only).
    public var trainAccuracy: Float?
    public var validationLoss: Float?
    public var validationAccuracy: Float?
    /// Wall-clock seconds of the epoch, validation included.
    public var seconds: Double
    public var trainSamplesPerSecond: Double
}

/// Every epoch's measurements, returned by `fit` (Keras' `History`).
public struct History: Sendable {
    public var epochs: [EpochLog] = []

    public var lastValidationAccuracy: Float? { epochs.last?.validationAccuracy }
    public var bestValidationAccuracy: Float? { epochs.compactMap(\.validationAccuracy).max() }
}

/// Mistakes in how `fit` was called, reported before any work starts.
public enum LearnerError: Error, CustomStringConvertible, Equatable {
    case invalidArgument(String)
    case featureSizeMismatch(expected: Int, got: Int, source: String)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        case .featureSizeMismatch(let expected, let got, let source):
            return "\(source): samples have \(got) input values, but the model's first layer takes \(expected)"
        }
    }
}
