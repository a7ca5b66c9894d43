import IsobarModel

// Whole (non-stream) responses in both directions.

extension AnthropicTranslation {
    /// Translates an Anthropic Messages response into an OpenAI chat.completion.
    ///
    /// One choice: text blocks joined as `content` (`null` when there is none), `tool_use` blocks as
    /// `tool_calls` whose `arguments` is the JSON text of the block's `input`, thinking blocks as
    /// `reasoning_content`. `model` is the model Anthropic reports (the deployment that served);
    /// `created` is unix seconds supplied by the caller.
    public static func chatCompletion(fromMessage body: JSON, created: Int) -> JSON {
        var texts: [String] = []
        var thinking: [String] = []
        var toolCalls: [JSON] = []
        for block in body["content"]?.arrayValue ?? [] {
            switch block["type"]?.stringValue {
            case "text":
                texts.append(block["text"]?.stringValue ?? "")
            case "thinking":
                thinking.append(block["thinking"]?.stringValue ?? "")
            case "tool_use":
                let function: JSON = [
                    "name": block["name"] ?? "", "arguments": .string((block["input"] ?? .object(JSONObject())).text),
                ]
                toolCalls.append(["id": block["id"] ?? "", "type": "function", "function": function])
            default:
                continue
            }
        }
        var message: JSONObject = ["role": "assistant", "content": texts.isEmpty ? .null : .string(texts.joined())]
        if !thinking.isEmpty { message["reasoning_content"] = .string(thinking.joined()) }
        if !toolCalls.isEmpty { message["tool_calls"] = .array(toolCalls) }
        let finish = finishReason(fromStopReason: body["stop_reason"]?.stringValue)
        let choice: JSON = [
            "index": 0, "message": .object(message), "logprobs": nil, "finish_reason": finish.map(JSON.string) ?? .null,
        ]
        var completion: JSONObject = [
            "id": body["id"] ?? "", "object": "chat.completion", "created": .int(created), "model": body["model"] ?? "",
            "choices": [choice],
        ]
        completion["usage"] = body["usage"].flatMap(Usage.init(anthropic:))?.openAIJSON
        return .object(completion)
    }

    /// Translates an OpenAI chat.completion into an Anthropic Messages response.
    ///
    /// The first choice's text (or refusal) becomes a text block and its `tool_calls` become `tool_use`
    /// blocks whose `input` is the parsed `arguments` (`{}` when they are not a JSON object).
    /// `stop_sequence` is always `null` (OpenAI does not say which sequence matched); missing usage is 0.
    public static func message(fromChatCompletion body: JSON) -> JSON {
        let choice = body["choices"]?[0]
        let message = choice?["message"]
        var content: [JSON] = []
        let text = (try? plainText(message?["content"], separator: "", param: "content")) ?? ""
        let shown = text.isEmpty ? message?["refusal"]?.stringValue ?? "" : text
        if !shown.isEmpty { content.append(["type": "text", "text": .string(shown)]) }
        for call in message?["tool_calls"]?.arrayValue ?? [] {
            let arguments = call["function"]?["arguments"]?.stringValue ?? ""
            content.append([
                "type": "tool_use", "id": call["id"] ?? "", "name": call["function"]?["name"] ?? "",
                "input": toolInput(fromArguments: arguments) ?? .object(JSONObject()),
            ])
        }
        let stop = stopReason(fromFinishReason: choice?["finish_reason"]?.stringValue)
        let usage = body["usage"].flatMap(Usage.init(openAI:)) ?? Usage()
        return [
            "id": body["id"] ?? "", "type": "message", "role": "assistant", "model": body["model"] ?? "",
            "content": .array(content), "stop_reason": stop.map(JSON.string) ?? .null, "stop_sequence": nil,
            "usage": usage.anthropicJSON,
        ]
    }
}
