import Foundation
import XCTest

@testable import tefla_train

/// Every file in Tests/Fixtures/broken-configs opens with `# expect: line L: <text>`: parsing
/// it must report a problem on line L whose description contains the text.
final class BrokenConfigTests: XCTestCase {
    func testEveryBrokenConfigNamesItsLineAndProblem() throws {
        _ = FileManager.default.changeCurrentDirectoryPath(ConfigTests.root.path)
        let dir = ConfigTests.root.appendingPathComponent("Tests/Fixtures/broken-configs")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yml") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 20)
        for file in files {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            let first = String(text.prefix { $0 != "\n" })
            guard first.hasPrefix("# expect: line "), let colon = first.dropFirst(15).firstIndex(of: ":"),
                let line = Int(first[first.index(first.startIndex, offsetBy: 15)..<colon])
            else {
                XCTFail("\(file): first line must be '# expect: line L: text'")
                continue
            }
            let expected = String(first[first.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            XCTAssertThrowsError(try TrainConfig.parse(yaml: text, file: file), file) { error in
                guard let error = error as? ConfigError else { return XCTFail("\(file): \(error)") }
                let match = error.issues.contains { $0.line == line && $0.description.contains(expected) }
                XCTAssertTrue(match, "\(file): expected line \(line): \(expected)\ngot: \(error)")
                XCTAssertTrue(error.description.hasPrefix("\(file): "), error.description)
            }
        }
    }

    func testHelpFitsIn80Columns() throws {
        for arguments in [["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"]] {
            let help = try Trainer.run(arguments)
            XCTAssertEqual(help.status, 0)
            for line in help.output.split(separator: "\n") {
                XCTAssertLessThanOrEqual(line.count, 80, "\(arguments): \(line)")
            }
        }
    }
}
