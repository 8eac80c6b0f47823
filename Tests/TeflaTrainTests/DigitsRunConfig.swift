/// The config of a run on the embedded digits that the crash, stop and full-disk tests make
/// and break: `layers` (YAML flow mappings, one per line), the rest as YAML flow mappings' contents.
enum DigitsRunConfig {
    static func text(
        layers: [String], batchSize: Int, training: String, weights: String, extra: String = "",
        optimizer: String = "name: adam, learning_rate: 0.002"
    ) -> String {
        """
        model:
          layers:
        \(layers.map { "    - {\($0)}" }.joined(separator: "\n"))
        data:
          train_dir: \(ConfigTests.root.path)/Data/digits/train
          val_dir: \(ConfigTests.root.path)/Data/digits/val
          batch_size: \(batchSize)
        optimizer: {\(optimizer)}
        training: {\(training)}
        checkpoint: {weights_dir: \(weights), max_to_keep: 2}
        \(extra)
        """
    }
}
