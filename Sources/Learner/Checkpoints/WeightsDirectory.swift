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
    /// fp16 training: the loss scale of the next step and the clean steps since it last
    /// changed (``LossScaler``).
    public var lossScale: Float?
    public var lossScaleGrowthTracker: Int?

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
    static func isCheckpointName(_ name: String) -> Bool { epoch(ofName: name) != nil || step(ofName: name) != nil }

    /// The epoch of a folder named as ``name(epoch:)`` names it, else nil.
    static func epoch(ofName name: String) -> Int? {
        number(name, prefix: "epoch-", digits: 4).flatMap { Int(exactly: $0) }.flatMap { self.name(epoch: $0) == name ? $0 : nil }
    }

    /// The step of a folder named as ``name(step:)`` names it, else nil.
    static func step(ofName name: String) -> UInt64? {
        number(name, prefix: "step-", digits: 10).flatMap { self.name(step: $0) == name ? $0 : nil }
    }

    private static func number(_ name: String, prefix: String, digits: Int) -> UInt64? {
        guard name.hasPrefix(prefix) else { return nil }
        let tail = name.utf8.dropFirst(prefix.utf8.count)
        guard tail.count >= digits, tail.count <= 19, tail.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(String(decoding: tail, as: UTF8.self))
    }

    /// Whether `name` may name a checkpoint folder: a checkpoint name, or a plain name
    /// (letters, digits, `_`, `-`, not starting with `-`) such as `best`; never a path.
    static func isFolderName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.first != "-"
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
    }

    public func folder(epoch: Int) -> String { path + "/" + WeightsDirectory.name(epoch: epoch) }

    /// Makes the folder (and its parents) unless it exists; a file in its place is an error.
    public func create() throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw CheckpointError.unwritable(path: path, reason: "a file, not a folder of checkpoints")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw CheckpointError.unwritable(path: path, reason: "cannot create the folder: \(error.localizedDescription)")
        }
    }

    /// Saves model, optimizer state and training state as the checkpoint of `state.epoch`
    /// (or as `best` when `name` is given), then updates `latest` and prunes.
    ///
    /// `extra` writes further files into the checkpoint folder before it is moved into place.
    public func save(
        model: Module, optimizer: Optimizer, state: TrainingState, name: String? = nil,
        extra: (String) throws -> Void = { _ in }
    ) throws {
        let fm = FileManager.default
        try create()
        removeLeftovers()
        let finalName = name ?? WeightsDirectory.name(of: state)
        guard WeightsDirectory.isFolderName(finalName) else {
            throw CheckpointError.unwritable(
                path: path, reason: "'\(finalName)' is not a checkpoint folder name (letters, digits, '_' and '-', not a path)")
        }
        let final = path + "/" + finalName
        let temporary = path + "/." + finalName + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: temporary)
        do {
            try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        } catch {
            throw CheckpointError.unwritable(path: temporary, reason: "cannot create the folder: \(error.localizedDescription)")
        }
        do {
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
            // Values read back from a device that failed are not a checkpoint.
            try CUDAContext.throwIfFailed()
        } catch {
            // A full disk or a failed device: the previous checkpoint stays the newest.
            try? fm.removeItem(atPath: temporary)
            throw error
        }
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
        guard let name = try newestCheckpoint()?.name else { return }
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
        return names.filter { WeightsDirectory.step(ofName: $0) != nil }.sorted().compactMap { name in
            (try? WeightsDirectory.readState(path + "/" + name)).map { (name, $0) }
        }
    }

    /// The complete checkpoint with the most optimizer steps (an epoch's end wins a tie), or nil.
    ///
    /// Throws when the newest epoch's `state.json` cannot be read: it was written whole (saves
    /// are atomic), so it was damaged afterwards, and falling back silently to an older
    /// checkpoint would lose that epoch's work unseen.
    public func newestCheckpoint() throws -> (name: String, state: TrainingState)? {
        var best: (name: String, state: TrainingState)?
        if let e = newestEpoch() {
            do {
                best = (WeightsDirectory.name(epoch: e), try WeightsDirectory.readState(folder(epoch: e)))
            } catch CheckpointError.unreadable(let path, let reason) {
                throw CheckpointError.unreadable(
                    path: path, reason: reason + "; remove \(folder(epoch: e)) to resume from the checkpoint before it")
            }
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
            guard let e = WeightsDirectory.epoch(ofName: name),
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
            throw CheckpointError.unreadable(
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
            throw CheckpointError.unreadable(path: file, reason: "not a checkpoint state (\(error))")
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
