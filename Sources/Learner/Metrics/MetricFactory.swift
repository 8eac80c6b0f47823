/// Builds metrics from the names configs use (`accuracy`, `top_5_accuracy`, `error_rate`,
/// `fbeta`, `accuracy_thresh`, `kappa`, `precision_recall`, `mae`, `rmse`, `r2`; for dense
/// prediction `mean_iou`, `psnr`, `ssim`).
public enum Metrics {
    /// Every name ``make(_:threshold:beta:)`` accepts, `top_<k>_accuracy` written with k = 5.
    public static let names = [
        "accuracy", "error_rate", "top_5_accuracy", "fbeta", "accuracy_thresh", "kappa",
        "precision_recall", "mae", "rmse", "r2", "mean_iou", "psnr", "ssim",
    ]

    /// The metric called `name`, or nil when no metric has that name.
    public static func make(_ name: String, threshold: Float = 0.5, beta: Float = 2) -> (any Metric)? {
        switch name {
        case "accuracy": return Accuracy()
        case "error_rate": return ErrorRate()
        case "fbeta": return FBeta(beta: beta, threshold: threshold)
        case "accuracy_thresh": return AccuracyThresh(threshold: threshold)
        case "kappa": return QuadraticWeightedKappa()
        case "precision_recall": return PrecisionRecall()
        case "mae": return MeanAbsoluteError()
        case "rmse": return RootMeanSquaredError()
        case "r2": return RSquared()
        case "mean_iou": return MeanIoU()
        case "psnr": return PSNR()
        case "ssim": return SSIM()
        default:
            if name.hasPrefix("top_"), name.hasSuffix("_accuracy"),
                let k = Int(name.dropFirst(4).dropLast(9)), k >= 1
            {
                return TopKAccuracy(k: k)
            }
            return nil
        }
    }
}
