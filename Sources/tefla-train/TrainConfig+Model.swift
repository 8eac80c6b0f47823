import Learner
import Yams

/// One entry of `model.layers`.
struct LayerSpec: Equatable {
    enum Kind: String, CaseIterable {
        case dense, dropout, relu, gelu, sigmoid, tanh, silu, leaky_relu, softmax, flatten
        case conv2d, batch_norm, max_pool, avg_pool, global_avg_pool
        case layer_norm, group_norm, upsample, embedding
        case conv_transpose2d, dropout2d, concat, add
        case multi_head_attention, transformer_encoder, positional_embedding, global_avg_pool_1d
    }
    var kind: Kind
    var units: Int = 0
    var activation: Activation = .identity
    var rate: Double = 0
    var kernelSize = 3
    var stride = 1
    /// Explicit padding, or nil for "same".
    var padding: Int? = 0
    /// `batch_norm`: statistics over every data-parallel rank's samples.
    var synchronized = false
    /// `group_norm`: groups; `upsample`: scale; `embedding`: table size (`units` its width).
    var groups = 1
    var scale = 2
    var count = 0
    /// `leaky_relu`: the slope below zero.
    var negativeSlope = 0.01
    /// `conv2d`, `conv_transpose2d`: dilation and groups (`groups` above); the transposed
    /// convolution's output padding.
    var dilation = 1
    var outputPadding = 0
    /// `upsample`: bilinear instead of nearest, and PyTorch's `align_corners`.
    var bilinear = false
    var alignCorners = false
    /// `multi_head_attention`, `transformer_encoder`: heads, the feed-forward width (`units`
    /// is unused), pre-norm; `positional_embedding`: `count` is the longest sequence.
    var heads = 1
    var normFirst = false
    /// `concat`: the axis of the batch tensor (1: channels or features).
    var axis = 1
    /// The layer's name (its parameters' prefix) and the layers it takes its input from;
    /// nil: the layer before it.
    var name: String?
    var inputs: [String]?
    /// Where the layer is written in the file.
    var place = ConfigPlace()
}

/// `model: {name: ..., classes: ...}`: a model of the zoo.
struct ZooSpec: Equatable {
    enum Name: String, CaseIterable { case mlp, small_cnn, resnet18, resnet34, cifar_resnet20, cifar_resnet56, unet }
    var name: Name
    var classes: Int
    var hidden: [Int] = [128]
    var dropout: Double = 0
    /// `unet`: micro_dl's options.
    var depth = 4
    var baseFilters = 32
    var batchNorm = true
    var residual = false
    var upsampling = UNet.Upsampling.transposed
    /// Where `model.name` is written in the file.
    var place = ConfigPlace()
}

extension TrainConfig {
    static let modelKeys = [
        "layers", "name", "classes", "hidden", "dropout", "depth", "base_filters", "batch_norm", "residual", "upsampling",
    ]
    static let layerKeys = [
        "type", "units", "activation", "rate", "filters", "kernel_size", "stride", "padding", "pool_size", "sync", "groups", "scale",
        "count", "negative_slope", "name", "inputs", "dilation", "output_padding", "mode", "align_corners", "heads",
        "feed_forward", "norm_first", "axis",
    ]

    mutating func parseModel(_ model: Section, reader: ConfigReader) {
        if model.node("name") != nil {
            let name = model.oneOf("name", ZooSpec.Name.allCases.map(\.rawValue), default: "")
            let classes = model.int("classes", required: true, minimum: 1) ?? 1
            if let zooName = ZooSpec.Name(rawValue: name) {
                var spec = ZooSpec(name: zooName, classes: classes, place: ConfigPlace(model.node("name")))
                if let hidden = model.list("hidden") {
                    spec.hidden = hidden.enumerated().compactMap { i, node in
                        guard let v = node.int, v >= 1 else {
                            reader.report(node, "model.hidden[\(i)]", "expected a layer width >= 1, found \(ConfigReader.kind(node))")
                            return nil
                        }
                        return v
                    }
                }
                spec.dropout = model.float("dropout", default: 0, minimum: 0) ?? 0
                if zooName == .unet {
                    spec.depth = model.int("depth", default: 4, minimum: 1) ?? 4
                    spec.baseFilters = model.int("base_filters", default: 32, minimum: 1) ?? 32
                    spec.batchNorm = model.bool("batch_norm", default: true)
                    spec.residual = model.bool("residual", default: false)
                    spec.upsampling =
                        UNet.Upsampling(
                            rawValue: model.oneOf("upsampling", UNet.Upsampling.allCases.map(\.rawValue), default: "transposed"))
                        ?? .transposed
                    if spec.dropout >= 1 { reader.report(model.node("dropout"), "model.dropout", "must be < 1, got \(spec.dropout)") }
                } else {
                    for key in ["depth", "base_filters", "batch_norm", "residual", "upsampling"] where model.node(key) != nil {
                        reader.report(model.node(key), "model.\(key)", "is a unet option; \(name) does not take it")
                    }
                }
                zoo = spec
            }
            if model.node("layers") != nil {
                reader.report(model.node("layers"), "model.layers", "give either model.name or model.layers, not both")
            }
            return
        }
        let layerNodes = model.list("layers")
        for (i, node) in (layerNodes ?? []).enumerated() {
            if let layer = Self.parseLayer(node, path: "model.layers[\(i)]", reader: reader) { layers.append(layer) }
        }
        if model.node("layers") == nil {
            reader.report(
                model.node, "model",
                "needs layers (a list) or name (a zoo model: \(ZooSpec.Name.allCases.map(\.rawValue).joined(separator: ", ")))")
        } else if let layerNodes, layerNodes.isEmpty {
            reader.report(model.node("layers"), "model.layers", "needs at least one layer")
        }
    }

    static let imageLayers: [LayerSpec.Kind] = [
        .conv2d, .conv_transpose2d, .dropout2d, .batch_norm, .max_pool, .avg_pool, .global_avg_pool, .group_norm, .upsample,
    ]

    /// The first layer that needs samples shaped [C, H, W], with its place: such a model needs
    /// records of encoded images or `data.input_shape` (checked once the data is known).
    func firstImageLayer(_ model: Section?) -> (index: Int, place: ConfigPlace)? {
        guard zoo == nil, let i = layers.firstIndex(where: { Self.imageLayers.contains($0.kind) }) else { return nil }
        return (i, ConfigPlace(model?.list("layers")?[i]))
    }

    static func parseInputShape(_ data: Section, reader: ConfigReader) -> [Int]? {
        guard let list = data.list("input_shape") else { return nil }
        let dims = list.compactMap { $0.int }
        guard dims.count == 3, dims.allSatisfy({ $0 >= 1 }) else {
            reader.report(data.node("input_shape"), "data.input_shape", "expected [channels, height, width], three integers >= 1")
            return nil
        }
        return dims
    }

    static func parseLayer(_ node: Node, path: String, reader: ConfigReader) -> LayerSpec? {
        guard let s = reader.section(node, path, known: layerKeys) else { return nil }
        let before = reader.issues.count
        let type = s.oneOf("type", LayerSpec.Kind.allCases.map(\.rawValue), default: "")
        guard let kind = LayerSpec.Kind(rawValue: type) else {
            // An unknown or missing type: its other keys cannot be judged.
            if reader.issues.count == before { reader.report(node, "\(path).type", "required key is missing") }
            return nil
        }
        var layer = LayerSpec(kind: kind, place: ConfigPlace(node))
        if s.node("name") != nil {
            layer.name = s.string("name")
            if let name = layer.name, name.isEmpty || name.contains(".") || name == LayerGraph.inputName {
                reader.report(
                    s.node("name"), "\(path).name",
                    "'\(name)' cannot name a layer (not empty, no dots, not '\(LayerGraph.inputName)', the model's input)")
            }
        }
        if let list = s.list("inputs") {
            layer.inputs = list.enumerated().compactMap { k, item in
                guard let name = item.string, !name.isEmpty else {
                    reader.report(item, "\(path).inputs[\(k)]", "expected a layer name, found \(ConfigReader.kind(item))")
                    return nil
                }
                return name
            }
        } else if let single = s.string("inputs") {
            layer.inputs = [single]
        }
        func activation() -> Activation {
            Activation(rawValue: s.oneOf("activation", Activation.allCases.map(\.rawValue), default: "identity")) ?? .identity
        }
        switch kind {
        case .dense:
            layer.units = s.int("units", required: true, minimum: 1) ?? 1
            layer.activation = activation()
        case .dropout, .dropout2d:
            layer.rate = s.float("rate", required: true, minimum: 0) ?? 0
            if layer.rate >= 1 { reader.report(s.node("rate"), "\(path).rate", "must be < 1, got \(layer.rate)") }
        case .conv2d, .conv_transpose2d:
            layer.units = s.int("filters", required: true, minimum: 1) ?? 1
            layer.dilation = s.int("dilation", default: 1, minimum: 1) ?? 1
            layer.groups = s.int("groups", default: 1, minimum: 1) ?? 1
            if kind == .conv_transpose2d { layer.outputPadding = s.int("output_padding", default: 0, minimum: 0) ?? 0 }
            layer.kernelSize = s.int("kernel_size", default: 3, minimum: 1) ?? 3
            layer.stride = s.int("stride", default: 1, minimum: 1) ?? 1
            layer.padding = s.string("padding") == "same" ? nil : s.node("padding").flatMap { $0.int } ?? 0
            if let p = s.node("padding"), p.int == nil, s.string("padding") != "same" {
                reader.report(p, "\(path).padding", "expected an integer or 'same', found \(ConfigReader.kind(p))")
            }
            layer.activation = activation()
        case .batch_norm:
            layer.synchronized = s.bool("sync", default: false)
        case .max_pool, .avg_pool:
            layer.kernelSize = s.int("pool_size", default: 2, minimum: 1) ?? 2
            layer.stride = s.int("stride", default: layer.kernelSize, minimum: 1) ?? layer.kernelSize
        case .group_norm:
            layer.groups = s.int("groups", required: true, minimum: 1) ?? 1
        case .upsample:
            layer.scale = s.int("scale", default: 2, minimum: 1) ?? 2
            layer.bilinear = s.oneOf("mode", ["nearest", "bilinear"], default: "nearest") == "bilinear"
            layer.alignCorners = s.bool("align_corners", default: false)
        case .leaky_relu:
            layer.negativeSlope = s.float("negative_slope", default: 0.01) ?? 0.01
        case .embedding:
            layer.count = s.int("count", required: true, minimum: 1) ?? 1
            layer.units = s.int("units", required: true, minimum: 1) ?? 1
        case .positional_embedding:
            layer.count = s.int("count", required: true, minimum: 1) ?? 1
        case .multi_head_attention, .transformer_encoder:
            layer.heads = s.int("heads", required: true, minimum: 1) ?? 1
            layer.rate = s.float("rate", default: kind == .transformer_encoder ? 0.1 : 0, minimum: 0) ?? 0
            if layer.rate >= 1 { reader.report(s.node("rate"), "\(path).rate", "must be < 1, got \(layer.rate)") }
            if kind == .transformer_encoder {
                layer.units = s.int("feed_forward", default: 2048, minimum: 1) ?? 2048
                layer.normFirst = s.bool("norm_first", default: false)
                let name = s.oneOf("activation", ["relu", "gelu"], default: "relu")
                layer.activation = name == "gelu" ? .gelu : .relu
            }
        case .concat:
            layer.axis = s.int("axis", default: 1) ?? 1
        default:
            break
        }
        return layer
    }

    /// Builds the model for samples of `sampleShape`: `[channels, height, width]` images, or
    /// feature vectors of `[values]` (reshaped to `data.input_shape` first when it is given).
    /// Each layer's input size is the shape the layers before it give (shape inference), so any
    /// mix of convolutions, pooling and dense layers fits together; a shape that cannot flow
    /// through a layer is a ``ConfigError`` naming that layer's line.
    func makeModel(sampleShape: [Int]) throws -> Module {
        func problem(_ place: ConfigPlace, _ path: String, _ message: String) -> ConfigError {
            ConfigError(file: file, at: place, path, message)
        }
        var shape = sampleShape
        var modules: [Module] = []
        if sampleShape.count == 3 {
            if let inputShape, inputShape != sampleShape {
                throw problem(
                    inputShapePlace, "data.input_shape",
                    "\(ShapeError.text(inputShape)) disagrees with the images, decoded to \(ShapeError.text(sampleShape)); leave it out")
            }
        } else if let inputShape {
            let inputSize = sampleShape.reduce(1, *)
            let size = inputShape.reduce(1, *)
            guard size == inputSize else {
                throw problem(
                    inputShapePlace, "data.input_shape",
                    "\(ShapeError.text(inputShape)) holds \(size) values per sample, but the records' '\(inputKey)' "
                        + "feature has \(inputSize)")
            }
            modules.append(Reshape(inputShape))
            shape = inputShape
        } else if let (i, place) = imageLayerPlace {
            throw problem(
                place, "model.layers[\(i)]",
                "\(layers[i].kind.rawValue) needs image-shaped samples: set data.input_shape: [channels, height, width] "
                    + "(the records' '\(inputKey)' holds \(sampleShape.reduce(1, *)) values, not encoded images)")
        }
        if let zoo {
            let model = zooModel(zoo, inputShape: shape)
            do {
                _ = try model.outputShape(forInput: shape)
            } catch let error as ShapeError {
                throw ConfigError(
                    file: file,
                    issues: [
                        ConfigIssue(
                            line: zoo.place.line, column: zoo.place.column, path: "model.name", message: "\(zoo.name.rawValue): \(error)")
                    ])
            }
            return Sequential(modules + [model])
        }
        return try makeLayers(inputShape: shape, prefix: modules)
    }

    /// The layers of `model.layers` for samples of `inputShape` (after `prefix`, the reshape of
    /// feature vectors): a ``Sequential`` chain, or a ``LayerGraph`` when a layer has a `name`
    /// or `inputs`. Each layer's input size is what its inputs give (shape inference).
    private func makeLayers(inputShape: [Int], prefix: [Module]) throws -> Module {
        let graphMode = layers.contains { $0.name != nil || $0.inputs != nil }
        var modules = prefix
        var nodes: [LayerGraph.Node] = []
        // Graph mode: every output so far by name; the model's input is `input` (after the prefix).
        var shapes: [String: [Int]] = [LayerGraph.inputName: inputShape]
        var inputAlias = LayerGraph.inputName
        if graphMode, let reshape = prefix.first {
            nodes.append(LayerGraph.Node("reshaped_input", .layer(reshape), inputs: [LayerGraph.inputName]))
            shapes["reshaped_input"] = inputShape
            inputAlias = "reshaped_input"
        }
        var previous = inputAlias
        var shape = inputShape
        for (i, layer) in layers.enumerated() {
            func problem(_ message: String) -> ConfigError {
                ConfigError(
                    file: file,
                    issues: [
                        ConfigIssue(
                            line: layer.place.line, column: layer.place.column, path: "model.layers[\(i)]",
                            message: "\(layer.kind.rawValue): \(message)")
                    ])
            }
            let nodeName = layer.name ?? "\(i)"
            var inputNames = (layer.inputs ?? [previous]).map { $0 == LayerGraph.inputName ? inputAlias : $0 }
            if graphMode {
                if shapes[nodeName] != nil || nodeName == "reshaped_input" && inputAlias != LayerGraph.inputName {
                    throw problem("the name '\(nodeName)' is taken by an earlier layer")
                }
                for name in inputNames where shapes[name] == nil {
                    let later = layers[(i + 1)...].contains { $0.name == name }
                    let known = [LayerGraph.inputName] + layers[..<i].enumerated().map { $0.element.name ?? "\($0.offset)" }
                    throw problem(
                        "inputs: '\(name)' "
                            + (later
                                ? "is a later layer; a layer takes its inputs from layers above it"
                                : "names no layer above this one (known: \(known.joined(separator: ", ")))"))
                }
            }
            let isMerge = layer.kind == .concat || layer.kind == .add
            if isMerge && inputNames.count < 2 {
                throw problem("merges two or more layers: give inputs: [a, b, ...]")
            }
            if !isMerge && inputNames.count != 1 {
                throw problem("takes one input, given \(inputNames.count) (only concat and add merge several)")
            }
            if graphMode { shape = shapes[inputNames[0]] ?? shape }
            let layerSeed = seed &+ UInt64(i) &* 7919
            var module: Module?
            switch layer.kind {
            case .dense:
                if shape.count != 1 {
                    if graphMode {
                        let flat = "\(nodeName)_flatten"
                        nodes.append(LayerGraph.Node(flat, .layer(Flatten()), inputs: inputNames))
                        inputNames = [flat]
                    } else {
                        modules.append(Flatten())
                    }
                    shape = [shape.reduce(1, *)]
                }
                module = Dense(inputSize: shape[0], units: layer.units, activation: layer.activation, seed: layerSeed)
            case .dropout: module = Dropout(rate: Float(layer.rate))
            case .dropout2d: module = Dropout2D(rate: Float(layer.rate))
            case .relu: module = ActivationLayer(.relu)
            case .gelu: module = ActivationLayer(.gelu)
            case .sigmoid: module = ActivationLayer(.sigmoid)
            case .tanh: module = ActivationLayer(.tanh)
            case .flatten: module = Flatten()
            case .conv2d, .conv_transpose2d:
                guard shape.count == 3 else { throw problem("needs [channels, height, width] samples, gets \(ShapeError.text(shape))") }
                guard shape[0] % layer.groups == 0, layer.units % layer.groups == 0 else {
                    throw problem("groups \(layer.groups) must divide the \(shape[0]) input channels and the \(layer.units) filters")
                }
                let kernel = Size2D(layer.kernelSize, layer.kernelSize), stride = Size2D(layer.stride, layer.stride)
                let dilation = Size2D(layer.dilation, layer.dilation)
                if layer.kind == .conv2d {
                    module = Conv2D(
                        inputChannels: shape[0], outputChannels: layer.units, kernelSize: kernel, stride: stride,
                        padding: layer.padding.map { Padding2D(integerLiteral: $0) } ?? .same, dilation: dilation, groups: layer.groups,
                        activation: layer.activation, seed: layerSeed)
                } else {
                    guard let padding = layer.padding else { throw problem("padding: 'same' is for conv2d; give an integer") }
                    let transposed = ConvTranspose2D(
                        inputChannels: shape[0], outputChannels: layer.units, kernelSize: kernel, stride: stride,
                        padding: Size2D(padding, padding), outputPadding: Size2D(layer.outputPadding, layer.outputPadding),
                        dilation: dilation, groups: layer.groups, seed: layerSeed)
                    module = layer.activation == .identity ? transposed : Sequential([transposed, ActivationLayer(layer.activation)])
                }
            case .batch_norm: module = BatchNorm2D(features: shape.first ?? 1, synchronized: layer.synchronized)
            case .max_pool:
                module = MaxPool2D(kernelSize: Size2D(layer.kernelSize, layer.kernelSize), stride: Size2D(layer.stride, layer.stride))
            case .avg_pool:
                module = AvgPool2D(kernelSize: Size2D(layer.kernelSize, layer.kernelSize), stride: Size2D(layer.stride, layer.stride))
            case .global_avg_pool: module = GlobalAvgPool2D()
            case .global_avg_pool_1d: module = GlobalAvgPool1D()
            case .silu: module = ActivationLayer(.silu)
            case .softmax: module = ActivationLayer(.softmax)
            case .leaky_relu: module = LeakyReLU(negativeSlope: Float(layer.negativeSlope))
            case .layer_norm:
                // Over each sample's last axis: the features of [features] or [tokens, features].
                module = LayerNorm(features: shape.last ?? 1)
            case .group_norm:
                guard shape.count >= 2, shape[0] % layer.groups == 0 else {
                    throw problem("\(layer.groups) groups must divide the \(shape.first ?? 0) channels of \(ShapeError.text(shape))")
                }
                module = GroupNorm(groups: layer.groups, channels: shape[0])
            case .upsample:
                module = Upsample(scale: layer.scale, mode: layer.bilinear ? .bilinear(alignCorners: layer.alignCorners) : .nearest)
            case .embedding: module = Embedding(count: layer.count, dimension: layer.units, seed: layerSeed)
            case .positional_embedding:
                guard shape.count == 2 else { throw problem("needs [tokens, features] samples, gets \(ShapeError.text(shape))") }
                module = PositionalEmbedding(length: layer.count, dimension: shape[1], seed: layerSeed)
            case .multi_head_attention, .transformer_encoder:
                guard shape.count == 2 else {
                    throw problem(
                        "needs [tokens, features] samples, gets \(ShapeError.text(shape))"
                            + (shape.count == 1 ? " (an embedding layer first turns token indices into vectors)" : ""))
                }
                guard shape[1] % layer.heads == 0 else {
                    throw problem("\(layer.heads) heads must divide the width \(shape[1])")
                }
                module =
                    layer.kind == .multi_head_attention
                    ? MultiHeadAttention(embedDimension: shape[1], heads: layer.heads, dropout: Float(layer.rate), seed: layerSeed)
                    : TransformerEncoderBlock(
                        embedDimension: shape[1], heads: layer.heads, feedForwardDimension: layer.units, dropout: Float(layer.rate),
                        activation: layer.activation, normFirst: layer.normFirst, seed: layerSeed)
            case .concat, .add: module = nil
            }
            let node = LayerGraph.Node(
                nodeName, module.map { .layer($0) } ?? (layer.kind == .add ? .add : .concat(axis: layer.axis)), inputs: inputNames)
            do {
                if graphMode || isMerge {
                    shape = try LayerGraph.outputShape(of: node, inputs: inputNames.map { shapes[$0] ?? shape })
                } else if let module {
                    shape = try module.outputShape(forInput: shape)
                }
            } catch let error as ShapeError {
                throw problem(error.message)
            }
            if graphMode {
                nodes.append(node)
                shapes[nodeName] = shape
                previous = nodeName
            } else if let module {
                modules.append(module)
            }
        }
        guard graphMode else { return Sequential(modules) }
        do {
            return try LayerGraph(nodes)
        } catch let error as LayerGraph.WiringError {
            throw ConfigError(file: file, issues: [ConfigIssue(line: 0, column: 0, path: "model.layers", message: error.message)])
        }
    }

    private func zooModel(_ zoo: ZooSpec, inputShape shape: [Int]) -> Module {
        switch zoo.name {
        case .mlp:
            return Zoo.mlp(
                inputSize: shape.reduce(1, *), hiddenSizes: zoo.hidden, classes: zoo.classes,
                dropout: Float(zoo.dropout), seed: seed)
        case .small_cnn: return Zoo.smallCNN(inputChannels: shape.count == 3 ? shape[0] : 1, classes: zoo.classes)
        case .resnet18: return Zoo.resnet18(classes: zoo.classes, inputChannels: shape.count == 3 ? shape[0] : 3)
        case .resnet34: return Zoo.resnet34(classes: zoo.classes, inputChannels: shape.count == 3 ? shape[0] : 3)
        case .cifar_resnet20: return Zoo.cifarResNet(depth: 20, classes: zoo.classes)
        case .cifar_resnet56: return Zoo.cifarResNet(depth: 56, classes: zoo.classes)
        case .unet:
            return UNet(
                inputChannels: shape.count == 3 ? shape[0] : 1, outputChannels: zoo.classes, depth: zoo.depth,
                baseFilters: zoo.baseFilters, batchNorm: zoo.batchNorm, dropout: Float(zoo.dropout), residual: zoo.residual,
                upsampling: zoo.upsampling, seed: seed)
        }
    }
}
