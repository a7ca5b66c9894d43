import IsobarModel
import Testing

@testable import IsobarWire

@Suite("OpenAI upstream stream -> Anthropic client")
struct AnthropicFromOpenAIStreamTests {
    private func run(_ body: String, split: Int? = nil) -> TranscodedStream {
        var transcoder = OpenAIToAnthropicStream(messageID: "msg_gw_0001", model: "claude-compatible")
        return AnthropicStreamHarness.run(&transcoder, body, split: split)
    }

    /// Every event is named, and its data is a JSON object whose `type` is that name.
    private func expectNamedEvents(_ stream: TranscodedStream) {
        for event in stream.events {
            let body = try? JSON(parsing: event.data)
            #expect(body != nil)
            #expect(event.name != nil)
            #expect(body?["type"]?.stringValue == event.name)
        }
    }

    @Test("A text answer fed byte by byte reads as an Anthropic message stream")
    func textAnswer() {
        let stream = run(AnthropicFixtures.openAITextAnswer, split: 1)
        expectNamedEvents(stream)
        #expect(
            stream.names == [
                "message_start", "content_block_start", "content_block_delta", "content_block_delta",
                "content_block_delta", "content_block_stop", "message_delta", "message_stop",
            ]
        )
        let start = stream.payloads[0]["message"]
        #expect(start?["id"] == "msg_gw_0001")
        #expect(start?["model"] == "claude-compatible")
        #expect(start?["type"] == "message")
        #expect(start?["role"] == "assistant")
        #expect(start?["content"] == [])
        #expect(start?["usage"] == ["input_tokens": 0, "output_tokens": 0])
        #expect(stream.payloads[1]["content_block"] == ["type": "text", "text": ""])
        let text = stream.payloads.compactMap { $0["delta"]?["text"]?.stringValue }.joined()
        #expect(text == AnthropicFixtures.textAnswerText)
        #expect(stream.payloads.filter { $0["index"] != nil }.allSatisfy { $0["index"] == 0 })
        let delta = stream.payloads[6]
        #expect(delta["delta"] == ["stop_reason": "end_turn", "stop_sequence": nil])
        #expect(delta["usage"] == ["output_tokens": 10, "input_tokens": 19])
    }

    @Test("The stream commits at the first text, reports usage from the usage chunk and finishes at [DONE]")
    func progress() {
        let stream = run(AnthropicFixtures.openAITextAnswer)
        #expect(stream.commitIndex == 1)
        #expect(stream.progress.last?.finished == true)
        #expect(stream.progress.filter(\.finished).count == 1)
        #expect(stream.lastUsage == Usage(promptTokens: 19, completionTokens: 10))
    }

    @Test("Tool calls become tool_use blocks whose input_json_delta fragments reassemble the arguments")
    func toolAnswer() throws {
        let stream = run(AnthropicFixtures.openAIToolAnswer, split: 5)
        expectNamedEvents(stream)
        let starts = stream.payloads.filter { $0["type"] == "content_block_start" }
        #expect(starts.map { $0["index"] } == [0, 1])
        #expect(
            starts[0]["content_block"]
                == ["type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "input": [:]]
        )
        #expect(starts[1]["content_block"]?["name"] == "get_time")
        for (block, expected) in [
            (0, AnthropicFixtures.openAIWeatherArguments), (1, AnthropicFixtures.openAITimeArguments),
        ] {
            let fragments = stream.payloads.filter { $0["type"] == "content_block_delta" && $0["index"] == .int(block) }
            #expect(fragments.allSatisfy { $0["delta"]?["type"] == "input_json_delta" })
            let json = fragments.compactMap { $0["delta"]?["partial_json"]?.stringValue }.joined()
            #expect(try JSON(parsing: json) == JSON(parsing: expected))
        }
        let stops = stream.payloads.filter { $0["type"] == "content_block_stop" }.map { $0["index"] }
        #expect(stops == [0, 1])
        let delta = stream.payloads.first { $0["type"] == "message_delta" }
        #expect(delta?["delta"]?["stop_reason"] == "tool_use")
        #expect(delta?["usage"] == ["output_tokens": 41, "input_tokens": 82])
        #expect(stream.names.suffix(2) == ["message_delta", "message_stop"])
    }

    @Test("Text before a tool call is closed before the tool block opens")
    func textThenTool() {
        let body = AnthropicStreamHarness.openAIBody([
            AnthropicFixtures.chunk(#"{"role":"assistant","content":"Let me look."}"#),
            AnthropicFixtures.chunk(
                #"{"tool_calls":[{"index":0,"id":"call_1","type":"function","#
                    + #""function":{"name":"search","arguments":"{\"q\":\"swift\"}"}}]}"#
            ),
            AnthropicFixtures.chunk("{}", finish: "tool_calls"),
            "[DONE]",
        ])
        let stream = run(body)
        #expect(
            stream.names == [
                "message_start", "content_block_start", "content_block_delta", "content_block_stop",
                "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
            ]
        )
        #expect(stream.payloads[5]["delta"]?["partial_json"] == #"{"q":"swift"}"#)
        // No usage chunk upstream: message_delta still carries (zero) usage.
        #expect(stream.payloads[7]["usage"] == ["output_tokens": 0, "input_tokens": 0])
    }

    @Test("Arguments for a tool call whose block was already closed fail the stream")
    func interleavedToolCalls() {
        let body = AnthropicStreamHarness.openAIBody([
            AnthropicFixtures.chunk(#"{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}"#),
            AnthropicFixtures.chunk(#"{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{"}}]}"#),
            AnthropicFixtures.chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}"#),
        ])
        let stream = run(body)
        #expect(stream.progress.map { $0.failure != nil } == [false, false, true])
    }

    @Test("An upstream error chunk is a failure; the error is written as a named Anthropic error event")
    func inBandError() throws {
        var transcoder = OpenAIToAnthropicStream(messageID: "msg_x", model: "m")
        var out: [UInt8] = []
        let error = SSEEvent(data: #"{"error":{"message":"The server had an error","type":"server_error"}}"#)
        let progress = transcoder.translate(error, into: &out)
        #expect(progress.failure == "The server had an error")
        #expect(out.isEmpty)
        transcoder.writeError(ErrorBody(status: 503, message: "no backend left"), into: &out)
        let events = AnthropicStreamHarness.events(in: out)
        #expect(events.map(\.name) == ["error"])
        let body = try JSON(parsing: events[0].data)
        #expect(body == ["type": "error", "error": ["type": "overloaded_error", "message": "no backend left"]])
    }

    @Test("A chunk that is not JSON is a failure")
    func garbage() {
        var transcoder = OpenAIToAnthropicStream(messageID: "msg_x", model: "m")
        var out: [UInt8] = []
        let progress = transcoder.translate(SSEEvent(data: "not json"), into: &out)
        #expect(progress.failure != nil)
    }

    @Test("A body cut after finish_reason finishes with message_delta and message_stop; before it, it does not")
    func finishWithoutMarker() {
        let body = AnthropicStreamHarness.prefix(of: AnthropicFixtures.openAITextAnswer, before: "data: [DONE]")
        var complete = OpenAIToAnthropicStream(messageID: "msg_x", model: "m")
        var stream = AnthropicStreamHarness.run(&complete, body)
        let finished = complete.finishWithoutMarker(into: &stream.bytes)
        #expect(finished)
        #expect(stream.names.suffix(2) == ["message_delta", "message_stop"])
        #expect(stream.payloads.first { $0["type"] == "message_delta" }?["delta"]?["stop_reason"] == "end_turn")

        let cut = AnthropicStreamHarness.prefix(of: AnthropicFixtures.openAITextAnswer, before: #"{"content":" I help"#)
        var incomplete = OpenAIToAnthropicStream(messageID: "msg_x", model: "m")
        var partial = AnthropicStreamHarness.run(&incomplete, cut)
        let before = partial.bytes
        let finishedEarly = incomplete.finishWithoutMarker(into: &partial.bytes)
        #expect(!finishedEarly)
        #expect(partial.bytes == before)
    }

    @Test("Reasoning deltas commit the stream but are not shown to an Anthropic client")
    func reasoning() {
        let body = AnthropicStreamHarness.openAIBody([
            AnthropicFixtures.chunk(#"{"role":"assistant","reasoning_content":"Thinking..."}"#)
        ])
        let stream = run(body)
        #expect(stream.progress.first?.content == true)
        #expect(stream.names == ["message_start"])
    }
}
