import Foundation
import Learner
import Yams

/// `data:` keys beyond the directories: encoded images and their augmentation, the pipeline's
/// threads and queue, class balancing and weights, iterations per epoch.
struct DataSpec: Equatable {
    /// The size encoded images (JPEG/PNG) are decoded to; nil: the size they are stored at.
    var imageHeight: Int?
    var imageWidth: Int?
    /// nil: the images' own (3 when any is in colour).
    var channels: Int?
    /// How evaluation and prediction images reach the size.
    var evaluationResize: EvaluationResize?
    var augmentation = AugmentationSpec()
    var normalizeMean: [Double]?
    var normalizeStd: [Double]?
    var workers = 2
    var maxQueueSize = 10
    var shuffleBufferSize = 10_000
    /// tefla's `data_balancing`, with `init_probs` (nil: the data's own class frequencies).
    var balancing = false
    var initProbs: [Double]?
    /// Keras' `class_weight`: one weight per class, or computed ("balanced").
    var classWeights: [Double]?
    var balancedClassWeights = false
    /// tefla's `n_iters_per_epoch`.
    var iterationsPerEpoch: Int?
    /// Skip (and count) corrupt records instead of stopping at the first.
    var skipCorrupt = false
    /// `label_image`: the label feature is an encoded image aligned with the input: `mask`
    /// (class indices) or `image` (a target image of the input's channels); nil: detected.
    var labelImage: String?
    /// Feature vectors larger than this in memory are read from disk every epoch.
    var memoryBudget = 1 << 30

    /// Keys that only encoded images use, found in the config (with their line).
    var imageKeys: [String: ConfigPlace] = [:]
    /// Whether the config speaks of encoded images (tefla's image keys then become the default
    /// features_keys); records of images are recognised whatever it says.
    var declaresImages: Bool { !imageKeys.isEmpty }

    static let imageOnlyKeys = ["image_size", "channels", "augmentation", "normalize", "evaluation_resize", "label_image"]
    static let keys =
        imageOnlyKeys + [
            "workers", "max_queue_size", "shuffle_buffer_size", "balancing", "class_weights", "n_iters_per_epoch", "skip_corrupt",
            "memory_budget_mb",
        ]

    static func parse(_ data: Section, reader: ConfigReader) -> DataSpec {
        var spec = DataSpec()
        if let size = data.node("image_size") {
            if let side = size.int, side >= 1 {
                (spec.imageHeight, spec.imageWidth) = (side, side)
            } else if let dims = size.sequence?.compactMap({ $0.int }), dims.count == 2, dims.allSatisfy({ $0 >= 1 }) {
                (spec.imageHeight, spec.imageWidth) = (dims[0], dims[1])
            } else {
                reader.report(size, "data.image_size", "expected a size >= 1 or [height, width], found \(ConfigReader.kind(size))")
            }
        }
        for key in imageOnlyKeys { if let node = data.values[key]?.key { spec.imageKeys[key] = ConfigPlace(node) } }
        spec.channels = data.int("channels", minimum: 1)
        if let channels = spec.channels, channels != 1 && channels != 3 {
            reader.report(data.node("channels"), "data.channels", "must be 1 (grey) or 3 (RGB), got \(channels)")
        }
        if let resize = data.node("evaluation_resize") {
            if resize.string == "stretch" {
                spec.evaluationResize = .stretch
            } else if resize.string == "center_crop" {
                spec.evaluationResize = .centerCrop(fraction: 1)
            } else if let crop = data.section("evaluation_resize", known: ["center_crop"]),
                let fraction = crop.float("center_crop", required: true, minimum: 0, exclusiveMinimum: true)
            {
                if fraction > 1 {
                    reader.report(crop.node("center_crop"), "data.evaluation_resize.center_crop", "must be <= 1, got \(fraction)")
                }
                spec.evaluationResize = .centerCrop(fraction: min(fraction, 1))
            } else if resize.string != nil || resize.sequence != nil {
                reader.report(
                    resize, "data.evaluation_resize",
                    "expected center_crop, stretch or {center_crop: FRACTION}, found \(ConfigReader.kind(resize))")
            }
        }
        if let a = data.section("augmentation", known: AugmentationSpec.keys) { spec.augmentation = AugmentationSpec.parse(a) }
        if let n = data.section("normalize", known: ["mean", "std"]) {
            spec.normalizeMean = numbers(n, "mean", reader: reader)
            spec.normalizeStd = numbers(n, "std", reader: reader)
            if spec.normalizeMean == nil || spec.normalizeStd == nil {
                reader.report(n.node, "data.normalize", "needs mean and std, one value per channel")
            } else if spec.normalizeMean?.count != spec.normalizeStd?.count || ![1, 3].contains(spec.normalizeMean?.count ?? 0) {
                reader.report(n.node, "data.normalize", "mean and std need one value per channel each (1 or 3)")
            } else if let channels = spec.channels, spec.normalizeMean?.count != channels {
                reader.report(n.node, "data.normalize", "mean and std need \(channels) values each (data.channels)")
            }
            if spec.normalizeStd?.contains(where: { $0 <= 0 }) == true {
                reader.report(n.node("std"), "data.normalize.std", "every std must be > 0")
            }
        }
        spec.workers = data.int("workers", default: 2, minimum: 1) ?? 2
        spec.maxQueueSize = data.int("max_queue_size", default: 10, minimum: 1) ?? 10
        spec.shuffleBufferSize = data.int("shuffle_buffer_size", default: 10_000, minimum: 1) ?? 10_000
        if let b = data.node("balancing") {
            if let on = b.bool {
                spec.balancing = on
            } else if let s = data.section("balancing", known: ["init_probs"]) {
                spec.balancing = true
                spec.initProbs = numbers(s, "init_probs", reader: reader)
                if let p = spec.initProbs, p.contains(where: { $0 < 0 }) || p.reduce(0, +) <= 0 {
                    reader.report(s.node("init_probs"), "data.balancing.init_probs", "needs non-negative values with a positive sum")
                }
            }
        }
        if let w = data.node("class_weights") {
            if w.string == "balanced" {
                spec.balancedClassWeights = true
            } else if let list = w.sequence {
                let values = list.compactMap { $0.float ?? $0.int.map(Double.init) }
                if values.count != list.count || values.contains(where: { $0 < 0 }) {
                    reader.report(w, "data.class_weights", "expected non-negative numbers, one per class, or 'balanced'")
                } else {
                    spec.classWeights = values
                }
            } else {
                reader.report(
                    w, "data.class_weights", "expected a list of numbers (one per class) or 'balanced', found \(ConfigReader.kind(w))")
            }
        }
        spec.iterationsPerEpoch = data.int("n_iters_per_epoch", minimum: 1)
        spec.skipCorrupt = data.bool("skip_corrupt", default: false)
        if data.node("label_image") != nil { spec.labelImage = data.oneOf("label_image", ["mask", "image"], default: "mask") }
        spec.memoryBudget = min(data.int("memory_budget_mb", default: 1024, minimum: 0) ?? 1024, 1 << 40) << 20
        return spec
    }

    private static func numbers(_ s: Section, _ key: String, reader: ConfigReader) -> [Double]? {
        guard let list = s.list(key) else { return nil }
        let values = list.compactMap { $0.float ?? $0.int.map(Double.init) }
        guard values.count == list.count, !values.isEmpty else {
            reader.report(s.node(key), s.keyPath(key), "expected a list of numbers")
            return nil
        }
        return values
    }

    /// How the library decodes records of encoded images, as this section says. The default
    /// evaluation resize is torchvision's for `random_resized_crop` (the centred 87.5 %), else
    /// the whole image at the model's aspect.
    var imageOptions: ImageDataOptions {
        var options = ImageDataOptions()
        if let h = imageHeight, let w = imageWidth { options.size = ImageSize(height: h, width: w) }
        options.channels = channels
        let augmentation = self.augmentation
        options.augmentation = { size in augmentation.transform(height: size.height, width: size.width, then: nil) }
        if let mean = normalizeMean, let std = normalizeStd {
            options.normalize = Normalize(mean: mean.map(Float.init), std: std.map(Float.init))
        }
        options.evaluationResize =
            evaluationResize ?? (augmentation.resizedCropScale != nil ? .centerCrop(fraction: 0.875) : .centerCrop(fraction: 1))
        options.workers = workers
        options.maxQueueSize = maxQueueSize
        options.shuffleBufferSize = shuffleBufferSize
        options.skipCorrupt = skipCorrupt
        switch labelImage {
        case "mask": options.denseLabel = .classMask()
        case "image": options.denseLabel = .targetImage(channels: channels ?? 0)  // 0: the input's
        default: break
        }
        return options
    }

}

/// `data.augmentation:` training-time transforms, applied in this order: crop, flips, rotation,
/// perspective, colour jitter (then `data.normalize`).
struct AugmentationSpec: Equatable {
    var flipLeftRight = false
    var flipUpDown = false
    var cropPadding: Int?
    var resizedCropScale: [Double]?
    var resizedCropRatio: [Double]?
    var rotation: Double?
    var perspective: Double?
    var brightness = 0.0
    var contrast = 0.0
    var saturation = 0.0

    static let keys = ["flip_left_right", "flip_up_down", "random_crop", "random_resized_crop", "rotation", "perspective", "color_jitter"]

    static func parse(_ s: Section) -> AugmentationSpec {
        var spec = AugmentationSpec()
        spec.flipLeftRight = s.bool("flip_left_right", default: false)
        spec.flipUpDown = s.bool("flip_up_down", default: false)
        if let crop = s.section("random_crop", known: ["padding"]) {
            spec.cropPadding = crop.int("padding", default: 0, minimum: 0) ?? 0
        }
        if let crop = s.section("random_resized_crop", known: ["scale", "ratio"]) {
            spec.resizedCropScale = pair(crop, "scale", default: [0.08, 1], within: 0...1)
            spec.resizedCropRatio = pair(crop, "ratio", default: [3.0 / 4, 4.0 / 3], within: 0...100)
        }
        spec.rotation = s.float("rotation", minimum: 0)
        spec.perspective = s.float("perspective", minimum: 0)
        if let p = spec.perspective, p > 1 { s.reader.report(s.node("perspective"), s.keyPath("perspective"), "must be <= 1, got \(p)") }
        if let j = s.section("color_jitter", known: ["brightness", "contrast", "saturation"]) {
            spec.brightness = j.float("brightness", default: 0, minimum: 0) ?? 0
            spec.contrast = j.float("contrast", default: 0, minimum: 0) ?? 0
            spec.saturation = j.float("saturation", default: 0, minimum: 0) ?? 0
        }
        return spec
    }

    private static func pair(_ s: Section, _ key: String, default value: [Double], within range: ClosedRange<Double>) -> [Double] {
        guard let list = s.list(key) else { return value }
        let v = list.compactMap { $0.float ?? $0.int.map(Double.init) }
        guard v.count == 2, v[0] > 0, v[0] <= v[1], range.contains(v[0]), range.contains(v[1]) else {
            s.reader.report(s.node(key), s.keyPath(key), "expected [low, high] with 0 < low <= high <= \(range.upperBound)")
            return value
        }
        return v
    }

    /// The transforms in order, or nil when none is asked for.
    func transform(height: Int, width: Int, then last: (any ImageTransform)?) -> (any ImageTransform)? {
        var steps: [any ImageTransform] = []
        if let padding = cropPadding { steps.append(RandomCrop(height: height, width: width, padding: padding)) }
        if let scale = resizedCropScale, let ratio = resizedCropRatio {
            steps.append(
                RandomResizedCrop(
                    height: height, width: width, scale: Float(scale[0])...Float(scale[1]),
                    ratio: Float(ratio[0])...Float(ratio[1])))
        }
        if flipLeftRight { steps.append(RandomHorizontalFlip()) }
        if flipUpDown { steps.append(RandomVerticalFlip()) }
        if let rotation, rotation > 0 { steps.append(RandomRotation(degrees: Float(rotation))) }
        if let perspective, perspective > 0 { steps.append(RandomPerspective(distortion: Float(perspective))) }
        if brightness > 0 || contrast > 0 || saturation > 0 {
            steps.append(ColorJitter(brightness: Float(brightness), contrast: Float(contrast), saturation: Float(saturation)))
        }
        if let last { steps.append(last) }
        return steps.isEmpty ? nil : (steps.count == 1 ? steps[0] : Compose(steps))
    }
}
