/// The outcome of checking every record's CRCs in a set of TFRecord files.
public struct VerifyReport: Sendable, Equatable {
    /// Files checked (all of them, or up to the first bad one when stopping early).
    public var files: Int = 0
    /// Records whose framing and CRCs were both sound.
    public var goodRecords: Int = 0
    /// Every problem found, in file and record order; empty when all is well.
    public var problems: [DataError] = []

    public var ok: Bool { problems.isEmpty }
}

/// Checks both masked CRC32Cs of every record of TFRecord files (`tefla-data verify`).
///
/// A bad payload CRC leaves the framing intact, so checking goes on with the next record; a bad
/// length CRC, a truncated record or a broken compressed stream ends that file (nothing after it
/// can be located) and checking goes on with the next file.
public enum RecordVerifier {
    /// Verifies `files` in order; `stopAtFirst` returns as soon as one problem is found.
    public static func verify(files: [String], stopAtFirst: Bool = true) -> VerifyReport {
        var report = VerifyReport()
        for file in files {
            report.files += 1
            let reader: TFRecordReader
            do {
                reader = try TFRecordReader(path: file)
            } catch {
                report.problems.append(asDataError(error, file: file))
                if stopAtFirst { return report }
                continue
            }
            while true {
                do {
                    guard try reader.withNextRecord({ _, _ in }) != nil else { break }
                    report.goodRecords += 1
                } catch {
                    let problem = asDataError(error, file: file)
                    report.problems.append(problem)
                    if stopAtFirst { return report }
                    if case .corruptData = problem { continue }
                    break
                }
            }
        }
        return report
    }

    private static func asDataError(_ error: Error, file: String) -> DataError {
        (error as? DataError) ?? .io(path: file, operation: "read", message: "\(error)")
    }
}
