import IsobarModel
import NIOCore
import NIOHTTP1

/// One `GET` of a metrics endpoint on a pooled upstream connection, bounded by a deadline that covers
/// connecting too. Event-loop bound: created and driven on its pool's event loop.
final class ScrapeCall: UpstreamResponseDelegate {
    /// How a call ended.
    enum Result {
        /// The whole response arrived.
        case response(status: Int, body: ByteBuffer)
        /// No usable response: connection refused or cut (`error`), deadline passed (`timeout`), body larger
        /// than the limit (`malformed`).
        case failed(ScrapeOutcome, String)
    }

    private let url: UpstreamURL
    private let pool: UpstreamPool
    private let connectTimeout: TimeAmount
    private let maxBodyBytes: Int
    private let headers: HTTPHeaders
    /// When the call must have ended; `ScrapeLoop` checks it every tick (cheaper than a timer per call).
    let deadline: NIODeadline
    private var completion: ((Result) -> Void)?
    private var connection: UpstreamConnection?
    private var status = 0
    private var body: ByteBuffer?
    private var retriedOnFresh = false

    init(url: UpstreamURL, headers: HTTPHeaders, pool: UpstreamPool, timeout: TimeAmount, maxBodyBytes: Int) {
        self.url = url
        self.headers = headers
        self.pool = pool
        self.connectTimeout = timeout
        self.deadline = .now() + timeout
        self.maxBodyBytes = maxBodyBytes
    }

    /// The headers of a scrape of `url`.
    static func headers(for url: UpstreamURL, apiKey: Secret?) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "host", value: url.hostHeader)
        headers.add(name: "user-agent", value: "isobar")
        headers.add(name: "accept", value: "text/plain, application/json;q=0.9, */*;q=0.1")
        if let apiKey { headers.add(name: "authorization", value: "Bearer \(apiKey.value)") }
        return headers
    }

    /// Starts the call; `completion` runs once, on the event loop.
    func start(_ completion: @escaping (Result) -> Void) {
        self.completion = completion
        connect(fresh: false)
    }

    /// Ends the call as a timeout if its deadline has passed.
    func expire(at now: NIODeadline) {
        guard now >= deadline else { return }
        finish(.failed(.timeout, "no answer within \(connectTimeout.nanoseconds / 1_000_000) ms"))
    }

    /// Abandons the call (shutdown): the connection is closed and the completion never runs.
    func cancel() {
        completion = nil
        if let connection {
            self.connection = nil
            pool.discard(connection)
        }
    }

    private func connect(fresh: Bool) {
        let future =
            fresh
            ? pool.connectFresh(url, connectTimeout: connectTimeout)
            : pool.acquire(url, connectTimeout: connectTimeout)
        future.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let connection):
                guard completion != nil else {
                    pool.release(connection)
                    return
                }
                self.connection = connection
                connection.delegate = self
                send(on: connection)
            case .failure(let error):
                finish(.failed(.error, "connect: \(error)"))
            }
        }
    }

    private func send(on connection: UpstreamConnection) {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.basePath, headers: headers)
        connection.channel.write(HTTPClientRequestPart.head(head), promise: nil)
        connection.channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    // MARK: - UpstreamResponseDelegate

    func upstreamHead(_ head: HTTPResponseHead) {
        status = Int(head.status.code)
        body = nil
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        // A body that arrives in one read is kept as it came, without a copy.
        if body == nil {
            body = buffer
        } else {
            var buffer = buffer
            body?.writeBuffer(&buffer)
        }
        if let size = body?.readableBytes, size > maxBodyBytes {
            finish(.failed(.malformed, "body larger than \(maxBodyBytes) bytes"))
        }
    }

    func upstreamEnd() {
        if let connection {
            self.connection = nil
            pool.release(connection)
        }
        finish(.response(status: status, body: body ?? ByteBuffer()))
    }

    func upstreamClosed(_ error: (any Error)?) {
        // A kept-alive connection the server closed while idle fails before any answer: try once on a new one.
        if let connection, connection.reused, status == 0, !retriedOnFresh, completion != nil {
            retriedOnFresh = true
            self.connection = nil
            pool.discard(connection)
            connect(fresh: true)
            return
        }
        connection = nil
        finish(
            .failed(.error, error.map { "connection failed: \($0)" } ?? "connection closed before the response ended")
        )
    }

    private func finish(_ result: Result) {
        guard let completion else { return }
        self.completion = nil
        if let connection {
            self.connection = nil
            pool.discard(connection)
        }
        completion(result)
    }
}
