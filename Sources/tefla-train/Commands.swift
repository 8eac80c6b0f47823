import ArgumentParser
import Foundation
import Learner

/// `tefla-train [train]`: trains as the config says (the default subcommand).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model (the default).",
        usage: "tefla-train [train] --config <file> [--gpu <n>] [--resume] [options]")

    @OptionGroup var options: RunOptions

    @Option(name: .long, help: "Overrides training.epochs.")
    var epochs: Int?

    @Option(name: .long, parsing: .unconditional, help: "Overrides training.start_epoch (counts from 1).")
    var startEpoch: Int?

    @Flag(name: .long, help: "Continue from the newest checkpoint in checkpoint.weights_dir.")
    var resume = false

    @Flag(name: .long, help: "With --start-epoch: allow deleting the checkpoints newer than the one the run continues from.")
    var force = false

    @Flag(name: .customLong("find-lr"), help: "Run the learning-rate range test instead (as `tefla-train lr-find`).")
    var findLR = false

    @Option(
        name: .customLong("collective-timeout"),
        help: "Under mpirun: seconds a rank waits for the others before it stops with an error (default 300).")
    var collectiveTimeout: Double = 300

    func validate() throws {
        if let epochs, epochs < 1 { throw ValidationError("--epochs must be >= 1, got \(epochs)") }
        if let startEpoch, startEpoch < 1 { throw ValidationError("--start-epoch counts from 1, got \(startEpoch)") }
    }

    func run() throws {
        var session = try Session(options) { cfg in
            if let epochs { cfg.epochs = epochs }
            if let startEpoch { cfg.startEpoch = startEpoch }
        }
        var replicas: ReplicaLaunch?
        do {
            try train(&session, replicas: &replicas)
        } catch let stop as ExitCode where stop.rawValue > 128 {
            // Every rank stopped at the same step (StopOnSignal agrees on it): end together.
            replicas?.finish()
            throw stop
        } catch {
            // A rank that fails (or finds a peer silent) ends the whole MPI job rather than wait.
            replicas?.abort(after: error)
            throw error
        }
        replicas?.finish()
    }

    private func train(_ session: inout Session, replicas: inout ReplicaLaunch?) throws {
        try reportingErrors {
            // From here a stop signal ends the run at a step boundary with a checkpoint (one
            // arriving while the data loads stops the run after its first step).
            let stopOnSignal = findLR ? nil : try StopOnSignal()
            let training = try session.data(session.cfg.trainDir, training: true)
            let validation = try session.cfg.valDir.map { try session.data($0, training: false, shape: training.sampleShape) }
            let learner = try session.makeLearner(sampleShape: training.sampleShape)
            learner.checkpoint?.discardsNewerCheckpoints = force
            if let balanced = try session.balancedClassWeights(for: training) { learner.options.classWeights = balanced }
            if findLR {
                try LRFind.sweep(learner, session.cfg, training.source)
                return
            }
            // Under mpirun every process is one data-parallel rank; rank 0 alone prints and writes.
            replicas = try ReplicaLaunch.join(learner, timeout: collectiveTimeout)
            let verbose = (replicas?.rank ?? 0) == 0 ? session.verbose : 0
            if resume || session.cfg.checkpoint.resume {
                guard let dir = learner.checkpoint?.directory else {
                    throw fail("--resume needs checkpoint.weights_dir in \(options.config)")
                }
                session.cfg.startEpoch = try replicas?.rootFirst { try learner.resumeEpoch() } ?? learner.resumeEpoch()
                if verbose > 0 {
                    print(
                        session.cfg.startEpoch > 1
                            ? "tefla-train: resuming at epoch \(session.cfg.startEpoch) from \(dir.path)"
                            : "tefla-train: no checkpoint in \(dir.path) yet; starting at epoch 1")
                }
                if session.cfg.startEpoch > session.cfg.epochs {
                    print("tefla-train: the run already finished its \(session.cfg.epochs) epochs")
                    return
                }
            }
            if verbose > 0, let replicas {
                print("tefla-train: \(replicas.size) data-parallel ranks (\(MPICommunicator.library)); each takes its share of every batch")
            }
            if verbose > 0 {
                print(
                    "tefla-train: \(training.count) training samples from \(session.cfg.trainDir)"
                        + (validation.map { ", \($0.count) validation samples from \(session.cfg.valDir ?? "")" } ?? "")
                        + "; model: \(learner.model.parameterCount) parameters; device: \(session.deviceName)")
            }
            let cfg = session.cfg
            if let stopOnSignal { learner.callbacks.append(stopOnSignal) }
            let history = try learner.fit(
                training.source, validation: validation?.source, startEpoch: cfg.startEpoch,
                epochs: cfg.epochs, batchSize: cfg.batchSize, dropLastBatch: cfg.dropLastBatch,
                iterationsPerEpoch: cfg.data.iterationsPerEpoch)
            if let signal = learner.stoppedBySignal {
                let saved =
                    learner.checkpoint.map { "checkpoint saved in \($0.directory.path); continue with --resume" }
                    ?? "nothing saved (no checkpoint.weights_dir)"
                FileHandle.standardError.write(
                    Data("tefla-train: stopped by \(StopSignals.name(signal)) after step \(learner.globalStep); \(saved)\n".utf8))
                throw ExitCode(128 + signal)
            }
            if verbose > 0, let last = history.epochs.last {
                let acc =
                    last.validationAccuracy.map { String(format: "final val_accuracy: %.4f", $0) }
                    ?? String(format: "final loss: %.4f", last.trainLoss)
                print("tefla-train: done, \(acc)")
            }
        }
    }
}

/// `tefla-train lr-find`: the learning-rate range test (Smith; fastai's `lr_find`).
struct LRFind: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lr-find", abstract: "Sweep the learning rate (lr_finder section), write the plot, print a suggested range.",
        usage: "tefla-train lr-find --config <file> [--gpu <n>] [options]")

    @OptionGroup var options: RunOptions

    func run() throws {
        let session = try Session(options)
        try reportingErrors {
            let training = try session.data(session.cfg.trainDir, training: true)
            let learner = try session.makeLearner(sampleShape: training.sampleShape)
            try LRFind.sweep(learner, session.cfg, training.source)
        }
    }

    static func sweep(_ learner: SupervisedLearner, _ cfg: TrainConfig, _ training: any DataSource) throws {
        let spec = cfg.lrFinder
        let result = try learner.findLearningRate(
            training: training, startLR: Float(spec.startLR), endLR: Float(spec.endLR),
            iterations: spec.iterations, batchSize: cfg.batchSize)
        do {
            try result.writeSVG(to: spec.plot)
        } catch {
            throw fail("cannot write the LR finder plot '\(spec.plot)': \(error)")
        }
        let range = result.suggestedRange
        print(
            String(
                format: "lr finder: %d steps from %.3g to %.3g%@; steepest descent at %.3g, lowest loss at %.3g",
                result.learningRates.count, spec.startLR, Double(result.learningRates.last ?? 0),
                result.diverged ? " (stopped: loss diverged)" : "", result.steepest, result.minimumLossRate))
        print(String(format: "lr finder: suggested range %.3g … %.3g; plot written to %@", range.lower, range.upper, spec.plot))
    }
}

/// The data and the trained weights that `evaluate` and `predict` run on.
struct TrainedModelOptions: ParsableArguments {
    @Option(name: .long, help: "TFRecord directory to run on (default: data.val_dir).")
    var data: String?

    @Option(name: .long, help: "A checkpoint folder (default: the newest in checkpoint.weights_dir).")
    var checkpoint: String?

    @Flag(name: .long, help: "Test-time augmentation: average the predictions for each image and its mirror image.")
    var tta = false

    /// The data set (images brought to the training images' shape; unlabelled records allowed
    /// when `labelsRequired` is false), a learner with the trained weights loaded, and the data's directory.
    func open(_ session: Session, command: String, labelsRequired: Bool = true) throws -> (SessionData, SupervisedLearner, String) {
        guard let dir = data ?? session.cfg.valDir else { throw fail("\(command) needs --data DIR or data.val_dir") }
        let shape = try session.trainingImageShape(for: dir)
        let dataset = try session.data(dir, training: false, shape: shape, labelsRequired: labelsRequired)
        let learner = try session.makeLearner(sampleShape: dataset.sampleShape)
        try session.loadTrainedWeights(learner, checkpoint: checkpoint)
        learner.options.testTimeFlip = tta
        return (dataset, learner, dir)
    }
}

/// `tefla-train evaluate`: loss and metrics of trained weights on a data set.
struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate trained weights (loss and the config's metrics).",
        usage: "tefla-train evaluate --config <file> [--data <dir>] [options]")

    @OptionGroup var options: RunOptions
    @OptionGroup var trained: TrainedModelOptions

    func run() throws {
        let session = try Session(options)
        try reportingErrors {
            let (dataset, learner, dir) = try trained.open(session, command: "evaluate")
            let result = try learner.evaluateMetrics(dataset.source, batchSize: Swift.max(session.cfg.batchSize, 256))
            let metrics = result.metrics.sorted { $0.key < $1.key }.map { String(format: "%@: %.4f", $0.key, $0.value) }
            print(
                ([String(format: "evaluate: %d samples from %@", dataset.count, dir), String(format: "loss: %.4f", result.loss)]
                    + metrics).joined(separator: " - "))
        }
    }
}

/// `tefla-train predict`: the model's outputs for every record, as a CSV.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the model's outputs for a data set to a CSV file.",
        usage: "tefla-train predict --config <file> [--data <dir>] [--top-k k] [options]",
        discussion: """
            --data takes shards (labelled or not) or a plain folder of JPEG/PNG files. The CSV has the
            record's index, its image/filename (or file name) when there is one, its label (empty when
            none), then the predicted class and the class probabilities, or the --top-k classes.
            A model with dense outputs (a U-Net) writes one PNG per image instead, into the folder
            <output>-images beside the CSV: each pixel's class (segmentation) or the output image
            (image-to-image), named after image/filename; the CSV lists the files.
            """)

    @OptionGroup var options: RunOptions
    @OptionGroup var trained: TrainedModelOptions

    @Option(name: .long, help: "The CSV file to write.")
    var output: String = "predictions.csv"

    @Option(name: .customLong("top-k"), help: "Classification: the k likeliest classes and their probabilities instead of every class's.")
    var topK: Int?

    func validate() throws {
        if let topK, topK < 1 { throw ValidationError("--top-k must be >= 1, got \(topK)") }
    }

    func run() throws {
        let session = try Session(options)
        try reportingErrors {
            let (dataset, learner, _) = try trained.open(session, command: "predict", labelsRequired: false)
            let classification = learner.loss.isClassification
            if topK != nil && !classification { throw fail("--top-k ranks classes; \(options.config) trains mode \(session.cfg.mode)") }
            let multiLabel = session.cfg.mode == "multi_label"
            var lines: [String] = []
            var named = false
            var index = 0
            let batches = try dataset.source.batches(BatchRequest(epoch: 1, batchSize: 256, training: false, seed: session.cfg.seed))
            let denseFolder = DensePredictions.folder(forCSV: output)
            var taken = Set<String>()
            while let batch = try batches.next() {
                let raw = learner.predict(batch.inputs.to(learner.device))
                if raw.rank == 4 {
                    // Dense outputs: one PNG per image (a class mask, or the output image) beside the CSV.
                    if lines.isEmpty {
                        named = batch.names?.contains { !$0.isEmpty } ?? false
                        try FileManager.default.createDirectory(atPath: denseFolder, withIntermediateDirectories: true)
                        lines.append((["index"] + (named ? ["filename"] : []) + ["output_file"]).joined(separator: ","))
                    }
                    let files = try DensePredictions.write(
                        raw, classes: classification, names: batch.names ?? [], firstIndex: index, into: denseFolder, taken: &taken)
                    for (row, file) in files.enumerated() {
                        lines.append(
                            ([String(index)] + (named ? [CSVField.quoted(batch.names?[row] ?? "")] : []) + [CSVField.quoted(file)])
                                .joined(separator: ","))
                        index += 1
                    }
                    continue
                }
                var outputs = raw
                if classification { outputs = outputs.softmax() }
                if multiLabel { outputs = outputs.sigmoid() }
                let width = outputs.shape.last ?? 1
                let k = Swift.min(topK ?? width, width)
                let values = outputs.scalars
                let labels = batch.labels.scalars
                let labelWidth = labels.count / Swift.max(batch.count, 1)
                if lines.isEmpty {
                    named = batch.names?.contains { !$0.isEmpty } ?? false
                    var header = ["index"] + (named ? ["filename"] : []) + ["label"] + (classification ? ["prediction"] : [])
                    if topK != nil {
                        header += (1...k).flatMap { ["top\($0)", "top\($0)_p"] }
                    } else {
                        header += (0..<width).map { classification || multiLabel ? "p\($0)" : "output\($0)" }
                    }
                    lines.append(header.joined(separator: ","))
                }
                for row in 0..<batch.count {
                    let rowValues = Array(values[(row * width)..<((row + 1) * width)])
                    let label = labels[(row * labelWidth)..<((row + 1) * labelWidth)].map { $0.isNaN ? "" : String(format: "%g", $0) }
                    var fields = [String(index)]
                    if named { fields.append(CSVField.quoted(batch.names?[row] ?? "")) }
                    fields.append(label.joined(separator: " "))
                    let ranked = rowValues.indices.sorted { (rowValues[$0], $1) > (rowValues[$1], $0) }
                    if classification, let best = ranked.first { fields.append(String(best)) }
                    if topK != nil {
                        fields += ranked.prefix(k).flatMap { [String($0), String(format: "%.6g", rowValues[$0])] }
                    } else {
                        fields += rowValues.map { String(format: "%.6g", $0) }
                    }
                    lines.append(fields.joined(separator: ","))
                    index += 1
                }
            }
            try AtomicFile.write(Data((lines.joined(separator: "\n") + "\n").utf8), to: output)
            if session.verbose > 0 { print("predict: \(dataset.count) rows written to \(output)") }
        }
    }
}

/// The PNGs `predict` writes for dense outputs ([N, C, H, W]): each pixel's most likely class
/// (segmentation, a one-channel PNG of class indices as DeepLab's masks are) or the output
/// image clipped to [0, 1] (image-to-image), in a folder named after the CSV, each file named
/// after the record's image/filename (its extension made .png) or its index.
enum DensePredictions {
    static func folder(forCSV csv: String) -> String {
        let url = URL(fileURLWithPath: csv)
        return url.deletingPathExtension().path + "-images"
    }

    /// Writes one PNG per image of `outputs`; `taken` holds the file names used so far (a name
    /// used twice gets the record's index appended).
    static func write(
        _ outputs: Tensor, classes: Bool, names: [String], firstIndex: Int, into folder: String, taken: inout Set<String>
    ) throws -> [String] {
        let (n, c, h, w) = (outputs.shape[0], outputs.shape[1], outputs.shape[2], outputs.shape[3])
        let channels = classes ? 1 : c
        guard channels == 1 || channels == 3 else {
            throw LearnerError.invalidArgument("predict writes 1- or 3-channel images; the model gives \(channels) channels")
        }
        // Class indices per pixel, or the images in the encoder's interleaved (HWC) order.
        let values = (classes ? outputs.argmax(alongAxis: 1) : outputs.transposed([0, 2, 3, 1])).to(.cpu).scalars
        let perImage = h * w * channels
        var files: [String] = []
        for i in 0..<n {
            let pixels = values[(i * perImage)..<((i + 1) * perImage)].map { v -> UInt8 in
                classes ? UInt8(Swift.min(Swift.max(v, 0), 255)) : UInt8((Swift.min(Swift.max(v, 0), 1) * 255).rounded())
            }
            let stem =
                names.indices.contains(i) && !names[i].isEmpty
                ? URL(fileURLWithPath: names[i]).deletingPathExtension().lastPathComponent : String(format: "%06d", firstIndex + i)
            var file = stem + ".png"
            if taken.contains(file) { file = stem + String(format: "-%06d.png", firstIndex + i) }
            taken.insert(file)
            let png = try ImageEncoder.png(pixels, height: h, width: w, channels: channels)
            try AtomicFile.write(Data(png), to: folder + "/" + file)
            files.append(folder + "/" + file)
        }
        return files
    }
}

/// A CSV field: quoted (with quotes doubled) when it holds a comma, quote or line break.
enum CSVField {
    static func quoted(_ text: String) -> String {
        guard text.contains(where: { ",\"\n\r".contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

/// `tefla-train summary`: layers, output shapes and parameter counts (Keras' `summary`).
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the model's layers, output shapes and parameter counts.",
        usage: "tefla-train summary --config <file> [--input-size <n>]")

    @OptionGroup var options: RunOptions

    @Option(name: .long, help: "Input values per sample (default: read from data.train_dir).")
    var inputSize: Int?

    func run() throws {
        let session = try Session(options)
        try reportingErrors {
            let shape = try inputSize.map { [$0] } ?? session.data(session.cfg.trainDir, training: false).sampleShape
            let model = try session.cfg.makeModel(sampleShape: shape)
            print(try model.summary(inputShape: shape))
        }
    }
}
