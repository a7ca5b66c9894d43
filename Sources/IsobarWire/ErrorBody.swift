/// An error answer, independent of dialect: rendered as an OpenAI error body
/// (`{"error":{"message","type","param","code"}}`) or an Anthropic one
/// (`{"type":"error","error":{"type","message"}}`).
public struct ErrorBody: Sendable, Equatable, Error {
    /// The HTTP status the error is answered with.
    public var status: Int
    /// The OpenAI error type (`invalid_request_error`, `rate_limit_error`, …).
    public var type: String
    public var message: String
    public var code: String?
    public var param: String?

    public init(status: Int, type: String? = nil, message: String, code: String? = nil, param: String? = nil) {
        self.status = status
        self.type = type ?? ErrorBody.openAIType(forStatus: status)
        self.message = message
        self.code = code
        self.param = param
    }

    /// The usual OpenAI error type of a status.
    public static func openAIType(forStatus status: Int) -> String {
        switch status {
        case 401: "authentication_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 408, 504: "timeout_error"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        case 502: "upstream_error"
        case 503: "service_unavailable_error"
        default: "api_error"
        }
    }

    /// Anthropic's error type of a status.
    public static func anthropicType(forStatus status: Int) -> String {
        switch status {
        case 401: "authentication_error"
        case 402: "billing_error"
        case 403: "permission_error"
        case 404: "not_found_error"
        case 413: "request_too_large"
        case 429: "rate_limit_error"
        case 400..<500: "invalid_request_error"
        case 503, 529: "overloaded_error"
        case 504: "timeout_error"
        default: "api_error"
        }
    }

    /// The status Anthropic uses for an error type, for in-band stream errors that carry no status.
    public static func status(forAnthropicType type: String) -> Int {
        switch type {
        case "invalid_request_error": 400
        case "authentication_error": 401
        case "billing_error": 402
        case "permission_error": 403
        case "not_found_error": 404
        case "request_too_large": 413
        case "rate_limit_error": 429
        case "timeout_error": 504
        case "overloaded_error": 503
        default: 500
        }
    }

    /// `{"error":{"message","type","param","code"}}`.
    public var openAIJSON: JSON {
        [
            "error": [
                "message": .string(message),
                "type": .string(type),
                "param": param.map(JSON.string) ?? .null,
                "code": code.map(JSON.string) ?? .null,
            ]
        ]
    }

    public var openAIBytes: [UInt8] { openAIJSON.bytes }

    /// `{"type":"error","error":{"type","message"}}`.
    public var anthropicJSON: JSON {
        [
            "type": "error",
            "error": ["type": .string(ErrorBody.anthropicType(forStatus: status)), "message": .string(message)],
        ]
    }

    public var anthropicBytes: [UInt8] { anthropicJSON.bytes }

    /// Reads an upstream error body in either dialect; falls back to the body's text.
    public init(upstreamStatus status: Int, body: [UInt8]) {
        let json = try? JSON(parsing: body)
        if let error = json?["error"], case .object = error {
            let anthropicType = json?["type"]?.stringValue == "error" ? error["type"]?.stringValue : nil
            self.init(
                status: status,
                type: anthropicType.map { _ in ErrorBody.openAIType(forStatus: status) } ?? error["type"]?.stringValue,
                message: error["message"]?.stringValue ?? "upstream error",
                code: error["code"]?.stringValue ?? error["code"]?.intValue.map(String.init) ?? anthropicType,
                param: error["param"]?.stringValue
            )
        } else if let message = json?["message"]?.stringValue ?? json?["detail"]?.stringValue
            ?? json?["error"]?.stringValue
        {
            self.init(status: status, message: message)
        } else {
            // At most 512 bytes, cut between UTF-8 sequences, without the blank lines proxies pad with.
            var end = min(body.count, 512)
            while end > 0, end < body.count, body[end] & 0xC0 == 0x80 { end -= 1 }
            var text = Substring(String(decoding: body[..<end], as: UTF8.self))
            while text.first?.isWhitespace == true { text.removeFirst() }
            while text.last?.isWhitespace == true { text.removeLast() }
            self.init(status: status, message: text.isEmpty ? "upstream answered HTTP \(status)" : String(text))
        }
    }
}
