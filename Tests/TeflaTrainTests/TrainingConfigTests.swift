import Foundation
import Learner
import TestSupport
import XCTest

@testable import tefla_train

/// The training keys of a config: schedules, metrics, clipping, EMA, callbacks, summaries and the
/// LR finder.
final class TrainingConfigTests: XCTestCase {
    override func setUp() {
        _ = FileManager.default.changeCurrentDirectoryPath(ConfigTests.root.path)
    }

    let head = """
        model:
          layers:
            - {type: dense, units: 10}
        data:
          train_dir: Data/digits/train
        optimizer:
          name: sgd
          learning_rate: 0.1

        """

    func testOneCycleExampleConfig() throws {
        let text = try String(
            contentsOf: ConfigTests.root.appendingPathComponent("Configs/digits-one-cycle.yml"), encoding: .utf8)
        let config = try TrainConfig.parse(yaml: text, file: "digits-one-cycle.yml")
        XCTAssertEqual(config.schedule?.name, .oneCycle)
        XCTAssertEqual(config.schedule?.maxLR, 0.2)
        XCTAssertEqual(config.metricNames, ["accuracy", "top_3_accuracy", "kappa"])
        XCTAssertEqual(config.clipNorm, 5)
        XCTAssertEqual(config.emaDecay, 0.99)
        XCTAssertEqual(config.earlyStopping?.patience, 3)
        XCTAssertEqual(config.summaryDir, "runs/digits-one-cycle")
        XCTAssertEqual(config.summaryEvery, 20)
        let learner = SupervisedLearner(
            model: try config.makeModel(sampleShape: [64]), loss: config.loss,
            optimizer: config.makeOptimizer(), options: config.trainingOptions(verbose: 0))
        learner.metrics = config.makeMetrics()
        learner.callbacks = config.makeCallbacks()
        // The run's length comes from fit: 8 epochs of 10 batches.
        let schedule = try XCTUnwrap(learner.options.schedule as? OneCycleLR)
        XCTAssertNil(schedule.totalSteps)
        let fitted = try XCTUnwrap(schedule.forRun(totalSteps: 80, firstStep: 0) as? OneCycleLR)
        XCTAssertEqual(fitted.totalSteps, 80)
        XCTAssertEqual(config.epochs, 8)
        XCTAssertEqual(learner.metrics.map(\.name), ["accuracy", "top_3_accuracy", "kappa"])
        XCTAssertEqual(learner.options.clipNorm, 5)
        XCTAssertNotNil(learner.ema)
        XCTAssertTrue(learner.callbacks.contains { $0 is EarlyStopping })
        XCTAssertTrue(learner.callbacks.contains { $0 is TensorBoardLogger })
    }

    func testEverySchedule() throws {
        let cases: [(String, (any LearningRateSchedule) -> Bool)] = [
            ("name: step\n  step_size: 5\n  gamma: 0.5", { ($0 as? StepDecayLR)?.stepSize == 5 }),
            ("name: exponential\n  gamma: 0.9\n  decay_steps: 10", { ($0 as? ExponentialDecayLR)?.decaySteps == 10 }),
            ("name: polynomial\n  power: 2", { ($0 as? PolynomialDecayLR)?.decaySteps == 100 }),
            ("name: cosine\n  warmup_steps: 10", { ($0 as? CosineWarmupLR)?.totalSteps == 100 }),
            (
                "name: cyclic\n  max_lr: 1\n  mode: exp_range\n  gamma: 0.99\n  step_size_up: 20",
                { ($0 as? CyclicLR)?.mode == .expRange && ($0 as? CyclicLR)?.baseLR == 0.1 }
            ),
            ("name: constant", { $0.learningRate(at: 50) == 0.1 }),
        ]
        for (body, check) in cases {
            let config = try TrainConfig.parse(
                yaml: head + "schedule:\n  " + body + "\ntraining:\n  epochs: 10\n", file: "s.yml")
            let schedule = try XCTUnwrap(config.schedule).make(baseLR: config.learningRate)
                .forRun(totalSteps: 100, firstStep: 0)
            XCTAssertTrue(check(schedule), body)
        }
        let resumed = try TrainConfig.parse(
            yaml: head + "schedule:\n  name: step\n  step_size: 5\n  resume_lr: 0.01\n", file: "r.yml")
        let s = try XCTUnwrap(resumed.schedule).make(baseLR: 0.1).forRun(totalSteps: 100, firstStep: 20)
        let fresh = try XCTUnwrap(resumed.schedule).make(baseLR: 0.1).forRun(totalSteps: 100, firstStep: 0)
        XCTAssertEqual(fresh.learningRate(at: 20), 1e-5, accuracy: 1e-10, "resume_lr applies only to a resumed run")
        XCTAssertEqual(s.learningRate(at: 20), 0.01, accuracy: 1e-7)
        XCTAssertEqual(s.learningRate(at: 25), 0.001, accuracy: 1e-7)  // step_size 5, default gamma 0.1
    }

    func testMistakesAreLocatedWithHints() {
        let yaml =
            head + """
                schedule:
                  name: one_cylce
                  step_size: 3
                training:
                  metrics: [accuracy, acuracy, top_2_accuracy]
                  verbose: 3
                  ema_decay: 1.5
                  clip_nrom: 1
                summary:
                  summary_every: 5
                """
        XCTAssertThrowsError(try TrainConfig.parse(yaml: yaml, file: "bad.yml")) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            let text = error.description
            let byPath = Dictionary(error.issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertTrue(byPath["schedule.name"]?.message.contains("did you mean 'one_cycle'") ?? false, text)
            XCTAssertEqual(byPath["schedule.name"]?.line, 10)
            XCTAssertTrue(
                byPath["schedule.step_size"]?.message.contains("not used by the 'constant' schedule") ?? false, text)
            XCTAssertTrue(byPath["training.metrics[1]"]?.message.contains("did you mean 'accuracy'") ?? false, text)
            XCTAssertEqual(byPath["training.metrics[1]"]?.line, 13)
            XCTAssertEqual(byPath["training.metrics[1]"]?.column, 23)
            XCTAssertNil(byPath["training.metrics[2]"], text)
            XCTAssertTrue(byPath["training.verbose"]?.message.contains("0, 1 or 2") ?? false, text)
            XCTAssertTrue(byPath["training.ema_decay"]?.message.contains("< 1") ?? false, text)
            XCTAssertTrue(byPath["training.clip_nrom"]?.message.contains("did you mean 'clip_norm'") ?? false, text)
            XCTAssertTrue(byPath["summary.dir"]?.message.contains("required") ?? false, text)
        }
    }

    func testCommandLineRunWritesSummariesAndCSV() throws {
        let dir = try Scratch.directory("tefla-cli", for: self)
        let file = dir.appendingPathComponent("c.yml")
        let yaml =
            head.replacingOccurrences(of: "units: 10}", with: "units: 10}\n") + """
                schedule: {name: one_cycle, max_lr: 0.2}
                training:
                  epochs: 3
                  metrics: [accuracy, error_rate]
                  csv_log: \(dir.path)/log.csv
                  plot: \(dir.path)/curves/plot.svg
                summary: {dir: \(dir.path)/tb, summary_every: 10}
                """
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        let result = try Trainer.run(["--config", file.path, "--verbose", "2"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("Epoch 3/3"), result.output)
        XCTAssertTrue(result.output.contains("val_") == false && result.output.contains("error_rate: "), result.output)
        XCTAssertTrue(result.output.contains("lr: "), result.output)
        let csv = try String(contentsOfFile: dir.path + "/log.csv", encoding: .utf8)
        XCTAssertEqual(csv.split(separator: "\n").first, "epoch,loss,accuracy,error_rate,lr")
        XCTAssertEqual(History.plotted(in: dir.path + "/curves/plot.svg").map(\.epoch), [1, 2, 3], "training.plot")
        let events = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/tb")
        XCTAssertEqual(events.count, 1)
        XCTAssertTrue(events[0].hasPrefix("events.out.tfevents."), events[0])
        let bad = try Trainer.run(["--config", "Configs/digits-mlp.yml", "--verbose", "3"])
        XCTAssertNotEqual(bad.status, 0)
    }
}

extension TrainingConfigTests {
    func testFindLRWritesThePlotAndSuggestsARange() throws {
        let dir = try Scratch.directory("tefla-lr", for: self)
        let plot = dir.appendingPathComponent("lr.svg").path
        let file = dir.appendingPathComponent("lr.yml")
        let text = try String(
            contentsOf: ConfigTests.root.appendingPathComponent("Configs/digits-lr-finder.yml"), encoding: .utf8)
        try text.replacingOccurrences(of: "plot: lr_finder.svg", with: "plot: \(plot)").write(
            to: file, atomically: true, encoding: .utf8)
        let config = try TrainConfig.parse(yaml: text, file: "digits-lr-finder.yml")
        XCTAssertEqual(config.lrFinder, LRFinderSpec(startLR: 1e-6, endLR: 10, iterations: 200, plot: "lr_finder.svg"))
        let result = try Trainer.run(["--config", file.path, "--find-lr"])
        XCTAssertEqual(result.status, 0, result.error)
        XCTAssertTrue(result.output.contains("lr finder: suggested range"), result.output)
        XCTAssertFalse(result.output.contains("Epoch "), result.output)
        XCTAssertTrue(try String(contentsOfFile: plot, encoding: .utf8).hasPrefix("<svg"))
        XCTAssertThrowsError(
            try TrainConfig.parse(yaml: head + "lr_finder: {start_lr: 1, end_lr: 0.1}\n", file: "x.yml")
        ) { error in
            XCTAssertTrue("\(error)".contains("lr_finder.end_lr: must be greater than start_lr"), "\(error)")
        }
    }

    /// Validated values also reach the objects the trainer builds from them.
    /// `loss:` names a built-in loss with its parameters; the mode follows its labels, and a
    /// wrong name, a parameter it does not take or a clash with the mode names the line.
    func testTheLossSectionReachesTheLoss() throws {
        let head = """
            model: {layers: [{type: dense, units: 10}]}
            data: {train_dir: Data/digits/train}
            optimizer: {name: adam}

            """
        func parse(_ tail: String) throws -> TrainConfig { try TrainConfig.parse(yaml: head + tail, file: "loss.yml") }
        let focal = try XCTUnwrap(try parse("loss: {name: focal, gamma: 1.5, ignore_index: 255}\n").loss.function as? FocalLoss)
        XCTAssertEqual([focal.gamma, focal.alpha], [1.5, 1])
        XCTAssertEqual(focal.ignoreIndex, 255)
        let weighted = try parse("loss: {name: cross_entropy, class_weights: [1, 2.5], label_smoothing: 0.1}\n")
        let ce = try XCTUnwrap(weighted.loss.function as? SoftmaxCrossEntropy)
        XCTAssertEqual(ce.classWeights, [1, 2.5])
        XCTAssertEqual(ce.labelSmoothing, 0.1)
        let bce = try parse("loss: {name: binary_cross_entropy, pos_weight: 3}\n")
        XCTAssertEqual((bce.loss.function as? BinaryCrossEntropy)?.positiveWeights, [3])
        XCTAssertEqual(bce.taskMode, .multiLabel(threshold: 0.5), "a 0/1 loss makes the task multi-label")
        let huber = try parse("loss: huber\n")
        XCTAssertEqual(huber.loss.name, "huber")
        XCTAssertEqual(huber.taskMode, .regression)
        XCTAssertEqual(try parse("loss: dice\n").taskMode, .classification)

        XCTAssertThrowsError(try parse("loss: {name: focal, delta: 2}\ntraining: {mode: regression}\n")) { error in
            let text = "\(error)"
            XCTAssertTrue(
                text.contains("loss.delta") && text.contains("does not apply to focal, which takes gamma, alpha, ignore_index"), text)
            XCTAssertTrue(text.contains("focal is a classification loss, but training.mode is regression"), text)
            XCTAssertTrue(text.contains("line 4, column 21: loss.delta"), text)
        }
        XCTAssertThrowsError(try parse("loss: hinge\n")) { error in
            XCTAssertTrue("\(error)".contains("unknown loss 'hinge'; one of binary_cross_entropy, dice, focal"), "\(error)")
        }
    }

    /// The layers of modern networks from the config: embeddings and layer norm for tokens,
    /// group norm and upsampling for images, the new activations; a shape that cannot flow is
    /// named by its layer.
    func testTheNewLayerTypesBuildAndNameTheirShapes() throws {
        func model(_ layers: String, sample: [Int]) throws -> Sequential {
            let built = try Self.model(layers, sample: sample)
            guard let chain = built as? Sequential else { throw LearnerError.invalidArgument("\(type(of: built)) is not a chain") }
            return chain
        }
        let tokens = try model(
            "{type: embedding, count: 10, units: 6}, {type: layer_norm}, {type: flatten}, "
                + "{type: dense, units: 16, activation: silu}, {type: leaky_relu, negative_slope: 0.1}, {type: dense, units: 2}",
            sample: [8])
        XCTAssertEqual(try tokens.outputShape(forInput: [8]), [2])
        XCTAssertTrue(tokens.layers[0] is Embedding && tokens.layers[1] is LayerNorm)
        XCTAssertEqual((tokens.layers[4] as? LeakyReLU)?.negativeSlope, 0.1)
        let image = try model(
            "{type: conv2d, filters: 4, padding: same}, {type: group_norm, groups: 2}, {type: upsample, scale: 2}, {type: softmax}",
            sample: [1, 8, 8])
        XCTAssertEqual(try image.outputShape(forInput: [1, 8, 8]), [4, 16, 16])
        XCTAssertThrowsError(try model("{type: conv2d, filters: 4}, {type: group_norm, groups: 3}", sample: [1, 8, 8])) { error in
            XCTAssertTrue("\(error)".contains("model.layers[1]: group_norm: 3 groups must divide the 4 channels"), "\(error)")
        }
    }

    static func model(_ layers: String, sample: [Int]) throws -> Module {
        let yaml = """
            model: {layers: [\(layers)]}
            data: {train_dir: Data/digits/train}
            optimizer: {name: adam}
            """
        return try TrainConfig.parse(yaml: yaml, file: "layers.yml").makeModel(sampleShape: sample)
    }

    /// Layers named and wired by `inputs:` make a graph: a U-Net-like skip through a transposed
    /// convolution, a concatenation, a grouped convolution and a residual sum; parameters are
    /// named by the layer names; a wrong wiring is an error naming the layer's line.
    func testNamedLayersWireAGraph() throws {
        let layers = """
            {type: conv2d, filters: 4, padding: same, name: enc1},
            {type: max_pool, name: down},
            {type: conv2d, filters: 8, padding: same, dilation: 2, name: mid},
            {type: conv_transpose2d, filters: 4, kernel_size: 2, stride: 2, padding: 0, name: up},
            {type: concat, inputs: [enc1, up], name: skip},
            {type: conv2d, filters: 4, padding: same, groups: 2, name: fuse},
            {type: add, inputs: [fuse, enc1]},
            {type: conv2d, filters: 3, kernel_size: 1}
            """
        let graph = try XCTUnwrap(Self.model(layers, sample: [1, 8, 8]) as? LayerGraph)
        XCTAssertEqual(try graph.outputShape(forInput: [1, 8, 8]), [3, 8, 8])
        XCTAssertEqual(try graph.nodeShapes(forInput: [1, 8, 8])[4], [8, 8, 8], "the concatenation's channels")
        let names = graph.namedParameters.map(\.name)
        XCTAssertEqual(
            names,
            [
                "enc1.weight", "enc1.bias", "mid.weight", "mid.bias", "up.weight", "up.bias", "fuse.weight", "fuse.bias", "7.weight",
                "7.bias",
            ])
        let table = try graph.summary(inputShape: [1, 8, 8])
        XCTAssertTrue(table.contains("concat(axis 1) ← enc1, up") && table.contains("add ← fuse, enc1"), table)
        XCTAssertTrue(table.contains("Trainable params: \(graph.parameterCount)"), table)
        XCTAssertEqual((graph.children.first { $0.0 == "mid" }?.1 as? Conv2D)?.dilation, 2)
        XCTAssertEqual((graph.children.first { $0.0 == "fuse" }?.1 as? Conv2D)?.groups, 2)
        var generator = RandomGenerator(seed: 5)
        let y = graph(Tensor.randomNormal([2, 1, 8, 8], generator: &generator))
        XCTAssertEqual(y.shape, [2, 3, 8, 8])
        // The gradient reaches the first layer through both paths.
        let grads = gradients(of: y.sum(), wrt: [graph.namedParameters[0].parameter.value])
        XCTAssertGreaterThan(grads[0].scalars.map(abs).max() ?? 0, 0)

        func failure(_ layers: String, _ sample: [Int] = [1, 8, 8]) -> String {
            do {
                _ = try Self.model(layers, sample: sample)
                return "no error"
            } catch { return "\(error)" }
        }
        let unknown = failure("{type: conv2d, filters: 4, name: enc1}, {type: concat, inputs: [enc1, enc9]}")
        XCTAssertTrue(
            unknown.contains("model.layers[1]: concat: inputs: 'enc9' names no layer above this one (known: input, enc1)"), unknown)
        XCTAssertTrue(unknown.contains("line 1"), unknown)
        let later = failure("{type: conv2d, filters: 4, inputs: [b]}, {type: relu, name: b}")
        XCTAssertTrue(later.contains("model.layers[0]: conv2d: inputs: 'b' is a later layer"), later)
        let mismatch = failure("{type: conv2d, filters: 4, name: a}, {type: max_pool, name: b}, {type: concat, inputs: [a, b]}")
        XCTAssertTrue(
            mismatch.contains("model.layers[2]: concat: input 1 (b) gives [4, 3, 3], input 0 (a) [4, 6, 6]; only axis 1 may differ"),
            mismatch)
        let sum = failure("{type: conv2d, filters: 4, padding: same, name: a}, {type: add, inputs: [a, input]}")
        XCTAssertTrue(sum.contains("model.layers[1]: add: input 1 (input) gives [1, 8, 8], input 0 (a) [4, 8, 8]"), sum)
        let single = failure("{type: conv2d, filters: 4, name: a}, {type: add, inputs: [a]}")
        XCTAssertTrue(single.contains("add: merges two or more layers"), single)
        let twice = failure("{type: conv2d, filters: 4, name: a}, {type: relu, name: a}")
        XCTAssertTrue(twice.contains("model.layers[1]: relu: the name 'a' is taken"), twice)
    }

    /// A transformer classifier from the config: token embeddings, learned positions, encoder
    /// blocks, mean pooling, a dense head.
    func testATransformerClassifierBuildsFromTheConfig() throws {
        let layers = """
            {type: embedding, count: 12, units: 16}, {type: positional_embedding, count: 8},
            {type: transformer_encoder, heads: 4, feed_forward: 32, rate: 0, norm_first: true, activation: gelu},
            {type: multi_head_attention, heads: 2}, {type: global_avg_pool_1d}, {type: dense, units: 4}
            """
        let model = try XCTUnwrap(Self.model(layers, sample: [8]) as? Sequential)
        XCTAssertEqual(try model.outputShape(forInput: [8]), [4])
        let block = try XCTUnwrap(model.layers[2] as? TransformerEncoderBlock)
        XCTAssertTrue(block.normFirst && block.activation == .gelu && block.feedForwardDimension == 32 && block.selfAttention.heads == 4)
        XCTAssertTrue(model.namedParameters.map(\.name).contains("2.self_attn.in_proj_weight"))
        let y = model(Tensor(shape: [2, 8], scalars: (0..<16).map { Float($0 % 12) }))
        XCTAssertEqual(y.shape, [2, 4])
        let heads = """
            {type: embedding, count: 12, units: 10}, {type: transformer_encoder, heads: 4}
            """
        XCTAssertThrowsError(try Self.model(heads, sample: [8])) { error in
            XCTAssertTrue("\(error)".contains("model.layers[1]: transformer_encoder: 4 heads must divide the width 10"), "\(error)")
        }
        XCTAssertThrowsError(try Self.model("{type: transformer_encoder, heads: 2}", sample: [8])) { error in
            XCTAssertTrue("\(error)".contains("needs [tokens, features] samples, gets [8] (an embedding layer first"), "\(error)")
        }
    }

    /// micro_dl's U-Net from the zoo, with its options; an option another zoo model does not take is named.
    func testTheUNetOfTheZooTakesItsOptions() throws {
        let yaml = """
            model: {name: unet, classes: 3, depth: 2, base_filters: 8, residual: true, upsampling: bilinear, dropout: 0.1}
            data: {train_dir: Data/digits/train}
            optimizer: {name: adam}
            """
        let model = try TrainConfig.parse(yaml: yaml, file: "unet.yml").makeModel(sampleShape: [3, 32, 32])
        let unet = try XCTUnwrap((model as? Sequential)?.layers.last as? UNet)
        XCTAssertEqual(unet.depth, 2)
        XCTAssertEqual(unet.down[0].conv1.outputChannels, 8)
        XCTAssertTrue(unet.down[0].residual && unet.up[0] is Sequential)
        XCTAssertEqual(try model.outputShape(forInput: [3, 32, 32]), [3, 32, 32])
        XCTAssertThrowsError(try TrainConfig.parse(yaml: "model: {name: mlp, classes: 2, depth: 3}\ndata: {train_dir: x}\n", file: "m.yml"))
        {
            XCTAssertTrue("\($0)".contains("model.depth: is a unet option; mlp does not take it"), "\($0)")
        }
    }

    func testValuesReachTheObjects() throws {
        let yaml = """
            model: {layers: [{type: dense, units: 10}]}
            data: {train_dir: Data/digits/train}
            optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.8, nesterov: true, weight_decay: 0.01}
            schedule: {name: step, step_size: 7, gamma: 0.3}
            training: {label_smoothing: 0.1, clip_value: 0.5, clip_norm: 2, ema_decay: 0.9, accumulation_steps: 3}
            """
        let cfg = try TrainConfig.parse(yaml: yaml, file: "values.yml")
        let sgd = try XCTUnwrap(cfg.makeOptimizer() as? SGD)
        XCTAssertEqual(sgd.momentum, 0.8)
        XCTAssertTrue(sgd.nesterov)
        XCTAssertEqual(sgd.weightDecay, 0.01)
        let crossEntropy = try XCTUnwrap(cfg.loss.function as? SoftmaxCrossEntropy, "loss \(cfg.loss.name)")
        XCTAssertEqual(crossEntropy.labelSmoothing, 0.1)
        let options = cfg.trainingOptions(verbose: 0)
        XCTAssertEqual(options.clipValue, 0.5)
        XCTAssertEqual(options.clipNorm, 2)
        XCTAssertEqual(options.emaDecay, 0.9)
        XCTAssertEqual(options.accumulationSteps, 3)
        let step = try XCTUnwrap(options.schedule as? StepDecayLR)
        XCTAssertEqual(step.gamma, 0.3)
        XCTAssertEqual(step.stepSize, 7)
        func schedule(_ body: String) throws -> any LearningRateSchedule {
            let text = yaml.replacingOccurrences(of: "{name: step, step_size: 7, gamma: 0.3}", with: body)
            return try XCTUnwrap(try TrainConfig.parse(yaml: text, file: "values.yml").trainingOptions(verbose: 0).schedule)
        }
        let polynomial = try XCTUnwrap(try schedule("{name: polynomial, power: 2.5, end_lr: 0.001}") as? PolynomialDecayLR)
        XCTAssertEqual(polynomial.power, 2.5)
        XCTAssertEqual(polynomial.endLR, 0.001)
        let cosine = try XCTUnwrap(try schedule("{name: cosine, warmup_steps: 5, min_lr: 0.002}") as? CosineWarmupLR)
        XCTAssertEqual(cosine.warmupSteps, 5)
        XCTAssertEqual(cosine.minLR, 0.002)
        let cyclic = try XCTUnwrap(try schedule("{name: cyclic, max_lr: 1, base_momentum: 0.7, max_momentum: 0.95}") as? CyclicLR)
        XCTAssertEqual(cyclic.momentumRange?.base, 0.7)
        XCTAssertEqual(cyclic.momentumRange?.max, 0.95)
        // TaskMode.multiLabel is `multi_label`; earlier configs' `multilabel` still reads as it.
        for spelling in ["multi_label", "multilabel"] {
            let text = yaml.replacingOccurrences(of: "training: {", with: "training: {mode: \(spelling), ")
            XCTAssertEqual(try TrainConfig.parse(yaml: text, file: "values.yml").loss.name, "binary_cross_entropy", spelling)
        }
    }
}
