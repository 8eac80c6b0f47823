import Learner
import Yams

/// The `loss:` section: a built-in loss by name with its parameters (`loss: focal`, or
/// `loss: {name: focal, gamma: 2}`). Without it the loss follows `training.mode`.
struct LossSpec: Equatable {
    var name: String
    var labelSmoothing: Float = 0
    var classWeights: [Float]?
    var ignoreIndex: Int?
    var positiveWeights: [Float]?
    var delta: Float = 1
    var beta: Float = 1
    var gamma: Float = 2
    var alpha: Float = 1
    var smooth: Float = 1

    /// Each name with the keys it takes.
    static let parameters: [String: [String]] = [
        "softmax_cross_entropy": ["label_smoothing", "class_weights", "ignore_index"],
        "binary_cross_entropy": ["pos_weight"],
        "mse": [], "mae": [], "huber": ["delta"], "smooth_l1": ["beta"],
        "focal": ["gamma", "alpha", "ignore_index"], "dice": ["smooth", "ignore_index"], "kl_divergence": [],
    ]
    /// Other spellings people write.
    static let aliases = [
        "cross_entropy": "softmax_cross_entropy", "sigmoid_cross_entropy": "binary_cross_entropy",
        "mean_squared_error": "mse", "mean_absolute_error": "mae", "l1": "mae", "kl_div": "kl_divergence",
    ]

    var loss: Loss {
        switch name {
        case "binary_cross_entropy": return .binaryCrossEntropy(positiveWeights: positiveWeights)
        case "mse": return .meanSquaredError
        case "mae": return .meanAbsoluteError
        case "huber": return .huber(delta: delta)
        case "smooth_l1": return .smoothL1(beta: beta)
        case "focal": return .focal(gamma: gamma, alpha: alpha, ignoreIndex: ignoreIndex)
        case "dice": return .dice(smooth: smooth, ignoreIndex: ignoreIndex)
        case "kl_divergence": return .klDivergence
        default: return .softmaxCrossEntropy(labelSmoothing: labelSmoothing, classWeights: classWeights, ignoreIndex: ignoreIndex)
        }
    }

    static func parse(_ top: Section, reader: ConfigReader) -> LossSpec? {
        guard let node = top.node("loss") else { return nil }
        let names = parameters.keys.sorted()
        func named(_ text: String, at place: Node) -> String? {
            let name = aliases[text] ?? text
            guard parameters[name] != nil else {
                reader.report(place, "loss", "unknown loss '\(text)'; one of \(names.joined(separator: ", "))")
                return nil
            }
            return name
        }
        if let text = node.string {
            return named(text, at: node).map { LossSpec(name: $0) }
        }
        guard node.mapping != nil else {
            reader.report(node, "loss", "expected a loss name or {name: ..., parameters}, found \(ConfigReader.kind(node))")
            return nil
        }
        let all = Set(parameters.values.joined()).sorted()
        guard let section = top.section("loss", known: ["name"] + all),
            let text = section.string("name", required: true),
            let name = named(text, at: section.node("name") ?? node)
        else { return nil }
        var spec = LossSpec(name: name)
        for key in section.values.keys where key != "name" && !(parameters[name] ?? []).contains(key) {
            reader.report(
                section.values[key]?.key, "loss.\(key)",
                "does not apply to \(name), which takes "
                    + ((parameters[name] ?? []).isEmpty ? "no parameters" : (parameters[name] ?? []).joined(separator: ", ")))
        }
        spec.labelSmoothing = Float(section.float("label_smoothing", default: 0, minimum: 0) ?? 0)
        spec.classWeights = floats(section, "class_weights", reader: reader)
        spec.ignoreIndex = section.int("ignore_index")
        if let w = section.node("pos_weight") {
            spec.positiveWeights = w.float.map { [Float($0)] } ?? w.int.map { [Float($0)] } ?? floats(section, "pos_weight", reader: reader)
        }
        spec.delta = Float(section.float("delta", default: 1, minimum: 0) ?? 1)
        spec.beta = Float(section.float("beta", default: 1, minimum: 0) ?? 1)
        spec.gamma = Float(section.float("gamma", default: 2, minimum: 0) ?? 2)
        spec.alpha = Float(section.float("alpha", default: 1, minimum: 0) ?? 1)
        spec.smooth = Float(section.float("smooth", default: 1, minimum: 0) ?? 1)
        return spec
    }

    private static func floats(_ section: Section, _ key: String, reader: ConfigReader) -> [Float]? {
        guard let list = section.list(key) else { return nil }
        let values = list.compactMap { $0.float ?? $0.int.map(Double.init) }
        guard values.count == list.count, !values.isEmpty, values.allSatisfy({ $0 >= 0 }) else {
            reader.report(section.node(key), section.keyPath(key), "expected a list of non-negative numbers")
            return nil
        }
        return values.map(Float.init)
    }
}
