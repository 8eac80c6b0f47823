import Yams

/// Bounds a config file must keep before it reaches the YAML parser, whose recursion and alias
/// expansion a hostile file could otherwise turn into a crash or an endless expansion: the
/// size, the nesting of `[`/`{` and of indentation, and the number of alias uses.
enum ConfigLimits {
    static let maximumBytes = 1 << 20
    static let maximumFlowDepth = 64
    static let maximumIndentation = 256
    static let maximumAliases = 64
    /// What may stand before a token: blank, `[`, `{`, `,`, `:`.
    private static let tokenStart: Set<UInt8> = [0x20, 0x09, 0x5B, 0x7B, 0x2C, 0x3A]

    /// The first bound `text` breaks, as an issue at its line and column; nil when it keeps them all.
    static func check(_ text: String) -> ConfigIssue? {
        if text.utf8.count > maximumBytes {
            return ConfigIssue(line: 1, column: 1, path: "", message: "the file is over \(maximumBytes >> 20) MiB; a config is far smaller")
        }
        var line = 1, column = 0, depth = 0, aliases = 0, indentation = 0
        var quote: UInt8?, comment = false, atLineStart = true, previous: UInt8 = 0x20
        for byte in text.utf8 {
            column += 1
            if byte == 0x0A {
                // A quoted scalar may span lines; a comment ends here.
                (line, column, comment, atLineStart, indentation, previous) = (line + 1, 0, false, true, 0, 0x20)
                continue
            }
            if atLineStart {
                if byte == 0x20 {
                    indentation += 1
                    if indentation > maximumIndentation {
                        return ConfigIssue(
                            line: line, column: column, path: "", message: "indented deeper than \(maximumIndentation) columns")
                    }
                    continue
                }
                atLineStart = false
            }
            defer { previous = byte }
            if comment { continue }
            if let open = quote {
                if byte == open && !(open == 0x22 && previous == 0x5C) { quote = nil }
                continue
            }
            switch byte {
            case 0x22,
                0x27 where tokenStart.contains(previous):
                quote = byte  // not an apostrophe within a word
            case 0x23 where previous == 0x20 || previous == 0x09 || column == 1: comment = true
            case 0x5B, 0x7B:  // [ {
                depth += 1
                if depth > maximumFlowDepth {
                    return ConfigIssue(line: line, column: column, path: "", message: "nested deeper than \(maximumFlowDepth) levels")
                }
            case 0x5D, 0x7D: depth = max(depth - 1, 0)
            case 0x2A where tokenStart.contains(previous):  // *alias
                aliases += 1
                if aliases > maximumAliases {
                    return ConfigIssue(line: line, column: column, path: "", message: "more than \(maximumAliases) aliases (*name)")
                }
            default: break
            }
        }
        return nil
    }

    /// Values a config may hold once its aliases are expanded: a config has hundreds (the longest
    /// lists are per-class values, 1,000 for ImageNet); 64 aliases of ten items each would
    /// otherwise make 10⁶⁴ for every walk over the document.
    static let maximumValues = 10_000

    /// Throws the first plain scalar that YAML 1.1 reads as a base-60 integer (`1:30` is 90):
    /// Yams multiplies those out without overflow checks, so `7777777777777777777:0` would trap
    /// in the parser's integer conversion. Nobody means one in a config; decimal says it plainly.
    /// Throws too when the document expands to more than ``maximumValues`` values, and for any
    /// other plain scalar that Yams's integer reading would overflow on (``overflowsYamsBaseSixty(_:)``).
    static func checkScalars(_ node: Node) throws {
        var visited = 0
        var passed = Set<String>()
        try checkScalars(node, visited: &visited, passed: &passed)
    }

    /// `passed`: scalars already found harmless (aliases repeat the same ones many times).
    private static func checkScalars(_ node: Node, visited: inout Int, passed: inout Set<String>) throws {
        visited += 1
        if visited > maximumValues {
            // The whole file is at fault, not the value where the count ran out.
            throw ConfigIssue(
                line: 1, column: 1, path: "",
                message: "the file expands to more than \(maximumValues) values through its aliases; a config is far smaller")
        }
        switch node {
        case .scalar(let scalar):
            // Aliases repeat scalars: each distinct one is looked at once (a hash, not a scan).
            guard scalar.style == .plain, !passed.contains(scalar.string) else { break }
            passed.insert(scalar.string)
            guard scalar.string.utf8.contains(UInt8(ascii: ":")) else { break }
            if isSexagesimal(scalar.string) {
                throw ConfigIssue(
                    line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, path: "",
                    message: "'\(scalar.string)' is a YAML 1.1 base-60 number; write it in decimal (or quote it as text)")
            }
            if overflowsYamsBaseSixty(scalar.string) {
                throw ConfigIssue(
                    line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, path: "",
                    message: "'\(scalar.string)' would be read as a YAML 1.1 base-60 number too large for an integer; quote it as text")
            }
        case .mapping(let mapping):
            for (key, value) in mapping {
                try checkScalars(key, visited: &visited, passed: &passed)
                try checkScalars(value, visited: &visited, passed: &passed)
            }
        case .sequence(let sequence):
            for item in sequence { try checkScalars(item, visited: &visited, passed: &passed) }
        }
    }

    /// Whether Yams (5.x) would trap reading `text` as an integer: it sends every plain scalar
    /// with a colon (and no 0x/0b/0o/0 prefix) through a base-60 conversion of its numeric
    /// parts, non-numeric parts dropped (`host:7777777777777777777:0`), with unchecked
    /// arithmetic. The same steps here, checked; any other scalar with a colon reads as an
    /// integer harmlessly (or not at all), so it is left to the key's own check.
    static func overflowsYamsBaseSixty(_ text: String) -> Bool {
        guard text.utf8.contains(UInt8(ascii: ":")) else { return false }
        var scalar = Substring(text.replacingOccurrences(of: "_", with: ""))
        if scalar.first == "-" || scalar.first == "+" { scalar = scalar.dropFirst() }
        if scalar.first == "0" { return false }  // Yams reads 0x…, 0b…, 0o…, 0… by radix, checked
        var base = 1, value = 0
        for part in scalar.components(separatedBy: ":").compactMap({ Int($0, radix: 10) }).reversed() {
            let (term, o1) = part.multipliedReportingOverflow(by: base)
            let (sum, o2) = value.addingReportingOverflow(term)
            let (next, o3) = base.multipliedReportingOverflow(by: 60)
            if o1 || o2 || o3 { return true }
            (value, base) = (sum, next)
        }
        return false
    }

    /// `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+`, YAML 1.1's base-60 integer.
    static func isSexagesimal(_ text: String) -> Bool {
        // Most scalars fail on their first bytes: reject them without allocating (the check
        // runs on every value of the expanded document, up to maximumValues of them).
        let allowed: (UInt8) -> Bool = { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: ":") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
        }
        guard text.utf8.allSatisfy(allowed), text.utf8.contains(UInt8(ascii: ":")) else { return false }
        var parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 2 else { return false }
        var head = Substring(parts.removeFirst())
        if head.first == "-" || head.first == "+" { head = head.dropFirst() }
        guard let first = head.first, first != "0", head.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "_") }) else { return false }
        return parts.allSatisfy { part in
            (1...2).contains(part.count) && part.allSatisfy { $0.isASCII && $0.isNumber } && (part.count == 1 || part.first! <= "5")
        }
    }
}
