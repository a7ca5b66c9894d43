import Testing

@testable import IsobarWire

@Suite("ErrorBody: reading upstream errors and writing them in either dialect")
struct ErrorBodyTests {
    static func read(_ status: Int, _ body: String) -> ErrorBody {
        ErrorBody(upstreamStatus: status, body: Array(body.utf8))
    }

    @Test("An OpenAI error keeps its message, type, param and code")
    func openAIForm() {
        let error = Self.read(
            404,
            #"{"error":{"message":"The model `gpt-5x` does not exist or you do not have access to it.","#
                + #""type":"invalid_request_error","param":"model","code":"model_not_found"}}"#
        )
        #expect(error.status == 404)
        #expect(error.message == "The model `gpt-5x` does not exist or you do not have access to it.")
        #expect(error.type == "invalid_request_error")
        #expect(error.param == "model")
        #expect(error.code == "model_not_found")

        let rateLimit = Self.read(
            429,
            #"{"error":{"message":"Rate limit reached","type":"tokens","code":"rate_limit_exceeded"}}"#
        )
        #expect(rateLimit.type == "tokens")
        #expect(rateLimit.code == "rate_limit_exceeded")
        #expect(rateLimit.param == nil)
    }

    @Test("An OpenAI-style error without a type gets the status's type; a numeric code is kept as text")
    func openAIFormGaps() {
        let error = Self.read(429, #"{"error":{"message":"Provider returned error","code":429}}"#)
        #expect(error.type == "rate_limit_error")
        #expect(error.code == "429")
        #expect(Self.read(500, #"{"error":{"type":"server_error"}}"#).message == "upstream error")
    }

    @Test("An Anthropic error becomes an OpenAI-typed error whose code is the Anthropic type")
    func anthropicForm() {
        let body =
            #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011"}"#
        let error = Self.read(529, body)
        #expect(error.message == "Overloaded")
        #expect(error.code == "overloaded_error")
        #expect(error.type == ErrorBody.openAIType(forStatus: 529))
        #expect(error.anthropicJSON["error"]?["type"] == "overloaded_error")

        let limited = Self.read(429, #"{"type":"error","error":{"type":"rate_limit_error","message":"Slow down"}}"#)
        #expect(limited.type == "rate_limit_error")
        #expect(limited.code == "rate_limit_error")
    }

    @Test(
        "Bodies with a top-level message, detail or error string give that text",
        arguments: [
            (#"{"detail":"Not Found"}"#, "Not Found"),
            (#"{"message":"Invalid API key","statusCode":401}"#, "Invalid API key"),
            (#"{"error":"Invalid API key"}"#, "Invalid API key"),
            (
                #"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","param":null,"code":404}"#,
                "The model `x` does not exist."
            ),
        ]
    )
    func otherJSONForms(body: String, message: String) {
        let error = Self.read(404, body)
        #expect(error.message == message)
        #expect(error.type == "not_found_error")
    }

    @Test("A plain-text or HTML body becomes the message, trimmed and cut to 512 bytes between characters")
    func plainText() {
        let proxy = Self.read(503, "upstream connect error or disconnect/reset before headers. reset reason: overflow")
        #expect(proxy.message == "upstream connect error or disconnect/reset before headers. reset reason: overflow")
        #expect(proxy.type == "service_unavailable_error")
        for body in [String(repeating: "é", count: 600), "a" + String(repeating: "é", count: 600)] {
            let long = Self.read(502, body)
            #expect(long.message.utf8.count <= 512)
            #expect(long.message.utf8.count >= 510)
            #expect(!long.message.contains("\u{FFFD}"), "a character cut in half")
        }
        #expect(
            Self.read(502, "\n\n<html><body>Bad Gateway</body></html>\r\n").message
                == "<html><body>Bad Gateway</body></html>"
        )
        let validation = Self.read(422, #"{"detail":[{"loc":["body","model"],"msg":"field required"}]}"#)
        #expect(validation.message.contains("field required"))
    }

    @Test("An empty or blank body still gives a useful message", arguments: ["", " ", "\r\n", "\n\t \n"])
    func emptyBody(body: String) {
        let error = Self.read(502, body)
        #expect(error.message == "upstream answered HTTP 502")
        #expect(error.type == "upstream_error")
    }

    @Test("openAIBytes and anthropicBytes have the dialects' exact shapes and parse back")
    func shapes() throws {
        let error = ErrorBody(status: 400, message: "bad \"model\"\n", param: "model")
        #expect(
            String(decoding: error.openAIBytes, as: UTF8.self)
                == #"{"error":{"message":"bad \"model\"\n","type":"invalid_request_error","param":"model","code":null}}"#
        )
        #expect(
            String(decoding: error.anthropicBytes, as: UTF8.self)
                == #"{"type":"error","error":{"type":"invalid_request_error","message":"bad \"model\"\n"}}"#
        )
        let coded = ErrorBody(status: 429, type: "tokens", message: "slow", code: "rate_limit_exceeded")
        #expect(try JSON(parsing: coded.openAIBytes)["error"]?["code"] == "rate_limit_exceeded")
        #expect(try JSON(parsing: coded.openAIBytes)["error"]?["type"] == "tokens")
        #expect(try JSON(parsing: coded.anthropicBytes)["error"]?["type"] == "rate_limit_error")
    }

    @Test(
        "Status -> error type tables for both dialects",
        arguments: [
            (400, "invalid_request_error", "invalid_request_error"),
            (401, "authentication_error", "authentication_error"),
            (402, "invalid_request_error", "billing_error"),
            (403, "permission_error", "permission_error"),
            (404, "not_found_error", "not_found_error"),
            (408, "timeout_error", "invalid_request_error"),
            (413, "invalid_request_error", "request_too_large"),
            (422, "invalid_request_error", "invalid_request_error"),
            (429, "rate_limit_error", "rate_limit_error"),
            (500, "api_error", "api_error"),
            (502, "upstream_error", "api_error"),
            (503, "service_unavailable_error", "overloaded_error"),
            (504, "timeout_error", "timeout_error"),
            (529, "api_error", "overloaded_error"),
        ]
    )
    func statusTables(status: Int, openAI: String, anthropic: String) {
        #expect(ErrorBody.openAIType(forStatus: status) == openAI)
        #expect(ErrorBody.anthropicType(forStatus: status) == anthropic)
        #expect(ErrorBody(status: status, message: "m").type == openAI)
    }

    @Test(
        "Every Anthropic error type maps to a status that maps back to the same type",
        arguments: [
            "invalid_request_error", "authentication_error", "billing_error", "permission_error", "not_found_error",
            "request_too_large", "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
        ]
    )
    func anthropicTypeRoundTrip(type: String) {
        let status = ErrorBody.status(forAnthropicType: type)
        #expect((400..<600).contains(status))
        #expect(ErrorBody.anthropicType(forStatus: status) == type)
    }

    @Test("An unknown Anthropic error type is a 500")
    func unknownAnthropicType() {
        #expect(ErrorBody.status(forAnthropicType: "brand_new_error") == 500)
    }
}
