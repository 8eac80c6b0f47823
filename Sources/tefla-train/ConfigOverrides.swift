import Yams

/// `--override key.path=value`: replaces (or adds) one value of the config before it is
/// validated. The value is read as YAML (`3`, `0.1`, `true`, `[a, b]`, `{k: v}`); numeric path
/// components index lists (`model.layers.0.units=64`).
struct ConfigOverride: Equatable {
    var path: [String]
    var value: String
    var text: String

    init(_ text: String) throws {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw ConfigIssue(line: 0, column: 0, path: text, message: "an override is key.path=value")
        }
        self.text = text
        path = text[..<eq].split(separator: ".").map(String.init)
        value = String(text[text.index(after: eq)...])
    }

    /// The root with the override applied; a path through a scalar is an error naming it.
    func apply(to root: Node) throws -> Node {
        let parsed = (try? Yams.compose(yaml: value)).flatMap { $0 }.map(Self.unplaced) ?? Node(value)
        return try set(parsed, in: root, at: path[...], walked: [])
    }

    /// The node without its position (it came from the command line, not the file), so that
    /// problems with it are reported as the override's.
    static func unplaced(_ node: Node) -> Node {
        switch node {
        case .scalar(let s): return .scalar(.init(s.string, s.tag, s.style, nil))
        case .mapping(let m): return .mapping(.init(m.map { (unplaced($0.key), unplaced($0.value)) }, m.tag, m.style, nil))
        case .sequence(let q): return .sequence(.init(q.map(unplaced), q.tag, q.style, nil))
        }
    }

    private func set(_ value: Node, in node: Node, at path: ArraySlice<String>, walked: [String]) throws -> Node {
        guard let key = path.first else { return value }
        var node = node
        let here = (walked + [key]).joined(separator: ".")
        switch node {
        case .mapping:
            let child = node[key] ?? Node([(Node, Node)]())
            node[key] = try set(value, in: child, at: path.dropFirst(), walked: walked + [key])
        case .sequence(let sequence):
            guard let index = Int(key), sequence.indices.contains(index) else {
                throw ConfigIssue(
                    line: 0, column: 0, path: here,
                    message: "--override \(text): '\(key)' is not an index of the list (0..<\(sequence.count))")
            }
            node[Node(String(index))] = try set(value, in: sequence[index], at: path.dropFirst(), walked: walked + [key])
        default:
            throw ConfigIssue(
                line: 0, column: 0, path: walked.joined(separator: "."),
                message: "--override \(text): \(walked.joined(separator: ".")) is a value, not a section")
        }
        return node
    }
}
