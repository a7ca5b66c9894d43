import IsobarModel
import NIOCore
import NIOHTTP1

/// Health checks that cost nothing, for backends that have no metrics to scrape (cloud providers and
/// OpenAI-compatible APIs): such a backend is judged by its real traffic while it has some; once it has
/// had no attempt for a whole interval it is sent `GET /v1/models` — free, unlike a completion — and the
/// router learns whether it answered. (Self-hosted engines are probed by their metrics scrape.)
final class ProviderProbe: Sendable {
    private let core: GatewayCore
    private let loop: any EventLoop
    private let interval: Duration
    private let timeout: Duration
    private let targets: [Target]

    struct Target: Sendable {
        var backend: BackendID
        var url: UpstreamURL
        var headers: HTTPHeaders
    }

    init(core: GatewayCore, loop: any EventLoop, interval: Duration, timeout: Duration = .seconds(2)) {
        self.core = core
        self.loop = loop
        self.interval = interval
        self.timeout = timeout
        self.targets = core.topology.backends.filter {
            $0.metricsURL == nil && $0.isReachable(from: core.node.region)
        }.map(Self.target)
    }

    /// `GET /v1/models` of `backend`, with its credentials.
    static func target(_ backend: Backend) -> Target {
        var url = backend.url
        url.basePath = backend.url.path("/v1/models")
        var headers = ScrapeCall.headers(for: url, apiKey: nil)
        headers.addCredentials(of: backend)
        return Target(backend: backend.name, url: url, headers: headers)
    }

    /// Probes the idle targets at start and then every interval, until the task is cancelled.
    func run() async {
        guard !targets.isEmpty, interval > .zero else { return }
        while !Task.isCancelled {
            let now = MonotonicClock.now()
            let idle = core.withRouter { router, _ in
                targets.filter { router.isIdle($0.backend, for: interval, now: now) }
            }
            for target in idle { loop.execute { self.probe(target) } }
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }

    /// One probe, on the loop. Any answer but a 5xx means the provider is up (a 401 or 404 here says the
    /// key or the path is wrong, which real calls will report); no answer means it is not.
    private func probe(_ target: Target) {
        let call = ScrapeCall(
            url: target.url,
            headers: target.headers,
            pool: core.pools.pool(for: loop),
            timeout: .nanoseconds(timeout.nanoseconds),
            maxBodyBytes: 1 << 20
        )
        let expiry = loop.assumeIsolated().scheduleTask(deadline: call.deadline) { call.expire(at: .now()) }
        call.start { [core] result in
            expiry.cancel()
            let reachable: Bool
            switch result {
            case .response(let status, _): reachable = status < 500
            case .failed(let outcome, _): reachable = outcome == .malformed
            }
            core.probed(target.backend, reachable: reachable)
        }
    }
}
