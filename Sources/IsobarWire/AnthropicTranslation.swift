import IsobarModel

/// Translation between OpenAI Chat Completions bodies and Anthropic Messages bodies.
///
/// A node accepts both dialects and serves each from backends of either dialect, so every body can be
/// translated both ways: requests (`messagesRequest(fromChat:model:)`, `chatRequest(fromMessages:model:)`),
/// whole responses (`chatCompletion(fromMessage:created:)`, `message(fromChatCompletion:)`) and the
/// stop-reason vocabulary. Streams are translated by `AnthropicToOpenAIStream` and `OpenAIToAnthropicStream`.
///
/// Pure: timestamps are parameters, nothing reads a clock or generates random ids. Request translation
/// throws `WireError` naming the offending field; response translation never fails (missing fields
/// become empty values), because an upstream answer that arrived must still reach the client.
public enum AnthropicTranslation {
    /// The `max_tokens` sent to Anthropic when an OpenAI request sets no limit (Anthropic requires one).
    public static let defaultMaxTokens = 4096

    /// The OpenAI `finish_reason` for an Anthropic `stop_reason`.
    ///
    /// `end_turn`, `stop_sequence` and `pause_turn` -> `stop`; `max_tokens` and
    /// `model_context_window_exceeded` -> `length`; `tool_use` -> `tool_calls`; `refusal` ->
    /// `content_filter`. Any other reason ended the answer too and becomes `stop`; `nil` stays `nil`.
    public static func finishReason(fromStopReason stopReason: String?) -> String? {
        guard let stopReason else { return nil }
        switch stopReason {
        case "max_tokens", "model_context_window_exceeded": return "length"
        case "tool_use": return "tool_calls"
        case "refusal": return "content_filter"
        default: return "stop"
        }
    }

    /// The Anthropic `stop_reason` for an OpenAI `finish_reason`.
    ///
    /// `stop` -> `end_turn`; `length` -> `max_tokens`; `tool_calls` and `function_call` -> `tool_use`;
    /// `content_filter` -> `refusal`. Any other reason becomes `end_turn`; `nil` stays `nil`.
    public static func stopReason(fromFinishReason finishReason: String?) -> String? {
        guard let finishReason else { return nil }
        switch finishReason {
        case "length": return "max_tokens"
        case "tool_calls", "function_call": return "tool_use"
        case "content_filter": return "refusal"
        default: return "end_turn"
        }
    }
}

// MARK: - Usage

extension Usage {
    /// Reads an Anthropic `usage` object: `input_tokens` plus `cache_creation_input_tokens` and
    /// `cache_read_input_tokens` are the prompt, `output_tokens` the completion. `nil` when the object
    /// carries neither `input_tokens` nor `output_tokens`.
    public init?(anthropic json: JSON) {
        var tally = AnthropicUsageTally()
        tally.record(json)
        guard let usage = tally.usage else { return nil }
        self = usage
    }

    /// An Anthropic `usage` object (`input_tokens`, `output_tokens`).
    public var anthropicJSON: JSON {
        ["input_tokens": .int(promptTokens), "output_tokens": .int(completionTokens)]
    }
}

/// Token counts of an Anthropic answer as its stream reports them: `message_start` carries the input
/// (and cache) counts, each `message_delta` the cumulative output and sometimes updated input counts.
struct AnthropicUsageTally: Sendable, Equatable {
    var input: Int?
    var cacheCreation = 0
    var cacheRead = 0
    var output: Int?

    /// Records the counts present in a `usage` object; absent counts keep their earlier values.
    /// Returns true when the object carried a token count.
    @discardableResult
    mutating func record(_ json: JSON?) -> Bool {
        guard let json else { return false }
        var recorded = false
        if let value = json["input_tokens"]?.intValue {
            input = value
            recorded = true
        }
        if let value = json["cache_creation_input_tokens"]?.intValue { cacheCreation = value }
        if let value = json["cache_read_input_tokens"]?.intValue { cacheRead = value }
        if let value = json["output_tokens"]?.intValue {
            output = value
            recorded = true
        }
        return recorded
    }

    /// The usage known so far, or `nil` before any token count arrived.
    var usage: Usage? {
        guard input != nil || output != nil else { return nil }
        return Usage(promptTokens: (input ?? 0) + cacheCreation + cacheRead, completionTokens: output ?? 0)
    }
}

// MARK: - Shared pieces of body translation

extension AnthropicTranslation {
    /// The `input` object of a tool call from OpenAI's `arguments` text: blank text is `{}`; anything
    /// that is not a JSON object is `nil`.
    static func toolInput(fromArguments arguments: String) -> JSON? {
        if arguments.allSatisfy(\.isWhitespace) { return .object(JSONObject()) }
        guard let value = try? JSON(parsing: arguments), case .object = value else { return nil }
        return value
    }

    /// An Anthropic image `source` for an OpenAI image URL: a base64 source for a `data:` URL, a URL
    /// source for an `http(s)` URL, `nil` for anything else.
    static func imageSource(fromURL url: String) -> JSON? {
        if url.hasPrefix("data:") {
            guard let comma = url.firstIndex(of: ",") else { return nil }
            let header = url[url.index(url.startIndex, offsetBy: 5)..<comma]
            let parameters = header.split(separator: ";")
            guard let mediaType = parameters.first, parameters.dropFirst().contains("base64") else { return nil }
            let data = url[url.index(after: comma)...]
            return ["type": "base64", "media_type": .string(String(mediaType)), "data": .string(String(data))]
        }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else { return nil }
        return ["type": "url", "url": .string(url)]
    }

    /// The OpenAI image URL for an Anthropic image `source` (a `data:` URL for base64 data).
    static func imageURL(fromSource source: JSON?) -> String? {
        switch source?["type"]?.stringValue {
        case "base64":
            guard let mediaType = source?["media_type"]?.stringValue, let data = source?["data"]?.stringValue else {
                return nil
            }
            return "data:\(mediaType);base64,\(data)"
        case "url": return source?["url"]?.stringValue
        default: return nil
        }
    }

    /// The text of a content value that may only hold text: a string, or an array of `text` parts or
    /// blocks (joined by `separator`). Throws for anything else.
    static func plainText(_ content: JSON?, separator: String, param: String) throws(WireError) -> String {
        switch content {
        case nil, .null?: return ""
        case .string(let text)?: return text
        case .array(let parts)?:
            var texts: [String] = []
            for (index, part) in parts.enumerated() {
                guard part["type"]?.stringValue == "text", let text = part["text"]?.stringValue else {
                    throw WireError("only text content is supported here", param: "\(param)[\(index)]")
                }
                texts.append(text)
            }
            return texts.joined(separator: separator)
        default:
            throw WireError("content must be a string or an array of text parts", param: param)
        }
    }

    /// A number field, `nil` when absent or null; throws when it is not a number.
    static func number(_ object: JSONObject, _ key: String) throws(WireError) -> Double? {
        switch object[key] {
        case nil, .null?: return nil
        case .number(let n)?: return n.double
        default: throw WireError("'\(key)' must be a number", param: key)
        }
    }

    /// A list of stop strings from a string or an array of strings; `nil` when absent, null or empty.
    static func stopList(_ value: JSON?, param: String) throws(WireError) -> JSON? {
        switch value {
        case nil, .null?: return nil
        case .string(let s)?: return s.isEmpty ? nil : [.string(s)]
        case .array(let items)?:
            var stops: [JSON] = []
            for item in items {
                guard let s = item.stringValue else { throw WireError("'\(param)' must hold strings", param: param) }
                if !s.isEmpty { stops.append(.string(s)) }
            }
            return stops.isEmpty ? nil : .array(stops)
        default:
            throw WireError("'\(param)' must be a string or an array of strings", param: param)
        }
    }
}
