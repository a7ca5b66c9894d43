import IsobarModel
import IsobarRouting
import IsobarWire
import NIOCore
import NIOHTTP1
import NIOSSL

/// Largest upstream body answered whole (non-streaming responses and error bodies).
private let maxWholeBodyBytes = 64 * 1024 * 1024

extension Exchange: UpstreamResponseDelegate {
    func upstreamHead(_ head: HTTPResponseHead) {
        guard let attempt else { return }
        let status = Int(head.status.code)
        if (200..<300).contains(status) {
            let contentType = head.headers.first(name: "content-type") ?? ""
            if profile.stream && contentType.hasPrefix("text/event-stream") {
                attempt.mode = .streaming
                attempt.transcoder = UpstreamRequest.transcoder(
                    operation: operation,
                    backend: attempt.backend,
                    fields: fields,
                    deployment: attempt.plan.deployment,
                    requestID: reply.requestID,
                    created: created
                )
            } else {
                attempt.mode = .whole
                armIdleTimer(attempt)
            }
        } else {
            attempt.mode = .error(status: status, retryAfter: Self.retryAfter(head.headers))
        }
    }

    func upstreamBody(_ buffer: ByteBuffer) {
        // Once the client's response is over (a stream finished or aborted), later bytes are not relayed.
        guard let attempt, let mode = attempt.mode, !finished else { return }
        attempt.lastActivity = MonotonicClock.now()
        switch mode {
        case .streaming:
            relay(buffer, attempt)
        case .whole, .error:
            var buffer = buffer
            if attempt.collected == nil {
                attempt.collected = buffer
            } else {
                attempt.collected!.writeBuffer(&buffer)
            }
            if attempt.collected!.readableBytes > maxWholeBodyBytes {
                attemptFailed(attempt, .malformed("response body larger than \(maxWholeBodyBytes) bytes"))
            }
        }
    }

    func upstreamEnd() {
        guard let attempt else { return }
        attempt.lingerTimer?.cancel()
        if let connection = attempt.connection {
            attempt.connection = nil
            pool.release(connection)
        }
        guard !finished else { return }
        switch attempt.mode {
        case .streaming?:
            streamEnded(attempt)
        case .whole?:
            deliverWhole(attempt)
        case .error(let status, let retryAfter)?:
            let body = attempt.collected.map { Array($0.readableBytesView) } ?? []
            let error = ErrorBody(upstreamStatus: status, body: body)
            let summary = UpstreamFailure.ErrorSummary(
                message: error.message,
                type: error.type,
                code: error.code,
                param: error.param
            )
            attemptFailed(attempt, .status(status, retryAfter: retryAfter, body: summary))
        case nil:
            attemptFailed(attempt, .malformed("response ended without a head"))
        }
    }

    func upstreamClosed(_ error: (any Error)?) {
        guard let attempt else { return }
        attempt.connection = nil
        guard !finished else { return }
        if attempt.committed {
            abortStream(attempt, reason: "upstream connection closed mid-stream", label: "reset")
        } else if attempt.mode == nil, let error, error is NIOSSLError || error is BoringSSLError {
            attemptFailed(attempt, .connect("TLS handshake failed: \(error)"))
        } else if attempt.mode == nil, attempt.reusedConnection, !attempt.resentOnFreshConnection {
            // A pooled connection the server had already closed: not the backend's fault. Send again once
            // on a new connection without counting an attempt.
            resendFresh(attempt)
        } else {
            attemptFailed(attempt, .reset(responseStarted: attempt.mode != nil))
        }
    }

    private func resendFresh(_ attempt: Attempt) {
        end(attempt, discardConnection: true)
        attempt.resentOnFreshConnection = true
        self.attempt = attempt
        send(attempt, freshConnection: true)
    }

    // MARK: - Whole responses

    private func deliverWhole(_ attempt: Attempt) {
        if profile.stream {
            // The client waits for an event stream; a JSON answer would look to it like an empty stream.
            attemptFailed(attempt, .malformed("backend answered a streaming request without an event stream"))
            return
        }
        let upstream = attempt.collected ?? reply.writer.allocator.buffer(capacity: 0)
        guard
            let (body, usage) = UpstreamRequest.clientBody(
                upstream,
                operation: operation,
                backend: attempt.backend,
                created: created,
                allocator: reply.writer.allocator
            )
        else {
            attemptFailed(attempt, .malformed("response body is not a JSON object"))
            return
        }
        end(attempt, discardConnection: false)
        let now = MonotonicClock.now()
        core.withRouter { router, _ in router.completed(attempt.plan.attempt, usage: usage, now: now) }
        remember(AnswerCache.Answer(streamed: false, bytes: Array(body.readableBytesView)))
        firstTokenAt = now
        var headers = reply.baseHeaders
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "x-isobar-backend", value: attempt.backend.name.rawValue)
        reply.writer.respond(status: .ok, headers: headers, body: body)
        finish(status: 200, backend: attempt.backend.name, usage: usage)
    }

    // MARK: - Streams

    /// Relays the events of one upstream body part. Before commit, client bytes are held back; the first
    /// content event commits the response and flushes them.
    private func relay(_ buffer: ByteBuffer, _ attempt: Attempt) {
        var out: [UInt8] = []
        var failure: String?
        var finishedStream = false
        var sawContent = false
        let parsed: Result<Void, SSEParser.Overflow> = buffer.withUnsafeReadableBytes { bytes in
            Result { () throws(SSEParser.Overflow) in
                try attempt.parser.push(bytes) { event in
                    guard failure == nil, !finishedStream else { return }
                    let progress = attempt.transcoder!.translate(event, into: &out)
                    if let usage = progress.usage { attempt.usage = usage }
                    if progress.content { sawContent = true }
                    if progress.finished { finishedStream = true }
                    failure = progress.failure
                }
            }
        }
        if case .failure = parsed { failure = "stream event larger than the parser's limit" }
        forward(out, attempt, commit: sawContent || finishedStream)
        if let failure {
            if attempt.committed {
                abortStream(attempt, reason: failure, label: "malformed")
            } else {
                attemptFailed(attempt, .malformed(failure))
            }
        } else if finishedStream {
            completeStream(attempt)
        }
    }

    /// Sends client bytes now if committed (or committing), else holds them back.
    private func forward(_ out: [UInt8], _ attempt: Attempt, commit: Bool) {
        if !attempt.committed {
            attempt.pending.append(contentsOf: out)
            guard commit else { return }
            attempt.committed = true
            attempt.firstTokenTimer?.cancel()
            armIdleTimer(attempt)
            firstTokenAt = MonotonicClock.now()
            core.withRouter { router, _ in router.firstToken(attempt.plan.attempt, now: self.firstTokenAt!) }
            var headers = reply.baseHeaders
            headers.add(name: "content-type", value: "text/event-stream")
            headers.add(name: "cache-control", value: "no-cache")
            headers.add(name: "x-isobar-backend", value: attempt.backend.name.rawValue)
            reply.writer.writeHead(status: .ok, headers: headers)
            let held = attempt.pending
            attempt.pending = []
            capture(held)
            if !held.isEmpty { reply.writer.writeBody(reply.writer.allocator.buffer(bytes: held)) }
        } else if !out.isEmpty {
            capture(out)
            reply.writer.writeBody(reply.writer.allocator.buffer(bytes: out))
        }
    }

    /// Keeps what a committed stream sent, for the answer cache.
    private func capture(_ bytes: [UInt8]) {
        guard captured != nil else { return }
        captured!.append(contentsOf: bytes)
        if captured!.count > captureLimit { captured = nil }
    }

    /// The upstream body ended without an end marker having been relayed.
    private func streamEnded(_ attempt: Attempt) {
        var out: [UInt8] = []
        var failure: String?
        var finishedStream = false
        var sawContent = false
        if let last = attempt.parser.finish() {
            let progress = attempt.transcoder!.translate(last, into: &out)
            if let usage = progress.usage { attempt.usage = usage }
            sawContent = progress.content
            finishedStream = progress.finished
            failure = progress.failure
        }
        if failure == nil, !finishedStream {
            finishedStream = attempt.transcoder!.finishWithoutMarker(into: &out)
            if !finishedStream { failure = "upstream stream ended before the answer finished" }
        }
        if failure == nil { forward(out, attempt, commit: sawContent || finishedStream) }
        if let failure {
            if attempt.committed {
                forward(out, attempt, commit: false)
                abortStream(attempt, reason: failure, label: "truncated")
            } else {
                attemptFailed(attempt, .malformed(failure))
            }
        } else {
            completeStream(attempt)
        }
    }

    private func completeStream(_ attempt: Attempt) {
        // The connection stays with the exchange until the upstream response ends, then goes back to the
        // pool (`upstreamEnd`); if that end does not come soon, the connection is closed instead.
        attempt.cancelTimers()
        if attempt.connection != nil {
            attempt.lingerTimer = eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) {
                guard let connection = attempt.connection else { return }
                attempt.connection = nil
                self.pool.discard(connection)
            }
        }
        if let sentAt = attempt.sentAt { upstreamTime += MonotonicClock.now() - sentAt }
        attempt.sentAt = nil
        let now = MonotonicClock.now()
        core.withRouter { router, _ in router.completed(attempt.plan.attempt, usage: attempt.usage, now: now) }
        if let captured { remember(AnswerCache.Answer(streamed: true, bytes: captured)) }
        reply.writer.end()
        finish(status: 200, backend: attempt.backend.name, usage: attempt.usage)
    }

    /// Ends a committed stream with an in-band error event and no end marker: the client must not mistake
    /// a cut answer for a complete one.
    func abortStream(_ attempt: Attempt, reason: String, label: String) {
        var out: [UInt8] = []
        let error = ErrorBody(
            status: 502,
            type: "upstream_error",
            message: "Backend '\(attempt.backend.name)': \(reason)"
        )
        attempt.transcoder?.writeError(error, into: &out)
        reply.writer.writeBody(reply.writer.allocator.buffer(bytes: out))
        reply.writer.end()
        end(attempt, discardConnection: true)
        core.metrics.streamAborted(backend: attempt.backend.name.rawValue, reason: label)
        core.withRouter { router, _ in router.abandoned(attempt.plan.attempt, now: MonotonicClock.now()) }
        finish(status: 200, backend: attempt.backend.name, usage: attempt.usage)
    }

    /// Arms the idle timer: it fires `idle_ms` after the last body part, re-arming itself for the rest of
    /// the interval when parts keep arriving.
    private func armIdleTimer(_ attempt: Attempt) {
        let idle = Duration.milliseconds(attempt.plan.timeouts.idleMs)
        attempt.lastActivity = MonotonicClock.now()
        func schedule(in delay: Duration) {
            attempt.idleTimer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay.nanoseconds)) {
                let quiet = MonotonicClock.now() - attempt.lastActivity
                if quiet >= idle {
                    self.attemptTimedOut(attempt, .idle)
                } else {
                    schedule(in: idle - quiet)
                }
            }
        }
        attempt.idleTimer?.cancel()
        schedule(in: idle)
    }

    /// `retry-after-ms` or `retry-after` (seconds or an HTTP date, which is ignored), capped at 60 s.
    static func retryAfter(_ headers: HTTPHeaders) -> Duration? {
        if let ms = headers.first(name: "retry-after-ms").flatMap(Double.init), ms >= 0 {
            return .milliseconds(min(ms, 60_000))
        }
        if let seconds = headers.first(name: "retry-after").flatMap(Double.init), seconds >= 0 {
            return .milliseconds(min(seconds, 60) * 1000)
        }
        return nil
    }
}
