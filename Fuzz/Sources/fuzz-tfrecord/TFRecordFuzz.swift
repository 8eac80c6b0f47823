import Foundation
import FuzzSupport
import Learner

/// A TFRecord file through ``TFRecordReader``: the first input byte chooses how it is opened,
/// the rest is the file.
///
/// - bits 0-1: 0 lets the reader detect the compression (what every caller does), 1, 2, 3 force
///   none, GZIP, ZLIB (a file named `.gz` or told to be ZLIB that is not).
/// - bit 2: a 64-byte buffer instead of 4 KiB, so records cross the buffer's growth.
///
/// Every record is read, each record's location must move forward, and a record whose payload
/// CRC fails is skipped as `tefla-data verify --all` does. Any other ``DataError`` ends the file;
/// an error of another type or a trap is a finding.
private let directory = scratchFolder("tfrecord")

private let modes: [TFRecordCompression?] = [nil, TFRecordCompression.none, .gzip, .zlib]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTFRecord(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let compression = modes[Int(bytes[0] & 3)]
    let bufferSize = bytes[0] & 4 != 0 ? 64 : 4096
    let path = directory + "/shard.tfrecord"
    writeFile(path, bytes + 1, count - 1)
    do {
        let reader = try TFRecordReader(path: path, compression: compression, bufferSize: bufferSize)
        var records = 0
        var lastOffset = -1
        while true {
            do {
                guard
                    let length = try reader.withNextRecord({ payload, location -> Int in
                        precondition(location.offset > lastOffset, "record \(location.record) does not move forward")
                        lastOffset = location.offset
                        return payload.count
                    })
                else { break }
                precondition(length >= 0)
                records += 1
            } catch DataError.corruptData {
                continue  // the framing was sound: the reader is on the next record
            }
        }
        precondition(reader.recordIndex >= records, "records counted wrongly")
    } catch is DataError {
    } catch {
        fatalError("an error other than DataError: \(error)")
    }
    return 0
}
