import Testing

@testable import IsobarWire

@Suite("OpenAI request -> Anthropic request")
struct AnthropicMessagesRequestTests {
    private func translate(_ text: String, model: String = "claude-sonnet-4-5") throws -> JSON {
        try AnthropicTranslation.messagesRequest(fromChat: JSON(parsing: text), model: model)
    }

    private func failure(_ text: String) -> WireError? {
        do {
            _ = try translate(text)
            return nil
        } catch let error as WireError {
            return error
        } catch {
            return nil
        }
    }

    static let agentTurn = #"""
        {"model":"chat","n":1,"seed":42,"logprobs":false,"presence_penalty":0.5,"frequency_penalty":0.1,
         "logit_bias":{"50256":-100},"response_format":{"type":"text"},"stream":true,
         "stream_options":{"include_usage":true},"max_completion_tokens":512,"temperature":1.7,"top_p":0.9,
         "stop":"END","user":"user-7","parallel_tool_calls":false,"tool_choice":"required",
         "tools":[{"type":"function","function":{"name":"get_weather","description":"Current weather",
           "parameters":{"type":"object","properties":{"location":{"type":"string"}},"required":["location"]}}}],
         "messages":[
          {"role":"system","content":"You are terse."},
          {"role":"developer","content":[{"type":"text","text":"Use tools."}]},
          {"role":"user","content":[{"type":"text","text":"Weather here and there?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
            {"type":"image_url","image_url":{"url":"https://example.com/map.jpg","detail":"high"}}]},
          {"role":"assistant","content":null,"tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}},
            {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":""}}]},
          {"role":"tool","tool_call_id":"call_1","content":"18C"},
          {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"unknown"}]},
          {"role":"user","content":"Thanks. Summarise."}]}
        """#

    @Test("A tool-using conversation becomes alternating Anthropic turns with tool_use and tool_result blocks")
    func conversation() throws {
        let request = try translate(Self.agentTurn)
        #expect(request["model"] == "claude-sonnet-4-5")
        #expect(
            request["system"] == [["type": "text", "text": "You are terse."], ["type": "text", "text": "Use tools."]]
        )
        let messages = try #require(request["messages"]?.arrayValue)
        #expect(messages.map { $0["role"] } == ["user", "assistant", "user"])
        #expect(
            messages[0]["content"] == [
                ["type": "text", "text": "Weather here and there?"],
                ["type": "image", "source": ["type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="]],
                ["type": "image", "source": ["type": "url", "url": "https://example.com/map.jpg"]],
            ]
        )
        #expect(
            messages[1]["content"] == [
                ["type": "tool_use", "id": "call_1", "name": "get_weather", "input": ["location": "Paris"]],
                ["type": "tool_use", "id": "call_2", "name": "get_weather", "input": [:]],
            ]
        )
        #expect(
            messages[2]["content"] == [
                ["type": "tool_result", "tool_use_id": "call_1", "content": "18C"],
                ["type": "tool_result", "tool_use_id": "call_2", "content": [["type": "text", "text": "unknown"]]],
                ["type": "text", "text": "Thanks. Summarise."],
            ]
        )
    }

    @Test("Limits, sampling, tools and user map to their Anthropic fields; the rest is dropped")
    func parameters() throws {
        let request = try translate(Self.agentTurn)
        #expect(request["max_tokens"] == 512)
        #expect(request["temperature"] == 1)
        #expect(request["top_p"] == 0.9)
        #expect(request["stop_sequences"] == ["END"])
        #expect(request["metadata"] == ["user_id": "user-7"])
        #expect(request["stream"] == true)
        #expect(request["tool_choice"] == ["type": "any", "disable_parallel_tool_use": true])
        let tool = request["tools"]?[0]
        #expect(tool?["name"] == "get_weather")
        #expect(tool?["description"] == "Current weather")
        #expect(tool?["input_schema"]?["required"] == ["location"])
        let keys = Set(request.objectValue?.keys ?? [])
        for dropped in [
            "n", "seed", "logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "response_format",
            "stream_options", "parallel_tool_calls", "user", "stop", "max_completion_tokens",
        ] {
            #expect(!keys.contains(dropped), "\(dropped)")
        }
    }

    @Test("A plain chat gets a string system, string content, merged user turns and the default max_tokens")
    func plainChat() throws {
        let request = try translate(
            #"{"model":"x","stop":["a","b"],"temperature":-0.5,"messages":[{"role":"system","content":"Be kind."},"#
                + #"{"role":"user","content":"Hi"},{"role":"user","content":"there"}]}"#
        )
        #expect(request["system"] == "Be kind.")
        #expect(request["max_tokens"] == .int(AnthropicTranslation.defaultMaxTokens))
        #expect(request["temperature"] == 0)
        #expect(request["stop_sequences"] == ["a", "b"])
        #expect(
            request["messages"] == [
                ["role": "user", "content": [["type": "text", "text": "Hi"], ["type": "text", "text": "there"]]]
            ]
        )
        #expect(request["tools"] == nil)
        #expect(request["tool_choice"] == nil)
        #expect(request["stream"] == nil)
    }

    static let toolChoices: [(String, JSON)] = [
        (#""auto""#, ["type": "auto"]),
        (#""none""#, ["type": "none"]),
        (#""required""#, ["type": "any"]),
        (#"{"type":"function","function":{"name":"f"}}"#, ["type": "tool", "name": "f"]),
    ]

    @Test(
        "tool_choice maps auto, none, required and a named function",
        arguments: toolChoices
    )
    func toolChoice(choice: String, expected: JSON) throws {
        let request = try translate(
            #"{"model":"x","tool_choice":\#(choice),"tools":[{"type":"function","function":{"name":"f"}}],"#
                + #""messages":[{"role":"user","content":"Hi"}]}"#
        )
        #expect(request["tool_choice"] == expected)
        #expect(request["tools"]?[0]?["input_schema"] == ["type": "object", "properties": [:]])
    }

    @Test(
        "Requests Anthropic cannot serve are rejected, naming the field",
        arguments: [
            (#"{"model":"x","n":2,"messages":[{"role":"user","content":"Hi"}]}"#, "n"),
            (#"{"model":"x"}"#, "messages"),
            (#"{"model":"x","messages":[]}"#, "messages"),
            (#"{"model":"x","messages":[{"role":"system","content":"only system"}]}"#, "messages"),
            (
                #"{"model":"x","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","#
                    + #""function":{"name":"f","arguments":"{oops"}}]}]}"#,
                "messages[0].tool_calls[0].function.arguments"
            ),
            (
                #"{"model":"x","messages":[{"role":"user","#
                    + #""content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}"#,
                "messages[0].content[0].image_url"
            ),
            (
                #"{"model":"x","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}"#,
                "messages[0].content[0].type"
            ),
            (#"{"model":"x","messages":[{"role":"tool","content":"r"}]}"#, "messages[0].tool_call_id"),
            (#"{"model":"x","max_tokens":"lots","messages":[{"role":"user","content":"Hi"}]}"#, "max_tokens"),
            (#"{"model":"x","temperature":"hot","messages":[{"role":"user","content":"Hi"}]}"#, "temperature"),
        ]
    )
    func rejected(body: String, param: String) {
        #expect(failure(body)?.param == param)
    }

    @Test("n > 1 is refused with the documented message")
    func nMessage() {
        let error = failure(#"{"model":"x","n":3,"messages":[{"role":"user","content":"Hi"}]}"#)
        #expect(error == WireError("n > 1 is not supported by Anthropic backends", param: "n"))
    }
}
