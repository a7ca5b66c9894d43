import CHiredis
import IsobarModel
import NIOCore
import NIOPosix

/// A value Redis answered with.
enum RedisValue: Sendable, Equatable {
    case string(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    case status(String)
    case error(String)

    var text: String? {
        switch self {
        case .string(let text), .status(let text): text
        case .integer(let n): String(n)
        default: nil
        }
    }

    var number: Double? { text.flatMap(Double.init) }
}

/// Why a Redis call failed: the connection (unreachable, timed out, closed), or an error reply.
struct RedisError: Error, Sendable, CustomStringConvertible {
    var message: String
    /// The server answered with an error (the connection is still good).
    var isReply = false
    var description: String { message }
}

/// One connection to Redis, living on one event loop and pipelined: commands are written in RESP as they
/// come (sent at once when nothing else is in flight, else once per turn of the loop), and hiredis's
/// reader parses the replies, which complete the commands in order. Nothing blocks and nothing changes threads: a request's command is written,
/// and its reply read, on the request's own event loop.
///
/// Confined to `loop`: every method must be called on it.
final class RedisConnection: @unchecked Sendable {
    let loop: any EventLoop
    private let channel: any Channel
    private let replies: ReplyReader
    private var flushQueued = false

    private init(channel: any Channel, replies: ReplyReader) {
        self.loop = channel.eventLoop
        self.channel = channel
        self.replies = replies
    }

    /// Connects (within `timeout_ms`), then authenticates and selects the database.
    static func connect(_ settings: RedisSettings, on loop: any EventLoop) -> EventLoopFuture<RedisConnection> {
        ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(settings.timeoutMs.rounded(.up))))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connect(host: settings.host, port: settings.port)
            .flatMapErrorThrowing { error in
                throw RedisError(message: "cannot connect to redis://\(settings.host):\(settings.port): \(error)")
            }
            .flatMapThrowing { channel in
                let replies = ReplyReader()
                try channel.pipeline.syncOperations.addHandler(replies)
                return RedisConnection(channel: channel, replies: replies)
            }
            .flatMap { connection in
                var setup: [[String]] = []
                if let password = settings.password {
                    setup.append(["AUTH"] + (settings.username.map { [$0] } ?? []) + [password.value])
                }
                if settings.database != 0 { setup.append(["SELECT", String(settings.database)]) }
                let answers = setup.map { connection.command($0) }
                return EventLoopFuture.whenAllSucceed(answers, on: loop).map { _ in connection }
                    .flatMapError { error in
                        connection.close()
                        return loop.makeFailedFuture(error)
                    }
            }
    }

    /// Whether commands can still be sent (the server has not closed it, nor has this side).
    var isOpen: Bool { channel.isActive }

    func close() { channel.close(promise: nil) }

    /// Sends one command; its reply, or an error reply as `.error`. Fails when the connection breaks
    /// before the reply comes.
    func send(_ arguments: [String]) -> EventLoopFuture<RedisValue> {
        loop.preconditionInEventLoop()
        guard channel.isActive else {
            return loop.makeFailedFuture(RedisError(message: "redis: the connection is closed"))
        }
        let promise = loop.makePromise(of: RedisValue.self)
        replies.waiting.append(promise)
        var buffer = channel.allocator.buffer(capacity: 64 + arguments.reduce(0) { $0 + $1.utf8.count + 16 })
        buffer.writeRESPCommand(arguments)
        channel.write(buffer, promise: nil)
        if replies.waiting.count == 1 {
            // Nothing else in flight (a quiet moment): out at once.
            channel.flush()
        } else if !flushQueued {
            // Busy: one flush for everything written in this turn of the loop.
            flushQueued = true
            loop.execute { [self] in
                flushQueued = false
                channel.flush()
            }
        }
        return promise.futureResult
    }

    /// Sends one command, failing on an error reply (with `isReply`).
    func command(_ arguments: [String]) -> EventLoopFuture<RedisValue> {
        send(arguments).flatMapThrowing { value in
            if case .error(let message) = value { throw RedisError(message: "redis: \(message)", isReply: true) }
            return value
        }
    }

    /// Runs a script by its SHA-1, sending its source when the server does not have it yet (a new or
    /// flushed server). Error replies are returned as `.error`.
    func evaluate(_ script: RedisScript, keys: [String], arguments: [String]) -> EventLoopFuture<RedisValue> {
        let tail = [String(keys.count)] + keys + arguments
        return send(["EVALSHA", script.sha1] + tail).flatMap { [self] reply in
            guard case .error(let message) = reply, message.hasPrefix("NOSCRIPT") else {
                return loop.makeSucceededFuture(reply)
            }
            return send(["EVAL", script.source] + tail)
        }
    }
}

/// Parses the replies coming in with hiredis's reader and hands each to the oldest command waiting.
private final class ReplyReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let reader: UnsafeMutablePointer<redisReader>
    var waiting = CircularBuffer<EventLoopPromise<RedisValue>>()

    init() { reader = redisReaderCreate() }

    deinit { redisReaderFree(reader) }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        bytes.withUnsafeReadableBytes { raw in
            _ = redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisReaderGetReply(reader, &reply) == REDIS_OK else {
                return broken(context, "redis: the server's reply cannot be parsed")
            }
            guard let reply else { return }
            let value = RedisValue(reply.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(reply)
            guard let promise = waiting.popFirst() else {
                return broken(context, "redis: a reply to no command")
            }
            promise.succeed(value)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failWaiting(RedisError(message: "redis: the connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        broken(context, "redis: \(error)")
    }

    private func broken(_ context: ChannelHandlerContext, _ message: String) {
        failWaiting(RedisError(message: message))
        context.close(promise: nil)
    }

    private func failWaiting(_ error: RedisError) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

extension RedisValue {
    /// The value of a reply hiredis parsed.
    fileprivate init(_ reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        func text() -> String {
            guard let str = r.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: Int(r.len)), as: UTF8.self)
        }
        switch r.type {
        case REDIS_REPLY_STRING: self = .string(text())
        case REDIS_REPLY_STATUS: self = .status(text())
        case REDIS_REPLY_ERROR: self = .error(text())
        case REDIS_REPLY_INTEGER: self = .integer(r.integer)
        case REDIS_REPLY_ARRAY: self = .array((0..<Int(r.elements)).map { i in r.element[i].map(Self.init) ?? .null })
        default: self = .null
        }
    }
}

extension ByteBuffer {
    /// A command as RESP sends it: an array of bulk strings.
    fileprivate mutating func writeRESPCommand(_ arguments: [String]) {
        writeStaticString("*")
        writeString(String(arguments.count))
        writeStaticString("\r\n")
        for argument in arguments {
            writeStaticString("$")
            writeString(String(argument.utf8.count))
            writeStaticString("\r\n")
            writeString(argument)
            writeStaticString("\r\n")
        }
    }
}
