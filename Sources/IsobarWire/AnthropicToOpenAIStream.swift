import IsobarModel

/// Translates an Anthropic Messages stream (upstream) into an OpenAI chat.completion.chunk stream for an
/// OpenAI client.
///
/// `message_start` becomes the first chunk (`delta: {role: assistant, content: ""}`), text deltas become
/// `delta.content`, `tool_use` blocks become `delta.tool_calls` (indexed among tool blocks only, the
/// arguments streamed as the upstream's `input_json_delta` fragments), thinking deltas become
/// `delta.reasoning_content`, `message_delta` becomes the chunk with `finish_reason`, and `message_stop`
/// becomes the usage-only chunk (when the client asked for it) and `data: [DONE]`. Every chunk carries
/// the message's `id` and `model` and the caller's `created`.
public struct AnthropicToOpenAIStream: StreamTranscoder {
    /// The client asked for `stream_options.include_usage`.
    public let clientWantsUsage: Bool
    /// Unix seconds stamped on every chunk.
    public let created: Int
    private var id = ""
    private var model = ""
    /// Tool index (OpenAI) of each upstream content block that is a `tool_use` block.
    private var toolIndexByBlock: [Int: Int] = [:]
    private var tally = AnthropicUsageTally()
    private var sawStop = false

    public init(clientWantsUsage: Bool, created: Int) {
        self.clientWantsUsage = clientWantsUsage
        self.created = created
    }

    public mutating func translate(_ event: SSEEvent, into out: inout [UInt8]) -> StreamProgress {
        guard let (type, body) = AnthropicEvent.parse(event) else {
            return StreamProgress(failure: "upstream sent a stream event that is not a JSON object")
        }
        switch type {
        case "message_start":
            return messageStart(body["message"], into: &out)
        case "content_block_start":
            return blockStart(body["content_block"], index: body["index"]?.intValue ?? 0, into: &out)
        case "content_block_delta":
            return blockDelta(body["delta"], index: body["index"]?.intValue ?? 0, into: &out)
        case "message_delta":
            return messageDelta(body, into: &out)
        case "message_stop":
            writeEnd(into: &out)
            return StreamProgress(finished: true)
        case "error":
            return StreamProgress(failure: AnthropicEvent.errorMessage(body))
        default:
            // ping, content_block_stop and event types added later carry nothing for the client.
            return StreamProgress()
        }
    }

    public mutating func finishWithoutMarker(into out: inout [UInt8]) -> Bool {
        guard sawStop else { return false }
        writeEnd(into: &out)
        return true
    }

    public func writeError(_ error: ErrorBody, into out: inout [UInt8]) {
        SSEEvent(data: error.openAIBytes).write(into: &out)
    }

    // MARK: - Events

    private mutating func messageStart(_ message: JSON?, into out: inout [UInt8]) -> StreamProgress {
        id = message?["id"]?.stringValue ?? id
        model = message?["model"]?.stringValue ?? model
        let reported = tally.record(message?["usage"])
        writeChunk(delta: ["role": "assistant", "content": ""], into: &out)
        return StreamProgress(usage: reported ? tally.usage : nil)
    }

    private mutating func blockStart(_ block: JSON?, index: Int, into out: inout [UInt8]) -> StreamProgress {
        switch block?["type"]?.stringValue {
        case "tool_use":
            let toolIndex = toolIndexByBlock.count
            toolIndexByBlock[index] = toolIndex
            let call: JSON = [
                "index": .int(toolIndex), "id": block?["id"] ?? "", "type": "function",
                "function": ["name": block?["name"] ?? "", "arguments": ""],
            ]
            writeChunk(delta: ["tool_calls": [call]], into: &out)
            return StreamProgress(content: true)
        case "text":
            return blockDelta(["type": "text_delta", "text": block?["text"] ?? ""], index: index, into: &out)
        case "thinking":
            return blockDelta(
                ["type": "thinking_delta", "thinking": block?["thinking"] ?? ""],
                index: index,
                into: &out
            )
        default:
            return StreamProgress()
        }
    }

    private mutating func blockDelta(_ delta: JSON?, index: Int, into out: inout [UInt8]) -> StreamProgress {
        guard AnthropicEvent.deltaCarriesContent(delta) else { return StreamProgress() }
        switch delta?["type"]?.stringValue {
        case "text_delta":
            writeChunk(delta: ["content": delta?["text"] ?? ""], into: &out)
        case "thinking_delta":
            writeChunk(delta: ["reasoning_content": delta?["thinking"] ?? ""], into: &out)
        default:
            // input_json_delta of a block that is not a client tool call (a server tool) has no OpenAI form.
            guard let toolIndex = toolIndexByBlock[index] else { return StreamProgress() }
            let call: JSON = ["index": .int(toolIndex), "function": ["arguments": delta?["partial_json"] ?? ""]]
            writeChunk(delta: ["tool_calls": [call]], into: &out)
        }
        return StreamProgress(content: true)
    }

    private mutating func messageDelta(_ body: JSON, into out: inout [UInt8]) -> StreamProgress {
        let reported = tally.record(body["usage"])
        var progress = StreamProgress(usage: reported ? tally.usage : nil)
        if let stop = body["delta"]?["stop_reason"]?.stringValue {
            sawStop = true
            writeChunk(delta: [:], finishReason: AnthropicTranslation.finishReason(fromStopReason: stop), into: &out)
            progress.content = true
        }
        return progress
    }

    // MARK: - Chunks

    private func writeEnd(into out: inout [UInt8]) {
        if clientWantsUsage, let usage = tally.usage {
            var chunk = header
            chunk["choices"] = []
            chunk["usage"] = usage.openAIJSON
            SSEEvent(data: JSON.object(chunk).bytes).write(into: &out)
        }
        SSEEvent(data: "[DONE]").write(into: &out)
    }

    private var header: JSONObject {
        ["id": .string(id), "object": "chat.completion.chunk", "created": .int(created), "model": .string(model)]
    }

    private func writeChunk(delta: JSON, finishReason: String? = nil, into out: inout [UInt8]) {
        var chunk = header
        let choice: JSON = [
            "index": 0, "delta": delta, "logprobs": nil, "finish_reason": finishReason.map(JSON.string) ?? .null,
        ]
        chunk["choices"] = [choice]
        SSEEvent(data: JSON.object(chunk).bytes).write(into: &out)
    }
}
