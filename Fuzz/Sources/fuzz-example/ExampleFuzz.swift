import CLearner
import Learner

/// tf.Example parsing: the wire scan (example.c, behind `Example(serialized:)`) against the
/// protobuf-c generated parser (example_reference.c). Both must accept with the same entries
/// and values, or both reject; a disagreement aborts, as a trap does.
///
/// protobuf-c departs from protobuf (which the scan follows) in two ways: where protobuf lets one
/// message arrive in pieces that merge, protobuf-c fails on two empty `value` fields of one map
/// entry and keeps only the last of a `kind` member given twice instead of concatenating the
/// lists; and it reads a field tag of more than 32 bits (cutting it) and a tag of field number 0
/// written in more than one byte, where protobuf refuses both.
/// Inputs that hold either (``departsFromProtobufC(_:)``) are still parsed by both, but only the
/// scan's own checks below judge them.
///
/// Whatever the scan accepts must also survive `Example(serialized:)` → `serialized()` →
/// parse again: the same bytes, and protobuf-c must accept them with the same values.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzExample(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: bytes, count: count)
    let verdict = tl_example_reference_check(bytes, count)
    if verdict < 0 && !departsFromProtobufC(input) {
        fatalError("the wire scan and protobuf-c disagree (\(verdict)) on \(Array(input))")
    }
    let example: Example
    do {
        example = try Example(serialized: input)
    } catch {
        precondition(error as? DataError == .unparsableExample(nil), "unexpected error \(error)")
        precondition(verdict == 0 || verdict == -1, "protobuf-c and the scan accepted what Example(serialized:) refused")
        return 0
    }
    let written = example.serialized()
    guard let again = try? Example(serialized: written) else {
        fatalError("Example(serialized:) refuses its own serialization \(written) of \(Array(input))")
    }
    precondition(again.serialized() == written, "serialize → parse → serialize changed the bytes of \(Array(input))")
    let check = written.withUnsafeBufferPointer { tl_example_reference_check($0.baseAddress, $0.count) }
    precondition(check == 1, "protobuf-c disagrees (\(check)) on the serialization \(written)")
    return 0
}

/// Whether the Example in `bytes` holds what protobuf-c reads otherwise than protobuf: a map
/// entry with more than one `value` field, a Feature with one `kind` member more than once, or a
/// tag over 32 bits or of field 0, in any of the messages (Example, Features, map entry, Feature, value list).
func departsFromProtobufC(_ bytes: UnsafeRawBufferPointer) -> Bool {
    // The messages a length-delimited field holds, by (message, field number).
    enum Message { case example, features, entry, feature, list }
    func departs(_ bytes: UnsafeRawBufferPointer, _ message: Message) -> Bool {
        guard let fields = fields(bytes) else { return false }
        // A tag over 32 bits, or one naming field 0 in more than one byte (`81 00`: protobuf-c
        // checks only the first byte for field 0).
        if fields.contains(where: { $0.number > UInt64(UInt32.max >> 3) || $0.number == 0 }) { return true }
        switch message {
        case .entry where fields.filter({ $0.number == 2 }).count > 1: return true
        case .feature:
            let kinds = fields.map(\.number).filter { (1...3).contains($0) }
            if Set(kinds).count < kinds.count { return true }
        default: break
        }
        for field in fields {
            guard let payload = field.payload else { continue }
            let inner: Message?
            switch (message, field.number) {
            case (.example, 1): inner = .features
            case (.features, 1): inner = .entry
            case (.entry, 2): inner = .feature
            case (.feature, 1...3): inner = .list
            default: inner = nil
            }
            if let inner, departs(payload, inner) { return true }
        }
        return false
    }
    return departs(bytes, .example)
}

/// The fields of one message: number (tag >> 3, the tag read as a 64-bit varint) and, for
/// length-delimited ones, the payload; nil when the bytes are not a well-formed message.
private func fields(_ bytes: UnsafeRawBufferPointer) -> [(number: UInt64, payload: UnsafeRawBufferPointer?)]? {
    var out: [(number: UInt64, payload: UnsafeRawBufferPointer?)] = []
    var i = 0
    func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard i < bytes.count else { return nil }
            let byte = bytes[i]
            i += 1
            value |= shift < 64 ? UInt64(byte & 0x7F) << UInt64(shift) : 0
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }
    while i < bytes.count {
        guard let tag = varint() else { return nil }
        let number = tag >> 3
        switch tag & 7 {
        case 0: guard varint() != nil else { return nil }
        case 1: i += 8
        case 5: i += 4
        case 2:
            guard let length = varint(), length <= UInt64(bytes.count - i) else { return nil }
            out.append((number, UnsafeRawBufferPointer(rebasing: bytes[i..<i + Int(length)])))
            i += Int(length)
            continue
        default: return nil
        }
        guard i <= bytes.count else { return nil }
        out.append((number, nil))
    }
    return out
}
