import IsobarModel
import IsobarWire
import NIOCore
import NIOHTTP1

/// The HTTP surface of a node (DESIGN §4): routes each request to the API handlers or the node
/// endpoints, and answers every bad request with the right status and error body.
struct GatewayResponder: HTTPResponder {
    /// The node's core: a reload replaces it between two requests.
    let current: CurrentCore
    /// The node's gossip, when it is in a mesh.
    var mesh: GossipShell? = nil

    private enum Route {
        case generate(Operation)
        case models
        case model(Substring)
        case health, ready, metrics
        case mesh, regions, status, usage
        case regionHealth(Substring)

        /// Whether the route needs a key when the topology has keys.
        var needsKey: Bool {
            switch self {
            case .generate, .models, .model, .usage: true
            default: false
            }
        }
    }

    /// What serves new requests now.
    var core: GatewayCore { current.core }

    func respond(to request: HTTPRequest, with writer: HTTPResponseWriter) {
        let path = request.path
        // Routing keys every request by an id of its own: a client may send one x-request-id many times.
        let routingID = core.mintRequestID()
        let requestID = Self.requestID(from: request.head.headers) ?? routingID
        let dialect: WireAPI = path == "/v1/messages" ? .anthropic : .openai
        var reply = Reply(writer: writer, requestID: requestID, routingID: RequestID(routingID), dialect: dialect)
        guard let (route, methods) = Self.route(path) else {
            reply.error(GatewayError(.notFound, "No route for \(request.head.method.rawValue) \(path)"))
            return
        }
        if case .generate = route {
            // API requests refused before routing still count in isobar_requests_total.
            reply.onError = { [core] status in
                core.metrics.requestFinished(
                    model: "unknown",
                    backend: "none",
                    status: status,
                    ttft: nil,
                    duration: MonotonicClock.now() - request.receivedAt,
                    overhead: MonotonicClock.now() - request.receivedAt,
                    usage: nil
                )
            }
        }
        guard methods.contains(request.head.method) else {
            var headers = HTTPHeaders()
            headers.add(name: "allow", value: methods.map(\.rawValue).joined(separator: ", "))
            reply.error(
                GatewayError(.methodNotAllowed, "\(request.head.method.rawValue) is not allowed on \(path)"),
                headers: headers
            )
            return
        }
        if request.bodyTooLarge {
            let limit = core.topology.limits.maxRequestBodyBytes
            reply.error(
                GatewayError(
                    .bodyTooLarge,
                    "Request body is larger than the limit of \(limit) bytes",
                    errorCode: "request_too_large"
                )
            )
            return
        }
        // With keys, the API and the admin endpoints need a key; health, metrics and the mesh views do not.
        var caller: Caller?
        if let governor = core.governor, route.needsKey {
            switch governor.authenticate(request, now: WallClock.seconds()) {
            case .failure(let error):
                reply.error(error, headers: ["www-authenticate": "Bearer"])
                return
            case .success(let who):
                caller = who
            }
        }
        switch route {
        case .generate(let operation):
            if case .master? = caller {
                reply.error(
                    GatewayError(
                        .forbidden,
                        "The master key opens the admin endpoints only; call models with a virtual key"
                    )
                )
                return
            }
            Exchange.start(core: core, request: request, operation: operation, reply: reply, caller: caller)
        case .models:
            if let principal = caller?.principal {
                reply.json(status: .ok, core.modelsBody(allowedBy: principal))
            } else {
                reply.json(status: .ok, core.modelsBody)
            }
        case .usage:
            guard let governor = core.governor else {
                reply.error(
                    GatewayError(.notFound, "Usage is counted per virtual key; this topology has no keys: section")
                )
                return
            }
            guard case .master? = caller else {
                reply.error(GatewayError(.forbidden, "GET /v1/usage needs the master key"))
                return
            }
            let now = WallClock.seconds()
            let reply = reply
            governor.usageBody(node: core.node.name, now: now, on: writer.eventLoop).assumeIsolated().whenComplete {
                result in
                switch result {
                case .success(let body): reply.json(status: .ok, body.bytes)
                case .failure(let error):
                    reply.error(GatewayError(.limitsUnavailable, "The limit store cannot be read: \(error)"))
                }
            }
        case .model(let id):
            if let group = core.topology.models.first(where: {
                $0.name.rawValue == id && caller?.principal?.allows($0.name) != false
            }) {
                let body: JSON = [
                    "id": .string(group.name.rawValue), "object": "model", "created": 0, "owned_by": "isobar",
                ]
                reply.json(status: .ok, body.bytes)
            } else {
                reply.error(
                    GatewayError(
                        .unknownModel,
                        "The model '\(id)' does not exist",
                        param: "model",
                        errorCode: "model_not_found"
                    )
                )
            }
        case .health:
            reply.json(status: .ok, Array(#"{"status":"ok"}"#.utf8))
        case .ready:
            if core.isReady {
                reply.json(status: .ok, Array(#"{"status":"ready"}"#.utf8))
            } else {
                reply.json(status: .serviceUnavailable, Array(#"{"status":"no usable backend"}"#.utf8))
            }
        case .mesh:
            reply.json(status: .ok, core.meshBody(mesh?.snapshot()).bytes)
        case .regions:
            reply.json(status: .ok, core.regionsBody(mesh?.snapshot()).bytes)
        case .status:
            let snapshot = mesh?.snapshot()
            let tables = StatusTables(
                mesh: core.meshBody(snapshot),
                regions: core.topology.regions.compactMap { core.regionHealthBody($0.name, snapshot) }
            )
            var headers = reply.baseHeaders
            headers.add(name: "content-type", value: "text/html; charset=utf-8")
            writer.respond(status: .ok, headers: headers, bytes: Array(tables.html().utf8))
        case .regionHealth(let region):
            if let body = core.regionHealthBody(RegionID(String(region)), mesh?.snapshot()) {
                reply.json(status: .ok, body.bytes)
            } else {
                reply.error(
                    GatewayError(
                        .notFound,
                        "No region '\(region)'; regions: \(core.topology.regions.map(\.name.rawValue).joined(separator: ", "))"
                    )
                )
            }
        case .metrics:
            let (core, loop) = (self.core, writer.eventLoop)
            let endpoints = core.withRouter { router, _ in router.endpointStatus(now: MonotonicClock.now()) }
            for endpoint in endpoints { core.metrics.setEndpoint(endpoint) }
            // Regions without backends are left out: none usable there is not an outage.
            for region in core.topology.regions
            where core.topology.backends.contains(where: { $0.region == region.name }) {
                core.metrics.setUsableBackends(
                    region: region.name.rawValue,
                    endpoints.count { $0.usable && core.backends[$0.backend]?.region == region.name }
                )
            }
            core.metrics.setOpenRequests(core.openExchanges.load(ordering: .relaxed))
            if let snapshot = mesh?.snapshot() { core.metrics.setMesh(snapshot) }
            var headers = reply.baseHeaders
            headers.add(name: "content-type", value: "text/plain; version=0.0.4; charset=utf-8")
            // Budgets as the store has them (read within its timeout; what this node knows when it cannot).
            let spent = core.governor?.budgetsSpent(now: WallClock.seconds(), on: loop) ?? loop.makeSucceededFuture([])
            spent.assumeIsolated().whenComplete { result in
                for (subject, budget, usd) in (try? result.get()) ?? [] {
                    core.metrics.setBudgetSpent(subject, ratio: usd / budget.usd)
                }
                writer.respond(status: .ok, headers: headers, bytes: core.metrics.exposition())
            }
        }
    }

    private static func route(_ path: Substring) -> (Route, [HTTPMethod])? {
        switch path {
        case "/v1/chat/completions", "/chat/completions": (.generate(.chatCompletions), [.POST])
        case "/v1/completions", "/completions": (.generate(.completions), [.POST])
        case "/v1/embeddings", "/embeddings": (.generate(.embeddings), [.POST])
        case "/v1/messages": (.generate(.messages), [.POST])
        case "/v1/models", "/models": (.models, [.GET, .HEAD])
        case "/health": (.health, [.GET, .HEAD])
        case "/ready": (.ready, [.GET, .HEAD])
        case "/metrics": (.metrics, [.GET])
        case "/v1/regions": (.regions, [.GET])
        case "/v1/mesh": (.mesh, [.GET])
        case "/v1/usage": (.usage, [.GET])
        case "/status": (.status, [.GET])
        default:
            if path.hasPrefix("/v1/models/"), path.count > 11 {
                (.model(path.dropFirst(11)), [.GET])
            } else if path.hasPrefix("/v1/regions/"), path.hasSuffix("/health"), path.count > 19 {
                (.regionHealth(path.dropFirst(12).dropLast(7)), [.GET])
            } else {
                nil
            }
        }
    }

    /// The client's `x-request-id` if it is a sane token (1–128 visible ASCII characters).
    static func requestID(from headers: HTTPHeaders) -> String? {
        guard let id = headers.first(name: "x-request-id"), (1...128).contains(id.utf8.count),
            id.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { return nil }
        return id
    }
}

/// Answers one client request: success bodies and errors in the client's dialect, with `x-request-id`.
struct Reply {
    let writer: HTTPResponseWriter
    /// The `x-request-id` answered: the client's, or `routingID`.
    let requestID: String
    /// The node's own id of the request, unique among its requests.
    let routingID: RequestID
    let dialect: WireAPI
    /// The `x-isobar-route` header explaining the last routing decision (when `routing.debug_header`).
    var route: String?
    /// Headers every answer to the request carries (the key's `x-ratelimit-*`).
    var extraHeaders = HTTPHeaders()

    var baseHeaders: HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "x-request-id", value: requestID)
        if let route { headers.add(name: "x-isobar-route", value: route) }
        headers.add(contentsOf: extraHeaders)
        return headers
    }

    func json(status: HTTPResponseStatus, _ bytes: [UInt8], headers extra: HTTPHeaders = [:]) {
        var headers = baseHeaders
        headers.add(name: "content-type", value: "application/json")
        headers.add(contentsOf: extra)
        writer.respond(status: status, headers: headers, bytes: bytes)
    }

    /// Called with the status of an error answered through `error(_:headers:)`.
    var onError: ((Int) -> Void)?

    /// Answers with `error` in the client's dialect.
    func error(_ error: GatewayError, headers extra: HTTPHeaders = [:]) {
        onError?(error.status)
        let body = error.body
        json(
            status: HTTPResponseStatus(statusCode: error.status),
            dialect == .anthropic ? body.anthropicBytes : body.openAIBytes,
            headers: extra
        )
    }
}
