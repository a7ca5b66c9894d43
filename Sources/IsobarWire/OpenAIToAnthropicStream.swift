import IsobarModel

/// Translates an OpenAI chat.completion.chunk stream (upstream) into an Anthropic Messages stream for an
/// Anthropic client.
///
/// The first upstream chunk opens the message (`message_start` with `messageID` and `model`, empty
/// content, zero usage). Text opens one `text` block and streams `text_delta`s; each tool call closes
/// the open block, opens a `tool_use` block (`input: {}`) and streams its arguments as
/// `input_json_delta` fragments; `finish_reason` closes the open block. At `[DONE]` the remembered stop
/// reason and usage go out in `message_delta`, then `message_stop`. Reasoning text has no place in an
/// Anthropic answer the client did not ask to think, so it is dropped (it still counts as content).
///
/// Parallel tool calls must arrive one after another, as OpenAI sends them: arguments of a call whose
/// block was already closed cannot be placed and fail the stream.
public struct OpenAIToAnthropicStream: StreamTranscoder {
    /// The `id` of the message the client sees.
    public let messageID: String
    /// The `model` of the message the client sees.
    public let model: String

    private enum Block: Sendable, Equatable {
        case none
        case text(block: Int)
        case tool(block: Int, call: Int, id: String)
    }

    private var started = false
    private var nextBlock = 0
    private var open = Block.none
    /// OpenAI tool-call indices that already have a block.
    private var startedCalls: Set<Int> = []
    private var sawFinish = false
    private var stopReason: String?
    private var usage: Usage?

    public init(messageID: String, model: String) {
        self.messageID = messageID
        self.model = model
    }

    public mutating func translate(_ event: SSEEvent, into out: inout [UInt8]) -> StreamProgress {
        if event.isDone {
            writeEnd(into: &out)
            return StreamProgress(finished: true)
        }
        guard let chunk = try? JSON(parsing: event.data), case .object = chunk else {
            return StreamProgress(failure: "upstream sent a stream event that is not a JSON object")
        }
        if let error = chunk["error"], !error.isNull {
            return StreamProgress(
                failure: error["message"]?.stringValue ?? error.stringValue ?? "upstream stream error"
            )
        }
        startIfNeeded(into: &out)
        var progress = StreamProgress()
        let choices = chunk["choices"]?.arrayValue ?? []
        if let choice = choices.first(where: { ($0["index"]?.intValue ?? 0) == 0 }) {
            do throws(StreamFailure) {
                progress.content = try translate(choice, into: &out)
            } catch {
                return StreamProgress(failure: error.message)
            }
        }
        if let reported = chunk["usage"].flatMap(Usage.init(openAI:)) {
            usage = reported
            progress.usage = reported
        }
        return progress
    }

    public mutating func finishWithoutMarker(into out: inout [UInt8]) -> Bool {
        guard sawFinish else { return false }
        writeEnd(into: &out)
        return true
    }

    public func writeError(_ error: ErrorBody, into out: inout [UInt8]) {
        AnthropicEvent.writeError(error, into: &out)
    }

    // MARK: - Choice

    private struct StreamFailure: Error {
        var message: String
    }

    /// Writes the events of one choice; returns true when it carried content or a finish reason.
    private mutating func translate(_ choice: JSON, into out: inout [UInt8]) throws(StreamFailure) -> Bool {
        let delta = choice["delta"]
        var content = false
        let text = delta?["content"]?.stringValue ?? delta?["refusal"]?.stringValue ?? ""
        if !text.isEmpty {
            writeText(text, into: &out)
            content = true
        }
        let reasoning = delta?["reasoning_content"]?.stringValue ?? delta?["reasoning"]?.stringValue ?? ""
        if !reasoning.isEmpty { content = true }
        for call in delta?["tool_calls"]?.arrayValue ?? [] {
            try writeToolFragment(call, into: &out)
            content = true
        }
        if let finish = choice["finish_reason"]?.stringValue {
            closeBlock(into: &out)
            sawFinish = true
            stopReason = AnthropicTranslation.stopReason(fromFinishReason: finish)
            content = true
        }
        return content
    }

    private mutating func writeText(_ text: String, into out: inout [UInt8]) {
        let block: Int
        if case .text(let current) = open {
            block = current
        } else {
            closeBlock(into: &out)
            block = openBlock(.text(block: nextBlock), content: ["type": "text", "text": ""], into: &out)
        }
        let delta: JSON = ["type": "text_delta", "text": .string(text)]
        AnthropicEvent.write(["type": "content_block_delta", "index": .int(block), "delta": delta], into: &out)
    }

    private mutating func writeToolFragment(_ call: JSON, into out: inout [UInt8]) throws(StreamFailure) {
        let id = call["id"]?.stringValue
        let block: Int
        let callIndex: Int
        switch (call["index"]?.intValue, open) {
        case (let index?, _): callIndex = index
        case (nil, .tool(_, let current, let currentID)) where id == nil || id == currentID: callIndex = current
        default: callIndex = (startedCalls.max() ?? -1) + 1
        }
        if case .tool(let current, callIndex, _) = open {
            block = current
        } else {
            guard !startedCalls.contains(callIndex) else {
                throw StreamFailure(message: "upstream interleaved the arguments of parallel tool calls")
            }
            closeBlock(into: &out)
            startedCalls.insert(callIndex)
            let toolID = id ?? "toolu_\(messageID)_\(callIndex)"
            let name = call["function"]?["name"] ?? ""
            let content: JSON = ["type": "tool_use", "id": .string(toolID), "name": name, "input": [:]]
            block = openBlock(.tool(block: nextBlock, call: callIndex, id: toolID), content: content, into: &out)
        }
        let arguments = call["function"]?["arguments"]?.stringValue ?? ""
        guard !arguments.isEmpty else { return }
        let delta: JSON = ["type": "input_json_delta", "partial_json": .string(arguments)]
        AnthropicEvent.write(["type": "content_block_delta", "index": .int(block), "delta": delta], into: &out)
    }

    // MARK: - Message and blocks

    private mutating func startIfNeeded(into out: inout [UInt8]) {
        guard !started else { return }
        started = true
        let message: JSON = [
            "id": .string(messageID), "type": "message", "role": "assistant", "model": .string(model), "content": [],
            "stop_reason": nil, "stop_sequence": nil, "usage": Usage().anthropicJSON,
        ]
        AnthropicEvent.write(["type": "message_start", "message": message], into: &out)
    }

    /// Opens `block` (which uses the next block index) and returns its index.
    private mutating func openBlock(_ block: Block, content: JSON, into out: inout [UInt8]) -> Int {
        let index = nextBlock
        nextBlock += 1
        open = block
        AnthropicEvent.write(
            ["type": "content_block_start", "index": .int(index), "content_block": content],
            into: &out
        )
        return index
    }

    private mutating func closeBlock(into out: inout [UInt8]) {
        let index: Int
        switch open {
        case .none: return
        case .text(let block), .tool(let block, _, _): index = block
        }
        open = .none
        AnthropicEvent.write(["type": "content_block_stop", "index": .int(index)], into: &out)
    }

    private mutating func writeEnd(into out: inout [UInt8]) {
        startIfNeeded(into: &out)
        closeBlock(into: &out)
        let known = usage ?? Usage()
        let delta: JSON = ["stop_reason": stopReason.map(JSON.string) ?? .null, "stop_sequence": nil]
        let counts: JSON = ["output_tokens": .int(known.completionTokens), "input_tokens": .int(known.promptTokens)]
        AnthropicEvent.write(["type": "message_delta", "delta": delta, "usage": counts], into: &out)
        AnthropicEvent.write(["type": "message_stop"], into: &out)
    }
}
