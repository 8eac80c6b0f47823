/// What a data-parallel replica group does for ``SupervisedLearner``: one replica per rank, each
/// computing the gradient of its slice of every global batch.
///
/// The learner scales each rank's loss by (its slice's share of the global batch), so the
/// **sum** over ranks of the local gradients is the gradient of the global batch's mean loss;
/// ``allReduceGradients(_:)`` leaves that sum in every rank's `gradient`, and every rank then
/// takes the same optimizer step. N replicas with batch B/N thus compute the update of one
/// replica with batch B.
public protocol GradientSynchronizer: AnyObject {
    /// This replica's index, 0 ..< ``worldSize``; rank 0 alone writes checkpoints, summaries and progress.
    var rank: Int { get }
    /// How many replicas train together.
    var worldSize: Int { get }
    /// Makes every rank's parameters and buffers equal to rank 0's (before the first step).
    func broadcastInitialState(_ model: Module) throws
    /// Sums every parameter's `gradient` across ranks, in place.
    func allReduceGradients(_ parameters: [Parameter]) throws
    /// Sums host values (loss sums, sample counts, metric statistics) across ranks.
    func allReduceSum(_ values: [Double]) throws -> [Double]
}
