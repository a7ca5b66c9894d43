/// A host and port, as written in a topology file: `127.0.0.1:8080`, `[::1]:8080` or `gw.example.com:8080`.
public struct HostPort: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; IPv6 hosts are written in brackets. Returns a message on failure.
    public static func parse(_ text: String) -> Result<HostPort, AddressError> {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return .failure(.init("missing ']' after IPv6 host")) }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return .failure(.init("expected ':PORT' after ']'")) }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return .failure(.init("expected HOST:PORT")) }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { return .failure(.init("IPv6 hosts must be written in brackets: [HOST]:PORT")) }
        }
        guard !hostPart.isEmpty else { return .failure(.init("empty host")) }
        guard let port = Int(portPart), (0...65535).contains(port) else {
            return .failure(.init("port must be a number from 0 to 65535, got '\(portPart)'"))
        }
        let host = String(hostPart)
        if let problem = Self.hostProblem(host, ipv6: text.hasPrefix("[")) { return .failure(.init(problem)) }
        return .success(HostPort(host: host, port: port))
    }

    /// A reason the host is not a valid IPv4 address, IPv6 address or DNS name, or `nil`.
    static func hostProblem(_ host: String, ipv6: Bool) -> String? {
        if ipv6 {
            let ok = host.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } && host.contains(":")
            return ok ? nil : "'\(host)' is not an IPv6 address"
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) {
            guard labels.count == 4, labels.allSatisfy({ (Int($0) ?? 256) <= 255 }) else {
                return "'\(host)' is not an IPv4 address"
            }
            return nil
        }
        for label in labels {
            let valid =
                !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" || $0 == "_" }
            if !valid { return "'\(host)' is not a valid host name" }
        }
        return nil
    }

    /// True if the host is a loopback address or `localhost`.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Whether `host` is an IPv4 or IPv6 address rather than a name (a DNS name always has a letter).
    public static func isIPAddress(_ host: String) -> Bool {
        host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
    }

    /// True if the host stands for every interface (`0.0.0.0`, `::`): where one binds, not an address to
    /// connect to.
    public var isWildcard: Bool { host == "0.0.0.0" || host == "::" }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Why an address or URL could not be parsed.
public struct AddressError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// An `http` or `https` URL of an upstream server: scheme, host, port and a base path without a
/// trailing slash.
public struct UpstreamURL: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    /// The path prefix, `""` or starting with `/` and not ending with `/`.
    public var basePath: String

    public init(tls: Bool, host: String, port: Int, basePath: String = "") {
        self.tls = tls
        self.host = host
        self.port = port
        self.basePath = basePath
    }

    /// Parses `http://host[:port][/path]` or `https://…`.
    public static func parse(_ text: String) -> Result<UpstreamURL, AddressError> {
        let tls: Bool
        let rest: Substring
        if text.hasPrefix("http://") {
            tls = false
            rest = text.dropFirst(7)
        } else if text.hasPrefix("https://") {
            tls = true
            rest = text.dropFirst(8)
        } else {
            return .failure(.init("URL must start with http:// or https://"))
        }
        if rest.contains("?") || rest.contains("#") { return .failure(.init("URL must not have a query or fragment")) }
        if rest.contains("@") { return .failure(.init("URL must not carry credentials; use api_key_env")) }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        let defaultPort = tls ? 443 : 80
        let hostPort: HostPort
        let hasPort: Bool
        if authority.hasPrefix("[") {
            hasPort = authority.hasSuffix("]") == false
        } else {
            hasPort = authority.contains(":")
        }
        switch HostPort.parse(hasPort ? String(authority) : "\(authority):\(defaultPort)") {
        case .success(let parsed): hostPort = parsed
        case .failure(let error): return .failure(error)
        }
        guard hostPort.port > 0 else { return .failure(.init("URL port must be from 1 to 65535")) }
        return .success(UpstreamURL(tls: tls, host: hostPort.host, port: hostPort.port, basePath: path))
    }

    /// The value of the `Host` header.
    public var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? h : "\(h):\(port)"
    }

    /// The path of an API call: `path` is e.g. `/v1/chat/completions`. A base path that already ends in
    /// `/v1` is not doubled.
    public func path(_ apiPath: String) -> String {
        if basePath.hasSuffix("/v1"), apiPath.hasPrefix("/v1/") {
            return basePath + apiPath.dropFirst(3)
        }
        return basePath + apiPath
    }

    public var description: String { "\(tls ? "https" : "http")://\(hostHeader)\(basePath)" }
}
