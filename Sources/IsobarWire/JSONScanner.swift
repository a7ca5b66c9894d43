/// Finds top-level fields of a JSON object without building the document.
///
/// The proxy hot path reads only what routing needs (`model`, `stream`, `max_tokens`, …) and forwards the
/// body as bytes, so it scans instead of parsing. Scanning still checks the syntax of the whole document:
/// a body the scanner accepts is well-formed JSON.
public enum JSONScanner {
    /// One top-level field: its key and the byte ranges of the key literal and the value.
    public struct Field: Sendable, Equatable {
        public var key: String
        public var keyRange: Range<Int>
        public var valueRange: Range<Int>
    }

    /// Scans a document whose top level must be an object, calling `body` for each field in order
    /// with the key and the value's byte range. Throws on any syntax error.
    public static func forEachField(
        in bytes: UnsafeRawBufferPointer,
        _ body: (_ key: UnsafeRawBufferPointer, _ keyRange: Range<Int>, _ valueRange: Range<Int>) -> Void
    ) throws(JSONError) -> Range<Int> {
        var reader = JSONReader(bytes: bytes)
        reader.skipWhitespace()
        guard reader.peek() == UInt8(ascii: "{") else { throw reader.error("expected a JSON object") }
        let objectStart = reader.offset
        reader.offset += 1
        reader.skipWhitespace()
        if reader.peek() == UInt8(ascii: "}") {
            reader.offset += 1
        } else {
            while true {
                reader.skipWhitespace()
                guard reader.peek() == UInt8(ascii: "\"") else { throw reader.error("expected a string key") }
                let keyStart = reader.offset
                try reader.skipString()
                let keyEnd = reader.offset
                reader.skipWhitespace()
                try reader.expect(UInt8(ascii: ":"), "':' after object key")
                reader.skipWhitespace()
                let valueStart = reader.offset
                try reader.skipValue(depth: 1)
                body(
                    UnsafeRawBufferPointer(rebasing: bytes[(keyStart + 1)..<(keyEnd - 1)]),
                    keyStart..<keyEnd,
                    valueStart..<reader.offset
                )
                reader.skipWhitespace()
                guard let next = reader.peek() else { throw reader.error("unterminated object") }
                reader.offset += 1
                if next == UInt8(ascii: "}") { break }
                guard next == UInt8(ascii: ",") else {
                    reader.offset -= 1
                    throw reader.error("expected ',' or '}' in object")
                }
            }
        }
        let objectEnd = reader.offset
        reader.skipWhitespace()
        guard reader.atEnd else { throw reader.error("unexpected data after the JSON value") }
        return objectStart..<objectEnd
    }

    /// True if the raw key bytes (between the quotes, possibly escaped) spell `name`.
    @inline(__always)
    static func key(_ raw: UnsafeRawBufferPointer, is name: StaticString) -> Bool {
        let count = name.utf8CodeUnitCount
        guard raw.count == count else {
            // An escaped key is longer than its text; compare its decoded form.
            guard raw.contains(UInt8(ascii: "\\")) else { return false }
            return decodeKey(raw) == String(describing: name)
        }
        let start = name.utf8Start
        for i in 0..<count where raw[i] != start[i] { return false }
        return true
    }

    static func decodeKey(_ raw: UnsafeRawBufferPointer) -> String? {
        var quoted: [UInt8] = [UInt8(ascii: "\"")]
        quoted.append(contentsOf: raw)
        quoted.append(UInt8(ascii: "\""))
        return quoted.withUnsafeBytes { buffer in
            var reader = JSONReader(bytes: buffer)
            return try? reader.readString()
        }
    }

    /// Decodes the value at `range` (a small sub-document).
    public static func value(in bytes: UnsafeRawBufferPointer, at range: Range<Int>) -> JSON? {
        try? JSON.parse(UnsafeRawBufferPointer(rebasing: bytes[range])).get()
    }

    /// True if the value at `range` is the literal `null`.
    static func isNull(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        range.count == 4 && bytes[range.lowerBound] == UInt8(ascii: "n")
    }
}

/// A replacement of a byte range of a body. Edits of one body never overlap and are applied in order.
public struct ByteEdit: Sendable, Equatable {
    public var range: Range<Int>
    public var replacement: [UInt8]

    public init(range: Range<Int>, replacement: [UInt8]) {
        self.range = range
        self.replacement = replacement
    }

    /// Inserts `bytes` before `offset`.
    public static func insert(_ bytes: [UInt8], at offset: Int) -> ByteEdit {
        ByteEdit(range: offset..<offset, replacement: bytes)
    }

    /// Applies sorted, non-overlapping edits to `source`.
    public static func apply(_ edits: [ByteEdit], to source: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(source.count + edits.reduce(0) { $0 + $1.replacement.count })
        var cursor = 0
        for edit in edits {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: source[cursor..<edit.range.lowerBound]))
            out.append(contentsOf: edit.replacement)
            cursor = edit.range.upperBound
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: source[cursor...]))
        return out
    }
}
