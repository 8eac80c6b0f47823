import Foundation

/// Segmentation overlap over a whole data set, from one confusion matrix of pixels (label row,
/// predicted column), never an average of per-batch scores: `mean_iou` (the mean over the
/// classes that occur in the labels or the predictions of TP / (TP + FP + FN), Keras' `MeanIoU`),
/// `iou_<k>` per class, `pixel_accuracy`, and `dice` (the mean over the same classes of
/// 2·TP / (2·TP + FP + FN)).
///
/// Outputs are logits `[N, C, H, W]` (the prediction is each pixel's arg-max) or `[N, C]`;
/// labels are class indices `[N, H, W]` (or `[N, 1, H, W]`, or `[N]`). Pixels labelled
/// `ignoreIndex` (DeepLab's 255) count nowhere. The classes are the outputs' channels unless given.
public struct MeanIoU: Metric, Codable {
    /// The number of classes; 0 until the first batch when not given.
    public private(set) var classes: Int
    public let ignoreIndex: Int?
    public var name: String { "mean_iou" }
    /// classes × classes pixel counts, label row, predicted column.
    private var cells: [Double]

    public init(classes: Int? = nil, ignoreIndex: Int? = 255) {
        precondition(classes.map { $0 >= 2 } ?? true, "MeanIoU: classes \(classes ?? 0)")
        self.classes = classes ?? 0
        self.ignoreIndex = ignoreIndex
        cells = [Double](repeating: 0, count: self.classes * self.classes)
    }

    public func problem(outputShape: [Int], labelsPerSample: Int) -> String? {
        guard let c = outputShape.first, c >= 2 else {
            return "it takes class scores per sample or per pixel, the model gives \(ShapeError.text(outputShape))"
        }
        if classes > 0 && c != classes { return "it counts \(classes) classes, the model gives \(c) channels" }
        let pixels = outputShape.dropFirst().reduce(1, *)
        guard labelsPerSample == pixels else {
            return "it takes one class index per pixel (\(pixels)), the labels hold \(labelsPerSample) values per sample"
        }
        return nil
    }

    public mutating func update(outputs: Tensor, labels: Tensor) {
        let n = outputs.shape.first ?? 0
        guard n > 0, outputs.rank >= 2 else { return }
        let c = outputs.shape[1]
        let plane = outputs.scalarCount / (n * c)
        if classes == 0 {
            classes = c
            cells = [Double](repeating: 0, count: c * c)
        }
        precondition(c == classes, "MeanIoU(classes: \(classes)): the outputs have \(c) channels")
        precondition(
            labels.scalarCount == n * plane, "MeanIoU: labels \(labels.shape) do not give one class per pixel of outputs \(outputs.shape)")
        let predicted = outputs.argmax(alongAxis: 1).scalars, truth = labels.scalars
        for (p, t) in zip(predicted, truth) {
            let label = Int(t)
            if let ignoreIndex, label == ignoreIndex { continue }
            guard label >= 0 && label < classes else { continue }
            cells[label * classes + Int(p)] += 1
        }
    }

    /// Each class's (true positives, false positives, false negatives).
    private func counts(_ k: Int) -> (tp: Double, fp: Double, fn: Double) {
        let tp = cells[k * classes + k]
        let row = (0..<classes).reduce(0.0) { $0 + cells[k * classes + $1] }
        let column = (0..<classes).reduce(0.0) { $0 + cells[$1 * classes + k] }
        return (tp, column - tp, row - tp)
    }

    public func values() -> [String: Float] {
        var result: [String: Float] = [:]
        var iouSum = 0.0, diceSum = 0.0, present = 0
        for k in 0..<classes {
            let (tp, fp, fn) = counts(k)
            guard tp + fp + fn > 0 else { continue }
            let iou = tp / (tp + fp + fn)
            result["iou_\(k)"] = Float(iou)
            iouSum += iou
            diceSum += 2 * tp / (2 * tp + fp + fn)
            present += 1
        }
        let total = cells.reduce(0, +)
        let correct = (0..<classes).reduce(0.0) { $0 + cells[$1 * classes + $1] }
        result["mean_iou"] = present > 0 ? Float(iouSum / Double(present)) : 0
        result["dice"] = present > 0 ? Float(diceSum / Double(present)) : 0
        result["pixel_accuracy"] = total > 0 ? Float(correct / total) : 0
        return result
    }

    public mutating func reset() { cells = [Double](repeating: 0, count: classes * classes) }

    public var statistics: [Double]? {
        get { cells }
        set { if let newValue, newValue.count == cells.count, !cells.isEmpty { cells = newValue } }
    }
}

/// Peak signal-to-noise ratio of image outputs against target images, in dB:
/// 10·log10(range² / MSE) with the mean squared error over every value of the data set
/// (`psnr`). `range` is the targets' span: 1 for images scaled to [0, 1], 255 for 8-bit values.
public struct PSNR: Metric, Codable {
    public let range: Float
    public var name: String { "psnr" }
    private var squaredError = 0.0
    private var count = 0.0

    public init(range: Float = 1) {
        precondition(range > 0, "PSNR: range \(range)")
        self.range = range
    }

    public func problem(outputShape: [Int], labelsPerSample: Int) -> String? {
        let outputs = outputShape.reduce(1, *)
        return outputs == labelsPerSample
            ? nil : "it compares outputs with targets value for value, the model gives \(outputs) per sample, the labels \(labelsPerSample)"
    }

    public mutating func update(outputs: Tensor, labels: Tensor) {
        precondition(outputs.scalarCount == labels.scalarCount, "PSNR: outputs \(outputs.shape) and targets \(labels.shape) differ in size")
        for (o, t) in zip(outputs.scalars, labels.scalars) {
            let d = Double(o) - Double(t)
            squaredError += d * d
        }
        count += Double(outputs.scalarCount)
    }

    public func values() -> [String: Float] {
        guard count > 0 else { return ["psnr": 0] }
        let mse = squaredError / count
        return ["psnr": mse > 0 ? Float(10 * log10(Double(range) * Double(range) / mse)) : .infinity]
    }

    public mutating func reset() { (squaredError, count) = (0, 0) }

    public var statistics: [Double]? {
        get { [squaredError, count] }
        set { if let newValue, newValue.count == 2 { (squaredError, count) = (newValue[0], newValue[1]) } }
    }
}

/// Structural similarity (Wang et al. 2004) of image outputs `[N, C, H, W]` against targets:
/// each channel of each image compared through an 11×11 Gaussian window (σ = 1.5) at every
/// position where the window fits, K1 = 0.01, K2 = 0.03 of `range`; `ssim` is the mean over
/// the data set's images and channels (scikit-image's `structural_similarity` with
/// `gaussian_weights=True`, `use_sample_covariance=False`, per channel).
public struct SSIM: Metric, Codable {
    public let range: Float
    public var name: String { "ssim" }
    private var sum = 0.0
    private var count = 0.0
    static let window = 11
    static let weights: [Double] = {
        let raw = (0..<window).map { i -> Double in
            let d = Double(i - window / 2)
            return exp(-d * d / (2 * 1.5 * 1.5))
        }
        let total = raw.reduce(0, +)
        return raw.map { $0 / total }
    }()

    public init(range: Float = 1) {
        precondition(range > 0, "SSIM: range \(range)")
        self.range = range
    }

    public func problem(outputShape: [Int], labelsPerSample: Int) -> String? {
        guard outputShape.count == 3 else { return "it compares images, the model gives \(ShapeError.text(outputShape)) per sample" }
        let outputs = outputShape.reduce(1, *)
        return outputs == labelsPerSample
            ? nil : "it compares each output image with a target image of \(outputs) values, the labels hold \(labelsPerSample)"
    }

    public mutating func update(outputs: Tensor, labels: Tensor) {
        precondition(outputs.rank == 4, "SSIM: outputs \(outputs.shape) should be [N, C, H, W] images")
        precondition(outputs.scalarCount == labels.scalarCount, "SSIM: outputs \(outputs.shape) and targets \(labels.shape) differ in size")
        let (h, w) = (outputs.shape[2], outputs.shape[3])
        let x = outputs.scalars, y = labels.scalars
        for plane in 0..<(outputs.shape[0] * outputs.shape[1]) {
            let offset = plane * h * w
            sum += Self.planeSSIM(x, y, offset: offset, height: h, width: w, range: Double(range))
            count += 1
        }
    }

    /// The mean SSIM of one plane over the positions where the window fits.
    static func planeSSIM(_ x: [Float], _ y: [Float], offset: Int, height h: Int, width w: Int, range: Double) -> Double {
        let r = window / 2
        guard h >= window, w >= window else { return x[offset..<(offset + h * w)] == y[offset..<(offset + h * w)] ? 1 : 0 }
        // Gaussian-filtered x, y, x², y², xy along rows, then along columns (separable).
        func filtered(_ f: (Int) -> Double) -> [Double] {
            var rows = [Double](repeating: 0, count: h * (w - 2 * r))
            for i in 0..<h {
                for j in r..<(w - r) {
                    var s = 0.0
                    for k in 0..<window { s += weights[k] * f(i * w + j - r + k) }
                    rows[i * (w - 2 * r) + j - r] = s
                }
            }
            let cols = w - 2 * r
            var out = [Double](repeating: 0, count: (h - 2 * r) * cols)
            for i in r..<(h - r) {
                for j in 0..<cols {
                    var s = 0.0
                    for k in 0..<window { s += weights[k] * rows[(i - r + k) * cols + j] }
                    out[(i - r) * cols + j] = s
                }
            }
            return out
        }
        let mx = filtered { Double(x[offset + $0]) }, my = filtered { Double(y[offset + $0]) }
        let xx = filtered { Double(x[offset + $0]) * Double(x[offset + $0]) }
        let yy = filtered { Double(y[offset + $0]) * Double(y[offset + $0]) }
        let xy = filtered { Double(x[offset + $0]) * Double(y[offset + $0]) }
        let c1 = (0.01 * range) * (0.01 * range), c2 = (0.03 * range) * (0.03 * range)
        var total = 0.0
        for i in mx.indices {
            let vx = xx[i] - mx[i] * mx[i], vy = yy[i] - my[i] * my[i], cxy = xy[i] - mx[i] * my[i]
            total += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) / ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2))
        }
        return total / Double(mx.count)
    }

    public func values() -> [String: Float] { ["ssim": count > 0 ? Float(sum / count) : 0] }

    public mutating func reset() { (sum, count) = (0, 0) }

    public var statistics: [Double]? {
        get { [sum, count] }
        set { if let newValue, newValue.count == 2 { (sum, count) = (newValue[0], newValue[1]) } }
    }
}
