import IsobarModel

/// The answer of a node's catch-all in `static` mode: a valid completion whose text is the configured
/// content, in the client's dialect, whole or streamed. OpenAI bodies carry
/// `system_fingerprint: "isobar-catch-all"` so clients can tell it from a model's answer; usage is zero,
/// since nothing was generated or billed.
public struct CatchAllAnswer: Sendable {
    public static let fingerprint = "isobar-catch-all"

    public var operation: Operation
    /// The model the client asked for.
    public var model: String
    public var content: String
    /// Response id suffix (the request id).
    public var id: String
    /// Unix seconds.
    public var created: Int

    public init(operation: Operation, model: String, content: String, id: String, created: Int) {
        self.operation = operation
        self.model = model
        self.content = content
        self.id = id
        self.created = created
    }

    /// Embeddings have no answer to give.
    public static func supports(_ operation: Operation) -> Bool { operation.generates }

    /// The whole response body.
    public var body: [UInt8] {
        switch operation {
        case .messages:
            return JSON.object([
                "id": .string("msg_\(id)"), "type": "message", "role": "assistant", "model": .string(model),
                "content": [["type": "text", "text": .string(content)]],
                "stop_reason": "end_turn", "stop_sequence": nil,
                "usage": ["input_tokens": 0, "output_tokens": 0],
            ]).bytes
        case .completions:
            return openAI(
                object: "text_completion",
                choice: ["index": 0, "text": .string(content), "logprobs": nil, "finish_reason": "stop"],
                usage: true
            ).bytes
        case .chatCompletions, .embeddings:
            return openAI(
                object: "chat.completion",
                choice: [
                    "index": 0, "message": ["role": "assistant", "content": .string(content)],
                    "finish_reason": "stop",
                ],
                usage: true
            ).bytes
        }
    }

    /// The events of a streamed answer, ending as a complete stream does (`[DONE]`, or `message_stop`).
    /// `includeUsage`: the OpenAI client asked for `stream_options.include_usage`.
    public func stream(includeUsage: Bool) -> [UInt8] {
        var out: [UInt8] = []
        func event(_ name: String?, _ json: JSON) { SSEEvent(name: name, data: json.bytes).write(into: &out) }
        switch operation {
        case .messages:
            let message: JSON = [
                "id": .string("msg_\(id)"), "type": "message", "role": "assistant", "model": .string(model),
                "content": [], "stop_reason": nil, "stop_sequence": nil,
                "usage": ["input_tokens": 0, "output_tokens": 0],
            ]
            event("message_start", ["type": "message_start", "message": message])
            event(
                "content_block_start",
                ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]
            )
            event(
                "content_block_delta",
                ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": .string(content)]]
            )
            event("content_block_stop", ["type": "content_block_stop", "index": 0])
            event(
                "message_delta",
                [
                    "type": "message_delta", "delta": ["stop_reason": "end_turn", "stop_sequence": nil],
                    "usage": ["output_tokens": 0],
                ]
            )
            event("message_stop", ["type": "message_stop"])
            return out
        case .completions:
            let object = "text_completion"
            event(nil, openAI(object: object, choice: ["index": 0, "text": .string(content), "finish_reason": nil]))
            event(nil, openAI(object: object, choice: ["index": 0, "text": "", "finish_reason": "stop"]))
            if includeUsage { event(nil, openAI(object: object, choice: nil, usage: true)) }
        case .chatCompletions, .embeddings:
            let object = "chat.completion.chunk"
            let first: JSON = [
                "index": 0, "delta": ["role": "assistant", "content": .string(content)], "finish_reason": nil,
            ]
            event(nil, openAI(object: object, choice: first))
            event(nil, openAI(object: object, choice: ["index": 0, "delta": [:], "finish_reason": "stop"]))
            if includeUsage { event(nil, openAI(object: object, choice: nil, usage: true)) }
        }
        out.append(contentsOf: "data: [DONE]\n\n".utf8)
        return out
    }

    /// An OpenAI response or chunk with one choice (none: a usage-only chunk).
    private func openAI(object: String, choice: JSON?, usage: Bool = false) -> JSON {
        var fields: [(key: String, value: JSON)] = [
            ("id", .string((operation == .completions ? "cmpl-" : "chatcmpl-") + id)),
            ("object", .string(object)),
            ("created", .int(created)),
            ("model", .string(model)),
            ("system_fingerprint", .string(Self.fingerprint)),
            ("choices", .array(choice.map { [$0] } ?? [])),
        ]
        if usage { fields.append(("usage", ["prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0])) }
        return .object(JSONObject(fields))
    }
}
