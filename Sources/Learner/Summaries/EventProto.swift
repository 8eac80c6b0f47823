/// Hand-written protobuf encoding of the two TensorBoard messages a scalar log needs.
///
/// From tensorflow/core/util/event.proto and framework/summary.proto:
///
/// `Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }`,
/// `Summary { repeated Value value = 1; }`, `Summary.Value { string tag = 1; float simple_value = 2; }`;
/// from util/event.proto: `Event.session_log = 7`, `SessionLog { SessionStatus status = 1; }`, START = 1.
enum EventProto {
    /// The first record of every event file: `file_version: "brain.Event:2"`.
    static func fileVersion(wallTime: Double) -> [UInt8] {
        var out: [UInt8] = []
        appendDouble(1, wallTime, to: &out)
        appendBytes(3, Array("brain.Event:2".utf8), to: &out)
        return out
    }

    /// `session_log { status: START }` at `step`: TensorBoard drops the run's events at `step`
    /// and later that came before it (a restarted run's abandoned tail), as PyTorch's
    /// `SummaryWriter(purge_step:)` asks.
    static func sessionStart(step: Int64, wallTime: Double) -> [UInt8] {
        var out: [UInt8] = []
        appendDouble(1, wallTime, to: &out)
        appendVarint(key(2, wire: 0), to: &out)
        appendVarint(UInt64(bitPattern: step), to: &out)
        var sessionLog: [UInt8] = []
        appendVarint(key(1, wire: 0), to: &sessionLog)
        appendVarint(1, to: &sessionLog)
        appendBytes(7, sessionLog, to: &out)
        return out
    }

    /// An event holding scalar summaries `tag → simple_value` at `step`.
    static func scalars(_ values: [(tag: String, value: Float)], step: Int64, wallTime: Double) -> [UInt8] {
        var summary: [UInt8] = []
        for (tag, value) in values {
            var v: [UInt8] = []
            appendBytes(1, Array(tag.utf8), to: &v)
            appendFloat(2, value, to: &v)
            appendBytes(1, v, to: &summary)
        }
        var out: [UInt8] = []
        appendDouble(1, wallTime, to: &out)
        appendVarint(key(2, wire: 0), to: &out)
        appendVarint(UInt64(bitPattern: step), to: &out)
        appendBytes(5, summary, to: &out)
        return out
    }

    static func key(_ field: UInt64, wire: UInt64) -> UInt64 { field << 3 | wire }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func appendDouble(_ field: UInt64, _ value: Double, to out: inout [UInt8]) {
        appendVarint(key(field, wire: 1), to: &out)
        var bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
    }

    static func appendFloat(_ field: UInt64, _ value: Float, to out: inout [UInt8]) {
        appendVarint(key(field, wire: 5), to: &out)
        var bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { out.append(contentsOf: $0) }
    }

    static func appendBytes(_ field: UInt64, _ bytes: [UInt8], to out: inout [UInt8]) {
        appendVarint(key(field, wire: 2), to: &out)
        appendVarint(UInt64(bytes.count), to: &out)
        out.append(contentsOf: bytes)
    }
}
