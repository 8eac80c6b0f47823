import Foundation

/// What loading weights by name found: the PyTorch `load_state_dict` report.
public struct WeightsLoadReport: Equatable, CustomStringConvertible {
    /// Parameters given values from the file.
    public var loaded: [String] = []
    /// Parameters of the model that the file does not have.
    public var missing: [String] = []
    /// Tensors of the file that the model does not have.
    public var unexpected: [String] = []
    /// Names present in both with different shapes: (name, model shape, file shape).
    public var shapeMismatched: [(name: String, expected: [Int], found: [Int])] = []

    public var isComplete: Bool { missing.isEmpty && unexpected.isEmpty && shapeMismatched.isEmpty }

    public static func == (a: WeightsLoadReport, b: WeightsLoadReport) -> Bool {
        a.loaded == b.loaded && a.missing == b.missing && a.unexpected == b.unexpected
            && a.shapeMismatched.map { "\($0.name)\($0.expected)\($0.found)" }
                == b.shapeMismatched.map { "\($0.name)\($0.expected)\($0.found)" }
    }

    public var description: String {
        var lines = ["loaded \(loaded.count) tensor\(loaded.count == 1 ? "" : "s")"]
        if !missing.isEmpty { lines.append("missing (left as initialised): \(missing.joined(separator: ", "))") }
        if !unexpected.isEmpty { lines.append("unexpected (ignored): \(unexpected.joined(separator: ", "))") }
        for m in shapeMismatched { lines.append("shape mismatch (left as initialised): \(m.name): model \(m.expected), file \(m.found)") }
        return lines.joined(separator: "; ")
    }
}

extension Module {
    /// Every tensor that defines the model's state, by dotted path: the parameters and the
    /// buffers (BatchNorm's running statistics), PyTorch's `state_dict` names and order.
    public var stateTensors: [(name: String, parameter: Parameter)] { namedParametersAndBuffers }

    /// Saves the weights as a safetensors file (atomically). A `torch.nn` model of the same
    /// architecture loads it with `model.load_state_dict(safetensors.torch.load_file(path))`.
    public func saveWeights(to path: String, metadata: [String: String] = [:]) throws {
        var entries: [String: SafeTensors.Entry] = [:]
        for (name, p) in stateTensors {
            var entry = SafeTensors.Entry(p.value)
            // PyTorch keeps BatchNorm's step counter as int64; so does the file.
            if name == "num_batches_tracked" || name.hasSuffix(".num_batches_tracked") { entry.dtype = "I64" }
            entries[name] = entry
        }
        var meta = metadata
        meta["format"] = meta["format"] ?? "pt"
        try SafeTensors.write(entries, metadata: meta, to: path)
    }

    /// Loads weights by name from a safetensors file (a previous run, or one saved from
    /// PyTorch), on the parameters' own device.
    ///
    /// - Parameters:
    ///   - path: the safetensors file.
    ///   - nameMap: renames file tensors before matching (file name → model name).
    ///   - strict: throw when anything is missing, unexpected or of another shape, naming it;
    ///     otherwise load what matches and report the rest.
    @discardableResult
    public func loadWeights(from path: String, nameMap: [String: String] = [:], strict: Bool = true) throws -> WeightsLoadReport {
        let (entries, _) = try SafeTensors.read(path)
        var byName: [String: SafeTensors.Entry] = [:]
        for (name, entry) in entries { byName[nameMap[name] ?? name] = entry }
        var report = WeightsLoadReport()
        let own = stateTensors
        let ownNames = Set(own.map(\.name))
        report.unexpected = byName.keys.filter { !ownNames.contains($0) }.sorted()
        var pending: [(Parameter, SafeTensors.Entry)] = []
        for (name, p) in own {
            guard let entry = byName[name] else {
                report.missing.append(name)
                continue
            }
            guard entry.shape == p.shape else {
                report.shapeMismatched.append((name, p.shape, entry.shape))
                continue
            }
            pending.append((p, entry))
            report.loaded.append(name)
        }
        if strict {
            if let m = report.shapeMismatched.first {
                throw CheckpointError.shapeMismatch(tensor: m.name, expected: m.expected, found: m.found, path: path)
            }
            if !report.missing.isEmpty { throw CheckpointError.missingTensors(names: report.missing, path: path) }
            if !report.unexpected.isEmpty { throw CheckpointError.unexpectedTensors(names: report.unexpected, path: path) }
        }
        // Nothing is changed until the whole file has been checked.
        for (p, entry) in pending { p.assign(entry.tensor.to(p.device)) }
        return report
    }

    /// Freezes the parameters whose path starts with one of `prefixes` (all when empty):
    /// fastai's `freeze` for fine-tuning. Frozen parameters get no gradient and no update.
    public func freeze(_ prefixes: [String] = []) {
        for (name, p) in namedParameters where prefixes.isEmpty || prefixes.contains(where: { name == $0 || name.hasPrefix($0 + ".") }) {
            p.isFrozen = true
        }
    }

    /// Unfreezes every parameter (or those under `prefixes`).
    public func unfreeze(_ prefixes: [String] = []) {
        for (name, p) in namedParameters where prefixes.isEmpty || prefixes.contains(where: { name == $0 || name.hasPrefix($0 + ".") }) {
            p.isFrozen = false
        }
    }
}
