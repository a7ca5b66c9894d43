import IsobarModel

/// What one upstream stream event meant to the relay.
public struct StreamProgress: Sendable, Equatable {
    /// The event carried generated content (or ended the answer): the relay may commit to this upstream.
    public var content: Bool
    /// The event was the upstream's end marker (`[DONE]`, `message_stop`).
    public var finished: Bool
    /// Token usage, when the event reported it.
    public var usage: Usage?
    /// The upstream reported an error in-band, or sent an event that cannot be understood.
    public var failure: String?

    public init(content: Bool = false, finished: Bool = false, usage: Usage? = nil, failure: String? = nil) {
        self.content = content
        self.finished = finished
        self.usage = usage
        self.failure = failure
    }
}

/// Turns upstream stream events into the client's stream, event by event.
///
/// One conformer per (client dialect, upstream dialect) pair. A transcoder is fed every upstream event in
/// order; it appends what the client should receive to `out` and reports what the event meant. It never
/// buffers across events except for translation state (block indices, usage so far).
public protocol StreamTranscoder: Sendable {
    /// Handles one upstream event.
    mutating func translate(_ event: SSEEvent, into out: inout [UInt8]) -> StreamProgress

    /// The upstream body ended cleanly without an end marker. Appends whatever finishes the client's
    /// stream honestly and returns true, or returns false if the answer is incomplete (no finish reason
    /// was seen), in which case the relay ends the stream with an error.
    mutating func finishWithoutMarker(into out: inout [UInt8]) -> Bool

    /// Appends an in-band error event in the client's dialect. After it the stream ends, with no end marker.
    func writeError(_ error: ErrorBody, into out: inout [UInt8])
}

/// The relay between an OpenAI-compatible upstream stream and an OpenAI client: events pass through
/// unchanged, except the usage-only chunk the gateway asked for on the client's behalf.
public struct OpenAIStreamRelay: StreamTranscoder {
    /// The client asked for `stream_options.include_usage`.
    public let clientWantsUsage: Bool
    private var sawFinish = false
    private var usage: Usage?

    public init(clientWantsUsage: Bool) {
        self.clientWantsUsage = clientWantsUsage
    }

    public mutating func translate(_ event: SSEEvent, into out: inout [UInt8]) -> StreamProgress {
        if event.isDone {
            event.write(into: &out)
            return StreamProgress(finished: true)
        }
        let inspection = event.data.withUnsafeBytes { OpenAIChunk.inspect($0) }
        guard let inspection else {
            return StreamProgress(failure: "upstream sent a stream event that is not a JSON object")
        }
        if let failure = inspection.error { return StreamProgress(failure: failure) }
        if inspection.finishes { sawFinish = true }
        if let chunkUsage = inspection.usage { usage = chunkUsage }
        // The usage-only chunk exists because the gateway asked for it; drop it unless the client did too.
        if !(inspection.usage != nil && inspection.choicesEmpty && !clientWantsUsage) {
            event.write(into: &out)
        }
        return StreamProgress(content: inspection.hasContent || inspection.finishes, usage: inspection.usage)
    }

    public mutating func finishWithoutMarker(into out: inout [UInt8]) -> Bool {
        guard sawFinish else { return false }
        SSEEvent(data: "[DONE]").write(into: &out)
        return true
    }

    public func writeError(_ error: ErrorBody, into out: inout [UInt8]) {
        SSEEvent(data: error.openAIBytes).write(into: &out)
    }
}

/// What the relay needs from an OpenAI stream chunk or response body, found by scanning.
public struct OpenAIChunk: Sendable, Equatable {
    /// A choice carries text, a tool call, reasoning or a refusal.
    public var hasContent = false
    /// A choice has a non-null `finish_reason`.
    public var finishes = false
    /// `choices` is absent or empty.
    public var choicesEmpty = true
    public var usage: Usage?
    /// The message of an `error` object, if the chunk is an error.
    public var error: String?

    /// Inspects a chunk; `nil` if it is not a JSON object.
    public static func inspect(_ bytes: UnsafeRawBufferPointer) -> OpenAIChunk? {
        var chunk = OpenAIChunk()
        do throws(JSONError) {
            _ = try JSONScanner.forEachField(in: bytes) { key, _, range in
                if JSONScanner.key(key, is: "choices") {
                    guard case .array(let choices)? = JSONScanner.value(in: bytes, at: range) else { return }
                    chunk.choicesEmpty = choices.isEmpty
                    for choice in choices {
                        if let reason = choice["finish_reason"], !reason.isNull { chunk.finishes = true }
                        if Self.carriesContent(choice) { chunk.hasContent = true }
                    }
                } else if JSONScanner.key(key, is: "usage") {
                    guard !JSONScanner.isNull(bytes, range) else { return }
                    chunk.usage = JSONScanner.value(in: bytes, at: range).flatMap(Usage.init(openAI:))
                } else if JSONScanner.key(key, is: "error"), !JSONScanner.isNull(bytes, range) {
                    let value = JSONScanner.value(in: bytes, at: range)
                    chunk.error = value?["message"]?.stringValue ?? value?.stringValue ?? "upstream stream error"
                }
            }
        } catch {
            return nil
        }
        return chunk
    }

    private static func carriesContent(_ choice: JSON) -> Bool {
        func nonEmpty(_ value: JSON?) -> Bool {
            switch value {
            case .string(let s)?: !s.isEmpty
            case .array(let a)?: !a.isEmpty
            case .object?: true
            default: false
            }
        }
        if nonEmpty(choice["text"]) { return true }
        guard let delta = choice["delta"] ?? choice["message"] else { return false }
        return nonEmpty(delta["content"]) || nonEmpty(delta["tool_calls"]) || nonEmpty(delta["function_call"])
            || nonEmpty(delta["reasoning_content"]) || nonEmpty(delta["reasoning"]) || nonEmpty(delta["refusal"])
    }
}

extension Usage {
    /// Reads an OpenAI `usage` object (`prompt_tokens`, `completion_tokens`).
    public init?(openAI json: JSON) {
        guard let prompt = json["prompt_tokens"]?.intValue else { return nil }
        self.init(promptTokens: prompt, completionTokens: json["completion_tokens"]?.intValue ?? 0)
    }

    /// An OpenAI `usage` object.
    public var openAIJSON: JSON {
        [
            "prompt_tokens": .int(promptTokens), "completion_tokens": .int(completionTokens),
            "total_tokens": .int(totalTokens),
        ]
    }
}

/// The usage of a complete (non-streaming) response body, read by scanning only its `usage` field.
public struct ResponseUsage: Sendable, Equatable {
    public var usage: Usage?

    /// Scans a response body; `nil` if it is not a JSON object.
    public static func scan(_ bytes: UnsafeRawBufferPointer, dialect: WireAPI) -> ResponseUsage? {
        var result = ResponseUsage()
        do {
            _ = try JSONScanner.forEachField(in: bytes) { key, _, range in
                guard JSONScanner.key(key, is: "usage"), let value = JSONScanner.value(in: bytes, at: range) else {
                    return
                }
                result.usage = dialect == .openai ? Usage(openAI: value) : Usage(anthropic: value)
            }
        } catch {
            return nil
        }
        return result
    }
}
