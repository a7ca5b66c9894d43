import IsobarGateway
import IsobarModel
import NIOCore
import NIOHTTP1
import NIOPosix

/// What a test client received.
struct TestResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    /// Each body part with the time it arrived after the request was sent.
    var parts: [(at: Duration, bytes: Int)]
    /// The connection closed before the response ended.
    var truncated: Bool

    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first(name: name) }

    /// The `data:` payloads of an SSE body.
    var events: [String] {
        text.components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }
}

/// A minimal HTTP/1.1 client on real sockets, for loopback tests. One request per connection.
enum TestHTTPClient {
    /// Sends a request. `onPart` sees each body part; returning false closes the connection at once
    /// (a client that goes away mid-response).
    static func send(
        port: Int,
        method: HTTPMethod = .POST,
        path: String,
        headers: [(String, String)] = [],
        body: String? = nil,
        group: any EventLoopGroup,
        onPart: @escaping @Sendable (ByteBuffer) -> Bool = { _ in true }
    ) async throws -> TestResponse {
        let promise = group.next().makePromise(of: TestResponse.self)
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(Collector(promise: promise, onPart: onPart))
                    }
                }
                .connect(host: "127.0.0.1", port: port)
                .get()
        } catch {
            promise.fail(error)
            throw error
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "host", value: "127.0.0.1:\(port)")
        head.headers.add(name: "connection", value: "close")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "content-type", value: "application/json")
            head.headers.add(name: "content-length", value: String(body.utf8.count))
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
        try await channel.writeAndFlush(HTTPClientRequestPart.end(nil))
        let response = try await promise.futureResult.get()
        try? await channel.close()
        return response
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        let promise: EventLoopPromise<TestResponse>
        let onPart: @Sendable (ByteBuffer) -> Bool
        let start = MonotonicClock.now()
        var response = TestResponse(status: 0, headers: [:], body: [], parts: [], truncated: false)
        var done = false

        init(promise: EventLoopPromise<TestResponse>, onPart: @escaping @Sendable (ByteBuffer) -> Bool) {
            self.promise = promise
            self.onPart = onPart
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                response.status = Int(head.status.code)
                response.headers = head.headers
            case .body(let buffer):
                response.body += buffer.readableBytesView
                response.parts.append((MonotonicClock.now() - start, buffer.readableBytes))
                if !onPart(buffer) {
                    response.truncated = true
                    complete()
                    context.close(promise: nil)
                }
            case .end:
                complete()
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            response.truncated = true
            complete()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !done {
                done = true
                promise.fail(error)
            }
            context.close(promise: nil)
        }

        private func complete() {
            guard !done else { return }
            done = true
            promise.succeed(response)
        }
    }
}
