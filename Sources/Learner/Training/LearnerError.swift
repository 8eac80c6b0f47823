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
