/// A name-like identifier. Every identifier in Isobar is a non-empty string chosen by the operator
/// (in the topology file) or minted by a node (request and attempt ids).
public protocol StringIdentifier: Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    var rawValue: String { get }
    init(_ rawValue: String)
}

extension StringIdentifier {
    public init(stringLiteral value: String) { self.init(value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A gateway process in the mesh.
public struct NodeID: StringIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// A region: a set of nodes and backends close to each other.
public struct RegionID: StringIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// One upstream server (a provider account or one engine replica).
public struct BackendID: StringIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// The model name a client asks for (a model group in the topology).
public struct ModelName: StringIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// The id of one client request, carried in `x-request-id`.
public struct RequestID: StringIdentifier {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
}

/// One attempt of a request on one deployment. A request has one or more attempts.
public struct AttemptID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { "a\(rawValue)" }
}
