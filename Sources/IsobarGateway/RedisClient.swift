import IsobarModel
import NIOCore
import Synchronization

/// A node's connections to its `redis:` store, shared by the limit store and the shared response cache:
/// at most `pool`, each living on its own event loop, so that a request's commands are written and
/// answered on the request's loop (a loop without one of its own borrows another's).
final class RedisClient: Sendable {
    let settings: RedisSettings
    /// Key prefix: `isobar:MESH:`.
    let prefix: String
    private let slots = Mutex<[ObjectIdentifier: Slot]>([:])

    /// An event loop's connection: open, being opened, or neither. Touched only on `loop`.
    private final class Slot: @unchecked Sendable {
        let loop: any EventLoop
        var connection: RedisConnection?
        var connecting: EventLoopFuture<RedisConnection>?

        init(loop: any EventLoop) { self.loop = loop }
    }

    init(settings: RedisSettings, meshName: String) {
        self.settings = settings
        self.prefix = "isobar:\(meshName):"
    }

    /// Runs `body` with the connection of `loop` (opening it when it is not open), on that connection's
    /// loop; the result arrives on `loop`.
    func connection<T: Sendable>(
        on loop: any EventLoop,
        _ body: @escaping @Sendable (RedisConnection) -> EventLoopFuture<T>
    ) -> EventLoopFuture<T> {
        let slot = slots.withLock { slots in
            if let slot = slots[ObjectIdentifier(loop)] { return slot }
            guard slots.count >= settings.pool else {
                let slot = Slot(loop: loop)
                slots[ObjectIdentifier(loop)] = slot
                return slot
            }
            let all = slots.values.sorted { ObjectIdentifier($0) < ObjectIdentifier($1) }
            return all[Int(UInt(bitPattern: ObjectIdentifier(loop).hashValue) % UInt(all.count))]
        }
        guard slot.loop === loop, loop.inEventLoop else {
            return slot.loop.flatSubmit { [self] in open(slot).flatMap(body) }.hop(to: loop)
        }
        if let connection = slot.connection, connection.isOpen { return body(connection) }
        return open(slot).flatMap(body)
    }

    /// `body`'s answer, or a failure once `timeout_ms` has passed without it.
    func withTimeout<T: Sendable>(
        on loop: any EventLoop,
        _ body: @escaping @Sendable (RedisConnection) -> EventLoopFuture<T>
    ) -> EventLoopFuture<T> {
        let promise = loop.makePromise(of: T.self)
        let timeoutMs = settings.timeoutMs
        let timeout = loop.scheduleTask(in: .microseconds(Int64(timeoutMs * 1000))) {
            promise.fail(RedisError(message: "no answer within \(Int(timeoutMs)) ms"))
        }
        connection(on: loop, body).whenComplete { result in
            timeout.cancel()
            promise.completeWith(result)
        }
        return promise.futureResult
    }

    /// Closes every connection: what waits on them fails now (the store went away, or the node stops).
    func closeAll() {
        for slot in slots.withLock({ Array($0.values) }) {
            slot.loop.execute {
                slot.connection?.close()
                slot.connection = nil
            }
        }
    }

    /// The slot's connection, opened if need be (on the slot's loop).
    private func open(_ slot: Slot) -> EventLoopFuture<RedisConnection> {
        if let connection = slot.connection, connection.isOpen { return slot.loop.makeSucceededFuture(connection) }
        if let connecting = slot.connecting { return connecting }
        let connecting = RedisConnection.connect(settings, on: slot.loop)
        slot.connecting = connecting
        connecting.whenComplete { result in
            slot.connecting = nil
            slot.connection = try? result.get()
        }
        return connecting
    }
}
