import CHiredis
import IsobarModel

#if canImport(Glibc)
import Glibc
#endif

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

/// One blocking hiredis connection. Not thread-safe: a connection is used by one pool thread at a time,
/// never on an event loop.
final class RedisConnection {
    private let context: UnsafeMutablePointer<redisContext>

    /// Connects, authenticates and selects the database, each bounded by `timeoutMs`.
    init(_ settings: RedisSettings) throws(RedisError) {
        let timeout = Self.timeval(milliseconds: settings.timeoutMs)
        guard let context = redisConnectWithTimeout(settings.host, Int32(settings.port), timeout) else {
            throw RedisError(message: "cannot allocate a Redis context")
        }
        if context.pointee.err != 0 {
            let reason = Self.errorText(context)
            redisFree(context)
            throw RedisError(message: "cannot connect to redis://\(settings.host):\(settings.port): \(reason)")
        }
        redisSetTimeout(context, timeout)
        self.context = context
        if let password = settings.password {
            let arguments = ["AUTH"] + (settings.username.map { [$0] } ?? []) + [password.value]
            _ = try command(arguments)
        }
        if settings.database != 0 { _ = try command(["SELECT", String(settings.database)]) }
    }

    deinit { redisFree(context) }

    /// Sends one command and waits for its reply (at most the timeout). An error reply is thrown with
    /// `isReply`; a broken connection is thrown and the connection must not be used again.
    func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        let value = try pipeline([arguments])[0]
        if case .error(let message) = value { throw RedisError(message: "redis: \(message)", isReply: true) }
        return value
    }

    /// Sends every command at once and reads their replies in order (error replies included, as
    /// `.error`): one write and one wait for a whole batch. Throws when the connection breaks.
    func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        for arguments in commands {
            let bytes = arguments.map { Array($0.utf8) }
            let appended = bytes.withUnsafeBufferPointers { pointers, lengths in
                redisAppendCommandArgv(
                    context,
                    Int32(pointers.count),
                    UnsafeMutablePointer(mutating: pointers.baseAddress),
                    lengths.baseAddress
                )
            }
            guard appended == REDIS_OK else { throw RedisError(message: "redis: \(Self.errorText(context))") }
        }
        var values: [RedisValue] = []
        values.reserveCapacity(commands.count)
        for _ in commands {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(context, &reply) == REDIS_OK, let reply else {
                throw RedisError(message: "redis: \(context.pointee.err != 0 ? Self.errorText(context) : "no reply")")
            }
            values.append(Self.value(reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
        }
        return values
    }

    private static func value(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING: return .string(text(r))
        case REDIS_REPLY_STATUS: return .status(text(r))
        case REDIS_REPLY_ERROR: return .error(text(r))
        case REDIS_REPLY_INTEGER: return .integer(r.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(r.elements)).map { i in r.element[i].map(value) ?? .null })
        default: return .null
        }
    }

    private static func text(_ r: redisReply) -> String {
        guard let str = r.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: Int(r.len)), as: UTF8.self)
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func timeval(milliseconds: Double) -> Glibc.timeval {
        let micros = Int(milliseconds * 1000)
        return Glibc.timeval(tv_sec: micros / 1_000_000, tv_usec: micros % 1_000_000)
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with C pointers to every element's bytes and their lengths, valid inside `body` only.
    fileprivate func withUnsafeBufferPointers<R>(
        _ body: (UnsafeBufferPointer<UnsafePointer<CChar>?>, UnsafeBufferPointer<Int>) -> R
    ) -> R {
        let lengths = map(\.count)
        // One contiguous copy, so every pointer stays valid for the whole call.
        var joined: [CChar] = []
        joined.reserveCapacity(lengths.reduce(0, +) + 1)
        var offsets: [Int] = []
        for element in self {
            offsets.append(joined.count)
            joined.append(contentsOf: element.map { CChar(bitPattern: $0) })
        }
        joined.append(0)
        return joined.withUnsafeBufferPointer { base in
            let pointers = offsets.map { UnsafePointer<CChar>?(base.baseAddress! + $0) }
            return pointers.withUnsafeBufferPointer { p in lengths.withUnsafeBufferPointer { body(p, $0) } }
        }
    }
}
