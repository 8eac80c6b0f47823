import Foundation

/// The shard files of a data directory.
public enum Shards {
    /// Every regular, non-hidden file directly in `dir`, as full paths sorted by name.
    ///
    /// Any name is accepted (`train.tfrecord`, `train-00000-of-00004`, `part.tfrecords.gz`), since
    /// TensorFlow writers name shards freely; hidden files (`.DS_Store`, editor swap files) and
    /// subdirectories are skipped. Sorting makes the record order, and so a seeded shuffle,
    /// the same on every machine.
    ///
    /// Throws ``DataError/missingDirectory(path:)`` or ``DataError/emptyDirectory(path:)``.
    public static func list(in dir: String) throws -> [String] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataError.missingDirectory(path: dir)
        }
        let names: [String]
        do {
            names = try fm.contentsOfDirectory(atPath: dir)
        } catch {
            throw DataError.io(path: dir, operation: "list", message: "\(error)")
        }
        let base = URL(fileURLWithPath: dir, isDirectory: true)
        let files = names.filter { !$0.hasPrefix(".") }.sorted().map { base.appendingPathComponent($0).path }.filter {
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: $0, isDirectory: &isDir) && !isDir.boolValue
        }
        guard !files.isEmpty else { throw DataError.emptyDirectory(path: dir) }
        return files
    }
}
