import IsobarModel
import Testing

@testable import IsobarWire

@Suite("SSEParser: incremental text/event-stream parsing")
struct SSEParserTests {
    /// What a parser produced for a sequence of pushes: the events, the trailing event from `finish()`.
    struct Parsed: Equatable {
        var events: [SSEEvent]
        var trailing: SSEEvent?
    }

    static func parse(_ pieces: [[UInt8]], maximumEventBytes: Int = 1 << 20) throws(SSEParser.Overflow) -> Parsed {
        var parser = SSEParser(maximumEventBytes: maximumEventBytes)
        var events: [SSEEvent] = []
        for piece in pieces {
            let result: Result<Void, SSEParser.Overflow> = piece.withUnsafeBytes { buffer in
                Result { () throws(SSEParser.Overflow) in try parser.push(buffer) { events.append($0) } }
            }
            try result.get()
        }
        return Parsed(events: events, trailing: parser.finish())
    }

    static func parse(_ text: String) throws(SSEParser.Overflow) -> Parsed { try parse([Array(text.utf8)]) }

    /// A stream with every feature: comments, ids, retry, names, multi-line data, a `[DONE]` marker.
    static let fixture =
        ": keep-alive\n"
        + "retry: 3000\n"
        + "id: 1\n"
        + #"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#
        + "\n\n"
        + "event: message_start\n"
        + "data: {\"type\":\"message_start\"}\n\n"
        + "event: ping\n"
        + "data:\n\n"
        + "data: line one\n"
        + "data:line two\n"
        + "data:   three spaces kept but one\n\n"
        + ":comment between events\n\n"
        + "event: ignored-without-data\n\n"
        + "data: é 中 😀\n\n"
        + "data: [DONE]\n\n"

    static let fixtureEvents: [SSEEvent] = [
        SSEEvent(
            data:
                #"{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}"#
        ),
        SSEEvent(name: "message_start", data: #"{"type":"message_start"}"#),
        SSEEvent(name: "ping", data: ""),
        SSEEvent(data: "line one\nline two\n  three spaces kept but one"),
        SSEEvent(data: "é 中 😀"),
        SSEEvent(data: "[DONE]"),
    ]

    @Test("The fixture parses into the expected events; comments, id and retry are ignored")
    func fixtureEvents() throws {
        let parsed = try Self.parse(Self.fixture)
        #expect(parsed.events == Self.fixtureEvents)
        #expect(parsed.trailing == nil)
        #expect(parsed.events.last?.isDone == true)
        #expect(parsed.events.filter(\.isDone).count == 1)
    }

    @Test("LF, CRLF and CR line endings (and a mix) give the same events")
    func lineEndings() throws {
        for ending in ["\r\n", "\r"] {
            let converted = Self.fixture.replacing("\n", with: ending)
            #expect(try Self.parse(converted).events == Self.fixtureEvents, "\(ending.debugDescription)")
        }
        // A CR ending is never followed by an LF ending: together they would be one CRLF.
        var mixed = ""
        for (i, line) in Self.fixture.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated() {
            mixed += String(line) + ["\n", "\r", "\r\n"][i % 3]
        }
        #expect(try Self.parse(mixed).events == Self.fixtureEvents)
    }

    @Test("Splitting the stream at any byte boundary gives identical events, for every line ending")
    func everySplitPoint() throws {
        for ending in ["\n", "\r\n", "\r"] {
            let bytes = Array(Self.fixture.replacing("\n", with: ending).utf8)
            for split in 0...bytes.count {
                // An empty push between the halves, as a transport may deliver, must change nothing either.
                let parsed = try Self.parse([Array(bytes[..<split]), [], Array(bytes[split...])])
                #expect(parsed.events == Self.fixtureEvents, "split at \(split) with \(ending.debugDescription)")
            }
        }
    }

    @Test("Random three-way splits, byte-by-byte feeding and empty pushes change nothing (seeded)")
    func randomSplits() throws {
        var rng = Xoshiro256(seed: 2_024)
        for ending in ["\n", "\r\n", "\r"] {
            let bytes = Array(Self.fixture.replacing("\n", with: ending).utf8)
            let byteByByte = try Self.parse(bytes.map { [$0] })
            #expect(byteByByte.events == Self.fixtureEvents)
            for _ in 0..<200 {
                let cuts = [Int.random(in: 0...bytes.count, using: &rng), Int.random(in: 0...bytes.count, using: &rng)]
                    .sorted()
                let pieces = [
                    [], Array(bytes[..<cuts[0]]), [], Array(bytes[cuts[0]..<cuts[1]]), [], Array(bytes[cuts[1]...]),
                ]
                #expect(try Self.parse(pieces).events == Self.fixtureEvents, "cuts \(cuts) \(ending.debugDescription)")
            }
        }
    }

    @Test("A CR at the end of a push followed by an empty push and then LF is still one line ending")
    func crThenEmptyPushThenLF() throws {
        let pieces = [Array("data: a\r".utf8), [], Array("\ndata: b\r\n\r\n".utf8)]
        #expect(try Self.parse(pieces).events == [SSEEvent(data: "a\nb")])
    }

    @Test("finish() returns an event whose blank line never came, with its name")
    func trailingEvent() throws {
        #expect(try Self.parse("data: {\"a\":1}").trailing == SSEEvent(data: #"{"a":1}"#))
        #expect(try Self.parse("event: done\ndata: x\n").trailing == SSEEvent(name: "done", data: "x"))
        #expect(try Self.parse("data: x\r").trailing == SSEEvent(data: "x"))
        let complete = try Self.parse("data: x\n\n")
        #expect(complete.events == [SSEEvent(data: "x")])
        #expect(complete.trailing == nil)
        #expect(try Self.parse(": only a comment").trailing == nil)
        #expect(try Self.parse("event: nothing").trailing == nil)
    }

    @Test("Field edge cases: no colon, no space, unknown fields, names reset after each event")
    func fieldEdgeCases() throws {
        let parsed = try Self.parse("data\n\nevent: a\ndata: 1\n\ndata: 2\n\nfoo: bar\ndata:[DONE]\n\n")
        #expect(
            parsed.events == [
                SSEEvent(data: ""), SSEEvent(name: "a", data: "1"), SSEEvent(data: "2"), SSEEvent(data: "[DONE]"),
            ]
        )
        #expect(parsed.events.last?.isDone == true)
        #expect(!SSEEvent(data: "[DONE] ").isDone)
        #expect(!SSEEvent(data: "[done]").isDone)
    }

    @Test("An event larger than maximumEventBytes is an overflow, however it arrives")
    func overflow() throws {
        let big = "data: " + String(repeating: "x", count: 200) + "\n\n"
        #expect(throws: SSEParser.Overflow.self) { try Self.parse([Array(big.utf8)], maximumEventBytes: 100) }
        #expect(throws: SSEParser.Overflow.self) { try Self.parse(big.utf8.map { [$0] }, maximumEventBytes: 100) }
        let manyLines = String(repeating: "data: " + String(repeating: "y", count: 30) + "\n", count: 5) + "\n"
        #expect(throws: SSEParser.Overflow.self) { try Self.parse([Array(manyLines.utf8)], maximumEventBytes: 100) }
        let longComment = ":" + String(repeating: "z", count: 200)
        #expect(throws: SSEParser.Overflow.self) {
            try Self.parse(longComment.utf8.map { [$0] }, maximumEventBytes: 100)
        }
        // Many events each under the limit are fine: the limit is per event.
        let small = String(repeating: "data: " + String(repeating: "w", count: 90) + "\n\n", count: 50)
        #expect(try Self.parse(small.utf8.map { [$0] }, maximumEventBytes: 100).events.count == 50)
    }

    @Test("SSEEvent.write round-trips through the parser, including data with newlines (seeded)")
    func writeRoundTrip() throws {
        let fixed = SSEEvent(name: "content_block_delta", data: "first\nsecond\n\nfourth\n")
        #expect(
            String(decoding: fixed.bytes, as: UTF8.self)
                == "event: content_block_delta\ndata: first\ndata: second\ndata: \ndata: fourth\ndata: \n\n"
        )
        #expect(try Self.parse([fixed.bytes]).events == [fixed])
        var rng = Xoshiro256(seed: 99)
        var events: [SSEEvent] = []
        var wire: [UInt8] = []
        for _ in 0..<300 {
            let scalars = JSONTests.randomString(using: &rng).unicodeScalars.filter { $0 != "\r" }
            let data = String(String.UnicodeScalarView(scalars))
            let name: String? =
                Bool.random(using: &rng) ? nil : ["message_delta", "ping", "error"].randomElement(using: &rng)
            let event = SSEEvent(name: name, data: data)
            event.write(into: &wire)
            events.append(event)
        }
        #expect(try Self.parse([wire]).events == events)
        #expect(try Self.parse(wire.map { [$0] }).events == events)
    }
}
