import Crypto
import IsobarModel
import NIOCore

/// The models' response caches that every node shares through the `redis:` store (`cache.store: redis`):
/// an answer one node got is a hit on every other, until its TTL (Redis expires it). Each answer is one
/// string under a hash of its tenant, operation and canonical request, so a key's answers are never
/// another's. A node keeps its own answers in memory too, and looks there first. A lookup waits at most
/// `timeout_ms`; a store that cannot answer is a miss, never an error.
struct SharedAnswers: Sendable {
    let redis: RedisClient

    /// The Redis key of a request: `isobar:MESH:answer:` and the SHA-256 of its tenant, operation and body.
    func name(_ key: AnswerCache.Key) -> String {
        var hash = SHA256()
        hash.update(data: Array(key.tenant.utf8) + [0] + Array(key.operation.rawValue.utf8) + [0])
        hash.update(data: key.body)
        return redis.prefix + "answer:" + hash.finalize().hexDigits
    }

    /// The answer kept for `key`, nil when there is none or the store does not answer in time.
    func answer(for key: AnswerCache.Key, on loop: any EventLoop) -> EventLoopFuture<AnswerCache.Answer?> {
        let name = name(key)
        return redis.withTimeout(on: loop) { $0.command(["GET", name]) }
            .map { value in value.text.flatMap(Self.decode) }
            .recover { _ in nil }
    }

    /// Keeps `answer` for `ttl` (fire and forget: a failed write is a later miss). Answers that are not
    /// valid UTF-8 (JSON and SSE always are) are not kept.
    func store(_ key: AnswerCache.Key, _ answer: AnswerCache.Answer, ttl: Duration, on loop: any EventLoop) {
        guard let text = String(validating: answer.bytes, as: UTF8.self) else { return }
        let name = name(key)
        let milliseconds = String(
            max(1, ttl.components.seconds * 1000 + ttl.components.attoseconds / 1_000_000_000_000_000)
        )
        _ = redis.connection(on: loop) {
            $0.command(["SET", name, (answer.streamed ? "s" : "j") + text, "PX", milliseconds])
        }
    }

    /// A kept answer: `s` (a stream's events) or `j` (a JSON body), then its bytes.
    static func decode(_ text: String) -> AnswerCache.Answer? {
        guard let kind = text.utf8.first, kind == UInt8(ascii: "s") || kind == UInt8(ascii: "j") else { return nil }
        return AnswerCache.Answer(streamed: kind == UInt8(ascii: "s"), bytes: Array(text.utf8.dropFirst()))
    }
}
