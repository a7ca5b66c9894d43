/// Why a gossip packet was refused. Every refusal is counted by the shell and dropped; none reaches the
/// membership state.
public struct GossipError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The bytes do not decode as a gossip packet (truncated, unknown kind, bad lengths).
        case malformed
        /// Larger than the packet limit.
        case oversized
        /// No key of the keyring opens it, or it was sealed for another mesh.
        case unauthenticated
        /// Sent too long ago (or too far ahead), or a sequence number this node already accepted.
        case replayed
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
