import IsobarModel

/// The fields of a request body that routing reads, found by scanning (not parsing) the body.
///
/// Works for OpenAI chat/completions/embeddings bodies and Anthropic Messages bodies. Nothing else of
/// the body is decoded; the body is forwarded as bytes with only `model` (and, for streams,
/// `stream_options`) rewritten.
public struct RequestFields: Sendable, Equatable {
    /// The requested model.
    public var model: String
    public var modelRange: Range<Int>
    /// The range of the top-level object (the body minus surrounding whitespace).
    public var objectRange: Range<Int>
    public var stream: Bool
    /// `max_tokens`, or `max_completion_tokens` when only that is set.
    public var maxTokens: Int?
    /// The range of the `stream_options` value, if present.
    public var streamOptionsRange: Range<Int>?
    /// The client asked for a usage chunk (`stream_options.include_usage: true`).
    public var includeUsage: Bool
    /// The `user` field (OpenAI) or `metadata.user_id` (Anthropic).
    public var user: String?
    /// Bytes of the prompt-bearing fields (`messages`, `prompt`, `input`, `system`, `tools`).
    public var promptBytes: Int
    /// Byte ranges of the prompt-bearing fields, in the order the model reads them: `system`, `tools`,
    /// then `messages` (or `prompt` / `input`).
    public var promptRanges: [Range<Int>]

    /// A cheap estimate of prompt tokens: about four bytes of JSON text per token, the usual ratio of
    /// English text under BPE tokenizers (JSON syntax makes it an overestimate for short messages).
    public var promptTokensEstimate: Int { (promptBytes + 3) / 4 }

    /// Scans a request body.
    public static func scan(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> RequestFields {
        var model: String?
        var modelRange: Range<Int>?
        var stream = false
        var maxTokens: Int?
        var maxCompletionTokens: Int?
        var streamOptionsRange: Range<Int>?
        var user: String?
        var promptBytes = 0
        var promptRanges: [(order: Int, range: Range<Int>)] = []
        var fieldError: WireError?
        let objectRange: Range<Int>
        do throws(JSONError) {
            objectRange = try JSONScanner.forEachField(in: bytes) { key, _, range in
                func value() -> JSON? { JSONScanner.value(in: bytes, at: range) }
                if JSONScanner.key(key, is: "model") {
                    guard let name = value()?.stringValue, !name.isEmpty else {
                        fieldError = fieldError ?? WireError("'model' must be a non-empty string", param: "model")
                        return
                    }
                    model = name
                    modelRange = range
                } else if JSONScanner.key(key, is: "stream") {
                    switch value() {
                    case .bool(let b): stream = b
                    case .null: stream = false
                    default: fieldError = fieldError ?? WireError("'stream' must be a boolean", param: "stream")
                    }
                } else if JSONScanner.key(key, is: "max_tokens") || JSONScanner.key(key, is: "max_completion_tokens") {
                    let isMaxTokens = JSONScanner.key(key, is: "max_tokens")
                    let name = isMaxTokens ? "max_tokens" : "max_completion_tokens"
                    switch value() {
                    case .null: break
                    case .some(let v) where (v.intValue ?? -1) >= 0:
                        if isMaxTokens { maxTokens = v.intValue } else { maxCompletionTokens = v.intValue }
                    default:
                        fieldError = fieldError ?? WireError("'\(name)' must be a non-negative integer", param: name)
                    }
                } else if JSONScanner.key(key, is: "stream_options") {
                    streamOptionsRange = range
                } else if JSONScanner.key(key, is: "user") {
                    user = value()?.stringValue
                } else if JSONScanner.key(key, is: "metadata") {
                    user = value()?["user_id"]?.stringValue ?? user
                } else if let order = Self.promptOrder(key) {
                    promptBytes += range.count
                    promptRanges.append((order, range))
                }
            }
        } catch {
            throw WireError("request body is not valid JSON: \(error)")
        }
        if let fieldError { throw fieldError }
        guard let model, let modelRange else { throw WireError("'model' is required", param: "model") }
        var includeUsage = false
        if let streamOptionsRange {
            switch JSONScanner.value(in: bytes, at: streamOptionsRange) {
            case .null: break
            case .object(let options):
                switch options["include_usage"] {
                case .bool(let b): includeUsage = b
                case nil, .null: break
                default:
                    throw WireError("'stream_options.include_usage' must be a boolean", param: "stream_options")
                }
            default: throw WireError("'stream_options' must be an object", param: "stream_options")
            }
        }
        return RequestFields(
            model: model,
            modelRange: modelRange,
            objectRange: objectRange,
            stream: stream,
            maxTokens: maxTokens ?? maxCompletionTokens,
            streamOptionsRange: streamOptionsRange,
            includeUsage: includeUsage,
            user: user,
            promptBytes: promptBytes,
            promptRanges: promptRanges.sorted { $0.order < $1.order }.map(\.range)
        )
    }

    /// Where a prompt-bearing field goes in the model's reading order, or `nil` for other keys.
    private static func promptOrder(_ key: UnsafeRawBufferPointer) -> Int? {
        if JSONScanner.key(key, is: "system") { return 0 }
        if JSONScanner.key(key, is: "tools") { return 1 }
        if JSONScanner.key(key, is: "messages") || JSONScanner.key(key, is: "prompt")
            || JSONScanner.key(key, is: "input")
        {
            return 2
        }
        return nil
    }

    /// Bytes of prompt text one prefix block covers (about 512 tokens at four
    /// bytes per token).
    public static let prefixBlockBytes = 2048

    /// Chained hashes of the prompt's full 2 KiB blocks (the prompt-bearing fields' bytes in reading
    /// order, at most the first 512 KiB): block k's hash covers every byte before its end, so two prompts
    /// share the leading hashes exactly as long as they share a prefix. Used for prefix affinity; a
    /// partial last block is left out, as engines cache full blocks only.
    public func prefixHashes(in bytes: UnsafeRawBufferPointer) -> [UInt64] {
        var hashes: [UInt64] = []
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        var filled = 0
        var total = 0
        outer: for range in promptRanges {
            var i = range.lowerBound
            while i < range.upperBound {
                // Eight bytes at a time where the range allows, then byte by byte.
                if range.upperBound - i >= 8, Self.prefixBlockBytes - filled >= 8 {
                    let word = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + 8)]).loadUnaligned(as: UInt64.self)
                    hash = Self.mix(hash ^ word)
                    i += 8
                    filled += 8
                } else {
                    hash = Self.mix(hash ^ UInt64(bytes[i]))
                    i += 1
                    filled += 1
                }
                if filled == Self.prefixBlockBytes {
                    hashes.append(hash)
                    filled = 0
                    total += Self.prefixBlockBytes
                    if total >= 512 * 1024 { break outer }
                }
            }
        }
        return hashes
    }

    @inline(__always)
    private static func mix(_ x: UInt64) -> UInt64 {
        var z = x &* 0x9E37_79B9_7F4A_7C15
        z ^= z >> 29
        return z &* 0xBF58_476D_1CE4_E5B9
    }

    /// The edits that turn the client's body into the upstream body: `model` becomes `upstreamModel`,
    /// and a stream always asks for a usage chunk (so the gateway can account tokens), which the relay
    /// strips again when the client did not ask for it.
    public func upstreamEdits(
        in bytes: UnsafeRawBufferPointer,
        upstreamModel: String,
        injectUsage: Bool
    ) -> [ByteEdit] {
        var edits: [ByteEdit] = []
        let modelEdit = ByteEdit(range: modelRange, replacement: JSON.quoted(upstreamModel))
        guard injectUsage, stream, !includeUsage else { return [modelEdit] }
        if let streamOptionsRange {
            var options = JSONScanner.value(in: bytes, at: streamOptionsRange)?.objectValue ?? JSONObject()
            options["include_usage"] = .bool(true)
            edits = [modelEdit, ByteEdit(range: streamOptionsRange, replacement: JSON.object(options).bytes)]
        } else {
            let insertion = ByteEdit.insert(
                Array(#""stream_options":{"include_usage":true},"#.utf8),
                at: objectRange.lowerBound + 1
            )
            edits = [insertion, modelEdit]
        }
        return edits.sorted { $0.range.lowerBound < $1.range.lowerBound }
    }
}
