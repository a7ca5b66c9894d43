import Testing

@testable import IsobarWire

@Suite("JSONScanner: top-level fields without building the document")
struct JSONScannerTests {
    /// The fields the scanner reports: key text, key literal and value text.
    static func fields(_ text: String) throws(JSONError) -> [(key: String, keyLiteral: String, value: String)] {
        let bytes = Array(text.utf8)
        var found: [(key: String, keyLiteral: String, value: String)] = []
        let result: Result<Range<Int>, JSONError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONError) in
                try JSONScanner.forEachField(in: buffer) { key, keyRange, valueRange in
                    func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
                    let decoded = JSONScanner.decodeKey(key) ?? "<undecodable>"
                    found.append((key: decoded, keyLiteral: text(keyRange), value: text(valueRange)))
                }
            }
        }
        _ = try result.get()
        return found
    }

    static func objectRange(_ text: String) throws(JSONError) -> Range<Int> {
        let result: Result<Range<Int>, JSONError> = Array(text.utf8).withUnsafeBytes { buffer in
            Result { () throws(JSONError) in try JSONScanner.forEachField(in: buffer) { _, _, _ in } }
        }
        return try result.get()
    }

    @Test("Fields come in document order with exact key and value ranges, whitespace excluded")
    func fieldsInOrder() throws {
        let body =
            " {\n \"model\" :\t\"gpt-4o\" , \"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":1e0 }\r\n"
        let fields = try Self.fields(body)
        #expect(fields.map(\.key) == ["model", "messages", "n"])
        #expect(fields.map(\.keyLiteral) == [#""model""#, #""messages""#, #""n""#])
        #expect(fields.map(\.value) == [#""gpt-4o""#, #"[{"role":"user","content":"hi"}]"#, "1e0"])
        let range = try Self.objectRange(body)
        #expect(range == 1..<(body.utf8.count - 2))
    }

    @Test("An empty object has no fields")
    func emptyObject() throws {
        #expect(try Self.fields(" { } ").isEmpty)
        #expect(try Self.objectRange(" { } ") == 1..<4)
    }

    @Test("Escaped keys are compared by their decoded text")
    func escapedKeys() {
        func matches(_ raw: String, _ name: StaticString) -> Bool {
            Array(raw.utf8).withUnsafeBytes { JSONScanner.key($0, is: name) }
        }
        #expect(matches("model", "model"))
        #expect(matches(#"mod\u0065l"#, "model"))
        #expect(matches(#"\u006D\u006f\u0064\u0065\u006C"#, "model"))
        #expect(matches(#"max\u005ftokens"#, "max_tokens"))
        #expect(!matches("models", "model"))
        #expect(!matches("Model", "model"))
        #expect(!matches(#"mod\u0065"#, "model"))
        #expect(!matches(#"mod\\el"#, "model"))
    }

    static let malformedBodies: [String] = [
        #"{"model":"m","messages":[{"role":"user","content":"hi"},]}"#,
        #"{"model":"m","messages":[{"role":"user","content":"a\u00"}]}"#,
        #"{"model":"m","messages":[{"role":"user","content":"a\qb"}]}"#,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"tab\there\"}]}",
        #"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":01}"#,
        #"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function",}]}"#,
        #"{"model":"m","messages":[{"role":"user" "content":"hi"}]}"#,
        #"{"model":"m","logit_bias":{"1":-100,"2":tru}}"#,
        #"{"model":"m","messages":[{"role":"user","content":"hi"}]"#,
        #"{"model":"m"} trailing"#,
        #"{"model":"m"}{"model":"n"}"#,
        #"{"model":"m",}"#,
        #"{"model":"m" "stream":true}"#,
        #"["model","m"]"#,
        #""model""#,
        "",
    ]

    @Test("A syntax error anywhere in the document, however deep, rejects the body", arguments: malformedBodies)
    func rejectsMalformed(_ body: String) {
        #expect(throws: JSONError.self) { try Self.fields(body) }
        if body.hasPrefix("{") {
            // The full parser agrees: an object the scanner rejects is not well-formed JSON.
            #expect(throws: JSONError.self) { try JSON(parsing: body) }
        }
    }

    @Test("The scanner and the parser report the same offset for the same mistake")
    func sameOffsetsAsParser() throws {
        for body in Self.malformedBodies where body.hasPrefix("{") {
            let scanned = #expect(throws: JSONError.self) { try Self.fields(body) }
            let parsed = #expect(throws: JSONError.self) { try JSON(parsing: body) }
            #expect(scanned?.offset == parsed?.offset, "\(body)")
        }
    }

    @Test("Deep nesting in a field value is rejected at the parser's limit, without a crash")
    func depthLimit() {
        let fine = #"{"a":"# + String(repeating: "[", count: 255) + String(repeating: "]", count: 255) + "}"
        #expect(throws: Never.self) { try Self.fields(fine) }
        let hostile = #"{"model":"m","messages":"# + String(repeating: "[", count: 100_000)
        let error = #expect(throws: JSONError.self) { try Self.fields(hostile) }
        #expect(error?.message.contains("nesting deeper than 256") == true)
        #expect(error?.offset == 24 + 255)
    }

    @Test("value(in:at:) decodes one field's value")
    func valueDecoding() throws {
        let body = #"{"stream_options":{"include_usage":true,"continuous_usage_stats":false},"model":"m"}"#
        let fields = try Self.fields(body)
        let bytes = Array(body.utf8)
        let range = 18..<(18 + fields[0].value.utf8.count)
        let options = bytes.withUnsafeBytes { JSONScanner.value(in: $0, at: range) }
        #expect(options?["include_usage"] == true)
        #expect(options?["continuous_usage_stats"] == false)
    }

    @Test("ByteEdit.apply splices sorted edits and keeps every other byte")
    func byteEdits() {
        let source = Array("0123456789".utf8)
        let edits = [
            ByteEdit.insert(Array("<".utf8), at: 0),
            ByteEdit(range: 2..<4, replacement: Array("two-three".utf8)),
            ByteEdit(range: 5..<5, replacement: Array("+".utf8)),
            ByteEdit(range: 8..<10, replacement: []),
        ]
        let out = source.withUnsafeBytes { ByteEdit.apply(edits, to: $0) }
        #expect(String(decoding: out, as: UTF8.self) == "<01two-three4+567")
        #expect(source.withUnsafeBytes { ByteEdit.apply([], to: $0) } == source)
    }
}
