import IsobarModel
import Testing

@testable import IsobarWire

/// What a transcoder produced for a whole upstream body: the client's bytes, parsed back into events,
/// and the progress reported for each upstream event.
struct TranscodedStream {
    var bytes: [UInt8]
    var progress: [StreamProgress]

    /// The client's events, parsed back with `SSEParser`.
    var events: [SSEEvent] { AnthropicStreamHarness.events(in: bytes) }
    /// The client's event names (nil for unnamed OpenAI events).
    var names: [String?] { events.map(\.name) }
    /// The JSON payloads of the client's events, `[DONE]` excluded.
    var payloads: [JSON] { events.filter { !$0.isDone }.compactMap { try? JSON(parsing: $0.data) } }
    /// Client events whose data is neither a JSON document nor `[DONE]`.
    var malformedEvents: [SSEEvent] { events.filter { !$0.isDone && (try? JSON(parsing: $0.data)) == nil } }
    /// The last usage any event reported.
    var lastUsage: Usage? { progress.compactMap(\.usage).last }
    /// Index of the first upstream event that committed the stream.
    var commitIndex: Int? { progress.firstIndex(where: \.content) }
}

enum AnthropicStreamHarness {
    /// Feeds `upstream` through `SSEParser` in pieces of `split` bytes (the whole body when nil) and each
    /// parsed event through `transcoder`.
    static func run(
        _ transcoder: inout some StreamTranscoder,
        _ upstream: String,
        split: Int? = nil
    ) -> TranscodedStream {
        var parser = SSEParser()
        var upstreamEvents: [SSEEvent] = []
        let bytes = Array(upstream.utf8)
        let size = split ?? max(bytes.count, 1)
        for start in stride(from: 0, to: bytes.count, by: size) {
            let piece = bytes[start..<min(start + size, bytes.count)]
            try! Array(piece).withUnsafeBytes { buffer in try parser.push(buffer) { upstreamEvents.append($0) } }
        }
        if let last = parser.finish() { upstreamEvents.append(last) }
        var stream = TranscodedStream(bytes: [], progress: [])
        for event in upstreamEvents {
            stream.progress.append(transcoder.translate(event, into: &stream.bytes))
        }
        return stream
    }

    /// Parses client bytes back into events.
    static func events(in bytes: [UInt8]) -> [SSEEvent] {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        try! bytes.withUnsafeBytes { buffer in try parser.push(buffer) { events.append($0) } }
        return events
    }

    /// An Anthropic stream body: each JSON line of `lines` as a named event whose name is its `type`.
    static func anthropicBody(_ lines: [String]) -> String {
        lines.map { line in
            let type = (try? JSON(parsing: line))?["type"]?.stringValue ?? ""
            return "event: \(type)\ndata: \(line)\n\n"
        }.joined()
    }

    /// The part of `body` before the first occurrence of `marker` (a stream cut short).
    static func prefix(of body: String, before marker: String) -> String {
        guard let range = body.firstRange(of: marker) else { return body }
        return String(body[..<range.lowerBound])
    }

    /// An OpenAI stream body: each line as a `data:` event.
    static func openAIBody(_ lines: [String]) -> String {
        lines.map { "data: \($0)\n\n" }.joined()
    }
}

@Suite("Anthropic stream harness")
struct AnthropicStreamHarnessTests {
    @Test("Every transcoder gives the same client bytes whether the upstream arrives whole or byte by byte")
    func splitsDoNotChangeOutput() {
        for split in [1, 2, 7, 64] {
            var whole = AnthropicToOpenAIStream(clientWantsUsage: true, created: 1)
            var pieces = AnthropicToOpenAIStream(clientWantsUsage: true, created: 1)
            let expected = AnthropicStreamHarness.run(&whole, AnthropicFixtures.toolAnswer)
            #expect(
                AnthropicStreamHarness.run(&pieces, AnthropicFixtures.toolAnswer, split: split).bytes == expected.bytes
            )

            var relayWhole = AnthropicStreamRelay()
            var relayPieces = AnthropicStreamRelay()
            let relayed = AnthropicStreamHarness.run(&relayWhole, AnthropicFixtures.textAnswer)
            #expect(
                AnthropicStreamHarness.run(&relayPieces, AnthropicFixtures.textAnswer, split: split).bytes
                    == relayed.bytes
            )

            var reverseWhole = OpenAIToAnthropicStream(messageID: "msg_1", model: "m")
            var reversePieces = OpenAIToAnthropicStream(messageID: "msg_1", model: "m")
            let reversed = AnthropicStreamHarness.run(&reverseWhole, AnthropicFixtures.openAIToolAnswer)
            #expect(
                AnthropicStreamHarness.run(&reversePieces, AnthropicFixtures.openAIToolAnswer, split: split).bytes
                    == reversed.bytes
            )
        }
    }
}
