import XCTest

@testable import Learner

/// `model.summary(inputShape:)`: shapes by inference, torchvision's parameter counts.
final class ModelSummaryTests: XCTestCase {
    func testTheZoosResNetsHaveTorchvisionsParameterCounts() throws {
        // torchvision.models.resnet18/34/50(num_classes=1000): sum(p.numel() for p in model.parameters()).
        for (model, count) in [(Zoo.resnet18(), 11_689_512), (Zoo.resnet34(), 21_797_672), (Zoo.resnet50(), 25_557_032)] {
            XCTAssertEqual(model.parameterCount, count)
            let table = try model.summary(inputShape: [3, 224, 224])
            XCTAssertTrue(table.contains("Trainable params: \(count)\n"), table)
            XCTAssertTrue(table.contains("[None, 1000]"), table)
        }
    }

    func testASequentialListsEveryLayerWithItsShape() throws {
        let model = Sequential([
            Conv2D(inputChannels: 1, outputChannels: 4, kernelSize: 3, padding: .same, seed: 1), BatchNorm2D(features: 4),
            MaxPool2D(kernelSize: 2), Flatten(), Dense(inputSize: 64, units: 10, seed: 2),
        ])
        let table = try model.summary(inputShape: [1, 8, 8])
        let rows = table.split(separator: "\n").map(String.init)
        XCTAssertTrue(
            rows[2].hasPrefix("0") && rows[2].contains("Conv2D") && rows[2].contains("[None, 4, 8, 8]") && rows[2].hasSuffix("40"), table)
        XCTAssertTrue(rows[4].contains("[None, 4, 4, 4]"), table)
        XCTAssertTrue(rows[6].contains("Dense") && rows[6].hasSuffix("650"), table)
        XCTAssertTrue(table.hasSuffix("Total params: 707\nTrainable params: 698\nNon-trainable params: 9"), table)
        XCTAssertThrowsError(try model.summary(inputShape: [3, 8, 8])) { error in
            XCTAssertTrue("\(error)".contains("layer '0'"), "\(error)")
        }
    }
}
