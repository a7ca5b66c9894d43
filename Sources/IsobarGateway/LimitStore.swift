import IsobarModel
import IsobarRouting
import NIOCore
import Synchronization

/// Where a node counts its keys' and teams' limits and budgets: on its own (`MemoryLimitStore`) or in a
/// store every node shares (`RedisLimitStore`). Answers arrive on the event loop given; a store never
/// blocks an event loop and never keeps a request waiting longer than its own timeout.
protocol LimitStore: Sendable {
    /// `memory` or `redis`, for metrics and logs.
    var kind: String { get }
    /// Checks a request against its subjects' limits and, when it passes, counts it.
    func admit(_ charge: QuotaCharge, at now: Double, on loop: any EventLoop) -> EventLoopFuture<QuotaAdmission>
    /// Settles a request that ended (from `loop`).
    func settle(_ settlement: QuotaSettlement, at now: Double, on loop: any EventLoop)
    /// What each subject spent in the budget period containing `now`.
    func spent(
        _ subjects: [(QuotaSubject, Budget.Period)],
        at now: Double,
        on loop: any EventLoop
    ) -> EventLoopFuture<[Double]>
    /// Stops the store's timers (the node is stopping).
    func shutdown()
}

/// The default store: this node's own counts, behind a lock.
final class MemoryLimitStore: LimitStore {
    let kind = "memory"
    let ledger = Mutex(QuotaLedger())

    func shutdown() {}

    func admit(_ charge: QuotaCharge, at now: Double, on loop: any EventLoop) -> EventLoopFuture<QuotaAdmission> {
        loop.makeSucceededFuture(ledger.withLock { $0.admit(charge, at: now) })
    }

    func settle(_ settlement: QuotaSettlement, at now: Double, on loop: any EventLoop) {
        ledger.withLock { $0.settle(settlement, at: now) }
    }

    func spent(
        _ subjects: [(QuotaSubject, Budget.Period)],
        at now: Double,
        on loop: any EventLoop
    ) -> EventLoopFuture<[Double]> {
        loop.makeSucceededFuture(ledger.withLock { ledger in subjects.map { ledger.spent($0, period: $1, at: now) } })
    }
}
