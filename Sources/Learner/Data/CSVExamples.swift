import Foundation

/// A CSV file of numbers turned into `tf.train.Example`s: one label column and numeric feature
/// columns, one Example per data row (`tefla-data convert csv`).
///
/// The first line is the header. Fields are split on `,` (no quoting beyond one pair of
/// surrounding double quotes, which is stripped) and trimmed; blank lines are skipped. The label
/// is an int64 when every label value is an integer, else a float. Features go either one float
/// feature per column, named by its header, or, with `featuresKey`, all of them in header order
/// as one float list (what ``InMemoryDataset`` reads). Every error names the file and line.
public struct CSVExamples: Sendable {
    /// The feature columns' names, in file order.
    public let featureColumns: [String]
    /// One Example per data row.
    public let examples: [Example]
    /// Whether the label was written as int64 (else float).
    public let integerLabels: Bool

    /// Parses the CSV text at `path`.
    public init(path: String, labelColumn: String = "label", featuresKey: String? = nil) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw DataError.io(path: path, operation: "read", message: "\(error)")
        }
        try self.init(text: text, path: path, labelColumn: labelColumn, featuresKey: featuresKey)
    }

    /// Parses CSV `text`; `path` names it in errors.
    public init(text: String, path: String, labelColumn: String = "label", featuresKey: String? = nil) throws {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().map {
            (number: $0.offset + 1, fields: Self.fields($0.element))
        }.filter { !($0.fields.count == 1 && $0.fields[0].isEmpty) }
        guard let header = lines.first else { throw ConversionError.csv(path: path, line: 0, message: "file is empty") }
        guard let labelIndex = header.fields.firstIndex(of: labelColumn) else {
            throw ConversionError.csv(
                path: path, line: header.number,
                message:
                    "no label column '\(labelColumn)' in header (columns: \(header.fields.joined(separator: ", ")))")
        }
        let featureIndices = header.fields.indices.filter { $0 != labelIndex }
        var labels: [Double] = []
        var rows: [[Float]] = []
        for line in lines.dropFirst() {
            guard line.fields.count == header.fields.count else {
                throw ConversionError.csv(
                    path: path, line: line.number,
                    message: "\(line.fields.count) fields, the header has \(header.fields.count)")
            }
            func number(_ index: Int) throws -> Double {
                guard let value = Double(line.fields[index]) else {
                    throw ConversionError.csv(
                        path: path, line: line.number,
                        message: "column '\(header.fields[index])' holds '\(line.fields[index])', not a number")
                }
                return value
            }
            labels.append(try number(labelIndex))
            rows.append(try featureIndices.map { Float(try number($0)) })
        }
        let integerLabels = labels.allSatisfy { $0 == $0.rounded() && abs($0) < 9e15 }
        let columns = featureIndices.map { header.fields[$0] }
        examples = zip(labels, rows).map { label, row in
            var example = Example()
            example[labelColumn] = integerLabels ? .int64s([Int64(label)]) : .floats([Float(label)])
            if let featuresKey {
                example[featuresKey] = .floats(row)
            } else {
                for (name, value) in zip(columns, row) { example[name] = .floats([value]) }
            }
            return example
        }
        self.featureColumns = columns
        self.integerLabels = integerLabels
    }

    /// The trimmed fields of one line, a surrounding pair of double quotes stripped.
    private static func fields(_ line: Substring) -> [String] {
        line.split(separator: ",", omittingEmptySubsequences: false).map { raw in
            var field = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if field.count >= 2, field.hasPrefix("\""), field.hasSuffix("\"") {
                field = String(field.dropFirst().dropLast())
            }
            return field
        }
    }
}
