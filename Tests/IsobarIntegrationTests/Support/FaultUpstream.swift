import IsobarGateway
import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1
import Synchronization

/// A scriptable upstream for fault injection: every request is recorded and answered by the test's
/// `behaviour`, which can answer, stream, stall, or cut the connection.
final class FaultUpstream: HTTPResponder, Sendable {
    struct Received: Sendable {
        var path: String
        var headers: HTTPHeaders
        var body: [UInt8]
        var at: Instant
        var json: JSON? { try? JSON(parsing: body) }
    }

    typealias Behaviour = @Sendable (_ request: HTTPRequest, _ writer: HTTPResponseWriter, _ index: Int) -> Void

    private let behaviour: Behaviour
    private let metrics: Behaviour?
    private let log = Mutex<[Received]>([])
    private let closed = Mutex<Int>(0)
    private let scrapes = Mutex<Int>(0)
    private let probes = Mutex<[Instant]>([])

    private let recording: Bool
    /// API requests received so far: the index handed to `behaviour`.
    private let count = Mutex<Int>(0)

    /// An upstream answering API requests with `behaviour`. The gateway's metric scrapes (`GET /metrics`,
    /// `GET /slots`) go to `metrics` (404 without one) and are counted apart, not in `received`. Without
    /// `recording`, `received` stays empty, so a long soak does not grow the test's memory.
    init(metrics: Behaviour? = nil, recording: Bool = true, _ behaviour: @escaping Behaviour) {
        self.metrics = metrics
        self.recording = recording
        self.behaviour = behaviour
    }

    /// Requests received so far, scrapes excluded.
    var received: [Received] { log.withLock { $0 } }
    /// Responses the client (the gateway) walked away from before they ended.
    var clientClosedCount: Int { closed.withLock { $0 } }
    /// Metric scrapes received so far.
    var scrapeCount: Int { scrapes.withLock { $0 } }
    /// When the gateway's health probes (`GET /v1/models`) arrived; they are not in `received`.
    var probeTimes: [Instant] { probes.withLock { $0 } }

    func respond(to request: HTTPRequest, with writer: HTTPResponseWriter) {
        if request.head.method == .GET, request.path == "/metrics" || request.path == "/slots" {
            let index = scrapes.withLock { count in
                count += 1
                return count - 1
            }
            guard let metrics else {
                writer.respond(status: .notFound, headers: [:], bytes: Array("not found".utf8))
                return
            }
            metrics(request, writer, index)
            return
        }
        if request.head.method == .GET, request.path == "/v1/models" {
            probes.withLock { $0.append(MonotonicClock.now()) }
            Upstream.json(writer, #"{"object":"list","data":[]}"#)
            return
        }
        let index = count.withLock { count in
            count += 1
            return count - 1
        }
        if recording {
            log.withLock { log in
                log.append(
                    Received(
                        path: String(request.path),
                        headers: request.head.headers,
                        body: Array(request.body.readableBytesView),
                        at: MonotonicClock.now()
                    )
                )
            }
        }
        writer.onClientClose = { self.closed.withLock { $0 += 1 } }
        behaviour(request, writer, index)
    }

    func start(group: any EventLoopGroup) async throws -> (channel: any Channel, port: Int) {
        let channel = try await HTTPServer(group: group, responder: self, maxBodyBytes: 64 << 20)
            .bind(host: "127.0.0.1", port: 0)
        return (channel, channel.localAddress!.port!)
    }
}

// MARK: - Canned upstream answers

enum Upstream {
    static func json(
        _ writer: HTTPResponseWriter,
        status: HTTPResponseStatus = .ok,
        _ body: String,
        headers: [(String, String)] = []
    ) {
        var h = HTTPHeaders([("content-type", "application/json")])
        for (name, value) in headers { h.add(name: name, value: value) }
        writer.respond(status: status, headers: h, bytes: Array(body.utf8))
    }

    static func completion(
        model: String,
        content: String = "Hello there",
        prompt: Int = 7,
        completion: Int = 3
    ) -> String {
        """
        {"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"\(model)","choices":[{"index":0,\
        "message":{"role":"assistant","content":"\(content)"},"finish_reason":"stop"}],\
        "usage":{"prompt_tokens":\(prompt),"completion_tokens":\(completion),"total_tokens":\(prompt + completion)}}
        """
    }

    static func chunk(model: String, content: String? = nil, role: Bool = false, finish: String? = nil) -> String {
        var delta: [String] = []
        if role { delta.append(#""role":"assistant""#) }
        if let content { delta.append("\"content\":\"\(content)\"") }
        let reason = finish.map { "\"\($0)\"" } ?? "null"
        return """
            data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"\(model)","choices":[{"index":0,\
            "delta":{\(delta.joined(separator: ","))},"finish_reason":\(reason)}],"usage":null}\n\n
            """
    }

    static func usageChunk(model: String, prompt: Int = 7, completion: Int) -> String {
        """
        data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"\(model)","choices":[],\
        "usage":{"prompt_tokens":\(prompt),"completion_tokens":\(completion),"total_tokens":\(prompt + completion)}}\n\n
        """
    }

    /// The request body as JSON, if it is JSON.
    static func body(_ request: HTTPRequest) -> JSON? { try? JSON(parsing: request.body.readableBytesView) }

    /// The request asks for a stream.
    static func wantsStream(_ request: HTTPRequest) -> Bool { body(request)?["stream"]?.boolValue == true }

    static func startStream(_ writer: HTTPResponseWriter) {
        writer.writeHead(status: .ok, headers: ["content-type": "text/event-stream"])
    }

    static func write(_ writer: HTTPResponseWriter, _ text: String) {
        writer.writeBody(writer.allocator.buffer(string: text))
    }

    /// Streams `tokens` one per `intervalMs`, then the finish chunk, a usage chunk when asked for, and
    /// `[DONE]`. `cutAfter` closes the connection after that many tokens instead.
    static func stream(
        _ writer: HTTPResponseWriter,
        request: HTTPRequest,
        model: String,
        tokens: [String],
        intervalMs: Int64 = 0,
        cutAfter: Int? = nil,
        done: Bool = true
    ) {
        let wantsUsage = body(request)?["stream_options"]?["include_usage"]?.boolValue ?? false
        startStream(writer)
        write(writer, chunk(model: model, content: "", role: true))
        let loop = writer.eventLoop
        func emit(_ i: Int) {
            if let cutAfter, i == cutAfter {
                writer.abort()
                return
            }
            if i == tokens.count {
                var tail = chunk(model: model, finish: "stop")
                if wantsUsage { tail += usageChunk(model: model, completion: tokens.count) }
                if done { tail += "data: [DONE]\n\n" }
                write(writer, tail)
                writer.end()
                return
            }
            write(writer, chunk(model: model, content: tokens[i]))
            if intervalMs > 0 {
                loop.assumeIsolated().scheduleTask(in: .milliseconds(intervalMs)) { emit(i + 1) }
            } else {
                emit(i + 1)
            }
        }
        emit(0)
    }
}
