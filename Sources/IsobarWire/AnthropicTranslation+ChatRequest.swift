// Anthropic Messages request -> OpenAI chat.completions request.

extension AnthropicTranslation {
    /// Translates an Anthropic Messages request into an OpenAI chat.completions request for `model` (the
    /// upstream model name).
    ///
    /// `system` becomes a leading system message; `tool_use` blocks become assistant `tool_calls` and
    /// `tool_result` blocks become `role: tool` messages placed before the rest of their user turn.
    /// A stream request also asks for a usage chunk (`stream_options.include_usage`). `top_k`, `thinking`
    /// and `thinking` blocks of earlier turns have no OpenAI equivalent and are dropped.
    ///
    /// - Throws: `WireError` naming the field when `model`, `messages` or `max_tokens` is missing or
    ///   malformed, or a block (documents, server tools, images inside tool results) cannot be expressed.
    public static func chatRequest(fromMessages body: JSON, model: String) throws(WireError) -> JSON {
        guard case .object(let request) = body else { throw WireError("request body must be a JSON object") }
        guard let requested = request["model"]?.stringValue, !requested.isEmpty else {
            throw WireError("'model' is required", param: "model")
        }
        guard let maxTokens = request["max_tokens"]?.intValue, maxTokens >= 0 else {
            throw WireError("'max_tokens' is required and must be a non-negative integer", param: "max_tokens")
        }
        guard case .array(let messages)? = request["messages"], !messages.isEmpty else {
            throw WireError("'messages' must be a non-empty array", param: "messages")
        }
        var chatMessages: [JSON] = []
        let system = try plainText(request["system"], separator: "\n", param: "system")
        if !system.isEmpty { chatMessages.append(["role": "system", "content": .string(system)]) }
        for (index, message) in messages.enumerated() {
            chatMessages += try OpenAIMessages.convert(message, param: "messages[\(index)]")
        }
        var chat = JSONObject()
        chat["model"] = .string(model)
        chat["messages"] = .array(chatMessages)
        chat["max_tokens"] = .int(maxTokens)
        if try number(request, "temperature") != nil { chat["temperature"] = request["temperature"] }
        if try number(request, "top_p") != nil { chat["top_p"] = request["top_p"] }
        chat["stop"] = try stopList(request["stop_sequences"], param: "stop_sequences")
        try addFunctionTools(from: request, to: &chat)
        if let user = request["metadata"]?["user_id"]?.stringValue { chat["user"] = .string(user) }
        if case .bool(let stream)? = request["stream"] {
            chat["stream"] = .bool(stream)
            if stream { chat["stream_options"] = ["include_usage": true] }
        }
        return .object(chat)
    }

    private static func addFunctionTools(from request: JSONObject, to chat: inout JSONObject) throws(WireError) {
        guard case .array(let tools)? = request["tools"], !tools.isEmpty else { return }
        var functions: [JSON] = []
        for (index, tool) in tools.enumerated() {
            let param = "tools[\(index)]"
            guard tool["type"]?.stringValue ?? "custom" == "custom" else {
                throw WireError("server tools are not supported by OpenAI-compatible backends", param: "\(param).type")
            }
            guard let name = tool["name"]?.stringValue, !name.isEmpty else {
                throw WireError("a tool needs a name", param: "\(param).name")
            }
            var function: JSONObject = ["name": .string(name)]
            if let description = tool["description"]?.stringValue { function["description"] = .string(description) }
            function["parameters"] = tool["input_schema"] ?? ["type": "object", "properties": [:]]
            functions.append(["type": "function", "function": .object(function)])
        }
        chat["tools"] = .array(functions)
        guard let choice = request["tool_choice"], !choice.isNull else { return }
        switch choice["type"]?.stringValue {
        case "auto": chat["tool_choice"] = "auto"
        case "any": chat["tool_choice"] = "required"
        case "none": chat["tool_choice"] = "none"
        case "tool":
            guard let name = choice["name"]?.stringValue else {
                throw WireError("'tool_choice' of type tool needs a name", param: "tool_choice.name")
            }
            chat["tool_choice"] = ["type": "function", "function": ["name": .string(name)]]
        default:
            throw WireError("'tool_choice' must be auto, any, none or tool", param: "tool_choice.type")
        }
        if choice["disable_parallel_tool_use"]?.boolValue == true { chat["parallel_tool_calls"] = false }
    }
}

/// Converts one Anthropic message into the OpenAI messages it stands for.
private enum OpenAIMessages {
    static func convert(_ message: JSON, param: String) throws(WireError) -> [JSON] {
        guard let role = message["role"]?.stringValue else {
            throw WireError("each message needs a 'role'", param: "\(param).role")
        }
        let content = message["content"]
        switch (role, content) {
        case ("user", .string(let text)?), ("assistant", .string(let text)?):
            return [["role": .string(role), "content": .string(text)]]
        case ("user", .array(let blocks)?):
            return try user(blocks, param: "\(param).content")
        case ("assistant", .array(let blocks)?):
            return [try assistant(blocks, param: "\(param).content")]
        case ("user", _), ("assistant", _):
            throw WireError("content must be a string or an array of blocks", param: "\(param).content")
        default:
            throw WireError("message role must be user or assistant", param: "\(param).role")
        }
    }

    /// Tool results first (OpenAI wants them right after the assistant's calls), then the user's parts.
    private static func user(_ blocks: [JSON], param: String) throws(WireError) -> [JSON] {
        var toolMessages: [JSON] = []
        var parts: [JSON] = []
        for (index, block) in blocks.enumerated() {
            let blockParam = "\(param)[\(index)]"
            switch block["type"]?.stringValue {
            case "text":
                parts.append(["type": "text", "text": .string(block["text"]?.stringValue ?? "")])
            case "image":
                guard let url = AnthropicTranslation.imageURL(fromSource: block["source"]) else {
                    throw WireError("an image needs a base64 or url source", param: "\(blockParam).source")
                }
                parts.append(["type": "image_url", "image_url": ["url": .string(url)]])
            case "tool_result":
                toolMessages.append(try toolMessage(block, param: blockParam))
            case let type:
                throw WireError(
                    "content block type '\(type ?? "")' is not supported by OpenAI-compatible backends",
                    param: "\(blockParam).type"
                )
            }
        }
        guard !parts.isEmpty else { return toolMessages }
        let content: JSON
        if parts.count == 1, parts[0]["type"] == "text", let text = parts[0]["text"] {
            content = text
        } else {
            content = .array(parts)
        }
        return toolMessages + [["role": "user", "content": content]]
    }

    private static func toolMessage(_ block: JSON, param: String) throws(WireError) -> JSON {
        guard let id = block["tool_use_id"]?.stringValue else {
            throw WireError("a tool_result needs 'tool_use_id'", param: "\(param).tool_use_id")
        }
        let text = try AnthropicTranslation.plainText(block["content"], separator: "\n", param: "\(param).content")
        return ["role": "tool", "tool_call_id": .string(id), "content": .string(text)]
    }

    private static func assistant(_ blocks: [JSON], param: String) throws(WireError) -> JSON {
        var texts: [String] = []
        var calls: [JSON] = []
        for (index, block) in blocks.enumerated() {
            switch block["type"]?.stringValue {
            case "text":
                texts.append(block["text"]?.stringValue ?? "")
            case "tool_use":
                guard let id = block["id"]?.stringValue, let name = block["name"]?.stringValue else {
                    throw WireError("a tool_use block needs 'id' and 'name'", param: "\(param)[\(index)]")
                }
                let arguments = (block["input"] ?? .object(JSONObject())).text
                calls.append(
                    [
                        "id": .string(id), "type": "function",
                        "function": ["name": .string(name), "arguments": .string(arguments)],
                    ]
                )
            case "thinking", "redacted_thinking":
                continue
            case let type:
                throw WireError(
                    "content block type '\(type ?? "")' is not supported by OpenAI-compatible backends",
                    param: "\(param)[\(index)].type"
                )
            }
        }
        let text = texts.joined()
        var message: JSONObject = [
            "role": "assistant", "content": text.isEmpty && !calls.isEmpty ? .null : .string(text),
        ]
        if !calls.isEmpty { message["tool_calls"] = .array(calls) }
        return .object(message)
    }
}
