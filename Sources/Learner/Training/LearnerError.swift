/// Mistakes in how `fit` was called or in the data it was given, reported before the step that
/// would have trapped on them.
public enum LearnerError: Error, CustomStringConvertible, Equatable {
    case invalidArgument(String)
    /// The data's samples cannot flow through the model.
    case shapeMismatch(data: String, sampleShape: [Int], error: ShapeError)
    /// A class index outside the model's outputs (or not an integer).
    case labelOutOfRange(label: Float, classes: Int, location: String)
    /// Labels that do not fit the loss and the model's outputs.
    case labelMismatch(String)
    /// A NaN or infinity among the inputs (with ``TrainingOptions/checksInputsAreFinite``).
    case nonFiniteInput(value: Float, location: String)

    public var description: String {
        switch self {
        case .invalidArgument(let message): return message
        case .shapeMismatch(let data, let shape, let error):
            return "the samples of \(data) (shape \(ShapeError.text(shape)), \(shape.reduce(1, *)) values) do not fit the model: \(error)"
        case .labelOutOfRange(let label, let classes, let location):
            return "\(location) has the label \(label.isFinite && label.rounded() == label ? String(Int(label)) : "\(label)"), "
                + "but the model gives \(classes) class scores (labels 0...\(classes - 1)): "
                + "is the last layer as wide as the number of classes?"
        case .labelMismatch(let message): return message
        case .nonFiniteInput(let value, let location): return "\(location) is \(value) among the inputs"
        }
    }
}
