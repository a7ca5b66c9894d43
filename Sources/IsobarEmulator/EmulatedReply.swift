import IsobarModel
import IsobarWire

/// The bodies an emulated engine answers with, in OpenAI and Anthropic form.
enum EmulatedReply {
    /// The API shape of a generation request.
    enum Format {
        case chat, completion, messages
    }

    private static let words = [
        "Isobar ", "balances ", "tokens ", "across ", "regions ", "and ", "engines ", "so ", "every ", "request ",
        "lands ", "where ", "it ", "finishes ", "soonest. ",
    ]

    /// The text of output token `index` (0-based).
    static func token(_ index: Int) -> String { words[index % words.count] }

    /// The whole text of `count` output tokens.
    static func text(tokens count: Int) -> String {
        var s = ""
        for i in 0..<count { s += token(i) }
        return s
    }

    static func finishReason(_ format: Format, hitLimit: Bool) -> String {
        switch format {
        case .chat, .completion: hitLimit ? "length" : "stop"
        case .messages: hitLimit ? "max_tokens" : "end_turn"
        }
    }

    // MARK: - Whole responses

    static func whole(
        _ format: Format,
        id: String,
        model: String,
        created: Int,
        output: Int,
        prompt: Int,
        hitLimit: Bool
    ) -> JSON {
        let text = text(tokens: output)
        let reason = finishReason(format, hitLimit: hitLimit)
        switch format {
        case .chat:
            return [
                "id": .string(id), "object": "chat.completion", "created": .int(created), "model": .string(model),
                "choices": [
                    [
                        "index": 0, "message": ["role": "assistant", "content": .string(text)], "logprobs": nil,
                        "finish_reason": .string(reason),
                    ]
                ],
                "usage": Usage(promptTokens: prompt, completionTokens: output).openAIJSON,
            ]
        case .completion:
            return [
                "id": .string(id), "object": "text_completion", "created": .int(created), "model": .string(model),
                "choices": [["index": 0, "text": .string(text), "logprobs": nil, "finish_reason": .string(reason)]],
                "usage": Usage(promptTokens: prompt, completionTokens: output).openAIJSON,
            ]
        case .messages:
            return [
                "id": .string(id), "type": "message", "role": "assistant", "model": .string(model),
                "content": [["type": "text", "text": .string(text)]],
                "stop_reason": .string(reason), "stop_sequence": nil,
                "usage": ["input_tokens": .int(prompt), "output_tokens": .int(output)],
            ]
        }
    }

    // MARK: - Stream events

    /// Events before the first token.
    static func streamStart(
        _ format: Format,
        id: String,
        model: String,
        created: Int,
        prompt: Int,
        usageNull: Bool
    )
        -> [UInt8]
    {
        var out: [UInt8] = []
        switch format {
        case .chat:
            let delta: JSON = ["role": "assistant", "content": ""]
            SSEEvent(data: chunk(format, id, model, created, delta: delta, reason: nil, usageNull: usageNull).bytes)
                .write(into: &out)
        case .completion:
            break
        case .messages:
            let message: JSON = [
                "id": .string(id), "type": "message", "role": "assistant", "model": .string(model), "content": [],
                "stop_reason": nil, "stop_sequence": nil,
                "usage": ["input_tokens": .int(prompt), "output_tokens": 0],
            ]
            named(&out, "message_start", ["type": "message_start", "message": message])
            named(
                &out,
                "content_block_start",
                ["type": "content_block_start", "index": 0, "content_block": ["type": "text", "text": ""]]
            )
            named(&out, "ping", ["type": "ping"])
        }
        return out
    }

    /// The event carrying output token `index`.
    static func streamToken(
        _ format: Format,
        _ index: Int,
        id: String,
        model: String,
        created: Int,
        usageNull: Bool,
        into out: inout [UInt8]
    ) {
        let text = JSON.string(token(index))
        switch format {
        case .chat:
            SSEEvent(
                data: chunk(format, id, model, created, delta: ["content": text], reason: nil, usageNull: usageNull)
                    .bytes
            ).write(into: &out)
        case .completion:
            SSEEvent(data: chunk(format, id, model, created, delta: text, reason: nil, usageNull: usageNull).bytes)
                .write(into: &out)
        case .messages:
            named(
                &out,
                "content_block_delta",
                ["type": "content_block_delta", "index": 0, "delta": ["type": "text_delta", "text": text]]
            )
        }
    }

    /// Events after the last token.
    static func streamEnd(
        _ format: Format,
        id: String,
        model: String,
        created: Int,
        prompt: Int,
        output: Int,
        hitLimit: Bool,
        includeUsage: Bool
    ) -> [UInt8] {
        var out: [UInt8] = []
        let reason = JSON.string(finishReason(format, hitLimit: hitLimit))
        switch format {
        case .chat, .completion:
            let empty: JSON = format == .chat ? [:] : ""
            SSEEvent(
                data: chunk(format, id, model, created, delta: empty, reason: reason, usageNull: includeUsage).bytes
            )
            .write(into: &out)
            if includeUsage {
                var usageChunk = chunkHeader(format, id, model, created)
                usageChunk["choices"] = []
                usageChunk["usage"] = Usage(promptTokens: prompt, completionTokens: output).openAIJSON
                SSEEvent(data: JSON.object(usageChunk).bytes).write(into: &out)
            }
            SSEEvent(data: "[DONE]").write(into: &out)
        case .messages:
            named(&out, "content_block_stop", ["type": "content_block_stop", "index": 0])
            named(
                &out,
                "message_delta",
                [
                    "type": "message_delta", "delta": ["stop_reason": reason, "stop_sequence": nil],
                    "usage": ["output_tokens": .int(output)],
                ]
            )
            named(&out, "message_stop", ["type": "message_stop"])
        }
        return out
    }

    private static func chunkHeader(_ format: Format, _ id: String, _ model: String, _ created: Int) -> JSONObject {
        [
            "id": .string(id), "object": format == .chat ? "chat.completion.chunk" : "text_completion",
            "created": .int(created), "model": .string(model),
        ]
    }

    private static func chunk(
        _ format: Format,
        _ id: String,
        _ model: String,
        _ created: Int,
        delta: JSON,
        reason: JSON?,
        usageNull: Bool
    ) -> JSON {
        var object = chunkHeader(format, id, model, created)
        var choice: JSONObject = ["index": 0]
        if format == .chat { choice["delta"] = delta } else { choice["text"] = delta }
        choice["logprobs"] = .null
        choice["finish_reason"] = reason ?? .null
        object["choices"] = [.object(choice)]
        if usageNull { object["usage"] = .null }
        return .object(object)
    }

    private static func named(_ out: inout [UInt8], _ name: String, _ data: JSON) {
        SSEEvent(name: name, data: data.bytes).write(into: &out)
    }

    // MARK: - Embeddings

    /// A deterministic unit vector for `text` (FNV-1a seeded), `dimensions` long.
    static func embedding(_ text: String, dimensions: Int = 16) -> [Float] {
        var rng = Xoshiro256(seed: FNV1a.hash64(text))
        var vector = (0..<dimensions).map { _ in Float.random(in: -1...1, using: &rng) }
        let norm = vector.reduce(0) { $0 + $1 * $1 }.squareRoot()
        if norm > 0 { vector = vector.map { $0 / norm } }
        return vector
    }

    /// Little-endian float32 bytes in base64, as OpenAI's `encoding_format: base64` returns.
    static func base64(_ vector: [Float]) -> String {
        var bytes: [UInt8] = []
        for value in vector {
            let bits = value.bitPattern
            bytes += [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
        }
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i])
            let b1 = n > 1 ? UInt32(bytes[i + 1]) : 0
            let b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            out.append(table[Int(triple >> 18 & 63)])
            out.append(table[Int(triple >> 12 & 63)])
            out.append(n > 1 ? table[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? table[Int(triple & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
