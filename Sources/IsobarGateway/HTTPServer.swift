import IsobarModel
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// A request as the server received it: head and complete body.
public struct HTTPRequest {
    public var head: HTTPRequestHead
    public var body: ByteBuffer
    /// When the request's last byte arrived.
    public var receivedAt: Instant
    /// The body exceeded the server's limit; `body` is empty and the rest of it is being discarded.
    public var bodyTooLarge: Bool

    /// The path without the query string.
    public var path: Substring {
        let uri = head.uri
        if let q = uri.firstIndex(of: "?") { return uri[..<q] }
        return uri[...]
    }
}

/// Answers requests of an `HTTPServer`. Called on the connection's event loop; it answers through the
/// writer, at once or later (streams), and must end every response.
public protocol HTTPResponder: Sendable {
    func respond(to request: HTTPRequest, with writer: HTTPResponseWriter)
}

/// The monotonic clock of shells, as an `Instant`.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> Instant {
        Instant(nanoseconds: Int64(truncatingIfNeeded: NIODeadline.now().uptimeNanoseconds))
    }
}

/// The wall clock of shells: seconds since 1970-01-01 UTC (what every node of a mesh agrees on, give or
/// take NTP; limits and budget periods count on it).
public enum WallClock {
    public static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

/// A plain HTTP/1.1 server on SwiftNIO: keep-alive, pipelining, a request-body limit, and one
/// `HTTPResponder` for every request.
public struct HTTPServer: Sendable {
    public let group: any EventLoopGroup
    public let responder: any HTTPResponder
    public let maxBodyBytes: Int
    /// A connection with no request in progress is closed after this long without reading a byte.
    public let idleTimeout: TimeAmount

    public init(
        group: any EventLoopGroup,
        responder: any HTTPResponder,
        maxBodyBytes: Int,
        idleTimeout: TimeAmount = .seconds(75)
    ) {
        self.group = group
        self.responder = responder
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
    }

    /// Binds to `host:port` (port 0 picks a free one) and starts serving.
    public func bind(host: String, port: Int) async throws -> any Channel {
        let server = self
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try server.configure(channel) }
            }
            .bind(host: host, port: port)
            .get()
    }
}

extension HTTPServer {
    /// Binds to `address`, fulfils `listening` with the bound address, and serves until the task is
    /// cancelled or graceful shutdown begins. A bind that fails fails `listening` too, with an error that
    /// names `what` and says why in words.
    public func serve(
        at address: HostPort,
        what: String,
        listening: EventLoopPromise<SocketAddress>,
        logger: Logger,
        metadata: Logger.Metadata = [:]
    ) async throws {
        let channel: any Channel
        do {
            channel = try await bind(host: address.host, port: address.port)
        } catch {
            let failure = GatewayError(.internal, "\(what) cannot listen on \(address): \(Self.describe(error))")
            listening.fail(failure)
            throw failure
        }
        let bound = channel.localAddress!
        listening.succeed(bound)
        logger.info("\(what) listening", metadata: metadata.merging(["isobar.address": "\(bound)"]) { a, _ in a })
        try await withTaskCancellationOrGracefulShutdownHandler {
            try await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            channel.close(promise: nil)
        }
    }

    /// A short reason for a failed bind, for people: "address already in use" rather than errno 98.
    public static func describe(_ error: any Error) -> String {
        guard let io = error as? IOError else { return "\(error)" }
        switch io.errnoCode {
        case EADDRINUSE: return "address already in use (another process listens there)"
        case EADDRNOTAVAIL: return "address not available on this machine"
        case EACCES: return "permission denied (ports below 1024 need privileges)"
        default: return "\(io)"
        }
    }

    /// Sets up the pipeline of an accepted connection (call on its event loop).
    func configure(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
        try channel.pipeline.syncOperations.addHandler(
            HTTPConnectionHandler(responder: responder, maxBodyBytes: maxBodyBytes)
        )
    }
}

/// Collects each request of a connection and hands it to the responder.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Bytes of an over-limit body read and dropped (so the client can read its 413) before the
    /// connection is closed instead.
    static let maxDiscardBytes = 32 * 1024 * 1024

    private let responder: any HTTPResponder
    private let maxBodyBytes: Int
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?
    private var discarded = 0
    private var tooLarge = false
    private var writer: HTTPResponseWriter?

    init(responder: any HTTPResponder, maxBodyBytes: Int) {
        self.responder = responder
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.tooLarge = false
            self.discarded = 0
            self.body = nil
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
                rejectTooLarge(context: context)
            } else if head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                // The client waits for permission before sending the body (curl does for large bodies).
                let interim = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
        case .body(var part):
            if tooLarge {
                discarded += part.readableBytes
                if discarded > Self.maxDiscardBytes { context.close(promise: nil) }
                return
            }
            if body == nil {
                body = part
            } else {
                body!.writeBuffer(&part)
            }
            if body!.readableBytes > maxBodyBytes {
                body = nil
                rejectTooLarge(context: context)
            }
        case .end:
            guard let head else { return }
            if tooLarge {
                // The 413 went out when the limit was crossed; the body is now fully read and discarded,
                // so the connection can serve the next request.
                self.head = nil
                return
            }
            let request = HTTPRequest(
                head: head,
                body: body ?? context.channel.allocator.buffer(capacity: 0),
                receivedAt: MonotonicClock.now(),
                bodyTooLarge: false
            )
            self.head = nil
            self.body = nil
            dispatch(request, context: context)
        }
    }

    private func rejectTooLarge(context: ChannelHandlerContext) {
        guard let head else { return }
        tooLarge = true
        // A client that asked to continue sends no body after a refusal; the connection cannot be reused.
        let expectsContinue = head.headers[canonicalForm: "expect"].contains { $0.lowercased() == "100-continue" }
        let request = HTTPRequest(
            head: head,
            body: context.channel.allocator.buffer(capacity: 0),
            receivedAt: MonotonicClock.now(),
            bodyTooLarge: true
        )
        dispatch(request, context: context, keepAlive: !expectsContinue)
    }

    private func dispatch(_ request: HTTPRequest, context: ChannelHandlerContext, keepAlive: Bool = true) {
        let writer = HTTPResponseWriter(
            context: context,
            version: request.head.version,
            keepAlive: keepAlive && request.head.isKeepAlive
        )
        writer.onEnd = { [weak self] in self?.writer = nil }
        self.writer = writer
        responder.respond(to: request, with: writer)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle keep-alive connections are closed, and so are clients that stall mid-request; a response in
        // progress (a long stream) is not idle.
        if event is IdleStateHandler.IdleStateEvent, writer == nil {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        writer?.clientClosed()
        writer = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes one response on a server connection. Event-loop bound: use it only on `eventLoop`.
public final class HTTPResponseWriter {
    private let context: ChannelHandlerContext
    private let version: HTTPVersion
    private let keepAlive: Bool
    private var state: State = .idle
    /// Called once if the client's connection closes before the response ended.
    public var onClientClose: (() -> Void)?
    var onEnd: (() -> Void)?

    private enum State { case idle, streaming, ended }

    init(context: ChannelHandlerContext, version: HTTPVersion, keepAlive: Bool) {
        self.context = context
        self.version = version
        self.keepAlive = keepAlive
    }

    public var eventLoop: any EventLoop { context.eventLoop }
    public var allocator: ByteBufferAllocator { context.channel.allocator }
    /// True until the response ended or the client went away.
    public var isOpen: Bool { state != .ended }
    /// True once the head was written.
    public var headWritten: Bool { state != .idle }

    /// Writes the response head. Call once.
    public func writeHead(status: HTTPResponseStatus, headers: HTTPHeaders) {
        guard state == .idle else { return }
        state = .streaming
        var headers = headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        // Answered in the request's version: an HTTP/1.0 client gets a close-delimited body, not chunks.
        let head = HTTPResponseHead(version: version, status: status, headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
    }

    /// Writes part of the body (after the head) and flushes it.
    public func writeBody(_ buffer: ByteBuffer, flush: Bool = true) {
        guard state == .streaming else { return }
        context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(buffer))), promise: nil)
        if flush { context.flush() }
    }

    /// Ends the response.
    public func end() {
        guard state == .streaming else { return }
        state = .ended
        onClientClose = nil
        let close = !keepAlive
        let context = self.context
        let promise: EventLoopPromise<Void>? = close ? context.eventLoop.makePromise() : nil
        context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: promise)
        if let promise {
            promise.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
        onEnd?()
        onEnd = nil
    }

    /// Writes a whole response with a body.
    public func respond(status: HTTPResponseStatus, headers: HTTPHeaders, body: ByteBuffer) {
        var headers = headers
        headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        writeHead(status: status, headers: headers)
        if body.readableBytes > 0 { writeBody(body, flush: false) }
        end()
    }

    /// Writes a whole response with a body given as bytes.
    public func respond(status: HTTPResponseStatus, headers: HTTPHeaders, bytes: some Collection<UInt8>) {
        var buffer = allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        respond(status: status, headers: headers, body: buffer)
    }

    /// Closes the connection at once, without ending the response (a cut stream, as a failing server
    /// would). Used by fault-injection servers.
    public func abort() {
        guard state != .ended else { return }
        state = .ended
        onClientClose = nil
        onEnd?()
        onEnd = nil
        context.close(promise: nil)
    }

    func clientClosed() {
        guard state != .ended else { return }
        state = .ended
        let callback = onClientClose
        onClientClose = nil
        onEnd = nil
        callback?()
    }
}
