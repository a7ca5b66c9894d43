import Foundation
import IsobarModel
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import IsobarGateway

/// Answers each request with its path and body size, and remembers what it saw.
final class EchoResponder: HTTPResponder {
    let seen = Mutex<[(path: String, bytes: Int, tooLarge: Bool)]>([])
    let closed = Mutex(0)
    /// Paths answered later by the test instead of at once.
    let holdPaths: Set<String>
    let held = Held()

    /// Writers kept for the test to answer; EmbeddedChannel runs everything on the test's thread.
    final class Held: @unchecked Sendable {
        var writers: [HTTPResponseWriter] = []
    }

    init(holding holdPaths: Set<String> = []) { self.holdPaths = holdPaths }

    func respond(to request: HTTPRequest, with writer: HTTPResponseWriter) {
        seen.withLock { $0.append((String(request.path), request.body.readableBytes, request.bodyTooLarge)) }
        writer.onClientClose = { self.closed.withLock { $0 += 1 } }
        if holdPaths.contains(String(request.path)) {
            held.writers.append(writer)
            return
        }
        let status: HTTPResponseStatus = request.bodyTooLarge ? .payloadTooLarge : .ok
        writer.respond(status: status, headers: [:], bytes: Array("\(request.path) \(request.body.readableBytes)".utf8))
    }
}

@Suite("HTTP connection handling (EmbeddedChannel)")
struct HTTPConnectionHandlerTests {
    static func channel(_ responder: EchoResponder, limit: Int = 100) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let server = HTTPServer(
            group: channel.eventLoop,
            responder: responder,
            maxBodyBytes: limit,
            idleTimeout: .milliseconds(50)
        )
        try server.configure(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything the server wrote so far, as text.
    static func output(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    static func request(_ path: String, body: String = "", extra: String = "") -> String {
        "POST \(path) HTTP/1.1\r\nhost: x\r\ncontent-length: \(body.utf8.count)\r\n\(extra)\r\n\(body)"
    }

    @Test("pipelined requests are answered in order on one connection")
    func pipelining() throws {
        let responder = EchoResponder()
        let channel = try Self.channel(responder)
        try channel.writeInbound(ByteBuffer(string: Self.request("/a", body: "12345") + Self.request("/b", body: "x")))
        let text = try Self.output(channel)
        let a = try #require(text.range(of: "/a 5"))
        let b = try #require(text.range(of: "/b 1"))
        #expect(a.lowerBound < b.lowerBound)
        #expect(responder.seen.withLock { $0.map(\.path) } == ["/a", "/b"])
        #expect(channel.isActive)
    }

    @Test("a declared body over the limit gets 413 at once, is drained, and the connection serves the next request")
    func declaredBodyTooLarge() throws {
        let responder = EchoResponder()
        let channel = try Self.channel(responder, limit: 10)
        try channel.writeInbound(ByteBuffer(string: "POST /big HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n"))
        #expect(try Self.output(channel).hasPrefix("HTTP/1.1 413"))
        try channel.writeInbound(ByteBuffer(string: String(repeating: "x", count: 50)))
        try channel.writeInbound(ByteBuffer(string: Self.request("/small", body: "ok")))
        #expect(try Self.output(channel).contains("/small 2"))
        #expect(responder.seen.withLock { $0.map(\.tooLarge) } == [true, false])
    }

    @Test("a chunked body that grows past the limit gets 413")
    func chunkedBodyTooLarge() throws {
        let responder = EchoResponder()
        let channel = try Self.channel(responder, limit: 10)
        try channel.writeInbound(
            ByteBuffer(
                string:
                    "POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n"
            )
        )
        #expect(try Self.output(channel).hasPrefix("HTTP/1.1 413"))
        #expect(responder.seen.withLock { $0.count } == 1)
    }

    @Test("connection: close is honoured after the response")
    func connectionClose() throws {
        let channel = try Self.channel(EchoResponder())
        try channel.writeInbound(ByteBuffer(string: Self.request("/x", extra: "connection: close\r\n")))
        let text = try Self.output(channel)
        #expect(text.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test("a client that goes away mid-response is reported once, and later writes are ignored")
    func clientGoesAway() throws {
        let responder = EchoResponder(holding: ["/slow"])
        let channel = try Self.channel(responder)
        try channel.writeInbound(ByteBuffer(string: Self.request("/slow")))
        let writer = try #require(responder.held.writers.first)
        writer.writeHead(status: .ok, headers: ["content-type": "text/event-stream"])
        writer.writeBody(ByteBuffer(string: "data: 1\n\n"))
        _ = try Self.output(channel)
        channel.pipeline.fireChannelInactive()
        #expect(responder.closed.withLock { $0 } == 1)
        #expect(!writer.isOpen)
        writer.writeBody(ByteBuffer(string: "data: 2\n\n"))
        writer.end()
        #expect(try Self.output(channel).isEmpty)
    }

    @Test("malformed HTTP gets 400 from the protocol error handler and the connection closes")
    func malformedHTTP() throws {
        let channel = try Self.channel(EchoResponder())
        _ = try? channel.writeInbound(ByteBuffer(string: "NOT HTTP AT ALL\r\n\r\n"))
        #expect(try Self.output(channel).hasPrefix("HTTP/1.1 400"))
        #expect(!channel.isActive)
    }

    @Test("a client that sends expect: 100-continue is told to go ahead, then answered")
    func expectContinue() throws {
        let channel = try Self.channel(EchoResponder())
        try channel.writeInbound(
            ByteBuffer(string: "POST /up HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\nexpect: 100-continue\r\n\r\n")
        )
        #expect(try Self.output(channel).hasPrefix("HTTP/1.1 100 Continue"))
        try channel.writeInbound(ByteBuffer(string: "body"))
        let text = try Self.output(channel)
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        #expect(text.hasSuffix("/up 4"))
    }

    @Test("an idle keep-alive connection is closed; one with a response in progress is not")
    func idleConnections() throws {
        let responder = EchoResponder(holding: ["/stream"])
        let busy = try Self.channel(responder)
        try busy.writeInbound(ByteBuffer(string: Self.request("/stream")))
        let idle = try Self.channel(responder)
        try idle.writeInbound(ByteBuffer(string: Self.request("/done")))
        // IdleStateHandler measures idleness on the real clock, so let real time pass too.
        usleep(100_000)
        (busy.eventLoop as! EmbeddedEventLoop).advanceTime(by: .milliseconds(100))
        (idle.eventLoop as! EmbeddedEventLoop).advanceTime(by: .milliseconds(100))
        #expect(busy.isActive)
        #expect(!idle.isActive)
    }

    @Test("a client that stalls mid-request is cut off by the idle timeout")
    func stalledRequest() throws {
        let channel = try Self.channel(EchoResponder())
        try channel.writeInbound(
            ByteBuffer(string: "POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
        )
        usleep(100_000)
        (channel.eventLoop as! EmbeddedEventLoop).advanceTime(by: .milliseconds(100))
        #expect(!channel.isActive)
    }

    @Test("a client that asked to continue gets 413 with connection: close, and the connection closes")
    func expectContinueTooLarge() throws {
        let channel = try Self.channel(EchoResponder(), limit: 10)
        try channel.writeInbound(
            ByteBuffer(string: "POST /big HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\nexpect: 100-continue\r\n\r\n")
        )
        let text = try Self.output(channel)
        #expect(text.hasPrefix("HTTP/1.1 413"))
        #expect(!text.contains("100 Continue"))
        #expect(text.lowercased().contains("connection: close"))
        #expect(!channel.isActive)
    }

    @Test("an HTTP/1.0 client is answered in HTTP/1.0, without chunked encoding")
    func http10() throws {
        let responder = EchoResponder(holding: ["/stream"])
        let channel = try Self.channel(responder)
        try channel.writeInbound(ByteBuffer(string: "POST /stream HTTP/1.0\r\ncontent-length: 0\r\n\r\n"))
        let writer = try #require(responder.held.writers.first)
        writer.writeHead(status: .ok, headers: ["content-type": "text/event-stream"])
        writer.writeBody(ByteBuffer(string: "data: 1\n\n"))
        writer.end()
        let text = try Self.output(channel)
        #expect(text.hasPrefix("HTTP/1.0 200 OK"))
        #expect(!text.lowercased().contains("chunked"))
        #expect(text.hasSuffix("data: 1\n\n"))
        #expect(!channel.isActive)
    }
}
