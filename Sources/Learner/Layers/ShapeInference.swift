/// Shape inference: every layer states the per-sample output shape it gives for a per-sample
/// input shape (the batch axis left out), or throws a ``ShapeError`` naming itself. The learner
/// runs it on the data's first batch before training, so a model that does not fit its data is
/// a thrown error naming the layer, never a trap inside an op.

/// A shape that cannot flow through a layer.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    /// The layer's dotted path in the model (`3`, `layer1.0.conv1`), empty for the model itself.
    public var path: String
    /// The layer, as its type and sizes describe it (`Dense(64→10)`).
    public var layer: String
    public var message: String

    public init(path: String = "", layer: String, message: String) {
        self.path = path
        self.layer = layer
        self.message = message
    }

    public var description: String {
        (path.isEmpty ? "layer \(layer)" : "layer '\(path)' (\(layer))") + ": " + message
    }

    /// `shape` written as `[1, 28, 28]`.
    public static func text(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
}

extension Module {
    /// `child`'s output shape for `shape`, its errors located under `name` (the child's name
    /// in ``children``): what a container's ``outputShape(forInput:)`` calls for each child.
    public func outputShape(of child: Module, named name: String, forInput shape: [Int]) throws -> [Int] {
        do {
            return try child.outputShape(forInput: shape)
        } catch var error as ShapeError {
            error.path = error.path.isEmpty ? name : name + "." + error.path
            throw error
        }
    }

    /// A ``ShapeError`` for this layer (its path is added by the containers above it).
    public func shapeError(_ message: String, layer: String? = nil) -> ShapeError {
        ShapeError(layer: layer ?? String(describing: type(of: self)), message: message)
    }

    /// Throws unless `shape` is a [channels, height, width] image (with `channels` when given).
    func requireImage(_ shape: [Int], channels: Int? = nil, layer: String) throws {
        guard shape.count == 3, shape.allSatisfy({ $0 > 0 }) else {
            throw shapeError(
                "takes [channels, height, width] samples, gets \(ShapeError.text(shape))"
                    + (shape.count == 1 ? " (set data.input_shape, or reshape the features into images)" : ""),
                layer: layer)
        }
        if let channels, shape[0] != channels {
            throw shapeError("takes \(channels) channels, gets \(shape[0]) (sample shape \(ShapeError.text(shape)))", layer: layer)
        }
    }

    /// The [channels, outHeight, outWidth] a sliding window gives over an image sample, or a
    /// ``ShapeError`` when the window does not fit.
    func windowOutput(
        _ shape: [Int], outputChannels: Int, kernel: Size2D, stride: Size2D, padding: Padding2D, dilation: Size2D = 1,
        layer: String
    ) throws -> [Int] {
        guard
            let window = Window2D(
                channels: shape[0], height: shape[1], width: shape[2], kernel: kernel, stride: stride, padding: padding,
                dilation: dilation)
        else {
            throw shapeError(
                "a \(kernel.height)×\(kernel.width) window (stride \(stride), padding \(padding), dilation \(dilation)) "
                    + "does not fit a \(shape[1])×\(shape[2]) input", layer: layer)
        }
        return [outputChannels, window.outHeight, window.outWidth]
    }
}
