import CLearner
import Foundation

/// The process's stop signals (SIGINT, SIGTERM, SIGUSR1) as requests to stop at a step
/// boundary rather than at once: after ``install()`` the first one is recorded for
/// ``StopOnSignal`` to act on, and a second one ends the process at once with status
/// 128 + signal (checkpoints are written atomically, so that leaves the previous one intact).
public enum StopSignals {
    /// Records SIGINT, SIGTERM and SIGUSR1 from now on instead of dying of them.
    public static func install() throws {
        guard tl_stop_signals_install() == 0 else {
            throw LearnerError.invalidArgument("cannot install the stop-signal handlers: \(String(cString: strerror(errno)))")
        }
    }

    /// The signal received since the last ``clear()``, nil when none.
    public static var pending: Int32? {
        let signal = tl_stop_signal_pending()
        return signal == 0 ? nil : signal
    }

    /// Forgets a received signal.
    public static func clear() { tl_stop_signal_clear() }

    /// `SIGTERM` for 15 and so on.
    public static func name(_ signal: Int32) -> String {
        switch signal {
        case SIGINT: return "SIGINT"
        case SIGTERM: return "SIGTERM"
        case SIGUSR1: return "SIGUSR1"
        default: return "signal \(signal)"
        }
    }
}

/// Pre-emption: SIGTERM (a scheduler reclaiming the machine), SIGINT (Ctrl-C) or SIGUSR1 (a
/// scheduler's advance warning) stops `fit` at the next step boundary with the run saved.
///
/// The step under way finishes; mid-epoch, the learner's ``ModelCheckpoint`` writes a
/// checkpoint of that step (so a resumed run continues with the next batch and ends with the
/// weights of a run never stopped), and `fit` returns without the epoch's end. On an epoch's
/// last batch the epoch finishes (validation, its checkpoint) first. The learner's
/// ``SupervisedLearner/stoppedBySignal`` then names the signal; `tefla-train` exits with
/// status 128 + signal (130 for SIGINT, 143 for SIGTERM, 138 for SIGUSR1). Data-parallel ranks
/// agree on the step to stop at, whichever of them got the signal.
public final class StopOnSignal: Callback {
    public var readsBatchLoss: Bool { false }
    /// After the checkpointing, which may have saved this very step already.
    public var order: Int { CallbackOrder.checkpointing + 10 }

    /// Installs the signal handlers (``StopSignals/install()``).
    public init() throws {
        try StopSignals.install()
    }

    public func onBatchEnd(_ learner: SupervisedLearner, batch: Int, loss: Float) throws {
        guard let run = learner.run, let signal = try agreedSignal(learner) else { return }
        // On the epoch's last batch the epoch ends first; onEpochEnd stops after its checkpoint.
        guard batch + 1 < run.batchesPerEpoch else { return }
        try learner.checkpoint?.saveMidEpoch(learner, batch: batch)
        learner.stop(bySignal: signal, midEpoch: true)
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        guard let run = learner.run, log.epoch < run.epochs, let signal = try agreedSignal(learner) else { return }
        try learner.checkpoint?.saveEpochEnd(learner, log: log)
        learner.stop(bySignal: signal, midEpoch: false)
    }

    /// The signal this process received, or SIGTERM when only another rank did; nil when none did.
    private func agreedSignal(_ learner: SupervisedLearner) throws -> Int32? {
        let local = StopSignals.pending
        guard let sync = learner.gradientSynchronizer, sync.worldSize > 1 else { return local }
        let anyRank = try sync.allReduceSum([local == nil ? 0 : 1])[0]
        return anyRank > 0 ? local ?? SIGTERM : nil
    }
}
