import IsobarModel
import Testing

@testable import IsobarWire

@Suite("Anthropic upstream stream -> Anthropic client (relay)")
struct AnthropicStreamRelayTests {
    @Test("Every event passes through unchanged, even when the upstream arrives byte by byte")
    func passthrough() {
        var relay = AnthropicStreamRelay()
        let stream = AnthropicStreamHarness.run(&relay, AnthropicFixtures.toolAnswer, split: 1)
        #expect(stream.malformedEvents.isEmpty)
        let upstream = AnthropicStreamHarness.events(in: Array(AnthropicFixtures.toolAnswer.utf8))
        #expect(stream.events == upstream)
        #expect(stream.bytes == Array(AnthropicFixtures.toolAnswer.utf8))
    }

    @Test("The relay commits at the first text delta, merges usage and finishes at message_stop")
    func textProgress() {
        var relay = AnthropicStreamRelay()
        let stream = AnthropicStreamHarness.run(&relay, AnthropicFixtures.textAnswer)
        #expect(stream.commitIndex == 3)
        #expect(stream.progress[0].usage == Usage(promptTokens: 35, completionTokens: 1))
        #expect(stream.lastUsage == Usage(promptTokens: 35, completionTokens: 12))
        #expect(stream.progress.map(\.finished).filter { $0 }.count == 1)
        #expect(stream.progress.last?.finished == true)
    }

    @Test("A tool_use block start commits a stream that has no text")
    func toolStartCommits() {
        var relay = AnthropicStreamRelay()
        var out: [UInt8] = []
        let start = SSEEvent(
            name: "content_block_start",
            data:
                #"{"type":"content_block_start","index":0,"#
                + #""content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#
        )
        let toolStart = relay.translate(start, into: &out)
        #expect(toolStart.content)
        let empty = SSEEvent(
            name: "content_block_delta",
            data: #"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#
        )
        let emptyFragment = relay.translate(empty, into: &out)
        #expect(!emptyFragment.content)
    }

    @Test("An error event is a failure and is not forwarded; writeError uses Anthropic's shape")
    func inBandError() throws {
        var relay = AnthropicStreamRelay()
        var out: [UInt8] = []
        let error = SSEEvent(
            name: "error",
            data: #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        )
        let progress = relay.translate(error, into: &out)
        #expect(progress.failure == "overloaded_error: Overloaded")
        #expect(out.isEmpty)
        relay.writeError(ErrorBody(status: 429, message: "slow down"), into: &out)
        #expect(
            String(decoding: out, as: UTF8.self)
                == "event: error\n"
                + #"data: {"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"# + "\n\n"
        )
    }

    @Test("A cut after message_delta ends with message_stop; a cut before it cannot finish")
    func finishWithoutMarker() {
        let body = AnthropicStreamHarness.prefix(of: AnthropicFixtures.textAnswer, before: "event: message_stop")
        var relay = AnthropicStreamRelay()
        var stream = AnthropicStreamHarness.run(&relay, body)
        let finished = relay.finishWithoutMarker(into: &stream.bytes)
        #expect(finished)
        #expect(stream.names.last == "message_stop")

        let cut = AnthropicStreamHarness.prefix(of: AnthropicFixtures.textAnswer, before: "event: content_block_stop")
        var early = AnthropicStreamRelay()
        var partial = AnthropicStreamHarness.run(&early, cut)
        let finishedEarly = early.finishWithoutMarker(into: &partial.bytes)
        #expect(!finishedEarly)
    }

    @Test("An event that is not JSON is a failure")
    func garbage() {
        var relay = AnthropicStreamRelay()
        var out: [UInt8] = []
        let progress = relay.translate(SSEEvent(name: "message_start", data: "<html>"), into: &out)
        #expect(progress.failure != nil)
        #expect(out.isEmpty)
    }
}
