import IsobarModel
import Testing

@testable import IsobarWire

@Suite("RequestFields: what routing reads from a request body, and the upstream rewrite")
struct RequestFieldsTests {
    static func scan(_ body: String) throws(WireError) -> RequestFields {
        let result: Result<RequestFields, WireError> = Array(body.utf8).withUnsafeBytes { buffer in
            Result { () throws(WireError) in try RequestFields.scan(buffer) }
        }
        return try result.get()
    }

    /// The body sent upstream for `body`, and the fields scanned from the client's body.
    static func upstream(
        _ body: String,
        model: String,
        injectUsage: Bool = true
    ) throws(WireError) -> (fields: RequestFields, body: String) {
        let fields = try scan(body)
        let out = Array(body.utf8).withUnsafeBytes { buffer in
            ByteEdit.apply(fields.upstreamEdits(in: buffer, upstreamModel: model, injectUsage: injectUsage), to: buffer)
        }
        return (fields, String(decoding: out, as: UTF8.self))
    }

    static let sameRequestManyWays: [String] = [
        #"{"model":"gpt-4o","stream":true,"max_tokens":256,"stream_options":{"include_usage":true},"user":"u-1","#
            + #""messages":[{"role":"user","content":"hi"}]}"#,
        #"{"messages":[{"role":"user","content":"hi"}],"user":"u-1","stream_options":{"include_usage":true},"#
            + #""max_tokens":256,"stream":true,"model":"gpt-4o"}"#,
        "\n{ \"user\" : \"u-1\" ,\r\n\t\"max_tokens\" : 256 , \"stream\" :true, \"model\"\n:\n\"gpt-4o\" ,"
            + " \"stream_options\" : { \"include_usage\" : true } , \"messages\" : [ ] }  ",
        #"{"mod\u0065l":"gpt\u002d4o","str\u0065am":true,"max\u005ftokens":256,"#
            + #""stream\u005foptions":{"include\u005fusage":true},"\u0075ser":"u-1","messages":[]}"#,
    ]

    @Test(
        "The same fields are found in any key order, with any whitespace and with escaped keys",
        arguments: sameRequestManyWays
    )
    func anyOrder(_ body: String) throws {
        let fields = try Self.scan(body)
        #expect(fields.model == "gpt-4o")
        #expect(fields.stream)
        #expect(fields.maxTokens == 256)
        #expect(fields.includeUsage)
        #expect(fields.user == "u-1")
        #expect(Array(body.utf8)[fields.modelRange].first == UInt8(ascii: "\""))
    }

    @Test("max_tokens wins over max_completion_tokens; either alone is read; null means unset")
    func maxTokens() throws {
        #expect(try Self.scan(#"{"model":"m","max_completion_tokens":4096}"#).maxTokens == 4096)
        #expect(try Self.scan(#"{"max_completion_tokens":9,"model":"m","max_tokens":7}"#).maxTokens == 7)
        #expect(try Self.scan(#"{"model":"m","max_tokens":null,"max_completion_tokens":5}"#).maxTokens == 5)
        #expect(try Self.scan(#"{"model":"m","max_tokens":null}"#).maxTokens == nil)
        #expect(try Self.scan(#"{"model":"m","max_tokens":0}"#).maxTokens == 0)
        #expect(try Self.scan(#"{"model":"m","max_tokens":1024.0}"#).maxTokens == 1024)
        #expect(try Self.scan(#"{"model":"m","stream":null}"#).stream == false)
    }

    @Test("The user is OpenAI's `user` or Anthropic's `metadata.user_id`")
    func user() throws {
        #expect(try Self.scan(#"{"model":"m","user":"alice"}"#).user == "alice")
        #expect(try Self.scan(#"{"model":"claude","metadata":{"user_id":"bob"},"max_tokens":1}"#).user == "bob")
        #expect(try Self.scan(#"{"model":"m","metadata":{"trace":"x"}}"#).user == nil)
        #expect(try Self.scan(#"{"model":"m","user":null}"#).user == nil)
    }

    static let wrongTypes: [(body: String, param: String)] = [
        (#"{"model":42,"messages":[]}"#, "model"),
        (#"{"model":"","messages":[]}"#, "model"),
        (#"{"model":null}"#, "model"),
        (#"{"messages":[{"role":"user","content":"hi"}]}"#, "model"),
        (#"{"model":"m","stream":"true"}"#, "stream"),
        (#"{"model":"m","stream":1}"#, "stream"),
        (#"{"model":"m","max_tokens":-1}"#, "max_tokens"),
        (#"{"model":"m","max_tokens":1.5}"#, "max_tokens"),
        (#"{"model":"m","max_tokens":"256"}"#, "max_tokens"),
        (#"{"model":"m","max_tokens":1e30}"#, "max_tokens"),
        (#"{"model":"m","max_completion_tokens":true}"#, "max_completion_tokens"),
        (#"{"model":"m","stream":true,"stream_options":"usage"}"#, "stream_options"),
        (#"{"model":"m","stream":true,"stream_options":[]}"#, "stream_options"),
        (#"{"model":"m","stream":true,"stream_options":{"include_usage":"yes"}}"#, "stream_options"),
    ]

    @Test("A field of the wrong type is the client's error and names the field", arguments: wrongTypes)
    func wrongType(body: String, param: String) {
        let error = #expect(throws: WireError.self) { try Self.scan(body) }
        #expect(error?.param == param)
        #expect(error?.message.contains(param) == true, "\(String(describing: error))")
    }

    @Test(
        "A malformed body is rejected as invalid JSON, even when the mistake is deep inside messages",
        arguments: JSONScannerTests.malformedBodies
    )
    func malformed(_ body: String) {
        let error = #expect(throws: WireError.self) { try Self.scan(body) }
        #expect(error?.message.hasPrefix("request body is not valid JSON") == true)
        #expect(error?.param == nil)
    }

    // MARK: - Upstream edits

    @Test("Without a stream only the model changes: every other byte is identical")
    func rewritesOnlyTheModel() throws {
        let body =
            "{ \"temperature\": 0.70, \"model\" : \"fast\", \"seed\": 18446744073709551615,"
            + " \"messages\": [{\"role\":\"user\",\"content\":\"caf\\u00e9 \\ud83d\\ude00\"}] }"
        let (fields, out) = try Self.upstream(body, model: #"org/Model "v2" \ é"#)
        let original = Array(body.utf8)
        let rewritten = Array(out.utf8)
        let newModel = JSON.quoted(#"org/Model "v2" \ é"#)
        #expect(rewritten[..<fields.modelRange.lowerBound] == original[..<fields.modelRange.lowerBound])
        #expect(
            rewritten[(fields.modelRange.lowerBound + newModel.count)...] == original[fields.modelRange.upperBound...]
        )
        #expect(try JSON(parsing: out)["model"] == .string(#"org/Model "v2" \ é"#))
    }

    @Test("A stream gets stream_options.include_usage injected when the client did not ask")
    func injectsUsage() throws {
        let body = #"{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        let (fields, out) = try Self.upstream(body, model: "meta-llama/Llama-3.1-8B-Instruct")
        #expect(!fields.includeUsage)
        #expect(
            out == #"{"stream_options":{"include_usage":true},"model":"meta-llama/Llama-3.1-8B-Instruct","#
                + #""stream":true,"messages":[{"role":"user","content":"hi"}]}"#
        )
        #expect(try Self.scan(out).includeUsage)
    }

    @Test("Nothing is injected when the client asked, when not streaming, or when injection is off")
    func noInjection() throws {
        let asked = #"{"model":"a","stream":true,"stream_options":{"include_usage":true}}"#
        #expect(
            try Self.upstream(asked, model: "b").body
                == #"{"model":"b","stream":true,"stream_options":{"include_usage":true}}"#
        )
        let notStreaming = #"{"model":"a","stream":false}"#
        #expect(try Self.upstream(notStreaming, model: "b").body == #"{"model":"b","stream":false}"#)
        let off = #"{"model":"a","stream":true}"#
        #expect(try Self.upstream(off, model: "b", injectUsage: false).body == #"{"model":"b","stream":true}"#)
    }

    @Test(
        "An existing stream_options object is merged, keeping the client's other options",
        arguments: [
            (#"{"continuous_usage_stats":true}"#, #"{"continuous_usage_stats":true,"include_usage":true}"#),
            (#"{ "include_usage" : false, "x" : 1 }"#, #"{"include_usage":true,"x":1}"#),
            ("null", #"{"include_usage":true}"#),
            ("{}", #"{"include_usage":true}"#),
        ]
    )
    func mergesStreamOptions(options: String, merged: String) throws {
        let body = #"{"model":"a","stream":true,"stream_options":"# + options + #","messages":[]}"#
        let (_, out) = try Self.upstream(body, model: "b")
        #expect(out == #"{"model":"b","stream":true,"stream_options":"# + merged + #","messages":[]}"#)
    }

    @Test("Edits of random bodies always parse, carry the new model and change nothing else (seeded)")
    func editsProperty() throws {
        var rng = Xoshiro256(seed: 7)
        for _ in 0..<500 {
            let sample = RandomRequest(using: &rng)
            var newModel = JSONTests.randomString(using: &rng)
            if newModel.isEmpty { newModel = "x" }
            let (fields, out) = try Self.upstream(sample.body, model: newModel)
            #expect(fields.model == sample.model)
            let before = try JSON(parsing: sample.body)
            let after = try JSON(parsing: out)
            #expect(after["model"] == .string(newModel))
            let rescanned = try Self.scan(out)
            #expect(rescanned.model == newModel)
            #expect(rescanned.includeUsage == (sample.stream || fields.includeUsage))
            if !sample.stream {
                let original = Array(sample.body.utf8)
                let rewritten = Array(out.utf8)
                let quoted = JSON.quoted(newModel)
                #expect(rewritten[..<fields.modelRange.lowerBound] == original[..<fields.modelRange.lowerBound])
                #expect(
                    rewritten[(fields.modelRange.lowerBound + quoted.count)...]
                        == original[fields.modelRange.upperBound...]
                )
            }
            let untouched = before.objectValue!.keys.filter { $0 != "model" && $0 != "stream_options" }
            for key in untouched { #expect(after[key] == before[key], "\(key) in \(sample.body)") }
            if sample.stream, let options = before["stream_options"]?.objectValue {
                for (key, value) in options where key != "include_usage" {
                    #expect(after["stream_options"]?[key] == value)
                }
            }
        }
    }

    @Test("The prompt token estimate grows with the prompt and ignores other fields")
    func promptEstimate() throws {
        func estimate(_ body: String) throws -> Int { try Self.scan(body).promptTokensEstimate }
        var last = -1
        for words in [0, 1, 10, 100, 1_000] {
            let text = Array(repeating: "word", count: words).joined(separator: " ")
            let value = try estimate(#"{"model":"m","messages":[{"role":"user","content":""# + text + #""}]}"#)
            #expect(value > last)
            last = value
        }
        #expect(last >= 1_000)
        let base = try estimate(#"{"model":"m","messages":[]}"#)
        #expect(try estimate(#"{"model":"m","messages":[],"metadata":{"note":"long long long long long"}}"#) == base)
        for key in ["system", "tools", "prompt", "input"] {
            let padded = try estimate(#"{"model":"m","messages":[],""# + key + #"":"one two three four five"}"#)
            #expect(padded > base, "\(key)")
        }
    }
}

/// A request body with random key order, whitespace, key escapes and stream options.
private struct RandomRequest {
    var body: String
    var model: String
    var stream: Bool

    init(using rng: inout Xoshiro256) {
        var model = JSONTests.randomString(using: &rng)
        if model.isEmpty { model = "m" }
        self.model = model
        stream = Bool.random(using: &rng)
        let space = [" ", "", "\n", "\t", "\r\n  "]
        func ws(_ rng: inout Xoshiro256) -> String { space.randomElement(using: &rng)! }
        let modelKey = Bool.random(using: &rng) ? #""model""# : #""mod\u0065l""#
        var members = [
            modelKey + ws(&rng) + ":" + ws(&rng) + String(decoding: JSON.quoted(model), as: UTF8.self),
            #""stream":"# + ws(&rng) + (stream ? "true" : "false"),
            #""messages":[{"role":"user","content":"#
                + String(decoding: JSON.quoted(JSONTests.randomString(using: &rng)), as: UTF8.self) + "}]",
            #""seed":18446744073709551615"#,
            #""temperature":0.10"#,
        ]
        let options = [
            nil, "null", "{}", #"{"include_usage":true}"#, #"{"include_usage":false,"continuous_usage_stats":true}"#,
            #"{"continuous_usage_stats":true}"#,
        ]
        if let chosen = options.randomElement(using: &rng)!, stream || chosen == "null" {
            members.append(#""stream_options":"# + ws(&rng) + chosen)
        }
        members.shuffle(using: &rng)
        body =
            ws(&rng) + "{" + ws(&rng) + members.joined(separator: ws(&rng) + "," + ws(&rng)) + ws(&rng) + "}" + ws(&rng)
    }
}
