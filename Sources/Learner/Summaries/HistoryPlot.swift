import Foundation

extension History {
    /// The curves per epoch as a standalone SVG document: one panel for the loss, one per
    /// metric and one for the learning rate; training values solid, validation dashed.
    ///
    /// The numbers plotted are kept in the document (a `<metadata>` element of JSON), so a run
    /// resumed from a checkpoint continues the curves of the epochs before it
    /// (``HistoryPlot``, ``History/plotted(in:)``).
    public func svg() -> String {
        let rows = plotRows
        var names: [String] = []
        for row in rows {
            for name in row.values.keys.sorted() {
                let base = name.hasPrefix("val_") ? String(name.dropFirst(4)) : name
                if !names.contains(base) { names.append(base) }
            }
        }
        // The loss first, the learning rate last, metrics between in name order.
        names.sort { (rank($0), $0) < (rank($1), $1) }
        func rank(_ name: String) -> Int { name == "loss" ? 0 : name == "lr" ? 2 : 1 }
        let panelWidth = 420.0, panelHeight = 280.0, columns = 2
        let panelRows = (names.count + columns - 1) / columns
        let width = panelWidth * Double(min(columns, max(names.count, 1)))
        let height = panelHeight * Double(max(panelRows, 1))
        var svg = String(
            format:
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"11\">\n",
            width, height)
        svg += "<metadata id=\"tefla-history\">\(Self.escape(Self.json(rows)))</metadata>\n"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (i, name) in names.enumerated() {
            let panel = LinePanel(
                title: name, x: Double(i % columns) * panelWidth, y: Double(i / columns) * panelHeight, width: panelWidth,
                height: panelHeight)
            let train = rows.compactMap { row in row.values[name].map { (Double(row.epoch), $0) } }
            let validation = name == "lr" ? [] : rows.compactMap { row in row.values["val_" + name].map { (Double(row.epoch), $0) } }
            svg += panel.svg(series: [
                LinePanel.Series(label: name == "lr" ? "learning rate" : "training", colour: "steelblue", dashed: false, points: train),
                LinePanel.Series(label: "validation", colour: "darkorange", dashed: true, points: validation),
            ])
        }
        return svg + "</svg>\n"
    }

    /// Writes ``svg()`` to `path` (atomically: a viewer refreshing it never sees half a plot).
    public func plot(to path: String) throws {
        try AtomicFile.write(Data(svg().utf8), to: path)
    }

    /// The epochs a plot written by ``plot(to:)`` holds, from its metadata; empty when the file
    /// is missing or holds none.
    public static func plotted(in path: String) -> [(epoch: Int, values: [String: Double])] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let start = text.range(of: "<metadata id=\"tefla-history\">"),
            let end = text.range(of: "</metadata>", range: start.upperBound..<text.endIndex),
            let data = unescape(String(text[start.upperBound..<end.lowerBound])).data(using: .utf8),
            let rows = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { return [] }
        return rows.compactMap { row in
            guard let epoch = row["epoch"] as? Int, let values = row["values"] as? [String: Double] else { return nil }
            return (epoch, values)
        }
    }

    /// Every finite value of every epoch, by its Keras name, earlier plotted epochs first.
    var plotRows: [(epoch: Int, values: [String: Double])] {
        let first = epochs.first?.epoch ?? Int.max
        let earlier = carriedPlotRows.filter { $0.epoch < first }
        return earlier
            + epochs.map { log in
                var values: [String: Double] = [:]
                for name in log.valueNames { if let v = log.value(named: name), v.isFinite { values[name] = Double(v) } }
                return (log.epoch, values)
            }
    }

    private static func json(_ rows: [(epoch: Int, values: [String: Double])]) -> String {
        let objects: [[String: Any]] = rows.map { ["epoch": $0.epoch, "values": $0.values] }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    }

    private static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Refreshes an SVG of the run's curves after every epoch (``History/plot(to:)``); a resumed
/// run keeps the epochs before it from the file it finds.
public final class HistoryPlot: Callback {
    /// Writes a file: rank 0 alone runs it in data-parallel training.
    public var runsOnEveryRank: Bool { false }
    public var readsBatchLoss: Bool { false }

    public let path: String
    private var earlier: [(epoch: Int, values: [String: Double])] = []

    public init(path: String) { self.path = path }

    public func onTrainBegin(_ learner: SupervisedLearner) throws {
        let start = learner.run?.startEpoch ?? 1
        earlier = start > 1 ? History.plotted(in: path).filter { $0.epoch < start } : []
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw LearnerError.invalidArgument("cannot make the folder of the plot '\(path)': \(error.localizedDescription)")
        }
    }

    public func onEpochEnd(_ learner: SupervisedLearner, log: EpochLog) throws {
        var history = learner.run?.history ?? History(epochs: [log])
        history.carriedPlotRows = earlier
        try history.plot(to: path)
    }
}

/// One chart of a plot: axes with ticks, a title and a legend, lines for series.
struct LinePanel {
    struct Series {
        var label: String
        var colour: String
        var dashed: Bool
        var points: [(Double, Double)]
    }

    var title: String
    var x, y, width, height: Double

    func svg(series: [Series]) -> String {
        let all = series.flatMap(\.points)
        guard !all.isEmpty else { return "" }
        let left = x + 60, right = x + width - 15, top = y + 28, bottom = y + height - 40
        let xMin = all.map(\.0).min()!, xMax = max(all.map(\.0).max()!, xMin + 1)
        var yMin = all.map(\.1).min()!, yMax = all.map(\.1).max()!
        if yMax - yMin < 1e-12 { (yMin, yMax) = (yMin - 0.5, yMax + 0.5) }
        func px(_ v: Double) -> Double { left + (v - xMin) / (xMax - xMin) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - yMin) / (yMax - yMin) * (bottom - top) }
        var out = String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">", (left + right) / 2, y + 18)
        out += "\(title)</text>\n"
        out += String(
            format: "<path d=\"M%.1f %.1fV%.1fH%.1f\" fill=\"none\" stroke=\"black\"/>\n", left, top, bottom, right)
        for i in 0...4 {
            let value = yMin + (yMax - yMin) * Double(i) / 4
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", left - 4, py(value) + 4, value)
        }
        let step = max(1, Int(((xMax - xMin) / 8).rounded(.up)))
        for epoch in stride(from: Int(xMin), through: Int(xMax), by: step) {
            out += String(
                format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", px(Double(epoch)), bottom + 14, epoch)
        }
        out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n", (left + right) / 2, bottom + 30)
        var legend = 0.0
        for s in series where !s.points.isEmpty {
            let dash = s.dashed ? " stroke-dasharray=\"5 3\"" : ""
            let points = s.points.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(dash) points=\"\(points)\"/>\n"
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" ", right, top + 12 + legend)
            out += "fill=\"\(s.colour)\">\(s.label)</text>\n"
            legend += 14
        }
        return out
    }
}
