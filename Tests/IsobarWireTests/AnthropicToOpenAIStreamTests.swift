import IsobarModel
import Testing

@testable import IsobarWire

@Suite("Anthropic upstream stream -> OpenAI client")
struct AnthropicToOpenAIStreamTests {
    private func run(_ body: String, wantsUsage: Bool = true, split: Int? = nil) -> TranscodedStream {
        var transcoder = AnthropicToOpenAIStream(clientWantsUsage: wantsUsage, created: 1_741_569_952)
        return AnthropicStreamHarness.run(&transcoder, body, split: split)
    }

    private func deltas(_ stream: TranscodedStream) -> [JSON] {
        stream.payloads.compactMap { $0["choices"]?[0]?["delta"] }
    }

    @Test("A text answer fed byte by byte reads as an OpenAI chunk stream")
    func textAnswer() {
        let stream = run(AnthropicFixtures.textAnswer, split: 1)
        #expect(stream.malformedEvents.isEmpty)
        #expect(stream.names.allSatisfy { $0 == nil })
        #expect(stream.events.last?.isDone == true)
        #expect(stream.events.count == 7)  // role, 3 texts, finish, usage, [DONE]
        for chunk in stream.payloads {
            #expect(chunk["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL")
            #expect(chunk["object"] == "chat.completion.chunk")
            #expect(chunk["created"] == 1_741_569_952)
            #expect(chunk["model"] == "claude-sonnet-4-5-20250929")
        }
        #expect(deltas(stream).first == ["role": "assistant", "content": ""])
        let text = deltas(stream).compactMap { $0["content"]?.stringValue }.joined()
        #expect(text == AnthropicFixtures.textAnswerText)
        let finishes = stream.payloads.compactMap { $0["choices"]?[0]?["finish_reason"]?.stringValue }
        #expect(finishes == ["stop"])
    }

    @Test("The usage chunk counts cached input as prompt and comes last before [DONE]")
    func usageChunk() {
        let stream = run(AnthropicFixtures.textAnswer)
        let usageChunk = stream.payloads.last
        #expect(usageChunk?["choices"] == [])
        #expect(usageChunk?["usage"] == ["prompt_tokens": 35, "completion_tokens": 12, "total_tokens": 47])
        #expect(stream.lastUsage == Usage(promptTokens: 35, completionTokens: 12))
    }

    @Test("Without include_usage the client gets no usage chunk, but the gateway still learns usage")
    func usageNotWanted() {
        let stream = run(AnthropicFixtures.textAnswer, wantsUsage: false)
        #expect(stream.payloads.allSatisfy { $0["usage"] == nil })
        #expect(stream.lastUsage == Usage(promptTokens: 35, completionTokens: 12))
    }

    @Test("The stream commits at the first text delta and finishes at message_stop")
    func progress() {
        let stream = run(AnthropicFixtures.textAnswer)
        #expect(stream.commitIndex == 3)  // message_start, block start, ping, then "Hello"
        #expect(stream.progress.map(\.finished) == [false, false, false, false, false, false, false, false, true])
        #expect(stream.progress.allSatisfy { $0.failure == nil })
        #expect(stream.progress[0].usage == Usage(promptTokens: 35, completionTokens: 1))
    }

    @Test("Tool-use blocks become indexed tool calls whose fragments reassemble the arguments")
    func toolAnswer() throws {
        let stream = run(AnthropicFixtures.toolAnswer, split: 3)
        #expect(stream.malformedEvents.isEmpty)
        var calls: [Int: (id: String?, name: String?, arguments: String)] = [:]
        for delta in deltas(stream) {
            for call in delta["tool_calls"]?.arrayValue ?? [] {
                let index = try #require(call["index"]?.intValue)
                var entry = calls[index] ?? (nil, nil, "")
                if let id = call["id"]?.stringValue { entry.id = id }
                if let name = call["function"]?["name"]?.stringValue { entry.name = name }
                entry.arguments += call["function"]?["arguments"]?.stringValue ?? ""
                calls[index] = entry
            }
        }
        #expect(calls.keys.sorted() == [0, 1])
        #expect(calls[0]?.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6")
        #expect(calls[1]?.id == "toolu_01B2y2gK45rBnl3uOsTo8Vq7")
        #expect(calls[0]?.name == "get_weather")
        #expect(try JSON(parsing: calls[0]?.arguments ?? "") == JSON(parsing: AnthropicFixtures.weatherArguments))
        #expect(try JSON(parsing: calls[1]?.arguments ?? "") == JSON(parsing: AnthropicFixtures.parisArguments))
        let start = deltas(stream).first { $0["tool_calls"]?[0]?["id"] != nil }?["tool_calls"]?[0]
        #expect(start?["type"] == "function")
        #expect(start?["function"]?["arguments"] == "")
        let text = deltas(stream).compactMap { $0["content"]?.stringValue }.joined()
        #expect(text == "Okay, let me check both cities.")
        let finishes = stream.payloads.compactMap { $0["choices"]?[0]?["finish_reason"]?.stringValue }
        #expect(finishes == ["tool_calls"])
        #expect(stream.lastUsage == Usage(promptTokens: 472, completionTokens: 89))
    }

    @Test("Thinking becomes reasoning_content; signatures are not shown")
    func thinking() {
        let body = AnthropicStreamHarness.anthropicBody([
            #"{"type":"message_start","message":{"id":"msg_t","model":"claude-opus-4-1","#
                + #""usage":{"input_tokens":9,"output_tokens":1}}}"#,
            #"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"2 + 2 is 4."}}"#,
            #"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}"#,
            #"{"type":"content_block_stop","index":0}"#,
            #"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            #"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"4"}}"#,
            #"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":20}}"#,
            #"{"type":"message_stop"}"#,
        ])
        let stream = run(body)
        #expect(stream.malformedEvents.isEmpty)
        #expect(deltas(stream).compactMap { $0["reasoning_content"]?.stringValue } == ["2 + 2 is 4."])
        #expect(deltas(stream).compactMap { $0["content"]?.stringValue } == ["", "4"])
        #expect(!stream.bytes.contains(subsequence: Array("EqQBCgIYAhIM".utf8)))
        #expect(stream.commitIndex == 2)
    }

    @Test("An in-band error event is a failure and is not forwarded; the error is written in OpenAI's shape")
    func inBandError() throws {
        var transcoder = AnthropicToOpenAIStream(clientWantsUsage: false, created: 0)
        var out: [UInt8] = []
        let error = SSEEvent(
            name: "error",
            data: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        )
        let progress = transcoder.translate(error, into: &out)
        #expect(progress.failure == "overloaded_error: Overloaded")
        #expect(out.isEmpty)
        transcoder.writeError(ErrorBody(status: 502, message: "upstream failed"), into: &out)
        let events = AnthropicStreamHarness.events(in: out)
        #expect(events.count == 1)
        #expect(events[0].name == nil)
        let body = try JSON(parsing: events[0].data)
        #expect(body["error"]?["message"] == "upstream failed")
        #expect(body["error"]?["type"] == "upstream_error")
    }

    @Test("An event whose data is not JSON is a failure")
    func garbage() {
        var transcoder = AnthropicToOpenAIStream(clientWantsUsage: false, created: 0)
        var out: [UInt8] = []
        let progress = transcoder.translate(SSEEvent(name: "message_start", data: "{oops"), into: &out)
        #expect(progress.failure != nil)
        #expect(out.isEmpty)
    }

    @Test("A body cut after the stop reason finishes honestly; one cut before it does not")
    func finishWithoutMarker() {
        let lines = AnthropicStreamHarness.prefix(of: AnthropicFixtures.textAnswer, before: "event: message_stop")
        var complete = AnthropicToOpenAIStream(clientWantsUsage: true, created: 0)
        var stream = AnthropicStreamHarness.run(&complete, lines)
        let finished = complete.finishWithoutMarker(into: &stream.bytes)
        #expect(finished)
        #expect(stream.events.last?.isDone == true)
        #expect(stream.payloads.last?["usage"]?["completion_tokens"] == 12)

        let cut = AnthropicStreamHarness.prefix(of: AnthropicFixtures.textAnswer, before: "event: message_delta")
        var incomplete = AnthropicToOpenAIStream(clientWantsUsage: true, created: 0)
        var partial = AnthropicStreamHarness.run(&incomplete, cut)
        let before = partial.bytes
        let finishedEarly = incomplete.finishWithoutMarker(into: &partial.bytes)
        #expect(!finishedEarly)
        #expect(partial.bytes == before)
    }

    @Test("ping and unknown event types are ignored")
    func ignoredEvents() {
        var transcoder = AnthropicToOpenAIStream(clientWantsUsage: false, created: 0)
        var out: [UInt8] = []
        let ping = transcoder.translate(SSEEvent(name: "ping", data: #"{"type":"ping"}"#), into: &out)
        #expect(ping == StreamProgress())
        let future = SSEEvent(name: "future_event", data: #"{"type":"future_event","x":1}"#)
        let unknown = transcoder.translate(future, into: &out)
        #expect(unknown == StreamProgress())
        #expect(out.isEmpty)
    }
}

extension Array where Element == UInt8 {
    /// True when `needle` occurs in the array.
    func contains(subsequence needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
