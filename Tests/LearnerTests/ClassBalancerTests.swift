import Learner
import XCTest

/// Class balancing: p(e) = u + (e − 1)/E · (q − u), and epoch orders drawn from it.
final class ClassBalancerTests: XCTestCase {
    /// 70 % class 0, 20 % class 1, 10 % class 2.
    let labels = (0..<1000).map { $0 < 700 ? 0 : ($0 < 900 ? 1 : 2) }

    func testProbabilitiesFollowTheSchedule() throws {
        let balancer = try ClassBalancer(labels: labels, classCount: 3, epochs: 10)
        XCTAssertEqual(balancer.targetProbabilities, [0.7, 0.2, 0.1])
        let third = 1.0 / 3
        for (got, want) in zip(balancer.probabilities(epoch: 1), [third, third, third]) {
            XCTAssertEqual(got, want, accuracy: 1e-12)
        }
        // e = 6: u + 0.5 (q − u)
        for (got, want) in zip(
            balancer.probabilities(epoch: 6), [(third + 0.7) / 2, (third + 0.2) / 2, (third + 0.1) / 2])
        {
            XCTAssertEqual(got, want, accuracy: 1e-12)
        }
        XCTAssertEqual(balancer.probabilities(epoch: 10), balancer.probabilities(epoch: 25))
        XCTAssertEqual(balancer.probabilities(epoch: 10).reduce(0, +), 1, accuracy: 1e-12)
    }

    /// Class frequencies of a drawn epoch lie within 4.5 standard errors of p(e) at e = 1, E/2, E.
    func testEpochFrequenciesMatchProbabilities() throws {
        let epochs = 10
        let balancer = try ClassBalancer(labels: labels, classCount: 3, epochs: epochs)
        let draws = 30_000
        for epoch in [1, epochs / 2, epochs] {
            let order = balancer.sampleOrder(epoch: epoch, seed: 42, count: draws)
            XCTAssertEqual(order.count, draws)
            var counts = [0, 0, 0]
            for index in order { counts[labels[index]] += 1 }
            for (c, p) in balancer.probabilities(epoch: epoch).enumerated() {
                let frequency = Double(counts[c]) / Double(draws)
                let sigma = (p * (1 - p) / Double(draws)).squareRoot()
                XCTAssertEqual(frequency, p, accuracy: 4.5 * sigma, "epoch \(epoch) class \(c)")
            }
        }
    }

    func testOrderIsAPureFunctionOfSeedAndEpoch() throws {
        let balancer = try ClassBalancer(labels: labels, classCount: 3, epochs: 5)
        let again = try ClassBalancer(labels: labels, classCount: 3, epochs: 5)
        XCTAssertEqual(balancer.sampleOrder(epoch: 3, seed: 7), again.sampleOrder(epoch: 3, seed: 7))
        XCTAssertNotEqual(balancer.sampleOrder(epoch: 3, seed: 7), balancer.sampleOrder(epoch: 4, seed: 7))
        XCTAssertNotEqual(balancer.sampleOrder(epoch: 3, seed: 7), balancer.sampleOrder(epoch: 3, seed: 8))
        XCTAssertEqual(balancer.sampleOrder(epoch: 2, seed: 1).count, labels.count)
        // Within a class the drawn index is one of that class's samples.
        XCTAssertTrue(balancer.sampleOrder(epoch: 1, seed: 3).allSatisfy { labels.indices.contains($0) })
    }

    func testGivenInitProbabilitiesAndEmptyClass() throws {
        // Class 3 has no sample: it is never drawn, whatever p(e) gives it.
        let balancer = try ClassBalancer(labels: labels, classCount: 4, epochs: 4, initProbabilities: [1, 1, 1, 1])
        XCTAssertEqual(balancer.targetProbabilities, [0.25, 0.25, 0.25, 0.25])
        XCTAssertEqual(balancer.samplingProbabilities(epoch: 1)[3], 0)
        XCTAssertEqual(balancer.samplingProbabilities(epoch: 1)[0], 1.0 / 3, accuracy: 1e-12)
        XCTAssertFalse(balancer.sampleOrder(epoch: 1, seed: 0).contains { labels[$0] == 3 })
        XCTAssertThrowsError(try ClassBalancer(labels: labels, classCount: 3, epochs: 4, initProbabilities: [1, 2]))
        XCTAssertThrowsError(try ClassBalancer(labels: [0, 5], classCount: 3, epochs: 4))
    }

    func testSampleWeights() throws {
        let balancer = try ClassBalancer(labels: [0, 1, 1, 2], classCount: 3, epochs: 1)
        XCTAssertEqual(try balancer.sampleWeights(classWeights: [1, 0.5, 2]), [1, 0.5, 0.5, 2])
        XCTAssertThrowsError(try balancer.sampleWeights(classWeights: [1]))
        let balanced = balancer.balancedClassWeights()
        XCTAssertEqual(balanced[0], 4.0 / 3, accuracy: 1e-6)
        XCTAssertEqual(balanced[1], 2.0 / 3, accuracy: 1e-6)
    }
}
