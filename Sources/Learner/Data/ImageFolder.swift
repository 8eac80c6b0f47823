import Foundation

/// An image classification data set laid out as `root/class_name/image.{jpg,jpeg,png}`, the layout
/// Keras' `image_dataset_from_directory` and torchvision's `ImageFolder` read.
///
/// Class indices follow the sorted class-folder names (byte order), so the same folder always
/// gives the same labels. Hidden entries and files with other extensions are skipped (counted in
/// ``skipped``); class folders without images are left out.
public struct ImageFolder: Sendable {
    /// One image file and its class index.
    public struct Item: Sendable, Equatable {
        public var path: String
        public var label: Int
    }

    public let root: String
    /// Class names; the index in this array is the class label.
    public let classNames: [String]
    /// Every image, class by class, files sorted by name within a class.
    public let items: [Item]
    /// Paths of files that were not taken (not .jpg/.jpeg/.png).
    public let skipped: [String]

    /// File extensions taken as images (compared lowercased).
    public static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    /// Scans `root`; throws ``ConversionError/noClasses(root:)`` when it holds no image in any class folder.
    public init(root: String) throws {
        let fm = FileManager.default
        let base = URL(fileURLWithPath: root, isDirectory: true)
        let entries = (try? fm.contentsOfDirectory(atPath: root)) ?? []
        var classNames: [String] = []
        var items: [Item] = []
        var skipped: [String] = []
        for name in entries.filter({ !$0.hasPrefix(".") }).sorted() {
            let dir = base.appendingPathComponent(name, isDirectory: true)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let files = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
            var images: [String] = []
            for file in files {
                let path = dir.appendingPathComponent(file).path
                if Self.imageExtensions.contains((file as NSString).pathExtension.lowercased()) {
                    images.append(path)
                } else {
                    skipped.append(path)
                }
            }
            guard !images.isEmpty else { continue }
            let label = classNames.count
            classNames.append(name)
            items += images.map { Item(path: $0, label: label) }
        }
        guard !items.isEmpty else { throw ConversionError.noClasses(root: root) }
        self.root = root
        self.classNames = classNames
        self.items = items
        self.skipped = skipped
    }

    /// The Example TensorFlow's `build_image_data.py` would write for `item`: `image/encoded`
    /// (the file's bytes, not re-encoded), `image/format` (`JPEG`/`PNG`, from the bytes),
    /// `image/class/label`, `image/class/text`, `image/height`, `image/width`, `image/channels`
    /// and `image/filename`.
    ///
    /// The image is decoded once to learn its size; throws ``ConversionError/badImage(path:message:)``.
    /// With `shorterSide`, a larger image is resized (antialiased, aspect kept) so its shorter
    /// side has that many pixels and stored again in its format (JPEGs at `quality`).
    public func example(for item: Item, shorterSide: Int? = nil, quality: Int = 95) throws -> Example {
        var bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: item.path)))
        } catch {
            throw DataError.io(path: item.path, operation: "read", message: "\(error)")
        }
        guard let format = ImageDecoder.format(of: bytes) else {
            throw ConversionError.badImage(path: item.path, message: "not a JPEG or PNG file (magic bytes)")
        }
        var decoded: (pixels: [UInt8], height: Int, width: Int, channels: Int)
        do {
            decoded = try ImageDecoder.decodeBytes(bytes)
            if let side = shorterSide, min(decoded.height, decoded.width) > side {
                let size = ImageEncoder.size(height: decoded.height, width: decoded.width, shorterSide: side)
                let pixels = ImageEncoder.resized(
                    decoded.pixels, height: decoded.height, width: decoded.width, channels: decoded.channels,
                    toHeight: size.height, toWidth: size.width)
                decoded = (pixels, size.height, size.width, decoded.channels)
                bytes =
                    format == .jpeg
                    ? try ImageEncoder.jpeg(pixels, height: size.height, width: size.width, channels: decoded.channels, quality: quality)
                    : try ImageEncoder.png(pixels, height: size.height, width: size.width, channels: decoded.channels)
            }
        } catch let error as DataError {
            if case .undecodableImage(_, let message, _) = error {
                throw ConversionError.badImage(path: item.path, message: message)
            }
            throw error
        }
        return Example([
            "image/encoded": .bytes([bytes]),
            "image/format": .bytes([Array((format == .jpeg ? "JPEG" : "PNG").utf8)]),
            "image/class/label": .int64s([Int64(item.label)]),
            "image/class/text": .bytes([Array(classNames[item.label].utf8)]),
            "image/height": .int64s([Int64(decoded.height)]),
            "image/width": .int64s([Int64(decoded.width)]),
            "image/channels": .int64s([Int64(decoded.channels)]),
            "image/filename": .bytes([Array((item.path as NSString).lastPathComponent.utf8)]),
        ])
    }
}

/// JPEG and PNG files read as data: a folder of them is a data set of unlabelled records.
public enum ImageFiles {
    /// Whether `path` names an image file by its extension (`.jpg`, `.jpeg`, `.png`).
    public static func isImage(_ path: String) -> Bool {
        ImageFolder.imageExtensions.contains((path as NSString).pathExtension.lowercased())
    }

    /// The file as the one record of its own shard: an Example with `image/encoded` (the file's
    /// bytes) and `image/filename` (its name).
    static func record(_ path: String, key: String) throws -> RawRecord {
        let bytes = try contents(path)
        let example = Example([
            key: .bytes([bytes]), "image/filename": .bytes([Array((path as NSString).lastPathComponent.utf8)]),
        ])
        return RawRecord(bytes: example.serialized(), location: RecordLocation(file: path, record: 0, offset: 0))
    }

    /// The bytes of the file at `path`.
    static func contents(_ path: String) throws -> [UInt8] {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw DataError.io(path: path, operation: "read", message: "\(error.localizedDescription)")
        }
        return bytes
    }
}
