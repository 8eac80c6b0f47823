import Foundation

/// Errors reading or writing a safetensors file; each names the file and, where there is
/// one, the tensor.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    case malformed(path: String, reason: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case missingFile(path: String, reason: String)
    case shapeMismatch(tensor: String, expected: [Int], found: [Int], path: String)
    case missingTensors(names: [String], path: String)
    case unexpectedTensors(names: [String], path: String)

    public var description: String {
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read: \(reason)"
        case .unwritable(let path, let reason): return "\(path): cannot write: \(reason)"
        case .malformed(let path, let reason): return "\(path): not a valid safetensors file: \(reason)"
        case .unsupportedDType(let path, let tensor, let dtype):
            return "\(path): tensor '\(tensor)' has dtype \(dtype); supported: F32, F64, F16, BF16, I64, I32"
        case .missingFile(let path, let reason): return "\(path): \(reason)"
        case .shapeMismatch(let tensor, let expected, let found, let path):
            return "\(path): tensor '\(tensor)' has shape \(found), the model's parameter has shape \(expected)"
        case .missingTensors(let names, let path):
            return "\(path): missing \(names.count) tensor\(names.count == 1 ? "" : "s") the model needs: \(names.joined(separator: ", "))"
        case .unexpectedTensors(let names, let path):
            return "\(path): \(names.count) tensor\(names.count == 1 ? "" : "s") the model does not have: \(names.joined(separator: ", "))"
        }
    }
}

/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON header
/// mapping each name to `{dtype, shape, data_offsets}` (plus an optional `__metadata__` of
/// strings), then the raw little-endian data. Files written here load in PyTorch with
/// `safetensors.torch.load_file`, and files saved there load here.
public enum SafeTensors {
    /// One stored tensor: values as Float32 (what the engine computes in) and the dtype it had
    /// or should have on disk. Integer tensors (`num_batches_tracked`) keep their dtype.
    public struct Entry: Equatable {
        public var dtype: String
        public var shape: [Int]
        public var values: [Float]

        public init(dtype: String = "F32", shape: [Int], values: [Float]) {
            self.dtype = dtype
            self.shape = shape
            self.values = values
        }

        public init(_ tensor: Tensor) {
            self.init(shape: tensor.shape, values: tensor.scalars)
        }

        public var tensor: Tensor { Tensor(shape: shape, scalars: values) }
    }

    static let elementSizes: [String: Int] = ["F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4]

    /// Serialises `entries` (written in name order) with optional string metadata.
    public static func encode(_ entries: [String: Entry], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = entries.keys.sorted()
        for name in names {
            let e = entries[name]!
            guard e.dtype == "F32" || e.dtype == "I64" else {
                throw CheckpointError.unsupportedDType(path: "(writing)", tensor: name, dtype: e.dtype)
            }
            let bytes = e.values.count * (elementSizes[e.dtype] ?? 4)
            header[name] = ["dtype": e.dtype, "shape": e.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad the header with spaces so the data starts 8-byte aligned, as the reference writer does.
        while (json.count % 8) != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            let e = entries[name]!
            if e.dtype == "I64" {
                let ints = e.values.map { Int64($0).littleEndian }
                ints.withUnsafeBytes { out.append(contentsOf: $0) }
            } else {
                let bits = e.values.map { $0.bitPattern.littleEndian }
                bits.withUnsafeBytes { out.append(contentsOf: $0) }
            }
        }
        return out
    }

    /// Writes a file atomically (temporary file, fsync, rename, fsync of the folder).
    public static func write(_ entries: [String: Entry], metadata: [String: String] = [:], to path: String) throws {
        try AtomicFile.write(encode(entries, metadata: metadata), to: path)
    }

    /// Reads every tensor of a file, converting F64/F16/BF16/I64/I32 values to Float32.
    public static func read(_ path: String) throws -> (entries: [String: Entry], metadata: [String: String]) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CheckpointError.missingFile(path: path, reason: "no such file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw CheckpointError.unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        return try decode(data, path: path)
    }

    static func decode(_ data: Data, path: String) throws -> (entries: [String: Entry], metadata: [String: String]) {
        guard data.count >= 8 else {
            throw CheckpointError.malformed(path: path, reason: "\(data.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(data.count - 8), headerLength < 100_000_000 else {
            throw CheckpointError.malformed(
                path: path, reason: "header length \(headerLength) does not fit in a file of \(data.count) bytes")
        }
        let headerEnd = 8 + Int(headerLength)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw CheckpointError.malformed(path: path, reason: "the header is not a JSON object")
        }
        let payload = data.count - headerEnd
        var entries: [String: Entry] = [:]
        var ranges: [(Int, Int, String)] = []
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                for (k, v) in (value as? [String: Any]) ?? [:] { if let s = v as? String { metadata[k] = s } }
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offsets = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2
            else { throw CheckpointError.malformed(path: path, reason: "tensor '\(name)' has no dtype, shape or data_offsets") }
            guard let size = elementSizes[dtype] else { throw CheckpointError.unsupportedDType(path: path, tensor: name, dtype: dtype) }
            // The element count and byte size; nil when they overflow (a hostile shape such as [2^32, 2^32]).
            let count = product(shape)
            let byteCount = count.flatMap { product([$0, size]) }
            guard let count, let byteCount, offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= payload,
                offsets[1] - offsets[0] == byteCount
            else {
                throw CheckpointError.malformed(
                    path: path,
                    reason:
                        "tensor '\(name)' (\(dtype) \(shape)) has data_offsets \(offsets), which do not match its size or the file (\(payload) data bytes)"
                )
            }
            ranges.append((offsets[0], offsets[1], name))
            let start = headerEnd + offsets[0]
            var values = [Float](repeating: 0, count: count)
            data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let base = raw.baseAddress! + start
                if dtype == "F32" && Int(littleEndian: 1) == 1 {
                    // The common case: little-endian Float32 on a little-endian host is a copy.
                    values.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: base, count: count * 4)) }
                    return
                }
                for i in 0..<count {
                    switch dtype {
                    case "F32":
                        values[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                    case "F64":
                        values[i] = Float(
                            Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    case "F16":
                        values[i] = Float(
                            Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))))
                    case "BF16":
                        values[i] = Float(
                            bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16)
                    case "I64": values[i] = Float(Int64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                    default: values[i] = Float(Int32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                    }
                }
            }
            entries[name] = Entry(dtype: dtype, shape: shape, values: values)
        }
        // Tensors must not share bytes (the reference writer packs them back to back).
        let sorted = ranges.filter { $0.0 < $0.1 }.sorted { $0.0 < $1.0 }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.0 < a.1 {
            throw CheckpointError.malformed(
                path: path, reason: "tensors '\(a.2)' and '\(b.2)' overlap (data_offsets [\(a.0), \(a.1)] and [\(b.0), \(b.1)])")
        }
        return (entries, metadata)
    }

    /// The product of `factors`; nil when one is negative or the product overflows.
    private static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for factor in factors {
            guard factor >= 0 else { return nil }
            let (partial, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = partial
        }
        return result
    }
}
