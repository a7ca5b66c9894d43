import IsobarGateway
import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// The HTTP surface of an emulated engine: OpenAI chat/completions/embeddings, Anthropic messages,
/// models, health, and vLLM-named metrics.
struct EmulatorResponder: HTTPResponder {
    let engine: EmulatedEngine
    var configuration: EmulatorConfiguration { engine.configuration }

    func respond(to request: HTTPRequest, with writer: HTTPResponseWriter) {
        let path = request.path
        let anthropic = path == "/v1/messages"
        switch (request.head.method, path) {
        case (.GET, "/health"):
            writer.respond(status: .ok, headers: Self.jsonHeaders, bytes: Array("{}".utf8))
        case (.GET, "/metrics"):
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/plain; version=0.0.4")
            writer.respond(status: .ok, headers: headers, bytes: metrics())
        case (.GET, "/v1/models"):
            let data = configuration.models.map { model -> JSON in
                ["id": .string(model), "object": "model", "owned_by": "isobar-emulator"]
            }
            let body: JSON = ["object": "list", "data": .array(data)]
            writer.respond(status: .ok, headers: Self.jsonHeaders, bytes: body.bytes)
        case (.POST, "/v1/chat/completions"), (.POST, "/v1/completions"), (.POST, "/v1/messages"),
            (.POST, "/v1/embeddings"):
            if let error = refusal(request, anthropic: anthropic) {
                Self.error(writer, error.body, anthropic: anthropic, retryAfter: error.retryAfter)
                return
            }
            let json: JSON
            do {
                json = try JSON(parsing: request.body.readableBytesView)
            } catch {
                Self.error(writer, ErrorBody(status: 400, message: "invalid JSON: \(error)"), anthropic: anthropic)
                return
            }
            let model = json["model"]?.stringValue ?? ""
            if !configuration.models.isEmpty, !configuration.models.contains(model) {
                let body = ErrorBody(
                    status: 404,
                    message: "The model `\(model)` does not exist.",
                    code: "model_not_found"
                )
                Self.error(writer, body, anthropic: anthropic)
                return
            }
            if path == "/v1/embeddings" {
                embeddings(json, model: model, writer: writer)
            } else {
                let format: EmulatedReply.Format =
                    anthropic ? .messages : path == "/v1/completions" ? .completion : .chat
                Generation(
                    engine: engine,
                    writer: writer,
                    format: format,
                    request: json,
                    promptBytes: request.body.readableBytes
                )
                .submit()
            }
        default:
            Self.error(writer, ErrorBody(status: 404, message: "no route for \(path)"), anthropic: anthropic)
        }
    }

    static let jsonHeaders: HTTPHeaders = ["content-type": "application/json"]

    static func error(_ writer: HTTPResponseWriter, _ body: ErrorBody, anthropic: Bool, retryAfter: Int? = nil) {
        var headers = jsonHeaders
        if let retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
        writer.respond(
            status: HTTPResponseStatus(statusCode: body.status),
            headers: headers,
            bytes: anthropic ? body.anthropicBytes : body.openAIBytes
        )
    }

    /// A configured fault or a missing key, if the request must be refused.
    private func refusal(_ request: HTTPRequest, anthropic: Bool) -> (body: ErrorBody, retryAfter: Int?)? {
        if let key = configuration.apiKey {
            let headers = request.head.headers
            let given =
                headers.first(name: "x-api-key")
                ?? headers.first(name: "authorization").map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : $0 }
            if given != key {
                return (ErrorBody(status: 401, message: "Incorrect API key provided", code: "invalid_api_key"), nil)
            }
        }
        if let fault = configuration.fault {
            let message = "emulated failure of \(configuration.name) (HTTP \(fault.status))"
            return (ErrorBody(status: fault.status, message: message), fault.retryAfterSeconds)
        }
        return nil
    }

    private func embeddings(_ json: JSON, model: String, writer: HTTPResponseWriter) {
        let inputs: [String]
        switch json["input"] {
        case .string(let s)?: inputs = [s]
        case .array(let items)?:
            inputs = items.map { $0.stringValue ?? $0.text }
        default:
            Self.error(
                writer,
                ErrorBody(status: 400, message: "'input' must be a string or an array", param: "input"),
                anthropic: false
            )
            return
        }
        let base64 = json["encoding_format"]?.stringValue == "base64"
        var data: [JSON] = []
        var tokens = 0
        for (index, input) in inputs.enumerated() {
            let vector = EmulatedReply.embedding(input)
            tokens += max(1, input.utf8.count / 4)
            let embedding: JSON =
                base64 ? .string(EmulatedReply.base64(vector)) : .array(vector.map { .double(Double($0)) })
            data.append(["object": "embedding", "index": .int(index), "embedding": embedding])
        }
        let body: JSON = [
            "object": "list", "data": .array(data), "model": .string(model),
            "usage": ["prompt_tokens": .int(tokens), "total_tokens": .int(tokens)],
        ]
        writer.respond(status: .ok, headers: Self.jsonHeaders, bytes: body.bytes)
    }

    /// vLLM's metric names, so scrapers written for vLLM read the emulator unchanged.
    private func metrics() -> [UInt8] {
        let s = engine.snapshot
        let profile = configuration.profile
        let model = [("model_name", configuration.models.first ?? configuration.name)]
        var text = PrometheusText()
        text.family("vllm:num_requests_running", .gauge, help: "Number of requests in model execution batches.")
        text.sample("vllm:num_requests_running", model, Double(s.running))
        text.family("vllm:num_requests_waiting", .gauge, help: "Number of requests waiting to be processed.")
        text.sample("vllm:num_requests_waiting", model, Double(s.waiting))
        text.family("vllm:kv_cache_usage_perc", .gauge, help: "KV-cache usage. 1 means 100 percent usage.")
        text.sample("vllm:kv_cache_usage_perc", model, s.kvUsage)
        text.family("vllm:prompt_tokens", .counter, help: "Number of prefill tokens processed.")
        text.sample("vllm:prompt_tokens_total", model, Double(s.counters.promptTokens))
        text.family("vllm:generation_tokens", .counter, help: "Number of generation tokens processed.")
        text.sample("vllm:generation_tokens_total", model, Double(s.counters.generationTokens))
        text.family("vllm:num_preemptions", .counter, help: "Cumulative number of preemptions.")
        text.sample("vllm:num_preemptions_total", model, Double(s.counters.preemptions))
        text.family("vllm:prefix_cache_queries", .counter, help: "Prefix cache queries, in tokens.")
        text.sample("vllm:prefix_cache_queries_total", model, Double(s.counters.prefixQueryTokens))
        text.family("vllm:prefix_cache_hits", .counter, help: "Prefix cache hits, in tokens.")
        text.sample("vllm:prefix_cache_hits_total", model, Double(s.counters.prefixHitTokens))
        text.family("vllm:cache_config_info", .gauge, help: "Information of the KV cache configuration.")
        text.sample(
            "vllm:cache_config_info",
            [
                ("block_size", String(profile.blockSize)), ("num_gpu_blocks", String(profile.numBlocks)),
                ("enable_prefix_caching", profile.prefixCaching ? "True" : "False"),
            ],
            1
        )
        text.family("vllm:num_steps", .counter, help: "Engine steps run (Isobar emulator).")
        text.sample("vllm:num_steps_total", model, Double(s.counters.steps))
        return text.bytes
    }
}

/// One generation request on an emulated engine: queued in the engine model, answered as its tokens are
/// sampled. Event-loop bound.
final class Generation: TokenSink {
    let engine: EmulatedEngine
    let writer: HTTPResponseWriter
    let format: EmulatedReply.Format
    let stream: Bool
    let includeUsage: Bool
    let model: String
    let promptTokens: Int
    let outputTokens: Int
    let hitLimit: Bool
    let id: String
    let created = Int(time(nil))
    private var engineID: UInt64?
    private var emitted = 0
    private var done = false

    init(
        engine: EmulatedEngine,
        writer: HTTPResponseWriter,
        format: EmulatedReply.Format,
        request: JSON,
        promptBytes: Int
    ) {
        self.engine = engine
        self.writer = writer
        self.format = format
        self.stream = request["stream"]?.boolValue ?? false
        self.includeUsage = request["stream_options"]?["include_usage"]?.boolValue ?? false
        self.model = request["model"]?.stringValue ?? ""
        self.promptTokens = max(1, promptBytes / 4)
        let limit = request["max_tokens"]?.intValue ?? request["max_completion_tokens"]?.intValue
        let natural = engine.configuration.defaultOutputTokens
        self.outputTokens = max(1, limit.map { min($0, natural) } ?? natural)
        self.hitLimit = limit.map { $0 <= natural } ?? false
        let prefix = format == .messages ? "msg" : format == .chat ? "chatcmpl" : "cmpl"
        self.id = "\(prefix)-\(engine.configuration.name)-\(UInt32.random(in: 0...UInt32.max))"
    }

    func submit() {
        writer.onClientClose = { self.cancel() }
        let sink = NIOLoopBound<any TokenSink>(self, eventLoop: writer.eventLoop)
        engineID = engine.submit(promptTokens: promptTokens, outputTokens: outputTokens, sink: sink)
    }

    func tokens(_ count: Int, finished: Bool) {
        guard !done else { return }
        if !stream {
            emitted += count
            if finished { answerWhole() }
            return
        }
        var out: [UInt8] = []
        if emitted == 0 {
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream")
            headers.add(name: "cache-control", value: "no-cache")
            writer.writeHead(status: .ok, headers: headers)
            out = EmulatedReply.streamStart(
                format,
                id: id,
                model: model,
                created: created,
                prompt: promptTokens,
                usageNull: includeUsage
            )
        }
        for _ in 0..<count {
            EmulatedReply.streamToken(
                format,
                emitted,
                id: id,
                model: model,
                created: created,
                usageNull: includeUsage,
                into: &out
            )
            emitted += 1
        }
        if finished {
            out += EmulatedReply.streamEnd(
                format,
                id: id,
                model: model,
                created: created,
                prompt: promptTokens,
                output: emitted,
                hitLimit: hitLimit,
                includeUsage: includeUsage
            )
            done = true
        }
        writer.writeBody(writer.allocator.buffer(bytes: out))
        if finished { writer.end() }
    }

    func refused(contextTokens: Int) {
        guard !done else { return }
        done = true
        let message =
            "This model's maximum context length is \(contextTokens) tokens. However, you requested "
            + "\(promptTokens + outputTokens) tokens (\(promptTokens) in the messages, \(outputTokens) in the completion)."
        EmulatorResponder.error(
            writer,
            ErrorBody(status: 400, message: message, code: "context_length_exceeded"),
            anthropic: format == .messages
        )
    }

    private func answerWhole() {
        done = true
        let body = EmulatedReply.whole(
            format,
            id: id,
            model: model,
            created: created,
            output: emitted,
            prompt: promptTokens,
            hitLimit: hitLimit
        )
        writer.respond(status: .ok, headers: EmulatorResponder.jsonHeaders, bytes: body.bytes)
    }

    private func cancel() {
        guard !done else { return }
        done = true
        if let engineID { engine.cancel(engineID) }
    }
}
