import Foundation
import XCTest

/// The code of the documentation's articles is compiled and run: each article of the catalog
/// (Sources/Learner/Learner.docc) names its program under Examples/ in a comment line,
/// `<!-- example: Examples/Consumer/Sources/CustomLayer/main.swift -->`, and every ```swift
/// block of the article must appear in that program verbatim, as consecutive lines. A block
/// changed in the article alone, or in the program alone, fails here; Scripts/check-consumer
/// builds and runs the programs.
final class DocumentationTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let catalog = root.appendingPathComponent("Sources/Learner/Learner.docc")
    /// The articles the catalog promises, each with code.
    static let articles = [
        "FirstModel", "CustomLayer", "CustomLoss", "CustomMetric", "CustomDataSource", "Checkpoints", "ConfigMap", "MixedPrecision",
    ]

    func testEveryCodeBlockOfAnArticleIsInItsProgram() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.catalog.path).filter { $0.hasSuffix(".md") }.sorted()
        for article in Self.articles {
            XCTAssertTrue(files.contains(article + ".md"), "the catalog has no \(article).md")
        }
        let consumerPackage = try String(
            contentsOf: Self.root.appendingPathComponent("Examples/Consumer/Package.swift"), encoding: .utf8)
        var checkedBlocks = 0
        for file in files {
            let text = try String(contentsOf: Self.catalog.appendingPathComponent(file), encoding: .utf8)
            let blocks = Self.swiftBlocks(in: text)
            let name = String(file.dropLast(3))
            guard !blocks.isEmpty else {
                XCTAssertFalse(Self.articles.contains(name), "\(file) shows no Swift code")
                continue
            }
            guard let program = Self.exampleProgram(in: text) else {
                XCTFail("\(file) has Swift code but names no program (a line <!-- example: Examples/.../main.swift -->)")
                continue
            }
            XCTAssertTrue(program.hasPrefix("Examples/"), "\(file) names \(program), which is not under Examples/")
            let target = URL(fileURLWithPath: program).deletingLastPathComponent().lastPathComponent
            XCTAssertTrue(
                consumerPackage.contains("\"\(target)\""),
                "\(file)'s program \(program) is not a target of Examples/Consumer/Package.swift, so nothing builds it")
            guard let source = try? String(contentsOf: Self.root.appendingPathComponent(program), encoding: .utf8) else {
                XCTFail("\(file) names \(program), which cannot be read")
                continue
            }
            let programLines = Self.lines(source)
            for block in blocks {
                XCTAssertFalse(block.lines.isEmpty, "\(file):\(block.line): an empty code block")
                XCTAssertTrue(
                    Self.contains(programLines, block.lines),
                    "\(file):\(block.line): this Swift block does not appear verbatim in \(program); change both together:\n"
                        + block.lines.joined(separator: "\n"))
                checkedBlocks += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checkedBlocks, Self.articles.count)
    }

    /// The check itself: a block is found only whole and in order, so an edit on one side fails.
    func testABlockChangedOnOneSideIsNotFound() {
        let program = Self.lines("import Learner\n\nlet a = 1\nlet b = 2   \nprint(a + b)\n")
        let article = "# T\n\n<!-- example: Examples/X/main.swift -->\n\n```swift\nlet a = 1\nlet b = 2\n```\n\n```swift\nlet b = 3\n```\n"
        let blocks = Self.swiftBlocks(in: article)
        XCTAssertEqual(Self.exampleProgram(in: article), "Examples/X/main.swift")
        XCTAssertEqual(blocks.map(\.lines), [["let a = 1", "let b = 2"], ["let b = 3"]])
        XCTAssertTrue(Self.contains(program, blocks[0].lines))
        XCTAssertFalse(Self.contains(program, blocks[1].lines))
        XCTAssertFalse(Self.contains(program, ["let a = 1", "print(a + b)"]), "lines apart are no block")
        XCTAssertFalse(Self.contains(program, ["    let a = 1"]), "indentation counts")
        let indented = "- Step:\n\n    ```swift\n    let a = 1\n      let c = 3\n    ```\n"
        XCTAssertEqual(Self.swiftBlocks(in: indented).map(\.lines), [["let a = 1", "  let c = 3"]])
    }

    /// The ```swift blocks of a Markdown text: their first line (1-based) and their lines, less
    /// the fence's indentation and trailing spaces.
    static func swiftBlocks(in markdown: String) -> [(line: Int, lines: [String])] {
        var blocks: [(line: Int, lines: [String])] = []
        var current: (line: Int, indent: Int, lines: [String])?
        for (index, line) in lines(markdown).enumerated() {
            let trimmed = line.drop { $0 == " " }
            if var block = current {
                if trimmed.hasPrefix("```") {
                    blocks.append((block.line, block.lines))
                    current = nil
                } else {
                    block.lines.append(String(line.dropFirst(min(block.indent, line.prefix { $0 == " " }.count))))
                    current = block
                }
            } else if trimmed.hasPrefix("```") {
                let language = trimmed.dropFirst(3).trimmingCharacters(in: .whitespaces)
                current = (index + 2, line.count - trimmed.count, [])
                if language != "swift" { current?.line = -1 }  // another language: skipped below
            }
        }
        return blocks.filter { $0.line > 0 }
    }

    /// The program an article names: `<!-- example: PATH -->`.
    static func exampleProgram(in markdown: String) -> String? {
        for line in lines(markdown) {
            let text = line.trimmingCharacters(in: .whitespaces)
            guard text.hasPrefix("<!-- example:"), text.hasSuffix("-->") else { continue }
            return text.dropFirst("<!-- example:".count).dropLast(3).trimmingCharacters(in: .whitespaces)
        }
        return nil
    }

    /// Whether `block` occurs in `program` as consecutive lines.
    static func contains(_ program: [String], _ block: [String]) -> Bool {
        guard !block.isEmpty, block.count <= program.count else { return false }
        return (0...(program.count - block.count)).contains { start in
            zip(program[start...], block).allSatisfy { $0 == $1 }
        }
    }

    /// The lines of a text, without trailing spaces.
    static func lines(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var line = Substring(line)
            while line.last == " " || line.last == "\r" || line.last == "\t" { line = line.dropLast() }
            return String(line)
        }
    }
}
