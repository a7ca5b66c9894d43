import IsobarModel
import Testing

@testable import IsobarWire

/// A document that must be rejected, where, and why.
struct MalformedJSON: Sendable, CustomTestStringConvertible {
    var text: String
    var offset: Int
    var reason: String
    var testDescription: String { text.debugDescription }
}

@Suite("JSON values: parsing, writing, exact round trips")
struct JSONTests {
    /// A compact chat request as a client would send it, with numbers a float round trip would damage.
    static let chatRequest =
        #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},"#
        + #"{"role":"user","content":[{"type":"text","text":"Résumé of 中文 😀, \"quoted\" and \\ slash\n"}]}],"#
        + #""seed":18446744073709551615,"temperature":0.70,"top_p":1e-7,"presence_penalty":-0.0,"#
        + #""frequency_penalty":1.5E+2,"logit_bias":{"50256":-100},"n":1,"stream":false,"stop":null,"#
        + #""response_format":{"type":"json_schema","json_schema":{"name":"a","strict":true,"schema":{}}}}"#

    @Test("A realistic chat request round-trips byte for byte, keeping key order and number literals")
    func exactRoundTrip() throws {
        let json = try JSON(parsing: Self.chatRequest)
        #expect(json.text == Self.chatRequest)
        #expect(
            json.objectValue?.keys == [
                "model", "messages", "seed", "temperature", "top_p", "presence_penalty", "frequency_penalty",
                "logit_bias", "n", "stream", "stop", "response_format",
            ]
        )
        #expect(json["seed"] == .number(JSONNumber(literal: "18446744073709551615")))
        #expect(json["seed"]?.intValue == nil, "a seed beyond Int.max must not be silently rounded")
        #expect(json["temperature"]?.doubleValue == 0.7)
        #expect(json["top_p"]?.doubleValue == 1e-7)
        #expect(json["frequency_penalty"]?.intValue == 150)
        #expect(json["presence_penalty"]?.doubleValue?.sign == .minus)
        #expect(json["messages"]?[1]?["content"]?[0]?["text"] == "Résumé of 中文 😀, \"quoted\" and \\ slash\n")
        #expect(json["stop"]?.isNull == true)
    }

    @Test("Whitespace is dropped and escapes are normalised, but the value is the same")
    func prettyInputCompactOutput() throws {
        let pretty = "{\n  \"model\" : \"m\",\r\n\t\"messages\": [ { \"content\": \"\\u0041\\/b\" } ] , \"n\" : 2 }\n"
        let json = try JSON(parsing: pretty)
        #expect(json.text == #"{"model":"m","messages":[{"content":"A/b"}],"n":2}"#)
        #expect(try JSON(parsing: json.bytes) == json)
    }

    @Test("Every parse entry point (String, Array, slice, non-contiguous collection) agrees")
    func entryPoints() throws {
        let bytes = Array(Self.chatRequest.utf8)
        let expected = try JSON(parsing: Self.chatRequest)
        #expect(try JSON(parsing: bytes) == expected)
        #expect(try JSON(parsing: ([0x20] + bytes + [0x0A])[...]) == expected)
        #expect(try JSON(parsing: bytes.lazy.map { $0 }) == expected)
    }

    @Test("Simple escapes decode to the characters they name")
    func simpleEscapes() throws {
        #expect(try JSON(parsing: #""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try JSON(parsing: #""\u00e9\u4E2D\u0000""#) == .string("é中\u{0}"))
    }

    @Test(
        "Surrogate pairs decode; a lone surrogate becomes U+FFFD without swallowing what follows",
        arguments: [
            (#""\ud83d\ude00""#, "😀"),
            (#""\uD83D\uDE00!""#, "😀!"),
            (#""\ud83d""#, "\u{FFFD}"),
            (#""\ude00x""#, "\u{FFFD}x"),
            (#""\ud83dA""#, "\u{FFFD}A"),
            (#""\ud83d\u0041""#, "\u{FFFD}A"),
            (#""\ud83d\ud83d\ude00""#, "\u{FFFD}😀"),
            (#""\ud83d\n""#, "\u{FFFD}\n"),
        ]
    )
    func surrogates(input: String, decoded: String) throws {
        #expect(try JSON(parsing: input) == .string(decoded))
    }

    static let malformed: [MalformedJSON] = [
        MalformedJSON(text: #"{"a":1,}"#, offset: 7, reason: "expected a string key"),
        MalformedJSON(text: "[1,2,]", offset: 5, reason: "invalid value"),
        MalformedJSON(text: "[01]", offset: 2, reason: "leading zero"),
        MalformedJSON(text: "-012", offset: 2, reason: "leading zero"),
        MalformedJSON(text: "[-]", offset: 1, reason: "invalid value"),
        MalformedJSON(text: "1.", offset: 2, reason: "expected digit after '.'"),
        MalformedJSON(text: "1e+", offset: 3, reason: "expected digit in exponent"),
        MalformedJSON(text: "+1", offset: 0, reason: "invalid value"),
        MalformedJSON(text: ".5", offset: 0, reason: "invalid value"),
        MalformedJSON(text: "NaN", offset: 0, reason: "invalid value"),
        MalformedJSON(text: "-Infinity", offset: 0, reason: "invalid value"),
        MalformedJSON(text: "\"a\u{1}b\"", offset: 2, reason: "control character"),
        MalformedJSON(text: "\"\\n\u{A}\"", offset: 3, reason: "control character"),
        MalformedJSON(text: #""abc"#, offset: 4, reason: "unterminated string"),
        MalformedJSON(text: #""ab\"#, offset: 4, reason: "unterminated"),
        MalformedJSON(text: #"{"a":1"#, offset: 6, reason: "unterminated object"),
        MalformedJSON(text: "[1,2", offset: 4, reason: "unterminated array"),
        MalformedJSON(text: "tru", offset: 0, reason: "invalid literal"),
        MalformedJSON(text: "[nul]", offset: 1, reason: "invalid literal"),
        MalformedJSON(text: "[truex]", offset: 5, reason: "expected ',' or ']'"),
        MalformedJSON(text: #"{"a" 1}"#, offset: 5, reason: "expected ':'"),
        MalformedJSON(text: "{a:1}", offset: 1, reason: "expected a string key"),
        MalformedJSON(text: #"{"a":1 "b":2}"#, offset: 7, reason: "expected ',' or '}'"),
        MalformedJSON(text: #""\x""#, offset: 2, reason: "invalid escape"),
        MalformedJSON(text: #""\u12G4""#, offset: 5, reason: "invalid \\u escape"),
        MalformedJSON(text: #""\u12"#, offset: 3, reason: "short \\u escape"),
        MalformedJSON(text: "{} {}", offset: 3, reason: "unexpected data after"),
        MalformedJSON(text: "", offset: 0, reason: "unexpected end of input"),
        MalformedJSON(text: " \n ", offset: 3, reason: "unexpected end of input"),
        MalformedJSON(text: "\u{FEFF}{}", offset: 0, reason: "invalid value"),
    ]

    @Test("Malformed documents are rejected with an offset that points at the problem", arguments: malformed)
    func rejects(_ sample: MalformedJSON) {
        let error = #expect(throws: JSONError.self) { try JSON(parsing: sample.text) }
        #expect(error?.offset == sample.offset)
        #expect(error?.message.contains(sample.reason) == true, "\(String(describing: error))")
        #expect(error?.description.hasSuffix("at byte \(sample.offset)") == true)
    }

    @Test("Nesting up to 256 levels parses; deeper is an error at the first level too deep, never a crash")
    func depthLimit() throws {
        let deepest = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        #expect(try JSON(parsing: deepest).text == deepest)
        for (open, count) in [("[", 257), ("[", 100_000), (#"{"a":"#, 100_000)] {
            let text = String(repeating: open, count: count)
            let result = Array(text.utf8).withUnsafeBytes { JSON.parse($0) }
            guard case .failure(let error) = result else {
                Issue.record("\(count) levels of \(open) parsed")
                continue
            }
            #expect(error.message.contains("nesting deeper than 256"))
            #expect(error.offset == 256 * open.utf8.count)
        }
    }

    @Test("The writer escapes quotes, backslashes and every control character")
    func writerEscapes() {
        let text = String(decoding: JSON.quoted("a\u{0}b\u{1F}\u{7}\n\t\r\"\\/\u{7F}é"), as: UTF8.self)
        #expect(text == #""a\u0000b\u001f\u0007\n\t\r\"\\/"# + "\u{7F}é\"")
    }

    @Test("Any string the writer produces parses back to the same string (seeded random strings)")
    func writerPropertyStrings() throws {
        var rng = Xoshiro256(seed: 0x1503_BA12)
        for _ in 0..<2_000 {
            let s = Self.randomString(using: &rng)
            let quoted = JSON.quoted(s)
            #expect(!quoted.contains { $0 < 0x20 }, "raw control byte written for \(s.debugDescription)")
            #expect(try JSON(parsing: quoted) == .string(s), "\(s.debugDescription)")
        }
    }

    @Test("Random documents survive write -> parse -> write unchanged (seeded)")
    func writerPropertyDocuments() throws {
        var rng = Xoshiro256(seed: 42)
        for _ in 0..<300 {
            let value = Self.randomValue(depth: 0, using: &rng)
            let written = value.bytes
            let parsed = try JSON(parsing: written)
            #expect(parsed == value)
            #expect(parsed.bytes == written)
        }
    }

    @Test("Numbers built from Swift values are valid JSON literals")
    func numbersFromSwift() throws {
        #expect(JSONNumber(3.0).literal == "3")
        #expect(JSONNumber(-12).literal == "-12")
        #expect(JSONNumber(Double.nan).literal == "0")
        #expect(JSONNumber(-Double.infinity).literal == "0")
        for value in [0.1, 1e-7, -2.5e300, 1e15, 123_456_789.25, Double.leastNonzeroMagnitude] {
            let literal = JSONNumber(value).literal
            #expect(try JSON(parsing: literal).doubleValue == value, "\(literal)")
        }
        #expect(JSONNumber(literal: "1e2").int == 100)
        #expect(JSONNumber(literal: "-9223372036854775808").int == Int.min)
        #expect(JSONNumber(literal: "1.5").int == nil)
        #expect(JSONNumber(literal: "1e300").int == nil)
    }

    @Test("Setting an object key keeps its place; removing drops it; a new key goes last")
    func objectEditing() {
        var object: JSONObject = ["model": "a", "stream": true, "n": 1]
        object["stream"] = false
        object["user"] = "u"
        object["n"] = nil
        #expect(JSON.object(object).text == #"{"model":"a","stream":false,"user":"u"}"#)
        #expect(object != ["stream": false, "model": "a", "user": "u"])
    }

    // MARK: - Generators

    static func randomString(using rng: inout Xoshiro256) -> String {
        let pool: [Unicode.Scalar] = [
            "a", "Z", " ", "\"", "\\", "/", "\u{0}", "\u{1F}", "\u{7F}", "é", "中", "😀", "\u{2028}",
        ]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...24, using: &rng) {
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: scalars.append(Unicode.Scalar(UInt8.random(in: 0..<0x20, using: &rng)))
            case 1: scalars.append(pool.randomElement(using: &rng)!)
            case 2: scalars.append(Unicode.Scalar(UInt8.random(in: 0x20..<0x7F, using: &rng)))
            default:
                let code = UInt32.random(in: 0x80...0x10_FFFF, using: &rng)
                scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
            }
        }
        return String(scalars)
    }

    static func randomValue(depth: Int, using rng: inout Xoshiro256) -> JSON {
        let literals = ["0", "-0.0", "18446744073709551615", "1e-7", "3.25E+10", "-42"]
        switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .number(JSONNumber(literal: literals.randomElement(using: &rng)!))
        case 3: return .string(randomString(using: &rng))
        case 4:
            return .array(
                (0..<Int.random(in: 0...4, using: &rng)).map { _ in randomValue(depth: depth + 1, using: &rng) }
            )
        default:
            var object = JSONObject()
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                object.fields.append(
                    (key: randomString(using: &rng), value: randomValue(depth: depth + 1, using: &rng))
                )
            }
            return .object(object)
        }
    }
}
