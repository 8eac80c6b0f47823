import Yams

/// A problem in the config file, located by YAML line and column and key path.
/// A line and column of the config file (0 when the value came from elsewhere).
struct ConfigPlace: Equatable {
    var line = 0
    var column = 0

    init() {}
    init(_ node: Node?) {
        line = node?.mark?.line ?? 0
        column = node?.mark?.column ?? 0
    }
}

struct ConfigIssue: Error, CustomStringConvertible, Equatable {
    var line: Int
    var column: Int
    var path: String
    var message: String

    /// Values set by `--override` have no place in the file: line 0.
    var description: String {
        let place = line == 0 ? "--override" : "line \(line), column \(column)"
        return path.isEmpty ? "\(place): \(message)" : "\(place): \(path): \(message)"
    }

    /// A YAML syntax error, placed where the parser stopped (its message starts `line:column:`).
    static func yamlSyntax(_ error: Error) -> ConfigIssue {
        let text = "\(error)"
        let head = text.prefix { $0 != " " }.split(separator: ":").compactMap { Int($0) }
        let detail = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        return ConfigIssue(
            line: head.count >= 2 ? head[0] : 1, column: head.count >= 2 ? head[1] : 1, path: "",
            message: "not valid YAML: " + detail)
    }
}

/// Reads typed values out of a YAML mapping, collecting every problem (with its line and
/// column) instead of stopping at the first, and flagging keys nobody asked for.
final class ConfigReader {
    private(set) var issues: [ConfigIssue] = []

    func report(_ node: Node?, _ path: String, _ message: String) {
        let mark = node?.mark
        issues.append(ConfigIssue(line: mark?.line ?? 0, column: mark?.column ?? 0, path: path, message: message))
    }

    /// A section (mapping) of the file; `known` lists its keys, anything else is reported.
    func section(_ node: Node?, _ path: String, known: [String]) -> Section? {
        guard let node else { return nil }
        guard let mapping = node.mapping else {
            report(node, path, "expected a mapping of keys, found \(ConfigReader.kind(node))")
            return nil
        }
        var values: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard let name = key.string else { continue }
            if !known.contains(name) {
                let hint = ConfigReader.closest(name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
                report(key, path.isEmpty ? name : "\(path).\(name)", "unknown key\(hint); known keys: \(known.joined(separator: ", "))")
            }
            values[name] = (key, value)
        }
        return Section(reader: self, path: path, values: values, node: node)
    }

    static func kind(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "'\(s.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// The known key nearest to `name` by edit distance, when it is near enough to be a typo.
    static func closest(_ name: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(name, $0)) }.min { $0.1 < $1.1 }
        guard let (best, d) = scored, d <= max(2, name.count / 3) else { return nil }
        return best
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let current = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = current
            }
        }
        return row[b.count]
    }
}

/// One mapping of the config with typed accessors that report mistakes to the reader.
struct Section {
    let reader: ConfigReader
    let path: String
    let values: [String: (key: Node, value: Node)]
    let node: Node

    func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    func node(_ key: String) -> Node? { values[key]?.value }

    func string(_ key: String, default value: String? = nil, required: Bool = false) -> String? {
        guard let n = node(key) else { return missing(key, required) ?? value }
        guard case .scalar(let s) = n else {
            reader.report(n, keyPath(key), "expected a string, found \(ConfigReader.kind(n))")
            return value
        }
        return s.string
    }

    func int(_ key: String, default value: Int? = nil, required: Bool = false, minimum: Int? = nil) -> Int? {
        guard let n = node(key) else { return missing(key, required) ?? value }
        guard let v = n.int else {
            reader.report(n, keyPath(key), "expected an integer, found \(ConfigReader.kind(n))")
            return value
        }
        if let minimum, v < minimum { reader.report(n, keyPath(key), "must be >= \(minimum), got \(v)") }
        return v
    }

    func float(
        _ key: String, default value: Double? = nil, required: Bool = false, minimum: Double? = nil,
        exclusiveMinimum: Bool = false
    ) -> Double? {
        guard let n = node(key) else { return missing(key, required) ?? value }
        guard let v = n.float ?? n.int.map(Double.init) else {
            reader.report(n, keyPath(key), "expected a number, found \(ConfigReader.kind(n))")
            return value
        }
        if let minimum, exclusiveMinimum ? v <= minimum : v < minimum {
            reader.report(n, keyPath(key), "must be \(exclusiveMinimum ? ">" : ">=") \(minimum), got \(v)")
        }
        return v
    }

    func bool(_ key: String, default value: Bool) -> Bool {
        guard let n = node(key) else { return value }
        guard let v = n.bool else {
            reader.report(n, keyPath(key), "expected true or false, found \(ConfigReader.kind(n))")
            return value
        }
        return v
    }

    func oneOf(_ key: String, _ choices: [String], default value: String) -> String {
        guard let s = string(key) else { return value }
        guard choices.contains(s) else {
            let hint = ConfigReader.closest(s, in: choices).map { " (did you mean '\($0)'?)" } ?? ""
            reader.report(node(key), keyPath(key), "'\(s)' is not one of \(choices.joined(separator: ", "))\(hint)")
            return value
        }
        return s
    }

    func section(_ key: String, known: [String]) -> Section? { reader.section(node(key), keyPath(key), known: known) }

    func list(_ key: String) -> [Node]? {
        guard let n = node(key) else { return nil }
        guard let seq = n.sequence else {
            reader.report(n, keyPath(key), "expected a list, found \(ConfigReader.kind(n))")
            return nil
        }
        return Array(seq)
    }

    private func missing<T>(_ key: String, _ required: Bool) -> T? {
        if required { reader.report(node, keyPath(key), "required key is missing") }
        return nil
    }
}
