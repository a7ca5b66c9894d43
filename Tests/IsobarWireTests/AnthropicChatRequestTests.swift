import Testing

@testable import IsobarWire

@Suite("Anthropic request -> OpenAI request")
struct AnthropicChatRequestTests {
    private func translate(_ text: String, model: String = "gpt-4o-mini") throws -> JSON {
        try AnthropicTranslation.chatRequest(fromMessages: JSON(parsing: text), model: model)
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
        {"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"temperature":0.2,"top_p":0.8,"top_k":40,
         "thinking":{"type":"enabled","budget_tokens":2048},"stop_sequences":["\n\nHuman:"],
         "metadata":{"user_id":"user-9"},
         "system":[{"type":"text","text":"You are terse."},
           {"type":"text","text":"Use tools.","cache_control":{"type":"ephemeral"}}],
         "tools":[{"name":"get_weather","description":"Current weather",
           "input_schema":{"type":"object","properties":{"location":{"type":"string"}}}}],
         "tool_choice":{"type":"any","disable_parallel_tool_use":true},
         "messages":[
          {"role":"user","content":[{"type":"text","text":"Weather in Paris?"},
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
            {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
          {"role":"assistant","content":[{"type":"thinking","thinking":"Call the tool.","signature":"sig"},
            {"type":"text","text":"Checking."},
            {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"Paris","days":[1,2]}}]},
          {"role":"user","content":[
            {"type":"tool_result","tool_use_id":"toolu_1",
             "content":[{"type":"text","text":"18C"},{"type":"text","text":"sunny"}]},
            {"type":"text","text":"And tomorrow?"}]},
          {"role":"assistant","content":"It depends."}]}
        """#

    @Test("Blocks become OpenAI messages: parts, tool_calls, and tool messages before the user's text")
    func conversation() throws {
        let request = try translate(Self.agentTurn)
        #expect(request["model"] == "gpt-4o-mini")
        let messages = try #require(request["messages"]?.arrayValue)
        #expect(messages.map { $0["role"] } == ["system", "user", "assistant", "tool", "user", "assistant"])
        #expect(messages[0]["content"] == "You are terse.\nUse tools.")
        #expect(
            messages[1]["content"] == [
                ["type": "text", "text": "Weather in Paris?"],
                ["type": "image_url", "image_url": ["url": "data:image/jpeg;base64,/9j/4AAQ"]],
                ["type": "image_url", "image_url": ["url": "https://example.com/a.png"]],
            ]
        )
        #expect(messages[2]["content"] == "Checking.")
        let call = messages[2]["tool_calls"]?[0]
        #expect(call?["id"] == "toolu_1")
        #expect(call?["type"] == "function")
        #expect(call?["function"]?["name"] == "get_weather")
        let arguments = try #require(call?["function"]?["arguments"]?.stringValue)
        #expect(try JSON(parsing: arguments) == ["location": "Paris", "days": [1, 2]])
        #expect(messages[3] == ["role": "tool", "tool_call_id": "toolu_1", "content": "18C\nsunny"])
        #expect(messages[4] == ["role": "user", "content": "And tomorrow?"])
        #expect(messages[5] == ["role": "assistant", "content": "It depends."])
    }

    @Test("Limits, sampling, tools, user and stream map to OpenAI fields; top_k and thinking are dropped")
    func parameters() throws {
        let request = try translate(Self.agentTurn)
        #expect(request["max_tokens"] == 1024)
        #expect(request["temperature"] == 0.2)
        #expect(request["top_p"] == 0.8)
        #expect(request["stop"] == ["\n\nHuman:"])
        #expect(request["user"] == "user-9")
        #expect(request["stream"] == true)
        #expect(request["stream_options"] == ["include_usage": true])
        #expect(request["tool_choice"] == "required")
        #expect(request["parallel_tool_calls"] == false)
        #expect(
            request["tools"] == [
                [
                    "type": "function",
                    "function": [
                        "name": "get_weather", "description": "Current weather",
                        "parameters": ["type": "object", "properties": ["location": ["type": "string"]]],
                    ],
                ]
            ]
        )
        let keys = Set(request.objectValue?.keys ?? [])
        for dropped in ["top_k", "thinking", "metadata", "stop_sequences", "system"] {
            #expect(!keys.contains(dropped), "\(dropped)")
        }
    }

    @Test("A non-stream request with a string system gets no stream_options")
    func plain() throws {
        let request = try translate(
            #"{"model":"m","max_tokens":10,"system":"Be kind.","messages":[{"role":"user","content":"Hi"}]}"#
        )
        #expect(
            request["messages"] == [["role": "system", "content": "Be kind."], ["role": "user", "content": "Hi"]]
        )
        #expect(request["stream"] == nil)
        #expect(request["stream_options"] == nil)
    }

    static let toolChoices: [(String, JSON)] = [
        (#"{"type":"auto"}"#, "auto"),
        (#"{"type":"any"}"#, "required"),
        (#"{"type":"none"}"#, "none"),
        (#"{"type":"tool","name":"f"}"#, ["type": "function", "function": ["name": "f"]]),
    ]

    @Test(
        "tool_choice maps to OpenAI's vocabulary",
        arguments: toolChoices
    )
    func toolChoice(choice: String, expected: JSON) throws {
        let request = try translate(
            #"{"model":"m","max_tokens":10,"tools":[{"name":"f","input_schema":{"type":"object"}}],"#
                + #""tool_choice":\#(choice),"messages":[{"role":"user","content":"Hi"}]}"#
        )
        #expect(request["tool_choice"] == expected)
        #expect(request["parallel_tool_calls"] == nil)
    }

    @Test(
        "Malformed or untranslatable requests are rejected, naming the field",
        arguments: [
            (#"{"max_tokens":10,"messages":[{"role":"user","content":"Hi"}]}"#, "model"),
            (#"{"model":"m","messages":[{"role":"user","content":"Hi"}]}"#, "max_tokens"),
            (#"{"model":"m","max_tokens":10}"#, "messages"),
            (#"{"model":"m","max_tokens":10,"messages":[]}"#, "messages"),
            (#"{"model":"m","max_tokens":10,"messages":[{"role":"system","content":"Hi"}]}"#, "messages[0].role"),
            (
                #"{"model":"m","max_tokens":10,"#
                    + #""messages":[{"role":"user","content":[{"type":"document","source":{}}]}]}"#,
                "messages[0].content[0].type"
            ),
            (
                #"{"model":"m","max_tokens":10,"tools":[{"type":"web_search_20250305","name":"web_search"}],"#
                    + #""messages":[{"role":"user","content":"Hi"}]}"#,
                "tools[0].type"
            ),
        ]
    )
    func rejected(body: String, param: String) {
        #expect(failure(body)?.param == param)
    }
}
