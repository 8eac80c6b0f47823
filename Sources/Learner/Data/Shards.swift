import Foundation

/// The shard files of a data directory.
public enum Shards {
    /// Every regular, non-hidden file directly in `dir`, as full paths sorted by name.
    ///
    /// Any name is accepted (`train.tfrecord`, `train-00000-of-00004`, `part.tfrecords.gz`), since
    /// TensorFlow writers name shards freely; hidden files (`.DS_Store`, editor swap files),
    /// record indexes (`*.idx`, ``RecordIndex``) and subdirectories are skipped. Sorting makes the record order, and so a seeded shuffle,
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
        var files: [String] = []
        for path in names.filter({ !$0.hasPrefix(".") && !isIndex($0) }).sorted().map({ base.appendingPathComponent($0).path }) {
            var isDir: ObjCBool = false
            if fm.fileExists(atPath: path, isDirectory: &isDir) {
                if !isDir.boolValue { files.append(path) }  // sub-folders are not shards
            } else if let target = try? fm.destinationOfSymbolicLink(atPath: path) {
                // A shard that vanished behind its link would silently shrink the data set.
                throw DataError.io(path: path, operation: "open", message: "a link to '\(target)', which does not exist")
            }
        }
        guard !files.isEmpty else { throw DataError.emptyDirectory(path: dir) }
        return files
    }
}

extension Shards {
    /// The regular files matching the shell pattern `pattern` (`data/train-*.tfrecord`,
    /// `shards/*/part-*`), sorted by path; record indexes (`*.idx`) are no shards.
    ///
    /// Throws ``DataError/emptyDirectory(path:)`` naming the pattern when nothing matches.
    public static func glob(_ pattern: String) throws -> [String] {
        var found = glob_t()
        defer { globfree(&found) }
        let status = Foundation.glob(pattern, 0, nil, &found)
        var paths: [String] = []
        if status == 0 {
            for i in 0..<Int(found.gl_pathc) {
                guard let raw = found.gl_pathv[i] else { continue }
                let path = String(cString: raw)
                var isDirectory: ObjCBool = false
                if !isIndex(path), FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                    paths.append(path)
                }
            }
        }
        guard !paths.isEmpty else { throw DataError.emptyDirectory(path: pattern) }
        return paths.sorted()
    }

    /// Whether `name` is a record index written beside a shard (`SHARD.idx`), not a shard.
    static func isIndex(_ name: String) -> Bool { name.hasSuffix(".idx") }

    /// ``glob(_:)`` when `source` holds a wildcard (`*`, `?`, `[`), else ``list(in:)`` of the directory.
    public static func resolve(_ source: String) throws -> [String] {
        source.contains(where: { "*?[".contains($0) }) ? try glob(source) : try list(in: source)
    }
}
