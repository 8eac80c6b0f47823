import Foundation

/// Height and width of the images a model takes.
public struct ImageSize: Sendable, Equatable, CustomStringConvertible {
    public var height: Int
    public var width: Int

    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }

    /// A square size.
    public init(_ side: Int) { self.init(height: side, width: side) }

    public var description: String { "\(height)×\(width)" }
}

/// How evaluation and prediction images are brought to the model's size.
public enum EvaluationResize: Sendable, Equatable {
    /// Scale the image so the output's aspect fits inside it, then keep the centred `fraction`
    /// of that: torchvision's `Resize(⌈S / fraction⌉) + CenterCrop(S)` (ImageNet's 0.875). With
    /// `fraction` 1 an image of the model's aspect is resized whole, any other is centre-cropped
    /// to that aspect, never stretched.
    case centerCrop(fraction: Double)
    /// Resize to the size whatever the aspect (Keras' `image_dataset_from_directory`).
    case stretch
}

/// How ``SupervisedLearner/fit(dataDir:featureKeys:startEpoch:validationDir:epochs:batchSize:dropLastBatch:imageSize:)``
/// (and the CLI, from a config's `data` section) reads shards whose input feature holds encoded
/// images; feature-vector shards ignore it.
public struct ImageDataOptions: Sendable {
    /// The size images are decoded to; nil: the size they are stored at, which every image of the
    /// training set must then share (a scan of the headers checks it).
    public var size: ImageSize?
    /// 1 (grey) or 3 (RGB); nil: the data's, 3 when any training image is in colour.
    public var channels: Int?
    /// The training augmentation for images of a size (crops need it), applied before
    /// ``normalize``; nil: none.
    public var augmentation: (@Sendable (ImageSize) -> (any ImageTransform)?)?
    /// Per-channel normalisation of training and evaluation images alike.
    public var normalize: Normalize?
    /// How evaluation and prediction images reach the size.
    public var evaluationResize = EvaluationResize.centerCrop(fraction: 1)
    /// Decoding threads (Keras' `workers`), batches prepared ahead, records held for shuffling.
    public var workers = 2
    public var maxQueueSize = 10
    public var shuffleBufferSize = 10_000
    /// Count and leave out damaged records instead of stopping at the first.
    public var skipCorrupt = false
    public var jpegDCT = ImageDecoder.DCTMethod.integerAccurate
    /// false: records without a label get NaN (prediction on unlabelled images).
    public var labelsRequired = true
    /// A label that is an image aligned with the input (``ImagePipelineOptions/denseLabel``);
    /// nil: a class mask when the records' label feature holds an encoded image (DeepLab's
    /// `image/segmentation/class/encoded`), one value per sample otherwise. A target image of
    /// 0 channels takes the input's.
    public var denseLabel: DenseLabel?

    public init() {}

    /// The `[channels, height, width]` the images of `files` are decoded to: the options' size and
    /// channels, the rest read from the images (every header when the size is not given, else
    /// the first image's).
    public func sampleShape(files: [String], key: String) throws -> [Int] {
        if let size {
            if let channels { return [channels, size.height, size.width] }
            let first = try StoredImageSize.scan(files: files, key: key, skipCorrupt: skipCorrupt, limit: 1)
            return [first.channels, size.height, size.width]
        }
        let stored = try StoredImageSize.scan(files: files, key: key, skipCorrupt: skipCorrupt)
        return [channels ?? stored.channels, stored.height, stored.width]
    }

    /// The source of `files` for images decoded to `shape` (``sampleShape(files:key:)``):
    /// augmented for training requests, resized as ``evaluationResize`` says for the others.
    public func source(files: [String], keys: FeatureKeys, shape: [Int]) throws -> ImageDataSource {
        precondition(shape.count == 3, "an image shape is [channels, height, width]")
        let size = ImageSize(height: shape[1], width: shape[2])
        var evaluation: [any ImageTransform] = []
        if case .centerCrop(let fraction) = evaluationResize {
            evaluation.append(CenterCrop(height: size.height, width: size.width, fraction: fraction))
        }
        if let normalize { evaluation.append(normalize) }
        var training: [any ImageTransform] = []
        if let augment = augmentation?(size) { training.append(augment) }
        if let normalize { training.append(normalize) }
        var options = ImagePipelineOptions(
            batchSize: 1, height: size.height, width: size.width, channels: shape[0], shuffle: true,
            shuffleBufferSize: shuffleBufferSize, workers: workers, maxQueueSize: maxQueueSize, keys: keys,
            transform: Self.compose(training))
        options.skipCorrupt = skipCorrupt
        options.jpegDCT = jpegDCT
        options.labelsRequired = labelsRequired
        options.denseLabel = denseLabel
        if case .targetImage(0)? = denseLabel { options.denseLabel = .targetImage(channels: shape[0]) }
        // Image files among the files are unlabelled records: the shards alone say what the label is.
        let shards = files.filter { !ImageFiles.isImage($0) }
        if denseLabel == nil, !shards.isEmpty,
            case .encodedImage? = try? RecordContent.probe(files: shards, keys: FeatureKeys(input: keys.label, label: keys.label))
        {
            options.denseLabel = .classMask()
        }
        return try ImageDataSource(files: files, options: options, evaluationTransform: Self.compose(evaluation))
    }

    private static func compose(_ steps: [any ImageTransform]) -> (any ImageTransform)? {
        steps.isEmpty ? nil : (steps.count == 1 ? steps[0] : Compose(steps))
    }
}

/// Keeps the centred part of the image that has the output's aspect, scaled by `fraction`, which
/// the pipeline then resizes to the output size (torchvision's `Resize` + `CenterCrop`).
public struct CenterCrop: WindowTransform {
    public var height: Int
    public var width: Int
    public var fraction: Double

    public init(height: Int, width: Int, fraction: Double = 1) {
        precondition(height > 0 && width > 0 && fraction > 0 && fraction <= 1, "CenterCrop needs a size and 0 < fraction <= 1")
        self.height = height
        self.width = width
        self.fraction = fraction
    }

    public func window(of current: CropWindow, random: inout SampleRandom) -> CropWindow? {
        // The largest centred rectangle of the output's aspect, then its centred fraction.
        let aspect = Double(width) / Double(height)
        var h = Double(current.height), w = Double(current.width)
        if w / h > aspect { w = h * aspect } else { h = w / aspect }
        let ch = max(1, min(current.height, Int((h * fraction).rounded())))
        let cw = max(1, min(current.width, Int((w * fraction).rounded())))
        return current.cropped(top: (current.height - ch) / 2, left: (current.width - cw) / 2, height: ch, width: cw)
    }

    public func apply(_ image: Image, random: inout SampleRandom) -> Image {
        guard let w = window(of: .whole(height: image.height, width: image.width), random: &random) else { return image }
        return image.cropped(top: w.top, left: w.left, height: w.height, width: w.width, fill: 0)
    }
}
