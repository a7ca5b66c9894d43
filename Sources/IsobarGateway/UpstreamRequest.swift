import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1

/// The request sent to a backend for one attempt, and how its answer is turned back into the client's
/// dialect.
struct UpstreamRequest {
    var head: HTTPRequestHead
    var body: ByteBuffer

    /// Builds the upstream request: the client's body forwarded as bytes with `model` rewritten when both
    /// sides speak the same dialect, or translated when they do not.
    static func make(
        operation: Operation,
        clientBody: ByteBuffer,
        fields: RequestFields,
        clientHeaders: HTTPHeaders,
        deployment: Deployment,
        backend: Backend,
        requestID: String,
        allocator: ByteBufferAllocator
    ) throws(WireError) -> UpstreamRequest {
        let apiPath: String
        var body: ByteBuffer
        switch (operation, backend.api) {
        case (.chatCompletions, .openai), (.completions, .openai), (.embeddings, .openai):
            apiPath = operation == .chatCompletions ? "/v1/chat/completions" : "/v1/\(operation.rawValue)"
            body = rewrite(clientBody, fields: fields, model: deployment.model, injectUsage: true, allocator)
        case (.messages, .anthropic):
            apiPath = "/v1/messages"
            body = rewrite(clientBody, fields: fields, model: deployment.model, injectUsage: false, allocator)
        case (.chatCompletions, .anthropic):
            apiPath = "/v1/messages"
            let translated = try AnthropicTranslation.messagesRequest(
                fromChat: parse(clientBody),
                model: deployment.model
            )
            body = allocator.buffer(bytes: translated.bytes)
        case (.messages, .openai):
            apiPath = "/v1/chat/completions"
            let translated = try AnthropicTranslation.chatRequest(
                fromMessages: parse(clientBody),
                model: deployment.model
            )
            body = allocator.buffer(bytes: translated.bytes)
        case (.completions, .anthropic), (.embeddings, .anthropic):
            throw WireError("\(operation.rawValue) is not supported by Anthropic backends")
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(8)
        headers.add(name: "host", value: backend.url.hostHeader)
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "user-agent", value: "isobar")
        headers.add(name: "x-request-id", value: requestID)
        if fields.stream { headers.add(name: "accept", value: "text/event-stream") }
        if let version = clientHeaders.first(name: "anthropic-version") {
            headers.addCredentials(of: backend, anthropicVersion: version)
        } else {
            headers.addCredentials(of: backend)
        }
        if backend.api == .anthropic, let beta = clientHeaders.first(name: "anthropic-beta") {
            headers.add(name: "anthropic-beta", value: beta)
        }
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: backend.url.path(apiPath), headers: headers)
        return UpstreamRequest(head: head, body: body)
    }

    /// The stream transcoder for a (client, backend) dialect pair.
    static func transcoder(
        operation: Operation,
        backend: Backend,
        fields: RequestFields,
        deployment: Deployment,
        requestID: String,
        created: Int
    ) -> any StreamTranscoder {
        switch (operation == .messages ? WireAPI.anthropic : .openai, backend.api) {
        case (.openai, .openai): OpenAIStreamRelay(clientWantsUsage: fields.includeUsage)
        case (.openai, .anthropic): AnthropicToOpenAIStream(clientWantsUsage: fields.includeUsage, created: created)
        case (.anthropic, .openai): OpenAIToAnthropicStream(messageID: "msg_\(requestID)", model: deployment.model)
        case (.anthropic, .anthropic): AnthropicStreamRelay()
        }
    }

    /// Turns a complete upstream success body into the client's body and reads its usage.
    /// Same-dialect bodies are passed through untouched.
    static func clientBody(
        _ upstream: ByteBuffer,
        operation: Operation,
        backend: Backend,
        created: Int,
        allocator: ByteBufferAllocator
    ) -> (body: ByteBuffer, usage: Usage?)? {
        switch (operation == .messages ? WireAPI.anthropic : .openai, backend.api) {
        case (.openai, .openai):
            guard let usage = upstream.withUnsafeReadableBytes({ ResponseUsage.scan($0, dialect: .openai) }) else {
                return nil
            }
            return (upstream, usage.usage)
        case (.anthropic, .anthropic):
            guard let usage = upstream.withUnsafeReadableBytes({ ResponseUsage.scan($0, dialect: .anthropic) }) else {
                return nil
            }
            return (upstream, usage.usage)
        case (.openai, .anthropic):
            guard let json = try? parse(upstream), case .object = json else { return nil }
            let translated = AnthropicTranslation.chatCompletion(fromMessage: json, created: created)
            return (allocator.buffer(bytes: translated.bytes), json["usage"].flatMap(Usage.init(anthropic:)))
        case (.anthropic, .openai):
            guard let json = try? parse(upstream), case .object = json else { return nil }
            let translated = AnthropicTranslation.message(fromChatCompletion: json)
            return (allocator.buffer(bytes: translated.bytes), json["usage"].flatMap(Usage.init(openAI:)))
        }
    }

    private static func parse(_ buffer: ByteBuffer) throws(WireError) -> JSON {
        let result = buffer.withUnsafeReadableBytes { JSON.parse($0) }
        switch result {
        case .success(let json): return json
        case .failure(let error): throw WireError("request body is not valid JSON: \(error)")
        }
    }

    private static func rewrite(
        _ body: ByteBuffer,
        fields: RequestFields,
        model: String,
        injectUsage: Bool,
        _ allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        body.withUnsafeReadableBytes { bytes in
            let edits = fields.upstreamEdits(in: bytes, upstreamModel: model, injectUsage: injectUsage)
            var out = allocator.buffer(capacity: bytes.count + 64)
            var cursor = 0
            for edit in edits {
                out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[cursor..<edit.range.lowerBound]))
                out.writeBytes(edit.replacement)
                cursor = edit.range.upperBound
            }
            out.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[cursor...]))
            return out
        }
    }
}

extension HTTPHeaders {
    /// The backend's credentials in its dialect: `authorization: Bearer` (OpenAI), or `x-api-key` with
    /// `anthropic-version` (Anthropic).
    mutating func addCredentials(of backend: Backend, anthropicVersion: String = "2023-06-01") {
        switch backend.api {
        case .openai:
            if let key = backend.apiKey { add(name: "authorization", value: "Bearer \(key.value)") }
        case .anthropic:
            if let key = backend.apiKey { add(name: "x-api-key", value: key.value) }
            add(name: "anthropic-version", value: anthropicVersion)
        }
    }
}
