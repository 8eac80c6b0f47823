import Foundation

/// The replica group a training step runs in, for layers whose forward and backward passes
/// reduce across replicas (``BatchNorm2D/synchronized``). The learner sets it on the thread
/// that runs the step, around the forward and backward passes; every replica then reaches the
/// same reductions in the same order. A reduction that fails (a replica that stopped answering)
/// cannot throw from inside an op: it is kept and the learner throws it at the step's end.
enum ReplicaContext {
    private final class State {
        let synchronizer: any GradientSynchronizer
        var error: Error?
        init(_ synchronizer: any GradientSynchronizer) { self.synchronizer = synchronizer }
    }

    private static let key = "tefla.replica-context"

    private static var state: State? { Thread.current.threadDictionary[key] as? State }

    /// The synchronizer of the step running on this thread, when it has more than one replica.
    static var current: (any GradientSynchronizer)? { state?.synchronizer }

    /// Runs `body` with `synchronizer` as the current replica group (nothing when it is nil or
    /// has one replica), then throws the first reduction failure of `body`, if any.
    static func run<T>(_ synchronizer: (any GradientSynchronizer)?, _ body: () throws -> T) throws -> T {
        guard let synchronizer, synchronizer.worldSize > 1 else { return try body() }
        let saved = Thread.current.threadDictionary[key]
        let state = State(synchronizer)
        Thread.current.threadDictionary[key] = state
        defer { Thread.current.threadDictionary[key] = saved }
        let result = try body()
        if let error = state.error { throw error }
        return result
    }

    /// Σ over the replicas of `values` (every replica passes as many, in the same order); on a
    /// failure the values themselves come back and the failure is kept for the step's end.
    static func allReduceSum(_ values: [Double]) -> [Double] {
        guard let state else { return values }
        if state.error != nil { return values }
        do {
            return try state.synchronizer.allReduceSum(values)
        } catch {
            state.error = error
            return values
        }
    }
}
