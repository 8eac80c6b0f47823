/// Failures of the data-conversion tools (image folder and CSV to TFRecord), each naming the
/// file, and for CSV the line, at fault.
public enum ConversionError: Error, Equatable, CustomStringConvertible {
    /// The image root does not exist or holds no class subdirectory with an image in it.
    case noClasses(root: String)
    /// A file with an image extension that libjpeg/libpng cannot decode.
    case badImage(path: String, message: String)
    /// A CSV problem at 1-based `line` (0 when the file as a whole is at fault).
    case csv(path: String, line: Int, message: String)
    /// A setting that cannot work (no shards, an unknown compression name).
    case invalidOption(String)

    public var description: String {
        switch self {
        case .noClasses(let root):
            return "'\(root)' holds no class folders with .jpg/.jpeg/.png files (expected root/class_name/image.png)"
        case .badImage(let path, let message):
            return "cannot decode image '\(path)': \(message)"
        case .csv(let path, let line, let message):
            return line > 0 ? "\(path):\(line): \(message)" : "\(path): \(message)"
        case .invalidOption(let message):
            return message
        }
    }
}
