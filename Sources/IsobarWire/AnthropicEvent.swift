/// Reading and writing Anthropic's named stream events (`event: <type>` with a `data` object whose
/// `type` is the same name).
enum AnthropicEvent {
    /// The type and body of an upstream Anthropic event; `nil` when its data is not a JSON object.
    /// The type comes from the body's `type`, or the SSE event name when the body has none.
    static func parse(_ event: SSEEvent) -> (type: String, body: JSON)? {
        guard let body = try? JSON(parsing: event.data), case .object = body else { return nil }
        return (body["type"]?.stringValue ?? event.name ?? "", body)
    }

    /// The message of an in-band `error` event.
    static func errorMessage(_ body: JSON) -> String {
        let error = body["error"]
        let message = error?["message"]?.stringValue ?? "upstream stream error"
        guard let type = error?["type"]?.stringValue else { return message }
        return "\(type): \(message)"
    }

    /// Appends `body` as a named event; the name is the body's `type`.
    static func write(_ body: JSON, into out: inout [UInt8]) {
        SSEEvent(name: body["type"]?.stringValue, data: body.bytes).write(into: &out)
    }

    /// Appends the in-band error event an Anthropic client understands.
    static func writeError(_ error: ErrorBody, into out: inout [UInt8]) {
        SSEEvent(name: "error", data: error.anthropicBytes).write(into: &out)
    }

    /// True when a `content_block_delta` carries generated content (text, tool input, thinking).
    static func deltaCarriesContent(_ delta: JSON?) -> Bool {
        switch delta?["type"]?.stringValue {
        case "text_delta": !(delta?["text"]?.stringValue ?? "").isEmpty
        case "input_json_delta": !(delta?["partial_json"]?.stringValue ?? "").isEmpty
        case "thinking_delta": !(delta?["thinking"]?.stringValue ?? "").isEmpty
        default: false
        }
    }
}
