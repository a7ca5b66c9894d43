import IsobarModel

/// The relay between an Anthropic upstream stream and an Anthropic client: every event passes through
/// unchanged, while the relay still learns what the gateway needs.
///
/// Content: text, tool-input and thinking deltas, the start of a `tool_use` (or `server_tool_use`,
/// `redacted_thinking`) block, and the stop reason of `message_delta`. Usage: input counts of `message_start` merged with the counts of each
/// `message_delta`. Finished: `message_stop`. Failure: an `error` event (not forwarded: the gateway
/// writes its own error through `writeError`) or an event that is not a JSON object.
public struct AnthropicStreamRelay: StreamTranscoder {
    private var tally = AnthropicUsageTally()
    private var sawStop = false

    public init() {}

    public mutating func translate(_ event: SSEEvent, into out: inout [UInt8]) -> StreamProgress {
        guard let (type, body) = AnthropicEvent.parse(event) else {
            return StreamProgress(failure: "upstream sent a stream event that is not a JSON object")
        }
        var progress = StreamProgress()
        switch type {
        case "error":
            return StreamProgress(failure: AnthropicEvent.errorMessage(body))
        case "message_start":
            if tally.record(body["message"]?["usage"]) { progress.usage = tally.usage }
        case "content_block_start":
            let block = body["content_block"]
            switch block?["type"]?.stringValue {
            case "tool_use", "server_tool_use", "redacted_thinking": progress.content = true
            default:
                progress.content =
                    !(block?["text"]?.stringValue ?? "").isEmpty || !(block?["thinking"]?.stringValue ?? "").isEmpty
            }
        case "content_block_delta":
            progress.content = AnthropicEvent.deltaCarriesContent(body["delta"])
        case "message_delta":
            if tally.record(body["usage"]) { progress.usage = tally.usage }
            if let stop = body["delta"]?["stop_reason"], !stop.isNull {
                sawStop = true
                progress.content = true
            }
        case "message_stop":
            progress.finished = true
        default:
            break
        }
        event.write(into: &out)
        return progress
    }

    public mutating func finishWithoutMarker(into out: inout [UInt8]) -> Bool {
        guard sawStop else { return false }
        AnthropicEvent.write(["type": "message_stop"], into: &out)
        return true
    }

    public func writeError(_ error: ErrorBody, into out: inout [UInt8]) {
        AnthropicEvent.writeError(error, into: &out)
    }
}
