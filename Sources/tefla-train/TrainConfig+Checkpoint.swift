import Foundation
import Learner

/// The `checkpoint:` section: tefla's `weights_dir`, `max_to_keep`, `weights_from`.
struct CheckpointSpec: Equatable {
    var weightsDir: String?
    var maxToKeep: Int?
    var weightsFrom: String?
    var strict = true
    var saveBest = false
    var monitor = "val_loss"
    var resume = false
    /// Also checkpoint every this many steps within an epoch (mid-epoch resume).
    var everySteps: Int?

    static let keys = ["weights_dir", "max_to_keep", "weights_from", "strict", "save_best", "monitor", "resume", "every_steps"]

    static func parse(_ s: Section) -> CheckpointSpec {
        var spec = CheckpointSpec()
        spec.weightsDir = s.string("weights_dir")
        var isDirectory: ObjCBool = false
        if let dir = spec.weightsDir, FileManager.default.fileExists(atPath: dir, isDirectory: &isDirectory), !isDirectory.boolValue {
            s.reader.report(s.node("weights_dir"), s.keyPath("weights_dir"), "'\(dir)' is a file, not a folder of checkpoints")
        }
        spec.maxToKeep = s.int("max_to_keep", minimum: 1)
        spec.weightsFrom = s.string("weights_from")
        spec.strict = s.bool("strict", default: true)
        spec.saveBest = s.bool("save_best", default: false)
        spec.monitor = s.string("monitor", default: "val_loss") ?? "val_loss"
        spec.resume = s.bool("resume", default: false)
        spec.everySteps = s.int("every_steps", minimum: 1)
        if spec.everySteps != nil && spec.weightsDir == nil {
            s.reader.report(s.node("every_steps"), s.keyPath("every_steps"), "checkpoints need checkpoint.weights_dir")
        }
        if spec.resume && spec.weightsDir == nil {
            s.reader.report(s.node("resume"), s.keyPath("resume"), "resuming needs checkpoint.weights_dir")
        }
        return spec
    }

    /// The checkpointing of `weights_dir`: every epoch, `best/` with `save_best`, every
    /// `every_steps` steps; nil without a weights directory.
    func makeCheckpoint(configText: String) -> ModelCheckpoint? {
        guard let dir = weightsDir else { return nil }
        return ModelCheckpoint(
            directory: WeightsDirectory(path: dir, maxToKeep: maxToKeep), monitor: monitor,
            saveBest: saveBest, everySteps: everySteps, config: configText)
    }
}
