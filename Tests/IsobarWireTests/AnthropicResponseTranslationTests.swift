import IsobarModel
import Testing

@testable import IsobarWire

@Suite("Whole responses and the stop-reason vocabulary")
struct AnthropicResponseTranslationTests {
    static let anthropicToolAnswer = #"""
        {"id":"msg_01Aq9w938a90dw8q","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
         "content":[{"type":"thinking","thinking":"Need weather.","signature":"EqQB"},
           {"type":"text","text":"Let me check "},{"type":"text","text":"that."},
           {"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":"get_weather",
            "input":{"location":"San Francisco, CA","unit":"celsius"}}],
         "stop_reason":"tool_use","stop_sequence":null,
         "usage":{"input_tokens":2095,"cache_creation_input_tokens":100,"cache_read_input_tokens":50,
                  "output_tokens":503}}
        """#

    @Test("An Anthropic message becomes a chat.completion with text, tool_calls, reasoning and usage")
    func chatCompletion() throws {
        let completion = AnthropicTranslation.chatCompletion(
            fromMessage: try JSON(parsing: Self.anthropicToolAnswer),
            created: 1_700_000_000
        )
        #expect(completion["id"] == "msg_01Aq9w938a90dw8q")
        #expect(completion["object"] == "chat.completion")
        #expect(completion["created"] == 1_700_000_000)
        #expect(completion["model"] == "claude-sonnet-4-5-20250929")
        let choice = completion["choices"]?[0]
        #expect(choice?["index"] == 0)
        #expect(choice?["finish_reason"] == "tool_calls")
        let message = choice?["message"]
        #expect(message?["role"] == "assistant")
        #expect(message?["content"] == "Let me check that.")
        #expect(message?["reasoning_content"] == "Need weather.")
        let call = message?["tool_calls"]?[0]
        #expect(call?["id"] == "toolu_01A09q90qw90lq917835lq9")
        #expect(call?["type"] == "function")
        #expect(call?["function"]?["name"] == "get_weather")
        let arguments = try #require(call?["function"]?["arguments"]?.stringValue)
        #expect(try JSON(parsing: arguments) == ["location": "San Francisco, CA", "unit": "celsius"])
        #expect(completion["usage"] == ["prompt_tokens": 2245, "completion_tokens": 503, "total_tokens": 2748])
    }

    @Test("A message with only a tool call has null content and no reasoning")
    func toolOnly() throws {
        let body = try JSON(
            parsing: #"{"id":"m","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"#
                + #""stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":2}}"#
        )
        let message = AnthropicTranslation.chatCompletion(fromMessage: body, created: 0)["choices"]?[0]?["message"]
        #expect(message?["content"] == .null)
        #expect(message?["reasoning_content"] == nil)
        #expect(message?["tool_calls"]?[0]?["function"]?["arguments"] == "{}")
    }

    static let openAIToolAnswer = #"""
        {"id":"chatcmpl-abc123","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06",
         "choices":[{"index":0,"message":{"role":"assistant","content":"Checking.","refusal":null,
           "tool_calls":[{"id":"call_1","type":"function",
                          "function":{"name":"get_weather","arguments":"{\"location\":\"Boston\"}"}},
                         {"id":"call_2","type":"function","function":{"name":"broken","arguments":"{not json"}}]},
           "logprobs":null,"finish_reason":"tool_calls"}],
         "usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99}}
        """#

    @Test("A chat.completion becomes an Anthropic message with text and tool_use blocks")
    func message() throws {
        let message = AnthropicTranslation.message(fromChatCompletion: try JSON(parsing: Self.openAIToolAnswer))
        #expect(message["id"] == "chatcmpl-abc123")
        #expect(message["type"] == "message")
        #expect(message["role"] == "assistant")
        #expect(message["model"] == "gpt-4o-2024-08-06")
        #expect(
            message["content"] == [
                ["type": "text", "text": "Checking."],
                ["type": "tool_use", "id": "call_1", "name": "get_weather", "input": ["location": "Boston"]],
                ["type": "tool_use", "id": "call_2", "name": "broken", "input": [:]],
            ]
        )
        #expect(message["stop_reason"] == "tool_use")
        #expect(message["stop_sequence"] == .null)
        #expect(message["usage"] == ["input_tokens": 82, "output_tokens": 17])
    }

    @Test("A refusal becomes the text of the message; missing usage is zero")
    func refusal() throws {
        let body = try JSON(
            parsing: #"{"id":"c","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"#
                + #""refusal":"I can't help with that."},"finish_reason":"content_filter"}]}"#
        )
        let message = AnthropicTranslation.message(fromChatCompletion: body)
        #expect(message["content"] == [["type": "text", "text": "I can't help with that."]])
        #expect(message["stop_reason"] == "refusal")
        #expect(message["usage"] == ["input_tokens": 0, "output_tokens": 0])
    }

    @Test(
        "Anthropic stop reasons map to OpenAI finish reasons",
        arguments: [
            ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"), ("max_tokens", "length"),
            ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("model_context_window_exceeded", "length"),
        ]
    )
    func finishReasons(stop: String, finish: String) {
        #expect(AnthropicTranslation.finishReason(fromStopReason: stop) == finish)
    }

    @Test(
        "OpenAI finish reasons map to Anthropic stop reasons",
        arguments: [
            ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("function_call", "tool_use"),
            ("content_filter", "refusal"),
        ]
    )
    func stopReasons(finish: String, stop: String) {
        #expect(AnthropicTranslation.stopReason(fromFinishReason: finish) == stop)
    }

    @Test("No reason maps to no reason")
    func nilReasons() {
        #expect(AnthropicTranslation.finishReason(fromStopReason: nil) == nil)
        #expect(AnthropicTranslation.stopReason(fromFinishReason: nil) == nil)
    }

    @Test("Anthropic usage counts cache reads and writes as prompt tokens")
    func usage() {
        let full: JSON = [
            "input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 7,
        ]
        #expect(Usage(anthropic: full) == Usage(promptTokens: 115, completionTokens: 7))
        #expect(Usage(anthropic: ["output_tokens": 3]) == Usage(promptTokens: 0, completionTokens: 3))
        #expect(Usage(anthropic: [:]) == nil)
        #expect(Usage(promptTokens: 4, completionTokens: 2).anthropicJSON == ["input_tokens": 4, "output_tokens": 2])
    }
}
