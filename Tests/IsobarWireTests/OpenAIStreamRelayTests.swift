import IsobarModel
import Testing

@testable import IsobarWire

/// Real-looking OpenAI and vLLM chat.completion.chunk payloads.
enum OpenAIChunks {
    static let head =
        #"{"id":"chatcmpl-A1b2C3","object":"chat.completion.chunk","created":1718000000,"#
        + #""model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0ba0d124f1","choices":"#

    static func chunk(delta: String, finish: String = "null", usage: String = "null") -> String {
        head + #"[{"index":0,"delta":"# + delta + #","logprobs":null,"finish_reason":"# + finish + #"}],"usage":"#
            + usage + "}"
    }

    static let role = chunk(delta: #"{"role":"assistant","content":"","refusal":null}"#)
    static let hello = chunk(delta: #"{"content":"Hello"}"#)
    static let world = chunk(delta: #"{"content":" world \u00e9\n"}"#)
    static let stop = chunk(delta: "{}", finish: #""stop""#)
    static let usageOnly =
        head + #"[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15,"#
        + #""prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#

    /// A vLLM chunk with `continuous_usage_stats`: usage on a chunk that also carries content.
    static let vllmContinuous =
        #"{"id":"chatcmpl-9f8e","object":"chat.completion.chunk","created":1718000001,"#
        + #""model":"meta-llama/Llama-3.1-8B-Instruct","choices":[{"index":0,"delta":{"content":"Hi"},"#
        + #""logprobs":null,"finish_reason":null}],"usage":{"prompt_tokens":9,"total_tokens":10,"completion_tokens":1}}"#

    static let stream = [role, hello, world, stop, usageOnly, "[DONE]"]
    static func body(_ lines: [String]) -> String { lines.map { "data: \($0)\n\n" }.joined() }
}

@Suite("OpenAI upstream stream -> OpenAI client (relay)")
struct OpenAIStreamRelayTests {
    struct Relayed {
        var bytes: [UInt8]
        var progress: [StreamProgress]
        var text: String { String(decoding: bytes, as: UTF8.self) }
    }

    /// Parses `upstream` in pieces of `split` bytes and relays every event.
    static func relay(_ upstream: String, clientWantsUsage: Bool, split: Int? = nil) throws -> Relayed {
        var relay = OpenAIStreamRelay(clientWantsUsage: clientWantsUsage)
        var parser = SSEParser()
        var result = Relayed(bytes: [], progress: [])
        let bytes = Array(upstream.utf8)
        let size = split ?? max(bytes.count, 1)
        for start in stride(from: 0, to: bytes.count, by: size) {
            try Array(bytes[start..<min(start + size, bytes.count)]).withUnsafeBytes { buffer in
                try parser.push(buffer) { result.progress.append(relay.translate($0, into: &result.bytes)) }
            }
        }
        #expect(parser.finish() == nil)
        return result
    }

    static func translate(_ data: String, clientWantsUsage: Bool = false) -> (StreamProgress, String) {
        var relay = OpenAIStreamRelay(clientWantsUsage: clientWantsUsage)
        var out: [UInt8] = []
        let progress = relay.translate(SSEEvent(data: data), into: &out)
        return (progress, String(decoding: out, as: UTF8.self))
    }

    @Test("A client that asked for usage gets the upstream stream byte for byte")
    func passthroughWithUsage() throws {
        let upstream = OpenAIChunks.body(OpenAIChunks.stream)
        let relayed = try Self.relay(upstream, clientWantsUsage: true)
        #expect(relayed.text == upstream)
        #expect(relayed.progress.compactMap(\.usage) == [Usage(promptTokens: 12, completionTokens: 3)])
        #expect(relayed.progress.map(\.content) == [false, true, true, true, false, false])
        #expect(relayed.progress.map(\.finished) == [false, false, false, false, false, true])
        #expect(relayed.progress.allSatisfy { $0.failure == nil })
    }

    @Test("The usage-only chunk the gateway injected is dropped for a client that did not ask, but still counted")
    func dropsInjectedUsage() throws {
        let upstream = OpenAIChunks.body(OpenAIChunks.stream)
        for split in [nil, 1, 7, 64] {
            let relayed = try Self.relay(upstream, clientWantsUsage: false, split: split)
            #expect(relayed.text == OpenAIChunks.body(OpenAIChunks.stream.filter { $0 != OpenAIChunks.usageOnly }))
            #expect(relayed.progress[4].usage == Usage(promptTokens: 12, completionTokens: 3))
            #expect(relayed.progress.last?.finished == true)
        }
    }

    @Test("vLLM continuous usage on content chunks passes through and is reported each time")
    func vllmContinuousUsage() {
        let (progress, out) = Self.translate(OpenAIChunks.vllmContinuous)
        #expect(out == "data: \(OpenAIChunks.vllmContinuous)\n\n")
        #expect(progress == StreamProgress(content: true, usage: Usage(promptTokens: 9, completionTokens: 1)))
    }

    @Test(
        "Content is any generated text, tool call, reasoning, refusal or finish reason",
        arguments: [
            #"{"content":"Hello"}"#,
            #"{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}"#,
            #"{"role":"assistant","content":null,"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]}"#,
            #"{"reasoning_content":"Let me think"}"#,
            #"{"reasoning":"Let me think"}"#,
            #"{"refusal":"I can't help with that."}"#,
            #"{"function_call":{"name":"f","arguments":""}}"#,
        ]
    )
    func contentDeltas(delta: String) {
        let (progress, out) = Self.translate(OpenAIChunks.chunk(delta: delta))
        #expect(progress.content)
        #expect(!out.isEmpty)
    }

    @Test(
        "A role-only first chunk, an empty delta and empty arrays are not content",
        arguments: [
            #"{"role":"assistant","content":""}"#, "{}", #"{"content":null}"#, #"{"tool_calls":[]}"#,
            #"{"role":"assistant","content":"","refusal":null}"#, #"{"reasoning_content":""}"#,
        ]
    )
    func notContent(delta: String) {
        let (progress, out) = Self.translate(OpenAIChunks.chunk(delta: delta))
        #expect(!progress.content)
        #expect(out == "data: \(OpenAIChunks.chunk(delta: delta))\n\n")
    }

    @Test("A finish_reason-only chunk counts as content; completions `text` chunks are content")
    func finishAndCompletions() {
        #expect(Self.translate(OpenAIChunks.chunk(delta: "{}", finish: #""length""#)).0.content)
        let completion =
            #"{"id":"cmpl-7Q","object":"text_completion","created":1718000000,"choices":[{"text":" Paris","#
            + #""index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}"#
        #expect(Self.translate(completion).0.content)
        let emptyText = completion.replacing(#"" Paris""#, with: #""""#)
        #expect(!Self.translate(emptyText).0.content)
        let message = #"{"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#
        #expect(Self.translate(message).0.content)
    }

    @Test("[DONE] is forwarded and finishes the stream")
    func done() {
        let (progress, out) = Self.translate("[DONE]")
        #expect(progress == StreamProgress(finished: true))
        #expect(out == "data: [DONE]\n\n")
    }

    @Test(
        "An in-band error object or a non-JSON event is a failure and is not forwarded",
        arguments: [
            (
                #"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#,
                "The server had an error"
            ),
            (#"{"error":"CUDA out of memory"}"#, "CUDA out of memory"),
            (#"{"error":{"code":500}}"#, "upstream stream error"),
            (#"{"object":"error","message":"x","error":{"message":"vLLM engine dead"}}"#, "vLLM engine dead"),
            ("Internal Server Error", "upstream sent a stream event that is not a JSON object"),
            (#"{"id":"chatcmpl-1","choices":["#, "upstream sent a stream event that is not a JSON object"),
            ("[1,2]", "upstream sent a stream event that is not a JSON object"),
        ]
    )
    func failures(data: String, failure: String) {
        let (progress, out) = Self.translate(data)
        #expect(progress.failure == failure)
        #expect(!progress.content)
        #expect(out.isEmpty)
    }

    @Test("A normal chunk with \"error\": null is not a failure")
    func nullErrorField() {
        let chunk = OpenAIChunks.hello.replacing(#","usage":null}"#, with: #","usage":null,"error":null}"#)
        let (progress, out) = Self.translate(chunk)
        #expect(progress.failure == nil)
        #expect(progress.content)
        #expect(out == "data: \(chunk)\n\n")
    }

    @Test("A stream that ends without [DONE] is complete only after a finish_reason, and then gets [DONE]")
    func finishWithoutMarker() {
        var relay = OpenAIStreamRelay(clientWantsUsage: false)
        var out: [UInt8] = []
        _ = relay.translate(SSEEvent(data: OpenAIChunks.role), into: &out)
        _ = relay.translate(SSEEvent(data: OpenAIChunks.hello), into: &out)
        let cut = out.count
        let early = relay.finishWithoutMarker(into: &out)
        #expect(!early)
        #expect(out.count == cut)
        _ = relay.translate(SSEEvent(data: OpenAIChunks.stop), into: &out)
        let beforeDone = out.count
        let finished = relay.finishWithoutMarker(into: &out)
        #expect(finished)
        #expect(Array(out[beforeDone...]) == Array("data: [DONE]\n\n".utf8))
    }

    @Test("writeError emits one data event holding an OpenAI error object")
    func writeError() throws {
        let relay = OpenAIStreamRelay(clientWantsUsage: true)
        var out: [UInt8] = []
        relay.writeError(ErrorBody(status: 502, message: "upstream \"b1\" reset\nthe stream"), into: &out)
        var parser = SSEParser()
        var events: [SSEEvent] = []
        try out.withUnsafeBytes { try parser.push($0) { events.append($0) } }
        #expect(events.count == 1)
        let json = try JSON(parsing: events[0].data)
        #expect(json["error"]?["message"] == "upstream \"b1\" reset\nthe stream")
        #expect(json["error"]?["type"] == "upstream_error")
        #expect(json.objectValue?.keys == ["error"])
    }

    @Test("Usage is read from OpenAI usage objects; a body without prompt_tokens has none")
    func usageObjects() {
        #expect(
            Usage(openAI: ["prompt_tokens": 5, "completion_tokens": 7]) == Usage(promptTokens: 5, completionTokens: 7)
        )
        #expect(Usage(openAI: ["prompt_tokens": 5]) == Usage(promptTokens: 5, completionTokens: 0))
        #expect(Usage(openAI: ["completion_tokens": 5]) == nil)
        #expect(
            Usage(promptTokens: 2, completionTokens: 3).openAIJSON.text
                == #"{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}"#
        )
    }

    @Test("ResponseUsage reads a complete response's usage in either dialect")
    func responseUsage() {
        func scan(_ body: String, _ dialect: WireAPI) -> ResponseUsage? {
            Array(body.utf8).withUnsafeBytes { ResponseUsage.scan($0, dialect: dialect) }
        }
        let openAI =
            #"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","#
            + #""content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}"#
        #expect(scan(openAI, .openai)?.usage == Usage(promptTokens: 10, completionTokens: 2))
        let anthropic =
            #"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"text","text":"Hi"}],"#
            + #""usage":{"input_tokens":25,"output_tokens":4}}"#
        #expect(scan(anthropic, .anthropic)?.usage == Usage(promptTokens: 25, completionTokens: 4))
        #expect(scan(#"{"data":[{"embedding":[0.1]}]}"#, .openai) == ResponseUsage(usage: nil))
        #expect(scan("<html>502</html>", .openai) == nil)
    }
}
