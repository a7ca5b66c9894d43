import IsobarModel
import IsobarRouting
import IsobarWire
import NIOHTTP1

/// Every error a node answers a client with, classified once: what went wrong, whose fault it is, and
/// whether trying again may help. `status` and `body` are the one mapping to HTTP and the OpenAI /
/// Anthropic error bodies.
public struct GatewayError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        case invalidRequest
        case unknownModel
        case unsupportedOperation
        case bodyTooLarge
        case methodNotAllowed
        case notFound
        /// No API key, or one the node does not know (401).
        case unauthorized
        /// A key that may not do this: a model it is not allowed, or an admin endpoint (403).
        case forbidden
        /// A key or team over one of its limits or its budget (429).
        case overLimit
        /// The shared limit store cannot be reached and `redis.on_failure` is `closed` (503).
        case limitsUnavailable
        /// The upstream answered with this status.
        case upstreamStatus(Int)
        case upstreamUnreachable
        case upstreamTimeout
        case upstreamMalformed
        /// No candidate left (catch-all busy).
        case busy
        case `internal`
    }

    /// Who caused the error.
    public enum Fault: String, Sendable, Equatable {
        case client, upstream, `internal`
    }

    public var code: Code
    public var message: String
    public var param: String?
    /// The OpenAI error code string (`model_not_found`, …), if any.
    public var errorCode: String?
    /// The OpenAI error type, when the upstream named one.
    public var errorType: String?

    public init(
        _ code: Code,
        _ message: String,
        param: String? = nil,
        errorCode: String? = nil,
        errorType: String? = nil
    ) {
        self.code = code
        self.message = message
        self.param = param
        self.errorCode = errorCode
        self.errorType = errorType
    }

    public var description: String { message }

    public var fault: Fault {
        switch code {
        case .invalidRequest, .unknownModel, .unsupportedOperation, .bodyTooLarge, .methodNotAllowed, .notFound,
            .unauthorized, .forbidden, .overLimit:
            .client
        case .upstreamStatus(let status): status < 500 && status != 429 && status != 408 ? .client : .upstream
        case .upstreamUnreachable, .upstreamTimeout, .upstreamMalformed, .busy: .upstream
        case .internal, .limitsUnavailable: .internal
        }
    }

    /// Trying the same request again later may succeed.
    public var retryable: Bool {
        switch code {
        case .upstreamStatus(let status): [408, 429, 500, 502, 503, 504].contains(status)
        case .upstreamUnreachable, .upstreamTimeout, .upstreamMalformed, .busy, .internal, .overLimit,
            .limitsUnavailable:
            true
        default: false
        }
    }

    /// The HTTP status answered. Upstream statuses are kept where they mean the same to the client
    /// (4xx, 503, 504); other upstream 5xx become 502; an unreachable upstream is 502, a timeout 504.
    public var status: Int {
        switch code {
        case .invalidRequest: 400
        case .unknownModel, .notFound: 404
        case .unsupportedOperation: 400
        case .bodyTooLarge: 413
        case .methodNotAllowed: 405
        case .unauthorized: 401
        case .forbidden: 403
        case .overLimit: 429
        case .limitsUnavailable: 503
        case .upstreamStatus(let status):
            switch status {
            case 400..<500: status
            case 503, 529: 503
            case 504: 504
            default: 502
            }
        case .upstreamUnreachable, .upstreamMalformed: 502
        case .upstreamTimeout: 504
        case .busy: 503
        case .internal: 500
        }
    }

    /// The error as a dialect-neutral body.
    public var body: ErrorBody {
        let type: String? =
            switch code {
            case .upstreamStatus(let s) where s < 500: errorType
            default: nil
            }
        return ErrorBody(status: status, type: type, message: message, code: errorCode, param: param)
    }
}

// MARK: - From routing outcomes

extension GatewayError {
    /// The client-facing error of a routing rejection.
    init(_ reason: RejectReason) {
        switch reason {
        case .unknownModel(let model, let known):
            let list = known.map(\.rawValue).joined(separator: ", ")
            self.init(
                .unknownModel,
                "The model '\(model)' does not exist. Known models: \(list)",
                param: "model",
                errorCode: "model_not_found"
            )
        case .unsupportedOperation(let model, let operation):
            self.init(
                .unsupportedOperation,
                "The model '\(model)' has no deployment that supports \(operation.rawValue)",
                param: "model",
                errorCode: "unsupported_operation"
            )
        case .upstream(let failure, let backend, _):
            self.init(failure, backend: backend)
        case .overloaded:
            self.init(
                .busy,
                "Every backend of this model is at capacity; retry after the time in retry-after",
                errorCode: "overloaded"
            )
        }
    }

    /// The client-facing error of an upstream failure.
    init(_ failure: UpstreamFailure, backend: BackendID) {
        switch failure {
        case .connect(let reason):
            self.init(.upstreamUnreachable, "Backend '\(backend)' is unreachable: \(reason)")
        case .reset(let started):
            self.init(
                .upstreamUnreachable,
                "Backend '\(backend)' closed the connection \(started ? "mid-response" : "before answering")"
            )
        case .timeout(let phase):
            self.init(.upstreamTimeout, "Backend '\(backend)' timed out (\(phase.rawValue) timeout)")
        case .status(let status, _, let summary):
            self.init(
                .upstreamStatus(status),
                summary.message,
                param: summary.param,
                errorCode: summary.code,
                errorType: summary.type
            )
        case .malformed(let reason):
            self.init(.upstreamMalformed, "Backend '\(backend)' sent a malformed response: \(reason)")
        }
    }
}
