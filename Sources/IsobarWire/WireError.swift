/// A request body Isobar cannot accept or translate: the client's fault, answered with 400.
///
/// `param` names the offending field (OpenAI's `error.param`).
public struct WireError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var param: String?

    public init(_ message: String, param: String? = nil) {
        self.message = message
        self.param = param
    }

    public var description: String { message }
}
