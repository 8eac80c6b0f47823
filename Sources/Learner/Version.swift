/// The library's version, written into checkpoints and printed by `tefla-train --version`.
public enum LearnerVersion {
    public static let string = "0.1.0"
}
