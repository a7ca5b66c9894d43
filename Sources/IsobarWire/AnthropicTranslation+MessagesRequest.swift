// OpenAI chat.completions request -> Anthropic Messages request.

extension AnthropicTranslation {
    /// Translates an OpenAI chat.completions request into an Anthropic Messages request for `model` (the
    /// upstream model name).
    ///
    /// System and developer messages become the top-level `system`; tool results become `tool_result`
    /// blocks of a user turn and consecutive turns of one role are merged, because Anthropic requires
    /// alternating roles. `max_tokens` defaults to `defaultMaxTokens`; `temperature` is clamped to 0...1.
    /// Fields without an Anthropic equivalent (`seed`, `logprobs`, penalties, `logit_bias`,
    /// `response_format`, `stream_options`, …) are dropped.
    ///
    /// - Throws: `WireError` naming the field when the body is malformed, `messages` is missing or empty,
    ///   `n` > 1, a tool call's `arguments` is not a JSON object, or a content part cannot be expressed.
    public static func messagesRequest(fromChat body: JSON, model: String) throws(WireError) -> JSON {
        guard case .object(let chat) = body else { throw WireError("request body must be a JSON object") }
        if let n = chat["n"]?.intValue, n > 1 {
            throw WireError("n > 1 is not supported by Anthropic backends", param: "n")
        }
        guard case .array(let messages)? = chat["messages"], !messages.isEmpty else {
            throw WireError("'messages' must be a non-empty array", param: "messages")
        }
        var conversation = AnthropicConversation()
        for (index, message) in messages.enumerated() {
            try conversation.add(message, param: "messages[\(index)]")
        }
        guard !conversation.turns.isEmpty else {
            throw WireError("'messages' holds no user or assistant content", param: "messages")
        }
        var request = JSONObject()
        request["model"] = .string(model)
        request["max_tokens"] = .int(try maxTokens(chat))
        request["system"] = conversation.systemJSON
        request["messages"] = conversation.messagesJSON
        try addSampling(from: chat, to: &request)
        try addTools(from: chat, to: &request)
        if let user = chat["user"]?.stringValue { request["metadata"] = ["user_id": .string(user)] }
        if case .bool(let stream)? = chat["stream"] { request["stream"] = .bool(stream) }
        return .object(request)
    }

    private static func maxTokens(_ chat: JSONObject) throws(WireError) -> Int {
        for key in ["max_completion_tokens", "max_tokens"] {
            switch chat[key] {
            case nil, .null?: continue
            case .some(let value):
                guard let limit = value.intValue, limit >= 0 else {
                    throw WireError("'\(key)' must be a non-negative integer", param: key)
                }
                return limit
            }
        }
        return defaultMaxTokens
    }

    private static func addSampling(from chat: JSONObject, to request: inout JSONObject) throws(WireError) {
        if let temperature = try number(chat, "temperature") {
            request["temperature"] = .double(min(max(temperature, 0), 1))
        }
        if try number(chat, "top_p") != nil { request["top_p"] = chat["top_p"] }
        request["stop_sequences"] = try stopList(chat["stop"], param: "stop")
    }

    private static func addTools(from chat: JSONObject, to request: inout JSONObject) throws(WireError) {
        guard case .array(let tools)? = chat["tools"], !tools.isEmpty else { return }
        var anthropicTools: [JSON] = []
        for (index, tool) in tools.enumerated() {
            let param = "tools[\(index)]"
            guard tool["type"]?.stringValue ?? "function" == "function", let function = tool["function"] else {
                throw WireError("only function tools are supported by Anthropic backends", param: "\(param).type")
            }
            guard let name = function["name"]?.stringValue, !name.isEmpty else {
                throw WireError("a function tool needs a name", param: "\(param).function.name")
            }
            var converted: JSONObject = ["name": .string(name)]
            if let description = function["description"]?.stringValue {
                converted["description"] = .string(description)
            }
            let schema = function["parameters"].flatMap { $0.isNull ? nil : $0 }
            converted["input_schema"] = schema ?? ["type": "object", "properties": [:]]
            anthropicTools.append(.object(converted))
        }
        request["tools"] = .array(anthropicTools)
        var choice = try toolChoice(chat["tool_choice"])
        if chat["parallel_tool_calls"]?.boolValue == false, choice?["type"] != "none" {
            var object = choice?.objectValue ?? ["type": "auto"]
            object["disable_parallel_tool_use"] = true
            choice = .object(object)
        }
        request["tool_choice"] = choice
    }

    private static func toolChoice(_ value: JSON?) throws(WireError) -> JSON? {
        switch value {
        case nil, .null?: return nil
        case .string("auto")?: return ["type": "auto"]
        case .string("required")?: return ["type": "any"]
        case .string("none")?: return ["type": "none"]
        case .object(let object)?:
            if let name = object["function"]?["name"]?.stringValue, !name.isEmpty {
                return ["type": "tool", "name": .string(name)]
            }
            throw WireError("'tool_choice' must name a function", param: "tool_choice.function.name")
        default:
            throw WireError("'tool_choice' must be auto, required, none or a named function", param: "tool_choice")
        }
    }
}

/// An OpenAI conversation regrouped the way Anthropic wants it: system text apart, then turns of
/// alternating roles, each a list of content blocks.
private struct AnthropicConversation {
    var system: [String] = []
    var turns: [(role: String, blocks: [JSON])] = []

    /// The top-level `system` value: a string for one text, text blocks for several, `nil` for none.
    var systemJSON: JSON? {
        switch system.count {
        case 0: nil
        case 1: .string(system[0])
        default: .array(system.map { ["type": "text", "text": .string($0)] })
        }
    }

    /// The `messages` array; a turn of one plain text block is written as a string.
    var messagesJSON: JSON {
        .array(
            turns.map { turn in
                let content: JSON
                if turn.blocks.count == 1, turn.blocks[0]["type"] == "text", let text = turn.blocks[0]["text"] {
                    content = text
                } else {
                    content = .array(turn.blocks)
                }
                return ["role": .string(turn.role), "content": content]
            }
        )
    }

    mutating func add(_ message: JSON, param: String) throws(WireError) {
        guard case .object(let object) = message, let role = object["role"]?.stringValue else {
            throw WireError("each message needs a 'role'", param: "\(param).role")
        }
        switch role {
        case "system", "developer":
            let text = try AnthropicTranslation.plainText(object["content"], separator: "\n", param: "\(param).content")
            if !text.isEmpty { system.append(text) }
        case "user":
            append(role: "user", blocks: try Self.userBlocks(object["content"], param: "\(param).content"))
        case "assistant":
            append(role: "assistant", blocks: try Self.assistantBlocks(object, param: param))
        case "tool":
            append(role: "user", blocks: [try Self.toolResult(object, param: param)])
        default:
            throw WireError("message role '\(role)' is not supported by Anthropic backends", param: "\(param).role")
        }
    }

    private mutating func append(role: String, blocks: [JSON]) {
        guard !blocks.isEmpty else { return }
        if let last = turns.indices.last, turns[last].role == role {
            turns[last].blocks += blocks
        } else {
            turns.append((role: role, blocks: blocks))
        }
    }

    private static func textBlock(_ text: String) -> JSON { ["type": "text", "text": .string(text)] }

    private static func userBlocks(_ content: JSON?, param: String) throws(WireError) -> [JSON] {
        guard case .array(let parts)? = content else {
            let text = try AnthropicTranslation.plainText(content, separator: "", param: param)
            return text.isEmpty ? [] : [textBlock(text)]
        }
        var blocks: [JSON] = []
        for (index, part) in parts.enumerated() {
            let partParam = "\(param)[\(index)]"
            switch part["type"]?.stringValue {
            case "text":
                guard let text = part["text"]?.stringValue else {
                    throw WireError("a text part needs 'text'", param: "\(partParam).text")
                }
                if !text.isEmpty { blocks.append(textBlock(text)) }
            case "image_url":
                let url = part["image_url"]?["url"]?.stringValue ?? part["image_url"]?.stringValue
                guard let url, let source = AnthropicTranslation.imageSource(fromURL: url) else {
                    throw WireError(
                        "image_url must be a base64 data: URL or an http(s) URL",
                        param: "\(partParam).image_url"
                    )
                }
                blocks.append(["type": "image", "source": source])
            case let type:
                throw WireError(
                    "content part type '\(type ?? "")' is not supported by Anthropic backends",
                    param: "\(partParam).type"
                )
            }
        }
        return blocks
    }

    private static func assistantBlocks(_ message: JSONObject, param: String) throws(WireError) -> [JSON] {
        var blocks: [JSON] = []
        let text = try AnthropicTranslation.plainText(message["content"], separator: "", param: "\(param).content")
        if !text.isEmpty { blocks.append(textBlock(text)) }
        guard case .array(let calls)? = message["tool_calls"] else { return blocks }
        for (index, call) in calls.enumerated() {
            let callParam = "\(param).tool_calls[\(index)]"
            guard let id = call["id"]?.stringValue, let name = call["function"]?["name"]?.stringValue else {
                throw WireError("a tool call needs an 'id' and a function name", param: callParam)
            }
            let arguments = call["function"]?["arguments"]?.stringValue ?? ""
            guard let input = AnthropicTranslation.toolInput(fromArguments: arguments) else {
                throw WireError("tool call arguments must be a JSON object", param: "\(callParam).function.arguments")
            }
            blocks.append(["type": "tool_use", "id": .string(id), "name": .string(name), "input": input])
        }
        return blocks
    }

    private static func toolResult(_ message: JSONObject, param: String) throws(WireError) -> JSON {
        guard let id = message["tool_call_id"]?.stringValue else {
            throw WireError("a tool message needs 'tool_call_id'", param: "\(param).tool_call_id")
        }
        var result: JSONObject = ["type": "tool_result", "tool_use_id": .string(id)]
        let text = try AnthropicTranslation.plainText(message["content"], separator: "", param: "\(param).content")
        if case .array(let parts)? = message["content"] {
            let blocks = parts.compactMap { $0["text"]?.stringValue }.filter { !$0.isEmpty }.map(textBlock)
            if !blocks.isEmpty { result["content"] = .array(blocks) }
        } else if !text.isEmpty {
            result["content"] = .string(text)
        }
        return .object(result)
    }
}
