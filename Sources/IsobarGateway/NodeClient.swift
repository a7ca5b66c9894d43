import IsobarModel
import NIOCore

/// A `GET` of a node's own HTTP surface (`isobar status` reads `/v1/mesh` and the region health this way).
public enum NodeClient {
    /// The status and body of `GET url` (plain HTTP), or an error saying why the node could not be read.
    public static func get(
        _ url: UpstreamURL,
        group: any EventLoopGroup,
        timeout: Duration = .seconds(5)
    ) async throws -> (status: Int, body: [UInt8]) {
        let loop = group.next()
        let answer = loop.makePromise(of: (status: Int, body: [UInt8]).self)
        loop.execute {
            let pool = UpstreamPool(eventLoop: loop, tlsContext: nil)
            let call = ScrapeCall(
                url: url,
                headers: ScrapeCall.headers(for: url, apiKey: nil),
                pool: pool,
                timeout: .nanoseconds(timeout.nanoseconds),
                maxBodyBytes: 16 << 20
            )
            let expiry = loop.assumeIsolated().scheduleTask(deadline: call.deadline) { call.expire(at: .now()) }
            call.start { result in
                expiry.cancel()
                pool.closeAll()
                switch result {
                case .response(let status, let body): answer.succeed((status, Array(buffer: body)))
                case .failed(_, let message): answer.fail(GatewayError(.upstreamUnreachable, message))
                }
            }
        }
        return try await answer.futureResult.get()
    }
}
