import Foundation

/// What a checkpoint holds beside the weights: enough to continue the run exactly.
public struct TrainingState: Codable, Equatable {
    /// The epoch whose end the checkpoint marks (1-based); a resumed run starts at `epoch + 1`.
    public var epoch: Int
    /// Optimizer steps taken: the key of the schedules' position and of every random draw.
    public var globalStep: UInt64
    /// The run's seed: shuffles and dropout masks are pure functions of (seed, epoch/step, index).
    public var seed: UInt64
    public var learningRate: Float
    public var optimizer: String
    public var optimizerStepCount: Int
    public var optimizerSteps: [String: Int]
    public var libraryVersion: String
    /// The resolved configuration of the run, when it came from a config file.
    public var config: String?
    /// Free-form values (metrics of the epoch, the monitored value of a best checkpoint).
    public var values: [String: Double]
    /// For a checkpoint taken within an epoch: batches of epoch `epoch + 1` already trained
    /// (nil at an epoch's end).
    public var batchInEpoch: Int?
    /// Within an epoch: the running training loss sum and sample count, and each metric's
    /// statistics (JSON), so the resumed epoch logs what an uninterrupted one would.
    public var epochLossSum: Double?
    public var epochSamples: Int?
    public var metricStates: [String]?
    /// Updates folded into the weight average (its warm-up position), when one is kept.
    public var emaUpdates: Int?

    public init(
        epoch: Int, globalStep: UInt64, seed: UInt64, learningRate: Float, optimizer: String,
        optimizerStepCount: Int = 0, optimizerSteps: [String: Int] = [:], config: String? = nil,
        values: [String: Double] = [:]
    ) {
        self.epoch = epoch
        self.globalStep = globalStep
        self.seed = seed
        self.learningRate = learningRate
        self.optimizer = optimizer
        self.optimizerStepCount = optimizerStepCount
        self.optimizerSteps = optimizerSteps
        self.libraryVersion = LearnerVersion.string
        self.config = config
        self.values = values
    }
}

/// A weights directory (tefla's `weights_dir`): one sub-folder per saved epoch,
/// `epoch-0003/{model.safetensors, optimizer.safetensors, state.json}`, and a `latest` file
/// naming the newest complete one, written last.
///
/// A checkpoint is written into a temporary folder and renamed into place only when complete,
/// `latest` is replaced atomically after that, and old checkpoints are pruned only then: a
/// crash at any moment leaves the previous checkpoint intact and `latest` pointing at a
/// complete one.
public struct WeightsDirectory {
    public let path: String
    /// Keep at most this many epoch checkpoints (oldest pruned first); nil keeps all.
    public var maxToKeep: Int?

    public static let modelFile = "model.safetensors"
    public static let optimizerFile = "optimizer.safetensors"
    public static let stateFile = "state.json"

    public init(path: String, maxToKeep: Int? = nil) {
        self.path = path
        self.maxToKeep = maxToKeep
    }

    public static func name(epoch: Int) -> String { String(format: "epoch-%04d", epoch) }

    /// The folder name of a checkpoint taken within an epoch, after `step` optimizer steps.
    public static func name(step: UInt64) -> String { "step-" + String(format: "%010llu", step) }

    /// The folder name a checkpoint of `state` is saved under.
    static func name(of state: TrainingState) -> String {
        state.batchInEpoch == nil ? name(epoch: state.epoch) : name(step: state.globalStep)
    }

    /// Whether `name` is a checkpoint folder name this directory writes (`epoch-NNNN`, `step-N…`).
    static func isCheckpointName(_ name: String) -> Bool {
        (name.hasPrefix("epoch-") && Int(name.dropFirst(6)) != nil) || (name.hasPrefix("step-") && UInt64(name.dropFirst(5)) != nil)
    }

    public func folder(epoch: Int) -> String { path + "/" + WeightsDirectory.name(epoch: epoch) }

    /// Saves model, optimizer state and training state as the checkpoint of `state.epoch`
    /// (or as `best` when `name` is given), then updates `latest` and prunes.
    ///
    /// `extra` writes further files into the checkpoint folder before it is moved into place.
    public func save(
        model: Module, optimizer: Optimizer, state: TrainingState, name: String? = nil,
        extra: (String) throws -> Void = { _ in }
    ) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
        removeLeftovers()
        let finalName = name ?? WeightsDirectory.name(of: state)
        let final = path + "/" + finalName
        let temporary = path + "/." + finalName + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: temporary)
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)

        let named = model.stateTensors
        try model.saveWeights(to: temporary + "/" + WeightsDirectory.modelFile)
        let optimizerState = optimizer.exportState(named)
        try SafeTensors.write(
            optimizerState.tensors, metadata: ["optimizer": String(describing: type(of: optimizer))],
            to: temporary + "/" + WeightsDirectory.optimizerFile)
        var full = state
        full.optimizerSteps = optimizerState.steps
        full.optimizerStepCount = optimizerState.stepCount
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(encoder.encode(full), to: temporary + "/" + WeightsDirectory.stateFile)
        try extra(temporary)
        AtomicFile.syncDirectory(temporary)
        CrashPoint.reach("checkpoint-folder-written")

        // Swap the complete folder into place; an older one of the same name goes only after.
        let displaced = path + "/." + finalName + ".old-\(getpid())"
        if fm.fileExists(atPath: final) { try fm.moveItem(atPath: final, toPath: displaced) }
        try fm.moveItem(atPath: temporary, toPath: final)
        AtomicFile.syncDirectory(path)
        try? fm.removeItem(atPath: displaced)
        CrashPoint.reach("before-latest")

        if name == nil {
            try AtomicFile.write(Data((finalName + "\n").utf8), to: path + "/latest")
            try prune(after: state, keeping: finalName)
        }
    }

    /// The newest complete checkpoint's epoch. A folder is renamed into place only when
    /// complete, so every `epoch-NNNN` with a state file is valid; `latest` can lag it by one
    /// after a crash between the rename and the pointer's update.
    public func newestEpoch() -> Int? { savedEpochs().last }

    /// Brings the directory back to a clean state after a crash: removes a save's leftovers and
    /// points `latest` at the newest complete checkpoint.
    public func repair() throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        removeLeftovers()
        guard let name = newestCheckpoint()?.name else { return }
        let current = (try? String(contentsOfFile: path + "/latest", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if current != name { try AtomicFile.write(Data((name + "\n").utf8), to: path + "/latest") }
    }

    /// The checkpoints a run continuing from the end of `epoch` would abandon: later epochs', and
    /// those taken within later epochs.
    public func checkpoints(after epoch: Int) -> [String] {
        savedEpochs().filter { $0 > epoch }.map(WeightsDirectory.name(epoch:))
            + stepCheckpoints().filter { $0.state.epoch >= epoch }.map(\.name)
    }

    /// Continuing from the end of `epoch`: later checkpoints, and those taken within later
    /// epochs, belong to the timeline being abandoned.
    public func discard(after epoch: Int) throws {
        for stale in savedEpochs() where stale > epoch { try FileManager.default.removeItem(atPath: folder(epoch: stale)) }
        for (name, state) in stepCheckpoints() where state.epoch >= epoch {
            try FileManager.default.removeItem(atPath: path + "/" + name)
        }
        try repair()
    }

    /// Continuing from the mid-epoch checkpoint `kept`: every later checkpoint and every other
    /// mid-epoch one goes.
    func discard(after state: TrainingState, keeping kept: String) throws {
        for stale in savedEpochs() where stale > state.epoch { try FileManager.default.removeItem(atPath: folder(epoch: stale)) }
        for (name, _) in stepCheckpoints() where name != kept { try FileManager.default.removeItem(atPath: path + "/" + name) }
        try repair()
    }

    /// Complete checkpoints taken within epochs, with their states, by step.
    func stepCheckpoints() -> [(name: String, state: TrainingState)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0.hasPrefix("step-") && UInt64($0.dropFirst(5)) != nil }.sorted().compactMap { name in
            (try? WeightsDirectory.readState(path + "/" + name)).map { (name, $0) }
        }
    }

    /// The complete checkpoint with the most optimizer steps (an epoch's end wins a tie), or nil.
    public func newestCheckpoint() -> (name: String, state: TrainingState)? {
        var best: (name: String, state: TrainingState)?
        if let e = newestEpoch(), let state = try? WeightsDirectory.readState(folder(epoch: e)) {
            best = (WeightsDirectory.name(epoch: e), state)
        }
        for step in stepCheckpoints() where step.state.globalStep > (best?.state.globalStep ?? 0) || best == nil {
            best = step
        }
        return best
    }

    /// Temporary folders and files of a save that a crash interrupted: never part of a valid
    /// checkpoint, so they go before the next save.
    private func removeLeftovers() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names where name.hasPrefix(".") && (name.contains(".tmp-") || name.contains(".old-")) {
            try? FileManager.default.removeItem(atPath: path + "/" + name)
        }
    }

    /// Epochs that have a complete checkpoint, ascending.
    public func savedEpochs() -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("epoch-"), let e = Int(name.dropFirst(6)),
                FileManager.default.fileExists(atPath: path + "/" + name + "/" + WeightsDirectory.stateFile)
            else { return nil }
            return e
        }.sorted()
    }

    /// After saving `state` as `saved`: checkpoints of later epochs belong to a timeline this run
    /// left (it resumed from an earlier one), so they go, and so does every mid-epoch checkpoint
    /// but the one just written; then the oldest epochs beyond `maxToKeep`.
    private func prune(after state: TrainingState, keeping saved: String) throws {
        for stale in savedEpochs() where stale > state.epoch { try FileManager.default.removeItem(atPath: folder(epoch: stale)) }
        for (name, _) in stepCheckpoints() where name != saved { try FileManager.default.removeItem(atPath: path + "/" + name) }
        guard let keep = maxToKeep, keep > 0 else { return }
        for old in savedEpochs().dropLast(keep) { try FileManager.default.removeItem(atPath: folder(epoch: old)) }
    }

    /// The folder `latest` names, or nil when nothing was saved yet.
    public func latest() throws -> String? {
        let pointer = path + "/latest"
        guard let text = try? String(contentsOfFile: pointer, encoding: .utf8) else { return nil }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        // Only a checkpoint folder of this directory: never a path that leads outside it.
        guard name == "best" || WeightsDirectory.isCheckpointName(name) else {
            throw CheckpointError.malformed(
                path: pointer, reason: "'\(name)' is not a checkpoint folder name (epoch-NNNN or step-NNNNNNNNNN)")
        }
        let folder = path + "/" + name
        guard FileManager.default.fileExists(atPath: folder + "/" + WeightsDirectory.stateFile) else {
            throw CheckpointError.missingFile(path: folder, reason: "named by \(pointer), but it holds no \(WeightsDirectory.stateFile)")
        }
        return folder
    }

    /// Reads a checkpoint folder's training state.
    public static func readState(_ folder: String) throws -> TrainingState {
        let file = folder + "/" + stateFile
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CheckpointError.missingFile(path: file, reason: "no checkpoint state here")
        }
        do {
            return try JSONDecoder().decode(TrainingState.self, from: data)
        } catch {
            throw CheckpointError.malformed(path: file, reason: "\(error)")
        }
    }

    /// Loads a checkpoint folder into the model (strictly: every name and shape must match)
    /// and the optimizer; returns its training state.
    @discardableResult
    public static func restore(_ folder: String, model: Module, optimizer: Optimizer) throws -> TrainingState {
        let state = try readState(folder)
        try model.loadWeights(from: folder + "/" + modelFile, strict: true)
        let optimizerFile = folder + "/" + optimizerFile
        let (tensors, _) = try SafeTensors.read(optimizerFile)
        try optimizer.importState(
            OptimizerState(tensors: tensors, steps: state.optimizerSteps, stepCount: state.optimizerStepCount),
            into: model.stateTensors, path: optimizerFile)
        optimizer.learningRate = state.learningRate
        return state
    }
}
