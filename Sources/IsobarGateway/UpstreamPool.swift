import IsobarModel
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where upstream connections go: host, port and whether TLS is used.
struct UpstreamKey: Hashable, Sendable {
    var host: String
    var port: Int
    var tls: Bool

    init(_ url: UpstreamURL) {
        host = url.host
        port = url.port
        tls = url.tls
    }
}

/// Receives the response parts of one upstream call.
protocol UpstreamResponseDelegate: AnyObject {
    func upstreamHead(_ head: HTTPResponseHead)
    func upstreamBody(_ buffer: ByteBuffer)
    func upstreamEnd()
    /// The connection closed or failed before the response ended.
    func upstreamClosed(_ error: (any Error)?)
}

/// One keep-alive HTTP/1.1 connection to a backend. Event-loop bound.
final class UpstreamConnection {
    let channel: any Channel
    let key: UpstreamKey
    /// The call currently using the connection. Held strongly until the call's response ends or the
    /// connection closes, so a call outlives its client response long enough to return the connection.
    var delegate: (any UpstreamResponseDelegate)?
    /// The connection served a call before this one.
    var reused = false
    /// The response asked to close, or the call did not run to completion.
    var reusable = true
    fileprivate var idleTimer: Scheduled<Void>?

    init(channel: any Channel, key: UpstreamKey) {
        self.channel = channel
        self.key = key
    }

    /// Sends a request head and body.
    func send(head: HTTPRequestHead, body: ByteBuffer) {
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }
}

/// Hands the response parts of a connection to its current delegate.
final class UpstreamClientHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    weak var connection: UpstreamConnection?
    private var finished = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            finished = false
            if !head.isKeepAlive { connection.reusable = false }
            connection.delegate?.upstreamHead(head)
        case .body(let buffer):
            connection.delegate?.upstreamBody(buffer)
        case .end:
            finished = true
            let delegate = connection.delegate
            connection.delegate = nil
            delegate?.upstreamEnd()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection?.reusable = false
        if let delegate = connection?.delegate {
            connection?.delegate = nil
            delegate.upstreamClosed(nil)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection?.reusable = false
        if let delegate = connection?.delegate {
            connection?.delegate = nil
            delegate.upstreamClosed(error)
        }
        context.close(promise: nil)
    }
}

/// Keep-alive connections to backends, one pool per event loop so a request never leaves the event loop
/// of its client connection. Event-loop bound.
final class UpstreamPool {
    let eventLoop: any EventLoop
    private let tlsContext: NIOSSLContext?
    private var idle: [UpstreamKey: [UpstreamConnection]] = [:]
    /// Idle connections kept per backend; more are closed when released.
    let maxIdlePerKey: Int
    /// An idle connection is closed after this long unused: shorter than the 5 s keep-alive of uvicorn
    /// (vLLM, SGLang), so the pool rarely picks a connection the server is closing.
    let idleTimeout: TimeAmount

    init(
        eventLoop: any EventLoop,
        tlsContext: NIOSSLContext?,
        maxIdlePerKey: Int = 256,
        idleTimeout: TimeAmount = .seconds(4)
    ) {
        self.eventLoop = eventLoop
        self.tlsContext = tlsContext
        self.maxIdlePerKey = maxIdlePerKey
        self.idleTimeout = idleTimeout
    }

    /// An idle connection to `url`'s server, or a new one.
    func acquire(_ url: UpstreamURL, connectTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        let key = UpstreamKey(url)
        while let connection = idle[key]?.popLast() {
            connection.idleTimer?.cancel()
            connection.idleTimer = nil
            if connection.channel.isActive {
                connection.reused = true
                return eventLoop.assumeIsolated().makeSucceededFuture(connection)
            }
        }
        return connect(key, timeout: connectTimeout)
    }

    /// A new connection to `url`'s server, bypassing idle ones.
    func connectFresh(_ url: UpstreamURL, connectTimeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        connect(UpstreamKey(url), timeout: connectTimeout)
    }

    /// Returns a connection after a call; it is kept only if the call completed cleanly.
    func release(_ connection: UpstreamConnection) {
        connection.delegate = nil
        guard connection.reusable, connection.channel.isActive, idle[connection.key, default: []].count < maxIdlePerKey
        else {
            connection.channel.close(promise: nil)
            return
        }
        idle[connection.key, default: []].append(connection)
        connection.idleTimer = eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [weak self] in
            self?.evict(connection)
        }
    }

    /// Closes a connection that must not be reused (cancelled or failed call).
    func discard(_ connection: UpstreamConnection) {
        connection.delegate = nil
        connection.reusable = false
        connection.channel.close(promise: nil)
    }

    /// Closes every idle connection.
    func closeAll() {
        for connection in idle.values.joined() {
            connection.idleTimer?.cancel()
            connection.channel.close(promise: nil)
        }
        idle = [:]
    }

    private func evict(_ connection: UpstreamConnection) {
        idle[connection.key]?.removeAll { $0 === connection }
        connection.channel.close(promise: nil)
    }

    private func connect(_ key: UpstreamKey, timeout: TimeAmount) -> EventLoopFuture<UpstreamConnection> {
        let tls: NIOSSLContext?
        if key.tls {
            guard let tlsContext else {
                return eventLoop.makeFailedFuture(UpstreamConnectError("TLS is not available"))
            }
            tls = tlsContext
        } else {
            tls = nil
        }
        let host = key.host
        let isIPAddress = HostPort.isIPAddress(host)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        let handler = try NIOSSLClientHandler(context: tls, serverHostname: isIPAddress ? nil : host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamClientHandler())
                }
            }
            .connect(host: host, port: key.port)
            .assumeIsolated()
            .flatMapThrowing { channel in
                let connection = UpstreamConnection(channel: channel, key: key)
                let handler = try channel.pipeline.syncOperations.handler(type: UpstreamClientHandler.self)
                handler.connection = connection
                return connection
            }
            .nonisolated()
    }
}

/// A connection could not be set up for a reason other than the socket's.
struct UpstreamConnectError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
