import Testing

@testable import IsobarWire

/// Upstream stream bodies modelled on the documented wire formats of Anthropic's Messages streaming and
/// OpenAI's chat.completion.chunk streaming.
enum AnthropicFixtures {
    static let textAnswerText = "Hello! How can I help you today?"

    /// A streamed Anthropic text answer (with the `ping` Anthropic sends early on).
    static let textAnswer = AnthropicStreamHarness.anthropicBody([
        #"{"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}"#,
        #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        #"{"type": "ping"}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"! How can"}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" I help you today?"}}"#,
        #"{"type":"content_block_stop","index":0}"#,
        #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":12}}"#,
        #"{"type":"message_stop"}"#,
    ])

    static let weatherArguments = #"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#
    static let parisArguments = #"{"location": "Paris, France"}"#

    /// A streamed Anthropic tool-use answer: a text block, then two `tool_use` blocks whose input arrives
    /// as `input_json_delta` fragments.
    static let toolAnswer = AnthropicStreamHarness.anthropicBody([
        #"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}"#,
        #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        #"{"type":"ping"}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay, let me check "}}"#,
        #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"both cities."}}"#,
        #"{"type":"content_block_stop","index":0}"#,
        #"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"location\":"}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \"San Fra"}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\""}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", \"unit\": \"fah"}}"#,
        #"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\"}"}}"#,
        #"{"type":"content_block_stop","index":1}"#,
        #"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01B2y2gK45rBnl3uOsTo8Vq7","name":"get_weather","input":{}}}"#,
        #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"Par"}}"#,
        #"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"is, France\"}"}}"#,
        #"{"type":"content_block_stop","index":2}"#,
        #"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}"#,
        #"{"type":"message_stop"}"#,
    ])

    /// A streamed OpenAI text answer with the usage chunk `stream_options.include_usage` asks for.
    static let openAITextAnswer = AnthropicStreamHarness.openAIBody([
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":"! How can"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{"content":" I help you today?"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        #"{"id":"chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT","object":"chat.completion.chunk","created":1741569952,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_eb9dce56a8","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29}}"#,
        "[DONE]",
    ])

    static let openAIWeatherArguments = #"{"location":"San Francisco, CA"}"#
    static let openAITimeArguments = #"{"timezone":"America/Los_Angeles"}"#

    /// A streamed OpenAI answer with two tool calls, one after the other, then a usage chunk.
    static let openAIToolAnswer = AnthropicStreamHarness.openAIBody([
        chunk(
            #"{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_DdmO9pD3xa9XTPNJ32zg2hcA","type":"function","function":{"name":"get_weather","arguments":""}}],"refusal":null}"#
        ),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"{\""}}]}"#),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"location"}}]}"#),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"\":\""}}]}"#),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"San Francisco, CA"}}]}"#),
        chunk(#"{"tool_calls":[{"index":0,"function":{"arguments":"\"}"}}]}"#),
        chunk(
            #"{"tool_calls":[{"index":1,"id":"call_Qh3sXcVfJ0mVtP7aZ2bK8n1L","type":"function","function":{"name":"get_time","arguments":""}}]}"#
        ),
        chunk(#"{"tool_calls":[{"index":1,"function":{"arguments":"{\"timezone\":"}}]}"#),
        chunk(#"{"tool_calls":[{"index":1,"function":{"arguments":"\"America/Los_Angeles\"}"}}]}"#),
        chunk("{}", finish: "tool_calls"),
        #"{"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":82,"completion_tokens":41,"total_tokens":123}}"#,
        "[DONE]",
    ])

    /// One OpenAI chunk of the tool answer with `delta` and an optional finish reason.
    static func chunk(_ delta: String, finish: String? = nil) -> String {
        let reason = finish.map { "\"\($0)\"" } ?? "null"
        return
            #"{"id":"chatcmpl-tool","object":"chat.completion.chunk","created":1741570000,"model":"gpt-4o-mini-2024-07-18","#
            + #""choices":[{"index":0,"delta":\#(delta),"logprobs":null,"finish_reason":\#(reason)}],"usage":null}"#
    }
}

@Suite("Anthropic fixtures")
struct AnthropicFixtureTests {
    @Test("Every upstream fixture event is well-formed JSON (or OpenAI's [DONE])")
    func fixturesAreWellFormed() {
        let bodies = [
            AnthropicFixtures.textAnswer, AnthropicFixtures.toolAnswer, AnthropicFixtures.openAITextAnswer,
            AnthropicFixtures.openAIToolAnswer,
        ]
        for body in bodies {
            let events = AnthropicStreamHarness.events(in: Array(body.utf8))
            #expect(!events.isEmpty)
            for event in events where !event.isDone {
                #expect((try? JSON(parsing: event.data)) != nil, "\(String(decoding: event.data, as: UTF8.self))")
            }
        }
    }
}
