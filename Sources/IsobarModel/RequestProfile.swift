/// The API operations a node serves.
public enum Operation: String, Sendable, Equatable, CaseIterable {
    case chatCompletions = "chat.completions"
    case completions
    case embeddings
    /// Anthropic Messages ingress (`POST /v1/messages`).
    case messages

    /// True for operations that produce tokens (and may stream).
    public var generates: Bool { self != .embeddings }
}

/// What routing knows about a request: only the fields a decision needs, read from the body without
/// decoding all of it.
public struct RequestProfile: Sendable, Equatable {
    public var id: RequestID
    public var model: ModelName
    public var operation: Operation
    public var stream: Bool
    /// `max_tokens` (or `max_completion_tokens`) if the client set it.
    public var maxTokens: Int?
    /// A cheap estimate of prompt tokens (see `PromptEstimate`).
    public var promptTokens: Int
    /// The session the request belongs to (the `x-isobar-session` header, else the `user` field): a
    /// session stays in the region that served it while that region can (`ProximitySettings`).
    public var session: String?
    /// Another node forwarded the request here (`x-isobar-hop`): it must not be forwarded again.
    public var forwarded: Bool
    /// Hashes of the prompt's consecutive prefix blocks, each covering `hashBlockTokens` tokens and
    /// chained (a block's hash depends on every block before it), for prefix affinity.
    public var prefixHashes: [UInt64]
    public var hashBlockTokens: Int

    public init(
        id: RequestID,
        model: ModelName,
        operation: Operation,
        stream: Bool = false,
        maxTokens: Int? = nil,
        promptTokens: Int = 0,
        session: String? = nil,
        forwarded: Bool = false,
        prefixHashes: [UInt64] = [],
        hashBlockTokens: Int = 512
    ) {
        self.id = id
        self.model = model
        self.operation = operation
        self.stream = stream
        self.maxTokens = maxTokens
        self.promptTokens = promptTokens
        self.session = session
        self.forwarded = forwarded
        self.prefixHashes = prefixHashes
        self.hashBlockTokens = hashBlockTokens
    }
}

/// Tokens a request consumed.
public struct Usage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    public var totalTokens: Int { promptTokens + completionTokens }
}
