import IsobarModel

/// How an attempt on a backend failed, as the shell observed it.
public enum UpstreamFailure: Sendable, Equatable, CustomStringConvertible {
    /// The phase of a call a timeout cut short.
    public enum TimeoutPhase: String, Sendable, Equatable {
        case connect
        case firstToken = "first_token"
        case idle
        /// The backend's own `total_ms` for one attempt.
        case attempt
        /// The request's whole budget.
        case total
    }

    /// TCP or TLS connection could not be established.
    case connect(String)
    /// The connection closed or reset before a complete response; `responseStarted` if bytes had arrived.
    case reset(responseStarted: Bool)
    /// A timeout fired.
    case timeout(TimeoutPhase)
    /// The backend answered with an error status.
    case status(Int, retryAfter: Duration?, body: ErrorSummary)
    /// The backend answered something that is not a valid response (bad JSON, bad stream event).
    case malformed(String)

    /// The upstream error's message, kept for the client's error body.
    public struct ErrorSummary: Sendable, Equatable {
        public var message: String
        public var type: String?
        public var code: String?
        public var param: String?

        public init(message: String, type: String? = nil, code: String? = nil, param: String? = nil) {
            self.message = message
            self.type = type
            self.code = code
            self.param = param
        }
    }

    /// Whether the same deployment may be tried again. The one table of retryable failures: connect
    /// failures, resets before any response byte, timeouts before commit and the statuses 408, 429, 500,
    /// 502, 503 and 504. Never 400, 401, 403, 404, 413 or 422: the same request to the same deployment
    /// cannot fare better.
    public var isRetryable: Bool {
        switch self {
        case .connect: true
        case .reset(let responseStarted): !responseStarted
        case .timeout(let phase): phase != .total
        case .status(let code, _, _): [408, 429, 500, 502, 503, 504].contains(code)
        case .malformed: false
        }
    }

    /// Whether waiting for this deployment is pointless when another one can serve: it cannot be reached,
    /// it stayed silent, or it asked for a pause longer than a second. The router then fails over first
    /// and keeps same-deployment retries for the last deployment standing.
    public var prefersFailover: Bool {
        switch self {
        case .connect, .timeout: true
        case .status(_, let retryAfter?, _): retryAfter > .seconds(1)
        case .status, .reset, .malformed: false
        }
    }

    /// Whether the failure is the backend's (its breaker counts it), not the request's: everything but the
    /// statuses that say the request itself is wrong (400, 413, 422), which prove the backend is up.
    public var blamesBackend: Bool {
        switch self {
        case .status(let code, _, _): ![400, 413, 422].contains(code)
        case .connect, .reset, .timeout, .malformed: true
        }
    }

    /// No connection was made (refused, unroutable, or the connect timed out): nothing reached the far end.
    public var neverConnected: Bool {
        switch self {
        case .connect, .timeout(.connect): true
        case .reset, .timeout, .status, .malformed: false
        }
    }

    /// The failure says the backend could not be reached at all (as opposed to an answer it gave).
    public var meansUnreachable: Bool {
        switch self {
        case .connect, .reset, .timeout: true
        case .status, .malformed: false
        }
    }

    /// Whether another deployment of the model may be tried. Everything that failed before the client saw
    /// a byte may fail over — a bad key (401/403), a model the provider lacks (404), a cut or malformed
    /// answer — except requests that are themselves wrong (400, 413, 422), which no deployment would
    /// accept, and the end of the request's total budget.
    public var allowsFailover: Bool {
        switch self {
        case .timeout(let phase): phase != .total
        case .status(let code, _, _): ![400, 413, 422].contains(code)
        case .connect, .reset, .malformed: true
        }
    }

    /// The backend refused the prompt as longer than its context window: not retried there, but a
    /// deployment with a larger window may take it. Recognised by OpenAI's `context_length_exceeded` code
    /// and by the messages of vLLM, SGLang, TGI, llama.cpp and Anthropic.
    public var isContextLength: Bool {
        guard case .status(let code, _, let body) = self, [400, 413, 422].contains(code) else { return false }
        if body.code == "context_length_exceeded" || body.type == "exceed_context_size_error" { return true }
        let message = body.message.lowercased()
        return Self.contextLengthPhrases.contains { message.contains($0) }
    }

    static let contextLengthPhrases = [
        "context length", "context_length", "context window", "context size", "prompt is too long",
        "max_new_tokens` must be <=",
    ]

    public var description: String {
        switch self {
        case .connect(let reason): "connect failed: \(reason)"
        case .reset(let started): started ? "connection closed mid-response" : "connection closed before a response"
        case .timeout(let phase): "\(phase.rawValue) timeout"
        case .status(let code, _, let body): "HTTP \(code): \(body.message)"
        case .malformed(let reason): "malformed response: \(reason)"
        }
    }

    /// A short label for metrics (`reason` label).
    public var label: String {
        switch self {
        case .connect: "connect"
        case .reset: "reset"
        case .timeout(let phase): "timeout_\(phase.rawValue)"
        case .status where isContextLength: "context_length"
        case .status(let code, _, _): "status_\(code)"
        case .malformed: "malformed"
        }
    }
}
