import IsobarModel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import IsobarGateway

/// Records what an upstream connection delivers.
final class RecordingDelegate: UpstreamResponseDelegate {
    var events: [String] = []
    func upstreamHead(_ head: HTTPResponseHead) { events.append("head \(head.status.code)") }
    func upstreamBody(_ buffer: ByteBuffer) { events.append("body \(String(buffer: buffer))") }
    func upstreamEnd() { events.append("end") }
    func upstreamClosed(_ error: (any Error)?) { events.append(error == nil ? "closed" : "error") }
}

@Suite("Upstream connection handling (EmbeddedChannel)")
struct UpstreamClientHandlerTests {
    static let request = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/x")

    static func connection() throws -> (EmbeddedChannel, UpstreamConnection) {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHTTPClientHandlers()
        let handler = UpstreamClientHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        let connection = UpstreamConnection(
            channel: channel,
            key: UpstreamKey(UpstreamURL(tls: false, host: "h", port: 1))
        )
        handler.connection = connection
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return (channel, connection)
    }

    @Test("a response is delivered head, body, end, and the call lets go of its delegate")
    func deliversResponse() throws {
        let (channel, connection) = try Self.connection()
        let delegate = RecordingDelegate()
        connection.delegate = delegate
        connection.send(
            head: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/x"),
            body: ByteBuffer(string: "{}")
        )
        let request = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: request).hasPrefix("POST /v1/x HTTP/1.1"))
        try channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"))
        #expect(delegate.events == ["head 200", "body hello", "end"])
        #expect(connection.delegate == nil)
        #expect(connection.reusable)
    }

    @Test("connection: close in the response makes the connection unusable for the next call")
    func closeHeader() throws {
        let (channel, connection) = try Self.connection()
        connection.delegate = RecordingDelegate()
        connection.send(head: Self.request, body: ByteBuffer())
        try channel.writeInbound(
            ByteBuffer(string: "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n")
        )
        #expect(!connection.reusable)
    }

    @Test("a connection that drops mid-response reports it to the call once")
    func dropMidResponse() throws {
        let (channel, connection) = try Self.connection()
        let delegate = RecordingDelegate()
        connection.delegate = delegate
        connection.send(head: Self.request, body: ByteBuffer())
        try channel.writeInbound(
            ByteBuffer(string: "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
        )
        channel.pipeline.fireChannelInactive()
        // The decoder reports the unexpected end as an error or the channel as closed: either way, once.
        #expect(delegate.events.prefix(2) == ["head 200", "body abc"])
        #expect(delegate.events.count == 3)
        #expect(["closed", "error"].contains(delegate.events.last))
        #expect(!connection.reusable)
    }
}

@Suite("Answer cache")
struct AnswerCacheTests {
    static func key(_ n: Int) -> AnswerCache.Key {
        AnswerCache.Key(operation: .chatCompletions, body: Array("{\"n\":\(n)}".utf8))
    }

    @Test("keeps the last answer per request, evicts the least recently used past its size, skips huge ones")
    func bounded() {
        let cache = AnswerCache(maxBytes: 2000)
        let answer = AnswerCache.Answer(streamed: false, bytes: [UInt8](repeating: 65, count: 150))
        // An entry takes 150 bytes of answer, 7 of key and 64 of bookkeeping: 9 fit.
        for n in 0..<12 { cache.store(Self.key(n), answer) }
        #expect(cache.bytes <= 2000)
        #expect(cache.answer(for: Self.key(2)) == nil, "the oldest went first")
        #expect(cache.answer(for: Self.key(11))?.bytes == answer.bytes)
        // Reading an entry makes it recent: it outlives newer ones that were not read.
        _ = cache.answer(for: Self.key(3))
        for n in 12..<15 { cache.store(Self.key(n), answer) }
        #expect(cache.answer(for: Self.key(3)) != nil)
        #expect(cache.answer(for: Self.key(4)) == nil)
        // A newer answer replaces the older one in place.
        cache.store(Self.key(3), AnswerCache.Answer(streamed: false, bytes: [1, 2, 3]))
        #expect(cache.answer(for: Self.key(3))?.bytes == [1, 2, 3])
        // One answer may take at most an eighth of the cache.
        cache.store(Self.key(99), AnswerCache.Answer(streamed: false, bytes: [UInt8](repeating: 0, count: 400)))
        #expect(cache.answer(for: Self.key(99)) == nil)
    }
}
